//! `generate`: sample MIDI files from a JiT-Music model (the embedded default, one of ours, or the
//! original's .pt), including continuation, infilling and accompaniment from a prompt.

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use jit_music::checkpoint::{self, Weights};
use jit_music::export::{notes_to_smf, ExportSpec};
use jit_music::generate::{merge_notes, Generator, Mode};
use jit_music::midi;
use jit_music::roll::{
    read_pop909_downbeats, score_to_roll, write_png, Grid, PianoRoll, RollOptions, Velocity,
    PITCHES,
};
use jit_music::sampler::{seeded_noise, Hooks, SamplerConfig};
use jit_music_train::sampler_args::SamplerArgs;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Generate MIDI with a JiT-Music diffusion model.
///
/// Without --ckpt the model embedded in this binary is used. Every sample gets a .mid file and a
/// .json sidecar that reproduces it exactly (`--replay`).
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
struct Args {
    /// Checkpoint: ours (.safetensors, inference or training) or the original's .pt.
    #[arg(long)]
    ckpt: Option<PathBuf>,
    /// Which weights of a training checkpoint or .pt: ema1 (default), ema2 or live.
    #[arg(long, default_value = "ema1")]
    weights: Weights,
    /// Output folder (created if needed).
    #[arg(long)]
    out: PathBuf,
    /// Number of samples.
    #[arg(long, default_value_t = 4)]
    num_samples: usize,
    /// Seed: sample i uses noise seed `seed + i`.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    sampler: SamplerArgs,
    /// Style class by name or index (see the checkpoint's classes).
    #[arg(long)]
    class: Option<String>,
    /// Note threshold, 0..1 of full scale (default: the checkpoint's recommendation, else 0.5).
    #[arg(long)]
    threshold: Option<f32>,
    /// Split notes where the drawn intensity dips below this share of the neighbouring peaks
    /// (the model's re-strikes); 0 = plain threshold runs. Default: the checkpoint's
    /// recommendation (0.95 for a model trained on articulated rolls, else 0).
    #[arg(long)]
    dip: Option<f32>,
    /// Note velocity: fixed:N or learned (from the generated intensity).
    #[arg(long, default_value = "fixed:100")]
    velocity: Velocity,
    /// Tempo in BPM of the written file (default: the prompt's, else 120).
    #[arg(long)]
    tempo: Option<f64>,
    /// Also write piano-roll PNG images.
    #[arg(long)]
    png: bool,
    /// Samples per batch (each batch is one CFG pair of forwards per step).
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Start from this noise (safetensors tensor `z`, shape [N, 1, 128, W]) instead of the seed.
    #[arg(long)]
    init_noise: Option<PathBuf>,
    /// Also write the sampler's float output (tensor `x`, [N, 1, 128, W], in [-1, 1]).
    #[arg(long)]
    save_raw: Option<PathBuf>,
    /// K samples along a spherical path between the noises of two earlier samples (sidecars).
    #[arg(long, num_args = 2, value_names = ["A.json", "B.json"])]
    interpolate: Option<Vec<PathBuf>>,
    /// Number of interpolation samples.
    #[arg(long, default_value_t = 5)]
    count: usize,
    /// Regenerate exactly the sample a sidecar describes.
    #[arg(long)]
    replay: Option<PathBuf>,
    /// A MIDI file to continue, fill or accompany.
    #[arg(long)]
    prompt: Option<PathBuf>,
    /// Keep the prompt's first N bars and generate the rest.
    #[arg(long)]
    keep_bars: Option<usize>,
    /// Keep the prompt's first N frames and generate the rest.
    #[arg(long)]
    keep_frames: Option<usize>,
    /// Regenerate bars A..B of the prompt (1-based, inclusive), keeping the rest.
    #[arg(long, value_name = "A..B")]
    fill: Option<String>,
    /// Keep the prompt's pitches LOW..HIGH (MIDI numbers, inclusive) and generate around them.
    #[arg(long, value_name = "LOW..HIGH")]
    keep_pitches: Option<String>,
    /// CPU threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// cpu or cuda.
    #[arg(long, default_value = "cpu")]
    device: String,
}

/// Where a sample's start noise comes from; enough to rebuild it bit for bit.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Noise {
    Seed {
        seed: u64,
    },
    File {
        path: PathBuf,
        index: usize,
    },
    Slerp {
        a: Box<Noise>,
        b: Box<Noise>,
        alpha: f64,
    },
}

