//! One rule for turning a hardware energy counter into energy, shared by every probe that reads
//! one (RAPL through powercap and perf_event, NVML's total-energy counter).
//!
//! A counter only ever tells the energy modulo its range, at the moments it is read. Between two
//! reads it may have wrapped any number of times, been reset, stopped counting, or been
//! unreadable. [`diff`] classifies one interval; [`Reference`] keeps the recent power that may
//! decide how many whole wraps an interval hid; [`Counter`] follows one counter through a run and
//! says, in a [`ProbeReport`], what it could not count exactly.
//!
//! # The rule
//!
//! With `L` the previous value, `N` the new one, `R` the range, `t` the elapsed time and `P_max`
//! the domain's maximum plausible power ([`Limits::max_power`]); "`P_max·t`" below is
//! `P_max·(t + q)`, with `q` the counter's update step ([`Limits::quantum`]), since a counter
//! that moves in steps can show a whole step right after the previous read:
//!
//! 1. **Plain delta**: `N >= L`; the smallest energy is `d = N - L`.
//! 2. **Wrap or reset**: `N < L`. One wrap means `d = R - L + N`. That is a **reset** when it
//!    exceeds `P_max·t` (no wrap explains it), or when a trustworthy reference power says the wrap
//!    is far less plausible than a restart from zero: `d` above [`RESET_FACTOR`] times the highest
//!    power of the recent intervals (over `t`) while `N` lies below it. A reset counts `N`, the
//!    energy the counter proves since it restarted
//!    (0 if even `N` exceeds `P_max·t`); what came before the restart is lost, so the interval is
//!    counted low.
//! 3. **Extra wraps**: the candidates are `d + k·R`, and `P_max·t` allows `k <= k_max`. With
//!    `k_max = 0` the count is **certain**; only certain intervals feed the [`Reference`].
//!    Otherwise the reference band (the recent power times `t`, widened by how much the power
//!    varied and by the counter's update step) must contain exactly one candidate: the interval is
//!    then **resolved** with that `k`. Zero or several candidates in the band, or no trustworthy
//!    reference at all, make the interval **ambiguous**: it is counted at the smallest candidate,
//!    flagged as a lower bound, and a warning gives the possible range.
//!
//! The reference is never fed from a resolved, ambiguous or reset interval, nor while the counter
//! is stalled: an inference never feeds the next one. It decides nothing once its newest
//! interval is more than [`REFERENCE_MAX_AGE`] old.

use carina_runtime::energy::ProbeReport;
use carina_runtime::{Joules, Watts};
use std::collections::VecDeque;
use std::time::Duration;

/// The reference power is averaged over about this much time.
pub const REFERENCE_SPAN: Duration = Duration::from_secs(2);

/// Below this much counted time the reference power is not trusted, and power variations are
/// judged over chunks at least this long: a counter that updates in steps makes the power of a
/// shorter interval meaningless (one 0.15 J step seen 1 ms after the last read reads as 150 W).
pub const REFERENCE_MIN: Duration = Duration::from_millis(50);

/// A reference whose newest interval ended longer than this before the interval to decide
/// began is stale: the power it describes may have changed, so it decides nothing (a sampler
/// that stays slow gets flagged intervals, not guesses from a minute-old power).
pub const REFERENCE_MAX_AGE: Duration = Duration::from_secs(10);

/// At most this many intervals make up the reference window, however short they are.
pub const REFERENCE_MAX_INTERVALS: usize = 64;

/// Relative widening of the reference band on top of the power variation observed in the
/// window: a steady load still drifts by a few percent over seconds.
pub const REFERENCE_TOLERANCE: f64 = 0.10;

/// A drop is read as a reset rather than a wrap, on the reference's word, only when the wrap
/// would mean more than this many times the highest power of any recent interval, while the
/// value since a restart would not. The highest recent power, not the mean, so that a load that
/// swings between 100 and 200 W never turns its wraps into resets; twice it, so that only a
/// wrap far out of line with everything seen is refused.
pub const RESET_FACTOR: f64 = 2.0;

/// What a [`Counter`] needs to know about its hardware.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Where the counter wraps, in counter units (`2^64` for 64-bit counts, which do not wrap in
    /// practice: any drop is then a reset).
    pub range: u128,
    /// Counter units per joule (`1e6` for microjoules). A divisor rather than a factor, so that
    /// whole microjoules and millijoules convert to the nearest joule value exactly.
    pub units_per_joule: f64,
    /// The unit's name in messages: `µJ`, `mJ`, `counts`.
    pub unit: &'static str,
    /// The domain's maximum plausible average power: no interval is credited with more than this
    /// times its duration unless the counter itself shows more.
    pub max_power: Watts,
    /// How much a counter that moves in update steps can shift an interval's energy, as time at
    /// the reference power: its update period, with margin.
    pub quantum: Duration,
    /// How long the counter may keep its value before it is called stalled: far longer than its
    /// update period, since a powered domain always draws something.
    pub stall_after: Duration,
}

