//! `y = x + a * gate[b]`: the gated residual of every JiT sub-layer.

use super::cpu::{min_len, slice, uninit};
use super::fused_ok;
use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

struct Resid;
struct ResidBwd;

/// x, a `[B, N, D]`, gate `[B, D]` -> `[B, N, D]`.
pub fn gated_residual(x: &Tensor, a: &Tensor, gate: &Tensor) -> Result<Tensor> {
    if !fused_ok(&[x, a, gate]) {
        return gated_residual_reference(x, a, gate);
    }
    x.contiguous()?
        .apply_op3(&a.contiguous()?, &gate.contiguous()?, Resid)
}

pub fn gated_residual_reference(x: &Tensor, a: &Tensor, gate: &Tensor) -> Result<Tensor> {
    x + a.broadcast_mul(&gate.unsqueeze(1)?)?
}

impl CustomOp3 for Resid {
    fn name(&self) -> &'static str {
        "gated-residual"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, a, g) = (slice(s1, l1)?, slice(s2, l2)?, slice(s3, l3)?);
        let (_, n, d) = l1.shape().dims3()?;
        // SAFETY: every row is written below.
        let mut y = unsafe { uninit(x.len()) };
        y.par_chunks_mut(d)
            .with_min_len(min_len())
            .enumerate()
            .for_each(|(row, yr)| {
                let gb = &g[(row / n) * d..(row / n + 1) * d];
                let (xr, ar) = (&x[row * d..(row + 1) * d], &a[row * d..(row + 1) * d]);
                for i in 0..d {
                    yr[i] = xr[i] + ar[i] * gb[i];
                }
            });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        a: &Tensor,
        gate: &Tensor,
        _res: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (b, n, d) = a.dims3()?;
        let packed = a.apply_op3_no_bwd(gate, &dy.contiguous()?, &ResidBwd)?; // [BND + BD]
        let da = packed.narrow(0, 0, b * n * d)?.reshape((b, n, d))?;
        let dg = packed.narrow(0, b * n * d, b * d)?.reshape((b, d))?;
        Ok((Some(dy.clone()), Some(da), Some(dg)))
    }
}

impl CustomOp3 for ResidBwd {
    fn name(&self) -> &'static str {
        "gated-residual-bwd"
    }

    /// Packed `[da (B*N*D), dgate (B*D)]`, parallel over the batch.
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (a, g, dy) = (slice(s1, l1)?, slice(s2, l2)?, slice(s3, l3)?);
        let (b, n, d) = l1.shape().dims3()?;
        // Packed output [da, dgate]: da is written in full, the gate sums start at zero.
        // SAFETY: as said.
        let mut out = unsafe { uninit(b * n * d + b * d) };
        let (da, dg) = out.split_at_mut(b * n * d);
        dg.fill(0.0);
        da.par_chunks_mut(n * d)
            .with_min_len(min_len())
            .zip(dg.par_chunks_mut(d))
            .enumerate()
            .for_each(|(bi, (dab, dgb))| {
                let gb = &g[bi * d..(bi + 1) * d];
                for t in 0..n {
                    let off = (bi * n + t) * d;
                    for i in 0..d {
                        let gy = dy[off + i];
                        dab[t * d + i] = gy * gb[i];
                        dgb[i] += gy * a[off + i];
                    }
                }
            });
        let len = out.len();
        Ok((CpuStorage::F32(out), Shape::from(len)))
    }
}
