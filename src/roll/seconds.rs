//! The seconds grid (the original JiT-Music's): `fps` frames per second through the tempo map.
//! Without articulation this is pretty_midi's `get_piano_roll(fs)` exactly: velocities of
//! overlapping notes summed, the sustain pedal as a running maximum, pitch bends interpolated.

use super::grid::{pedal_end, pedal_ticks, too_long, RollOptions, Span, MAX_FRAMES};
use super::{velocity_to_u8, PianoRoll, PITCHES};
use crate::midi::Score;

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
pub(super) fn pretty_midi_u8(score: &Score, fps: u32) -> Result<PianoRoll, crate::midi::MidiError> {
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

/// The notes as frame spans at `fps`, the sustain pedal applied as asked (unarticulated: see
/// [`super::grid::paint`]).
pub(super) fn seconds_spans(
    score: &Score,
    fps: u32,
    opts: &RollOptions,
) -> Result<Vec<Span>, crate::midi::MidiError> {
    let fs = f64::from(fps);
    let mut spans = Vec::new();
    for (part, inst) in score.instruments.iter().filter(|i| !i.is_drum).enumerate() {
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
                part: part.min(usize::from(u16::MAX)) as u16,
            });
        }
    }
    let frames = spans.iter().map(|s| s.end).max().unwrap_or(0).max(0) as usize;
    if frames > MAX_FRAMES {
        return Err(too_long(frames));
    }
    Ok(spans)
}
