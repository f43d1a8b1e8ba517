//! Score -> piano roll on one of two time grids.
//!
//! * **Seconds** (the original's): `fps` frames per second through the tempo map. Without
//!   articulation this is pretty_midi's `get_piano_roll(fs)` exactly: velocities of overlapping
//!   notes summed, the sustain pedal as a running maximum, pitch bends interpolated, drums out.
//! * **Beats** (for the DAW): `steps_per_beat` frames per quarter note from the tick grid,
//!   independent of tempo, frame 0 on a bar line. The grid's phase is estimated from the onsets
//!   (POP909's 16ths are shifted from tick 0), piecewise where a section of the file is shifted
//!   (see `PhaseMap`); the bar length and phase come from downbeat annotations where they exist
//!   (and [`ScoreRoll::downbeats`] keeps every annotated downbeat, irregular bars included),
//!   else from the time signature and the onsets.
//!
//! On POP909 (819 songs, `examples/pop909_alignment.rs`) 90.8% of onsets fall exactly on a
//! frame at 4 steps per beat (89.6% with one phase per file). 95% is out of reach for any phase
//! choice: even a free phase per bar gives 91.1%, and 24 steps per beat 92.4%; the rest are
//! unquantised songs, near misses, triplets and free timing.

use super::beats::{beats_roll, PhaseMap};
use super::seconds::{pretty_midi_u8, seconds_spans};
use super::{velocity_to_u8, PianoRoll, RollNote, PITCHES};
use crate::midi::Score;
use serde::{Deserialize, Serialize};

/// The time axis of a roll.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Grid {
    /// `fps` frames per second (the original JiT-Music's grid).
    Seconds { fps: u32 },
    /// `steps_per_beat` frames per quarter note, independent of tempo.
    Beats { steps_per_beat: u32 },
}

impl Default for Grid {
    fn default() -> Self {
        Grid::Beats { steps_per_beat: 4 }
    }
}

impl Grid {
    /// Frames per quarter note at `bpm` (for the seconds grid this depends on tempo).
    pub fn frames_per_beat(&self, bpm: f64) -> f64 {
        match *self {
            Grid::Seconds { fps } => f64::from(fps) * 60.0 / bpm,
            Grid::Beats { steps_per_beat } => f64::from(steps_per_beat),
        }
    }

    /// Frames in one bar of `num/den` (beats grid only; seconds grids have no bars).
    pub fn frames_per_bar(&self, num: u32, den: u32) -> Option<usize> {
        match *self {
            Grid::Beats { steps_per_beat } => {
                let x = u64::from(steps_per_beat) * 4 * u64::from(num);
                let den = u64::from(den);
                (den > 0 && x % den == 0).then(|| (x / den) as usize)
            }
            Grid::Seconds { .. } => None,
        }
    }

    pub fn describe(&self) -> String {
        match *self {
            Grid::Seconds { fps } => format!("seconds grid, {fps} frames/s"),
            Grid::Beats { steps_per_beat } => format!("beats grid, {steps_per_beat} steps/beat"),
        }
    }
}

/// How a score becomes a roll.
#[derive(Debug, Clone, PartialEq)]
pub struct RollOptions {
    pub grid: Grid,
    /// Keep a re-struck pitch as two notes (a one-frame gap before the repeat).
    pub articulation: bool,
    /// Extend notes while the sustain pedal (CC64 >= 64) is down.
    pub sustain_pedal: bool,
    /// Downbeat times in seconds (for example from POP909's `beat_midi.txt`).
    pub downbeats: Option<Vec<f64>>,
}

impl RollOptions {
    /// Exactly the original's data path: pretty_midi at `fps`, no articulation.
    pub fn pretty_midi(fps: u32) -> Self {
        Self {
            grid: Grid::Seconds { fps },
            articulation: false,
            sustain_pedal: true,
            downbeats: None,
        }
    }

    /// The DAW grid: `steps_per_beat` frames per beat, articulation on, no pedal smear.
    pub fn beats(steps_per_beat: u32) -> Self {
        Self {
            grid: Grid::Beats { steps_per_beat },
            articulation: true,
            sustain_pedal: false,
            downbeats: None,
        }
    }

    /// The grid's default for `grid`.
    pub fn for_grid(grid: Grid, articulation: bool) -> Self {
        match grid {
            Grid::Seconds { fps } => Self {
                articulation,
                ..Self::pretty_midi(fps)
            },
            Grid::Beats { steps_per_beat } => Self {
                articulation,
                ..Self::beats(steps_per_beat)
            },
        }
    }
}

