//! The ideas a user generated, newest last, and which one plays: what a project saves and
//! reopens without regeneration. Notes are stored exactly (ticks), so reopening restores the
//! exact bars; the model's output and what it kept are stored too, so that a new threshold or
//! velocity can be applied to an old idea later without touching the kept notes.

use super::chords::ChordState;
use super::pattern::{PatternNote, PPQ};
use crate::chords::ChordTrack;
use crate::condition::Known;
use crate::generate::generated_notes;
use crate::roll::top_voice;
use crate::roll::{Decode, RollNote, RollSpec, Velocity, PITCHES};
use serde::{Deserialize, Serialize};

/// Ideas kept per project (the oldest goes first).
pub const MAX_IDEAS: usize = 32;
/// Version of this layout, for future migrations.
pub const SESSION_VERSION: u32 = 1;

/// How an idea was made (shown in the editor; never needed to play it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IdeaInfo {
    pub seed: u64,
    pub style: String,
    pub mode: String,
    pub model: String,
    pub method: String,
    pub steps: u32,
    pub cfg: f32,
    /// Threshold and velocity rule the notes were derived with.
    pub threshold: f32,
    pub velocity: String,
    /// Generation time in milliseconds.
    pub millis: u64,
    /// The role it was written for ("Full arrangement" when empty).
    pub role: String,
    /// A variation of the idea before it by this amount (0: not a variation).
    pub vary: f32,
}

/// The model's output for an idea, with what it kept: enough to read its notes again at another
/// threshold or velocity rule without touching the kept (the user's own) notes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredRoll {
    /// The model's window width in frames (older state: the pattern's frames).
    pub frames: usize,
    pub ticks_per_frame: f64,
    /// The dip ratio its notes were split with (see `roll_to_notes_split`); 0 in older state.
    #[serde(default)]
    pub dip: f32,
    /// Base64 of the output `[C, H, W]` as `u8` (`(x + 1) / 2 * 255`); older state: the
    /// `[128, frames]` intensity roll of the pattern.
    pub data: String,
    /// The roll layout the output is in (absent in older state: a 128-pitch intensity roll).
    #[serde(default)]
    pub spec: Option<RollSpec>,
    /// Frames the pattern uses (0 in older state: all of them).
    #[serde(default)]
    pub pattern_frames: usize,
    /// The kept notes, in ticks exactly as they play.
    #[serde(default)]
    pub kept: Vec<[u32; 4]>,
    /// The kept notes on the model's grid and the keep mask (base64 of `[H, W]`), which say
    /// what the model was not free to write.
    #[serde(default)]
    pub known_notes: Vec<RollNote>,
    #[serde(default)]
    pub known_mask: Option<String>,
    /// The generated notes are cut to their top voice (the Melody role).
    #[serde(default)]
    pub top_voice: bool,
}

impl StoredRoll {
    pub fn new(
        spec: RollSpec,
        raw: &[f32],
        known: Option<&Known>,
        kept: &[PatternNote],
        ticks_per_frame: f64,
        pattern_frames: usize,
        dip: f32,
    ) -> Self {
        let bytes: Vec<u8> = raw
            .iter()
            .map(|&x| {
                let u = ((x + 1.0) * 0.5).clamp(0.0, 1.0);
                if u.is_nan() {
                    0
                } else {
                    (u * 255.0 + 0.5) as u8
                }
            })
            .collect();
        Self {
            frames: spec.frames,
            ticks_per_frame,
            dip,
            data: base64_encode(&bytes),
            pattern_frames,
            kept: kept
                .iter()
                .map(|n| [n.start, n.end, u32::from(n.pitch), u32::from(n.velocity)])
                .collect(),
            known_notes: known.map(|k| k.notes.clone()).unwrap_or_default(),
            known_mask: known.map(|k| base64_encode(&k.mask)),
            spec: Some(spec),
            top_voice: false,
        }
    }

