//! Small helpers for the CPU kernels: contiguous f32 views and a strided single-thread gemm.

use candle_core::{CpuStorage, Layout, Result};

/// The contiguous f32 data of a storage/layout pair.
pub(crate) fn slice<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    let data = s.as_slice::<f32>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("fused op needs a contiguous input, got {:?}", l.shape()),
    }
}

/// Strides of a matrix operand: (row stride, column stride), in elements.
#[derive(Clone, Copy)]
pub(crate) struct Mat {
    pub rs: isize,
    pub cs: isize,
}

impl Mat {
    /// Row-major with `ld` elements per row.
    pub fn rows(ld: usize) -> Self {
        Self {
            rs: ld as isize,
            cs: 1,
        }
    }
    /// The transpose of a row-major matrix with `ld` elements per row.
    pub fn trans(ld: usize) -> Self {
        Self {
            rs: 1,
            cs: ld as isize,
        }
    }
}

/// `dst (m x n) = [dst +] lhs (m x k) @ rhs (k x n)`, single-threaded (callers parallelise over
/// heads or batches).
///
/// # Safety
/// The pointers with their strides must address valid, non-overlapping (for dst) memory.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    d: Mat,
    accumulate: bool,
    lhs: *const f32,
    l: Mat,
    rhs: *const f32,
    r: Mat,
) {
    gemm::gemm(
        m,
        n,
        k,
        dst,
        d.cs,
        d.rs,
        accumulate,
        lhs,
        l.cs,
        l.rs,
        rhs,
        r.cs,
        r.rs,
        1.0,
        1.0,
        false,
        false,
        false,
        gemm::Parallelism::None,
    )
}

/// `1 / sqrt(mean(x^2) + eps)`.
#[inline]
pub(crate) fn rms_inv(x: &[f32], eps: f32) -> f32 {
    let ss: f32 = x.iter().map(|v| v * v).sum();
    1.0 / (ss / x.len() as f32 + eps).sqrt()
}
