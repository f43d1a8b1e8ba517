//! What `generate` writes beside each sample so that it can be made again bit for bit
//! (`--replay`), and the start noises it names: seeds, a file, or a spherical path between two
//! earlier samples' noises (`--interpolate`).

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use jit_music::chords::ChordTrack;
use jit_music::condition::Keep;
use jit_music::generate::{Generator, SamplerConfig};
use jit_music::roll::Velocity;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where a sample's start noise comes from; enough to rebuild it bit for bit.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Noise {
    Seed {
        seed: u64,
    },
    File {
        path: PathBuf,
        index: usize,
    },
    Slerp {
        a: Box<Noise>,
        b: Box<Noise>,
        alpha: f64,
    },
}

/// The sidecar written next to each sample.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sidecar {
    pub file: String,
    pub checkpoint: String,
    pub weights: String,
    pub checkpoint_name: String,
    pub checkpoint_step: u64,
    pub noise: Noise,
    /// The noises of the whole batch this sample was drawn in, and its place in it: float
    /// results depend on the batch's shape, so an exact replay re-runs the same batch.
    pub batch: Vec<Noise>,
    pub batch_index: usize,
    pub class: u32,
    pub class_name: Option<String>,
    pub sampler: SamplerConfig,
    pub threshold: f32,
    /// Absent in sidecars written before dip splitting: 0, what they were decoded with.
    #[serde(default)]
    pub dip: f32,
    pub velocity: Velocity,
    pub tempo: f64,
    /// What was kept of the prompt (called `mode` in older sidecars).
    #[serde(alias = "mode")]
    pub keep: Keep,
    pub prompt: Option<PathBuf>,
    /// The bar of the prompt the window starts at (1-based; 0 in older sidecars: bar 1).
    #[serde(default)]
    pub from_bar: usize,
    /// The part kept with `--keep-part`, if any.
    #[serde(default)]
    pub keep_part: Option<String>,
    /// The chords followed, on the model's grid, and how they were given.
    #[serde(default)]
    pub chords: Option<ChordTrack>,
    #[serde(default)]
    pub chords_source: Option<String>,
    /// A variation: the sidecar of the sample it varies and how far.
    #[serde(default)]
    pub vary: Option<VaryRecord>,
    pub command: String,
}

/// Where a variation came from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VaryRecord {
    pub from: PathBuf,
    pub amount: f64,
}

impl Sidecar {
    pub fn read(path: &Path) -> Result<Sidecar> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a generate sidecar", path.display()))
    }

    /// The batch to re-run for a replay, and which of its samples to write.
    pub fn replay_batch(&self) -> (Vec<Noise>, usize) {
        if self.batch.is_empty() {
            (vec![self.noise.clone()], 0)
        } else {
            (self.batch.clone(), self.batch_index)
        }
    }

    /// The sample index in its file name (`sample_0003.mid` -> 3).
    pub fn index(&self) -> usize {
        self.file
            .strip_prefix("sample_")
            .and_then(|f| f.strip_suffix(".mid"))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

/// `count` noises on the spherical path between the noises of two sidecars.
pub fn interpolation(a: &Path, b: &Path, count: usize) -> Result<Vec<Noise>> {
    let (na, nb) = (Sidecar::read(a)?.noise, Sidecar::read(b)?.noise);
    let k = count.max(2);
    Ok((0..k)
        .map(|i| Noise::Slerp {
            a: Box::new(na.clone()),
            b: Box::new(nb.clone()),
            alpha: i as f64 / (k - 1) as f64,
        })
        .collect())
}

/// One noise per sample of a noise file (tensor `z`).
pub fn file_noises(path: &Path) -> Result<Vec<Noise>> {
    let n = load_z(path)?.dim(0)?;
    Ok((0..n)
        .map(|index| Noise::File {
            path: path.to_path_buf(),
            index,
        })
        .collect())
}

fn load_z(path: &Path) -> Result<Tensor> {
    let t = candle_core::safetensors::load(path, &Device::Cpu)
        .with_context(|| format!("cannot read noise file {}", path.display()))?;
    t.get("z")
        .cloned()
        .with_context(|| format!("{}: no tensor named `z`", path.display()))
}

/// Rebuild one sample's noise `[1, C, H, W]` for `gen`'s model.
pub fn noise_of(n: &Noise, gen: &Generator) -> Result<Tensor> {
    Ok(match n {
        Noise::Seed { seed } => gen.noise(*seed)?,
        Noise::File { path, index } => {
            let z = load_z(path)?;
            let (_, c, h, w) = gen.noise_dims();
            let dims = z.dims();
            if dims.len() != 4 || dims[1..] != [c, h, w] {
                bail!(
                    "{}: z has shape {dims:?}; this model needs [N, {c}, {h}, {w}]",
                    path.display()
                );
            }
            if *index >= dims[0] {
                bail!(
                    "{}: z has {} samples, index {index} requested",
                    path.display(),
                    dims[0]
                );
            }
            z.narrow(0, *index, 1)?.to_dtype(DType::F32)?
        }
        Noise::Slerp { a, b, alpha } => slerp(&noise_of(a, gen)?, &noise_of(b, gen)?, *alpha)?,
    })
}

/// Spherical interpolation between two noises (keeps the Gaussian's norm, unlike a straight line).
fn slerp(a: &Tensor, b: &Tensor, t: f64) -> Result<Tensor> {
    let av: Vec<f32> = a.flatten_all()?.to_vec1()?;
    let bv: Vec<f32> = b.flatten_all()?.to_vec1()?;
    let dot: f64 = av
        .iter()
        .zip(&bv)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let na: f64 = av.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = bv.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let cos = (dot / (na * nb).max(1e-12)).clamp(-1.0, 1.0);
    let theta = cos.acos();
    let (wa, wb) = if theta.abs() < 1e-6 {
        (1.0 - t, t)
    } else {
        (
            ((1.0 - t) * theta).sin() / theta.sin(),
            (t * theta).sin() / theta.sin(),
        )
    };
    let v: Vec<f32> = av
        .iter()
        .zip(&bv)
        .map(|(x, y)| (wa * f64::from(*x) + wb * f64::from(*y)) as f32)
        .collect();
    Ok(Tensor::from_vec(v, a.dims(), &Device::Cpu)?)
}
