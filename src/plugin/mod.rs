//! JiT-Music as a CLAP/VST3 MIDI effect: press Generate, and new bars play in time with the
//! host, on its bar lines and at its tempo.
//!
//! Threads:
//! * **audio** ([`process`], [`scheduler`]): maps the host transport to pattern ticks and emits
//!   note events at exact sample offsets; no allocation, lock, blocking call or candle;
//! * **worker** ([`worker`], [`generate`]): an owned `std::thread` that holds the model and
//!   generates; ideas reach the audio thread through a triple buffer ([`state`]);
//! * **editor** ([`editor`]): egui; talks to the worker through a channel and atomics.

mod capture;
mod chord_lane;
pub mod chords;
mod editor;
mod follow;
pub mod generate;
pub mod history;
pub mod host_notes;
pub mod keymap;
pub mod params;
pub mod pattern;
pub mod process;
pub mod roles;
pub mod scheduler;
mod shared;
mod state;
mod sync;
pub mod worker;

use capture::{Captured, CAPTURE_RING};
use host_notes::HostNotes;
use nice_plug::midi::{Channel, Key, VoiceID};
use nice_plug::prelude::*;
use nice_plug_egui::{EguiEditor, EguiEditorState};
use params::JitParams;
use pattern::Pattern;
use process::{HostTransport, Out, Player};
use shared::Shared;
use state::SessionShared;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use worker::Worker;

/// The plugin's port layouts, in one place (README's plugin section says what each host does).
pub mod layout {
    use nice_plug::prelude::*;
    /// Stereo pass-through comes first: a VST3 has the first layout's buses for good, and hosts
    /// that refuse a plugin without audio (pedalboard, DawDreamer, Ableton Live) need them. The
    /// audio goes through untouched. CLAP hosts may pick 'MIDI only' (audio-ports-config).
    pub const AUDIO_IO_LAYOUTS: &[AudioIOLayout] = &[
        AudioIOLayout {
            main_input_channels: Some(new_nonzero_u32(2)),
            main_output_channels: Some(new_nonzero_u32(2)),
            names: PortNames {
                layout: Some("Stereo pass-through"),
                main_input: Some("Audio In"),
                main_output: Some("Audio Out"),
                ..PortNames::const_default()
            },
            ..AudioIOLayout::const_default()
        },
        AudioIOLayout {
            names: PortNames {
                layout: Some("MIDI only"),
                ..PortNames::const_default()
            },
            ..AudioIOLayout::const_default()
        },
    ];
    pub const MIDI_INPUT: MidiConfig = MidiConfig::Basic;
    pub const MIDI_OUTPUT: MidiConfig = MidiConfig::Basic;
}

/// Input notes captured per block before they go to the ring (more are dropped).
const CAPTURE_PER_BLOCK: usize = 256;

pub struct JitMusic {
    params: Arc<JitParams>,
    shared: Arc<Shared>,
    worker: Arc<Worker>,
    player: Player,
    /// Reader of the ideas the worker, editor and state loads publish.
    patterns: triple_buffer::Output<Pattern>,
    capture_tx: rtrb::Producer<Captured>,
    /// (sample, key, velocity, on) of notes captured in the current block.
    captured: [(u32, u8, u8, bool); CAPTURE_PER_BLOCK],
    /// Our notes as the host holds them (refused note-offs are sent again).
    host_notes: HostNotes,
    /// The same for notes passed through from the input.
    thru_notes: HostNotes,
    editor_state: Arc<EguiEditorState>,
}

impl Default for JitMusic {
    fn default() -> Self {
        let (state, patterns) = SessionShared::new();
        let shared = Shared::new(state);
        let params = Arc::new(JitParams::new(&shared));
        let (capture_tx, capture_rx) = rtrb::RingBuffer::new(CAPTURE_RING);
        let worker = Worker::new(shared.clone(), params.clone(), capture_rx);
        Self {
            params,
            shared,
            worker,
            player: Player::new(48_000.0),
            patterns,
            capture_tx,
            captured: [(0, 0, 0, false); CAPTURE_PER_BLOCK],
            host_notes: HostNotes::new(),
            thru_notes: HostNotes::new(),
            editor_state: editor::default_state(),
        }
    }
}

/// `api`: a VST3 host gives no bar number (nice-plug derives one from the position, which
/// disagrees with the host's bar start when that lags), so the player counts bars itself.
fn host_transport(t: &Transport, api: PluginApi) -> HostTransport {
    HostTransport {
        playing: t.playing,
        tempo: t.tempo,
        pos_beats: t.pos_beats(),
        time_sig: t.time_sig_numerator.zip(t.time_sig_denominator),
        bar_start_beats: t.bar_start_pos_beats(),
        bar_number: if api == PluginApi::Vst3 {
            None
        } else {
            t.bar_number()
        },
        loop_range_beats: t.loop_range_beats(),
    }
}