impl Limits {
    /// `P_max·(t + q)` in counter units: a counter that moves in update steps can show, over
    /// `t`, energy drawn up to one step before the interval began (a 0.15 J step seen 0.4 ms
    /// after the previous read is not 375 W).
    fn cap(&self, dt: Duration) -> f64 {
        self.max_power.0 * (dt.as_secs_f64() + self.quantum.as_secs_f64()) * self.units_per_joule
    }

    fn joules(&self, units: u128) -> f64 {
        units as f64 / self.units_per_joule
    }

    fn watts(&self, units: f64, dt: Duration) -> f64 {
        let s = dt.as_secs_f64();
        if s > 0.0 {
            units / self.units_per_joule / s
        } else {
            f64::INFINITY
        }
    }
}

/// The energy a trustworthy reference expects over one interval, in counter units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Band {
    /// Reference power times the interval.
    pub expected: f64,
    /// Lowest energy the reference allows.
    pub lo: f64,
    /// Highest energy the reference allows.
    pub hi: f64,
    /// The relative widening applied: [`REFERENCE_TOLERANCE`] plus the observed variation.
    pub tolerance: f64,
    /// [`RESET_FACTOR`] times the highest recent power, over the interval: a wrap above this is
    /// far less plausible than a restart from zero that stays below it.
    pub implausible: f64,
}

/// How one interval between two reads was counted; see the [module documentation](self).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Diff {
    /// The counter moved forward and no extra wrap fits under the bound: certain.
    Plain {
        /// Energy, counter units.
        units: u128,
    },
    /// The counter went down, one wrap explains it, and no extra wrap fits under the bound:
    /// certain.
    Wrap {
        /// Energy, counter units.
        units: u128,
    },
    /// Extra wraps were possible, and the reference band held exactly one candidate.
    Resolved {
        /// Energy, counter units.
        units: u128,
        /// Whole wraps counted beyond the smallest delta.
        extra_wraps: u128,
    },
    /// Extra wraps were possible and nothing decides how many: counted at the smallest
    /// candidate, a lower bound.
    Ambiguous {
        /// Energy counted (the smallest candidate), counter units.
        units: u128,
        /// The largest candidate the bound allows, counter units.
        max_units: u128,
        /// What the reference expected, if there is one, counter units.
        expected: Option<f64>,
    },
    /// The counter went down and no plausible wrap explains it: counted from zero, a lower
    /// bound.
    Reset {
        /// Energy counted: the new value, or 0 when even that exceeds the bound.
        units: u128,
        /// What one wrap would have meant, counter units.
        wrap_units: u128,
        /// Whether the reference (not the bound) ruled the wrap out.
        by_reference: bool,
    },
}

impl Diff {
    /// The energy counted for the interval, counter units.
    pub fn units(&self) -> u128 {
        match *self {
            Diff::Plain { units }
            | Diff::Wrap { units }
            | Diff::Resolved { units, .. }
            | Diff::Ambiguous { units, .. }
            | Diff::Reset { units, .. } => units,
        }
    }

    /// Whether no other count was possible under the bound; only such intervals feed the
    /// [`Reference`].
    pub fn certain(&self) -> bool {
        matches!(self, Diff::Plain { .. } | Diff::Wrap { .. })
    }

    /// Whether the interval may hold more energy than was counted.
    pub fn counted_low(&self) -> bool {
        matches!(self, Diff::Ambiguous { .. } | Diff::Reset { .. })
    }
}

/// Classifies the interval from `prev` to `now` over `dt`; see the [module documentation](self).
/// `band` is the reference's expectation for this interval, if a trustworthy one exists.
pub fn diff(prev: u64, now: u64, dt: Duration, limits: &Limits, band: Option<&Band>) -> Diff {
    let r = limits.range.max(1);
    let cap = limits.cap(dt);
    let (d, wrapped) = if now >= prev {
        (u128::from(now - prev), false)
    } else {
        let wrap_units = r
            .saturating_sub(u128::from(prev))
            .saturating_add(u128::from(now));
        let n = now as f64;
        let beyond_bound = wrap_units as f64 > cap;
        // A wrap would mean far more than the recent power, a restart from zero would not.
        let by_reference =
            band.is_some_and(|b| wrap_units as f64 > b.implausible && n <= b.implausible);
        if beyond_bound || by_reference {
            return Diff::Reset {
                units: if n <= cap { u128::from(now) } else { 0 },
                wrap_units,
                by_reference: !beyond_bound,
            };
        }
        (wrap_units, true)
    };
    let d_f = d as f64;
    let r_f = r as f64;
    // `as` saturates on overflow and maps NaN to 0, the safe side in both cases.
    let k_max = if cap > d_f {
        ((cap - d_f) / r_f).floor() as u128
    } else {
        0
    };
    if k_max == 0 {
        return if wrapped {
            Diff::Wrap { units: d }
        } else {
            Diff::Plain { units: d }
        };
    }
    let max_units = d.saturating_add(k_max.saturating_mul(r));
    let Some(b) = band else {
        return Diff::Ambiguous {
            units: d,
            max_units,
            expected: None,
        };
    };
    let k_lo = ((b.lo - d_f) / r_f).ceil().max(0.0);
    let k_hi = ((b.hi - d_f) / r_f).floor().min(k_max as f64);
    if k_lo == k_hi {
        let k = k_lo as u128;
        return Diff::Resolved {
            units: d.saturating_add(k.saturating_mul(r)),
            extra_wraps: k,
        };
    }
    Diff::Ambiguous {
        units: d,
        max_units,
        expected: Some(b.expected),
    }
}

