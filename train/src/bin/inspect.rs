//! `inspect`: what the model sees of a MIDI file or a folder of them (the original's
//! `inspect_processed.py`, for Rust users).
//!
//! * A file: its tempo, meter, notes and roll; where the beats grid put its frame lines and bar
//!   lines; then a few random crops (starting on bar lines on the beats grid): shape, density,
//!   velocity statistics and an ASCII view of a pitch range, optionally as PNG heatmaps and as
//!   MIDI files to listen to.
//! * A folder (recursive, parallel): files, failures by reason, total duration, a pitch
//!   histogram, then crops drawn from random files.
//! * A checkpoint (`.safetensors` or the original's `.pt`): the model it rebuilds, its styles,
//!   recommended sampler settings and provenance (data, command, losses, evaluation).
//! * `--export-roll OUT.safetensors` writes one file's whole roll as a u8 tensor `roll`
//!   `[128, T]`. With `--grid seconds --fps 16 --no-articulation` it is exactly the original's
//!   dataset: pretty_midi's `get_piano_roll(fs=16)`, times 255/127, clipped.

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use jit_music::export::{self, ExportSpec};
use jit_music::midi::{self, Score};
use jit_music::roll::{
    read_pop909_downbeats, score_to_roll, write_png, Grid, PianoRoll, RollOptions, ScoreRoll,
    Velocity, PITCHES,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[path = "inspect/checkpoint.rs"]
mod checkpoint;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum GridKind {
    /// Frames per quarter note (`--steps-per-beat`), bar lines from downbeats.
    Beats,
    /// Frames per second (`--fps`), the original's grid.
    Seconds,
}

#[derive(Parser, Debug)]
#[command(
    name = "inspect",
    about = "Show what the model sees of a MIDI file or folder (piano-roll crops with statistics, \
             an ASCII view, PNG heatmaps and MIDI re-exports; a folder summary; a whole roll as a \
             safetensors tensor), or what a checkpoint holds (.safetensors or the original's .pt: \
             its model, styles, recommended settings, provenance and checksum)",
    long_about = None
)]
struct Args {
    /// A MIDI file, a folder searched recursively for .mid/.midi files, or a checkpoint
    /// (.safetensors, .pt or .pth).
    path: PathBuf,

    /// Time grid of the roll.
    #[arg(long, value_enum, default_value_t = GridKind::Beats)]
    grid: GridKind,

    /// Frames per quarter note on the beats grid.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=960))]
    steps_per_beat: u32,

    /// Frames per second on the seconds grid.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1000))]
    fps: u32,

    /// Crop length in frames.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..=65536))]
    frames: u64,

    /// Merge re-struck notes of a pitch (no one-frame gap), as the original's data.
    #[arg(long)]
    no_articulation: bool,

    /// How many random crops to show.
    #[arg(long, default_value_t = 4)]
    num_crops: usize,

    /// Seed of the crop choice.
    #[arg(long, default_value_t = 0)]
    seed: u64,

    /// Lowest pitch of the ASCII view.
    #[arg(long, default_value_t = 36, value_parser = clap::value_parser!(u8).range(0..=127))]
    ascii_low: u8,

    /// Highest pitch of the ASCII view.
    #[arg(long, default_value_t = 96, value_parser = clap::value_parser!(u8).range(0..=127))]
    ascii_high: u8,

    /// Frames shown in the ASCII view (0: none).
    #[arg(long, default_value_t = 64)]
    ascii_frames: usize,

    /// Write each crop as a PNG heatmap here (pitch up, time right).
    #[arg(long, value_name = "DIR")]
    png_dir: Option<PathBuf>,

    /// Pixels per cell of the PNG heatmaps.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=32))]
    png_scale: u32,

    /// Write each crop back as a MIDI file here, to hear what the model sees.
    #[arg(long, value_name = "DIR")]
    midi_dir: Option<PathBuf>,

    /// Write the whole roll of ONE file as a u8 tensor `roll` [128, T] (safetensors).
    #[arg(long, value_name = "OUT.safetensors")]
    export_roll: Option<PathBuf>,
}

