//! Musical-structure evaluation of generated music against real music.
//!
//! Both sets are cut into windows of a few bars on the beats grid (the grid phase and the bar
//! lines come from [`crate::roll::score_to_roll`], so real files whose 16ths are offset from
//! tick 0 are read correctly). Every window gets a [`FeatureSet`]: one scalar per [`Feature`].
//! For each feature the two sets' values are smoothed into densities (Gaussian KDE), and the
//! *overlapping area* (OA, Yang & Lerch 2018) of the two densities says how alike the sets are:
//! 1 = indistinguishable, 0 = disjoint.
//!
//! Why three families: summary statistics of notes (density, range, durations ...) cannot tell
//! music from note soup. Real POP909 windows with their notes' onsets and pitches shuffled score
//! like real music on every one of them. The [`Family::Harmony`] and [`Family::Melody`] features
//! measure what shuffling destroys: chords, a bass under them, a singable top voice, repeated
//! bars and a key.
//!
//! Calibration: OA depends on the number of windows (small samples overlap less), so a score is
//! only meaningful next to a *ceiling*: as many real, held-out windows scored the same way
//! ([`evaluate_sets`]' `ceiling` argument), and next to corrupted copies of real windows
//! ([`corrupt`]), which show how low note soup scores.

pub mod catalogue;
pub mod chart;
pub mod coherence;
pub mod corrupt;
pub mod features;
pub mod harmony;
pub mod melody;
pub mod memorize;
pub mod oa;
pub mod report;
pub mod stats;
pub mod windows;

pub use catalogue::{Family, Feature, FeatureInfo, FeatureSet, FEATURES};
pub use memorize::{MemorisationReport, NearCopy};
pub use oa::overlapping_area;
pub use report::*;
pub use stats::*;
pub use windows::*;