/// The recent certain intervals of one counter: their mean power, and how much the power varied
/// over them, make the band that decides extra wraps and resets.
#[derive(Debug, Default, Clone)]
pub struct Reference {
    intervals: VecDeque<(u128, Duration)>,
    units: u128,
    time: Duration,
}

impl Reference {
    /// An empty reference: no expectation until [`REFERENCE_MIN`] of certain intervals.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a certain interval of `units` over `dt`; keeps about [`REFERENCE_SPAN`] of them
    /// (the newest always stays). Zero-length intervals carry nothing.
    pub fn push(&mut self, units: u128, dt: Duration) {
        if dt.is_zero() {
            return;
        }
        self.intervals.push_back((units, dt));
        self.units = self.units.saturating_add(units);
        self.time = self.time.saturating_add(dt);
        while let Some(&(e, t)) = self.intervals.front() {
            let enough = self.time.saturating_sub(t) >= REFERENCE_SPAN;
            if !(enough || self.intervals.len() > REFERENCE_MAX_INTERVALS) {
                break;
            }
            self.intervals.pop_front();
            self.units = self.units.saturating_sub(e);
            self.time = self.time.saturating_sub(t);
        }
    }

    /// Mean power of the window in counter units per second; `None` until it holds
    /// [`REFERENCE_MIN`] of time.
    pub fn units_per_sec(&self) -> Option<f64> {
        (self.time >= REFERENCE_MIN).then(|| self.units as f64 / self.time.as_secs_f64())
    }

    /// Counted time in the window.
    pub fn time(&self) -> Duration {
        self.time
    }

    /// The largest relative deviation from the mean power over chunks of at least
    /// [`REFERENCE_MIN`], after allowing each chunk one update step (`quantum` at the mean
    /// power): how much the power itself varied, not the counter's granularity.
    pub fn variation(&self, quantum: Duration) -> f64 {
        let Some(p) = self.units_per_sec() else {
            return 0.0;
        };
        let step = p * quantum.as_secs_f64();
        let mut worst = 0.0f64;
        let (mut e, mut t) = (0u128, Duration::ZERO);
        for &(ue, ut) in &self.intervals {
            e = e.saturating_add(ue);
            t = t.saturating_add(ut);
            if t < REFERENCE_MIN {
                continue;
            }
            let expected = p * t.as_secs_f64();
            if expected > 0.0 {
                let off = ((e as f64 - expected).abs() - step).max(0.0);
                worst = worst.max(off / expected);
            }
            (e, t) = (0, Duration::ZERO);
        }
        worst
    }

    /// The highest power of the window's chunks of at least [`REFERENCE_MIN`], in counter units
    /// per second (the mean when no chunk is that long).
    pub fn peak_units_per_sec(&self) -> Option<f64> {
        let mean = self.units_per_sec()?;
        let mut peak = mean;
        let (mut e, mut t) = (0u128, Duration::ZERO);
        for &(ue, ut) in &self.intervals {
            e = e.saturating_add(ue);
            t = t.saturating_add(ut);
            if t >= REFERENCE_MIN {
                peak = peak.max(e as f64 / t.as_secs_f64());
                (e, t) = (0, Duration::ZERO);
            }
        }
        Some(peak)
    }

    /// What the window expects over an interval of `dt`, or `None` without a trustworthy mean.
    pub fn band(&self, dt: Duration, quantum: Duration) -> Option<Band> {
        let p = self.units_per_sec()?;
        let peak = self.peak_units_per_sec().unwrap_or(p);
        let expected = p * dt.as_secs_f64();
        let tolerance = REFERENCE_TOLERANCE + self.variation(quantum);
        let step = p * quantum.as_secs_f64();
        Some(Band {
            expected,
            lo: (expected * (1.0 - tolerance) - step).max(0.0),
            hi: expected * (1.0 + tolerance) + step,
            tolerance,
            implausible: RESET_FACTOR * peak * dt.as_secs_f64() + step,
        })
    }
}

/// A run of ambiguous intervals, summed up in one warning when it ends.
#[derive(Debug, Clone, Copy)]
struct AmbiguousRun {
    from: Duration,
    to: Duration,
    intervals: u64,
    counted: u128,
    possible_extra: u128,
}