impl Args {
    fn grid(&self) -> Grid {
        match self.grid {
            GridKind::Beats => Grid::Beats {
                steps_per_beat: self.steps_per_beat,
            },
            GridKind::Seconds => Grid::Seconds { fps: self.fps },
        }
    }

    /// The data path's options: pretty_midi's semantics on the seconds grid (pedal, summed
    /// velocities), the DAW's on the beats grid; POP909 downbeats where there is a
    /// `beat_midi.txt`.
    fn options(&self, path: &Path) -> RollOptions {
        RollOptions {
            downbeats: read_pop909_downbeats(path),
            ..RollOptions::for_grid(self.grid(), !self.no_articulation)
        }
    }
}

/// One converted file.
struct Converted {
    score: Score,
    roll: ScoreRoll,
}

fn convert(path: &Path, args: &Args) -> Result<Converted> {
    let score = midi::read_file(path)?;
    let roll = score_to_roll(&score, &args.options(path))
        .with_context(|| format!("{}: cannot convert", path.display()))?;
    Ok(Converted { score, roll })
}

fn main() -> std::process::ExitCode {
    jit_music_train::runtime::main_with(try_main)
}

fn try_main() -> Result<()> {
    let args = Args::parse();
    if args.ascii_low > args.ascii_high {
        bail!(
            "--ascii-low {} is above --ascii-high {}",
            args.ascii_low,
            args.ascii_high
        );
    }
    for dir in [&args.png_dir, &args.midi_dir].into_iter().flatten() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    if args.path.is_dir() {
        if let Some(out) = &args.export_roll {
            bail!(
                "--export-roll {} needs one MIDI file, but {} is a folder",
                out.display(),
                args.path.display()
            );
        }
        inspect_folder(&args)
    } else if args.path.is_file() && checkpoint::is_checkpoint(&args.path) {
        checkpoint::inspect_checkpoint(&args.path)
    } else if args.path.is_file() {
        inspect_file(&args)
    } else {
        bail!("{}: no such file or folder", args.path.display())
    }
}

// ---------------------------------------------------------------------------------------------
// One file.

fn inspect_file(args: &Args) -> Result<()> {
    let c = convert(&args.path, args)?;
    print_file_summary(&args.path, &c, args);
    if let Some(out) = &args.export_roll {
        export_roll(&c.roll.roll, out)?;
        println!(
            "wrote the whole roll [128, {}] as u8 tensor `roll` to {}",
            c.roll.roll.frames(),
            out.display()
        );
    }
    let mut rng = StdRng::seed_from_u64(args.seed);
    let starts = crop_starts(&c.roll, args.frames as usize);
    let mut picks = pick(&starts, args.num_crops, &mut rng);
    picks.sort_unstable();
    for (i, start) in picks.iter().enumerate() {
        show_crop(&args.path, &c, *start, i, picks.len(), args)?;
    }
    Ok(())
}

fn print_file_summary(path: &Path, c: &Converted, args: &Args) {
    let s = &c.score;
    let tempi = s.tempo.changes();
    let (num, den) = s.time_signature_at(0);
    let drums = s.instruments.iter().filter(|i| i.is_drum).count();
    println!(
        "{}: {} ticks/beat, {} tempo{} ({:.1} BPM at start), {num}/{den} at tick 0, {} instrument{}{}, {} notes, {:.1} s",
        path.display(),
        s.ticks_per_beat,
        tempi.len(),
        if tempi.len() == 1 { "" } else { "s" },
        s.initial_bpm(),
        s.instruments.len(),
        if s.instruments.len() == 1 { "" } else { "s" },
        if drums > 0 { format!(" ({drums} drum)") } else { String::new() },
        s.note_count(),
        s.duration_seconds()
    );
    let r = &c.roll.roll;
    let art = if args.no_articulation { "off" } else { "on" };
    println!(
        "{}, articulation {art}: roll [{PITCHES}, {}]",
        args.grid().describe(),
        r.frames()
    );
    if let Some(al) = &c.roll.alignment {
        println!(
            "  onsets exactly on a frame: {}/{} ({:.1}%), {} phase section{}; bar = {} frames, bar lines from {}",
            al.onsets_on_grid,
            al.onsets,
            100.0 * al.onsets_on_grid as f64 / al.onsets.max(1) as f64,
            al.phase_segments.len(),
            if al.phase_segments.len() == 1 { "" } else { "s" },
            al.frames_per_bar,
            if al.downbeats_annotated {
                "the annotated downbeats (beat_midi.txt)"
            } else {
                "a bar phase estimated from the notes"
            }
        );
    }
    let (vmax, vmean) = r.velocity_stats();
    let range = r
        .pitch_range()
        .map(|(lo, hi)| format!("{}..{}", note_name(lo), note_name(hi)))
        .unwrap_or_else(|| "none".into());
    println!(
        "  whole roll: density {:.2}% (cells >= 0.5), velocity max {vmax:.3} mean {vmean:.4}, pitches {range}",
        100.0 * r.density(0.5)
    );
}

