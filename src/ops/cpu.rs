//! Small helpers for the CPU kernels: contiguous f32 views and a strided single-thread gemm.

use candle_core::backend::BackendDevice;
use candle_core::cpu_backend::CpuDevice;
use candle_core::{CpuStorage, DType, Layout, Result, Shape};

/// The contiguous f32 data of a storage/layout pair.
pub(crate) fn slice<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    let data = s.as_slice::<f32>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("fused op needs a contiguous input, got {:?}", l.shape()),
    }
}

/// An output buffer of `n` f32 for a kernel that writes every element before anything reads
/// it. `vec![0.0; n]` would zero-fill it first: a memset of every activation and gradient the
/// fused ops produce, about 6% of a `JiT-S/16` training step. The memory comes from candle's own
/// uninitialised allocation (as its matmul output does). Debug builds fill it with NaN, so that
/// a kernel that skips an element fails its gradient tests instead of reading stale memory.
///
/// # Safety
/// Every element must be written before it is read.
pub(crate) unsafe fn uninit(n: usize) -> Vec<f32> {
    // SAFETY: f32 is Copy and every bit pattern is a value; the caller overwrites it all.
    let v = match unsafe { CpuDevice.alloc_uninit(&Shape::from(n), DType::F32) } {
        Ok(CpuStorage::F32(v)) => v,
        _ => vec![0.0; n],
    };
    #[cfg(debug_assertions)]
    let v = {
        let mut v = v;
        v.fill(f32::NAN);
        v
    };
    v
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
    gemm_with(
        m,
        n,
        k,
        dst,
        d,
        accumulate,
        lhs,
        l,
        rhs,
        r,
        gemm::Parallelism::None,
    )
}

/// The one call into the `gemm` crate: column/row strides from [`Mat`], alpha = beta = 1.
///
/// # Safety
/// As [`gemm`].
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_with(
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
    par: gemm::Parallelism,
) {
    gemm::gemm(
        m, n, k, dst, d.cs, d.rs, accumulate, lhs, l.cs, l.rs, rhs, r.cs, r.rs, 1.0, 1.0, false,
        false, false, par,
    )
}

/// `1 / sqrt(mean(x^2) + eps)`.
#[inline]
pub(crate) fn rms_inv(x: &[f32], eps: f32) -> f32 {
    let ss: f32 = x.iter().map(|v| v * v).sum();
    1.0 / (ss / x.len() as f32 + eps).sqrt()
}

thread_local! {
    static SERIAL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Run `f` with this thread's kernels single-threaded. Callers that already split work across
/// the cores (two halves of a batch on two threads) use it so that each half does not also
/// fan out and wake the other core for every small matmul.
pub fn serial<R>(f: impl FnOnce() -> R) -> R {
    let prev = SERIAL.with(|s| s.replace(true));
    let r = f();
    SERIAL.with(|s| s.set(prev));
    r
}

/// Whether this thread is inside [`serial`].
pub fn is_serial() -> bool {
    SERIAL.with(|s| s.get())
}

/// `with_min_len` for the kernels' parallel loops: unsplittable inside [`serial`].
pub(crate) fn min_len() -> usize {
    if is_serial() {
        usize::MAX
    } else {
        1
    }
}

/// gemm parallelism for this thread.
pub(crate) fn parallelism() -> gemm::Parallelism {
    let n = rayon::current_num_threads();
    if is_serial() || n < 2 {
        gemm::Parallelism::None
    } else {
        gemm::Parallelism::Rayon(n)
    }
}

/// Like [`gemm`] but with this thread's parallelism (for whole-layer matmuls).
///
/// # Safety
/// As [`gemm`].
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm_par(
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
    gemm_with(m, n, k, dst, d, accumulate, lhs, l, rhs, r, parallelism())
}
