//! A small CLAP host (clack-host) for the plugin tests: load the built plugin, restore a state,
//! run blocks with a transport and stereo audio, and read back the notes, in whichever dialect
//! the plugin sent them. Output sinks can refuse events the way real hosts do.
#![allow(dead_code)]

use clack_host::events::event_types::{TransportEvent, TransportFlags};
use clack_host::events::io::{OutputEventBuffer, TryPushError};
use clack_host::events::spaces::CoreEventSpace;
use clack_host::events::{EventFlags, Match, UnknownEvent};
use clack_host::extensions::{
    Extension, ExtensionImplementation, HostExtensionSide, RawExtension, RawExtensionImplementation,
};
use clack_host::prelude::*;
use clack_host::utils::{BeatTime, SecondsTime};
use clap_sys::ext::note_ports::{
    clap_host_note_ports, CLAP_EXT_NOTE_PORTS, CLAP_NOTE_DIALECT_MIDI,
};
use clap_sys::ext::params::{clap_param_info, clap_plugin_params, CLAP_EXT_PARAMS};
use clap_sys::ext::state::{clap_plugin_state, CLAP_EXT_STATE};
use clap_sys::host::clap_host;
use clap_sys::stream::{clap_istream, clap_ostream};
use std::ffi::{c_void, CStr};
use std::path::PathBuf;

pub const SR: f64 = 48_000.0;
pub const BPM: f64 = 120.0;
pub const SAMPLES_PER_BEAT: f64 = SR * 60.0 / BPM;

pub struct Host;

/// `midi_only`: the host offers CLAP's note-ports extension and says it reads only MIDI.
pub struct Shared {
    pub midi_only: bool,
}

impl SharedHandler<'_> for Shared {
    fn request_restart(&self) {}
    fn request_process(&self) {}
    fn request_callback(&self) {}
}

impl HostHandlers for Host {
    type Shared<'a> = Shared;
    type MainThread<'a> = ();
    type AudioProcessor<'a> = ();

    fn declare_extensions(builder: &mut HostExtensions<Self>, shared: &Self::Shared<'_>) {
        if shared.midi_only {
            builder.register::<HostNotePorts>();
        }
    }
}

/// The host side of CLAP's note-ports extension: "I read MIDI only".
#[derive(Copy, Clone)]
struct HostNotePorts;

// SAFETY: the identifier is CLAP's note-ports extension; the implementation is
// `clap_host_note_ports`.
unsafe impl Extension for HostNotePorts {
    const IDENTIFIERS: &'static [&'static CStr] = &[CLAP_EXT_NOTE_PORTS];
    type ExtensionSide = HostExtensionSide;
    unsafe fn from_raw(_raw: RawExtension<HostExtensionSide>) -> Self {
        HostNotePorts
    }
}

unsafe extern "C" fn supported_dialects(_h: *const clap_host) -> u32 {
    CLAP_NOTE_DIALECT_MIDI
}
unsafe extern "C" fn rescan(_h: *const clap_host, _flags: u32) {}

static HOST_NOTE_PORTS: clap_host_note_ports = clap_host_note_ports {
    supported_dialects: Some(supported_dialects),
    rescan: Some(rescan),
};

// SAFETY: `HOST_NOTE_PORTS` is a `clap_host_note_ports`, as the identifier promises.
unsafe impl<H: HostHandlers> ExtensionImplementation<H> for HostNotePorts {
    const IMPLEMENTATION: RawExtensionImplementation =
        RawExtensionImplementation::new(&HOST_NOTE_PORTS);
}

