//! Score -> piano roll on one of two time grids.
//!
//! * **Seconds** (the original's): `fps` frames per second through the tempo map. Without
//!   articulation this is pretty_midi's `get_piano_roll(fs)` exactly: velocities of overlapping
//!   notes summed, the sustain pedal as a running maximum, pitch bends interpolated, drums out.
//! * **Beats** (for the DAW): `steps_per_beat` frames per quarter note from the tick grid,
//!   independent of tempo, frame 0 on a bar line. The grid's phase is estimated from the onsets
//!   (POP909's 16ths are shifted from tick 0) and the bar phase comes from downbeat annotations
//!   where they exist, else is estimated from the onsets.

use super::{velocity_to_u8, PianoRoll, PITCHES};
use crate::midi::{Note, Score};
use serde::{Deserialize, Serialize};
use std::path::Path;

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
                let x = steps_per_beat * 4 * num;
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
    /// Grid phase as `tick * steps_per_beat mod ticks_per_beat` of the frame lines.
    pub residue: u64,
    /// Onsets that fall exactly on a frame line.
    pub onsets_on_grid: usize,
    pub onsets: usize,
    /// Frames per bar (from the first time signature; 4/4 when absent).
    pub frames_per_bar: usize,
    /// Whether the bar phase came from downbeat annotations (else estimated).
    pub downbeats_annotated: bool,
    /// Grid frame (before shifting) of roll frame 0.
    pub origin: i64,
}

/// A converted file: the roll plus, on the beats grid, where bars fall.
#[derive(Debug, Clone)]
pub struct ScoreRoll {
    pub roll: PianoRoll,
    /// Frames per bar; bar lines are at multiples of it from frame 0 (beats grid only).
    pub frames_per_bar: Option<usize>,
    pub alignment: Option<BeatsAlignment>,
}

impl ScoreRoll {
    /// Frames at which bars start (empty on the seconds grid).
    pub fn bar_starts(&self) -> Vec<usize> {
        match self.frames_per_bar {
            Some(b) if b > 0 => (0..self.roll.frames()).step_by(b).collect(),
            _ => Vec::new(),
        }
    }
}

/// Upper bound on roll length: two hours at 64 frames/s. Longer means a corrupt tempo map.
pub const MAX_FRAMES: usize = 2 * 3600 * 64;

/// Convert a score. Errors only when the roll would be absurdly long.
pub fn score_to_roll(
    score: &Score,
    opts: &RollOptions,
) -> Result<ScoreRoll, crate::midi::MidiError> {
    match opts.grid {
        Grid::Seconds { fps } => {
            let roll = if opts.articulation || !opts.sustain_pedal {
                seconds_intervals(score, fps, opts)?
            } else {
                let (frames, raw) = pretty_midi_roll(score, fps)?;
                let data = raw.iter().map(|&v| velocity_to_u8(v)).collect();
                PianoRoll::from_raw(frames, data).unwrap_or_default()
            };
            Ok(ScoreRoll {
                roll,
                frames_per_bar: None,
                alignment: None,
            })
        }
        Grid::Beats { steps_per_beat } => beats_roll(score, steps_per_beat.max(1), opts),
    }
}

fn too_long(frames: usize) -> crate::midi::MidiError {
    crate::midi::MidiError::TooLong(format!(
        "{frames} frames (limit {MAX_FRAMES}); the tempo map or note times are corrupt"
    ))
}

