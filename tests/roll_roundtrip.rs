//! Round trips through MIDI, as properties over random note sets:
//!
//! * beats grid, articulation on: notes -> MIDI (`export::notes_to_smf`) -> parse -> roll ->
//!   notes gives the notes back (velocity fixed), a re-struck pitch with its one-frame gap;
//! * roll -> MIDI -> roll is stable (the second trip changes nothing);
//! * the seconds grid at 16 fps, written at 120 BPM, the same;
//! * the fast u8 seconds path equals pretty_midi's raw roll on random multi-track files with
//!   sustain pedal, tempo changes, chords and piles of overlapping notes.

use jit_music::export::{self, ExportSpec};
use jit_music::midi;
use jit_music::roll::{
    notes_to_roll, pretty_midi_roll, roll_to_notes, roll_to_notes_split, score_to_roll,
    velocity_to_u8, Grid, PianoRoll, RollNote, RollOptions, Velocity,
};
use midly::num::{u15, u24, u28, u4, u7};
use midly::{Format, Header, MetaMessage, MidiMessage, Smf, Timing, TrackEvent, TrackEventKind};
use proptest::prelude::*;
use std::collections::BTreeMap;

const BEATS: Grid = Grid::Beats { steps_per_beat: 4 };
const SECONDS: Grid = Grid::Seconds { fps: 16 };

/// Random notes: per pitch a sequence of (gap, length) so that notes of one pitch never
/// overlap; a gap of 0 is a re-strike (the next note starts where the previous ends).
fn note_set(max_frames: usize) -> impl Strategy<Value = Vec<RollNote>> {
    prop::collection::btree_map(
        21u8..109,
        prop::collection::vec((0usize..12, 1usize..20, 64u8..=127), 1..8),
        1..12,
    )
    .prop_map(move |per_pitch| {
        let mut notes = Vec::new();
        for (pitch, seq) in per_pitch {
            let mut t = 0usize;
            for (gap, len, velocity) in seq {
                let start = t + gap;
                let end = (start + len).min(max_frames);
                if end <= start {
                    break;
                }
                notes.push(RollNote {
                    pitch,
                    start,
                    end,
                    velocity,
                });
                t = end;
            }
        }
        notes
    })
}

/// What the grid makes of `notes` with articulation on: a note followed at once by a re-strike
/// of its pitch ends one frame early when it keeps at least a frame; a one-frame note that is
/// re-struck at once merges with the next run (nothing can separate them).
fn articulated(notes: &[RollNote], velocity: u8) -> Vec<RollNote> {
    let mut by_pitch: BTreeMap<u8, Vec<RollNote>> = BTreeMap::new();
    for n in notes {
        by_pitch.entry(n.pitch).or_default().push(*n);
    }
    let mut out = Vec::new();
    for (_, mut ns) in by_pitch {
        ns.sort_by_key(|n| n.start);
        for i in 0..ns.len() {
            if let Some(next) = ns.get(i + 1).copied() {
                if next.start <= ns[i].end && next.start - 1 > ns[i].start {
                    ns[i].end = next.start - 1;
                }
            }
        }
        // Runs that still touch merge in the roll.
        let mut merged: Vec<RollNote> = Vec::new();
        for n in ns {
            match merged.last_mut() {
                Some(m) if n.start <= m.end => m.end = m.end.max(n.end),
                _ => merged.push(n),
            }
        }
        out.extend(merged);
    }
    for n in &mut out {
        n.velocity = velocity;
    }
    out.sort();
    out
}

fn sorted(mut v: Vec<RollNote>) -> Vec<RollNote> {
    v.sort();
    v
}

