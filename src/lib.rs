//! JiT-Music: a JiT ("Just image Transformer") diffusion model for piano rolls, with the data
//! path, samplers and checkpoints it needs, and a CLAP/VST3 MIDI plugin behind the `plugin`
//! feature.
//!
//! Data flow: `.mid` -> [`midi::Score`] -> [`roll::PianoRoll`] -> model input in `[-1, 1]`;
//! the samplers in [`sampler`] turn noise into a roll, and [`roll::roll_to_notes`] back into notes.

pub mod checkpoint;
pub mod chords;
pub mod condition;
pub mod default_model;
pub mod diffusion;
pub mod eval;
pub mod export;
pub mod generate;
pub mod midi;
pub mod model;
pub mod ops;
#[cfg(feature = "plugin")]
pub mod plugin;
pub mod roll;
pub mod sampler;
