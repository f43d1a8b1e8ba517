//! Euler and Heun ODE samplers with classifier-free guidance and inpainting, apart from the
//! network (a function `net(z, c, t, y) -> x_pred`, `c` the conditioning channels), as the
//! original `DenoiserMusic.generate`.
//!
//! Over `linspace(0, 1, steps + 1)` the sampler takes `steps - 1` steps of the chosen method and
//! a final Euler step. Guidance applies where `t < high && (low == 0 || t > low)`; elsewhere only
//! the conditional pass runs (guidance 1 is the conditional velocity). The conditional and
//! unconditional passes share one batched forward.

use candle_core::{DType, Device, Result, Tensor};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Euler,
    Heun,
}

impl std::str::FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "euler" => Ok(Method::Euler),
            "heun" => Ok(Method::Heun),
            _ => Err(format!("unknown method `{s}` (euler or heun)")),
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Method::Euler => "euler",
            Method::Heun => "heun",
        })
    }
}

/// Sampler settings; the defaults are the original's (`heun`, 32 steps, CFG 3 over (0, 1)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamplerConfig {
    pub method: Method,
    pub steps: usize,
    pub cfg_scale: f64,
    pub cfg_interval: (f64, f64),
    pub t_eps: f64,
    pub noise_scale: f64,
    /// For a model conditioned on known notes: whether guidance pushes towards them too (the
    /// unconditional pass drops them) or only towards the class and chords (it keeps them).
    #[serde(default = "yes")]
    pub guide_known: bool,
}

fn yes() -> bool {
    true
}

impl Default for SamplerConfig {
    fn default() -> Self {
        Self {
            method: Method::Heun,
            steps: 32,
            cfg_scale: 3.0,
            cfg_interval: (0.0, 1.0),
            t_eps: 1e-3,
            noise_scale: 1.0,
            guide_known: true,
        }
    }
}

impl SamplerConfig {
    /// Network evaluations per sample (each possibly a CFG pair).
    pub fn forwards(&self) -> usize {
        match self.method {
            Method::Euler => self.steps.max(1),
            Method::Heun => 2 * self.steps.max(1) - 1,
        }
    }

    /// Guidance scale at time `t` (1 outside the interval).
    pub fn guidance_at(&self, t: f32) -> f64 {
        let (low, high) = self.cfg_interval;
        let t = f64::from(t);
        if t < high && (low == 0.0 || t > low) {
            self.cfg_scale
        } else {
            1.0
        }
    }
}

/// `torch.linspace(0, 1, n)` in f32 (its two-sided formula, so the values match).
pub fn linspace(n: usize) -> Vec<f32> {
    if n == 1 {
        return vec![0.0];
    }
    let step = 1.0f32 / (n - 1) as f32;
    let half = n / 2;
    (0..n)
        .map(|i| {
            if i < half {
                step * i as f32
            } else {
                1.0 - step * (n - 1 - i) as f32
            }
        })
        .collect()
}

/// Seeded start noise `[n, c, h, w]` times `noise_scale`, drawn on the CPU so that a seed gives
/// the same sample on every device. Sample `i` uses seed `seed + i`, so samples are
/// reproducible one by one whatever the batch.
pub fn seeded_noise(
    seed: u64,
    n: usize,
    (c, h, w): (usize, usize, usize),
    noise_scale: f64,
    dev: &Device,
) -> Result<Tensor> {
    let numel = c * h * w;
    let mut data = Vec::with_capacity(n * numel);
    for i in 0..n {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed.wrapping_add(i as u64));
        data.extend((0..numel).map(|_| {
            let x: f32 = StandardNormal.sample(&mut rng);
            x * noise_scale as f32
        }));
    }
    Tensor::from_vec(data, (n, c, h, w), dev)
}

/// The conditioning channels of a batch: what the conditional pass sees, and what the
/// unconditional pass of classifier-free guidance sees instead.
#[derive(Debug, Clone)]
pub struct Conditioning {
    pub cond: Tensor, // [B, Cc, H, W]
    pub null: Tensor, // [B, Cc, H, W]
}

/// A known region to keep: `mask` is 1 where `known` (in [-1, 1]) must come back exactly.
#[derive(Debug, Clone)]
pub struct Inpaint {
    known: Tensor, // [B, C, H, W] f32
    mask: Tensor,  // [B, C, H, W] u8, 1 = known
}

impl Inpaint {
    /// `known` `[B, C, H, W]` in [-1, 1]; `mask` of the same shape, non-zero where known.
    pub fn new(known: &Tensor, mask: &Tensor) -> Result<Self> {
        Ok(Self {
            known: known.to_dtype(DType::F32)?,
            mask: mask.ne(0f32)?.to_dtype(DType::U8)?,
        })
    }

    /// Replace the known region of `z` at time `t` by `t * known + (1 - t) * e`.
    fn project(&self, z: &Tensor, t: f32, e: &Tensor) -> Result<Tensor> {
        let t = f64::from(t);
        let zk = ((&self.known * t)? + (e * (1.0 - t))?)?;
        self.mask.where_cond(&zk, z)
    }
}

/// Progress and cancellation hooks for long sampling (the plugin's worker uses both).
#[derive(Default)]
pub struct Hooks<'a> {
    /// Called with (forwards done, forwards total).
    pub progress: Option<&'a mut dyn FnMut(usize, usize)>,
    /// Checked between steps; when set, sampling stops and returns `None`.
    pub cancel: Option<&'a AtomicBool>,
}

struct Ctx<'a, F> {
    net: &'a F,
    labels: &'a Tensor,
    null: &'a Tensor,
    cond: Option<&'a Conditioning>,
    cfg: &'a SamplerConfig,
    done: usize,
    total: usize,
}

