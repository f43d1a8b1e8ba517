//! Generation, once for every caller (the `generate` CLI, the plugin's worker, the trainer's
//! previews, `evaluate`'s prompts): a loaded model on its device takes requests (noise, class,
//! what to keep from a prompt, chords) and gives notes, with the kept notes returned exactly.
//!
//! A model that takes conditions sees the kept notes and chords as input channels; every model
//! also has the kept region replaced along its noised path (inpainting), so kept notes come back
//! exactly from any model, the original's included.

mod decode;

pub use crate::sampler::{Hooks, Method, SamplerConfig};
pub use decode::{decode_generated, generated_notes};

use crate::checkpoint::{CheckpointError, CheckpointMeta, ModelWeights};
use crate::chords::ChordTrack;
use crate::condition::{encode_conditions, Keep, Known};
use crate::model::{JiT, OpPath};
use crate::roll::{Decode, RollNote, RollSpec};
use crate::sampler::{sample, seeded_noise, Conditioning, Inpaint, Inputs};
use candle_core::{DType, Device, Result, Tensor};

/// CUDA when built with it and present, else the CPU.
pub fn best_device() -> Device {
    Device::cuda_if_available(0).unwrap_or(Device::Cpu)
}

/// The compute dtype for inference on `device`: bf16 on CUDA (safe for sampling, twice as
/// fast), f32 elsewhere (our CPU kernels are f32).
pub fn compute_dtype(device: &Device) -> DType {
    if device.is_cuda() {
        DType::BF16
    } else {
        DType::F32
    }
}

/// A prompt: notes on the model's grid (frames from the window start) and what to keep of them.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    pub notes: Vec<RollNote>,
    pub keep: Keep,
}

/// One sample to generate.
#[derive(Debug, Clone)]
pub struct Request {
    /// Start noise `[1, C, H, W]` (see [`Generator::noise`]).
    pub noise: Tensor,
    pub label: u32,
    pub prompt: Option<Prompt>,
    /// Chords to follow (used by models that take them; others ignore them).
    pub chords: Option<ChordTrack>,
    /// A variation of an earlier output instead of a new sample.
    pub vary: Option<Vary>,
}

/// A variation: an earlier output partly re-noised and sampled again. `amount` 1 is a new sample
/// from the same noise, 0 gives the earlier output back.
#[derive(Debug, Clone, PartialEq)]
pub struct Vary {
    /// The earlier raw output `[C, H, W]`.
    pub from: Vec<f32>,
    /// How far back towards noise, 0..=1.
    pub amount: f64,
}

/// One sample in the model's own terms: what [`Generator::sample`] takes.
#[derive(Debug, Clone)]
pub struct SampleInput {
    /// Noise `[1, C, H, W]`.
    pub noise: Tensor,
    pub label: u32,
    pub known: Option<Known>,
    pub chords: Option<ChordTrack>,
    pub vary: Option<Vary>,
}

impl SampleInput {
    /// The sampler's start at `t`: the noise, or for a variation `t x + (1 - t) e` on the
    /// earlier output's path.
    fn start_image(&self, t: f32) -> Result<Tensor> {
        match &self.vary {
            Some(v) if t > 0.0 => {
                let x = Tensor::from_slice(&v.from, self.noise.dims(), self.noise.device())?;
                (x * f64::from(t))? + (self.noise.to_dtype(DType::F32)? * f64::from(1.0 - t))?
            }
            _ => Ok(self.noise.clone()),
        }
    }
}

/// The time a batch starts at: 0, or `1 - amount` when every sample is a variation by the same
/// amount (they share the sampler's time grid).
fn variation_start(batch: &[SampleInput]) -> Result<f32> {
    let amounts: Vec<Option<f64>> = batch
        .iter()
        .map(|r| r.vary.as_ref().map(|v| v.amount))
        .collect();
    match amounts.first().copied().flatten() {
        None if amounts.iter().all(Option::is_none) => Ok(0.0),
        Some(a) if amounts.iter().all(|x| *x == Some(a)) => {
            if !(0.0..=1.0).contains(&a) {
                candle_core::bail!("variation amount must be between 0 and 1, got {a}");
            }
            Ok((1.0 - a) as f32)
        }
        _ => candle_core::bail!(
            "a batch's samples must all be variations by the same amount, or none"
        ),
    }
}