/// Crop starts: bar starts on the beats grid (crops begin on downbeats), any frame on the
/// seconds grid; those whose crop holds at least one note when there are any.
fn crop_starts(sr: &ScoreRoll, len: usize) -> Vec<usize> {
    let r = &sr.roll;
    let all: Vec<usize> = match sr.frames_per_bar {
        Some(_) => sr.bar_starts(),
        None => (0..r.frames().saturating_sub(len).max(1)).collect(),
    };
    let sounding: Vec<usize> = all
        .iter()
        .copied()
        .filter(|&s| r.active_cells(s, len) > 0)
        .collect();
    if sounding.is_empty() {
        if all.is_empty() {
            vec![0]
        } else {
            all
        }
    } else {
        sounding
    }
}

/// Up to `n` distinct items, at random.
fn pick<T: Copy>(items: &[T], n: usize, rng: &mut StdRng) -> Vec<T> {
    let mut idx: Vec<usize> = (0..items.len()).collect();
    let n = n.min(idx.len());
    for i in 0..n {
        let j = rng.random_range(i..idx.len());
        idx.swap(i, j);
    }
    idx[..n].iter().map(|&i| items[i]).collect()
}

fn show_crop(
    path: &Path,
    c: &Converted,
    start: usize,
    i: usize,
    n: usize,
    args: &Args,
) -> Result<()> {
    let len = args.frames as usize;
    let crop = c.roll.roll.crop(start, len);
    let (vmax, vmean) = crop.velocity_stats();
    let range = crop
        .pitch_range()
        .map(|(lo, hi)| format!(", pitches {}..{}", note_name(lo), note_name(hi)))
        .unwrap_or_default();
    let place = match c.roll.frames_per_bar {
        Some(fpb) if fpb > 0 => {
            let starts = c.roll.bar_starts();
            let bar = starts.partition_point(|&b| b < start) + 1;
            let _ = fpb;
            format!(" (bar {bar})")
        }
        _ => match args.grid() {
            Grid::Seconds { fps } => format!(" ({:.2} s)", start as f64 / f64::from(fps)),
            Grid::Beats { .. } => String::new(),
        },
    };
    println!(
        "\ncrop {}/{n}: frames {start}..{}{place}, shape [{PITCHES}, {len}], density {:.2}%, velocity max {vmax:.3} mean {vmean:.4}{range}",
        i + 1,
        start + len,
        100.0 * crop.density(0.5)
    );
    if args.ascii_frames > 0 {
        let bars: Vec<usize> = c
            .roll
            .bar_starts()
            .into_iter()
            .filter(|&b| b >= start && b < start + len)
            .map(|b| b - start)
            .collect();
        print!(
            "{}",
            ascii(
                &crop,
                args.ascii_low,
                args.ascii_high,
                args.ascii_frames,
                &bars
            )
        );
    }
    let stem = format!(
        "{}_crop{}_f{start}",
        path.file_stem().and_then(|s| s.to_str()).unwrap_or("roll"),
        i + 1
    );
    if let Some(dir) = &args.png_dir {
        let out = dir.join(format!("{stem}.png"));
        let fpb = c.roll.frames_per_bar;
        write_png(&crop, &out, args.png_scale, fpb)
            .with_context(|| format!("cannot write {}", out.display()))?;
        println!("  wrote {}", out.display());
    }
    if let Some(dir) = &args.midi_dir {
        let out = dir.join(format!("{stem}.mid"));
        let bpm = c.score.initial_bpm();
        let spec = ExportSpec {
            velocity: Velocity::Learned,
            bpm: if bpm.is_finite() && (10.0..=1000.0).contains(&bpm) {
                bpm
            } else {
                120.0
            },
            track_name: stem.clone(),
            ..ExportSpec::new(args.grid())
        };
        std::fs::write(&out, export::roll_to_smf(&crop, &spec))
            .with_context(|| format!("cannot write {}", out.display()))?;
        println!("  wrote {}", out.display());
    }
    Ok(())
}

