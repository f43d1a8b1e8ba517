//! Notes <-> the model's image, for either channel layout of a [`RollSpec`]: the one place where
//! a roll's values are defined. Everything that feeds a model (training windows, prompts) or
//! reads one back (generation, previews, the plugin) goes through here.

use super::notes::{roll_to_notes_split, Velocity};
use super::spec::{Channels, RollSpec};
use super::{notes_to_roll, u8_to_velocity, PianoRoll, RollNote, PITCHES};
use serde::{Deserialize, Serialize};

/// How notes are read from a model's output.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Decode {
    /// A cell is on above this share of full scale (both channels of an onset/sustain roll).
    pub threshold: f32,
    /// Intensity rolls only: split runs at dips below this share of the neighbouring peaks
    /// (the drawn re-strikes, see [`roll_to_notes_split`]); 0 = plain threshold runs.
    pub dip: f32,
    pub velocity: Velocity,
}

/// Each note of a pitch ends a frame before the next later-starting note of that pitch when that
/// one starts before it ends (the articulation gap of intensity rolls), as the MIDI reader paints.
pub fn articulate(notes: &[RollNote]) -> Vec<RollNote> {
    let mut out = notes.to_vec();
    out.sort_by_key(|n| (n.pitch, n.start, std::cmp::Reverse(n.end)));
    for i in 0..out.len() {
        let next = out[i + 1..]
            .iter()
            .take_while(|m| m.pitch == out[i].pitch)
            .find(|m| m.start > out[i].start)
            .map(|m| m.start);
        if let Some(ns) = next {
            let n = &mut out[i];
            if ns <= n.end && ns > n.start + 1 {
                n.end = ns - 1;
            }
        }
    }
    out
}

/// Notes as one instrument on one channel can play them: where two notes of a pitch overlap,
/// the earlier ends where the later starts (a re-strike), and of two that start together the
/// longer stays. What a prompt's parts become when they are written to, or played on, one
/// channel. Sorted by (pitch, start).
pub fn one_voice_per_pitch(notes: &[RollNote]) -> Vec<RollNote> {
    let mut v = notes.to_vec();
    v.sort_by_key(|n| (n.pitch, n.start, std::cmp::Reverse(n.end)));
    v.dedup_by(|later, first| later.pitch == first.pitch && later.start == first.start);
    for i in 0..v.len().saturating_sub(1) {
        if v[i + 1].pitch == v[i].pitch && v[i + 1].start < v[i].end {
            v[i].end = v[i + 1].start;
        }
    }
    v
}

impl RollSpec {
    /// Notes (on this spec's grid, frames from the window start) -> the model image
    /// `[C, pitches, frames]` in `[-1, 1]`. Notes outside the window are cut.
    pub fn encode(&self, notes: &[RollNote]) -> Vec<f32> {
        let (h, w) = (self.pitches, self.frames);
        match self.channels {
            Channels::Intensity => {
                let painted = if self.articulation {
                    notes_to_roll(&articulate(notes), w)
                } else {
                    notes_to_roll(notes, w)
                };
                let mut out = vec![-1f32; h * w];
                for r in 0..h {
                    let p = usize::from(self.pitch_low) + r;
                    if p >= PITCHES {
                        break;
                    }
                    for (o, &v) in out[r * w..(r + 1) * w].iter_mut().zip(painted.row(p)) {
                        *o = f32::from(v) / 255.0 * 2.0 - 1.0;
                    }
                }
                out
            }
            Channels::OnsetSustain => {
                let mut out = vec![-1f32; 2 * h * w];
                let (onset, sustain) = out.split_at_mut(h * w);
                for n in notes {
                    let Some(r) = self.row(n.pitch) else { continue };
                    let (a, b) = (n.start.min(w), n.end.min(w));
                    if a >= b {
                        continue;
                    }
                    sustain[r * w + a..r * w + b].fill(1.0);
                    let v = f32::from(n.velocity.clamp(1, 127)) / 127.0;
                    let cell = &mut onset[r * w + a];
                    *cell = cell.max(v);
                }
                out
            }
        }
    }

