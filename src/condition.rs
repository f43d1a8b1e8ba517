//! What a generation keeps from a prompt and what it follows: the keep spec of every workflow
//! (new, continue, fill, keep a pitch band, keep a part's notes), the notes it keeps, and the
//! conditioning channels a conditioned model sees. Training draws the same conditions, so the
//! model learns exactly what generation asks of it.

use crate::chords::ChordTrack;
use crate::roll::{RollNote, RollSpec};
use serde::{Deserialize, Serialize};

/// What part of a prompt to keep; everything else is generated. Frames and pitches are on the
/// model's grid, frames from the window start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Keep {
    /// Generate everything (no prompt).
    New,
    /// Keep frames `0..keep_frames` (the first bars) and continue from there.
    Continue { keep_frames: usize },
    /// Regenerate frames `start..end` (some bars), keep the rest.
    Fill { start: usize, end: usize },
    /// Keep pitches `low..=high` (say, a melody) and generate around them.
    KeepPitches { low: u8, high: u8 },
    /// Keep exactly the prompt's notes, wherever they lie (a part: "keep my melody"), and add
    /// to them everywhere else.
    KeepNotes,
}

impl Keep {
    /// Whether `(pitch, frame)` lies in the kept region (for [`Keep::KeepNotes`]: never; its
    /// kept cells are the notes').
    fn region(&self, pitch: u8, frame: usize) -> bool {
        match *self {
            Keep::New | Keep::KeepNotes => false,
            Keep::Continue { keep_frames } => frame < keep_frames,
            Keep::Fill { start, end } => frame < start || frame >= end,
            Keep::KeepPitches { low, high } => pitch >= low && pitch <= high,
        }
    }

