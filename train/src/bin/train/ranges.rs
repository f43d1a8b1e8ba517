//! `train`'s up-front checks: every setting that cannot work is refused with its allowed range
//! before any data is read or memory allocated.

use anyhow::Result;
use jit_music::roll::Grid;
use jit_music_train::trainer::TrainConfig;

/// Refuse settings that cannot work before anything is read or allocated.
pub(super) fn check_ranges(cfg: &TrainConfig) -> Result<()> {
    let o = &cfg.optim;
    let d = &cfg.data;
    let ok = |cond: bool, msg: String| {
        if cond {
            Ok(())
        } else {
            Err(anyhow::anyhow!(msg))
        }
    };
    ok(
        (1..=4096).contains(&cfg.batch_size),
        format!(
            "--batch-size must be between 1 and 4096, got {}",
            cfg.batch_size
        ),
    )?;
    ok(cfg.steps >= 1, "--steps must be at least 1".into())?;
    ok(
        (0.0..=0.5).contains(&d.val_fraction),
        format!(
            "--val-fraction must be between 0 and 0.5, got {}",
            d.val_fraction
        ),
    )?;
    ok(
        o.lr.is_finite() && o.lr > 0.0 && o.lr < 1.0,
        format!("--lr must be in (0, 1), got {}", o.lr),
    )?;
    ok(
        o.min_lr.is_finite() && o.min_lr >= 0.0 && o.min_lr <= o.lr,
        format!(
            "--min-lr must be between 0 and --lr ({}), got {}",
            o.lr, o.min_lr
        ),
    )?;
    ok(
        (0.0..1.0).contains(&o.beta1) && (0.0..1.0).contains(&o.beta2),
        format!(
            "--beta1 and --beta2 must be in [0, 1), got {} and {}",
            o.beta1, o.beta2
        ),
    )?;
    ok(
        (0.0..=1.0).contains(&cfg.objective.label_drop_prob),
        "--label-drop-prob must be between 0 and 1".into(),
    )?;
    let j = &cfg.objective;
    ok(
        j.noise_scale > 0.0 && j.noise_scale <= 100.0,
        format!("--noise-scale must be in (0, 100], got {}", j.noise_scale),
    )?;
    ok(
        j.P_std.is_finite() && j.P_std > 0.0 && j.P_mean.is_finite(),
        format!("--p-std must be positive, got {}", j.P_std),
    )?;
    ok(
        j.t_eps > 0.0 && j.t_eps < 1.0,
        format!("--t-eps must be in (0, 1), got {}", j.t_eps),
    )?;
    ok(
        o.weight_decay.is_finite() && o.weight_decay >= 0.0 && o.clip_norm >= 0.0,
        format!(
            "--weight-decay and --clip-norm must be >= 0, got {} and {}",
            o.weight_decay, o.clip_norm
        ),
    )?;
    // A checkpoint refuses a grid it cannot play, so a run must not write one.
    let grid_ok = match d.grid {
        Grid::Beats { steps_per_beat } => (1..=960).contains(&steps_per_beat),
        Grid::Seconds { fps } => (1..=1000).contains(&fps),
    };
    ok(
        grid_ok,
        "--steps-per-beat must be between 1 and 960, --fps between 1 and 1000".into(),
    )?;
    ok(
        (1..=1000).contains(&cfg.preview_steps),
        format!(
            "--preview-steps must be between 1 and 1000, got {}",
            cfg.preview_steps
        ),
    )?;
    ok(
        (0..=48).contains(&d.pitch_shift),
        format!(
            "--pitch-shift must be between 0 and 48 semitones, got {}",
            d.pitch_shift
        ),
    )?;
    ok(
        (0.0..1.0).contains(&cfg.ema_decays.0) && (0.0..1.0).contains(&cfg.ema_decays.1),
        "--ema-decay1/2 must be in [0, 1)".into(),
    )?;
    let memory = jit_music_train::trainer::memory_estimate(cfg);
    if let Some(avail) = jit_music_train::runtime::available_memory() {
        ok(
            memory < avail,
            format!(
                "--batch-size {} with {} needs about {:.1} GB, and {:.1} GB are available; use a smaller batch or preset",
                cfg.batch_size,
                cfg.preset,
                memory as f64 / 1e9,
                avail as f64 / 1e9
            ),
        )?;
    }
    Ok(())
}