/// One energy counter followed through a run: its baseline, its total, its reference, and the
/// problems it met (failed reads, resets, ambiguous intervals, stalls), reported as warnings and
/// flags in a [`ProbeReport`].
///
/// Times are offsets from an origin of the caller's choosing (the probe's opening), and must not
/// go backwards (an earlier time counts as no time elapsed).
#[derive(Debug, Clone)]
pub struct Counter {
    domain: String,
    what: String,
    limits: Limits,
    /// Value and time of the last good read. Kept through failed reads, so that the next good
    /// read covers the gap.
    last: Option<(u64, Duration)>,
    total: u128,
    reference: Reference,
    /// When the newest interval of the reference ended.
    reference_end: Option<Duration>,
    /// When the value last changed (or was first read).
    changed_at: Duration,
    stalled: bool,
    /// Start and number of failed reads of the current failing streak.
    failing: Option<(Duration, u64)>,
    ambiguous: Option<AmbiguousRun>,
}

impl Counter {
    /// A counter for domain `domain` (`package-0`, `gpu-1`), described as `what` in messages
    /// (`intel-rapl:0/energy_uj`, `energy-pkg on CPU 0`); no value read yet.
    pub fn new(domain: impl Into<String>, what: impl Into<String>, limits: Limits) -> Self {
        Counter {
            domain: domain.into(),
            what: what.into(),
            limits,
            last: None,
            total: 0,
            reference: Reference::new(),
            reference_end: None,
            changed_at: Duration::ZERO,
            stalled: false,
            failing: None,
            ambiguous: None,
        }
    }

    /// [`new`](Self::new) with the first value already read at `at`: the baseline.
    pub fn with_first(mut self, value: u64, at: Duration) -> Self {
        self.last = Some((value, at));
        self.changed_at = at;
        self
    }

    /// The domain name given at creation.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The counter's limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Replaces the maximum plausible power.
    pub fn set_max_power(&mut self, max_power: Watts) {
        self.limits.max_power = max_power;
    }

    /// Energy counted since the baseline, counter units.
    pub fn total_units(&self) -> u128 {
        self.total
    }

    /// Energy counted since the baseline.
    pub fn joules(&self) -> Joules {
        Joules(self.limits.joules(self.total))
    }

    /// Time of the last good read, if any.
    pub fn last_read_at(&self) -> Option<Duration> {
        self.last.map(|(_, t)| t)
    }

    /// Start of the current failing streak, if the last read failed.
    pub fn failing_since(&self) -> Option<Duration> {
        self.failing.map(|(t, _)| t)
    }

    /// Whether the counter has kept its value for longer than [`Limits::stall_after`].
    pub fn is_stalled(&self) -> bool {
        self.stalled
    }

    /// The counter read `value` at `at`. Returns how the interval since the last good read was
    /// counted (`None` for the first read, which only sets the baseline); problems go into
    /// `report`.
    pub fn update(&mut self, value: u64, at: Duration, report: &mut ProbeReport) -> Option<Diff> {
        let recovered = self.failing.take();
        let Some((prev, prev_at)) = self.last else {
            self.last = Some((value, at));
            self.changed_at = at;
            if let Some((since, reads)) = recovered {
                report.warnings.push(format!(
                    "{}: readable again at {} after {reads} failed read(s) since {} ({}); \
                     counting starts from this first value",
                    self.domain,
                    secs(at),
                    secs(since),
                    self.what
                ));
            }
            return None;
        };
        // Time that goes backwards counts as no time.
        let at = at.max(prev_at);
        let dt = at - prev_at;
        if let Some((since, reads)) = recovered {
            report.warnings.push(format!(
                "{}: readable again after {reads} failed read(s) ({}-{}, {}); the whole gap is \
                 counted from the counter",
                self.domain,
                secs(since),
                secs(at),
                self.what
            ));
        }
        let fresh = self
            .reference_end
            .is_some_and(|end| prev_at.saturating_sub(end) <= REFERENCE_MAX_AGE);
        let band = self
            .reference
            .band(dt, self.limits.quantum)
            .filter(|_| fresh);
        let d = diff(prev, value, dt, &self.limits, band.as_ref());
        self.total = self.total.saturating_add(d.units());
        self.explain(&d, prev, value, prev_at, at, band.as_ref(), report);

        let was_stalled = self.stalled;
        // A value back where it was after whole wraps the rule counted has moved all the same.
        if value != prev || d.units() > 0 {
            if self.stalled {
                self.stalled = false;
                // What it did not count while it stood still never comes back.
                report.lower_bound = true;
                report.warnings.push(format!(
                    "{}: counter advancing again at {} after {} without moving ({}); what it \
                     shows now is counted, energy it did not count meanwhile is missing",
                    self.domain,
                    secs(at),
                    secs(at.saturating_sub(self.changed_at)),
                    self.what
                ));
            }
            self.changed_at = at;
        } else if !self.stalled && at.saturating_sub(self.changed_at) > self.limits.stall_after {
            self.stalled = true;
            report.warnings.push(format!(
                "{}: counter stalled: {} has not advanced since {} ({} by {}, while a live \
                 counter moves at least every {}); its energy from then on is missing and the \
                 figures are a lower bound",
                self.domain,
                self.what,
                secs(self.changed_at),
                secs(at.saturating_sub(self.changed_at)),
                secs(at),
                secs(self.limits.stall_after)
            ));
        }
        if self.stalled {
            report.missing = true;
        }
        if d.certain() && !was_stalled && !self.stalled && !dt.is_zero() {
            self.reference.push(d.units(), dt);
            self.reference_end = Some(at);
        }
        self.last = Some((value, at));
        Some(d)
    }

