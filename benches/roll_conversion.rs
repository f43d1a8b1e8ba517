//! MIDI -> piano roll throughput on POP909, the original's training set.
//!
//! Reads `$JIT_MUSIC_DATA/pop909` (all 819 songs) when the variable is set, else the 12 songs
//! committed under `tests/fixtures/midi/pop909`. Every iteration reads nothing from disk (the
//! bytes are loaded once) and parses + converts every file in parallel with rayon:
//!
//! * `seconds_fs16`: the seconds grid at 16 fps, exactly pretty_midi's `get_piano_roll(fs=16)`
//!   scaled to u8 (what the original's dataset stores);
//! * `beats_spb4`: the beats grid at 4 steps per beat with the POP909 downbeat annotations.
//!
//! The original path for comparison: `python3 benches/pretty_midi_rolls.py` (same files).
//!
//! ```text
//! JIT_MUSIC_DATA=../shared/data cargo bench --no-default-features --bench roll_conversion
//! ```

use criterion::{criterion_group, criterion_main, Criterion};
use jit_music::midi;
use jit_music::roll::{read_pop909_downbeats, score_to_roll, RollOptions};
use rayon::prelude::*;
use std::path::PathBuf;
use std::time::Duration;

struct Song {
    bytes: Vec<u8>,
    downbeats: Option<Vec<f64>>,
}

fn songs() -> (String, Vec<Song>) {
    let (dir, what) = match std::env::var_os("JIT_MUSIC_DATA") {
        Some(d) => (PathBuf::from(d).join("pop909"), "JIT_MUSIC_DATA/pop909"),
        None => (
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/midi/pop909"),
            "committed fixtures (set JIT_MUSIC_DATA for all 819 songs)",
        ),
    };
    let files = midi::find_midi_files(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    assert!(!files.is_empty(), "no MIDI files under {}", dir.display());
    let songs = files
        .iter()
        .map(|p| Song {
            bytes: std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
            downbeats: read_pop909_downbeats(p),
        })
        .collect::<Vec<_>>();
    (format!("{} songs from {what}", songs.len()), songs)
}

/// Parse and convert every song; returns the total frame count (so nothing is optimised away).
fn convert_all(songs: &[Song], beats: bool) -> usize {
    songs
        .par_iter()
        .map(|s| {
            let Ok(score) = midi::parse(&s.bytes) else {
                return 0;
            };
            let opts = if beats {
                RollOptions {
                    downbeats: s.downbeats.clone(),
                    ..RollOptions::beats(4)
                }
            } else {
                RollOptions::pretty_midi(16)
            };
            score_to_roll(&score, &opts)
                .map(|r| r.roll.frames())
                .unwrap_or(0)
        })
        .sum()
}

fn bench(c: &mut Criterion) {
    let (what, songs) = songs();
    eprintln!(
        "roll_conversion: {what}, {} rayon threads",
        rayon::current_num_threads()
    );
    let mut g = c.benchmark_group("pop909_to_rolls");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    g.bench_function("seconds_fs16", |b| {
        b.iter(|| convert_all(std::hint::black_box(&songs), false))
    });
    g.bench_function("beats_spb4", |b| {
        b.iter(|| convert_all(std::hint::black_box(&songs), true))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
