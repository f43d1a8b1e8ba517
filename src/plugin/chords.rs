//! The chords an idea follows, in the plugin's terms: a [`ChordTrack`] in ticks of the pattern
//! (the chord lane's and the session's grid), from a typed progression, from the chords played
//! into the plugin (per bar, see [`super::follow`]) or estimated from the current idea. The
//! worker puts them on the model's frame grid when it generates ([`on_grid`]).
//!
//! Chords are kept as they sound (after the plugin's Transpose); ideas are generated and stored
//! before it, so the model gets them transposed back ([`for_model`]).

use super::generate::Layout;
use super::params::ChordSource;
use super::pattern::{bar_ticks, PatternNote, PPQ};
use crate::chords::{estimate_chords, parse_progression, ChordSpan, ChordTrack};
use crate::roll::RollNote;
use serde::{Deserialize, Serialize};

/// Bars the follower remembers, by the host's bar number modulo this (every pattern length
/// divides it, so pattern bar `p` of a `B`-bar pattern is any slot `s` with `s % B == p`).
pub const FOLLOW_SLOTS: usize = 16;

/// The chords of one bar as played in, ticks from the bar start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowedBar {
    /// Which update this was (the newest of the slots that share a pattern bar wins).
    pub seq: u64,
    pub spans: Vec<ChordSpan>,
}

/// The chords followed from the input, per host bar (modulo [`FOLLOW_SLOTS`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Followed {
    /// The bar length the spans were measured in.
    pub bar_ticks: u32,
    pub slots: Vec<Option<FollowedBar>>,
    pub next_seq: u64,
}

impl Default for Followed {
    fn default() -> Self {
        Self {
            bar_ticks: 4 * PPQ,
            slots: vec![None; FOLLOW_SLOTS],
            next_seq: 1,
        }
    }
}

impl Followed {
    /// Set host bar `bar`'s chords (ticks from its start, bars of `bar_ticks`).
    pub fn set(&mut self, bar: i64, bar_ticks: u32, spans: Vec<ChordSpan>) {
        if bar_ticks != self.bar_ticks {
            // A new meter: what was followed in the old one no longer lines up.
            *self = Self {
                bar_ticks,
                ..Self::default()
            };
        }
        self.sanitize();
        let slot = bar.rem_euclid(FOLLOW_SLOTS as i64) as usize;
        self.slots[slot] = Some(FollowedBar {
            seq: self.next_seq,
            spans,
        });
        self.next_seq += 1;
    }

    pub fn is_empty(&self) -> bool {
        self.slots.iter().all(Option::is_none)
    }

    /// Exactly [`FOLLOW_SLOTS`] slots (after loading a project).
    pub fn sanitize(&mut self) {
        self.slots.resize(FOLLOW_SLOTS, None);
        self.bar_ticks = self.bar_ticks.max(1);
    }

    /// The chords of a `bars`-bar pattern of `bar_ticks` bars: for each pattern bar the newest
    /// followed bar that lands on it; bars nothing was played for have no chords.
    pub fn track(&self, bars: u32, bar_ticks: u32) -> ChordTrack {
        let b = bars.max(1) as usize;
        let scale = |t: usize| {
            (t as u64 * u64::from(bar_ticks) / u64::from(self.bar_ticks.max(1))) as usize
        };
        let mut spans = Vec::new();
        for p in 0..b {
            let newest = self
                .slots
                .iter()
                .enumerate()
                .filter(|(s, _)| s % b == p)
                .filter_map(|(_, f)| f.as_ref())
                .max_by_key(|f| f.seq);
            if let Some(f) = newest {
                let origin = p * bar_ticks as usize;
                spans.extend(f.spans.iter().map(|s| ChordSpan {
                    start: origin + scale(s.start),
                    end: origin + scale(s.end).min(bar_ticks as usize),
                    chord: s.chord,
                }));
            }
        }
        ChordTrack::new(spans)
    }
}

/// The chord settings a project saves (the source is the "Chords" parameter).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChordState {
    /// The typed progression ("C | G | Am F | F"), as last set without errors.
    pub text: String,
    pub followed: Followed,
}

/// Ticks of a beat (the signature's denominator) and a bar.
pub fn beat_and_bar(sig: (u32, u32)) -> (u32, u32) {
    let bt = bar_ticks(sig.0, sig.1);
    let den = if sig.1.is_power_of_two() && (1..=64).contains(&sig.1) {
        sig.1
    } else {
        4
    };
    ((4 * PPQ / den).clamp(1, bt), bt)
}

/// A typed progression over `bars` bars of the signature (a shorter one repeats).
pub fn progression(text: &str, bars: u32, sig: (u32, u32)) -> Result<ChordTrack, String> {
    let (beat, bar) = beat_and_bar(sig);
    parse_progression(
        text,
        bar as usize,
        beat as usize,
        (bars.max(1) * bar) as usize,
    )
    .map_err(|e| e.to_string())
}

/// The chords the next idea follows, in ticks of a `bars`-bar pattern, as they sound; `None`
/// when there are none (chords off, nothing typed or followed yet).
pub fn next_chords(
    source: ChordSource,
    state: &ChordState,
    bars: u32,
    sig: (u32, u32),
) -> Result<Option<ChordTrack>, String> {
    let track = match source {
        ChordSource::Off => return Ok(None),
        ChordSource::Typed if state.text.trim().is_empty() => return Ok(None),
        ChordSource::Typed => progression(&state.text, bars, sig)?,
        ChordSource::Follow => state.followed.track(bars, beat_and_bar(sig).1),
    };
    Ok((!track.is_empty()).then_some(track))
}

