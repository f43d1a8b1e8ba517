//! The note pattern the audio thread plays: notes in ticks of a quarter note, with a fixed
//! capacity so that copying one into a preallocated slot never allocates, plus the sorted
//! on/off event list the scheduler walks.

/// Ticks per quarter note. 960 divides every beats grid we use (1..16 steps per beat, triplets)
/// and makes 120 BPM at 48 kHz exactly 25 samples per tick.
pub const PPQ: u32 = 960;
/// Most notes a pattern holds (a dense 8-bar idea has a few hundred).
pub const MAX_NOTES: usize = 4096;
/// Most on/off events of a pattern.
pub const MAX_EVENTS: usize = 2 * MAX_NOTES;
/// Shortest pattern: one quarter note (keeps the scheduler's windows below one cycle).
pub const MIN_LEN_TICKS: u32 = PPQ;
/// Longest pattern: 8 bars of 16/4.
pub const MAX_LEN_TICKS: u32 = 8 * 16 * PPQ;

/// One note, `[start, end)` in ticks from the pattern start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord)]
pub struct PatternNote {
    pub start: u32,
    pub end: u32,
    pub pitch: u8,
    pub velocity: u8,
}

/// A note-on or note-off of note `note` at `tick` (`tick == len` for notes that end with the
/// pattern).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PatternEvent {
    pub tick: u32,
    pub note: u16,
    pub on: bool,
}

/// A looped pattern of `bars` bars of `bar_ticks` each.
#[derive(Clone)]
pub struct Pattern {
    /// Which idea this is (0 = none); lets the editor tell what is playing from what waits.
    pub id: u64,
    bars: u32,
    bar_ticks: u32,
    notes: Box<[PatternNote]>,
    n_notes: usize,
    events: Box<[PatternEvent]>,
    n_events: usize,
    /// Notes dropped because the pattern was full or they lay outside it.
    dropped: usize,
}

impl std::fmt::Debug for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pattern")
            .field("id", &self.id)
            .field("bars", &self.bars)
            .field("bar_ticks", &self.bar_ticks)
            .field("notes", &self.notes())
            .finish()
    }
}

impl Default for Pattern {
    fn default() -> Self {
        Self::new()
    }
}

/// Ticks of one bar of `num/den` (quarter-note ticks), clamped to sane sizes.
pub fn bar_ticks(num: u32, den: u32) -> u32 {
    let num = num.clamp(1, 16);
    let den = if den.is_power_of_two() && (1..=64).contains(&den) {
        den
    } else {
        4
    };
    (num * 4 * PPQ / den).max(1)
}

impl Pattern {
    /// An empty one-bar 4/4 pattern with room for [`MAX_NOTES`] notes (the only allocation).
    pub fn new() -> Self {
        Self {
            id: 0,
            bars: 1,
            bar_ticks: 4 * PPQ,
            notes: vec![PatternNote::default(); MAX_NOTES].into_boxed_slice(),
            n_notes: 0,
            events: vec![PatternEvent::default(); MAX_EVENTS].into_boxed_slice(),
            n_events: 0,
            dropped: 0,
        }
    }

    /// Build one from notes (non-real-time convenience; allocates the storage).
    pub fn from_notes(id: u64, bars: u32, bar_ticks: u32, notes: &[PatternNote]) -> Self {
        let mut p = Self::new();
        p.set(id, bars, bar_ticks, notes);
        p
    }

    /// Replace the contents in place. Notes outside the pattern are dropped, ends are clipped to
    /// its length, zero-length notes are dropped, and at most [`MAX_NOTES`] are kept. Never
    /// allocates (the event sort is in place).
    pub fn set(&mut self, id: u64, bars: u32, bar_ticks: u32, notes: &[PatternNote]) {
        self.id = id;
        self.bars = bars.clamp(1, 16);
        self.bar_ticks = bar_ticks.clamp(1, MAX_LEN_TICKS);
        let len = self.len_ticks();
        self.n_notes = 0;
        self.dropped = 0;
        for n in notes {
            let end = n.end.min(len);
            if n.start >= end || n.pitch > 127 || self.n_notes >= MAX_NOTES {
                self.dropped += 1;
                continue;
            }
            self.notes[self.n_notes] = PatternNote {
                start: n.start,
                end,
                pitch: n.pitch,
                velocity: n.velocity.clamp(1, 127),
            };
            self.n_notes += 1;
        }
        self.rebuild_events();
    }

    fn rebuild_events(&mut self) {
        let mut k = 0;
        for (i, n) in self.notes[..self.n_notes].iter().enumerate() {
            self.events[k] = PatternEvent {
                tick: n.start,
                note: i as u16,
                on: true,
            };
            self.events[k + 1] = PatternEvent {
                tick: n.end,
                note: i as u16,
                on: false,
            };
            k += 2;
        }
        self.n_events = k;
        // Offs before ons at the same tick, so a re-struck key is released first.
        self.events[..k].sort_unstable_by_key(|e| (e.tick, e.on, e.note));
    }

    /// Copy `other` into this pattern's storage (no allocation; only the used part is copied).
    pub fn copy_from(&mut self, other: &Pattern) {
        self.id = other.id;
        self.bars = other.bars;
        self.bar_ticks = other.bar_ticks;
        self.n_notes = other.n_notes;
        self.n_events = other.n_events;
        self.dropped = other.dropped;
        self.notes[..other.n_notes].copy_from_slice(&other.notes[..other.n_notes]);
        self.events[..other.n_events].copy_from_slice(&other.events[..other.n_events]);
    }

    /// Empty the pattern, keeping its length.
    pub fn clear(&mut self) {
        self.id = 0;
        self.n_notes = 0;
        self.n_events = 0;
        self.dropped = 0;
    }

    /// Loop length in ticks (at least [`MIN_LEN_TICKS`]).
    pub fn len_ticks(&self) -> u32 {
        self.bars
            .saturating_mul(self.bar_ticks)
            .clamp(MIN_LEN_TICKS, MAX_LEN_TICKS)
    }

    pub fn bars(&self) -> u32 {
        self.bars
    }

    pub fn bar_ticks(&self) -> u32 {
        self.bar_ticks
    }

    pub fn notes(&self) -> &[PatternNote] {
        &self.notes[..self.n_notes]
    }

    /// Events sorted by (tick, off before on, note).
    pub fn events(&self) -> &[PatternEvent] {
        &self.events[..self.n_events]
    }

    pub fn is_empty(&self) -> bool {
        self.n_notes == 0
    }

    pub fn dropped(&self) -> usize {
        self.dropped
    }
}
