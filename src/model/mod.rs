//! The JiT-Music network (the original's `JiTMusic`), one concept per file. Weight names and
//! shapes are the original state_dict's, so weights move between the two without a mapping.

mod attention;
mod block;
mod config;
mod embed;
mod final_layer;
mod linear;
mod norm;
mod patch_embed;
mod pos_embed;
mod record;
mod swiglu;

pub use attention::Attention;
pub use block::JitBlock;
pub use config::JitConfig;
pub use embed::{timestep_embedding, LabelEmbedder, TimestepEmbedder};
pub use final_layer::FinalLayer;
pub use linear::Linear;
pub use norm::{rms_norm, RmsNorm, EPS as RMS_EPS};
pub use patch_embed::BottleneckPatchEmbed;
pub use pos_embed::sincos_2d;
pub use swiglu::SwiGlu;

use candle_core::{DType, Result, Tensor};
use candle_nn::VarBuilder;

/// Which ops the forward uses; all three compute the same function (tests keep them equal).
///
/// * `Training`: ops with a backward. On CPU f32 these are the fused kernels of [`crate::ops`]
///   (hand-written backward); elsewhere plain differentiable candle ops.
/// * `Inference`: no gradient needed. CPU f32 uses the same fused kernels; other devices use
///   candle's fused `rms_norm` / `softmax_last_dim`, which have **no backward** (a training graph
///   through them would silently get no gradient, which is why training never takes this path).
/// * `Reference`: plain differentiable candle ops everywhere: slow, obviously correct, the
///   baseline the fused kernels are tested against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpPath {
    Inference,
    Training,
    Reference,
}

impl OpPath {
    /// Whether this path may use the fused CPU kernels for `x`.
    pub(crate) fn fused(self, x: &Tensor) -> bool {
        self != OpPath::Reference && crate::ops::fused_ok(&[x])
    }
}

/// The network: `x_pred = net(z, c, t, y)`, `c` the conditioning channels (if any).
#[derive(Debug, Clone)]
pub struct JiT {
    pub cfg: JitConfig,
    pub x_embedder: BottleneckPatchEmbed,
    pub pos_embed: Tensor, // [1, N, D], fixed
    pub t_embedder: TimestepEmbedder,
    pub y_embedder: LabelEmbedder,
    pub blocks: Vec<JitBlock>,
    pub final_layer: FinalLayer,
    /// Every weight under its state_dict name, as construction took them (`pos_embed` first).
    weights: Vec<(String, Tensor)>,
}

impl JiT {
    /// Build from a `VarBuilder` whose names are the original state_dict's. With a `VarMap`
    /// builder this creates trainable variables initialised as the original does.
    pub fn new(cfg: &JitConfig, vb: VarBuilder) -> Result<Self> {
        cfg.validate().map_err(candle_core::Error::msg)?;
        let d = cfg.hidden_size;
        let (vb, log) = record::recording(&vb);
        // Fixed, never trained: taken from the weights when they carry it (the original saves
        // it), else computed.
        let pos_embed = if vb.contains_tensor("pos_embed") {
            vb.get((1, cfg.num_patches(), d), "pos_embed")?
        } else {
            sincos_2d(d, cfg.grid_h(), cfg.grid_w(), vb.device())?.to_dtype(vb.dtype())?
        };
        let t_embedder = TimestepEmbedder::new(d, vb.pp("t_embedder"))?;
        let y_embedder = LabelEmbedder::new(cfg.num_classes, d, vb.pp("y_embedder"))?;
        let x_embedder = BottleneckPatchEmbed::new(cfg, vb.pp("x_embedder"))?;
        let blocks = (0..cfg.depth)
            .map(|i| JitBlock::new(cfg, vb.pp(format!("blocks.{i}"))))
            .collect::<Result<Vec<_>>>()?;
        let final_layer = FinalLayer::new(
            d,
            cfg.patch_h * cfg.patch_w,
            cfg.in_channels,
            vb.pp("final_layer"),
        )?;
        drop(vb);
        let mut weights = record::take(log);
        if !weights.iter().any(|(n, _)| n == "pos_embed") {
            weights.insert(0, ("pos_embed".into(), pos_embed.clone()));
        }
        Ok(Self {
            cfg: cfg.clone(),
            t_embedder,
            y_embedder,
            x_embedder,
            pos_embed,
            blocks,
            final_layer,
            weights,
        })
    }

    /// The null (unconditional) label.
    pub fn null_label(&self) -> u32 {
        self.cfg.num_classes as u32
    }

