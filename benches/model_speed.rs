//! Inference speed of the JiT network on CPU: one forward at batch 2 (a CFG pair) and a full
//! 128-frame sample (Heun, 32 steps = 63 forwards, CFG), for the ~4M, ~30M and B/16 presets.
//!
//! Compare with the original PyTorch code on the same machine, in the same session:
//! `SEED_REPO=<original checkout> THREADS=2 python3 ../shared/bench/torch_infer_bench.py`.
//! `JIT_BENCH_PRESETS=JiT-XS/16` limits the presets (B/16 samples take a while).

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use criterion::{criterion_group, criterion_main, Criterion};
use jit_music::model::{JiT, JitConfig, OpPath};
use jit_music::sampler::{sample, seeded_noise, Hooks, Inputs, SamplerConfig};

fn presets() -> Vec<String> {
    std::env::var("JIT_BENCH_PRESETS")
        .unwrap_or_else(|_| "JiT-XS/16,JiT-S/16,JiT-B/16".into())
        .split(',')
        .map(|s| s.trim().to_string())
        .collect()
}

fn bench(c: &mut Criterion) {
    // Element-wise ops on the calling thread: see jit_music_train::runtime (the binaries do this).
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    let dev = Device::Cpu;
    for name in presets() {
        let Some(cfg) = JitConfig::preset(&name, 128, 128, 1) else {
            eprintln!("unknown preset {name}");
            continue;
        };
        let vm = VarMap::new();
        let net = JiT::new(&cfg, VarBuilder::from_varmap(&vm, DType::F32, &dev)).unwrap();
        // Plain tensors (no variables), as a loaded checkpoint gives.
        let map = net
            .named_tensors()
            .into_iter()
            .map(|(k, t)| (k, t.detach()))
            .collect();
        let net = JiT::new(&cfg, VarBuilder::from_tensors(map, DType::F32, &dev)).unwrap();
        let z = seeded_noise(0, 2, (1, 128, 128), 1.0, &dev).unwrap();
        let t = Tensor::new(&[0.3f32, 0.3], &dev).unwrap();
        let y = Tensor::new(&[0u32, 1], &dev).unwrap();
        let mut g = c.benchmark_group(format!("infer/{name}"));
        g.sample_size(if name.contains("B/") { 10 } else { 30 });
        g.bench_function("forward_batch2", |b| {
            b.iter(|| net.forward(&z, None, &t, &y, OpPath::Inference).unwrap())
        });
        let z1 = seeded_noise(1, 1, (1, 128, 128), 1.0, &dev).unwrap();
        let y1 = Tensor::new(&[0u32], &dev).unwrap();
        let sc = SamplerConfig::default(); // Heun, 32 steps, CFG 3 over (0, 1): 63 CFG-pair forwards
        g.sample_size(10);
        g.bench_function("sample_heun32_cfg", |b| {
            b.iter(|| {
                sample(
                    |z, c, t, y| net.forward(z, c, t, y, OpPath::Inference),
                    &z1,
                    Inputs::labels(&y1, net.null_label()),
                    &sc,
                    Hooks::default(),
                )
                .unwrap()
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
