//! `evaluate`: how much generated MIDI looks like real music, window by window, and how well
//! samples fit the prompts and chords they were given.
//!
//! Cuts both folders into windows of `--bars` bars on the beats grid, computes note-statistics,
//! harmony and melody/form features per window, and reports per feature the overlapping area
//! (OA) of the two sets' distributions. With `--train`, as many real training windows are scored
//! the same way as a ceiling (OA depends on the sample size, so a raw OA means little without
//! it), corrupted copies of them as a floor, and every sample is searched for a near-copy in
//! the training set (every window starting on a bar line, in all 12 transpositions).

use anyhow::{bail, Context, Result};
use clap::Parser;
use jit_music::eval::memorize;
use jit_music::roll::RollSpec;
use jit_music_train::evaluation::oa::{oa_report, OaArgs};
use jit_music_train::evaluation::prompts::{chord_report, coherence_report};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "evaluate",
    about = "Compare generated MIDI with real MIDI: per-feature overlapping area (OA) of note \
             statistics, harmony and melody/form features, a real-data ceiling, and a \
             memorisation check",
    long_about = None
)]
struct Args {
    /// Folder of generated MIDI files (searched recursively; bar 1 starts at tick 0).
    #[arg(long, value_name = "DIR", requires = "reference")]
    generated: Option<PathBuf>,

    /// Folder of real MIDI files to compare against (POP909 beat_midi.txt downbeats are used).
    #[arg(long, value_name = "DIR", requires = "generated")]
    reference: Option<PathBuf>,

    /// Folder of samples made from prompts (`generate --prompt ... --keep-bars/--fill/...`):
    /// how their generated part fits the kept part (pitch classes, key, scale, chords), beside
    /// the songs' real music there and another song's.
    #[arg(long, value_name = "DIR")]
    coherence: Option<PathBuf>,

    /// Folder of samples made with `--chords`/`--chords-from`: note time on the given chords'
    /// tones and bass notes on their root, beside the prompt songs' own music.
    #[arg(long, value_name = "DIR")]
    chords: Option<PathBuf>,

    /// With --chords: the same samples made without chords (same file names), as a baseline.
    #[arg(long, value_name = "DIR", requires = "chords")]
    baseline: Option<PathBuf>,

    /// The model the --coherence/--chords samples came from (its grid and window; default: the
    /// embedded model's).
    #[arg(long, value_name = "CKPT")]
    ckpt: Option<PathBuf>,

    /// Training folder: as many of its windows give the ceiling, and samples are searched in it.
    #[arg(long, value_name = "DIR")]
    train: Option<PathBuf>,

    /// Bars per window (windows are non-overlapping and start on bar lines).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=64))]
    bars: u32,

    /// Keep at most N windows per set, drawn at random with --seed (default: all).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_windows: Option<u64>,

    /// Seed of the window sampling and of the corrupted calibration baselines.
    #[arg(long, default_value_t = 0)]
    seed: u64,

    /// Write a bar chart of per-feature OA (model vs ceiling) to this PNG file.
    #[arg(long, value_name = "OUT.png")]
    png: Option<PathBuf>,

    /// Write the full machine-readable report to this JSON file.
    #[arg(long, value_name = "OUT.json")]
    json: Option<PathBuf>,

    /// Grid resolution in frames per quarter note (4 = sixteenth notes).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=48))]
    steps_per_beat: u32,

    /// Roll overlap (0..1, IoU of sounding cells) from which a sample counts as a near-copy.
    #[arg(long, default_value_t = memorize::DEFAULT_NEAR_COPY)]
    near_copy: f64,

    /// Bars between the training windows searched for near-copies (1 = every bar line).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    memo_hop: u32,

    /// Skip the calibration baselines (shuffled, spliced and random copies of real windows).
    #[arg(long)]
    no_baselines: bool,
}

fn main() -> std::process::ExitCode {
    jit_music_train::runtime::main_with(try_main)
}

fn try_main() -> Result<()> {
    let args = Args::parse();
    if args.generated.is_none() && args.coherence.is_none() && args.chords.is_none() {
        bail!("give --generated DIR --reference DIR, --coherence DIR or --chords DIR");
    }
    if let (Some(generated), Some(reference)) = (&args.generated, &args.reference) {
        oa_report(&oa_args(&args, generated.clone(), reference.clone()))?;
    }
    if args.coherence.is_some() || args.chords.is_some() {
        let spec = model_spec(&args)?;
        if let Some(dir) = &args.coherence {
            let r = coherence_report(dir, &spec)?;
            println!();
            print!("{}", r.to_text());
            write_json(&args, "coherence", &r)?;
        }
        if let Some(dir) = &args.chords {
            let r = chord_report(dir, args.baseline.as_deref(), &spec)?;
            println!();
            print!("{}", r.to_text());
            write_json(&args, "chords", &r)?;
        }
    }
    Ok(())
}

fn oa_args(a: &Args, generated: PathBuf, reference: PathBuf) -> OaArgs {
    OaArgs {
        generated,
        reference,
        train: a.train.clone(),
        bars: a.bars,
        max_windows: a.max_windows,
        seed: a.seed,
        png: a.png.clone(),
        json: a.json.clone(),
        steps_per_beat: a.steps_per_beat,
        near_copy: a.near_copy,
        memo_hop: a.memo_hop,
        no_baselines: a.no_baselines,
    }
}

/// The roll spec the prompt samples were made on.
fn model_spec(a: &Args) -> Result<RollSpec> {
    let w = match &a.ckpt {
        Some(p) => jit_music::checkpoint::load(p, Default::default())?,
        None => jit_music::default_model::load()?,
    };
    Ok(w.meta.roll)
}

/// With --json, a report beside it (`OUT.coherence.json`, `OUT.chords.json`).
fn write_json(a: &Args, what: &str, r: &impl serde::Serialize) -> Result<()> {
    if let Some(p) = &a.json {
        let path = p.with_extension(format!("{what}.json"));
        std::fs::write(&path, serde_json::to_string_pretty(r)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
