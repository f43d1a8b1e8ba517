//! Checkpoints: safetensors whose metadata carries everything needed to rebuild and use the model
//! (format version, model config, roll grid, objective and sampler defaults, class names, step).
//!
//! * An **inference** checkpoint holds one set of weights (the EMA) under the original's
//!   state_dict names.
//! * A **training** checkpoint holds `net.*` (live), `ema1.*`, `ema2.*` and the optimizer state;
//!   loading it for inference picks a weight set (EMA-1 by default, as the original samples).
//! * The original's `.pt` files (zip + pickle) load too, see [`pt`].
//!
//! Writes go to a temporary file that is renamed over the target, so a crash never leaves a
//! half-written checkpoint under the real name. Every file carries a checksum of its metadata and
//! tensors, and every load checks the metadata against hard bounds and the tensors before
//! anything is allocated for it, then checks that the weights are finite: a damaged or hostile
//! file is a one-line error, never a hang or a model that writes noise.

pub mod pt;
mod verify;

use crate::diffusion::Objective;
use crate::model::{JiT, JitConfig};
pub use crate::roll::RollSpec;
use crate::sampler::SamplerConfig;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
pub(crate) use verify::check_finite;
pub use verify::{check_sampler, HASH_KEY};

/// Version of the metadata layout; bumped on incompatible changes.
pub const FORMAT_VERSION: u32 = 1;
/// Metadata key holding the JSON [`CheckpointMeta`].
pub const META_KEY: &str = "jit_music";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Inference,
    Training,
}

/// Everything a checkpoint says about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    pub format_version: u32,
    pub kind: Kind,
    /// A human name for menus ("JiT-Music POP909 XS").
    #[serde(default)]
    pub name: String,
    pub config: JitConfig,
    pub roll: RollSpec,
    pub objective: Objective,
    pub sampler: SamplerConfig,
    /// Class names, index = label; empty for an unconditional (1-class) model.
    #[serde(default)]
    pub classes: Vec<String>,
    pub step: u64,
    /// Free-form provenance: data, command, losses, evaluation figures.
    #[serde(default)]
    pub info: serde_json::Value,
}

impl CheckpointMeta {
    /// The label for a class given by name or index.
    pub fn class_index(&self, class: &str) -> Result<u32, CheckpointError> {
        let n = self.config.num_classes;
        if let Ok(i) = class.parse::<usize>() {
            if i < n {
                return Ok(i as u32);
            }
        }
        if let Some(i) = self
            .classes
            .iter()
            .position(|c| c.eq_ignore_ascii_case(class))
        {
            return Ok(i as u32);
        }
        Err(CheckpointError::UnknownClass {
            class: class.to_string(),
            available: self.class_list(),
        })
    }

    /// The class `generate` and the plugin play when none is asked for (`info.default_class`,
    /// written by `train` as the most weighted class), else class 0.
    pub fn default_class(&self) -> u32 {
        self.info["default_class"]
            .as_u64()
            .filter(|&c| c < self.config.num_classes as u64)
            .map_or(0, |c| c as u32)
    }

    /// The note threshold the checkpoint recommends (`info.threshold`, chosen with `evaluate`),
    /// else the original's 0.5.
    pub fn recommended_threshold(&self) -> f32 {
        self.info["threshold"]
            .as_f64()
            .filter(|t| (0.0..1.0).contains(t))
            .map_or(0.5, |t| t as f32)
    }

    /// The dip ratio for splitting notes (`info.dip`), else [`crate::roll::default_dip`] of
    /// the model's rolls; always 0 for rolls without articulation, which have no drawn gaps.
    pub fn recommended_dip(&self) -> f32 {
        if !self.roll.articulation {
            return 0.0;
        }
        self.info["dip"]
            .as_f64()
            .filter(|d| (0.0..1.0).contains(d))
            .map_or(crate::roll::default_dip(true), |d| d as f32)
    }

