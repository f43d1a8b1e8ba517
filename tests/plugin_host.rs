//! End to end through a real CLAP host (clack-host): load the built plugin library, restore a
//! known pattern through CLAP state, activate at 48 kHz, run blocks with a moving 120 BPM
//! transport and check the notes the plugin sends.
//!
//! The library is the cdylib cargo builds next to this test (`target/<profile>/libjit_music.so`;
//! a `.clap` on Linux is that file). `JIT_MUSIC_CLAP` may point at another one, e.g. the bundle.
//!
//! Real-time check: run as
//! `cargo test --features assert-process-allocs --test plugin_host`
//! and nice-plug's `assert_process_allocs` aborts the whole test process on any allocation or
//! free inside the plugin's process() (debug builds).
#![cfg(feature = "plugin")]

use clack_host::events::event_types::TransportEvent;
use clack_host::events::spaces::CoreEventSpace;
use clack_host::events::{EventFlags, Match};
use clack_host::prelude::*;
use clack_host::utils::{BeatTime, SecondsTime};
use clap_sys::ext::state::{clap_plugin_state, CLAP_EXT_STATE};
use clap_sys::stream::{clap_istream, clap_ostream};
use std::ffi::c_void;
use std::path::PathBuf;

const SR: f64 = 48_000.0;
const BPM: f64 = 120.0;
const SAMPLES_PER_BEAT: f64 = SR * 60.0 / BPM;

struct Host;
struct Shared;

impl SharedHandler<'_> for Shared {
    fn request_restart(&self) {}
    fn request_process(&self) {}
    fn request_callback(&self) {}
}

impl HostHandlers for Host {
    type Shared<'a> = Shared;
    type MainThread<'a> = ();
    type AudioProcessor<'a> = ();
}

/// The plugin library cargo built for this test run.
fn plugin_path() -> PathBuf {
    if let Some(p) = std::env::var_os("JIT_MUSIC_CLAP") {
        return PathBuf::from(p);
    }
    let name = if cfg!(target_os = "macos") {
        "libjit_music.dylib"
    } else if cfg!(windows) {
        "jit_music.dll"
    } else {
        "libjit_music.so"
    };
    let exe = std::env::current_exe().expect("test executable path");
    let deps = exe.parent().expect("deps dir");
    let candidates = [
        deps.join(name),
        deps.parent().expect("profile dir").join(name),
    ];
    candidates
        .iter()
        .find(|p| p.exists())
        .cloned()
        .unwrap_or_else(|| panic!("plugin library not found in {candidates:?}"))
}

fn load_entry() -> PluginEntry {
    let path = plugin_path();
    // SAFETY: the library is our own plugin, built by cargo for this test.
    unsafe { PluginEntry::load(&path) }.unwrap_or_else(|e| panic!("{}: {e:?}", path.display()))
}

fn new_instance(entry: &PluginEntry) -> PluginInstance<Host> {
    let factory = entry.get_plugin_factory().expect("plugin factory");
    let desc = factory.plugin_descriptors().next().expect("one plugin");
    let id = desc.id().expect("plugin id").to_owned();
    let info = HostInfo::new(
        "jit-music test host",
        "jit-music",
        "https://example.com",
        "0.1",
    )
    .expect("host info");
    PluginInstance::<Host>::new(|_| Shared, |_| (), entry, &id, &info).expect("instance")
}

fn state_ext(instance: &PluginInstance<Host>) -> &clap_plugin_state {
    let plugin = instance.raw_instance();
    let get = plugin.get_extension.expect("get_extension");
    // SAFETY: a valid plugin pointer and a NUL-terminated id; the result is the state extension.
    let ext = unsafe { get(plugin, CLAP_EXT_STATE.as_ptr()) } as *const clap_plugin_state;
    assert!(!ext.is_null(), "plugin has no state extension");
    // SAFETY: non-null, lives as long as the plugin.
    unsafe { &*ext }
}

unsafe extern "C" fn write_stream(s: *const clap_ostream, buf: *const c_void, n: u64) -> i64 {
    // SAFETY: ctx is the Vec we passed in; buf holds n bytes.
    let out = unsafe { &mut *((*s).ctx as *mut Vec<u8>) };
    out.extend_from_slice(unsafe { std::slice::from_raw_parts(buf as *const u8, n as usize) });
    n as i64
}

struct Reader {
    data: Vec<u8>,
    pos: usize,
}

unsafe extern "C" fn read_stream(s: *const clap_istream, buf: *mut c_void, n: u64) -> i64 {
    // SAFETY: ctx is the Reader we passed in; buf has room for n bytes.
    let r = unsafe { &mut *((*s).ctx as *mut Reader) };
    let k = (n as usize).min(r.data.len() - r.pos);
    unsafe {
        std::ptr::copy_nonoverlapping(r.data[r.pos..].as_ptr(), buf as *mut u8, k);
    }
    r.pos += k;
    k as i64
}

fn save_state(instance: &PluginInstance<Host>) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::new();
    let stream = clap_ostream {
        ctx: &mut out as *mut Vec<u8> as *mut c_void,
        write: Some(write_stream),
    };
    let save = state_ext(instance).save.expect("state save");
    // SAFETY: valid plugin and stream for the duration of the call (main thread).
    assert!(
        unsafe { save(instance.raw_instance(), &stream) },
        "state save failed"
    );
    out
}

