//! Corrupted copies of real windows: the calibration floor. Each keeps some of real music's
//! statistics and destroys some structure, so its scores show which features can see what.
//!
//! * [`shuffle_notes`]: onsets and pitches permuted among the window's notes. Keeps every
//!   marginal of the note statistics (count, range, pitch classes, durations, onset grid) and
//!   destroys chords, voices and repetition.
//! * [`splice_bars`]: every bar from a different song. Keeps each bar intact (chords, local
//!   melody), destroys continuity: key, repetition, harmonic rhythm across bars.
//! * [`random_notes`]: as many notes as the window, onsets uniform on the grid, pitches uniform
//!   over its range, durations drawn from its own. Note soup with plausible density.

use super::{compare, feature_table, BaselineReport, FeatureSet, Window};
use crate::roll::RollNote;
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};

/// Permute onsets among the notes and, independently, pitches among the notes. Each note keeps
/// its duration (clipped at the window's end).
pub fn shuffle_notes(w: &Window, rng: &mut StdRng) -> Window {
    let mut starts: Vec<usize> = w.notes.iter().map(|n| n.start).collect();
    let mut pitches: Vec<u8> = w.notes.iter().map(|n| n.pitch).collect();
    starts.shuffle(rng);
    pitches.shuffle(rng);
    let notes = w
        .notes
        .iter()
        .zip(starts.iter().zip(&pitches))
        .map(|(n, (&start, &pitch))| RollNote {
            pitch,
            start,
            end: start + n.end.saturating_sub(n.start),
            velocity: n.velocity,
        })
        .collect();
    let mut out = Window::new(notes, w.steps_per_beat, w.frames_per_bar, w.bars);
    out.source = w.source;
    out
}

/// One window per input window, each bar taken from a random window of the pool (same bar
/// length) whose song differs from the previous bar's. Windows of a pool with a single song
/// stay as they are.
pub fn splice_bars(pool: &[Window], rng: &mut StdRng) -> Vec<Window> {
    pool.iter()
        .map(|w| {
            let same_meter: Vec<&Window> = pool
                .iter()
                .filter(|x| x.frames_per_bar == w.frames_per_bar)
                .collect();
            let mut notes = Vec::new();
            let mut last_file = None;
            for b in 0..w.bars {
                // Rejection sampling: a few draws find another song unless there is none.
                let src = (0..64)
                    .filter_map(|_| same_meter.choose(rng).copied())
                    .find(|x| Some(x.source.file) != last_file);
                let Some(src) = src else {
                    return w.clone();
                };
                last_file = Some(src.source.file);
                let from = rng.random_range(0..src.bars.max(1));
                let off = b * w.frames_per_bar;
                // Window::new drops what falls outside, whatever the source's bar length.
                notes.extend(src.bar_notes(from).map(|n| RollNote {
                    start: n.start + off,
                    end: n.end + off,
                    ..n
                }));
            }
            let mut out = Window::new(notes, w.steps_per_beat, w.frames_per_bar, w.bars);
            out.source = w.source;
            out
        })
        .collect()
}

/// As many notes as `w`, onsets uniform over the window's frames, pitches uniform over its
/// pitch range, durations drawn from its notes' durations.
pub fn random_notes(w: &Window, rng: &mut StdRng) -> Window {
    let lo = w.notes.iter().map(|n| n.pitch).min().unwrap_or(48);
    let hi = w.notes.iter().map(|n| n.pitch).max().unwrap_or(72);
    let lens: Vec<usize> = w
        .notes
        .iter()
        .map(|n| n.end.saturating_sub(n.start))
        .collect();
    let frames = w.frames().max(1);
    let notes = (0..w.notes.len())
        .map(|_| {
            let start = rng.random_range(0..frames);
            let len = lens.choose(rng).copied().unwrap_or(1).max(1);
            RollNote {
                pitch: rng.random_range(lo..=hi),
                start,
                end: start + len,
                velocity: 100,
            }
        })
        .collect();
    let mut out = Window::new(notes, w.steps_per_beat, w.frames_per_bar, w.bars);
    out.source = w.source;
    out
}

/// The three corruptions of `windows`, deterministic for `seed`: `(name, description, windows)`.
pub fn corrupted_sets(
    windows: &[Window],
    seed: u64,
) -> Vec<(&'static str, &'static str, Vec<Window>)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let shuffled = windows.iter().map(|w| shuffle_notes(w, &mut rng)).collect();
    let spliced = splice_bars(windows, &mut rng);
    let random = windows.iter().map(|w| random_notes(w, &mut rng)).collect();
    vec![
        (
            "shuffled notes",
            "real windows with onsets and pitches permuted among their notes",
            shuffled,
        ),
        (
            "spliced bars",
            "each bar from a different real song",
            spliced,
        ),
        (
            "random notes",
            "same note count, uniform onsets and pitches, real durations",
            random,
        ),
    ]
}

/// Score the corruptions of `windows` against a reference table.
pub fn baselines(windows: &[Window], reference: &[FeatureSet], seed: u64) -> Vec<BaselineReport> {
    corrupted_sets(windows, seed)
        .into_iter()
        .map(|(name, description, set)| BaselineReport {
            name: name.to_string(),
            description: format!("{description} ({} windows)", set.len()),
            comparison: compare(&feature_table(&set), reference),
        })
        .collect()
}