/// The plugin library cargo built for this test run (`JIT_MUSIC_CLAP` may name another).
pub fn plugin_path() -> PathBuf {
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

pub fn load_entry() -> PluginEntry {
    let path = plugin_path();
    // SAFETY: the library is our own plugin, built by cargo for this test.
    unsafe { PluginEntry::load(&path) }.unwrap_or_else(|e| panic!("{}: {e:?}", path.display()))
}

pub fn new_instance(entry: &PluginEntry) -> PluginInstance<Host> {
    instance_with(entry, false)
}

pub fn instance_with(entry: &PluginEntry, midi_only: bool) -> PluginInstance<Host> {
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
    PluginInstance::<Host>::new(|_| Shared { midi_only }, |_| (), entry, &id, &info)
        .expect("instance")
}

/// A copy of a plugin extension's function table.
pub fn ext<T: Copy>(instance: &PluginInstance<Host>, id: &CStr) -> T {
    let plugin = instance.raw_instance();
    let get = plugin.get_extension.expect("get_extension");
    // SAFETY: valid plugin and id; the pointer is the extension named by `id`.
    let p = unsafe { get(plugin, id.as_ptr()) } as *const T;
    assert!(!p.is_null(), "missing extension {id:?}");
    // SAFETY: non-null and lives as long as the plugin.
    unsafe { *p }
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

pub fn save_state(instance: &PluginInstance<Host>) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::new();
    let stream = clap_ostream {
        ctx: &mut out as *mut Vec<u8> as *mut c_void,
        write: Some(write_stream),
    };
    let st: clap_plugin_state = ext(instance, CLAP_EXT_STATE);
    // SAFETY: valid plugin and stream for the duration of the call (main thread).
    assert!(
        unsafe { st.save.expect("state save")(instance.raw_instance(), &stream) },
        "state save failed"
    );
    out
}

pub fn load_state(instance: &PluginInstance<Host>, bytes: &[u8]) {
    let mut r = Reader {
        data: bytes.to_vec(),
        pos: 0,
    };
    let stream = clap_istream {
        ctx: &mut r as *mut Reader as *mut c_void,
        read: Some(read_stream),
    };
    let st: clap_plugin_state = ext(instance, CLAP_EXT_STATE);
    // SAFETY: valid plugin and stream for the duration of the call (main thread).
    assert!(
        unsafe { st.load.expect("state load")(instance.raw_instance(), &stream) },
        "state load failed"
    );
}

/// nice-plug's CLAP state: an 8-byte length, then JSON with the persisted fields as strings.
pub fn clap_state(session_json: &str) -> Vec<u8> {
    clap_state_with(session_json, serde_json::json!({}))
}

pub fn clap_state_with(session_json: &str, params: serde_json::Value) -> Vec<u8> {
    let state = serde_json::json!({
        "version": "0.1.0",
        "params": params,
        "fields": { "session": session_json },
    });
    let json = serde_json::to_vec(&state).expect("json");
    let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
    bytes.extend(json);
    bytes
}

/// The CLAP id of the parameter named `name`.
pub fn param_id(instance: &PluginInstance<Host>, name: &str) -> u32 {
    let params: clap_plugin_params = ext(instance, CLAP_EXT_PARAMS);
    let plugin = instance.raw_instance();
    // SAFETY: params calls on the main thread with valid pointers.
    let count = unsafe { params.count.expect("count")(plugin) };
    for i in 0..count {
        // SAFETY: as above; `info` is written by the plugin.
        let mut info: clap_param_info = unsafe { std::mem::zeroed() };
        assert!(unsafe { params.get_info.expect("get_info")(plugin, i, &mut info) });
        // SAFETY: CLAP names are NUL-terminated.
        let n = unsafe { CStr::from_ptr(info.name.as_ptr()) };
        if n.to_str() == Ok(name) {
            return info.id;
        }
    }
    panic!("no parameter named {name}")
}

/// Where the host stands at the start of a block.
#[derive(Debug, Clone, Copy)]
pub struct Play {
    pub beats: f64,
    pub bpm: f64,
    pub playing: bool,
    pub looped: Option<(f64, f64)>,
}

impl Play {
    pub fn at(beats: f64) -> Self {
        Self {
            beats,
            bpm: BPM,
            playing: true,
            looped: None,
        }
    }
}

/// A 4/4 transport event for `p`.
pub fn transport(p: Play) -> TransportEvent {
    let bar = (p.beats / 4.0).floor();
    let mut flags = TransportFlags::HAS_TEMPO
        | TransportFlags::HAS_BEATS_TIMELINE
        | TransportFlags::HAS_SECONDS_TIMELINE
        | TransportFlags::HAS_TIME_SIGNATURE;
    if p.playing {
        flags |= TransportFlags::IS_PLAYING;
    }
    let (ls, le) = p.looped.unwrap_or((0.0, 0.0));
    if p.looped.is_some() {
        flags |= TransportFlags::IS_LOOP_ACTIVE;
    }
    TransportEvent {
        header: EventHeader::new_core(0, EventFlags::empty()),
        flags,
        song_pos_beats: BeatTime::from_float(p.beats),
        song_pos_seconds: SecondsTime::from_float(p.beats * 60.0 / p.bpm),
        tempo: p.bpm,
        tempo_inc: 0.0,
        loop_start_beats: BeatTime::from_float(ls),
        loop_end_beats: BeatTime::from_float(le),
        loop_start_seconds: SecondsTime::from_float(ls * 60.0 / p.bpm),
        loop_end_seconds: SecondsTime::from_float(le * 60.0 / p.bpm),
        bar_start: BeatTime::from_float(bar * 4.0),
        bar_number: bar as i32,
        time_signature_numerator: 4,
        time_signature_denominator: 4,
    }
}

/// What an output queue takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Takes {
    /// Every event (Bitwig, REAPER, clack).
    All,
    /// MIDI and parameter events only, as Carla 2.6's CLAP host.
    MidiOnly,
    /// Nothing: a full queue.
    Nothing,
}

/// A note as it left the plugin: (block-relative sample, on, key, sent as MIDI).
pub type Note = (u32, bool, u16, bool);

/// The host's output event queue (preallocated: it is filled inside the plugin's process()).
pub struct Sink {
    pub buf: EventBuffer,
    pub takes: Takes,
    pub refused: usize,
}