/// Chords as they sound -> the key the model writes in (before the plugin's Transpose).
pub fn for_model(track: &ChordTrack, transpose: i32) -> ChordTrack {
    track.transpose(-transpose)
}

/// The chords of some notes (an idea, the captured prompt) over `bars` bars, as a progression
/// a producer can edit: one or two chords a bar, estimated as `generate --chords-from` does.
pub fn estimate_progression(
    notes: &[PatternNote],
    bars: u32,
    sig: (u32, u32),
    transpose: i32,
) -> Option<String> {
    let (beat, bar) = beat_and_bar(sig);
    let len = bars.max(1) * bar;
    let roll: Vec<RollNote> = notes
        .iter()
        .filter(|n| n.start < len)
        .map(|n| RollNote {
            pitch: n.pitch,
            start: n.start as usize,
            end: n.end.min(len) as usize,
            velocity: n.velocity,
        })
        .collect();
    if roll.is_empty() {
        return None;
    }
    let track = estimate_chords(&roll, len as usize, bar as usize, beat as usize);
    Some(track.transpose(transpose).describe(bar as usize))
}

/// Chords in pattern ticks -> the model's frames, repeated over its whole window as the
/// pattern loops (so the model sees the harmony its window will be heard with).
pub fn on_grid(track: &ChordTrack, lay: &Layout, window: usize) -> ChordTrack {
    let period = lay.frames.max(1);
    let mut spans = Vec::new();
    let mut offset = 0;
    while offset < window {
        spans.extend(track.spans.iter().map(|s| ChordSpan {
            start: offset + lay.frame(s.start.min(u32::MAX as usize) as u32),
            end: offset + lay.frame(s.end.min(u32::MAX as usize) as u32),
            chord: s.chord,
        }));
        offset += period;
    }
    ChordTrack::new(spans).crop(0, window)
}

/// A bar's chord name per span, for the lane: `(start, end, name)` in ticks.
pub fn lane_labels(track: &ChordTrack) -> Vec<(usize, usize, String)> {
    track
        .spans
        .iter()
        .map(|s| {
            (
                s.start,
                s.end,
                s.chord.map_or("N.C.".to_string(), |c| c.to_string()),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chords::parse_chord;

    fn span(start: usize, end: usize, s: &str) -> ChordSpan {
        ChordSpan {
            start,
            end,
            chord: parse_chord(s).unwrap(),
        }
    }

    #[test]
    fn followed_bars_land_on_pattern_bars_newest_first() {
        let mut f = Followed::default();
        f.set(1, 3840, vec![span(0, 3840, "C")]);
        f.set(3, 3840, vec![span(0, 1920, "G"), span(1920, 3840, "D")]);
        // Two bars: host bars 1 and 3 are both pattern bar 1; bar 3 is newer.
        assert_eq!(f.track(2, 3840).describe(3840), "- | G D");
        // Four bars: both show.
        assert_eq!(f.track(4, 3840).describe(3840), "- | C | - | G D");
        f.set(17, 3840, vec![span(0, 3840, "Am")]); // slot 1 again, newest
        assert_eq!(f.track(2, 3840).describe(3840), "- | Am");
        // A new meter starts over.
        f.set(0, 2880, vec![span(0, 2880, "F")]);
        assert_eq!(f.track(1, 2880).describe(2880), "F");
    }

    #[test]
    fn progressions_repeat_over_the_pattern_and_tile_the_window() {
        let t = progression("C | G", 4, (4, 4)).unwrap();
        assert_eq!(t.describe(3840), "C | G | C | G");
        let e = progression("C | Hm", 4, (4, 4)).unwrap_err();
        assert!(e.contains("bar 2"), "{e}");
        let lay = Layout {
            bars: 2,
            bar_ticks: 3840,
            ticks_per_frame: 240.0,
            frames: 32,
        };
        let g = on_grid(&progression("C | G", 2, (4, 4)).unwrap(), &lay, 128);
        assert_eq!(g.describe(16), "C | G | C | G | C | G | C | G");
        assert_eq!(
            for_model(&g, 2).describe(16).split(" | ").next(),
            Some("Bb")
        );
        let st = ChordState {
            text: "Am".into(),
            ..Default::default()
        };
        assert_eq!(next_chords(ChordSource::Off, &st, 1, (4, 4)), Ok(None));
        assert!(next_chords(ChordSource::Typed, &st, 1, (4, 4))
            .unwrap()
            .is_some());
        assert_eq!(
            next_chords(ChordSource::Follow, &st, 1, (4, 4)),
            Ok(None),
            "nothing followed yet"
        );
    }

    #[test]
    fn an_ideas_chords_become_an_editable_progression() {
        let n = |start: u32, end: u32, pitch: u8| PatternNote {
            start,
            end,
            pitch,
            velocity: 90,
        };
        let notes = [
            n(0, 3840, 48),
            n(0, 3840, 52),
            n(0, 3840, 55),
            n(3840, 7680, 45),
            n(3840, 7680, 48),
            n(3840, 7680, 52),
        ];
        let text = estimate_progression(&notes, 2, (4, 4), 0).unwrap();
        assert_eq!(text, "C | Am");
        assert_eq!(
            estimate_progression(&notes, 2, (4, 4), 2).as_deref(),
            Some("D | Bm")
        );
        assert_eq!(progression(&text, 2, (4, 4)).unwrap().describe(3840), text);
    }
}