/// Where the beats grid was placed on a file's ticks.
#[derive(Debug, Clone, PartialEq)]
pub struct BeatsAlignment {
    /// Grid phase as `tick * steps_per_beat mod ticks_per_beat` of the frame lines: the most
    /// common onset residue (the phase of most of the file).
    pub residue: u64,
    /// The piecewise phase: `(first tick, residue)` of each section, in order. One entry for a
    /// file with one phase; a section whose onsets are all shifted (POP909 has songs whose
    /// chorus sits 60 ticks off the verse) gets its own, and frame numbering stays continuous.
    pub phase_segments: Vec<(u64, u64)>,
    /// Onsets that fall exactly on a frame line.
    pub onsets_on_grid: usize,
    pub onsets: usize,
    /// Frames per bar: from the annotated downbeats' spacing where there are any, else from the
    /// time signature at tick 0 (4/4 when absent or a one-beat `1/x` export artefact).
    pub frames_per_bar: usize,
    /// Whether the bar phase came from downbeat annotations (else estimated).
    pub downbeats_annotated: bool,
    /// Grid frame (before shifting) of roll frame 0.
    pub origin: i64,
}

/// A note on a roll's frame grid with the part (non-drum instrument, in file order) it came from,
/// before articulation: what a multi-channel roll, a part mask or a prompt is built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GridNote {
    pub note: RollNote,
    /// Index into [`ScoreRoll::parts`].
    pub part: u16,
}

/// How a file's time maps onto roll frames (kept so that annotations in seconds, such as
/// chord labels, land on the same frames as the notes).
#[derive(Debug, Clone)]
pub(super) enum FrameMap {
    Seconds { fps: u32 },
    Beats { phase: PhaseMap, origin: i64 },
}

/// A converted file: the roll plus, on the beats grid, where bars fall.
#[derive(Debug, Clone)]
pub struct ScoreRoll {
    pub roll: PianoRoll,
    /// The notes on the grid, sorted by (start, pitch), clipped to the roll: note boundaries
    /// the roll alone cannot show (re-strikes, overlaps) and the part of each note.
    pub notes: Vec<GridNote>,
    /// Names of the parts (the non-drum instruments, in file order; "" when unnamed).
    pub parts: Vec<String>,
    pub(super) frame_map: FrameMap,
    /// Frames per bar; bar lines are at multiples of it from frame 0 (beats grid only).
    pub frames_per_bar: Option<usize>,
    pub alignment: Option<BeatsAlignment>,
    /// The annotated downbeats as roll frames (beats grid with downbeat annotations only),
    /// ascending, those inside the roll. Empty otherwise. See [`Self::bar_starts`].
    pub downbeats: Vec<usize>,
}

impl ScoreRoll {
    /// Frames at which bars start, ascending (empty on the seconds grid). With annotations,
    /// the annotated downbeats, extended by whole bars before the first and after the last, so
    /// that a crop can start on a real downbeat even after an irregular bar; else the multiples
    /// of `frames_per_bar` (frame 0 is a bar line).
    pub fn bar_starts(&self) -> Vec<usize> {
        let frames = self.roll.frames();
        let Some(fpb) = self.frames_per_bar.filter(|&b| b > 0) else {
            return Vec::new();
        };
        let (Some(&lo), Some(&hi)) = (self.downbeats.first(), self.downbeats.last()) else {
            return (0..frames).step_by(fpb).collect();
        };
        let mut out: Vec<usize> = (0..=lo / fpb).rev().map(|k| lo - k * fpb).collect();
        out.pop(); // `lo` itself comes with the annotated list
        out.extend_from_slice(&self.downbeats);
        out.extend((hi + fpb..frames).step_by(fpb));
        out
    }

    /// The part that carries the melody: one named so (POP909's MELODY, a "vocal", "lead" or
    /// "soprano"), else, with several parts, the one that sounds highest on average.
    pub fn melody_part(&self) -> Option<u16> {
        let named = self.parts.iter().position(|n| {
            let n = n.to_ascii_lowercase();
            ["melody", "vocal", "lead", "soprano"]
                .iter()
                .any(|k| n.contains(k))
        });
        if let Some(i) = named {
            return u16::try_from(i).ok();
        }
        let mut sum: std::collections::BTreeMap<u16, (f64, f64)> = Default::default();
        for n in &self.notes {
            let e = sum.entry(n.part).or_default();
            e.0 += f64::from(n.note.pitch);
            e.1 += 1.0;
        }
        if sum.len() < 2 {
            return None;
        }
        sum.into_iter()
            .max_by(|a, b| (a.1 .0 / a.1 .1).total_cmp(&(b.1 .0 / b.1 .1)))
            .map(|(p, _)| p)
    }

