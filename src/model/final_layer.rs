//! `FinalLayer`: RMSNorm + adaLN (shift, scale) + linear to one patch of pixels per token.

use super::linear::Linear;
use super::norm::{norm_modulate, RmsNorm};
use super::OpPath;
use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

#[derive(Debug, Clone)]
pub struct FinalLayer {
    pub norm: RmsNorm,
    pub linear: Linear,
    pub ada: Linear,
}

impl FinalLayer {
    pub fn new(
        hidden: usize,
        patch_area: usize,
        out_channels: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        Ok(Self {
            norm: RmsNorm::new(hidden, vb.pp("norm"))?,
            linear: Linear::new(hidden, patch_area * out_channels, true, vb.pp("linear"))?,
            ada: Linear::new(hidden, 2 * hidden, true, vb.pp("ada.1"))?,
        })
    }

    /// x `[B, N, D]`, silu(c) `[B, D]` -> `[B*N, ph*pw*C]`.
    pub fn forward(&self, x: &Tensor, c_act: &Tensor, path: OpPath) -> Result<Tensor> {
        let (b, n, d) = x.dims3()?;
        let mods = self.ada.forward(c_act, path)?.chunk(2, 1)?; // 2 x [B, D]
        let h = norm_modulate(x, &self.norm, &mods[0], &mods[1], path)?;
        self.linear.forward(&h.reshape((b * n, d))?, path)
    }
}