/// Write, parse and convert on `grid` with articulation; frame 0 is a bar line at tick 0 (a
/// generated file is annotated with a downbeat at 0 s, as evaluation does).
fn through_midi(notes: &[RollNote], grid: Grid) -> PianoRoll {
    let spec = ExportSpec::new(grid);
    let bytes = export::notes_to_smf(notes, &spec);
    let score = midi::parse(&bytes).expect("our MIDI parses");
    let opts = RollOptions {
        downbeats: Some(vec![0.0]),
        ..RollOptions::for_grid(grid, true)
    };
    score_to_roll(&score, &opts).expect("converts").roll
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn beats_grid_notes_round_trip(notes in note_set(512)) {
        let roll = through_midi(&notes, BEATS);
        let back = sorted(roll_to_notes(&roll, 0.5, Velocity::Fixed(100)));
        prop_assert_eq!(back, articulated(&notes, 100));
    }

    #[test]
    fn seconds_grid_notes_round_trip(notes in note_set(512)) {
        let roll = through_midi(&notes, SECONDS);
        let back = sorted(roll_to_notes(&roll, 0.5, Velocity::Fixed(100)));
        prop_assert_eq!(back, articulated(&notes, 100));
    }

    /// A roll (any intensities) -> MIDI -> roll keeps every note run, and a second trip
    /// reproduces the first exactly.
    #[test]
    fn roll_midi_roll_is_stable(
        notes in note_set(256),
        noise in prop::collection::vec((0usize..128, 0usize..256, 1u8..=255), 0..64),
        grid in prop_oneof![Just(BEATS), Just(SECONDS)],
    ) {
        let mut roll = notes_to_roll(&notes, 256);
        for (p, f, v) in noise {
            roll.set(p, f, v);
        }
        let spec = ExportSpec {
            velocity: Velocity::Learned,
            ..ExportSpec::new(grid)
        };
        let once = through_midi(&roll_to_notes(&roll, 0.5, Velocity::Learned), grid);
        let runs = |r: &PianoRoll| -> Vec<(u8, usize, usize)> {
            roll_to_notes(r, 0.5, Velocity::Fixed(100))
                .iter()
                .map(|n| (n.pitch, n.start, n.end))
                .collect()
        };
        prop_assert_eq!(runs(&once), runs(&roll));
        let bytes = export::roll_to_smf(&once, &spec);
        let score = midi::parse(&bytes).unwrap();
        let twice = score_to_roll(&score, &RollOptions {
            downbeats: Some(vec![0.0]),
            ..RollOptions::for_grid(grid, true)
        })
        .unwrap()
        .roll;
        prop_assert_eq!(twice, once);
    }
}