    /// Check everything the metadata says against hard bounds and against itself, before
    /// anything is allocated for it: the model config, the roll, the sampler, the objective and
    /// the class names.
    pub fn check(&self, source: &str) -> Result<(), CheckpointError> {
        let bad = |m: String| Err(CheckpointError::BadMetadata(source.into(), m));
        if let Err(e) = self.config.validate() {
            return bad(format!("config: {e}"));
        }
        self.check_roll(source)?;
        check_sampler(&self.sampler)
            .and_then(|()| verify::check_objective(&self.objective))
            .or_else(&bad)?;
        let n = self.config.num_classes;
        if !self.classes.is_empty() && self.classes.len() != n {
            return bad(format!(
                "{} class names ({}) for a model of {n} classes",
                self.classes.len(),
                self.classes.join(", ")
            ));
        }
        for (i, c) in self.classes.iter().enumerate() {
            let dup = self.classes[..i].iter().any(|d| d.eq_ignore_ascii_case(c));
            if c.trim().is_empty() || dup {
                return bad(format!("class name `{c}` is empty or repeated"));
            }
        }
        Ok(())
    }

    /// Check that the roll spec fits the network: its window is the model's input, inside the
    /// 128 MIDI pitches, with the model's channel counts, on a grid that can be played.
    pub fn check_roll(&self, source: &str) -> Result<(), CheckpointError> {
        let (cfg, roll) = (&self.config, &self.roll);
        let bad = |m: String| Err(CheckpointError::BadMetadata(source.into(), m));
        match roll.grid {
            crate::roll::Grid::Beats { steps_per_beat } if !(1..=960).contains(&steps_per_beat) => {
                return bad(format!(
                    "roll grid of {steps_per_beat} steps per beat (1..=960)"
                ))
            }
            crate::roll::Grid::Seconds { fps } if !(1..=1000).contains(&fps) => {
                return bad(format!("roll grid of {fps} frames per second (1..=1000)"))
            }
            _ => {}
        }
        if roll.pitches == 0 || roll.frames == 0 {
            return bad(format!(
                "roll of {} pitches x {} frames is empty",
                roll.pitches, roll.frames
            ));
        }
        if roll.pitches != cfg.input_h
            || roll.frames != cfg.input_w
            || usize::from(roll.pitch_low) + roll.pitches > 128
        {
            return bad(format!(
                "roll of {} pitches from {} x {} frames does not fit a {}x{} model",
                roll.pitches, roll.pitch_low, roll.frames, cfg.input_h, cfg.input_w
            ));
        }
        if roll.roll_channels() != cfg.in_channels || roll.cond_channels() != cfg.cond_channels {
            return bad(format!(
                "a roll of {} and {} conditioning channels does not fit a model of {} and {}",
                roll.roll_channels(),
                roll.cond_channels(),
                cfg.in_channels,
                cfg.cond_channels
            ));
        }
        Ok(())
    }

    /// "0 (pop), 1 (chorales)" or "0" for an unnamed model.
    pub fn class_list(&self) -> String {
        (0..self.config.num_classes)
            .map(|i| match self.classes.get(i) {
                Some(name) => format!("{i} ({name})"),
                None => i.to_string(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Why a checkpoint could not be used. Each message names the exact problem.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The cause is in the message (so one line says it all), not a `source`.
    #[error("{path}: cannot read: {error}")]
    Io { path: String, error: std::io::Error },
    #[error(
        "{path}: damaged: its contents do not match the checksum written with them ({stored} \
         recorded, {found} now); copy it again or use another checkpoint"
    )]
    Damaged {
        path: String,
        stored: String,
        found: String,
    },
    #[error(
        "{path}: tensor {name} holds {value} at index {index}: the weights are damaged \
         (or the run diverged)"
    )]
    NonFinite {
        path: String,
        name: String,
        value: f32,
        index: usize,
    },
    #[error("{0}: not a checkpoint at all ({1})")]
    NotACheckpoint(String, String),
    #[error(
        "{0}: a safetensors file without JiT-Music metadata (was it written by another tool?)"
    )]
    NoMetadata(String),
    #[error("{path}: checkpoint format version {found}, this build reads up to {supported}")]
    Version {
        path: String,
        found: u32,
        supported: u32,
    },
    #[error("{0}: bad metadata: {1}")]
    BadMetadata(String, String),
    #[error("{path}: missing tensor {name}")]
    MissingTensor { path: String, name: String },
    #[error("{path}: tensor {name} has shape {found:?} where {expected:?} is expected")]
    Shape {
        path: String,
        name: String,
        found: Vec<usize>,
        expected: Vec<usize>,
    },
    #[error("{path}: tensor {name} has dtype {found:?}; expected f32, f16 or bf16")]
    DType {
        path: String,
        name: String,
        found: DType,
    },
    #[error("{path}: unexpected tensor {name} (a checkpoint of another model configuration?)")]
    Unexpected { path: String, name: String },
    #[error("{path}: no weight set `{which}` in this checkpoint")]
    NoWeights { path: String, which: String },
    #[error("unknown class `{class}`; this model has: {available}")]
    UnknownClass { class: String, available: String },
    #[error("{0}: {1}")]
    Pt(String, String),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Which weight set to use from a checkpoint that holds several.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Weights {
    /// EMA-1 (decay 0.999), what the original samples with.
    #[default]
    Ema1,
    Ema2,
    /// The live (non-averaged) weights.
    Live,
}

