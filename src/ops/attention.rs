//! Multi-head attention core with q/k RMSNorm, fused: from the qkv projection `[B*N, 3D]` to the
//! head-merged output `[B*N, D]`, so no permute/contiguous copies surround it.
//!
//! Per (batch, head), in parallel: q and k are RMS-normalised with their gains (the softmax scale
//! folded into q's), `P = softmax(q k^T)`, `O = P v`. The backward recomputes `P` (as
//! flash-attention does) instead of keeping `B*H*N*N` probabilities alive.

use super::cpu::{gemm, min_len, rms_inv, slice, uninit, Mat};
use super::fused_ok;
use super::RMS_EPS as EPS;
use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor, D};
use rayon::prelude::*;

#[derive(Clone, Copy)]
struct Attn {
    b: usize,
    heads: usize,
    scale: f32,
}

struct AttnBwd(Attn);

/// qkv `[B*N, 3D]` (columns q | k | v, head-major within each), q/k norm gains `[hd]` ->
/// `[B*N, D]`. `scale` multiplies the scores (1/sqrt(hd)).
pub fn attention(
    qkv: &Tensor,
    wq: &Tensor,
    wk: &Tensor,
    b: usize,
    heads: usize,
    scale: f64,
) -> Result<Tensor> {
    if !fused_ok(&[qkv, wq, wk]) {
        return attention_reference(qkv, wq, wk, b, heads, scale);
    }
    let op = Attn {
        b,
        heads,
        scale: scale as f32,
    };
    qkv.contiguous()?
        .apply_op3(&wq.contiguous()?, &wk.contiguous()?, op)
}

fn rms(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    let ms = x.sqr()?.mean_keepdim(D::Minus1)?;
    x.broadcast_mul(&(ms + f64::from(EPS))?.sqrt()?.recip()?)?
        .broadcast_mul(w)
}

/// The same function from plain differentiable candle ops.
pub fn attention_reference(
    qkv: &Tensor,
    wq: &Tensor,
    wk: &Tensor,
    b: usize,
    heads: usize,
    scale: f64,
) -> Result<Tensor> {
    let (bn, d3) = qkv.dims2()?;
    let (n, d) = (bn / b, d3 / 3);
    let hd = d / heads;
    let qkv = qkv
        .reshape((b, n, 3, heads, hd))?
        .permute((2, 0, 3, 1, 4))? // [3, B, H, N, hd]
        .contiguous()?;
    let q = rms(&qkv.get(0)?.reshape((b * heads, n, hd))?, &(wq * scale)?)?;
    let k = rms(&qkv.get(1)?.reshape((b * heads, n, hd))?, wk)?;
    let v = qkv.get(2)?.reshape((b * heads, n, hd))?;
    let p = candle_nn::ops::softmax(&q.matmul(&k.t()?)?, D::Minus1)?; // [B*H, N, N]
    p.matmul(&v)? // [B*H, N, hd]
        .reshape((b, heads, n, hd))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((bn, d))
}

/// Per-task scratch: normalised q and k (before gains), their inverse RMS, scaled q/k, P.
struct Scratch {
    qn: Vec<f32>,
    kn: Vec<f32>,
    rq: Vec<f32>,
    rk: Vec<f32>,
    qh: Vec<f32>,
    kh: Vec<f32>,
    p: Vec<f32>,
}

impl Scratch {
    fn new(n: usize, hd: usize) -> Self {
        Self {
            qn: vec![0.0; n * hd],
            kn: vec![0.0; n * hd],
            rq: vec![0.0; n],
            rk: vec![0.0; n],
            qh: vec![0.0; n * hd],
            kh: vec![0.0; n * hd],
            p: vec![0.0; n * n],
        }
    }
}