    /// z `[B, C, H, W]`, c `[B, Cc, H, W]` (the conditioning channels; `None` = all empty),
    /// t `[B]`, y `[B]` -> x_pred `[B, C, H, W]`, in z's dtype.
    ///
    /// For inference on the CPU, a batch of two or more (a CFG pair at least) runs as two halves
    /// side by side, each on one thread with single-threaded kernels: at these sizes that beats
    /// splitting every small matmul across the cores.
    pub fn forward(
        &self,
        z: &Tensor,
        c: Option<&Tensor>,
        t: &Tensor,
        y: &Tensor,
        path: OpPath,
    ) -> Result<Tensor> {
        let b = z.dim(0)?;
        if path == OpPath::Inference && b >= 2 && path.fused(z) && !crate::ops::is_serial() {
            let h = b / 2;
            let half = |s: usize, n: usize| -> Result<Tensor> {
                let c = c.map(|c| c.narrow(0, s, n)).transpose()?;
                crate::ops::serial(|| {
                    self.forward_one(
                        &z.narrow(0, s, n)?,
                        c.as_ref(),
                        &t.narrow(0, s, n)?,
                        &y.narrow(0, s, n)?,
                        path,
                    )
                })
            };
            let (a, c) = rayon::join(|| half(0, h), || half(h, b - h));
            return Tensor::cat(&[a?, c?], 0);
        }
        self.forward_one(z, c, t, y, path)
    }

    /// The network input: the noisy roll with its conditioning channels (zeros when absent).
    fn input(&self, z: &Tensor, c: Option<&Tensor>) -> Result<Tensor> {
        let cc = self.cfg.cond_channels;
        if cc == 0 {
            return Ok(z.clone());
        }
        let (b, _, h, w) = z.dims4()?;
        let c = match c {
            Some(c) => c.to_dtype(z.dtype())?,
            None => Tensor::zeros((b, cc, h, w), z.dtype(), z.device())?,
        };
        Tensor::cat(&[z, &c], 1) // [B, C + Cc, H, W]
    }

    fn forward_one(
        &self,
        z: &Tensor,
        c: Option<&Tensor>,
        t: &Tensor,
        y: &Tensor,
        path: OpPath,
    ) -> Result<Tensor> {
        let (b, _, _, _) = z.dims4()?;
        let dt = z.dtype();
        let (n, d) = (self.cfg.num_patches(), self.cfg.hidden_size);
        let x = self
            .x_embedder
            .forward(&self.input(z, c)?)?
            .reshape((b, n, d))?; // [B, N, D]
        let mut x = x.broadcast_add(&self.pos_embed.to_dtype(dt)?)?;
        let c = (self.t_embedder.forward(t, dt, path)? + self.y_embedder.forward(y, dt)?)?; // [B, D]
        let c_act = block::ada_input(&c)?; // [B, D]
        for blk in &self.blocks {
            x = blk.forward(&x, &c_act, path)?;
        }
        let out = self.final_layer.forward(&x, &c_act, path)?; // [B*N, ph*pw*C]
        self.unpatchify(&out, b)
    }

    /// Tokens `[B*N, ph*pw*C]` -> image `[B, C, H, W]`: token (gh, gw) fills rows gh*ph.. and
    /// columns gw*pw.., as the original's `view(B, gh, gw, ph, pw, C).permute(0, 5, 1, 3, 2, 4)`.
    pub fn unpatchify(&self, x: &Tensor, b: usize) -> Result<Tensor> {
        let c = &self.cfg;
        let (gh, gw, ph, pw, ch) = (c.grid_h(), c.grid_w(), c.patch_h, c.patch_w, c.in_channels);
        x.reshape((b, gh, gw, ph, pw, ch))?
            .permute((0, 5, 1, 3, 2, 4))? // [B, C, gh, ph, gw, pw]
            .contiguous()?
            .reshape((b, ch, c.input_h, c.input_w))
    }

    /// Every weight tensor under its state_dict name (`pos_embed` included, as the original
    /// saves), in construction order.
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        self.weights.clone()
    }

    /// Number of parameters (as PyTorch counts them, `pos_embed` included).
    pub fn param_count(&self) -> usize {
        self.named_tensors()
            .iter()
            .map(|(_, t)| t.elem_count())
            .sum()
    }

    /// A copy with every weight in `dtype` (for bf16 inference on CUDA).
    pub fn to_dtype(&self, dtype: DType) -> Result<Self> {
        let map: std::collections::HashMap<String, Tensor> = self
            .named_tensors()
            .into_iter()
            .map(|(k, t)| Ok((k, t.to_dtype(dtype)?)))
            .collect::<Result<_>>()?;
        let vb = VarBuilder::from_tensors(map, dtype, self.pos_embed.device());
        JiT::new(&self.cfg, vb)
    }
}
