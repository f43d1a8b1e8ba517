//! `SwiGLUFFN`: `w3(silu(x1) * x2)` with `x1, x2 = w12(x).chunk(2)`.

use super::linear::Linear;
use super::norm::silu;
use super::OpPath;
use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

#[derive(Debug, Clone)]
pub struct SwiGlu {
    pub w12: Linear,
    pub w3: Linear,
    hidden: usize,
}

impl SwiGlu {
    pub fn new(dim: usize, hidden: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            w12: Linear::new(dim, 2 * hidden, true, vb.pp("w12"))?,
            w3: Linear::new(hidden, dim, true, vb.pp("w3"))?,
            hidden,
        })
    }

    /// x `[M, D]` -> `[M, D]`.
    pub fn forward(&self, x: &Tensor, path: OpPath) -> Result<Tensor> {
        let x12 = self.w12.forward(x, path)?; // [M, 2H]
        let h = if path.fused(&x12) {
            crate::ops::swiglu(&x12)? // [M, H]
        } else {
            let x1 = x12.narrow(1, 0, self.hidden)?; // [M, H]
            let x2 = x12.narrow(1, self.hidden, self.hidden)?; // [M, H]
            (silu(&x1)? * x2)?
        };
        self.w3.forward(&h, path)
    }
}
