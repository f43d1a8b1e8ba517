//! `evaluate`'s main comparison: generated windows against real ones, feature by feature, with
//! a ceiling, corrupted baselines and a memorisation search.

use anyhow::{bail, Context, Result};
use jit_music::eval::{
    chart, corrupt, evaluate_tables, feature_table, memorize, sample_windows, EvalReport,
    FailedFile, LoadedSet, Window, WindowOptions,
};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// What the comparison needs from the command line.
#[derive(Debug, Clone)]
pub struct OaArgs {
    pub generated: PathBuf,
    pub reference: PathBuf,
    pub train: Option<PathBuf>,
    pub bars: u32,
    pub max_windows: Option<u64>,
    pub seed: u64,
    pub png: Option<PathBuf>,
    pub json: Option<PathBuf>,
    pub steps_per_beat: u32,
    pub near_copy: f64,
    pub memo_hop: u32,
    pub no_baselines: bool,
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

/// The three folders' windows.
struct Sets {
    gen_set: LoadedSet,
    ref_set: LoadedSet,
    train_set: Option<LoadedSet>,
}

fn load_sets(args: &OaArgs) -> Result<Sets> {
    let bars = args.bars as usize;
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
    Ok(Sets {
        gen_set,
        ref_set,
        train_set,
    })
}

/// The windows compared: generated and reference (capped), and the ceiling's training windows.
struct Chosen {
    generated: Vec<Window>,
    reference: Vec<Window>,
    train_disjoint: Option<Vec<Window>>,
    ceiling: Option<Vec<Window>>,
}

fn choose(args: &OaArgs, s: &Sets) -> Result<Chosen> {
    let bars = args.bars as usize;
    let cap = args
        .max_windows
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
        .unwrap_or(usize::MAX);
    let generated = sample_windows(&s.gen_set.windows, cap, args.seed);
    let reference = sample_windows(&s.ref_set.windows, cap, args.seed.wrapping_add(1));
    if generated.is_empty() {
        bail!(
            "no usable windows in --generated {} ({} files, {} unreadable, {} nearly empty windows)",
            args.generated.display(),
            s.gen_set.files.len(),
            s.gen_set.failed.len(),
            s.gen_set.skipped_empty
        );
    }
    if reference.is_empty() {
        bail!(
            "no usable windows in --reference {} ({} files, {} unreadable)",
            args.reference.display(),
            s.ref_set.files.len(),
            s.ref_set.failed.len()
        );
    }
    // The ceiling: as many real training windows as there are generated ones.
    let train_disjoint: Option<Vec<Window>> = s.train_set.as_ref().map(|t| {
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
    Ok(Chosen {
        generated,
        reference,
        train_disjoint,
        ceiling,
    })
}

/// Features, OA, baselines and the memorisation search.
fn score(args: &OaArgs, s: &Sets, c: &Chosen) -> EvalReport {
    let bars = args.bars as usize;
    eprintln!(
        "computing features of {} + {} + {} windows ...",
        c.generated.len(),
        c.reference.len(),
        c.ceiling.as_ref().map_or(0, Vec::len)
    );
    let gen_t = feature_table(&c.generated);
    let ref_t = feature_table(&c.reference);
    let ceil_t = c.ceiling.as_deref().map(feature_table);
    let mut report = evaluate_tables(&gen_t, &ref_t, ceil_t.as_deref());
    if !args.no_baselines {
        // Corrupt the ceiling's real windows when there are some (same size as the model's);
        // else the reference itself, whose note statistics then match by construction.
        let (source, note) = match &c.ceiling {
            Some(w) => (w.as_slice(), "training windows"),
            None => (c.reference.as_slice(), "reference windows (no --train)"),
        };
        report.baselines = corrupt::baselines(source, &ref_t, args.seed);
        for b in &mut report.baselines {
            b.description = format!("{}; from {note}", b.description);
        }
    }
    if let Some(t) = &s.train_set {
        eprintln!(
            "searching {} training windows (hop {} bars) for the nearest of each sample (12 \
             transpositions) ...",
            t.windows.len(),
            (args.memo_hop as usize).min(bars)
        );
        // Baseline: as many unseen real (reference) windows as there are samples.
        let unseen = sample_windows(&c.reference, c.generated.len(), args.seed.wrapping_add(3));
        let mut m = memorize::memorisation(&c.generated, &t.windows, Some(&unseen), args.near_copy);
        m.name_files(&s.gen_set.files, &t.files);
        report.memorisation = Some(m);
    }
    report
}

/// Print the report and write the chart and JSON asked for.
fn write_out(args: &OaArgs, s: &Sets, c: &Chosen, report: &EvalReport) -> Result<()> {
    let gi = info(&args.generated, &s.gen_set, c.generated.len());
    let ri = info(&args.reference, &s.ref_set, c.reference.len());
    let ti = s
        .train_set
        .as_ref()
        .zip(args.train.as_ref())
        .map(|(t, dir)| {
            let mut i = info(dir, t, c.ceiling.as_ref().map_or(0, Vec::len));
            // Count the non-overlapping windows, as for the other sets.
            i.windows_found = c.train_disjoint.as_ref().map_or(0, Vec::len);
            i
        });
    describe("generated", &gi);
    describe("reference", &ri);
    if let Some(t) = &ti {
        describe("train", t);
    }
    println!(
        "{}-bar windows on a {}-steps-per-beat grid; OA = overlapping area of the two \
         distributions (1 = indistinguishable)",
        args.bars, args.steps_per_beat
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
        chart::write_png(report, path)
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
            report,
        };
        let text = serde_json::to_string_pretty(&out).context("cannot encode the report")?;
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// The whole comparison.
pub fn oa_report(args: &OaArgs) -> Result<()> {
    if !(args.near_copy > 0.0 && args.near_copy <= 1.0) {
        bail!("--near-copy must be in (0, 1], got {}", args.near_copy);
    }
    let sets = load_sets(args)?;
    let chosen = choose(args, &sets)?;
    let report = score(args, &sets, &chosen);
    write_out(args, &sets, &chosen, &report)
}
