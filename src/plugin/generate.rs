//! One generation on the worker thread: settings + model (+ what to keep) -> roll -> idea.
//! The only plugin file besides the worker that touches candle.
//!
//! Modes use the sampler's inpainting: the kept region is painted into the known roll and
//! masked, the model fills the rest, and the kept notes are then copied back exactly (the model
//! never rewrites what the user chose to keep).

use super::history::{velocity_label, Idea, IdeaInfo, StoredRoll};
use super::params::Mode;
use super::pattern::{bar_ticks, PatternNote, PPQ};
use super::shared::ModelInfo;
use crate::checkpoint::{CheckpointError, CheckpointMeta, ModelWeights};
use crate::model::{JiT, Path};
use crate::roll::{velocity_to_u8, Grid, PianoRoll, Velocity, PITCHES};
use crate::sampler::{sample, seeded_noise, Hooks, Inpaint, Method, SamplerConfig};
use candle_core::{DType, Device, Tensor};
use std::sync::atomic::AtomicBool;

/// A built network with what is needed to use it.
pub struct Model {
    pub net: JiT,
    pub meta: CheckpointMeta,
    pub device: Device,
    pub source: String,
    pub params: usize,
}

/// CUDA when built with it and present, else the CPU.
pub fn best_device() -> Device {
    Device::cuda_if_available(0).unwrap_or(Device::Cpu)
}

impl Model {
    pub fn build(weights: &ModelWeights, device: Device) -> Result<Self, CheckpointError> {
        let (cfg, roll) = (&weights.meta.config, &weights.meta.roll);
        if roll.pitches != cfg.input_h
            || roll.frames != cfg.input_w
            || usize::from(roll.pitch_low) + roll.pitches > PITCHES
        {
            return Err(CheckpointError::BadMetadata(
                weights.source.clone(),
                format!(
                    "roll of {} pitches from {} x {} frames does not fit a {}x{} model",
                    roll.pitches, roll.pitch_low, roll.frames, cfg.input_h, cfg.input_w
                ),
            ));
        }
        let net = weights.build(&device, DType::F32)?;
        let params = net.param_count();
        Ok(Self {
            net,
            meta: weights.meta.clone(),
            device,
            source: weights.source.clone(),
            params,
        })
    }

    /// The class a model plays when no style is chosen: `info.default_class` (written by
    /// `train` as the most weighted class), else class 0, as `generate` does.
    pub fn default_class(&self) -> Option<u32> {
        let n = self.meta.config.num_classes;
        let c = self.meta.info["default_class"].as_u64().unwrap_or(0);
        (c < n as u64).then_some(c as u32)
    }

    pub fn info(&self) -> ModelInfo {
        let m = &self.meta;
        ModelInfo {
            name: if m.name.is_empty() {
                "unnamed".into()
            } else {
                m.name.clone()
            },
            source: self.source.clone(),
            preset: m.config.preset_name().unwrap_or("custom").to_string(),
            params: self.params,
            device: match self.device {
                Device::Cpu => "CPU".into(),
                _ => format!("{:?}", self.device.location()),
            },
            classes: (0..m.config.num_classes)
                .map(|i| m.classes.get(i).cloned().unwrap_or_else(|| i.to_string()))
                .collect(),
            grid: m.roll.grid.describe(),
            frames: m.roll.frames,
        }
    }
}

/// Everything one generation needs, snapshotted from the parameters when it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct GenSettings {
    pub seed: u64,
    pub steps: usize,
    pub method: Method,
    pub cfg: f64,
    /// 0 = any (the null label), `i` = class `i - 1`.
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

/// What a mode keeps: the notes (ticks from the pattern start) and the regenerated region.
struct Keep {
    notes: Vec<PatternNote>,
    /// Frame range regenerated (columns outside are kept), or a pitch band kept.
    region: Region,
}

enum Region {
    /// Regenerate columns `[a, b)`; keep the rest of the pattern.
    Columns(usize, usize),
    /// Keep pitches `lo..=hi` everywhere.
    Band(u8, u8),
}

