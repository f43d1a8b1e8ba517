//! The `train` binary under real signals: Ctrl-C saves before exiting, and a run killed with
//! SIGKILL resumes from its last checkpoint. Tiny preset, three real songs.
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("jit-signals-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Three POP909 fixture songs in a fresh folder.
fn songs(dir: &Path) -> PathBuf {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/midi");
    let d = dir.join("midi");
    std::fs::create_dir_all(&d).unwrap();
    for s in ["091", "092", "093"] {
        std::fs::copy(
            fixtures.join(format!("pop909/{s}/{s}.mid")),
            d.join(format!("{s}.mid")),
        )
        .unwrap();
    }
    d
}

fn train(midi: &Path, run: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_train"));
    c.args(["--midi-dir", midi.to_str().unwrap()])
        .args(["--output-dir", run.to_str().unwrap()])
        .args(["--preset", "tiny", "--batch-size", "2", "--seed", "3"])
        .args([
            "--sample-every",
            "0",
            "--val-every",
            "0",
            "--keep-every",
            "0",
        ])
        .args(["--threads", "1", "--quiet"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// `train --resume` up to `target` (the run's settings come from its checkpoint): it must
/// succeed and save that step. Returns the steps logged over the whole run.
fn resume_to(run: &Path, target: u64) -> Vec<u64> {
    let out = Command::new(env!("CARGO_BIN_EXE_train"))
        .args(["--output-dir", run.to_str().unwrap(), "--resume", "--quiet"])
        .args(["--steps", &target.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(checkpoint_step(run), target);
    logged_steps(run)
}

/// Steps logged in `run/log.jsonl`, in order.
fn logged_steps(run: &Path) -> Vec<u64> {
    std::fs::read_to_string(run.join("log.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("loss").is_some())
        .filter_map(|v| v["step"].as_u64())
        .collect()
}

/// Wait until the run has logged at least `n` steps (a hang guard of 2,400 polls 50 ms apart).
fn wait_for_steps(child: &mut Child, run: &Path, n: usize) {
    for _ in 0..2400 {
        if logged_steps(run).len() >= n {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("train exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("train logged fewer than {n} steps");
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} failed");
}

/// The step recorded in the run's resume checkpoint.
fn checkpoint_step(run: &Path) -> u64 {
    let ckpt = run.join("checkpoints/last.safetensors");
    let bytes = std::fs::read(&ckpt).expect("checkpoints/last.safetensors exists");
    jit_music::checkpoint::read_bytes("last", &bytes)
        .expect("a complete checkpoint")
        .meta
        .step
}

/// Ctrl-C: the run stops after the current step, saves it, and `--resume` continues from the
/// very next step.
#[test]
fn ctrl_c_saves_and_resume_continues() {
    let dir = tmp("int");
    let (midi, run) = (songs(&dir), dir.join("run"));
    // Checkpoints far apart: only the Ctrl-C save can hold the step it stopped at.
    let mut child = train(
        &midi,
        &run,
        &["--steps", "100000", "--ckpt-every", "100000"],
    )
    .spawn()
    .unwrap();
    wait_for_steps(&mut child, &run, 3);
    signal(&child, "-INT");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let steps = logged_steps(&run);
    let last = *steps.last().unwrap();
    assert!(last < 100_000, "the run stopped early");
    assert_eq!(
        checkpoint_step(&run),
        last,
        "the save holds the last step ({stderr})"
    );

    let after = resume_to(&run, last + 2);
    assert_eq!(&after[steps.len()..], &[last + 1, last + 2]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// SIGKILL: nothing runs at exit, yet `--resume` continues from the last periodic checkpoint,
/// which is always complete (written to a temporary file and renamed).
#[test]
fn sigkill_resumes_from_the_last_checkpoint() {
    let dir = tmp("kill");
    let (midi, run) = (songs(&dir), dir.join("run"));
    let mut child = train(&midi, &run, &["--steps", "100000", "--ckpt-every", "2"])
        .spawn()
        .unwrap();
    wait_for_steps(&mut child, &run, 5);
    signal(&child, "-KILL");
    let _ = child.wait();
    let saved = checkpoint_step(&run);
    assert!(saved >= 4 && saved % 2 == 0, "checkpoint at step {saved}");

    let after = resume_to(&run, saved + 3);
    // The resumed run logs exactly the steps after the checkpoint, up to the target.
    let tail: Vec<u64> = after.iter().copied().filter(|&s| s > saved).collect();
    assert!(
        tail.ends_with(&[saved + 1, saved + 2, saved + 3]),
        "{tail:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
