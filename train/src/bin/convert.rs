//! `convert`: turn any checkpoint we can load (the original's .pt, a training checkpoint, an
//! inference checkpoint) into an inference checkpoint, optionally in f16.

use anyhow::{bail, Context, Result};
use candle_core::DType;
use clap::Parser;
use jit_music::checkpoint::{self, Weights};
use jit_music_train::sampler_args::SamplerArgs;

/// Convert a checkpoint (the original's .pt, or a training or inference checkpoint of ours) to
/// an inference checkpoint: one weight set, optionally in f16, with its config, the sampler
/// settings it recommends and a checksum.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Input: the original's .pt, or one of our checkpoints.
    input: std::path::PathBuf,
    /// Output .safetensors.
    output: std::path::PathBuf,
    /// Which weights: ema1 (default), ema2 or live.
    #[arg(long, default_value = "ema1")]
    weights: Weights,
    /// Store the weights as f16 (half the size).
    #[arg(long)]
    f16: bool,
    /// Set the model's display name.
    #[arg(long)]
    name: Option<String>,
    /// The sampler settings this checkpoint recommends to `generate`.
    #[command(flatten)]
    sampler: SamplerArgs,
    /// Recommended note threshold (0..1 of full scale), stored as `info.threshold`.
    #[arg(long)]
    threshold: Option<f64>,
    /// Recommended dip ratio for splitting notes (0 = plain threshold runs), as `info.dip`.
    #[arg(long)]
    dip: Option<f64>,
    /// Record provenance: KEY=FILE.json puts the file's JSON under `info.KEY` (say, the
    /// evaluation report). Repeatable.
    #[arg(long, value_name = "KEY=FILE")]
    info: Vec<String>,
}

fn main() -> std::process::ExitCode {
    jit_music_train::runtime::main_with(try_main)
}

fn try_main() -> Result<()> {
    let a = Args::parse();
    let w = checkpoint::load(&a.input, a.weights)?;
    let dtype = if a.f16 { DType::F16 } else { DType::F32 };
    let mut tensors: Vec<(String, candle_core::Tensor)> = w
        .tensors
        .iter()
        .map(|(k, t)| Ok((k.clone(), t.to_dtype(dtype)?)))
        .collect::<Result<_>>()?;
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let mut meta = w.meta.clone();
    if let Some(n) = a.name {
        meta.name = n;
    }
    meta.kind = checkpoint::Kind::Inference;
    a.sampler.apply(&mut meta.sampler)?;
    if !meta.info.is_object() {
        meta.info = serde_json::json!({});
    }
    if let Some(t) = a.threshold {
        if !(0.0..1.0).contains(&t) {
            bail!("--threshold must be in [0, 1), got {t}");
        }
        meta.info["threshold"] = serde_json::json!(t);
    }
    if let Some(d) = a.dip {
        if !(0.0..1.0).contains(&d) {
            bail!("--dip must be in [0, 1), got {d}");
        }
        meta.info["dip"] = serde_json::json!(d);
    }
    for kv in &a.info {
        let Some((key, file)) = kv.split_once('=') else {
            bail!("--info takes KEY=FILE.json, got {kv}");
        };
        let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {file}"))?;
        let value: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("{file} is not JSON"))?;
        meta.info[key] = value;
    }
    checkpoint::save(&a.output, &tensors, &meta)?;
    eprintln!(
        "{} -> {} ({} tensors, {}, {})",
        a.input.display(),
        a.output.display(),
        tensors.len(),
        if a.f16 { "f16" } else { "f32" },
        meta.config.preset_name().unwrap_or("custom size")
    );
    Ok(())
}