/// The notes a mode starts from: the current idea and the captured input (ticks from the
/// pattern start, already placed by the worker).
pub struct Prompt<'a> {
    pub current: Option<&'a Idea>,
    pub captured: &'a [PatternNote],
}

fn keep_for(mode: Mode, s: &GenSettings, lay: &Layout, prompt: &Prompt) -> Option<Keep> {
    let len = lay.bars * lay.bar_ticks;
    let tpf = lay.ticks_per_frame;
    let frame = |tick: u32| ((f64::from(tick) / tpf).round() as usize).min(lay.frames);
    match mode {
        Mode::New => None,
        Mode::Continue => {
            let half = (len / 2).max(1);
            let notes: Vec<PatternNote> = if !prompt.captured.is_empty() {
                prompt.captured.to_vec()
            } else {
                // Nothing captured: continue the current idea from its second half.
                let cur = prompt.current?;
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
            Some(Keep {
                notes,
                region: Region::Columns(frame(half), lay.frames),
            })
        }
        Mode::Fill => {
            let cur = prompt.current?;
            let from = s.fill.0.clamp(1, lay.bars);
            let to = s.fill.1.clamp(from, lay.bars);
            let (a, b) = ((from - 1) * lay.bar_ticks, to * lay.bar_ticks);
            let mut notes = Vec::new();
            for n in cur.pattern_notes() {
                if n.start >= len {
                    continue;
                }
                let n = PatternNote {
                    end: n.end.min(len),
                    ..n
                };
                if n.start < a {
                    notes.push(PatternNote {
                        end: n.end.min(a),
                        ..n
                    });
                } else if n.start >= b {
                    notes.push(n);
                }
            }
            Some(Keep {
                notes,
                region: Region::Columns(frame(a), frame(b)),
            })
        }
        Mode::KeepBand => {
            let cur = prompt.current?;
            let (lo, hi) = (s.band.0.min(s.band.1), s.band.0.max(s.band.1));
            let notes = cur
                .pattern_notes()
                .into_iter()
                .filter(|n| n.pitch >= lo && n.pitch <= hi && n.start < len)
                .map(|n| PatternNote {
                    end: n.end.min(len),
                    ..n
                })
                .collect();
            Some(Keep {
                notes,
                region: Region::Band(lo, hi),
            })
        }
    }
}

/// Run the sampler and turn its roll into an idea. `Ok(None)` when cancelled.
pub fn generate(
    model: &Model,
    s: &GenSettings,
    prompt: &Prompt,
    cancel: Option<&AtomicBool>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Option<Idea>, String> {
    let meta = &model.meta;
    let lay = layout(meta, s);
    let (h, w) = (meta.roll.pitches, meta.roll.frames);
    let low = usize::from(meta.roll.pitch_low);
    let keep = keep_for(s.mode, s, &lay, prompt);
    let err = |e: candle_core::Error| e.to_string();

    let dev = &model.device;
    let z0 = seeded_noise(s.seed, 1, h, w, meta.sampler.noise_scale, dev).map_err(err)?;
    let null = model.net.null_label();
    let label = if s.style <= 0 {
        model.default_class().unwrap_or(null)
    } else {
        ((s.style - 1) as u32).min(null.saturating_sub(1))
    };
    let labels = Tensor::new(&[label], dev).map_err(err)?;
    let cfg = SamplerConfig {
        method: s.method,
        steps: s.steps.clamp(1, 1000),
        cfg_scale: s.cfg,
        ..meta.sampler.clone()
    };

    let inpaint = match &keep {
        None => None,
        Some(k) => {
            let mut known = vec![-1f32; h * w];
            let mut mask = vec![0u8; h * w];
            for r in 0..h {
                let pitch = low + r;
                for f in 0..lay.frames {
                    let kept = match k.region {
                        Region::Columns(a, b) => f < a || f >= b,
                        Region::Band(lo, hi) => {
                            pitch >= usize::from(lo) && pitch <= usize::from(hi)
                        }
                    };
                    if kept {
                        mask[r * w + f] = 1;
                    }
                }
            }
            for n in &k.notes {
                let p = usize::from(n.pitch);
                if p < low || p >= low + h {
                    continue;
                }
                let r = p - low;
                let a = (f64::from(n.start) / lay.ticks_per_frame).round() as usize;
                let b = ((f64::from(n.end) / lay.ticks_per_frame).round() as usize).max(a + 1);
                let v = f32::from(velocity_to_u8(f64::from(n.velocity))) / 255.0 * 2.0 - 1.0;
                for f in a..b.min(lay.frames) {
                    known[r * w + f] = v;
                }
            }
            let known = Tensor::from_vec(known, (1, 1, h, w), dev).map_err(err)?;
            let mask = Tensor::from_vec(mask, (1, 1, h, w), dev)
                .and_then(|m| m.to_dtype(DType::F32))
                .map_err(err)?;
            Some(Inpaint::new(&known, &mask).map_err(err)?)
        }
    };

    let net = &model.net;
    let out = sample(
        |z: &Tensor, t: &Tensor, y: &Tensor| net.forward(z, t, y, Path::Inference),
        &z0,
        &labels,
        null,
        &cfg,
        inpaint.as_ref(),
        Hooks {
            progress: Some(progress),
            cancel,
        },
    )
    .map_err(err)?;
    let Some(out) = out else {
        return Ok(None);
    };
    let x: Vec<f32> = out
        .flatten_all()
        .and_then(|t| t.to_dtype(DType::F32))
        .and_then(|t| t.to_vec1())
        .map_err(err)?;
    if x.len() != h * w {
        return Err(format!(
            "model output has {} values, {} expected",
            x.len(),
            h * w
        ));
    }

    // Model rows -> a full 128-pitch roll of the pattern's frames.
    let mut roll = PianoRoll::new(lay.frames);
    for r in 0..h {
        let pitch = low + r;
        if pitch >= PITCHES {
            break;
        }
        let row = roll.row_mut(pitch);
        for (f, cell) in row.iter_mut().enumerate() {
            let v = x[r * w + f];
            let u = ((v + 1.0) * 0.5).clamp(0.0, 1.0);
            *cell = if u.is_nan() {
                0
            } else {
                (u * 255.0 + 0.5) as u8
            };
        }
    }
    let dip = meta.recommended_dip();
    let mut notes = Idea::notes_from_roll(&roll, lay.ticks_per_frame, s.threshold, dip, s.velocity);
    if let Some(k) = &keep {
        let tpf = lay.ticks_per_frame;
        let tick = |f: usize| (f as f64 * tpf).round() as u32;
        // Generated notes only where the model was free; the kept notes exactly as they were.
        notes.retain(|n| match k.region {
            Region::Columns(a, b) => n.start >= tick(a) && n.start < tick(b),
            Region::Band(lo, hi) => n.pitch < lo || n.pitch > hi,
        });
        if let Region::Columns(_, b) = k.region {
            let end = tick(b);
            for n in &mut notes {
                n.end = n.end.min(end);
            }
        }
        notes.extend(k.notes.iter().copied());
        notes.retain(|n| n.end > n.start);
        notes.sort_unstable();
    }
    let mut idea = Idea {
        id: 0,
        bars: lay.bars,
        bar_ticks: lay.bar_ticks,
        notes: Vec::new(),
        roll: Some(StoredRoll::new(&roll, lay.ticks_per_frame, dip)),
        info: IdeaInfo {
            seed: s.seed,
            style: String::new(),
            mode: format!("{:?}", s.mode),
            model: meta.name.clone(),
            method: s.method.to_string(),
            steps: cfg.steps as u32,
            cfg: s.cfg as f32,
            threshold: s.threshold,
            velocity: velocity_label(s.velocity),
            millis: 0,
        },
    };
    idea.set_notes(&notes);
    Ok(Some(idea))
}
