//! The feature catalogue: one entry per feature (its name, chart label, family, unit, how it is
//! computed and its resolution), and a window's values. The values themselves are computed per
//! family, which share their analyses: [`super::features`] (note statistics),
//! [`super::harmony`] and [`super::melody`].

use super::{features, harmony, melody, Window};
use serde::{Deserialize, Serialize};

/// Which group a feature belongs to; the summary averages OA per family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// Summary statistics of notes: blind to structure, but catch gross density/range errors.
    Notes,
    /// Chords: consonance, triads, bass, harmonic rhythm.
    Harmony,
    /// The top voice and the form: steps/leaps, chord tones, repetition, key.
    Melody,
}

impl Family {
    pub const ALL: [Family; 3] = [Family::Notes, Family::Harmony, Family::Melody];

    pub fn name(self) -> &'static str {
        match self {
            Family::Notes => "note statistics",
            Family::Harmony => "harmony",
            Family::Melody => "melody and form",
        }
    }
}

/// One scalar measured on a window; [`FEATURES`] says what each is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Feature {
    NotesPerBar,
    Polyphony,
    PitchRange,
    PitchClasses,
    PitchClassEntropy,
    NoteDuration,
    InterOnsetInterval,
    SilenceRatio,
    OnBeat,
    Consonance,
    TriadFit,
    BassRoot,
    ChordDuration,
    ChordChangeOnDownbeat,
    MelodySteps,
    MelodyLeaps,
    MelodyChordTones,
    BarRepetition,
    KeyClarity,
    KeyConsistency,
}

/// What a feature is.
#[derive(Debug, Clone, Copy)]
pub struct FeatureInfo {
    pub feature: Feature,
    /// snake_case name, as in the JSON report.
    pub name: &'static str,
    /// Short upper-case label for the chart's bitmap font.
    pub label: &'static str,
    pub family: Family,
    /// Unit of the values (for the table).
    pub unit: &'static str,
    /// One line on how the feature is computed on a window.
    pub description: &'static str,
    /// The smallest meaningful difference between two values: the KDE bandwidth never goes
    /// below half of it, so degenerate (all-equal) distributions still have a density.
    pub resolution: f64,
}

/// Every feature, in report order (grouped by family); entry `i` is the feature of index `i`.
pub const FEATURES: [FeatureInfo; Feature::COUNT] = [
    FeatureInfo {
        feature: Feature::NotesPerBar,
        name: "notes_per_bar",
        label: "NOTES/BAR",
        family: Family::Notes,
        unit: "notes",
        description: "notes starting in the window / bars",
        resolution: 0.5,
    },
    FeatureInfo {
        feature: Feature::Polyphony,
        name: "polyphony",
        label: "POLYPHONY",
        family: Family::Notes,
        unit: "pitches",
        description: "mean number of sounding pitches over frames where anything sounds",
        resolution: 0.1,
    },
    FeatureInfo {
        feature: Feature::PitchRange,
        name: "pitch_range",
        label: "RANGE",
        family: Family::Notes,
        unit: "semitones",
        description: "highest minus lowest pitch in the window",
        resolution: 1.0,
    },
    FeatureInfo {
        feature: Feature::PitchClasses,
        name: "pitch_classes",
        label: "PCS/BAR",
        family: Family::Notes,
        unit: "classes",
        description: "distinct pitch classes per bar, mean over non-empty bars",
        resolution: 0.125,
    },
    FeatureInfo {
        feature: Feature::PitchClassEntropy,
        name: "pitch_class_entropy",
        label: "PC ENTROPY",
        family: Family::Notes,
        unit: "bits",
        description: "Shannon entropy of the window's pitch-class histogram of onsets",
        resolution: 0.05,
    },
    FeatureInfo {
        feature: Feature::NoteDuration,
        name: "note_duration",
        label: "DURATION",
        family: Family::Notes,
        unit: "beats",
        description: "mean note length",
        resolution: 0.05,
    },
    FeatureInfo {
        feature: Feature::InterOnsetInterval,
        name: "inter_onset_interval",
        label: "IOI",
        family: Family::Notes,
        unit: "beats",
        description: "mean time between consecutive distinct onsets",
        resolution: 0.05,
    },
    FeatureInfo {
        feature: Feature::SilenceRatio,
        name: "silence_ratio",
        label: "SILENCE",
        family: Family::Notes,
        unit: "share",
        description: "share of frames where nothing sounds",
        resolution: 0.02,
    },
    FeatureInfo {
        feature: Feature::OnBeat,
        name: "on_beat",
        label: "ON BEAT",
        family: Family::Notes,
        unit: "share",
        description: "share of onsets on a beat",
        resolution: 0.02,
    },
    FeatureInfo {
        feature: Feature::Consonance,
        name: "consonance",
        label: "CONSONANCE",
        family: Family::Harmony,
        unit: "share",
        description: "share of consonant intervals (unison/octave, 3rds, 4th, 5th, 6ths) among all pairs of simultaneously sounding pitches",
        resolution: 0.02,
    },
    FeatureInfo {
        feature: Feature::TriadFit,
        name: "triad_fit",
        label: "TRIAD FIT",
        family: Family::Harmony,
        unit: "share",
        description: "per half bar, share of sounding time on the best-fitting major/minor triad; mean",
        resolution: 0.02,
    },
    FeatureInfo {
        feature: Feature::BassRoot,
        name: "bass_root",
        label: "BASS ROOT",
        family: Family::Harmony,
        unit: "share",
        description: "share of half bars whose lowest note is the best triad's root",
        resolution: 0.02,
    },
    FeatureInfo {
        feature: Feature::ChordDuration,
        name: "chord_duration",
        label: "CHORD LEN",
        family: Family::Harmony,
        unit: "beats",
        description: "mean length of runs of the same best triad (rests extend a chord)",
        resolution: 0.25,
    },
    FeatureInfo {
        feature: Feature::ChordChangeOnDownbeat,
        name: "chord_change_on_downbeat",
        label: "CHG ON BAR",
        family: Family::Harmony,
        unit: "share",
        description: "share of chord changes that fall on a bar line (vs mid-bar)",
        resolution: 0.02,
    },
    FeatureInfo {
        feature: Feature::MelodySteps,
        name: "melody_steps",
        label: "MEL STEPS",
        family: Family::Melody,
        unit: "share",
        description: "top voice (skyline): share of intervals of 1-2 semitones",
        resolution: 0.02,
    },
    FeatureInfo {
        feature: Feature::MelodyLeaps,
        name: "melody_leaps",
        label: "MEL LEAPS",
        family: Family::Melody,
        unit: "share",
        description: "top voice: share of intervals of 5 semitones or more",
        resolution: 0.02,
    },
    FeatureInfo {
        feature: Feature::MelodyChordTones,
        name: "melody_chord_tones",
        label: "MEL CT",
        family: Family::Melody,
        unit: "share",
        description: "share of top-voice notes on a tone of the triad that the other voices form in their half bar",
        resolution: 0.02,
    },
    FeatureInfo {
        feature: Feature::BarRepetition,
        name: "bar_repetition",
        label: "REPETITION",
        family: Family::Melody,
        unit: "share",
        description: "per bar, best Jaccard overlap of its (onset, pitch) set with an earlier bar; mean",
        resolution: 0.02,
    },
    FeatureInfo {
        feature: Feature::KeyClarity,
        name: "key_clarity",
        label: "KEY CLARITY",
        family: Family::Melody,
        unit: "r",
        description: "per bar, best correlation of its pitch-class profile with the 24 Krumhansl-Kessler key profiles; mean",
        resolution: 0.02,
    },
    FeatureInfo {
        feature: Feature::KeyConsistency,
        name: "key_consistency",
        label: "KEY CONSIST",
        family: Family::Melody,
        unit: "r",
        description: "per bar, correlation of its profile with the window's best key profile; mean",
        resolution: 0.02,
    },
];

