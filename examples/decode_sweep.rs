//! Decode saved raw sampler outputs with several note thresholds and dip-split ratios, one MIDI
//! folder per setting, to choose the decoder with `evaluate` without sampling again. The
//! checkpoint says how its rolls are laid out (intensity or onset/sustain channels).
//!
//! ```sh
//! generate --ckpt CKPT --out gen --num-samples 200 --class pop --seed 1000 --save-raw raw.safetensors
//! cargo run --release --no-default-features --example decode_sweep -- CKPT raw.safetensors sweep/ \
//!     0.3,0.4,0.5 0,0.6,0.75,0.9
//! evaluate --generated sweep/t0.4_d0.75 --reference held_out/ ...
//! ```
//! CKPT may be `default` (the embedded model). Dips apply to intensity rolls only.

use anyhow::{bail, Context, Result};
use jit_music::export::{notes_to_smf, ExportSpec};
use jit_music::roll::{Decode, Velocity};
use std::path::PathBuf;

fn list(s: &str) -> Result<Vec<f32>> {
    s.split(',')
        .map(|x| {
            x.trim()
                .parse::<f32>()
                .with_context(|| format!("bad number `{x}`"))
        })
        .collect()
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 5 {
        bail!("usage: decode_sweep CKPT|default RAW.safetensors OUT_DIR THRESHOLDS DIPS (comma lists)");
    }
    let weights = match args[0].as_str() {
        "default" => jit_music::default_model::load()?,
        p => jit_music::checkpoint::load(p.as_ref(), Default::default())?,
    };
    let spec = weights.meta.roll;
    let raw = candle_core::safetensors::load(&args[1], &candle_core::Device::Cpu)?;
    let x = raw.get("x").context("no tensor `x` in the raw file")?;
    let n = x.dim(0)?;
    if x.elem_count() != n * spec.numel() {
        bail!(
            "the raw outputs {:?} do not fit this model's rolls",
            x.dims()
        );
    }
    let x = x.to_dtype(candle_core::DType::F32)?;
    let out = PathBuf::from(&args[2]);
    let export = ExportSpec::new(spec.grid);
    for threshold in list(&args[3])? {
        for dip in list(&args[4])? {
            let dir = out.join(format!("t{threshold}_d{dip}"));
            std::fs::create_dir_all(&dir)?;
            let d = Decode {
                threshold,
                dip,
                velocity: Velocity::Fixed(100),
            };
            for i in 0..n {
                let v: Vec<f32> = x.get(i)?.flatten_all()?.to_vec1()?;
                let notes = spec.decode(&v, &d, None);
                std::fs::write(
                    dir.join(format!("sample_{i:04}.mid")),
                    notes_to_smf(&notes, &export),
                )?;
            }
        }
    }
    Ok(())
}
