//! Reading a generated image back as notes: the generated notes from the cells the model was
//! free in, the kept notes exactly as given. Used right after sampling and again whenever a
//! stored idea is re-read at another threshold, so the user's own notes are never rewritten.

use crate::condition::Known;
use crate::roll::{Decode, RollNote, RollSpec};

/// The generated notes of an image `raw` (`[C, H, W]`): those decoded in the cells `known` did
/// not keep. A generated note that would touch a kept note of the same pitch (and merge with or
/// cut it when the file is read back) leaves the one-frame gap of a re-strike instead. Sorted.
pub fn generated_notes(
    spec: &RollSpec,
    raw: &[f32],
    known: Option<&Known>,
    d: &Decode,
) -> Vec<RollNote> {
    let Some(known) = known else {
        let mut notes = spec.decode(raw, d, None);
        notes.sort();
        return notes;
    };
    let free: Vec<u8> = known.mask.iter().map(|&m| u8::from(m == 0)).collect();
    let kept = &known.notes;
    let touching = |a: usize, b: usize, p: u8| {
        kept.iter()
            .any(|k| k.pitch == p && (k.start == a || k.end == b))
    };
    let mut notes: Vec<RollNote> = spec
        .decode(raw, d, Some(&free))
        .into_iter()
        .filter_map(|mut g| {
            if touching(g.end, usize::MAX, g.pitch) {
                g.end -= 1;
            }
            if touching(usize::MAX, g.start, g.pitch) {
                g.start += 1;
            }
            (g.start < g.end).then_some(g)
        })
        .collect();
    notes.sort();
    notes
}

/// All notes of a generated image: the kept notes of `known` exactly, plus
/// [`generated_notes`]. Sorted.
pub fn decode_generated(
    spec: &RollSpec,
    raw: &[f32],
    known: Option<&Known>,
    d: &Decode,
) -> Vec<RollNote> {
    let mut notes = generated_notes(spec, raw, known, d);
    if let Some(k) = known {
        notes.extend_from_slice(&k.notes);
        notes.sort();
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::condition::Keep;
    use crate::roll::{Channels, Conditions, Grid, Velocity};

    fn spec(channels: Channels, articulation: bool) -> RollSpec {
        RollSpec {
            grid: Grid::Beats { steps_per_beat: 4 },
            pitch_low: 0,
            pitches: 128,
            frames: 32,
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

    /// Kept notes with soft velocities and back-to-back repeats survive any threshold: the
    /// image under them is never read.
    #[test]
    fn kept_notes_survive_every_threshold() {
        for channels in [Channels::Intensity, Channels::OnsetSustain] {
            let s = spec(channels, true);
            let prompt = vec![n(60, 0, 4, 30), n(60, 4, 8, 30), n(62, 8, 16, 44)];
            for keep in [
                Keep::Continue { keep_frames: 16 },
                Keep::Fill { start: 16, end: 24 },
                Keep::KeepPitches { low: 55, high: 65 },
                Keep::KeepNotes,
            ] {
                let known = Known::new(&s, &keep, &prompt).unwrap();
                // The model drew something else everywhere (all cells full on).
                let raw = vec![1.0f32; s.numel()];
                for threshold in [0.1, 0.35, 0.5, 0.9] {
                    let d = Decode {
                        threshold,
                        dip: 0.95,
                        velocity: Velocity::Fixed(100),
                    };
                    let notes = decode_generated(&s, &raw, Some(&known), &d);
                    for k in &prompt {
                        assert!(notes.contains(k), "{keep:?} {threshold}: {k:?} lost");
                    }
                    let at60: Vec<&RollNote> = notes
                        .iter()
                        .filter(|x| x.pitch == 60 && x.start < 8)
                        .collect();
                    assert_eq!(at60.len(), 2, "{keep:?}: repeats stay two notes");
                }
            }
        }
    }
}
