//! The `generate` binary end to end, with a small test checkpoint: options, reproducibility
//! from the sidecar, the kept-region guarantees, and clear errors.

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use jit_music::checkpoint::{self, CheckpointMeta, Kind, RollSpec};
use jit_music::midi;
use jit_music::model::{JiT, JitConfig};
use jit_music::roll::{score_to_roll, Grid, RollOptions};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_generate"))
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("jit-gen-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn prompt_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/midi/pop909/091/091.mid")
}

/// A tiny 2-class model on the beats grid, written once per test process under `file` (random
/// weights are enough to test the plumbing): v1 (intensity, articulated, no conditions) or an
/// onset/sustain model that takes known notes and chords.
fn tiny_ckpt(file: &str, conditioned: bool) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("jit-gen-ckpt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut cfg = JitConfig::preset("tiny", 128, 128, 2).unwrap();
    if conditioned {
        cfg.in_channels = 2;
        cfg.cond_channels = 5;
    }
    let vm = VarMap::new();
    let net = JiT::new(&cfg, VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu)).unwrap();
    let (channels, conditions) = match conditioned {
        true => (
            jit_music::roll::Channels::OnsetSustain,
            jit_music::roll::Conditions {
                known: true,
                chords: true,
            },
        ),
        false => Default::default(),
    };
    let meta = CheckpointMeta {
        format_version: checkpoint::FORMAT_VERSION,
        kind: Kind::Inference,
        name: if conditioned {
            "cond test model"
        } else {
            "test model"
        }
        .into(),
        config: cfg,
        roll: RollSpec {
            grid: Grid::Beats { steps_per_beat: 4 },
            pitch_low: 0,
            pitches: 128,
            frames: 128,
            articulation: !conditioned,
            channels,
            conditions,
        },
        objective: Default::default(),
        sampler: jit_music::sampler::SamplerConfig {
            steps: if conditioned { 2 } else { 3 },
            ..Default::default()
        },
        classes: vec!["pop".into(), "folk".into()],
        step: 1,
        info: serde_json::json!({}),
    };
    let p = dir.join(file);
    checkpoint::save_inference(&p, &net, &meta).unwrap();
    p
}

/// The v1 tiny model.
fn test_ckpt() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| tiny_ckpt("tiny.safetensors", false))
}