impl Plugin for JitMusic {
    const NAME: &'static str = "JiT-Music";
    const VENDOR: &'static str = "JiT-Music";
    const URL: &'static str = "https://github.com/jit-music/jit-music";
    const EMAIL: &'static str = "jit-music@example.com";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    const AUDIO_IO_LAYOUTS: &'static [AudioIOLayout] = layout::AUDIO_IO_LAYOUTS;
    const MIDI_INPUT: MidiConfig = layout::MIDI_INPUT;
    const MIDI_OUTPUT: MidiConfig = layout::MIDI_OUTPUT;
    const SAMPLE_ACCURATE_AUTOMATION: bool = false;

    type Editor = EguiEditor<editor::App>;
    type SysExMessage = ();
    type BackgroundTask = ();

    fn params(&self) -> Arc<dyn Params> {
        self.params.clone()
    }

    fn editor(&mut self, _async_executor: AsyncExecutor<Self>) -> Option<Self::Editor> {
        editor::create(
            self.editor_state.clone(),
            self.params.clone(),
            self.shared.clone(),
            self.worker.clone(),
        )
    }

    fn activate(
        &mut self,
        _audio_io_layout: &AudioIOLayout,
        buffer_config: &BufferConfig,
        _context: &mut impl ActivateContext<Self>,
    ) -> bool {
        self.player.set_sample_rate(buffer_config.sample_rate);
        self.player.restart_clock();
        // Anything still sounding from before a deactivation is released on the first block.
        self.player.request_release();
        self.shared
            .audio
            .sample_rate
            .store(buffer_config.sample_rate, Ordering::Relaxed);
        self.worker.ensure_started();
        true
    }

    fn reset(&mut self) {
        self.player.request_release();
    }

    fn deactivate(&mut self) {
        // No events can be sent here; the next process() releases what sounds.
        self.player.request_release();
    }

    fn process(
        &mut self,
        buffer: &mut Buffer,
        _aux: &mut AuxiliaryBuffers,
        context: &mut impl ProcessContext<Self>,
    ) -> ProcessStatus {
        let ht = host_transport(context.transport(), context.plugin_api());
        self.publish_timing(&ht);
        if self.patterns.update() {
            self.player.offer(self.patterns.output_buffer());
        }
        let settings = self.params.player_settings();
        let capture_on = self.params.capture.value() && !settings.bypass;
        // Following the chords played in records the input too, but lets it through.
        let follow_on =
            self.params.chords.value() == params::ChordSource::Follow && !settings.bypass;
        let n = buffer.samples() as u32;

        // Note-offs the host refused last block go out first.
        self.host_notes.retry(0, &mut |o| send(context, o));
        self.thru_notes.retry(0, &mut |o| send(context, o));
        let mut input = InputPump {
            next: context.next_event(),
            capture_on,
            record_on: capture_on || follow_on,
            captured: &mut self.captured,
            n_captured: 0,
            thru: &mut self.thru_notes,
        };
        {
            let ctx = &mut *context;
            let host_notes = &mut self.host_notes;
            let mut emit = |o: Out| {
                input.pump(ctx, Some(o.sample()));
                host_notes.send(o, &mut |o| send(ctx, o));
            };
            self.player.process(&ht, n, &settings, &mut emit);
        }
        input.pump(context, None);
        let n_captured = input.n_captured;

        for &(sample, key, velocity, on) in &self.captured[..n_captured] {
            let c = Captured {
                tick: self.player.tick_at(sample),
                key,
                velocity,
                on,
                prompt: capture_on,
            };
            let _ = self.capture_tx.push(c);
        }
        let st = self.player.status();
        let a = &self.shared.audio;
        a.tick.store(self.player.tick_at(n), Ordering::Relaxed);
        a.running.store(st.running, Ordering::Relaxed);
        a.phase.store(st.phase as f32, Ordering::Relaxed);
        a.current_id.store(st.current_id, Ordering::Relaxed);
        a.pending_id
            .store(st.pending_id.unwrap_or(0), Ordering::Relaxed);
        if self.player.take_regen_due() {
            self.shared.flags.regen_due.store(true, Ordering::Release);
        }
        // The editor asks for its next frame only while drawing one: once it went idle (host
        // stopped), starting play drew nothing until a pointer event. This flag is polled by the
        // editor's timer, apart from drawing, so the playhead and progress move on their own.
        if st.running || self.shared.worker.busy.load(Ordering::Relaxed) {
            self.shared.repaint.request_repaint();
        }
        ProcessStatus::KeepAlive
    }
}

/// Incoming events, forwarded (or captured as a prompt) in time order with ours.
struct InputPump<'a> {
    next: Option<PluginNoteEvent<JitMusic>>,
    /// Input notes are the prompt: recorded and not passed through.
    capture_on: bool,
    /// Input notes are recorded (as the prompt, or for the chord follower).
    record_on: bool,
    captured: &'a mut [(u32, u8, u8, bool); CAPTURE_PER_BLOCK],
    n_captured: usize,
    thru: &'a mut HostNotes,
}

