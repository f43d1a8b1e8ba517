//! Automatable parameters (ids are stable: never rename one) and the persisted session.
//! Callbacks only raise flags; the worker does the work.

use super::keymap::{KeyMap, Scale};
use super::process::PlayerSettings;
use super::shared::Shared;
use super::state::SessionCell;
use crate::generate::Method;
use crate::roll::Velocity;
use nice_plug::prelude::*;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Pattern length.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bars {
    #[id = "1"]
    #[name = "1 bar"]
    One,
    #[id = "2"]
    #[name = "2 bars"]
    Two,
    #[id = "4"]
    #[name = "4 bars"]
    Four,
    #[id = "8"]
    #[name = "8 bars"]
    Eight,
}

impl Bars {
    pub fn count(self) -> u32 {
        match self {
            Bars::One => 1,
            Bars::Two => 2,
            Bars::Four => 4,
            Bars::Eight => 8,
        }
    }
}

/// The sampler's method; `Auto` (the default) is the loaded model's recommendation
/// (`meta.sampler`), so a few-step model plays at its own settings. Projects saved before `Auto`
/// existed stored "euler" or "heun" and keep them.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodParam {
    #[id = "auto"]
    #[name = "Auto (model's)"]
    Auto,
    #[id = "euler"]
    Euler,
    #[id = "heun"]
    Heun,
}

impl MethodParam {
    /// `None` for the model's own method.
    pub fn method(self) -> Option<Method> {
        match self {
            MethodParam::Auto => None,
            MethodParam::Euler => Some(Method::Euler),
            MethodParam::Heun => Some(Method::Heun),
        }
    }
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum VelocityMode {
    #[id = "learned"]
    Learned,
    #[id = "fixed"]
    Fixed,
}

/// What Generate keeps (the plugin's workflows; each maps onto the core's one keep spec,
/// [`crate::condition::Keep`], in `generate::keep_for`). The parameter id stays "mode" and the
/// variant ids are unchanged, so saved projects load.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workflow {
    /// A fresh idea.
    #[id = "new"]
    New,
    /// Keep what was captured from the MIDI input (or the current idea's second half) as the
    /// first half and continue it.
    #[id = "continue"]
    #[name = "Continue input"]
    Continue,
    /// Keep the current idea except bars `fill from..=fill to`.
    #[id = "fill"]
    #[name = "Fill bars"]
    Fill,
    /// Keep the current idea's notes inside the pitch band, regenerate the rest.
    #[id = "band"]
    #[name = "Keep pitch band"]
    KeepBand,
}

/// The part the plugin writes over the chords; how each maps onto the pitch band and the keep
/// spec is in [`super::roles`].
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything (the workflow decides what is kept).
    #[id = "full"]
    #[name = "Full arrangement"]
    Full,
    /// A single line above the split.
    #[id = "melody"]
    #[name = "Melody"]
    Melody,
    /// Only below the split.
    #[id = "bass"]
    #[name = "Bass line"]
    Bass,
    /// Around a kept melody.
    #[id = "accomp"]
    #[name = "Accompaniment"]
    Accompaniment,
}

/// Where the chords an idea follows come from.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChordSource {
    /// No chords: the model picks its own harmony.
    #[id = "off"]
    Off,
    /// The progression typed in the editor's chord field (saved with the project).
    #[id = "typed"]
    #[name = "Progression"]
    Typed,
    /// The chords played into the plugin, estimated per bar as they come in.
    #[id = "follow"]
    #[name = "Follow input"]
    Follow,
}

/// Live mode: a new idea every N bars (or every loop), and one on every change of a generation
/// parameter; each takes over at the next bar line.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Live {
    #[id = "off"]
    Off,
    #[id = "bar"]
    #[name = "Every bar"]
    EveryBar,
    #[id = "2bars"]
    #[name = "Every 2 bars"]
    Every2Bars,
    #[id = "4bars"]
    #[name = "Every 4 bars"]
    Every4Bars,
    #[id = "loop"]
    #[name = "Every loop"]
    EveryLoop,
}