impl Weights {
    pub fn prefix(&self) -> &'static str {
        match self {
            Weights::Ema1 => "ema1.",
            Weights::Ema2 => "ema2.",
            Weights::Live => "net.",
        }
    }
}

impl std::str::FromStr for Weights {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ema1" => Ok(Weights::Ema1),
            "ema2" => Ok(Weights::Ema2),
            "live" | "model" => Ok(Weights::Live),
            _ => Err(format!("weights must be ema1, ema2 or live, got `{s}`")),
        }
    }
}

/// A model's weights (original names) with its metadata, ready to build on a device.
#[derive(Debug, Clone)]
pub struct ModelWeights {
    pub meta: CheckpointMeta,
    /// Original state_dict names -> CPU tensors.
    pub tensors: HashMap<String, Tensor>,
    /// Where it came from (a path, or "embedded").
    pub source: String,
}

impl ModelWeights {
    /// Build the network on `device` in `dtype` (weights converted as needed).
    pub fn build(&self, device: &Device, dtype: DType) -> Result<JiT, CheckpointError> {
        let mut map = HashMap::with_capacity(self.tensors.len());
        for (k, t) in &self.tensors {
            map.insert(k.clone(), t.to_dtype(dtype)?.to_device(device)?);
        }
        let vb = VarBuilder::from_tensors(map, dtype, device);
        Ok(JiT::new(&self.meta.config, vb)?)
    }
}

/// Names and shapes of every weight of a config, in state_dict order.
pub fn expected_shapes(cfg: &JitConfig) -> Result<Vec<(String, Vec<usize>)>, CheckpointError> {
    cfg.validate()
        .map_err(|e| CheckpointError::BadMetadata("config".into(), e))?;
    let net = JiT::new(cfg, VarBuilder::zeros(DType::F32, &Device::Cpu))?;
    Ok(net
        .named_tensors()
        .into_iter()
        .map(|(k, t)| (k, t.dims().to_vec()))
        .collect())
}

/// Check names, shapes and dtypes of `tensors` against `cfg`. `pos_embed` may be absent (it is
/// fixed and recomputed).
///
/// Listing the expected shapes builds the network once, so the config is first held to its hard
/// bounds and to the size of the tensors there are: a config far larger than the file (a damaged
/// `depth`) is refused before it can allocate anything.
pub fn validate(
    path: &str,
    cfg: &JitConfig,
    tensors: &HashMap<String, Tensor>,
) -> Result<(), CheckpointError> {
    let bad = |m: String| CheckpointError::BadMetadata(path.into(), m);
    cfg.validate().map_err(|e| bad(format!("config: {e}")))?;
    let held: usize = tensors.values().map(Tensor::elem_count).sum();
    let declared = cfg.param_count();
    if declared > held.saturating_mul(4).saturating_add(1 << 20) {
        return Err(bad(format!(
            "the config describes {declared} parameters (hidden {}, depth {}, heads {}, \
             {}x{} input), the file holds {held}",
            cfg.hidden_size, cfg.depth, cfg.num_heads, cfg.input_h, cfg.input_w
        )));
    }
    let expected = expected_shapes(cfg)?;
    for (name, shape) in &expected {
        let Some(t) = tensors.get(name) else {
            if name == "pos_embed" {
                continue;
            }
            return Err(CheckpointError::MissingTensor {
                path: path.into(),
                name: name.clone(),
            });
        };
        if t.dims() != shape.as_slice() {
            return Err(CheckpointError::Shape {
                path: path.into(),
                name: name.clone(),
                found: t.dims().to_vec(),
                expected: shape.clone(),
            });
        }
        if !matches!(t.dtype(), DType::F32 | DType::F16 | DType::BF16) {
            return Err(CheckpointError::DType {
                path: path.into(),
                name: name.clone(),
                found: t.dtype(),
            });
        }
    }
    let known: std::collections::HashSet<&str> = expected.iter().map(|(n, _)| n.as_str()).collect();
    let mut extra: Vec<&String> = tensors
        .keys()
        .filter(|k| !known.contains(k.as_str()))
        .collect();
    extra.sort();
    if let Some(name) = extra.first() {
        return Err(CheckpointError::Unexpected {
            path: path.into(),
            name: (*name).clone(),
        });
    }
    Ok(())
}

