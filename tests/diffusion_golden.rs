//! Parity of the objective and the samplers with the original `DenoiserMusic`.

mod common;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use jit_music::diffusion::Objective;
use jit_music::model::{JiT, JitConfig, OpPath};
use jit_music::sampler::{sample, Hooks, Inputs, Method, SamplerConfig};
use std::collections::HashMap;

fn square_net() -> JiT {
    let t = candle_core::safetensors::load(
        common::golden("jit_forward_square.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    let bytes = std::fs::read(common::golden("jit_forward_square.safetensors")).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let cfg: JitConfig =
        serde_json::from_str(&meta.metadata().as_ref().unwrap()["config"]).unwrap();
    let params: HashMap<String, Tensor> = t
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("param.").map(|n| (n.to_string(), v.clone())))
        .collect();
    JiT::new(
        &cfg,
        VarBuilder::from_tensors(params, DType::F32, &Device::Cpu),
    )
    .unwrap()
}

/// Pins the v-loss: z = t x + (1-t) e, v = (x - z)/max(1-t, t_eps), network predicts x, mean over
/// pixels then over the batch. Checked on both op paths (fused inference, differentiable training).
#[test]
fn loss_matches_original() {
    let net = square_net();
    let g = candle_core::safetensors::load(common::golden("jit_loss.safetensors"), &Device::Cpu)
        .unwrap();
    let want = g["output.loss"]
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()[0];
    let obj = Objective::default();
    for path in [OpPath::Inference, OpPath::Training, OpPath::Reference] {
        let loss = obj
            .v_loss(
                |z, c, t, y| net.forward(z, c, t, y, path),
                &g["input.x"],
                None,
                &g["input.t"],
                &g["input.e"],
                &g["input.y"],
            )
            .unwrap();
        let got = loss.to_scalar::<f32>().unwrap();
        let rel = ((got - want) / want).abs();
        assert!(rel < 1e-4, "{path:?}: loss {got} vs {want} (rel {rel})");
    }
}

/// Pins both samplers: linspace(0,1,5) time grid, 3 Heun/Euler steps then a final Euler step,
/// CFG 3 only for 0.1 < t < 0.9, null label = num_classes.
#[test]
fn samplers_match_original() {
    let net = square_net();
    let g = candle_core::safetensors::load(common::golden("jit_sampler.safetensors"), &Device::Cpu)
        .unwrap();
    for (method, key) in [
        (Method::Euler, "output.euler"),
        (Method::Heun, "output.heun"),
    ] {
        let cfg = SamplerConfig {
            method,
            steps: 4,
            cfg_scale: 3.0,
            cfg_interval: (0.1, 0.9),
            ..Default::default()
        };
        let out = sample(
            |z, c, t, y| net.forward(z, c, t, y, OpPath::Inference),
            &g["input.z0"],
            Inputs::labels(&g["input.y"], net.null_label()),
            &cfg,
            Hooks::default(),
        )
        .unwrap()
        .unwrap();
        let got: Vec<f32> = out.flatten_all().unwrap().to_vec1().unwrap();
        let want: Vec<f32> = g[key].flatten_all().unwrap().to_vec1().unwrap();
        let err = common::rel_l2(&got, &want);
        assert!(err < 1e-3, "{method}: relative L2 {err}");
    }
}
