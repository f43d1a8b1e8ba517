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
use jit_music::plugin::params::Workflow;
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

fn settings(workflow: Workflow) -> GenSettings {
    GenSettings {
        seed: 7,
        steps: Some(3),
        method: Some(Method::Euler),
        guidance: Some(2.0),
        style: 2,
        bars: 8,
        workflow,
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
    let s = settings(Workflow::New);
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
        ..settings(Workflow::New)
    };
    let lay = layout(m.meta(), &s);
    assert_eq!((lay.bars, lay.bar_ticks, lay.frames), (8, 3 * PPQ, 96));
    let idea = run(&m, &s, &none());
    assert!(idea.notes.iter().all(|n| n[1] <= 8 * 3 * PPQ));
}

fn current_idea(m: &Generator) -> Idea {
    let mut idea = run(m, &settings(Workflow::New), &none());
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
        ..settings(Workflow::Fill)
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
        ..settings(Workflow::KeepBand)
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
    let out = run(&m, &settings(Workflow::Continue), &prompt);
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
        &settings(Workflow::New),
        &none(),
        Some(&cancel),
        &mut |_, _| {},
    );
    assert!(matches!(r, Ok(None)));
}

#[test]
fn a_new_threshold_rederives_from_the_stored_roll() {
    let m = model();
    let mut idea = run(&m, &settings(Workflow::New), &none());
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
    let mut cur = run(&m, &settings(Workflow::New), &none());
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
        ..settings(Workflow::Fill)
    };
    let with_current = Sources {
        current: Some(&cur),
        captured: &[],
    };
    let captured = Sources {
        current: None,
        captured: &soft,
    };
    for (s, src) in [
        (fill, &with_current),
        (settings(Workflow::Continue), &captured),
    ] {
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
                    s.workflow
                );
            }
        }
    }
}

// ---- Chords, roles, variations and the model's own sampler ----

use jit_music::chords::{parse_progression, ChordTrack};
use jit_music::plugin::chords::progression;
use jit_music::plugin::generate::sampler_for;
use jit_music::plugin::params::Role;
use jit_music::roll::{Channels, Conditions};

/// A tiny random model that takes known notes and chords (onset and sustain channels), and
/// recommends a few-step sampler as a distilled model would.
fn chord_model() -> Generator {
    let cfg = JitConfig {
        in_channels: 2,
        cond_channels: 5,
        ..JitConfig::preset("tiny", 128, 128, 4).expect("preset")
    };
    let mut meta = meta(&cfg);
    meta.roll.channels = Channels::OnsetSustain;
    meta.roll.articulation = false;
    meta.roll.conditions = Conditions {
        known: true,
        chords: true,
    };
    meta.sampler.method = Method::Euler;
    meta.sampler.steps = 2;
    meta.sampler.cfg_scale = 1.0;
    meta.check_roll("test").expect("a consistent roll");
    let vm = VarMap::new();
    let net = JiT::new(&cfg, VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu)).expect("net");
    let w = ModelWeights {
        meta,
        tensors: net.named_tensors().into_iter().collect(),
        source: "in-memory".into(),
    };
    Generator::new(w, Device::Cpu).expect("build")
}

fn chords(text: &str, bars: u32) -> ChordTrack {
    progression(text, bars, (4, 4)).expect("progression")
}

/// The chords reach a model that takes them (its idea changes with them and records them);
/// a model without chord conditioning makes the same idea with or without them.
#[test]
fn chords_shape_a_chord_models_idea_and_are_recorded() {
    let m = chord_model();
    let base = GenSettings {
        bars: 4,
        threshold: 0.2,
        ..settings(Workflow::New)
    };
    let with = |text: Option<&str>| GenSettings {
        chords: text.map(|t| chords(t, 4)),
        ..base.clone()
    };
    let none = run(&m, &with(None), &none_src());
    let c = run(&m, &with(Some("C | G | Am | F")), &none_src());
    let a = run(&m, &with(Some("Am | Dm | E7 | Am")), &none_src());
    assert_ne!(c.notes, none.notes, "the chords change the idea");
    assert_ne!(c.notes, a.notes, "other chords, another idea");
    assert_eq!(
        c.chords.as_ref().map(|t| t.describe(3840)),
        Some("C | G | Am | F".to_string())
    );
    assert!(none.chords.is_none());
    // Generation always uses the whole window: 128 frames = 8 bars, the 4 bars twice.
    let plain = model();
    let p0 = run(&plain, &with(None), &none_src());
    let p1 = run(&plain, &with(Some("C | G | Am | F")), &none_src());
    assert_eq!(
        p0.notes, p1.notes,
        "a model without chord conditioning ignores them"
    );
    assert!(p1.chords.is_none(), "and the idea says it followed none");
}

fn none_src() -> Sources<'static> {
    Sources {
        current: None,
        captured: &[],
    }
}

/// A chord track on the model's grid is the plugin's ticks / 240 (4 steps a beat).
#[test]
fn chords_in_ticks_match_the_cli_progression_on_the_grid() {
    let ticks = chords("C*3 G | Am F", 2);
    let frames = parse_progression("C*3 G | Am F", 16, 4, 32).expect("parse");
    assert_eq!(ticks.spans.len(), frames.spans.len());
    for (t, f) in ticks.spans.iter().zip(&frames.spans) {
        assert_eq!(
            (t.start / 240, t.end / 240, t.chord),
            (f.start, f.end, f.chord)
        );
    }
}

