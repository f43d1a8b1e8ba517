//! The training objective, apart from the network (which comes in as a function): JiT's x-prediction
//! trained on velocity. `t ~ sigmoid(N(P_mean, P_std))`, `z = t x + (1 - t) e`,
//! `v = (x - z) / max(1 - t, t_eps)`, and the loss is the batch mean of `mean((v - v_pred)^2)`.

use candle_core::{DType, Device, Result, Tensor};
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

/// The objective's settings; the defaults are the original `train_music.py`'s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(non_snake_case)]
pub struct Objective {
    pub P_mean: f64,
    pub P_std: f64,
    pub t_eps: f64,
    pub noise_scale: f64,
    pub label_drop_prob: f64,
}

impl Default for Objective {
    fn default() -> Self {
        Self {
            P_mean: -1.2,
            P_std: 1.2,
            t_eps: 1e-3,
            noise_scale: 1.0,
            label_drop_prob: 0.1,
        }
    }
}

/// The random draws of one training step, made on the CPU from a seed so that a step is
/// reproducible on any device and a resumed run draws exactly what the uninterrupted one would.
#[derive(Debug, Clone)]
pub struct Draws {
    pub t: Vec<f32>,      // [B]
    pub e: Vec<f32>,      // [B * numel], already scaled by noise_scale
    pub labels: Vec<u32>, // [B], after label dropout
}

impl Objective {
    /// Draw `t`, `e` and dropped labels for a batch of `b` images of `numel` values each.
    pub fn draw(&self, seed: u64, labels: &[u32], numel: usize, null_label: u32) -> Draws {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let b = labels.len();
        let t = (0..b)
            .map(|_| {
                let n: f64 = StandardNormal.sample(&mut rng);
                let z = n * self.P_std + self.P_mean;
                (1.0 / (1.0 + (-z).exp())) as f32
            })
            .collect();
        let labels = labels
            .iter()
            .map(|&y| {
                if rng.random::<f64>() < self.label_drop_prob {
                    null_label
                } else {
                    y
                }
            })
            .collect();
        let ns = self.noise_scale as f32;
        let e = (0..b * numel)
            .map(|_| {
                let n: f32 = StandardNormal.sample(&mut rng);
                n * ns
            })
            .collect();
        Draws { t, e, labels }
    }

    /// The v-loss for fixed draws. `net(z, c, t, y)` predicts x. x `[B, C, H, W]`, c the
    /// conditioning channels `[B, Cc, H, W]` (or none), t `[B]`, e like x, y `[B]`. Returns a
    /// scalar f32 tensor; the loss is computed in f32 whatever the network's compute dtype.
    pub fn v_loss<F>(
        &self,
        net: F,
        x: &Tensor,
        c: Option<&Tensor>,
        t: &Tensor,
        e: &Tensor,
        y: &Tensor,
    ) -> Result<Tensor>
    where
        F: Fn(&Tensor, Option<&Tensor>, &Tensor, &Tensor) -> Result<Tensor>,
    {
        let b = x.dim(0)?;
        let x = x.to_dtype(DType::F32)?;
        let t4 = t.to_dtype(DType::F32)?.reshape((b, 1, 1, 1))?; // [B, 1, 1, 1]
        let z = (t4.broadcast_mul(&x)? + (1.0 - &t4)?.broadcast_mul(e)?)?; // [B, C, H, W]
        let denom = (1.0 - &t4)?.clamp(self.t_eps, f64::INFINITY)?; // [B, 1, 1, 1]
        let x_pred = net(&z, c, &t.to_dtype(DType::F32)?, y)?.to_dtype(DType::F32)?;
        // v - v_pred = ((x - z) - (x_pred - z)) / denom = (x - x_pred) / denom
        let diff = (x - x_pred)?.broadcast_div(&denom)?; // [B, C, H, W]
        diff.sqr()?.flatten_from(1)?.mean(1)?.mean(0) // scalar
    }

    /// Draw and compute the loss for a batch: the whole training objective.
    pub fn loss<F>(
        &self,
        net: F,
        x: &Tensor,
        c: Option<&Tensor>,
        labels: &[u32],
        null_label: u32,
        seed: u64,
    ) -> Result<Tensor>
    where
        F: Fn(&Tensor, Option<&Tensor>, &Tensor, &Tensor) -> Result<Tensor>,
    {
        let dev = x.device();
        let b = x.dim(0)?;
        let numel = x.elem_count() / b.max(1);
        let d = self.draw(seed, labels, numel, null_label);
        let (t, e, y) = draws_to_tensors(&d, x.dims(), dev)?;
        self.v_loss(net, x, c, &t, &e, &y)
    }
}

/// Draws as tensors on `dev`: t `[B]`, e shaped `dims`, labels `[B]` (u32).
pub fn draws_to_tensors(
    d: &Draws,
    dims: &[usize],
    dev: &Device,
) -> Result<(Tensor, Tensor, Tensor)> {
    let t = Tensor::from_slice(&d.t, d.t.len(), dev)?;
    let e = Tensor::from_slice(&d.e, dims, dev)?;
    let y = Tensor::from_slice(&d.labels, d.labels.len(), dev)?;
    Ok((t, e, y))
}
