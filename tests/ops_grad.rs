//! The fused CPU kernels equal the plain differentiable compositions, forward and backward.
//! (candle's fused inference ops have no backward; these do, and this keeps them honest.)

mod common;

use candle_core::{Device, Tensor, Var};
use jit_music::ops;

fn rand(shape: &[usize], seed: u64) -> Tensor {
    // Deterministic pseudo-random values in [-1.5, 1.5].
    let n: usize = shape.iter().product();
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let data: Vec<f32> = (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 33) as f32 / (1u64 << 31) as f32) * 3.0 - 1.5
        })
        .collect();
    Tensor::from_vec(data, shape, &Device::Cpu).unwrap()
}

fn vals(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

/// Forward and input gradients (under a random upstream gradient) of `fused` and `reference`.
fn check<F, R>(inputs: &[Tensor], fused: F, reference: R, name: &str)
where
    F: Fn(&[Tensor]) -> Tensor,
    R: Fn(&[Tensor]) -> Tensor,
{
    let run = |f: &dyn Fn(&[Tensor]) -> Tensor| {
        let vars: Vec<Var> = inputs
            .iter()
            .map(|t| Var::from_tensor(t).unwrap())
            .collect();
        let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
        let y = f(&ts);
        let up = rand(y.dims(), 99);
        let loss = (&y * &up).unwrap().sum_all().unwrap();
        let g = loss.backward().unwrap();
        let grads: Vec<Vec<f32>> = vars
            .iter()
            .map(|v| vals(g.get(v.as_tensor()).unwrap()))
            .collect();
        (vals(&y), grads)
    };
    let (yf, gf) = run(&fused);
    let (yr, gr) = run(&reference);
    let e = common::rel_l2(&yf, &yr);
    assert!(e < 1e-5, "{name}: forward differs, rel L2 {e}");
    for (i, (a, b)) in gf.iter().zip(&gr).enumerate() {
        let e = common::rel_l2(a, b);
        assert!(
            e < 1e-4,
            "{name}: gradient of input {i} differs, rel L2 {e}"
        );
    }
}

#[test]
fn ada_norm_matches_composition() {
    let (b, n, d) = (3, 5, 24);
    check(
        &[rand(&[b, n, d], 1), rand(&[b, d], 2), rand(&[b, d], 3)],
        |t| ops::ada_norm(&t[0], &t[1], &t[2]).unwrap(),
        |t| ops::ada_norm_reference(&t[0], &t[1], &t[2]).unwrap(),
        "ada_norm",
    );
}

#[test]
fn gated_residual_matches_composition() {
    let (b, n, d) = (2, 7, 16);
    check(
        &[rand(&[b, n, d], 4), rand(&[b, n, d], 5), rand(&[b, d], 6)],
        |t| ops::gated_residual(&t[0], &t[1], &t[2]).unwrap(),
        |t| ops::gated_residual_reference(&t[0], &t[1], &t[2]).unwrap(),
        "gated_residual",
    );
}

#[test]
fn swiglu_matches_composition() {
    check(
        &[rand(&[9, 2 * 12], 7)],
        |t| ops::swiglu(&t[0]).unwrap(),
        |t| ops::swiglu_reference(&t[0]).unwrap(),
        "swiglu",
    );
}

#[test]
fn bias_add_matches_composition() {
    check(
        &[rand(&[37, 10], 8), rand(&[10], 9)],
        |t| ops::bias_add(&t[0], &t[1]).unwrap(),
        |t| ops::bias_add_reference(&t[0], &t[1]).unwrap(),
        "bias_add",
    );
}

#[test]
fn attention_matches_composition() {
    for (b, n, heads, hd) in [(2, 8, 2, 4), (3, 16, 3, 8), (1, 64, 2, 32)] {
        let d = heads * hd;
        let scale = 1.0 / (hd as f64).sqrt();
        check(
            &[rand(&[b * n, 3 * d], 10), rand(&[hd], 11), rand(&[hd], 12)],
            |t| ops::attention(&t[0], &t[1], &t[2], b, heads, scale).unwrap(),
            |t| ops::attention_reference(&t[0], &t[1], &t[2], b, heads, scale).unwrap(),
            "attention",
        );
    }
}

/// The whole network: loss and every weight gradient on the fused training path equal the plain
/// reference path, for the original's one-channel model and for a two-channel model with
/// conditioning channels and non-square patches.
#[test]
fn model_gradients_match_reference_path() {
    use candle_core::DType;
    use candle_nn::{VarBuilder, VarMap};
    use jit_music::diffusion::Objective;
    use jit_music::model::{JiT, JitConfig, OpPath};
    for (channels, cond_channels, patch_w) in [(1, 0, 16), (2, 5, 8)] {
        let mut cfg = JitConfig::preset("tiny", 128, 128, 2).unwrap();
        cfg.in_channels = channels;
        cfg.cond_channels = cond_channels;
        cfg.patch_w = patch_w;
        let vm = VarMap::new();
        let net = JiT::new(&cfg, VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu)).unwrap();
        let x = (rand(&[2, channels, 128, 128], 21).tanh().unwrap())
            .contiguous()
            .unwrap();
        let c = (cond_channels > 0).then(|| rand(&[2, cond_channels, 128, 128], 22));
        let obj = Objective::default();
        let grads = |path: OpPath| {
            let loss = obj
                .loss(
                    |z, c, t, y| net.forward(z, c, t, y, path),
                    &x,
                    c.as_ref(),
                    &[0, 1],
                    2,
                    5,
                )
                .unwrap();
            let g = loss.backward().unwrap();
            let vars = vm.data().lock().unwrap().clone();
            let mut out: Vec<(String, Vec<f32>)> = vars
                .iter()
                .map(|(k, v)| (k.clone(), vals(g.get(v.as_tensor()).expect(k))))
                .collect();
            out.sort_by(|a, b| a.0.cmp(&b.0));
            (loss.to_scalar::<f32>().unwrap(), out)
        };
        let (lf, gf) = grads(OpPath::Training);
        let (lr, gr) = grads(OpPath::Reference);
        assert!(((lf - lr) / lr).abs() < 1e-5, "loss {lf} vs {lr}");
        for ((k, a), (_, b)) in gf.iter().zip(&gr) {
            let e = common::rel_l2(a, b);
            assert!(
                e < 1e-3,
                "{channels}+{cond_channels} channels: gradient of {k}: rel L2 {e}"
            );
        }
    }
}

#[test]
fn linear_matches_composition() {
    check(
        &[rand(&[37, 24], 30), rand(&[10, 24], 31), rand(&[10], 32)],
        |t| ops::linear(&t[0], &t[1], &t[2]).unwrap(),
        |t| ops::linear_reference(&t[0], &t[1], &t[2]).unwrap(),
        "linear",
    );
    // The same inside `serial` (single-threaded kernels) and the inference form with W^T.
    let (x, w, b) = (rand(&[37, 24], 30), rand(&[10, 24], 31), rand(&[10], 32));
    let want = vals(&ops::linear_reference(&x, &w, &b).unwrap());
    let s = vals(&ops::serial(|| ops::linear(&x, &w, &b)).unwrap());
    let t = vals(&ops::linear_t(&x, &w.t().unwrap().contiguous().unwrap(), &b).unwrap());
    assert!(common::rel_l2(&s, &want) < 1e-5 && common::rel_l2(&t, &want) < 1e-5);
}
