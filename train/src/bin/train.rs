//! `train`: diffusion training of a JiT-Music model on a folder of MIDI files.

use anyhow::{bail, Context, Result};
use clap::Parser;
use jit_music::checkpoint::{self, Kind};
use jit_music::diffusion::Objective;
use jit_music::model::JitConfig;
use jit_music::roll::{Channels, Conditions, Grid};
use jit_music_train::data::DataConfig;
use jit_music_train::optim::{AdamWConfig, Schedule};
use jit_music_train::trainer::{RunDir, TrainConfig, Trainer};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

// glibc returns big temporaries to the OS and maps them again every step; mimalloc keeps them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "train/ranges.rs"]
mod ranges;
use ranges::check_ranges;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum GridKind {
    Beats,
    Seconds,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ChannelsArg {
    /// One channel of note intensity (the original's).
    Intensity,
    /// Onset (with velocity) and sustain channels.
    OnsetSustain,
}

/// Train a JiT-Music diffusion model on a folder of MIDI files.
///
/// Outputs go to --output-dir: checkpoints/ (last.safetensors with the full training state,
/// model.safetensors with the EMA weights that `generate` and the plugin load), log.jsonl, and
/// samples/step_N/ with preview .mid and .png files.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Folder of MIDI files (.mid/.midi, searched recursively; symlinked folders are followed).
    #[arg(long)]
    midi_dir: Option<PathBuf>,
    /// Run folder for checkpoints, logs and samples.
    #[arg(long, required_unless_present = "list_presets")]
    output_dir: Option<PathBuf>,
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
    /// Do not separate re-struck notes with a one-frame gap (intensity rolls).
    #[arg(long)]
    no_articulation: bool,
    /// Roll channels: intensity (one channel, the original's) or onset-sustain.
    #[arg(long, value_enum)]
    channels: Option<ChannelsArg>,
    /// Conditions the model takes, comma-separated: known (the kept part of a prompt and its
    /// mask: continue, fill, pitch band, part) and chords; `none` for none.
    #[arg(long, value_name = "LIST")]
    conditions: Option<String>,
    /// Hidden width instead of the preset's (the model is then a custom size).
    #[arg(long)]
    hidden: Option<usize>,
    /// Number of blocks instead of the preset's.
    #[arg(long)]
    depth: Option<usize>,
    /// Attention heads instead of the preset's.
    #[arg(long)]
    heads: Option<usize>,
    /// Patch size PITCHESxFRAMES instead of the preset's (e.g. 16x8: half a bar per token).
    #[arg(long, value_name = "HxW")]
    patch: Option<String>,
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
    /// Distil a few-step student from this teacher checkpoint: the teacher samples --pairs
    /// training windows (with their conditions), the student starts from its weights and
    /// learns those pairs (reflow). The student's checkpoint recommends --student-steps Euler
    /// steps without guidance.
    #[arg(long, value_name = "CKPT")]
    distill_from: Option<PathBuf>,
    /// Teacher samples to make for --distill-from.
    #[arg(long, default_value_t = 8192)]
    pairs: usize,
    /// Steps the distilled student's checkpoint recommends.
    #[arg(long, default_value_t = 2)]
    student_steps: usize,
    /// The teacher's sampling steps for the pairs (default: its recommendation).
    #[arg(long)]
    teacher_steps: Option<usize>,
    /// Time N training steps on generated data and print samples/s, then exit.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
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

/// `known,chords` -> the conditions; `none` for none.
fn parse_conditions(s: &str) -> Result<Conditions> {
    let mut c = Conditions::default();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part {
            "none" => {}
            "known" => c.known = true,
            "chords" => c.chords = true,
            other => bail!("--conditions: unknown condition `{other}` (known, chords or none)"),
        }
    }
    Ok(c)
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
    let mut preset = a.preset.clone().unwrap_or_else(|| "JiT-XS/16".into());
    // Class count is known only after reading the data; start with 1 and fix up.
    let mut model = JitConfig::preset(&preset, 128, frames, 1).with_context(|| {
        format!(
            "unknown preset `{preset}`; presets: {}",
            JitConfig::preset_names()
                .iter()
                .map(|p| p.0)
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    if let Some(p) = &a.patch {
        let (h, w) = p
            .split_once('x')
            .and_then(|(h, w)| Some((h.trim().parse().ok()?, w.trim().parse().ok()?)))
            .with_context(|| format!("--patch must look like 16x8, got `{p}`"))?;
        model.patch_h = h;
        model.patch_w = w;
        preset = format!("{preset} patch {h}x{w}");
    }
    if a.hidden.is_some() || a.depth.is_some() || a.heads.is_some() {
        model.hidden_size = a.hidden.unwrap_or(model.hidden_size);
        model.depth = a.depth.unwrap_or(model.depth);
        model.num_heads = a.heads.unwrap_or(model.num_heads);
        preset = format!(
            "{preset} resized to hidden {} depth {} heads {}",
            model.hidden_size, model.depth, model.num_heads
        );
    }
    let channels = match a.channels.unwrap_or(ChannelsArg::Intensity) {
        ChannelsArg::Intensity => Channels::Intensity,
        ChannelsArg::OnsetSustain => Channels::OnsetSustain,
    };
    let conditions = parse_conditions(a.conditions.as_deref().unwrap_or("none"))?;
    model.in_channels = channels.count();
    model.cond_channels = conditions.count(channels.count());
    model
        .validate()
        .map_err(|e| anyhow::anyhow!("--frames {frames} / --patch: {e}"))?;
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
            channels,
            conditions,
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
        distill: None,
    })
}

/// On --resume, flags that define the run may be given again (the same command with --resume
/// added) but not changed: each given flag is compared with the run's own value.
fn check_resume_flags(a: &Args, stored: &TrainConfig) -> Result<()> {
    let fresh = build_config(a, stored.midi_dir.clone())?;
    let j = |v: &dyn erased::Show| v.show();
    let given =
        |flag: &str| std::env::args().any(|x| x == flag || x.starts_with(&format!("{flag}=")));
    let mut checks: Vec<(&str, String, String)> = Vec::new();
    let mut check = |flag: &'static str, new: String, old: String| {
        if given(flag) && new != old {
            checks.push((flag, new, old));
        }
    };
    let (fm, sm) = (&fresh.model, &stored.model);
    let shape = |m: &JitConfig| {
        format!(
            "hidden {} depth {} heads {} bottleneck {}",
            m.hidden_size, m.depth, m.num_heads, m.bottleneck_dim
        )
    };
    check("--preset", shape(fm), shape(sm));
    check("--hidden", j(&fm.hidden_size), j(&sm.hidden_size));
    check("--depth", j(&fm.depth), j(&sm.depth));
    check("--heads", j(&fm.num_heads), j(&sm.num_heads));
    check(
        "--patch",
        format!("{}x{}", fm.patch_h, fm.patch_w),
        format!("{}x{}", sm.patch_h, sm.patch_w),
    );
    let (fd, sd) = (&fresh.data, &stored.data);
    check("--channels", j(&fd.channels), j(&sd.channels));
    check("--conditions", j(&fd.conditions), j(&sd.conditions));
    check("--frames", j(&fd.frames), j(&sd.frames));
    check("--grid", j(&fd.grid), j(&sd.grid));
    check("--steps-per-beat", j(&fd.grid), j(&sd.grid));
    check("--fps", j(&fd.grid), j(&sd.grid));
    check(
        "--no-articulation",
        j(&fd.articulation),
        j(&sd.articulation),
    );
    check("--pitch-shift", j(&fd.pitch_shift), j(&sd.pitch_shift));
    check(
        "--min-active-cells",
        j(&fd.min_active_cells),
        j(&sd.min_active_cells),
    );
    check(
        "--classes-from-dirs",
        j(&fd.classes_from_dirs),
        j(&sd.classes_from_dirs),
    );
    check("--val-fraction", j(&fd.val_fraction), j(&sd.val_fraction));
    check(
        "--no-balance-classes",
        j(&fd.balance_classes),
        j(&sd.balance_classes),
    );
    check("--class-weight", j(&fd.class_weights), j(&sd.class_weights));
    check("--batch-size", j(&fresh.batch_size), j(&stored.batch_size));
    check("--seed", j(&fresh.seed), j(&stored.seed));
    let (fo, so) = (&fresh.optim, &stored.optim);
    check("--lr", j(&fo.lr), j(&so.lr));
    check("--min-lr", j(&fo.min_lr), j(&so.min_lr));
    check("--warmup-steps", j(&fo.warmup_steps), j(&so.warmup_steps));
    check("--schedule", j(&fo.schedule), j(&so.schedule));
    check("--weight-decay", j(&fo.weight_decay), j(&so.weight_decay));
    check("--beta1", j(&fo.beta1), j(&so.beta1));
    check("--beta2", j(&fo.beta2), j(&so.beta2));
    check("--clip-norm", j(&fo.clip_norm), j(&so.clip_norm));
    let (fj, sj) = (&fresh.objective, &stored.objective);
    check("--p-mean", j(&fj.P_mean), j(&sj.P_mean));
    check("--p-std", j(&fj.P_std), j(&sj.P_std));
    check("--t-eps", j(&fj.t_eps), j(&sj.t_eps));
    check("--noise-scale", j(&fj.noise_scale), j(&sj.noise_scale));
    check(
        "--label-drop-prob",
        j(&fj.label_drop_prob),
        j(&sj.label_drop_prob),
    );
    check(
        "--ema-decay1",
        j(&fresh.ema_decays.0),
        j(&stored.ema_decays.0),
    );
    check(
        "--ema-decay2",
        j(&fresh.ema_decays.1),
        j(&stored.ema_decays.1),
    );
    if let Some((flag, new, old)) = checks.first() {
        bail!(
            "{flag} cannot change on --resume: this run has {old}, the command gives {new} (start a new --output-dir, or use --init-from)"
        );
    }
    Ok(())
}