fn load_state(instance: &PluginInstance<Host>, bytes: &[u8]) {
    let mut r = Reader {
        data: bytes.to_vec(),
        pos: 0,
    };
    let stream = clap_istream {
        ctx: &mut r as *mut Reader as *mut c_void,
        read: Some(read_stream),
    };
    let load = state_ext(instance).load.expect("state load");
    // SAFETY: valid plugin and stream for the duration of the call (main thread).
    assert!(
        unsafe { load(instance.raw_instance(), &stream) },
        "state load failed"
    );
}

/// nice-plug's CLAP state: an 8-byte length, then JSON with the persisted fields as strings.
fn clap_state(session_json: &str) -> Vec<u8> {
    let state = serde_json::json!({
        "version": "0.1.0",
        "params": {},
        "fields": { "session": session_json },
    });
    let json = serde_json::to_vec(&state).expect("json");
    let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
    bytes.extend(json);
    bytes
}

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

fn transport(start_sample: u64, playing: bool) -> TransportEvent {
    let beats = start_sample as f64 / SAMPLES_PER_BEAT;
    let bar = (beats / 4.0).floor();
    let mut flags = TransportFlags::HAS_TEMPO
        | TransportFlags::HAS_BEATS_TIMELINE
        | TransportFlags::HAS_SECONDS_TIMELINE
        | TransportFlags::HAS_TIME_SIGNATURE;
    if playing {
        flags |= TransportFlags::IS_PLAYING;
    }
    TransportEvent {
        header: EventHeader::new_core(0, EventFlags::empty()),
        flags,
        song_pos_beats: BeatTime::from_float(beats),
        song_pos_seconds: SecondsTime::from_float(start_sample as f64 / SR),
        tempo: BPM,
        tempo_inc: 0.0,
        loop_start_beats: BeatTime::from_float(0.0),
        loop_end_beats: BeatTime::from_float(0.0),
        loop_start_seconds: SecondsTime::from_float(0.0),
        loop_end_seconds: SecondsTime::from_float(0.0),
        bar_start: BeatTime::from_float(bar * 4.0),
        bar_number: bar as i32,
        time_signature_numerator: 4,
        time_signature_denominator: 4,
    }
}

use clack_host::events::event_types::TransportFlags;

/// Runs the plugin: `blocks` blocks of `block` samples while playing, then `stopped_blocks`
/// with the transport stopped. Returns (absolute sample, on, key) of every note event.
struct Session {
    processor: Option<StartedPluginAudioProcessor<Host>>,
    out: EventBuffer,
    sample: u64,
}

impl Session {
    fn start(instance: &mut PluginInstance<Host>, max_block: u32) -> Self {
        let cfg = PluginAudioConfiguration {
            sample_rate: SR,
            min_frames_count: 1,
            max_frames_count: max_block,
        };
        let stopped = instance.activate(|_, _| (), cfg).expect("activate");
        let processor = stopped.start_processing().expect("start processing");
        Self {
            processor: Some(processor),
            out: EventBuffer::with_capacity(8192),
            sample: 0,
        }
    }

    fn block(&mut self, n: u32, playing: bool) -> Vec<(u64, bool, u16)> {
        self.block_with_input(n, playing, &EventBuffer::new())
    }

    fn block_with_input(
        &mut self,
        n: u32,
        playing: bool,
        in_events: &EventBuffer,
    ) -> Vec<(u64, bool, u16)> {
        let t = transport(self.sample, playing);
        // No audio ports: the frame count comes from these (empty) buffers.
        // SAFETY: no buffers to point at.
        let ins = unsafe { InputAudioBuffers::from_raw_buffers(&[], n) };
        let mut outs = unsafe { OutputAudioBuffers::from_raw_buffers(&mut [], n) };
        let input = InputEvents::from_buffer(in_events);
        self.out.clear();
        let mut output = OutputEvents::from_buffer(&mut self.out);
        self.processor
            .as_mut()
            .expect("processing")
            .process(
                &ins,
                &mut outs,
                &input,
                &mut output,
                Some(self.sample),
                Some(&t),
            )
            .expect("process");
        let mut v = Vec::new();
        let mut last = 0;
        for ev in self.out.iter() {
            let time = ev.header().time();
            assert!(time < n, "event at {time} outside a block of {n}");
            assert!(time >= last, "events out of order");
            last = time;
            let key = |k: Match<u16>| k.into_specific().expect("a specific key");
            match ev.as_core_event() {
                Some(CoreEventSpace::NoteOn(e)) => {
                    v.push((self.sample + u64::from(time), true, key(e.pckn().key)))
                }
                Some(CoreEventSpace::NoteOff(e)) => {
                    v.push((self.sample + u64::from(time), false, key(e.pckn().key)))
                }
                _ => {}
            }
        }
        self.sample += u64::from(n);
        v
    }

    fn run(&mut self, block: u32, samples: u64) -> Vec<(u64, bool, u16)> {
        let mut v = Vec::new();
        while self.sample < samples {
            let n = (samples - self.sample).min(u64::from(block)) as u32;
            v.extend(self.block(n, true));
        }
        v
    }

    fn finish(mut self, instance: &mut PluginInstance<Host>) {
        if let Some(p) = self.processor.take() {
            instance.deactivate(p.stop_processing());
        }
    }
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