impl OutputEventBuffer for Sink {
    fn try_push(&mut self, event: &UnknownEvent) -> Result<(), TryPushError> {
        let ok = match self.takes {
            Takes::All => true,
            Takes::Nothing => false,
            Takes::MidiOnly => matches!(
                event.as_core_event(),
                Some(CoreEventSpace::Midi(_) | CoreEventSpace::ParamValue(_))
            ),
        };
        if !ok {
            self.refused += 1;
            return Err(TryPushError::new());
        }
        self.buf.push(event);
        Ok(())
    }
}

impl Sink {
    /// The note events in the queue, in order, checked to lie inside a block of `n`.
    pub fn notes(&self, n: u32) -> Vec<Note> {
        let mut v = Vec::new();
        let mut last = 0;
        for ev in self.buf.iter() {
            let time = ev.header().time();
            assert!(time < n, "event at {time} outside a block of {n}");
            assert!(time >= last, "events out of order");
            last = time;
            let key = |k: Match<u16>| k.into_specific().expect("a specific key");
            match ev.as_core_event() {
                Some(CoreEventSpace::NoteOn(e)) => v.push((time, true, key(e.pckn().key), false)),
                Some(CoreEventSpace::NoteOff(e)) => v.push((time, false, key(e.pckn().key), false)),
                Some(CoreEventSpace::Midi(e)) => {
                    let [status, k, vel] = e.data();
                    match status & 0xF0 {
                        0x90 if vel > 0 => v.push((time, true, u16::from(k), true)),
                        0x80 | 0x90 => v.push((time, false, u16::from(k), true)),
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        v
    }
}

/// An activated plugin with stereo buffers; `sample` counts what the host has processed.
pub struct Session {
    processor: Option<StartedPluginAudioProcessor<Host>>,
    pub sink: Sink,
    pub sample: u64,
    ports_in: AudioPorts,
    ports_out: AudioPorts,
    pub audio_in: [Vec<f32>; 2],
    pub audio_out: [Vec<f32>; 2],
}

impl Session {
    pub fn start(instance: &mut PluginInstance<Host>, max_block: u32) -> Self {
        let cfg = PluginAudioConfiguration {
            sample_rate: SR,
            min_frames_count: 1,
            max_frames_count: max_block,
        };
        let stopped = instance.activate(|_, _| (), cfg).expect("activate");
        let processor = stopped.start_processing().expect("start processing");
        let n = max_block as usize;
        Self {
            processor: Some(processor),
            sink: Sink {
                buf: EventBuffer::with_capacity(8192),
                takes: Takes::All,
                refused: 0,
            },
            sample: 0,
            ports_in: AudioPorts::with_capacity(2, 1),
            ports_out: AudioPorts::with_capacity(2, 1),
            audio_in: [vec![0.0; n], vec![0.0; n]],
            audio_out: [vec![0.0; n], vec![0.0; n]],
        }
    }

    /// One block of `n` samples with input events; the notes that came out.
    pub fn block_at(&mut self, n: u32, p: Play, in_events: &EventBuffer) -> Vec<Note> {
        let t = transport(p);
        let k = n as usize;
        let [il, ir] = &mut self.audio_in;
        let ins = self.ports_in.with_input_buffers([AudioPortBuffer {
            latency: 0,
            channels: AudioPortBufferType::f32_input_only(
                [&mut il[..k], &mut ir[..k]]
                    .into_iter()
                    .map(InputChannel::variable),
            ),
        }]);
        let [ol, or] = &mut self.audio_out;
        let mut outs = self.ports_out.with_output_buffers([AudioPortBuffer {
            latency: 0,
            channels: AudioPortBufferType::f32_output_only(
                [&mut ol[..k], &mut or[..k]].into_iter(),
            ),
        }]);
        let input = InputEvents::from_buffer(in_events);
        self.sink.buf.clear();
        let mut output = OutputEvents::from_buffer(&mut self.sink);
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
        self.sample += u64::from(n);
        self.sink.notes(n)
    }

    /// One block on the steady 120 BPM timeline (beats from the host's sample counter), as
    /// (absolute sample, on, key).
    pub fn block(&mut self, n: u32, playing: bool) -> Vec<(u64, bool, u16)> {
        self.block_with_input(n, playing, &EventBuffer::new())
    }

    pub fn block_with_input(
        &mut self,
        n: u32,
        playing: bool,
        in_events: &EventBuffer,
    ) -> Vec<(u64, bool, u16)> {
        let p = Play {
            playing,
            ..Play::at(self.sample as f64 / SAMPLES_PER_BEAT)
        };
        let start = self.sample;
        self.block_at(n, p, in_events)
            .into_iter()
            .map(|(t, on, key, _)| (start + u64::from(t), on, key))
            .collect()
    }

    pub fn run(&mut self, block: u32, samples: u64) -> Vec<(u64, bool, u16)> {
        let mut v = Vec::new();
        while self.sample < samples {
            let n = (samples - self.sample).min(u64::from(block)) as u32;
            v.extend(self.block(n, true));
        }
        v
    }

    pub fn finish(mut self, instance: &mut PluginInstance<Host>) {
        if let Some(p) = self.processor.take() {
            instance.deactivate(p.stop_processing());
        }
    }
}
