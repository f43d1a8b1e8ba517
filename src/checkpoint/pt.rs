//! Import of the original JiT-Music's `.pt` checkpoints (what its `train_music.py` saves with
//! `torch.save`): a zip holding a pickle of `{"model": state_dict with "net." prefixes,
//! "ema1": [tensors in parameters() order], "ema2": [...], "args": {...}, "epoch": n}`.
//!
//! The config is inferred from the tensor shapes plus `args` (img_h, img_w, class_num and the
//! sampler settings), so the file needs no side information.

use super::{
    validate, CheckpointError, CheckpointMeta, Kind, ModelWeights, RollSpec, Weights,
    FORMAT_VERSION,
};
use crate::diffusion::Objective;
use crate::model::JitConfig;
use crate::sampler::{Method, SamplerConfig};
use candle_core::pickle::{Object, Stack};
use candle_core::{Device, Tensor};
use std::collections::HashMap;
use std::io::{Cursor, Read};

fn err(name: &str, msg: impl Into<String>) -> CheckpointError {
    CheckpointError::Pt(name.into(), msg.into())
}

/// Everything read from a `.pt`: the three weight sets under original names, and the args.
pub struct PtCheckpoint {
    pub live: Vec<(String, Tensor)>,
    pub ema1: Vec<(String, Tensor)>,
    pub ema2: Vec<(String, Tensor)>,
    pub args: HashMap<String, Object>,
    pub epoch: Option<i64>,
}

/// Parse a `.pt` file's bytes.
pub fn read_pt(name: &str, bytes: &[u8]) -> Result<PtCheckpoint, CheckpointError> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| {
        CheckpointError::NotACheckpoint(name.into(), format!("not a torch zip: {e}"))
    })?;
    let pkl = (0..zip.len())
        .filter_map(|i| {
            zip.name_for_index(i)
                .and_then(|n| n.ok())
                .map(|n| n.to_string())
        })
        .find(|n| n.ends_with("data.pkl"))
        .ok_or_else(|| err(name, "no data.pkl in the archive"))?;
    let dir = pkl.trim_end_matches(".pkl").to_string();
    let mut raw = Vec::new();
    zip.by_name(&pkl)
        .map_err(|e| err(name, e.to_string()))?
        .read_to_end(&mut raw)
        .map_err(|e| err(name, e.to_string()))?;
    let mut stack = Stack::empty();
    stack
        .read_loop(&mut Cursor::new(&raw))
        .map_err(|e| err(name, format!("unreadable pickle: {e}")))?;
    let obj = stack
        .finalize()
        .map_err(|e| err(name, format!("unreadable pickle: {e}")))?;
    let Object::Dict(top) = obj else {
        return Err(err(
            name,
            "the pickle is not a dict (expected the original train_music.py layout)",
        ));
    };
    let mut top: HashMap<String, Object> = top
        .into_iter()
        .filter_map(|(k, v)| match k {
            Object::Unicode(k) => Some((k, v)),
            _ => None,
        })
        .collect();

    // Returns the tensor and its storage number: storages are numbered in pickling order, which
    // is the state_dict's order (candle's pickle reader does not keep dict order).
    let mut read_tensor =
        |key: String, obj: Object| -> Result<Option<(u64, String, Tensor)>, CheckpointError> {
            let info = obj
                .into_tensor_info(Object::Unicode(key.clone()), std::path::Path::new(&dir))
                .map_err(|e| err(name, e.to_string()))?;
            let Some(info) = info else { return Ok(None) };
            let mut data = Vec::new();
            zip.by_name(&info.path)
                .map_err(|e| err(name, format!("{}: {e}", info.path)))?
                .read_to_end(&mut data)
                .map_err(|e| err(name, e.to_string()))?;
            if !info.layout.is_contiguous() {
                return Err(err(name, format!("tensor {key} is not contiguous")));
            }
            let start = info.layout.start_offset();
            let n = info.layout.shape().elem_count() * info.dtype.size_in_bytes();
            let slice = data
                .get(start..start + n)
                .ok_or_else(|| err(name, format!("tensor {key}: storage too short")))?;
            let t = Tensor::from_raw_buffer(slice, info.dtype, info.layout.dims(), &Device::Cpu)
                .map_err(|e| err(name, e.to_string()))?;
            let order = info
                .path
                .rsplit('/')
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(u64::MAX);
            Ok(Some((order, key, t)))
        };

    let model = match top.remove("model") {
        Some(Object::Dict(kv)) => kv,
        _ => return Err(err(name, "no `model` state_dict")),
    };
    let mut live = Vec::new();
    for (k, v) in model {
        let Object::Unicode(k) = k else { continue };
        let key = k.strip_prefix("net.").unwrap_or(&k).to_string();
        if let Some(t) = read_tensor(key, v)? {
            live.push(t);
        }
    }
    live.sort_by_key(|(order, _, _)| *order);
    let live: Vec<(String, Tensor)> = live.into_iter().map(|(_, k, t)| (k, t)).collect();
    // ema lists follow parameters() order, which is the state_dict order of parameters
    // (the module's own parameters first, then children), i.e. the order of `model`.
    let names: Vec<String> = live.iter().map(|(k, _)| k.clone()).collect();
    let mut ema = |key: &str| -> Result<Vec<(String, Tensor)>, CheckpointError> {
        let list = match top.remove(key) {
            Some(Object::List(l)) => l,
            Some(_) => return Err(err(name, format!("`{key}` is not a list"))),
            None => return Ok(Vec::new()),
        };
        if list.len() != names.len() {
            return Err(err(
                name,
                format!(
                    "`{key}` has {} tensors, the state_dict {}",
                    list.len(),
                    names.len()
                ),
            ));
        }
        let mut out = Vec::new();
        for (n, obj) in names.iter().zip(list) {
            if let Some((_, k, t)) = read_tensor(n.clone(), obj)? {
                out.push((k, t));
            }
        }
        Ok(out)
    };
    let ema1 = ema("ema1")?;
    let ema2 = ema("ema2")?;
    let args = match top.remove("args") {
        Some(Object::Dict(kv)) => kv
            .into_iter()
            .filter_map(|(k, v)| match k {
                Object::Unicode(k) => Some((k, v)),
                _ => None,
            })
            .collect(),
        _ => HashMap::new(),
    };
    let epoch = match top.remove("epoch") {
        Some(Object::Int(i)) => Some(i64::from(i)),
        Some(Object::Long(i)) => Some(i),
        _ => None,
    };
    Ok(PtCheckpoint {
        live,
        ema1,
        ema2,
        args,
        epoch,
    })
}