/// One generated sample.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The sampler's output `[C, H, W]` in `[-1, 1]`.
    pub raw: Vec<f32>,
    /// The generated notes (not the kept ones), sorted.
    pub generated: Vec<RollNote>,
    /// What was kept (notes and mask), so that the notes can be read again at another
    /// threshold without touching the kept ones ([`decode_generated`]).
    pub known: Option<Known>,
}

impl Generated {
    /// Every note: the kept ones exactly as given and the generated ones, sorted.
    pub fn notes(&self) -> Vec<RollNote> {
        let mut notes = self.generated.clone();
        if let Some(k) = &self.known {
            notes.extend_from_slice(&k.notes);
            notes.sort();
        }
        notes
    }
}

/// A model ready to sample: weights, network and device.
pub struct Generator {
    pub weights: ModelWeights,
    pub net: JiT,
    pub device: Device,
}

impl Generator {
    /// Build on `device` in its [`compute_dtype`], checking that the checkpoint's roll spec
    /// fits its network.
    pub fn new(
        weights: ModelWeights,
        device: Device,
    ) -> std::result::Result<Self, CheckpointError> {
        weights.meta.check_roll(&weights.source)?;
        let net = weights.build(&device, compute_dtype(&device))?;
        Ok(Self {
            weights,
            net,
            device,
        })
    }

    /// Around a network that is already built (the trainer's EMA weights for previews).
    pub fn from_net(net: JiT, meta: CheckpointMeta, device: Device) -> Self {
        Self {
            weights: ModelWeights {
                meta,
                tensors: Default::default(),
                source: "training".into(),
            },
            net,
            device,
        }
    }

    pub fn meta(&self) -> &CheckpointMeta {
        &self.weights.meta
    }

    pub fn spec(&self) -> &RollSpec {
        &self.weights.meta.roll
    }

    /// Frames per sample (the model's width).
    pub fn frames(&self) -> usize {
        self.spec().frames
    }

    /// The seeded start noise of one sample `[1, C, H, W]` (on the CPU: the same on every device).
    pub fn noise(&self, seed: u64) -> Result<Tensor> {
        let s = self.spec();
        seeded_noise(
            seed,
            1,
            (s.roll_channels(), s.pitches, s.frames),
            self.meta().sampler.noise_scale,
            &Device::Cpu,
        )
    }

    /// The shape of one sample's noise `(1, C, H, W)`.
    pub fn noise_dims(&self) -> (usize, usize, usize, usize) {
        let s = self.spec();
        (1, s.roll_channels(), s.pitches, s.frames)
    }

    /// Generate a batch (one sampler run: float results depend on the batch, so a replay runs
    /// the same batch). `None` when cancelled.
    pub fn generate(
        &self,
        batch: &[Request],
        sampler: &SamplerConfig,
        decode: &Decode,
        hooks: Hooks,
    ) -> Result<Option<Vec<Generated>>> {
        let spec = self.spec().clone();
        let inputs: Vec<SampleInput> = batch
            .iter()
            .map(|r| SampleInput {
                noise: r.noise.clone(),
                label: r.label,
                known: r
                    .prompt
                    .as_ref()
                    .and_then(|p| Known::new(&spec, &p.keep, &p.notes)),
                chords: r.chords.clone(),
                vary: r.vary.clone(),
            })
            .collect();
        let Some(x) = self.sample(&inputs, sampler, hooks)? else {
            return Ok(None);
        };
        let mut out = Vec::with_capacity(batch.len());
        for (raw, input) in x.into_iter().zip(inputs) {
            let generated = generated_notes(&spec, &raw, input.known.as_ref(), decode);
            out.push(Generated {
                raw,
                generated,
                known: input.known,
            });
        }
        Ok(Some(out))
    }

