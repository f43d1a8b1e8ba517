//! `h = silu(x1) * x2` with `x1, x2` the two halves of the last dim.

use super::cpu::{min_len, slice, uninit};
use super::fused_ok;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

struct SwiGlu;
struct SwiGluBwd;

/// x12 `[M, 2H]` -> `[M, H]`.
pub fn swiglu(x12: &Tensor) -> Result<Tensor> {
    if !fused_ok(&[x12]) {
        return swiglu_reference(x12);
    }
    x12.contiguous()?.apply_op1(SwiGlu)
}

pub fn swiglu_reference(x12: &Tensor) -> Result<Tensor> {
    let h = x12.dim(1)? / 2;
    let x1 = x12.narrow(1, 0, h)?;
    let x2 = x12.narrow(1, h, h)?;
    candle_nn::ops::silu(&x1)? * x2
}

#[inline]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

impl CustomOp1 for SwiGlu {
    fn name(&self) -> &'static str {
        "swiglu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = slice(s, l)?;
        let (m, h2) = l.shape().dims2()?;
        let h = h2 / 2;
        // SAFETY: every row is written below.
        let mut y = unsafe { uninit(m * h) };
        y.par_chunks_mut(h)
            .with_min_len(min_len())
            .enumerate()
            .for_each(|(row, yr)| {
                let xr = &x[row * h2..(row + 1) * h2];
                for i in 0..h {
                    let a = xr[i];
                    yr[i] = a * sigmoid(a) * xr[h + i];
                }
            });
        Ok((CpuStorage::F32(y), Shape::from((m, h))))
    }

    fn bwd(&self, x12: &Tensor, _res: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(x12.apply_op2_no_bwd(&dy.contiguous()?, &SwiGluBwd)?))
    }
}

impl CustomOp2 for SwiGluBwd {
    fn name(&self) -> &'static str {
        "swiglu-bwd"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, dy) = (slice(s1, l1)?, slice(s2, l2)?);
        let (m, h2) = l1.shape().dims2()?;
        let h = h2 / 2;
        // SAFETY: both halves of every row are written below.
        let mut dx = unsafe { uninit(m * h2) };
        dx.par_chunks_mut(h2)
            .with_min_len(min_len())
            .enumerate()
            .for_each(|(row, dr)| {
                let xr = &x[row * h2..(row + 1) * h2];
                let g = &dy[row * h..(row + 1) * h];
                for i in 0..h {
                    let (a, b) = (xr[i], xr[h + i]);
                    let s = sigmoid(a);
                    let silu = a * s;
                    dr[i] = g[i] * b * s * (1.0 + a * (1.0 - s));
                    dr[h + i] = g[i] * silu;
                }
            });
        Ok((CpuStorage::F32(dx), l1.shape().clone()))
    }
}
