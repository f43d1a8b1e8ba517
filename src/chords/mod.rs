//! Chords: symbols, progressions typed by a producer, POP909's annotations, and chords
//! estimated from notes, all as a [`ChordTrack`] on a roll's frame grid: what a chord-conditioned
//! model follows and what `evaluate --chords` measures against.

mod estimate;
mod progression;
mod symbol;

pub use estimate::estimate_chords;
pub use progression::{parse_progression, ProgressionError};
pub use symbol::{parse_chord, Chord, Quality, SymbolError};

use crate::midi::Score;
use crate::roll::ScoreRoll;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One chord (or no chord: `None`) over frames `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChordSpan {
    pub start: usize,
    pub end: usize,
    pub chord: Option<Chord>,
}

/// Chords over time on a roll's frame grid, sorted and non-overlapping. Frames no span covers
/// have no chord information (unlike a span of `None`, which says "no chord here").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChordTrack {
    pub spans: Vec<ChordSpan>,
}

impl ChordTrack {
    /// From spans in any order; empty and overlapping parts are cut (the earlier span wins).
    pub fn new(mut spans: Vec<ChordSpan>) -> Self {
        spans.retain(|s| s.end > s.start);
        spans.sort_by_key(|s| (s.start, s.end));
        let mut out: Vec<ChordSpan> = Vec::with_capacity(spans.len());
        for mut s in spans {
            if let Some(prev) = out.last() {
                s.start = s.start.max(prev.end);
            }
            if s.end > s.start {
                out.push(s);
            }
        }
        Self { spans: out }
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The span at `frame`, if any covers it.
    pub fn span_at(&self, frame: usize) -> Option<&ChordSpan> {
        let i = self.spans.partition_point(|s| s.end <= frame);
        self.spans.get(i).filter(|s| s.start <= frame)
    }

    /// Frames `start..start + len`, shifted to start at 0.
    pub fn crop(&self, start: usize, len: usize) -> ChordTrack {
        let end = start + len;
        ChordTrack {
            spans: self
                .spans
                .iter()
                .filter(|s| s.end > start && s.start < end)
                .map(|s| ChordSpan {
                    start: s.start.max(start) - start,
                    end: s.end.min(end) - start,
                    chord: s.chord,
                })
                .collect(),
        }
    }

    /// Every chord moved by `semitones`.
    pub fn transpose(&self, semitones: i32) -> ChordTrack {
        ChordTrack {
            spans: self
                .spans
                .iter()
                .map(|s| ChordSpan {
                    chord: s.chord.map(|c| c.transpose(semitones)),
                    ..*s
                })
                .collect(),
        }
    }

    /// "C | G | Am F" style text, one bar per `|` for `frames_per_bar` (for sidecars, the
    /// editor and messages; beats are not written).
    pub fn describe(&self, frames_per_bar: usize) -> String {
        let fpb = frames_per_bar.max(1);
        let bars = self.spans.last().map_or(0, |s| s.end.div_ceil(fpb));
        (0..bars)
            .map(|b| {
                let names: Vec<String> = self
                    .spans
                    .iter()
                    .filter(|s| s.start < (b + 1) * fpb && s.end > b * fpb)
                    .map(|s| s.chord.map_or("N.C.".to_string(), |c| c.to_string()))
                    .collect();
                if names.is_empty() {
                    "-".to_string()
                } else {
                    names.join(" ")
                }
            })
            .collect::<Vec<_>>()
            .join(" | ")
    }

    /// Onto a file's frames from `(start s, end s, chord)` annotations.
    pub fn from_seconds(
        score: &Score,
        roll: &ScoreRoll,
        labels: &[(f64, f64, Option<Chord>)],
    ) -> ChordTrack {
        let frame = |s: f64| roll.frame_at_seconds(score, s).max(0) as usize;
        ChordTrack::new(
            labels
                .iter()
                .map(|&(a, b, chord)| ChordSpan {
                    start: frame(a),
                    end: frame(b),
                    chord,
                })
                .collect(),
        )
    }
}

/// POP909's `chord_midi.txt` beside `midi_path`: lines `start end label` in seconds. `None` when
/// there is no such file; labels that cannot be read count as no chord.
pub fn read_pop909_chords(midi_path: &Path) -> Option<Vec<(f64, f64, Option<Chord>)>> {
    let text = std::fs::read_to_string(midi_path.parent()?.join("chord_midi.txt")).ok()?;
    let mut out = Vec::new();
    for line in text.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let (Some(a), Some(b), Some(label)) = (cols.first(), cols.get(1), cols.get(2)) else {
            continue;
        };
        let (Ok(a), Ok(b)) = (a.parse::<f64>(), b.parse::<f64>()) else {
            continue;
        };
        if a.is_finite() && b.is_finite() && b > a {
            out.push((a, b, parse_chord(label).ok().flatten()));
        }
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(start: usize, end: usize, s: &str) -> ChordSpan {
        ChordSpan {
            start,
            end,
            chord: parse_chord(s).unwrap(),
        }
    }

    #[test]
    fn track_lookup_crop_and_describe() {
        let t = ChordTrack::new(vec![span(16, 32, "G"), span(0, 16, "C"), span(32, 40, "N")]);
        assert_eq!(t.span_at(20).unwrap().chord, parse_chord("G").unwrap());
        assert!(t.span_at(40).is_none());
        let c = t.crop(8, 16);
        assert_eq!(c.spans.len(), 2);
        assert_eq!((c.spans[0].start, c.spans[0].end), (0, 8));
        assert_eq!(t.describe(16), "C | G | N.C.");
        assert_eq!(t.transpose(2).describe(16), "D | A | N.C.");
    }
}
