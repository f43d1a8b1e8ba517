//! Chords and Live mode through a real CLAP host (clack-host, `tests/clap_host`), with a tiny
//! random model that takes chords and recommends a two-step sampler (as a distilled one would),
//! saved to a file the plugin loads as the project's checkpoint:
//! * chords played on the input in bar n shape the idea that plays from the next loop, exactly
//!   the idea the same settings and chords give outside the plugin; the project saves the
//!   followed chords and the idea's chords, and a fresh instance restores both;
//! * Live mode makes a new idea every bar over the typed chords and swaps each in exactly on a
//!   bar line (every bar played is one bar of one idea), also after a parameter change; no
//!   note hangs.
//!
//! Real-time check: `cargo test --features assert-process-allocs --test plugin_live` aborts on
//! any allocation or free inside the plugin's process().
#![cfg(feature = "plugin")]

mod clap_host;

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use clack_host::events::event_types::{NoteOffEvent, NoteOnEvent, ParamValueEvent};
use clack_host::prelude::*;
use clap_host::*;
use jit_music::checkpoint::{self, CheckpointMeta, Kind, ModelWeights, RollSpec};
use jit_music::generate::Generator;
use jit_music::model::{JiT, JitConfig};
use jit_music::plugin::chords::progression;
use jit_music::plugin::generate::{generate, GenSettings, Sources};
use jit_music::roll::{Channels, Conditions, Grid};
use jit_music::sampler::Method;
use serde_json::Value;
use std::path::PathBuf;

const BAR: u64 = 96_000;

