//! Preview samples written while training, through the same generation path as `generate`.

use super::Trainer;
use anyhow::Result;
use jit_music::checkpoint::Kind;
use jit_music::export::{notes_to_smf, ExportSpec};
use jit_music::generate::{Generator, Method, Request, SamplerConfig};
use jit_music::roll::{write_png, Decode, Velocity};
use jit_music::sampler::Hooks;
use std::path::PathBuf;

impl Trainer {
    /// Write preview samples (EMA-1) as .mid and .png into `RUN/samples/step_N/`: one per
    /// class in turn, made as `generate` makes them.
    pub fn previews(&self) -> Result<PathBuf> {
        let dir = self.run.samples(self.step);
        std::fs::create_dir_all(&dir)?;
        let meta = self.meta(Kind::Inference, serde_json::json!({}));
        let gen = Generator::from_net(self.ema1_net()?, meta, self.dev.clone());
        let n = self.cfg.preview_samples.max(1);
        let classes = self.cfg.model.num_classes.max(1);
        let requests = (0..n)
            .map(|i| {
                Ok(Request {
                    noise: gen.noise(self.cfg.seed.wrapping_add(i as u64))?,
                    label: (i % classes) as u32,
                    prompt: None,
                    chords: None,
                    vary: None,
                })
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        let sampler = SamplerConfig {
            method: Method::Heun,
            steps: self.cfg.preview_steps,
            ..gen.meta().sampler.clone()
        };
        let decode = Decode {
            threshold: gen.meta().recommended_threshold(),
            dip: gen.meta().recommended_dip(),
            velocity: Velocity::default(),
        };
        let Some(out) = gen.generate(&requests, &sampler, &decode, Hooks::default())? else {
            return Ok(dir);
        };
        let spec = gen.spec();
        let fpb = spec.grid.frames_per_bar(4, 4);
        for (i, (g, r)) in out.iter().zip(&requests).enumerate() {
            let cname = self
                .dataset
                .classes
                .get(r.label as usize)
                .map(|c| format!("_{c}"))
                .unwrap_or_default();
            let stem = format!("sample_{i:02}{cname}");
            let smf = notes_to_smf(&g.notes(), &ExportSpec::new(spec.grid));
            std::fs::write(dir.join(format!("{stem}.mid")), smf)?;
            write_png(
                &spec.display_roll(&g.raw),
                &dir.join(format!("{stem}.png")),
                3,
                fpb,
            )?;
        }
        Ok(dir)
    }
}
