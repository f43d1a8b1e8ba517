//! RMSNorm (eps 1e-6) and adaLN modulation, with an explicit inference/training split: candle's
//! fused `rms_norm` and `softmax_last_dim` have no backward, so training uses differentiable forms.

use super::OpPath;
#[allow(unused_imports)]
use candle_core::DType;
use candle_core::{Module, Result, Tensor, D};
use candle_nn::VarBuilder;

pub use crate::ops::RMS_EPS as EPS;

/// `RMSNorm(dim)`: `weight * x * rsqrt(mean(x^2) + eps)` over the last dim.
#[derive(Debug, Clone)]
pub struct RmsNorm {
    pub weight: Tensor, // [dim]
}

impl RmsNorm {
    pub fn new(dim: usize, vb: VarBuilder) -> Result<Self> {
        let weight = vb.get_with_hints(dim, "weight", candle_nn::Init::Const(1.0))?;
        Ok(Self { weight })
    }

    pub fn forward(&self, x: &Tensor, path: OpPath) -> Result<Tensor> {
        rms_norm(x, &self.weight, path)
    }
}

/// RMSNorm with gain `alpha` over the last dim, by the path's op.
pub fn rms_norm(x: &Tensor, alpha: &Tensor, path: OpPath) -> Result<Tensor> {
    match path {
        OpPath::Inference => candle_nn::ops::rms_norm(&x.contiguous()?, alpha, EPS),
        OpPath::Training | OpPath::Reference => {
            let ms = x.sqr()?.mean_keepdim(D::Minus1)?;
            x.broadcast_mul(&(ms + EPS as f64)?.sqrt()?.recip()?)?
                .broadcast_mul(alpha)
        }
    }
}

/// `modulate(norm(x), shift, scale)` for x `[B, N, D]`, shift/scale `[B, D]`. The norm's gain is
/// folded into `(1 + scale)` so the big tensor sees one multiply: identical output, fewer ops.
pub fn norm_modulate(
    x: &Tensor,
    norm: &RmsNorm,
    shift: &Tensor,
    scale: &Tensor,
    path: OpPath,
) -> Result<Tensor> {
    let (b, _, d) = x.dims3()?;
    let gain = (scale + 1.0)?.broadcast_mul(&norm.weight.to_dtype(x.dtype())?)?; // [B, D]
    if path.fused(x) {
        return crate::ops::ada_norm(x, &gain, shift);
    }
    match path {
        OpPath::Inference => {
            let ones = Tensor::ones(d, x.dtype(), x.device())?;
            candle_nn::ops::rms_norm(&x.contiguous()?, &ones, EPS)?
                .broadcast_mul(&gain.reshape((b, 1, d))?)?
                .broadcast_add(&shift.reshape((b, 1, d))?)
        }
        OpPath::Training | OpPath::Reference => crate::ops::ada_norm_reference(x, &gain, shift),
    }
}

/// SiLU, the same op on both paths (candle's `silu` has a backward).
pub fn silu(x: &Tensor) -> Result<Tensor> {
    candle_nn::Activation::Silu.forward(x)
}