/// The tiny chord model written to `<temp>/<name>.safetensors` (one file per test: tests run
/// in parallel); its path and weights.
fn chord_model(name: &str) -> (PathBuf, ModelWeights) {
    let mut cfg = JitConfig::preset("tiny", 128, 128, 2).expect("preset");
    cfg.in_channels = 2;
    cfg.cond_channels = 5;
    let sampler = jit_music::sampler::SamplerConfig {
        method: Method::Euler,
        steps: 2,
        cfg_scale: 1.0,
        ..Default::default()
    };
    let meta = CheckpointMeta {
        format_version: checkpoint::FORMAT_VERSION,
        kind: Kind::Inference,
        name: "tiny chords".into(),
        config: cfg.clone(),
        roll: RollSpec {
            grid: Grid::Beats { steps_per_beat: 4 },
            pitch_low: 0,
            pitches: 128,
            frames: 128,
            articulation: false,
            channels: Channels::OnsetSustain,
            conditions: Conditions {
                known: true,
                chords: true,
            },
        },
        objective: Default::default(),
        sampler,
        classes: vec!["a".into(), "b".into()],
        step: 1,
        info: serde_json::json!({}),
    };
    meta.check_roll("test").expect("consistent roll");
    let vm = VarMap::new();
    let net = JiT::new(&cfg, VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu)).expect("net");
    let dir = std::env::temp_dir().join(format!("jit-plugin-live-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(format!("{name}.safetensors"));
    checkpoint::save_inference(&path, &net, &meta).expect("save");
    let w = checkpoint::load(&path, checkpoint::Weights::Ema1).expect("load back");
    (path, w)
}

fn state(session: &Value, params: Value) -> Vec<u8> {
    clap_state_with(&session.to_string(), params)
}

/// The saved session of an instance.
fn saved_session(instance: &PluginInstance<Host>) -> (Vec<u8>, Value) {
    let saved = save_state(instance);
    let json: Value = serde_json::from_slice(&saved[8..]).expect("state json");
    let session = serde_json::from_str(json["fields"]["session"].as_str().expect("session"))
        .expect("session json");
    (saved, session)
}

/// Note-ons of an idea's notes in pattern bar `bar`, as (sample in the bar, key), sorted.
fn bar_ons(idea: &Value, bar: u64) -> Vec<(u64, u16)> {
    let bt = idea["bar_ticks"].as_u64().expect("bar_ticks");
    let mut v: Vec<(u64, u16)> = idea["notes"]
        .as_array()
        .expect("notes")
        .iter()
        .map(|n| serde_json::from_value::<[u64; 4]>(n.clone()).expect("note"))
        .filter(|n| n[0] / bt == bar)
        .map(|n| ((n[0] - bar * bt) * 25, n[2] as u16))
        .collect();
    v.sort_unstable();
    v
}

/// Played note-ons per bar of the song, (sample in the bar, key), sorted.
fn ons_per_bar(log: &[(u64, bool, u16)], bars: u64) -> Vec<Vec<(u64, u16)>> {
    let mut out = vec![Vec::new(); bars as usize];
    for &(t, on, key) in log {
        if on && t / BAR < bars {
            out[(t / BAR) as usize].push((t % BAR, key));
        }
    }
    for b in &mut out {
        b.sort_unstable();
    }
    out
}

/// Every note-on gets its note-off (keys alternate on/off, nothing sounds at the end).
fn check_pairs(log: &[(u64, bool, u16)]) {
    let mut sounding = std::collections::BTreeMap::new();
    for &(t, on, key) in log {
        let s = sounding.entry(key).or_insert(false);
        assert_ne!(*s, on, "key {key} {on} twice at {t}");
        *s = on;
    }
    assert!(sounding.values().all(|on| !on), "stuck notes");
}

/// Wait (bounded) until the saved session satisfies `done`.
fn wait_for(instance: &PluginInstance<Host>, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..4000 {
        let (_, s) = saved_session(instance);
        if done(&s) {
            return s;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    panic!("the worker did not deliver in time");
}

/// A one-bar idea in A minor-free keys (what plays before the chords arrive).
fn one_bar_idea() -> Value {
    serde_json::json!({
        "id": 5, "bars": 1, "bar_ticks": 3840,
        "notes": [[0, 480, 60, 100], [480, 960, 64, 90], [1920, 2880, 67, 80]]
    })
}

/// Bar 2: A minor played in (held to beat 3). The worker follows it at once and the next loop
/// (bar 3) plays exactly the idea the plugin's generation makes with those chords, which is not
/// the one it makes without them. The project saves the followed chords and the idea's; a fresh
/// instance restores them and plays the idea at once.
#[test]
fn chords_played_in_bar_n_shape_the_next_loop_and_are_saved() {
    let (path, weights) = chord_model("follow");
    let entry = load_entry();
    let mut instance = new_instance(&entry);
    let session = serde_json::json!({
        "version": 1, "ideas": [one_bar_idea()], "current": 0,
        "checkpoint": path.display().to_string()
    });
    // Sampler left at "auto": the model's own two Euler steps without guidance.
    let params = serde_json::json!({
        "chords": {"string": "follow"},
        "capture": {"bool": true},
        "regen_every": {"i32": 8},
        "new_seed": {"bool": false},
        "seed": {"i32": 11},
        "bars": {"string": "1"},
        "threshold": {"f32": 0.2}
    });
    load_state(&instance, &state(&session, params));

    // What the plugin should play from bar 3, and what it would without the chords.
    let gen = Generator::new(weights, Device::Cpu).expect("model");
    let s = GenSettings {
        seed: 11,
        bars: 1,
        threshold: 0.2,
        chords: Some(progression("Am", 1, (4, 4)).expect("Am")),
        ..GenSettings::default()
    };
    let none = Sources {
        current: None,
        captured: &[],
    };
    let idea = |s: &GenSettings| {
        let i = generate(&gen, s, &none, None, &mut |_, _| {})
            .expect("generate")
            .expect("not cancelled");
        serde_json::to_value(&i).expect("idea json")
    };
    let with_chords = idea(&s);
    let without = idea(&GenSettings { chords: None, ..s });
    let want = bar_ons(&with_chords, 0);
    assert!(!want.is_empty());
    assert_ne!(want, bar_ons(&without, 0), "the chords shape the idea");

    let mut s = Session::start(&mut instance, 1000);
    let mut log = s.run(1000, 2 * BAR);
    let am = [45u16, 48, 52];
    let mut input = EventBuffer::new();
    for k in am {
        input.push(&NoteOnEvent::new(0, Pckn::new(0u16, 0u16, k, 0u32), 0.8));
    }
    log.extend(s.block_with_input(1000, true, &input));
    log.extend(s.run(1000, 2 * BAR + 8_000));
    // The worker follows the chord and generates while bar 2 plays.
    let during = wait_for(&instance, |s| {
        s["ideas"].as_array().is_some_and(|i| i.len() >= 2)
    });
    assert_eq!(
        during["chords"]["followed"]["slots"][2]["spans"][0]["chord"]["root"], 9,
        "A minor followed in bar 2: {}",
        during["chords"]
    );
    log.extend(s.run(1000, 2 * BAR + 72_000));
    let mut input = EventBuffer::new();
    for k in am {
        input.push(&NoteOffEvent::new(0, Pckn::new(0u16, 0u16, k, 0u32), 0.0));
    }
    log.extend(s.block_with_input(1000, true, &input));
    log.extend(s.run(1000, 6 * BAR));
    log.extend(s.block(1000, false));
    s.finish(&mut instance);

    check_pairs(&log);
    let bars = ons_per_bar(&log, 6);
    let old = bar_ons(&one_bar_idea(), 0);
    assert!(
        log.iter().all(|e| !am.contains(&e.2)) || want.iter().any(|n| am.contains(&n.1)),
        "captured input is not passed through"
    );
    assert_eq!(
        bars[..3],
        [old.clone(), old.clone(), old],
        "bars 0 to 2 as loaded"
    );
    for (b, got) in bars.iter().enumerate().skip(3) {
        assert_eq!(got, &want, "bar {b} plays the idea over A minor");
    }

    // Saved: the followed chords and the idea's chords; restored into a fresh instance.
    let (saved, session) = saved_session(&instance);
    let ideas = session["ideas"].as_array().expect("ideas");
    let last = ideas.last().expect("idea");
    assert_eq!(last["chords"]["spans"][0]["chord"]["root"], 9);
    assert_eq!(last["chords"]["spans"][0]["end"], 3840);
    assert_eq!(bar_ons(last, 0), want);
    drop(instance);
    let mut fresh = new_instance(&entry);
    load_state(&fresh, &saved);
    let (_, again) = saved_session(&fresh);
    assert_eq!(
        again["chords"], session["chords"],
        "followed chords restored"
    );
    assert_eq!(
        again["ideas"], session["ideas"],
        "ideas and their chords restored"
    );
    let mut s = Session::start(&mut fresh, 1000);
    let replay = s.run(1000, BAR);
    s.finish(&mut fresh);
    assert_eq!(
        ons_per_bar(&replay, 1)[0],
        want,
        "the restored idea plays at once"
    );
}

/// A two-bar idea, then Live mode every bar over a typed progression: every bar played is
/// exactly one bar of one idea of the history (its own bar 0 or 1 as the song's bar is even or
/// odd), new ideas take over several times, each follows "C | G", and after a parameter change
/// the ideas go on; nothing hangs.
#[test]
fn live_mode_swaps_new_ideas_in_on_bar_lines() {
    let (path, _) = chord_model("live");
    let entry = load_entry();
    let mut instance = new_instance(&entry);
    let first = serde_json::json!({
        "id": 3, "bars": 2, "bar_ticks": 3840,
        "notes": [[0, 480, 60, 100], [1920, 2880, 67, 90],
                  [3840, 4320, 62, 100], [5760, 6720, 69, 90]]
    });
    let session = serde_json::json!({
        "version": 1, "ideas": [first], "current": 0,
        "checkpoint": path.display().to_string(),
        "chords": {"text": "C | G"}
    });
    let params = serde_json::json!({
        "live": {"string": "bar"},
        "chords": {"string": "typed"},
        "bars": {"string": "2"},
        "threshold": {"f32": 0.2}
    });
    load_state(&instance, &state(&session, params));
    let split = param_id(&instance, "Role split");

    // 24 bars at least; where the worker is slow (a debug build on a busy 2-core CI machine) play
    // on, up to 120 bars, until it has delivered three new ideas, then two bars more.
    let mut bars = 24u64;
    let mut s = Session::start(&mut instance, 1000);
    let mut log = Vec::new();
    let mut delivered = false;
    while s.sample < bars * BAR {
        if s.sample % BAR == 0 && !delivered {
            let (_, now) = saved_session(&instance);
            delivered = now["ideas"].as_array().is_some_and(|a| a.len() >= 4);
            if delivered {
                bars = bars.max(s.sample / BAR + 2);
            } else if s.sample + BAR >= bars * BAR && bars < 120 {
                bars += 1;
            }
        }
        let mut input = EventBuffer::new();
        if s.sample == 10 * BAR {
            input.push(&ParamValueEvent::new(
                0,
                ClapId::new(split),
                Pckn::match_all(),
                60.0,
            ));
        }
        log.extend(s.block_with_input(1000, true, &input));
        // About 40 times real time: the worker has a few tens of milliseconds per bar.
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    log.extend(s.block(1000, false));
    s.finish(&mut instance);
    check_pairs(&log);

    let (_, session) = saved_session(&instance);
    let ideas = session["ideas"].as_array().expect("ideas");
    let played = ons_per_bar(&log, bars);
    let mut which = Vec::new();
    for (b, got) in played.iter().enumerate() {
        let matches: Vec<usize> = (0..ideas.len())
            .filter(|&i| bar_ons(&ideas[i], b as u64 % 2) == *got)
            .collect();
        assert!(
            !matches.is_empty(),
            "bar {b} is no single idea's bar {}: {got:?}",
            b % 2
        );
        which.push(matches);
    }
    eprintln!("ideas per bar: {which:?}");
    // Bars that only a new idea explains.
    let new_bars: Vec<usize> = which
        .iter()
        .enumerate()
        .filter(|(_, m)| !m.contains(&0))
        .map(|(b, _)| b)
        .collect();
    let distinct: std::collections::BTreeSet<usize> = which
        .iter()
        .filter(|m| !m.contains(&0))
        .map(|m| m[m.len() - 1])
        .collect();
    assert!(
        new_bars.len() >= 4 && distinct.len() >= 2,
        "Live mode swapped in too little: {which:?}"
    );
    for idea in &ideas[1..] {
        let spans = idea["chords"]["spans"].as_array().expect("chords");
        assert_eq!(spans.len(), 2, "C | G over two bars: {}", idea["chords"]);
        assert_eq!(spans[0]["chord"]["root"], 0);
        assert_eq!(spans[1]["chord"]["root"], 7);
    }
    assert!(
        ideas[2..].iter().any(|i| i["info"]["vary"] == 0.5),
        "Live mode varies the idea it plays"
    );
    assert_eq!(
        session["chords"]["text"], "C | G",
        "the typed progression is saved"
    );
}