impl InputPump<'_> {
    /// Handle input events up to sample `until` (all of them with `None`).
    fn pump(&mut self, ctx: &mut impl ProcessContext<JitMusic>, until: Option<u32>) {
        while let Some(ev) = self.next {
            if until.is_some_and(|u| ev.timing() > u) {
                break;
            }
            let note = match ev {
                NoteEvent::NoteOn { key, velocity, .. } => Some((key, velocity, true)),
                NoteEvent::NoteOff { key, .. } => Some((key, 0.0, false)),
                _ => None,
            };
            if let (Some((key, velocity, on)), true) = (note, self.record_on) {
                if let (Some(k), true) = (key.number(), self.n_captured < CAPTURE_PER_BLOCK) {
                    let v = (velocity * 127.0).round().clamp(1.0, 127.0) as u8;
                    self.captured[self.n_captured] = (ev.timing(), k, v, on);
                    self.n_captured += 1;
                }
            }
            match note {
                Some(_) if self.capture_on => {}
                Some(_) => match thru_out(&ev) {
                    // The host's own event goes out as it came (a retried off is rebuilt).
                    Some(o) => self.thru.send(o, &mut |x| {
                        if x == o {
                            ctx.try_send_event(ev).is_ok()
                        } else {
                            send(ctx, x)
                        }
                    }),
                    None => {
                        let _ = ctx.try_send_event(ev);
                    }
                },
                // Not a note: nothing hangs if the host refuses it.
                None => {
                    let _ = ctx.try_send_event(ev);
                }
            }
            self.next = ctx.next_event();
        }
    }
}

/// Send one note event; whether the host took it.
fn send(ctx: &mut impl ProcessContext<JitMusic>, o: Out) -> bool {
    ctx.try_send_event(out_event(o)).is_ok()
}

/// A passed-through note on a specific channel and key, as one of ours.
fn thru_out(ev: &PluginNoteEvent<JitMusic>) -> Option<Out> {
    match *ev {
        NoteEvent::NoteOn {
            timing,
            channel,
            key,
            velocity,
            ..
        } => Some(Out::On {
            sample: timing,
            channel: channel.number()?,
            key: key.number()?,
            velocity: (velocity * 127.0).round().clamp(1.0, 127.0) as u8,
        }),
        NoteEvent::NoteOff {
            timing,
            channel,
            key,
            ..
        } => Some(Out::Off {
            sample: timing,
            channel: channel.number()?,
            key: key.number()?,
        }),
        _ => None,
    }
}

fn out_event(o: Out) -> PluginNoteEvent<JitMusic> {
    match o {
        Out::On {
            sample,
            channel,
            key,
            velocity,
        } => NoteEvent::NoteOn {
            timing: sample,
            voice_id: VoiceID::Wildcard,
            channel: Channel::Number(channel),
            key: Key::Number(key),
            velocity: f32::from(velocity) / 127.0,
        },
        Out::Off {
            sample,
            channel,
            key,
        } => NoteEvent::NoteOff {
            timing: sample,
            voice_id: VoiceID::Wildcard,
            channel: Channel::Number(channel),
            key: Key::Number(key),
            velocity: 0.0,
        },
    }
}

impl JitMusic {
    /// Tempo and signature for the worker (new ideas follow the host's bars).
    fn publish_timing(&self, t: &HostTransport) {
        let a = &self.shared.audio;
        if let Some(bpm) = t.valid_tempo() {
            a.tempo.store(bpm, Ordering::Relaxed);
        }
        if let Some((n, d)) = t.time_sig {
            if (1..=16).contains(&n) && (1..=64).contains(&d) {
                a.sig_num.store(n as u32, Ordering::Relaxed);
                a.sig_den.store(d as u32, Ordering::Relaxed);
            }
        }
    }
}

impl ClapPlugin for JitMusic {
    const CLAP_ID: &'static str = "org.jit-music.jit-music";
    const CLAP_DESCRIPTION: Option<&'static str> =
        Some("Generates MIDI patterns with a JiT diffusion transformer, in time with the host");
    const CLAP_MANUAL_URL: Option<&'static str> = None;
    const CLAP_SUPPORT_URL: Option<&'static str> = None;
    const CLAP_FEATURES: &'static [ClapFeature] = &[ClapFeature::NoteEffect, ClapFeature::Utility];
}

impl Vst3Plugin for JitMusic {
    const VST3_CLASS_ID: [u8; 16] = *b"JiTMusicNoteGen1";
    const VST3_SUBCATEGORIES: &'static [Vst3SubCategory] =
        &[Vst3SubCategory::Instrument, Vst3SubCategory::Tools];
}

nice_export_clap!(JitMusic);
nice_export_vst3!(JitMusic);
