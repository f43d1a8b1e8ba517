//! One generation on the worker thread, in the host's terms: the host's bars and meter become
//! frames of the model's grid, the notes a workflow or role keeps (in ticks) become a prompt,
//! the chords (in ticks) a chord track on the grid, a variation the current idea's stored
//! output, and the core's [`Generator`] does the rest (conditioning, inpainting, decoding). The
//! kept notes come back in ticks exactly as they were; only the generated notes are converted
//! from frames.

use super::chords::on_grid;
use super::history::{velocity_label, Idea, IdeaInfo, StoredRoll};
use super::params::{Role, Workflow};
use super::pattern::{bar_ticks, PatternNote, PPQ};
use super::roles::{role_keep, single_line};
use super::shared::ModelInfo;
use crate::checkpoint::CheckpointMeta;
use crate::chords::ChordTrack;
use crate::condition::Keep;
use crate::generate::{Generator, Hooks, Method, Prompt, Request, SamplerConfig, Vary};
use crate::roll::top_voice;
use crate::roll::{Decode, Grid, RollNote, Velocity};

use std::sync::atomic::AtomicBool;

/// What the editor shows about a loaded model.
pub fn model_info(gen: &Generator) -> ModelInfo {
    let m = gen.meta();
    ModelInfo {
        name: if m.name.is_empty() {
            "unnamed".into()
        } else {
            m.name.clone()
        },
        source: gen.weights.source.clone(),
        preset: m.config.preset_name().unwrap_or("custom").to_string(),
        params: gen.net.param_count(),
        device: if gen.device.is_cpu() {
            "CPU".into()
        } else {
            format!("{:?}", gen.device.location())
        },
        classes: (0..m.config.num_classes)
            .map(|i| m.classes.get(i).cloned().unwrap_or_else(|| i.to_string()))
            .collect(),
        grid: m.roll.grid.describe(),
        frames: m.roll.frames,
        chords: m.roll.conditions.chords,
        sampler: format!(
            "{} {}, CFG {:.1}",
            m.sampler.method, m.sampler.steps, m.sampler.cfg_scale
        ),
    }
}

/// Everything one generation needs, snapshotted from the parameters when it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct GenSettings {
    pub seed: u64,
    /// Sampler steps, method and classifier-free guidance scale (1 = none); `None` takes the
    /// loaded model's recommendation (`meta.sampler`), see [`sampler_for`].
    pub steps: Option<usize>,
    pub method: Option<Method>,
    pub guidance: Option<f64>,
    /// 0 = the model's default class, `i` = class `i - 1`.
    pub style: i32,
    pub bars: u32,
    /// Host time signature (numerator, denominator).
    pub sig: (u32, u32),
    pub bpm: f64,
    pub workflow: Workflow,
    /// Bars `from..=to` (1-based) that Fill regenerates.
    pub fill: (u32, u32),
    /// Pitches `lo..=hi` that Keep pitch band keeps.
    pub band: (u8, u8),
    /// The part to write (see [`super::roles`]) and the pitch that splits bass from melody.
    pub role: Role,
    pub split: u8,
    /// Chords to follow, ticks from the pattern start, in the key the model writes in (before
    /// the plugin's Transpose); a model that takes no chords ignores them.
    pub chords: Option<ChordTrack>,
    /// A variation of the current idea by this amount (0 keeps it, 1 is a new idea).
    pub vary: Option<f64>,
    pub threshold: f32,
    pub velocity: Velocity,
}

impl Default for GenSettings {
    fn default() -> Self {
        Self {
            seed: 1,
            // The model's own sampler (the default model's: Heun 32 with CFG 3, which with
            // threshold 0.35 scored best on `evaluate`, docs/DEFAULT-MODEL.md).
            steps: None,
            method: None,
            guidance: None,
            style: 0,
            bars: 8,
            sig: (4, 4),
            bpm: 120.0,
            workflow: Workflow::New,
            fill: (3, 4),
            band: (0, 52),
            role: Role::Full,
            split: 55,
            chords: None,
            vary: None,
            threshold: 0.35,
            velocity: Velocity::Fixed(100),
        }
    }
}

/// How a pattern lies on the model's frame grid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Layout {
    pub bars: u32,
    pub bar_ticks: u32,
    pub ticks_per_frame: f64,
    /// Frames the pattern uses (at most the model's width).
    pub frames: usize,
}

impl Layout {
    /// The frame a tick falls on (rounded), inside the pattern.
    pub fn frame(&self, tick: u32) -> usize {
        ((f64::from(tick) / self.ticks_per_frame).round() as usize).min(self.frames)
    }

    /// The tick a frame starts at.
    pub fn tick(&self, frame: usize) -> u32 {
        (frame as f64 * self.ticks_per_frame).round().max(0.0) as u32
    }

