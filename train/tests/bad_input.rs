//! Every bad input to the five binaries gets a clear answer: flags out of range are refused up
//! front with the allowed range, broken checkpoints are refused before anything is written,
//! `--resume` accepts the run's own command, errors are one line without a backtrace, and a
//! closed stdout ends a program quietly.

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use jit_music::checkpoint::{self, CheckpointMeta, Kind, RollSpec};
use jit_music::model::{JiT, JitConfig};
use jit_music::roll::Grid;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin(name: &str) -> Command {
    let path = match name {
        "train" => env!("CARGO_BIN_EXE_train"),
        "generate" => env!("CARGO_BIN_EXE_generate"),
        "inspect" => env!("CARGO_BIN_EXE_inspect"),
        "evaluate" => env!("CARGO_BIN_EXE_evaluate"),
        "convert" => env!("CARGO_BIN_EXE_convert"),
        other => panic!("no binary {other}"),
    };
    let mut c = Command::new(path);
    // User errors never show a backtrace, even when one is asked for.
    c.env("RUST_BACKTRACE", "1");
    c
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("jit-bad-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Three POP909 fixture songs in a fresh folder.
fn songs(dir: &Path) -> PathBuf {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/midi");
    let d = dir.join("midi");
    std::fs::create_dir_all(&d).unwrap();
    for n in ["091", "092", "093"] {
        let from = fixtures.join(format!("pop909/{n}/{n}.mid"));
        std::fs::copy(from, d.join(format!("{n}.mid"))).unwrap();
    }
    d
}

/// The one line a failed command printed: exit status 1, `error: ...`, nothing else (no
/// repeated cause, no backtrace, no panic).
fn error_line(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "not one line: {err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    lines[0].to_string()
}

/// The error line that ends a run which printed its progress first.
fn last_error_line(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.matches("error: ").count(), 1, "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    err.lines().last().unwrap_or_default().to_string()
}

fn fails_with(cmd: &mut Command, want: &str) {
    let line = error_line(&cmd.output().unwrap());
    assert!(line.contains(want), "expected `{want}` in: {line}");
}

#[test]
fn train_refuses_flags_out_of_range_up_front() {
    let dir = tmp("train-flags");
    let midi = songs(&dir);
    let cases: &[(&[&str], &str)] = &[
        (
            &["--batch-size", "0"],
            "error: --batch-size must be between 1 and 4096, got 0",
        ),
        (
            &["--batch-size", "100000"],
            "error: --batch-size must be between 1 and 4096, got 100000",
        ),
        (&["--steps", "0"], "error: --steps must be at least 1"),
        (
            &["--val-fraction", "1.5"],
            "error: --val-fraction must be between 0 and 0.5, got 1.5",
        ),
        (&["--lr", "0"], "error: --lr must be in (0, 1), got 0"),
        (
            &["--beta2", "1"],
            "error: --beta1 and --beta2 must be in [0, 1), got 0.9 and 1",
        ),
        (
            &["--frames", "100000"],
            "input_w (frames) 100000 is outside 1..=4096",
        ),
    ];
    for (args, want) in cases {
        let mut c = bin("train");
        c.args(["--midi-dir", s(&midi), "--output-dir", s(&dir.join("run"))])
            .args(*args);
        fails_with(&mut c, want);
    }
    // A batch that cannot fit in memory is refused before anything is allocated.
    if cfg!(target_os = "linux") {
        let mut c = bin("train");
        c.args(["--midi-dir", s(&midi), "--output-dir", s(&dir.join("run"))])
            .args(["--preset", "JiT-H/16", "--batch-size", "4096"]);
        fails_with(&mut c, "GB are available; use a smaller batch or preset");
    }
    let out = bin("train").arg("--list-presets").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("JiT-XS/16"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn generate_refuses_flags_out_of_range_up_front() {
    let dir = tmp("gen-flags");
    let out = dir.join("out");
    let cases: &[(&[&str], &str)] = &[
        (
            &["--steps", "0"],
            "error: --steps must be between 1 and 1000, got 0",
        ),
        (
            &["--cfg-interval", "0.9", "0.1"],
            "error: --cfg-interval LOW HIGH must satisfy 0 <= LOW < HIGH <= 1, got 0.9 0.1",
        ),
        (
            &["--cfg=25"],
            "error: --cfg must be between 0 and 20 (1 = no guidance), got 25",
        ),
        (&["--batch", "0"], "error: --batch must be at least 1"),
        (&["--num-samples", "0"], "--num-samples must be at least 1"),
        (
            &["--tempo", "100000"],
            "error: --tempo must be between 10 and 400 BPM, got 100000",
        ),
    ];
    for (args, want) in cases {
        fails_with(bin("generate").args(["--out", s(&out)]).args(*args), want);
    }
    assert!(!out.join("sample_0000.mid").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// The same `train` command again with `--resume` continues the run; a flag that really changes
/// is refused with both values.
#[test]
fn resume_accepts_the_runs_own_command() {
    let dir = tmp("resume");
    let midi = songs(&dir);
    let run = dir.join("run");
    let train = |extra: &[&str]| {
        let mut c = bin("train");
        c.args(["--midi-dir", s(&midi), "--output-dir", s(&run)])
            .args(["--preset", "tiny", "--batch-size", "2", "--frames", "128"])
            .args(["--sample-every", "0"])
            .args(["--val-every", "0", "--keep-every", "0", "--threads", "1"])
            .arg("--quiet")
            .args(extra);
        c.stdout(Stdio::null());
        c
    };
    let ok = |mut c: Command| {
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let same = ["--seed", "3", "--lr", "1e-3"];
    ok(train(&[&same[..], &["--steps", "2"]].concat()));
    ok(train(&[&same[..], &["--steps", "3", "--resume"]].concat()));
    fails_with(
        &mut train(&["--steps", "4", "--resume", "--seed", "3", "--lr", "5e-4"]),
        "error: --lr cannot change on --resume: this run has 0.001, the command gives 0.0005",
    );
    fails_with(
        &mut train(&["--steps", "4", "--resume", "--seed", "4"]),
        "--seed cannot change on --resume: this run has 3, the command gives 4",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A write that fails mid-run (here: a full disk under the log) names the file and the step.
#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_names_the_file_and_the_step() {
    let dir = tmp("full");
    let midi = songs(&dir);
    let run = dir.join("run");
    std::fs::create_dir_all(&run).unwrap();
    std::os::unix::fs::symlink("/dev/full", run.join("log.jsonl")).unwrap();
    let mut c = bin("train");
    c.args(["--midi-dir", s(&midi), "--output-dir", s(&run)])
        .args(["--preset", "tiny", "--batch-size", "2", "--steps", "3"])
        .args(["--sample-every", "0", "--val-every", "0", "--threads", "1"])
        .arg("--quiet");
    let want = format!(
        "error: step 1: cannot write {}: No space left on device",
        run.join("log.jsonl").display()
    );
    let line = last_error_line(&c.output().unwrap());
    assert!(line.starts_with(&want), "{line}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A tiny 2-class checkpoint with `edit` applied to its metadata or weights.
fn broken_ckpt(dir: &Path, name: &str, edit: impl Fn(&mut CheckpointMeta, &mut Vec<Tensor>)) {
    let cfg = JitConfig::preset("tiny", 128, 128, 2).unwrap();
    let vm = VarMap::new();
    let net = JiT::new(&cfg, VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu)).unwrap();
    let mut meta = CheckpointMeta {
        format_version: checkpoint::FORMAT_VERSION,
        kind: Kind::Inference,
        name: "tiny".into(),
        config: cfg,
        roll: RollSpec {
            grid: Grid::Beats { steps_per_beat: 4 },
            ..RollSpec::seconds(16, 128)
        },
        objective: Default::default(),
        sampler: Default::default(),
        classes: vec!["pop".into(), "folk".into()],
        step: 1,
        info: serde_json::json!({}),
    };
    let (names, mut tensors): (Vec<String>, Vec<Tensor>) = net.named_tensors().into_iter().unzip();
    edit(&mut meta, &mut tensors);
    let tensors: Vec<(String, Tensor)> = names.into_iter().zip(tensors).collect();
    checkpoint::save(&dir.join(name), &tensors, &meta).unwrap();
}

/// Broken checkpoints: the issue's cases through `generate` and `inspect`, each one line and
/// before any file is written.
#[test]
fn broken_checkpoints_are_refused_by_generate_and_inspect() {
    let dir = tmp("ckpts");
    type Edit = fn(&mut CheckpointMeta, &mut Vec<Tensor>);
    let cases: [(&str, Edit, &str); 7] = [
        (
            "depth.safetensors",
            |m, _| m.config.depth = 1_000_000_000,
            "bad metadata: config: depth 1000000000 is outside 1..=256",
        ),
        (
            "steps.safetensors",
            |m, _| m.sampler.steps = 0,
            "sampler.steps 0 is outside 1..=1000",
        ),
        (
            "grid.safetensors",
            |m, _| m.roll.grid = Grid::Beats { steps_per_beat: 0 },
            "roll grid of 0 steps per beat (1..=960)",
        ),
        (
            "frames.safetensors",
            |m, _| m.roll.frames = 0,
            "0 frames is empty",
        ),
        (
            "pitches.safetensors",
            |m, _| m.roll.pitches = 200,
            "roll of 200 pitches from 0 x 128 frames does not fit a 128x128 model",
        ),
        (
            "classes.safetensors",
            |m, _| m.classes = vec!["pop".into()],
            "1 class names (pop) for a model of 2 classes",
        ),
        (
            "nan.safetensors",
            |_, t| {
                for x in t.iter_mut() {
                    *x = (x.ones_like().unwrap() * f64::NAN).unwrap();
                }
            },
            "holds NaN at index 0: the weights are damaged",
        ),
    ];
    let out = dir.join("out");
    for (name, edit, want) in cases {
        broken_ckpt(&dir, name, edit);
        let ck = dir.join(name);
        fails_with(
            bin("generate").args(["--ckpt", s(&ck), "--out", s(&out)]),
            want,
        );
        fails_with(bin("inspect").arg(&ck), want);
    }
    // 1,000 damaged bytes in the weights: the checksum no longer matches.
    broken_ckpt(&dir, "flipped.safetensors", |_, _| {});
    let ck = dir.join("flipped.safetensors");
    let mut bytes = std::fs::read(&ck).unwrap();
    let n = bytes.len();
    for i in 0..1000 {
        bytes[n - 1 - 37 * i] ^= 0x5a;
    }
    std::fs::write(&ck, bytes).unwrap();
    let want = "flipped.safetensors: damaged: its contents do not match the checksum";
    fails_with(
        bin("generate").args(["--ckpt", s(&ck), "--out", s(&out)]),
        want,
    );
    fails_with(bin("inspect").arg(&ck), want);
    assert!(!out.join("sample_0000.mid").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every binary: an error with a cause prints one line, the cause once, and no backtrace.
#[test]
fn errors_are_one_line_in_every_binary() {
    let dir = tmp("lines");
    let missing = Path::new("/nonexistent-16/m.safetensors");
    let cannot_read = format!("error: {}: cannot read: ", missing.display());
    fails_with(
        bin("generate").args(["--ckpt", s(missing), "--out", s(&dir.join("o"))]),
        &cannot_read,
    );
    fails_with(
        bin("convert").args([s(missing), s(&dir.join("c.safetensors"))]),
        &cannot_read,
    );
    fails_with(
        bin("evaluate").args(["--coherence", s(&dir), "--ckpt", s(missing)]),
        &cannot_read,
    );
    fails_with(
        bin("inspect").arg("/nonexistent-16/song.mid"),
        "error: /nonexistent-16/song.mid: no such file or folder",
    );
    fails_with(
        bin("train").args(["--output-dir", "/nonexistent-16/run", "--resume"]),
        "error: --resume: no checkpoint at /nonexistent-16/run/checkpoints/last.safetensors",
    );
    // A write error names the file once (the checkpoint error already does).
    let model = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/default.safetensors");
    let target = Path::new("/nonexistent-16/out.safetensors");
    let line = error_line(
        &bin("convert")
            .args([s(&model), s(target)])
            .output()
            .unwrap(),
    );
    assert_eq!(line.matches("out.safetensors").count(), 1, "{line}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `inspect FILE | head`: the reader goes away, the program ends without a word.
#[cfg(unix)]
#[test]
fn a_closed_stdout_ends_quietly() {
    // A pipe whose reading end is already closed: `true`'s stdin, after `true` has exited.
    let mut sink = Command::new("true").stdin(Stdio::piped()).spawn().unwrap();
    let write_end = sink.stdin.take().unwrap();
    sink.wait().unwrap();
    let closed = Stdio::from(write_end);
    let model = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/default.safetensors");
    let out = bin("inspect")
        .arg(&model)
        .stdout(closed)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.is_empty(), "{err}");
    use std::os::unix::process::ExitStatusExt;
    assert!(
        out.status.success() || out.status.signal() == Some(13),
        "{:?}",
        out.status
    );
}

#[test]
fn help_texts_say_what_each_tool_does() {
    let help = |name: &str| {
        let out = bin(name).arg("--help").output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let m = jit_music::default_model::load().unwrap().meta;
    let classes: Vec<String> = m
        .classes
        .iter()
        .enumerate()
        .map(|(i, c)| match i == m.default_class() as usize {
            true => format!("{i} {c} (default)"),
            false => format!("{i} {c}"),
        })
        .collect();
    let g = help("generate")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        g.contains(&format!("the embedded model's: {}", classes.join(", "))),
        "{g}"
    );
    let c = help("convert");
    assert!(c.contains("Convert a checkpoint"), "{c}");
    assert!(!c.contains("Training, generation, inspection"), "{c}");
    assert!(help("inspect").contains("checkpoint"));
}

/// A sidecar is a file anyone can edit: `--replay` checks its values as it checks flags.
#[test]
fn edited_sidecars_are_checked() {
    let dir = tmp("sidecar");
    broken_ckpt(&dir, "ok.safetensors", |m, _| m.sampler.steps = 2);
    let ck = dir.join("ok.safetensors");
    let out = dir.join("out");
    let status = bin("generate")
        .args(["--ckpt", s(&ck), "--out", s(&out), "--num-samples", "1"])
        .output()
        .unwrap();
    assert!(status.status.success());
    let side = out.join("sample_0000.json");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&side).unwrap()).unwrap();
    for (field, value, want) in [
        (
            "steps",
            serde_json::json!(0),
            "sampler.steps 0 is outside 1..=1000",
        ),
        (
            "class",
            serde_json::json!(7),
            "class 7 is outside this model's 0..2",
        ),
        (
            "tempo",
            serde_json::json!(1e9),
            "tempo must be between 10 and 400 BPM",
        ),
    ] {
        let mut edited = v.clone();
        match field {
            "steps" => edited["sampler"]["steps"] = value,
            f => edited[f] = value,
        }
        let p = dir.join(format!("{field}.json"));
        std::fs::write(&p, edited.to_string()).unwrap();
        fails_with(
            bin("generate").args(["--replay", s(&p), "--out", s(&dir.join("r"))]),
            want,
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
