//! `generate`: sample MIDI files from a JiT-Music model (the embedded default, one of ours, or the
//! original's .pt), including continuation, infilling, accompaniment and chord following.

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use jit_music::checkpoint::{self, CheckpointMeta, ModelWeights, Weights};
use jit_music::chords::ChordTrack;
use jit_music::condition::Keep;
use jit_music::default_model::Embedded;
use jit_music::export::{notes_to_smf, ExportSpec};
use jit_music::generate::{Generated, Generator, Prompt, Request, SamplerConfig, Vary};
use jit_music::roll::{write_png, Decode, Velocity};
use jit_music::sampler::Hooks;
use jit_music_train::prompt::{
    prompt_from_flags, prompt_notes, read_chords, read_prompt, KeepFlags,
};
use jit_music_train::sampler_args::SamplerArgs;
use jit_music_train::sidecar::{file_noises, interpolation, noise_of, Noise, Sidecar, VaryRecord};
use std::path::{Path, PathBuf};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Generate MIDI with a JiT-Music diffusion model.
///
/// Without --ckpt a model embedded in this binary is used: the default for new ideas, the
/// conditioned one (trained with known notes and chords) when there is a --prompt or chords.
/// `inspect CKPT` lists another model's classes and recommended settings. Every sample gets a .mid file and a .json sidecar
/// that reproduces it exactly (`--replay`).
#[derive(Parser, Debug)]
#[command(version)]
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
    #[arg(long, help = class_help())]
    class: Option<String>,
    /// Note threshold, 0..1 of full scale (default: the checkpoint's recommendation, else 0.5).
    #[arg(long)]
    threshold: Option<f32>,
    /// Split notes where the drawn intensity dips below this share of the neighbouring peaks
    /// (the model's re-strikes); 0 = plain threshold runs. Default: the checkpoint's
    /// recommendation (0.95 for a model trained on articulated rolls, else 0).
    #[arg(long)]
    dip: Option<f32>,
    /// Note velocity: fixed:N or learned (from the generated intensity or onset).
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
    /// Start from this noise (safetensors tensor `z`, shape [N, C, 128, W]) instead of the seed.
    #[arg(long)]
    init_noise: Option<PathBuf>,
    /// Also write the sampler's float output (tensor `x`, [N, C, 128, W], in [-1, 1]).
    #[arg(long)]
    save_raw: Option<PathBuf>,
    /// K samples along a spherical path between the noises of two earlier samples (sidecars).
    #[arg(long, num_args = 2, value_names = ["A.json", "B.json"])]
    interpolate: Option<Vec<PathBuf>>,
    /// Number of interpolation samples.
    #[arg(long, default_value_t = 5)]
    count: usize,
    /// Variations of an earlier sample (its sidecar): the same model, class, prompt and chords,
    /// its output partly re-noised (--amount) and sampled again from new noises (--seed).
    #[arg(long, value_name = "SAMPLE.json", conflicts_with = "replay")]
    vary: Option<PathBuf>,
    /// How far a variation goes back towards noise: 0 keeps the sample, 1 is a new one.
    #[arg(long, default_value_t = 0.5)]
    amount: f64,
    /// Regenerate exactly the sample a sidecar describes.
    #[arg(long)]
    replay: Option<PathBuf>,
    /// A MIDI file to continue, fill or accompany.
    #[arg(long)]
    prompt: Option<PathBuf>,
    /// The bar of the prompt where the model's window starts (1-based).
    #[arg(long, default_value_t = 1)]
    from_bar: usize,
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
    /// Keep one part of the prompt and write the rest around it: a track name, `melody`,
    /// `accompaniment` (all but the melody) or `all`.
    #[arg(long, value_name = "NAME")]
    keep_part: Option<String>,
    /// Chords to follow, one bar per `|`: "C | G | Am F | F" (several chords share a bar
    /// evenly; `C*3 G` gives beats; `%` repeats a bar; N.C. is no chord). Needs a model
    /// trained with chords; repeated to fill the model's window.
    #[arg(long, value_name = "PROGRESSION")]
    chords: Option<String>,
    /// Chords from a file: a MIDI file (POP909's annotations beside it, else estimated from its
    /// notes), POP909's chord_midi.txt format, or a text file with a progression.
    #[arg(long, value_name = "FILE")]
    chords_from: Option<PathBuf>,
    /// CPU threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// cpu or cuda.
    #[arg(long, default_value = "cpu")]
    device: String,
}

