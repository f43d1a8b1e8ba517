//! Arbitrary bytes through the whole MIDI -> roll -> MIDI path: parse, both grids (with and
//! without articulation, with odd downbeat annotations), roll -> notes, roll -> MIDI, and our
//! own MIDI back. Errors are fine; a panic, a hang or an allocation blow-up is a bug.
//!
//! ```text
//! cd fuzz && cargo +nightly fuzz run parse_convert -- -max_total_time=60
//! # seeded with real files (the first folder collects the corpus):
//! cd fuzz && mkdir -p corpus/parse_convert && \
//!   cargo +nightly fuzz run parse_convert corpus/parse_convert ../tests/fixtures/midi/wild
//! ```

#![no_main]

use jit_music::export::{self, ExportSpec};
use jit_music::midi;
use jit_music::roll::{roll_to_notes, score_to_roll, Grid, RollOptions, Velocity, MAX_FRAMES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(score) = midi::parse(data) else {
        return;
    };
    let _ = score.duration_seconds();
    let options = [
        RollOptions::pretty_midi(16),
        RollOptions::for_grid(Grid::Seconds { fps: 16 }, true),
        RollOptions::beats(4),
        RollOptions::for_grid(Grid::Beats { steps_per_beat: 4 }, false),
        RollOptions {
            downbeats: Some(vec![0.5, 2.5, 4.5, 1e9, -3.0, f64::NAN]),
            ..RollOptions::beats(4)
        },
    ];
    for opts in options {
        let Ok(sr) = score_to_roll(&score, &opts) else {
            continue;
        };
        assert!(sr.roll.frames() <= MAX_FRAMES);
        let _ = sr.bar_starts();
        let notes = roll_to_notes(&sr.roll, 0.5, Velocity::Learned);
        assert!(notes
            .iter()
            .all(|n| n.start < n.end && n.end <= sr.roll.frames()));
        let crop = sr.roll.crop(0, sr.roll.frames().min(4096));
        let bytes = export::roll_to_smf(&crop, &ExportSpec::new(opts.grid));
        midi::parse(&bytes).expect("our own MIDI must read back");
    }
});