/// pretty_midi's `PrettyMIDI.get_piano_roll(fs)` as raw f64 velocities `[128, T]`, bit-exact.
pub fn pretty_midi_roll(
    score: &Score,
    fs: u32,
) -> Result<(usize, Vec<f64>), crate::midi::MidiError> {
    let fs = f64::from(fs);
    let t = |tick: u64| score.tempo.tick_to_time(tick);
    let mut rolls: Vec<(usize, Vec<f64>)> = Vec::new();
    for inst in &score.instruments {
        if inst.notes.is_empty() {
            rolls.push((0, Vec::new()));
            continue;
        }
        let ccs = score.control_changes(inst);
        let bends = score.pitch_bends(inst);
        let end_time = inst
            .notes
            .iter()
            .map(|n| t(n.end_tick))
            .chain(bends.iter().map(|b| t(b.tick)))
            .chain(ccs.iter().map(|c| t(c.tick)))
            .fold(f64::NEG_INFINITY, f64::max);
        let width = (fs * end_time) as usize;
        if width > MAX_FRAMES {
            return Err(too_long(width));
        }
        let mut pr = vec![0f64; PITCHES * width];
        if inst.is_drum {
            rolls.push((width, pr));
            continue;
        }
        for n in &inst.notes {
            let a = ((t(n.start_tick) * fs) as usize).min(width);
            let b = ((t(n.end_tick) * fs) as usize).min(width);
            let row = &mut pr[n.pitch as usize * width..(n.pitch as usize + 1) * width];
            for v in row.iter_mut().take(b).skip(a) {
                *v += f64::from(n.velocity);
            }
        }
        // Sustain pedal: running maximum between pedal-down and pedal-up.
        let mut on_frame = 0usize;
        let mut pedal = false;
        for cc in ccs.iter().filter(|c| c.number == 64) {
            let now = ((t(cc.tick) * fs) as usize).min(width);
            let down = cc.value >= 64;
            if !pedal && down {
                on_frame = now;
                pedal = true;
            } else if pedal && !down {
                if now > on_frame {
                    for p in 0..PITCHES {
                        let row = &mut pr[p * width..(p + 1) * width];
                        let mut m = f64::NEG_INFINITY;
                        for v in &mut row[on_frame..now] {
                            m = m.max(*v);
                            *v = m;
                        }
                    }
                }
                pedal = false;
            }
        }
        apply_pitch_bends(&mut pr, width, score, bends, end_time, fs);
        rolls.push((width, pr));
    }
    let frames = rolls.iter().map(|r| r.0).max().unwrap_or(0);
    let mut out = vec![0f64; PITCHES * frames];
    for (w, r) in &rolls {
        for p in 0..PITCHES {
            for f in 0..*w {
                out[p * frames + f] += r[p * w + f];
            }
        }
    }
    Ok((frames, out))
}

/// pretty_midi's pitch-bend pass: shift by the integer part, interpolate by the fraction.
fn apply_pitch_bends(
    pr: &mut [f64],
    width: usize,
    score: &Score,
    bends: &[crate::midi::PitchBend],
    end_time: f64,
    fs: f64,
) {
    if bends.is_empty() || width == 0 {
        return;
    }
    let mut ordered: Vec<(f64, i16)> = bends
        .iter()
        .map(|b| (score.tempo.tick_to_time(b.tick), b.value))
        .collect();
    ordered.sort_by(|a, b| a.0.total_cmp(&b.0)); // stable, as Python's sorted
    for i in 0..ordered.len() {
        let (start_time, pitch) = ordered[i];
        let end = ordered.get(i + 1).map(|b| b.0).unwrap_or(end_time);
        if pitch.unsigned_abs() < 1 {
            continue;
        }
        let semis = 2.0 * f64::from(pitch) / 8192.0;
        let bend_int = (semis.signum() * semis.abs().floor()) as i64;
        let dec = (semis - bend_int as f64).abs();
        let a = (start_time * fs) as usize;
        let b = ((end * fs) as usize).min(width);
        if a >= b {
            continue;
        }
        for f in a..b {
            let col: Vec<f64> = (0..PITCHES).map(|p| pr[p * width + f]).collect();
            let mut bent = vec![0f64; PITCHES];
            if pitch >= 0 {
                let k = bend_int as usize;
                for p in k..PITCHES {
                    bent[p] = col[p - k];
                }
                let prev = bent.clone();
                for p in 1..PITCHES {
                    bent[p] = (1.0 - dec) * prev[p] + dec * prev[p - 1];
                }
            } else {
                let k = (-bend_int) as usize;
                for p in 0..PITCHES - k {
                    bent[p] = col[p + k];
                }
                let prev = bent.clone();
                for p in 0..PITCHES - 1 {
                    bent[p] = (1.0 - dec) * prev[p] + dec * prev[p + 1];
                }
            }
            for p in 0..PITCHES {
                pr[p * width + f] = bent[p];
            }
        }
    }
}

/// A note as a frame interval, before articulation.
#[derive(Clone, Copy)]
struct Span {
    pitch: u8,
    start: i64,
    end: i64,
    velocity: u8,
}