/// `--class`'s help, with the embedded model's classes as it records them.
fn class_help() -> String {
    let classes = checkpoint::read_meta("embedded", jit_music::default_model::BYTES)
        .map(|m| {
            let default = m.default_class() as usize;
            let names = m
                .classes
                .iter()
                .enumerate()
                .map(|(i, c)| match i == default {
                    true => format!("{i} {c} (default)"),
                    false => format!("{i} {c}"),
                });
            names.collect::<Vec<_>>().join(", ")
        })
        .unwrap_or_default();
    format!("Style class by name or index; the embedded model's: {classes}")
}

/// A plan's values can work: the flags are checked as they are read, a sidecar (`--replay`,
/// `--vary`) is a file anyone can edit.
fn check_plan(p: &Plan, meta: &CheckpointMeta) -> Result<()> {
    checkpoint::check_sampler(&p.sampler).map_err(anyhow::Error::msg)?;
    let n = meta.config.num_classes;
    if p.class as usize >= n {
        bail!("class {} is outside this model's 0..{n}", p.class);
    }
    let (t, d) = (p.decode.threshold, p.decode.dip);
    if !((0.0..1.0).contains(&t) && (0.0..1.0).contains(&d)) {
        bail!("threshold {t} and dip {d} must be in [0, 1)");
    }
    if !(p.tempo.is_finite() && (10.0..=400.0).contains(&p.tempo)) {
        bail!("tempo must be between 10 and 400 BPM, got {}", p.tempo);
    }
    Ok(())
}

/// Everything a run needs, resolved from the flags or a sidecar.
struct Plan {
    sampler: SamplerConfig,
    class: u32,
    decode: Decode,
    tempo: f64,
    prompt: Option<(Prompt, PathBuf, Option<String>)>,
    chords: Option<(ChordTrack, String)>,
    noises: Vec<Noise>,
    batch: usize,
    /// For a replay: the sample index to write and its place in the batch.
    replay: Option<(usize, usize)>,
    from_bar: usize,
    /// A variation: the sidecar of the sample it varies and how far.
    vary: Option<(PathBuf, f64)>,
}

fn main() -> std::process::ExitCode {
    jit_music_train::runtime::main_with(try_main)
}

