//! Pattern + window of the timeline -> the note events inside it, sorted, at exact sample
//! offsets. A pure function: no clock, no allocation, no candle, so it can be property-tested.
//!
//! Time is in *unwrapped ticks*: tick 0 of cycle 0 is the pattern's first bar line on the song
//! timeline, cycle `k` starts at `k * len`. A [`Mapping`] puts tick `u` on sample
//! `floor((u - origin_tick) * samples_per_tick)` (the sample during which it happens), and a
//! window owns the events whose sample lies in `[first_sample, end_sample)`. Ownership is
//! decided on integer samples from one formula, so consecutive windows on the same mapping tile
//! the timeline exactly: no event is doubled or lost at block boundaries, whatever the float
//! rounding. Where the mapping changes (a tempo change), the window names the previous one and
//! owns what that one placed at or after its start.

use super::pattern::{Pattern, MAX_EVENTS};

/// Slack (in samples) so that an event exactly on a sample is not pushed to the previous one by
/// rounding: float error, and a host's fixed-point song position (CLAP's is in 2^-31 beats, up to
/// 1e-4 samples off at 20 BPM and 192 kHz) after a seek.
pub const EPS_SAMPLES: f64 = 1e-3;

/// Ticks -> samples: `origin_tick` sits on sample `origin_sample` (relative to the block; may
/// lie before it, so that one anchor serves many blocks and rounding never accumulates).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mapping {
    pub origin_tick: f64,
    pub origin_sample: i64,
    pub samples_per_tick: f64,
}

impl Mapping {
    /// The sample of tick `u`.
    pub fn sample(&self, u: f64) -> i64 {
        let x = ((u - self.origin_tick) * self.samples_per_tick + EPS_SAMPLES).floor();
        self.origin_sample.saturating_add(x as i64)
    }

    /// The tick at the start of sample `s`.
    pub fn tick(&self, s: i64) -> f64 {
        self.origin_tick + (s - self.origin_sample) as f64 / self.samples_per_tick
    }

    fn is_valid(&self) -> bool {
        self.origin_tick.is_finite()
            && self.samples_per_tick.is_finite()
            && self.samples_per_tick > 0.0
    }
}

/// A window of the timeline: the samples it owns and extra tick bounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub map: Mapping,
    /// The mapping before a tempo change at `first_sample`: events it placed before
    /// `first_sample` were already played; the rest belong here (at `first_sample` or later).
    pub prev: Option<Mapping>,
    /// Owned samples `[first_sample, end_sample)`.
    pub first_sample: u32,
    pub end_sample: u32,
    /// Only ticks in `[lo, hi)` (infinite for no bound): where a pattern takes over or a host
    /// loop ends inside the block.
    pub lo: f64,
    pub hi: f64,
}

impl Window {
    /// The window owning samples `[first, end)` of `map`, with no tick bounds.
    pub fn new(map: Mapping, first: u32, end: u32) -> Self {
        Self {
            map,
            prev: None,
            first_sample: first,
            end_sample: end,
            lo: f64::NEG_INFINITY,
            hi: f64::INFINITY,
        }
    }

    /// Whether this window owns tick `u`, and on which sample.
    fn place(&self, u: f64) -> Option<u32> {
        if u < self.lo || u >= self.hi {
            return None;
        }
        let s = self.map.sample(u);
        let first = i64::from(self.first_sample);
        if s >= i64::from(self.end_sample) {
            return None;
        }
        let owned = match &self.prev {
            Some(p) => p.sample(u) >= first,
            None => s >= first,
        };
        owned.then_some(s.max(first) as u32)
    }

    /// Ticks that may hold owned events (a superset, one sample wider on each side).
    fn candidate_ticks(&self) -> (f64, f64) {
        let (first, end) = (i64::from(self.first_sample), i64::from(self.end_sample));
        let mut lo = self.map.tick(first - 1);
        if let Some(p) = &self.prev {
            lo = lo.min(p.tick(first - 1));
        }
        (lo.max(self.lo), self.map.tick(end + 1).min(self.hi))
    }

    fn is_valid(&self) -> bool {
        self.map.is_valid()
            && self.prev.is_none_or(|p| p.is_valid())
            && self.end_sample > self.first_sample
            && !self.lo.is_nan()
            && !self.hi.is_nan()
    }
}

/// A scheduled note event of pattern note `note`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Event {
    pub sample: u32,
    pub on: bool,
    pub note: u16,
    pub pitch: u8,
    pub velocity: u8,
}

/// A preallocated, fixed-capacity list of events.
#[derive(Debug, Clone)]
pub struct EventBuf {
    buf: Box<[Event]>,
    len: usize,
    overflowed: bool,
}

impl Default for EventBuf {
    fn default() -> Self {
        Self::with_capacity(MAX_EVENTS)
    }
}

impl EventBuf {
    pub fn with_capacity(cap: usize) -> Self {
        Self {
            buf: vec![Event::default(); cap.max(1)].into_boxed_slice(),
            len: 0,
            overflowed: false,
        }
    }

    pub fn clear(&mut self) {
        self.len = 0;
        self.overflowed = false;
    }

    fn push(&mut self, e: Event) -> bool {
        if self.len == self.buf.len() {
            self.overflowed = true;
            return false;
        }
        self.buf[self.len] = e;
        self.len += 1;
        true
    }

    pub fn as_slice(&self) -> &[Event] {
        &self.buf[..self.len]
    }

    /// Whether events were lost for lack of room (callers keep windows under half a pattern
    /// so that this cannot happen).
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }
}

/// The events of `pattern` this window owns, in time order (offs before ons on the same tick).
/// With `looping` off only cycle 0 plays.
pub fn schedule(pattern: &Pattern, w: &Window, looping: bool, out: &mut EventBuf) {
    out.clear();
    if pattern.is_empty() || !w.is_valid() {
        return;
    }
    let (lo, hi) = w.candidate_ticks();
    if !lo.is_finite() || !hi.is_finite() || lo >= hi {
        return;
    }
    let len = f64::from(pattern.len_ticks());
    let (k0, k1) = if looping {
        // Cycle k's note-offs at tick `len` sit at the start of cycle k + 1, hence the - 1.
        ((lo / len).floor() as i64 - 1, (hi / len).floor() as i64)
    } else {
        (0, 0)
    };
    let events = pattern.events();
    let notes = pattern.notes();
    for k in k0..=k1 {
        let base = k as f64 * len;
        if base > hi || base + len < lo {
            continue;
        }
        let at = |tick: u32| base + f64::from(tick);
        let first = events.partition_point(|e| at(e.tick) < lo);
        for e in &events[first..] {
            let u = at(e.tick);
            if u >= hi {
                break;
            }
            let Some(sample) = w.place(u) else {
                continue;
            };
            let n = notes[usize::from(e.note)];
            let ev = Event {
                sample,
                on: e.on,
                note: e.note,
                pitch: n.pitch,
                velocity: n.velocity,
            };
            if !out.push(ev) {
                return;
            }
        }
    }
}
