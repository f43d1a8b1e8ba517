//! What a user waits for: 8 bars from each embedded model through the one generation
//! path (`Generator::generate`, notes decoded), at the model's recommended settings and on the
//! few-step paths beside them in one run, so the ratio is measured on the same machine state.
//!
//! `cargo bench --no-default-features --bench generate_speed`
//! (`JIT_BENCH_CKPT=path` adds a checkpoint, e.g. a distilled student, at its own settings.)

use candle_core::Device;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use jit_music::generate::{Generator, Method, Request, SamplerConfig};
use jit_music::roll::{Decode, Velocity};
use jit_music::sampler::Hooks;

fn one(gen: &Generator, sampler: &SamplerConfig, seed: u64) -> usize {
    let m = gen.meta();
    let request = Request {
        noise: gen.noise(seed).expect("noise"),
        label: m.default_class(),
        prompt: None,
        chords: None,
        vary: None,
    };
    let decode = Decode {
        threshold: m.recommended_threshold(),
        dip: m.recommended_dip(),
        velocity: Velocity::Fixed(100),
    };
    let out = gen
        .generate(&[request], sampler, &decode, Hooks::default())
        .expect("generate")
        .expect("not cancelled");
    out[0].generated.len()
}

fn bench(c: &mut Criterion) {
    let mut models = vec![
        (
            "default".to_string(),
            jit_music::default_model::load().expect("embedded model"),
        ),
        (
            "conditioned".to_string(),
            jit_music::default_model::load_conditioned().expect("embedded model"),
        ),
    ];
    if let Ok(p) = std::env::var("JIT_BENCH_CKPT") {
        models.push((
            "ckpt".into(),
            jit_music::checkpoint::load(p.as_ref(), Default::default()).expect("checkpoint"),
        ));
    }
    let mut g = c.benchmark_group("eight_bars");
    g.sample_size(10);
    for (name, w) in models {
        let gen = Generator::new(w, Device::Cpu).expect("model");
        let rec = gen.meta().sampler.clone();
        let label = format!(
            "{}{}_{}",
            rec.method,
            rec.steps,
            if rec.cfg_scale == 1.0 { "nocfg" } else { "cfg" }
        );
        let few = |steps| SamplerConfig {
            method: Method::Euler,
            steps,
            cfg_scale: 1.0,
            ..rec.clone()
        };
        for (what, s) in [
            (format!("recommended_{label}"), rec.clone()),
            ("euler2_nocfg".into(), few(2)),
            ("euler1_nocfg".into(), few(1)),
        ] {
            let mut seed = 0;
            g.bench_function(format!("{name}/{what}"), |b| {
                b.iter(|| {
                    seed += 1;
                    black_box(one(&gen, &s, seed))
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
