//! Linear layers with the PyTorch layout (`weight [out, in]`, `bias [out]`) and xavier-uniform
//! initialisation, as the original's `initialize_weights`.

use super::OpPath;
use candle_core::{Result, Tensor};
use candle_nn::{Init, VarBuilder};

#[derive(Debug, Clone)]
pub struct Linear {
    pub weight: Tensor,       // [out, in]
    pub bias: Option<Tensor>, // [out]
    /// `weight^T` made contiguous once, for frozen (inference) weights: gemm packs a row-major
    /// right-hand side far faster than the strided view `weight.t()`.
    weight_t: Option<Tensor>, // [in, out]
}

/// Xavier-uniform bound for a weight with these fans.
pub fn xavier(fan_in: usize, fan_out: usize) -> Init {
    let a = (6.0 / (fan_in + fan_out) as f64).sqrt();
    Init::Uniform { lo: -a, up: a }
}

impl Linear {
    pub fn new(in_dim: usize, out_dim: usize, bias: bool, vb: VarBuilder) -> Result<Self> {
        let weight = vb.get_with_hints((out_dim, in_dim), "weight", xavier(in_dim, out_dim))?;
        let bias = if bias {
            Some(vb.get_with_hints(out_dim, "bias", Init::Const(0.0))?)
        } else {
            None
        };
        let weight_t = if weight.is_variable() {
            None // trained: the graph must go through the variable itself
        } else {
            Some(weight.t()?.contiguous()?)
        };
        Ok(Self {
            weight,
            bias,
            weight_t,
        })
    }

    /// `x @ W^T + b` for x `[M, in]` (2D: batch and tokens folded into one matmul).
    pub fn forward(&self, x: &Tensor, path: OpPath) -> Result<Tensor> {
        if path.fused(x) {
            if let Some(b) = &self.bias {
                return match &self.weight_t {
                    Some(wt) => crate::ops::linear_t(x, wt, b),
                    None => crate::ops::linear(x, &self.weight, b),
                };
            }
        }
        let y = match &self.weight_t {
            Some(wt) if wt.dtype() == x.dtype() => x.matmul(wt)?, // [M, out]
            _ => x.matmul(&self.weight.to_dtype(x.dtype())?.t()?)?,
        };
        match &self.bias {
            Some(b) => y.broadcast_add(&b.to_dtype(x.dtype())?),
            None => Ok(y),
        }
    }
}
