//! One behaviour, tested once: the `generate` CLI and the plugin's worker give the same notes
//! for the same model, prompt, settings and seed (continue, fill, keep a pitch band).
#![cfg(feature = "plugin")]

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use jit_music::checkpoint::{self, CheckpointMeta, Kind, ModelWeights, RollSpec};
use jit_music::export::{notes_to_smf, ExportSpec};
use jit_music::generate::{Generator, Method};
use jit_music::model::{JiT, JitConfig};
use jit_music::plugin::generate::{generate, GenSettings, Sources};
use jit_music::plugin::history::Idea;
use jit_music::plugin::params::Workflow;
use jit_music::plugin::pattern::PatternNote;
use jit_music::roll::{score_to_roll, Grid, RollNote, RollOptions, Velocity};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Ticks per frame in the plugin (PPQ 960, 4 steps per beat).
const TPF: u32 = 240;

fn tiny_weights() -> ModelWeights {
    let cfg = JitConfig::preset("tiny", 128, 128, 2).unwrap();
    let vm = VarMap::new();
    let net = JiT::new(&cfg, VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu)).unwrap();
    let meta = CheckpointMeta {
        format_version: checkpoint::FORMAT_VERSION,
        kind: Kind::Inference,
        name: "tiny".into(),
        config: cfg,
        roll: RollSpec {
            grid: Grid::Beats { steps_per_beat: 4 },
            pitch_low: 0,
            pitches: 128,
            frames: 128,
            articulation: true,
            channels: Default::default(),
            conditions: Default::default(),
        },
        objective: Default::default(),
        sampler: Default::default(),
        classes: vec!["a".into(), "b".into()],
        step: 1,
        info: serde_json::json!({}),
    };
    ModelWeights {
        meta,
        tensors: net.named_tensors().into_iter().collect(),
        source: "tiny".into(),
    }
}

/// The `generate` binary of this workspace (built by `cargo test --workspace`; built here when
/// this test runs alone).
fn generate_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    let bin = profile_dir.join(format!("generate{}", std::env::consts::EXE_SUFFIX));
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "jit-music-train", "--bin", "generate"])
            .status()
            .unwrap();
        assert!(status.success(), "could not build the generate binary");
    }
    bin
}

/// Notes in frames with velocities.
fn file_notes(path: &Path) -> Vec<(u8, usize, usize, u8)> {
    let score = jit_music::midi::read_file(path).unwrap();
    let mut v: Vec<_> = score_to_roll(&score, &RollOptions::beats(4))
        .unwrap()
        .notes
        .into_iter()
        .map(|g| (g.note.pitch, g.note.start, g.note.end, g.note.velocity))
        .collect();
    v.sort_unstable();
    v
}

fn idea_notes(idea: &Idea) -> Vec<(u8, usize, usize, u8)> {
    let mut v: Vec<_> = idea
        .pattern_notes()
        .into_iter()
        .map(|n| {
            (
                n.pitch,
                (n.start / TPF) as usize,
                (n.end / TPF) as usize,
                n.velocity,
            )
        })
        .collect();
    v.sort_unstable();
    v
}

