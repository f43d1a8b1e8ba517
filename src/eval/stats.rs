//! Per-feature statistics of a set of windows and the comparison of two sets (overlapping area).

use super::{overlapping_area, Family, Feature, FeatureSet, Window};
use rayon::prelude::*;
use serde::Serialize;

/// Features of many windows, in parallel.
pub fn feature_table(windows: &[Window]) -> Vec<FeatureSet> {
    windows.par_iter().map(FeatureSet::of).collect()
}

/// Mean, spread and count of one feature over a set (undefined values left out).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Stats {
    /// Windows where the feature is defined.
    pub n: usize,
    pub mean: f64,
    pub sd: f64,
}

impl Stats {
    pub fn of(values: &[f64]) -> Self {
        let n = values.len();
        if n == 0 {
            return Self::default();
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
        Self {
            n,
            mean,
            sd: var.sqrt(),
        }
    }
}

/// The defined values of one feature over a table.
pub fn column(table: &[FeatureSet], f: Feature) -> Vec<f64> {
    table.iter().filter_map(|s| s.get(f)).collect()
}

/// OA of every feature between two tables, and the per-family and overall means.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// Indexed like [`Feature::ALL`]; `None` where either side has no defined value.
    pub oa: Vec<Option<f64>>,
    /// Mean OA per family, in [`Family::ALL`] order.
    pub families: Vec<Option<f64>>,
    /// Mean of the family means (each family weighs the same, whatever its feature count).
    pub overall: Option<f64>,
}

impl Comparison {
    pub fn feature(&self, f: Feature) -> Option<f64> {
        self.oa.get(f.index()).copied().flatten()
    }

    pub fn family(&self, fam: Family) -> Option<f64> {
        let i = Family::ALL.iter().position(|&x| x == fam)?;
        self.families.get(i).copied().flatten()
    }
}

fn mean_defined(xs: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let v: Vec<f64> = xs.flatten().collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Compare two feature tables feature by feature.
pub fn compare(a: &[FeatureSet], b: &[FeatureSet]) -> Comparison {
    let oa: Vec<Option<f64>> = Feature::ALL
        .par_iter()
        .map(|&f| overlapping_area(&column(a, f), &column(b, f), f.resolution() * 0.5))
        .collect();
    let families: Vec<Option<f64>> = Family::ALL
        .iter()
        .map(|&fam| {
            mean_defined(
                Feature::ALL
                    .iter()
                    .filter(|f| f.family() == fam)
                    .map(|f| oa[f.index()]),
            )
        })
        .collect();
    let overall = mean_defined(families.iter().copied());
    Comparison {
        oa,
        families,
        overall,
    }
}