/// Paint spans into a roll: max-combined, with the optional re-strike gap.
fn paint(spans: &mut [Span], frames: usize, articulation: bool) -> PianoRoll {
    let mut roll = PianoRoll::new(frames);
    spans.sort_by_key(|s| (s.pitch, s.start, std::cmp::Reverse(s.end)));
    let n = spans.len();
    for i in 0..n {
        let mut s = spans[i];
        if articulation {
            let mut j = i + 1;
            while j < n && spans[j].pitch == s.pitch && spans[j].start <= s.start {
                j += 1;
            }
            if j < n && spans[j].pitch == s.pitch {
                let next_start = spans[j].start;
                // Leave a one-frame gap before a repeat, when the note keeps at least one frame.
                if next_start <= s.end && next_start - 1 > s.start {
                    s.end = next_start - 1;
                }
            }
        }
        let a = s.start.max(0) as usize;
        let b = (s.end.max(0) as usize).min(frames);
        let v = velocity_to_u8(f64::from(s.velocity));
        let row = roll.row_mut(s.pitch as usize);
        for x in row.iter_mut().take(b).skip(a) {
            *x = (*x).max(v);
        }
    }
    roll
}

/// End tick of each note extended while the sustain pedal is down (per instrument).
fn pedal_end(score: &Score, inst: &crate::midi::Instrument, n: &Note) -> u64 {
    let ccs = score.control_changes(inst);
    let mut down_since: Option<u64> = None;
    for cc in ccs.iter().filter(|c| c.number == 64) {
        let down = cc.value >= 64;
        match (down_since, down) {
            (None, true) => down_since = Some(cc.tick),
            (Some(start), false) => {
                if start <= n.end_tick && cc.tick > n.end_tick {
                    return cc.tick;
                }
                down_since = None;
            }
            _ => {}
        }
    }
    n.end_tick
}

fn seconds_intervals(
    score: &Score,
    fps: u32,
    opts: &RollOptions,
) -> Result<PianoRoll, crate::midi::MidiError> {
    let fs = f64::from(fps);
    let mut spans = Vec::new();
    for inst in score.instruments.iter().filter(|i| !i.is_drum) {
        for n in &inst.notes {
            let end_tick = if opts.sustain_pedal {
                pedal_end(score, inst, n)
            } else {
                n.end_tick
            };
            let start = (score.tempo.tick_to_time(n.start_tick) * fs) as i64;
            let end = ((score.tempo.tick_to_time(end_tick) * fs) as i64).max(start + 1);
            spans.push(Span {
                pitch: n.pitch,
                start,
                end,
                velocity: n.velocity,
            });
        }
    }
    let frames = spans.iter().map(|s| s.end).max().unwrap_or(0).max(0) as usize;
    if frames > MAX_FRAMES {
        return Err(too_long(frames));
    }
    Ok(paint(&mut spans, frames, opts.articulation))
}

/// Round `(u - r) / ppq` half up, where `u = tick * steps_per_beat`.
fn grid_frame(tick: u64, spb: u64, residue: u64, ppq: u64) -> i64 {
    let u = (tick * spb) as i64 - residue as i64;
    (u + ppq as i64 / 2).div_euclid(ppq as i64)
}