    /// A read of the counter failed at `at` with `error`. The baseline is kept, so the next good
    /// read covers the gap; every failed read counts in `report.read_errors`, the first of a
    /// streak gives a warning, and `report.missing` is set while the energy is not counted.
    pub fn failed(&mut self, at: Duration, error: &str, report: &mut ProbeReport) {
        report.read_errors += 1;
        report.missing = true;
        match &mut self.failing {
            Some((_, reads)) => *reads += 1,
            None => {
                self.failing = Some((at, 1));
                report.warnings.push(format!(
                    "{}: read failed at {} ({}: {error}); it keeps its last value {:.3} J until \
                     a read succeeds, which then counts the whole gap",
                    self.domain,
                    secs(at),
                    self.what,
                    self.joules().0
                ));
            }
        }
    }

    /// Warnings and flags for one interval, and the bookkeeping of ambiguous runs.
    #[allow(clippy::too_many_arguments)]
    fn explain(
        &mut self,
        d: &Diff,
        prev: u64,
        now: u64,
        from: Duration,
        to: Duration,
        band: Option<&Band>,
        report: &mut ProbeReport,
    ) {
        let l = &self.limits;
        let dt = to.saturating_sub(from);
        if let Diff::Ambiguous {
            units, max_units, ..
        } = *d
        {
            report.lower_bound = true;
            match &mut self.ambiguous {
                Some(run) => {
                    run.to = to;
                    run.intervals += 1;
                    run.counted = run.counted.saturating_add(units);
                    run.possible_extra = run
                        .possible_extra
                        .saturating_add(max_units.saturating_sub(units));
                }
                None => {
                    self.ambiguous = Some(AmbiguousRun {
                        from,
                        to,
                        intervals: 1,
                        counted: units,
                        possible_extra: max_units.saturating_sub(units),
                    });
                    let why = match band {
                        None => format!(
                            "no reference power from intervals that could not have wrapped \
                             (an interval is certain when it is shorter than the {:.3} J range \
                             takes at {} W)",
                            l.joules(l.range),
                            l.max_power.0
                        ),
                        Some(b) => format!(
                            "the recent {:.2} W (+-{:.0} %) expects {:.3} J, which does not single \
                             out one of them",
                            l.watts(b.expected, dt),
                            b.tolerance * 100.0,
                            l.joules(b.expected as u128)
                        ),
                    };
                    report.warnings.push(format!(
                        "{}: interval ambiguous, {}-{} ({} s, {}): the counter moved {:.3} J \
                         modulo its {:.3} J range, so {:.3} J plus any whole number of ranges up \
                         to {:.3} J under the {} W bound; {why}; counted {:.3} J, a lower bound \
                         (later ambiguous intervals of this counter are summed up when they stop)",
                        self.domain,
                        secs(from),
                        secs(to),
                        dt.as_secs_f64(),
                        self.what,
                        l.joules(units),
                        l.joules(l.range),
                        l.joules(units),
                        l.joules(max_units),
                        l.max_power.0,
                        l.joules(units)
                    ));
                }
            }
            return;
        }
        if let Some(run) = self.ambiguous.take()
            && run.intervals > 1
        {
            report.warnings.push(format!(
                "{}: ambiguous intervals ended: {} of them between {} and {} ({}), counted at \
                 {:.3} J, with up to {:.3} J more possible",
                self.domain,
                run.intervals,
                secs(run.from),
                secs(run.to),
                self.what,
                l.joules(run.counted),
                l.joules(run.possible_extra)
            ));
        }
        if let Diff::Reset {
            units,
            wrap_units,
            by_reference,
        } = *d
        {
            report.lower_bound = true;
            let why = match (by_reference, band) {
                (true, Some(b)) => format!(
                    "a wrap would mean {:.1} W, more than {RESET_FACTOR} times the most the \
                     recent intervals drew (a {:.1} W limit), while a restart from zero fits",
                    l.watts(wrap_units as f64, dt),
                    l.watts(b.implausible, dt)
                ),
                _ => format!(
                    "a wrap would mean {:.1} W, above the {} W bound",
                    l.watts(wrap_units as f64, dt),
                    l.max_power.0
                ),
            };
            report.warnings.push(format!(
                "{}: counter reset between {} and {} ({} went from {prev} to {now} {}): {why}; \
                 counted the {:.3} J it shows since the restart, a lower bound (the energy \
                 before the restart is lost)",
                self.domain,
                secs(from),
                secs(to),
                self.what,
                l.unit,
                l.joules(units)
            ));
        }
    }
}

