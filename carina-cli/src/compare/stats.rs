//! The statistics of `carina compare`: the 95 % intervals of a change, over the step instances
//! of one run per side (a bootstrap, or the delta method for large samples) or over runs (a
//! Welch t-interval), and the small pieces they need (a seeded PRNG, Student's t quantiles).

use crate::view::quantile_sorted;

/// Minimum instances per run for a statistical verdict.
pub(super) const MIN_INSTANCES: usize = 5;
/// Bootstrap resamples.
const RESAMPLES: usize = 2000;
/// Above this many instances, a delta-method interval replaces the bootstrap.
const BOOTSTRAP_MAX: usize = 5_000;

/// SplitMix64: a small, deterministic PRNG for the bootstrap.
pub(super) struct SplitMix64(u64);

impl SplitMix64 {
    pub(super) fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }
    pub(super) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform index below `n` (n > 0).
    pub(super) fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }
}

pub(super) fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// One step instance: energy, duration, and the unit it is divided by (items, or 1).
#[derive(Debug, Clone, Copy)]
pub(super) struct Sample {
    pub(super) energy: f64,
    pub(super) time: f64,
    pub(super) units: f64,
}

/// 95 % interval of the relative change (in %) of energy/unit and time/unit.
pub(super) fn interval(base: &[Sample], cand: &[Sample], seed: u64) -> ([f64; 2], [f64; 2]) {
    if base.len() > BOOTSTRAP_MAX || cand.len() > BOOTSTRAP_MAX {
        return delta_interval(base, cand);
    }
    let mut rng = SplitMix64::new(seed);
    let mut de = Vec::with_capacity(RESAMPLES);
    let mut dt = Vec::with_capacity(RESAMPLES);
    let resample = |xs: &[Sample], rng: &mut SplitMix64| {
        let (mut e, mut t, mut u) = (0.0, 0.0, 0.0);
        for _ in 0..xs.len() {
            let s = xs[rng.below(xs.len())];
            e += s.energy;
            t += s.time;
            u += s.units;
        }
        (e / u, t / u)
    };
    for _ in 0..RESAMPLES {
        let (be, bt) = resample(base, &mut rng);
        let (ce, ct) = resample(cand, &mut rng);
        de.push(rel(be, ce));
        dt.push(rel(bt, ct));
    }
    let ci = |mut v: Vec<f64>| {
        v.retain(|x| x.is_finite());
        v.sort_by(f64::total_cmp);
        [quantile_sorted(&v, 0.025), quantile_sorted(&v, 0.975)]
    };
    (ci(de), ci(dt))
}

/// Delta-method interval on log(ratio of sums), for large samples.
fn delta_interval(base: &[Sample], cand: &[Sample]) -> ([f64; 2], [f64; 2]) {
    // Variance of log(sum x / sum u) ~ var(x - r u) / (n * mean(u)^2 * r^2).
    let var_log = |xs: &[Sample], pick: fn(&Sample) -> f64| {
        let n = xs.len() as f64;
        let sx: f64 = xs.iter().map(pick).sum();
        let su: f64 = xs.iter().map(|s| s.units).sum();
        let r = sx / su;
        let mu = su / n;
        let v = xs
            .iter()
            .map(|s| (pick(s) - r * s.units).powi(2))
            .sum::<f64>()
            / (n - 1.0).max(1.0);
        v / (n * mu * mu * r * r)
    };
    let ratio_of = |xs: &[Sample], pick: fn(&Sample) -> f64| {
        xs.iter().map(pick).sum::<f64>() / xs.iter().map(|s| s.units).sum::<f64>()
    };
    let ci = |pick: fn(&Sample) -> f64| {
        let (rb, rc) = (ratio_of(base, pick), ratio_of(cand, pick));
        let se = (var_log(base, pick) + var_log(cand, pick)).sqrt();
        let l = (rc / rb).ln();
        [
            100.0 * ((l - 1.96 * se).exp() - 1.0),
            100.0 * ((l + 1.96 * se).exp() - 1.0),
        ]
    };
    (ci(|s| s.energy), ci(|s| s.time))
}

/// Relative change in percent.
pub(super) fn rel(base: f64, cand: f64) -> f64 {
    if base == 0.0 {
        if cand == 0.0 { 0.0 } else { f64::INFINITY }
    } else {
        100.0 * (cand / base - 1.0)
    }
}

