//! `evaluate`: how much generated MIDI looks like real music, window by window.
//!
//! Cuts both folders into windows of `--bars` bars on the beats grid, computes note-statistics,
//! harmony and melody/form features per window, and reports per feature the overlapping area
//! (OA) of the two sets' distributions. With `--train`, as many real training windows are scored
//! the same way as a ceiling (OA depends on the sample size, so a raw OA means little without
//! it), corrupted copies of them as a floor, and every sample is searched for a near-copy in
//! the training set (every window starting on a bar line, in all 12 transpositions).

use anyhow::{bail, Context, Result};
use clap::Parser;
use jit_music::eval::{
    chart, corrupt, evaluate_tables, feature_table, memorize, sample_windows, EvalReport,
    FailedFile, LoadedSet, Window, WindowOptions,
};
use serde::Serialize;
use std::path::{Path, PathBuf};

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
    #[arg(long, value_name = "DIR")]
    generated: PathBuf,

    /// Folder of real MIDI files to compare against (POP909 beat_midi.txt downbeats are used).
    #[arg(long, value_name = "DIR")]
    reference: PathBuf,

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

/// What was read from one folder.
#[derive(Debug, Serialize)]
struct SetInfo {
    dir: PathBuf,
    files: usize,
    failed: Vec<FailedFile>,
    windows_found: usize,
    skipped_empty_windows: usize,
    windows_used: usize,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    bars: u32,
    steps_per_beat: u32,
    seed: u64,
    generated: &'a SetInfo,
    reference: &'a SetInfo,
    train: Option<&'a SetInfo>,
    report: &'a EvalReport,
}

fn load(dir: &Path, opts: &WindowOptions, what: &str) -> Result<LoadedSet> {
    if !dir.is_dir() {
        bail!("--{what} {}: not a folder", dir.display());
    }
    eprintln!("reading {what} files under {} ...", dir.display());
    let set = LoadedSet::from_dir(dir, opts)
        .with_context(|| format!("cannot list --{what} folder {}", dir.display()))?;
    if set.files.is_empty() {
        bail!("--{what} {}: no .mid/.midi files found", dir.display());
    }
    Ok(set)
}

fn info(dir: &Path, set: &LoadedSet, used: usize) -> SetInfo {
    SetInfo {
        dir: dir.to_path_buf(),
        files: set.files.len(),
        failed: set.failed.clone(),
        windows_found: set.windows.len(),
        skipped_empty_windows: set.skipped_empty,
        windows_used: used,
    }
}