/// `1.250 s`.
fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 10 J range in µJ, 2000 W, RAPL-like steps.
    fn limits(max_w: f64) -> Limits {
        Limits {
            range: 10_000_000,
            units_per_joule: 1e6,
            unit: "µJ",
            max_power: Watts(max_w),
            quantum: Duration::from_millis(10),
            stall_after: Duration::from_millis(250),
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A band for a steady `w` watts over `dt`, as a reference of one long interval gives it.
    fn band(w: f64, dt: Duration) -> Band {
        let mut r = Reference::new();
        r.push((w * 1e6) as u128, Duration::from_secs(1));
        r.band(dt, ms(10)).unwrap()
    }

    #[test]
    fn first_read_sets_the_baseline_only() {
        let mut c = Counter::new("package-0", "zone", limits(80.0));
        let mut rep = ProbeReport::default();
        assert_eq!(c.update(5, ms(0), &mut rep), None);
        assert_eq!(c.total_units(), 0);
        assert_eq!(
            c.update(9, ms(100), &mut rep),
            Some(Diff::Plain { units: 4 })
        );
        assert_eq!(c.total_units(), 4);
        assert!(rep.is_empty(), "{rep:?}");
    }

    #[test]
    fn plain_and_single_wrap_deltas_are_certain_under_a_tight_bound() {
        let l = limits(50.0);
        // 50 W x 0.1 s = 5 J: no second wrap of a 10 J range fits.
        let d = diff(5, 9, ms(100), &l, None);
        assert_eq!(d, Diff::Plain { units: 4 });
        assert!(d.certain());
        let d = diff(9_000_000, 1_000_000, ms(100), &l, None);
        assert_eq!(d, Diff::Wrap { units: 2_000_000 });
        assert!(d.certain() && !d.counted_low());
    }

    #[test]
    fn a_drop_beyond_the_bound_is_a_reset_counted_from_zero() {
        let l = limits(50.0);
        // One wrap would be 8 J in 0.1 s, 80 W.
        let d = diff(3_000_000, 1_000_000, ms(100), &l, None);
        assert_eq!(
            d,
            Diff::Reset {
                units: 1_000_000,
                wrap_units: 8_000_000,
                by_reference: false
            }
        );
        assert!(d.counted_low());
        // No time at all: a drop cannot be a wrap; the new value, within one update step's
        // energy, is what the counter proves.
        assert_eq!(
            diff(9, 1, Duration::ZERO, &l, None),
            Diff::Reset {
                units: 1,
                wrap_units: 10_000_000 - 8,
                by_reference: false
            }
        );
        // A new value beyond what the bound allows since a restart is not energy at all.
        assert_eq!(diff(9_000_000, 8_000_000, ms(100), &l, None).units(), 0);
    }

    #[test]
    fn a_drop_the_reference_finds_implausible_as_a_wrap_is_a_reset() {
        let l = limits(2000.0);
        let b = band(37.5, ms(100));
        // 3.75 J expected, and at most 7.875 J (twice 37.5 W, one update step); a wrap from 3 J
        // to 1.9 J would be 8.9 J (89 W); 1.9 J since a restart fits.
        let d = diff(3_000_000, 1_900_000, ms(100), &l, Some(&b));
        assert_eq!(
            d,
            Diff::Reset {
                units: 1_900_000,
                wrap_units: 8_900_000,
                by_reference: true
            }
        );
        // Near the top of the range the same drop is an ordinary wrap.
        let d = diff(8_000_000, 1_900_000, ms(100), &l, Some(&b));
        assert_eq!(d.units(), 3_900_000);
        assert!(!d.counted_low());
    }

    #[test]
    fn extra_wraps_need_a_band_with_exactly_one_candidate() {
        let l = limits(2000.0);
        // A 3 s gap at 30 W on a 10 J range: 90 J, shown as 0 J moved.
        let b = band(30.0, ms(3000));
        assert_eq!(
            diff(3, 3, ms(3000), &l, Some(&b)),
            Diff::Resolved {
                units: 90_000_000,
                extra_wraps: 9
            }
        );
        // Without a reference nothing decides: the smallest candidate, flagged.
        let d = diff(3, 3, ms(3000), &l, None);
        assert_eq!(
            d,
            Diff::Ambiguous {
                units: 0,
                // 2000 W over 3 s and one 10 ms update step.
                max_units: 6_020_000_000,
                expected: None
            }
        );
        assert!(d.counted_low());
        // A reference expecting 25 J (+-10 %) holds 20 J and 30 J: two candidates, ambiguous.
        let b = band(25.0, ms(1000));
        assert!(matches!(
            diff(3, 3, ms(1000), &l, Some(&b)),
            Diff::Ambiguous { units: 0, .. }
        ));
        // One expecting 14 J holds none: the reference is contradicted, ambiguous too.
        let b = band(14.0, ms(1000));
        assert!(matches!(
            diff(3, 3, ms(1000), &l, Some(&b)),
            Diff::Ambiguous { units: 0, .. }
        ));
    }

    #[test]
    fn extra_wraps_never_exceed_the_bound() {
        // 9 W expected over 2 s (18 J) with the 10 J counter 8.001 J further: 18.001 J fits
        // under 12 W (24 J), but not under 8.5 W (17 J), where 8.001 J is the only count left.
        let b = band(9.0, ms(2000));
        let d = diff(0, 8_001_000, ms(2000), &limits(12.0), Some(&b));
        assert_eq!(
            d,
            Diff::Resolved {
                units: 18_001_000,
                extra_wraps: 1
            }
        );
        let d = diff(0, 8_001_000, ms(2000), &limits(8.5), Some(&b));
        assert_eq!(d, Diff::Plain { units: 8_001_000 });
    }

    #[test]
    fn extreme_inputs_do_not_overflow() {
        let mut l = limits(f64::MAX);
        l.range = u128::from(u64::MAX) + 1;
        let d = diff(0, 1, Duration::MAX, &l, Some(&band(1e300, Duration::MAX)));
        assert!(d.units() >= 1);
        let d = diff(u64::MAX, 0, Duration::MAX, &l, None);
        assert!(d.units() >= 1);
        // A value above the range (a corrupt file) still gives a finite answer.
        l = limits(2000.0);
        l.range = 3;
        assert_eq!(diff(5, 1, ms(1), &l, None).units(), 1);
        // A tracker driven at absurd times and values answers without panicking.
        let mut c = Counter::new("x", "y", limits(2000.0)).with_first(0, ms(0));
        let mut rep = ProbeReport::default();
        for (v, t) in [(u64::MAX, Duration::MAX), (1, Duration::MAX), (0, ms(1))] {
            c.update(v, t, &mut rep);
            c.failed(t, "e", &mut rep);
        }
        assert!(c.total_units() > 0);
    }

    #[test]
    fn the_reference_ignores_short_intervals_and_keeps_two_seconds() {
        let mut r = Reference::new();
        // One 0.15 J step seen 1 ms after the last read: not a power to trust.
        r.push(150_000, ms(1));
        assert_eq!(r.units_per_sec(), None);
        r.push(3_000_000, ms(100));
        let p = r.units_per_sec().unwrap();
        assert!((p - 3.15e6 / 0.101).abs() < 1e-3, "{p}");
        r.push(5, Duration::ZERO);
        assert_eq!(r.intervals.len(), 2);
        for _ in 0..30 {
            r.push(1_000_000, ms(100));
        }
        assert_eq!(r.time(), Duration::from_secs(2));
        for _ in 0..1000 {
            r.push(1, Duration::from_micros(10));
        }
        assert_eq!(r.intervals.len(), REFERENCE_MAX_INTERVALS);
        r.push(10_000_000, Duration::from_secs(10));
        assert_eq!(r.intervals.len(), 1);
        assert!((r.units_per_sec().unwrap() - 1e6).abs() < 1e-6);
    }

    #[test]
    fn the_band_widens_with_the_power_variation_not_with_counter_steps() {
        let mut steady = Reference::new();
        // 30 W counted in 0.15 J steps: 19 to 21 steps per 100 ms.
        for n in [19u128, 20, 21, 20, 19, 21, 20, 20] {
            steady.push(n * 150_000, ms(100));
        }
        assert!(steady.variation(ms(10)) < 1e-9);
        let mut bursty = Reference::new();
        for w in [10u128, 50, 10, 50] {
            bursty.push(w * 100_000, ms(100));
        }
        let v = bursty.variation(ms(10));
        assert!(v > 0.5, "{v}");
        let b = bursty.band(ms(1000), ms(10)).unwrap();
        assert!(b.hi - b.lo > 0.6 * b.expected, "{b:?}");
    }

    #[test]
    fn the_reference_is_never_fed_by_ambiguous_or_resolved_intervals() {
        // 100 W bound on a 10 J range: intervals up to ~0.1 s are certain.
        let mut c = Counter::new("package-0", "zone", limits(100.0)).with_first(0, ms(0));
        let mut rep = ProbeReport::default();
        let mut raw = 0u64;
        let mut t = 0;
        for _ in 0..10 {
            raw += 3_000_000;
            t += 90;
            let d = c.update(raw % 10_000_000, ms(t), &mut rep).unwrap();
            assert!(d.certain(), "{d:?}");
        }
        let fed = c.reference.time();
        // A 2 s gap at the same power: resolved, and not fed.
        raw += 66_666_667;
        t += 2000;
        let d = c.update(raw % 10_000_000, ms(t), &mut rep).unwrap();
        assert!(matches!(d, Diff::Resolved { extra_wraps: 6, .. }), "{d:?}");
        assert_eq!(c.reference.time(), fed);
        // 45 J in 1.5 s: the band (50 J +-10 %) holds both 45 J and 55 J, so nothing decides;
        // counted at the smallest candidate (5 J), flagged, not fed.
        let before = c.total_units();
        raw += 45_000_000;
        t += 1500;
        let d = c.update(raw % 10_000_000, ms(t), &mut rep).unwrap();
        assert!(
            matches!(
                d,
                Diff::Ambiguous {
                    units: 5_000_000,
                    ..
                }
            ),
            "{d:?}"
        );
        assert_eq!(c.reference.time(), fed);
        assert_eq!(c.total_units(), before + 5_000_000);
        assert!(rep.lower_bound);
        assert!(
            rep.warnings
                .iter()
                .any(|w| w.starts_with("package-0: interval ambiguous")),
            "{:?}",
            rep.warnings
        );
    }

    #[test]
    fn a_stale_reference_decides_nothing_and_ambiguous_runs_are_summed_up() {
        // 100 W bound, 10 J range: 0.09 s intervals are certain, 1 s ones are not.
        let mut c = Counter::new("package-0", "zone", limits(100.0)).with_first(0, ms(0));
        let mut rep = ProbeReport::default();
        let mut raw = 0u64;
        let mut t = 0;
        for _ in 0..10 {
            raw += 2_700_000;
            t += 90;
            c.update(raw % 10_000_000, ms(t), &mut rep);
        }
        // 30 W seen; each later second holds 29 J, which the reference (30 J +-10 %) resolves
        // while it is fresh: up to intervals that start 10 s after its newest one ended (0.9 s).
        for _ in 0..11 {
            raw += 29_000_000;
            t += 1000;
            let d = c.update(raw % 10_000_000, ms(t), &mut rep).unwrap();
            assert!(matches!(d, Diff::Resolved { extra_wraps: 2, .. }), "{d:?}");
        }
        assert!(rep.is_empty(), "{rep:?}");
        // Past ten seconds without a certain interval, the 30 W is no longer evidence.
        for _ in 0..3 {
            raw += 29_000_000;
            t += 1000;
            let d = c.update(raw % 10_000_000, ms(t), &mut rep).unwrap();
            assert!(
                matches!(
                    d,
                    Diff::Ambiguous {
                        units: 9_000_000,
                        ..
                    }
                ),
                "{d:?}"
            );
        }
        assert!(rep.lower_bound);
        assert_eq!(rep.warnings.len(), 1, "one warning for the run: {rep:?}");
        // A certain interval ends the run, which is summed up.
        raw += 2_700_000;
        t += 90;
        let d = c.update(raw % 10_000_000, ms(t), &mut rep).unwrap();
        assert!(d.certain());
        assert_eq!(rep.warnings.len(), 2, "{rep:?}");
        assert!(
            rep.warnings[1].starts_with("package-0: ambiguous intervals ended: 3 of them"),
            "{rep:?}"
        );
    }

    #[test]
    fn failed_reads_keep_the_baseline_and_warn_once_per_streak() {
        let mut c = Counter::new("package-0", "zone", limits(90.0)).with_first(0, ms(0));
        let mut rep = ProbeReport::default();
        c.update(1_000_000, ms(100), &mut rep);
        for t in [200, 300, 400] {
            c.failed(ms(t), "permission denied", &mut rep);
        }
        assert_eq!(rep.read_errors, 3);
        assert!(rep.missing && !rep.lower_bound);
        assert_eq!(rep.warnings.len(), 1, "{:?}", rep.warnings);
        assert!(rep.warnings[0].contains("permission denied"));
        let mut rep = ProbeReport::default();
        // 0.4 s at 10 W since the last good read: counted across the gap.
        // Extra wraps fit under 90 W in 0.4 s; the 10 W seen before rules them out.
        assert_eq!(
            c.update(5_000_000, ms(500), &mut rep),
            Some(Diff::Resolved {
                units: 4_000_000,
                extra_wraps: 0
            })
        );
        assert_eq!(c.total_units(), 5_000_000);
        assert_eq!(rep.warnings.len(), 1, "{:?}", rep.warnings);
        assert!(rep.warnings[0].contains("readable again after 3 failed read(s)"));
        assert!(!rep.lower_bound && !rep.missing);
    }

    #[test]
    fn a_counter_that_keeps_its_value_is_stalled_until_it_moves() {
        // 40 W on a 10 J range: every interval here is certain, so only the stall is reported.
        let mut c = Counter::new("dram-0", "zone", limits(40.0)).with_first(7, ms(0));
        let mut rep = ProbeReport::default();
        c.update(7, ms(200), &mut rep);
        assert!(rep.is_empty());
        c.update(7, ms(300), &mut rep);
        // Missing while it stands still; counted low for good once it moves again.
        assert!(c.is_stalled() && rep.missing && !rep.lower_bound);
        assert!(
            rep.warnings[0].starts_with("dram-0: counter stalled"),
            "{rep:?}"
        );
        assert!(rep.warnings[0].contains("since 0.000 s"), "{rep:?}");
        let mut rep = ProbeReport::default();
        c.update(7, ms(400), &mut rep);
        assert!(rep.missing && rep.warnings.is_empty());
        let mut rep = ProbeReport::default();
        c.update(8, ms(500), &mut rep);
        assert!(!c.is_stalled() && !rep.missing && rep.lower_bound);
        assert!(rep.warnings[0].contains("advancing again"), "{rep:?}");
        // The interval across the stall does not feed the reference.
        assert_eq!(c.reference.time(), ms(200));
    }
}
