//! Parity of the candle port with the original PyTorch `JiTMusic` (../shared/golden).

mod common;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use jit_music::model::{JiT, JitConfig, OpPath};
use std::collections::HashMap;

fn load_case(file: &str) -> (JiT, HashMap<String, Tensor>) {
    let path = common::golden(file);
    let t = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
    let meta = safetensors_metadata(&path);
    let cfg: JitConfig = serde_json::from_str(&meta["config"]).unwrap();
    let params: HashMap<String, Tensor> = t
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("param.").map(|n| (n.to_string(), v.clone())))
        .collect();
    let vb = VarBuilder::from_tensors(params, DType::F32, &Device::Cpu);
    (JiT::new(&cfg, vb).unwrap(), t)
}

fn safetensors_metadata(path: &std::path::Path) -> HashMap<String, String> {
    let bytes = std::fs::read(path).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    meta.metadata().clone().unwrap_or_default()
}

fn check(file: &str) {
    let (net, t) = load_case(file);
    let want: Vec<f32> = t["output.x"].flatten_all().unwrap().to_vec1().unwrap();
    for path in [OpPath::Inference, OpPath::Training, OpPath::Reference] {
        let x = net
            .forward(&t["input.z"], None, &t["input.t"], &t["input.y"], path)
            .unwrap();
        assert_eq!(x.dims(), t["output.x"].dims());
        let got: Vec<f32> = x.flatten_all().unwrap().to_vec1().unwrap();
        let err = common::rel_l2(&got, &want);
        assert!(err < 1e-4, "{file} {path:?}: relative L2 error {err}");
    }
}

/// Pins the whole forward on a square 128x128 input with 3 classes: timestep embedding as
/// [sin, cos] of t*freqs*2pi, label embedding including the null label 3, 2D sin-cos positions
/// (pitch half first), q/k RMSNorm, adaLN chunk order (shift, scale, gate), unpatchify order.
#[test]
fn forward_square_matches_original() {
    check("jit_forward_square.safetensors");
}

/// Pins the non-square case (128 pitches x 256 frames): the position table's height/width
/// halves and unpatchify's row/column mapping, which a square input cannot tell apart.
#[test]
fn forward_wide_matches_original() {
    check("jit_forward_wide.safetensors");
}

/// The preset sizes do not lie: the parameter counts the presets document.
#[test]
fn preset_parameter_counts() {
    for (name, lo, hi) in [
        ("tiny", 0.1e6, 1.0e6),
        ("JiT-XS/16", 4.0e6, 4.6e6),
        ("JiT-S/16", 31.0e6, 34.0e6),
        ("JiT-B/16", 125.0e6, 135.0e6),
    ] {
        let cfg = JitConfig::preset(name, 128, 128, 1).unwrap();
        let n = cfg.param_count() as f64;
        assert!(n > lo && n < hi, "{name}: {n} params");
        assert_eq!(cfg.preset_name(), Some(name));
    }
    // The analytic count equals the built model's.
    let cfg = JitConfig::preset("tiny", 128, 128, 3).unwrap();
    let vm = candle_nn::VarMap::new();
    let net = JiT::new(&cfg, VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu)).unwrap();
    assert_eq!(net.param_count(), cfg.param_count());
}
