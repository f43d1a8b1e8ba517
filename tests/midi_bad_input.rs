//! Broken input never panics or hangs: every defect is a [`MidiError`] that says what is wrong,
//! and [`read_file`] names the file. Hand-made broken files pin each error kind; proptests feed
//! arbitrary bytes and mutated real files (bit flips, cuts, splices) through the whole path:
//! parse, both grids, roll -> notes, roll -> MIDI, and our own MIDI back.

mod common;

use jit_music::export::{self, ExportSpec};
use jit_music::midi::{self, MidiError};
use jit_music::roll::{roll_to_notes, score_to_roll, Grid, RollOptions, Velocity, MAX_FRAMES};
use proptest::prelude::*;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Building blocks for hand-made files.

fn header(format: u16, tracks: u16, division: u16) -> Vec<u8> {
    let mut v = b"MThd\0\0\0\x06".to_vec();
    v.extend_from_slice(&format.to_be_bytes());
    v.extend_from_slice(&tracks.to_be_bytes());
    v.extend_from_slice(&division.to_be_bytes());
    v
}

fn track(events: &[u8]) -> Vec<u8> {
    let mut v = b"MTrk".to_vec();
    v.extend_from_slice(&(events.len() as u32 + 4).to_be_bytes());
    v.extend_from_slice(events);
    v.extend_from_slice(&[0x00, 0xff, 0x2f, 0x00]); // end of track
    v
}

/// A variable-length quantity (MIDI delta time).
fn vlq(mut x: u32) -> Vec<u8> {
    let mut out = vec![(x & 0x7f) as u8];
    x >>= 7;
    while x > 0 {
        out.push(((x & 0x7f) as u8) | 0x80);
        x >>= 7;
    }
    out.reverse();
    out
}

/// One note of `len` ticks after `delta` ticks.
fn note(delta: u32, len: u32, pitch: u8) -> Vec<u8> {
    let mut v = vlq(delta);
    v.extend_from_slice(&[0x90, pitch, 100]);
    v.extend(vlq(len));
    v.extend_from_slice(&[0x80, pitch, 0]);
    v
}

fn smf(format: u16, division: u16, tracks: &[Vec<u8>]) -> Vec<u8> {
    let mut v = header(format, tracks.len() as u16, division);
    for t in tracks {
        v.extend(track(t));
    }
    v
}

fn real_file() -> Vec<u8> {
    std::fs::read(common::fixture("midi/pop909/091/091.mid")).unwrap()
}

fn err(raw: &[u8]) -> MidiError {
    match midi::parse(raw) {
        Ok(s) => panic!(
            "expected an error, parsed {} notes from {} bytes",
            s.note_count(),
            raw.len()
        ),
        Err(e) => e,
    }
}

// ---------------------------------------------------------------------------------------------
// Hand-made broken files: kind and message.

#[test]
fn empty_file() {
    let e = err(b"");
    assert!(matches!(e, MidiError::Empty), "{e:?}");
    assert_eq!(e.to_string(), "the file is empty");
}

/// Cut points: inside the magic, inside the header, right after it, inside a track's chunk
/// header, inside a track's events, exactly at a track boundary (fewer tracks than declared),
/// and one byte short of the end.
#[test]
fn truncated_real_file_at_many_points() {
    let raw = real_file();
    // Find the chunk boundaries of the real file.
    let mut bounds = Vec::new();
    let mut pos = 14usize;
    while pos + 8 <= raw.len() {
        let len = u32::from_be_bytes(raw[pos + 4..pos + 8].try_into().unwrap()) as usize;
        pos += 8 + len;
        bounds.push(pos);
    }
    assert!(
        bounds.len() >= 3,
        "091.mid has a tempo track and three parts"
    );
    let mut cuts = vec![1, 2, 3, 5, 13, 14, 17, 21, 30, raw.len() / 3, raw.len() / 2];
    cuts.push(bounds[0]); // after track 0 of 4 declared
    cuts.push(bounds[1] + 3); // inside a chunk header
    cuts.push(raw.len() - 1);
    for cut in cuts {
        let e = err(&raw[..cut]);
        assert!(
            matches!(e, MidiError::Truncated(_)),
            "cut at {cut} of {}: {e:?}",
            raw.len()
        );
        assert!(e.to_string().starts_with("truncated: "), "{e}");
    }
    // The whole file is fine, and so is trailing garbage shorter than a chunk header.
    midi::parse(&raw).unwrap();
    let mut padded = raw.clone();
    padded.extend_from_slice(b"\0\0\0");
    midi::parse(&padded).unwrap();
}

