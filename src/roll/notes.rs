//! Roll -> notes (threshold runs, as the original's `roll_to_midi`) and notes -> roll.

use super::{u8_to_velocity, velocity_to_u8, PianoRoll, PITCHES};
use serde::{Deserialize, Serialize};

/// A note on a roll's frame grid: `[start, end)` in frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RollNote {
    pub pitch: u8,
    pub start: usize,
    pub end: usize,
    pub velocity: u8,
}

/// How a note's MIDI velocity is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Velocity {
    /// Every note at this velocity (the original's default is 100).
    Fixed(u8),
    /// The mean intensity of the note's frames.
    Learned,
}

impl Default for Velocity {
    fn default() -> Self {
        Velocity::Fixed(100)
    }
}

impl std::str::FromStr for Velocity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "learned" {
            return Ok(Velocity::Learned);
        }
        let n = s.strip_prefix("fixed:").unwrap_or(s);
        match n.parse::<u8>() {
            Ok(v) if (1..=127).contains(&v) => Ok(Velocity::Fixed(v)),
            _ => Err(format!(
                "velocity must be `learned` or `fixed:N` with N in 1..=127, got `{s}`"
            )),
        }
    }
}

/// Contiguous frames whose intensity is above `threshold` (0..1 of full scale) become one note,
/// as the original's `roll_to_midi` (`roll > 0.5`). Sorted by (pitch, start).
pub fn roll_to_notes(roll: &PianoRoll, threshold: f32, velocity: Velocity) -> Vec<RollNote> {
    let mut out = Vec::new();
    let frames = roll.frames();
    for p in 0..PITCHES {
        let row = roll.row(p);
        let mut f = 0;
        while f < frames {
            if f32::from(row[f]) / 255.0 > threshold {
                let s = f;
                while f < frames && f32::from(row[f]) / 255.0 > threshold {
                    f += 1;
                }
                out.push(note_from(row, p as u8, s, f, velocity));
            } else {
                f += 1;
            }
        }
    }
    out
}

/// The dip ratio for articulated rolls: split a run at every local minimum below 95% of the
/// lower neighbouring peak. Chosen with `evaluate` on the default model (docs/DEFAULT-MODEL.md):
/// it turns the model's drawn re-strikes into notes (overall OA 0.582 -> 0.630).
pub const DEFAULT_DIP: f32 = 0.95;

/// The dip ratio for a model's rolls: [`DEFAULT_DIP`] when they are articulated (its re-strikes
/// are drawn as dips), 0 (plain threshold runs, the original's decoding) when not.
pub fn default_dip(articulation: bool) -> f32 {
    if articulation {
        DEFAULT_DIP
    } else {
        0.0
    }
}

/// [`roll_to_notes`] for an articulated roll: a run above `threshold` is also split where its
/// intensity dips, because the model draws the one-frame gap before a re-struck note as a dip
/// that often stays above the threshold. A frame is such a gap when it is a local minimum below
/// `dip` times the lower of the peaks on either side (within the run); it then belongs to
/// neither note, as in the training rolls. `dip <= 0` is plain [`roll_to_notes`].
pub fn roll_to_notes_split(
    roll: &PianoRoll,
    threshold: f32,
    dip: f32,
    velocity: Velocity,
) -> Vec<RollNote> {
    let mut out = roll_to_notes(roll, threshold, velocity);
    if dip <= 0.0 {
        return out;
    }
    let mut split = Vec::with_capacity(out.len());
    for n in out.drain(..) {
        let row = roll.row(n.pitch as usize);
        let mut seg = n.start;
        for f in n.start + 1..n.end.saturating_sub(1) {
            let v = row[f];
            let local_min =
                v <= row[f - 1] && v <= row[f + 1] && (v < row[f - 1] || v < row[f + 1]);
            if !local_min || seg >= f {
                continue;
            }
            let left = row[seg..f].iter().copied().max().unwrap_or(0);
            // The peak to the right: climb while the intensity does not fall.
            let mut g = f + 1;
            while g + 1 < n.end && row[g + 1] >= row[g] {
                g += 1;
            }
            let right = row[g];
            if f32::from(v) < dip * f32::from(left.min(right)) {
                split.push(note_from(row, n.pitch, seg, f, velocity));
                seg = f + 1;
            }
        }
        split.push(note_from(row, n.pitch, seg, n.end, velocity));
    }
    split
}

