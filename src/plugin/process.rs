//! The audio thread's player: host transport -> timeline windows -> scheduled events -> note
//! on/off through a voice table. Everything is preallocated in [`Player::new`]; processing never
//! allocates, locks, blocks or touches candle.
//!
//! Guarantees (pinned by `tests/plugin_scheduler.rs`):
//! * events come out in time order, inside the block;
//! * every note-on gets its note-off: on stop, seek, loop wrap, bypass, a pattern change, after
//!   a reset/reactivation, and when a knob changes the key mapping mid-note (the off goes to the
//!   key and channel the on used);
//! * odd transport values (NaN, zero tempo, missing fields) fall back to a safe clock.

use super::keymap::KeyMap;
use super::pattern::{Pattern, MAX_NOTES, PPQ};
use super::scheduler::{schedule, EventBuf, Mapping, Window};

/// Tempo assumed without a usable host tempo.
pub const DEFAULT_BPM: f64 = 120.0;
/// Scheduling chunk: at most half of the shortest pattern, so one chunk never holds the same
/// pattern event twice and the event buffer cannot overflow.
const CHUNK_TICKS: f64 = PPQ as f64 / 2.0;
/// Host positions within this many samples of the predicted one count as continuous.
const JITTER_SAMPLES: f64 = 2.0;
const NO_VOICE: u16 = u16::MAX;
const SLOTS: usize = 16 * 128;

/// The host transport of one block (copied out of nice-plug's `Transport`, so the player is
/// testable without a host).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HostTransport {
    pub playing: bool,
    pub tempo: Option<f64>,
    pub pos_beats: Option<f64>,
    pub time_sig: Option<(i32, i32)>,
    pub bar_start_beats: Option<f64>,
    pub bar_number: Option<i32>,
    pub loop_range_beats: Option<(f64, f64)>,
}

impl HostTransport {
    /// No transport information at all (a host that passes none).
    pub fn is_absent(&self) -> bool {
        !self.playing && self.tempo.is_none() && self.pos_beats.is_none()
    }

    /// A usable tempo: finite and in 1..=2000 BPM.
    pub fn valid_tempo(&self) -> Option<f64> {
        self.tempo
            .filter(|t| t.is_finite() && (1.0..=2000.0).contains(t))
    }

    fn valid_pos(&self) -> Option<f64> {
        self.pos_beats.filter(|p| p.is_finite() && p.abs() < 1e9)
    }

    /// Quarter notes per host bar (4 when the signature is missing or odd).
    pub fn bar_beats(&self) -> f64 {
        match self.time_sig {
            Some((n, d)) if (1..=64).contains(&n) && (1..=64).contains(&d) => {
                f64::from(n) * 4.0 / f64::from(d)
            }
            _ => 4.0,
        }
    }
}

/// Parameter values the player needs, read once per block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlayerSettings {
    pub looping: bool,
    /// 'Play when stopped': run the fallback clock while the host is stopped.
    pub free_run: bool,
    pub bypass: bool,
    pub keymap: KeyMap,
    /// Output channel 0..=15.
    pub channel: u8,
    /// Ask for a new idea every N completed loops (0 = never).
    pub regen_every: u32,
    /// Live mode: `Some(n)` asks for a new idea every `n` bars (`Some(0)`: every loop) and
    /// swaps new ideas in at the next bar line instead of the next pattern boundary.
    pub live_bars: Option<u32>,
}

impl Default for PlayerSettings {
    fn default() -> Self {
        Self {
            looping: true,
            free_run: false,
            bypass: false,
            keymap: KeyMap::default(),
            channel: 0,
            regen_every: 0,
            live_bars: None,
        }
    }
}

/// A note event for the host, at a sample offset of the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Out {
    On {
        sample: u32,
        channel: u8,
        key: u8,
        velocity: u8,
    },
    Off {
        sample: u32,
        channel: u8,
        key: u8,
    },
}

