//! End to end through a real CLAP host (clack-host, `tests/clap_host`): load the built plugin
//! library, restore a known pattern through CLAP state, activate at 48 kHz with stereo audio, run
//! blocks with a moving 120 BPM transport and check the notes the plugin sends: in the dialect the
//! host takes (CLAP or MIDI), with refused note-offs sent again, and with every note-on released
//! whatever the host does mid-note (skipped block, seeks, loop wrap, tempo change, stop, bypass).
//!
//! The library is the cdylib cargo builds next to this test (`target/<profile>/libjit_music.so`;
//! a `.clap` on Linux is that file). `JIT_MUSIC_CLAP` may point at another one, e.g. the bundle.
//!
//! Real-time check: run as
//! `cargo test --features assert-process-allocs --test plugin_host`
//! and nice-plug's `assert_process_allocs` aborts the whole test process on any allocation or
//! free inside the plugin's process() (debug builds).
#![cfg(feature = "plugin")]

mod clap_host;

use clack_host::prelude::*;
use clap_host::*;

/// A one-bar 4/4 idea (PPQ 960): C4 on beat 1 (an eighth), E4 on the "and", G4 on beat 3.
const SESSION: &str = r#"{
    "version": 1,
    "ideas": [{
        "id": 5,
        "bars": 1,
        "bar_ticks": 3840,
        "notes": [[0, 480, 60, 100], [480, 960, 64, 90], [1920, 2880, 67, 80]]
    }],
    "current": 0
}"#;

/// The same idea in samples at 48 kHz and 120 BPM (25 samples per tick), for `cycles` bars.
fn expected(cycles: u64) -> Vec<(u64, bool, u16)> {
    let mut v = Vec::new();
    for c in 0..cycles {
        let base = c * 96_000;
        v.extend([
            (base, true, 60),
            (base + 12_000, false, 60),
            (base + 12_000, true, 64),
            (base + 24_000, false, 64),
            (base + 48_000, true, 67),
            (base + 72_000, false, 67),
        ]);
    }
    v
}

fn report_alloc_check() {
    if cfg!(feature = "assert-process-allocs") {
        eprintln!("process() runs under nice-plug's assert_process_allocs");
    } else {
        eprintln!("process() allocation check off: run with --features assert-process-allocs");
    }
}

/// Pins the exact timing: with the transport at 120 BPM and 48 kHz, each note of the known
/// pattern arrives at tick x 25 samples, for block sizes 32, 512 and 1000 (offs before ons on
/// shared samples, nothing doubled or lost at block boundaries, three loops).
#[test]
fn notes_arrive_at_exact_samples() {
    report_alloc_check();
    let entry = load_entry();
    for block in [32u32, 512, 1000] {
        let mut instance = new_instance(&entry);
        load_state(&instance, &clap_state(SESSION));
        let mut s = Session::start(&mut instance, 1024);
        let got = s.run(block, 3 * 96_000);
        assert_eq!(got, expected(3), "block size {block}");
        s.finish(&mut instance);
    }
}

/// Stopping the transport mid-note releases it at once, and nothing more plays.
#[test]
fn stopping_releases_all_notes() {
    let entry = load_entry();
    let mut instance = new_instance(&entry);
    load_state(&instance, &clap_state(SESSION));
    let mut s = Session::start(&mut instance, 512);
    // G4 sounds from 48000 to 72000: stop at 60000.
    let before = s.run(500, 60_000);
    assert_eq!(before.last(), Some(&(48_000, true, 67)));
    let stop = s.block(500, false);
    assert_eq!(stop, vec![(60_000, false, 67)]);
    for _ in 0..200 {
        assert!(s.block(500, false).is_empty(), "events while stopped");
    }
    s.finish(&mut instance);
}

