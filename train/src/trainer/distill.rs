//! Few-step students by distillation ("reflow", Liu et al. 2022): a teacher samples training
//! windows' conditions from seeded noise with its full sampler and guidance; the student, started
//! from the teacher's weights, learns the same objective on those (noise, sample) pairs in
//! place of (fresh noise, real roll). The pairs' straight paths make the student's flow nearly
//! straight, so one or two Euler steps without guidance follow it.
//!
//! Pairs are made once, in chunks of one batch (`RUN/pairs/chunk_K.safetensors`, f16), and a
//! resumed run reuses the chunks it has. Chunk `k` holds the teacher's samples for the
//! conditions of data batch `k`, so the data pipeline rebuilds them exactly at training time.

use super::TrainConfig;
use crate::data::{Batch, Sampler};
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use indicatif::{ProgressBar, ProgressStyle};
use jit_music::checkpoint::{self, Weights};
use jit_music::generate::{Generator, SampleInput, SamplerConfig};
use jit_music::sampler::{seeded_noise, Hooks};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

/// What a distillation run learns from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DistillConfig {
    /// The teacher checkpoint (the student starts from its weights).
    pub teacher: PathBuf,
    /// Number of (noise, sample) pairs the teacher makes.
    pub pairs: usize,
    /// How the teacher samples them (its own recommendation unless given).
    pub teacher_sampler: SamplerConfig,
    /// Euler steps the student's checkpoint recommends.
    pub student_steps: usize,
}

/// The teacher's samples, one chunk per data batch.
pub struct Pairs {
    chunks: Vec<Vec<half::f16>>,
    batch: usize,
    seed: u64,
    /// `(C, H, W)` of one sample.
    shape: (usize, usize, usize),
}

/// The seed of pair `j` of chunk `k`: its noise.
fn pair_seed(seed: u64, k: usize, j: usize) -> u64 {
    let mut h = blake3::Hasher::new();
    h.update(b"jit-music distillation pair");
    h.update(&seed.to_le_bytes());
    h.update(&(k as u64).to_le_bytes());
    h.update(&(j as u64).to_le_bytes());
    u64::from_le_bytes(h.finalize().as_bytes()[..8].try_into().unwrap_or([0; 8]))
}

/// The data batch whose conditions chunk `k` was made for (far from training steps).
fn chunk_step(k: usize) -> u64 {
    (1 << 40) + k as u64
}

fn chunk_path(dir: &Path, k: usize) -> PathBuf {
    dir.join(format!("chunk_{k:05}.safetensors"))
}

/// Load the pairs a run has and make the missing ones with the teacher.
pub fn prepare(
    cfg: &TrainConfig,
    run_root: &Path,
    sampler: &Sampler,
    classes: &[String],
    quiet: bool,
) -> Result<Pairs> {
    let d = cfg.distill.as_ref().context("not a distillation run")?;
    let spec = cfg.data.roll_spec();
    let shape = (spec.roll_channels(), spec.pitches, spec.frames);
    let b = cfg.batch_size;
    let k_total = d.pairs.div_ceil(b).max(1);
    let dir = run_root.join("pairs");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut chunks: Vec<Option<Vec<half::f16>>> = (0..k_total)
        .map(|k| read_chunk(&chunk_path(&dir, k), b * shape.0 * shape.1 * shape.2))
        .collect();
    let missing: Vec<usize> = (0..k_total).filter(|&k| chunks[k].is_none()).collect();
    if !missing.is_empty() {
        let teacher = Generator::new(
            checkpoint::load(&d.teacher, Weights::Ema1)?,
            super::device(&cfg.device)?,
        )?;
        if teacher.meta().classes != classes {
            bail!(
                "{}: the teacher's classes ({}) are not this data's ({}); give the same folder layout",
                d.teacher.display(),
                teacher.meta().classes.join(", "),
                classes.join(", ")
            );
        }
        if teacher.spec() != &spec {
            bail!(
                "{}: the teacher's rolls ({:?}) are not this run's ({spec:?})",
                d.teacher.display(),
                teacher.spec()
            );
        }
        let pb = if quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(missing.len() as u64)
        };
        pb.set_style(
            ProgressStyle::with_template("teacher pairs {bar:30} {pos}/{len} batches (eta {eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        for k in missing {
            let data = sampler.batch(chunk_step(k), b);
            let inputs = (0..b)
                .map(|j| {
                    let drawn = data.drawn.get(j).cloned().unwrap_or_default();
                    Ok(SampleInput {
                        noise: teacher.noise(pair_seed(cfg.seed, k, j))?,
                        label: data.labels[j],
                        known: drawn.known,
                        chords: drawn.chords,
                        vary: None,
                    })
                })
                .collect::<candle_core::Result<Vec<_>>>()?;
            let raws = teacher
                .sample(&inputs, &d.teacher_sampler, Hooks::default())?
                .context("teacher sampling was cancelled")?;
            let flat: Vec<half::f16> = raws
                .iter()
                .flatten()
                .map(|&v| half::f16::from_f32(v))
                .collect();
            write_chunk(&chunk_path(&dir, k), &flat, b, shape)?;
            chunks[k] = Some(flat);
            pb.inc(1);
        }
        pb.finish_and_clear();
    }
    Ok(Pairs {
        chunks: chunks.into_iter().flatten().collect(),
        batch: b,
        seed: cfg.seed,
        shape,
    })
}