fn try_main() -> Result<()> {
    jit_music_train::runtime::tune_cpu_runtime();
    let a = Args::parse();
    jit_music_train::runtime::set_threads(a.threads);
    let replay = a.replay.as_deref().map(Sidecar::read).transpose()?;
    let varied = a.vary.as_deref().map(Sidecar::read).transpose()?;
    let (weights, ckpt_name) = load_model(&a, replay.as_ref().or(varied.as_ref()))?;
    let plan = resolve(&a, replay.as_ref(), &weights.meta)?;
    check_plan(&plan, &weights.meta)?;
    prepare_output(&a.out)?;
    let gen = Generator::new(weights, device(&a.device)?)?;
    let raws = run(&a, &plan, &gen, &ckpt_name)?;
    if let Some(p) = &a.save_raw {
        let x = Tensor::cat(&raws, 0)?;
        candle_core::safetensors::save(&std::collections::HashMap::from([("x".to_string(), x)]), p)
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    let m = gen.meta();
    eprintln!(
        "wrote {} samples to {} ({}, {} {} steps, cfg {}, class {})",
        if plan.replay.is_some() {
            1
        } else {
            plan.noises.len()
        },
        a.out.display(),
        m.name,
        plan.sampler.method,
        plan.sampler.steps,
        plan.sampler.cfg_scale,
        m.classes
            .get(plan.class as usize)
            .cloned()
            .unwrap_or_else(|| plan.class.to_string())
    );
    Ok(())
}

/// The model a run uses: a replay's, `--ckpt`, or the embedded model for the request (the
/// conditioned one when it has a prompt or chords: `Embedded::for_request`).
fn load_model(a: &Args, replay: Option<&Sidecar>) -> Result<(ModelWeights, String)> {
    let (path, which) = match replay {
        Some(s) => match Embedded::from_name(&s.checkpoint) {
            Some(e) => return Ok((e.load()?, e.name().into())),
            None => (
                PathBuf::from(&s.checkpoint),
                s.weights.parse().map_err(anyhow::Error::msg)?,
            ),
        },
        None => match &a.ckpt {
            Some(p) => (p.clone(), a.weights),
            None => {
                let has_chords = a.chords.is_some() || a.chords_from.is_some();
                let e = Embedded::for_request(a.prompt.is_some(), has_chords);
                return Ok((e.load()?, e.name().into()));
            }
        },
    };
    Ok((checkpoint::load(&path, which)?, path.display().to_string()))
}

/// Settings, prompt, chords and noises: a replay takes them all from its sidecar, a variation
/// all but the noises.
fn resolve(a: &Args, replay: Option<&Sidecar>, meta: &CheckpointMeta) -> Result<Plan> {
    if let (None, Some(path)) = (replay, &a.vary) {
        if !(0.0..=1.0).contains(&a.amount) {
            bail!("--amount must be between 0 and 1, got {}", a.amount);
        }
        let mut plan = resolve(a, Some(&Sidecar::read(path)?), meta)?;
        plan.noises = seed_noises(a)?;
        plan.batch = a.batch.max(1);
        plan.replay = None;
        plan.vary = Some((path.clone(), a.amount));
        return Ok(plan);
    }
    let flags = KeepFlags {
        keep_bars: a.keep_bars,
        keep_frames: a.keep_frames,
        fill: a.fill.clone(),
        keep_pitches: a.keep_pitches.clone(),
        keep_part: a.keep_part.clone(),
    };
    if let Some(s) = replay {
        let prompt = match &s.prompt {
            Some(p) => {
                let file = read_prompt(p, &meta.roll, s.from_bar.max(1))?;
                let notes = prompt_notes(&file, s.keep_part.as_deref())?;
                let prompt = Prompt {
                    notes,
                    keep: s.keep,
                };
                Some((prompt, p.clone(), s.keep_part.clone()))
            }
            None => None,
        };
        let (noises, index) = s.replay_batch();
        return Ok(Plan {
            sampler: s.sampler.clone(),
            class: s.class,
            decode: Decode {
                threshold: s.threshold,
                dip: s.dip,
                velocity: s.velocity,
            },
            tempo: s.tempo,
            prompt,
            chords: s
                .chords
                .clone()
                .map(|c| (c, s.chords_source.clone().unwrap_or_default())),
            batch: noises.len(),
            noises,
            replay: Some((s.index(), index)),
            from_bar: s.from_bar.max(1),
            vary: s.vary.clone().map(|v| (v.from, v.amount)),
        });
    }
    let mut sampler = meta.sampler.clone();
    a.sampler.apply(&mut sampler)?;
    let class = match &a.class {
        Some(c) => meta.class_index(c)?,
        None => meta.default_class(),
    };
    let decode = Decode {
        threshold: a.threshold.unwrap_or_else(|| meta.recommended_threshold()),
        dip: a.dip.unwrap_or_else(|| meta.recommended_dip()),
        velocity: a.velocity,
    };
    if !(0.0..1.0).contains(&decode.threshold) {
        bail!("--threshold must be in [0, 1), got {}", decode.threshold);
    }
    if !(0.0..1.0).contains(&decode.dip) {
        bail!("--dip must be in [0, 1), got {}", decode.dip);
    }
    let prompt = match &a.prompt {
        Some(p) => {
            let file = read_prompt(p, &meta.roll, a.from_bar)?;
            let prompt = prompt_from_flags(&flags, &file, meta.roll.frames)?;
            Some((prompt, p.clone(), a.keep_part.clone(), file.tempo))
        }
        None if flags.any() => {
            bail!("--keep-bars, --keep-frames, --fill, --keep-pitches and --keep-part need --prompt FILE.mid")
        }
        None => None,
    };
    let tempo = a.tempo.or(prompt.as_ref().map(|p| p.3)).unwrap_or(120.0);
    if !(tempo.is_finite() && (10.0..=400.0).contains(&tempo)) {
        bail!("--tempo must be between 10 and 400 BPM, got {tempo}");
    }
    let chords = read_chords(
        a.chords.as_deref(),
        a.chords_from.as_deref(),
        &meta.roll,
        tempo,
        a.from_bar,
    )?;
    if chords.is_some() && !meta.roll.conditions.chords {
        bail!(
            "this model was not trained with chords ({}); use a chord-conditioned model",
            meta.name
        );
    }
    let noises = if let Some(pair) = &a.interpolate {
        interpolation(&pair[0], &pair[1], a.count)?
    } else if let Some(p) = &a.init_noise {
        file_noises(p)?
    } else {
        seed_noises(a)?
    };
    if a.batch == 0 {
        bail!("--batch must be at least 1");
    }
    Ok(Plan {
        sampler,
        class,
        decode,
        tempo,
        prompt: prompt.map(|p| (p.0, p.1, p.2)),
        chords,
        noises,
        batch: a.batch,
        replay: None,
        from_bar: a.from_bar,
        vary: None,
    })
}

/// `--num-samples` noises from `--seed` up.
fn seed_noises(a: &Args) -> Result<Vec<Noise>> {
    if a.num_samples == 0 {
        bail!("nothing to generate: --num-samples must be at least 1");
    }
    Ok((0..a.num_samples as u64)
        .map(|i| Noise::Seed {
            seed: a.seed.wrapping_add(i),
        })
        .collect())
}

fn prepare_output(out: &Path) -> Result<()> {
    std::fs::create_dir_all(out)
        .with_context(|| format!("cannot create output folder {}", out.display()))?;
    let probe = out.join(".write-test");
    std::fs::write(&probe, b"")
        .with_context(|| format!("output folder {} is not writable", out.display()))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

fn device(name: &str) -> Result<Device> {
    match name {
        "cpu" => Ok(Device::Cpu),
        "cuda" => Device::new_cuda(0)
            .context("cannot use CUDA (build with --features cuda and an NVIDIA driver)"),
        d => bail!("unknown device `{d}` (cpu or cuda)"),
    }
}

/// The requests of one batch of noises.
fn requests(
    plan: &Plan,
    gen: &Generator,
    chunk: &[Noise],
    vary: Option<&Vary>,
) -> Result<Vec<Request>> {
    chunk
        .iter()
        .map(|n| {
            Ok(Request {
                noise: noise_of(n, gen)?,
                label: plan.class,
                prompt: plan.prompt.as_ref().map(|p| p.0.clone()),
                chords: plan.chords.as_ref().map(|c| c.0.clone()),
                vary: vary.cloned(),
            })
        })
        .collect()
}

/// For a variation, the output it varies: the earlier sample made again from its sidecar
/// (itself perhaps a variation).
fn varied_output(a: &Args, plan: &Plan, gen: &Generator) -> Result<Option<Vary>> {
    let Some((path, amount)) = &plan.vary else {
        return Ok(None);
    };
    let side = Sidecar::read(path)?;
    let source = resolve(a, Some(&side), gen.meta())?;
    let inner = varied_output(a, &source, gen)?;
    let (_, index) = source.replay.context("a replay plan")?;
    let out = gen
        .generate(
            &requests(&source, gen, &source.noises, inner.as_ref())?,
            &source.sampler,
            &source.decode,
            Hooks::default(),
        )?
        .context("sampling was cancelled")?;
    let from = out.into_iter().nth(index).context("the varied sample")?.raw;
    Ok(Some(Vary {
        from,
        amount: *amount,
    }))
}

/// Generate every batch and write its samples; returns the raw outputs written.
fn run(a: &Args, plan: &Plan, gen: &Generator, ckpt_name: &str) -> Result<Vec<Tensor>> {
    let pb = ProgressBar::new((plan.noises.len() * plan.sampler.forwards()) as u64);
    pb.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} forwards [{elapsed_precise}<{eta_precise}] {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let mut raws = Vec::new();
    let mut done = 0usize;
    let vary = varied_output(a, plan, gen)?;
    for (bi, chunk) in plan.noises.chunks(plan.batch).enumerate() {
        let requests = requests(plan, gen, chunk, vary.as_ref())?;
        let mut progress = |d: usize, _t: usize| pb.set_position((done + d) as u64);
        let hooks = Hooks {
            progress: Some(&mut progress),
            cancel: None,
        };
        let out = gen
            .generate(&requests, &plan.sampler, &plan.decode, hooks)?
            .context("sampling was cancelled")?;
        done += plan.sampler.forwards();
        for (j, g) in out.iter().enumerate() {
            // A replay re-runs the whole batch but writes only the sample it was asked for.
            let idx = match plan.replay {
                Some((_, r)) if r != j => continue,
                Some((i, _)) => i,
                None => bi * plan.batch + j,
            };
            let side = sidecar(
                &Ctx {
                    a,
                    plan,
                    gen,
                    ckpt_name,
                    command: &command,
                },
                chunk,
                j,
                idx,
            );
            write_sample(&a.out, a.png, gen, plan, g, &side)?;
            raws.push(Tensor::from_slice(&g.raw, gen.noise_dims(), &Device::Cpu)?);
        }
    }
    pb.finish_and_clear();
    Ok(raws)
}

/// What every sidecar of a run shares.
struct Ctx<'a> {
    a: &'a Args,
    plan: &'a Plan,
    gen: &'a Generator,
    ckpt_name: &'a str,
    command: &'a str,
}

/// The sidecar of sample `idx`, place `j` in a batch of `chunk`.
fn sidecar(ctx: &Ctx, chunk: &[Noise], j: usize, idx: usize) -> Sidecar {
    let Ctx {
        a,
        plan,
        gen,
        ckpt_name,
        command,
    } = *ctx;
    let m = gen.meta();
    Sidecar {
        file: format!("sample_{idx:04}.mid"),
        checkpoint: ckpt_name.to_string(),
        weights: match a.weights {
            Weights::Ema1 => "ema1",
            Weights::Ema2 => "ema2",
            Weights::Live => "live",
        }
        .into(),
        checkpoint_name: m.name.clone(),
        checkpoint_step: m.step,
        noise: chunk[j].clone(),
        batch: chunk.to_vec(),
        batch_index: j,
        class: plan.class,
        class_name: m.classes.get(plan.class as usize).cloned(),
        sampler: plan.sampler.clone(),
        threshold: plan.decode.threshold,
        dip: plan.decode.dip,
        velocity: plan.decode.velocity,
        tempo: plan.tempo,
        keep: plan.prompt.as_ref().map_or(Keep::New, |p| p.0.keep),
        prompt: plan.prompt.as_ref().map(|p| p.1.clone()),
        from_bar: plan.from_bar,
        keep_part: plan.prompt.as_ref().and_then(|p| p.2.clone()),
        chords: plan.chords.as_ref().map(|c| c.0.clone()),
        chords_source: plan.chords.as_ref().map(|c| c.1.clone()),
        vary: plan.vary.as_ref().map(|(from, amount)| VaryRecord {
            from: from.clone(),
            amount: *amount,
        }),
        command: command.to_string(),
    }
}

/// `sample_N.mid`, its sidecar and (with `--png`) its picture.
fn write_sample(
    out: &Path,
    png: bool,
    gen: &Generator,
    plan: &Plan,
    g: &Generated,
    side: &Sidecar,
) -> Result<()> {
    let m = gen.meta();
    let spec = ExportSpec {
        bpm: plan.tempo,
        track_name: format!("JiT-Music ({})", m.name),
        ..ExportSpec::new(m.roll.grid)
    };
    let stem = side.file.trim_end_matches(".mid");
    std::fs::write(out.join(&side.file), notes_to_smf(&g.notes(), &spec))
        .with_context(|| format!("cannot write into {}", out.display()))?;
    if png {
        let fpb = m.roll.grid.frames_per_bar(4, 4);
        write_png(
            &m.roll.display_roll(&g.raw),
            &out.join(format!("{stem}.png")),
            4,
            fpb,
        )?;
    }
    let json = out.join(format!("{stem}.json"));
    std::fs::write(&json, serde_json::to_string_pretty(side)?)
        .with_context(|| format!("cannot write {}", json.display()))?;
    Ok(())
}
