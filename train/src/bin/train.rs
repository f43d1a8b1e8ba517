//! `train`: diffusion training of a JiT-Music model on a folder of MIDI files.

use anyhow::{bail, Context, Result};
use clap::Parser;
use jit_music::checkpoint::{self, Kind};
use jit_music::diffusion::Objective;
use jit_music::model::JitConfig;
use jit_music::roll::Grid;
use jit_music_train::data::DataConfig;
use jit_music_train::optim::{AdamWConfig, Schedule};
use jit_music_train::trainer::{RunDir, TrainConfig, Trainer};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

// glibc returns big temporaries to the OS and maps them again every step; mimalloc keeps them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum GridKind {
    Beats,
    Seconds,
}

/// Train a JiT-Music diffusion model on a folder of MIDI files.
///
/// Outputs go to --output-dir: checkpoints/ (last.safetensors with the full training state,
/// model.safetensors with the EMA weights that `generate` and the plugin load), log.jsonl, and
/// samples/step_N/ with preview .mid and .png files.
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
struct Args {
    /// Folder of MIDI files (.mid/.midi, searched recursively; symlinked folders are followed).
    #[arg(long)]
    midi_dir: Option<PathBuf>,
    /// Run folder for checkpoints, logs and samples.
    #[arg(long)]
    output_dir: PathBuf,
    /// Model size: tiny, JiT-XS/16 (4.3M), JiT-S/16 (32.7M), JiT-B/16, ... (see --list-presets).
    #[arg(long)]
    preset: Option<String>,
    /// Print the presets and exit.
    #[arg(long)]
    list_presets: bool,
    /// Total step to train to (with --resume, training continues up to it).
    #[arg(long, default_value_t = 100_000)]
    steps: u64,
    /// Samples per step.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Save last.safetensors and the published EMA model every N steps.
    #[arg(long, default_value_t = 500)]
    ckpt_every: u64,
    /// Keep a numbered snapshot checkpoints/step_N.safetensors every N steps (0 = never).
    #[arg(long, default_value_t = 10_000)]
    keep_every: u64,
    /// Write preview samples (.mid + .png) every N steps (0 = never).
    #[arg(long, default_value_t = 2_000)]
    sample_every: u64,
    /// Validation loss on held-out files every N steps (0 = never).
    #[arg(long, default_value_t = 500)]
    val_every: u64,
    /// Random seed (initialisation, batches, noise): the same seed gives the same loss curve.
    #[arg(long)]
    seed: Option<u64>,
    /// Continue the run in --output-dir from checkpoints/last.safetensors, exactly.
    #[arg(long)]
    resume: bool,
    /// Start from the weights of a checkpoint (ours or the original's .pt), fresh optimizer,
    /// at the step it records.
    #[arg(long, conflicts_with = "resume")]
    init_from: Option<PathBuf>,
    /// Time grid: beats (steps per beat, bar-aligned; for the DAW) or seconds (the original's).
    #[arg(long, value_enum)]
    grid: Option<GridKind>,
    /// Frames per quarter note on the beats grid.
    #[arg(long)]
    steps_per_beat: Option<u32>,
    /// Frames per second on the seconds grid.
    #[arg(long)]
    fps: Option<u32>,
    /// Window length in frames (the model's width; 128 = 8 bars at 4 steps per beat).
    #[arg(long)]
    frames: Option<usize>,
    /// Do not separate re-struck notes with a one-frame gap.
    #[arg(long)]
    no_articulation: bool,
    /// Pitch-shift augmentation range, +/- semitones (only where notes stay in range).
    #[arg(long)]
    pitch_shift: Option<i32>,
    /// Use the first sub-folder name under --midi-dir as a style class.
    #[arg(long)]
    classes_from_dirs: bool,
    /// Extra sampling weight of a class, NAME=W (repeatable; default 1 each).
    #[arg(long, value_parser = parse_class_weight)]
    class_weight: Vec<(String, f64)>,
    /// Sample windows in proportion to each class's data instead of classes equally.
    #[arg(long)]
    no_balance_classes: bool,
    /// Fraction of files held out for the validation loss.
    #[arg(long)]
    val_fraction: Option<f64>,
    /// Skip windows with fewer active cells than this.
    #[arg(long)]
    min_active_cells: Option<usize>,
    /// Peak learning rate.
    #[arg(long)]
    lr: Option<f64>,
    /// Final learning rate of the cosine schedule.
    #[arg(long)]
    min_lr: Option<f64>,
    /// Linear warmup steps.
    #[arg(long)]
    warmup_steps: Option<u64>,
    /// Learning-rate schedule after warmup.
    #[arg(long, value_enum)]
    schedule: Option<Schedule>,
    /// Steps of the final decay for `--schedule wsd` (default: the last fifth).
    #[arg(long)]
    decay_steps: Option<u64>,
    /// AdamW decoupled weight decay.
    #[arg(long)]
    weight_decay: Option<f64>,
    /// AdamW beta1.
    #[arg(long)]
    beta1: Option<f64>,
    /// AdamW beta2.
    #[arg(long)]
    beta2: Option<f64>,
    /// Global gradient-norm clip (0 = off).
    #[arg(long)]
    clip_norm: Option<f64>,
    /// Mean of the logit-normal timestep distribution.
    #[arg(long = "p-mean", allow_hyphen_values = true)]
    p_mean: Option<f64>,
    /// Std of the logit-normal timestep distribution.
    #[arg(long = "p-std")]
    p_std: Option<f64>,
    /// Floor of 1 - t in the velocity.
    #[arg(long)]
    t_eps: Option<f64>,
    /// Std of the noise.
    #[arg(long)]
    noise_scale: Option<f64>,
    /// Probability of dropping a label to the null label (for classifier-free guidance).
    #[arg(long)]
    label_drop_prob: Option<f64>,
    /// Decay of the first EMA (the one published and sampled with).
    #[arg(long)]
    ema_decay1: Option<f64>,
    /// Decay of the second EMA.
    #[arg(long)]
    ema_decay2: Option<f64>,
    /// Preview samples written at each sample interval.
    #[arg(long, default_value_t = 4)]
    preview_samples: usize,
    /// Heun steps for previews.
    #[arg(long, default_value_t = 16)]
    preview_steps: usize,
    /// cpu or cuda (needs a build with --features cuda).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// CPU threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// A name for the model, shown in the plugin.
    #[arg(long)]
    name: Option<String>,
    /// Time N training steps on generated data and print samples/s, then exit.
    #[arg(long)]
    benchmark: Option<u64>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

fn parse_class_weight(s: &str) -> Result<(String, f64), String> {
    let (name, w) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=WEIGHT, got `{s}`"))?;
    let w: f64 = w.parse().map_err(|_| format!("bad weight in `{s}`"))?;
    if !(w >= 0.0 && w.is_finite()) {
        return Err(format!("weight must be >= 0 in `{s}`"));
    }
    Ok((name.to_string(), w))
}

fn build_config(a: &Args, midi_dir: PathBuf) -> Result<TrainConfig> {
    let grid = match a.grid.unwrap_or(GridKind::Beats) {
        GridKind::Beats => Grid::Beats {
            steps_per_beat: a.steps_per_beat.unwrap_or(4),
        },
        GridKind::Seconds => Grid::Seconds {
            fps: a.fps.unwrap_or(16),
        },
    };
    let frames = a.frames.unwrap_or(128);
    let preset = a.preset.clone().unwrap_or_else(|| "JiT-XS/16".into());
    // Class count is known only after reading the data; start with 1 and fix up.
    let model = JitConfig::preset(&preset, 128, frames, 1).with_context(|| {
        format!(
            "unknown preset `{preset}`; presets: {}",
            JitConfig::preset_names()
                .iter()
                .map(|p| p.0)
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    model
        .validate()
        .map_err(|e| anyhow::anyhow!("--frames {frames}: {e}"))?;
    let d = Objective::default();
    Ok(TrainConfig {
        midi_dir,
        preset,
        model,
        data: DataConfig {
            grid,
            articulation: !a.no_articulation,
            frames,
            pitch_shift: a.pitch_shift.unwrap_or(6),
            min_active_cells: a.min_active_cells.unwrap_or(16),
            classes_from_dirs: a.classes_from_dirs,
            val_fraction: a.val_fraction.unwrap_or(0.02),
            balance_classes: !a.no_balance_classes,
            class_weights: a.class_weight.iter().cloned().collect(),
        },
        objective: Objective {
            P_mean: a.p_mean.unwrap_or(d.P_mean),
            P_std: a.p_std.unwrap_or(d.P_std),
            t_eps: a.t_eps.unwrap_or(d.t_eps),
            noise_scale: a.noise_scale.unwrap_or(d.noise_scale),
            label_drop_prob: a.label_drop_prob.unwrap_or(d.label_drop_prob),
        },
        optim: AdamWConfig {
            lr: a.lr.unwrap_or(2e-4),
            min_lr: a.min_lr.unwrap_or(1e-6),
            warmup_steps: a.warmup_steps.unwrap_or(1000),
            schedule: a.schedule.unwrap_or(Schedule::Cosine),
            beta1: a.beta1.unwrap_or(0.9),
            beta2: a.beta2.unwrap_or(0.95),
            eps: 1e-8,
            weight_decay: a.weight_decay.unwrap_or(0.01),
            clip_norm: a.clip_norm.unwrap_or(1.0),
            decay_steps: a.decay_steps.unwrap_or(a.steps / 5),
        },
        ema_decays: (
            a.ema_decay1.unwrap_or(0.999),
            a.ema_decay2.unwrap_or(0.9999),
        ),
        batch_size: a.batch_size.unwrap_or(32),
        steps: a.steps,
        seed: a.seed.unwrap_or(0),
        ckpt_every: a.ckpt_every,
        keep_every: a.keep_every,
        sample_every: a.sample_every,
        val_every: a.val_every,
        preview_samples: a.preview_samples,
        preview_steps: a.preview_steps,
        device: a.device.clone(),
        name: a.name.clone().unwrap_or_else(|| "JiT-Music model".into()),
        command: std::env::args().collect::<Vec<_>>().join(" "),
    })
}

/// Flags that define the model or data may not change on --resume.
fn check_resume_flags(a: &Args) -> Result<()> {
    let fixed = [
        ("--preset", a.preset.is_some()),
        ("--batch-size", a.batch_size.is_some()),
        ("--grid", a.grid.is_some()),
        ("--steps-per-beat", a.steps_per_beat.is_some()),
        ("--fps", a.fps.is_some()),
        ("--frames", a.frames.is_some()),
        ("--seed", a.seed.is_some()),
        ("--lr", a.lr.is_some()),
        ("--pitch-shift", a.pitch_shift.is_some()),
    ];
    if let Some((flag, _)) = fixed.iter().find(|f| f.1) {
        bail!("{flag} cannot change on --resume: the run's settings come from its checkpoint (start a new --output-dir, or use --init-from)");
    }
    Ok(())
}

fn main() -> Result<()> {
    jit_music_train::runtime::tune_cpu_runtime();
    let a = Args::parse();
    if a.list_presets {
        for (name, what) in JitConfig::preset_names() {
            println!("{name:12} {what}");
        }
        return Ok(());
    }
    if let Some(t) = a.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(t.max(1))
            .build_global()
            .ok();
    }
    let run = RunDir {
        root: a.output_dir.clone(),
    };
    let cfg = if a.resume {
        check_resume_flags(&a)?;
        let last = run.last();
        let bytes = std::fs::read(&last).with_context(|| {
            format!(
                "--resume: no checkpoint at {} (start without --resume)",
                last.display()
            )
        })?;
        let raw = checkpoint::read_bytes(&last.display().to_string(), &bytes)?;
        if raw.meta.kind != Kind::Training {
            bail!("{} is not a training checkpoint", last.display());
        }
        let mut cfg: TrainConfig = serde_json::from_value(raw.meta.info["train"].clone())
            .context("the checkpoint's training settings are unreadable")?;
        if let Some(d) = &a.midi_dir {
            cfg.midi_dir = d.clone();
        }
        cfg.steps = a.steps;
        cfg.ckpt_every = a.ckpt_every;
        cfg.keep_every = a.keep_every;
        cfg.sample_every = a.sample_every;
        cfg.val_every = a.val_every;
        cfg.device = a.device.clone();
        if let Some(d) = a.decay_steps {
            cfg.optim.decay_steps = d;
        }
        cfg
    } else if a.benchmark.is_some() {
        build_config(&a, a.midi_dir.clone().unwrap_or_default())?
    } else {
        let Some(dir) = a.midi_dir.clone() else {
            bail!("--midi-dir is required (a folder of MIDI files)");
        };
        if !dir.is_dir() {
            bail!("--midi-dir {} is not a folder", dir.display());
        }
        if run.last().exists() && a.init_from.is_none() {
            bail!(
                "{} already holds a run; continue it with --resume or choose another --output-dir",
                a.output_dir.display()
            );
        }
        let mut cfg = build_config(&a, dir.clone())?;
        if cfg.data.classes_from_dirs {
            // The class count comes from the folder names (sorted), known before any training.
            let files = jit_music_train::data::list_files(&dir)?;
            let mut names: Vec<String> = files
                .iter()
                .filter_map(|f| {
                    let rel = f.strip_prefix(&dir).ok()?;
                    let mut c = rel.components();
                    let first = c.next()?;
                    c.next()?;
                    Some(first.as_os_str().to_string_lossy().into_owned())
                })
                .collect();
            names.sort();
            names.dedup();
            cfg.model.num_classes = names.len().max(1);
        }
        cfg
    };
    if let Some(n) = a.benchmark {
        return jit_music_train::trainer::benchmark(&cfg, n);
    }

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                eprintln!("\nsecond Ctrl-C: exiting without waiting for the checkpoint");
                std::process::exit(130);
            }
            eprintln!("\nCtrl-C: finishing this step and saving a checkpoint...");
        })
        .ok();
    }
    let resume_path = a.resume.then(|| run.last());
    let mut t = Trainer::new(
        cfg,
        run,
        resume_path.as_deref(),
        a.init_from.as_deref(),
        a.quiet,
    )?;
    let ds = &t.dataset;
    eprintln!(
        "{} files: {} train ({} windows), {} held out, {} failed, {} from cache; classes: {}",
        ds.files,
        ds.train.len(),
        ds.train_windows(),
        ds.val.len(),
        ds.failures.len(),
        ds.cache_hits,
        if ds.classes.is_empty() {
            "none".to_string()
        } else {
            ds.classes.join(", ")
        }
    );
    for (p, e) in ds.failures.iter().take(5) {
        eprintln!("  skipped {}: {e}", p.display());
    }
    eprintln!(
        "model {} ({:.2}M params), batch {}, step {} -> {}",
        t.cfg.preset,
        t.net.param_count() as f64 / 1e6,
        t.cfg.batch_size,
        t.step,
        t.cfg.steps
    );
    let loss = t.run(&stop)?;
    eprintln!(
        "step {}: loss {loss:.4}; model in {}",
        t.step,
        t.run.published().display()
    );
    Ok(())
}
