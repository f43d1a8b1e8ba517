//! Input notes captured as a prompt: the audio thread pushes raw on/offs with their timeline
//! tick into a preallocated ring; the worker pairs them into notes and cuts the latest bars out
//! as the known part for "Continue input".

use super::pattern::PatternNote;
use std::collections::VecDeque;

/// Slots of the audio -> worker ring (a fast player fills ~20 a second).
pub const CAPTURE_RING: usize = 4096;
/// Notes the worker remembers.
const KEEP_NOTES: usize = 1024;

/// One captured note-on or note-off at an unwrapped timeline tick.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Captured {
    pub tick: f64,
    pub key: u8,
    pub velocity: u8,
    pub on: bool,
    /// Captured as the prompt ('Capture input'), not only for the chord follower.
    pub prompt: bool,
}

/// The worker's record of what was played in.
#[derive(Debug)]
pub struct CaptureLog {
    held: [Option<(f64, u8)>; 128],
    notes: VecDeque<(f64, f64, u8, u8)>,
}

impl Default for CaptureLog {
    fn default() -> Self {
        Self {
            held: [None; 128],
            notes: VecDeque::new(),
        }
    }
}

impl CaptureLog {
    pub fn push(&mut self, c: Captured) {
        if !c.tick.is_finite() {
            return;
        }
        let k = usize::from(c.key & 127);
        if let Some((start, vel)) = self.held[k].take() {
            self.record(start, c.tick.max(start), c.key & 127, vel);
        }
        if c.on {
            self.held[k] = Some((c.tick, c.velocity.clamp(1, 127)));
        }
    }

    fn record(&mut self, start: f64, end: f64, key: u8, vel: u8) {
        if end > start {
            self.notes.push_back((start, end, key, vel));
            if self.notes.len() > KEEP_NOTES {
                self.notes.pop_front();
            }
        }
    }

    pub fn clear(&mut self) {
        self.held = [None; 128];
        self.notes.clear();
    }

    /// The latest `len` ticks of input, ending on the bar line after the last onset, as notes
    /// from tick 0 (held notes run to the window's end).
    pub fn prompt(&self, len: u32, bar_ticks: u32) -> Vec<PatternNote> {
        let held = self
            .held
            .iter()
            .enumerate()
            .filter_map(|(k, h)| h.map(|(s, v)| (s, f64::INFINITY, k as u8, v)));
        let all: Vec<(f64, f64, u8, u8)> = self.notes.iter().copied().chain(held).collect();
        let Some(last) = all.iter().map(|n| n.0).reduce(f64::max) else {
            return Vec::new();
        };
        let bar = f64::from(bar_ticks.max(1));
        let end = ((last / bar).floor() + 1.0) * bar;
        let start = end - f64::from(len);
        let mut out: Vec<PatternNote> = all
            .into_iter()
            .filter(|n| n.0 >= start && n.0 < end)
            .map(|(s, e, k, v)| PatternNote {
                start: (s - start).round() as u32,
                end: (e.min(end) - start).round() as u32,
                pitch: k,
                velocity: v,
            })
            .filter(|n| n.end > n.start)
            .collect();
        out.sort_unstable();
        out
    }
}