/// Write `tensors` with `meta` to `path` atomically (temp file + rename).
pub fn save(
    path: &Path,
    tensors: &[(String, Tensor)],
    meta: &CheckpointMeta,
) -> Result<(), SaveError> {
    let name = path.display().to_string();
    let format = |message: String| SaveError::Format {
        path: name.clone(),
        message,
    };
    let mut md = HashMap::new();
    md.insert(
        META_KEY.to_string(),
        serde_json::to_string(meta).map_err(|e| format(e.to_string()))?,
    );
    md.insert("format".to_string(), "jit-music".to_string());
    md.insert("format_version".to_string(), FORMAT_VERSION.to_string());
    md.insert(HASH_KEY.to_string(), verify::PLACEHOLDER.to_string());
    let data: Vec<(String, Tensor)> = tensors
        .iter()
        .map(|(k, t)| Ok((k.clone(), t.to_device(&Device::Cpu)?.contiguous()?)))
        .collect::<candle_core::Result<_>>()
        .map_err(|e| format(e.to_string()))?;
    let views = data.iter().map(|(k, t)| (k.as_str(), t));
    let mut bytes =
        safetensors::tensor::serialize(views, Some(md)).map_err(|e| format(e.to_string()))?;
    verify::seal(&mut bytes).map_err(format)?;
    let tmp = tmp_path(path);
    let result = write_synced(&tmp, &bytes).and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(|error| SaveError::Io { path: name, error })
}

/// `NAME.tmpPID` beside `path`: where `save` writes before renaming (see [`is_stale_tmp`]).
fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".tmp{}", std::process::id()));
    path.with_file_name(name)
}

/// Whether `file` is a temporary file of [`save`] left by another process (one killed while
/// writing): `*.safetensors.tmpPID` with a PID other than ours.
pub fn is_stale_tmp(file: &Path) -> bool {
    let Some(name) = file.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    name.rsplit_once(".tmp").is_some_and(|(stem, pid)| {
        stem.ends_with(".safetensors")
            && !pid.is_empty()
            && pid.bytes().all(|b| b.is_ascii_digit())
            && pid != std::process::id().to_string()
    })
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Why a checkpoint could not be written; each names the file, with the cause in the message.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("cannot write checkpoint {path}: {error}")]
    Io { path: String, error: std::io::Error },
    #[error("cannot write checkpoint {path}: {message}")]
    Format { path: String, message: String },
}

/// Parsed safetensors: metadata plus CPU tensors.
pub struct RawCheckpoint {
    pub meta: CheckpointMeta,
    pub tensors: HashMap<String, Tensor>,
}