impl Live {
    /// Bars between new ideas: `None` when off, `Some(0)` for every loop.
    pub fn bars(self) -> Option<u32> {
        match self {
            Live::Off => None,
            Live::EveryBar => Some(1),
            Live::Every2Bars => Some(2),
            Live::Every4Bars => Some(4),
            Live::EveryLoop => Some(0),
        }
    }
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleParam {
    #[id = "off"]
    Off,
    #[id = "major"]
    Major,
    #[id = "minor"]
    Minor,
    #[id = "harmonic_minor"]
    #[name = "Harmonic minor"]
    HarmonicMinor,
    #[id = "dorian"]
    Dorian,
    #[id = "mixolydian"]
    Mixolydian,
    #[id = "penta_major"]
    #[name = "Pentatonic major"]
    PentatonicMajor,
    #[id = "penta_minor"]
    #[name = "Pentatonic minor"]
    PentatonicMinor,
    #[id = "blues"]
    Blues,
}

impl From<ScaleParam> for Scale {
    fn from(s: ScaleParam) -> Self {
        match s {
            ScaleParam::Off => Scale::Off,
            ScaleParam::Major => Scale::Major,
            ScaleParam::Minor => Scale::Minor,
            ScaleParam::HarmonicMinor => Scale::HarmonicMinor,
            ScaleParam::Dorian => Scale::Dorian,
            ScaleParam::Mixolydian => Scale::Mixolydian,
            ScaleParam::PentatonicMajor => Scale::PentatonicMajor,
            ScaleParam::PentatonicMinor => Scale::PentatonicMinor,
            ScaleParam::Blues => Scale::Blues,
        }
    }
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyParam {
    #[id = "c"]
    C,
    #[id = "cs"]
    #[name = "C#"]
    Cs,
    #[id = "d"]
    D,
    #[id = "ds"]
    #[name = "D#"]
    Ds,
    #[id = "e"]
    E,
    #[id = "f"]
    F,
    #[id = "fs"]
    #[name = "F#"]
    Fs,
    #[id = "g"]
    G,
    #[id = "gs"]
    #[name = "G#"]
    Gs,
    #[id = "a"]
    A,
    #[id = "as"]
    #[name = "A#"]
    As,
    #[id = "b"]
    B,
}

/// Style slots: 0 = the model's default class, `i` = class `i - 1` of the loaded checkpoint.
pub const MAX_STYLES: i32 = 64;

const NOTE_NAMES: [&str; 12] = [
    "C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B",
];

/// "auto (model's)" or the value.
fn auto_or(auto: bool, value: String) -> String {
    if auto {
        "auto (model's)".into()
    } else {
        value
    }
}

fn note_name(p: i32) -> String {
    let p = p.clamp(0, 127);
    format!("{}{} ({p})", NOTE_NAMES[(p % 12) as usize], p / 12 - 1)
}

/// "C4 (60)", "60" or "C#4" -> 60 (the inverse of [`note_name`], for hosts' text entry).
fn parse_note(s: &str) -> Option<i32> {
    let s = s.trim();
    if let Some(inner) = s.rsplit_once('(').and_then(|(_, r)| r.strip_suffix(')')) {
        return inner.trim().parse().ok();
    }
    if let Ok(n) = s.parse() {
        return Some(n);
    }
    let upper = s.to_ascii_uppercase();
    let (name, octave) = upper.split_at(upper.find(|c: char| c == '-' || c.is_ascii_digit())?);
    let pc = NOTE_NAMES.iter().position(|&n| n == name)? as i32;
    Some((octave.parse::<i32>().ok()? + 1) * 12 + pc)
}

#[derive(Params)]
pub struct JitParams {
    /// Ideas, the playing one, the chords and the checkpoint path: saved with the project.
    #[persist = "session"]
    pub session: SessionCell,

