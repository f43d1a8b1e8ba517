//! Shared helpers for the integration tests: fixture paths and golden tensors.
#![allow(dead_code)]

use std::path::PathBuf;

/// `tests/fixtures/...`, committed so that tests pass on a fresh clone.
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// A golden file from the original PyTorch code (copied from ../shared/golden).
pub fn golden(name: &str) -> PathBuf {
    fixture(&format!("golden/{name}"))
}

/// The MIDI file a golden piano roll was made from.
pub fn golden_midi(name: &str) -> PathBuf {
    if let Some(n) = name.strip_prefix("test") {
        fixture(&format!("midi/wild/test{n}.mid"))
    } else {
        fixture(&format!("midi/pop909/{name}/{name}.mid"))
    }
}

/// The big corpus (../shared/data), when .ci/run points at it (the tests that need it are
/// ignored otherwise, and .ci/run runs them with `-- --ignored`).
pub fn corpus() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("JIT_MUSIC_DATA")?);
    dir.is_dir().then_some(dir)
}

/// Relative L2 error ||a - b|| / ||b||.
pub fn rel_l2(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    let num: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
        .sum();
    let den: f64 = b.iter().map(|y| f64::from(*y).powi(2)).sum();
    (num / den.max(1e-30)).sqrt()
}
