//! In-place CPU kernels for the optimizer step (f32).
//!
//! Written as candle tensor ops, one AdamW step with both EMAs is about 25 element-wise ops per
//! parameter, each a single-threaded pass that allocates its result: for the 33M `JiT-S/16` that
//! is gigabytes of memory traffic and page faults every step. These kernels update the moments,
//! the weights and the EMAs in place, in five parallel passes with no temporaries. The trainer's `AdamW` uses
//! them on the CPU and keeps the tensor-op composition for other devices; a test there holds
//! the two equal. (No backward: they update state outside the autograd graph.)

use super::cpu::{slice, uninit};
use candle_core::{
    bail, CpuStorage, CustomOp2, DType, InplaceOp2, InplaceOp3, Layout, Result, Shape, Storage,
    Tensor,
};
use rayon::prelude::*;

/// Elements per parallel work item: large enough to amortise the scheduling, small enough that
/// both cores get work on the small tensors (norm gains, biases) too.
const CHUNK: usize = 1 << 14;

/// The contiguous f32 data of a storage/layout pair, writable.
fn slice_mut<'a>(s: &'a mut CpuStorage, l: &Layout) -> Result<&'a mut [f32]> {
    let CpuStorage::F32(data) = s else {
        bail!("optimizer kernel needs an f32 tensor")
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&mut data[a..b]),
        None => bail!(
            "optimizer kernel needs a contiguous tensor, got {:?}",
            l.shape()
        ),
    }
}

fn same_len(a: usize, b: usize, name: &str) -> Result<()> {
    if a != b {
        bail!("{name}: {a} elements against {b}");
    }
    Ok(())
}

/// `dst = decay * dst + (1 - decay) * f(scale * src)` with `f` identity or square: the AdamW
/// moments (src the gradient, scale the clip factor) and the EMAs (src the new weights).
pub struct Blend {
    pub decay: f32,
    pub scale: f32,
    pub square: bool,
}

impl InplaceOp2 for Blend {
    fn name(&self) -> &'static str {
        "optim-blend"
    }

    fn cpu_fwd(
        &self,
        dst: &mut CpuStorage,
        dst_l: &Layout,
        src: &CpuStorage,
        src_l: &Layout,
    ) -> Result<()> {
        let d = slice_mut(dst, dst_l)?;
        let s = slice(src, src_l)?;
        same_len(d.len(), s.len(), self.name())?;
        let (a, b, k) = (self.decay, 1.0 - self.decay, self.scale);
        let square = self.square;
        d.par_chunks_mut(CHUNK)
            .zip(s.par_chunks(CHUNK))
            .for_each(|(d, s)| {
                if square {
                    for (d, &s) in d.iter_mut().zip(s) {
                        let g = k * s;
                        *d = a * *d + b * (g * g);
                    }
                } else {
                    for (d, &s) in d.iter_mut().zip(s) {
                        *d = a * *d + b * (k * s);
                    }
                }
            });
        Ok(())
    }
}

/// The AdamW weight update from the (already updated) moments, with decoupled weight decay as
/// torch.optim.AdamW: `w = w * (1 - lr wd) - lr * (m / bc1) / (sqrt(v / bc2) + eps)`.
pub struct AdamUpdate {
    pub lr: f32,
    pub weight_decay: f32,
    pub bc1: f32,
    pub bc2: f32,
    pub eps: f32,
}

impl InplaceOp3 for AdamUpdate {
    fn name(&self) -> &'static str {
        "adamw-update"
    }

    fn cpu_fwd(
        &self,
        dst: &mut CpuStorage,
        dst_l: &Layout,
        m: &CpuStorage,
        m_l: &Layout,
        v: &CpuStorage,
        v_l: &Layout,
    ) -> Result<()> {
        let w = slice_mut(dst, dst_l)?;
        let (m, v) = (slice(m, m_l)?, slice(v, v_l)?);
        same_len(w.len(), m.len(), self.name())?;
        same_len(w.len(), v.len(), self.name())?;
        let keep = 1.0 - self.lr * self.weight_decay;
        let (lr, s1, s2, eps) = (self.lr, 1.0 / self.bc1, 1.0 / self.bc2, self.eps);
        w.par_chunks_mut(CHUNK)
            .zip(m.par_chunks(CHUNK).zip(v.par_chunks(CHUNK)))
            .for_each(|(w, (m, v))| {
                for ((w, &m), &v) in w.iter_mut().zip(m).zip(v) {
                    *w = *w * keep - lr * (m * s1) / ((v * s2).sqrt() + eps);
                }
            });
        Ok(())
    }
}

/// The CPU kernel of [`weighted_sum`].
struct WeightedSum {
    wa: f32,
    wb: f32,
}

impl CustomOp2 for WeightedSum {
    fn name(&self) -> &'static str {
        "weighted-sum"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (a, b) = (slice(s1, l1)?, slice(s2, l2)?);
        same_len(a.len(), b.len(), self.name())?;
        // SAFETY: every element is written below.
        let mut out = unsafe { uninit(a.len()) };
        let (wa, wb) = (self.wa, self.wb);
        out.par_chunks_mut(CHUNK)
            .zip(a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK)))
            .for_each(|(o, (a, b))| {
                for ((o, &a), &b) in o.iter_mut().zip(a).zip(b) {
                    *o = wa * a + wb * b;
                }
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// Sum of squares of a tensor. For a contiguous CPU f32 tensor: in parallel and deterministic
/// (per-chunk sums in f64, added in chunk order whatever the threads did); elsewhere candle ops.
pub fn sum_sq(t: &Tensor) -> Result<f64> {
    {
        let (storage, layout) = t.storage_and_layout();
        if let (Storage::Cpu(cpu @ CpuStorage::F32(_)), Some((a, b))) =
            (&*storage, layout.contiguous_offsets())
        {
            let x = &cpu.as_slice::<f32>()?[a..b];
            let parts: Vec<f64> = x
                .par_chunks(CHUNK)
                .map(|c| c.iter().map(|&v| f64::from(v) * f64::from(v)).sum())
                .collect();
            return Ok(parts.iter().sum());
        }
    }
    let ss = t
        .sqr()?
        .sum_all()?
        .to_dtype(DType::F32)?
        .to_scalar::<f32>()?;
    Ok(f64::from(ss))
}

/// `wa * a + wb * b` (the two half-batch gradients combined): one parallel pass on the CPU,
/// the composition of candle ops elsewhere.
pub fn weighted_sum(a: &Tensor, b: &Tensor, wa: f64, wb: f64) -> Result<Tensor> {
    if super::fused_ok(&[a, b]) {
        let op = WeightedSum {
            wa: wa as f32,
            wb: wb as f32,
        };
        return a.contiguous()?.apply_op2_no_bwd(&b.contiguous()?, &op);
    }
    (a * wa)? + (b * wb)?
}