/// Values compared on --resume, shown as JSON.
mod erased {
    pub trait Show {
        fn show(&self) -> String;
    }
    impl<T: serde::Serialize> Show for T {
        fn show(&self) -> String {
            serde_json::to_string(self).unwrap_or_default()
        }
    }
}

fn main() -> std::process::ExitCode {
    jit_music_train::runtime::main_with(try_main)
}

fn try_main() -> Result<()> {
    jit_music_train::runtime::tune_cpu_runtime();
    let a = Args::parse();
    if a.list_presets {
        for (name, what) in JitConfig::preset_names() {
            println!("{name:12} {what}");
        }
        return Ok(());
    }
    jit_music_train::runtime::set_threads(a.threads);
    let run = RunDir {
        root: a.output_dir.clone().unwrap_or_default(),
    };
    let cfg = resolve_config(&a, &run)?;
    check_ranges(&cfg)?;
    if let Some(n) = a.benchmark {
        return jit_music_train::trainer::benchmark(&cfg, n);
    }
    let stop = ctrl_c_stops();
    let resume_path = a.resume.then(|| run.last());
    // A distilled student starts from its teacher's weights.
    let init_from = a.init_from.as_deref().or(a.distill_from.as_deref());
    let mut t = Trainer::new(cfg, run, resume_path.as_deref(), init_from, a.quiet)?;
    report_start(&t);
    let loss = t.run(&stop)?;
    eprintln!(
        "step {}: loss {loss:.4}; model in {}",
        t.step,
        t.run.published().display()
    );
    Ok(())
}