    pub fn len_ticks(&self) -> u32 {
        self.bars * self.bar_ticks
    }

    /// Notes on the model's grid -> pattern notes in ticks, cut to the pattern.
    pub fn to_ticks(&self, notes: &[RollNote]) -> Vec<PatternNote> {
        notes
            .iter()
            .filter(|n| n.start < self.frames)
            .map(|n| PatternNote {
                start: self.tick(n.start),
                end: self.tick(n.end.min(self.frames)),
                pitch: n.pitch,
                velocity: n.velocity,
            })
            .filter(|n| n.end > n.start)
            .collect()
    }
}

/// Fit `bars` bars of the host signature onto the model's window (halving bars that do not fit).
pub fn layout(meta: &CheckpointMeta, s: &GenSettings) -> Layout {
    let bt = bar_ticks(s.sig.0, s.sig.1);
    let bpm = if s.bpm.is_finite() && s.bpm > 1.0 {
        s.bpm
    } else {
        120.0
    };
    let tpf = match meta.roll.grid {
        Grid::Beats { steps_per_beat } => f64::from(PPQ) / f64::from(steps_per_beat.max(1)),
        Grid::Seconds { fps } => f64::from(PPQ) * bpm / (60.0 * f64::from(fps.max(1))),
    };
    let width = meta.roll.frames.max(1);
    let frames_for = |bars: u32| (f64::from(bars * bt) / tpf).round() as usize;
    let mut bars = s.bars.clamp(1, 16);
    while bars > 1 && frames_for(bars) > width {
        bars /= 2;
    }
    Layout {
        bars,
        bar_ticks: bt,
        ticks_per_frame: tpf,
        frames: frames_for(bars).clamp(1, width),
    }
}

/// The sampler a generation runs: the model's recommendation (`meta.sampler`: a few-step
/// model's steps and method, its guidance) with what the settings override.
pub fn sampler_for(meta: &CheckpointMeta, s: &GenSettings) -> SamplerConfig {
    let mut c = meta.sampler.clone();
    if let Some(m) = s.method {
        c.method = m;
    }
    if let Some(n) = s.steps {
        c.steps = n.clamp(1, 1000);
    }
    if let Some(g) = s.guidance {
        c.cfg_scale = g;
    }
    c
}

/// The notes a workflow starts from: the current idea and the captured input (ticks from the
/// pattern start, already placed by the worker: see [`capture_len`]).
pub struct Sources<'a> {
    pub current: Option<&'a Idea>,
    pub captured: &'a [PatternNote],
}

/// How much of the captured input the settings use (ticks, ending on the bar line after the
/// last note): the first half of the pattern for Continue, else all of it.
pub fn capture_len(s: &GenSettings, lay: &Layout) -> u32 {
    match (s.role, s.workflow) {
        (Role::Full, Workflow::Continue) => lay.len_ticks() / 2,
        _ => lay.len_ticks(),
    }
}

/// What the settings keep: the kept notes in ticks (exactly what will play) and the core's
/// keep spec. A role other than Full arrangement decides it (see [`super::roles`]).
fn keep_for(s: &GenSettings, lay: &Layout, src: &Sources) -> Option<(Vec<PatternNote>, Keep)> {
    let len = lay.len_ticks();
    let in_pattern = |n: PatternNote| PatternNote {
        end: n.end.min(len),
        ..n
    };
    if s.role != Role::Full {
        let current: Vec<PatternNote> = src
            .current
            .map(|c| c.pattern_notes())
            .unwrap_or_default()
            .into_iter()
            .filter(|n| n.start < len)
            .map(in_pattern)
            .collect();
        let captured: Vec<PatternNote> = src
            .captured
            .iter()
            .filter(|n| n.start < len)
            .map(|&n| in_pattern(n))
            .collect();
        return role_keep(s.role, s.split, &captured, &current);
    }
    match s.workflow {
        Workflow::New => None,
        Workflow::Continue => {
            let half = (len / 2).max(1);
            let notes: Vec<PatternNote> = if !src.captured.is_empty() {
                src.captured.to_vec()
            } else {
                // Nothing captured: continue the current idea from its second half.
                let cur = src.current?;
                cur.pattern_notes()
                    .into_iter()
                    .filter(|n| n.start >= half && n.start < len)
                    .map(|n| PatternNote {
                        start: n.start - half,
                        end: n.end.min(len) - half,
                        ..n
                    })
                    .collect()
            };
            let notes = notes
                .into_iter()
                .filter(|n| n.start < half)
                .map(|n| PatternNote {
                    end: n.end.min(half),
                    ..n
                })
                .filter(|n| n.end > n.start)
                .collect();
            Some((
                notes,
                Keep::Continue {
                    keep_frames: lay.frame(half),
                },
            ))
        }
        Workflow::Fill => {
            let cur = src.current?;
            let from = s.fill.0.clamp(1, lay.bars);
            let to = s.fill.1.clamp(from, lay.bars);
            let (a, b) = ((from - 1) * lay.bar_ticks, to * lay.bar_ticks);
            let notes = cur
                .pattern_notes()
                .into_iter()
                .filter(|n| n.start < len && (n.start < a || n.start >= b))
                .map(|n| {
                    let n = in_pattern(n);
                    if n.start < a {
                        PatternNote {
                            end: n.end.min(a),
                            ..n
                        }
                    } else {
                        n
                    }
                })
                .collect();
            Some((
                notes,
                Keep::Fill {
                    start: lay.frame(a),
                    end: lay.frame(b),
                },
            ))
        }
        Workflow::KeepBand => {
            let cur = src.current?;
            let (low, high) = (s.band.0.min(s.band.1), s.band.0.max(s.band.1));
            let notes = cur
                .pattern_notes()
                .into_iter()
                .filter(|n| n.pitch >= low && n.pitch <= high && n.start < len)
                .map(in_pattern)
                .collect();
            Some((notes, Keep::KeepPitches { low, high }))
        }
    }
}

