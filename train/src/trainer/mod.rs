//! The training loop: v-loss on bar-aligned windows, AdamW with warmup + cosine, two EMAs,
//! checkpoints that lose nothing (write-temp-and-rename, `last` plus every N steps, on Ctrl-C),
//! exact resume, a JSONL log, validation loss and preview samples.

mod bench;
pub mod distill;
mod init;
mod previews;
pub mod resume;
mod step;

pub use bench::benchmark;
pub use step::{loss_and_grads, StepBatch};

use crate::data::{self, DataConfig, Dataset, Sampler};
use crate::optim::{AdamW, AdamWConfig};
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use indicatif::{ProgressBar, ProgressStyle};
use init::{seeded_init, set_var, sorted_vars};
use jit_music::checkpoint::{self, CheckpointMeta, Kind, Weights};
use jit_music::diffusion::Objective;
use jit_music::model::{JiT, JitConfig};
use jit_music::sampler::SamplerConfig;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Everything that defines a run; stored in every checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub midi_dir: PathBuf,
    pub preset: String,
    pub model: JitConfig,
    pub data: DataConfig,
    pub objective: Objective,
    pub optim: AdamWConfig,
    pub ema_decays: (f64, f64),
    pub batch_size: usize,
    pub steps: u64,
    pub seed: u64,
    /// Update `last` (and the published EMA model) every this many steps.
    pub ckpt_every: u64,
    /// Also keep a numbered snapshot every this many steps (0 = never).
    pub keep_every: u64,
    pub sample_every: u64,
    pub val_every: u64,
    pub preview_samples: usize,
    pub preview_steps: usize,
    /// "cpu" or "cuda".
    pub device: String,
    pub name: String,
    /// The command line that started the run.
    pub command: String,
    /// A few-step student distilled from a teacher (see [`distill`]).
    #[serde(default)]
    pub distill: Option<distill::DistillConfig>,
}

/// Where a run keeps its files.
pub struct RunDir {
    pub root: PathBuf,
}

impl RunDir {
    pub fn checkpoints(&self) -> PathBuf {
        self.root.join("checkpoints")
    }
    pub fn last(&self) -> PathBuf {
        self.checkpoints().join("last.safetensors")
    }
    pub fn published(&self) -> PathBuf {
        self.checkpoints().join("model.safetensors")
    }
    pub fn log(&self) -> PathBuf {
        self.root.join("log.jsonl")
    }
    pub fn samples(&self, step: u64) -> PathBuf {
        self.root.join("samples").join(format!("step_{step}"))
    }
    pub fn cache(&self) -> PathBuf {
        self.root.join("cache")
    }

    /// Create the folders, failing early with a clear message if they cannot be written.
    pub fn prepare(&self) -> Result<()> {
        std::fs::create_dir_all(self.checkpoints())
            .with_context(|| format!("cannot create output folder {}", self.root.display()))?;
        resume::remove_stale_tmp(&self.checkpoints());
        let probe = self.root.join(".write-test");
        std::fs::write(&probe, b"ok")
            .with_context(|| format!("output folder {} is not writable", self.root.display()))?;
        let _ = std::fs::remove_file(probe);
        Ok(())
    }
}

/// About how many bytes a training run of `cfg` needs: the parameters with their gradients,
/// optimizer moments, two EMAs and transient copies, the activations a batch keeps for the
/// backward pass (tokens x (11 hidden + 3 MLP hidden) floats per block, twice for candle's
/// temporaries), and a margin for the data. An upper bound to refuse what cannot fit, not a
/// measurement.
pub fn memory_estimate(cfg: &TrainConfig) -> u64 {
    let m = &cfg.model;
    let params = m.param_count() as u64;
    let per_sample =
        (m.depth * m.num_patches() * (11 * m.hidden_size + 3 * m.mlp_hidden())) as u64 * 4 * 2;
    let data = 1_000_000_000;
    8 * 4 * params + cfg.batch_size as u64 * per_sample + data
}

/// The device named by `--device`.
pub fn device(name: &str) -> Result<Device> {
    match name {
        "cpu" => Ok(Device::Cpu),
        "cuda" => Device::new_cuda(0).context(
            "cannot use CUDA: build with `--features cuda` on a machine with an NVIDIA driver",
        ),
        other => bail!("unknown device `{other}` (cpu or cuda)"),
    }
}

/// A training session (fresh, resumed or initialised from weights).
pub struct Trainer {
    pub cfg: TrainConfig,
    pub run: RunDir,
    pub net: JiT,
    pub opt: AdamW,
    pub step: u64,
    pub dataset: Dataset,
    pub dev: Device,
    sampler: Arc<Sampler>,
    /// The teacher's pairs of a distillation run.
    pairs: Option<Arc<distill::Pairs>>,
    val_batches: Vec<data::Batch>,
    log: std::fs::File,
    /// The smoothed loss, carried over on resume so that the curve continues.
    smooth: Option<f64>,
    quiet: bool,
    /// Stop (with a checkpoint) after this step, as Ctrl-C would; for tests and time-boxed runs.
    pub stop_at: Option<u64>,
}