#[test]
fn cli_and_plugin_make_the_same_notes() {
    let dir = std::env::temp_dir().join(format!("jit-cli-plugin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let weights = tiny_weights();
    let ckpt = dir.join("tiny.safetensors");
    let net = weights.build(&Device::Cpu, DType::F32).unwrap();
    checkpoint::save_inference(&ckpt, &net, &weights.meta).unwrap();
    let gen = Generator::new(weights, Device::Cpu).unwrap();

    // A prompt on the grid, one voice per pitch: a melody, a bass, repeated notes.
    let prompt: Vec<RollNote> = (0..32)
        .map(|i| RollNote {
            pitch: [60, 64, 67, 72][i % 4],
            start: i * 4,
            end: i * 4 + 3,
            velocity: 60 + (i % 5) as u8 * 10,
        })
        .chain((0..8).map(|b| RollNote {
            pitch: 40 + (b % 3) as u8 * 2,
            start: b * 16,
            end: b * 16 + 16,
            velocity: 90,
        }))
        .collect();
    let midi = dir.join("prompt.mid");
    let spec = ExportSpec::new(Grid::Beats { steps_per_beat: 4 });
    std::fs::write(&midi, notes_to_smf(&prompt, &spec)).unwrap();
    let ticks: Vec<PatternNote> = prompt
        .iter()
        .map(|n| PatternNote {
            start: n.start as u32 * TPF,
            end: n.end as u32 * TPF,
            pitch: n.pitch,
            velocity: n.velocity,
        })
        .collect();
    let mut current = Idea {
        id: 1,
        bars: 8,
        bar_ticks: 4 * 960,
        notes: Vec::new(),
        roll: None,
        chords: None,
        info: Default::default(),
    };
    current.set_notes(&ticks);
    let first_half: Vec<PatternNote> = ticks
        .iter()
        .filter(|n| n.start < 4 * 3840)
        .copied()
        .collect();

    let base = GenSettings {
        seed: 11,
        steps: Some(3),
        method: Some(Method::Euler),
        guidance: Some(2.0),
        style: 2,
        threshold: 0.3,
        velocity: Velocity::Fixed(100),
        band: (55, 80),
        fill: (5, 6),
        ..GenSettings::default()
    };
    let cases: [(Workflow, &[&str], Sources); 3] = [
        (
            Workflow::Continue,
            &["--keep-bars", "4"],
            Sources {
                current: None,
                captured: &first_half,
            },
        ),
        (
            Workflow::Fill,
            &["--fill", "5..6"],
            Sources {
                current: Some(&current),
                captured: &[],
            },
        ),
        (
            Workflow::KeepBand,
            &["--keep-pitches", "55..80"],
            Sources {
                current: Some(&current),
                captured: &[],
            },
        ),
    ];
    for (mode, flags, sources) in cases {
        let s = GenSettings {
            workflow: mode,
            ..base.clone()
        };
        let idea = generate(&gen, &s, &sources, None, &mut |_, _| {})
            .unwrap()
            .unwrap();
        let out = dir.join(format!("{mode:?}"));
        let mut args: Vec<String> = [
            "--ckpt",
            ckpt.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--prompt",
            midi.to_str().unwrap(),
            "--seed",
            "11",
            "--num-samples",
            "1",
            "--steps",
            "3",
            "--method",
            "euler",
            "--cfg",
            "2",
            "--class",
            "b",
            "--threshold",
            "0.3",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(flags.iter().map(|s| s.to_string()));
        let o = Command::new(generate_bin()).args(&args).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let cli = file_notes(&out.join("sample_0000.mid"));
        let plugin = idea_notes(&idea);
        assert!(!plugin.is_empty());
        assert_eq!(cli, plugin, "{mode:?}: the CLI and the plugin disagree");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Chords and the model's own sampler: `generate --chords` with no sampler flags and the plugin
/// with its sampler on auto and the same progression typed give the same notes from a model
/// that takes chords and recommends two Euler steps without guidance.
#[test]
fn cli_and_plugin_follow_the_same_chords() {
    use jit_music::plugin::chords::progression;
    use jit_music::roll::{Channels, Conditions};
    let dir = std::env::temp_dir().join(format!("jit-cli-plugin-chords-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut weights = tiny_weights();
    let meta = &mut weights.meta;
    meta.config.in_channels = 2;
    meta.config.cond_channels = 5;
    meta.roll.channels = Channels::OnsetSustain;
    meta.roll.articulation = false;
    meta.roll.conditions = Conditions {
        known: true,
        chords: true,
    };
    meta.sampler.method = Method::Euler;
    meta.sampler.steps = 2;
    meta.sampler.cfg_scale = 1.0;
    let vm = VarMap::new();
    let net = JiT::new(
        &weights.meta.config,
        VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu),
    )
    .unwrap();
    weights.tensors = net.named_tensors().into_iter().collect();
    let ckpt = dir.join("tiny-chords.safetensors");
    checkpoint::save_inference(&ckpt, &net, &weights.meta).unwrap();
    let gen = Generator::new(weights, Device::Cpu).unwrap();

    let text = "C | G | Am F | F";
    let s = GenSettings {
        seed: 5,
        style: 1,
        threshold: 0.3,
        chords: Some(progression(text, 8, (4, 4)).unwrap()),
        ..GenSettings::default()
    };
    let none = Sources {
        current: None,
        captured: &[],
    };
    let idea = generate(&gen, &s, &none, None, &mut |_, _| {})
        .unwrap()
        .unwrap();
    let out = dir.join("chords");
    let args = [
        "--ckpt",
        ckpt.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--seed",
        "5",
        "--num-samples",
        "1",
        "--class",
        "a",
        "--threshold",
        "0.3",
        "--chords",
        text,
    ];
    let o = Command::new(generate_bin()).args(args).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let plugin = idea_notes(&idea);
    assert!(!plugin.is_empty());
    assert_eq!(
        file_notes(&out.join("sample_0000.mid")),
        plugin,
        "the CLI and the plugin disagree"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
