//! The trainer on a tiny preset and a few real songs: seconds, not minutes.

use jit_music::checkpoint::{self, Kind, Weights};
use jit_music::diffusion::Objective;
use jit_music::model::JitConfig;
use jit_music::roll::{Channels, Conditions, Grid, GridNote, RollNote};
use jit_music_train::data::{self, DataConfig, Sampler, Song};
use jit_music_train::optim::{AdamWConfig, Schedule};
use jit_music_train::trainer::{RunDir, TrainConfig, Trainer};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/midi")
}

/// A folder of three real POP909 songs (copied, so tests can modify it).
fn small_folder(dir: &Path) -> PathBuf {
    let d = dir.join("midi");
    std::fs::create_dir_all(&d).unwrap();
    for s in ["091", "092", "093"] {
        std::fs::copy(
            fixtures().join(format!("pop909/{s}/{s}.mid")),
            d.join(format!("{s}.mid")),
        )
        .unwrap();
    }
    d
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("jit-train-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn config(midi: &Path, steps: u64) -> TrainConfig {
    TrainConfig {
        midi_dir: midi.to_path_buf(),
        preset: "tiny".into(),
        model: JitConfig::preset("tiny", 128, 128, 1).unwrap(),
        data: DataConfig {
            grid: Grid::Beats { steps_per_beat: 4 },
            articulation: true,
            frames: 128,
            pitch_shift: 3,
            min_active_cells: 16,
            classes_from_dirs: false,
            val_fraction: 0.3,
            balance_classes: true,
            class_weights: Default::default(),
            channels: Default::default(),
            conditions: Default::default(),
        },
        objective: Objective::default(),
        optim: AdamWConfig {
            lr: 1e-3,
            min_lr: 1e-5,
            warmup_steps: 2,
            schedule: Schedule::Cosine,
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.01,
            clip_norm: 1.0,
            decay_steps: 0,
        },
        ema_decays: (0.9, 0.99),
        batch_size: 4,
        steps,
        seed: 7,
        ckpt_every: 100,
        keep_every: 0,
        sample_every: 0,
        val_every: 0,
        preview_samples: 2,
        preview_steps: 2,
        device: "cpu".into(),
        name: "test".into(),
        command: "test".into(),
        distill: None,
    }
}

fn losses(run: &Path) -> Vec<(u64, f64)> {
    std::fs::read_to_string(run.join("log.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            Some((v["step"].as_u64()?, v["loss"].as_f64()?))
        })
        .collect()
}

/// Resuming at step k gives exactly the loss an uninterrupted run has at step k+1.
#[test]
fn resume_is_exact() {
    let dir = tmp("resume");
    let midi = small_folder(&dir);
    let stop = AtomicBool::new(false);
    // Uninterrupted.
    let run_a = dir.join("a");
    let mut t = Trainer::new(
        config(&midi, 6),
        RunDir {
            root: run_a.clone(),
        },
        None,
        None,
        true,
    )
    .unwrap();
    t.run(&stop).unwrap();
    // Interrupted after 3 steps, then resumed in a new process-like session.
    let run_b = dir.join("b");
    let mut t = Trainer::new(
        config(&midi, 6),
        RunDir {
            root: run_b.clone(),
        },
        None,
        None,
        true,
    )
    .unwrap();
    t.stop_at = Some(3);
    t.run(&stop).unwrap();
    assert_eq!(t.step, 3);
    drop(t);
    let last = run_b.join("checkpoints/last.safetensors");
    let mut t = Trainer::new(
        config(&midi, 6),
        RunDir {
            root: run_b.clone(),
        },
        Some(&last),
        None,
        true,
    )
    .unwrap();
    assert_eq!(t.step, 3);
    t.run(&stop).unwrap();
    let (a, b) = (losses(&run_a), losses(&run_b));
    assert_eq!(a.len(), 6);
    assert_eq!(b.len(), 6);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y, "loss curves differ after resume");
    }

    // Checkpoint contents: every parameter's live weights, both EMAs and both moments.
    let bytes = std::fs::read(&last).unwrap();
    let raw = checkpoint::read_bytes("last", &bytes).unwrap();
    assert_eq!(raw.meta.kind, Kind::Training);
    assert_eq!(raw.meta.step, 6);
    assert_eq!(raw.meta.info["train"]["seed"], 7);
    let names: Vec<String> = raw
        .tensors
        .keys()
        .filter_map(|k| k.strip_prefix("net.").map(String::from))
        .collect();
    assert!(names.len() > 20);
    for n in &names {
        for p in ["ema1.", "ema2.", "opt.m.", "opt.v."] {
            assert!(
                raw.tensors.contains_key(&format!("{p}{n}")),
                "missing {p}{n}"
            );
        }
    }
    // The published inference checkpoint loads as a model.
    let w = checkpoint::load(&run_b.join("checkpoints/model.safetensors"), Weights::Ema1).unwrap();
    assert_eq!(w.meta.kind, Kind::Inference);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The same seed and data give the same loss curve; --init-from keeps the recorded step and