    /// The stored output `[C, H, W]` in `[-1, 1]` when it was made by a model of layout `spec`
    /// (what a variation starts from); `None` for another model's or unreadable data.
    pub fn raw_for(&self, spec: &RollSpec) -> Option<Vec<f32>> {
        if self.spec.as_ref() != Some(spec) {
            return None;
        }
        self.raw()
    }

    fn raw(&self) -> Option<Vec<f32>> {
        let bytes = base64_decode(&self.data)?;
        if bytes.len() != self.spec().numel() {
            return None;
        }
        Some(
            bytes
                .iter()
                .map(|&b| f32::from(b) / 255.0 * 2.0 - 1.0)
                .collect(),
        )
    }

    /// The layout of the stored output (older state: what it was then).
    fn spec(&self) -> RollSpec {
        self.spec.clone().unwrap_or_else(|| RollSpec {
            grid: Default::default(),
            pitch_low: 0,
            pitches: PITCHES,
            frames: self.frames,
            articulation: self.dip > 0.0,
            channels: Default::default(),
            conditions: Default::default(),
        })
    }

    /// The notes read again at `threshold` and `velocity`, in ticks: the kept notes exactly, the
    /// generated ones from the stored output. `None` when the stored data is unreadable.
    pub fn notes(&self, threshold: f32, velocity: Velocity) -> Option<Vec<PatternNote>> {
        let spec = self.spec();
        let raw = self.raw()?;
        let known = match &self.known_mask {
            Some(m) => Some(Known {
                notes: self.known_notes.clone(),
                mask: base64_decode(m).filter(|m| m.len() == spec.pitches * spec.frames)?,
            }),
            None => None,
        };
        let d = Decode {
            threshold,
            dip: self.dip,
            velocity,
        };
        let frames = if self.pattern_frames > 0 {
            self.pattern_frames.min(spec.frames)
        } else {
            spec.frames
        };
        let tick = |f: usize| (f as f64 * self.ticks_per_frame).round().max(0.0) as u32;
        let mut generated = generated_notes(&spec, &raw, known.as_ref(), &d);
        if self.top_voice {
            generated = top_voice(&generated);
        }
        let mut notes: Vec<PatternNote> = generated
            .into_iter()
            .filter(|n| n.start < frames)
            .map(|n| PatternNote {
                start: tick(n.start),
                end: tick(n.end.min(frames)),
                pitch: n.pitch,
                velocity: n.velocity,
            })
            .filter(|n| n.end > n.start)
            .collect();
        notes.extend(
            self.kept
                .iter()
                .map(|&[start, end, pitch, velocity]| PatternNote {
                    start,
                    end,
                    pitch: pitch.min(127) as u8,
                    velocity: velocity.clamp(1, 127) as u8,
                }),
        );
        notes.sort_unstable();
        Some(notes)
    }
}

/// One generated (or loaded) pattern.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Idea {
    pub id: u64,
    pub bars: u32,
    /// Ticks (PPQ 960) per bar.
    pub bar_ticks: u32,
    /// `[start, end, pitch, velocity]`, ticks from the pattern start: exactly what plays.
    pub notes: Vec<[u32; 4]>,
    #[serde(default)]
    pub roll: Option<StoredRoll>,
    /// The chords it followed, ticks from the pattern start, in the key of its notes (before
    /// the plugin's Transpose); `None`: it followed none.
    #[serde(default)]
    pub chords: Option<ChordTrack>,
    #[serde(default)]
    pub info: IdeaInfo,
}

impl Idea {
    pub fn pattern_notes(&self) -> Vec<PatternNote> {
        self.notes
            .iter()
            .map(|&[start, end, pitch, velocity]| PatternNote {
                start,
                end,
                pitch: pitch.min(127) as u8,
                velocity: velocity.clamp(1, 127) as u8,
            })
            .collect()
    }

    pub fn set_notes(&mut self, notes: &[PatternNote]) {
        self.notes = notes
            .iter()
            .map(|n| [n.start, n.end, u32::from(n.pitch), u32::from(n.velocity)])
            .collect();
    }

