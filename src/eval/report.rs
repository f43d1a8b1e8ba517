//! The evaluation report: per feature and family, the model against the reference with the
//! ceiling and corrupted baselines beside it, as data and as text.

use super::stats::{compare, feature_table, Comparison, Stats};
use super::{column, Family, Feature, FeatureSet, MemorisationReport, Window};
use serde::Serialize;

/// One feature's line of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureReport {
    pub feature: Feature,
    pub family: Family,
    pub unit: &'static str,
    pub description: &'static str,
    pub generated: Stats,
    pub reference: Stats,
    /// The ceiling set's values (real held-out windows), when given.
    pub ceiling_set: Option<Stats>,
    /// OA(generated, reference).
    pub oa: Option<f64>,
    /// OA(ceiling set, reference): what a perfect model reaches with this many windows.
    pub ceiling_oa: Option<f64>,
    /// `oa / ceiling_oa`.
    pub ratio: Option<f64>,
}

/// A family's or the overall summary line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SummaryLine {
    /// Family name, or "overall".
    pub name: String,
    pub oa: Option<f64>,
    pub ceiling_oa: Option<f64>,
    pub ratio: Option<f64>,
}

/// The scores of a calibration baseline (corrupted real windows) against the reference.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BaselineReport {
    pub name: String,
    pub description: String,
    pub comparison: Comparison,
}

/// The whole evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalReport {
    pub generated_windows: usize,
    pub reference_windows: usize,
    pub ceiling_windows: Option<usize>,
    pub features: Vec<FeatureReport>,
    /// One line per family, then the overall line.
    pub summary: Vec<SummaryLine>,
    pub model: Comparison,
    pub ceiling: Option<Comparison>,
    /// Filled by the caller (see [`corrupt::baselines`]); empty otherwise.
    pub baselines: Vec<BaselineReport>,
    /// Filled by the caller (see [`memorize::memorisation`]).
    pub memorisation: Option<MemorisationReport>,
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 1e-9 => Some(a / b),
        _ => None,
    }
}

/// Score generated windows against reference windows; with `ceiling` (as many real windows
/// not in the reference), also the ceiling and the model's ratio to it.
pub fn evaluate_sets(
    generated: &[Window],
    reference: &[Window],
    ceiling: Option<&[Window]>,
) -> EvalReport {
    let gen_t = feature_table(generated);
    let ref_t = feature_table(reference);
    let ceil_t = ceiling.map(feature_table);
    evaluate_tables(&gen_t, &ref_t, ceil_t.as_deref())
}

/// [`evaluate_sets`] on precomputed feature tables.
pub fn evaluate_tables(
    generated: &[FeatureSet],
    reference: &[FeatureSet],
    ceiling: Option<&[FeatureSet]>,
) -> EvalReport {
    let model = compare(generated, reference);
    let ceil = ceiling.map(|c| compare(c, reference));
    let features = Feature::ALL
        .iter()
        .map(|&f| {
            let oa = model.feature(f);
            let ceiling_oa = ceil.as_ref().and_then(|c| c.feature(f));
            FeatureReport {
                feature: f,
                family: f.family(),
                unit: f.unit(),
                description: f.description(),
                generated: Stats::of(&column(generated, f)),
                reference: Stats::of(&column(reference, f)),
                ceiling_set: ceiling.map(|c| Stats::of(&column(c, f))),
                oa,
                ceiling_oa,
                ratio: ratio(oa, ceiling_oa),
            }
        })
        .collect();
    let mut summary: Vec<SummaryLine> = Family::ALL
        .iter()
        .map(|&fam| {
            let oa = model.family(fam);
            let c = ceil.as_ref().and_then(|c| c.family(fam));
            SummaryLine {
                name: fam.name().to_string(),
                oa,
                ceiling_oa: c,
                ratio: ratio(oa, c),
            }
        })
        .collect();
    let c = ceil.as_ref().and_then(|c| c.overall);
    summary.push(SummaryLine {
        name: "overall".to_string(),
        oa: model.overall,
        ceiling_oa: c,
        ratio: ratio(model.overall, c),
    });
    EvalReport {
        generated_windows: generated.len(),
        reference_windows: reference.len(),
        ceiling_windows: ceiling.map(<[FeatureSet]>::len),
        features,
        summary,
        model,
        ceiling: ceil,
        baselines: Vec::new(),
        memorisation: None,
    }
}

