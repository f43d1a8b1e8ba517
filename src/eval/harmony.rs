//! Harmony: is there a chord, is it held, is there a bass under it?
//!
//! The window is cut into harmonic segments (half bars in even meters, whole bars otherwise).
//! Each segment gets a duration-weighted pitch-class profile, and the major or minor triad that
//! covers most of it. Note soup fits no triad well, changes "chord" every segment, and puts a
//! random note in the bass; real accompaniment holds a triad for a bar or two over its root.

use super::{Feature, FeatureSet, Window};
use serde::{Deserialize, Serialize};

/// Interval classes (semitones mod 12) counted as consonant: unison/octave, minor and major
/// third, perfect fourth, perfect fifth, minor and major sixth.
pub const CONSONANT: [bool; 12] = [
    true, false, false, true, true, true, false, true, true, true, false, false,
];

/// A major or minor triad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Triad {
    /// Pitch class of the root, 0 = C.
    pub root: u8,
    pub minor: bool,
}

impl Triad {
    /// The triad's three pitch classes: root, third, fifth.
    pub fn pitch_classes(self) -> [u8; 3] {
        let third = if self.minor { 3 } else { 4 };
        [self.root, (self.root + third) % 12, (self.root + 7) % 12]
    }

    pub fn contains(self, pitch_class: u8) -> bool {
        self.pitch_classes().contains(&(pitch_class % 12))
    }

    /// All 24 triads, majors first, each by ascending root.
    pub fn all() -> impl Iterator<Item = Triad> {
        [false, true]
            .into_iter()
            .flat_map(|minor| (0..12).map(move |root| Triad { root, minor }))
    }
}

/// The triad covering the largest share of a pitch-class profile, and that share (0..1).
/// Ties go to the triad with more of its tones present, then to the one whose root is `bass`
/// (a pitch class), then major before minor, then the lower root. `None` for an empty profile.
pub fn best_triad(profile: &[f64; 12], bass: Option<u8>) -> Option<(Triad, f64)> {
    let total: f64 = profile.iter().sum();
    if total.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        return None;
    }
    let mut best: Option<(Triad, f64, usize, bool)> = None;
    for t in Triad::all() {
        let pcs = t.pitch_classes();
        let w: f64 = pcs.iter().map(|&p| profile[usize::from(p)]).sum();
        let present = pcs
            .iter()
            .filter(|&&p| profile[usize::from(p)] > 0.0)
            .count();
        let on_bass = bass.map(|b| b % 12 == t.root).unwrap_or(false);
        let better = match best {
            None => true,
            Some((_, bw, bp, bb)) => {
                // Iteration order already prefers major and lower roots.
                w > bw + 1e-9 || ((w - bw).abs() <= 1e-9 && (present, on_bass) > (bp, bb))
            }
        };
        if better {
            best = Some((t, w, present, on_bass));
        }
    }
    best.map(|(t, w, _, _)| (t, (w / total).clamp(0.0, 1.0)))
}

/// Share of consonant intervals among all pairs of simultaneously sounding pitches, pooled over
/// frames (`masks`: bit p = pitch p sounds). `None` when no two pitches ever sound together.
pub fn consonance(masks: &[u128]) -> Option<f64> {
    let (mut good, mut total) = (0u64, 0u64);
    for &m in masks {
        if m.count_ones() < 2 {
            continue;
        }
        let mut d = 1u32;
        while d < 128 && (m >> d) != 0 {
            let pairs = u64::from((m & (m >> d)).count_ones());
            if CONSONANT[(d % 12) as usize] {
                good += pairs;
            }
            total += pairs;
            d += 1;
        }
    }
    (total > 0).then(|| good as f64 / total as f64)
}

