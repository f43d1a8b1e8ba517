//! One generation on the worker thread, in the host's terms: the host's bars and meter become
//! frames of the model's grid, the notes a mode keeps (in ticks) become a prompt, and the core's
//! [`Generator`] does the rest (conditioning, inpainting, decoding). The kept notes come back in
//! ticks exactly as they were; only the generated notes are converted from frames.

use super::history::{velocity_label, Idea, IdeaInfo, StoredRoll};
use super::params::Mode;
use super::pattern::{bar_ticks, PatternNote, PPQ};
use super::shared::ModelInfo;
use crate::checkpoint::CheckpointMeta;
use crate::condition::Keep;
use crate::generate::{Generator, Method, Prompt, Request, SamplerConfig};
use crate::roll::{Decode, Grid, RollNote, Velocity};
use crate::sampler::Hooks;
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
    }
}

/// Everything one generation needs, snapshotted from the parameters when it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct GenSettings {
    pub seed: u64,
    pub steps: usize,
    pub method: Method,
    pub cfg: f64,
    /// 0 = the model's default class, `i` = class `i - 1`.
    pub style: i32,
    pub bars: u32,
    /// Host time signature (numerator, denominator).
    pub sig: (u32, u32),
    pub bpm: f64,
    pub mode: Mode,
    /// Bars `from..=to` (1-based) that Fill regenerates.
    pub fill: (u32, u32),
    /// Pitches `lo..=hi` that Keep pitch band keeps.
    pub band: (u8, u8),
    pub threshold: f32,
    pub velocity: Velocity,
}

impl Default for GenSettings {
    fn default() -> Self {
        Self {
            seed: 1,
            // The default model's recommendation (docs/DEFAULT-MODEL.md): Heun 32 with CFG 3 and
            // threshold 0.35 (notes split at dips) scored best on `evaluate` and takes about 0.4 s
            // for 8 bars on 2 cores.
            steps: 32,
            method: Method::Heun,
            cfg: 3.0,
            style: 0,
            bars: 8,
            sig: (4, 4),
            bpm: 120.0,
            mode: Mode::New,
            fill: (3, 4),
            band: (0, 52),
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

/// The notes a mode starts from: the current idea and the captured input (ticks from the
/// pattern start, already placed by the worker).
pub struct Sources<'a> {
    pub current: Option<&'a Idea>,
    pub captured: &'a [PatternNote],
}

/// What a mode keeps: the kept notes in ticks (exactly what will play) and the core's keep spec.
fn keep_for(s: &GenSettings, lay: &Layout, src: &Sources) -> Option<(Vec<PatternNote>, Keep)> {
    let len = lay.len_ticks();
    let in_pattern = |n: PatternNote| PatternNote {
        end: n.end.min(len),
        ..n
    };
    match s.mode {
        Mode::New => None,
        Mode::Continue => {
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
        Mode::Fill => {
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
        Mode::KeepBand => {
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
    let request = Request {
        noise: gen.noise(s.seed).map_err(|e| e.to_string())?,
        label,
        prompt: keep.as_ref().map(|(notes, keep)| Prompt {
            notes: prompt_notes(&lay, notes),
            keep: *keep,
        }),
        chords: None,
    };
    let sampler = SamplerConfig {
        method: s.method,
        steps: s.steps.clamp(1, 1000),
        cfg_scale: s.cfg,
        ..meta.sampler.clone()
    };
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
    let stored = StoredRoll::new(
        meta.roll.clone(),
        &generated.raw,
        generated.known.as_ref(),
        &kept,
        lay.ticks_per_frame,
        lay.frames,
        decode.dip,
    );
    let mut notes = lay.to_ticks(&generated.generated);
    notes.extend_from_slice(&kept);
    notes.sort_unstable();
    let mut idea = Idea {
        id: 0,
        bars: lay.bars,
        bar_ticks: lay.bar_ticks,
        notes: Vec::new(),
        roll: Some(stored),
        info: IdeaInfo {
            seed: s.seed,
            style: String::new(),
            mode: format!("{:?}", s.mode),
            model: meta.name.clone(),
            method: s.method.to_string(),
            steps: sampler.steps as u32,
            cfg: s.cfg as f32,
            threshold: s.threshold,
            velocity: velocity_label(s.velocity),
            millis: 0,
        },
    };
    idea.set_notes(&notes);
    Ok(Some(idea))
}