fn arg_f64(args: &HashMap<String, Object>, k: &str) -> Option<f64> {
    match args.get(k)? {
        Object::Float(f) => Some(*f),
        Object::Int(i) => Some(f64::from(*i)),
        Object::Long(i) => Some(*i as f64),
        _ => None,
    }
}

fn arg_str(args: &HashMap<String, Object>, k: &str) -> Option<String> {
    match args.get(k)? {
        Object::Unicode(s) => Some(s.clone()),
        _ => None,
    }
}

/// The model config from tensor shapes, with the image size and classes from `args`.
pub fn infer_config(
    name: &str,
    t: &HashMap<String, Tensor>,
    args: &HashMap<String, Object>,
) -> Result<JitConfig, CheckpointError> {
    let dims = |k: &str| -> Result<Vec<usize>, CheckpointError> {
        t.get(k)
            .map(|x| x.dims().to_vec())
            .ok_or_else(|| CheckpointError::MissingTensor {
                path: name.into(),
                name: k.into(),
            })
    };
    // The first dimension of a tensor (an error for a 0-d one, which no real weight is).
    let dim0 = |k: &str| -> Result<usize, CheckpointError> {
        dims(k)?
            .first()
            .copied()
            .ok_or_else(|| err(name, format!("{k} is a scalar")))
    };
    let p1 = dims("x_embedder.proj1.weight")?; // [K, C, ph, pw]
    if p1.len() != 4 || p1.contains(&0) {
        return Err(err(
            name,
            format!("x_embedder.proj1.weight has shape {p1:?}, not [K, C, ph, pw]"),
        ));
    }
    let hidden = dim0("t_embedder.mlp.0.weight")?;
    let head_dim = dim0("blocks.0.attn.q_norm.weight")?;
    let classes = dim0("y_embedder.embedding.weight")?.saturating_sub(1);
    let depth = (0..)
        .take_while(|i| t.contains_key(&format!("blocks.{i}.norm1.weight")))
        .count();
    let mlp2 = dim0("blocks.0.mlp.w12.weight")? / 2;
    // Find the mlp_ratio that gives this SwiGLU width (4.0 in every original preset).
    let mlp_ratio = [4.0, 2.0, 3.0, 8.0, 6.0, 1.0]
        .into_iter()
        .find(|r| (((hidden as f64 * r) as usize * 2) as f64 / 3.0) as usize == mlp2)
        .unwrap_or(mlp2 as f64 * 1.5 / hidden as f64);
    let n_patches = dims("pos_embed").ok().and_then(|d| d.get(1).copied());
    let (ph, pw) = (p1[2], p1[3]);
    let input_h = arg_f64(args, "img_h").map(|v| v as usize).unwrap_or(128);
    let input_w = arg_f64(args, "img_w")
        .map(|v| v as usize)
        .or_else(|| n_patches.map(|n| n / (input_h / ph).max(1) * pw))
        .unwrap_or(128);
    let cfg = JitConfig {
        input_h,
        input_w,
        patch_h: ph,
        patch_w: pw,
        in_channels: p1[1],
        cond_channels: 0,
        hidden_size: hidden,
        depth,
        num_heads: hidden / head_dim.max(1),
        mlp_ratio,
        num_classes: arg_f64(args, "class_num")
            .map(|v| v as usize)
            .unwrap_or(classes),
        bottleneck_dim: p1[0],
    };
    if cfg.num_classes != classes {
        return Err(err(
            name,
            format!(
                "args.class_num = {} but the label table has {classes} classes",
                cfg.num_classes
            ),
        ));
    }
    Ok(cfg)
}

