//! Melody and form: a singable top voice that moves mostly by step and sits on chord tones,
//! bars that repeat, and a key that each bar states clearly and that stays put across bars.

use super::harmony::{best_triad, Harmony, Triad};
use super::{Feature, FeatureSet, Window};
use crate::roll::{top_voice, RollNote};

/// Krumhansl-Kessler major key profile, tonic first.
pub const KK_MAJOR: [f64; 12] = [
    6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88,
];
/// Krumhansl-Kessler minor key profile, tonic first.
pub const KK_MINOR: [f64; 12] = [
    6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17,
];

/// Per harmonic segment, the best triad of the notes that are not in the top voice `mel`.
fn accompaniment_chords(w: &Window, h: &Harmony, mel: &[RollNote]) -> Vec<Option<Triad>> {
    let seg = h.segment_frames.max(1);
    let n_seg = h.segments.len();
    let mut profiles = vec![[0f64; 12]; n_seg];
    let mut bass: Vec<Option<u8>> = vec![None; n_seg];
    let mut top: Vec<(usize, u8)> = mel.iter().map(|n| (n.start, n.pitch)).collect();
    top.sort_unstable();
    for n in &w.notes {
        if top.binary_search(&(n.start, n.pitch)).is_ok() {
            continue;
        }
        for f in n.start..n.end.min(n_seg * seg) {
            let s = f / seg;
            profiles[s][usize::from(n.pitch % 12)] += 1.0;
            bass[s] = Some(bass[s].map_or(n.pitch, |b| b.min(n.pitch)));
        }
    }
    profiles
        .iter()
        .zip(&bass)
        .map(|(p, b)| best_triad(p, b.map(|x| x % 12)).map(|x| x.0))
        .collect()
}

/// Pearson correlation; `None` when either side is constant.
pub fn correlation(a: &[f64; 12], b: &[f64; 12]) -> Option<f64> {
    let ma = a.iter().sum::<f64>() / 12.0;
    let mb = b.iter().sum::<f64>() / 12.0;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for k in 0..12 {
        let (x, y) = (a[k] - ma, b[k] - mb);
        sab += x * y;
        saa += x * x;
        sbb += y * y;
    }
    (saa > 1e-12 && sbb > 1e-12).then(|| sab / (saa * sbb).sqrt())
}

/// The key profile of key `k` (0..12 major on C..B, 12..24 minor on C..B), rotated to its tonic.
pub fn key_profile(k: usize) -> [f64; 12] {
    let (base, tonic) = if k < 12 {
        (&KK_MAJOR, k)
    } else {
        (&KK_MINOR, k % 12)
    };
    let mut p = [0.0; 12];
    for (pc, slot) in p.iter_mut().enumerate() {
        *slot = base[(pc + 12 - tonic) % 12];
    }
    p
}

/// The best key (0..24, see [`key_profile`]) of a pitch-class profile and its correlation.
pub fn best_key(profile: &[f64; 12]) -> Option<(usize, f64)> {
    (0..24)
        .filter_map(|k| correlation(profile, &key_profile(k)).map(|r| (k, r)))
        .fold(None, |best: Option<(usize, f64)>, (k, r)| match best {
            Some((_, br)) if br >= r => best,
            _ => Some((k, r)),
        })
}

/// Jaccard overlap of two sorted sets.
fn jaccard<T: Ord>(a: &[T], b: &[T]) -> f64 {
    let (mut i, mut j, mut inter) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                inter += 1;
                i += 1;
                j += 1;
            }
        }
    }
    let union = a.len() + b.len() - inter;
    if union == 0 {
        0.0
    } else {
        inter as f64 / union as f64
    }
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Fill the [`super::Family::Melody`] features; `h` from [`super::harmony::analyse`].
pub fn melody_features(w: &Window, h: &Harmony, out: &mut FeatureSet) {
    let mel = top_voice(&w.notes);
    let intervals: Vec<i32> = mel
        .windows(2)
        .map(|p| (i32::from(p[1].pitch) - i32::from(p[0].pitch)).abs())
        .collect();
    if !intervals.is_empty() {
        let n = intervals.len() as f64;
        let steps = intervals.iter().filter(|&&d| d == 1 || d == 2).count();
        let leaps = intervals.iter().filter(|&&d| d >= 5).count();
        out.set(Feature::MelodySteps, Some(steps as f64 / n));
        out.set(Feature::MelodyLeaps, Some(leaps as f64 / n));
    }
    // Chord tones: against the chord of the accompaniment alone (a chord fitted with the melody
    // in it would claim the melody's own notes). Melody over silence is not counted.
    let accompaniment = accompaniment_chords(w, h, &mel);
    let (mut with_chord, mut on_tone) = (0usize, 0usize);
    for n in &mel {
        if let Some(Some(t)) = accompaniment.get(n.start / h.segment_frames.max(1)) {
            with_chord += 1;
            if t.contains(n.pitch % 12) {
                on_tone += 1;
            }
        }
    }
    if with_chord > 0 {
        out.set(
            Feature::MelodyChordTones,
            Some(on_tone as f64 / with_chord as f64),
        );
    }

    // Repetition: each bar's (onset in bar, pitch) set against every earlier bar.
    let bars: Vec<Vec<(usize, u8)>> = (0..w.bars)
        .map(|b| {
            let mut v: Vec<(usize, u8)> = w.bar_notes(b).map(|n| (n.start, n.pitch)).collect();
            v.sort_unstable();
            v
        })
        .collect();
    let mut reps = Vec::new();
    for i in 1..bars.len() {
        if bars[i].is_empty() || bars[..i].iter().all(Vec::is_empty) {
            continue;
        }
        let best = bars[..i]
            .iter()
            .filter(|b| !b.is_empty())
            .map(|b| jaccard(&bars[i], b))
            .fold(0.0, f64::max);
        reps.push(best);
    }
    out.set(Feature::BarRepetition, mean(&reps));

    // Keys: per-bar profiles from the segments (segments tile bars exactly).
    let fpb = w.frames_per_bar.max(1);
    let mut bar_profiles = vec![[0f64; 12]; w.bars];
    for s in &h.segments {
        if let Some(bp) = bar_profiles.get_mut(s.start / fpb) {
            for (x, y) in bp.iter_mut().zip(&s.profile) {
                *x += y;
            }
        }
    }
    let mut window_profile = [0f64; 12];
    for bp in &bar_profiles {
        for (x, y) in window_profile.iter_mut().zip(bp) {
            *x += y;
        }
    }
    let clarity: Vec<f64> = bar_profiles
        .iter()
        .filter_map(|p| best_key(p).map(|x| x.1))
        .collect();
    out.set(Feature::KeyClarity, mean(&clarity));
    if let Some((k, _)) = best_key(&window_profile) {
        let kp = key_profile(k);
        let consistency: Vec<f64> = bar_profiles
            .iter()
            .filter_map(|p| correlation(p, &kp))
            .collect();
        out.set(Feature::KeyConsistency, mean(&consistency));
    }
}