/// trains on from it.
#[test]
fn deterministic_and_init_from() {
    let dir = tmp("det");
    let midi = small_folder(&dir);
    let stop = AtomicBool::new(false);
    let mut curves = Vec::new();
    for r in ["x", "y"] {
        let run = dir.join(r);
        let mut t = Trainer::new(
            config(&midi, 3),
            RunDir { root: run.clone() },
            None,
            None,
            true,
        )
        .unwrap();
        t.run(&stop).unwrap();
        curves.push(losses(&run));
    }
    assert_eq!(curves[0], curves[1]);
    let published = dir.join("x/checkpoints/model.safetensors");
    let mut cfg = config(&midi, 5);
    cfg.seed = 8;
    let t = Trainer::new(
        cfg,
        RunDir {
            root: dir.join("z"),
        },
        None,
        Some(&published),
        true,
    )
    .unwrap();
    assert_eq!(t.step, 3);
    // The EMAs start as plain copies: one that tracked the weights' graph would chain every
    // update onto the last and hold them all (a run leaked gigabytes in minutes).
    let untracked = |t: &Trainer| {
        t.opt
            .params
            .iter()
            .all(|p| !p.ema1.track_op() && !p.ema2.track_op())
    };
    assert!(untracked(&t));
    let mut t = t;
    t.run(&stop).unwrap();
    assert_eq!(t.step, 5);
    assert!(untracked(&t));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The loss falls when overfitting a handful of windows.
#[test]
fn loss_falls_on_tiny_overfit_set() {
    let dir = tmp("overfit");
    let midi = dir.join("one");
    std::fs::create_dir_all(&midi).unwrap();
    std::fs::copy(fixtures().join("pop909/091/091.mid"), midi.join("091.mid")).unwrap();
    let mut cfg = config(&midi, 80);
    cfg.data.val_fraction = 0.0;
    cfg.data.pitch_shift = 0;
    cfg.optim.lr = 2e-3;
    cfg.optim.schedule = Schedule::Constant;
    let stop = AtomicBool::new(false);
    let run = dir.join("r");
    let mut t = Trainer::new(cfg, RunDir { root: run.clone() }, None, None, true).unwrap();
    t.run(&stop).unwrap();
    let l = losses(&run);
    let mean = |s: &[(u64, f64)]| s.iter().map(|x| x.1).sum::<f64>() / s.len() as f64;
    let (first, last) = (mean(&l[..15]), mean(&l[l.len() - 15..]));
    assert!(last < 0.5 * first, "loss did not fall: {first} -> {last}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A changed file is re-read; unchanged files come from the cache.
#[test]
fn cache_invalidates_changed_file() {
    let dir = tmp("cache");
    let midi = small_folder(&dir);
    let cfg = config(&midi, 1).data;
    let cache = dir.join("cache");
    let first = data::load_dataset(&midi, &cache, &cfg, true).unwrap();
    assert_eq!(first.cache_hits, 0);
    let again = data::load_dataset(&midi, &cache, &cfg, true).unwrap();
    assert_eq!(again.cache_hits, 3);
    // Replace one song by another: its content hash changes.
    std::fs::copy(fixtures().join("pop909/094/094.mid"), midi.join("092.mid")).unwrap();
    let changed = data::load_dataset(&midi, &cache, &cfg, true).unwrap();
    assert_eq!(changed.cache_hits, 2);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A folder with broken files trains on the good ones and reports the rest.
#[test]
fn broken_files_are_reported_not_fatal() {
    let dir = tmp("broken");
    let midi = small_folder(&dir);
    std::fs::write(midi.join("empty.mid"), b"").unwrap();
    std::fs::write(midi.join("text.mid"), b"this is not midi").unwrap();
    let cfg = config(&midi, 1).data;
    let ds = data::load_dataset(&midi, &dir.join("cache"), &cfg, true).unwrap();
    assert_eq!(ds.failures.len(), 2);
    assert_eq!(ds.train.len() + ds.val.len(), 3);
    // Only broken files: a clear error before any work.
    let bad = dir.join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("x.mid"), b"MThd").unwrap();
    let e = data::load_dataset(&bad, &dir.join("cache2"), &cfg, true)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("none of the 1 MIDI files"), "{e}");
    let none = dir.join("none");
    std::fs::create_dir_all(&none).unwrap();
    let e = data::load_dataset(&none, &dir.join("cache3"), &cfg, true)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("no MIDI files"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Pitch-shift augmentation never pushes a note out of 0..=127 (it keeps the key instead), in
/// either channel layout, with conditions drawn too.
#[test]
fn augmentation_keeps_notes_in_range() {
    let frames = 128;
    // Near the top and the bottom: most shifts are impossible.
    let notes: Vec<GridNote> = [126u8, 2]
        .iter()
        .map(|&pitch| GridNote {
            note: RollNote {
                pitch,
                start: 0,
                end: 256,
                velocity: 100,
            },
            part: 0,
        })
        .collect();
    let mut song = Song::from_notes("synthetic".into(), 0, notes, 64);
    song.starts = vec![0, 64, 128]; // whole windows only
    for (channels, conditions) in [
        (Channels::Intensity, Conditions::default()),
        (
            Channels::OnsetSustain,
            Conditions {
                known: true,
                chords: true,
            },
        ),
    ] {
        let mut cfg = config(Path::new("."), 1).data;
        cfg.pitch_shift = 12;
        cfg.frames = frames;
        cfg.channels = channels;
        cfg.conditions = conditions;
        let spec = cfg.roll_spec();
        let s = Sampler::new(Arc::new(vec![song.clone()]), 1, &[], &cfg, 3);
        for step in 0..20 {
            let b = s.batch(step, 8);
            let n = spec.numel();
            assert_eq!(b.x.len(), 8 * n);
            assert_eq!(b.cond.is_some(), conditions.any());
            for i in 0..8 {
                // The last channel is the intensity or sustain: the two notes, whole.
                let x = &b.x[(i + 1) * n - 128 * frames..(i + 1) * n];
                let active = x.iter().filter(|&&v| v > 0.0).count();
                assert_eq!(
                    active,
                    2 * frames,
                    "a shifted note left the range or vanished"
                );
                assert!(b.x.iter().all(|v| (-1.0..=1.0).contains(v)));
            }
        }
    }
}

/// Resuming after a kill leaves no trace: the log is cut back to the checkpoint's step (the
/// killed run had logged further, and its last line was cut short), the smoothed loss goes on
/// as in an uninterrupted run, and temporary files of killed writes are removed. The checkpoint
/// records the data folder relative to the run, not this machine's absolute path.
#[test]
fn resume_leaves_no_trace() {
    let dir = tmp("traces");
    let midi = small_folder(&dir);
    let stop = AtomicBool::new(false);
    let new = |root: &Path, resume: Option<&Path>| {
        let run = RunDir {
            root: root.to_path_buf(),
        };
        Trainer::new(config(&midi, 6), run, resume, None, true).unwrap()
    };
    let run_a = dir.join("a");
    new(&run_a, None).run(&stop).unwrap();

    let run_b = dir.join("b");
    let mut t = new(&run_b, None);
    t.stop_at = Some(4);
    t.run(&stop).unwrap();
    drop(t);
    // What a run killed after step 6 (its checkpoint still at 4) leaves behind.
    let log = run_b.join("log.jsonl");
    let mut text = std::fs::read_to_string(&log).unwrap();
    text.push_str("{\"step\":5,\"loss\":9.0,\"loss_smooth\":9.0}\n");
    text.push_str("{\"step\":6,\"loss\":9.0,\"loss_smooth\":9.0}\n{\"step\":7,\"lo");
    std::fs::write(&log, text).unwrap();
    let stale = run_b.join("checkpoints/last.safetensors.tmp4000000000");
    std::fs::write(&stale, b"half a checkpoint").unwrap();

    let last = run_b.join("checkpoints/last.safetensors");
    let mut t = new(&run_b, Some(&last));
    assert!(!stale.exists(), "a killed write's temporary file is left");
    t.run(&stop).unwrap();

    let curve = |run: &Path| -> Vec<(u64, f64, f64)> {
        std::fs::read_to_string(run.join("log.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v.get("loss").is_some())
            .map(|v| {
                let f = |k: &str| v[k].as_f64().unwrap();
                (v["step"].as_u64().unwrap(), f("loss"), f("loss_smooth"))
            })
            .collect()
    };
    let (a, b) = (curve(&run_a), curve(&run_b));
    assert_eq!(
        b.iter().map(|x| x.0).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6]
    );
    assert_eq!(a, b, "the resumed log differs from the uninterrupted one");

    let raw = checkpoint::read_bytes("last", &std::fs::read(&last).unwrap()).unwrap();
    assert_eq!(raw.meta.info["train"]["midi_dir"], "../midi");
    let _ = std::fs::remove_dir_all(&dir);
}