/// The sidecar written next to each sample.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Sidecar {
    file: String,
    checkpoint: String,
    weights: String,
    checkpoint_name: String,
    checkpoint_step: u64,
    noise: Noise,
    /// The noises of the whole batch this sample was drawn in, and its place in it: float
    /// results depend on the batch's shape, so an exact replay re-runs the same batch.
    batch: Vec<Noise>,
    batch_index: usize,
    class: u32,
    class_name: Option<String>,
    sampler: SamplerConfig,
    threshold: f32,
    /// Absent in sidecars written before dip splitting: 0, what they were decoded with.
    #[serde(default)]
    dip: f32,
    velocity: Velocity,
    tempo: f64,
    mode: Mode,
    prompt: Option<PathBuf>,
    command: String,
}

fn parse_range(s: &str, what: &str) -> Result<(usize, usize)> {
    let (a, b) = s
        .split_once("..")
        .with_context(|| format!("{what} must look like A..B, got `{s}`"))?;
    let a: usize = a
        .trim()
        .parse()
        .with_context(|| format!("bad {what} `{s}`"))?;
    let b: usize = b
        .trim()
        .parse()
        .with_context(|| format!("bad {what} `{s}`"))?;
    if b < a {
        bail!("{what} `{s}`: the end is before the start");
    }
    Ok((a, b))
}

fn load_model(
    ckpt: Option<&Path>,
    weights: Weights,
) -> Result<(jit_music::checkpoint::ModelWeights, String)> {
    match ckpt {
        Some(p) => Ok((checkpoint::load(p, weights)?, p.display().to_string())),
        None => Ok((jit_music::default_model::load()?, "embedded:default".into())),
    }
}

/// Rebuild one sample's noise `[1, 1, 128, W]`.
fn noise_of(n: &Noise, w: usize, noise_scale: f64) -> Result<Tensor> {
    Ok(match n {
        Noise::Seed { seed } => seeded_noise(*seed, 1, PITCHES, w, noise_scale, &Device::Cpu)?,
        Noise::File { path, index } => {
            let t = candle_core::safetensors::load(path, &Device::Cpu)
                .with_context(|| format!("cannot read noise file {}", path.display()))?;
            let z = t
                .get("z")
                .with_context(|| format!("{}: no tensor named `z`", path.display()))?;
            let dims = z.dims();
            if dims.len() != 4 || dims[1] != 1 || dims[2] != PITCHES || dims[3] != w {
                bail!(
                    "{}: z has shape {dims:?}; this model needs [N, 1, {PITCHES}, {w}]",
                    path.display()
                );
            }
            if *index >= dims[0] {
                bail!(
                    "{}: z has {} samples, index {index} requested",
                    path.display(),
                    dims[0]
                );
            }
            z.narrow(0, *index, 1)?.to_dtype(candle_core::DType::F32)?
        }
        Noise::Slerp { a, b, alpha } => {
            let a = noise_of(a, w, noise_scale)?;
            let b = noise_of(b, w, noise_scale)?;
            slerp(&a, &b, *alpha)?
        }
    })
}

/// Spherical interpolation between two noises (keeps the Gaussian's norm, unlike a straight line).
fn slerp(a: &Tensor, b: &Tensor, t: f64) -> Result<Tensor> {
    let av: Vec<f32> = a.flatten_all()?.to_vec1()?;
    let bv: Vec<f32> = b.flatten_all()?.to_vec1()?;
    let dot: f64 = av
        .iter()
        .zip(&bv)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let na: f64 = av.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = bv.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let cos = (dot / (na * nb).max(1e-12)).clamp(-1.0, 1.0);
    let theta = cos.acos();
    let (wa, wb) = if theta.abs() < 1e-6 {
        (1.0 - t, t)
    } else {
        (
            ((1.0 - t) * theta).sin() / theta.sin(),
            (t * theta).sin() / theta.sin(),
        )
    };
    let v: Vec<f32> = av
        .iter()
        .zip(&bv)
        .map(|(x, y)| (wa * f64::from(*x) + wb * f64::from(*y)) as f32)
        .collect();
    Ok(Tensor::from_vec(v, a.dims(), &Device::Cpu)?)
}

