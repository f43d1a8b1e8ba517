//! Chords estimated from notes, for music without annotations (a MIDI file a producer hands to
//! `--chords-from`, the music21 styles in training): template matching per half bar.

use super::symbol::{Chord, Quality};
use super::{ChordSpan, ChordTrack};
use crate::roll::RollNote;

/// One chord per half bar (or per bar when a bar has an odd number of beats), chosen by how
/// much of the sounding note time its tones cover, with the lowest note as a hint for the root
/// and slash bass. Silent stretches get no chord; a stretch that sounds like the chord before it
/// keeps it.
pub fn estimate_chords(
    notes: &[RollNote],
    frames: usize,
    frames_per_bar: usize,
    frames_per_beat: usize,
) -> ChordTrack {
    let fpb = frames_per_bar.max(1);
    let beats = fpb / frames_per_beat.max(1);
    let seg = if beats >= 2 && beats % 2 == 0 {
        fpb / 2
    } else {
        fpb
    };
    let mut spans: Vec<ChordSpan> = Vec::new();
    let mut prev: Option<Chord> = None;
    let mut start = 0;
    while start < frames {
        let end = (start + seg).min(frames);
        let chord = best_chord(notes, start, end, prev);
        spans.push(ChordSpan { start, end, chord });
        prev = chord.or(prev);
        start = end;
    }
    // Merge runs of the same chord.
    let mut merged: Vec<ChordSpan> = Vec::with_capacity(spans.len());
    for s in spans {
        match merged.last_mut() {
            Some(m) if m.chord == s.chord && m.end == s.start => m.end = s.end,
            _ => merged.push(s),
        }
    }
    ChordTrack::new(merged)
}

/// The chord that best explains the notes sounding in `[a, b)`; `None` when nothing sounds.
fn best_chord(notes: &[RollNote], a: usize, b: usize, prev: Option<Chord>) -> Option<Chord> {
    let mut w = [0f64; 12];
    let mut lowest: Option<(u8, usize)> = None;
    for n in notes {
        let (s, e) = (n.start.max(a), n.end.min(b));
        if e <= s {
            continue;
        }
        w[usize::from(n.pitch % 12)] += (e - s) as f64;
        if lowest.is_none_or(|(p, _)| n.pitch < p) {
            lowest = Some((n.pitch, e - s));
        }
    }
    let total: f64 = w.iter().sum();
    if total <= 0.0 {
        return None;
    }
    let bass = lowest.map(|(p, _)| p % 12);
    let score = |c: &Chord| -> f64 {
        let tones = c.tones();
        let (mut on, mut off) = (0.0, 0.0);
        for (pc, &x) in w.iter().enumerate() {
            if tones & (1 << pc) != 0 {
                on += x;
            } else {
                off += x;
            }
        }
        // Tones the notes do not play count against a chord, lightly: prefer the plain triad.
        let missing = (0..12)
            .filter(|&pc| tones & (1 << pc) != 0 && w[pc] == 0.0)
            .count() as f64;
        let extra = c.quality.intervals().len().saturating_sub(3) as f64;
        let mut s = on - off - total * (0.12 * missing + 0.06 * extra);
        if bass == Some(c.root) {
            s += 0.15 * total;
        }
        if Some(*c) == prev {
            s += 0.05 * total;
        }
        s
    };
    let mut best: Option<(f64, Chord)> = None;
    for root in 0..12u8 {
        for q in Quality::ALL {
            let c = Chord::new(root, q);
            let s = score(&c);
            if best.is_none_or(|(bs, _)| s > bs) {
                best = Some((s, c));
            }
        }
    }
    let mut chord = best?.1;
    if let Some(bpc) = bass {
        if bpc != chord.root && chord.tones() & (1 << bpc) != 0 {
            chord.bass = bpc;
        }
    }
    Some(chord)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chords::parse_chord;

    fn chord_notes(pitches: &[u8], start: usize, end: usize) -> Vec<RollNote> {
        pitches
            .iter()
            .map(|&pitch| RollNote {
                pitch,
                start,
                end,
                velocity: 90,
            })
            .collect()
    }

    #[test]
    fn finds_block_chords_and_their_bass() {
        let mut notes = chord_notes(&[48, 64, 67, 72], 0, 16); // C
        notes.extend(chord_notes(&[45, 60, 64, 69], 16, 32)); // Am
        notes.extend(chord_notes(&[52, 60, 67], 32, 48)); // C/E
        let t = estimate_chords(&notes, 64, 16, 4);
        let got: Vec<Option<Chord>> = t.spans.iter().map(|s| s.chord).collect();
        assert_eq!(
            got,
            vec![
                parse_chord("C").unwrap(),
                parse_chord("Am").unwrap(),
                parse_chord("C/E").unwrap(),
                None
            ]
        );
        assert_eq!(t.describe(16), "C | Am | C/E | N.C.");
    }
}