fn beats_roll(
    score: &Score,
    spb: u32,
    opts: &RollOptions,
) -> Result<ScoreRoll, crate::midi::MidiError> {
    let ppq = u64::from(score.ticks_per_beat.max(1));
    let spb64 = u64::from(spb);
    let notes: Vec<(&crate::midi::Instrument, &Note)> = score
        .instruments
        .iter()
        .filter(|i| !i.is_drum)
        .flat_map(|i| i.notes.iter().map(move |n| (i, n)))
        .collect();

    // Grid phase: the most common onset residue (ties to the smallest, so 0 wins for clean files).
    let mut counts: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
    for (_, n) in &notes {
        *counts.entry((n.start_tick * spb64) % ppq).or_default() += 1;
    }
    let (residue, on_grid) = counts
        .iter()
        .map(|(&r, &c)| (r, c))
        .max_by_key(|&(r, c)| (c, std::cmp::Reverse(r)))
        .unwrap_or((0, 0));

    let (num, den) = score.time_signature_at(0);
    let frames_per_bar = opts
        .grid
        .frames_per_bar(u32::from(num), den)
        .filter(|&b| b > 0)
        .unwrap_or(4 * spb as usize);

    let onset_frames: Vec<i64> = notes
        .iter()
        .map(|(_, n)| grid_frame(n.start_tick, spb64, residue, ppq))
        .collect();

    // Bar phase: annotated downbeats, else estimated from the onsets.
    let (bar_offset, annotated) = match opts.downbeats.as_deref() {
        Some(db) if !db.is_empty() => {
            let mut hist = vec![0usize; frames_per_bar];
            for &s in db {
                let tick = score.tempo.time_to_tick(s).max(0.0).round() as u64;
                let g = grid_frame(tick, spb64, residue, ppq);
                hist[g.rem_euclid(frames_per_bar as i64) as usize] += 1;
            }
            let best = (0..frames_per_bar).max_by_key(|&i| (hist[i], std::cmp::Reverse(i)));
            (best.unwrap_or(0), true)
        }
        _ => (
            estimate_bar_offset(
                &notes
                    .iter()
                    .zip(&onset_frames)
                    .map(|((_, n), &g)| {
                        (g, n.pitch, grid_frame(n.end_tick, spb64, residue, ppq) - g)
                    })
                    .collect::<Vec<_>>(),
                frames_per_bar,
                residue == 0,
            ),
            false,
        ),
    };
    let first = onset_frames
        .iter()
        .copied()
        .min()
        .unwrap_or(0)
        .min(grid_frame(0, spb64, residue, ppq));
    let fpb = frames_per_bar as i64;
    // Largest origin <= first that lies on a bar line.
    let origin = first - (first - bar_offset as i64).rem_euclid(fpb);

    let mut spans = Vec::with_capacity(notes.len());
    for (inst, n) in &notes {
        let end_tick = if opts.sustain_pedal {
            pedal_end(score, inst, n)
        } else {
            n.end_tick
        };
        let start = grid_frame(n.start_tick, spb64, residue, ppq) - origin;
        let end = (grid_frame(end_tick, spb64, residue, ppq) - origin).max(start + 1);
        spans.push(Span {
            pitch: n.pitch,
            start,
            end,
            velocity: n.velocity,
        });
    }
    let frames = spans.iter().map(|s| s.end).max().unwrap_or(0).max(0) as usize;
    if frames > MAX_FRAMES {
        return Err(too_long(frames));
    }
    let roll = paint(&mut spans, frames, opts.articulation);
    Ok(ScoreRoll {
        roll,
        frames_per_bar: Some(frames_per_bar),
        alignment: Some(BeatsAlignment {
            residue,
            onsets_on_grid: on_grid,
            onsets: notes.len(),
            frames_per_bar,
            downbeats_annotated: annotated,
            origin,
        }),
    })
}

/// Estimate which frame (mod `frames_per_bar`) is the downbeat from `(frame, pitch, length)`
/// onsets: long notes, low notes and chords weigh more on downbeats, and the half-bar helps.
/// A file quantised to tick 0 (`prefer_zero`) keeps its bar lines at 0 unless the evidence for
/// another phase is clearly stronger.
pub fn estimate_bar_offset(
    onsets: &[(i64, u8, i64)],
    frames_per_bar: usize,
    prefer_zero: bool,
) -> usize {
    if frames_per_bar == 0 || onsets.is_empty() {
        return 0;
    }
    let fpb = frames_per_bar as i64;
    let mut w = vec![0f64; frames_per_bar];
    for &(g, pitch, len) in onsets {
        let bass = if pitch < 55 { 2.0 } else { 1.0 };
        let weight = bass * (1.0 + (len.clamp(1, fpb) as f64).ln());
        w[g.rem_euclid(fpb) as usize] += weight;
    }
    let half = frames_per_bar / 2;
    let score = |b: usize| w[b] + 0.5 * w[(b + half) % frames_per_bar];
    let best = (0..frames_per_bar)
        .max_by(|&a, &b| score(a).total_cmp(&score(b)).then(b.cmp(&a)))
        .unwrap_or(0);
    if prefer_zero && score(0) >= 0.8 * score(best) {
        0
    } else {
        best
    }
}

/// Downbeat times (seconds) from a POP909-style `beat_midi.txt` beside `midi_path`: lines of
/// `time beat downbeat`, where the third column marks 4/4 downbeats.
pub fn read_pop909_downbeats(midi_path: &Path) -> Option<Vec<f64>> {
    let dir = midi_path.parent()?;
    let text = std::fs::read_to_string(dir.join("beat_midi.txt")).ok()?;
    let mut out = Vec::new();
    for line in text.lines() {
        let cols: Vec<f64> = line
            .split_whitespace()
            .filter_map(|c| c.parse().ok())
            .collect();
        if cols.len() >= 3 && cols[2] >= 0.5 && cols[0].is_finite() {
            out.push(cols[0]);
        }
    }
    (!out.is_empty()).then_some(out)
}
