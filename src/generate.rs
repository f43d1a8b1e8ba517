//! Generation on top of the sampler: a loaded model on its device, masks for the musical
//! workflows (continue, fill bars, keep a pitch band), and the merge that returns kept notes
//! exactly. Shared by the `generate` CLI and the plugin's worker.

use crate::checkpoint::{CheckpointMeta, ModelWeights};
use crate::model::{JiT, Path};
use crate::roll::{roll_to_notes, roll_to_notes_split, PianoRoll, RollNote, Velocity, PITCHES};
use crate::sampler::{sample, Hooks, Inpaint, SamplerConfig};
use candle_core::{DType, Device, Result, Tensor};
use serde::{Deserialize, Serialize};

/// What part of a prompt to keep; everything else is generated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Mode {
    /// Generate everything (no prompt).
    New,
    /// Keep frames `0..keep_frames` (the first bars) and continue from there.
    Continue { keep_frames: usize },
    /// Regenerate frames `start..end` (some bars), keep the rest.
    Fill { start: usize, end: usize },
    /// Keep pitches `low..=high` (say, a melody) and generate around them.
    KeepPitches { low: u8, high: u8 },
}

impl Mode {
    /// The keep-mask `[128, frames]` (1 = keep the prompt's value), or `None` for [`Mode::New`].
    pub fn mask(&self, frames: usize) -> Option<Vec<u8>> {
        let mut m = vec![0u8; PITCHES * frames];
        match *self {
            Mode::New => return None,
            Mode::Continue { keep_frames } => {
                for p in 0..PITCHES {
                    for f in 0..keep_frames.min(frames) {
                        m[p * frames + f] = 1;
                    }
                }
            }
            Mode::Fill { start, end } => {
                for p in 0..PITCHES {
                    for f in 0..frames {
                        if f < start || f >= end {
                            m[p * frames + f] = 1;
                        }
                    }
                }
            }
            Mode::KeepPitches { low, high } => {
                for p in usize::from(low)..=usize::from(high).min(PITCHES - 1) {
                    m[p * frames..(p + 1) * frames].fill(1);
                }
            }
        }
        Some(m)
    }
}

/// A model ready to sample: weights, network and device.
pub struct Generator {
    pub weights: ModelWeights,
    pub net: JiT,
    pub device: Device,
}

impl Generator {
    /// Build on `device` (f32 on CPU; bf16 compute on CUDA, where it is safe for inference).
    pub fn new(
        weights: ModelWeights,
        device: Device,
    ) -> std::result::Result<Self, crate::checkpoint::CheckpointError> {
        let dtype = if device.is_cuda() {
            DType::BF16
        } else {
            DType::F32
        };
        let net = weights.build(&device, dtype)?;
        Ok(Self {
            weights,
            net,
            device,
        })
    }

    pub fn meta(&self) -> &CheckpointMeta {
        &self.weights.meta
    }

    /// Frames per sample (the model's width).
    pub fn frames(&self) -> usize {
        self.weights.meta.config.input_w
    }

    /// Sample from start noise `z0` `[B, 1, 128, W]` (f32, CPU or device) with `labels`. With a
    /// prompt (`[B]` rolls) and a mode other than `New`, the kept region comes back exactly.
    /// Returns the raw output `[B, 1, 128, W]` in [-1, 1] on the CPU, or `None` if cancelled.
    pub fn sample_raw(
        &self,
        z0: &Tensor,
        labels: &[u32],
        cfg: &SamplerConfig,
        prompt: Option<(&[PianoRoll], &Mode)>,
        hooks: Hooks,
    ) -> Result<Option<Tensor>> {
        let dev = &self.device;
        let (b, w) = (labels.len(), self.frames());
        let z0 = z0.to_device(dev)?.to_dtype(DType::F32)?;
        let y = Tensor::from_slice(labels, b, dev)?;
        let inpaint = match prompt {
            Some((rolls, mode)) => match mode.mask(w) {
                Some(mask) => {
                    let mut known = Vec::with_capacity(b * PITCHES * w);
                    for r in rolls.iter().take(b) {
                        known.extend(r.crop(0, w).to_model_input());
                    }
                    let masks: Vec<f32> = (0..b)
                        .flat_map(|_| mask.iter().map(|&v| f32::from(v)))
                        .collect();
                    let known = Tensor::from_vec(known, (b, 1, PITCHES, w), dev)?;
                    let mask = Tensor::from_vec(masks, (b, 1, PITCHES, w), dev)?;
                    Some(Inpaint::new(&known, &mask)?)
                }
                None => None,
            },
            None => None,
        };
        let dt = if dev.is_cuda() {
            DType::BF16
        } else {
            DType::F32
        };
        let net = &self.net;
        let out = sample(
            |z, t, y| net.forward(&z.to_dtype(dt)?, t, y, Path::Inference),
            &z0,
            &y,
            net.null_label(),
            cfg,
            inpaint.as_ref(),
            hooks,
        )?;
        out.map(|x| x.to_device(&Device::Cpu)).transpose()
    }
}

/// The notes of a generated roll: the kept notes exactly as in the prompt (clipped to the kept
/// region), plus the generated notes found only in the generated cells, so a generated note can
/// never merge with or alter a kept one.
pub fn merge_notes(
    out: &PianoRoll,
    prompt: Option<(&PianoRoll, &Mode)>,
    threshold: f32,
    dip: f32,
    velocity: Velocity,
) -> Vec<RollNote> {
    let frames = out.frames();
    let Some((prompt, mode)) = prompt else {
        return roll_to_notes_split(out, threshold, dip, velocity);
    };
    let Some(mask) = mode.mask(frames) else {
        return roll_to_notes_split(out, threshold, dip, velocity);
    };
    let prompt = prompt.crop(0, frames);
    let mut kept = prompt.clone();
    let mut generated = out.clone();
    for (i, &m) in mask.iter().enumerate() {
        if m == 1 {
            generated.data_mut()[i] = 0;
        } else {
            kept.data_mut()[i] = 0;
        }
    }
    // Kept notes keep their own velocities (the prompt roll stores them).
    let mut notes = roll_to_notes(&kept, 0.0, Velocity::Learned);
    // A generated note that touches a kept note of the same pitch would merge with it (or cut
    // it) when the file is read back: leave the one-frame gap of a re-strike instead.
    let touching = |a: usize, b: usize, p: u8| {
        notes
            .iter()
            .any(|k| k.pitch == p && (k.start == a || k.end == b))
    };
    let generated: Vec<RollNote> = roll_to_notes_split(&generated, threshold, dip, velocity)
        .into_iter()
        .filter_map(|mut g| {
            if touching(g.end, usize::MAX, g.pitch) {
                g.end -= 1;
            }
            if touching(usize::MAX, g.start, g.pitch) {
                g.start += 1;
            }
            (g.start < g.end).then_some(g)
        })
        .collect();
    notes.extend(generated);
    notes.sort();
    notes
}
