//! `y = rmsnorm(x) * gain[b] + shift[b]`: RMSNorm (no affine) fused with adaLN modulation.
//! The norm's own weight is folded into `gain` by the caller (`weight * (1 + scale)`).

use super::cpu::{min_len, rms_inv, slice, uninit};
use super::fused_ok;
use super::RMS_EPS as EPS;
use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor, D};
use rayon::prelude::*;

struct AdaNorm;
struct AdaNormBwd;

/// x `[B, N, D]`, gain/shift `[B, D]` -> `[B, N, D]`.
pub fn ada_norm(x: &Tensor, gain: &Tensor, shift: &Tensor) -> Result<Tensor> {
    if !fused_ok(&[x, gain, shift]) {
        return ada_norm_reference(x, gain, shift);
    }
    x.contiguous()?
        .apply_op3(&gain.contiguous()?, &shift.contiguous()?, AdaNorm)
}

/// The same function from plain differentiable candle ops.
pub fn ada_norm_reference(x: &Tensor, gain: &Tensor, shift: &Tensor) -> Result<Tensor> {
    let (b, _, d) = x.dims3()?;
    let ms = x.sqr()?.mean_keepdim(D::Minus1)?;
    let xhat = x.broadcast_mul(&(ms + f64::from(EPS))?.sqrt()?.recip()?)?;
    xhat.broadcast_mul(&gain.reshape((b, 1, d))?)?
        .broadcast_add(&shift.reshape((b, 1, d))?)
}

impl CustomOp3 for AdaNorm {
    fn name(&self) -> &'static str {
        "ada-norm"
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
        let (x, g, s) = (slice(s1, l1)?, slice(s2, l2)?, slice(s3, l3)?);
        let (b, n, d) = l1.shape().dims3()?;
        // SAFETY: every row is written below.
        let mut y = unsafe { uninit(b * n * d) };
        y.par_chunks_mut(d)
            .with_min_len(min_len())
            .enumerate()
            .for_each(|(row, yr)| {
                let bi = row / n;
                let xr = &x[row * d..(row + 1) * d];
                let (gr, sr) = (&g[bi * d..(bi + 1) * d], &s[bi * d..(bi + 1) * d]);
                let r = rms_inv(xr, EPS);
                for i in 0..d {
                    yr[i] = xr[i] * r * gr[i] + sr[i];
                }
            });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gain: &Tensor,
        _shift: &Tensor,
        _res: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (b, n, d) = x.dims3()?;
        let packed = x.apply_op3_no_bwd(gain, &dy.contiguous()?, &AdaNormBwd)?; // [BND + 2BD]
        let dx = packed.narrow(0, 0, b * n * d)?.reshape((b, n, d))?;
        let dg = packed.narrow(0, b * n * d, b * d)?.reshape((b, d))?;
        let ds = packed
            .narrow(0, b * n * d + b * d, b * d)?
            .reshape((b, d))?;
        Ok((Some(dx), Some(dg), Some(ds)))
    }
}

impl CustomOp3 for AdaNormBwd {
    fn name(&self) -> &'static str {
        "ada-norm-bwd"
    }

    /// Packed `[dx (B*N*D), dgain (B*D), dshift (B*D)]`; parallel over the batch so that the
    /// per-batch sums need no atomics.
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, g, dy) = (slice(s1, l1)?, slice(s2, l2)?, slice(s3, l3)?);
        let (b, n, d) = l1.shape().dims3()?;
        // Packed output [dx, dgain, dshift]: dx is written in full, the two sums start at zero.
        // SAFETY: as said.
        let mut out = unsafe { uninit(b * n * d + 2 * b * d) };
        let (dx, sums) = out.split_at_mut(b * n * d);
        sums.fill(0.0);
        let (dg, ds) = sums.split_at_mut(b * d);
        dx.par_chunks_mut(n * d)
            .with_min_len(min_len())
            .zip(dg.par_chunks_mut(d))
            .zip(ds.par_chunks_mut(d))
            .enumerate()
            .for_each(|(bi, ((dxb, dgb), dsb))| {
                let gr = &g[bi * d..(bi + 1) * d];
                for t in 0..n {
                    let off = (bi * n + t) * d;
                    let (xr, dyr) = (&x[off..off + d], &dy[off..off + d]);
                    let r = rms_inv(xr, EPS);
                    let mut c = 0f32; // mean(dxhat * xhat)
                    for i in 0..d {
                        let xh = xr[i] * r;
                        dgb[i] += dyr[i] * xh;
                        dsb[i] += dyr[i];
                        c += dyr[i] * gr[i] * xh;
                    }
                    c /= d as f32;
                    let dxr = &mut dxb[t * d..(t + 1) * d];
                    for i in 0..d {
                        let xh = xr[i] * r;
                        dxr[i] = r * (dyr[i] * gr[i] - xh * c);
                    }
                }
            });
        let len = out.len();
        Ok((CpuStorage::F32(out), Shape::from(len)))
    }
}
