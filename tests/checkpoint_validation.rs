//! Broken and hostile checkpoints: every one is a clear error before anything is allocated for
//! it, and a damaged byte anywhere in a file is an error or changes nothing, never a model that
//! writes noise. Checked on a small model written by `save`, and on the embedded default model
//! (written before checksums existed).

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use jit_music::checkpoint::{self, CheckpointError, CheckpointMeta, Kind, ModelWeights, RollSpec};
use jit_music::model::{JiT, JitConfig};
use jit_music::roll::{Channels, Grid};
use proptest::prelude::*;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;

/// A 16-pitch x 16-frame model of one block: a file of a few kilobytes, mostly header.
fn small_config() -> JitConfig {
    JitConfig {
        input_h: 16,
        input_w: 16,
        patch_h: 8,
        patch_w: 8,
        in_channels: 1,
        cond_channels: 0,
        hidden_size: 16,
        depth: 1,
        num_heads: 2,
        mlp_ratio: 4.0,
        num_classes: 2,
        bottleneck_dim: 8,
    }
}

fn small_meta() -> CheckpointMeta {
    CheckpointMeta {
        format_version: checkpoint::FORMAT_VERSION,
        kind: Kind::Inference,
        name: "small".into(),
        config: small_config(),
        roll: RollSpec {
            grid: Grid::Beats { steps_per_beat: 4 },
            pitch_low: 60,
            pitches: 16,
            frames: 16,
            articulation: true,
            channels: Channels::Intensity,
            conditions: Default::default(),
        },
        objective: Default::default(),
        sampler: Default::default(),
        classes: vec!["pop".into(), "folk".into()],
        step: 3,
        info: serde_json::json!({"threshold": 0.4}),
    }
}

/// The small model's weights (random, seeded by candle's default initialisation).
fn small_tensors() -> &'static Vec<(String, Tensor)> {
    static T: OnceLock<Vec<(String, Tensor)>> = OnceLock::new();
    T.get_or_init(|| {
        let vm = VarMap::new();
        let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
        let net = JiT::new(&small_config(), vb).unwrap();
        net.named_tensors()
    })
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("jit-ckval-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The bytes `save` writes for these tensors and metadata.
fn saved(tensors: &[(String, Tensor)], meta: &CheckpointMeta) -> Vec<u8> {
    let d = tmp("saved");
    let p = d.join("m.safetensors");
    checkpoint::save(&p, tensors, meta).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    let _ = std::fs::remove_dir_all(&d);
    bytes
}

fn small_bytes() -> &'static [u8] {
    static B: OnceLock<Vec<u8>> = OnceLock::new();
    B.get_or_init(|| saved(small_tensors(), &small_meta()))
}

fn load(bytes: &[u8]) -> Result<ModelWeights, CheckpointError> {
    checkpoint::load_bytes("m.safetensors", bytes)
}

fn error_of(meta: &CheckpointMeta) -> String {
    match load(&saved(small_tensors(), meta)) {
        Ok(_) => panic!("a checkpoint with {meta:?} loaded"),
        Err(e) => e.to_string(),
    }
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
        .iter()
        .map(|x| x.to_bits())
        .collect()
}

/// Bit-identical weights and equal metadata: the model does exactly what the original does.
fn identical(w: &ModelWeights) -> bool {
    let want: HashMap<&str, &Tensor> = small_tensors()
        .iter()
        .map(|(k, t)| (k.as_str(), t))
        .collect();
    w.meta == small_meta()
        && w.tensors.len() == want.len()
        && w.tensors
            .iter()
            .all(|(k, t)| want.get(k.as_str()).is_some_and(|o| bits(o) == bits(t)))
}

#[test]
fn a_clean_file_round_trips_with_its_checksum() {
    let w = load(small_bytes()).unwrap();
    assert!(identical(&w));
    let sum = checkpoint::stored_hash(small_bytes()).expect("save records a checksum");
    assert!(sum.starts_with("xxh64:") && sum.len() == 22, "{sum}");
    assert_ne!(sum, "xxh64:0000000000000000");
}

