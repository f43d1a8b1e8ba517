//! The training loop: v-loss on bar-aligned windows, AdamW with warmup + cosine, two EMAs,
//! checkpoints that lose nothing (write-temp-and-rename, `last` plus every N steps, on Ctrl-C),
//! exact resume, a JSONL log, validation loss and preview samples.

use crate::data::{self, DataConfig, Dataset, Sampler};
use crate::optim::{AdamW, AdamWConfig};
use anyhow::{bail, Context, Result};
use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use indicatif::{ProgressBar, ProgressStyle};
use jit_music::checkpoint::{self, CheckpointMeta, Kind, RollSpec, Weights};
use jit_music::diffusion::draws_to_tensors;
use jit_music::diffusion::Objective;
use jit_music::export::{roll_to_smf, ExportSpec};
use jit_music::model::{JiT, JitConfig, Path as OpPath};
use jit_music::roll::{write_png, PianoRoll, PITCHES};
use jit_music::sampler::{sample, seeded_noise, Hooks, Method, SamplerConfig};
use rand::{Rng, SeedableRng};
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
        let probe = self.root.join(".write-test");
        std::fs::write(&probe, b"ok")
            .with_context(|| format!("output folder {} is not writable", self.root.display()))?;
        let _ = std::fs::remove_file(probe);
        Ok(())
    }
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

/// Deterministic initialisation by name, as the original's `initialize_weights`: xavier-uniform
/// weights, zero biases, unit norm gains, N(0, 1) label embeddings.
fn seeded_init(vars: &[(String, Var)], seed: u64) -> Result<()> {
    for (name, var) in vars {
        let mut h = blake3::Hasher::new();
        h.update(&seed.to_le_bytes());
        h.update(name.as_bytes());
        let s = u64::from_le_bytes(h.finalize().as_bytes()[..8].try_into()?);
        let mut rng = rand::rngs::StdRng::seed_from_u64(s);
        let dims = var.dims().to_vec();
        let n: usize = dims.iter().product();
        let data: Vec<f32> = if name.ends_with(".bias") {
            vec![0.0; n]
        } else if name.contains("norm") {
            vec![1.0; n]
        } else if name.starts_with("y_embedder") {
            use rand_distr::Distribution;
            (0..n)
                .map(|_| rand_distr::StandardNormal.sample(&mut rng))
                .collect()
        } else {
            let recept: usize = dims[2..].iter().product::<usize>().max(1);
            let fan_in = dims.get(1).copied().unwrap_or(1) * recept;
            let fan_out = dims[0] * recept;
            let a = (6.0 / (fan_in + fan_out) as f64).sqrt() as f32;
            (0..n).map(|_| rng.random_range(-a..=a)).collect()
        };
        var.set(&Tensor::from_vec(data, dims, var.device())?)?;
    }
    Ok(())
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
    val_batches: Vec<data::Batch>,
    log: std::fs::File,
    quiet: bool,
    /// Stop (with a checkpoint) after this step, as Ctrl-C would; for tests and time-boxed runs.
    pub stop_at: Option<u64>,
}

