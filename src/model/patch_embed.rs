//! `BottleneckPatchEmbed`: a p_h x p_w stride-p conv to the bottleneck (no bias), then a 1x1 conv
//! to hidden (with bias). Applied as reshape/permute + matmuls: the same weights viewed as
//! matrices, which avoids candle's conv2d backward (it fails when H % p != W % p).

use super::linear::xavier;
use super::JitConfig;
use candle_core::{Result, Tensor};
use candle_nn::{Init, VarBuilder};

#[derive(Debug, Clone)]
pub struct BottleneckPatchEmbed {
    pub proj1: Tensor,      // [bottleneck, C, ph, pw]
    pub proj2: Tensor,      // [hidden, bottleneck, 1, 1]
    pub proj2_bias: Tensor, // [hidden]
    ph: usize,
    pw: usize,
}

impl BottleneckPatchEmbed {
    pub fn new(cfg: &JitConfig, vb: VarBuilder) -> Result<Self> {
        let (c, ph, pw, k, d) = (
            cfg.in_channels + cfg.cond_channels,
            cfg.patch_h,
            cfg.patch_w,
            cfg.bottleneck_dim,
            cfg.hidden_size,
        );
        let proj1 = vb.get_with_hints(
            (k, c, ph, pw),
            "proj1.weight",
            xavier(c * ph * pw, k * ph * pw),
        )?;
        let proj2 = vb.get_with_hints((d, k, 1, 1), "proj2.weight", xavier(k, d))?;
        let proj2_bias = vb.get_with_hints(d, "proj2.bias", Init::Const(0.0))?;
        Ok(Self {
            proj1,
            proj2,
            proj2_bias,
            ph,
            pw,
        })
    }

    /// z `[B, C, H, W]` -> tokens `[B*N, D]`, row-major over (gh, gw) as `flatten(2)` orders them.
    pub fn forward(&self, z: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = z.dims4()?;
        let (gh, gw) = (h / self.ph, w / self.pw);
        let patches = z
            .reshape((b, c, gh, self.ph, gw, self.pw))? // [B, C, gh, ph, gw, pw]
            .permute((0, 2, 4, 1, 3, 5))? // [B, gh, gw, C, ph, pw]
            .contiguous()?
            .reshape((b * gh * gw, c * self.ph * self.pw))?; // [B*N, C*ph*pw]
        let dt = z.dtype();
        let k = self.proj1.dim(0)?;
        let w1 = self
            .proj1
            .to_dtype(dt)?
            .reshape((k, c * self.ph * self.pw))?; // [K, P]
        let d = self.proj2.dim(0)?;
        let w2 = self.proj2.to_dtype(dt)?.reshape((d, k))?; // [D, K]
        let x = patches.matmul(&w1.t()?)?; // [B*N, K]
        x.matmul(&w2.t()?)?
            .broadcast_add(&self.proj2_bias.to_dtype(dt)?) // [B*N, D]
    }
}