    /// A model image `[C, pitches, frames]` -> notes, sorted by (pitch, start). Cells where
    /// `free` is 0 (`[pitches, frames]`, optional) are read as silence: the kept part of a
    /// prompt, whose notes come back from the prompt itself.
    pub fn decode(&self, x: &[f32], d: &Decode, free: Option<&[u8]>) -> Vec<RollNote> {
        let (h, w) = (self.pitches, self.frames);
        if x.len() < self.numel() {
            return Vec::new();
        }
        let unit = |v: f32| {
            let u = (v + 1.0) * 0.5;
            if u.is_nan() {
                0.0
            } else {
                u.clamp(0.0, 1.0)
            }
        };
        let is_free = |i: usize| free.is_none_or(|m| m.get(i).copied().unwrap_or(0) != 0);
        match self.channels {
            Channels::Intensity => {
                let mut roll = PianoRoll::new(w);
                for r in 0..h {
                    let p = usize::from(self.pitch_low) + r;
                    if p >= PITCHES {
                        break;
                    }
                    for (f, cell) in roll.row_mut(p).iter_mut().enumerate() {
                        let i = r * w + f;
                        if is_free(i) {
                            *cell = (unit(x[i]) * 255.0 + 0.5) as u8;
                        }
                    }
                }
                roll_to_notes_split(&roll, d.threshold, d.dip, d.velocity)
            }
            Channels::OnsetSustain => {
                let (onset, sustain) = x.split_at(h * w);
                let mut out = Vec::new();
                for r in 0..h {
                    let Ok(pitch) = u8::try_from(usize::from(self.pitch_low) + r) else {
                        break;
                    };
                    let cell = |f: usize| {
                        let i = r * w + f;
                        if is_free(i) {
                            (unit(onset[i]), unit(sustain[i]))
                        } else {
                            (0.0, 0.0)
                        }
                    };
                    decode_row(pitch, w, cell, d, &mut out);
                }
                out
            }
        }
    }

    /// The image as an 8-bit roll for pictures: intensity as is; onset/sustain rolls show
    /// sustain at 60% and onsets at full brightness.
    pub fn display_roll(&self, x: &[f32]) -> PianoRoll {
        let (h, w) = (self.pitches, self.frames);
        let mut roll = PianoRoll::new(w);
        if x.len() < self.numel() {
            return roll;
        }
        let unit = |v: f32| ((v + 1.0) * 0.5).clamp(0.0, 1.0);
        for r in 0..h {
            let p = usize::from(self.pitch_low) + r;
            if p >= PITCHES {
                break;
            }
            for (f, cell) in roll.row_mut(p).iter_mut().enumerate() {
                let i = r * w + f;
                let u = match self.channels {
                    Channels::Intensity => unit(x[i]),
                    Channels::OnsetSustain => {
                        let on = unit(x[i]);
                        (0.6 * unit(x[h * w + i])).max(if on > 0.5 { on } else { 0.0 })
                    }
                };
                *cell = if u.is_nan() {
                    0
                } else {
                    (u * 255.0 + 0.5) as u8
                };
            }
        }
        roll
    }
}