/// The kept notes on the model's grid (the prompt the core sees).
fn prompt_notes(lay: &Layout, kept: &[PatternNote]) -> Vec<RollNote> {
    kept.iter()
        .map(|n| {
            let start = lay.frame(n.start);
            RollNote {
                pitch: n.pitch,
                start,
                end: lay.frame(n.end).max(start + 1),
                velocity: n.velocity,
            }
        })
        .collect()
}

/// Run the model and turn its output into an idea. `Ok(None)` when cancelled.
pub fn generate(
    gen: &Generator,
    s: &GenSettings,
    src: &Sources,
    cancel: Option<&AtomicBool>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Option<Idea>, String> {
    let meta = gen.meta();
    let lay = layout(meta, s);
    let keep = keep_for(s, &lay, src);
    let label = if s.style <= 0 {
        meta.default_class()
    } else {
        ((s.style - 1) as u32).min(gen.net.null_label().saturating_sub(1))
    };
    let takes_chords = meta.roll.conditions.chords;
    let chords = s.chords.as_ref().filter(|c| takes_chords && !c.is_empty());
    let vary = match s.vary {
        Some(amount) => Some(Vary {
            from: src
                .current
                .and_then(|i| i.roll.as_ref())
                .and_then(|r| r.raw_for(&meta.roll))
                .ok_or("nothing to vary: the current idea was not made by the loaded model")?,
            amount: amount.clamp(0.0, 1.0),
        }),
        None => None,
    };
    let request = Request {
        noise: gen.noise(s.seed).map_err(|e| e.to_string())?,
        label,
        prompt: keep.as_ref().map(|(notes, keep)| Prompt {
            notes: prompt_notes(&lay, notes),
            keep: *keep,
        }),
        chords: chords.map(|c| on_grid(c, &lay, meta.roll.frames)),
        vary,
    };
    let sampler = sampler_for(meta, s);
    let decode = Decode {
        threshold: s.threshold,
        dip: meta.recommended_dip(),
        velocity: s.velocity,
    };
    let hooks = Hooks {
        progress: Some(progress),
        cancel,
    };
    let out = gen
        .generate(&[request], &sampler, &decode, hooks)
        .map_err(|e| e.to_string())?;
    let Some(generated) = out.and_then(|mut v| v.pop()) else {
        return Ok(None);
    };
    let kept = keep.map(|k| k.0).unwrap_or_default();
    let mut stored = StoredRoll::new(
        meta.roll.clone(),
        &generated.raw,
        generated.known.as_ref(),
        &kept,
        lay.ticks_per_frame,
        lay.frames,
        decode.dip,
    );
    stored.top_voice = single_line(s.role);
    let written = if stored.top_voice {
        top_voice(&generated.generated)
    } else {
        generated.generated
    };
    let mut notes = lay.to_ticks(&written);
    notes.extend_from_slice(&kept);
    notes.sort_unstable();
    let mut idea = Idea {
        id: 0,
        bars: lay.bars,
        bar_ticks: lay.bar_ticks,
        notes: Vec::new(),
        roll: Some(stored),
        chords: chords.map(|c| c.crop(0, lay.len_ticks() as usize)),
        info: IdeaInfo {
            seed: s.seed,
            style: String::new(),
            mode: format!("{:?}", s.workflow),
            model: meta.name.clone(),
            method: sampler.method.to_string(),
            steps: sampler.steps as u32,
            cfg: sampler.cfg_scale as f32,
            threshold: s.threshold,
            velocity: velocity_label(s.velocity),
            millis: 0,
            role: format!("{:?}", s.role),
            vary: s.vary.unwrap_or(0.0) as f32,
        },
    };
    idea.set_notes(&notes);
    Ok(Some(idea))
}