impl Attn {
    /// Normalise q, k of (bi, h) and compute `P = softmax(qh kh^T)` into `s`.
    #[allow(clippy::too_many_arguments)]
    fn probs(
        &self,
        qkv: &[f32],
        wq: &[f32],
        wk: &[f32],
        bi: usize,
        h: usize,
        n: usize,
        d: usize,
        s: &mut Scratch,
    ) {
        let hd = d / self.heads;
        let ld = 3 * d;
        for t in 0..n {
            let row = (bi * n + t) * ld;
            let q = &qkv[row + h * hd..row + (h + 1) * hd];
            let k = &qkv[row + d + h * hd..row + d + (h + 1) * hd];
            let (rq, rk) = (rms_inv(q, EPS), rms_inv(k, EPS));
            s.rq[t] = rq;
            s.rk[t] = rk;
            for i in 0..hd {
                let (a, c) = (q[i] * rq, k[i] * rk);
                s.qn[t * hd + i] = a;
                s.kn[t * hd + i] = c;
                s.qh[t * hd + i] = a * wq[i] * self.scale;
                s.kh[t * hd + i] = c * wk[i];
            }
        }
        // S = qh @ kh^T  [N, N]
        unsafe {
            gemm(
                n,
                n,
                hd,
                s.p.as_mut_ptr(),
                Mat::rows(n),
                false,
                s.qh.as_ptr(),
                Mat::rows(hd),
                s.kh.as_ptr(),
                Mat::trans(hd),
            );
        }
        for r in s.p.chunks_mut(n) {
            let m = r.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0.0;
            for v in r.iter_mut() {
                *v = (*v - m).exp();
                sum += *v;
            }
            let inv = 1.0 / sum;
            for v in r.iter_mut() {
                *v *= inv;
            }
        }
    }
}

/// Raw pointer that may cross threads: tasks write disjoint head columns of one buffer.
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

impl SendPtr {
    /// Through a method, so closures capture the whole (Send) wrapper, not the raw field.
    fn get(&self) -> *mut f32 {
        self.0
    }
}

impl CustomOp3 for Attn {
    fn name(&self) -> &'static str {
        "qk-norm-attention"
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
        let (qkv, wq, wk) = (slice(s1, l1)?, slice(s2, l2)?, slice(s3, l3)?);
        let (bn, d3) = l1.shape().dims2()?;
        let (d, n) = (d3 / 3, bn / self.b);
        let hd = d / self.heads;
        // SAFETY: each head's matmul writes its columns of every row (not accumulating).
        let mut out = unsafe { uninit(bn * d) };
        let ptr = SendPtr(out.as_mut_ptr());
        (0..self.b * self.heads)
            .into_par_iter()
            .with_min_len(min_len())
            .for_each_init(
                || Scratch::new(n, hd),
                |s, task| {
                    let (bi, h) = (task / self.heads, task % self.heads);
                    self.probs(qkv, wq, wk, bi, h, n, d, s);
                    let v = qkv[(bi * n) * d3 + 2 * d + h * hd..].as_ptr();
                    // O = P @ v, written straight into this head's columns of the output.
                    unsafe {
                        let dst = ptr.get().add(bi * n * d + h * hd);
                        gemm(
                            n,
                            hd,
                            n,
                            dst,
                            Mat::rows(d),
                            false,
                            s.p.as_ptr(),
                            Mat::rows(n),
                            v,
                            Mat::rows(d3),
                        );
                    }
                },
            );
        Ok((CpuStorage::F32(out), Shape::from((bn, d))))
    }

    fn bwd(
        &self,
        qkv: &Tensor,
        wq: &Tensor,
        wk: &Tensor,
        _res: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (bn, d3) = qkv.dims2()?;
        let hd = wq.dim(0)?;
        let packed = qkv.apply_op3_no_bwd(
            &Tensor::cat(&[wq, wk], 0)?,
            &dy.contiguous()?,
            &AttnBwd(*self),
        )?; // [B*N*3D + 2*hd]
        let dqkv = packed.narrow(0, 0, bn * d3)?.reshape((bn, d3))?;
        let dwq = packed.narrow(0, bn * d3, hd)?;
        let dwk = packed.narrow(0, bn * d3 + hd, hd)?;
        Ok((Some(dqkv), Some(dwq), Some(dwk)))
    }
}