/// The run's settings: from its checkpoint on --resume (given flags must agree), else from the
/// flags.
fn resolve_config(a: &Args, run: &RunDir) -> Result<TrainConfig> {
    if a.resume {
        return resume_config(a, run);
    }
    if a.benchmark.is_some() {
        return build_config(a, a.midi_dir.clone().unwrap_or_default());
    }
    let Some(dir) = a.midi_dir.clone() else {
        bail!("--midi-dir is required (a folder of MIDI files)");
    };
    if !dir.is_dir() {
        bail!("--midi-dir {} is not a folder", dir.display());
    }
    if run.last().exists() && a.init_from.is_none() {
        bail!(
            "{} already holds a run; continue it with --resume or choose another --output-dir",
            run.root.display()
        );
    }
    let mut cfg = build_config(a, dir.clone())?;
    if cfg.data.classes_from_dirs {
        // The class count comes from the folder names (sorted), known before any training.
        cfg.model.num_classes = jit_music_train::data::class_names(&dir)?.len().max(1);
    }
    if let Some(teacher) = &a.distill_from {
        distill_config(a, teacher, &mut cfg)?;
    }
    Ok(cfg)
}

/// A distillation run takes the teacher's model, rolls and objective; only the schedule and the
/// data folder are its own.
fn distill_config(a: &Args, teacher: &std::path::Path, cfg: &mut TrainConfig) -> Result<()> {
    if !(1..=64).contains(&a.student_steps) {
        bail!(
            "--student-steps must be between 1 and 64, got {}",
            a.student_steps
        );
    }
    if a.teacher_steps.is_some_and(|s| !(1..=1000).contains(&s)) {
        bail!("--teacher-steps must be between 1 and 1000");
    }
    if a.pairs < cfg.batch_size || a.pairs > 1_000_000 {
        bail!(
            "--pairs must be between the batch size ({}) and 1000000, got {}",
            cfg.batch_size,
            a.pairs
        );
    }
    let t = checkpoint::load(teacher, checkpoint::Weights::Ema1)?;
    let m = &t.meta;
    cfg.model = m.config.clone();
    cfg.data.grid = m.roll.grid;
    cfg.data.frames = m.roll.frames;
    cfg.data.articulation = m.roll.articulation;
    cfg.data.channels = m.roll.channels;
    cfg.data.conditions = m.roll.conditions;
    cfg.objective = jit_music::diffusion::Objective {
        label_drop_prob: a.label_drop_prob.unwrap_or(0.0),
        ..m.objective.clone()
    };
    cfg.preset = format!("{} distilled", m.config.preset_name().unwrap_or("custom"));
    let mut teacher_sampler = m.sampler.clone();
    if let Some(s) = a.teacher_steps {
        teacher_sampler.steps = s;
    }
    cfg.distill = Some(jit_music_train::trainer::distill::DistillConfig {
        teacher: teacher.to_path_buf(),
        pairs: a.pairs,
        teacher_sampler,
        student_steps: a.student_steps,
    });
    Ok(())
}

fn resume_config(a: &Args, run: &RunDir) -> Result<TrainConfig> {
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
    check_resume_flags(a, &cfg)?;
    cfg.midi_dir = match &a.midi_dir {
        Some(d) => d.clone(),
        None => jit_music_train::trainer::resume::resolve_midi_dir(&cfg.midi_dir, &run.root),
    };
    cfg.steps = a.steps;
    cfg.ckpt_every = a.ckpt_every;
    cfg.keep_every = a.keep_every;
    cfg.sample_every = a.sample_every;
    cfg.val_every = a.val_every;
    cfg.device = a.device.clone();
    if let Some(d) = a.decay_steps {
        cfg.optim.decay_steps = d;
    }
    Ok(cfg)
}

/// The first Ctrl-C asks the loop to stop after this step with a checkpoint; a second exits.
fn ctrl_c_stops() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            eprintln!("\nsecond Ctrl-C: exiting without waiting for the checkpoint");
            std::process::exit(130);
        }
        eprintln!("\nCtrl-C: finishing this step and saving a checkpoint...");
    })
    .ok();
    stop
}

fn report_start(t: &Trainer) {
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
}
