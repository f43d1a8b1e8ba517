//! The Role control: which part the plugin writes over the chords, as a pitch band and the
//! core's one keep spec ([`Keep`]). The mapping, with `split` the 'Role split' pitch:
//!
//! | role | keep spec | kept notes | written | after decoding |
//! | --- | --- | --- | --- | --- |
//! | Full arrangement | the workflow's (new, continue, fill, keep band) | the workflow's | the rest | - |
//! | Bass line | `KeepPitches { split, 127 }` | the captured input above the split, else none: the upper band is kept silent | below the split | - |
//! | Melody | `KeepPitches { 0, split - 1 }` | the accompaniment below the split: the captured input, else the current idea's, else none (silent) | from the split up | the top voice only |
//! | Accompaniment | `KeepNotes` | the melody: the top voice of the captured input, else of the current idea | around it | - |
//!
//! Kept notes play as they were given (every workflow does so), so a melody written over a kept
//! accompaniment plays with it, and an accompaniment plays with its melody. A role other than
//! Full arrangement decides what is kept itself; the workflow applies to Full arrangement.
//! Chords combine with every role and workflow.

use super::params::Role;
use super::pattern::PatternNote;
use crate::condition::Keep;
use crate::roll::RollNote;

/// What a role keeps: the kept notes in ticks and the keep spec; `None` for Full arrangement.
/// `captured` and `current` are the captured input and the current idea's notes over the
/// pattern (ticks from its start, cut to it).
pub fn role_keep(
    role: Role,
    split: u8,
    captured: &[PatternNote],
    current: &[PatternNote],
) -> Option<(Vec<PatternNote>, Keep)> {
    let split = split.clamp(1, 127);
    let below = |n: &&PatternNote| n.pitch < split;
    let above = |n: &&PatternNote| n.pitch >= split;
    match role {
        Role::Full => None,
        Role::Bass => Some((
            captured.iter().filter(above).copied().collect(),
            Keep::KeepPitches {
                low: split,
                high: 127,
            },
        )),
        Role::Melody => {
            let from = if captured.is_empty() {
                current
            } else {
                captured
            };
            Some((
                from.iter().filter(below).copied().collect(),
                Keep::KeepPitches {
                    low: 0,
                    high: split - 1,
                },
            ))
        }
        Role::Accompaniment => {
            let from = if captured.is_empty() {
                current
            } else {
                captured
            };
            Some((top_voice(from), Keep::KeepNotes))
        }
    }
}

/// Whether a role writes a single line (its generated notes are cut to the top voice).
pub fn single_line(role: Role) -> bool {
    role == Role::Melody
}

/// The top voice of pattern notes ([`crate::roll::top_voice`], the line `evaluate` reads as
/// the melody).
pub fn top_voice(notes: &[PatternNote]) -> Vec<PatternNote> {
    let as_roll: Vec<RollNote> = notes
        .iter()
        .map(|n| RollNote {
            pitch: n.pitch,
            start: n.start as usize,
            end: n.end as usize,
            velocity: n.velocity,
        })
        .collect();
    let mut out: Vec<PatternNote> = crate::roll::top_voice(&as_roll)
        .into_iter()
        .map(|n| PatternNote {
            start: n.start as u32,
            end: n.end as u32,
            pitch: n.pitch,
            velocity: n.velocity,
        })
        .collect();
    out.sort_unstable();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(start: u32, end: u32, pitch: u8) -> PatternNote {
        PatternNote {
            start,
            end,
            pitch,
            velocity: 90,
        }
    }

    #[test]
    fn the_top_voice_is_one_note_at_a_time_from_the_top() {
        let chords_and_tune = [
            n(0, 960, 48),
            n(0, 960, 52),
            n(0, 480, 72),
            n(480, 960, 74),
            n(960, 1920, 55),
            n(1200, 1920, 76),
        ];
        assert_eq!(
            top_voice(&chords_and_tune),
            vec![
                n(0, 480, 72),
                n(480, 960, 74),
                n(960, 1200, 55),
                n(1200, 1920, 76)
            ]
        );
    }

    #[test]
    fn roles_keep_what_the_table_says() {
        let captured = [n(0, 960, 40), n(0, 960, 67), n(960, 1920, 69)];
        let idea = [n(0, 3840, 36), n(0, 960, 60), n(0, 960, 64)];
        assert_eq!(role_keep(Role::Full, 55, &captured, &idea), None);
        let (kept, keep) = role_keep(Role::Bass, 55, &[], &idea).unwrap();
        assert!(kept.is_empty(), "the upper band is kept silent");
        assert_eq!(keep, Keep::KeepPitches { low: 55, high: 127 });
        let (kept, _) = role_keep(Role::Bass, 55, &captured, &idea).unwrap();
        assert_eq!(kept, vec![n(0, 960, 67), n(960, 1920, 69)]);
        let (kept, keep) = role_keep(Role::Melody, 55, &[], &idea).unwrap();
        assert_eq!(
            kept,
            vec![n(0, 3840, 36)],
            "the accompaniment below the split"
        );
        assert_eq!(keep, Keep::KeepPitches { low: 0, high: 54 });
        let (kept, keep) = role_keep(Role::Accompaniment, 55, &[], &idea).unwrap();
        assert_eq!(kept, vec![n(0, 960, 64)], "the idea's top voice");
        assert_eq!(keep, Keep::KeepNotes);
        let (kept, _) = role_keep(Role::Accompaniment, 55, &captured, &idea).unwrap();
        assert_eq!(kept, vec![n(0, 960, 67), n(960, 1920, 69)]);
    }
}