    /// The prompt's notes this keeps, cut to the kept region and the window: what comes back
    /// exactly. Sorted.
    pub fn kept_notes(&self, prompt: &[RollNote], frames: usize) -> Vec<RollNote> {
        let mut out: Vec<RollNote> = prompt
            .iter()
            .filter_map(|n| {
                let (a, b) = (n.start, n.end.min(frames));
                let end = match *self {
                    Keep::New => return None,
                    Keep::Continue { keep_frames } => b.min(keep_frames),
                    Keep::Fill { start, .. } if a < start => b.min(start),
                    Keep::Fill { end, .. } if a >= end => b,
                    Keep::Fill { .. } => return None,
                    Keep::KeepPitches { low, high } if n.pitch >= low && n.pitch <= high => b,
                    Keep::KeepPitches { .. } => return None,
                    Keep::KeepNotes => b,
                };
                (end > a).then_some(RollNote { end, ..*n })
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The keep mask `[pitches, frames]` over `spec`'s window (1 = kept: the model's value there
    /// is the prompt's), given the kept notes; `None` for [`Keep::New`].
    pub fn mask(&self, spec: &RollSpec, kept: &[RollNote]) -> Option<Vec<u8>> {
        if *self == Keep::New {
            return None;
        }
        let (h, w) = (spec.pitches, spec.frames);
        let mut m = vec![0u8; h * w];
        for r in 0..h {
            let pitch = (usize::from(spec.pitch_low) + r).min(127) as u8;
            for f in 0..w {
                if self.region(pitch, f) {
                    m[r * w + f] = 1;
                }
            }
        }
        for n in kept {
            if let Some(r) = spec.row(n.pitch) {
                m[r * w + n.start.min(w)..r * w + n.end.min(w)].fill(1);
            }
        }
        Some(m)
    }

    /// A short name for messages and sidecars.
    pub fn describe(&self) -> String {
        match *self {
            Keep::New => "new".into(),
            Keep::Continue { keep_frames } => format!("continue after frame {keep_frames}"),
            Keep::Fill { start, end } => format!("fill frames {start}..{end}"),
            Keep::KeepPitches { low, high } => format!("keep pitches {low}..{high}"),
            Keep::KeepNotes => "keep the prompt's notes".into(),
        }
    }
}

/// The prompt's part of one sample: the notes kept and where.
#[derive(Debug, Clone, PartialEq)]
pub struct Known {
    /// The kept notes (see [`Keep::kept_notes`]).
    pub notes: Vec<RollNote>,
    /// `[pitches, frames]`, 1 = kept.
    pub mask: Vec<u8>,
}

impl Known {
    /// What `keep` takes from `prompt` on `spec`'s window; `None` for [`Keep::New`].
    pub fn new(spec: &RollSpec, keep: &Keep, prompt: &[RollNote]) -> Option<Self> {
        let notes = keep.kept_notes(prompt, spec.frames);
        let mask = keep.mask(spec, &notes)?;
        Some(Self { notes, mask })
    }

    /// The known image `[C, pitches, frames]` and its mask per channel (for inpainting).
    pub fn image(&self, spec: &RollSpec) -> (Vec<f32>, Vec<f32>) {
        let known = spec.encode(&self.notes);
        let c = spec.roll_channels();
        let mask: Vec<f32> = (0..c)
            .flat_map(|_| self.mask.iter().map(|&m| f32::from(m)))
            .collect();
        (known, mask)
    }
}

/// The conditioning channels `[Cc, pitches, frames]` of one sample for a model whose `spec`
/// takes conditions: the known image (zero where not kept) and mask, then chord tones and bass
/// (+1 on rows of their pitch classes, -1 elsewhere, -1 everywhere for "no chord", 0 where no
/// chord is given). A condition left out is all zeros, as training drops it.
pub fn encode_conditions(
    spec: &RollSpec,
    known: Option<&Known>,
    chords: Option<&ChordTrack>,
) -> Vec<f32> {
    let (h, w, c) = (spec.pitches, spec.frames, spec.roll_channels());
    let hw = h * w;
    let mut out = vec![0f32; spec.cond_channels() * hw];
    let mut at = 0;
    if spec.conditions.known {
        if let Some(k) = known {
            let (image, _) = k.image(spec);
            for ch in 0..c {
                for i in 0..hw {
                    if k.mask[i] != 0 {
                        out[at + ch * hw + i] = image[ch * hw + i];
                    }
                }
            }
            for i in 0..hw {
                out[at + c * hw + i] = f32::from(k.mask[i].min(1));
            }
        }
        at += (c + 1) * hw;
    }
    if spec.conditions.chords {
        if let Some(track) = chords {
            let (tones, bass) = out[at..at + 2 * hw].split_at_mut(hw);
            for s in &track.spans {
                let (set, b) = match s.chord {
                    Some(ch) => (ch.tones(), Some(ch.bass)),
                    None => (0, None),
                };
                for r in 0..h {
                    let pc = ((usize::from(spec.pitch_low) + r) % 12) as u8;
                    let tone = if set & (1 << pc) != 0 { 1.0 } else { -1.0 };
                    let is_bass = if b == Some(pc) { 1.0 } else { -1.0 };
                    for f in s.start.min(w)..s.end.min(w) {
                        tones[r * w + f] = tone;
                        bass[r * w + f] = is_bass;
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chords::parse_progression;
    use crate::roll::{Channels, Conditions, Grid};

    fn spec() -> RollSpec {
        RollSpec {
            grid: Grid::Beats { steps_per_beat: 4 },
            pitch_low: 0,
            pitches: 128,
            frames: 32,
            articulation: false,
            channels: Channels::OnsetSustain,
            conditions: Conditions {
                known: true,
                chords: true,
            },
        }
    }

    fn n(pitch: u8, start: usize, end: usize) -> RollNote {
        RollNote {
            pitch,
            start,
            end,
            velocity: 70,
        }
    }

    /// Every workflow keeps the notes it says, cut at its region, and masks them.
    #[test]
    fn kept_notes_and_masks_follow_the_workflow() {
        let prompt = [n(60, 0, 20), n(64, 10, 14), n(72, 18, 24), n(40, 28, 40)];
        let cont = Keep::Continue { keep_frames: 16 };
        assert_eq!(
            cont.kept_notes(&prompt, 32),
            vec![n(60, 0, 16), n(64, 10, 14)]
        );
        let fill = Keep::Fill { start: 8, end: 24 };
        assert_eq!(
            fill.kept_notes(&prompt, 32),
            vec![n(40, 28, 32), n(60, 0, 8)]
        );
        let band = Keep::KeepPitches { low: 60, high: 70 };
        assert_eq!(
            band.kept_notes(&prompt, 32),
            vec![n(60, 0, 20), n(64, 10, 14)]
        );
        let k = Known::new(&spec(), &Keep::KeepNotes, &prompt).unwrap();
        assert_eq!(k.mask.iter().filter(|&&m| m == 1).count(), 20 + 4 + 6 + 4);
        assert!(Known::new(&spec(), &Keep::New, &prompt).is_none());
        let m = cont.mask(&spec(), &[]).unwrap();
        assert_eq!(m[5 * 32 + 15], 1);
        assert_eq!(m[5 * 32 + 16], 0);
    }

    /// Conditioning channels: known values under the mask only, chord tones in every octave,
    /// "no chord" as -1 and "not given" as 0.
    #[test]
    fn condition_channels_encode_known_notes_and_chords() {
        let s = spec();
        let k = Known::new(&s, &Keep::Continue { keep_frames: 16 }, &[n(60, 0, 4)]).unwrap();
        let chords = parse_progression("C | N.C.", 16, 4, 32).unwrap();
        let c = encode_conditions(&s, Some(&k), Some(&chords));
        let hw = 128 * 32;
        assert_eq!(c.len(), 5 * hw);
        let at = |ch: usize, p: usize, f: usize| c[ch * hw + p * 32 + f];
        assert!((at(0, 60, 0) - 70.0 / 127.0).abs() < 1e-6, "onset");
        assert_eq!(at(1, 60, 3), 1.0, "sustain");
        assert_eq!(at(1, 61, 3), -1.0, "known silence");
        assert_eq!(at(1, 61, 20), 0.0, "unknown");
        assert_eq!((at(2, 0, 15), at(2, 0, 16)), (1.0, 0.0), "mask");
        assert_eq!((at(3, 64, 0), at(3, 65, 0), at(3, 76, 5)), (1.0, -1.0, 1.0));
        assert_eq!((at(4, 48, 0), at(4, 52, 0)), (1.0, -1.0), "bass C");
        assert_eq!((at(3, 64, 20), at(4, 48, 20)), (-1.0, -1.0), "no chord");
        let none = encode_conditions(&s, None, None);
        assert!(none.iter().all(|&v| v == 0.0));
    }
}
