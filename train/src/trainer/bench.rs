//! `train --benchmark`: training speed on pre-made tensors and on the real data pipeline.

use super::init::{seeded_init, sorted_vars};
use super::step::{loss_and_grads, StepBatch};
use super::{device, TrainConfig};
use crate::data::{self, Sampler};
use crate::optim::AdamW;
use anyhow::{Context, Result};
use candle_core::{DType, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use jit_music::model::JiT;
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use std::time::Instant;

/// `train --benchmark N`: time N training steps (loss, backward, AdamW, both EMAs) on pre-made
/// tensors, then N steps fed by the real data pipeline when `--midi-dir` is readable, and print
/// samples/s for both (the pipeline must keep up).
pub fn benchmark(cfg: &TrainConfig, n: u64) -> Result<()> {
    let dev = device(&cfg.device)?;
    let vm = VarMap::new();
    let net = JiT::new(&cfg.model, VarBuilder::from_varmap(&vm, DType::F32, &dev))?;
    let vars = sorted_vars(&vm);
    seeded_init(&vars, cfg.seed)?;
    let mut opt = AdamW::new(vars, cfg.optim.clone(), cfg.ema_decays)?;
    let b = cfg.batch_size;
    let spec = cfg.data.roll_spec();
    let (c, cc, h, w) = (
        spec.roll_channels(),
        spec.cond_channels(),
        spec.pitches,
        spec.frames,
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed);
    let mut sparse = |n: usize| -> Vec<f32> {
        (0..n)
            .map(|_| {
                if rng.random::<f32>() < 0.03 {
                    0.6
                } else {
                    -1.0
                }
            })
            .collect()
    };
    let premade = data::Batch {
        x: sparse(b * c * h * w),
        cond: (cc > 0).then(|| sparse(b * cc * h * w)),
        labels: vec![0; b],
        step: 0,
        drawn: Vec::new(),
        noise: None,
    };
    let params: Vec<Var> = opt.params.iter().map(|p| p.var.clone()).collect();
    let step = |opt: &mut AdamW, batch: &data::Batch| -> Result<f64> {
        let x = Tensor::from_slice(&batch.x, (b, c, h, w), &dev)?;
        let cond = batch
            .cond
            .as_ref()
            .map(|v| Tensor::from_slice(v, (b, cc, h, w), &dev))
            .transpose()?;
        let sb = StepBatch {
            x: &x,
            cond: cond.as_ref(),
            labels: &batch.labels,
            noise: None,
            seed: batch.step,
        };
        let (loss, grads) = loss_and_grads(&cfg.objective, &net, &params, &sb)?;
        opt.step(&grads, 1e-4)?;
        Ok(loss)
    };
    for _ in 0..2 {
        step(&mut opt, &premade)?;
    }
    let t0 = Instant::now();
    for i in 0..n {
        let mut batch = premade.clone();
        batch.step = i;
        step(&mut opt, &batch)?;
    }
    let synth = t0.elapsed().as_secs_f64() / n.max(1) as f64;
    println!(
        "{} ({:.2}M params), batch {b}, {} threads: {:.1} ms/step, {:.1} samples/s (pre-made tensors)",
        cfg.preset,
        net.param_count() as f64 / 1e6,
        rayon::current_num_threads(),
        synth * 1e3,
        b as f64 / synth
    );
    if cfg.midi_dir.is_dir() {
        let cache = std::env::temp_dir().join("jit-music-bench-cache");
        let ds = data::load_dataset(&cfg.midi_dir, &cache, &cfg.data, true)?;
        let sampler = Arc::new(Sampler::new(
            ds.train.clone(),
            cfg.model.num_classes,
            &ds.classes,
            &cfg.data,
            cfg.seed,
        ));
        let rx = data::prefetch(sampler, 0, b, 4);
        let t0 = Instant::now();
        for _ in 0..n {
            let batch = rx.recv().context("data loader stopped")?;
            step(&mut opt, &batch)?;
        }
        let real = t0.elapsed().as_secs_f64() / n.max(1) as f64;
        println!(
            "real data from {}: {:.1} ms/step, {:.1} samples/s ({:+.1}% step time vs pre-made)",
            cfg.midi_dir.display(),
            real * 1e3,
            b as f64 / real,
            (real / synth - 1.0) * 100.0
        );
    }
    Ok(())
}
