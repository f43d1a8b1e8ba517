//! Where bars fall on the beats grid: the meter (annotations or time signature), the bar phase
//! estimated from onsets and harmonic change, and POP909's downbeat annotations.

use super::grid::MAX_FRAMES;
use crate::midi::Score;
use std::path::Path;

/// The bar length in beats and beat unit for the beats grid: annotated downbeats win (their
/// median spacing in quarter notes, 2..=12); else the time signature at tick 0, except that a
/// one-beat bar (`1/x`) is taken for 4/4: such signatures are export artefacts (570 of POP909's
/// 819 songs declare 1/4 over 4/4 music), and a one-beat "bar" would put a downbeat on every beat.
pub fn resolve_meter(score: &Score, downbeats: Option<&[f64]>) -> (u8, u32) {
    if let Some(db) = downbeats.filter(|d| d.len() >= 3) {
        let ppq = f64::from(score.ticks_per_beat.max(1));
        let mut gaps: Vec<f64> = db
            .windows(2)
            .map(|p| (score.tempo.time_to_tick(p[1]) - score.tempo.time_to_tick(p[0])) / ppq)
            .filter(|g| g.is_finite() && *g > 0.0)
            .collect();
        if !gaps.is_empty() {
            gaps.sort_by(f64::total_cmp);
            let beats = gaps[gaps.len() / 2].round();
            if (2.0..=12.0).contains(&beats) {
                return (beats as u8, 4);
            }
        }
    }
    match score.time_signature_at(0) {
        (n, _) if n < 2 => (4, 4),
        other => other,
    }
}

/// Estimate which frame (mod `frames_per_bar`) is the downbeat from `(frame, pitch, length)`
/// onsets. Two kinds of evidence, each normalised to its best phase: onsets (long notes and low
/// notes weigh more on downbeats, and the half-bar helps) and harmonic change (the pitch-class
/// content of the half bar after a frame against the half bar before it: chords change on
/// downbeats), the latter at half weight. On POP909 this agrees with the annotated bar phase in
/// 74.7% of the 819 songs (77.9% of those whose annotated bar length the time signature gives),
/// against 72.0% for onsets alone (`examples/pop909_alignment.rs`); weights from 0.25 to 3 all
/// give 74.6-75.2%.
/// A file quantised to tick 0 (`prefer_zero`) keeps its bar lines at 0 unless the evidence for
/// another phase is clearly stronger.
pub fn estimate_bar_offset(
    onsets: &[(i64, u8, i64)],
    frames_per_bar: usize,
    prefer_zero: bool,
) -> usize {
    if frames_per_bar == 0 || onsets.is_empty() {
        return 0;
    }
    let fpb = frames_per_bar as i64;
    let mut w = vec![0f64; frames_per_bar];
    for &(g, pitch, len) in onsets {
        let bass = if pitch < 55 { 2.0 } else { 1.0 };
        let weight = bass * (1.0 + (len.clamp(1, fpb) as f64).ln());
        w[g.rem_euclid(fpb) as usize] += weight;
    }
    let half = frames_per_bar / 2;
    let by_onsets: Vec<f64> = (0..frames_per_bar)
        .map(|b| w[b] + 0.5 * w[(b + half) % frames_per_bar])
        .collect();
    let novelty = harmonic_novelty(onsets, frames_per_bar);
    let norm = |v: &[f64]| {
        let m = v.iter().copied().fold(0.0, f64::max);
        if m > 0.0 {
            1.0 / m
        } else {
            0.0
        }
    };
    let (na, nb) = (norm(&by_onsets), norm(&novelty));
    let score = |b: usize| by_onsets[b] * na + 0.5 * novelty[b] * nb;
    let best = (0..frames_per_bar)
        .max_by(|&a, &b| score(a).total_cmp(&score(b)).then(b.cmp(&a)))
        .unwrap_or(0);
    if prefer_zero && score(0) >= 0.8 * score(best) {
        0
    } else {
        best
    }
}

/// Per phase (frame mod `frames_per_bar`), the summed harmonic change at frames of that phase:
/// `1 - cos` between the pitch-class durations of the half bar before and the half bar after.
fn harmonic_novelty(onsets: &[(i64, u8, i64)], frames_per_bar: usize) -> Vec<f64> {
    let mut out = vec![0f64; frames_per_bar];
    let w = (frames_per_bar / 2).max(1);
    let lo = onsets.iter().map(|o| o.0).min().unwrap_or(0);
    let hi = onsets
        .iter()
        .map(|o| o.0.saturating_add(o.2.max(1)))
        .max()
        .unwrap_or(0);
    let t = (hi - lo).clamp(0, MAX_FRAMES as i64 + 1) as usize;
    if t < 2 * w + 1 {
        return out;
    }
    // Pitch-class occupancy per frame, then its running sum: cum[pc][f] = frames 0..f.
    let mut cum = vec![[0f64; 12]; t + 2];
    for &(g, pitch, len) in onsets {
        let a = ((g - lo) as usize).min(t);
        let b = (a + len.max(1) as usize).min(t);
        cum[a + 1][usize::from(pitch % 12)] += 1.0;
        cum[b + 1][usize::from(pitch % 12)] -= 1.0;
    }
    for f in 1..cum.len() {
        let prev = cum[f - 1];
        for (x, p) in cum[f].iter_mut().zip(prev) {
            *x += p;
        }
    }
    for f in 1..cum.len() {
        let prev = cum[f - 1];
        for (x, p) in cum[f].iter_mut().zip(prev) {
            *x += p;
        }
    }
    // cum[y] now sums the occupancy of frames 0..y, so a window [x, y) is cum[y] - cum[x].
    let window = |x: usize, y: usize| -> [f64; 12] {
        let mut v = [0f64; 12];
        for (i, s) in v.iter_mut().enumerate() {
            *s = cum[y][i] - cum[x][i];
        }
        v
    };
    for f in w..t - w {
        let (a, b) = (window(f - w, f), window(f, f + w));
        let dot: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        let na: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
        let nb: f64 = b.iter().map(|x| x * x).sum::<f64>().sqrt();
        if na > 0.0 && nb > 0.0 {
            let phase = (lo + f as i64).rem_euclid(frames_per_bar as i64) as usize;
            out[phase] += 1.0 - dot / (na * nb);
        }
    }
    out
}

/// Downbeat times (seconds) from a POP909-style `beat_midi.txt` beside `midi_path`: lines of
/// `time beat downbeat`, where the third column marks 4/4 downbeats.
pub fn read_pop909_downbeats(midi_path: &Path) -> Option<Vec<f64>> {
    let dir = midi_path.parent()?;
    let text = std::fs::read_to_string(dir.join("beat_midi.txt")).ok()?;
    let mut out = Vec::new();
    for line in text.lines() {
        let cols: Vec<f64> = line
            .split_whitespace()
            .filter_map(|c| c.parse().ok())
            .collect();
        if cols.len() >= 3 && cols[2] >= 0.5 && cols[0].is_finite() {
            out.push(cols[0]);
        }
    }
    (!out.is_empty()).then_some(out)
}
