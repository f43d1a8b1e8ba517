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
                let mut sum = 0u32;
                while f < frames && f32::from(row[f]) / 255.0 > threshold {
                    sum += u32::from(row[f]);
                    f += 1;
                }
                let vel = match velocity {
                    Velocity::Fixed(v) => v.clamp(1, 127),
                    Velocity::Learned => u8_to_velocity((sum / (f - s) as u32) as u8),
                };
                out.push(RollNote {
                    pitch: p as u8,
                    start: s,
                    end: f,
                    velocity: vel,
                });
            } else {
                f += 1;
            }
        }
    }
    out
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
