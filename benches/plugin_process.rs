//! Plugin benchmarks:
//! * `process_512`: the audio thread's work per 512-sample block (48 kHz, 120 BPM) with a
//!   dense 8-bar pattern (8 notes on every 16th: 1024 notes), over a whole pattern cycle. The
//!   block lasts 10.67 ms; the target is well under 1 % of that (107 us).
//! * `press_to_pattern`: Generate pressed -> an 8-bar idea ready for the audio thread, with the
//!   plugin's default settings (the model's own sampler: Heun 32, CFG 3 for the default model)
//!   and Heun 24 on the CPU, for the embedded default model and for an XS-sized model with
//!   random weights (same cost as a trained one).
//! * `live_120bpm`: the worker's work in Live mode at 120 BPM, every bar: a 4-bar variation of
//!   the current idea (amount 0.5, Live's default), with the model's recommended sampler and
//!   with few-step settings (Euler, 2 and 1 steps, no guidance: the stand-in until a distilled
//!   default model exists; a model that recommends its own few-step sampler is measured by the
//!   first row). Besides criterion's times, it prints the process CPU time per bar as a share
//!   of one core over the bar's 2 s (the goal: under 10 %).
//!
//! `cargo bench --bench plugin_process`

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use jit_music::checkpoint::{self, CheckpointMeta, Kind, ModelWeights, RollSpec};
use jit_music::generate::Generator;
use jit_music::model::{JiT, JitConfig};
use jit_music::plugin::generate::{generate, sampler_for, GenSettings, Sources};
use jit_music::plugin::history::Idea;
use jit_music::plugin::pattern::{bar_ticks, Pattern, PatternNote, PPQ};
use jit_music::plugin::process::{HostTransport, Out, Player, PlayerSettings};
use jit_music::roll::Grid;
use jit_music::sampler::Method;
use std::time::{Duration, Instant};

fn dense_pattern() -> Pattern {
    let step = PPQ / 4;
    let mut notes = Vec::new();
    for s in 0..128u32 {
        for v in 0..8u8 {
            notes.push(PatternNote {
                start: s * step,
                end: (s + 1) * step,
                pitch: 40 + v * 5 + (s % 3) as u8,
                velocity: 90,
            });
        }
    }
    Pattern::from_notes(1, 8, bar_ticks(4, 4), &notes)
}

fn process_512(c: &mut Criterion) {
    let mut player = Player::new(48_000.0);
    player.offer(&dense_pattern());
    let settings = PlayerSettings::default();
    let mut out: Vec<Out> = Vec::with_capacity(1 << 16);
    let mut sample = 0u64;
    let cycle = 8 * 4 * 24_000u64; // 8 bars at 120 BPM
    c.bench_function("process_512_dense_8_bars", |b| {
        b.iter(|| {
            let t = HostTransport {
                playing: true,
                tempo: Some(120.0),
                pos_beats: Some(sample as f64 / 24_000.0),
                time_sig: Some((4, 4)),
                ..Default::default()
            };
            out.clear();
            player.process(&t, 512, &settings, &mut |o| out.push(o));
            black_box(out.len());
            sample = (sample + 512) % (16 * cycle);
        })
    });
    // Worst case: at 1406.25 BPM a 16th lasts exactly 512 samples, so every block ends 8 notes
    // and starts 8 (16 events through the voice table).
    let mut player = Player::new(48_000.0);
    player.offer(&dense_pattern());
    let spb = 2048.0;
    let mut sample = 0u64;
    c.bench_function("process_512_16_events_every_block", |b| {
        b.iter(|| {
            let t = HostTransport {
                playing: true,
                tempo: Some(48_000.0 * 60.0 / spb),
                pos_beats: Some(sample as f64 / spb),
                time_sig: Some((4, 4)),
                ..Default::default()
            };
            out.clear();
            player.process(&t, 512, &settings, &mut |o| out.push(o));
            black_box(out.len());
            sample = (sample + 512) % (1 << 30);
        })
    });
}

fn plugin_meta(cfg: &JitConfig) -> CheckpointMeta {
    CheckpointMeta {
        format_version: checkpoint::FORMAT_VERSION,
        kind: Kind::Inference,
        name: "random XS".into(),
        config: cfg.clone(),
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
        classes: vec!["pop".into(), "folk".into()],
        step: 0,
        info: serde_json::Value::Null,
    }
}