/// Roles: the bass line stays below the split, the melody is one line above it over the kept
/// accompaniment, the accompaniment keeps the melody exactly.
#[test]
fn roles_write_their_band_and_keep_the_rest() {
    let m = chord_model();
    let cur = current_idea(&m);
    let src = Sources {
        current: Some(&cur),
        captured: &[],
    };
    let role = |role| GenSettings {
        role,
        split: 55,
        bars: 4,
        threshold: 0.2,
        chords: Some(chords("C | G | Am | F", 4)),
        ..settings(Workflow::New)
    };
    let bass = run(&m, &role(Role::Bass), &src);
    assert!(!bass.notes.is_empty());
    assert!(
        bass.notes.iter().all(|n| n[2] < 55),
        "bass only: {:?}",
        bass.notes
    );
    let len = 4 * 3840;
    let melody = run(&m, &role(Role::Melody), &src);
    let below: Vec<[u32; 4]> = cur
        .notes
        .iter()
        .filter(|n| n[2] < 55 && n[0] < len)
        .map(|n| [n[0], n[1].min(len), n[2], n[3]])
        .collect();
    let mut kept: Vec<[u32; 4]> = melody.notes.iter().filter(|n| n[2] < 55).copied().collect();
    kept.sort_unstable();
    let mut want = below.clone();
    want.sort_unstable();
    assert_eq!(
        kept, want,
        "the accompaniment below the split is kept exactly"
    );
    let tune: Vec<&[u32; 4]> = melody.notes.iter().filter(|n| n[2] >= 55).collect();
    for (i, a) in tune.iter().enumerate() {
        for b in &tune[i + 1..] {
            assert!(
                a[1] <= b[0] || b[1] <= a[0],
                "one note at a time: {a:?} {b:?}"
            );
        }
    }
    let mut melody_again = melody.clone();
    assert!(melody_again.rederive(0.25, Velocity::Learned));
    let tune_again: Vec<&[u32; 4]> = melody_again.notes.iter().filter(|n| n[2] >= 55).collect();
    for (i, a) in tune_again.iter().enumerate() {
        for b in &tune_again[i + 1..] {
            assert!(
                a[1] <= b[0] || b[1] <= a[0],
                "still one line after a new threshold"
            );
        }
    }
    let acc = run(&m, &role(Role::Accompaniment), &src);
    let line = jit_music::plugin::roles::top_voice(
        &cur.pattern_notes()
            .into_iter()
            .filter(|n| n.start < len)
            .map(|n| PatternNote {
                end: n.end.min(len),
                ..n
            })
            .collect::<Vec<_>>(),
    );
    let got = acc.pattern_notes();
    for n in &line {
        assert!(got.contains(n), "the melody note {n:?} is kept");
    }
}

/// Variation amount 1 is a new idea from the same noise; less starts from the current idea's
/// output; an idea without the loaded model's output cannot be varied.
#[test]
fn variations_start_from_the_current_idea() {
    let m = chord_model();
    let s = GenSettings {
        bars: 4,
        threshold: 0.2,
        ..settings(Workflow::New)
    };
    let cur = run(
        &m,
        &GenSettings {
            seed: 3,
            ..s.clone()
        },
        &none_src(),
    );
    let src = Sources {
        current: Some(&cur),
        captured: &[],
    };
    let fresh = run(&m, &s, &none_src());
    let full = run(
        &m,
        &GenSettings {
            vary: Some(1.0),
            ..s.clone()
        },
        &src,
    );
    assert_eq!(full.notes, fresh.notes);
    let half = run(
        &m,
        &GenSettings {
            vary: Some(0.5),
            ..s.clone()
        },
        &src,
    );
    assert_ne!(half.notes, fresh.notes);
    assert_eq!(half.info.vary, 0.5);
    let other = current_idea(&model());
    let r = generate(
        &m,
        &GenSettings {
            vary: Some(0.5),
            ..s
        },
        &Sources {
            current: Some(&other),
            captured: &[],
        },
        None,
        &mut |_, _| {},
    );
    assert!(r.is_err(), "another model's idea");
}

/// Steps, method and guidance default to the model's recommendation (a few-step model's own);
/// set, they override it.
#[test]
fn the_models_recommended_sampler_is_the_default() {
    let m = chord_model();
    let auto = sampler_for(m.meta(), &GenSettings::default());
    assert_eq!(
        (auto.method, auto.steps, auto.cfg_scale),
        (Method::Euler, 2, 1.0)
    );
    let set = sampler_for(
        m.meta(),
        &GenSettings {
            steps: Some(8),
            method: Some(Method::Heun),
            guidance: Some(2.5),
            ..GenSettings::default()
        },
    );
    assert_eq!(
        (set.method, set.steps, set.cfg_scale),
        (Method::Heun, 8, 2.5)
    );
    let idea = run(
        &m,
        &GenSettings {
            threshold: 0.2,
            ..GenSettings::default()
        },
        &none_src(),
    );
    assert_eq!((idea.info.method.as_str(), idea.info.steps), ("euler", 2));
}
