//! Following the chords played into the plugin. The audio thread records the input as it
//! records a prompt (an rtrb ring of on/offs with their timeline tick); the worker pairs them
//! into notes here and estimates each host bar's chords with the core's [`estimate_chords`] as
//! soon as notes arrive in it, again on every later note in that bar, and for as long as notes
//! are held into the following bars. A bar nothing is played in keeps the chords it had.
//!
//! Within a bar, a stretch where nothing sounds takes the chord before it (a chord struck on
//! beat 1 and let go holds the harmony until the next one); a bar that starts silent takes its
//! first chord from the start.

use super::capture::Captured;
use super::chords::Followed;
use crate::chords::{estimate_chords, ChordSpan};
use crate::roll::RollNote;
use std::collections::{BTreeSet, VecDeque};

/// Notes the follower remembers.
const KEEP_NOTES: usize = 1024;
/// Bars of notes kept behind the playhead.
const KEEP_BARS: f64 = 32.0;

#[derive(Debug)]
pub struct ChordFollower {
    held: [Option<f64>; 128],
    /// Finished notes: (start, end, key), timeline ticks.
    notes: VecDeque<(f64, f64, u8)>,
    /// Tick ranges whose bars need a new estimate.
    dirty: Vec<(f64, f64)>,
}

impl Default for ChordFollower {
    fn default() -> Self {
        Self {
            held: [None; 128],
            notes: VecDeque::new(),
            dirty: Vec::new(),
        }
    }
}

impl ChordFollower {
    pub fn push(&mut self, c: &Captured) {
        if !c.tick.is_finite() {
            return;
        }
        let k = usize::from(c.key & 127);
        if let Some(start) = self.held[k].take() {
            let end = c.tick.max(start);
            if end > start {
                self.notes.push_back((start, end, c.key & 127));
                if self.notes.len() > KEEP_NOTES {
                    self.notes.pop_front();
                }
            }
            self.dirty.push((start, end));
        }
        if c.on {
            self.held[k] = Some(c.tick);
            self.dirty.push((c.tick, c.tick));
        }
    }

    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// Whether [`ChordFollower::update`] has anything to do (new input, or notes held).
    pub fn pending(&self) -> bool {
        !self.dirty.is_empty() || self.held.iter().any(Option::is_some)
    }

    /// Estimate the bars that changed (`now`: the playhead's tick, up to where held notes
    /// sound) into `followed`; whether any bar was estimated.
    pub fn update(
        &mut self,
        now: f64,
        bar_ticks: u32,
        beat_ticks: u32,
        followed: &mut Followed,
    ) -> bool {
        let bt = f64::from(bar_ticks.max(1));
        if now.is_finite() {
            for start in self.held.iter().flatten() {
                if now > *start {
                    self.dirty.push((*start, now));
                }
            }
            self.notes.retain(|n| n.1 >= now - KEEP_BARS * bt);
        }
        let bar_of = |t: f64| (t / bt).floor() as i64;
        let mut bars = BTreeSet::new();
        for (a, b) in self.dirty.drain(..) {
            let (first, last) = (bar_of(a), bar_of(b));
            // A note-off exactly on a bar line ends the bar before.
            let last = if b > a && b == last as f64 * bt {
                last - 1
            } else {
                last
            };
            for bar in first..=last.max(first).min(first + 64) {
                bars.insert(bar);
            }
        }
        let mut any = false;
        for bar in bars {
            if let Some(spans) = self.estimate_bar(bar, bar_ticks, beat_ticks) {
                followed.set(bar, bar_ticks, spans);
                any = true;
            }
        }
        any
    }

