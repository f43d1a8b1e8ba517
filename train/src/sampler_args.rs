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
    /// Override `cfg` with the flags that were given.
    pub fn apply(&self, cfg: &mut SamplerConfig) {
        if let Some(v) = self.steps {
            cfg.steps = v.max(1);
        }
        if let Some(m) = self.method {
            cfg.method = m;
        }
        if let Some(c) = self.cfg {
            cfg.cfg_scale = c;
        }
        if let Some(iv) = &self.cfg_interval {
            cfg.cfg_interval = (iv[0], iv[1]);
        }
    }
}