fn describe(name: &str, i: &SetInfo) {
    println!(
        "{name:<10} {} files ({} unreadable), {} windows (+{} nearly empty, skipped), {} used",
        i.files,
        i.failed.len(),
        i.windows_found,
        i.skipped_empty_windows,
        i.windows_used
    );
    for f in i.failed.iter().take(10) {
        println!("           unreadable: {}: {}", f.path.display(), f.error);
    }
    if i.failed.len() > 10 {
        println!(
            "           ... {} more unreadable (see --json)",
            i.failed.len() - 10
        );
    }
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x.starts_with(&y) || y.starts_with(&x),
        _ => false,
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    if !(args.near_copy > 0.0 && args.near_copy <= 1.0) {
        bail!("--near-copy must be in (0, 1], got {}", args.near_copy);
    }
    let bars = args.bars as usize;
    let cap = args
        .max_windows
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
        .unwrap_or(usize::MAX);
    let real_opts = WindowOptions::new(bars, args.steps_per_beat, false);
    let gen_opts = WindowOptions::new(bars, args.steps_per_beat, true);

    let gen_set = load(&args.generated, &gen_opts, "generated")?;
    let ref_set = load(&args.reference, &real_opts, "reference")?;
    let train_set = match &args.train {
        Some(dir) => {
            if same_dir(dir, &args.reference) {
                eprintln!(
                    "warning: --train and --reference overlap; the ceiling and the memorisation \
                     baseline are then optimistic"
                );
            }
            // Overlapping windows for the memorisation search (a copy is only found where a
            // searched window starts on its first bar); the ceiling uses the disjoint ones.
            let hop_opts = WindowOptions {
                hop_bars: (args.memo_hop as usize).min(bars),
                ..real_opts.clone()
            };
            Some(load(dir, &hop_opts, "train")?)
        }
        None => None,
    };

    let generated = sample_windows(&gen_set.windows, cap, args.seed);
    let reference = sample_windows(&ref_set.windows, cap, args.seed.wrapping_add(1));
    if generated.is_empty() {
        bail!(
            "no usable windows in --generated {} ({} files, {} unreadable, {} nearly empty windows)",
            args.generated.display(),
            gen_set.files.len(),
            gen_set.failed.len(),
            gen_set.skipped_empty
        );
    }
    if reference.is_empty() {
        bail!(
            "no usable windows in --reference {} ({} files, {} unreadable)",
            args.reference.display(),
            ref_set.files.len(),
            ref_set.failed.len()
        );
    }
    // The ceiling: as many real training windows as there are generated ones.
    let train_disjoint: Option<Vec<Window>> = train_set.as_ref().map(|t| {
        t.windows
            .iter()
            .filter(|w| w.source.bar % bars == 0)
            .cloned()
            .collect()
    });
    let ceiling: Option<Vec<Window>> = train_disjoint
        .as_ref()
        .map(|t| sample_windows(t, generated.len(), args.seed.wrapping_add(2)))
        .filter(|c| !c.is_empty());
    if let Some(c) = &ceiling {
        if c.len() < generated.len() {
            eprintln!(
                "warning: the training folder has only {} windows for {} generated ones; the \
                 ceiling is computed on fewer windows",
                c.len(),
                generated.len()
            );
        }
    }

    eprintln!(
        "computing features of {} + {} + {} windows ...",
        generated.len(),
        reference.len(),
        ceiling.as_ref().map_or(0, Vec::len)
    );
    let gen_t = feature_table(&generated);
    let ref_t = feature_table(&reference);
    let ceil_t = ceiling.as_deref().map(feature_table);
    let mut report = evaluate_tables(&gen_t, &ref_t, ceil_t.as_deref());

    if !args.no_baselines {
        // Corrupt the ceiling's real windows when there are some (same size as the model's);
        // else the reference itself, whose note statistics then match by construction.
        let (source, note) = match &ceiling {
            Some(c) => (c.as_slice(), "training windows"),
            None => (reference.as_slice(), "reference windows (no --train)"),
        };
        report.baselines = corrupt::baselines(source, &ref_t, args.seed);
        for b in &mut report.baselines {
            b.description = format!("{}; from {note}", b.description);
        }
    }

    if let Some(t) = &train_set {
        eprintln!(
            "searching {} training windows (hop {} bars) for the nearest of each sample (12 \
             transpositions) ...",
            t.windows.len(),
            (args.memo_hop as usize).min(bars)
        );
        // Baseline: as many unseen real (reference) windows as there are samples.
        let unseen = sample_windows(&reference, generated.len(), args.seed.wrapping_add(3));
        let mut m = memorize::memorisation(&generated, &t.windows, Some(&unseen), args.near_copy);
        m.name_files(&gen_set.files, &t.files);
        report.memorisation = Some(m);
    }

    let gi = info(&args.generated, &gen_set, generated.len());
    let ri = info(&args.reference, &ref_set, reference.len());
    let ti = train_set.as_ref().zip(args.train.as_ref()).map(|(t, dir)| {
        let mut i = info(dir, t, ceiling.as_ref().map_or(0, Vec::len));
        // Count the non-overlapping windows, as for the other sets.
        i.windows_found = train_disjoint.as_ref().map_or(0, Vec::len);
        i
    });
    describe("generated", &gi);
    describe("reference", &ri);
    if let Some(t) = &ti {
        describe("train", t);
    }
    println!(
        "{bars}-bar windows on a {}-steps-per-beat grid; OA = overlapping area of the two \
         distributions (1 = indistinguishable)",
        args.steps_per_beat
    );
    println!();
    print!("{}", report.to_text());
    if report.ceiling.is_none() {
        println!();
        println!(
            "no --train: OA shrinks with fewer windows, so compare models at equal window counts, \
             or give --train for a ceiling"
        );
    }

    if let Some(path) = &args.png {
        chart::write_png(&report, path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(path) = &args.json {
        let out = JsonReport {
            bars: args.bars,
            steps_per_beat: args.steps_per_beat,
            seed: args.seed,
            generated: &gi,
            reference: &ri,
            train: ti.as_ref(),
            report: &report,
        };
        let text = serde_json::to_string_pretty(&out).context("cannot encode the report")?;
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