#[test]
fn truncated_messages_say_how_much_is_missing() {
    let raw = real_file();
    let e = err(&raw[..raw.len() - 10]);
    let msg = e.to_string();
    assert!(msg.contains("declares") && msg.contains("remain"), "{msg}");
    let e = err(&raw[..10]);
    assert!(e.to_string().contains("header needs 14 bytes"), "{e}");
}

#[test]
fn wrong_magic() {
    let mut raw = real_file();
    raw[3] = b'x'; // MThx
    let e = err(&raw);
    assert!(matches!(e, MidiError::NotMidi(_)), "{e:?}");
    assert!(e.to_string().starts_with("not a MIDI file"), "{e}");

    let e = err(b"RIFF\x10\0\0\0RMIDdata");
    assert!(e.to_string().contains("RIFF"), "{e}");
    let e = err(b"PK\x03\x04zipped");
    assert!(e.to_string().contains("zip"), "{e}");
    let e = err(&[0xde, 0xad, 0xbe, 0xef, 0x00, 0xff]);
    assert!(e.to_string().contains("unknown data"), "{e}");
}

#[test]
fn png_file() {
    let roll = jit_music::roll::PianoRoll::new(4);
    let mut png = Vec::new();
    jit_music::roll::render_png(&roll, 1, None)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let e = err(&png);
    assert!(matches!(e, MidiError::NotMidi(_)), "{e:?}");
    assert_eq!(e.to_string(), "not a MIDI file (looks like a PNG image)");
}

#[test]
fn text_file() {
    let e = err(b"This is a README, not a MIDI file.\nSecond line.\n");
    assert!(matches!(e, MidiError::NotMidi(_)), "{e:?}");
    assert_eq!(e.to_string(), "not a MIDI file (looks like text)");
}

#[test]
fn zero_tracks() {
    let e = err(&header(1, 0, 480));
    assert!(matches!(e, MidiError::NoTracks), "{e:?}");
    assert_eq!(e.to_string(), "no tracks");
    // Declares a track, but only a foreign chunk follows.
    let mut raw = header(1, 1, 480);
    raw.extend_from_slice(b"XFIH\0\0\0\x02ab");
    let e = err(&raw);
    assert!(matches!(e, MidiError::Truncated(_)), "{e:?}");
    assert!(e.to_string().contains("declares 1 track"), "{e}");
}

#[test]
fn smpte_time_division() {
    // -25 fps, 40 subframes per frame.
    let raw = smf(1, 0xe728, &[note(0, 100, 60)]);
    let e = err(&raw);
    assert!(matches!(e, MidiError::Unsupported(_)), "{e:?}");
    assert!(e.to_string().contains("SMPTE"), "{e}");
    assert!(e.to_string().contains("25 fps"), "{e}");
}

#[test]
fn zero_ticks_per_beat() {
    let e = err(&smf(1, 0, &[note(0, 100, 60)]));
    assert!(matches!(e, MidiError::Malformed(_)), "{e:?}");
}

#[test]
fn format_2() {
    let raw = smf(2, 480, &[note(0, 100, 60), note(0, 100, 62)]);
    let e = err(&raw);
    assert!(matches!(e, MidiError::Unsupported(_)), "{e:?}");
    assert!(e.to_string().contains("format 2"), "{e}");
}

