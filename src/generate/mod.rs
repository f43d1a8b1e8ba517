//! Generation, once for every caller (the `generate` CLI, the plugin's worker, the trainer's
//! previews, `evaluate`'s prompts): a loaded model on its device takes requests (noise, class,
//! what to keep from a prompt, chords) and gives notes, with the kept notes returned exactly.
//!
//! A model that takes conditions sees the kept notes and chords as input channels; every model
//! also has the kept region replaced along its noised path (inpainting), so kept notes come back
//! exactly from any model, the original's included.

mod decode;

pub use crate::sampler::{Method, SamplerConfig};
pub use decode::{decode_generated, generated_notes};

use crate::checkpoint::{CheckpointError, CheckpointMeta, ModelWeights};
use crate::chords::ChordTrack;
use crate::condition::{encode_conditions, Keep, Known};
use crate::model::{JiT, Path};
use crate::roll::{Decode, RollNote, RollSpec};
use crate::sampler::{sample, seeded_noise, Conditioning, Hooks, Inpaint, Inputs};
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
        let dev = &self.device;
        let b = batch.len();
        if b == 0 {
            return Ok(Some(Vec::new()));
        }
        let noises: Vec<Tensor> = batch.iter().map(|r| r.noise.clone()).collect();
        let z0 = Tensor::cat(&noises, 0)?
            .to_dtype(DType::F32)?
            .to_device(dev)?;
        let labels: Vec<u32> = batch.iter().map(|r| r.label).collect();
        let y = Tensor::from_slice(&labels, b, dev)?;
        let known: Vec<Option<Known>> = batch
            .iter()
            .map(|r| {
                r.prompt
                    .as_ref()
                    .and_then(|p| Known::new(&spec, &p.keep, &p.notes))
            })
            .collect();
        let inpaint = self.inpaint(&known)?;
        let cond = self.conditioning(batch, &known, sampler)?;
        let dt = compute_dtype(dev);
        let net = &self.net;
        let inputs = Inputs {
            labels: &y,
            null_label: net.null_label(),
            cond: cond.as_ref(),
            inpaint: inpaint.as_ref(),
        };
        let Some(x) = sample(
            |z, c, t, y| net.forward(&z.to_dtype(dt)?, c, t, y, Path::Inference),
            &z0,
            inputs,
            sampler,
            hooks,
        )?
        else {
            return Ok(None);
        };
        let x = x.to_device(&Device::Cpu)?.to_dtype(DType::F32)?;
        let mut out = Vec::with_capacity(b);
        for (i, known) in known.into_iter().enumerate() {
            let raw: Vec<f32> = x.get(i)?.flatten_all()?.to_vec1()?;
            let generated = generated_notes(&spec, &raw, known.as_ref(), decode);
            out.push(Generated {
                raw,
                generated,
                known,
            });
        }
        Ok(Some(out))
    }

    /// The kept regions as an inpainting constraint (`None` when nothing is kept).
    fn inpaint(&self, known: &[Option<Known>]) -> Result<Option<Inpaint>> {
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
        batch: &[Request],
        known: &[Option<Known>],
        sampler: &SamplerConfig,
    ) -> Result<Option<Conditioning>> {
        let spec = self.spec();
        if spec.cond_channels() == 0 {
            return Ok(None);
        }
        let mut cond = Vec::new();
        let mut null = Vec::new();
        for (r, k) in batch.iter().zip(known) {
            cond.extend(encode_conditions(spec, k.as_ref(), r.chords.as_ref()));
            let keep = if sampler.guide_known {
                None
            } else {
                k.as_ref()
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
