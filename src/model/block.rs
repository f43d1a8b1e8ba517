//! `JiTBlock`: adaLN-modulated attention and SwiGLU, each behind a gate, with RMSNorm.

use super::attention::Attention;
use super::linear::Linear;
use super::norm::{norm_modulate, silu, RmsNorm};
use super::swiglu::SwiGlu;
use super::{JitConfig, OpPath};
use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

#[derive(Debug, Clone)]
pub struct JitBlock {
    pub norm1: RmsNorm,
    pub attn: Attention,
    pub norm2: RmsNorm,
    pub mlp: SwiGlu,
    pub ada: Linear, // "ada.1": ada.0 is the SiLU
}

impl JitBlock {
    pub fn new(cfg: &JitConfig, vb: VarBuilder) -> Result<Self> {
        let d = cfg.hidden_size;
        Ok(Self {
            norm1: RmsNorm::new(d, vb.pp("norm1"))?,
            attn: Attention::new(d, cfg.num_heads, vb.pp("attn"))?,
            norm2: RmsNorm::new(d, vb.pp("norm2"))?,
            mlp: SwiGlu::new(d, cfg.mlp_hidden(), vb.pp("mlp"))?,
            ada: Linear::new(d, 6 * d, true, vb.pp("ada.1"))?,
        })
    }

    /// x `[B, N, D]`, silu(c) `[B, D]` -> `[B, N, D]`.
    pub fn forward(&self, x: &Tensor, c_act: &Tensor, path: OpPath) -> Result<Tensor> {
        let (b, n, d) = x.dims3()?;
        let mods = self.ada.forward(c_act, path)?.chunk(6, 1)?; // 6 x [B, D]
        let (shift1, scale1, gate1) = (&mods[0], &mods[1], &mods[2]);
        let (shift2, scale2, gate2) = (&mods[3], &mods[4], &mods[5]);

        let h = norm_modulate(x, &self.norm1, shift1, scale1, path)?; // [B, N, D]
        let a = self
            .attn
            .forward(&h.reshape((b * n, d))?, b, path)?
            .reshape((b, n, d))?;
        let x = residual(x, &a, gate1, path)?;

        let h = norm_modulate(&x, &self.norm2, shift2, scale2, path)?;
        let m = self
            .mlp
            .forward(&h.reshape((b * n, d))?, path)?
            .reshape((b, n, d))?;
        residual(&x, &m, gate2, path)
    }
}

/// `x + a * gate` (gate `[B, D]` broadcast over tokens).
fn residual(x: &Tensor, a: &Tensor, gate: &Tensor, path: OpPath) -> Result<Tensor> {
    if path.fused(x) {
        crate::ops::gated_residual(x, a, gate)
    } else {
        crate::ops::gated_residual_reference(x, a, gate)
    }
}

/// SiLU of the conditioning vector, shared by every block's `ada` (computed once per forward).
pub fn ada_input(c: &Tensor) -> Result<Tensor> {
    silu(c)
}
