//! Conditioning embeddings: `TimestepEmbedder` (sin/cos of `t * freqs * 2*pi`, then an MLP) and
//! `LabelEmbedder` (`num_classes + 1` rows; the last is the CFG null label).

use super::linear::Linear;
use super::norm::silu;
use super::OpPath;
use candle_core::{DType, Result, Tensor};
use candle_nn::{Init, VarBuilder};

pub const FREQ_DIM: usize = 256;

#[derive(Debug, Clone)]
pub struct TimestepEmbedder {
    pub mlp0: Linear,
    pub mlp2: Linear,
}

/// `[sin, cos]` of `t * freqs * 2*pi` (not the image JiT's `[cos, sin]`): `[B, dim]`, f32.
pub fn timestep_embedding(t: &Tensor, dim: usize) -> Result<Tensor> {
    let half = dim / 2;
    let dev = t.device();
    let freqs: Vec<f32> = (0..half)
        .map(|i| (-(10000f32.ln()) * i as f32 / half as f32).exp())
        .collect();
    let freqs = Tensor::from_vec(freqs, (1, half), dev)?; // [1, half]
    let t = t.to_dtype(DType::F32)?.clamp(0f32, 1f32)?.unsqueeze(1)?; // [B, 1]
    let args = (t.broadcast_mul(&freqs)? * (std::f64::consts::PI * 2.0))?; // [B, half]
    let emb = Tensor::cat(&[args.sin()?, args.cos()?], 1)?; // [B, 2*half]
    if dim % 2 == 1 {
        let b = emb.dim(0)?;
        return Tensor::cat(&[emb, Tensor::zeros((b, 1), DType::F32, dev)?], 1);
    }
    Ok(emb)
}

impl TimestepEmbedder {
    pub fn new(hidden: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            mlp0: Linear::new(FREQ_DIM, hidden, true, vb.pp("mlp.0"))?,
            mlp2: Linear::new(hidden, hidden, true, vb.pp("mlp.2"))?,
        })
    }

    /// t `[B]` in [0, 1] -> `[B, D]` in `dtype`.
    pub fn forward(&self, t: &Tensor, dtype: DType, path: OpPath) -> Result<Tensor> {
        let f = timestep_embedding(t, FREQ_DIM)?.to_dtype(dtype)?; // [B, 256]
        let h = silu(&self.mlp0.forward(&f, path)?)?;
        self.mlp2.forward(&h, path) // [B, D]
    }
}

#[derive(Debug, Clone)]
pub struct LabelEmbedder {
    pub embedding: Tensor, // [num_classes + 1, D]
}

impl LabelEmbedder {
    pub fn new(num_classes: usize, hidden: usize, vb: VarBuilder) -> Result<Self> {
        // nn.Embedding's default init is N(0, 1).
        let embedding = vb.get_with_hints(
            (num_classes + 1, hidden),
            "embedding.weight",
            Init::Randn {
                mean: 0.0,
                stdev: 1.0,
            },
        )?;
        Ok(Self { embedding })
    }

    /// labels `[B]` (u32/i64) -> `[B, D]`.
    pub fn forward(&self, y: &Tensor, dtype: DType) -> Result<Tensor> {
        let y = y.to_dtype(DType::U32)?;
        self.embedding.to_dtype(dtype)?.index_select(&y, 0)
    }
}