/// 97.5th percentile of Student's t distribution with `df` degrees of freedom (a table to 30,
/// then 40, 60, 120 and the normal's 1.96, interpolated linearly in 1/df; below 1, df 1's).
pub(super) fn t975(df: f64) -> f64 {
    const T: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    if !df.is_finite() || df > 1e9 {
        return 1.96;
    }
    if df <= 1.0 {
        return T[0];
    }
    // (df, t) knots; interpolation in 1/df between neighbours.
    let knots: Vec<(f64, f64)> = (1..=30)
        .map(|i| (i as f64, T[i - 1]))
        .chain([(40.0, 2.021), (60.0, 2.000), (120.0, 1.980)])
        .collect();
    for w in knots.windows(2) {
        let ((d0, t0), (d1, t1)) = (w[0], w[1]);
        if df <= d1 {
            let f = (1.0 / d0 - 1.0 / df) / (1.0 / d0 - 1.0 / d1);
            return t0 + f * (t1 - t0);
        }
    }
    // Beyond 120: towards 1.96 at infinity.
    let f = 120.0 / df;
    1.96 + f * (1.980 - 1.96)
}

pub(super) fn mean_var(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let m = xs.iter().sum::<f64>() / n;
    let v = if xs.len() > 1 {
        xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        f64::NAN
    };
    (m, v)
}

/// A change between two sides of runs: the point (in %), its 95 % interval and each side's
/// centre (geometric mean of positive figures, else arithmetic mean).
#[derive(Debug, Clone, Copy)]
pub(super) struct RunsChange {
    pub(super) change: f64,
    pub(super) ci: [f64; 2],
    pub(super) base: f64,
    pub(super) cand: f64,
}

/// Welch t-interval over runs, one figure per run: on the logarithms when every figure is above
/// 0, else on the figures themselves (relative to the base's mean). Needs 3 runs in all, with at
/// least one per side; a side of one run borrows the other side's variance.
pub(super) fn runs_interval(b: &[f64], c: &[f64]) -> Option<RunsChange> {
    if b.is_empty() || c.is_empty() || b.len() + c.len() < 3 {
        return None;
    }
    let log = b.iter().chain(c).all(|x| *x > 0.0 && x.is_finite());
    let tr = |xs: &[f64]| -> Vec<f64> {
        if log {
            xs.iter().map(|x| x.ln()).collect()
        } else {
            xs.to_vec()
        }
    };
    let (lb, lc) = (tr(b), tr(c));
    let (mb, vb) = mean_var(&lb);
    let (mc, vc) = mean_var(&lc);
    let (nb, nc) = (b.len() as f64, c.len() as f64);
    let (se, df) = match (b.len() > 1, c.len() > 1) {
        (true, true) => {
            let (qb, qc) = (vb / nb, vc / nc);
            let se2 = qb + qc;
            let den = qb * qb / (nb - 1.0) + qc * qc / (nc - 1.0);
            let df = if den > 0.0 {
                se2 * se2 / den
            } else {
                nb + nc - 2.0
            };
            (se2.sqrt(), df)
        }
        (true, false) => ((vb * (1.0 / nb + 1.0 / nc)).sqrt(), nb - 1.0),
        (false, true) => ((vc * (1.0 / nb + 1.0 / nc)).sqrt(), nc - 1.0),
        (false, false) => return None,
    };
    let half = t975(df) * se;
    let d = mc - mb;
    if log {
        Some(RunsChange {
            change: 100.0 * (d.exp() - 1.0),
            ci: [
                100.0 * ((d - half).exp() - 1.0),
                100.0 * ((d + half).exp() - 1.0),
            ],
            base: mb.exp(),
            cand: mc.exp(),
        })
    } else if mb != 0.0 {
        Some(RunsChange {
            change: 100.0 * d / mb,
            ci: [100.0 * (d - half) / mb.abs(), 100.0 * (d + half) / mb.abs()],
            base: mb,
            cand: mc,
        })
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prng_is_deterministic_and_in_range() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        for _ in 0..1000 {
            let x = a.below(13);
            assert_eq!(x, b.below(13));
            assert!(x < 13);
        }
    }

    #[test]
    fn delta_and_bootstrap_agree_roughly() {
        let mk = |scale: f64, n: usize| -> Vec<Sample> {
            let mut r = SplitMix64::new(1);
            (0..n)
                .map(|_| {
                    let noise = (r.next_u64() % 1000) as f64 / 1000.0 - 0.5;
                    Sample {
                        energy: scale * (1.0 + 0.2 * noise) * 10.0,
                        time: 1.0,
                        units: 10.0,
                    }
                })
                .collect()
        };
        let b = mk(1.0, 400);
        let c = mk(1.1, 400);
        let (e1, _) = interval(&b, &c, 3);
        let (e2, _) = delta_interval(&b, &c);
        assert!((e1[0] - e2[0]).abs() < 1.5, "{e1:?} {e2:?}");
        assert!((e1[1] - e2[1]).abs() < 1.5, "{e1:?} {e2:?}");
    }
}
