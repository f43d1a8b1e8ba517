//! A progression as a producer types it: `"C | G | Am F | F"`. One bar per `|`; several chords
//! in a bar share it evenly unless given beats (`"C*3 G"`: C for 3 beats, G for the rest); `%`
//! repeats the previous bar; `N.C.` is no chord. A progression shorter than the window repeats.

use super::symbol::parse_chord;
use super::{ChordSpan, ChordTrack};

/// Why a progression could not be read: the bar and the character column where it went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("chords: bar {bar}, column {column}: {message}")]
pub struct ProgressionError {
    pub bar: usize,
    pub column: usize,
    pub message: String,
}

/// Parse `text` onto a grid of `frames_per_bar` and `frames_per_beat`, repeated to fill `frames`.
pub fn parse_progression(
    text: &str,
    frames_per_bar: usize,
    frames_per_beat: usize,
    frames: usize,
) -> Result<ChordTrack, ProgressionError> {
    let fpb = frames_per_bar.max(1);
    let beat = frames_per_beat.clamp(1, fpb);
    let err = |bar: usize, column: usize, message: String| ProgressionError {
        bar,
        column,
        message,
    };
    // Bars with the column (1-based, in characters) where each starts.
    let mut bars: Vec<(usize, &str)> = Vec::new();
    let mut col = 1;
    for part in text.split('|') {
        bars.push((col, part));
        col += part.chars().count() + 1;
    }
    if bars.first().is_some_and(|b| b.1.trim().is_empty()) {
        bars.remove(0);
    }
    if bars.last().is_some_and(|b| b.1.trim().is_empty()) {
        bars.pop();
    }
    if bars.is_empty() {
        return Err(err(1, 1, "no chords given".into()));
    }
    let mut one_pass: Vec<ChordSpan> = Vec::new();
    let mut previous: Vec<ChordSpan> = Vec::new();
    for (b, &(col0, bar)) in bars.iter().enumerate() {
        let bar_no = b + 1;
        let origin = b * fpb;
        let tokens: Vec<(usize, &str)> = tokens(bar, col0);
        if tokens.is_empty() {
            return Err(err(
                bar_no,
                col0,
                "empty bar (write % to repeat a bar)".into(),
            ));
        }
        if tokens.len() == 1 && tokens[0].1 == "%" {
            if previous.is_empty() {
                return Err(err(bar_no, tokens[0].0, "% with no bar before it".into()));
            }
            previous = previous
                .iter()
                .map(|s| ChordSpan {
                    start: s.start + fpb,
                    end: s.end + fpb,
                    chord: s.chord,
                })
                .collect();
            one_pass.extend_from_slice(&previous);
            continue;
        }
        let mut chords = Vec::with_capacity(tokens.len());
        for &(c, tok) in &tokens {
            let (sym, beats) = match tok.split_once('*') {
                Some((s, n)) => {
                    let n: usize = n.parse().map_err(|_| {
                        err(
                            bar_no,
                            c,
                            format!("`{tok}`: beats after * must be a number"),
                        )
                    })?;
                    if n == 0 {
                        return Err(err(bar_no, c, format!("`{tok}`: zero beats")));
                    }
                    (s, Some(n))
                }
                None => (tok, None),
            };
            let chord = parse_chord(sym).map_err(|e| err(bar_no, c, e.to_string()))?;
            chords.push((c, chord, beats));
        }
        let fixed: usize = chords.iter().filter_map(|c| c.2).map(|n| n * beat).sum();
        let free = chords.iter().filter(|c| c.2.is_none()).count();
        if fixed > fpb || (fixed == fpb && free > 0) {
            return Err(err(
                bar_no,
                col0,
                format!(
                    "the beats given fill more than the bar ({} beats)",
                    fpb / beat
                ),
            ));
        }
        let share = (fpb - fixed).checked_div(free).unwrap_or(0);
        let mut t = origin;
        previous.clear();
        let n = chords.len();
        for (i, &(_, chord, beats)) in chords.iter().enumerate() {
            let len = match beats {
                Some(k) => k * beat,
                None => share,
            };
            // The last chord takes what rounding left over.
            let end = if i + 1 == n { origin + fpb } else { t + len };
            previous.push(ChordSpan {
                start: t,
                end,
                chord,
            });
            t = end;
        }
        one_pass.extend_from_slice(&previous);
    }
    let period = bars.len() * fpb;
    let mut spans = Vec::new();
    let mut offset = 0;
    while offset < frames.max(1) {
        spans.extend(one_pass.iter().map(|s| ChordSpan {
            start: s.start + offset,
            end: s.end + offset,
            chord: s.chord,
        }));
        offset += period;
    }
    Ok(ChordTrack::new(spans).crop(0, frames.max(1)))
}

/// Whitespace-separated tokens of `bar` with their 1-based columns in the whole text.
fn tokens(bar: &str, col0: usize) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start: Option<(usize, usize)> = None; // (byte, column)
    for (i, (byte, ch)) in bar.char_indices().enumerate() {
        if ch.is_whitespace() {
            if let Some((b, c)) = start.take() {
                out.push((c, &bar[b..byte]));
            }
        } else if start.is_none() {
            start = Some((byte, col0 + i));
        }
    }
    if let Some((b, c)) = start {
        out.push((c, &bar[b..]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(t: &ChordTrack) -> Vec<(usize, usize, String)> {
        t.spans
            .iter()
            .map(|s| {
                (
                    s.start,
                    s.end,
                    s.chord.map_or("N.C.".into(), |c| c.to_string()),
                )
            })
            .collect()
    }

    #[test]
    fn bars_shares_beats_repeats_and_loops() {
        let t = parse_progression("C | G | Am F | F", 16, 4, 64).unwrap();
        assert_eq!(t.describe(16), "C | G | Am F | F");
        assert_eq!(names(&t)[2], (32, 40, "Am".into()));
        let t = parse_progression("C*3 G | %", 16, 4, 64).unwrap();
        assert_eq!(
            names(&t)[..4],
            [
                (0, 12, "C".into()),
                (12, 16, "G".into()),
                (16, 28, "C".into()),
                (28, 32, "G".into())
            ]
        );
        assert_eq!(
            t.spans.last().unwrap().end,
            64,
            "two bars loop to fill four"
        );
        let t = parse_progression("| Dm7 G7 Cmaj7 |", 16, 4, 16).unwrap();
        assert_eq!(t.spans.len(), 3);
        assert_eq!(t.spans[2].end, 16);
    }

    #[test]
    fn errors_name_the_bar_and_column() {
        let e = parse_progression("C | G | Hm", 16, 4, 64).unwrap_err();
        assert_eq!((e.bar, e.column), (3, 9));
        assert!(e.to_string().contains("Hm"), "{e}");
        let e = parse_progression("C*5", 16, 4, 16).unwrap_err();
        assert!(e.message.contains("more than the bar"));
        assert!(parse_progression("C | | G", 16, 4, 16).is_err());
        assert!(parse_progression("% | C", 16, 4, 16).is_err());
        assert!(parse_progression("C*x", 16, 4, 16).is_err());
        assert!(parse_progression("  ", 16, 4, 16).is_err());
    }
}
