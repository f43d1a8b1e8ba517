//! The sampler flags shared by `generate` (settings for this run) and `convert` (settings a
//! checkpoint recommends): each left out keeps the checkpoint's value.

use jit_music::sampler::{Method, SamplerConfig};

/// `--steps`, `--method`, `--cfg`, `--cfg-interval`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SamplerArgs {
    /// Sampling steps (default: the checkpoint's).
    #[arg(long)]
    pub steps: Option<usize>,
    /// ODE method: heun or euler (default: the checkpoint's).
    #[arg(long)]
    pub method: Option<Method>,
    /// Classifier-free guidance scale (default: the checkpoint's).
    #[arg(long)]
    pub cfg: Option<f64>,
    /// Guidance only for LOW < t < HIGH (LOW = 0 means from the start).
    #[arg(long, num_args = 2, value_names = ["LOW", "HIGH"])]
    pub cfg_interval: Option<Vec<f64>>,
}

impl SamplerArgs {
    /// Override `cfg` with the flags that were given, refusing values that cannot work.
    pub fn apply(&self, cfg: &mut SamplerConfig) -> anyhow::Result<()> {
        if let Some(v) = self.steps {
            if !(1..=1000).contains(&v) {
                anyhow::bail!("--steps must be between 1 and 1000, got {v}");
            }
            cfg.steps = v;
        }
        if let Some(m) = self.method {
            cfg.method = m;
        }
        if let Some(c) = self.cfg {
            if !(c.is_finite() && (0.0..=20.0).contains(&c)) {
                anyhow::bail!("--cfg must be between 0 and 20 (1 = no guidance), got {c}");
            }
            cfg.cfg_scale = c;
        }
        if let Some(iv) = &self.cfg_interval {
            let (lo, hi) = (iv[0], iv[1]);
            if !(lo.is_finite()
                && hi.is_finite()
                && (0.0..1.0).contains(&lo)
                && lo < hi
                && hi <= 1.0)
            {
                anyhow::bail!(
                    "--cfg-interval LOW HIGH must satisfy 0 <= LOW < HIGH <= 1, got {lo} {hi}"
                );
            }
            cfg.cfg_interval = (lo, hi);
        }
        Ok(())
    }
}
