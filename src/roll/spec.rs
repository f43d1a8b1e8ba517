//! What a roll fed to a model looks like: its grid, pitch window, width, channel layout and the
//! conditioning channels beside it. A checkpoint carries one, so every model reads and writes
//! rolls exactly as it was trained.

use super::Grid;
use serde::{Deserialize, Serialize};

/// How notes become the model's image channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channels {
    /// One channel of note intensity (velocity), the original's. A re-strike shows only as a
    /// one-frame gap when the roll is articulated, and the decoder guesses notes back from it.
    #[default]
    Intensity,
    /// Two channels: onsets, carrying the velocity (`0.5 + 0.5 * velocity / 127` at a note's
    /// first frame, so an onset is never fainter than half scale), and sustain (full scale while
    /// a note sounds). Re-strikes, repeated 16ths and note boundaries are explicit.
    OnsetSustain,
}

impl Channels {
    /// Image channels of a roll in this layout.
    pub fn count(self) -> usize {
        match self {
            Channels::Intensity => 1,
            Channels::OnsetSustain => 2,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Channels::Intensity => "1 channel (intensity)",
            Channels::OnsetSustain => "2 channels (onset with velocity, sustain)",
        }
    }
}

/// The conditioning channels a model takes beside the noisy roll. Each can be left empty (all
/// zeros), which is how training drops it and how guidance forms its unconditional pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Conditions {
    /// The known part of the roll (every roll channel) plus its mask: continuations, fills,
    /// kept pitch bands, kept parts.
    #[serde(default)]
    pub known: bool,
    /// A chord track: chord tones and bass per frame, in every octave.
    #[serde(default)]
    pub chords: bool,
}

impl Conditions {
    /// Conditioning channels for rolls of `roll_channels` channels.
    pub fn count(self, roll_channels: usize) -> usize {
        usize::from(self.known) * (roll_channels + 1) + usize::from(self.chords) * 2
    }

    pub fn any(self) -> bool {
        self.known || self.chords
    }

    pub fn describe(self) -> String {
        match (self.known, self.chords) {
            (false, false) => "none".into(),
            (true, false) => "known notes + mask".into(),
            (false, true) => "chords".into(),
            (true, true) => "known notes + mask, chords".into(),
        }
    }
}

/// What a roll fed to the model looks like.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollSpec {
    pub grid: Grid,
    /// Lowest pitch of row 0 (0 for the full 128-pitch roll).
    pub pitch_low: u8,
    /// Number of pitch rows (the model's `input_h`).
    pub pitches: usize,
    /// Frames per window (the model's `input_w`).
    pub frames: usize,
    /// Whether re-struck notes were kept apart in training data (a one-frame gap; intensity
    /// rolls only).
    #[serde(default)]
    pub articulation: bool,
    #[serde(default)]
    pub channels: Channels,
    #[serde(default)]
    pub conditions: Conditions,
}

impl RollSpec {
    /// The original's data: 16 frames/s, 128 x `frames`, pretty_midi parity.
    pub fn seconds(fps: u32, frames: usize) -> Self {
        Self {
            grid: Grid::Seconds { fps },
            pitch_low: 0,
            pitches: 128,
            frames,
            articulation: false,
            channels: Channels::Intensity,
            conditions: Conditions::default(),
        }
    }

    /// Roll channels (the model's input and output image).
    pub fn roll_channels(&self) -> usize {
        self.channels.count()
    }

    /// Conditioning channels beside them.
    pub fn cond_channels(&self) -> usize {
        self.conditions.count(self.roll_channels())
    }

    /// Values in one roll image `[C, pitches, frames]`.
    pub fn numel(&self) -> usize {
        self.roll_channels() * self.pitches * self.frames
    }

    /// The row of `pitch`, if the window holds it.
    pub fn row(&self, pitch: u8) -> Option<usize> {
        let r = usize::from(pitch).checked_sub(usize::from(self.pitch_low))?;
        (r < self.pitches).then_some(r)
    }
}
