//! The whole shared corpus (`JIT_MUSIC_DATA`, i.e. `../shared/data`: POP909, music21, the wild
//! files; ~13k files): every file is parsed and converted on both grids in parallel, each inside
//! `catch_unwind`. Zero panics are allowed; failures are counted by reason and printed.
//!
//! ```text
//! JIT_MUSIC_DATA=../shared/data cargo test --test corpus -- --ignored --nocapture
//! ```
//!
//! The corpus test is `#[ignore]`d with its reason, so a plain `cargo test` lists it as ignored
//! instead of passing without running; `.ci/run` runs it with the corpus. The fixture tests below
//! always run.

mod common;

use jit_music::midi::{self, MidiError};
use jit_music::roll::{
    pretty_midi_roll, read_pop909_downbeats, score_to_roll, velocity_to_u8, RollOptions,
};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What happened to one file.
enum Outcome {
    Ok { frames: (usize, usize) },
    Failed(String),
    Panicked(String),
}

/// The error's kind and message with numbers blanked, so that failures group by reason.
fn reason(stage: &str, e: &MidiError) -> String {
    let msg: String = e
        .to_string()
        .chars()
        .map(|c| if c.is_ascii_digit() { '#' } else { c })
        .collect();
    let mut out = String::new();
    let mut last = '\0';
    for c in msg.chars() {
        if !(c == '#' && last == '#') {
            out.push(c);
        }
        last = c;
    }
    format!("{stage}: {out}")
}

/// Parse and convert one file on both grids; `check_fast` also compares the seconds grid with
/// pretty_midi's raw roll (the slow, bit-exact reference).
fn process(path: &Path, check_fast: bool) -> Outcome {
    let raw = match std::fs::read(path) {
        Ok(r) => r,
        Err(e) => return Outcome::Failed(format!("read: {e}")),
    };
    let score = match midi::parse(&raw) {
        Ok(s) => s,
        Err(e) => return Outcome::Failed(reason("parse", &e)),
    };
    let seconds = match score_to_roll(&score, &RollOptions::pretty_midi(16)) {
        Ok(r) => r,
        Err(e) => return Outcome::Failed(reason("seconds grid", &e)),
    };
    if check_fast {
        let (frames, raw) = pretty_midi_roll(&score, 16).expect("the fast path succeeded");
        assert_eq!(frames, seconds.roll.frames(), "{}", path.display());
        for (i, (&v, &u)) in raw.iter().zip(seconds.roll.data()).enumerate() {
            assert_eq!(velocity_to_u8(v), u, "{} cell {i}", path.display());
        }
    }
    let opts = RollOptions {
        downbeats: read_pop909_downbeats(path),
        ..RollOptions::beats(4)
    };
    let beats = match score_to_roll(&score, &opts) {
        Ok(r) => r,
        Err(e) => return Outcome::Failed(reason("beats grid", &e)),
    };
    Outcome::Ok {
        frames: (seconds.roll.frames(), beats.roll.frames()),
    }
}

fn run(files: &[PathBuf], check_every: usize) -> Vec<(PathBuf, Outcome)> {
    files
        .par_iter()
        .enumerate()
        .map(|(i, p)| {
            let check = check_every > 0 && i % check_every == 0;
            let out = catch_unwind(AssertUnwindSafe(|| process(p, check))).unwrap_or_else(|e| {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "non-string panic".into());
                Outcome::Panicked(msg)
            });
            (p.clone(), out)
        })
        .collect()
}

/// Prints the summary; returns (ok, failures by reason, panics).
fn summarise(results: &[(PathBuf, Outcome)]) -> (usize, BTreeMap<String, Vec<PathBuf>>, usize) {
    let mut ok = 0;
    let mut failures: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    let mut panics = 0;
    let (mut sec_frames, mut beat_frames) = (0usize, 0usize);
    for (p, o) in results {
        match o {
            Outcome::Ok { frames } => {
                ok += 1;
                sec_frames += frames.0;
                beat_frames += frames.1;
            }
            Outcome::Failed(r) => failures.entry(r.clone()).or_default().push(p.clone()),
            Outcome::Panicked(m) => {
                panics += 1;
                println!("PANIC {}: {m}", p.display());
            }
        }
    }
    println!(
        "{} files: {ok} converted ({sec_frames} frames at 16 fps, {beat_frames} beats-grid frames), {} failed, {panics} panicked",
        results.len(),
        failures.values().map(Vec::len).sum::<usize>()
    );
    for (r, ps) in &failures {
        println!("  {:5}  {r}   e.g. {}", ps.len(), ps[0].display());
    }
    (ok, failures, panics)
}

// Ignored only because it needs the corpus, which a fresh clone lacks: `.ci/run` sets
// JIT_MUSIC_DATA and runs it with `-- --ignored`, so it never goes unrun in CI.
#[test]
#[ignore = "needs JIT_MUSIC_DATA (the corpus); .ci/run runs them"]
fn whole_corpus_converts_without_panics() {
    let dir = common::corpus()
        .expect("JIT_MUSIC_DATA must name the corpus folder (../shared/data) for this test");
    let t0 = Instant::now();
    let files = midi::find_midi_files(&dir).expect("list the corpus");
    assert!(!files.is_empty(), "no MIDI files under {}", dir.display());
    // Every 64th file is also checked against the slow bit-exact seconds path.
    let results = run(&files, 64);
    let (ok, _failures, panics) = summarise(&results);
    println!(
        "corpus: {:.1} s on {} threads",
        t0.elapsed().as_secs_f64(),
        rayon::current_num_threads()
    );
    assert_eq!(panics, 0, "panics while converting the corpus");
    // The corpus is real music: nearly everything must convert.
    assert!(
        ok * 100 >= files.len() * 99,
        "only {ok} of {} files converted",
        files.len()
    );
}