    /// The chords of host bar `bar` (ticks from its start); `None` when nothing sounds in it.
    fn estimate_bar(&self, bar: i64, bar_ticks: u32, beat_ticks: u32) -> Option<Vec<ChordSpan>> {
        let bt = f64::from(bar_ticks);
        let (a, b) = (bar as f64 * bt, (bar + 1) as f64 * bt);
        let held = self
            .held
            .iter()
            .enumerate()
            .filter_map(|(k, s)| s.map(|s| (s, f64::INFINITY, k as u8)));
        let notes: Vec<RollNote> = self
            .notes
            .iter()
            .copied()
            .chain(held)
            .filter(|n| n.0 < b && n.1 > a)
            .map(|(s, e, k)| RollNote {
                pitch: k,
                start: (s.max(a) - a).round() as usize,
                end: (e.min(b) - a).round() as usize,
                velocity: 100,
            })
            .filter(|n| n.end > n.start)
            .collect();
        if notes.is_empty() {
            return None;
        }
        let track = estimate_chords(
            &notes,
            bar_ticks as usize,
            bar_ticks as usize,
            beat_ticks as usize,
        );
        let mut spans = track.spans;
        // Silent stretches hold the chord before them (or the first one, at the bar's start).
        let first = spans.iter().find_map(|s| s.chord)?;
        let mut last = first;
        for s in &mut spans {
            match s.chord {
                Some(c) => last = c,
                None => s.chord = Some(last),
            }
        }
        // Merge what is now the same chord.
        let mut merged: Vec<ChordSpan> = Vec::with_capacity(spans.len());
        for s in spans {
            match merged.last_mut() {
                Some(m) if m.chord == s.chord && m.end == s.start => m.end = s.end,
                _ => merged.push(s),
            }
        }
        if let Some(m) = merged.first_mut() {
            m.start = 0;
        }
        Some(merged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(tick: f64, key: u8, on: bool) -> Captured {
        Captured {
            tick,
            key,
            velocity: 90,
            on,
            prompt: false,
        }
    }

    fn chord(f: &mut ChordFollower, keys: &[u8], on: f64, off: Option<f64>) {
        for &k in keys {
            f.push(&ev(on, k, true));
        }
        if let Some(off) = off {
            for &k in keys {
                f.push(&ev(off, k, false));
            }
        }
    }

    #[test]
    fn a_chord_struck_in_a_bar_is_that_bars_chord_at_once() {
        let mut f = ChordFollower::default();
        let mut followed = Followed::default();
        // Bar 2: A minor struck on beat 1 and still held (the bar is in progress).
        chord(&mut f, &[45, 48, 52], 2.0 * 3840.0, None);
        assert!(f.update(2.0 * 3840.0 + 100.0, 3840, 960, &mut followed));
        assert_eq!(followed.track(4, 3840).describe(3840), "- | - | Am");
        // Let go on beat 2: the bar keeps A minor; nothing new to estimate after.
        for k in [45, 48, 52] {
            f.push(&ev(2.0 * 3840.0 + 960.0, k, false));
        }
        assert!(f.update(2.0 * 3840.0 + 2000.0, 3840, 960, &mut followed));
        assert_eq!(followed.track(4, 3840).describe(3840), "- | - | Am");
        assert!(!f.update(3.0 * 3840.0 + 10.0, 3840, 960, &mut followed));
        // F then G in bar 3 (two chords a bar), C held from bar 4 into bar 5.
        chord(
            &mut f,
            &[41, 45, 48],
            3.0 * 3840.0,
            Some(3.0 * 3840.0 + 1920.0),
        );
        chord(
            &mut f,
            &[43, 47, 50],
            3.0 * 3840.0 + 1920.0,
            Some(4.0 * 3840.0),
        );
        chord(&mut f, &[48, 52, 55], 4.0 * 3840.0, None);
        assert!(f.update(5.0 * 3840.0 + 500.0, 3840, 960, &mut followed));
        assert_eq!(
            followed.track(8, 3840).describe(3840),
            "- | - | Am | F G | C | C"
        );
        // As a 2-bar pattern: bars 4 and 5 are the newest of each pattern bar.
        assert_eq!(followed.track(2, 3840).describe(3840), "C | C");
    }
}