impl Trainer {
    /// Build the model and optimizer, load data, and restore state from `resume` or `init_from`.
    pub fn new(
        cfg: TrainConfig,
        run: RunDir,
        resume: Option<&Path>,
        init_from: Option<&Path>,
        quiet: bool,
    ) -> Result<Self> {
        let dev = device(&cfg.device)?;
        run.prepare()?;
        let vm = VarMap::new();
        let net = JiT::new(&cfg.model, VarBuilder::from_varmap(&vm, DType::F32, &dev))?;
        let vars = sorted_vars(&vm);
        seeded_init(&vars, cfg.seed)?;
        let mut opt = AdamW::new(vars, cfg.optim.clone(), cfg.ema_decays)?;
        let mut step = 0u64;
        let mut smooth = None;

        if let Some(path) = resume {
            let bytes = std::fs::read(path)
                .with_context(|| format!("cannot read checkpoint {}", path.display()))?;
            let raw = checkpoint::read_bytes(&path.display().to_string(), &bytes)?;
            if raw.meta.kind != Kind::Training {
                bail!(
                    "{} is an inference checkpoint (EMA weights only); use --init-from to start from it",
                    path.display()
                );
            }
            if raw.meta.config != cfg.model {
                bail!(
                    "{} was trained with another model configuration ({:?}); this run is {:?}",
                    path.display(),
                    raw.meta.config,
                    cfg.model
                );
            }
            let t = &raw.tensors;
            for p in &mut opt.params {
                let get = |prefix: &str| {
                    t.get(&format!("{prefix}{}", p.name)).with_context(|| {
                        format!("{}: missing tensor {prefix}{}", path.display(), p.name)
                    })
                };
                set_var(&p.var, get("net.")?)?;
                p.ema1 = get("ema1.")?.to_device(&dev)?;
                p.ema2 = get("ema2.")?.to_device(&dev)?;
                p.m = get("opt.m.")?.to_device(&dev)?;
                p.v = get("opt.v.")?.to_device(&dev)?;
            }
            step = raw.meta.step;
            opt.t = raw.meta.info["opt_t"].as_u64().unwrap_or(step);
            smooth = raw.meta.info["loss_smooth"].as_f64();
        } else if let Some(path) = init_from {
            let w = checkpoint::load(path, Weights::Ema1)?;
            if w.meta.config != cfg.model {
                bail!(
                    "{} holds a {:?} model; this run is {:?}",
                    path.display(),
                    w.meta.config,
                    cfg.model
                );
            }
            for p in &mut opt.params {
                let t = w
                    .tensors
                    .get(&p.name)
                    .with_context(|| format!("{}: missing tensor {}", path.display(), p.name))?;
                set_var(&p.var, t)?;
                p.ema1 = p.var.as_tensor().detach().copy()?;
                p.ema2 = p.var.as_tensor().detach().copy()?;
            }
            step = w.meta.step;
        }

        let dataset = data::load_dataset(&cfg.midi_dir, &run.cache(), &cfg.data, quiet)?;
        let songs = dataset.train.clone();
        let sampler = Arc::new(Sampler::new(
            songs,
            cfg.model.num_classes,
            &dataset.classes,
            &cfg.data,
            cfg.seed,
        ));
        // A fixed validation set: the same windows every time, so the curve is comparable.
        let val_batches = if dataset.val.is_empty() {
            Vec::new()
        } else {
            let vs = Sampler::new(
                dataset.val.clone(),
                cfg.model.num_classes,
                &dataset.classes,
                &DataConfig {
                    pitch_shift: 0,
                    ..cfg.data.clone()
                },
                cfg.seed ^ 0xBADC0FFEE,
            );
            let n = (64 / cfg.batch_size.max(1)).max(1);
            (0..n as u64)
                .map(|i| vs.batch(i, cfg.batch_size.min(64)))
                .collect()
        };
        // The held-out files, so that evaluation can use music the model never saw.
        let held_out: String = dataset
            .val
            .iter()
            .map(|s| format!("{}\n", s.path.display()))
            .collect();
        let held_out_file = run.root.join("val_files.txt");
        std::fs::write(&held_out_file, held_out)
            .with_context(|| format!("cannot write {}", held_out_file.display()))?;
        if resume.is_some() {
            resume::cut_log(&run.log(), step)?;
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(run.log())
            .with_context(|| format!("cannot open {}", run.log().display()))?;
        let pairs = match &cfg.distill {
            Some(_) => {
                if resume.is_none() {
                    // A student counts its own steps, not its teacher's.
                    step = 0;
                }
                Some(Arc::new(distill::prepare(
                    &cfg,
                    &run.root,
                    &sampler,
                    &dataset.classes,
                    quiet,
                )?))
            }
            None => None,
        };
        Ok(Self {
            cfg,
            run,
            net,
            opt,
            step,
            dataset,
            dev,
            sampler,
            pairs,
            val_batches,
            log,
            smooth,
            quiet,
            stop_at: None,
        })
    }

    pub(crate) fn meta(&self, kind: Kind, extra: serde_json::Value) -> CheckpointMeta {
        // The style `generate` and the plugin pick when none is asked for: the most weighted.
        let default_class = self
            .dataset
            .classes
            .iter()
            .enumerate()
            .max_by(|a, b| {
                let w = |n: &String| self.cfg.data.class_weights.get(n).copied().unwrap_or(1.0);
                w(a.1).total_cmp(&w(b.1)).then(b.0.cmp(&a.0))
            })
            .map(|(i, _)| i)
            .unwrap_or(0);
        let mut info = serde_json::json!({
            "default_class": default_class,
            "train": resume::portable(&self.cfg, &self.run.root),
            "opt_t": self.opt.t,
            "data": {
                "files": self.dataset.files,
                "train_files": self.dataset.train.len(),
                "val_files": self.dataset.val.len(),
                "train_windows": self.dataset.train_windows(),
            },
        });
        if let (Some(o), Some(e)) = (info.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                o.insert(k.clone(), v.clone());
            }
        }
        CheckpointMeta {
            format_version: checkpoint::FORMAT_VERSION,
            kind,
            name: self.cfg.name.clone(),
            config: self.cfg.model.clone(),
            roll: self.cfg.data.roll_spec(),
            objective: self.cfg.objective.clone(),
            sampler: self.recommended_sampler(),
            classes: self.dataset.classes.clone(),
            step: self.step,
            info,
        }
    }

