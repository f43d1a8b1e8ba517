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

/// A converted file: the roll plus, on the beats grid, where bars fall.
#[derive(Debug, Clone)]
pub struct ScoreRoll {
    pub roll: PianoRoll,
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
            let roll = if opts.articulation || !opts.sustain_pedal {
                seconds_intervals(score, fps, opts)?
            } else {
                pretty_midi_u8(score, fps)?
            };
            Ok(ScoreRoll {
                roll,
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

fn too_long(frames: usize) -> crate::midi::MidiError {
    crate::midi::MidiError::TooLong(format!(
        "{frames} frames (limit {MAX_FRAMES}); the tempo map or note times are corrupt"
    ))
}

/// pretty_midi's `Instrument.get_end_time()` and the roll width `int(fs * end_time)` it gives.
fn instrument_width(score: &Score, inst: &crate::midi::Instrument, fs: f64) -> (f64, usize) {
    let t = |tick: u64| score.tempo.tick_to_time(tick);
    let end_time = inst
        .notes
        .iter()
        .map(|n| t(n.end_tick))
        .chain(score.pitch_bends(inst).iter().map(|b| t(b.tick)))
        .chain(score.control_changes(inst).iter().map(|c| t(c.tick)))
        .fold(f64::NEG_INFINITY, f64::max);
    (end_time, (fs * end_time) as usize)
}

/// pretty_midi's sustain-pedal intervals `[on, now)` in frames (CC64 >= 64 is down), clipped to
/// the instrument's width; only those that change anything (`now > on`).
fn pedal_frames(
    score: &Score,
    inst: &crate::midi::Instrument,
    fs: f64,
    width: usize,
) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut on_frame = 0usize;
    let mut pedal = false;
    for cc in score
        .control_changes(inst)
        .iter()
        .filter(|c| c.number == 64)
    {
        let now = ((score.tempo.tick_to_time(cc.tick) * fs) as usize).min(width);
        let down = cc.value >= 64;
        if !pedal && down {
            on_frame = now;
            pedal = true;
        } else if pedal && !down {
            if now > on_frame {
                out.push((on_frame, now));
            }
            pedal = false;
        }
    }
    out
}

/// pretty_midi's `PrettyMIDI.get_piano_roll(fs)` as raw f64 velocities `[128, T]`, bit-exact.
pub fn pretty_midi_roll(
    score: &Score,
    fs: u32,
) -> Result<(usize, Vec<f64>), crate::midi::MidiError> {
    let fs = f64::from(fs);
    let t = |tick: u64| score.tempo.tick_to_time(tick);
    // Widths first, so that nothing is allocated for an absurd file and instruments can be
    // summed into the output one at a time (in order, as pretty_midi adds them).
    let mut widths = Vec::with_capacity(score.instruments.len());
    for inst in &score.instruments {
        let (end_time, width) = if inst.notes.is_empty() {
            (0.0, 0)
        } else {
            instrument_width(score, inst, fs)
        };
        if width > MAX_FRAMES {
            return Err(too_long(width));
        }
        widths.push((end_time, width));
    }
    let frames = widths.iter().map(|w| w.1).max().unwrap_or(0);
    let mut out = vec![0f64; PITCHES * frames];
    let mut pr: Vec<f64> = Vec::new();
    for (inst, &(end_time, width)) in score.instruments.iter().zip(&widths) {
        if inst.notes.is_empty() || inst.is_drum || width == 0 {
            continue; // all zeros: adds nothing
        }
        pr.clear();
        pr.resize(PITCHES * width, 0.0);
        for n in &inst.notes {
            let a = ((t(n.start_tick) * fs) as usize).min(width);
            let b = ((t(n.end_tick) * fs) as usize).min(width);
            let row = &mut pr[n.pitch as usize * width..(n.pitch as usize + 1) * width];
            for v in row.iter_mut().take(b).skip(a) {
                *v += f64::from(n.velocity);
            }
        }
        // Sustain pedal: running maximum between pedal-down and pedal-up.
        for (on, now) in pedal_frames(score, inst, fs, width) {
            for p in 0..PITCHES {
                let row = &mut pr[p * width..(p + 1) * width];
                let mut m = f64::NEG_INFINITY;
                for v in &mut row[on..now] {
                    m = m.max(*v);
                    *v = m;
                }
            }
        }
        apply_pitch_bends(&mut pr, width, score, score.pitch_bends(inst), end_time, fs);
        for p in 0..PITCHES {
            let dst = &mut out[p * frames..p * frames + width];
            for (o, v) in dst.iter_mut().zip(&pr[p * width..(p + 1) * width]) {
                *o += *v;
            }
        }
    }
    Ok((frames, out))
}

/// `velocity_to_u8(min(v, 127))` for (saturated) integer velocity sums.
fn u8_table() -> [u8; 256] {
    let mut t = [0u8; 256];
    for (v, slot) in t.iter_mut().enumerate() {
        *slot = velocity_to_u8(v.min(127) as f64);
    }
    t
}

/// Add `v` over `[a, b)` of every span into `rows` (`[128, width]`), saturating at 255.
///
/// Saturation is exact for the stored form: a cell is clipped at 127 in the end, and both the
/// saturating sum and the pedal's running maximum are monotone. A crafted pile of long notes
/// (more cells than 4 x the roll) is summed with prefix sums instead of cell by cell.
fn add_spans(rows: &mut [u8], width: usize, spans: &[(u8, u32, u32, u8)], diff: &mut Vec<i64>) {
    let cells: u64 = spans.iter().map(|s| u64::from(s.2 - s.1)).sum();
    if cells <= 4 * rows.len() as u64 {
        for &(p, a, b, v) in spans {
            let row = &mut rows[usize::from(p) * width..(usize::from(p) + 1) * width];
            for x in &mut row[a as usize..b as usize] {
                *x = x.saturating_add(v);
            }
        }
        return;
    }
    let mut sorted = spans.to_vec();
    sorted.sort_unstable_by_key(|s| s.0);
    for group in sorted.chunk_by(|a, b| a.0 == b.0) {
        diff.clear();
        diff.resize(width + 1, 0);
        for &(_, a, b, v) in group {
            diff[a as usize] += i64::from(v);
            diff[b as usize] -= i64::from(v);
        }
        let p = usize::from(group[0].0);
        let mut acc = 0i64;
        for (x, d) in rows[p * width..(p + 1) * width].iter_mut().zip(diff.iter()) {
            acc += *d;
            *x = x.saturating_add(acc.clamp(0, 255) as u8);
        }
    }
}

/// One pitch of a pedalled instrument: its notes summed, the running maximum taken inside each
/// pedal interval `[on, now)` (restarting at each), and the result added (saturating) into
/// `row`. The row is piecewise constant between note edges and interval bounds, so it is
/// walked piece by piece and each piece is a fill.
fn add_pedalled_row(
    row: &mut [u8],
    spans: &[(u8, u32, u32, u8)],
    pedal: &[(usize, usize)],
    edges: &mut Vec<(usize, i64)>,
) {
    edges.clear();
    for &(_, a, b, v) in spans {
        edges.push((a as usize, i64::from(v)));
        edges.push((b as usize, -i64::from(v)));
    }
    edges.sort_unstable_by_key(|e| e.0);
    let (mut i, mut k) = (0usize, 0usize);
    let (mut sum, mut run, mut run_of) = (0i64, 0i64, usize::MAX);
    let Some(&(mut cur, _)) = edges.first() else {
        return;
    };
    loop {
        while i < edges.len() && edges[i].0 == cur {
            sum += edges[i].1;
            i += 1;
        }
        while k < pedal.len() && pedal[k].1 <= cur {
            k += 1;
        }
        let in_pedal = k < pedal.len() && pedal[k].0 <= cur;
        let mut next = row.len();
        if i < edges.len() {
            next = next.min(edges[i].0);
        }
        if k < pedal.len() {
            next = next.min(if in_pedal { pedal[k].1 } else { pedal[k].0 });
        }
        if (i == edges.len() && !in_pedal) || next <= cur {
            break;
        }
        let value = if in_pedal {
            if run_of != k {
                run_of = k;
                run = 0;
            }
            run = run.max(sum);
            run
        } else {
            sum
        };
        let v = value.clamp(0, 255) as u8;
        if v > 0 {
            for x in &mut row[cur..next] {
                *x = x.saturating_add(v);
            }
        }
        cur = next;
    }
}

/// The stored u8 form of [`pretty_midi_roll`]: `velocity_to_u8` of every cell, bit-identical.
///
/// Without pitch bends every cell of pretty_midi's roll is an integer sum of velocities (with
/// running maxima under the pedal), so it is summed straight into the u8 roll, saturating (see
/// [`add_spans`]), with no `[128, T]` f64 array per instrument; files with pitch bends go
/// through [`pretty_midi_roll`] itself.
fn pretty_midi_u8(score: &Score, fps: u32) -> Result<PianoRoll, crate::midi::MidiError> {
    let bent = score.instruments.iter().any(|i| {
        !i.is_drum && !i.notes.is_empty() && score.pitch_bends(i).iter().any(|b| b.value != 0)
    });
    if bent {
        let (frames, raw) = pretty_midi_roll(score, fps)?;
        let data = raw.iter().map(|&v| velocity_to_u8(v)).collect();
        return Ok(PianoRoll::from_raw(frames, data).unwrap_or_default());
    }
    let fs = f64::from(fps);
    let t = |tick: u64| score.tempo.tick_to_time(tick);
    let mut frames = 0usize;
    let mut widths = Vec::with_capacity(score.instruments.len());
    for inst in &score.instruments {
        let width = if inst.notes.is_empty() {
            0
        } else {
            instrument_width(score, inst, fs).1
        };
        if width > MAX_FRAMES {
            return Err(too_long(width));
        }
        frames = frames.max(width);
        widths.push(width);
    }
    let mut roll = PianoRoll::new(frames);
    let mut used = [false; PITCHES];
    let mut spans: Vec<(u8, u32, u32, u8)> = Vec::new();
    let mut diff = Vec::new();
    let mut edges = Vec::new();
    // Plain instruments add straight into the roll; one with a pedal that changes anything is
    // summed per pitch first (the running maximum is per instrument).
    for (inst, &width) in score.instruments.iter().zip(&widths) {
        if inst.notes.is_empty() || inst.is_drum || width == 0 {
            continue;
        }
        spans.clear();
        for n in &inst.notes {
            let a = ((t(n.start_tick) * fs) as usize).min(width);
            let b = ((t(n.end_tick) * fs) as usize).min(width);
            if a < b {
                spans.push((n.pitch, a as u32, b as u32, n.velocity));
                used[usize::from(n.pitch)] = true;
            }
        }
        let pedal = pedal_frames(score, inst, fs, width);
        if pedal.is_empty() {
            add_spans(roll.data_mut(), frames, &spans, &mut diff);
        } else {
            spans.sort_unstable_by_key(|s| s.0);
            for group in spans.chunk_by(|a, b| a.0 == b.0) {
                add_pedalled_row(
                    roll.row_mut(usize::from(group[0].0)),
                    group,
                    &pedal,
                    &mut edges,
                );
            }
        }
    }
    let table = u8_table();
    for p in (0..PITCHES).filter(|&p| used[p]) {
        // Rows are mostly silence: skip zero words.
        for chunk in roll.row_mut(p).chunks_mut(8) {
            if chunk.iter().fold(0u8, |a, &x| a | x) == 0 {
                continue;
            }
            for x in chunk {
                *x = table[usize::from(*x)];
            }
        }
    }
    Ok(roll)
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
                bent[k..].copy_from_slice(&col[..PITCHES - k]);
                let prev = bent.clone();
                for p in 1..PITCHES {
                    bent[p] = (1.0 - dec) * prev[p] + dec * prev[p - 1];
                }
            } else {
                let k = (-bend_int) as usize;
                bent[..PITCHES - k].copy_from_slice(&col[k..]);
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
fn pedal_ticks(score: &Score, inst: &crate::midi::Instrument) -> Vec<(u64, u64)> {
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
fn pedal_end(pedal: &[(u64, u64)], end_tick: u64) -> u64 {
    let i = pedal.partition_point(|&(down, _)| down <= end_tick);
    match i.checked_sub(1).map(|i| pedal[i]) {
        Some((_, up)) if up > end_tick => up,
        _ => end_tick,
    }
}

fn seconds_intervals(
    score: &Score,
    fps: u32,
    opts: &RollOptions,
) -> Result<PianoRoll, crate::midi::MidiError> {
    let fs = f64::from(fps);
    let mut spans = Vec::new();
    for inst in score.instruments.iter().filter(|i| !i.is_drum) {
        let pedal = if opts.sustain_pedal {
            pedal_ticks(score, inst)
        } else {
            Vec::new()
        };
        for n in &inst.notes {
            let end_tick = pedal_end(&pedal, n.end_tick);
            let start = (score.tempo.tick_to_time(n.start_tick) * fs).min(1e15) as i64;
            let end = ((score.tempo.tick_to_time(end_tick) * fs).min(1e15) as i64).max(start + 1);
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

/// Candidate phases the beats grid may switch between (the most common onset residues).
const PHASE_CANDIDATES: usize = 8;
/// What a phase switch costs, in onsets that would otherwise be off the grid: a section must
/// gain more than this many exact onsets to get its own phase. Measured on POP909 (see
/// `examples/pop909_alignment.rs`): 16 keeps 91% of songs on one phase and gets most of the gain.
const PHASE_SWITCH_PENALTY: i64 = 16;

/// Where the beats grid's frame lines fall: a piecewise-constant phase over `u = tick *
/// steps_per_beat`. In a section starting at `u0` with effective residue `e`, frame lines are at
/// `u = e + ppq * frame` and a tick belongs to the nearest line (halves round up). Consecutive
/// residues differ by at most half a frame and each section starts on one of its own lines, so
/// the tick -> frame map never decreases (notes keep their order) and frame numbers continue
/// across a switch (bar lines stay put).
#[derive(Debug, Clone)]
struct PhaseMap {
    spb: i64,
    ppq: i64,
    /// `(first u of the section, effective residue)`, sorted; the first starts at `i64::MIN`.
    segs: Vec<(i64, i64)>,
}

/// Ticks are clamped here before `tick * steps_per_beat` (2^40 * 960 < 2^63); a roll that long
/// is refused anyway.
const PHASE_TICK_CLAMP: u64 = 1 << 40;

impl PhaseMap {
    fn u(&self, tick: u64) -> i64 {
        tick.min(PHASE_TICK_CLAMP) as i64 * self.spb
    }

    fn section(&self, u: i64) -> i64 {
        if self.segs.len() == 1 {
            return self.segs[0].1;
        }
        let i = self.segs.partition_point(|s| s.0 <= u);
        self.segs[i.saturating_sub(1)].1
    }

    /// The frame (line number) of a tick.
    fn frame(&self, tick: u64) -> i64 {
        let u = self.u(tick);
        (u - self.section(u) + self.ppq / 2).div_euclid(self.ppq)
    }

    /// Whether a tick lies exactly on a frame line.
    fn on_line(&self, tick: u64) -> bool {
        let u = self.u(tick);
        (u - self.section(u)).rem_euclid(self.ppq) == 0
    }

    /// Estimate from onset ticks: a dynamic programme over beats choosing, among the most
    /// common residues, the phase of each beat to maximise exact onsets minus
    /// [`PHASE_SWITCH_PENALTY`] per switch (ties keep the phase, and the global favourite).
    fn estimate(onsets: &[u64], spb: u64, ppq: u64) -> PhaseMap {
        let (spb_i, ppq_i) = (spb as i64, ppq as i64);
        let residue = |t: u64| ((t.min(PHASE_TICK_CLAMP) * spb) % ppq) as usize;
        let mut counts = vec![0u32; ppq as usize];
        for &t in onsets {
            counts[residue(t)] += 1;
        }
        let mut cands: Vec<usize> = (0..ppq as usize).filter(|&r| counts[r] > 0).collect();
        cands.sort_unstable_by_key(|&r| (std::cmp::Reverse(counts[r]), r));
        cands.truncate(PHASE_CANDIDATES);
        let first = cands.first().copied().unwrap_or(0) as i64;
        let mut map = PhaseMap {
            spb: spb_i,
            ppq: ppq_i,
            segs: vec![(i64::MIN, first)],
        };
        if cands.len() < 2 {
            return map;
        }
        let k = cands.len();
        let mut sorted = onsets.to_vec();
        sorted.sort_unstable();
        // Per beat (that has onsets): the beat index and where each phase came from.
        let mut back: Vec<(u64, [u8; PHASE_CANDIDATES])> = Vec::new();
        let mut best = [0i64; PHASE_CANDIDATES];
        for beat in sorted.chunk_by(|a, b| a / ppq == b / ppq) {
            let mut gain = [0i64; PHASE_CANDIDATES];
            for &t in beat {
                let r = residue(t);
                if let Some(c) = cands.iter().position(|&x| x == r) {
                    gain[c] += 1;
                }
            }
            let (am, m) = (0..k).fold((0, i64::MIN), |acc, c| {
                if best[c] > acc.1 {
                    (c, best[c])
                } else {
                    acc
                }
            });
            let mut from = [0u8; PHASE_CANDIDATES];
            for c in 0..k {
                if best[c] >= m - PHASE_SWITCH_PENALTY {
                    from[c] = c as u8;
                    best[c] += gain[c];
                } else {
                    from[c] = am as u8;
                    best[c] = m - PHASE_SWITCH_PENALTY + gain[c];
                }
            }
            back.push((beat[0] / ppq, from));
        }
        let mut c = (0..k).fold(0, |a, c| if best[c] > best[a] { c } else { a });
        let mut path = vec![0usize; back.len()];
        for (i, (_, from)) in back.iter().enumerate().rev() {
            path[i] = c;
            c = usize::from(from[c]);
        }
        let mut cur = cands[path[0]] as i64;
        map.segs = vec![(i64::MIN, cur)];
        for (&(beat, _), &c) in back.iter().zip(&path) {
            let r = cands[c] as i64;
            if r == cur.rem_euclid(ppq_i) {
                continue;
            }
            // The new phase takes over at its first line in this beat: old on-line onsets
            // (earlier beats) stay before it and new ones are at or after it. With the shift
            // `delta` within half a frame this keeps frames monotone: for `delta <= 0` any
            // switch point does, and for `delta > 0` one on a new line does.
            let bs = beat.min(PHASE_TICK_CLAMP) as i64 * ppq_i * spb_i;
            let mut delta = (r - cur).rem_euclid(ppq_i);
            if 2 * delta > ppq_i {
                delta -= ppq_i;
            }
            let start = bs + (cur + delta - bs).rem_euclid(ppq_i);
            let prev_start = map.segs.last().map(|s| s.0).unwrap_or(i64::MIN);
            if start <= prev_start.saturating_add(ppq_i) {
                continue; // too close to the previous switch; keep the phase
            }
            cur += delta;
            map.segs.push((start, cur));
        }
        map
    }

    /// `(first tick, residue)` of each section.
    fn segments(&self) -> Vec<(u64, u64)> {
        self.segs
            .iter()
            .map(|&(u0, e)| {
                let tick = if u0 == i64::MIN {
                    0
                } else {
                    (u0.max(0) + self.spb - 1) / self.spb
                };
                (tick as u64, e.rem_euclid(self.ppq) as u64)
            })
            .collect()
    }
}

/// The bar length in beats and beat unit for the beats grid: annotated downbeats win (their
/// median spacing in quarter notes, 2..=12); else the time signature at tick 0, except that a
/// one-beat bar (`1/x`) is taken for 4/4: such signatures are export artefacts (570 of POP909's
/// 819 songs declare 1/4 over 4/4 music), and a one-beat "bar" would put a downbeat on every beat.
pub fn resolve_meter(score: &Score, downbeats: Option<&[f64]>) -> (u8, u32) {
    if let Some(db) = downbeats.filter(|d| d.len() >= 3) {
        let ppq = f64::from(score.ticks_per_beat.max(1));
        let mut gaps: Vec<f64> = db
            .windows(2)
            .map(|p| (score.tempo.time_to_tick(p[1]) - score.tempo.time_to_tick(p[0])) / ppq)
            .filter(|g| g.is_finite() && *g > 0.0)
            .collect();
        if !gaps.is_empty() {
            gaps.sort_by(f64::total_cmp);
            let beats = gaps[gaps.len() / 2].round();
            if (2.0..=12.0).contains(&beats) {
                return (beats as u8, 4);
            }
        }
    }
    match score.time_signature_at(0) {
        (n, _) if n < 2 => (4, 4),
        other => other,
    }
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
    // Refuse before any per-frame work when the roll cannot fit.
    let last_tick = notes.iter().map(|(_, n)| n.end_tick).max().unwrap_or(0);
    let approx_frames = u128::from(last_tick) * u128::from(spb64) / u128::from(ppq);
    if approx_frames > MAX_FRAMES as u128 + 1 {
        return Err(too_long(approx_frames.min(usize::MAX as u128) as usize));
    }

    let onsets: Vec<u64> = notes.iter().map(|(_, n)| n.start_tick).collect();
    let phase = PhaseMap::estimate(&onsets, spb64, ppq);
    let on_grid = onsets.iter().filter(|&&t| phase.on_line(t)).count();
    let residue = phase.segs[0].1.rem_euclid(phase.ppq) as u64;
    let residue = {
        // Report the phase that holds most onsets.
        let segs = phase.segments();
        let mut held = vec![0usize; segs.len()];
        for &t in &onsets {
            held[segs.partition_point(|s| s.0 <= t).saturating_sub(1)] += 1;
        }
        (0..segs.len())
            .max_by_key(|&i| (held[i], std::cmp::Reverse(i)))
            .map(|i| segs[i].1)
            .unwrap_or(residue)
    };

    let annotated = opts.downbeats.as_deref().filter(|d| !d.is_empty());
    let (num, den) = resolve_meter(score, annotated);
    let frames_per_bar = opts
        .grid
        .frames_per_bar(u32::from(num), den)
        .filter(|&b| b > 0 && b <= MAX_FRAMES)
        .unwrap_or(4 * spb as usize);

    let onset_frames: Vec<i64> = onsets.iter().map(|&t| phase.frame(t)).collect();
    let fpb = frames_per_bar as i64;

    // Annotated downbeats as grid frames.
    let annotated_frames: Option<Vec<i64>> = annotated.map(|db| {
        db.iter()
            .filter(|s| s.is_finite())
            .map(|&s| {
                let tick = score.tempo.time_to_tick(s).clamp(0.0, 1e18).round() as u64;
                phase.frame(tick)
            })
            .collect()
    });
    // Bar phase: the annotated downbeats' majority, else estimated from the onsets.
    let bar_offset = match &annotated_frames {
        Some(g) => {
            let mut hist = vec![0usize; frames_per_bar];
            for &f in g {
                hist[f.rem_euclid(fpb) as usize] += 1;
            }
            (0..frames_per_bar)
                .max_by_key(|&i| (hist[i], std::cmp::Reverse(i)))
                .unwrap_or(0)
        }
        // A file on the tick grid that states its meter at tick 0 (what DAWs and our own writer
        // produce) has bar 1 at tick 0: trust it, so roll -> MIDI -> roll is stable.
        None if phase.segs.len() == 1
            && residue == 0
            && score
                .time_signatures
                .iter()
                .any(|t| t.tick == 0 && t.numerator > 1) =>
        {
            0
        }
        None => estimate_bar_offset(
            &notes
                .iter()
                .zip(&onset_frames)
                .map(|((_, n), &g)| (g, n.pitch, phase.frame(n.end_tick) - g))
                .collect::<Vec<_>>(),
            frames_per_bar,
            phase.segs.len() == 1 && residue == 0,
        ),
    };
    let first = onset_frames
        .iter()
        .copied()
        .min()
        .unwrap_or(0)
        .min(phase.frame(0));
    // Largest origin <= first that lies on a bar line.
    let origin = first - (first - bar_offset as i64).rem_euclid(fpb);

    let mut spans = Vec::with_capacity(notes.len());
    for inst in score.instruments.iter().filter(|i| !i.is_drum) {
        let pedal = if opts.sustain_pedal {
            pedal_ticks(score, inst)
        } else {
            Vec::new()
        };
        for n in &inst.notes {
            let start = phase.frame(n.start_tick) - origin;
            let end = (phase.frame(pedal_end(&pedal, n.end_tick)) - origin).max(start + 1);
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
    let roll = paint(&mut spans, frames, opts.articulation);

    let mut downbeats: Vec<usize> = annotated_frames
        .iter()
        .flatten()
        .map(|&f| f - origin)
        .filter(|&f| f >= 0 && (f as usize) < frames)
        .map(|f| f as usize)
        .collect();
    downbeats.sort_unstable();
    downbeats.dedup();
    Ok(ScoreRoll {
        roll,
        frames_per_bar: Some(frames_per_bar),
        alignment: Some(BeatsAlignment {
            residue,
            phase_segments: phase.segments(),
            onsets_on_grid: on_grid,
            onsets: notes.len(),
            frames_per_bar,
            downbeats_annotated: annotated_frames.is_some(),
            origin,
        }),
        downbeats,
    })
}

/// Estimate which frame (mod `frames_per_bar`) is the downbeat from `(frame, pitch, length)`
/// onsets. Two kinds of evidence, each normalised to its best phase: onsets (long notes and low
/// notes weigh more on downbeats, and the half-bar helps) and harmonic change (the pitch-class
/// content of the half bar after a frame against the half bar before it: chords change on
/// downbeats), the latter at half weight. On POP909 this agrees with the annotated bar phase in
/// 74.7% of the 819 songs (77.9% of those whose annotated bar length the time signature gives),
/// against 72.0% for onsets alone (`examples/pop909_alignment.rs`); weights from 0.25 to 3 all
/// give 74.6-75.2%.
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
    let by_onsets: Vec<f64> = (0..frames_per_bar)
        .map(|b| w[b] + 0.5 * w[(b + half) % frames_per_bar])
        .collect();
    let novelty = harmonic_novelty(onsets, frames_per_bar);
    let norm = |v: &[f64]| {
        let m = v.iter().copied().fold(0.0, f64::max);
        if m > 0.0 {
            1.0 / m
        } else {
            0.0
        }
    };
    let (na, nb) = (norm(&by_onsets), norm(&novelty));
    let score = |b: usize| by_onsets[b] * na + 0.5 * novelty[b] * nb;
    let best = (0..frames_per_bar)
        .max_by(|&a, &b| score(a).total_cmp(&score(b)).then(b.cmp(&a)))
        .unwrap_or(0);
    if prefer_zero && score(0) >= 0.8 * score(best) {
        0
    } else {
        best
    }
}

/// Per phase (frame mod `frames_per_bar`), the summed harmonic change at frames of that phase:
/// `1 - cos` between the pitch-class durations of the half bar before and the half bar after.
fn harmonic_novelty(onsets: &[(i64, u8, i64)], frames_per_bar: usize) -> Vec<f64> {
    let mut out = vec![0f64; frames_per_bar];
    let w = (frames_per_bar / 2).max(1);
    let lo = onsets.iter().map(|o| o.0).min().unwrap_or(0);
    let hi = onsets
        .iter()
        .map(|o| o.0.saturating_add(o.2.max(1)))
        .max()
        .unwrap_or(0);
    let t = (hi - lo).clamp(0, MAX_FRAMES as i64 + 1) as usize;
    if t < 2 * w + 1 {
        return out;
    }
    // Pitch-class occupancy per frame, then its running sum: cum[pc][f] = frames 0..f.
    let mut cum = vec![[0f64; 12]; t + 2];
    for &(g, pitch, len) in onsets {
        let a = ((g - lo) as usize).min(t);
        let b = (a + len.max(1) as usize).min(t);
        cum[a + 1][usize::from(pitch % 12)] += 1.0;
        cum[b + 1][usize::from(pitch % 12)] -= 1.0;
    }
    for f in 1..cum.len() {
        let prev = cum[f - 1];
        for (x, p) in cum[f].iter_mut().zip(prev) {
            *x += p;
        }
    }
    for f in 1..cum.len() {
        let prev = cum[f - 1];
        for (x, p) in cum[f].iter_mut().zip(prev) {
            *x += p;
        }
    }
    // cum[y] now sums the occupancy of frames 0..y, so a window [x, y) is cum[y] - cum[x].
    let window = |x: usize, y: usize| -> [f64; 12] {
        let mut v = [0f64; 12];
        for (i, s) in v.iter_mut().enumerate() {
            *s = cum[y][i] - cum[x][i];
        }
        v
    };
    for f in w..t - w {
        let (a, b) = (window(f - w, f), window(f, f + w));
        let dot: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        let na: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
        let nb: f64 = b.iter().map(|x| x * x).sum::<f64>().sqrt();
        if na > 0.0 && nb > 0.0 {
            let phase = (lo + f as i64).rem_euclid(frames_per_bar as i64) as usize;
            out[phase] += 1.0 - dot / (na * nb);
        }
    }
    out
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