/// The prompt on the model's grid and the keep mode.
fn read_prompt(
    a: &Args,
    meta: &jit_music::checkpoint::CheckpointMeta,
) -> Result<Option<(PianoRoll, Mode, f64)>> {
    let Some(path) = &a.prompt else {
        if a.keep_bars.is_some()
            || a.keep_frames.is_some()
            || a.fill.is_some()
            || a.keep_pitches.is_some()
        {
            bail!("--keep-bars, --keep-frames, --fill and --keep-pitches need --prompt FILE.mid");
        }
        return Ok(None);
    };
    let score = midi::read_file(path)?;
    let opts = RollOptions {
        downbeats: read_pop909_downbeats(path),
        ..RollOptions::for_grid(meta.roll.grid, meta.roll.articulation)
    };
    let sr = score_to_roll(&score, &opts)?;
    let w = meta.config.input_w;
    let fpb = sr.frames_per_bar.unwrap_or(match meta.roll.grid {
        Grid::Beats { steps_per_beat } => 4 * steps_per_beat as usize,
        Grid::Seconds { fps } => fps as usize * 2,
    });
    let modes = [
        a.keep_bars.is_some() || a.keep_frames.is_some(),
        a.fill.is_some(),
        a.keep_pitches.is_some(),
    ];
    if modes.iter().filter(|m| **m).count() != 1 {
        bail!("with --prompt, give exactly one of --keep-bars/--keep-frames, --fill A..B, --keep-pitches LOW..HIGH");
    }
    let mode = if let Some(n) = a.keep_bars.map(|b| b * fpb).or(a.keep_frames) {
        if n >= w {
            bail!("keeping {n} frames leaves nothing to generate: the model writes {w} frames ({} bars)", w / fpb.max(1));
        }
        Mode::Continue { keep_frames: n }
    } else if let Some(f) = &a.fill {
        let (b0, b1) = parse_range(f, "--fill")?;
        if b0 == 0 {
            bail!("--fill bars are numbered from 1");
        }
        let (start, end) = ((b0 - 1) * fpb, b1 * fpb);
        if start >= w {
            bail!("--fill {f}: the model writes {} bars", w / fpb.max(1));
        }
        Mode::Fill {
            start,
            end: end.min(w),
        }
    } else {
        let (lo, hi) = parse_range(
            a.keep_pitches.as_deref().unwrap_or_default(),
            "--keep-pitches",
        )?;
        if hi > 127 {
            bail!("--keep-pitches: MIDI pitches go up to 127");
        }
        Mode::KeepPitches {
            low: lo as u8,
            high: hi as u8,
        }
    };
    let needed = match mode {
        Mode::Continue { keep_frames } => keep_frames,
        Mode::Fill { .. } | Mode::KeepPitches { .. } => w,
        Mode::New => 0,
    };
    if sr.roll.frames() < needed {
        eprintln!(
            "note: the prompt has {} frames, fewer than the {needed} kept; the rest of the kept region is silence",
            sr.roll.frames()
        );
    }
    let tempo = score.initial_bpm();
    Ok(Some((sr.roll.crop(0, w), mode, tempo)))
}

