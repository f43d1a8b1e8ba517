//! The embedded models, compiled into every binary (`include_bytes!`) so that `generate` and the
//! plugin work out of the box and no path can go missing. Both were trained by this project's
//! `train` binary; their metadata records the data, the command, the steps and the evaluation
//! (`inspect models/default.safetensors`).
//!
//! Two models, because at the CPU budget they were trained with each is the better one for its
//! own requests (docs/MODEL-V2.md measures it): the default (v1 roll, no conditions) writes the
//! better new ideas from nothing; the conditioned one (onset/sustain roll, trained with known
//! notes and chords as input) is far better at everything that starts from the producer's music:
//! continue, fill, pitch band, part, chords. [`Embedded::for_request`] is the one rule that
//! picks between them, for the CLI and the plugin alike.

use crate::checkpoint::{load_bytes, CheckpointError, ModelWeights};

/// The default model's file, as shipped in `models/default.safetensors`.
pub const BYTES: &[u8] = include_bytes!("../models/default.safetensors");

/// The conditioned model's file, as shipped in `models/conditioned.safetensors`.
pub const CONDITIONED_BYTES: &[u8] = include_bytes!("../models/conditioned.safetensors");

/// One of the embedded models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Embedded {
    /// New ideas from nothing.
    Default,
    /// Ideas from the producer's notes or chords.
    Conditioned,
}

impl Embedded {
    /// The embedded model for a request: the conditioned one when it gives the model notes to
    /// keep or chords to follow.
    pub fn for_request(has_prompt: bool, has_chords: bool) -> Self {
        if has_prompt || has_chords {
            Self::Conditioned
        } else {
            Self::Default
        }
    }

    /// The name sidecars and the plugin's state record (`embedded:default`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Default => "embedded:default",
            Self::Conditioned => "embedded:conditioned",
        }
    }

    /// The embedded model a recorded name means, if it names one.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Default, Self::Conditioned]
            .into_iter()
            .find(|e| e.name() == name)
    }

    pub fn bytes(self) -> &'static [u8] {
        match self {
            Self::Default => BYTES,
            Self::Conditioned => CONDITIONED_BYTES,
        }
    }

    /// Load its weights and metadata.
    pub fn load(self) -> Result<ModelWeights, CheckpointError> {
        let what = match self {
            Self::Default => "embedded default model",
            Self::Conditioned => "embedded conditioned model",
        };
        let mut w = load_bytes(what, self.bytes())?;
        w.source = self.name().into();
        Ok(w)
    }
}

/// Load the embedded default model's weights and metadata.
pub fn load() -> Result<ModelWeights, CheckpointError> {
    Embedded::Default.load()
}

/// Load the embedded conditioned model's weights and metadata.
pub fn load_conditioned() -> Result<ModelWeights, CheckpointError> {
    Embedded::Conditioned.load()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_and_chords_go_to_the_conditioned_model() {
        assert_eq!(Embedded::for_request(false, false), Embedded::Default);
        for (prompt, chords) in [(true, false), (false, true), (true, true)] {
            assert_eq!(Embedded::for_request(prompt, chords), Embedded::Conditioned);
        }
        for e in [Embedded::Default, Embedded::Conditioned] {
            assert_eq!(Embedded::from_name(e.name()), Some(e));
        }
        assert_eq!(Embedded::from_name("models/default.safetensors"), None);
    }

    /// Both load, with the same styles (the plugin's style menu serves both), and the
    /// conditioned one takes what it is routed for.
    #[test]
    fn both_embedded_models_load() {
        let d = Embedded::Default.load().unwrap();
        let c = Embedded::Conditioned.load().unwrap();
        assert_eq!(d.meta.classes, c.meta.classes);
        assert_eq!(d.meta.default_class(), c.meta.default_class());
        assert!(c.meta.roll.conditions.known && c.meta.roll.conditions.chords);
        assert_eq!(c.source, "embedded:conditioned");
    }
}