    #[id = "bars"]
    pub bars: EnumParam<Bars>,
    /// 0 = the model's recommended steps.
    #[id = "steps"]
    pub steps: IntParam,
    #[id = "method"]
    pub method: EnumParam<MethodParam>,
    /// 0 = the model's recommended guidance.
    #[id = "cfg"]
    pub cfg: FloatParam,
    #[id = "style"]
    pub style: IntParam,
    #[id = "seed"]
    pub seed: IntParam,
    #[id = "new_seed"]
    pub new_seed: BoolParam,
    #[id = "threshold"]
    pub threshold: FloatParam,
    #[id = "vel_mode"]
    pub velocity_mode: EnumParam<VelocityMode>,
    #[id = "velocity"]
    pub velocity: IntParam,
    #[id = "transpose"]
    pub transpose: IntParam,
    #[id = "pitch_lo"]
    pub lowest: IntParam,
    #[id = "pitch_hi"]
    pub highest: IntParam,
    #[id = "scale_key"]
    pub scale_key: EnumParam<KeyParam>,
    #[id = "scale"]
    pub scale: EnumParam<ScaleParam>,
    #[id = "channel"]
    pub channel: IntParam,
    #[id = "loop"]
    pub looping: BoolParam,
    #[id = "regen_every"]
    pub regen_every: IntParam,
    /// The workflow (id "mode" from when the enum was called `Mode`: never rename an id).
    #[id = "mode"]
    pub workflow: EnumParam<Workflow>,
    #[id = "fill_from"]
    pub fill_from: IntParam,
    #[id = "fill_to"]
    pub fill_to: IntParam,
    #[id = "band_lo"]
    pub band_lo: IntParam,
    #[id = "band_hi"]
    pub band_hi: IntParam,
    #[id = "role"]
    pub role: EnumParam<Role>,
    /// Melody above, bass below this pitch.
    #[id = "role_split"]
    pub split: IntParam,
    #[id = "chords"]
    pub chords: EnumParam<ChordSource>,
    /// How far Vary (and Live mode) re-noises the current idea: 0 keeps it, 1 is a new idea.
    #[id = "vary"]
    pub vary_amount: FloatParam,
    #[id = "live"]
    pub live: EnumParam<Live>,
    /// Record incoming notes as the prompt for "Continue input" (they are not passed through).
    #[id = "capture"]
    pub capture: BoolParam,
    /// Play on the fallback clock (120 BPM, 4/4 from plugin start) while the host is stopped.
    #[id = "free_run"]
    pub free_run: BoolParam,
    #[id = "bypass"]
    pub bypass: BoolParam,
}

/// A callback that only raises `flags.changed` (Live mode regenerates on it).
fn changed<T: 'static>(shared: &Arc<Shared>) -> Arc<dyn Fn(T) + Send + Sync> {
    let s = shared.clone();
    Arc::new(move |_| s.flags.changed.store(true, Ordering::Release))
}

impl JitParams {
    pub fn new(shared: &Arc<Shared>) -> Self {
        let rederive = {
            let s = shared.clone();
            move || s.flags.rederive.store(true, Ordering::Release)
        };
        let r1 = rederive.clone();
        let r2 = rederive.clone();
        let r3 = rederive;
        let names = shared.clone();
        let names_back = shared.clone();
        let c = shared;
        let note_param = |name: &str, default: i32| {
            IntParam::new(name, default, IntRange::Linear { min: 0, max: 127 })
                .with_value_to_string(Arc::new(note_name))
                .with_string_to_value(Arc::new(parse_note))
        };
        Self {
            session: SessionCell::new(shared.state.clone()),
            bars: EnumParam::new("Bars", Bars::Four).with_callback(changed(c)),
            steps: IntParam::new("Steps", 0, IntRange::Linear { min: 0, max: 100 })
                .with_value_to_string(Arc::new(|v| auto_or(v <= 0, v.to_string())))
                .with_string_to_value(Arc::new(|s| match s.trim() {
                    t if t.starts_with("auto") => Some(0),
                    t => t.parse().ok(),
                }))
                .with_callback(changed(c)),
            method: EnumParam::new("Method", MethodParam::Auto).with_callback(changed(c)),
            cfg: FloatParam::new(
                "CFG scale",
                0.0,
                FloatRange::Linear {
                    min: 0.0,
                    max: 10.0,
                },
            )
            .with_step_size(0.1)
            .with_value_to_string(Arc::new(|v| auto_or(v <= 0.0, format!("{v:.1}"))))
            .with_string_to_value(Arc::new(|s| match s.trim() {
                t if t.starts_with("auto") => Some(0.0),
                t => t.parse().ok(),
            }))
            .with_callback(changed(c)),
            style: IntParam::new(
                "Style",
                0,
                IntRange::Linear {
                    min: 0,
                    max: MAX_STYLES,
                },
            )
            .with_value_to_string(Arc::new(move |v| names.style_name(v)))
            .with_string_to_value(Arc::new(move |s| names_back.style_slot(s)))
            .with_callback(changed(c)),
            seed: IntParam::new(
                "Seed",
                1,
                IntRange::Linear {
                    min: 0,
                    max: 99_999,
                },
            )
            .with_callback(changed(c)),
            new_seed: BoolParam::new("New seed each time", true),
            threshold: FloatParam::new(
                "Note threshold",
                0.35,
                FloatRange::Linear {
                    min: 0.05,
                    max: 0.95,
                },
            )
            .with_step_size(0.01)
            .with_callback(Arc::new(move |_| r1())),
            velocity_mode: EnumParam::new("Velocity", VelocityMode::Fixed)
                .with_callback(Arc::new(move |_| r2())),
            velocity: IntParam::new("Fixed velocity", 100, IntRange::Linear { min: 1, max: 127 })
                .with_callback(Arc::new(move |_| r3())),
            transpose: IntParam::new("Transpose", 0, IntRange::Linear { min: -24, max: 24 })
                .with_unit(" st"),
            lowest: note_param("Lowest pitch", 0),
            highest: note_param("Highest pitch", 127),
            scale_key: EnumParam::new("Key", KeyParam::C),
            scale: EnumParam::new("Scale snap", ScaleParam::Off),
            channel: IntParam::new("Output channel", 1, IntRange::Linear { min: 1, max: 16 }),
            looping: BoolParam::new("Loop", true),
            regen_every: IntParam::new(
                "Regenerate every N loops",
                0,
                IntRange::Linear { min: 0, max: 32 },
            )
            .with_value_to_string(Arc::new(|v| {
                if v == 0 {
                    "never".into()
                } else {
                    v.to_string()
                }
            }))
            .with_string_to_value(Arc::new(|s| match s.trim() {
                "never" => Some(0),
                t => t.parse().ok(),
            })),
            workflow: EnumParam::new("Generate mode", Workflow::New).with_callback(changed(c)),
            fill_from: IntParam::new("Fill from bar", 3, IntRange::Linear { min: 1, max: 8 })
                .with_callback(changed(c)),
            fill_to: IntParam::new("Fill to bar", 4, IntRange::Linear { min: 1, max: 8 })
                .with_callback(changed(c)),
            band_lo: note_param("Band lowest", 0).with_callback(changed(c)),
            band_hi: note_param("Band highest", 52).with_callback(changed(c)),
            role: EnumParam::new("Role", Role::Full).with_callback(changed(c)),
            split: note_param("Role split", 55).with_callback(changed(c)),
            chords: EnumParam::new("Chords", ChordSource::Off).with_callback(changed(c)),
            vary_amount: FloatParam::new(
                "Variation amount",
                0.5,
                FloatRange::Linear { min: 0.0, max: 1.0 },
            )
            .with_step_size(0.01)
            .with_callback(changed(c)),
            live: EnumParam::new("Live mode", Live::Off).with_callback(changed(c)),
            capture: BoolParam::new("Capture input", false),
            free_run: BoolParam::new("Play when stopped", false),
            bypass: BoolParam::new("Bypass", false).make_bypass(),
        }
    }

