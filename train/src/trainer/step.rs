//! One training step's loss and gradients, and the validation loss.

use super::Trainer;
use crate::data;
use anyhow::Result;
use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};
use jit_music::diffusion::{draws_to_tensors, Objective};
use jit_music::model::{JiT, OpPath};

/// One step's inputs as tensors.
#[derive(Debug, Clone, Copy)]
pub struct StepBatch<'a> {
    /// Rolls `[B, C, H, W]`.
    pub x: &'a Tensor,
    /// Conditioning channels `[B, Cc, H, W]`.
    pub cond: Option<&'a Tensor>,
    pub labels: &'a [u32],
    /// Unit noise paired with `x` (distillation); `None` draws it from `seed`.
    pub noise: Option<&'a [f32]>,
    /// Seed of the step's draws (t, noise, label dropout).
    pub seed: u64,
}

/// Loss and gradients of one batch, with the same draws (t, noise, label dropout) as the whole
/// batch would get from `seed`. On the CPU the batch runs as two halves on two threads, each
/// with single-threaded kernels, and the gradients are combined weighted by the halves' sizes:
/// data parallelism across the cores beats fanning every small op out to both. Elsewhere (CUDA)
/// the network computes in bf16 from casts of the f32 weights (differentiable, so gradients reach
/// the f32 variables) while the noise, the loss and the optimizer state stay f32.
pub fn loss_and_grads(
    objective: &Objective,
    net: &JiT,
    params: &[Var],
    batch: &StepBatch,
) -> Result<(f64, GradStore)> {
    let StepBatch {
        x,
        cond,
        labels,
        noise,
        seed,
    } = *batch;
    let dev = x.device().clone();
    let b = labels.len();
    let numel = x.elem_count() / b.max(1);
    let mut d = objective.draw(seed, labels, numel, net.null_label());
    if let Some(n) = noise {
        // Distillation: the noise the teacher's sample came from, scaled as drawn noise is.
        let s = objective.noise_scale as f32;
        d.e = n.iter().map(|v| v * s).collect();
    }
    let (t, e, y) = draws_to_tensors(&d, x.dims(), &dev)?;
    if dev.is_cuda() {
        let half = net.to_dtype(DType::BF16)?;
        let loss = objective.v_loss(
            |z, c, t, y| half.forward(&z.to_dtype(DType::BF16)?, c, t, y, OpPath::Training),
            x,
            cond,
            &t,
            &e,
            &y,
        )?;
        let v = f64::from(loss.to_scalar::<f32>()?);
        return Ok((v, loss.backward()?));
    }
    let part = |s: usize, n: usize| -> Result<(f64, GradStore)> {
        jit_music::ops::serial(|| {
            let c = cond.map(|c| c.narrow(0, s, n)).transpose()?;
            let loss = objective.v_loss(
                |z, c, t, y| net.forward(z, c, t, y, OpPath::Training),
                &x.narrow(0, s, n)?,
                c.as_ref(),
                &t.narrow(0, s, n)?,
                &e.narrow(0, s, n)?,
                &y.narrow(0, s, n)?,
            )?;
            Ok((f64::from(loss.to_scalar::<f32>()?), loss.backward()?))
        })
    };
    if b < 2 {
        return part(0, b);
    }
    let h = b / 2;
    let (ra, rb) = rayon::join(|| part(0, h), || part(h, b - h));
    let ((la, mut ga), (lb, gb)) = (ra?, rb?);
    let (wa, wb) = (h as f64 / b as f64, (b - h) as f64 / b as f64);
    for p in params {
        let t = p.as_tensor();
        let g = match (ga.get(t), gb.get(t)) {
            (Some(a), Some(c)) => jit_music::ops::weighted_sum(a, c, wa, wb)?,
            (Some(a), None) => (a * wa)?,
            (None, Some(c)) => (c * wb)?,
            (None, None) => continue,
        };
        ga.insert(t, g);
    }
    Ok((la * wa + lb * wb, ga))
}

impl Trainer {
    /// Seed of a step's draws.
    fn draw_seed(&self, step: u64) -> u64 {
        self.cfg.seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ step
    }

    /// A batch's rolls and conditioning channels as tensors on the run's device.
    fn batch_tensors(&self, batch: &data::Batch) -> Result<(Tensor, Option<Tensor>)> {
        let spec = self.cfg.data.roll_spec();
        let b = batch.labels.len();
        let (h, w) = (spec.pitches, spec.frames);
        let x = Tensor::from_slice(&batch.x, (b, spec.roll_channels(), h, w), &self.dev)?;
        let c = batch
            .cond
            .as_ref()
            .map(|c| Tensor::from_slice(c, (b, spec.cond_channels(), h, w), &self.dev))
            .transpose()?;
        Ok((x, c))
    }

    /// Loss and gradients of a training batch.
    pub fn step_grads(&self, batch: &data::Batch) -> Result<(f64, GradStore)> {
        let (x, c) = self.batch_tensors(batch)?;
        let params: Vec<Var> = self.opt.params.iter().map(|p| p.var.clone()).collect();
        let step = StepBatch {
            x: &x,
            cond: c.as_ref(),
            labels: &batch.labels,
            noise: batch.noise.as_deref(),
            seed: self.draw_seed(batch.step),
        };
        loss_and_grads(&self.cfg.objective, &self.net, &params, &step)
    }

    /// The loss of one batch without gradients (validation), with that step's draws.
    pub fn batch_loss(&self, batch: &data::Batch, net: &JiT) -> Result<f64> {
        let (x, c) = self.batch_tensors(batch)?;
        let loss = self.cfg.objective.loss(
            |z, c, t, y| net.forward(z, c, t, y, OpPath::Inference),
            &x,
            c.as_ref(),
            &batch.labels,
            net.null_label(),
            self.draw_seed(batch.step),
        )?;
        Ok(f64::from(loss.to_dtype(DType::F32)?.to_scalar::<f32>()?))
    }

    /// Validation loss of the EMA-1 weights on the fixed held-out windows (fixed draws).
    pub fn val_loss(&self) -> Result<Option<f64>> {
        if self.val_batches.is_empty() {
            return Ok(None);
        }
        let net = self.ema1_net()?;
        let mut total = 0.0;
        for b in &self.val_batches {
            total += self.batch_loss(b, &net)?;
        }
        Ok(Some(total / self.val_batches.len() as f64))
    }
}