/// Saving state and loading it into a fresh instance restores the exact pattern (no model, no
/// regeneration), and the saved session keeps the idea.
#[test]
fn state_round_trips_into_a_fresh_instance() {
    let entry = load_entry();
    let first = new_instance(&entry);
    load_state(&first, &clap_state(SESSION));
    let saved = save_state(&first);
    drop(first);
    let json: serde_json::Value = serde_json::from_slice(&saved[8..]).expect("state json");
    let session: serde_json::Value =
        serde_json::from_str(json["fields"]["session"].as_str().expect("session field"))
            .expect("session json");
    assert_eq!(
        session["ideas"][0]["notes"][2],
        serde_json::json!([1920, 2880, 67, 80])
    );

    let mut second = new_instance(&entry);
    load_state(&second, &saved);
    let mut s = Session::start(&mut second, 512);
    assert_eq!(s.run(512, 2 * 96_000), expected(2));
    s.finish(&mut second);
}

/// Incoming notes pass through, merged in time order with the pattern's.
#[test]
fn input_notes_pass_through_in_time_order() {
    use clack_host::events::event_types::{NoteOffEvent, NoteOnEvent};
    use clack_host::events::Pckn;
    let entry = load_entry();
    let mut instance = new_instance(&entry);
    load_state(&instance, &clap_state(SESSION));
    let mut s = Session::start(&mut instance, 512);
    let _ = s.run(400, 11_800);
    let mut input = EventBuffer::new();
    input.push(&NoteOnEvent::new(
        100,
        Pckn::new(0u16, 0u16, 90u16, 0u32),
        0.8,
    ));
    input.push(&NoteOffEvent::new(
        300,
        Pckn::new(0u16, 0u16, 90u16, 0u32),
        0.0,
    ));
    let got = s.block_with_input(512, true, &input);
    assert_eq!(
        got,
        vec![
            (11_900, true, 90),
            (12_000, false, 60),
            (12_000, true, 64),
            (12_100, false, 90)
        ]
    );
    s.finish(&mut instance);
}

/// Deactivating mid-note and activating again releases the note on the first block.
#[test]
fn reactivation_releases_what_sounded() {
    let entry = load_entry();
    let mut instance = new_instance(&entry);
    load_state(&instance, &clap_state(SESSION));
    let mut s = Session::start(&mut instance, 512);
    let _ = s.run(512, 50_000); // G4 is on
    s.finish(&mut instance);
    let mut s = Session::start(&mut instance, 512);
    let first = s.block(512, false);
    assert_eq!(first, vec![(0, false, 67)]);
    s.finish(&mut instance);
}