fn fmt_opt(x: Option<f64>, width: usize, prec: usize) -> String {
    match x {
        Some(v) => format!("{v:>width$.prec$}"),
        None => format!("{:>width$}", "n/a"),
    }
}

impl EvalReport {
    /// The report as a plain-text table (features, summary, baselines, memorisation).
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "windows: generated {}, reference {}{}",
            self.generated_windows,
            self.reference_windows,
            match self.ceiling_windows {
                Some(n) => format!(", ceiling (train) {n}"),
                None => String::new(),
            }
        );
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "{:>3} {:<26} {:>9} {:>15} {:>15} {:>15} {:>6} {:>7} {:>6}",
            "#",
            "feature",
            "unit",
            "generated",
            "reference",
            "ceiling set",
            "OA",
            "ceiling",
            "ratio"
        );
        let ms = |st: &Stats| {
            if st.n == 0 {
                format!("{:>15}", "n/a")
            } else {
                format!("{:>8.2} ±{:<6.2}", st.mean, st.sd)
            }
        };
        let mut fam = None;
        for (i, r) in self.features.iter().enumerate() {
            if fam != Some(r.family) {
                fam = Some(r.family);
                let _ = writeln!(s, "--- {}", r.family.name());
            }
            let _ = writeln!(
                s,
                "{:>3} {:<26} {:>9} {} {} {} {} {} {}",
                i + 1,
                r.feature.name(),
                r.unit,
                ms(&r.generated),
                ms(&r.reference),
                r.ceiling_set
                    .as_ref()
                    .map(ms)
                    .unwrap_or_else(|| format!("{:>15}", "-")),
                fmt_opt(r.oa, 6, 3),
                fmt_opt(r.ceiling_oa, 7, 3),
                fmt_opt(r.ratio, 6, 2),
            );
        }
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "summary (mean OA per family; overall = mean of the families)"
        );
        let _ = writeln!(
            s,
            "{:<18} {:>6} {:>7} {:>6}",
            "", "model", "ceiling", "ratio"
        );
        for l in &self.summary {
            let _ = writeln!(
                s,
                "{:<18} {} {} {}",
                l.name,
                fmt_opt(l.oa, 6, 3),
                fmt_opt(l.ceiling_oa, 7, 3),
                fmt_opt(l.ratio, 6, 2)
            );
        }
        if !self.baselines.is_empty() {
            let _ = writeln!(s);
            let _ = writeln!(
                s,
                "calibration (OA vs reference): {:>8} {:>8} {:>8} {:>8}",
                "notes", "harmony", "melody", "overall"
            );
            let mut row = |name: &str, c: &Comparison| {
                let _ = writeln!(
                    s,
                    "  {:<28} {} {} {} {}",
                    name,
                    fmt_opt(c.family(Family::Notes), 8, 3),
                    fmt_opt(c.family(Family::Harmony), 8, 3),
                    fmt_opt(c.family(Family::Melody), 8, 3),
                    fmt_opt(c.overall, 8, 3)
                );
            };
            row("model", &self.model);
            if let Some(c) = &self.ceiling {
                row("ceiling (real, train)", c);
            }
            for b in &self.baselines {
                row(&b.name, &b.comparison);
            }
            for b in &self.baselines {
                let _ = writeln!(s, "  {}: {}", b.name, b.description);
            }
        }
        if let Some(m) = &self.memorisation {
            let _ = writeln!(s);
            s.push_str(&m.to_text());
        }
        s
    }
}