/// A size the metadata cannot mean is refused at once, with the field and its bounds, before
/// the network is built (this test would otherwise allocate until killed).
#[test]
fn absurd_sizes_are_refused_before_allocating() {
    let mut m = small_meta();
    m.config.depth = 1_000_000_000;
    let e = error_of(&m);
    assert!(
        e.contains("bad metadata") && e.contains("depth 1000000000 is outside 1..=256"),
        "{e}"
    );

    // Within the bounds but far larger than the tensors the file holds.
    let mut m = small_meta();
    m.config.hidden_size = 4096;
    let e = error_of(&m);
    assert!(
        e.contains("describes") && e.contains("hidden 4096") && e.contains("the file holds"),
        "{e}"
    );

    // One block more than the file: the missing tensor by name.
    let mut m = small_meta();
    m.config.depth = 2;
    let e = error_of(&m);
    assert!(e.contains("missing tensor blocks.1."), "{e}");

    for (field, set) in [
        (
            "hidden_size 0",
            (|c: &mut JitConfig| c.hidden_size = 0) as fn(&mut JitConfig),
        ),
        ("num_heads 0", |c| c.num_heads = 0),
        ("num_classes 0", |c| c.num_classes = 0),
        ("input_w (frames) 100000", |c| c.input_w = 100_000),
        ("mlp_ratio 1000", |c| c.mlp_ratio = 1000.0),
        ("16384", |c| {
            c.patch_h = 1;
            c.patch_w = 1;
            c.input_w = 4096;
        }),
    ] {
        let mut m = small_meta();
        set(&mut m.config);
        let e = error_of(&m);
        assert!(e.contains(field), "{field}: {e}");
    }
}

/// Sampler, grid, roll and class values that cannot work are named, with the allowed values.
#[test]
fn sampler_grid_and_class_values_that_cannot_work() {
    type Edit = fn(&mut CheckpointMeta);
    let cases: [(&str, Edit); 14] = [
        ("sampler.steps 0 is outside 1..=1000", |m| {
            m.sampler.steps = 0
        }),
        ("sampler.cfg_scale", |m| m.sampler.cfg_scale = -3.0),
        ("cfg_interval (0.9, 0.1)", |m| {
            m.sampler.cfg_interval = (0.9, 0.1)
        }),
        ("sampler.t_eps", |m| m.sampler.t_eps = 0.0),
        ("sampler.noise_scale", |m| m.sampler.noise_scale = 0.0),
        ("objective P_mean", |m| m.objective.P_std = 0.0),
        ("0 steps per beat", |m| {
            m.roll.grid = Grid::Beats { steps_per_beat: 0 }
        }),
        ("0 frames per second", |m| {
            m.roll.grid = Grid::Seconds { fps: 0 }
        }),
        ("0 frames is empty", |m| m.roll.frames = 0),
        ("roll of 200 pitches", |m| m.roll.pitches = 200),
        ("3 class names (pop, folk, jazz) for a model of 2", |m| {
            m.classes.push("jazz".into())
        }),
        ("`POP` is empty or repeated", |m| {
            m.classes = vec!["pop".into(), "POP".into()]
        }),
        (
            "2 and 0 conditioning channels does not fit a model of 1 and 0",
            |m| m.roll.channels = Channels::OnsetSustain,
        ),
        ("1 and 2 conditioning channels", |m| {
            m.roll.conditions.known = true
        }),
    ];
    for (want, edit) in cases {
        let mut m = small_meta();
        edit(&mut m);
        let e = error_of(&m);
        assert!(
            e.contains("bad metadata") && e.contains(want),
            "{want}: {e}"
        );
    }
}