/// The whole loop through the real plugin and its worker thread: 'regenerate every 1 loop' asks
/// the worker (embedded default model) for a new idea after the first bar; it arrives through
/// the triple buffer and takes over on a bar line; the project then saves both ideas, and a
/// fresh instance reopens on the new one and plays it without regenerating.
#[test]
fn regenerate_every_loop_hands_a_new_idea_over_on_a_bar_line() {
    let entry = load_entry();
    let mut instance = new_instance(&entry);
    let state = serde_json::json!({
        "version": "0.1.0",
        "params": {
            "regen_every": {"i32": 1},
            "steps": {"i32": 4},
            "method": {"string": "euler"},
            "new_seed": {"bool": false},
            "seed": {"i32": 11},
            "bars": {"string": "1"},
            // Low enough that a 4-step, 1-bar idea is never empty (an empty bar has no events
            // to tell the new idea from the old one).
            "threshold": {"f32": 0.2}
        },
        "fields": { "session": SESSION },
    });
    let json = serde_json::to_vec(&state).expect("json");
    let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
    bytes.extend(json);
    load_state(&instance, &bytes);

    let mut s = Session::start(&mut instance, 1000);
    let old_ons: Vec<(u64, u16)> = expected(1)
        .iter()
        .filter(|e| e.1)
        .map(|e| (e.0, e.2))
        .collect();
    // Note-ons per bar (96000 samples), in bar-relative samples.
    let mut bars: Vec<Vec<(u64, u16)>> = Vec::new();
    // Give the worker up to a few hundred bars (it needs the model loaded and one generation);
    // stop one bar after the first bar that differs.
    for _ in 0..30_000 {
        for (t, on, key) in s.block(1000, true) {
            let b = (t / 96_000) as usize;
            bars.resize(bars.len().max(b + 1), Vec::new());
            if on {
                bars[b].push((t % 96_000, key));
            }
        }
        let done = s.sample / 96_000;
        if let Some(first) = bars.iter().position(|b| *b != old_ons) {
            if done as usize > first + 1 {
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let first = bars
        .iter()
        .position(|b| *b != old_ons)
        .expect("no new idea arrived");
    assert!(first >= 1, "the first bar plays the loaded idea");
    s.finish(&mut instance);

    let saved = save_state(&instance);
    let json: serde_json::Value = serde_json::from_slice(&saved[8..]).expect("state json");
    let session: serde_json::Value =
        serde_json::from_str(json["fields"]["session"].as_str().expect("session")).expect("json");
    let ideas = session["ideas"].as_array().expect("ideas");
    assert!(ideas.len() >= 2, "the new idea is in the history");
    assert_eq!(session["current"].as_u64(), Some(ideas.len() as u64 - 1));
    assert_eq!(ideas[1]["info"]["seed"], 11);
    // The first changed bar is exactly the second idea, from its bar line on.
    let ons = |idea: &serde_json::Value| {
        let mut v: Vec<(u64, u16)> = idea["notes"]
            .as_array()
            .expect("notes")
            .iter()
            .map(|n| {
                let n: Vec<u64> = serde_json::from_value(n.clone()).expect("note");
                (n[0] * 25, n[2] as u16)
            })
            .collect();
        v.sort();
        v
    };
    let mut changed = bars[first].clone();
    changed.sort();
    assert_eq!(
        changed,
        ons(&ideas[1]),
        "bar {first} plays the new idea exactly"
    );
    drop(instance);

    // Reopen: the new idea plays at once, exactly as saved.
    let current = ideas.last().expect("current idea");
    let mut want: Vec<(u64, bool, u16)> = Vec::new();
    for n in current["notes"].as_array().expect("notes") {
        let n: Vec<u64> = serde_json::from_value(n.clone()).expect("note");
        want.push((n[0] * 25, true, n[2] as u16));
        want.push((n[1] * 25, false, n[2] as u16));
    }
    let mut fresh = new_instance(&entry);
    load_state(&fresh, &saved);
    let mut s = Session::start(&mut fresh, 1000);
    let mut got = s.run(1000, 96_000 - 1);
    got.retain(|e| e.0 < 96_000 - 1);
    want.retain(|e| e.0 < 96_000 - 1);
    let (mut got_ons, mut want_ons): (Vec<_>, Vec<_>) = (
        got.iter().filter(|e| e.1).collect(),
        want.iter().filter(|e| e.1).collect(),
    );
    got_ons.sort();
    want_ons.sort();
    assert_eq!(got_ons, want_ons);
    s.finish(&mut fresh);
}

// ---- Dialects: CLAP notes where the host takes them, MIDI where it reads only MIDI ----

fn run_with(takes: Takes, midi_host: bool) -> (Vec<Note>, usize) {
    let entry = load_entry();
    let mut instance = instance_with(&entry, midi_host);
    load_state(&instance, &clap_state(SESSION));
    let mut s = Session::start(&mut instance, 512);
    s.sink.takes = takes;
    let mut got = Vec::new();
    while s.sample < 3 * 96_000 {
        let start = s.sample;
        let p = Play::at(start as f64 / SAMPLES_PER_BEAT);
        for (t, on, key, midi) in s.block_at(500, p, &EventBuffer::new()) {
            got.push(((start + u64::from(t)) as u32, on, key, midi));
        }
    }
    let refused = s.sink.refused;
    s.finish(&mut instance);
    (got, refused)
}

fn as_notes(v: &[Note]) -> Vec<(u64, bool, u16)> {
    v.iter()
        .map(|&(t, on, k, _)| (u64::from(t), on, k))
        .collect()
}

/// A host that reads only MIDI from a plugin (Carla 2.6's CLAP host refuses CLAP note events):
/// the first refused note goes out again as MIDI, and every later note is MIDI from the start,
/// all on their exact samples.
#[test]
fn midi_only_host_gets_midi_notes() {
    let (got, refused) = run_with(Takes::MidiOnly, false);
    assert_eq!(as_notes(&got), expected(3));
    assert!(got.iter().all(|n| n.3), "all MIDI: {got:?}");
    assert_eq!(refused, 1, "one refusal, then MIDI for good");
}

/// A host that says through CLAP's note-ports extension that it reads MIDI only gets MIDI
/// without a refusal.
#[test]
fn host_naming_the_midi_dialect_gets_midi() {
    let (got, refused) = run_with(Takes::All, true);
    assert_eq!(as_notes(&got), expected(3));
    assert!(got.iter().all(|n| n.3), "all MIDI: {got:?}");
    assert_eq!(refused, 0);
}

/// Hosts that take CLAP note events keep getting them.
#[test]
fn clap_hosts_keep_clap_note_events() {
    let (got, _) = run_with(Takes::All, false);
    assert_eq!(as_notes(&got), expected(3));
    assert!(got.iter().all(|n| !n.3), "all CLAP: {got:?}");
}

/// A full queue for one block (C4's note-off and E4's note-on at 12000): the note-off goes out
/// on the next block's first sample, E4 never sounded so gets no note-off, and the rest plays.
#[test]
fn refused_note_off_goes_out_on_the_next_block() {
    let entry = load_entry();
    let mut instance = new_instance(&entry);
    load_state(&instance, &clap_state(SESSION));
    let mut s = Session::start(&mut instance, 500);
    let mut got = s.run(500, 12_000);
    s.sink.takes = Takes::Nothing;
    assert!(s.block(500, true).is_empty());
    s.sink.takes = Takes::All;
    got.extend(s.run(500, 96_000));
    got.extend(s.block(500, false));
    assert_eq!(
        got,
        vec![
            (0, true, 60),
            (12_500, false, 60),
            (48_000, true, 67),
            (72_000, false, 67),
        ]
    );
    s.finish(&mut instance);
}

// ---- Audio layout ----

/// Stereo audio goes through untouched, and CLAP hosts can pick the MIDI-only layout.
#[test]
fn stereo_audio_passes_through_and_midi_only_is_offered() {
    use clap_sys::ext::audio_ports_config::{
        clap_audio_ports_config, clap_plugin_audio_ports_config, CLAP_EXT_AUDIO_PORTS_CONFIG,
    };
    let entry = load_entry();
    let mut instance = new_instance(&entry);
    let cfg: clap_plugin_audio_ports_config = ext(&instance, CLAP_EXT_AUDIO_PORTS_CONFIG);
    let plugin = instance.raw_instance();
    // SAFETY: main-thread calls with valid pointers; `c` is written by the plugin.
    let count = unsafe { cfg.count.expect("count")(plugin) };
    let mut layouts = Vec::new();
    for i in 0..count {
        let mut c: clap_audio_ports_config = unsafe { std::mem::zeroed() };
        assert!(unsafe { cfg.get.expect("get")(plugin, i, &mut c) });
        let name = unsafe { std::ffi::CStr::from_ptr(c.name.as_ptr()) };
        layouts.push((
            name.to_string_lossy().into_owned(),
            c.main_input_channel_count,
            c.main_output_channel_count,
        ));
    }
    assert_eq!(
        layouts,
        vec![
            ("Stereo pass-through".to_string(), 2, 2),
            ("MIDI only".to_string(), 0, 0)
        ]
    );

    load_state(&instance, &clap_state(SESSION));
    let mut s = Session::start(&mut instance, 512);
    for block in 0..4u32 {
        for (c, ch) in s.audio_in.iter_mut().enumerate() {
            for (i, x) in ch.iter_mut().enumerate() {
                *x = ((block * 512 + i as u32) as f32 * 0.01 + c as f32).sin();
            }
        }
        let notes = s.block(512, true);
        assert_eq!(notes.is_empty(), block > 0, "notes play with audio too");
        assert_eq!(s.audio_out, s.audio_in, "block {block}: audio untouched");
    }
    s.finish(&mut instance);
}

// ---- Hanging notes: every note-on gets its note-off, whatever the host does ----

/// The plugin under a scripted host: checks each key's on/off alternate, logs absolute samples.
struct Tape {
    s: Session,
    sounding: std::collections::BTreeMap<u16, bool>,
    log: Vec<(u64, bool, u16)>,
    /// Samples processed (the plugin's view; the host's beats are passed explicitly).
    done: u64,
}

impl Tape {
    fn new(instance: &mut PluginInstance<Host>) -> Self {
        load_state(instance, &clap_state(SESSION));
        Self {
            s: Session::start(instance, 1024),
            sounding: Default::default(),
            log: Vec::new(),
            done: 0,
        }
    }

    fn play_input(&mut self, n: u32, p: Play, input: &EventBuffer) {
        for (t, on, key, _) in self.s.block_at(n, p, input) {
            let s = self.sounding.entry(key).or_default();
            assert_ne!(
                *s,
                on,
                "key {key} {} twice at {}",
                on,
                self.done + u64::from(t)
            );
            *s = on;
            self.log.push((self.done + u64::from(t), on, key));
        }
        self.done += u64::from(n);
    }

    fn play(&mut self, n: u32, p: Play) {
        self.play_input(n, p, &EventBuffer::new());
    }

    /// Blocks of `n` for `samples` from beat `beats` at `bpm`; the beat reached.
    fn run(&mut self, mut beats: f64, bpm: f64, samples: u64, n: u32) -> f64 {
        let end = self.done + samples;
        while self.done < end {
            let k = (end - self.done).min(u64::from(n)) as u32;
            self.play(
                k,
                Play {
                    bpm,
                    ..Play::at(beats)
                },
            );
            beats += f64::from(k) * bpm / 60.0 / SR;
        }
        beats
    }

    fn at(&self, sample: u64) -> Vec<(bool, u16)> {
        self.log
            .iter()
            .filter(|e| e.0 == sample)
            .map(|e| (e.1, e.2))
            .collect()
    }

    /// Stop the transport and check that every note-on got its note-off.
    fn stop_and_check(mut self, instance: &mut PluginInstance<Host>) {
        let stop = Play {
            playing: false,
            ..Play::at(0.0)
        };
        self.play(256, stop);
        assert!(
            self.sounding.values().all(|on| !on),
            "stuck notes: {:?}",
            self.log
        );
        let ons = self.log.iter().filter(|e| e.1).count();
        assert_eq!(ons * 2, self.log.len(), "on/off pairs: {:?}", self.log);
        self.s.finish(instance);
    }
}

fn tape_test(script: impl FnOnce(&mut Tape)) {
    let entry = load_entry();
    let mut instance = new_instance(&entry);
    let mut tape = Tape::new(&mut instance);
    script(&mut tape);
    tape.stop_and_check(&mut instance);
}

/// The block right after the note-ons never reaches the plugin (the host position moves on by
/// two blocks): C4 is released on the next block's first sample.
#[test]
fn host_skips_a_block_after_note_ons() {
    tape_test(|t| {
        t.play(512, Play::at(0.0));
        t.run(1024.0 / SAMPLES_PER_BEAT, BPM, 48_000, 512);
        assert_eq!(t.at(512), vec![(false, 60)]);
        assert_eq!(
            t.at(12_000 - 512),
            vec![(true, 64)],
            "E4 on its beat: {:?}",
            t.log
        );
    });
}

/// Seek back to beat 0.5 while G4 sounds (beat 2.5): G4 is released at once and E4, which starts
/// exactly there, starts after the release.
#[test]
fn host_jumps_backwards_mid_note() {
    tape_test(|t| {
        t.run(0.0, BPM, 60_000, 1000);
        t.run(0.5, BPM, 20_000, 1000);
        assert_eq!(t.at(60_000), vec![(false, 67), (true, 64)]);
        assert_eq!(t.at(72_000), vec![(false, 64)]);
    });
}

/// Seek forward from beat 2.5 (G4 on) to beat 7.5: G4 is released, the next bar comes on time.
#[test]
fn host_jumps_forwards_mid_note() {
    tape_test(|t| {
        t.run(0.0, BPM, 60_000, 1000);
        t.run(7.5, BPM, 20_000, 1000);
        assert_eq!(t.at(60_000), vec![(false, 67)]);
        assert_eq!(t.at(72_000), vec![(true, 60)], "bar 3 on its bar line");
    });
}

/// A loop of beats [0.5, 2.5) wraps while G4 (beats 2 to 3) sounds: released at the loop end,
/// E4 (from beat 0.5) again on the same sample, every cycle.
#[test]
fn host_loop_wraps_mid_note() {
    tape_test(|t| {
        let mut beats = 0.5;
        for _ in 0..200 {
            t.play(
                700,
                Play {
                    looped: Some((0.5, 2.5)),
                    ..Play::at(beats)
                },
            );
            beats += 700.0 / SAMPLES_PER_BEAT;
            if beats >= 2.5 {
                beats -= 2.0;
            }
        }
        assert_eq!(t.at(0), vec![(true, 64)]);
        for cycle in 1..3u64 {
            let wrap = cycle * 48_000;
            assert_eq!(
                t.at(wrap),
                vec![(false, 67), (true, 64)],
                "cycle {cycle}: {:?}",
                t.log
            );
        }
    });
}

/// 120 -> 60 BPM at beat 2.5 while G4 (beats 2 to 3) sounds: its note-off and the next bar
/// come at the new tempo.
#[test]
fn host_changes_tempo_mid_note() {
    tape_test(|t| {
        let beats = t.run(0.0, BPM, 60_000, 1000);
        t.run(beats, 60.0, 80_000, 1000);
        assert_eq!(t.at(60_000 + 24_000), vec![(false, 67)]);
        assert_eq!(t.at(60_000 + 72_000), vec![(true, 60)]);
    });
}

/// The host's bypass (a parameter event mid-block) releases what sounds at once and keeps the
/// plugin silent; un-bypassing plays on.
#[test]
fn host_bypasses_mid_note() {
    let entry = load_entry();
    let mut instance = new_instance(&entry);
    let bypass = param_id(&instance, "Bypass");
    let mut t = Tape::new(&mut instance);
    let param = |v: f64| {
        let mut e = EventBuffer::new();
        e.push(&clack_host::events::event_types::ParamValueEvent::new(
            0,
            ClapId::new(bypass),
            Pckn::match_all(),
            v,
        ));
        e
    };
    let beats = t.run(0.0, BPM, 60_000, 1000);
    t.play_input(1000, Play::at(beats), &param(1.0));
    assert_eq!(t.at(60_000), vec![(false, 67)]);
    let beats = t.run(beats + 1000.0 / SAMPLES_PER_BEAT, BPM, 40_000, 1000);
    assert_eq!(t.log.len(), 6, "silent while bypassed: {:?}", t.log);
    t.play_input(1000, Play::at(beats), &param(0.0));
    t.run(beats + 1000.0 / SAMPLES_PER_BEAT, BPM, 60_000, 1000);
    assert_eq!(
        t.at(108_000),
        vec![(true, 64)],
        "bar 2's E4 on its beat: {:?}",
        t.log
    );
    t.stop_and_check(&mut instance);
}
