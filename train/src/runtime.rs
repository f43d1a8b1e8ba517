//! Process-level setup shared by the binaries: how a command ends (one-line errors, quiet on a
//! closed stdout) and CPU tuning measured on the 2-core target machine.

use std::process::ExitCode;

/// A binary's `main`: runs `body` and ends the way every tool here ends.
///
/// * An error prints as one line, `error: ...`, each cause once (a message that already quotes
///   its cause is not followed by it again), without a backtrace even when `RUST_BACKTRACE` is
///   set: these are the user's errors, not the program's. Exit status 1.
/// * A closed stdout (`inspect FILE | head`) ends the program quietly, as it does `cat`.
pub fn main_with(body: impl FnOnce() -> anyhow::Result<()>) -> ExitCode {
    quiet_on_closed_stdout();
    // anyhow captures a backtrace with every error when RUST_BACKTRACE is set; panics keep theirs.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
    match body() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes on one line, each cause once: thiserror messages that quote their
/// `#[source]`, and contexts over them, would otherwise repeat the same words.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let msg = cause.to_string();
        let msg = msg.split_whitespace().collect::<Vec<_>>().join(" ");
        if msg.is_empty() || out.contains(&msg) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&msg);
    }
    out
}

/// Writing to a closed pipe kills the process silently (SIGPIPE's default), instead of Rust's
/// ignoring the signal and panicking in `println!`.
fn quiet_on_closed_stdout() {
    #[cfg(unix)]
    {
        const SIGPIPE: i32 = 13;
        const SIG_DFL: usize = 0;
        extern "C" {
            fn signal(signum: i32, handler: usize) -> usize;
        }
        // SAFETY: restores the default disposition of one signal, before any other thread runs.
        unsafe { signal(SIGPIPE, SIG_DFL) };
    }
}

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
