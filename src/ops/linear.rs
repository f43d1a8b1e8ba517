//! `y = x W^T + b` as one kernel: the bias is the gemm's starting value, and the backward gives
//! `dx`, `dW` and `db` in one op. Unlike candle's matmul, its threading follows
//! [`super::serial`], so two halves of a batch can run side by side without each fanning out.

use super::cpu::{gemm_par, min_len, slice, uninit, Mat};
use super::fused_ok;
use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// The weight's layout.
#[derive(Clone, Copy, PartialEq, Eq)]
enum W {
    /// `[N, K]`, PyTorch's layout (trained variables).
    OutIn,
    /// `[K, N]` contiguous (a frozen weight transposed once: gemm packs it faster).
    InOut,
}

struct Linear(W);
struct LinearBwd;

/// x `[M, K]`, w `[N, K]`, b `[N]` -> `[M, N]`.
pub fn linear(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    if !fused_ok(&[x, w, b]) {
        return linear_reference(x, w, b);
    }
    x.contiguous()?
        .apply_op3(&w.contiguous()?, &b.contiguous()?, Linear(W::OutIn))
}

/// Inference form: `wt` is `W^T` `[K, N]`, contiguous; no backward.
pub fn linear_t(x: &Tensor, wt: &Tensor, b: &Tensor) -> Result<Tensor> {
    if !fused_ok(&[x, wt, b]) {
        return x.matmul(wt)?.broadcast_add(b);
    }
    x.contiguous()?
        .apply_op3_no_bwd(&wt.contiguous()?, &b.contiguous()?, &Linear(W::InOut))
}

pub fn linear_reference(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    x.matmul(&w.t()?)?.broadcast_add(b)
}

impl CustomOp3 for Linear {
    fn name(&self) -> &'static str {
        "linear"
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
        let (x, w, b) = (slice(s1, l1)?, slice(s2, l2)?, slice(s3, l3)?);
        let (m, k) = l1.shape().dims2()?;
        let n = b.len();
        // SAFETY: every row gets the bias before the matmul accumulates onto it.
        let mut y = unsafe { uninit(m * n) };
        y.par_chunks_mut(n)
            .with_min_len(min_len().max(64))
            .for_each(|r| r.copy_from_slice(b));
        let rhs = match self.0 {
            W::OutIn => Mat::trans(k),
            W::InOut => Mat::rows(n),
        };
        // SAFETY: shapes checked by the layouts; dst is exclusively ours.
        unsafe {
            gemm_par(
                m,
                n,
                k,
                y.as_mut_ptr(),
                Mat::rows(n),
                true,
                x.as_ptr(),
                Mat::rows(k),
                w.as_ptr(),
                rhs,
            );
        }
        Ok((CpuStorage::F32(y), Shape::from((m, n))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _res: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (m, k) = x.dims2()?;
        let n = w.dim(0)?;
        let packed = x.apply_op3_no_bwd(w, &dy.contiguous()?, &LinearBwd)?; // [M*K + N*K + N]
        let dx = packed.narrow(0, 0, m * k)?.reshape((m, k))?;
        let dw = packed.narrow(0, m * k, n * k)?.reshape((n, k))?;
        let db = packed.narrow(0, m * k + n * k, n)?;
        Ok((Some(dx), Some(dw), Some(db)))
    }
}

impl CustomOp3 for LinearBwd {
    fn name(&self) -> &'static str {
        "linear-bwd"
    }

    /// Inputs x `[M, K]`, w `[N, K]`, dy `[M, N]`; output packed `[dx, dW, db]`.
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, w, dy) = (slice(s1, l1)?, slice(s2, l2)?, slice(s3, l3)?);
        let (m, k) = l1.shape().dims2()?;
        let (n, _) = l2.shape().dims2()?;
        // SAFETY: dx and dW are written by the matmuls (not accumulating), db is zeroed here.
        let mut out = unsafe { uninit(m * k + n * k + n) };
        let (dx, rest) = out.split_at_mut(m * k);
        let (dw, db) = rest.split_at_mut(n * k);
        db.fill(0.0);
        // SAFETY: the three outputs are disjoint slices of `out`.
        unsafe {
            // dx = dy @ W   [M, N] @ [N, K]
            gemm_par(
                m,
                k,
                n,
                dx.as_mut_ptr(),
                Mat::rows(k),
                false,
                dy.as_ptr(),
                Mat::rows(n),
                w.as_ptr(),
                Mat::rows(k),
            );
            // dW = dy^T @ x [N, M] @ [M, K]
            gemm_par(
                n,
                k,
                m,
                dw.as_mut_ptr(),
                Mat::rows(k),
                false,
                dy.as_ptr(),
                Mat::trans(n),
                x.as_ptr(),
                Mat::rows(k),
            );
        }
        for r in dy.chunks_exact(n) {
            for (a, v) in db.iter_mut().zip(r) {
                *a += v;
            }
        }
        let len = out.len();
        Ok((CpuStorage::F32(out), Shape::from(len)))
    }
}