impl CustomOp3 for AttnBwd {
    fn name(&self) -> &'static str {
        "qk-norm-attention-bwd"
    }

    /// Inputs: qkv `[B*N, 3D]`, gains `[wq | wk]` `[2*hd]`, dO `[B*N, D]`. Output packed
    /// `[dqkv (B*N*3D), dwq (hd), dwk (hd)]`.
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let a = self.0;
        let (qkv, w, dout) = (slice(s1, l1)?, slice(s2, l2)?, slice(s3, l3)?);
        let (bn, d3) = l1.shape().dims2()?;
        let (d, n) = (d3 / 3, bn / a.b);
        let hd = d / a.heads;
        let (wq, wk) = (&w[..hd], &w[hd..]);
        // Packed output [dqkv, dgains]. SAFETY: every head writes its q, k and v columns of every
        // row (the matmuls do not accumulate); the gains' sum is written after the loop.
        let mut out = unsafe { uninit(bn * d3 + 2 * hd) };
        let ptr = SendPtr(out.as_mut_ptr());
        let partials: Vec<Vec<f32>> = (0..a.b * a.heads)
            .into_par_iter()
            .with_min_len(min_len())
            .map_init(
                || {
                    (
                        Scratch::new(n, hd),
                        vec![0f32; n * n],
                        vec![0f32; n * hd],
                        vec![0f32; n * hd],
                    )
                },
                |(s, dp, dqh, dkh), task| {
                    let (bi, h) = (task / a.heads, task % a.heads);
                    a.probs(qkv, wq, wk, bi, h, n, d, s);
                    let base = bi * n * d3;
                    let v = qkv[base + 2 * d + h * hd..].as_ptr();
                    let dov = dout[bi * n * d + h * hd..].as_ptr(); // dO [N, hd], rs = D
                    unsafe {
                        // dV = P^T @ dO -> v columns of dqkv
                        let dv = ptr.get().add(base + 2 * d + h * hd);
                        gemm(
                            n,
                            hd,
                            n,
                            dv,
                            Mat::rows(d3),
                            false,
                            s.p.as_ptr(),
                            Mat::trans(n),
                            dov,
                            Mat::rows(d),
                        );
                        // dP = dO @ V^T  [N, N]
                        gemm(
                            n,
                            n,
                            hd,
                            dp.as_mut_ptr(),
                            Mat::rows(n),
                            false,
                            dov,
                            Mat::rows(d),
                            v,
                            Mat::trans(d3),
                        );
                    }
                    // dS = P * (dP - rowsum(dP * P))
                    for (pr, dr) in s.p.chunks(n).zip(dp.chunks_mut(n)) {
                        let dot: f32 = pr.iter().zip(dr.iter()).map(|(p, g)| p * g).sum();
                        for (g, p) in dr.iter_mut().zip(pr) {
                            *g = p * (*g - dot);
                        }
                    }
                    unsafe {
                        // dqh = dS @ kh ; dkh = dS^T @ qh
                        gemm(
                            n,
                            hd,
                            n,
                            dqh.as_mut_ptr(),
                            Mat::rows(hd),
                            false,
                            dp.as_ptr(),
                            Mat::rows(n),
                            s.kh.as_ptr(),
                            Mat::rows(hd),
                        );
                        gemm(
                            n,
                            hd,
                            n,
                            dkh.as_mut_ptr(),
                            Mat::rows(hd),
                            false,
                            dp.as_ptr(),
                            Mat::trans(n),
                            s.qh.as_ptr(),
                            Mat::rows(hd),
                        );
                    }
                    // Through the gains and the RMS norms.
                    let mut dw = vec![0f32; 2 * hd];
                    for t in 0..n {
                        let row = base + t * d3;
                        let (mut cq, mut ck) = (0f32, 0f32);
                        for i in 0..hd {
                            let gq = dqh[t * hd + i] * wq[i] * a.scale; // d qn
                            let gk = dkh[t * hd + i] * wk[i]; // d kn
                            dw[i] += dqh[t * hd + i] * s.qn[t * hd + i] * a.scale;
                            dw[hd + i] += dkh[t * hd + i] * s.kn[t * hd + i];
                            cq += gq * s.qn[t * hd + i];
                            ck += gk * s.kn[t * hd + i];
                        }
                        cq /= hd as f32;
                        ck /= hd as f32;
                        for i in 0..hd {
                            let gq = dqh[t * hd + i] * wq[i] * a.scale;
                            let gk = dkh[t * hd + i] * wk[i];
                            unsafe {
                                *ptr.get().add(row + h * hd + i) =
                                    s.rq[t] * (gq - s.qn[t * hd + i] * cq);
                                *ptr.get().add(row + d + h * hd + i) =
                                    s.rk[t] * (gk - s.kn[t * hd + i] * ck);
                            }
                        }
                    }
                    dw
                },
            )
            .collect();
        let dw = &mut out[bn * d3..];
        dw.fill(0.0);
        for p in partials {
            for (a, v) in dw.iter_mut().zip(p) {
                *a += v;
            }
        }
        let len = out.len();
        Ok((CpuStorage::F32(out), Shape::from(len)))
    }
}