impl Out {
    pub fn sample(&self) -> u32 {
        match *self {
            Out::On { sample, .. } | Out::Off { sample, .. } => sample,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Clock {
    Stopped,
    Host,
    /// 120 BPM, 4/4 from plugin start.
    Free,
}

/// Which pattern notes sound on which (channel, key), so that offs reach the key the on used.
#[derive(Debug, Clone)]
struct Voices {
    by_note: Box<[u16]>,
    count: Box<[u8]>,
    active: usize,
}

impl Voices {
    fn new() -> Self {
        Self {
            by_note: vec![NO_VOICE; MAX_NOTES].into_boxed_slice(),
            count: vec![0; SLOTS].into_boxed_slice(),
            active: 0,
        }
    }

    fn on(
        &mut self,
        note: u16,
        ch: u8,
        key: u8,
        velocity: u8,
        sample: u32,
        emit: &mut impl FnMut(Out),
    ) {
        let n = usize::from(note);
        if n >= self.by_note.len() || self.by_note[n] != NO_VOICE {
            return;
        }
        let slot = usize::from(ch & 15) * 128 + usize::from(key & 127);
        if self.count[slot] > 0 {
            // Re-strike: release first so that the synth sees a clean pair.
            emit(Out::Off {
                sample,
                channel: ch,
                key,
            });
        }
        self.count[slot] = self.count[slot].saturating_add(1);
        self.by_note[n] = slot as u16;
        self.active += 1;
        emit(Out::On {
            sample,
            channel: ch,
            key,
            velocity,
        });
    }

    fn off(&mut self, note: u16, sample: u32, emit: &mut impl FnMut(Out)) {
        let n = usize::from(note);
        let Some(&slot) = self.by_note.get(n) else {
            return;
        };
        if slot == NO_VOICE {
            return;
        }
        self.by_note[n] = NO_VOICE;
        self.active -= 1;
        let slot = usize::from(slot);
        self.count[slot] = self.count[slot].saturating_sub(1);
        if self.count[slot] == 0 {
            emit(Out::Off {
                sample,
                channel: (slot / 128) as u8,
                key: (slot % 128) as u8,
            });
        }
    }

    fn release_all(&mut self, sample: u32, emit: &mut impl FnMut(Out)) {
        if self.active == 0 {
            return;
        }
        for (slot, c) in self.count.iter_mut().enumerate() {
            if *c > 0 {
                *c = 0;
                emit(Out::Off {
                    sample,
                    channel: (slot / 128) as u8,
                    key: (slot % 128) as u8,
                });
            }
        }
        self.by_note.fill(NO_VOICE);
        self.active = 0;
    }
}

/// Where the player stands, for the editor's playhead.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlayerStatus {
    pub running: bool,
    /// Position in the current pattern, 0..1.
    pub phase: f64,
    pub current_id: u64,
    pub pending_id: Option<u64>,
}

/// The audio thread's state: the playing and the waiting pattern, the clock and the voices.
#[derive(Debug, Clone)]
pub struct Player {
    sample_rate: f64,
    current: Pattern,
    pending: Pattern,
    has_pending: bool,
    events: EventBuf,
    voices: Voices,
    clock: Clock,
    /// The timeline is `anchor_tick + samples / anchor_spt`, counted from an anchor sample:
    /// every block's bounds come from the same formula, so consecutive blocks share exact bounds
    /// and rounding never accumulates over a long song.
    anchor_tick: f64,
    /// Samples from the anchor to the next block's first sample (negative: anchor inside it).
    anchor_pos: i64,
    anchor_spt: f64,
    /// The mapping before a tempo change in this block (see [`Window::prev`]).
    handover: Option<Mapping>,
    /// Samples processed since activation (the fallback clock).
    free_samples: u64,
    loops: u32,
    /// Bar lines reached since Live mode last asked for an idea.
    bars: u32,
    /// The next window starts where play started (its first line is not "reached").
    from_start: bool,
    regen_due: bool,
    release_pending: bool,
    /// Tick and samples per tick at the last block's first sample (for captured input).
    block_tick: f64,
    block_spt: f64,
}

impl Player {
    /// Allocates everything the player will ever use.
    pub fn new(sample_rate: f32) -> Self {
        let mut p = Self {
            sample_rate: 48_000.0,
            current: Pattern::new(),
            pending: Pattern::new(),
            has_pending: false,
            events: EventBuf::default(),
            voices: Voices::new(),
            clock: Clock::Stopped,
            anchor_tick: 0.0,
            anchor_pos: 0,
            anchor_spt: 1.0,
            handover: None,
            free_samples: 0,
            loops: 0,
            bars: 0,
            from_start: false,
            regen_due: false,
            release_pending: false,
            block_tick: 0.0,
            block_spt: 1.0,
        };
        p.set_sample_rate(sample_rate);
        p
    }

    pub fn set_sample_rate(&mut self, sample_rate: f32) {
        let sr = f64::from(sample_rate);
        // Below 1 kHz the scheduling chunks would span more than half a pattern.
        self.sample_rate = if sr.is_finite() && (1_000.0..=2_000_000.0).contains(&sr) {
            sr
        } else {
            48_000.0
        };
    }

    /// Start the fallback clock again ("from plugin start").
    pub fn restart_clock(&mut self) {
        self.free_samples = 0;
        self.clock = Clock::Stopped;
    }

    /// After a reset or reactivation: the next block first releases whatever still sounds.
    pub fn request_release(&mut self) {
        self.release_pending = true;
    }

    /// A new pattern arrived: it waits in the pending slot (copied, no allocation) and takes over
    /// at the next pattern boundary (in Live mode the next bar line), or at once when nothing
    /// plays.
    pub fn offer(&mut self, p: &Pattern) {
        self.pending.copy_from(p);
        self.has_pending = true;
    }

    /// Unwrapped timeline tick of sample `sample` of the last block.
    pub fn tick_at(&self, sample: u32) -> f64 {
        self.block_tick + f64::from(sample) / self.block_spt
    }

    pub fn current(&self) -> &Pattern {
        &self.current
    }

    /// Whether `regen_every` loops have passed since the last check (resets the flag).
    pub fn take_regen_due(&mut self) -> bool {
        std::mem::take(&mut self.regen_due)
    }

    pub fn status(&self) -> PlayerStatus {
        let len = f64::from(self.current.len_ticks());
        PlayerStatus {
            running: self.clock != Clock::Stopped,
            phase: (self.next_tick().rem_euclid(len) / len).clamp(0.0, 1.0),
            current_id: self.current.id,
            pending_id: self.has_pending.then_some(self.pending.id),
        }
    }

    /// Tick at the next block's first sample.
    fn next_tick(&self) -> f64 {
        self.tick_of(0)
    }

    /// Tick of sample `s` of the current block.
    fn tick_of(&self, s: u32) -> f64 {
        self.mapping().tick(i64::from(s))
    }

    /// Ticks <-> samples of the current block.
    fn mapping(&self) -> Mapping {
        Mapping {
            origin_tick: self.anchor_tick,
            origin_sample: -self.anchor_pos,
            samples_per_tick: self.anchor_spt,
        }
    }

    fn take_pending_now(&mut self) {
        if self.has_pending {
            std::mem::swap(&mut self.current, &mut self.pending);
            self.has_pending = false;
            self.loops = 0;
        }
    }

    fn samples_per_tick(&self, bpm: f64) -> f64 {
        self.sample_rate * 60.0 / (bpm * f64::from(PPQ))
    }

    /// Unwrapped tick of the host position: bar lines of the pattern sit on the host's bar
    /// lines (bar number x pattern bar + offset in the bar); without bar information, quarter
    /// notes since song start. Without a bar number (VST3 has none) the bar is counted from the
    /// bar start itself, so a bar start that lags a bar behind the position (Carla's VST3 host
    /// on blocks that begin on a bar line) still gives the same tick.
    fn host_tick(&self, t: &HostTransport, pos: f64) -> f64 {
        let pat_bar = f64::from(self.current.bar_ticks()) / f64::from(PPQ);
        let beats = match t.bar_start_beats {
            Some(start) if start.is_finite() => {
                let bar = match t.bar_number {
                    Some(bar) => f64::from(bar),
                    None => (start / t.bar_beats()).round(),
                };
                let off = pos - start;
                if off >= -1e-9 && off < t.bar_beats() + 1e-9 {
                    bar * pat_bar + off
                } else {
                    pos
                }
            }
            _ => pos,
        };
        beats * f64::from(PPQ)
    }

    /// Process one block of `n` samples, calling `emit` with events in time order.
    pub fn process(
        &mut self,
        t: &HostTransport,
        n: u32,
        s: &PlayerSettings,
        emit: &mut impl FnMut(Out),
    ) {
        if n == 0 {
            return;
        }
        if std::mem::take(&mut self.release_pending) {
            self.voices.release_all(0, emit);
        }
        let free_start = self.free_samples;
        self.free_samples = self.free_samples.saturating_add(u64::from(n));

        let pos = t.valid_pos();
        let clock = if s.bypass {
            Clock::Stopped
        } else if t.playing {
            if pos.is_some() {
                Clock::Host
            } else {
                Clock::Free
            }
        } else if t.is_absent() || s.free_run {
            Clock::Free
        } else {
            Clock::Stopped
        };
        if clock == Clock::Stopped {
            self.block_spt = self.samples_per_tick(DEFAULT_BPM);
            self.block_tick = free_start as f64 / self.block_spt;
            self.voices.release_all(0, emit);
            self.take_pending_now();
            self.clock = Clock::Stopped;
            return;
        }

        let bpm = match clock {
            Clock::Host => t.valid_tempo().unwrap_or(DEFAULT_BPM),
            _ => DEFAULT_BPM,
        };
        let spt = self.samples_per_tick(bpm);
        let start_tick = match (clock, pos) {
            (Clock::Host, Some(p)) => self.host_tick(t, p),
            _ => free_start as f64 / spt,
        };
        let tolerance = (JITTER_SAMPLES / spt).max(1e-6);
        let predicted = self.next_tick();
        let continuing = self.clock == clock && (start_tick - predicted).abs() <= tolerance;
        self.handover = None;
        if !continuing {
            // Seek, loop jump, start, or a change of clock: what sounds is due to stop.
            self.voices.release_all(0, emit);
            self.set_anchor(start_tick, 0, spt);
        } else if spt != self.anchor_spt {
            // Tempo change: the timeline goes on from here at the new rate; the old mapping
            // decides what it already played.
            self.handover = Some(self.mapping());
            self.set_anchor(predicted, 0, spt);
        }
        // Where play starts is no line reached; a seek or a host loop jump onto one is.
        self.from_start = self.clock != clock;
        self.clock = clock;
        self.block_tick = self.tick_of(0);
        self.block_spt = spt;

        // A host loop that ends inside this block: play up to its end, then jump to its start.
        let mut split = None;
        if let (Clock::Host, Some(p), Some((ls, le))) = (clock, pos, t.loop_range_beats) {
            if ls.is_finite() && le.is_finite() && le > ls + 1e-9 && p < le {
                let end_tick = self.block_tick + (le - p) * f64::from(PPQ);
                let at = self.mapping().sample(end_tick);
                if at >= 1 && at < i64::from(n) {
                    let loop_tick = self.block_tick + (ls - p) * f64::from(PPQ);
                    split = Some((at as u32, end_tick, loop_tick));
                }
            }
        }
        match split {
            None => self.render(0, n, f64::INFINITY, s, emit),
            Some((at, end_tick, loop_tick)) => {
                self.render(0, at, end_tick, s, emit);
                self.voices.release_all(at, emit);
                self.handover = None;
                self.set_anchor(loop_tick, -i64::from(at), spt);
                self.render(at, n, f64::INFINITY, s, emit);
            }
        }
        self.anchor_pos += i64::from(n);
        self.handover = None;
        if self.regen_due_check(s) {
            self.regen_due = true;
        }
    }

    fn set_anchor(&mut self, tick: f64, pos: i64, spt: f64) {
        self.anchor_tick = tick;
        self.anchor_pos = pos;
        self.anchor_spt = spt;
    }

    fn regen_due_check(&mut self, s: &PlayerSettings) -> bool {
        let mut due = false;
        if s.regen_every > 0 && self.loops >= s.regen_every {
            self.loops = 0;
            due = true;
        }
        if let Some(every) = s.live_bars {
            let every = if every == 0 {
                self.current.bars()
            } else {
                every
            };
            if self.bars >= every.max(1) {
                self.bars = 0;
                due = true;
            }
        }
        due
    }

    /// Samples `[s0, s1)` of the block on the current anchor, ticks below `tick_hi`.
    fn render(
        &mut self,
        s0: u32,
        s1: u32,
        tick_hi: f64,
        s: &PlayerSettings,
        emit: &mut impl FnMut(Out),
    ) {
        let map = self.mapping();
        let base = Window {
            prev: if s0 == 0 { self.handover } else { None },
            hi: tick_hi,
            ..Window::new(map, s0, s1)
        };
        let (mut first, mut lo) = (s0, f64::NEG_INFINITY);
        if self.has_pending {
            // The new pattern takes over on the next pattern boundary (at once if none plays);
            // in Live mode on the next bar line, where it goes on from the same bar of its own
            // (bar lines of every pattern sit on the host's bar lines).
            let (boundary, at) = if self.current.is_empty() {
                (f64::NEG_INFINITY, i64::from(s0))
            } else {
                let len = f64::from(self.current.len_ticks());
                let same_bars = self.pending.bar_ticks() == self.current.bar_ticks();
                let len = match s.live_bars {
                    Some(_) if same_bars => f64::from(self.current.bar_ticks()).min(len),
                    _ => len,
                };
                let b = (map.tick(i64::from(s0)) / len).ceil() * len;
                (b, map.sample(b).max(i64::from(s0)))
            };
            if at < i64::from(s1) && boundary < tick_hi {
                let at = at as u32;
                if at > s0 {
                    let before = Window {
                        end_sample: at,
                        hi: boundary.min(tick_hi),
                        ..base
                    };
                    self.run(&before, s, emit);
                }
                self.voices.release_all(at, emit);
                self.take_pending_now();
                (first, lo) = (at, boundary);
            }
        }
        let rest = Window {
            first_sample: first,
            prev: if first == base.first_sample {
                base.prev
            } else {
                None
            },
            lo,
            ..base
        };
        self.run(&rest, s, emit);
    }

    /// Emit the current pattern's events in the window, in chunks of at most half the
    /// shortest pattern (the event buffer cannot overflow).
    fn run(&mut self, w: &Window, s: &PlayerSettings, emit: &mut impl FnMut(Out)) {
        if w.end_sample <= w.first_sample {
            return;
        }
        let len = f64::from(self.current.len_ticks());
        // Pattern starts and bar lines reached in [a, b). Windows tile the samples, so these
        // ranges tile the timeline and each line counts once (`a` is not clamped to `lo`, or a
        // line exactly at a pattern change would fall between windows). A host loop that wraps
        // exactly on a line reaches it again on every pass.
        let a = w.map.tick(i64::from(w.first_sample));
        let b = w.map.tick(i64::from(w.end_sample)).min(w.hi);
        let skip_a = std::mem::take(&mut self.from_start);
        let crossed = |period: f64| {
            let first = if skip_a {
                (a / period).floor() + 1.0
            } else {
                (a / period).ceil()
            };
            let c = (b / period).ceil() - first;
            if c > 0.0 && c.is_finite() {
                c.min(1e6) as u32
            } else {
                0
            }
        };
        if s.looping {
            self.loops = self.loops.saturating_add(crossed(len));
        }
        if s.live_bars.is_some() {
            let bar = f64::from(self.current.bar_ticks().max(1));
            self.bars = self.bars.saturating_add(crossed(bar));
        }
        let chunk = (CHUNK_TICKS * w.map.samples_per_tick)
            .floor()
            .clamp(1.0, 4096.0) as u32;
        let mut x = w.first_sample;
        while x < w.end_sample {
            let y = x.saturating_add(chunk).min(w.end_sample);
            let cw = Window {
                first_sample: x,
                end_sample: y,
                prev: if x == w.first_sample { w.prev } else { None },
                ..*w
            };
            schedule(&self.current, &cw, s.looping, &mut self.events);
            for e in self.events.as_slice() {
                if e.on {
                    if let Some(key) = s.keymap.map(e.pitch) {
                        self.voices
                            .on(e.note, s.channel, key, e.velocity, e.sample, emit);
                    }
                } else {
                    self.voices.off(e.note, e.sample, emit);
                }
            }
            x = y;
        }
    }

    /// Number of pattern notes sounding now.
    pub fn sounding(&self) -> usize {
        self.voices.active
    }
}