/// Frames `[a, b)` of `row` (a pitch's intensities) as a note; a learned velocity is their mean.
fn note_from(row: &[u8], pitch: u8, a: usize, b: usize, velocity: Velocity) -> RollNote {
    let vel = match velocity {
        Velocity::Fixed(v) => v.clamp(1, 127),
        Velocity::Learned => {
            let sum: u32 = row[a..b].iter().map(|&x| u32::from(x)).sum();
            u8_to_velocity((sum / (b - a).max(1) as u32) as u8)
        }
    };
    RollNote {
        pitch,
        start: a,
        end: b,
        velocity: vel,
    }
}

/// Paint notes into a roll of `frames` frames (max-combined; notes past the end are cut).
pub fn notes_to_roll(notes: &[RollNote], frames: usize) -> PianoRoll {
    let mut roll = PianoRoll::new(frames);
    for n in notes {
        if (n.pitch as usize) >= PITCHES {
            continue;
        }
        let v = velocity_to_u8(f64::from(n.velocity));
        let end = n.end.min(frames);
        for x in roll
            .row_mut(n.pitch as usize)
            .iter_mut()
            .take(end)
            .skip(n.start)
        {
            *x = (*x).max(v);
        }
    }
    roll
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roll_with_row(pitch: usize, row: &[u8]) -> PianoRoll {
        let mut r = PianoRoll::new(row.len());
        r.row_mut(pitch).copy_from_slice(row);
        r
    }

    fn spans(notes: &[RollNote]) -> Vec<(usize, usize)> {
        notes.iter().map(|n| (n.start, n.end)).collect()
    }

    /// A dip that stays above the threshold is the gap before a re-strike: two notes, the dip
    /// frame in neither.
    #[test]
    fn splits_at_a_dip_above_the_threshold() {
        let r = roll_with_row(60, &[0, 220, 220, 150, 220, 220, 0]);
        assert_eq!(
            spans(&roll_to_notes(&r, 0.4, Velocity::Fixed(100))),
            [(1, 6)]
        );
        let split = roll_to_notes_split(&r, 0.4, 0.75, Velocity::Fixed(100));
        assert_eq!(spans(&split), [(1, 3), (4, 6)]);
        assert!(split.iter().all(|n| n.pitch == 60 && n.velocity == 100));
    }

    /// A shallow wobble is one held note; `dip` 0 is the plain threshold decoder.
    #[test]
    fn keeps_shallow_wobbles_and_plain_decoding() {
        let r = roll_with_row(48, &[230, 200, 215, 190, 225, 0, 200, 60, 200]);
        let plain = roll_to_notes(&r, 0.4, Velocity::Learned);
        assert_eq!(spans(&plain), [(0, 5), (6, 7), (8, 9)]);
        assert_eq!(roll_to_notes_split(&r, 0.4, 0.75, Velocity::Learned), plain);
        assert_eq!(roll_to_notes_split(&r, 0.4, 0.0, Velocity::Learned), plain);
    }

    /// The peak on the right is the top of the next rise, not just the next frame; learned
    /// velocities are those of each part.
    #[test]
    fn compares_with_the_next_peak_and_keeps_part_velocities() {
        let r = roll_with_row(72, &[255, 255, 120, 130, 140, 255, 255]);
        let split = roll_to_notes_split(&r, 0.3, 0.6, Velocity::Learned);
        assert_eq!(spans(&split), [(0, 2), (3, 7)]);
        assert_eq!(split[0].velocity, 127);
        assert!(split[1].velocity < 127);
    }
}