fn run(args: &[&str]) -> (bool, String) {
    let out = bin().args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The notes of a file exactly (not read back from a roll), as (pitch, start, end) in frames.
fn notes_of(path: &Path) -> BTreeSet<(u8, usize, usize)> {
    let score = midi::read_file(path).unwrap();
    score_to_roll(&score, &RollOptions::beats(4))
        .unwrap()
        .notes
        .into_iter()
        .map(|n| (n.note.pitch, n.note.start, n.note.end))
        .collect()
}

/// The prompt's notes in the model's first 128 frames, exactly, as one channel plays them.
fn prompt_notes() -> BTreeSet<(u8, usize, usize)> {
    let score = midi::read_file(&prompt_file()).unwrap();
    let opts = RollOptions {
        downbeats: jit_music::roll::read_pop909_downbeats(&prompt_file()),
        ..RollOptions::beats(4)
    };
    let notes: Vec<_> = score_to_roll(&score, &opts)
        .unwrap()
        .notes
        .into_iter()
        .filter(|n| n.note.start < 128)
        .map(|n| jit_music::roll::RollNote {
            end: n.note.end.min(128),
            ..n.note
        })
        .collect();
    // The parts on one channel: overlapping notes of a pitch become re-strikes.
    jit_music::roll::one_voice_per_pitch(&notes)
        .into_iter()
        .map(|n| (n.pitch, n.start, n.end))
        .collect()
}

#[test]
fn options_sidecar_and_replay() {
    let d = tmp("opts");
    let ck = test_ckpt().to_str().unwrap();
    let out = d.join("out");
    let raw = d.join("raw.safetensors");
    let (ok, text) = run(&[
        "--ckpt",
        ck,
        "--out",
        out.to_str().unwrap(),
        "--num-samples",
        "3",
        "--seed",
        "5",
        "--steps",
        "3",
        "--method",
        "euler",
        "--cfg",
        "2",
        "--cfg-interval",
        "0.1",
        "0.9",
        "--class",
        "folk",
        "--threshold",
        "0.3",
        "--velocity",
        "learned",
        "--tempo",
        "100",
        "--png",
        "--batch",
        "2",
        "--save-raw",
        raw.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    for i in 0..3 {
        for ext in ["mid", "json", "png"] {
            assert!(
                out.join(format!("sample_{i:04}.{ext}")).exists(),
                "missing sample_{i:04}.{ext}"
            );
        }
        let s = midi::read_file(&out.join(format!("sample_{i:04}.mid"))).unwrap();
        assert!((s.initial_bpm() - 100.0).abs() < 0.01);
    }
    let side: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("sample_0001.json")).unwrap())
            .unwrap();
    assert_eq!(side["class"], 1);
    assert_eq!(side["sampler"]["method"], "euler");
    assert_eq!(side["sampler"]["cfg_interval"][0], 0.1);
    assert_eq!(side["noise"]["seed"], 6);
    let x = candle_core::safetensors::load(&raw, &Device::Cpu).unwrap();
    assert_eq!(x["x"].dims(), &[3, 1, 128, 128]);

    // Replaying a sidecar reproduces the sample exactly (same bytes, same raw output).
    let out2 = d.join("replay");
    let raw2 = d.join("raw2.safetensors");
    let (ok, text) = run(&[
        "--replay",
        out.join("sample_0001.json").to_str().unwrap(),
        "--out",
        out2.to_str().unwrap(),
        "--save-raw",
        raw2.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    assert_eq!(
        std::fs::read(out.join("sample_0001.mid")).unwrap(),
        std::fs::read(out2.join("sample_0001.mid")).unwrap()
    );
    let a: Vec<f32> = x["x"]
        .get(1)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let y = candle_core::safetensors::load(&raw2, &Device::Cpu).unwrap();
    let b: Vec<f32> = y["x"].flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(a, b);

    // Interpolation between two sidecars: the path starts at the first sample's noise (both
    // runs one sample per batch, since float results depend on the batch's shape).
    let common = [
        "--ckpt",
        ck,
        "--steps",
        "3",
        "--method",
        "euler",
        "--cfg",
        "2",
        "--cfg-interval",
        "0.1",
        "0.9",
        "--class",
        "folk",
        "--threshold",
        "0.3",
        "--velocity",
        "learned",
        "--tempo",
        "100",
        "--batch",
        "1",
    ];
    let single = d.join("single");
    let mut args = common.to_vec();
    args.extend(["--out", single.to_str().unwrap(), "--num-samples", "2"]);
    let (ok, text) = run(&args);
    assert!(ok, "{text}");
    let out3 = d.join("interp");
    let mut args = common.to_vec();
    let (a, b) = (
        single.join("sample_0000.json"),
        single.join("sample_0001.json"),
    );
    args.extend([
        "--out",
        out3.to_str().unwrap(),
        "--interpolate",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--count",
        "3",
    ]);
    let (ok, text) = run(&args);
    assert!(ok, "{text}");
    assert_eq!(
        std::fs::read(single.join("sample_0000.mid")).unwrap(),
        std::fs::read(out3.join("sample_0000.mid")).unwrap()
    );
    assert!(out3.join("sample_0002.mid").exists());
    let _ = std::fs::remove_dir_all(&d);
}

/// `--init-noise` + `--save-raw` make a sample comparable with any implementation: the raw
/// output equals the library sampler run on the same noise.
#[test]
fn init_noise_gives_the_sampler_output() {
    let d = tmp("noise");
    let z = Tensor::randn(0f32, 1.0, (2, 1, 128, 128), &Device::Cpu).unwrap();
    let zp = d.join("z.safetensors");
    candle_core::safetensors::save(
        &std::collections::HashMap::from([("z".to_string(), z.clone())]),
        &zp,
    )
    .unwrap();
    let raw = d.join("x.safetensors");
    let (ok, text) = run(&[
        "--ckpt",
        test_ckpt().to_str().unwrap(),
        "--out",
        d.join("o").to_str().unwrap(),
        "--init-noise",
        zp.to_str().unwrap(),
        "--save-raw",
        raw.to_str().unwrap(),
        "--class",
        "0",
    ]);
    assert!(ok, "{text}");
    let w = checkpoint::load(test_ckpt(), checkpoint::Weights::Ema1).unwrap();
    let net = w.build(&Device::Cpu, DType::F32).unwrap();
    let y = Tensor::new(&[0u32, 0], &Device::Cpu).unwrap();
    let want = jit_music::sampler::sample(
        |z, c, t, y| net.forward(z, c, t, y, jit_music::model::OpPath::Inference),
        &z,
        jit_music::sampler::Inputs::labels(&y, net.null_label()),
        &w.meta.sampler,
        Default::default(),
    )
    .unwrap()
    .unwrap();
    let got = candle_core::safetensors::load(&raw, &Device::Cpu).unwrap();
    let a: Vec<f32> = got["x"].flatten_all().unwrap().to_vec1().unwrap();
    let b: Vec<f32> = want.flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(a, b);
    let _ = std::fs::remove_dir_all(&d);
}

/// The original's .pt loads directly and samples with its own settings from the given noise.
#[test]
fn original_pt_generates() {
    let d = tmp("pt");
    let pt = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/golden/seed_checkpoint_tiny.pt");
    let (ok, text) = run(&[
        "--ckpt",
        pt.to_str().unwrap(),
        "--out",
        d.to_str().unwrap(),
        "--num-samples",
        "1",
        "--steps",
        "2",
    ]);
    assert!(ok, "{text}");
    assert!(d.join("sample_0000.mid").exists());
    let _ = std::fs::remove_dir_all(&d);
}

/// Every prompt note inside the kept region comes back unchanged, and every output note inside
/// it is a prompt note (or a prompt note cut where the regenerated region begins).
fn assert_kept(
    want: &BTreeSet<(u8, usize, usize)>,
    got: &BTreeSet<(u8, usize, usize)>,
    kept: impl Fn(u8, usize) -> bool,
    what: &str,
) {
    let inside = |n: &(u8, usize, usize)| (n.1..n.2).all(|f| kept(n.0, f));
    for n in want.iter().filter(|n| inside(n)) {
        assert!(
            got.contains(n),
            "{what}: kept note {n:?} missing or changed"
        );
    }
    for n in got.iter().filter(|n| inside(n)) {
        let cut = want
            .iter()
            .any(|w| w.0 == n.0 && w.1 == n.1 && w.2 > n.2 && !kept(n.0, n.2));
        assert!(
            want.contains(n) || cut,
            "{what}: note {n:?} in the kept region is not the prompt's"
        );
    }
}

/// Continue, fill and keep-pitches return the kept notes exactly.
#[test]
fn kept_regions_come_back_exactly() {
    let d = tmp("keep");
    let ck = test_ckpt().to_str().unwrap();
    let prompt = prompt_file();
    let p = prompt.to_str().unwrap();
    let want = prompt_notes();
    assert!(want.len() > 20, "the prompt has notes in its first 8 bars");

    let out = d.join("cont");
    let (ok, text) = run(&[
        "--ckpt",
        ck,
        "--out",
        out.to_str().unwrap(),
        "--num-samples",
        "2",
        "--prompt",
        p,
        "--keep-bars",
        "3",
    ]);
    assert!(ok, "{text}");
    for i in 0..2 {
        let got = notes_of(&out.join(format!("sample_{i:04}.mid")));
        assert_kept(&want, &got, |_, f| f < 48, "continue");
    }

    let out = d.join("fill");
    let (ok, text) = run(&[
        "--ckpt",
        ck,
        "--out",
        out.to_str().unwrap(),
        "--prompt",
        p,
        "--fill",
        "3..4",
        "--num-samples",
        "1",
    ]);
    assert!(ok, "{text}");
    let got = notes_of(&out.join("sample_0000.mid"));
    assert_kept(&want, &got, |_, f| !(32..64).contains(&f), "fill");

    let out = d.join("band");
    let (ok, text) = run(&[
        "--ckpt",
        ck,
        "--out",
        out.to_str().unwrap(),
        "--prompt",
        p,
        "--keep-pitches",
        "60..84",
        "--num-samples",
        "1",
    ]);
    assert!(ok, "{text}");
    let got = notes_of(&out.join("sample_0000.mid"));
    assert_kept(
        &want,
        &got,
        |pitch, _| (60..=84).contains(&pitch),
        "keep-pitches",
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn clear_errors() {
    let d = tmp("err");
    let o = d.join("o");
    let o = o.to_str().unwrap();
    let (ok, t) = run(&["--ckpt", "/nonexistent/model.safetensors", "--out", o]);
    assert!(
        !ok && t.contains("/nonexistent/model.safetensors") && t.contains("cannot read"),
        "{t}"
    );

    let bad = d.join("bad.safetensors");
    std::fs::write(&bad, b"garbage garbage garbage").unwrap();
    let (ok, t) = run(&["--ckpt", bad.to_str().unwrap(), "--out", o]);
    assert!(!ok && t.contains("not a checkpoint"), "{t}");

    let ck = test_ckpt().to_str().unwrap();
    let (ok, t) = run(&["--ckpt", ck, "--out", o, "--class", "jazz"]);
    assert!(
        !ok && t.contains("unknown class `jazz`") && t.contains("0 (pop), 1 (folk)"),
        "{t}"
    );

    let file = d.join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let (ok, t) = run(&["--ckpt", ck, "--out", file.join("sub").to_str().unwrap()]);
    assert!(!ok && t.contains("cannot create output folder"), "{t}");

    let (ok, t) = run(&["--ckpt", ck, "--out", o, "--keep-bars", "2"]);
    assert!(!ok && t.contains("need --prompt"), "{t}");

    let (ok, t) = run(&[
        "--ckpt",
        ck,
        "--out",
        o,
        "--prompt",
        prompt_file().to_str().unwrap(),
        "--keep-bars",
        "8",
    ]);
    assert!(!ok && t.contains("leaves nothing to generate"), "{t}");

    // A short prompt: kept region padded with silence, with a notice.
    let short = d.join("short.mid");
    let notes = [jit_music::roll::RollNote {
        pitch: 60,
        start: 0,
        end: 4,
        velocity: 90,
    }];
    std::fs::write(
        &short,
        jit_music::export::notes_to_smf(
            &notes,
            &jit_music::export::ExportSpec::new(Grid::Beats { steps_per_beat: 4 }),
        ),
    )
    .unwrap();
    let (ok, t) = run(&[
        "--ckpt",
        ck,
        "--out",
        o,
        "--prompt",
        short.to_str().unwrap(),
        "--keep-bars",
        "4",
        "--num-samples",
        "1",
    ]);
    assert!(ok && t.contains("fewer than the 64 kept"), "{t}");
    let _ = std::fs::remove_dir_all(&d);
}

/// Generated files read back in another parser than ours (Python's mido, when installed).
#[test]
#[ignore = "needs python3 with mido (pip install mido); .ci/run installs it and runs this"]
fn files_read_back_in_mido() {
    let check = Command::new("python3").args(["-c", "import mido"]).output();
    assert!(
        matches!(check, Ok(ref o) if o.status.success()),
        "python3 with mido is not installed (pip install mido)"
    );
    let d = tmp("mido");
    let (ok, t) = run(&[
        "--ckpt",
        test_ckpt().to_str().unwrap(),
        "--out",
        d.to_str().unwrap(),
        "--num-samples",
        "2",
        "--threshold",
        "0.2",
    ]);
    assert!(ok, "{t}");
    let script = "import mido,sys\nfor f in sys.argv[1:]:\n m=mido.MidiFile(f)\n assert m.type==1 and len(m.tracks)==2\n assert any(e.type=='set_tempo' for e in m.tracks[0])\n assert any(e.type=='time_signature' for e in m.tracks[0])\n assert any(e.type=='track_name' for e in m.tracks[0])\nprint('ok')";
    let out = Command::new("python3")
        .args([
            "-c",
            script,
            d.join("sample_0000.mid").to_str().unwrap(),
            d.join("sample_0001.mid").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// `convert` stores recommended settings and provenance; `inspect` shows them; `generate` uses
/// them when no flag overrides them.
#[test]
fn recommended_settings_travel_with_the_checkpoint() {
    let d = tmp("convert");
    let report = d.join("eval.json");
    std::fs::write(&report, r#"{"overall": 0.5}"#).unwrap();
    let out = d.join("rec.safetensors");
    let st = Command::new(env!("CARGO_BIN_EXE_convert"))
        .args([test_ckpt().to_str().unwrap(), out.to_str().unwrap()])
        .args(["--f16", "--cfg", "1", "--steps", "2", "--method", "euler"])
        .args(["--threshold", "0.3", "--info"])
        .arg(format!("evaluation={}", report.display()))
        .status()
        .unwrap();
    assert!(st.success());
    let w = checkpoint::load(&out, checkpoint::Weights::Ema1).unwrap();
    assert_eq!(w.meta.sampler.steps, 2);
    assert_eq!(w.meta.sampler.cfg_scale, 1.0);
    assert_eq!(w.meta.info["threshold"], 0.3);
    assert_eq!(w.meta.info["evaluation"]["overall"], 0.5);

    let o = Command::new(env!("CARGO_BIN_EXE_inspect"))
        .arg(&out)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{text}");
    assert!(text.contains("Euler 2 steps, cfg 1"), "{text}");
    assert!(text.contains("threshold 0.3"), "{text}");
    assert!(text.contains("pop (default), folk"), "{text}");

    let g = d.join("gen");
    let (ok, t) = run(&[
        "--ckpt",
        out.to_str().unwrap(),
        "--out",
        g.to_str().unwrap(),
    ]);
    assert!(ok, "{t}");
    let side: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(g.join("sample_0000.json")).unwrap())
            .unwrap();
    assert!(
        (side["threshold"].as_f64().unwrap() - 0.3).abs() < 1e-6,
        "{side}"
    );
    assert_eq!(side["sampler"]["steps"], 2, "{side}");

    let bad = Command::new(env!("CARGO_BIN_EXE_convert"))
        .args([test_ckpt().to_str().unwrap(), out.to_str().unwrap()])
        .args(["--info", "no-equals-sign"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("KEY=FILE"));
}

/// The user's notes are never rewritten: soft velocities and back-to-back repeats on one pitch
/// come back exactly from a fill and a continuation, whatever the note threshold.
#[test]
fn kept_notes_survive_any_threshold() {
    let d = tmp("soft");
    let ck = test_ckpt().to_str().unwrap();
    let n = |pitch, start, end, velocity| jit_music::roll::RollNote {
        pitch,
        start,
        end,
        velocity,
    };
    // Repeated 16ths at velocity 20-40, a soft held note, and more after the gap.
    let mut notes = vec![
        n(60, 0, 1, 20),
        n(60, 1, 2, 30),
        n(60, 2, 3, 40),
        n(48, 0, 16, 25),
    ];
    notes.extend((0..4).map(|i| n(67, 96 + i, 97 + i, 33)));
    let prompt = d.join("soft.mid");
    std::fs::write(
        &prompt,
        jit_music::export::notes_to_smf(
            &notes,
            &jit_music::export::ExportSpec::new(Grid::Beats { steps_per_beat: 4 }),
        ),
    )
    .unwrap();
    let exact = |path: &Path| -> Vec<(u8, usize, usize, u8)> {
        let score = midi::read_file(path).unwrap();
        score_to_roll(&score, &RollOptions::beats(4))
            .unwrap()
            .notes
            .into_iter()
            .map(|g| (g.note.pitch, g.note.start, g.note.end, g.note.velocity))
            .collect()
    };
    for (flag, value, kept) in [
        ("--fill", "3..4", notes.clone()),
        ("--keep-bars", "4", notes[..4].to_vec()),
    ] {
        for threshold in ["0.05", "0.35", "0.9"] {
            let out = d.join(format!("o{flag}{threshold}"));
            let (ok, text) = run(&[
                "--ckpt",
                ck,
                "--out",
                out.to_str().unwrap(),
                "--prompt",
                prompt.to_str().unwrap(),
                flag,
                value,
                "--threshold",
                threshold,
                "--num-samples",
                "1",
            ]);
            assert!(ok, "{text}");
            let got = exact(&out.join("sample_0000.mid"));
            for k in &kept {
                let k = (k.pitch, k.start, k.end, k.velocity);
                assert!(
                    got.contains(&k),
                    "{flag} {value} at {threshold}: {k:?} lost"
                );
            }
        }
    }
    let _ = std::fs::remove_dir_all(&d);
}

/// A tiny onset/sustain model that takes known notes and chords.
fn cond_ckpt() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| tiny_ckpt("cond.safetensors", true))
}

/// Chords: typed, from a MIDI file (POP909's annotations) or refused with the bar and column;
/// recorded in the sidecar and replayed exactly; a model without chords says so.
#[test]
fn chords_are_followed_recorded_and_refused_clearly() {
    let d = tmp("chords");
    let ck = cond_ckpt().to_str().unwrap();
    let out = d.join("typed");
    let (ok, text) = run(&[
        "--ckpt",
        ck,
        "--out",
        out.to_str().unwrap(),
        "--num-samples",
        "2",
        "--chords",
        "C | G | Am F | F",
    ]);
    assert!(ok, "{text}");
    let side: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("sample_0001.json")).unwrap())
            .unwrap();
    assert_eq!(side["chords_source"], "C | G | Am F | F");
    assert_eq!(
        side["chords"]["spans"].as_array().unwrap().len(),
        10,
        "4 bars looped twice, Am F split"
    );
    let re = d.join("replay");
    let (ok, text) = run(&[
        "--replay",
        out.join("sample_0001.json").to_str().unwrap(),
        "--out",
        re.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    assert_eq!(
        std::fs::read(out.join("sample_0001.mid")).unwrap(),
        std::fs::read(re.join("sample_0001.mid")).unwrap()
    );
    let from = d.join("from");
    let (ok, text) = run(&[
        "--ckpt",
        ck,
        "--out",
        from.to_str().unwrap(),
        "--num-samples",
        "1",
        "--chords-from",
        prompt_file().to_str().unwrap(),
        "--prompt",
        prompt_file().to_str().unwrap(),
        "--keep-part",
        "melody",
    ]);
    assert!(ok, "{text}");
    let (ok, t) = run(&[
        "--ckpt",
        ck,
        "--out",
        d.join("e").to_str().unwrap(),
        "--chords",
        "C | G | Hm7",
    ]);
    assert!(!ok && t.contains("bar 3") && t.contains("Hm7"), "{t}");
    let (ok, t) = run(&[
        "--ckpt",
        test_ckpt().to_str().unwrap(),
        "--out",
        d.join("e2").to_str().unwrap(),
        "--chords",
        "C",
    ]);
    assert!(!ok && t.contains("not trained with chords"), "{t}");
    let (ok, t) = run(&[
        "--ckpt",
        ck,
        "--out",
        d.join("e3").to_str().unwrap(),
        "--prompt",
        prompt_file().to_str().unwrap(),
        "--keep-part",
        "violin",
    ]);
    assert!(
        !ok && t.contains("no such part") && t.contains("MELODY"),
        "{t}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// Variations start from an earlier sample: amount 0 gives it back note for note, a replay of
/// a variation is exact.
#[test]
fn variations_come_from_the_earlier_sample() {
    let d = tmp("vary");
    let ck = test_ckpt().to_str().unwrap();
    let src = d.join("src");
    let (ok, text) = run(&[
        "--ckpt",
        ck,
        "--out",
        src.to_str().unwrap(),
        "--num-samples",
        "1",
        "--seed",
        "3",
    ]);
    assert!(ok, "{text}");
    let side = src.join("sample_0000.json");
    let same = d.join("same");
    let (ok, text) = run(&[
        "--vary",
        side.to_str().unwrap(),
        "--amount",
        "0",
        "--out",
        same.to_str().unwrap(),
        "--num-samples",
        "1",
        "--seed",
        "99",
    ]);
    assert!(ok, "{text}");
    assert_eq!(
        notes_of(&src.join("sample_0000.mid")),
        notes_of(&same.join("sample_0000.mid"))
    );
    let v = d.join("v");
    let (ok, text) = run(&[
        "--vary",
        side.to_str().unwrap(),
        "--amount",
        "0.5",
        "--out",
        v.to_str().unwrap(),
        "--num-samples",
        "2",
    ]);
    assert!(ok, "{text}");
    let r = d.join("r");
    let (ok, text) = run(&[
        "--replay",
        v.join("sample_0001.json").to_str().unwrap(),
        "--out",
        r.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    assert_eq!(
        std::fs::read(v.join("sample_0001.mid")).unwrap(),
        std::fs::read(r.join("sample_0001.mid")).unwrap()
    );
    let (ok, t) = run(&[
        "--vary",
        side.to_str().unwrap(),
        "--amount",
        "1.5",
        "--out",
        d.join("bad").to_str().unwrap(),
    ]);
    assert!(!ok && t.contains("--amount"), "{t}");
    let _ = std::fs::remove_dir_all(&d);
}
