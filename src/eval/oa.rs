//! Overlapping area of two sample distributions (Yang & Lerch 2018): smooth each sample with a
//! Gaussian kernel density estimate, and integrate the pointwise minimum of the two densities.
//! 1 = the same distribution, 0 = no overlap. Symmetric in its arguments.

/// Fewest points of the integration grid.
const GRID: usize = 1024;
/// Most points of the integration grid (bounds time and memory for wildly spread samples).
const MAX_GRID: usize = 1 << 18;

/// Silverman's rule-of-thumb bandwidth, `0.9 * min(sd, IQR / 1.34) * n^(-1/5)`, never below
/// `floor`. Robust to degenerate samples: when all values are equal (sd = IQR = 0) the floor is
/// the bandwidth, and when only the IQR is 0 the standard deviation is used.
pub fn silverman_bandwidth(values: &[f64], floor: f64) -> f64 {
    let floor = if floor.is_finite() && floor > 0.0 {
        floor
    } else {
        1e-6
    };
    let n = values.len();
    if n < 2 {
        return floor;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let sd = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let q = |p: f64| {
        let x = p * (n - 1) as f64;
        let (i, f) = (x.floor() as usize, x - x.floor());
        sorted[i] + f * (sorted[(i + 1).min(n - 1)] - sorted[i])
    };
    let iqr = q(0.75) - q(0.25);
    let spread = if iqr > 0.0 { sd.min(iqr / 1.34) } else { sd };
    (0.9 * spread * (n as f64).powf(-0.2)).max(floor)
}

/// A Gaussian KDE.
#[derive(Debug, Clone)]
pub struct Kde {
    points: Vec<f64>,
    bandwidth: f64,
}

impl Kde {
    /// From finite samples (others are dropped); `None` when nothing is left.
    pub fn new(values: &[f64], floor: f64) -> Option<Self> {
        let points: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        if points.is_empty() {
            return None;
        }
        let bandwidth = silverman_bandwidth(&points, floor);
        Some(Self { points, bandwidth })
    }

    pub fn bandwidth(&self) -> f64 {
        self.bandwidth
    }

    /// Density on the uniform grid `lo + dx * i`, `i in 0..n` (`dx > 0`). Each kernel is
    /// added only within 8 bandwidths of its point, so the cost is `O(points * h / dx)`.
    pub fn density_on_grid(&self, lo: f64, dx: f64, n: usize) -> Vec<f64> {
        let h = self.bandwidth;
        let norm = 1.0 / (self.points.len() as f64 * h * (2.0 * std::f64::consts::PI).sqrt());
        let mut out = vec![0.0; n];
        if n == 0 || dx.is_nan() || dx <= 0.0 {
            return out;
        }
        for &p in &self.points {
            let a = (((p - 8.0 * h - lo) / dx).floor().max(0.0) as usize).min(n);
            let b = (((p + 8.0 * h - lo) / dx).ceil().max(0.0) as usize + 1).min(n);
            for (i, o) in out.iter_mut().enumerate().take(b).skip(a) {
                let z = (lo + dx * i as f64 - p) / h;
                *o += (-0.5 * z * z).exp();
            }
        }
        for o in &mut out {
            *o *= norm;
        }
        out
    }

    fn support(&self) -> (f64, f64) {
        let lo = self.points.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = self
            .points
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        (lo - 5.0 * self.bandwidth, hi + 5.0 * self.bandwidth)
    }
}

/// OA of the KDEs of `a` and `b` (bandwidths per sample by Silverman's rule, at least
/// `min_bandwidth`). `None` when either has no finite value. In `[0, 1]`.
pub fn overlapping_area(a: &[f64], b: &[f64], min_bandwidth: f64) -> Option<f64> {
    let ka = Kde::new(a, min_bandwidth)?;
    let kb = Kde::new(b, min_bandwidth)?;
    let (la, ha) = ka.support();
    let (lb, hb) = kb.support();
    let (lo, hi) = (la.min(lb), ha.max(hb));
    if !(hi - lo).is_finite() {
        return None; // values near f64::MAX: no meaningful density
    }
    if hi <= lo {
        return Some(1.0);
    }
    // At least GRID points, and a quarter of the narrower bandwidth apart (capped at MAX_GRID).
    let h = ka.bandwidth.min(kb.bandwidth);
    let n = (((hi - lo) / (0.25 * h)).ceil() as usize).clamp(GRID, MAX_GRID);
    let dx = (hi - lo) / (n - 1) as f64;
    let (da, db) = (ka.density_on_grid(lo, dx, n), kb.density_on_grid(lo, dx, n));
    let m: Vec<f64> = da.iter().zip(&db).map(|(x, y)| x.min(*y)).collect();
    // Trapezoid rule.
    let area = dx * (m.iter().sum::<f64>() - 0.5 * (m[0] + m[n - 1]));
    area.is_finite().then(|| area.clamp(0.0, 1.0))
}
