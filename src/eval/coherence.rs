//! Does generated music fit the music it was asked to continue, fill or follow?
//!
//! * **Coherence with a prompt**: the generated region against the kept region (the context):
//!   pitch-class correlation, key-signature agreement (Krumhansl-Kessler keys; a minor key
//!   counts as its relative major), the share of notes on the context's scale, and how many of
//!   the generated region's triads the context already uses. Scored beside the song's real
//!   region (what a perfect model would reach) and another song's (what ignoring the prompt
//!   gives).
//! * **Chord fit**: note time on the given chords' tones, and bass notes on their bass (the root
//!   unless a slash chord says otherwise).

use super::harmony::best_triad;
use super::melody::{best_key, correlation};
use crate::chords::ChordTrack;
use crate::roll::RollNote;
use serde::{Deserialize, Serialize};

/// Coherence of one generated region with its context.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Coherence {
    /// Pearson correlation of the duration-weighted pitch-class profiles.
    pub pc_correlation: Option<f64>,
    /// Same key signature (1) or not (0).
    pub key_agreement: Option<f64>,
    /// Share of the region's notes whose pitch class lies on the context key's scale.
    pub on_scale: Option<f64>,
    /// Share of the region's half-bar triads that the context also has.
    pub chord_reuse: Option<f64>,
}

/// Duration-weighted pitch-class profile.
pub fn pc_profile(notes: &[RollNote]) -> [f64; 12] {
    let mut p = [0f64; 12];
    for n in notes {
        p[usize::from(n.pitch % 12)] += (n.end.saturating_sub(n.start)).max(1) as f64;
    }
    p
}

/// The key signature (the tonic of the relative major) of a profile.
fn signature(profile: &[f64; 12]) -> Option<usize> {
    let (k, _) = best_key(profile)?;
    Some(if k < 12 { k } else { (k % 12 + 3) % 12 })
}

/// The set of triads over half bars (`seg` frames) of `notes`.
fn triads(notes: &[RollNote], seg: usize) -> Vec<(u8, bool)> {
    let end = notes.iter().map(|n| n.end).max().unwrap_or(0);
    let mut out = Vec::new();
    let mut a = 0;
    while a < end {
        let b = a + seg.max(1);
        let mut p = [0f64; 12];
        let mut bass: Option<u8> = None;
        for n in notes {
            let (s, e) = (n.start.max(a), n.end.min(b));
            if e > s {
                p[usize::from(n.pitch % 12)] += (e - s) as f64;
                bass = Some(bass.map_or(n.pitch, |x| x.min(n.pitch)));
            }
        }
        if let Some((t, _)) = best_triad(&p, bass.map(|x| x % 12)) {
            out.push((t.root, t.minor));
        }
        a = b;
    }
    out
}

/// Coherence of `region` with `context` (both notes in frames; `seg` frames per harmonic
/// segment, half a bar).
pub fn coherence(context: &[RollNote], region: &[RollNote], seg: usize) -> Coherence {
    let (pc, pr) = (pc_profile(context), pc_profile(region));
    if region.is_empty() || context.is_empty() {
        return Coherence::default();
    }
    let (sc, sr) = (signature(&pc), signature(&pr));
    let on_scale = sc.map(|s| {
        const MAJOR: [usize; 7] = [0, 2, 4, 5, 7, 9, 11];
        let on = region
            .iter()
            .filter(|n| MAJOR.contains(&((usize::from(n.pitch % 12) + 12 - s) % 12)))
            .count();
        on as f64 / region.len() as f64
    });
    let ctx_triads = triads(context, seg);
    let reg_triads = triads(region, seg);
    let chord_reuse = (!reg_triads.is_empty()).then(|| {
        let reused = reg_triads.iter().filter(|t| ctx_triads.contains(t)).count();
        reused as f64 / reg_triads.len() as f64
    });
    Coherence {
        pc_correlation: correlation(&pc, &pr),
        key_agreement: match (sc, sr) {
            (Some(a), Some(b)) => Some(f64::from(u8::from(a == b))),
            _ => None,
        },
        on_scale,
        chord_reuse,
    }
}

/// How well notes follow a chord track.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ChordFit {
    /// Share of note time (where a chord is given) on its tones.
    pub tone_share: Option<f64>,
    /// Share of bass notes (the lowest note at each onset time, where a chord is given) on the
    /// chord's bass pitch class.
    pub bass_on_root: Option<f64>,
}