/// The vars of a VarMap in a stable (sorted) order.
fn sorted_vars(vm: &VarMap) -> Vec<(String, Var)> {
    let data = vm.data().lock().map(|d| d.clone()).unwrap_or_default();
    let mut v: Vec<(String, Var)> = data.into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn set_var(var: &Var, t: &Tensor) -> Result<()> {
    var.set(&t.to_dtype(DType::F32)?.to_device(var.device())?)?;
    Ok(())
}

/// Loss and gradients of one batch, with the same draws (t, noise, label dropout) as the whole
/// batch would get from `seed`. On the CPU the batch runs as two halves on two threads, each
/// with single-threaded kernels, and the gradients are combined weighted by the halves' sizes:
/// data parallelism across the cores beats fanning every small op out to both. Elsewhere (CUDA)
/// the network computes in bf16 from casts of the f32 weights (differentiable, so gradients reach
/// the f32 variables) while the noise, the loss and the optimizer state stay f32.
pub fn loss_and_grads(
    objective: &Objective,
    net: &JiT,
    params: &[Var],
    x: &Tensor,
    labels: &[u32],
    seed: u64,
) -> Result<(f64, GradStore)> {
    let dev = x.device().clone();
    let b = labels.len();
    let numel = x.elem_count() / b.max(1);
    let d = objective.draw(seed, labels, numel, net.null_label());
    let (t, e, y) = draws_to_tensors(&d, x.dims(), &dev)?;
    if dev.is_cuda() {
        let half = net.to_dtype(DType::BF16)?;
        let loss = objective.v_loss(
            |z, t, y| half.forward(&z.to_dtype(DType::BF16)?, t, y, OpPath::Training),
            x,
            &t,
            &e,
            &y,
        )?;
        let v = f64::from(loss.to_scalar::<f32>()?);
        return Ok((v, loss.backward()?));
    }
    let part = |s: usize, n: usize| -> Result<(f64, GradStore)> {
        jit_music::ops::serial(|| {
            let loss = objective.v_loss(
                |z, t, y| net.forward(z, t, y, OpPath::Training),
                &x.narrow(0, s, n)?,
                &t.narrow(0, s, n)?,
                &e.narrow(0, s, n)?,
                &y.narrow(0, s, n)?,
            )?;
            Ok((f64::from(loss.to_scalar::<f32>()?), loss.backward()?))
        })
    };
    if b < 2 {
        return part(0, b);
    }
    let h = b / 2;
    let (ra, rb) = rayon::join(|| part(0, h), || part(h, b - h));
    let ((la, mut ga), (lb, gb)) = (ra?, rb?);
    let (wa, wb) = (h as f64 / b as f64, (b - h) as f64 / b as f64);
    for p in params {
        let t = p.as_tensor();
        let g = match (ga.get(t), gb.get(t)) {
            (Some(a), Some(c)) => jit_music::ops::weighted_sum(a, c, wa, wb)?,
            (Some(a), None) => (a * wa)?,
            (None, Some(c)) => (c * wb)?,
            (None, None) => continue,
        };
        ga.insert(t, g);
    }
    Ok((la * wa + lb * wb, ga))
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
        std::fs::write(run.root.join("val_files.txt"), held_out)
            .with_context(|| format!("cannot write into {}", run.root.display()))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(run.log())
            .with_context(|| format!("cannot open {}", run.log().display()))?;
        Ok(Self {
            cfg,
            run,
            net,
            opt,
            step,
            dataset,
            dev,
            sampler,
            val_batches,
            log,
            quiet,
            stop_at: None,
        })
    }

    fn meta(&self, kind: Kind, extra: serde_json::Value) -> CheckpointMeta {
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
            "train": self.cfg,
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
            roll: RollSpec {
                grid: self.cfg.data.grid,
                pitch_low: 0,
                pitches: PITCHES,
                frames: self.cfg.data.frames,
                articulation: self.cfg.data.articulation,
            },
            objective: self.cfg.objective.clone(),
            sampler: SamplerConfig {
                t_eps: self.cfg.objective.t_eps,
                noise_scale: self.cfg.objective.noise_scale,
                ..Default::default()
            },
            classes: self.dataset.classes.clone(),
            step: self.step,
            info,
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
        checkpoint::save(&self.run.last(), &tensors, &meta)?;
        if numbered {
            let p = self
                .run
                .checkpoints()
                .join(format!("step_{}.safetensors", self.step));
            checkpoint::save(&p, &tensors, &meta)?;
        }
        let pmeta = self.meta(Kind::Inference, extra);
        checkpoint::save(&self.run.published(), &self.ema1_tensors(), &pmeta)?;
        Ok(())
    }

    /// Seed of a step's draws.
    fn draw_seed(&self, step: u64) -> u64 {
        self.cfg.seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ step
    }

    /// Loss and gradients of a training batch.
    pub fn step_grads(&self, batch: &data::Batch) -> Result<(f64, GradStore)> {
        let w = self.cfg.data.frames;
        let b = batch.labels.len();
        let x = Tensor::from_slice(&batch.x, (b, 1, PITCHES, w), &self.dev)?;
        let params: Vec<Var> = self.opt.params.iter().map(|p| p.var.clone()).collect();
        loss_and_grads(
            &self.cfg.objective,
            &self.net,
            &params,
            &x,
            &batch.labels,
            self.draw_seed(batch.step),
        )
    }

    /// The loss of one batch without gradients (validation), with that step's draws.
    pub fn batch_loss(&self, batch: &data::Batch, net: &JiT) -> Result<f64> {
        let w = self.cfg.data.frames;
        let b = batch.labels.len();
        let x = Tensor::from_slice(&batch.x, (b, 1, PITCHES, w), &self.dev)?;
        let loss = self.cfg.objective.loss(
            |z, t, y| net.forward(z, t, y, OpPath::Inference),
            &x,
            &batch.labels,
            net.null_label(),
            self.draw_seed(batch.step),
        )?;
        Ok(f64::from(loss.to_dtype(DType::F32)?.to_scalar::<f32>()?))
    }

    /// Validation loss of the EMA-1 weights on the fixed held-out windows (fixed draws).
    pub fn val_loss(&self) -> Result<Option<f64>> {
        if self.val_batches.is_empty() {
            return Ok(None);
        }
        let net = self.ema1_net()?;
        let mut total = 0.0;
        for b in &self.val_batches {
            total += self.batch_loss(b, &net)?;
        }
        Ok(Some(total / self.val_batches.len() as f64))
    }

    /// Write preview samples (EMA-1) as .mid and .png into `RUN/samples/step_N/`.
    pub fn previews(&self) -> Result<PathBuf> {
        let dir = self.run.samples(self.step);
        std::fs::create_dir_all(&dir)?;
        let net = self.ema1_net()?;
        let n = self.cfg.preview_samples.max(1);
        let (h, w) = (self.cfg.model.input_h, self.cfg.model.input_w);
        let z0 = seeded_noise(
            self.cfg.seed,
            n,
            h,
            w,
            self.cfg.objective.noise_scale,
            &self.dev,
        )?;
        let classes = self.cfg.model.num_classes.max(1);
        let labels: Vec<u32> = (0..n).map(|i| (i % classes) as u32).collect();
        let y = Tensor::from_vec(labels.clone(), n, &self.dev)?;
        let sc = SamplerConfig {
            method: Method::Heun,
            steps: self.cfg.preview_steps,
            t_eps: self.cfg.objective.t_eps,
            noise_scale: self.cfg.objective.noise_scale,
            ..Default::default()
        };
        let Some(x) = sample(
            |z, t, y| net.forward(z, t, y, OpPath::Inference),
            &z0,
            &y,
            net.null_label(),
            &sc,
            None,
            Hooks::default(),
        )?
        else {
            return Ok(dir);
        };
        let x = x.to_device(&Device::Cpu)?;
        let fpb = self.cfg.data.grid.frames_per_bar(4, 4);
        for (i, &label) in labels.iter().enumerate() {
            let xi: Vec<f32> = x.get(i)?.flatten_all()?.to_vec1()?;
            let Some(roll) = PianoRoll::from_model_output(w, &xi) else {
                continue;
            };
            let label = label as usize;
            let cname = self
                .dataset
                .classes
                .get(label)
                .map(|c| format!("_{c}"))
                .unwrap_or_default();
            let stem = format!("sample_{i:02}{cname}");
            let spec = ExportSpec {
                // Previews decode as `generate` would for this run's rolls.
                dip: jit_music::roll::default_dip(self.cfg.data.articulation),
                ..ExportSpec::new(self.cfg.data.grid)
            };
            std::fs::write(dir.join(format!("{stem}.mid")), roll_to_smf(&roll, &spec))?;
            write_png(&roll, &dir.join(format!("{stem}.png")), 3, fpb)?;
        }
        Ok(dir)
    }

    fn log_line(&mut self, v: serde_json::Value) -> Result<()> {
        writeln!(self.log, "{v}")?;
        Ok(())
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
        let rx = data::prefetch(self.sampler.clone(), self.step, self.cfg.batch_size, 4);
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
        let mut smooth: Option<f64> = None;
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
                self.save(false, serde_json::json!({"stopped": "non-finite loss"}))?;
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
                let dir = self.previews()?;
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

/// `train --benchmark N`: time N training steps (loss, backward, AdamW, both EMAs) on pre-made
/// tensors, then N steps fed by the real data pipeline when `--midi-dir` is readable, and print
/// samples/s for both (the pipeline must keep up).
pub fn benchmark(cfg: &TrainConfig, n: u64) -> Result<()> {
    let dev = device(&cfg.device)?;
    let vm = VarMap::new();
    let net = JiT::new(&cfg.model, VarBuilder::from_varmap(&vm, DType::F32, &dev))?;
    let vars = sorted_vars(&vm);
    seeded_init(&vars, cfg.seed)?;
    let mut opt = AdamW::new(vars, cfg.optim.clone(), cfg.ema_decays)?;
    let (b, w) = (cfg.batch_size, cfg.data.frames);
    let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed);
    let premade = data::Batch {
        x: (0..b * PITCHES * w)
            .map(|_| {
                if rng.random::<f32>() < 0.03 {
                    0.6
                } else {
                    -1.0
                }
            })
            .collect(),
        labels: vec![0; b],
        step: 0,
    };
    let params: Vec<Var> = opt.params.iter().map(|p| p.var.clone()).collect();
    let step = |opt: &mut AdamW, batch: &data::Batch| -> Result<f64> {
        let x = Tensor::from_slice(&batch.x, (b, 1, PITCHES, w), &dev)?;
        let (loss, grads) =
            loss_and_grads(&cfg.objective, &net, &params, &x, &batch.labels, batch.step)?;
        opt.step(&grads, 1e-4)?;
        Ok(loss)
    };
    for _ in 0..2 {
        step(&mut opt, &premade)?;
    }
    let t0 = Instant::now();
    for i in 0..n {
        let mut batch = premade.clone();
        batch.step = i;
        step(&mut opt, &batch)?;
    }
    let synth = t0.elapsed().as_secs_f64() / n.max(1) as f64;
    println!(
        "{} ({:.2}M params), batch {b}, {} threads: {:.1} ms/step, {:.1} samples/s (pre-made tensors)",
        cfg.preset,
        net.param_count() as f64 / 1e6,
        rayon::current_num_threads(),
        synth * 1e3,
        b as f64 / synth
    );
    if cfg.midi_dir.is_dir() {
        let cache = std::env::temp_dir().join("jit-music-bench-cache");
        let ds = data::load_dataset(&cfg.midi_dir, &cache, &cfg.data, true)?;
        let sampler = Arc::new(Sampler::new(
            ds.train.clone(),
            cfg.model.num_classes,
            &ds.classes,
            &cfg.data,
            cfg.seed,
        ));
        let rx = data::prefetch(sampler, 0, b, 4);
        let t0 = Instant::now();
        for _ in 0..n {
            let batch = rx.recv().context("data loader stopped")?;
            step(&mut opt, &batch)?;
        }
        let real = t0.elapsed().as_secs_f64() / n.max(1) as f64;
        println!(
            "real data from {}: {:.1} ms/step, {:.1} samples/s ({:+.1}% step time vs pre-made)",
            cfg.midi_dir.display(),
            real * 1e3,
            b as f64 / real,
            (real / synth - 1.0) * 100.0
        );
    }
    Ok(())
}