/// Load one weight set of an original `.pt` as model weights with inferred metadata.
pub fn load_pt_bytes(
    name: &str,
    bytes: &[u8],
    which: Weights,
) -> Result<ModelWeights, CheckpointError> {
    let pt = read_pt(name, bytes)?;
    let set = match which {
        Weights::Ema1 => pt.ema1,
        Weights::Ema2 => pt.ema2,
        Weights::Live => pt.live,
    };
    if set.is_empty() {
        return Err(CheckpointError::NoWeights {
            path: name.into(),
            which: which.prefix().trim_end_matches('.').into(),
        });
    }
    let tensors: HashMap<String, Tensor> = set.into_iter().collect();
    let config = infer_config(name, &tensors, &pt.args)?;
    validate(name, &config, &tensors)?;
    crate::checkpoint::check_finite(name, &tensors)?;
    let a = &pt.args;
    let d = SamplerConfig::default();
    let o = Objective::default();
    let method = arg_str(a, "sampling_method")
        .and_then(|m| m.parse::<Method>().ok())
        .unwrap_or(d.method);
    let sampler = SamplerConfig {
        method,
        steps: arg_f64(a, "num_sampling_steps")
            .map(|v| v as usize)
            .unwrap_or(d.steps),
        cfg_scale: arg_f64(a, "cfg").unwrap_or(d.cfg_scale),
        cfg_interval: (
            arg_f64(a, "interval_min").unwrap_or(d.cfg_interval.0),
            arg_f64(a, "interval_max").unwrap_or(d.cfg_interval.1),
        ),
        t_eps: arg_f64(a, "t_eps").unwrap_or(d.t_eps),
        noise_scale: arg_f64(a, "noise_scale").unwrap_or(d.noise_scale),
        ..d
    };
    let objective = Objective {
        P_mean: arg_f64(a, "P_mean").unwrap_or(o.P_mean),
        P_std: arg_f64(a, "P_std").unwrap_or(o.P_std),
        t_eps: sampler.t_eps,
        noise_scale: sampler.noise_scale,
        label_drop_prob: arg_f64(a, "label_drop_prob").unwrap_or(o.label_drop_prob),
    };
    let meta = CheckpointMeta {
        format_version: FORMAT_VERSION,
        kind: Kind::Inference,
        name: format!(
            "{} (original .pt, {})",
            std::path::Path::new(name)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
            which.prefix().trim_end_matches('.')
        ),
        roll: RollSpec::seconds(16, config.input_w),
        config,
        objective,
        sampler,
        classes: Vec::new(),
        step: 0,
        info: serde_json::json!({
            "imported_from": name,
            "epoch": pt.epoch,
            "model": arg_str(a, "model"),
        }),
    };
    meta.check(name)?;
    Ok(ModelWeights {
        meta,
        tensors,
        source: name.into(),
    })
}