    /// The roll frame of a time in seconds (annotations such as POP909's chord labels).
    pub fn frame_at_seconds(&self, score: &Score, seconds: f64) -> i64 {
        match &self.frame_map {
            FrameMap::Seconds { fps } => (seconds * f64::from(*fps)).floor() as i64,
            FrameMap::Beats { phase, origin } => {
                let tick = score.tempo.time_to_tick(seconds).clamp(0.0, 1e18).round() as u64;
                phase.frame(tick) - origin
            }
        }
    }
}

/// The notes of `spans` (one per note, before articulation) as sorted [`GridNote`]s inside
/// `0..frames`.
pub(super) fn grid_notes(spans: &[Span], frames: usize) -> Vec<GridNote> {
    let mut out: Vec<GridNote> = spans
        .iter()
        .filter_map(|s| {
            let a = s.start.clamp(0, frames as i64) as usize;
            let b = s.end.clamp(0, frames as i64) as usize;
            (b > a).then_some(GridNote {
                note: RollNote {
                    pitch: s.pitch,
                    start: a,
                    end: b,
                    velocity: s.velocity.clamp(1, 127),
                },
                part: s.part,
            })
        })
        .collect();
    out.sort_by_key(|n| (n.note.start, n.note.pitch, n.note.end, n.part));
    out
}

/// Names of the parts [`GridNote::part`] indexes: the non-drum instruments in file order.
pub(super) fn part_names(score: &Score) -> Vec<String> {
    score
        .instruments
        .iter()
        .filter(|i| !i.is_drum)
        .map(|i| i.name.clone())
        .collect()
}

/// Upper bound on roll length: two hours at 64 frames/s. Longer means a corrupt tempo map.
pub const MAX_FRAMES: usize = 2 * 3600 * 64;

/// Finest beats grid: 960 steps per quarter note (any real file's resolution divides into it).
pub const MAX_STEPS_PER_BEAT: u32 = 960;

/// Convert a score. Errors only when the roll would be absurdly long (or the beats grid is
/// finer than [`MAX_STEPS_PER_BEAT`]).
pub fn score_to_roll(
    score: &Score,
    opts: &RollOptions,
) -> Result<ScoreRoll, crate::midi::MidiError> {
    match opts.grid {
        Grid::Seconds { fps } => {
            let mut spans = seconds_spans(score, fps, opts)?;
            let frames = spans.iter().map(|s| s.end).max().unwrap_or(0).max(0) as usize;
            let notes = grid_notes(&spans, frames);
            let roll = if opts.articulation || !opts.sustain_pedal {
                paint(&mut spans, frames, opts.articulation)
            } else {
                pretty_midi_u8(score, fps)?
            };
            Ok(ScoreRoll {
                roll,
                notes,
                parts: part_names(score),
                frame_map: FrameMap::Seconds { fps },
                frames_per_bar: None,
                alignment: None,
                downbeats: Vec::new(),
            })
        }
        Grid::Beats { steps_per_beat } => {
            if steps_per_beat > MAX_STEPS_PER_BEAT {
                return Err(crate::midi::MidiError::Unsupported(format!(
                    "{steps_per_beat} steps per beat (at most {MAX_STEPS_PER_BEAT})"
                )));
            }
            beats_roll(score, steps_per_beat.max(1), opts)
        }
    }
}

pub(super) fn too_long(frames: usize) -> crate::midi::MidiError {
    crate::midi::MidiError::TooLong(format!(
        "{frames} frames (limit {MAX_FRAMES}); the tempo map or note times are corrupt"
    ))
}

/// A note as a frame interval, before articulation.
#[derive(Clone, Copy)]
pub(super) struct Span {
    pub pitch: u8,
    pub start: i64,
    pub end: i64,
    pub velocity: u8,
    pub part: u16,
}

