//! The worker's generation step with a tiny random model: bars on the host's grid, the modes
//! keep exactly what they promise, seeds reproduce, cancel stops, a new threshold re-derives.
#![cfg(feature = "plugin")]

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use jit_music::checkpoint::{self, CheckpointMeta, Kind, ModelWeights, RollSpec};
use jit_music::generate::Generator;
use jit_music::model::{JiT, JitConfig};
use jit_music::plugin::generate::{generate, layout, GenSettings, Sources};
use jit_music::plugin::history::Idea;
use jit_music::plugin::params::Mode;
use jit_music::plugin::pattern::{PatternNote, PPQ};
use jit_music::roll::{Grid, Velocity};
use jit_music::sampler::Method;
use std::sync::atomic::AtomicBool;

/// The plugin's model shape (beats grid, 4 steps per beat, 128 frames = 8 bars) at tiny size.
fn meta(cfg: &JitConfig) -> CheckpointMeta {
    CheckpointMeta {
        format_version: checkpoint::FORMAT_VERSION,
        kind: Kind::Inference,
        name: "tiny test model".into(),
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
        classes: vec![
            "chorales".into(),
            "folk".into(),
            "pop".into(),
            "renaissance".into(),
        ],
        step: 0,
        info: serde_json::json!({"note": "random weights, for tests and benchmarks"}),
    }
}

fn tiny_weights() -> ModelWeights {
    let cfg = JitConfig::preset("tiny", 128, 128, 4).expect("preset");
    let vm = VarMap::new();
    let net = JiT::new(&cfg, VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu)).expect("net");
    ModelWeights {
        meta: meta(&cfg),
        tensors: net.named_tensors().into_iter().collect(),
        source: "in-memory".into(),
    }
}

fn model() -> Generator {
    Generator::new(tiny_weights(), Device::Cpu).expect("build")
}

fn settings(mode: Mode) -> GenSettings {
    GenSettings {
        seed: 7,
        steps: 3,
        method: Method::Euler,
        cfg: 2.0,
        style: 2,
        bars: 8,
        mode,
        // Random weights give a grey roll; a low threshold makes sure there are notes.
        threshold: 0.3,
        velocity: Velocity::Learned,
        ..GenSettings::default()
    }
}

fn run(m: &Generator, s: &GenSettings, prompt: &Sources) -> Idea {
    generate(m, s, prompt, None, &mut |_, _| {})
        .expect("generate")
        .expect("not cancelled")
}

fn none() -> Sources<'static> {
    Sources {
        current: None,
        captured: &[],
    }
}

fn note(start: u32, end: u32, pitch: u8) -> PatternNote {
    PatternNote {
        start,
        end,
        pitch,
        velocity: 100,
    }
}

#[test]
fn new_idea_fills_eight_bars_of_the_hosts_grid_and_reproduces() {
    let m = model();
    let s = settings(Mode::New);
    let lay = layout(m.meta(), &s);
    assert_eq!((lay.bars, lay.bar_ticks, lay.frames), (8, 4 * PPQ, 128));
    assert_eq!(lay.ticks_per_frame, f64::from(PPQ) / 4.0);
    let a = run(&m, &s, &none());
    assert_eq!((a.bars, a.bar_ticks), (8, 3840));
    assert!(!a.notes.is_empty());
    for &[start, end, pitch, vel] in &a.notes {
        assert!(start < end && end <= 8 * 3840 && pitch < 128 && (1..=127).contains(&vel));
        assert_eq!(start % 240, 0, "notes sit on the 16th grid");
    }
    assert!(a.roll.is_some());
    let b = run(&m, &s, &none());
    assert_eq!(a.notes, b.notes, "same seed, same idea");
    let c = run(&m, &GenSettings { seed: 8, ..s }, &none());
    assert_ne!(a.notes, c.notes);
}

#[test]
fn three_four_time_gives_three_beat_bars() {
    let m = model();
    let s = GenSettings {
        sig: (3, 4),
        ..settings(Mode::New)
    };
    let lay = layout(m.meta(), &s);
    assert_eq!((lay.bars, lay.bar_ticks, lay.frames), (8, 3 * PPQ, 96));
    let idea = run(&m, &s, &none());
    assert!(idea.notes.iter().all(|n| n[1] <= 8 * 3 * PPQ));
}

fn current_idea(m: &Generator) -> Idea {
    let mut idea = run(m, &settings(Mode::New), &none());
    // A few known notes on top, so that every region has something to keep.
    let mut notes = idea.pattern_notes();
    notes.extend([
        note(0, 960, 36),
        note(3840 * 5, 3840 * 5 + 480, 48),
        note(7000, 7960, 90),
    ]);
    notes.sort_unstable();
    idea.set_notes(&notes);
    idea
}