impl<F> Ctx<'_, F>
where
    F: Fn(&Tensor, Option<&Tensor>, &Tensor, &Tensor) -> Result<Tensor>,
{
    /// The guided velocity at time `t` (one batched forward for the CFG pair).
    fn velocity(&mut self, z: &Tensor, t: f32, hooks: &mut Hooks) -> Result<Tensor> {
        let b = z.dim(0)?;
        let dev = z.device();
        let dt = z.dtype();
        let denom = f64::from(1.0 - t).max(self.cfg.t_eps);
        let scale = self.cfg.guidance_at(t);
        let v = if scale == 1.0 {
            let tt = Tensor::full(t, b, dev)?;
            let c = self.cond.map(|c| &c.cond);
            let x = (self.net)(z, c, &tt, self.labels)?.to_dtype(dt)?;
            ((x - z)? / denom)?
        } else {
            let z2 = Tensor::cat(&[z, z], 0)?; // [2B, C, H, W]
            let tt = Tensor::full(t, 2 * b, dev)?;
            let y2 = Tensor::cat(&[self.labels, self.null], 0)?;
            let c2 = self
                .cond
                .map(|c| Tensor::cat(&[&c.cond, &c.null], 0))
                .transpose()?;
            let x2 = (self.net)(&z2, c2.as_ref(), &tt, &y2)?.to_dtype(dt)?;
            let v2 = (x2.broadcast_sub(&z2)? / denom)?;
            let v_cond = v2.narrow(0, 0, b)?;
            let v_uncond = v2.narrow(0, b, b)?;
            (&v_uncond + ((v_cond - &v_uncond)? * scale)?)?
        };
        self.done += 1;
        if let Some(p) = hooks.progress.as_mut() {
            p(self.done, self.total);
        }
        Ok(v)
    }
}

/// What a batch is conditioned on.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// The classes `[B]` (u32).
    pub labels: &'a Tensor,
    /// The label of the unconditional pass.
    pub null_label: u32,
    /// The conditioning channels of both passes.
    pub cond: Option<&'a Conditioning>,
    /// A region that must come back exactly.
    pub inpaint: Option<&'a Inpaint>,
    /// Where on the path the start image lies: 0 for pure noise; above 0 for a variation (an
    /// earlier output re-noised to this time), sampled over `[t_start, 1]`.
    pub t_start: f32,
    /// The noise the kept region's path is drawn with: the start image itself unless the start
    /// is a re-noised earlier output.
    pub noise: Option<&'a Tensor>,
}

impl<'a> Inputs<'a> {
    /// Classes only.
    pub fn labels(labels: &'a Tensor, null_label: u32) -> Self {
        Self {
            labels,
            null_label,
            cond: None,
            inpaint: None,
            t_start: 0.0,
            noise: None,
        }
    }
}

/// Integrate from noise `z0` `[B, C, H, W]` (f32) to a roll estimate in `[-1, 1]`.
///
/// With `inputs.inpaint`, the known region follows its noised path at every step and comes back
/// exactly at the end. Returns `None` when cancelled.
pub fn sample<F>(
    net: F,
    z0: &Tensor,
    inputs: Inputs,
    cfg: &SamplerConfig,
    mut hooks: Hooks,
) -> Result<Option<Tensor>>
where
    F: Fn(&Tensor, Option<&Tensor>, &Tensor, &Tensor) -> Result<Tensor>,
{
    let Inputs {
        labels,
        null_label,
        cond,
        inpaint,
        t_start,
        noise,
    } = inputs;
    let steps = cfg.steps.max(1);
    let z0 = z0.to_dtype(DType::F32)?;
    let labels = labels.to_dtype(DType::U32)?;
    let b = z0.dim(0)?;
    let null = Tensor::full(null_label, b, z0.device())?;
    let t0 = t_start.clamp(0.0, 1.0);
    // The original's grid over [0, 1], moved onto [t0, 1] (exactly itself for t0 = 0).
    let ts: Vec<f32> = linspace(steps + 1)
        .into_iter()
        .map(|t| if t0 == 0.0 { t } else { t0 + (1.0 - t0) * t })
        .collect();
    let mut ctx = Ctx {
        net: &net,
        labels: &labels,
        null: &null,
        cond,
        cfg,
        done: 0,
        total: cfg.forwards(),
    };
    let cancelled = |h: &Hooks| h.cancel.is_some_and(|c| c.load(Ordering::Relaxed));
    let e = match noise {
        Some(n) => n.to_dtype(DType::F32)?,
        None => z0.clone(),
    };
    let mut z = z0.clone();
    for i in 0..steps {
        if cancelled(&hooks) {
            return Ok(None);
        }
        let (t, t_next) = (ts[i], ts[i + 1]);
        if let Some(ip) = inpaint {
            z = ip.project(&z, t, &e)?;
        }
        let dt = f64::from(t_next - t);
        let v = ctx.velocity(&z, t, &mut hooks)?;
        let last = i == steps - 1;
        z = if cfg.method == Method::Heun && !last {
            let mut z_euler = (&z + (&v * dt)?)?;
            if let Some(ip) = inpaint {
                z_euler = ip.project(&z_euler, t_next, &e)?;
            }
            let v_next = ctx.velocity(&z_euler, t_next, &mut hooks)?;
            (&z + (((v + v_next)? * 0.5)? * dt)?)?
        } else {
            (&z + (v * dt)?)?
        };
    }
    if let Some(ip) = inpaint {
        z = ip.mask.where_cond(&ip.known, &z)?;
    }
    Ok(Some(z))
}