fn read_chunk(path: &Path, numel: usize) -> Option<Vec<half::f16>> {
    let t = candle_core::safetensors::load(path, &Device::Cpu).ok()?;
    let x = t.get("x")?;
    let v: Vec<half::f16> = x.flatten_all().ok()?.to_vec1().ok()?;
    (v.len() == numel).then_some(v)
}

/// Write atomically (a killed run leaves no half chunk under the real name).
fn write_chunk(
    path: &Path,
    flat: &[half::f16],
    b: usize,
    (c, h, w): (usize, usize, usize),
) -> Result<()> {
    let x = Tensor::from_slice(flat, (b, c, h, w), &Device::Cpu)?;
    let tmp = path.with_extension("tmp");
    candle_core::safetensors::save(
        &std::collections::HashMap::from([("x".to_string(), x)]),
        &tmp,
    )
    .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

impl Pairs {
    pub fn len(&self) -> usize {
        self.chunks.len() * self.batch
    }

    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// The training batch of `step`: a chunk's conditions (rebuilt by the data pipeline), the
    /// teacher's samples as the rolls, and the noise they came from.
    pub fn batch(&self, sampler: &Sampler, step: u64) -> Result<Batch> {
        let mut rng =
            rand::rngs::StdRng::seed_from_u64(self.seed ^ step.wrapping_mul(0xD1B5_4A32_D192_ED03));
        let k = rng.random_range(0..self.chunks.len());
        let mut batch = sampler.batch(chunk_step(k), self.batch);
        batch.x = self.chunks[k].iter().map(|v| v.to_f32()).collect();
        let (c, h, w) = self.shape;
        let mut noise = Vec::with_capacity(batch.x.len());
        for j in 0..self.batch {
            let n = seeded_noise(pair_seed(self.seed, k, j), 1, (c, h, w), 1.0, &Device::Cpu)?;
            noise.extend(n.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?);
        }
        batch.noise = Some(noise);
        batch.step = step;
        Ok(batch)
    }
}

/// Prefetch distillation batches `start..` on a background thread.
pub fn prefetch(
    pairs: Arc<Pairs>,
    sampler: Arc<Sampler>,
    start: u64,
    depth: usize,
) -> Receiver<Batch> {
    let (tx, rx) = sync_channel(depth.max(1));
    std::thread::Builder::new()
        .name("jit-distill-prefetch".into())
        .spawn(move || {
            let mut step = start;
            while let Ok(b) = pairs.batch(&sampler, step) {
                if tx.send(b).is_err() {
                    break;
                }
                step += 1;
            }
        })
        .ok();
    rx
}