#[test]
fn fill_keeps_every_note_outside_the_filled_bars() {
    let m = model();
    let cur = current_idea(&m);
    let s = GenSettings {
        fill: (3, 4),
        ..settings(Mode::Fill)
    };
    let prompt = Sources {
        current: Some(&cur),
        captured: &[],
    };
    let out = run(&m, &s, &prompt);
    let (a, b) = (2 * 3840, 4 * 3840);
    let outside = |n: &[u32; 4]| n[0] < a || n[0] >= b;
    let kept: Vec<[u32; 4]> = cur
        .notes
        .iter()
        .filter(|n| outside(n))
        .map(|n| {
            if n[0] < a {
                [n[0], n[1].min(a), n[2], n[3]]
            } else {
                *n
            }
        })
        .collect();
    let mut kept = kept;
    kept.sort_unstable();
    let mut got: Vec<[u32; 4]> = out.notes.iter().filter(|n| outside(n)).copied().collect();
    got.sort_unstable();
    assert!(
        got == kept,
        "{} kept notes, {} expected",
        got.len(),
        kept.len()
    );
    assert!(out.notes.iter().filter(|n| !outside(n)).all(|n| n[1] <= b));
}

#[test]
fn keep_band_keeps_the_band_exactly() {
    let m = model();
    let cur = current_idea(&m);
    let s = GenSettings {
        band: (30, 50),
        ..settings(Mode::KeepBand)
    };
    let prompt = Sources {
        current: Some(&cur),
        captured: &[],
    };
    let out = run(&m, &s, &prompt);
    let band = |n: &&[u32; 4]| (30..=50).contains(&n[2]);
    let mut want: Vec<_> = cur.notes.iter().filter(band).collect();
    let mut got: Vec<_> = out.notes.iter().filter(band).collect();
    want.sort_unstable();
    got.sort_unstable();
    assert!(
        got == want,
        "{} band notes, {} expected",
        got.len(),
        want.len()
    );
}

#[test]
fn continue_keeps_the_captured_input_as_the_first_half() {
    let m = model();
    let captured = [
        note(0, 480, 60),
        note(480, 960, 62),
        note(3840 * 3, 3840 * 3 + 960, 67),
    ];
    let prompt = Sources {
        current: None,
        captured: &captured,
    };
    let out = run(&m, &settings(Mode::Continue), &prompt);
    let half = 4 * 3840;
    let first: Vec<PatternNote> = out
        .pattern_notes()
        .into_iter()
        .filter(|n| n.start < half)
        .collect();
    assert_eq!(first, captured.to_vec());
}

#[test]
fn cancel_stops_generation() {
    let m = model();
    let cancel = AtomicBool::new(true);
    let r = generate(
        &m,
        &settings(Mode::New),
        &none(),
        Some(&cancel),
        &mut |_, _| {},
    );
    assert!(matches!(r, Ok(None)));
}

#[test]
fn a_new_threshold_rederives_from_the_stored_roll() {
    let m = model();
    let mut idea = run(&m, &settings(Mode::New), &none());
    let before = idea.notes.clone();
    assert!(idea.rederive(0.9, Velocity::Fixed(64)));
    assert!(idea.notes.len() <= before.len());
    assert!(idea.notes.iter().all(|n| n[3] == 64));
    assert!(idea.rederive(0.3, Velocity::Learned));
    assert_eq!(
        idea.notes, before,
        "back to the first threshold, back to the same notes"
    );
}

/// Style slot 0 plays the model's default class (pop for the embedded model), so a fresh
/// instance makes the model's main style rather than a blend of all of them.
#[test]
fn style_slot_zero_is_the_models_default_class() {
    let w = jit_music::default_model::load().expect("embedded model");
    let pop = w.meta.classes.iter().position(|c| c == "pop");
    let model = Generator::new(w.clone(), Device::Cpu).expect("model");
    assert_eq!(Some(model.meta().default_class()), pop.map(|i| i as u32));
}

/// Kept notes are the user's: soft velocities and back-to-back repeats on one pitch survive any
/// new threshold or velocity rule, in a Fill idea and a Continue idea; only the generated notes
/// are read again.
#[test]
fn kept_notes_survive_every_threshold_change() {
    let m = model();
    let soft = [
        note(0, 480, 60),
        note(480, 960, 60),
        note(960, 1440, 60),
        note(1440, 3840, 43),
    ];
    let soft: Vec<PatternNote> = soft
        .iter()
        .map(|n| PatternNote {
            velocity: 30 + n.pitch % 7,
            ..*n
        })
        .collect();
    let mut cur = run(&m, &settings(Mode::New), &none());
    let mut notes: Vec<PatternNote> = cur
        .pattern_notes()
        .into_iter()
        .filter(|n| n.start >= 3840)
        .collect();
    notes.extend_from_slice(&soft);
    notes.sort_unstable();
    cur.set_notes(&notes);
    let fill = GenSettings {
        fill: (5, 6),
        ..settings(Mode::Fill)
    };
    let with_current = Sources {
        current: Some(&cur),
        captured: &[],
    };
    let captured = Sources {
        current: None,
        captured: &soft,
    };
    for (s, src) in [(fill, &with_current), (settings(Mode::Continue), &captured)] {
        let mut idea = run(&m, &s, src);
        for (threshold, velocity) in [
            (0.9, Velocity::Fixed(64)),
            (0.05, Velocity::Learned),
            (0.35, Velocity::Fixed(100)),
            (0.6, Velocity::Learned),
        ] {
            assert!(idea.rederive(threshold, velocity));
            let got = idea.pattern_notes();
            for k in &soft {
                assert!(
                    got.contains(k),
                    "{:?} at threshold {threshold}: kept note {k:?} changed or vanished",
                    s.mode
                );
            }
        }
    }
}
