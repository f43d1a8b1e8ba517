//! The default model, embedded in every binary (`include_bytes!`) so that `generate` and the
//! plugin work out of the box and no path can go missing. It was trained by this project's
//! `train` binary; its metadata records the data, the command, the steps and the losses
//! (`inspect`-able with `generate --help`'s model line, or `jit_music::default_model::load()`).

use crate::checkpoint::{load_bytes, CheckpointError, ModelWeights};

/// The checkpoint file, as shipped in `models/default.safetensors`.
pub const BYTES: &[u8] = include_bytes!("../models/default.safetensors");

/// Load the embedded default model's weights and metadata.
pub fn load() -> Result<ModelWeights, CheckpointError> {
    let mut w = load_bytes("embedded default model", BYTES)?;
    w.source = "embedded:default".into();
    Ok(w)
}
