//! Linear layers with the PyTorch layout (`weight [out, in]`, `bias [out]`) and xavier-uniform
//! initialisation, as the original's `initialize_weights`.

use candle_core::{Result, Tensor};
use candle_nn::{Init, VarBuilder};

#[derive(Debug, Clone)]
pub struct Linear {
    pub weight: Tensor,       // [out, in]
    pub bias: Option<Tensor>, // [out]
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
        Ok(Self { weight, bias })
    }

    /// `x @ W^T + b` for x `[M, in]` (2D: batch and tokens folded into one matmul).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let w = if self.weight.dtype() != x.dtype() {
            self.weight.to_dtype(x.dtype())?
        } else {
            self.weight.clone()
        };
        let y = x.matmul(&w.t()?)?; // [M, out]
        match &self.bias {
            // Fused on CPU (parallel column-sum gradient), a broadcast add elsewhere.
            Some(b) => crate::ops::bias_add(&y, &b.to_dtype(x.dtype())?),
            None => Ok(y),
        }
    }

    /// For x `[.., in]` of any rank: folds the leading dims into one matmul.
    pub fn forward_nd(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let in_dim = *dims.last().unwrap_or(&1);
        let m: usize = dims[..dims.len() - 1].iter().product();
        let y = self.forward(&x.reshape((m, in_dim))?)?;
        let mut out = dims.clone();
        let last = out.len() - 1;
        out[last] = y.dim(1)?;
        y.reshape(out)
    }
}
