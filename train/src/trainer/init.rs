//! A fresh model's initialisation and the variables it trains, in a stable order.

use anyhow::Result;
use candle_core::{DType, Tensor, Var};
use candle_nn::VarMap;
use rand::{Rng, SeedableRng};

/// Deterministic initialisation by name, as the original's `initialize_weights`: xavier-uniform
/// weights, zero biases, unit norm gains, N(0, 1) label embeddings.
pub(super) fn seeded_init(vars: &[(String, Var)], seed: u64) -> Result<()> {
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

/// The vars of a VarMap in a stable (sorted) order.
pub(super) fn sorted_vars(vm: &VarMap) -> Vec<(String, Var)> {
    let data = vm.data().lock().map(|d| d.clone()).unwrap_or_default();
    let mut v: Vec<(String, Var)> = data.into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

pub(super) fn set_var(var: &Var, t: &Tensor) -> Result<()> {
    var.set(&t.to_dtype(DType::F32)?.to_device(var.device())?)?;
    Ok(())
}