/// How `notes` follow `chords` (same frames).
pub fn chord_fit(notes: &[RollNote], chords: &ChordTrack) -> ChordFit {
    let (mut on, mut total) = (0usize, 0usize);
    for n in notes {
        for f in n.start..n.end {
            if let Some(Some(c)) = chords.span_at(f).map(|s| s.chord) {
                total += 1;
                if c.tones() & (1 << (n.pitch % 12)) != 0 {
                    on += 1;
                }
            }
        }
    }
    // The bass: the lowest note sounding at each onset time.
    let mut onsets: Vec<usize> = notes.iter().map(|n| n.start).collect();
    onsets.sort_unstable();
    onsets.dedup();
    let (mut bass_on, mut bass_total) = (0usize, 0usize);
    for f in onsets {
        let Some(Some(c)) = chords.span_at(f).map(|s| s.chord) else {
            continue;
        };
        let low = notes
            .iter()
            .filter(|n| n.start <= f && n.end > f)
            .map(|n| n.pitch)
            .min();
        if let Some(p) = low {
            bass_total += 1;
            if p % 12 == c.bass {
                bass_on += 1;
            }
        }
    }
    ChordFit {
        tone_share: (total > 0).then(|| on as f64 / total as f64),
        bass_on_root: (bass_total > 0).then(|| bass_on as f64 / bass_total as f64),
    }
}

/// Mean of the present values.
pub fn mean_of(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let v: Vec<f64> = values.flatten().collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Means over many regions.
pub fn mean_coherence(all: &[Coherence]) -> Coherence {
    Coherence {
        pc_correlation: mean_of(all.iter().map(|c| c.pc_correlation)),
        key_agreement: mean_of(all.iter().map(|c| c.key_agreement)),
        on_scale: mean_of(all.iter().map(|c| c.on_scale)),
        chord_reuse: mean_of(all.iter().map(|c| c.chord_reuse)),
    }
}

/// Means over many tracks.
pub fn mean_chord_fit(all: &[ChordFit]) -> ChordFit {
    ChordFit {
        tone_share: mean_of(all.iter().map(|c| c.tone_share)),
        bass_on_root: mean_of(all.iter().map(|c| c.bass_on_root)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chords::parse_progression;

    fn n(pitch: u8, start: usize, end: usize) -> RollNote {
        RollNote {
            pitch,
            start,
            end,
            velocity: 90,
        }
    }

    #[test]
    fn a_continuation_in_key_scores_above_one_out_of_key() {
        // C major context: C-E-G, F-A-C, G-B-D.
        let ctx = [
            n(60, 0, 8),
            n(64, 0, 8),
            n(67, 0, 8),
            n(65, 8, 16),
            n(69, 8, 16),
            n(72, 8, 16),
            n(67, 16, 24),
            n(71, 16, 24),
            n(74, 16, 24),
        ];
        let same = [
            n(60, 0, 8),
            n(64, 0, 8),
            n(67, 0, 8),
            n(65, 8, 16),
            n(69, 8, 16),
        ];
        let other = [
            n(61, 0, 8),
            n(66, 0, 8),
            n(70, 0, 8),
            n(63, 8, 16),
            n(68, 8, 16),
        ];
        let a = coherence(&ctx, &same, 8);
        let b = coherence(&ctx, &other, 8);
        assert!(a.pc_correlation.unwrap() > b.pc_correlation.unwrap());
        assert_eq!(a.key_agreement, Some(1.0));
        assert_eq!(b.key_agreement, Some(0.0));
        assert_eq!(a.on_scale, Some(1.0));
        assert!(b.on_scale.unwrap() < 0.5);
        assert_eq!(a.chord_reuse, Some(1.0));
    }

    #[test]
    fn chord_fit_counts_tones_and_bass() {
        let chords = parse_progression("C | Am", 16, 4, 32).unwrap();
        let notes = [
            n(48, 0, 16),
            n(64, 0, 16),
            n(66, 0, 4),
            n(45, 16, 32),
            n(72, 16, 32),
        ];
        let f = chord_fit(&notes, &chords);
        assert!((f.tone_share.unwrap() - 64.0 / 68.0).abs() < 1e-9);
        assert_eq!(f.bass_on_root, Some(1.0));
    }
}
