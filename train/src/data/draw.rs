//! The conditions a conditioned model is trained with, drawn per window like the workflows that
//! will ask for them: nothing, the first bars (continue), all but a gap (fill), a pitch band, a
//! part (POP909's melody, or everything but it), and the window's chords. Each condition is also
//! dropped at random, so one model serves every workflow and guidance can weigh them.

use super::Song;
use jit_music::chords::ChordTrack;
use jit_music::condition::{Keep, Known};
use jit_music::roll::{GridNote, RollNote, RollSpec};
use rand::Rng;

/// How often each condition is drawn (for a window of a song that allows it).
#[derive(Debug, Clone, Copy)]
pub struct ConditionMix {
    /// Everything dropped, the class label too: the unconditional model guidance needs.
    pub drop_all: f64,
    /// Among the rest, the known part: nothing, continue, fill, pitch band, part.
    pub known: [f64; 5],
    /// Chords given (when the song has them).
    pub chords: f64,
}

pub const CONDITION_MIX: ConditionMix = ConditionMix {
    drop_all: 0.1,
    known: [0.3, 0.25, 0.15, 0.1, 0.2],
    chords: 0.6,
};

/// What one training window is conditioned on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Drawn {
    pub known: Option<Known>,
    pub chords: Option<ChordTrack>,
    /// The class label is dropped too.
    pub drop_label: bool,
}

/// Draw the conditions of a window: `notes` (frames from the window start, already
/// transposed) and `chords` (likewise) of `song`.
pub fn draw(
    rng: &mut impl Rng,
    spec: &RollSpec,
    song: &Song,
    notes: &[GridNote],
    chords: Option<ChordTrack>,
) -> Drawn {
    let mix = CONDITION_MIX;
    if rng.random::<f64>() < mix.drop_all {
        return Drawn {
            drop_label: true,
            ..Drawn::default()
        };
    }
    let known = if spec.conditions.known {
        let keep = pick(rng, &mix.known);
        known(rng, spec, song, notes, keep)
    } else {
        None
    };
    let chords = if spec.conditions.chords && rng.random::<f64>() < mix.chords {
        chords
    } else {
        None
    };
    Drawn {
        known,
        chords,
        drop_label: false,
    }
}

/// An index drawn with the given weights.
fn pick(rng: &mut impl Rng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut r = rng.random::<f64>() * total;
    for (i, &w) in weights.iter().enumerate() {
        if r < w {
            return i;
        }
        r -= w;
    }
    weights.len() - 1
}

/// The known part for workflow `kind` (0 nothing, 1 continue, 2 fill, 3 band, 4 part).
fn known(
    rng: &mut impl Rng,
    spec: &RollSpec,
    song: &Song,
    notes: &[GridNote],
    kind: usize,
) -> Option<Known> {
    let w = spec.frames;
    let fpb = song.frames_per_bar.clamp(1, w);
    let bars = (w / fpb).max(1);
    let plain: Vec<RollNote> = notes.iter().map(|n| n.note).collect();
    let keep = match kind {
        1 if bars > 1 => Keep::Continue {
            keep_frames: rng.random_range(1..bars) * fpb,
        },
        2 if bars > 1 => {
            let len = rng.random_range(1..=(bars / 2).max(1));
            let at = rng.random_range(0..=bars - len);
            Keep::Fill {
                start: at * fpb,
                end: (at + len) * fpb,
            }
        }
        3 => {
            let lo = plain.iter().map(|n| n.pitch).min()?;
            let hi = plain.iter().map(|n| n.pitch).max()?;
            if hi <= lo {
                return None;
            }
            let split = rng.random_range(lo + 1..=hi);
            if rng.random::<bool>() {
                Keep::KeepPitches {
                    low: split,
                    high: 127,
                }
            } else {
                Keep::KeepPitches {
                    low: 0,
                    high: split - 1,
                }
            }
        }
        4 => {
            let melody = song.melody_part?;
            let keep_melody = rng.random::<bool>();
            let part: Vec<RollNote> = notes
                .iter()
                .filter(|n| (n.part == melody) == keep_melody)
                .map(|n| n.note)
                .collect();
            if part.is_empty() || part.len() == notes.len() {
                return None;
            }
            return Known::new(spec, &Keep::KeepNotes, &part);
        }
        _ => return None,
    };
    Known::new(spec, &keep, &plain)
}