#[test]
fn restrike_keeps_a_one_frame_gap() {
    let n = |start, end| RollNote {
        pitch: 60,
        start,
        end,
        velocity: 100,
    };
    // 4 frames, re-struck at once for 4 more; a one-frame note re-struck at once.
    let notes = vec![n(0, 4), n(4, 8), n(10, 11), n(11, 13)];
    for grid in [BEATS, SECONDS] {
        let roll = through_midi(&notes, grid);
        let back = sorted(roll_to_notes(&roll, 0.5, Velocity::Fixed(100)));
        assert_eq!(back, vec![n(0, 3), n(4, 8), n(10, 13)], "{grid:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// The fast seconds path against pretty_midi's raw roll.

#[derive(Debug, Clone)]
enum Ev {
    Note {
        ch: u8,
        pitch: u8,
        vel: u8,
        len: u32,
    },
    Pedal {
        ch: u8,
        down: bool,
    },
    Program {
        ch: u8,
        program: u8,
    },
    Tempo(u32),
}

fn event() -> impl Strategy<Value = Ev> {
    prop_oneof![
        8 => (0u8..4, 40u8..80, 1u8..=127, 0u32..2000)
            .prop_map(|(ch, pitch, vel, len)| Ev::Note { ch, pitch, vel, len }),
        2 => (0u8..4, any::<bool>()).prop_map(|(ch, down)| Ev::Pedal { ch, down }),
        1 => (0u8..4, 0u8..3).prop_map(|(ch, program)| Ev::Program { ch, program }),
        1 => (200_000u32..1_500_000).prop_map(Ev::Tempo),
    ]
}

/// A multi-track file from `(track, delta, event)`; notes become on/off pairs.
fn build(ppq: u16, events: &[(usize, u32, Ev)]) -> Vec<u8> {
    let mut abs: Vec<Vec<(u64, u8, TrackEventKind<'static>)>> = vec![Vec::new(); 3];
    let mut now = [0u64; 3];
    for (order, (track, delta, ev)) in events.iter().enumerate() {
        let t = &mut now[*track];
        *t += u64::from(*delta);
        let o = (order % 200) as u8;
        let midi = |ch: u8, message| TrackEventKind::Midi {
            channel: u4::new(ch),
            message,
        };
        match *ev {
            Ev::Note {
                ch,
                pitch,
                vel,
                len,
            } => {
                abs[*track].push((
                    *t,
                    o,
                    midi(
                        ch,
                        MidiMessage::NoteOn {
                            key: u7::new(pitch),
                            vel: u7::new(vel),
                        },
                    ),
                ));
                abs[*track].push((
                    *t + u64::from(len),
                    o,
                    midi(
                        ch,
                        MidiMessage::NoteOff {
                            key: u7::new(pitch),
                            vel: u7::new(0),
                        },
                    ),
                ));
            }
            Ev::Pedal { ch, down } => abs[*track].push((
                *t,
                o,
                midi(
                    ch,
                    MidiMessage::Controller {
                        controller: u7::new(64),
                        value: u7::new(if down { 127 } else { 0 }),
                    },
                ),
            )),
            Ev::Program { ch, program } => abs[*track].push((
                *t,
                o,
                midi(
                    ch,
                    MidiMessage::ProgramChange {
                        program: u7::new(program),
                    },
                ),
            )),
            Ev::Tempo(us) => abs[0].push((
                *t,
                o,
                TrackEventKind::Meta(MetaMessage::Tempo(u24::new(us))),
            )),
        }
    }
    let tracks: Vec<Vec<TrackEvent<'static>>> = abs
        .into_iter()
        .map(|mut evs| {
            evs.sort_by_key(|e| (e.0, e.1));
            let mut last = 0;
            let mut out: Vec<TrackEvent> = evs
                .into_iter()
                .map(|(t, _, kind)| {
                    let d = (t - last) as u32;
                    last = t;
                    TrackEvent {
                        delta: u28::new(d),
                        kind,
                    }
                })
                .collect();
            out.push(TrackEvent {
                delta: u28::new(0),
                kind: TrackEventKind::Meta(MetaMessage::EndOfTrack),
            });
            out
        })
        .collect();
    let smf = Smf {
        header: Header::new(Format::Parallel, Timing::Metrical(u15::new(ppq))),
        tracks,
    };
    let mut bytes = Vec::new();
    smf.write_std(&mut bytes).unwrap();
    bytes
}

fn assert_fast_matches_raw(bytes: &[u8]) {
    let score = midi::parse(bytes).unwrap();
    let fast = score_to_roll(&score, &RollOptions::pretty_midi(16))
        .unwrap()
        .roll;
    let (frames, raw) = pretty_midi_roll(&score, 16).unwrap();
    assert_eq!(fast.frames(), frames);
    for (i, (&v, &u)) in raw.iter().zip(fast.data()).enumerate() {
        assert_eq!(
            velocity_to_u8(v),
            u,
            "cell {i} (pitch {}, frame {})",
            i / frames.max(1),
            i % frames.max(1)
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn fast_seconds_path_equals_pretty_midi(
        ppq in prop_oneof![Just(96u16), Just(480u16), Just(1000u16)],
        events in prop::collection::vec((0usize..3, 0u32..600, event()), 1..120),
    ) {
        assert_fast_matches_raw(&build(ppq, &events));
    }
}

/// A pile of loud overlapping notes on few pitches (sums far past 127, the prefix-sum path),
/// under pedal.
#[test]
fn fast_seconds_path_equals_pretty_midi_on_piles() {
    let mut events = vec![(1usize, 0u32, Ev::Pedal { ch: 0, down: true })];
    for i in 0..4000u32 {
        // Channel 1 (no pedal): 3000 long notes on two pitches, far more cells than 4x its
        // roll; channel 0 (pedalled): loud chords summing past 255.
        let ch = u8::from(i % 4 != 0);
        events.push((
            1,
            u32::from(i % 50 == 0),
            Ev::Note {
                ch,
                pitch: 60 + (i % 2) as u8,
                vel: 1 + (i % 127) as u8,
                len: 3000,
            },
        ));
    }
    events.push((1, 10, Ev::Pedal { ch: 0, down: false }));
    assert_fast_matches_raw(&build(480, &events));
}

// ---------------------------------------------------------------------------------------------
// The beats grid's piecewise phase keeps onsets in order.

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Sections of 16ths shifted by different offsets (so that the grid switches phase), plus
    /// stray onsets: one note per pitch, so that each note is one run of the roll. Notes that
    /// start later never land on an earlier frame, and every note keeps at least one frame.
    #[test]
    fn beats_grid_keeps_onset_order(
        sections in prop::collection::vec((2u64..10, 0u64..120), 1..6),
        stray in prop::collection::vec(0u64..20_000, 0..10),
        lens in prop::collection::vec(1u64..600, 128),
    ) {
        // Onset ticks: the 16ths of each section at its offset, and a few strays; one note per
        // pitch (at most 128).
        let mut ticks = Vec::new();
        let mut beat = 0u64;
        for &(beats, offset) in &sections {
            for b in beat..beat + beats {
                for s in 0..4 {
                    ticks.push(b * 480 + s * 120 + offset);
                }
            }
            beat += beats;
        }
        ticks.extend(stray);
        ticks.sort_unstable();
        ticks.truncate(128);
        let notes: Vec<midi::WriteNote> = ticks
            .iter()
            .zip(&lens)
            .enumerate()
            .map(|(i, (&start, &len))| midi::WriteNote {
                pitch: i as u8,
                velocity: 100,
                start_tick: start,
                end_tick: start + len,
                channel: 0,
            })
            .collect();
        let bytes = midi::write_smf(&midi::MidiWriteSpec::default(), &notes);
        let score = midi::parse(&bytes).unwrap();
        let sr = score_to_roll(&score, &RollOptions::beats(4)).unwrap();
        let al = sr.alignment.clone().unwrap();
        let runs = roll_to_notes(&sr.roll, 0.5, Velocity::Fixed(100));
        prop_assert_eq!(runs.len(), notes.len());
        let frame_of: BTreeMap<u8, usize> = runs.iter().map(|r| (r.pitch, r.start)).collect();
        let frames: Vec<usize> = notes.iter().map(|n| frame_of[&n.pitch]).collect();
        for (w, n) in frames.windows(2).zip(notes.windows(2)) {
            if n[0].start_tick < n[1].start_tick {
                prop_assert!(w[0] <= w[1], "ticks {} < {} but frames {} > {}", n[0].start_tick, n[1].start_tick, w[0], w[1]);
            }
        }
        // Within a section whose phase was found, 16ths land one frame apart.
        prop_assert!(al.onsets_on_grid <= al.onsets);
    }
}

/// The order property above is not vacuous: many of its cases switch phase.
#[test]
fn onset_order_cases_switch_phase() {
    let cfg = ProptestConfig {
        cases: 64,
        ..ProptestConfig::default()
    };
    let mut runner = proptest::test_runner::TestRunner::new(cfg);
    let strategy = prop::collection::vec((2u64..10, 0u64..120), 2..6);
    let switched = std::cell::Cell::new(0usize);
    runner
        .run(&strategy, |sections| {
            let mut notes = Vec::new();
            let mut beat = 0u64;
            for &(beats, offset) in &sections {
                for b in beat..beat + beats {
                    for s in 0..4u64 {
                        let start = b * 480 + s * 120 + offset;
                        notes.push(midi::WriteNote {
                            pitch: 60 + (s as u8) * 2,
                            velocity: 100,
                            start_tick: start,
                            end_tick: start + 60,
                            channel: 0,
                        });
                    }
                }
                beat += beats;
            }
            let bytes = midi::write_smf(&midi::MidiWriteSpec::default(), &notes);
            let score = midi::parse(&bytes).unwrap();
            let sr = score_to_roll(&score, &RollOptions::beats(4)).unwrap();
            let al = sr.alignment.unwrap();
            switched.set(switched.get() + usize::from(al.phase_segments.len() > 1));
            // Sections long enough to pay for a switch are all exactly on the grid.
            let worth = sections.iter().all(|&(beats, _)| beats * 4 > 16 + 4);
            if worth {
                prop_assert_eq!(al.onsets_on_grid, al.onsets, "{:?}", sections);
            }
            Ok(())
        })
        .unwrap();
    let switched = switched.get();
    assert!(switched >= 16, "only {switched} of 64 cases switched phase");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The dip split only ever cuts the plain decoder's notes: every split note lies inside a
    /// plain note of its pitch, the parts of one note are disjoint and in order, and a roll of
    /// hard gaps (what real files make) decodes exactly as without it.
    #[test]
    fn dip_split_refines_the_plain_notes(
        cells in prop::collection::vec(0u8..=255, 4 * 64),
        threshold in 0.0f32..0.9,
        dip in 0.0f32..1.0,
        notes in note_set(64),
    ) {
        let mut roll = PianoRoll::new(64);
        for (i, &c) in cells.iter().enumerate() {
            roll.set(60 + i / 64, i % 64, c);
        }
        let plain = roll_to_notes(&roll, threshold, Velocity::Fixed(100));
        let split = roll_to_notes_split(&roll, threshold, dip, Velocity::Fixed(100));
        prop_assert!(split.len() >= plain.len());
        let mut prev: Option<RollNote> = None;
        for s in &split {
            prop_assert!(s.start < s.end);
            prop_assert!(plain
                .iter()
                .any(|p| p.pitch == s.pitch && p.start <= s.start && s.end <= p.end));
            if let Some(q) = prev.filter(|q| q.pitch == s.pitch) {
                prop_assert!(q.end < s.start, "{q:?} then {s:?}");
            }
            prev = Some(*s);
        }
        let hard = notes_to_roll(&articulated(&notes, 100), 64);
        prop_assert_eq!(
            roll_to_notes_split(&hard, 0.5, dip, Velocity::Fixed(100)),
            roll_to_notes(&hard, 0.5, Velocity::Fixed(100))
        );
    }
}