    /// What the checkpoint recommends for sampling: the original's Heun 32 with guidance 3, or
    /// for a distilled student a few Euler steps without guidance (it learned the guided flow).
    fn recommended_sampler(&self) -> SamplerConfig {
        let base = SamplerConfig {
            t_eps: self.cfg.objective.t_eps,
            noise_scale: self.cfg.objective.noise_scale,
            ..Default::default()
        };
        match &self.cfg.distill {
            Some(d) => SamplerConfig {
                method: jit_music::sampler::Method::Euler,
                steps: d.student_steps.max(1),
                cfg_scale: 1.0,
                ..base
            },
            None => base,
        }
    }

    /// The EMA-1 weights under original names (plus the fixed `pos_embed`).
    pub fn ema1_tensors(&self) -> Vec<(String, Tensor)> {
        let mut v: Vec<(String, Tensor)> = self
            .opt
            .params
            .iter()
            .map(|p| (p.name.clone(), p.ema1.clone()))
            .collect();
        v.push(("pos_embed".into(), self.net.pos_embed.clone()));
        v
    }

    /// A network with the EMA-1 weights (for validation and previews).
    pub fn ema1_net(&self) -> Result<JiT> {
        let map: HashMap<String, Tensor> = self.ema1_tensors().into_iter().collect();
        Ok(JiT::new(
            &self.cfg.model,
            VarBuilder::from_tensors(map, DType::F32, &self.dev),
        )?)
    }

    /// Save `last` (and `step_N` when asked), plus the published EMA-1 inference checkpoint.
    pub fn save(&self, numbered: bool, extra: serde_json::Value) -> Result<()> {
        let mut tensors = Vec::with_capacity(self.opt.params.len() * 5);
        for p in &self.opt.params {
            tensors.push((format!("net.{}", p.name), p.var.as_tensor().clone()));
            tensors.push((format!("ema1.{}", p.name), p.ema1.clone()));
            tensors.push((format!("ema2.{}", p.name), p.ema2.clone()));
            tensors.push((format!("opt.m.{}", p.name), p.m.clone()));
            tensors.push((format!("opt.v.{}", p.name), p.v.clone()));
        }
        let meta = self.meta(Kind::Training, extra.clone());
        let at_step = || format!("step {}", self.step);
        checkpoint::save(&self.run.last(), &tensors, &meta).with_context(at_step)?;
        if numbered {
            let p = self
                .run
                .checkpoints()
                .join(format!("step_{}.safetensors", self.step));
            checkpoint::save(&p, &tensors, &meta).with_context(at_step)?;
        }
        let pmeta = self.meta(Kind::Inference, extra);
        checkpoint::save(&self.run.published(), &self.ema1_tensors(), &pmeta)
            .with_context(at_step)?;
        Ok(())
    }

