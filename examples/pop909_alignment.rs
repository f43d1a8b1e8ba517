//! How well the beats grid fits a folder of real MIDI files (POP909 by default): the share of
//! note onsets exactly on a frame line, why the others miss, and how often the bar phase
//! estimated from the notes alone agrees with the downbeat annotations (`beat_midi.txt`).
//!
//! ```text
//! cargo run --release --no-default-features --example pop909_alignment -- ../shared/data/pop909
//! cargo run --release --no-default-features --example pop909_alignment -- DIR --per-file
//! cargo run --release --no-default-features --example pop909_alignment -- DIR --steps-per-beat 12
//! ```

use jit_music::midi::{self, Score};
use jit_music::roll::{read_pop909_downbeats, score_to_roll, RollOptions, ScoreRoll};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

#[derive(Default, Clone)]
struct Stats {
    files: usize,
    failed: usize,
    onsets: usize,
    exact: usize,
    /// With one phase per file (the most common onset residue), for comparison.
    exact_one_phase: usize,
    songs_95: usize,
    songs_phase_switch: usize,
    /// Misses by kind, in onsets.
    unquantised_songs: usize,
    unquantised_onsets: usize,
    near: usize,
    triplet: usize,
    other: usize,
    /// Bar phase.
    annotated: usize,
    same_bar_length: usize,
    phase_agrees: usize,
    downbeats: usize,
    downbeats_on_estimated_bars: usize,
    downbeats_on_annotated_bars: usize,
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        macro_rules! sum {
            ($($f:ident),*) => { $( self.$f += o.$f; )* };
        }
        sum!(
            files,
            failed,
            onsets,
            exact,
            exact_one_phase,
            songs_95,
            songs_phase_switch,
            unquantised_songs,
            unquantised_onsets,
            near,
            triplet,
            other,
            annotated,
            same_bar_length,
            phase_agrees,
            downbeats,
            downbeats_on_estimated_bars,
            downbeats_on_annotated_bars
        );
    }
}

fn pct(a: usize, b: usize) -> f64 {
    100.0 * a as f64 / b.max(1) as f64
}

fn onsets(score: &Score) -> Vec<u64> {
    score.pitched_notes().map(|n| n.start_tick).collect()
}