#[test]
fn non_finite_weights_are_an_error_naming_the_tensor() {
    let name = "final_layer.linear.weight";
    for bad in [f32::NAN, f32::INFINITY] {
        let tensors: Vec<(String, Tensor)> = small_tensors()
            .iter()
            .map(|(k, t)| {
                let t = if k == name {
                    let mut v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
                    v[5] = bad;
                    Tensor::from_vec(v, t.dims(), &Device::Cpu).unwrap()
                } else {
                    t.clone()
                };
                (k.clone(), t)
            })
            .collect();
        let e = load(&saved(&tensors, &small_meta()))
            .expect_err("non-finite weights load")
            .to_string();
        assert!(
            e.contains(&format!("tensor {name} holds {bad} at index 5")),
            "{e}"
        );
    }
}

#[test]
fn a_damaged_byte_fails_the_checksum() {
    let mut b = small_bytes().to_vec();
    let last = b.len() - 3;
    b[last] ^= 0x40;
    let e = load(&b).expect_err("damaged file loads").to_string();
    assert!(e.contains("damaged") && e.contains("checksum"), "{e}");
    assert!(matches!(load(&b), Err(CheckpointError::Damaged { .. })));
}

/// Files written before checksums load as before; their metadata and finite weights are still
/// checked.
#[test]
fn files_without_a_checksum_still_load() {
    let (_, md) = safetensors::SafeTensors::read_metadata(small_bytes()).unwrap();
    let mut md = md.metadata().clone().unwrap();
    md.remove(checkpoint::HASH_KEY);
    let unsealed = |md: HashMap<String, String>| {
        let views = small_tensors().iter().map(|(k, t)| (k.as_str(), t));
        safetensors::tensor::serialize(views, Some(md)).unwrap()
    };
    let old = unsealed(md.clone());
    assert_eq!(checkpoint::stored_hash(&old), None);
    assert!(identical(&load(&old).unwrap()));

    // Without a checksum to catch it, a damaged size is still refused at once.
    let mut meta: serde_json::Value = serde_json::from_str(&md[checkpoint::META_KEY]).unwrap();
    meta["config"]["depth"] = 1_000_000_000.into();
    md.insert(checkpoint::META_KEY.into(), meta.to_string());
    let e = load(&unsealed(md))
        .expect_err("depth 1e9 loads")
        .to_string();
    assert!(e.contains("depth 1000000000 is outside 1..=256"), "{e}");
}

#[test]
fn write_errors_name_the_file() {
    let p = std::env::temp_dir().join("jit-no-such-dir-16/sub/m.safetensors");
    let e = checkpoint::save(&p, small_tensors(), &small_meta())
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(&format!("cannot write checkpoint {}: ", p.display())),
        "{e}"
    );
}

#[test]
fn stale_temporary_files_are_recognised() {
    let ours = format!("last.safetensors.tmp{}", std::process::id());
    assert!(checkpoint::is_stale_tmp("x/last.safetensors.tmp1".as_ref()));
    assert!(!checkpoint::is_stale_tmp(ours.as_ref()));
    assert!(!checkpoint::is_stale_tmp("last.safetensors".as_ref()));
    assert!(!checkpoint::is_stale_tmp("notes.txt.tmp12".as_ref()));
    assert!(!checkpoint::is_stale_tmp("last.safetensors.tmp".as_ref()));
}

/// A damaged span of 1 to 8 bytes anywhere in the file (header length, header, metadata,
/// checksum, tensor data): every byte changed, each load either fails with a message naming the
/// file or gives back exactly the model that was saved.
#[derive(Debug, Clone)]
struct Damage {
    at: usize,
    xors: Vec<u8>,
}

fn damage() -> impl Strategy<Value = Damage> {
    (any::<usize>(), prop::collection::vec(1u8..=255, 1..=8)).prop_map(|(at, xors)| Damage {
        at: at % small_bytes().len(),
        xors,
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn damaged_bytes_give_an_error_or_the_same_model(d in damage()) {
        let mut b = small_bytes().to_vec();
        for (i, x) in d.xors.iter().enumerate() {
            if let Some(byte) = b.get_mut(d.at + i) {
                *byte ^= x;
            }
        }
        match load(&b) {
            Ok(w) => prop_assert!(identical(&w), "{d:?} loaded a different model"),
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(msg.starts_with("m.safetensors: ") && !msg.contains('\n'), "{msg}");
            }
        }
    }
}
