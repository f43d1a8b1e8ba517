//! Multi-head self-attention with qkv bias and q/k RMSNorm (the original's `Attention`).

use super::linear::Linear;
use super::norm::{rms_norm, RmsNorm};
use super::OpPath;
use candle_core::{Result, Tensor, D};
use candle_nn::VarBuilder;

#[derive(Debug, Clone)]
pub struct Attention {
    pub qkv: Linear,
    pub q_norm: RmsNorm,
    pub k_norm: RmsNorm,
    pub proj: Linear,
    num_heads: usize,
}

impl Attention {
    pub fn new(dim: usize, num_heads: usize, vb: VarBuilder) -> Result<Self> {
        let hd = dim / num_heads;
        Ok(Self {
            qkv: Linear::new(dim, 3 * dim, true, vb.pp("qkv"))?,
            q_norm: RmsNorm::new(hd, vb.pp("q_norm"))?,
            k_norm: RmsNorm::new(hd, vb.pp("k_norm"))?,
            proj: Linear::new(dim, dim, true, vb.pp("proj"))?,
            num_heads,
        })
    }

    /// x `[B*N, D]` (tokens of `b` sequences) -> `[B*N, D]`.
    pub fn forward(&self, x: &Tensor, b: usize, path: OpPath) -> Result<Tensor> {
        let (bn, d) = x.dims2()?;
        let n = bn / b;
        let h = self.num_heads;
        let hd = d / h;
        let dt = x.dtype();
        // 1/sqrt(hd) folded into the q-norm gain: identical scores, one op fewer.
        let scale = 1.0 / (hd as f64).sqrt();
        let qkv = self.qkv.forward(x, path)?; // [B*N, 3D]
        if path.fused(&qkv) {
            let o =
                crate::ops::attention(&qkv, &self.q_norm.weight, &self.k_norm.weight, b, h, scale)?; // [B*N, D]
            return self.proj.forward(&o, path);
        }
        let qkv = qkv
            .reshape((b, n, 3, h, hd))?
            .permute((2, 0, 3, 1, 4))? // [3, B, H, N, hd]
            .contiguous()?;
        let q = qkv.get(0)?.reshape((b * h, n, hd))?; // [B*H, N, hd]
        let k = qkv.get(1)?.reshape((b * h, n, hd))?;
        let v = qkv.get(2)?.reshape((b * h, n, hd))?;
        let q = rms_norm(&q, &(self.q_norm.weight.to_dtype(dt)? * scale)?, path)?;
        let k = rms_norm(&k, &self.k_norm.weight.to_dtype(dt)?, path)?;
        let att = q.matmul(&k.t()?)?; // [B*H, N, N]
        let att = match path {
            OpPath::Inference => candle_nn::ops::softmax_last_dim(&att)?,
            OpPath::Training | OpPath::Reference => candle_nn::ops::softmax(&att, D::Minus1)?,
        };
        let o = att.matmul(&v)?; // [B*H, N, hd]
        let o = o
            .reshape((b, h, n, hd))?
            .transpose(1, 2)? // [B, N, H, hd]
            .contiguous()?
            .reshape((b * n, d))?; // [B*N, D]
        self.proj.forward(&o, path)
    }
}