/// One pitch of an onset/sustain image: a note starts at every onset above the threshold (or
/// where sustain starts without one) and lasts while sustain stays above it, up to the next onset.
fn decode_row(
    pitch: u8,
    w: usize,
    cell: impl Fn(usize) -> (f32, f32),
    d: &Decode,
    out: &mut Vec<RollNote>,
) {
    let velocity = |onset: f32| match d.velocity {
        Velocity::Fixed(v) => v.clamp(1, 127),
        // The onset carries 0.5 + 0.5 * velocity / 127.
        Velocity::Learned => {
            let v = ((onset - 0.5) * 2.0).clamp(0.05, 1.0);
            u8_to_velocity((v * 255.0).round() as u8)
        }
    };
    let mut cur: Option<(usize, u8)> = None;
    let close = |cur: &mut Option<(usize, u8)>, end: usize, out: &mut Vec<RollNote>| {
        if let Some((start, vel)) = cur.take() {
            out.push(RollNote {
                pitch,
                start,
                end,
                velocity: vel,
            });
        }
    };
    for f in 0..w {
        let (on, sus) = cell(f);
        if on > d.threshold {
            close(&mut cur, f, out);
            cur = Some((f, velocity(on)));
        } else if sus > d.threshold {
            if cur.is_none() {
                cur = Some((f, velocity(on.max(0.75))));
            }
        } else {
            close(&mut cur, f, out);
        }
    }
    close(&mut cur, w, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roll::{Conditions, Grid};

    fn spec(channels: Channels, articulation: bool) -> RollSpec {
        RollSpec {
            grid: Grid::Beats { steps_per_beat: 4 },
            pitch_low: 0,
            pitches: 128,
            frames: 16,
            articulation,
            channels,
            conditions: Conditions::default(),
        }
    }

    fn n(pitch: u8, start: usize, end: usize, velocity: u8) -> RollNote {
        RollNote {
            pitch,
            start,
            end,
            velocity,
        }
    }

    /// Repeated 16ths, a held note and a staccato note survive onset/sustain exactly, velocities
    /// included (learned), which one intensity channel cannot write.
    #[test]
    fn onset_sustain_round_trips_repeats_and_velocities() {
        let s = spec(Channels::OnsetSustain, false);
        let notes = vec![
            n(60, 0, 1, 100),
            n(60, 1, 2, 40),
            n(60, 2, 3, 127),
            n(64, 4, 12, 80),
            n(67, 15, 16, 64),
        ];
        let d = Decode {
            threshold: 0.3,
            dip: 0.0,
            velocity: Velocity::Learned,
        };
        let mut back = s.decode(&s.encode(&notes), &d, None);
        back.sort();
        let mut want = notes.clone();
        want.sort();
        assert_eq!(back.len(), want.len());
        for (a, b) in back.iter().zip(&want) {
            assert_eq!((a.pitch, a.start, a.end), (b.pitch, b.start, b.end));
            assert!(
                (i32::from(a.velocity) - i32::from(b.velocity)).abs() <= 1,
                "{a:?} {b:?}"
            );
        }
    }

    /// Intensity rolls encode as the MIDI reader paints them: re-strikes articulated.
    #[test]
    fn intensity_encoding_articulates_restrikes() {
        let s = spec(Channels::Intensity, true);
        let x = s.encode(&[n(60, 0, 4, 127), n(60, 4, 8, 127)]);
        let row: Vec<bool> = x[60 * 16..60 * 16 + 8].iter().map(|&v| v > 0.0).collect();
        assert_eq!(row, [true, true, true, false, true, true, true, true]);
        let d = Decode {
            threshold: 0.5,
            dip: 0.0,
            velocity: Velocity::Fixed(100),
        };
        let back = s.decode(&x, &d, None);
        assert_eq!(back, vec![n(60, 0, 3, 100), n(60, 4, 8, 100)]);
    }

    /// Overlapping notes of one pitch become re-strikes; duplicates go.
    #[test]
    fn one_voice_per_pitch_resolves_overlaps() {
        let v = one_voice_per_pitch(&[
            n(60, 0, 8, 90),
            n(60, 4, 12, 50),
            n(60, 4, 6, 70),
            n(62, 0, 8, 90),
        ]);
        assert_eq!(v, vec![n(60, 0, 4, 90), n(60, 4, 12, 50), n(62, 0, 8, 90)]);
    }

    /// Masked cells read as silence.
    #[test]
    fn decode_ignores_cells_that_are_not_free() {
        let s = spec(Channels::OnsetSustain, false);
        let x = s.encode(&[n(60, 0, 8, 100)]);
        let mut free = vec![1u8; 128 * 16];
        free[60 * 16..60 * 16 + 4].fill(0);
        let d = Decode {
            threshold: 0.3,
            dip: 0.0,
            velocity: Velocity::Fixed(90),
        };
        assert_eq!(s.decode(&x, &d, Some(&free)), vec![n(60, 4, 8, 90)]);
    }
}