fn random_model(preset: &str) -> Generator {
    let cfg = JitConfig::preset(preset, 128, 128, 2).expect("preset");
    let vm = VarMap::new();
    let net = JiT::new(&cfg, VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu)).expect("net");
    let w = ModelWeights {
        meta: plugin_meta(&cfg),
        tensors: net.named_tensors().into_iter().collect(),
        source: "random".into(),
    };
    Generator::new(w, Device::Cpu).expect("build")
}

fn press_to_pattern(c: &mut Criterion) {
    let mut models: Vec<(String, Generator)> = Vec::new();
    match jit_music::default_model::load() {
        Ok(w) => models.push((
            "default_model".into(),
            Generator::new(w, Device::Cpu).expect("default model builds"),
        )),
        Err(e) => eprintln!("no default model: {e}"),
    }
    models.push(("random_xs".into(), random_model("JiT-XS/16")));
    let s = GenSettings {
        bars: 8,
        ..GenSettings::default()
    };
    let heun24 = GenSettings {
        steps: Some(24),
        method: Some(Method::Heun),
        ..s.clone()
    };
    let sources = Sources {
        current: None,
        captured: &[],
    };
    let mut g = c.benchmark_group("press_to_pattern_8_bars");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    for ((name, m), (label, s)) in models.iter().flat_map(|m| {
        [
            (m, ("model_sampler_plugin_default", &s)),
            (m, ("heun24", &heun24)),
        ]
    }) {
        g.bench_function(format!("{name}/{label}"), |b| {
            b.iter(|| {
                let idea = generate(m, s, &sources, None, &mut |_, _| {})
                    .expect("generate")
                    .expect("not cancelled");
                // What the worker then hands to the audio thread.
                black_box(Pattern::from_notes(
                    1,
                    idea.bars,
                    idea.bar_ticks,
                    &idea.pattern_notes(),
                ))
            })
        });
    }
    g.finish();
}

/// Seconds of CPU this process has used (all threads), from /proc; `None` elsewhere.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at ")".
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn live_120bpm(c: &mut Criterion) {
    let Ok(w) = jit_music::default_model::load() else {
        eprintln!("no default model: live_120bpm skipped");
        return;
    };
    let m = Generator::new(w, Device::Cpu).expect("default model builds");
    let base = GenSettings {
        bars: 4,
        ..GenSettings::default()
    };
    let few = |steps| GenSettings {
        steps: Some(steps),
        method: Some(Method::Euler),
        guidance: Some(1.0),
        ..base.clone()
    };
    let rec = sampler_for(m.meta(), &base);
    let settings = [
        (
            format!("model_{}{}_cfg{}", rec.method, rec.steps, rec.cfg_scale),
            base.clone(),
        ),
        ("euler2_cfg1".to_string(), few(2)),
        ("euler1_cfg1".to_string(), few(1)),
    ];
    let none = Sources {
        current: None,
        captured: &[],
    };
    // The idea Live mode varies.
    let current: Idea = generate(&m, &base, &none, None, &mut |_, _| {})
        .expect("generate")
        .expect("not cancelled");
    let sources = Sources {
        current: Some(&current),
        captured: &[],
    };
    let bar_seconds = 2.0; // 4/4 at 120 BPM
    let mut g = c.benchmark_group("live_120bpm");
    g.sample_size(10).measurement_time(Duration::from_secs(15));
    for (name, s) in &settings {
        let s = GenSettings {
            vary: Some(0.5),
            ..s.clone()
        };
        let run = || {
            generate(&m, &s, &sources, None, &mut |_, _| {})
                .expect("generate")
                .expect("not cancelled")
        };
        // The share: CPU and wall time per bar's idea over at least 2 s of work.
        let (t0, c0) = (Instant::now(), cpu_seconds());
        let mut n = 0u32;
        while n < 3 || t0.elapsed() < Duration::from_secs(2) {
            black_box(run());
            n += 1;
        }
        let wall = t0.elapsed().as_secs_f64() / f64::from(n);
        let cpu = match (c0, cpu_seconds()) {
            (Some(a), Some(b)) => (b - a) / f64::from(n),
            _ => wall,
        };
        eprintln!(
            "live_120bpm/{name}: {:.1} ms wall, {:.1} ms CPU per bar = {:.1} % of one core \
             ({:.1} % of the bar's wall time)",
            wall * 1e3,
            cpu * 1e3,
            100.0 * cpu / bar_seconds,
            100.0 * wall / bar_seconds
        );
        g.bench_function(name.as_str(), |b| b.iter(|| black_box(run())));
    }
    g.finish();
}

criterion_group!(benches, process_512, press_to_pattern, live_120bpm);
criterion_main!(benches);