/// Read one of our checkpoints from bytes (`name` is for messages): the checksum when there is
/// one, then the metadata against its bounds, and only then the tensors.
pub fn read_bytes(name: &str, bytes: &[u8]) -> Result<RawCheckpoint, CheckpointError> {
    let (header_len, st_meta) = safetensors::SafeTensors::read_metadata(bytes)
        .map_err(|e| CheckpointError::NotACheckpoint(name.into(), e.to_string()))?;
    let md = st_meta.metadata().clone().unwrap_or_default();
    let Some(json) = md.get(META_KEY) else {
        return Err(CheckpointError::NoMetadata(name.into()));
    };
    if let Some(stored) = md.get(HASH_KEY) {
        let found = verify::checksum(bytes, header_len, &st_meta);
        if *stored != found {
            return Err(CheckpointError::Damaged {
                path: name.into(),
                stored: stored.clone(),
                found,
            });
        }
    }
    let version: u32 = md
        .get("format_version")
        .and_then(|v| v.parse().ok())
        .unwrap_or(FORMAT_VERSION);
    if version > FORMAT_VERSION {
        return Err(CheckpointError::Version {
            path: name.into(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let meta: CheckpointMeta = serde_json::from_str(json)
        .map_err(|e| CheckpointError::BadMetadata(name.into(), e.to_string()))?;
    if meta.format_version > FORMAT_VERSION {
        return Err(CheckpointError::Version {
            path: name.into(),
            found: meta.format_version,
            supported: FORMAT_VERSION,
        });
    }
    meta.check(name)?;
    let tensors = candle_core::safetensors::load_buffer(bytes, &Device::Cpu)
        .map_err(|e| CheckpointError::NotACheckpoint(name.into(), e.to_string()))?;
    Ok(RawCheckpoint { meta, tensors })
}

/// Select one weight set (original names) from a raw checkpoint and validate it.
pub fn select_weights(
    name: &str,
    raw: RawCheckpoint,
    which: Weights,
) -> Result<ModelWeights, CheckpointError> {
    let tensors = match raw.meta.kind {
        Kind::Inference => raw.tensors,
        Kind::Training => {
            let p = which.prefix();
            let t: HashMap<String, Tensor> = raw
                .tensors
                .into_iter()
                .filter_map(|(k, v)| k.strip_prefix(p).map(|n| (n.to_string(), v)))
                .collect();
            if t.is_empty() {
                return Err(CheckpointError::NoWeights {
                    path: name.into(),
                    which: p.trim_end_matches('.').into(),
                });
            }
            t
        }
    };
    validate(name, &raw.meta.config, &tensors)?;
    verify::check_finite(name, &tensors)?;
    let mut meta = raw.meta;
    meta.kind = Kind::Inference;
    Ok(ModelWeights {
        meta,
        tensors,
        source: name.into(),
    })
}

/// Load model weights from a path: our safetensors checkpoints (inference or training) or the
/// original's `.pt` (by extension or zip magic).
pub fn load(path: &Path, which: Weights) -> Result<ModelWeights, CheckpointError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|error| CheckpointError::Io {
        path: name.clone(),
        error,
    })?;
    if bytes.starts_with(b"PK") {
        return pt::load_pt_bytes(&name, &bytes, which);
    }
    let raw = read_bytes(&name, &bytes)?;
    select_weights(&name, raw, which)
}

/// The metadata alone, unchecked and without the tensors: cheap enough for help texts.
pub fn read_meta(name: &str, bytes: &[u8]) -> Result<CheckpointMeta, CheckpointError> {
    let (_, st_meta) = safetensors::SafeTensors::read_metadata(bytes)
        .map_err(|e| CheckpointError::NotACheckpoint(name.into(), e.to_string()))?;
    let json = st_meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get(META_KEY))
        .ok_or_else(|| CheckpointError::NoMetadata(name.into()))?;
    serde_json::from_str(json).map_err(|e| CheckpointError::BadMetadata(name.into(), e.to_string()))
}

/// The checksum a safetensors checkpoint records, if it has one (files written before checksums
/// have none; `inspect` says so).
pub fn stored_hash(bytes: &[u8]) -> Option<String> {
    let (_, md) = safetensors::SafeTensors::read_metadata(bytes).ok()?;
    md.metadata().as_ref()?.get(HASH_KEY).cloned()
}

/// Load an inference checkpoint from bytes (the embedded default model).
pub fn load_bytes(name: &str, bytes: &[u8]) -> Result<ModelWeights, CheckpointError> {
    select_weights(name, read_bytes(name, bytes)?, Weights::Ema1)
}

/// Save an inference checkpoint of `net`'s weights.
pub fn save_inference(path: &Path, net: &JiT, meta: &CheckpointMeta) -> Result<(), SaveError> {
    let mut meta = meta.clone();
    meta.kind = Kind::Inference;
    meta.format_version = FORMAT_VERSION;
    save(path, &net.named_tensors(), &meta)
}
