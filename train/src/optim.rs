//! AdamW whose state can be saved (candle_nn's keeps its moments private), the learning-rate
//! schedule, global gradient-norm clipping over a `GradStore`, and the two weight EMAs.

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Result, Tensor, Var};
use jit_music::ops::{AdamUpdate, Blend};
use serde::{Deserialize, Serialize};

/// AdamW settings; defaults are the original's (lr 2e-4, betas (0.9, 0.95), weight decay 0.01).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdamWConfig {
    pub lr: f64,
    pub min_lr: f64,
    pub warmup_steps: u64,
    pub schedule: Schedule,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// Global gradient-norm clip (0 = off).
    pub clip_norm: f64,
    /// Length of the final decay of the `wsd` schedule.
    #[serde(default)]
    pub decay_steps: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// Cosine from `lr` to `min_lr` over the run.
    Cosine,
    /// `lr` throughout.
    Constant,
    /// Warmup-stable-decay: `lr` until the last `decay_steps`, then cosine to `min_lr`. Safe to
    /// extend with `--resume --steps` while still in the stable phase.
    Wsd,
}

impl AdamWConfig {
    /// Linear warmup to `lr`, then cosine (or constant) down to `min_lr` at `total` steps.
    /// The warmup counts the optimizer's own updates (`updates`, equal to `step` in a run from
    /// scratch), so that an `--init-from` run, which starts late in the schedule with fresh
    /// moments, warms up too.
    pub fn lr_at(&self, step: u64, updates: u64, total: u64) -> f64 {
        let warm = if updates < self.warmup_steps {
            (updates + 1) as f64 / self.warmup_steps as f64
        } else {
            1.0
        };
        warm * self.schedule_at(step, total)
    }

    /// The schedule without the warmup ramp.
    fn schedule_at(&self, step: u64, total: u64) -> f64 {
        if step < self.warmup_steps {
            return self.lr;
        }
        match self.schedule {
            Schedule::Constant => self.lr,
            Schedule::Wsd => {
                let start = total
                    .saturating_sub(self.decay_steps)
                    .max(self.warmup_steps);
                if step < start {
                    self.lr
                } else {
                    let p = ((step - start) as f64 / (total - start).max(1) as f64).min(1.0);
                    self.min_lr
                        + (self.lr - self.min_lr) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
                }
            }
            Schedule::Cosine => {
                let span = total.saturating_sub(self.warmup_steps).max(1) as f64;
                let p = ((step - self.warmup_steps) as f64 / span).min(1.0);
                self.min_lr
                    + (self.lr - self.min_lr) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
            }
        }
    }
}

/// One trainable tensor with its optimizer moments and EMAs (all f32). On the CPU the step
/// updates `var`, `m`, `v`, `ema1` and `ema2` in place, so each must own its storage; a clone
/// taken of them (to save a checkpoint, to build the EMA network) sees the values of the latest
/// step.
pub struct Param {
    pub name: String,
    pub var: Var,
    pub m: Tensor,
    pub v: Tensor,
    pub ema1: Tensor,
    pub ema2: Tensor,
}

/// AdamW over named variables, with two EMAs of the weights.
pub struct AdamW {
    pub cfg: AdamWConfig,
    pub params: Vec<Param>,
    /// Optimizer steps taken (for bias correction).
    pub t: u64,
    pub ema_decays: (f64, f64),
}

