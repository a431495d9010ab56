//! The statistics of `carina compare`: the intervals of a change, over the step instances of
//! one run per side (a bootstrap or the delta method, plus an assumed run-to-run noise) or over
//! runs (a t-interval on the runs' spread pooled with that noise as a prior), at the confidence the gated rows share, and the small pieces they
//! need (a seeded PRNG, Student's t quantiles).

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

/// Standard errors of the log ratio (candidate over base) of energy/unit and of time/unit, from
/// the step instances of one run per side: a bootstrap (the 2.5th to 97.5th percentile width of
/// the resampled log ratios over 2 x 1.96, so a skewed few instances widen it), or the delta
/// method above [`BOOTSTRAP_MAX`] instances. `NaN` when no resample gives a finite ratio.
pub(super) fn instance_se(base: &[Sample], cand: &[Sample], seed: u64) -> (f64, f64) {
    if base.len() > BOOTSTRAP_MAX || cand.len() > BOOTSTRAP_MAX {
        return delta_se(base, cand);
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
        de.push((ce / be).ln());
        dt.push((ct / bt).ln());
    }
    let se = |mut v: Vec<f64>| {
        v.retain(|x| x.is_finite());
        if v.is_empty() {
            return f64::NAN;
        }
        v.sort_by(f64::total_cmp);
        (quantile_sorted(&v, 0.975) - quantile_sorted(&v, 0.025)) / (2.0 * 1.96)
    };
    (se(de), se(dt))
}

/// Delta-method standard errors of log(ratio of sums), for large samples.
fn delta_se(base: &[Sample], cand: &[Sample]) -> (f64, f64) {
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
    let se = |pick: fn(&Sample) -> f64| (var_log(base, pick) + var_log(cand, pick)).sqrt();
    (se(|s| s.energy), se(|s| s.time))
}

/// The variance one run's figure has between identical runs, on the log scale, as a row of
/// `share` of the run's energy sees it when the whole run's relative standard deviation is
/// `run_noise`: `run_noise^2 / share` (a row's noise grows as the square root of its part of
/// the run shrinks; measured in docs/CLI.md, "compare"). `share` is floored at 1e-6.
pub(super) fn run_noise_var(run_noise: f64, share: f64) -> f64 {
    run_noise * run_noise / share.clamp(1e-6, 1.0)
}

/// The interval (in %) of a change whose log ratio is `l` with standard error `se`, at the
/// normal quantile `z`.
pub(super) fn log_interval(l: f64, se: f64, z: f64) -> [f64; 2] {
    [
        100.0 * ((l - z * se).exp() - 1.0),
        100.0 * ((l + z * se).exp() - 1.0),
    ]
}

/// Relative change in percent.
pub(super) fn rel(base: f64, cand: f64) -> f64 {
    if base == 0.0 {
        if cand == 0.0 { 0.0 } else { f64::INFINITY }
    } else {
        100.0 * (cand / base - 1.0)
    }
}

/// The standard normal CDF, from the complementary error function of Abramowitz & Stegun
/// 7.1.26 (absolute error below 1.5e-7: ample for a quantile found by bisection).
fn normal_cdf(z: f64) -> f64 {
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erfc = poly * (-x * x).exp();
    if z >= 0.0 {
        1.0 - erfc / 2.0
    } else {
        erfc / 2.0
    }
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms; relative error near 1e-15).
fn ln_gamma(x: f64) -> f64 {
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1 - x) = π / sin(πx).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + 7.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The regularised incomplete beta function I_x(a, b), by its continued fraction (modified
/// Lentz), on the side of x where it converges fast.
fn inc_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front =
        (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    if x > (a + 1.0) / (a + b + 2.0) {
        return 1.0 - inc_beta(1.0 - x, b, a);
    }
    const TINY: f64 = 1e-300;
    let (mut c, mut d) = (1.0, 1.0 - (a + b) * x / (a + 1.0));
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..300 {
        let m = m as f64;
        let even = m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m));
        for num in [
            even,
            -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0)),
        ] {
            d = 1.0 + num * d;
            if d.abs() < TINY {
                d = TINY;
            }
            c = 1.0 + num / c;
            if c.abs() < TINY {
                c = TINY;
            }
            d = 1.0 / d;
            h *= d * c;
        }
        if (d * c - 1.0).abs() < 1e-14 {
            break;
        }
    }
    front * h / a
}