/// One harmonic segment of a window.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// First frame, relative to the window.
    pub start: usize,
    /// Length in frames.
    pub len: usize,
    /// Sounding frames per pitch class.
    pub profile: [f64; 12],
    /// Lowest pitch sounding in the segment (MIDI pitch).
    pub bass: Option<u8>,
    /// Best triad and its fit (share of the profile on its tones); `None` when silent.
    pub chord: Option<(Triad, f64)>,
}

/// The harmonic analysis of a window, shared by the harmony and melody features.
#[derive(Debug, Clone, PartialEq)]
pub struct Harmony {
    /// Frames per segment (half a bar in even meters, else a bar).
    pub segment_frames: usize,
    pub segments: Vec<Segment>,
}

impl Harmony {
    /// The segment containing `frame`.
    pub fn segment_at(&self, frame: usize) -> Option<&Segment> {
        self.segments.get(frame / self.segment_frames.max(1))
    }
}

/// Segment length: half a bar when the bar has an even number of beats, else a whole bar.
pub fn segment_frames(w: &Window) -> usize {
    let (fpb, spb) = (w.frames_per_bar.max(1), w.steps_per_beat.max(1));
    if fpb % (2 * spb) == 0 {
        fpb / 2
    } else {
        fpb
    }
}

/// Profile, bass and best triad of every segment. `masks`: [`Window::frame_masks`].
pub fn analyse(w: &Window, masks: &[u128]) -> Harmony {
    let seg = segment_frames(w).max(1);
    let segments = masks
        .chunks(seg)
        .enumerate()
        .map(|(i, chunk)| {
            let mut profile = [0f64; 12];
            let mut union = 0u128;
            for &m in chunk {
                union |= m;
                let mut bits = m;
                while bits != 0 {
                    let p = bits.trailing_zeros();
                    profile[(p % 12) as usize] += 1.0;
                    bits &= bits - 1;
                }
            }
            let bass = (union != 0).then(|| union.trailing_zeros() as u8);
            Segment {
                start: i * seg,
                len: chunk.len(),
                profile,
                bass,
                chord: best_triad(&profile, bass.map(|b| b % 12)),
            }
        })
        .collect();
    Harmony {
        segment_frames: seg,
        segments,
    }
}

/// Fill the [`super::Family::Harmony`] features.
pub fn harmony_features(w: &Window, masks: &[u128], h: &Harmony, out: &mut FeatureSet) {
    out.set(Feature::Consonance, consonance(masks));

    let fits: Vec<f64> = h
        .segments
        .iter()
        .filter_map(|s| s.chord.map(|c| c.1))
        .collect();
    if !fits.is_empty() {
        out.set(
            Feature::TriadFit,
            Some(fits.iter().sum::<f64>() / fits.len() as f64),
        );
        let rooted = h
            .segments
            .iter()
            .filter(|s| match (s.chord, s.bass) {
                (Some((t, _)), Some(b)) => b % 12 == t.root,
                _ => false,
            })
            .count();
        out.set(Feature::BassRoot, Some(rooted as f64 / fits.len() as f64));
    }

    // Harmonic rhythm: a silent segment keeps the previous chord.
    let mut current: Option<Triad> = None;
    let (mut runs, mut covered, mut changes, mut on_bar) = (0usize, 0usize, 0usize, 0usize);
    for s in &h.segments {
        if let Some((t, _)) = s.chord {
            match current {
                None => runs += 1,
                Some(c) if c != t => {
                    runs += 1;
                    changes += 1;
                    if s.start % w.frames_per_bar.max(1) == 0 {
                        on_bar += 1;
                    }
                }
                _ => {}
            }
            current = Some(t);
        }
        if current.is_some() {
            covered += s.len;
        }
    }
    if runs > 0 {
        let beats = covered as f64 / w.steps_per_beat.max(1) as f64;
        out.set(Feature::ChordDuration, Some(beats / runs as f64));
    }
    if changes > 0 {
        out.set(
            Feature::ChordChangeOnDownbeat,
            Some(on_bar as f64 / changes as f64),
        );
    }
}