const NAMES: [&str; 12] = [
    "C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B",
];

/// Scientific pitch notation, middle C (60) = C4.
fn note_name(p: u8) -> String {
    format!("{}{}", NAMES[usize::from(p % 12)], i32::from(p / 12) - 1)
}

/// Pitch `high` at the top down to `low`, one character per frame: `#` >= 0.5 of full scale
/// (a note to the original's `roll_to_midi`), `+` >= 0.25, `.` quieter, and `|` for an empty
/// cell on a bar line.
fn ascii(roll: &PianoRoll, low: u8, high: u8, frames: usize, bars: &[usize]) -> String {
    let n = frames.min(roll.frames());
    let mut out = String::new();
    let mut ruler = String::from("      ");
    for f in 0..n {
        ruler.push(if bars.contains(&f) {
            '|'
        } else if f % 4 == 0 {
            '\''
        } else {
            ' '
        });
    }
    out.push_str(ruler.trim_end());
    out.push('\n');
    for p in (low..=high).rev() {
        let row = roll.row(usize::from(p));
        let mut line = format!("{:>5} ", note_name(p));
        for (f, &v) in row.iter().take(n).enumerate() {
            line.push(match v {
                0 if bars.contains(&f) => '|',
                0 => ' ',
                1..=63 => '.',
                64..=127 => '+',
                _ => '#',
            });
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The whole roll as a u8 safetensors tensor named `roll`, `[128, T]`.
fn export_roll(roll: &PianoRoll, out: &Path) -> Result<()> {
    let t = candle_core::Tensor::from_vec(
        roll.data().to_vec(),
        (PITCHES, roll.frames()),
        &candle_core::Device::Cpu,
    )?;
    let map = std::collections::HashMap::from([("roll".to_string(), t)]);
    candle_core::safetensors::save(&map, out)
        .with_context(|| format!("cannot write {}", out.display()))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// A folder.

/// What a folder summary keeps of each file (the rolls themselves are not kept).
struct FileStats {
    seconds: f64,
    notes: usize,
    frames: usize,
    histogram: [u64; PITCHES],
    density: f64,
}

fn inspect_folder(args: &Args) -> Result<()> {
    let files = midi::find_midi_files(&args.path)
        .with_context(|| format!("cannot list {}", args.path.display()))?;
    if files.is_empty() {
        bail!("no MIDI files (.mid/.midi) under {}", args.path.display());
    }
    let pb = ProgressBar::new(files.len() as u64);
    pb.set_style(
        ProgressStyle::with_template("reading {bar:30} {pos}/{len} files ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let results: Vec<(PathBuf, Result<FileStats, String>)> = files
        .par_iter()
        .map(|p| {
            let r = convert(p, args)
                .map(|c| FileStats {
                    seconds: c.score.duration_seconds(),
                    notes: c.score.note_count(),
                    frames: c.roll.roll.frames(),
                    histogram: c.roll.roll.pitch_histogram(),
                    density: f64::from(c.roll.roll.density(0.5)),
                })
                .map_err(|e| jit_music_train::runtime::one_line(&e));
            pb.inc(1);
            (p.clone(), r)
        })
        .collect();
    pb.finish_and_clear();

    let ok: Vec<(&PathBuf, &FileStats)> = results
        .iter()
        .filter_map(|(p, r)| r.as_ref().ok().map(|s| (p, s)))
        .collect();
    let mut failures: BTreeMap<String, Vec<&PathBuf>> = BTreeMap::new();
    for (p, r) in &results {
        if let Err(e) = r {
            failures.entry(reason(p, e)).or_default().push(p);
        }
    }
    let seconds: f64 = ok.iter().map(|(_, s)| s.seconds).sum();
    let notes: usize = ok.iter().map(|(_, s)| s.notes).sum();
    let frames: usize = ok.iter().map(|(_, s)| s.frames).sum();
    let art = if args.no_articulation { "off" } else { "on" };
    println!(
        "{}: {} MIDI files, {} converted, {} failed; {} of music, {notes} notes; {}, articulation {art}: {frames} frames",
        args.path.display(),
        files.len(),
        ok.len(),
        files.len() - ok.len(),
        hms(seconds),
        args.grid().describe(),
    );
    if !ok.is_empty() {
        let mean_density = ok.iter().map(|(_, s)| s.density).sum::<f64>() / ok.len() as f64;
        println!(
            "  mean density per file {:.2}% (cells >= 0.5)",
            100.0 * mean_density
        );
    }
    if !failures.is_empty() {
        println!("failures by reason:");
        for (r, ps) in &failures {
            println!("  {:5}  {r}   (e.g. {})", ps.len(), ps[0].display());
        }
    }
    let mut hist = [0u64; PITCHES];
    for (_, s) in &ok {
        for (h, x) in hist.iter_mut().zip(s.histogram.iter()) {
            *h += x;
        }
    }
    print!("{}", histogram_text(&hist));

    // Crops from random files.
    let mut rng = StdRng::seed_from_u64(args.seed);
    let candidates: Vec<&PathBuf> = ok.iter().map(|(p, _)| *p).collect();
    for (i, path) in pick(&candidates, args.num_crops, &mut rng)
        .into_iter()
        .enumerate()
    {
        let c = convert(path, args)?;
        let starts = crop_starts(&c.roll, args.frames as usize);
        let start = pick(&starts, 1, &mut rng).first().copied().unwrap_or(0);
        println!("\n{}", path.display());
        show_crop(
            path,
            &c,
            start,
            i,
            args.num_crops.min(candidates.len()),
            args,
        )?;
    }
    Ok(())
}

/// A failure's reason without the file name and with numbers blanked, so that they group.
fn reason(path: &Path, e: &str) -> String {
    let prefix = format!("{}: ", path.display());
    let msg = e.strip_prefix(&prefix).unwrap_or(e);
    let mut out = String::new();
    for c in msg.chars() {
        if c.is_ascii_digit() {
            if !out.ends_with('N') {
                out.push('N');
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn hms(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// Active cells (>= 0.5) per octave and per pitch class, as bars.
fn histogram_text(hist: &[u64; PITCHES]) -> String {
    let total: u64 = hist.iter().sum();
    let mut out = format!("pitch histogram (active cells, {total} in all):\n");
    if total == 0 {
        return out;
    }
    let bar = |x: u64, max: u64| "#".repeat(((x * 40).div_ceil(max.max(1))) as usize);
    let octaves: Vec<(usize, u64)> = (0..11)
        .map(|o| (o, hist[o * 12..((o + 1) * 12).min(PITCHES)].iter().sum()))
        .collect();
    let max = octaves.iter().map(|o| o.1).max().unwrap_or(1);
    for (o, x) in octaves.iter().filter(|o| o.1 > 0) {
        let lo = o * 12;
        let hi = ((o + 1) * 12).min(PITCHES) - 1;
        out.push_str(&format!(
            "  {:>4}-{:<4} {:>5.1}% {}\n",
            note_name(lo as u8),
            note_name(hi as u8),
            100.0 * *x as f64 / total as f64,
            bar(*x, max)
        ));
    }
    let mut pcs = [0u64; 12];
    for (p, x) in hist.iter().enumerate() {
        pcs[p % 12] += x;
    }
    let max = pcs.iter().copied().max().unwrap_or(1);
    out.push_str("  by pitch class:\n");
    for (i, x) in pcs.iter().enumerate() {
        out.push_str(&format!(
            "  {:>9} {:>5.1}% {}\n",
            NAMES[i],
            100.0 * *x as f64 / total as f64,
            bar(*x, max)
        ));
    }
    out
}