fn one_file(path: &Path, spb: u32, per_file: bool) -> Stats {
    let mut st = Stats {
        files: 1,
        ..Stats::default()
    };
    let Ok(score) = midi::read_file(path) else {
        st.failed = 1;
        return st;
    };
    let downbeats = read_pop909_downbeats(path);
    let estimated = match score_to_roll(&score, &RollOptions::beats(spb)) {
        Ok(r) => r,
        Err(_) => {
            st.failed = 1;
            return st;
        }
    };
    let al = estimated.alignment.clone().expect("beats grid");
    let ppq = u64::from(score.ticks_per_beat.max(1));
    let spb64 = u64::from(spb);
    let ticks = onsets(&score);
    st.onsets = ticks.len();
    st.exact = al.onsets_on_grid;
    st.songs_phase_switch = usize::from(al.phase_segments.len() > 1);
    let share = al.onsets_on_grid as f64 / ticks.len().max(1) as f64;
    st.songs_95 = usize::from(share >= 0.95);

    // The old single phase: the most common residue.
    let mut counts = vec![0usize; ppq as usize];
    for &t in &ticks {
        counts[((t * spb64) % ppq) as usize] += 1;
    }
    st.exact_one_phase = counts.iter().copied().max().unwrap_or(0);

    // Why onsets miss: distance to the nearest line of their section, in frames.
    if share < 0.5 {
        st.unquantised_songs = 1;
        st.unquantised_onsets = ticks.len() - al.onsets_on_grid;
    } else {
        for &t in &ticks {
            let i = al
                .phase_segments
                .partition_point(|s| s.0 <= t)
                .saturating_sub(1);
            let r = al.phase_segments[i].1;
            let d = (t * spb64 + ppq - r) % ppq;
            let d = d.min(ppq - d) as f64 / ppq as f64; // 0..=0.5 frame
            if d == 0.0 {
            } else if d <= 1.0 / 16.0 {
                st.near += 1;
            } else if (d - 1.0 / 3.0).abs() * ppq as f64 <= 1.0 {
                st.triplet += 1;
            } else {
                st.other += 1;
            }
        }
    }

    // Bar phase: the annotation's against the estimate's.
    let mut line = String::new();
    if let Some(db) = downbeats {
        let annotated: ScoreRoll = match score_to_roll(
            &score,
            &RollOptions {
                downbeats: Some(db),
                ..RollOptions::beats(spb)
            },
        ) {
            Ok(r) => r,
            Err(_) => return st,
        };
        let an = annotated.alignment.clone().expect("beats grid");
        st.annotated = 1;
        let (fa, fe) = (an.frames_per_bar as i64, al.frames_per_bar as i64);
        st.same_bar_length = usize::from(fa == fe);
        st.phase_agrees = usize::from(fa == fe && (an.origin - al.origin).rem_euclid(fa) == 0);
        for &d in &annotated.downbeats {
            let g = d as i64 + an.origin; // grid frame
            st.downbeats += 1;
            st.downbeats_on_estimated_bars += usize::from((g - al.origin).rem_euclid(fe) == 0);
            st.downbeats_on_annotated_bars += usize::from((g - an.origin).rem_euclid(fa) == 0);
        }
        line = format!(
            " bar {} frames, annotated phase {} estimated {} ({}), downbeats on annotated bars {:.0}%",
            fa,
            an.origin.rem_euclid(fa),
            al.origin.rem_euclid(fe),
            if st.phase_agrees == 1 { "agree" } else { "DIFFER" },
            pct(st.downbeats_on_annotated_bars, st.downbeats)
        );
    }
    if per_file {
        println!(
            "{}: {} onsets, {:.1}% exact ({:.1}% with one phase), {} phase section(s){line}",
            path.display(),
            st.onsets,
            pct(st.exact, st.onsets),
            pct(st.exact_one_phase, st.onsets),
            al.phase_segments.len(),
        );
    }
    st
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut dir = None;
    let mut per_file = false;
    let mut spb = 4u32;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--per-file" => per_file = true,
            "--steps-per-beat" => {
                spb = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--steps-per-beat N")
            }
            _ => dir = Some(PathBuf::from(a)),
        }
    }
    let dir = dir.unwrap_or_else(|| {
        std::env::var_os("JIT_MUSIC_DATA")
            .map(|d| PathBuf::from(d).join("pop909"))
            .unwrap_or_else(|| PathBuf::from("../shared/data/pop909"))
    });
    let files = midi::find_midi_files(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    let per: Vec<Stats> = files
        .par_iter()
        .map(|p| one_file(p, spb, per_file))
        .collect();
    let mut st = Stats::default();
    for s in &per {
        st.add(s);
    }
    let miss = st.onsets - st.exact;
    println!(
        "{} ({} files, {} failed), beats grid at {spb} steps per beat",
        dir.display(),
        st.files,
        st.failed
    );
    println!(
        "onsets exactly on a frame: {}/{} = {:.2}% (one phase per file: {:.2}%); songs at >= 95%: {}/{}; songs with a phase switch: {}",
        st.exact,
        st.onsets,
        pct(st.exact, st.onsets),
        pct(st.exact_one_phase, st.onsets),
        st.songs_95,
        st.files - st.failed,
        st.songs_phase_switch
    );
    println!(
        "misses: {miss} = {:.2}% of onsets: unquantised songs (< 50% exact: {} songs) {:.2}%, within 1/16 frame {:.2}%, triplet positions {:.2}%, other {:.2}%",
        pct(miss, st.onsets),
        st.unquantised_songs,
        pct(st.unquantised_onsets, st.onsets),
        pct(st.near, st.onsets),
        pct(st.triplet, st.onsets),
        pct(st.other, st.onsets)
    );
    println!(
        "bar phase on {} annotated songs: estimated phase agrees with the annotation in {} = {:.1}% (same bar length in {:.1}%); annotated downbeats on estimated bar lines {:.1}%, on the annotation's own majority bar lines {:.1}%",
        st.annotated,
        st.phase_agrees,
        pct(st.phase_agrees, st.annotated),
        pct(st.same_bar_length, st.annotated),
        pct(st.downbeats_on_estimated_bars, st.downbeats),
        pct(st.downbeats_on_annotated_bars, st.downbeats)
    );
}
