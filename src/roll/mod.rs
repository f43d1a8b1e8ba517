//! Piano rolls: the image the model sees. Row = MIDI pitch (0..127), column = time frame.
//!
//! Values are `u8` intensities: `round(min(velocity, 127) / 127 * 255)`, which is exactly what the
//! original's dataset stores, so nothing it keeps is lost. As a model input the roll is the image
//! `[1, 128, T]` scaled to `[-1, 1]` by `u8 / 255 * 2 - 1`.

mod bars;
mod beats;
mod codec;
mod grid;
mod notes;
mod png;
mod seconds;
mod spec;
mod voice;

pub use bars::{estimate_bar_offset, read_pop909_downbeats, resolve_meter};
pub use codec::{articulate, one_voice_per_pitch, Decode};
pub use grid::{score_to_roll, BeatsAlignment, Grid, GridNote, RollOptions, ScoreRoll, MAX_FRAMES};
pub use notes::{
    default_dip, notes_to_roll, roll_to_notes, roll_to_notes_split, RollNote, Velocity, DEFAULT_DIP,
};
pub use png::{render_png, write_png};
pub use seconds::pretty_midi_roll;
pub use spec::{Channels, Conditions, RollSpec};
pub use voice::top_voice;

/// Number of pitch rows.
pub const PITCHES: usize = 128;

/// A `[128, frames]` grid of `u8` intensities, row-major by pitch.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PianoRoll {
    frames: usize,
    data: Vec<u8>,
}

/// pretty_midi velocity (possibly summed or pitch-bent) to the stored `u8`, computed in f32
/// exactly as the original: `clip(v / 127, 0, 1)`, then `(x * 255 + 0.5) as u8`.
pub fn velocity_to_u8(v: f64) -> u8 {
    let x = ((v as f32) / 127.0f32).clamp(0.0, 1.0);
    (x * 255.0f32 + 0.5f32) as u8
}

/// The MIDI velocity (1..=127) an intensity stands for.
pub fn u8_to_velocity(v: u8) -> u8 {
    ((f32::from(v) * 127.0 / 255.0).round() as u8).clamp(1, 127)
}

impl PianoRoll {
    /// An empty (silent) roll of `frames` columns.
    pub fn new(frames: usize) -> Self {
        Self {
            frames,
            data: vec![0; PITCHES * frames],
        }
    }

    /// Wrap raw row-major `[128, frames]` data.
    pub fn from_raw(frames: usize, data: Vec<u8>) -> Option<Self> {
        (data.len() == PITCHES * frames).then_some(Self { frames, data })
    }

    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Row-major `[128, frames]` data.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }

    pub fn into_raw(self) -> Vec<u8> {
        self.data
    }

    #[inline]
    pub fn get(&self, pitch: usize, frame: usize) -> u8 {
        self.data[pitch * self.frames + frame]
    }

    #[inline]
    pub fn set(&mut self, pitch: usize, frame: usize, v: u8) {
        self.data[pitch * self.frames + frame] = v;
    }

    /// One pitch's row.
    pub fn row(&self, pitch: usize) -> &[u8] {
        &self.data[pitch * self.frames..(pitch + 1) * self.frames]
    }

    pub fn row_mut(&mut self, pitch: usize) -> &mut [u8] {
        let f = self.frames;
        &mut self.data[pitch * f..(pitch + 1) * f]
    }

    /// Frames `start..start + len`, zero-padded past the end.
    pub fn crop(&self, start: usize, len: usize) -> PianoRoll {
        let mut out = PianoRoll::new(len);
        if start < self.frames {
            let n = len.min(self.frames - start);
            for p in 0..PITCHES {
                out.row_mut(p)[..n].copy_from_slice(&self.row(p)[start..start + n]);
            }
        }
        out
    }

    /// Shift by `semitones`; `None` if a sounding note would leave 0..=127.
    pub fn transpose(&self, semitones: i32) -> Option<PianoRoll> {
        if semitones == 0 {
            return Some(self.clone());
        }
        if let Some((lo, hi)) = self.pitch_range() {
            let (lo, hi) = (i32::from(lo) + semitones, i32::from(hi) + semitones);
            if lo < 0 || hi > 127 {
                return None;
            }
        }
        let mut out = PianoRoll::new(self.frames);
        for p in 0..PITCHES as i32 {
            let q = p + semitones;
            if (0..PITCHES as i32).contains(&q) {
                out.row_mut(q as usize)
                    .copy_from_slice(self.row(p as usize));
            }
        }
        Some(out)
    }

    /// Lowest and highest pitch with any non-zero value.
    pub fn pitch_range(&self) -> Option<(u8, u8)> {
        let active = |p: &usize| self.row(*p).iter().any(|&v| v > 0);
        let lo = (0..PITCHES).find(active)?;
        let hi = (0..PITCHES).rev().find(active)?;
        Some((lo as u8, hi as u8))
    }

    /// Fraction of cells at or above `threshold` (of full scale, 0..1).
    pub fn density(&self, threshold: f32) -> f32 {
        if self.data.is_empty() {
            return 0.0;
        }
        let t = threshold * 255.0;
        let n = self.data.iter().filter(|&&v| f32::from(v) >= t).count();
        n as f32 / self.data.len() as f32
    }

    /// Number of cells above half scale in a frame range (emptiness test for crops).
    pub fn active_cells(&self, start: usize, len: usize) -> usize {
        let end = (start + len).min(self.frames);
        if start >= end {
            return 0;
        }
        (0..PITCHES)
            .map(|p| self.row(p)[start..end].iter().filter(|&&v| v > 127).count())
            .sum()
    }

    /// Maximum and mean intensity in 0..1.
    pub fn velocity_stats(&self) -> (f32, f32) {
        if self.data.is_empty() {
            return (0.0, 0.0);
        }
        let max = self.data.iter().copied().max().unwrap_or(0);
        let sum: u64 = self.data.iter().map(|&v| u64::from(v)).sum();
        (
            f32::from(max) / 255.0,
            sum as f32 / self.data.len() as f32 / 255.0,
        )
    }

    /// The model input `[128, frames]` in `[-1, 1]`: `u8 / 255 * 2 - 1`, as the original engine.
    pub fn to_model_input(&self) -> Vec<f32> {
        self.data
            .iter()
            .map(|&v| f32::from(v) / 255.0 * 2.0 - 1.0)
            .collect()
    }

    /// From a model output `[128, frames]` in `[-1, 1]`: `(x + 1) / 2`, clamped, to `u8`.
    pub fn from_model_output(frames: usize, x: &[f32]) -> Option<PianoRoll> {
        if x.len() != PITCHES * frames {
            return None;
        }
        let data = x
            .iter()
            .map(|&v| {
                let u = ((v + 1.0) * 0.5).clamp(0.0, 1.0);
                if u.is_nan() {
                    0
                } else {
                    (u * 255.0 + 0.5) as u8
                }
            })
            .collect();
        Some(PianoRoll { frames, data })
    }

    /// Per-pitch count of active frames (>= half scale).
    pub fn pitch_histogram(&self) -> [u64; PITCHES] {
        let mut h = [0u64; PITCHES];
        for (p, slot) in h.iter_mut().enumerate() {
            *slot = self.row(p).iter().filter(|&&v| v > 127).count() as u64;
        }
        h
    }
}