/// The committed fixtures (33 real files) always convert, and the fast u8 seconds path agrees
/// with pretty_midi's raw roll on every cell.
#[test]
fn fixtures_convert_and_fast_seconds_path_is_exact() {
    let mut files = midi::find_midi_files(&common::fixture("midi")).unwrap();
    files.sort();
    assert_eq!(files.len(), 33);
    let results = run(&files, 1);
    let (ok, failures, panics) = summarise(&results);
    assert_eq!(panics, 0);
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(ok, 33);
}

/// The beats grid on the 12 committed POP909 songs, pinned per file: onsets exactly on a frame
/// (piecewise phase), phase sections, bar length and bar phase from the annotation
/// (`beat_midi.txt`), and the bar phase estimated without it. All 819 songs:
/// `cargo run --release --no-default-features --example pop909_alignment`.
#[test]
fn pop909_fixture_alignment_is_pinned() {
    // (song, onsets, exactly on a frame, phase sections, frames per bar (annotated),
    //  annotated bar phase, estimated bar phase). With one phase per file 094 has 1178 exact
    //  (83.3%) and 099 has 1781 (93.4%).
    #[rustfmt::skip]
    let pinned: [(&str, usize, usize, usize, usize, i64, i64); 12] = [
        ("091", 1393, 1392, 1, 16, 2, 10),
        ("092", 1272, 799, 1, 16, 2, 2), // triplet feel: residues 15, 55, 95 (1/12 beat)
        ("093", 1296, 1251, 1, 16, 3, 3),
        ("094", 1414, 1290, 5, 16, 5, 13), // phase shifts between sections
        ("095", 2186, 1994, 1, 16, 3, 3),
        ("096", 2366, 2197, 1, 16, 10, 10),
        ("097", 1691, 1458, 1, 16, 8, 8),
        ("098", 175, 175, 1, 16, 14, 14),
        ("099", 1907, 1842, 2, 16, 10, 10),
        ("100", 1835, 1310, 1, 16, 9, 9),
        ("101", 1727, 1540, 1, 16, 8, 8),
        ("102", 1666, 1646, 1, 24, 9, 13), // downbeats annotated every 6 beats
    ];
    let (mut onsets, mut exact) = (0, 0);
    for (song, n_onsets, n_exact, sections, fpb, ann_phase, est_phase) in pinned {
        let path = common::fixture(&format!("midi/pop909/{song}/{song}.mid"));
        let score = midi::read_file(&path).unwrap();
        let downbeats = read_pop909_downbeats(&path).expect("beat_midi.txt");
        let est = score_to_roll(&score, &RollOptions::beats(4)).unwrap();
        let ann = score_to_roll(
            &score,
            &RollOptions {
                downbeats: Some(downbeats.clone()),
                ..RollOptions::beats(4)
            },
        )
        .unwrap();
        let (a, e) = (
            ann.alignment.clone().unwrap(),
            est.alignment.clone().unwrap(),
        );
        let got = (
            a.onsets,
            a.onsets_on_grid,
            a.phase_segments.len(),
            a.frames_per_bar,
            a.origin.rem_euclid(a.frames_per_bar as i64),
            e.origin.rem_euclid(e.frames_per_bar as i64),
        );
        assert_eq!(
            got,
            (n_onsets, n_exact, sections, fpb, ann_phase, est_phase),
            "{song}"
        );
        onsets += n_onsets;
        exact += n_exact;
        // The phase map does not depend on the annotation.
        assert_eq!(a.phase_segments, e.phase_segments, "{song}");
        assert!(a.downbeats_annotated && !e.downbeats_annotated);
        // Every POP909 file declares 1/4; the bar is never one beat.
        assert_eq!(e.frames_per_bar, 16, "{song}");

        // Crops can start on downbeats: every annotated downbeat inside the roll is a bar
        // start, bar starts ascend, and frame 0 is on the annotation's bar grid.
        let starts = ann.bar_starts();
        assert!(starts.windows(2).all(|w| w[0] < w[1]), "{song}");
        assert!(starts.iter().all(|&f| f < ann.roll.frames()));
        assert!(!ann.downbeats.is_empty());
        for d in &ann.downbeats {
            assert!(starts.binary_search(d).is_ok(), "{song}: downbeat {d}");
        }
        assert!(
            ann.downbeats.len() * 10 >= downbeats.len() * 9,
            "{song}: downbeats lost"
        );
        // Without annotation, bar starts are every bar from frame 0.
        let est_starts = est.bar_starts();
        assert_eq!(est_starts[0], 0);
        assert!(est_starts.windows(2).all(|w| w[1] - w[0] == 16));
        // Onsets keep their order through the (piecewise) grid: same notes, same roll length
        // whichever bar phase.
        assert_eq!(
            est.roll.frames() as i64 + e.origin,
            ann.roll.frames() as i64 + a.origin,
            "{song}"
        );
    }
    // 89.26% of the 18928 onsets (88.35% with one phase per file).
    assert_eq!((onsets, exact), (18928, 16894));
}