    pub fn len_ticks(&self) -> u32 {
        self.bars.saturating_mul(self.bar_ticks)
    }

    /// Re-derive the generated notes from the stored output with a new threshold or velocity
    /// rule; the kept notes stay exactly as they are. `false` when the idea has no stored
    /// output (loaded from elsewhere) or it cannot be read.
    pub fn rederive(&mut self, threshold: f32, velocity: Velocity) -> bool {
        let Some(notes) = self
            .roll
            .as_ref()
            .and_then(|r| r.notes(threshold, velocity))
        else {
            return false;
        };
        self.set_notes(&notes);
        self.info.threshold = threshold;
        self.info.velocity = velocity_label(velocity);
        true
    }
}

/// "learned" or "fixed:N", as the CLI spells it.
pub fn velocity_label(v: Velocity) -> String {
    match v {
        Velocity::Learned => "learned".into(),
        Velocity::Fixed(n) => format!("fixed:{n}"),
    }
}

/// Everything a project saves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Session {
    pub version: u32,
    pub ideas: Vec<Idea>,
    /// Index of the idea that plays.
    pub current: usize,
    /// The checkpoint the user chose (`None` = the embedded default).
    pub checkpoint: Option<String>,
    pub next_id: u64,
    /// The typed progression and the chords followed from the input.
    pub chords: ChordState,
}

impl Default for Session {
    fn default() -> Self {
        Self {
            version: SESSION_VERSION,
            ideas: Vec::new(),
            current: 0,
            checkpoint: None,
            next_id: 1,
            chords: ChordState::default(),
        }
    }
}

impl Session {
    /// Make a loaded session consistent (index in range, ids unique and ahead of `next_id`).
    pub fn sanitize(&mut self) {
        if self.ideas.len() > MAX_IDEAS {
            let extra = self.ideas.len() - MAX_IDEAS;
            self.ideas.drain(..extra);
            self.current = self.current.saturating_sub(extra);
        }
        if self.current >= self.ideas.len() {
            self.current = self.ideas.len().saturating_sub(1);
        }
        self.chords.followed.sanitize();
        let max_id = self.ideas.iter().map(|i| i.id).max().unwrap_or(0);
        self.next_id = self.next_id.max(max_id + 1).max(1);
        for idea in &mut self.ideas {
            if idea.bar_ticks == 0 {
                idea.bar_ticks = 4 * PPQ;
            }
            idea.bars = idea.bars.clamp(1, 16);
        }
    }

    pub fn current_idea(&self) -> Option<&Idea> {
        self.ideas.get(self.current)
    }

    pub fn current_idea_mut(&mut self) -> Option<&mut Idea> {
        self.ideas.get_mut(self.current)
    }

    /// Append a new idea (it becomes current) and return its id.
    pub fn push(&mut self, mut idea: Idea) -> u64 {
        idea.id = self.next_id;
        self.next_id += 1;
        self.ideas.push(idea);
        if self.ideas.len() > MAX_IDEAS {
            self.ideas.remove(0);
        }
        self.current = self.ideas.len() - 1;
        self.next_id - 1
    }

    /// Move through the history by `delta` (-1 = previous idea); `false` at either end.
    pub fn step(&mut self, delta: isize) -> bool {
        let target = self.current as isize + delta;
        if self.ideas.is_empty() || target < 0 || target as usize >= self.ideas.len() {
            return false;
        }
        self.current = target as usize;
        true
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (the state is JSON, so bytes travel as text).
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Inverse of [`base64_encode`]; `None` on any malformed input.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = B64.iter().position(|&x| x == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for n in 0..10 {
            let data: Vec<u8> = (0..n).map(|i| (i * 37 + 5) as u8).collect();
            assert_eq!(base64_decode(&base64_encode(&data)).unwrap(), data);
        }
        assert_eq!(base64_encode(b"Man"), "TWFu");
        assert_eq!(base64_encode(b"Ma"), "TWE=");
    }
}