impl Feature {
    /// Number of features.
    pub const COUNT: usize = 20;

    /// Every feature, in report order.
    pub const ALL: [Feature; Feature::COUNT] = {
        let mut all = [Feature::NotesPerBar; Feature::COUNT];
        let mut i = 0;
        while i < Feature::COUNT {
            all[i] = FEATURES[i].feature;
            i += 1;
        }
        all
    };

    /// Position in [`Feature::ALL`] and in a [`FeatureSet`].
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn info(self) -> &'static FeatureInfo {
        &FEATURES[self.index()]
    }

    pub fn name(self) -> &'static str {
        self.info().name
    }

    pub fn label(self) -> &'static str {
        self.info().label
    }

    pub fn family(self) -> Family {
        self.info().family
    }

    pub fn unit(self) -> &'static str {
        self.info().unit
    }

    pub fn description(self) -> &'static str {
        self.info().description
    }

    pub fn resolution(self) -> f64 {
        self.info().resolution
    }
}

/// One window's features; `None` where a feature is undefined (no melody intervals, no chord
/// change, ...). Undefined values are left out of that feature's distribution.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FeatureSet {
    pub values: [Option<f64>; Feature::COUNT],
}

impl Default for FeatureSet {
    fn default() -> Self {
        Self {
            values: [None; Feature::COUNT],
        }
    }
}

impl FeatureSet {
    /// Compute every feature of a window.
    pub fn of(window: &Window) -> Self {
        let mut out = FeatureSet::default();
        let masks = window.frame_masks();
        features::note_statistics(window, &masks, &mut out);
        let harmony = harmony::analyse(window, &masks);
        harmony::harmony_features(window, &masks, &harmony, &mut out);
        melody::melody_features(window, &harmony, &mut out);
        out
    }

    pub fn get(&self, f: Feature) -> Option<f64> {
        self.values[f.index()]
    }

    /// Set a value; non-finite values become `None`.
    pub fn set(&mut self, f: Feature, v: Option<f64>) {
        self.values[f.index()] = v.filter(|x| x.is_finite());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table is in enum order, so a feature's entry is at its index.
    #[test]
    fn catalogue_is_in_enum_order() {
        for (i, f) in FEATURES.iter().enumerate() {
            assert_eq!(f.feature.index(), i, "{}", f.name);
        }
    }
}