/// Paint spans into a roll: max-combined, with the optional re-strike gap.
pub(super) fn paint(spans: &mut [Span], frames: usize, articulation: bool) -> PianoRoll {
    let mut roll = PianoRoll::new(frames);
    // By (pitch, start, later end first), packed into one key: after the length check every
    // frame fits in 24 bits.
    let key = |s: &Span| {
        let f = |x: i64| x.clamp(0, (1 << 24) - 1) as u64;
        (u64::from(s.pitch) << 48) | (f(s.start) << 24) | ((1 << 24) - 1 - f(s.end))
    };
    spans.sort_unstable_by_key(key);
    let n = spans.len();
    if articulation {
        // Each note ends a frame before the next later-starting note of its pitch, when that
        // one starts before it ends and the note keeps at least one frame. `next` skips the
        // notes that start together (one pass from the end, so that duplicates cost nothing).
        let mut next_start: Option<(u8, i64)> = None;
        let mut i = n;
        while i > 0 {
            let group_end = i;
            let (p, s0) = (spans[i - 1].pitch, spans[i - 1].start);
            while i > 0 && spans[i - 1].pitch == p && spans[i - 1].start == s0 {
                i -= 1;
            }
            let next = next_start.filter(|&(np, _)| np == p).map(|(_, s)| s);
            if let Some(ns) = next {
                for s in &mut spans[i..group_end] {
                    if ns <= s.end && ns - 1 > s.start {
                        s.end = ns - 1;
                    }
                }
            }
            next_start = Some((p, s0));
        }
    }
    let cells: u64 = spans
        .iter()
        .map(|s| (s.end.clamp(0, frames as i64) - s.start.clamp(0, frames as i64)).max(0) as u64)
        .sum();
    if cells <= 4 * (PITCHES * frames) as u64 {
        for s in spans.iter() {
            let a = s.start.clamp(0, frames as i64) as usize;
            let b = s.end.clamp(0, frames as i64) as usize;
            let v = velocity_to_u8(f64::from(s.velocity));
            for x in roll.row_mut(s.pitch as usize).iter_mut().take(b).skip(a) {
                *x = (*x).max(v);
            }
        }
        return roll;
    }
    // Pathological overlap (a crafted file): paint each cell once, loudest note first, skipping
    // painted cells through a "next unpainted frame" forest.
    let mut nxt: Vec<usize> = Vec::new();
    let find = |nxt: &mut Vec<usize>, mut f: usize| -> usize {
        let mut root = f;
        while nxt[root] != root {
            root = nxt[root];
        }
        while nxt[f] != root {
            let up = nxt[f];
            nxt[f] = root;
            f = up;
        }
        root
    };
    for group in spans.chunk_by_mut(|a, b| a.pitch == b.pitch) {
        group.sort_unstable_by_key(|s| std::cmp::Reverse(s.velocity));
        nxt.clear();
        nxt.extend(0..=frames);
        let row = roll.row_mut(group[0].pitch as usize);
        for s in group.iter() {
            let a = s.start.clamp(0, frames as i64) as usize;
            let b = s.end.clamp(0, frames as i64) as usize;
            let v = velocity_to_u8(f64::from(s.velocity));
            let mut f = find(&mut nxt, a);
            while f < b {
                row[f] = v;
                nxt[f] = f + 1;
                f = find(&mut nxt, f + 1);
            }
        }
    }
    roll
}

/// Per instrument, the sustain-pedal intervals `(down tick, up tick)` (CC64 >= 64 is down); a
/// pedal still down at the end extends nothing.
pub(super) fn pedal_ticks(score: &Score, inst: &crate::midi::Instrument) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut down_since: Option<u64> = None;
    for cc in score
        .control_changes(inst)
        .iter()
        .filter(|c| c.number == 64)
    {
        match (down_since, cc.value >= 64) {
            (None, true) => down_since = Some(cc.tick),
            (Some(start), false) => {
                out.push((start, cc.tick));
                down_since = None;
            }
            _ => {}
        }
    }
    out
}

/// End tick of a note extended while the sustain pedal is down: to the pedal-up of the interval
/// that holds the note's end (`down <= end < up`).
pub(super) fn pedal_end(pedal: &[(u64, u64)], end_tick: u64) -> u64 {
    let i = pedal.partition_point(|&(down, _)| down <= end_tick);
    match i.checked_sub(1).map(|i| pedal[i]) {
        Some((_, up)) if up > end_tick => up,
        _ => end_tick,
    }
}