/// Student's t CDF with `df` degrees of freedom (normal above 1e6).
fn t_cdf(t: f64, df: f64) -> f64 {
    if df > 1e6 {
        return normal_cdf(t);
    }
    let tail = 0.5 * inc_beta(df / (df + t * t), df / 2.0, 0.5);
    if t >= 0.0 { 1.0 - tail } else { tail }
}

/// The `p` quantile (0.5 < p < 1) of Student's t with `df` degrees of freedom (below 1: df 1;
/// infinite or huge: the normal's), by bisection on [`t_cdf`].
pub(super) fn t_quantile(p: f64, df: f64) -> f64 {
    let df = if df.is_finite() { df.max(1.0) } else { 2e6 };
    let (mut lo, mut hi) = (0.0, 1.0);
    while t_cdf(hi, df) < p && hi < 1e12 {
        hi *= 2.0;
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if t_cdf(mid, df) < p {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo < 1e-9 * hi.max(1.0) {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// The Student t quantile of a two-sided interval that misses with probability `alpha` (0.05:
/// a 95 % interval), for `df` degrees of freedom (infinite: the normal's).
pub(super) fn t_two_sided(alpha: f64, df: f64) -> f64 {
    t_quantile(1.0 - alpha / 2.0, df)
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

/// The weight of the --run-noise prior in an interval over runs, in degrees of freedom: as much
/// as two runs' worth of spread. Weak on purpose: at 3 v 3 the runs' own spread has 4 degrees
/// of freedom and outweighs it, and each run added per side moves the estimate further towards
/// the measured noise. Chosen on 30 identical runs of a noisy host (docs/CLI.md, "compare"):
/// 1 gave 1.0 % false alarms at 3 v 3, 2 gave 0.8 %, 4 gave 1.1 %.
pub(super) const PRIOR_DF: f64 = 2.0;

/// What is assumed of a row's run-to-run noise before its runs are seen: the relative standard
/// deviation of one run's figure (`--run-noise / sqrt(share)`, on the log scale) and its weight
/// in degrees of freedom (0: no prior, the runs alone).
#[derive(Debug, Clone, Copy)]
pub(super) struct Prior {
    pub(super) sd: f64,
    pub(super) df: f64,
}

/// A t-interval over runs, one figure per run, on the logarithms when every figure is above 0
/// (else on the figures themselves, relative to the base's mean). The run-to-run variance is
/// estimated from the runs themselves, pooled over both sides (each side's squared deviations
/// from its own mean: the two sides share the host's noise under the null), with the prior
/// counted as `prior.df` more degrees of freedom at `prior.sd` (a scaled inverse chi-square
/// prior, so the interval is Student's t with `prior.df + runs - 2` degrees of freedom). So a
/// few quiet runs narrow the interval below the prior, a few noisy ones widen it, and three
/// runs that happen to agree cannot make it arbitrarily narrow (the false alarms of a Welch
/// interval on 3 v 3). Needs 3 runs in all, at least one per side. The interval misses with
/// probability `alpha` (two-sided).
pub(super) fn runs_interval(b: &[f64], c: &[f64], alpha: f64, prior: Prior) -> Option<RunsChange> {
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
    let ss = |v: f64, n: f64| if n > 1.0 { v * (n - 1.0) } else { 0.0 };
    // On the figures' own scale the prior's relative spread is taken relative to the base.
    let prior_var = if log {
        prior.sd * prior.sd
    } else {
        (prior.sd * mb).powi(2)
    };
    let prior_df = if prior_var.is_finite() && prior.df > 0.0 {
        prior.df
    } else {
        0.0
    };
    let df = prior_df + nb + nc - 2.0;
    if df <= 0.0 {
        return None;
    }
    let pooled = (prior_df * prior_var.max(0.0) + ss(vb, nb) + ss(vc, nc)) / df;
    let se = (pooled * (1.0 / nb + 1.0 / nc)).sqrt();
    let half = t_two_sided(alpha, df) * se;
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
        let (e1, _) = instance_se(&b, &c, 3);
        let (e2, _) = delta_se(&b, &c);
        assert!(e1 > 0.0 && (e1 / e2 - 1.0).abs() < 0.15, "{e1} {e2}");
    }

    #[test]
    fn t_quantiles_match_the_tables() {
        // 97.5th percentiles (two-sided 95 %), and 99.5th (two-sided 99 %).
        for (df, t) in [
            (1.0, 12.706),
            (2.0, 4.303),
            (4.0, 2.776),
            (10.0, 2.228),
            (30.0, 2.042),
        ] {
            let q = t_quantile(0.975, df);
            assert!((q - t).abs() < 2e-3, "df {df}: {q} vs {t}");
        }
        for (df, t) in [(2.0, 9.925), (4.0, 4.604), (20.0, 2.845)] {
            let q = t_quantile(0.995, df);
            assert!((q - t).abs() < 2e-3, "df {df}: {q} vs {t}");
        }
        assert!((t_quantile(0.975, f64::INFINITY) - 1.96).abs() < 1e-3);
        assert!((t_quantile(0.995, 1e9) - 2.5758).abs() < 1e-3);
        // Fractional degrees of freedom fall between their neighbours.
        let q = t_quantile(0.975, 4.5);
        assert!(q < 2.776 && q > 2.571, "{q}");
        // A 95 % interval, and a 98.75 % one (5 % shared by four).
        assert!((t_two_sided(0.05, 4.0) - 2.776).abs() < 2e-3);
        assert!((t_two_sided(0.0125, f64::INFINITY) - 2.498).abs() < 2e-3);
    }

    /// The pooled interval over runs: three quiet runs per side beat a 5 % prior (a +10 %
    /// change is caught), three noisy ones widen it beyond the prior, and the prior keeps three
    /// runs that happen to agree from making a very narrow interval.
    #[test]
    fn runs_interval_pools_the_runs_with_the_prior() {
        let prior = Prior {
            sd: 0.05,
            df: PRIOR_DF,
        };
        let none = Prior { sd: 0.05, df: 0.0 };
        let quiet = [1.00, 1.015, 0.985];
        let up: Vec<f64> = [1.01, 0.99, 1.02].iter().map(|x| x * 1.10).collect();
        let r = runs_interval(&quiet, &up, 0.025, prior).unwrap();
        assert!(r.ci[0] > 0.0 && (r.change - 10.7).abs() < 1.0, "{r:?}");
        // Width: the prior (0.05^2 x 2 df) and the runs' own squares (4 df) pooled over 6 df.
        let ss: f64 = [quiet.as_slice(), &up]
            .iter()
            .map(|xs| {
                let l: Vec<f64> = xs.iter().map(|x| x.ln()).collect();
                let (_, v) = mean_var(&l);
                2.0 * v
            })
            .sum();
        let se = ((2.0 * 0.0025 + ss) / 6.0 * (2.0 / 3.0)).sqrt();
        let half = t_two_sided(0.025, 6.0) * se;
        let d = (r.cand / r.base).ln();
        assert!(
            (100.0 * ((d + half).exp() - 1.0) - r.ci[1]).abs() < 1e-9,
            "{r:?}"
        );
        // Noisy runs (about 10 %): wider than the prior alone would make it.
        let noisy = [0.9, 1.0, 1.12];
        let w = |x: RunsChange| x.ci[1] - x.ci[0];
        let n = runs_interval(&noisy, &[1.0, 0.88, 1.1], 0.025, prior).unwrap();
        let p_only = runs_interval(&[1.0, 1.0, 1.0], &[1.0, 1.0, 1.0], 0.025, prior).unwrap();
        assert!(w(n) > w(p_only), "{n:?} {p_only:?}");
        // Three runs per side that agree to 0.1 %: the runs alone would call 3 % a change;
        // with the prior it is not.
        let b = [1.000, 1.001, 0.999];
        let c = [1.030, 1.031, 1.029];
        assert!(runs_interval(&b, &c, 0.025, none).unwrap().ci[0] > 0.0);
        assert!(runs_interval(&b, &c, 0.025, prior).unwrap().ci[0] < 0.0);
        // One side of one run still works (3 runs in all), two in all does not.
        assert!(runs_interval(&[1.0], &c, 0.025, prior).is_some());
        assert!(runs_interval(&[1.0], &[1.1], 0.025, prior).is_none());
    }
}
