//! Fused CPU kernels for the JiT block, with hand-written backward passes.
//!
//! candle's graph of small ops costs a temporary (and a zero-filled gradient) per op, and its
//! broadcast-gradient sums run on one thread. These fused ops replace about 45 graph nodes per
//! block by 6 and do their work in parallel row loops. They are f32/CPU kernels; on any other
//! device or dtype each public function falls back to the equivalent composition of plain
//! differentiable candle ops. Tests keep the fused forward and backward equal to that
//! composition (`tests/ops_grad.rs`). `optim` holds the optimizer step's in-place kernels, which
//! the trainer uses outside the autograd graph.

mod ada_norm;
mod attention;
mod bias;
mod cpu;
mod linear;
mod optim;
mod residual;
mod swiglu;

pub use ada_norm::{ada_norm, ada_norm_reference};
pub use attention::{attention, attention_reference};
pub use bias::{bias_add, bias_add_reference};
pub use cpu::{is_serial, serial};
pub use linear::{linear, linear_reference, linear_t};
pub use optim::{sum_sq, weighted_sum, AdamUpdate, Blend};
pub use residual::{gated_residual, gated_residual_reference};
pub use swiglu::{swiglu, swiglu_reference};

use candle_core::{DType, Device, Tensor};

/// The RMSNorm epsilon of every normalisation in the network (the original's), shared by the
/// fused kernels and the model's plain paths.
pub const RMS_EPS: f32 = 1e-6;

/// Whether the fused CPU kernels apply to these tensors.
pub fn fused_ok(ts: &[&Tensor]) -> bool {
    ts.iter()
        .all(|t| matches!(t.device(), Device::Cpu) && t.dtype() == DType::F32)
}
