//! The beats grid (for the DAW): `steps_per_beat` frames per quarter note from the tick grid,
//! frame 0 on a bar line. Its phase is piecewise (see [`PhaseMap`]); bar length and phase come
//! from [`super::bars`].

use super::bars::{estimate_bar_offset, resolve_meter};
use super::grid::{
    grid_notes, paint, part_names, pedal_end, pedal_ticks, too_long, BeatsAlignment, FrameMap,
    RollOptions, ScoreRoll, Span, MAX_FRAMES,
};
use crate::midi::{Note, Score};

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
pub(super) struct PhaseMap {
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
    pub(super) fn frame(&self, tick: u64) -> i64 {
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

pub(super) fn beats_roll(
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
    for (part, inst) in score.instruments.iter().filter(|i| !i.is_drum).enumerate() {
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
                part: part.min(usize::from(u16::MAX)) as u16,
            });
        }
    }
    let frames = spans.iter().map(|s| s.end).max().unwrap_or(0).max(0) as usize;
    if frames > MAX_FRAMES {
        return Err(too_long(frames));
    }
    let grid = grid_notes(&spans, frames);
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
    let phase_segments = phase.segments();
    Ok(ScoreRoll {
        roll,
        notes: grid,
        parts: part_names(score),
        frame_map: FrameMap::Beats { phase, origin },
        frames_per_bar: Some(frames_per_bar),
        alignment: Some(BeatsAlignment {
            residue,
            phase_segments,
            onsets_on_grid: on_grid,
            onsets: notes.len(),
            frames_per_bar,
            downbeats_annotated: annotated_frames.is_some(),
            origin,
        }),
        downbeats,
    })
}
