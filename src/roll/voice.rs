//! The top voice of some notes: what the melody role writes and what `evaluate`'s melody
//! features read, so both mean the same line.

use super::RollNote;

/// The top voice by the skyline rule: at each onset time the highest starting note, unless a
/// higher top-voice note is still sounding (then the new note is an inner voice). A top-voice
/// note is cut where the next one starts. Sorted by start.
pub fn top_voice(notes: &[RollNote]) -> Vec<RollNote> {
    let mut notes = notes.to_vec();
    notes.sort_by_key(|n| (n.start, n.pitch));
    let mut out: Vec<RollNote> = Vec::new();
    let mut i = 0;
    while i < notes.len() {
        let t = notes[i].start;
        let mut j = i;
        while j + 1 < notes.len() && notes[j + 1].start == t {
            j += 1;
        }
        let top = notes[j]; // highest pitch at this onset
        i = j + 1;
        if let Some(last) = out.last_mut() {
            if last.end > t && last.pitch > top.pitch {
                continue;
            }
            last.end = last.end.min(t);
        }
        out.push(top);
    }
    out.retain(|n| n.end > n.start);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(start: usize, end: usize, pitch: u8) -> RollNote {
        RollNote {
            pitch,
            start,
            end,
            velocity: 90,
        }
    }

    #[test]
    fn one_note_at_a_time_from_the_top() {
        let notes = [
            n(0, 8, 48),
            n(0, 8, 52),
            n(0, 4, 72),
            n(4, 8, 74),
            n(8, 16, 55),
            n(10, 16, 76),
            n(11, 12, 60), // under a sounding top note: an inner voice
        ];
        let want = [n(0, 4, 72), n(4, 8, 74), n(8, 10, 55), n(10, 16, 76)];
        assert_eq!(top_voice(&notes), want);
    }
}