    fn log_line(&mut self, v: serde_json::Value) -> Result<()> {
        let (step, log) = (self.step, self.run.log());
        writeln!(self.log, "{v}")
            .with_context(|| format!("step {step}: cannot write {}", log.display()))
    }

    /// Train up to `cfg.steps`. `stop` (Ctrl-C) ends the loop after the current step with a
    /// checkpoint. Returns the last smoothed loss.
    pub fn run(&mut self, stop: &AtomicBool) -> Result<f64> {
        let total = self.cfg.steps;
        if self.step >= total {
            if !self.quiet {
                eprintln!("already at step {} of {total}; nothing to do", self.step);
            }
            return Ok(f64::NAN);
        }
        let rx = match &self.pairs {
            Some(p) => distill::prefetch(p.clone(), self.sampler.clone(), self.step, 4),
            None => data::prefetch(self.sampler.clone(), self.step, self.cfg.batch_size, 4),
        };
        let pb = if self.quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(total)
        };
        pb.set_style(
            ProgressStyle::with_template(
                "{bar:30} {pos}/{len} [{elapsed_precise}<{eta_precise}] {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        pb.set_position(self.step);
        let mut smooth = self.smooth;
        let mut window_start = Instant::now();
        let mut window_steps = 0u64;
        let mut wait_ms = 0.0;
        let mut rate = 0.0;
        while self.step < total {
            let t_wait = Instant::now();
            let batch = rx.recv().context("data loader stopped")?;
            wait_ms += t_wait.elapsed().as_secs_f64() * 1e3;
            let lr = self.cfg.optim.lr_at(self.step, self.opt.t, total);
            let (loss_v, grads) = self.step_grads(&batch)?;
            if !loss_v.is_finite() {
                self.save(
                    false,
                    serde_json::json!({"stopped": "non-finite loss", "loss_smooth": smooth}),
                )?;
                bail!(
                    "loss became {loss_v} at step {}; saved a checkpoint before it. Try a lower --lr",
                    self.step
                );
            }
            let gnorm = self.opt.step(&grads, lr)?;
            drop(grads);
            self.step += 1;
            window_steps += 1;
            smooth = Some(match smooth {
                None => loss_v,
                Some(s) => 0.98 * s + 0.02 * loss_v,
            });
            self.smooth = smooth;
            let el = window_start.elapsed().as_secs_f64();
            if el > 5.0 {
                rate = window_steps as f64 / el;
                window_start = Instant::now();
                window_steps = 0;
            }
            self.log_line(serde_json::json!({
                "step": self.step,
                "loss": loss_v,
                "loss_smooth": smooth,
                "lr": lr,
                "grad_norm": gnorm,
                "samples_per_s": rate * self.cfg.batch_size as f64,
                "data_wait_ms": wait_ms,
            }))?;
            wait_ms = 0.0;
            pb.set_position(self.step);
            pb.set_message(format!(
                "loss {:.4} lr {:.2e} {:.2} it/s ({:.0} samples/s)",
                smooth.unwrap_or(loss_v),
                lr,
                rate,
                rate * self.cfg.batch_size as f64
            ));
            let stopping = stop.load(Ordering::Relaxed) || self.stop_at == Some(self.step);
            let at_end = self.step == total;
            if self.cfg.val_every > 0 && (self.step % self.cfg.val_every == 0 || at_end) {
                if let Some(v) = self.val_loss()? {
                    self.log_line(serde_json::json!({"step": self.step, "val_loss": v}))?;
                    pb.println(format!("step {}: val loss (EMA-1) {v:.4}", self.step));
                }
            }
            let numbered = self.cfg.keep_every > 0 && self.step % self.cfg.keep_every == 0;
            let due = self.cfg.ckpt_every > 0 && self.step % self.cfg.ckpt_every == 0;
            if due || numbered || at_end || stopping {
                self.save(numbered, serde_json::json!({"loss_smooth": smooth}))?;
            }
            if self.cfg.sample_every > 0 && (self.step % self.cfg.sample_every == 0 || at_end) {
                let dir = self.previews().with_context(|| {
                    let dir = self.run.samples(self.step);
                    format!("step {}: previews in {}", self.step, dir.display())
                })?;
                pb.println(format!("step {}: previews in {}", self.step, dir.display()));
            }
            if stopping && self.stop_at != Some(self.step) {
                pb.println(format!(
                    "interrupted: checkpoint saved at step {} ({}); continue with --resume",
                    self.step,
                    self.run.last().display()
                ));
            }
            if stopping {
                break;
            }
        }
        pb.finish();
        Ok(smooth.unwrap_or(f64::NAN))
    }
}
