//! What a run leaves for the next one to find: on `--resume` the log is cut back to the
//! checkpoint's step and temporary files of killed writes are removed, and checkpoints record
//! paths relative to the run (or just a name), never one machine's absolute paths.

use super::TrainConfig;
use anyhow::{Context, Result};
use std::path::{Component, Path, PathBuf};

/// Remove `*.safetensors.tmpPID` files in `dir` that earlier, killed runs left behind.
pub(super) fn remove_stale_tmp(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if jit_music::checkpoint::is_stale_tmp(&e.path()) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Drop the log lines after `step` (a killed run logged steps its last checkpoint does not hold,
/// and the resumed run logs them again) and a line cut short by the kill.
pub(super) fn cut_log(path: &Path, step: u64) -> Result<()> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let text = String::from_utf8_lossy(&bytes);
    let kept: String = text
        .lines()
        .filter(|l| match serde_json::from_str::<serde_json::Value>(l) {
            Ok(v) => v["step"].as_u64().is_none_or(|s| s <= step),
            Err(_) => false,
        })
        .map(|l| format!("{l}\n"))
        .collect();
    if kept.len() == bytes.len() {
        return Ok(());
    }
    let tmp = path.with_extension("jsonl.tmp");
    std::fs::write(&tmp, kept)
        .and_then(|()| std::fs::rename(&tmp, path))
        .with_context(|| format!("cannot rewrite {} back to step {step}", path.display()))
}

/// `cfg` as checkpoints record it: the data folder relative to the run folder, and absolute
/// paths in the command line reduced to their last name.
pub fn portable(cfg: &TrainConfig, run_root: &Path) -> TrainConfig {
    let mut out = cfg.clone();
    if let Some(rel) = relative(&cfg.midi_dir, run_root) {
        out.midi_dir = rel;
    }
    out.command = cfg
        .command
        .split(' ')
        .map(|arg| match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => format!("{flag}={}", name_of(value)),
            _ => name_of(arg),
        })
        .collect::<Vec<_>>()
        .join(" ");
    out
}

/// The data folder a checkpoint records, for `--resume`: relative to the run folder (as
/// [`portable`] writes it), else as written (older checkpoints: relative to where `train` ran).
pub fn resolve_midi_dir(recorded: &Path, run_root: &Path) -> PathBuf {
    let beside = run_root.join(recorded);
    if recorded.is_relative() && beside.is_dir() {
        beside
    } else {
        recorded.to_path_buf()
    }
}

fn name_of(arg: &str) -> String {
    let p = Path::new(arg);
    match p.file_name() {
        Some(name) if p.is_absolute() => name.to_string_lossy().into_owned(),
        _ => arg.to_string(),
    }
}

/// `path` relative to `base` (both made absolute against the current folder), lexically.
fn relative(path: &Path, base: &Path) -> Option<PathBuf> {
    let path = std::path::absolute(path).ok()?;
    let base = std::path::absolute(base).ok()?;
    let (p, b) = (normal(&path), normal(&base));
    let common = p.iter().zip(&b).take_while(|(x, y)| x == y).count();
    if common == 0 {
        return None;
    }
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &p[common..] {
        out.push(c);
    }
    Some(if out.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        out
    })
}

fn normal(p: &Path) -> Vec<Component<'_>> {
    p.components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::relative;
    use std::path::Path;

    #[test]
    fn relative_paths() {
        let r = |p: &str, b: &str| relative(Path::new(p), Path::new(b)).unwrap();
        assert_eq!(r("/w/data", "/w/runs/a"), Path::new("../../data"));
        assert_eq!(r("/w/runs/a/midi", "/w/runs/a"), Path::new("midi"));
        assert_eq!(r("/w/runs/a", "/w/runs/a"), Path::new("."));
    }
}