impl AdamW {
    /// Fresh state for `vars`; EMAs start as copies of the weights, as the original.
    pub fn new(vars: Vec<(String, Var)>, cfg: AdamWConfig, ema_decays: (f64, f64)) -> Result<Self> {
        let params = vars
            .into_iter()
            .map(|(name, var)| {
                Ok(Param {
                    name,
                    // Two allocations: the in-place step must not write one moment into the other.
                    m: var.zeros_like()?,
                    v: var.zeros_like()?,
                    ema1: var.as_tensor().detach().copy()?,
                    ema2: var.as_tensor().detach().copy()?,
                    var,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            cfg,
            params,
            t: 0,
            ema_decays,
        })
    }

    /// Global L2 norm of the gradients.
    pub fn grad_norm(&self, grads: &GradStore) -> Result<f64> {
        let mut total = 0f64;
        for p in &self.params {
            if let Some(g) = grads.get(p.var.as_tensor()) {
                total += jit_music::ops::sum_sq(g)?;
            }
        }
        Ok(total.sqrt())
    }

    /// One AdamW step at learning rate `lr` (decoupled weight decay, as torch.optim.AdamW),
    /// with global-norm clipping, then both EMA updates. Returns the pre-clip gradient norm.
    pub fn step(&mut self, grads: &GradStore, lr: f64) -> Result<f64> {
        self.step_with(grads, lr, true)
    }

    /// [`AdamW::step`], choosing whether the CPU may use the in-place kernels (`fused`); the
    /// composition of tensor ops is the reference they are tested against, and the path on
    /// other devices.
    pub fn step_with(&mut self, grads: &GradStore, lr: f64, fused: bool) -> Result<f64> {
        let norm = self.grad_norm(grads)?;
        let clip = if self.cfg.clip_norm > 0.0 && norm > self.cfg.clip_norm {
            self.cfg.clip_norm / (norm + 1e-6)
        } else {
            1.0
        };
        self.t += 1;
        let (b1, b2) = (self.cfg.beta1, self.cfg.beta2);
        let bc1 = 1.0 - b1.powi(self.t as i32);
        let bc2 = 1.0 - b2.powi(self.t as i32);
        let (d1, d2) = self.ema_decays;
        for p in &mut self.params {
            let Some(g) = grads.get(p.var.as_tensor()) else {
                continue;
            };
            if fused && in_place_ok(p, g) {
                let g = g.contiguous()?;
                let w = p.var.as_tensor();
                let blend = |decay: f64, scale: f64, square: bool| Blend {
                    decay: decay as f32,
                    scale: scale as f32,
                    square,
                };
                p.m.inplace_op2(&g, &blend(b1, clip, false))?;
                p.v.inplace_op2(&g, &blend(b2, clip, true))?;
                let update = AdamUpdate {
                    lr: lr as f32,
                    weight_decay: self.cfg.weight_decay as f32,
                    bc1: bc1 as f32,
                    bc2: bc2 as f32,
                    eps: self.cfg.eps as f32,
                };
                w.inplace_op3(&p.m, &p.v, &update)?;
                p.ema1.inplace_op2(w, &blend(d1, 1.0, false))?;
                p.ema2.inplace_op2(w, &blend(d2, 1.0, false))?;
                continue;
            }
            let g = (g.detach().to_dtype(DType::F32)? * clip)?;
            p.m = ((&p.m * b1)? + (&g * (1.0 - b1))?)?;
            p.v = ((&p.v * b2)? + (g.sqr()? * (1.0 - b2))?)?;
            // Detached: the update must not build a graph from the variable, or every step's
            // weights and EMAs would keep the previous step's tensors alive.
            let w = p.var.as_tensor().detach();
            let update = ((&p.m / bc1)? / ((&p.v / bc2)?.sqrt()? + self.cfg.eps)?)?;
            let w_new = ((&w * (1.0 - lr * self.cfg.weight_decay))? - (update * lr)?)?;
            p.var.set(&w_new)?;
            p.ema1 = ((&p.ema1 * d1)? + (&w_new * (1.0 - d1))?)?;
            p.ema2 = ((&p.ema2 * d2)? + (&w_new * (1.0 - d2))?)?;
        }
        Ok(norm)
    }
}

/// Whether the in-place CPU kernels can update this parameter: everything f32 on the CPU, and
/// the state contiguous (it always is unless a caller swapped in a view).
fn in_place_ok(p: &Param, g: &Tensor) -> bool {
    let state = [p.var.as_tensor(), &p.m, &p.v, &p.ema1, &p.ema2];
    state
        .iter()
        .chain(std::iter::once(&g))
        .all(|t| matches!(t.device(), Device::Cpu) && t.dtype() == DType::F32)
        && state.iter().all(|t| t.is_contiguous())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wsd() -> AdamWConfig {
        AdamWConfig {
            lr: 4e-4,
            min_lr: 1e-5,
            warmup_steps: 100,
            schedule: Schedule::Wsd,
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.01,
            clip_norm: 1.0,
            decay_steps: 1000,
        }
    }

    /// From scratch (updates == step): a linear ramp, the stable phase, then the decay to min_lr.
    #[test]
    fn warmup_stable_decay_from_scratch() {
        let c = wsd();
        assert!((c.lr_at(0, 0, 5000) - 4e-6).abs() < 1e-12);
        assert!((c.lr_at(49, 49, 5000) - 2e-4).abs() < 1e-12);
        assert_eq!(c.lr_at(100, 100, 5000), 4e-4);
        assert_eq!(c.lr_at(3999, 3999, 5000), 4e-4);
        assert!(c.lr_at(4500, 4500, 5000) < 4e-4);
        assert!((c.lr_at(5000, 5000, 5000) - 1e-5).abs() < 1e-12);
    }

    /// An `--init-from` run starts at a late step with fresh moments: it ramps up again over its
    /// own first updates, then follows the schedule at its step.
    #[test]
    fn init_from_warms_up_its_fresh_optimizer() {
        let c = wsd();
        assert!((c.lr_at(36_000, 0, 50_000) - 4e-6).abs() < 1e-12);
        assert!((c.lr_at(36_049, 49, 50_000) - 2e-4).abs() < 1e-12);
        assert_eq!(c.lr_at(36_100, 100, 50_000), 4e-4);
        assert!(c.lr_at(49_500, 13_500, 50_000) < 4e-4);
    }

    /// The in-place CPU step equals the tensor-op reference: moments, weights and both EMAs,
    /// over several steps with the clip active and with gradients missing for one parameter.
    #[test]
    fn in_place_step_equals_the_reference() -> Result<()> {
        use candle_core::Device;
        let dev = Device::Cpu;
        let shapes: [&[usize]; 3] = [&[70_000], &[33, 17], &[5]];
        let make = || -> Result<AdamW> {
            let vars = shapes
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let n: usize = s.iter().product();
                    let data: Vec<f32> = (0..n)
                        .map(|j| ((i * 7919 + j) as f32 * 0.37).sin())
                        .collect();
                    Ok((
                        format!("p{i}"),
                        Var::from_tensor(&Tensor::from_vec(data, *s, &dev)?)?,
                    ))
                })
                .collect::<Result<Vec<_>>>()?;
            let mut cfg = wsd();
            cfg.clip_norm = 0.5;
            AdamW::new(vars, cfg, (0.9, 0.99))
        };
        let (mut fused, mut reference) = (make()?, make()?);
        for step in 0..4u64 {
            let mut grads = Vec::new();
            for opt in [&fused, &reference] {
                let mut loss = Tensor::new(0f32, &dev)?;
                for (i, p) in opt.params.iter().enumerate() {
                    if i == 2 && step == 1 {
                        continue; // no gradient this step: the parameter is left alone
                    }
                    let w = p.var.as_tensor();
                    let phase = (step as f64 + 1.0) * (i as f64 + 1.0);
                    loss = (loss + ((w * phase)?.sin()? * w)?.sum_all()?)?;
                }
                grads.push(loss.backward()?);
            }
            let n1 = fused.step_with(&grads[0], 3e-3, true)?;
            let n2 = reference.step_with(&grads[1], 3e-3, false)?;
            assert!((n1 - n2).abs() < 1e-6 * n2.max(1.0), "norms {n1} {n2}");
        }
        for (a, b) in fused.params.iter().zip(&reference.params) {
            for (x, y) in [
                (a.var.as_tensor(), b.var.as_tensor()),
                (&a.m, &b.m),
                (&a.v, &b.v),
                (&a.ema1, &b.ema1),
                (&a.ema2, &b.ema2),
            ] {
                let d = (x - y)?.abs()?.max_all()?.to_scalar::<f32>()?;
                let s = y.abs()?.max_all()?.to_scalar::<f32>()?;
                assert!(
                    d <= 1e-5 * s.max(1e-3),
                    "{}: max diff {d} (scale {s})",
                    a.name
                );
            }
        }
        Ok(())
    }
}