fn main() -> Result<()> {
    jit_music_train::runtime::tune_cpu_runtime();
    let a = Args::parse();
    if let Some(t) = a.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(t.max(1))
            .build_global()
            .ok();
    }
    let replay: Option<Sidecar> = match &a.replay {
        Some(p) => Some(
            serde_json::from_str(
                &std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read {}", p.display()))?,
            )
            .with_context(|| format!("{} is not a generate sidecar", p.display()))?,
        ),
        None => None,
    };
    let ckpt_path: Option<PathBuf> = match &replay {
        Some(s) if s.checkpoint != "embedded:default" => Some(PathBuf::from(&s.checkpoint)),
        Some(_) => None,
        None => a.ckpt.clone(),
    };
    let weights = match &replay {
        Some(s) => s.weights.parse().map_err(anyhow::Error::msg)?,
        None => a.weights,
    };
    let (mw, ckpt_name) = load_model(ckpt_path.as_deref(), weights)?;
    let meta = mw.meta.clone();
    let w = meta.config.input_w;
    if meta.config.input_h != PITCHES {
        bail!(
            "this model has {} pitch rows; only 128-pitch models are supported",
            meta.config.input_h
        );
    }

    // Settings: replay takes everything from the sidecar.
    let mut sampler = meta.sampler.clone();
    if let Some(s) = &replay {
        sampler = s.sampler.clone();
    } else {
        a.sampler.apply(&mut sampler);
    }
    let class = match (&replay, &a.class) {
        (Some(s), _) => s.class,
        (None, Some(c)) => meta.class_index(c)?,
        (None, None) => meta.info["default_class"].as_u64().unwrap_or(0) as u32,
    };
    let (threshold, dip, velocity) = match &replay {
        Some(s) => (s.threshold, s.dip, s.velocity),
        None => (
            a.threshold.unwrap_or_else(|| meta.recommended_threshold()),
            a.dip.unwrap_or_else(|| meta.recommended_dip()),
            a.velocity,
        ),
    };
    if !(0.0..1.0).contains(&threshold) {
        bail!("--threshold must be in [0, 1)");
    }
    if !(0.0..1.0).contains(&dip) {
        bail!("--dip must be in [0, 1)");
    }

    let prompt_args;
    let a_eff: &Args = match &replay {
        Some(s) if s.prompt.is_some() => {
            prompt_args = Args {
                prompt: s.prompt.clone(),
                ..Args::parse_from(["generate", "--out", "."])
            };
            &prompt_args
        }
        _ => &a,
    };
    let mut prompt = read_prompt(a_eff, &meta)?;
    if let (Some(s), Some(p)) = (&replay, prompt.as_mut()) {
        p.1 = s.mode.clone();
    }
    let tempo = match (&replay, a.tempo, &prompt) {
        (Some(s), _, _) => s.tempo,
        (None, Some(t), _) => t,
        (None, None, Some((_, _, t))) => *t,
        _ => 120.0,
    };
    if !(tempo.is_finite() && tempo > 0.0 && tempo < 1000.0) {
        bail!("--tempo must be a positive BPM");
    }

    // The noise of every sample.
    let noises: Vec<Noise> = if let Some(s) = &replay {
        if s.batch.is_empty() {
            vec![s.noise.clone()]
        } else {
            s.batch.clone()
        }
    } else if let Some(pair) = &a.interpolate {
        let read = |p: &PathBuf| -> Result<Noise> {
            let s: Sidecar = serde_json::from_str(
                &std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read {}", p.display()))?,
            )
            .with_context(|| format!("{} is not a generate sidecar", p.display()))?;
            Ok(s.noise)
        };
        let (na, nb) = (read(&pair[0])?, read(&pair[1])?);
        let k = a.count.max(2);
        (0..k)
            .map(|i| Noise::Slerp {
                a: Box::new(na.clone()),
                b: Box::new(nb.clone()),
                alpha: i as f64 / (k - 1) as f64,
            })
            .collect()
    } else if let Some(p) = &a.init_noise {
        let t = candle_core::safetensors::load(p, &Device::Cpu)
            .with_context(|| format!("cannot read noise file {}", p.display()))?;
        let n = t
            .get("z")
            .with_context(|| format!("{}: no tensor named `z`", p.display()))?
            .dim(0)?;
        (0..n)
            .map(|i| Noise::File {
                path: p.clone(),
                index: i,
            })
            .collect()
    } else {
        (0..a.num_samples as u64)
            .map(|i| Noise::Seed { seed: a.seed + i })
            .collect()
    };
    if noises.is_empty() {
        bail!("nothing to generate (--num-samples 0?)");
    }

    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create output folder {}", a.out.display()))?;
    let probe = a.out.join(".write-test");
    std::fs::write(&probe, b"")
        .with_context(|| format!("output folder {} is not writable", a.out.display()))?;
    let _ = std::fs::remove_file(probe);

    let device = match a.device.as_str() {
        "cpu" => Device::Cpu,
        "cuda" => Device::new_cuda(0)
            .context("cannot use CUDA (build with --features cuda and an NVIDIA driver)")?,
        d => bail!("unknown device `{d}`"),
    };
    let gen = Generator::new(mw, device)?;
    let total = noises.len() * sampler.forwards();
    let pb = ProgressBar::new(total as u64);
    pb.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} forwards [{elapsed_precise}<{eta_precise}] {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let batch = if replay.is_some() {
        noises.len()
    } else {
        a.batch.max(1)
    };
    let mut raws: Vec<Tensor> = Vec::new();
    let first_index = replay
        .as_ref()
        .and_then(|s| {
            s.file
                .strip_prefix("sample_")
                .and_then(|f| f.strip_suffix(".mid"))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0usize);
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let export_spec = |grid: Grid| ExportSpec {
        bpm: tempo,
        threshold,
        dip,
        velocity,
        track_name: format!("JiT-Music ({})", meta.name),
        ..ExportSpec::new(grid)
    };
    let mut done = 0usize;
    for (bi, chunk) in noises.chunks(batch).enumerate() {
        let zs: Vec<Tensor> = chunk
            .iter()
            .map(|n| noise_of(n, w, sampler.noise_scale))
            .collect::<Result<_>>()?;
        let z0 = Tensor::cat(&zs, 0)?;
        let labels = vec![class; chunk.len()];
        let prompts: Vec<PianoRoll> = prompt
            .iter()
            .flat_map(|p| std::iter::repeat_n(p.0.clone(), chunk.len()))
            .collect();
        let mut progress = |d: usize, _t: usize| pb.set_position((done + d) as u64);
        let hooks = Hooks {
            progress: Some(&mut progress),
            cancel: None,
        };
        let x = gen
            .sample_raw(
                &z0,
                &labels,
                &sampler,
                prompt.as_ref().map(|p| (prompts.as_slice(), &p.1)),
                hooks,
            )?
            .context("sampling was cancelled")?;
        done += sampler.forwards();
        for (j, noise) in chunk.iter().enumerate() {
            // A replay re-runs the whole batch but writes only the sample it was asked for.
            let replay_index =
                replay
                    .as_ref()
                    .map(|s| if s.batch.is_empty() { 0 } else { s.batch_index });
            if replay_index.is_some_and(|r| r != j) {
                continue;
            }
            let idx = if replay.is_some() {
                first_index
            } else {
                first_index + bi * batch + j
            };
            let xi: Vec<f32> = x.get(j)?.flatten_all()?.to_vec1()?;
            let roll = PianoRoll::from_model_output(w, &xi).context("unexpected output shape")?;
            let notes = merge_notes(
                &roll,
                prompt.as_ref().map(|p| (&p.0, &p.1)),
                threshold,
                dip,
                velocity,
            );
            let stem = format!("sample_{idx:04}");
            let spec = export_spec(meta.roll.grid);
            std::fs::write(
                a.out.join(format!("{stem}.mid")),
                notes_to_smf(&notes, &spec),
            )
            .with_context(|| format!("cannot write into {}", a.out.display()))?;
            if a.png {
                let fpb = meta.roll.grid.frames_per_bar(4, 4);
                write_png(&roll, &a.out.join(format!("{stem}.png")), 4, fpb)?;
            }
            let side = Sidecar {
                file: format!("{stem}.mid"),
                checkpoint: ckpt_name.clone(),
                weights: match weights {
                    Weights::Ema1 => "ema1",
                    Weights::Ema2 => "ema2",
                    Weights::Live => "live",
                }
                .into(),
                checkpoint_name: meta.name.clone(),
                checkpoint_step: meta.step,
                noise: noise.clone(),
                batch: chunk.to_vec(),
                batch_index: j,
                class,
                class_name: meta.classes.get(class as usize).cloned(),
                sampler: sampler.clone(),
                threshold,
                dip,
                velocity,
                tempo,
                mode: prompt.as_ref().map(|p| p.1.clone()).unwrap_or(Mode::New),
                prompt: prompt.as_ref().and(a_eff.prompt.clone()),
                command: command.clone(),
            };
            std::fs::write(
                a.out.join(format!("{stem}.json")),
                serde_json::to_string_pretty(&side)?,
            )?;
        }
        match replay
            .as_ref()
            .map(|s| if s.batch.is_empty() { 0 } else { s.batch_index })
        {
            Some(r) => raws.push(x.narrow(0, r, 1)?),
            None => raws.push(x),
        }
    }
    pb.finish_and_clear();
    if let Some(p) = &a.save_raw {
        let x = Tensor::cat(&raws, 0)?;
        candle_core::safetensors::save(&std::collections::HashMap::from([("x".to_string(), x)]), p)
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    eprintln!(
        "wrote {} samples to {} ({}, {} {} steps, cfg {}, class {})",
        if replay.is_some() { 1 } else { noises.len() },
        a.out.display(),
        meta.name,
        sampler.method,
        sampler.steps,
        sampler.cfg_scale,
        meta.classes
            .get(class as usize)
            .cloned()
            .unwrap_or_else(|| class.to_string())
    );
    Ok(())
}