    /// The velocity rule for deriving notes.
    pub fn velocity_rule(&self) -> Velocity {
        match self.velocity_mode.value() {
            VelocityMode::Learned => Velocity::Learned,
            VelocityMode::Fixed => Velocity::Fixed(self.velocity.value().clamp(1, 127) as u8),
        }
    }

    /// What the player needs this block (atomic reads only).
    pub fn player_settings(&self) -> PlayerSettings {
        PlayerSettings {
            looping: self.looping.value(),
            free_run: self.free_run.value(),
            bypass: self.bypass.value(),
            keymap: KeyMap::new(
                self.transpose.value(),
                self.lowest.value().clamp(0, 127) as u8,
                self.highest.value().clamp(0, 127) as u8,
                self.scale_key.value() as u8,
                self.scale.value().into(),
            ),
            channel: (self.channel.value().clamp(1, 16) - 1) as u8,
            regen_every: self.regen_every.value().max(0) as u32,
            live_bars: self.live.value().bars(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn note_names_parse_back() {
        for p in 0..128 {
            assert_eq!(parse_note(&note_name(p)), Some(p));
        }
        assert_eq!(parse_note("C#4"), Some(61));
        assert_eq!(parse_note("c-1"), Some(0));
        assert_eq!(parse_note("nonsense"), None);
    }
}
