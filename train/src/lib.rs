//! JiT-Music's companion tools: the trainer and its data pipeline. The binaries (`train`,
//! `generate`, `inspect`, `evaluate`) are thin CLIs over this crate and the `jit-music` core,
//! which they link without the plugin (no nice-plug, no egui).

pub mod data;
pub mod evaluation;
pub mod optim;
pub mod prompt;
pub mod runtime;
pub mod sampler_args;
pub mod sidecar;
pub mod trainer;
