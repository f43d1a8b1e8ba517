//! Checkpoints: the original's .pt import, our format's round trip, and clear load errors.

mod common;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use jit_music::checkpoint::{self, CheckpointError, CheckpointMeta, Kind, RollSpec, Weights};
use jit_music::model::{JiT, JitConfig, OpPath};

/// Pins the importer: ema1 list mapped onto state_dict order, "net." prefixes stripped, config
/// inferred from shapes + args; the output equals the original model with its ema1 weights.
#[test]
fn original_pt_imports_and_reproduces_ema1_forward() {
    let w = checkpoint::load(&common::golden("seed_checkpoint_tiny.pt"), Weights::Ema1).unwrap();
    assert_eq!(w.meta.config.hidden_size, 96);
    assert_eq!(w.meta.config.depth, 2);
    assert_eq!(w.meta.config.num_heads, 4);
    assert_eq!(w.meta.config.num_classes, 1);
    let net = w.build(&Device::Cpu, DType::F32).unwrap();
    let g = candle_core::safetensors::load(
        common::golden("seed_checkpoint_tiny_ema1_forward.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    let x = net
        .forward(
            &g["input.z"],
            None,
            &g["input.t"],
            &g["input.y"],
            OpPath::Inference,
        )
        .unwrap();
    let got: Vec<f32> = x.flatten_all().unwrap().to_vec1().unwrap();
    let want: Vec<f32> = g["output.x"].flatten_all().unwrap().to_vec1().unwrap();
    let err = common::rel_l2(&got, &want);
    assert!(err < 1e-4, "relative L2 {err}");
    // The live weights differ from ema1 (so the importer really picked a set).
    let live = checkpoint::load(&common::golden("seed_checkpoint_tiny.pt"), Weights::Live).unwrap();
    let a = live.tensors["final_layer.linear.weight"]
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let b = w.tensors["final_layer.linear.weight"]
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert!(common::rel_l2(&a, &b) > 1e-6);
}

fn tiny_meta(cfg: &JitConfig) -> CheckpointMeta {
    CheckpointMeta {
        format_version: checkpoint::FORMAT_VERSION,
        kind: Kind::Inference,
        name: "test".into(),
        config: cfg.clone(),
        roll: RollSpec::seconds(16, 128),
        objective: Default::default(),
        sampler: Default::default(),
        classes: vec!["pop".into(), "folk".into()],
        step: 7,
        info: serde_json::json!({"note": "test"}),
    }
}

#[test]
fn roundtrip_and_clear_errors() {
    let dir = std::env::temp_dir().join(format!("jit-ckpt-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = JitConfig::preset("tiny", 128, 128, 2).unwrap();
    let vm = VarMap::new();
    let net = JiT::new(&cfg, VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu)).unwrap();
    let path = dir.join("m.safetensors");
    checkpoint::save_inference(&path, &net, &tiny_meta(&cfg)).unwrap();
    // No temp file is left behind.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);

    let w = checkpoint::load(&path, Weights::Ema1).unwrap();
    assert_eq!(w.meta, tiny_meta(&cfg));
    assert_eq!(w.meta.class_index("folk").unwrap(), 1);
    assert_eq!(w.meta.class_index("0").unwrap(), 0);
    let e = w.meta.class_index("jazz").unwrap_err().to_string();
    assert!(e.contains("0 (pop), 1 (folk)"), "{e}");
    let net2 = w.build(&Device::Cpu, DType::F32).unwrap();
    let z = Tensor::randn(0f32, 1., (1, 1, 128, 128), &Device::Cpu).unwrap();
    let t = Tensor::new(&[0.3f32], &Device::Cpu).unwrap();
    let y = Tensor::new(&[1u32], &Device::Cpu).unwrap();
    let a = net
        .forward(&z, None, &t, &y, OpPath::Inference)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let b = net2
        .forward(&z, None, &t, &y, OpPath::Inference)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    // Same weights; the loaded model multiplies by a pre-transposed copy, so only rounding differs.
    assert!(common::rel_l2(&a, &b) < 1e-6);
    for (k, t) in net.named_tensors() {
        let a: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        let b: Vec<f32> = w.tensors[&k].flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(a, b, "{k} changed in the round trip");
    }

    // Not a checkpoint at all.
    let junk = dir.join("junk.safetensors");
    std::fs::write(&junk, b"hello world, not tensors").unwrap();
    let e = checkpoint::load(&junk, Weights::Ema1).unwrap_err();
    assert!(matches!(e, CheckpointError::NotACheckpoint(..)), "{e}");

    // Truncated file.
    let bytes = std::fs::read(&path).unwrap();
    let cut = dir.join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let e = checkpoint::load(&cut, Weights::Ema1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a checkpoint"), "{e}");

    // Wrong config: a tensor with the wrong shape is named precisely.
    let mut other = tiny_meta(&cfg);
    other.config.hidden_size = 128;
    other.config.num_heads = 2;
    let wrong = dir.join("wrong.safetensors");
    checkpoint::save(&wrong, &net.named_tensors(), &other).unwrap();
    let e = checkpoint::load(&wrong, Weights::Ema1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("shape") && e.contains("expected"), "{e}");

    // Missing tensor.
    let mut tensors = net.named_tensors();
    tensors.retain(|(k, _)| k != "blocks.1.mlp.w3.bias");
    let missing = dir.join("missing.safetensors");
    checkpoint::save(&missing, &tensors, &tiny_meta(&cfg)).unwrap();
    let e = checkpoint::load(&missing, Weights::Ema1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing tensor blocks.1.mlp.w3.bias"), "{e}");

    // A future format version is refused with both numbers.
    let mut future = tiny_meta(&cfg);
    future.format_version = 99;
    let fut = dir.join("future.safetensors");
    checkpoint::save(&fut, &net.named_tensors(), &future).unwrap();
    let e = checkpoint::load(&fut, Weights::Ema1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("99"), "{e}");

    // A missing file.
    let e = checkpoint::load(&dir.join("nope.safetensors"), Weights::Ema1)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("nope.safetensors") && e.contains("cannot read"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