    /// Sample a batch of encoded inputs; returns each sample's raw output `[C, H, W]`. What
    /// [`Generator::generate`] runs, and what distillation runs on training windows.
    pub fn sample(
        &self,
        batch: &[SampleInput],
        sampler: &SamplerConfig,
        hooks: Hooks,
    ) -> Result<Option<Vec<Vec<f32>>>> {
        let dev = &self.device;
        let b = batch.len();
        if b == 0 {
            return Ok(Some(Vec::new()));
        }
        let t_start = variation_start(batch)?;
        let z0 = batch
            .iter()
            .map(|r| r.start_image(t_start))
            .collect::<Result<Vec<_>>>()?;
        let z0 = Tensor::cat(&z0, 0)?.to_dtype(DType::F32)?.to_device(dev)?;
        let noise = if t_start > 0.0 {
            let n: Vec<Tensor> = batch.iter().map(|r| r.noise.clone()).collect();
            Some(Tensor::cat(&n, 0)?.to_dtype(DType::F32)?.to_device(dev)?)
        } else {
            None
        };
        let labels: Vec<u32> = batch.iter().map(|r| r.label).collect();
        let y = Tensor::from_slice(&labels, b, dev)?;
        let known: Vec<Option<&Known>> = batch.iter().map(|r| r.known.as_ref()).collect();
        let inpaint = self.inpaint(&known)?;
        let cond = self.conditioning(batch, sampler)?;
        let dt = compute_dtype(dev);
        let net = &self.net;
        let inputs = Inputs {
            labels: &y,
            null_label: net.null_label(),
            cond: cond.as_ref(),
            inpaint: inpaint.as_ref(),
            t_start,
            noise: noise.as_ref(),
        };
        let Some(x) = sample(
            |z, c, t, y| net.forward(&z.to_dtype(dt)?, c, t, y, OpPath::Inference),
            &z0,
            inputs,
            sampler,
            hooks,
        )?
        else {
            return Ok(None);
        };
        let x = x.to_device(&Device::Cpu)?.to_dtype(DType::F32)?;
        (0..b)
            .map(|i| x.get(i)?.flatten_all()?.to_vec1())
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    /// The kept regions as an inpainting constraint (`None` when nothing is kept).
    fn inpaint(&self, known: &[Option<&Known>]) -> Result<Option<Inpaint>> {
        if known.iter().all(Option::is_none) {
            return Ok(None);
        }
        let spec = self.spec();
        let (n, b) = (spec.numel(), known.len());
        let mut image = Vec::with_capacity(b * n);
        let mut mask = Vec::with_capacity(b * n);
        for k in known {
            match k {
                Some(k) => {
                    let (i, m) = k.image(spec);
                    image.extend(i);
                    mask.extend(m);
                }
                None => {
                    image.extend(std::iter::repeat_n(-1f32, n));
                    mask.extend(std::iter::repeat_n(0f32, n));
                }
            }
        }
        let dims = (b, spec.roll_channels(), spec.pitches, spec.frames);
        let image = Tensor::from_vec(image, dims, &self.device)?;
        let mask = Tensor::from_vec(mask, dims, &self.device)?;
        Ok(Some(Inpaint::new(&image, &mask)?))
    }

    /// The conditioning channels of both guidance passes, for a model that takes them. The
    /// unconditional pass drops the chords, and the known notes too unless the sampler keeps
    /// them (`guide_known == false`).
    fn conditioning(
        &self,
        batch: &[SampleInput],
        sampler: &SamplerConfig,
    ) -> Result<Option<Conditioning>> {
        let spec = self.spec();
        if spec.cond_channels() == 0 {
            return Ok(None);
        }
        let mut cond = Vec::new();
        let mut null = Vec::new();
        for r in batch {
            cond.extend(encode_conditions(spec, r.known.as_ref(), r.chords.as_ref()));
            let keep = if sampler.guide_known {
                None
            } else {
                r.known.as_ref()
            };
            null.extend(encode_conditions(spec, keep, None));
        }
        let dims = (batch.len(), spec.cond_channels(), spec.pitches, spec.frames);
        Ok(Some(Conditioning {
            cond: Tensor::from_vec(cond, dims, &self.device)?,
            null: Tensor::from_vec(null, dims, &self.device)?,
        }))
    }
}