#[test]
fn huge_chunk_lengths() {
    // A header chunk that claims 4 GiB.
    let mut raw = header(1, 1, 480);
    raw[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
    raw.extend(track(&note(0, 10, 60)));
    let e = err(&raw);
    assert!(matches!(e, MidiError::TooLong(_)), "{e:?}");
    assert!(e.to_string().starts_with("absurd length: "), "{e}");

    // A track chunk that claims 4 GiB in a small file.
    let mut raw = smf(1, 480, &[note(0, 10, 60)]);
    raw[18..22].copy_from_slice(&0xffff_fff0u32.to_be_bytes());
    let e = err(&raw);
    assert!(matches!(e, MidiError::TooLong(_)), "{e:?}");
    assert!(e.to_string().contains("declares 4294967280 bytes"), "{e}");
}

/// Delta times summing past 2^32 ticks fail in the parse; a single huge gap (parsed: nothing
/// is sized by ticks) fails in the conversion with "absurd length" before anything is
/// allocated, on both grids, fast.
#[test]
fn huge_delta_times_fail_fast() {
    let mut events = Vec::new();
    for _ in 0..20 {
        events.extend(note(0x0fff_ffff, 1, 60)); // the largest delta a VLQ can hold
    }
    let t0 = Instant::now();
    let e = err(&smf(1, 480, &[events]));
    assert!(matches!(e, MidiError::TooLong(_)), "{e:?}");
    assert!(e.to_string().contains("limit 4294967296"), "{e}");

    let raw = smf(
        1,
        96,
        &[[note(0, 10, 60), note(0x0fff_ffff, 10, 62)].concat()],
    );
    let score = midi::parse(&raw).unwrap();
    assert_eq!(score.max_tick, 0x0fff_ffff + 20);
    for opts in all_options() {
        let e = score_to_roll(&score, &opts).expect_err("a 2.8-million-beat roll");
        assert!(matches!(e, MidiError::TooLong(_)), "{:?}: {e:?}", opts.grid);
        assert!(e.to_string().starts_with("absurd length: "), "{e}");
    }
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
}

/// Real long files that pretty_midi refuses only for its per-tick array (music21's O'Neill
/// tunes: 10080 ticks per beat, ~1e7 ticks) are read.
#[test]
fn long_tick_counts_within_limits_are_read() {
    let raw = smf(
        1,
        10080,
        &[[note(0, 10080, 60), note(12_000_000, 10080, 62)].concat()],
    );
    let score = midi::parse(&raw).unwrap();
    assert_eq!(score.note_count(), 2);
    let r = score_to_roll(&score, &RollOptions::beats(4)).unwrap();
    assert!(r.roll.frames() > 4000);
}

/// Many long notes piled on one pitch (a crafted file) convert in bounded time.
#[test]
fn pathological_overlaps_do_not_hang() {
    let mut events = Vec::new();
    for i in 0..20_000u32 {
        events.extend(vlq(0));
        events.extend_from_slice(&[0x90, 60, (i % 127 + 1) as u8]);
    }
    for i in 0..20_000u32 {
        events.extend(vlq(if i == 0 { 480 * 4 * 500 } else { 0 })); // 500 bars later
        events.extend_from_slice(&[0x80, 60, 0]);
    }
    let score = midi::parse(&smf(1, 480, &[events])).unwrap();
    let t0 = Instant::now();
    for opts in all_options() {
        let r = score_to_roll(&score, &opts).unwrap();
        // The loudest note wins wherever the pile sounds.
        let loud = r.roll.row(60).iter().filter(|&&v| v == 255).count();
        assert!(loud >= 7000, "{:?}: {loud} frames", opts.grid);
        assert!(r.roll.row(60).iter().all(|&v| v == 0 || v == 255));
    }
    assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
}

#[test]
fn read_file_names_the_file_and_the_cause() {
    let dir = std::env::temp_dir().join(format!("jit-music-bad-input-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("notes.mid");
    std::fs::write(&path, b"hello").unwrap();
    let e = midi::read_file(&path).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("notes.mid"), "{msg}");
    assert!(msg.ends_with("not a MIDI file (looks like text)"), "{msg}");
    assert_eq!(e.path, path);

    let missing = dir.join("missing.mid");
    let e = midi::read_file(&missing).unwrap_err();
    assert!(matches!(e.source, MidiError::Io(_)), "{e:?}");
    assert!(e.to_string().contains("missing.mid: cannot read: "), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

// ---------------------------------------------------------------------------------------------
// Properties: nothing panics, whatever the bytes.

fn all_options() -> Vec<RollOptions> {
    vec![
        RollOptions::pretty_midi(16),
        RollOptions::for_grid(Grid::Seconds { fps: 16 }, true),
        RollOptions::beats(4),
        RollOptions::for_grid(Grid::Beats { steps_per_beat: 4 }, false),
        RollOptions {
            downbeats: Some(vec![0.5, 2.5, 4.5, 1e9, -3.0, f64::NAN]),
            ..RollOptions::beats(4)
        },
    ]
}

/// The whole path. Errors are fine; a panic fails the property. What we write must read back.
fn run_pipeline(raw: &[u8]) {
    let Ok(score) = midi::parse(raw) else {
        return;
    };
    let _ = score.duration_seconds();
    for opts in all_options() {
        let Ok(sr) = score_to_roll(&score, &opts) else {
            continue;
        };
        assert!(sr.roll.frames() <= MAX_FRAMES);
        assert!(sr.downbeats.iter().all(|&d| d < sr.roll.frames().max(1)));
        let notes = roll_to_notes(&sr.roll, 0.5, Velocity::Learned);
        assert!(notes
            .iter()
            .all(|n| n.start < n.end && n.end <= sr.roll.frames()));
        // Keep the re-export small enough for a debug build.
        let crop = sr.roll.crop(0, sr.roll.frames().min(2048));
        let bytes = export::roll_to_smf(&crop, &ExportSpec::new(opts.grid));
        midi::parse(&bytes).expect("our own MIDI must read back");
    }
}

/// Small real files to mutate (the wild set) plus one POP909 song.
fn corpus() -> &'static Vec<Vec<u8>> {
    static FILES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    FILES.get_or_init(|| {
        let mut files: Vec<Vec<u8>> = midi::find_midi_files(&common::fixture("midi/wild"))
            .unwrap()
            .iter()
            .map(|p| std::fs::read(p).unwrap())
            .filter(|b| b.len() < 40_000)
            .collect();
        files.push(real_file());
        files
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(usize, u8),
    SetByte(usize, u8),
    Truncate(usize),
    /// Copy `len` bytes from another file at `from` over position `at`.
    Splice {
        other: usize,
        from: usize,
        len: usize,
        at: usize,
    },
    /// Insert bytes at a position.
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), 0u8..8).prop_map(|(p, b)| Mutation::FlipBit(p, b)),
        3 => (any::<usize>(), any::<u8>()).prop_map(|(p, v)| Mutation::SetByte(p, v)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        1 => (any::<usize>(), any::<usize>(), 1usize..512, any::<usize>())
            .prop_map(|(other, from, len, at)| Mutation::Splice { other, from, len, at }),
        1 => (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(p, b)| Mutation::Insert(p, b)),
        1 => (any::<usize>(), 1usize..64).prop_map(|(p, n)| Mutation::Delete(p, n)),
    ]
}

fn apply(raw: &mut Vec<u8>, m: &Mutation) {
    if raw.is_empty() {
        return;
    }
    let n = raw.len();
    match *m {
        Mutation::FlipBit(p, b) => raw[p % n] ^= 1 << b,
        Mutation::SetByte(p, v) => raw[p % n] = v,
        Mutation::Truncate(p) => raw.truncate(p % n),
        Mutation::Splice {
            other,
            from,
            len,
            at,
        } => {
            let files = corpus();
            let src = &files[other % files.len()];
            let from = from % src.len();
            let len = len.min(src.len() - from);
            let at = at % n;
            let end = (at + len).min(n);
            raw.splice(at..end, src[from..from + len].iter().copied());
        }
        Mutation::Insert(p, ref b) => {
            let p = p % (n + 1);
            raw.splice(p..p, b.iter().copied());
        }
        Mutation::Delete(p, k) => {
            let p = p % n;
            raw.drain(p..(p + k).min(n));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(raw in prop::collection::vec(any::<u8>(), 0..2048)) {
        run_pipeline(&raw);
    }

    /// A valid header and track chunk around arbitrary event bytes reaches the event parser
    /// and the converters.
    #[test]
    fn arbitrary_events_never_panic(
        format in 0u16..3,
        division in prop_oneof![Just(480u16), Just(96u16), Just(1u16), Just(0x7fffu16), any::<u16>()],
        body in prop::collection::vec(any::<u8>(), 0..1024),
    ) {
        let mut raw = header(format, 1, division);
        raw.extend_from_slice(b"MTrk");
        raw.extend_from_slice(&(body.len() as u32).to_be_bytes());
        raw.extend_from_slice(&body);
        run_pipeline(&raw);
    }
}

/// Make a mutated file structurally plausible again, so that the mutation reaches the event
/// parser and the converters: each MTrk chunk's length is cut to what remains of the file, and
/// the header declares the tracks that are there.
fn repair_chunks(raw: &mut [u8]) {
    if raw.len() < 14 || &raw[..4] != b"MThd" {
        return;
    }
    raw[4..8].copy_from_slice(&6u32.to_be_bytes());
    let mut pos = 14usize;
    let mut tracks = 0u16;
    while pos + 8 <= raw.len() {
        let declared = u32::from_be_bytes(raw[pos + 4..pos + 8].try_into().unwrap()) as usize;
        let len = declared.min(raw.len() - pos - 8);
        raw[pos + 4..pos + 8].copy_from_slice(&(len as u32).to_be_bytes());
        if &raw[pos..pos + 4] == b"MTrk" {
            tracks += 1;
        }
        pos += 8 + len;
    }
    raw[10..12].copy_from_slice(&tracks.max(1).to_be_bytes());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn mutated_real_files_never_panic(
        which in any::<usize>(),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let files = corpus();
        let mut raw = files[which % files.len()].clone();
        for m in &mutations {
            apply(&mut raw, m);
        }
        run_pipeline(&raw);
    }

    /// The same with chunk lengths repaired afterwards, so that most mutants parse and the
    /// mutated events (status bytes, deltas, tempos, running status) reach the converters.
    #[test]
    fn mutated_and_repaired_real_files_never_panic(
        which in any::<usize>(),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let files = corpus();
        let mut raw = files[which % files.len()].clone();
        for m in &mutations {
            apply(&mut raw, m);
        }
        repair_chunks(&mut raw);
        run_pipeline(&raw);
    }
}
