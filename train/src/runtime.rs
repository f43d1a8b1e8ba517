//! Process-level CPU tuning shared by the binaries, measured on the 2-core target machine.

/// mimalloc's `mi_option_purge_delay` (index in `mimalloc.h`'s `mi_option_e`, v2).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Call first thing in `main`, before any tensor work.
///
/// * Keep freed memory instead of returning it to the OS: a training step frees and re-allocates
///   the same large activations, and handing them back costs page faults and zeroing each step.
/// * Run candle's element-wise ops on the calling thread: its spin-waiting barrier pool otherwise
///   competes with the matmul and fused-kernel threads for the same cores (27% of a training step
///   was spent spinning in `BarrierGuard::drop` on 2 cores). Matmuls and the fused kernels still
///   use every core through rayon.
///
/// Both can be overridden by setting `MIMALLOC_PURGE_DELAY` / `CANDLE_NUM_THREADS`.
pub fn tune_cpu_runtime() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: plain option setter of the allocator in use; no memory is touched.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
}

/// `--threads N`: size rayon's pool (default: every core).
pub fn set_threads(threads: Option<usize>) {
    if let Some(t) = threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(t.max(1))
            .build_global()
            .ok();
    }
}

/// Memory the system can give a new process now (`MemAvailable`), in bytes; `None` where it
/// cannot be read.
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
