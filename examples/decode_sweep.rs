//! Decode saved raw sampler outputs with several note thresholds and dip-split ratios, one MIDI
//! folder per setting, to choose the decoder with `evaluate` without sampling again.
//!
//! ```sh
//! generate --out gen --num-samples 200 --class pop --seed 1000 --save-raw raw.safetensors
//! cargo run --release --no-default-features --example decode_sweep -- raw.safetensors sweep/ \
//!     0.3,0.4,0.5 0,0.6,0.75,0.9
//! evaluate --generated sweep/t0.4_d0.75 --reference held_out/ ...
//! ```

use anyhow::{bail, Context, Result};
use jit_music::export::{notes_to_smf, ExportSpec};
use jit_music::roll::{roll_to_notes_split, Grid, PianoRoll, Velocity};
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
    if args.len() != 4 {
        bail!("usage: decode_sweep RAW.safetensors OUT_DIR THRESHOLDS DIPS (comma lists)");
    }
    let raw = candle_core::safetensors::load(&args[0], &candle_core::Device::Cpu)?;
    let x = raw.get("x").context("no tensor `x` in the raw file")?;
    let (n, _, h, w) = x.dims4()?; // [N, 1, 128, W]
    if h != 128 {
        bail!("expected 128 pitch rows, got {h}");
    }
    let x = x.to_dtype(candle_core::DType::F32)?;
    let out = PathBuf::from(&args[1]);
    let spec = ExportSpec::new(Grid::Beats { steps_per_beat: 4 });
    for t in list(&args[2])? {
        for d in list(&args[3])? {
            let dir = out.join(format!("t{t}_d{d}"));
            std::fs::create_dir_all(&dir)?;
            for i in 0..n {
                let v: Vec<f32> = x.get(i)?.flatten_all()?.to_vec1()?;
                let roll = PianoRoll::from_model_output(w, &v).context("bad roll")?;
                let notes = roll_to_notes_split(&roll, t, d, Velocity::Fixed(100));
                std::fs::write(
                    dir.join(format!("sample_{i:04}.mid")),
                    notes_to_smf(&notes, &spec),
                )?;
            }
        }
    }
    Ok(())
}
