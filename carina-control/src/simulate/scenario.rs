//! The simulation: a [`Scenario`] (everything but the policy) runs one policy step by step until
//! every item is done, or compares several against the baseline.

use super::error::{SimError, check_range, invalid, policy_error};
use super::intensity::Intensity;
use super::machine::MachineModel;
use super::outcome::{Outcome, Report};
use super::profile::Profile;
use super::spec::SimSpec;
use super::tariffs::Tariffs;
use crate::Calendar;
use crate::policy::{self, Policy};
use jiff::{SignedDuration, Timestamp};
use std::collections::BTreeMap;
use std::fmt;

/// Default simulation step, seconds (steps are also cut at calendar boundaries and at the end).
pub const DEFAULT_STEP_S: i64 = 60;
/// The default start instant, 2024-01-08T00:00:00Z (a Monday), as Unix seconds.
pub const DEFAULT_START_UNIX_S: i64 = 1_704_672_000;

/// A simulation gives up (with [`SimError::NoProgress`]) after this many times the baseline
/// duration, or [`MIN_HORIZON_H`], whichever is longer.
pub const HORIZON_FACTOR: f64 = 20.0;
/// Shortest give-up horizon, hours (four weeks).
pub const MIN_HORIZON_H: f64 = 28.0 * 24.0;

/// Most steps one simulation takes before giving up with [`SimError::TooManySteps`]: one
/// policy ([`Scenario::run`]), or every policy of one comparison together
/// ([`Scenario::compare`]). A step ends at a calendar boundary, where the intensity changes, at
/// the end of a step of [`Scenario::step`] while a deadline's rescue is pending, or at the last
/// item. 3 million is about 5.7 years of a schedule whose slot changes every minute, day and
/// night, and takes about a second on a loaded 2-vCPU VM (0.3 µs a step): the bound on the time
/// of any simulation that issue 18 asks (under 2 s; the bench `simulate` of carina-control
/// measures such a schedule). A schedule with a few windows a day never comes near it.
pub const MAX_STEPS: u64 = 3_000_000;

/// How long the simulator waits before asking again a calendar that foresees no change.
const RECHECK_S: f64 = 7.0 * 86_400.0;

/// Steps are cut at the instant deadline rescue becomes due; an instant this close (seconds)
/// counts as reached, against the rounding of offsets to timestamps.
const CUT_TOLERANCE_S: f64 = 1e-6;

/// The default start instant: Monday 2024-01-08 00:00 UTC.
pub fn default_start() -> Timestamp {
    Timestamp::constant(DEFAULT_START_UNIX_S, 0)
}

/// Everything a simulation needs except the policy.
#[derive(Clone, Copy)]
pub struct Scenario<'a> {
    /// The workload.
    pub profile: &'a Profile,
    /// The machine model (calibrated against `profile` at each run).
    pub machine: MachineModel,
    /// Peak windows and tariffs.
    pub calendar: &'a dyn Calendar,
    /// Grid intensity over time.
    pub intensity: &'a dyn Intensity,
    /// Prices for slots the calendar gives none for.
    pub tariffs: Tariffs,
    /// When the cycle starts.
    pub start: Timestamp,
    /// Simulation step (steps are also cut at calendar boundaries and where the items run out).
    pub step: SignedDuration,
}

impl fmt::Debug for Scenario<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scenario")
            .field("profile", &self.profile)
            .field("machine", &self.machine)
            .field("tariffs", &self.tariffs)
            .field("start", &self.start)
            .field("step", &self.step)
            .finish_non_exhaustive()
    }
}

fn pct(x: f64, base: f64) -> f64 {
    if base == 0.0 {
        0.0
    } else {
        (x / base - 1.0) * 100.0
    }
}

impl<'a> Scenario<'a> {
    /// A scenario with the default machine model, tariffs, start and step.
    pub fn new(
        profile: &'a Profile,
        calendar: &'a dyn Calendar,
        intensity: &'a dyn Intensity,
    ) -> Self {
        Scenario {
            profile,
            machine: MachineModel::default(),
            calendar,
            intensity,
            tariffs: Tariffs::default(),
            start: default_start(),
            step: SignedDuration::from_secs(DEFAULT_STEP_S),
        }
    }

    /// Runs each spec and reports it against the baseline (run once more without a deadline
    /// if `specs` has none without a deadline).
    pub fn compare(&self, specs: &[SimSpec]) -> Result<Vec<Report>, SimError> {
        self.compare_bounded(specs, MAX_STEPS)
    }

    /// [`Scenario::compare`] with at most `max_steps` steps for all its policies together.
    pub(super) fn compare_bounded(
        &self,
        specs: &[SimSpec],
        max_steps: u64,
    ) -> Result<Vec<Report>, SimError> {
        // One budget of steps for the whole comparison, so that its time is bounded whatever
        // the number of policies.
        let mut used = 0;
        let outcomes = specs
            .iter()
            .map(|s| self.run_bounded(*s, max_steps, &mut used))
            .collect::<Result<Vec<_>, _>>()?;
        let base = match outcomes
            .iter()
            .find(|o| o.policy == Policy::Baseline && o.deadline.is_none())
        {
            Some(b) => b.clone(),
            None => self.run_bounded(Policy::Baseline.into(), max_steps, &mut used)?,
        };
        Ok(outcomes
            .into_iter()
            .map(|o| Report {
                energy_delta_pct: pct(o.energy_kwh, base.energy_kwh),
                makespan_delta_pct: pct(o.makespan_h, base.makespan_h),
                co2e_delta_pct: pct(o.co2e_kg, base.co2e_kg),
                cost_delta_pct: pct(o.cost, base.cost),
                outcome: o,
            })
            .collect())
    }

    fn at(&self, offset_s: f64) -> Timestamp {
        let ns = self.start.as_nanosecond() + (offset_s * 1e9).round() as i128;
        Timestamp::from_nanosecond(ns).unwrap_or(Timestamp::MAX)
    }

    fn offset_s(&self, t: Timestamp) -> f64 {
        t.duration_since(self.start).as_secs_f64()
    }

    /// Simulates one policy from [`Scenario::start`] until every item is done.
    ///
    /// Event-driven: the calendar is asked for the slot once per boundary
    /// ([`Calendar::next_change`]), and a stretch in which neither the slot, the intensity
    /// ([`Intensity::next_change`]) nor the rescue rule can change the workers is crossed in one
    /// step, so the work grows with the number of boundaries, not with the length of the
    /// cycle. At most [`MAX_STEPS`] steps are taken ([`SimError::TooManySteps`]
    /// beyond), which bounds the time any schedule takes. With a
    /// deadline the rescue instant moves with every step until rescue starts, so until then the
    /// simulation steps by [`Scenario::step`] as before.
    ///
    /// The workers in each step are what the governor would allow
    /// ([`MachineModel::workers`]: [`Policy::allowed`], capped at the max workers). With a
    /// deadline, the simulator plays an application that tells the governor, at the start of
    /// every step, the exact time its remaining work takes at nominal concurrency
    /// (`Governor::set_remaining_time`: the items left, warm-ups not yet paid and the warm-up
    /// of the workers that nominal concurrency would start). Rescue starts where the
    /// governor's rule says ([`policy::rescue_due`], at [`policy::rescue_start`] of the estimate
    /// last given, where the step is cut) and is sticky: at least the nominal workers run until
    /// the end.
    pub fn run(&self, spec: impl Into<SimSpec>) -> Result<Outcome, SimError> {
        self.run_bounded(spec.into(), MAX_STEPS, &mut 0)
    }

    /// [`Scenario::run`], counting its steps into `used` and failing once `used` passes
    /// `max_steps` (a budget shared by the policies of one comparison).
    pub(super) fn run_bounded(
        &self,
        spec: SimSpec,
        max_steps: u64,
        used: &mut u64,
    ) -> Result<Outcome, SimError> {
        spec.policy.validate().map_err(policy_error)?;
        let cal = self.machine.calibrate(self.profile)?;
        let step_s = self.step.as_secs_f64();
        if !(step_s.is_finite() && step_s >= 0.001) {
            return Err(invalid(
                "step",
                format!("must be at least 1 ms, got {step_s} s"),
            ));
        }
        let deadline_s = spec.deadline.map(|d| d.as_secs_f64());
        if let Some(d) = deadline_s
            && d <= 0.0
        {
            return Err(invalid(
                "deadline",
                format!("must be after the start, got {d} s"),
            ));
        }
        for (field, v) in [
            ("peak_per_kwh", self.tariffs.peak_per_kwh),
            ("offpeak_per_kwh", self.tariffs.offpeak_per_kwh),
        ] {
            check_range(field, v, 0.0, f64::MAX)?;
        }

        let items = self.profile.items as f64;
        let horizon_s = (self.profile.baseline_hours * HORIZON_FACTOR).max(MIN_HORIZON_H) * 3600.0;
        let machine = &self.machine;
        let nominal = machine.nominal_workers;
        let deadline_at = spec
            .deadline
            .map(|d| self.start.checked_add(d).unwrap_or(Timestamp::MAX));

        let mut t = 0.0_f64;
        let mut done = 0.0_f64;
        // Item-equivalents of warm-up still to be paid before workers produce items.
        let mut overhead = 0.0_f64;
        let mut prev: Option<u32> = None;
        let mut rescued_at: Option<f64> = None;
        // Where rescue starts under the estimate given at the start of the current step.
        let mut rescue_cut: Option<f64> = None;
        let mut next_boundary: Option<f64> = None;
        // The calendar's slot until `next_boundary` (the calendar says it holds until then).
        let mut slot = self.calendar.slot(self.start);
        let (mut idle_j, mut active_j, mut sleep_j, mut ramp_j, mut peak_j) =
            (0.0, 0.0, 0.0, 0.0, 0.0);
        let (mut co2_g, mut cost) = (0.0, 0.0);
        let (mut running_s, mut paused_s, mut worker_s) = (0.0, 0.0, 0.0);
        let mut changes = 0u32;
        let mut hours_at: BTreeMap<u32, f64> = BTreeMap::new();

        loop {
            if t > horizon_s {
                return Err(SimError::NoProgress {
                    policy: spec.policy.name(),
                    horizon_h: horizon_s / 3600.0,
                });
            }
            let now = self.at(t);
            if next_boundary.is_none_or(|b| b <= t) {
                // No change ahead (or a calendar that answers with the past): ask again in a
                // week; cutting a step there is harmless.
                next_boundary = Some(
                    self.calendar
                        .next_change(now)
                        .map(|b| self.offset_s(b))
                        .filter(|b| *b > t)
                        .unwrap_or(t + RECHECK_S),
                );
                slot = self.calendar.slot(now);
            }
            *used += 1;
            if *used > max_steps {
                return Err(SimError::TooManySteps {
                    policy: spec.policy.name(),
                    steps: max_steps,
                    hours: t / 3600.0,
                });
            }
            if let Some(deadline) = deadline_at
                && rescued_at.is_none()
            {
                // The governor reaches the rescue instant of the estimate it holds (the last
                // step was cut there) before it is told the new one.
                let reached = rescue_cut.is_some_and(|c| t >= c - CUT_TOLERANCE_S);
                // The remaining work at nominal concurrency, as the application tells it.
                let starting = nominal.saturating_sub(prev.unwrap_or(nominal));
                let left = overhead
                    + (items - done)
                    + f64::from(starting)
                        * machine.ramp_s
                        * cal.worker_items_per_s
                        * machine.efficiency(nominal);
                let remaining = SignedDuration::try_from_secs_f64(left / cal.items_per_s(nominal))
                    .unwrap_or(SignedDuration::MAX);
                let start_s = self.offset_s(policy::rescue_start(deadline, Some(remaining)));
                if reached
                    || policy::rescue_due(now, Some(deadline), Some(remaining))
                    || start_s <= t + CUT_TOLERANCE_S
                {
                    rescued_at = Some(t);
                } else {
                    rescue_cut = Some(start_s);
                }
            }
            let w = machine.workers(&spec.policy, slot, rescued_at.is_some());
            if let Some(p) = prev
                && p != w
            {
                changes += 1;
                if w > p {
                    overhead += f64::from(w - p)
                        * machine.ramp_s
                        * cal.worker_items_per_s
                        * machine.efficiency(w);
                }
            }
            prev = Some(w);

            // Step to the next multiple of the step after the start, the next calendar
            // boundary, the instant rescue becomes due, or the last item, whichever comes
            // first.
            let mut end = ((t / step_s).floor() + 1.0) * step_s;
            if end - t < 1e-6 {
                end += step_s;
            }
            if let Some(b) = next_boundary {
                end = end.min(b);
            }
            if rescued_at.is_none()
                && let Some(c) = rescue_cut
            {
                end = end.min(c);
            }
            // Event-driven: with no rescue instant to watch, nothing changes the workers or
            // the rates before the calendar's next boundary, and the intensity holds until its
            // own next change. Every whole step up to the earlier of the two is taken at once;
            // the intensity at their middle is the one each of them would sample.
            if deadline_at.is_none() || rescued_at.is_some() {
                let g_until = self
                    .intensity
                    .next_change(now)
                    .map_or(f64::INFINITY, |c| self.offset_s(c));
                let until = next_boundary.unwrap_or(f64::INFINITY).min(g_until);
                let whole = (until / step_s).floor() * step_s;
                if whole > end && whole.is_finite() {
                    end = whole;
                }
            }
            let mut dt = end - t;
            let rate = cal.items_per_s(w);
            let need = overhead + (items - done);
            let finished = rate > 0.0 && rate * dt >= need;
            if finished {
                dt = need / rate;
            }
            let capacity = rate * dt;
            let paid = overhead.min(capacity);
            overhead -= paid;
            done += capacity - paid;

            let power = cal.power_w(w);
            let e = power * dt;
            *hours_at.entry(w).or_insert(0.0) += dt / 3600.0;
            if w == 0 {
                sleep_j += e;
                paused_s += dt;
            } else {
                idle_j += cal.idle_w * dt;
                active_j += f64::from(w) * cal.active_w * dt;
                running_s += dt;
                worker_s += f64::from(w) * dt;
                ramp_j += paid / rate * power;
            }
            if slot.peak {
                peak_j += e;
            }
            let kwh = e / 3.6e6;
            co2_g += kwh * self.intensity.g_per_kwh(self.at(t + dt / 2.0));
            cost += kwh * self.tariffs.price(slot);
            if finished {
                t += dt;
                break;
            }
            // Exactly at the step's end, so that a boundary there is seen as reached.
            t = end;
        }

        let kwh = |j: f64| j / 3.6e6;
        Ok(Outcome {
            policy: spec.policy,
            deadline: spec.deadline,
            makespan_h: t / 3600.0,
            energy_kwh: kwh(idle_j + active_j + sleep_j),
            co2e_kg: co2_g / 1000.0,
            cost,
            idle_kwh: kwh(idle_j),
            active_kwh: kwh(active_j),
            sleep_kwh: kwh(sleep_j),
            ramp_kwh: kwh(ramp_j),
            peak_kwh: kwh(peak_j),
            running_h: running_s / 3600.0,
            paused_h: paused_s / 3600.0,
            changes,
            mean_workers: if running_s > 0.0 {
                worker_s / running_s
            } else {
                0.0
            },
            items_done: done,
            hours_at: hours_at.into_iter().collect(),
            finished_at: self.at(t),
            rescued_at_h: rescued_at.map(|r| r / 3600.0),
            deadline_met: deadline_s.map(|d| t <= d + 1e-6),
        })
    }

    /// [`Scenario::run`] as it was first written: one step of [`Scenario::step`] after another,
    /// asking the calendar for the slot at every step. Same results as `run` up to rounding
    /// (same model, same rescue rule), but its work grows with the number of steps: kept as the
    /// reference that `run` is tested and benchmarked against, not for use.
    #[doc(hidden)]
    pub fn run_stepwise(&self, spec: impl Into<SimSpec>) -> Result<Outcome, SimError> {
        let spec = spec.into();
        spec.policy.validate().map_err(policy_error)?;
        let cal = self.machine.calibrate(self.profile)?;
        let step_s = self.step.as_secs_f64();
        if !(step_s.is_finite() && step_s >= 0.001) {
            return Err(invalid(
                "step",
                format!("must be at least 1 ms, got {step_s} s"),
            ));
        }
        let deadline_s = spec.deadline.map(|d| d.as_secs_f64());
        if let Some(d) = deadline_s
            && d <= 0.0
        {
            return Err(invalid(
                "deadline",
                format!("must be after the start, got {d} s"),
            ));
        }
        for (field, v) in [
            ("peak_per_kwh", self.tariffs.peak_per_kwh),
            ("offpeak_per_kwh", self.tariffs.offpeak_per_kwh),
        ] {
            check_range(field, v, 0.0, f64::MAX)?;
        }

        let items = self.profile.items as f64;
        let horizon_s = (self.profile.baseline_hours * HORIZON_FACTOR).max(MIN_HORIZON_H) * 3600.0;
        let machine = &self.machine;
        let nominal = machine.nominal_workers;
        let deadline_at = spec
            .deadline
            .map(|d| self.start.checked_add(d).unwrap_or(Timestamp::MAX));

        let mut t = 0.0_f64;
        let mut done = 0.0_f64;
        // Item-equivalents of warm-up still to be paid before workers produce items.
        let mut overhead = 0.0_f64;
        let mut prev: Option<u32> = None;
        let mut rescued_at: Option<f64> = None;
        // Where rescue starts under the estimate given at the start of the current step.
        let mut rescue_cut: Option<f64> = None;
        let mut next_boundary: Option<f64> = None;
        let (mut idle_j, mut active_j, mut sleep_j, mut ramp_j, mut peak_j) =
            (0.0, 0.0, 0.0, 0.0, 0.0);
        let (mut co2_g, mut cost) = (0.0, 0.0);
        let (mut running_s, mut paused_s, mut worker_s) = (0.0, 0.0, 0.0);
        let mut changes = 0u32;
        let mut hours_at: BTreeMap<u32, f64> = BTreeMap::new();

        loop {
            if t > horizon_s {
                return Err(SimError::NoProgress {
                    policy: spec.policy.name(),
                    horizon_h: horizon_s / 3600.0,
                });
            }
            let now = self.at(t);
            if next_boundary.is_none_or(|b| b <= t) {
                // No change ahead (or a calendar that answers with the past): ask again in a
                // week; cutting a step there is harmless.
                next_boundary = Some(
                    self.calendar
                        .next_change(now)
                        .map(|b| self.offset_s(b))
                        .filter(|b| *b > t)
                        .unwrap_or(t + RECHECK_S),
                );
            }
            let slot = self.calendar.slot(now);
            if let Some(deadline) = deadline_at
                && rescued_at.is_none()
            {
                // The governor reaches the rescue instant of the estimate it holds (the last
                // step was cut there) before it is told the new one.
                let reached = rescue_cut.is_some_and(|c| t >= c - CUT_TOLERANCE_S);
                // The remaining work at nominal concurrency, as the application tells it.
                let starting = nominal.saturating_sub(prev.unwrap_or(nominal));
                let left = overhead
                    + (items - done)
                    + f64::from(starting)
                        * machine.ramp_s
                        * cal.worker_items_per_s
                        * machine.efficiency(nominal);
                let remaining = SignedDuration::try_from_secs_f64(left / cal.items_per_s(nominal))
                    .unwrap_or(SignedDuration::MAX);
                let start_s = self.offset_s(policy::rescue_start(deadline, Some(remaining)));
                if reached
                    || policy::rescue_due(now, Some(deadline), Some(remaining))
                    || start_s <= t + CUT_TOLERANCE_S
                {
                    rescued_at = Some(t);
                } else {
                    rescue_cut = Some(start_s);
                }
            }
            let w = machine.workers(&spec.policy, slot, rescued_at.is_some());
            if let Some(p) = prev
                && p != w
            {
                changes += 1;
                if w > p {
                    overhead += f64::from(w - p)
                        * machine.ramp_s
                        * cal.worker_items_per_s
                        * machine.efficiency(w);
                }
            }
            prev = Some(w);

            // Step to the next multiple of the step after the start, the next calendar
            // boundary, the instant rescue becomes due, or the last item, whichever comes
            // first.
            let mut end = ((t / step_s).floor() + 1.0) * step_s;
            if end - t < 1e-6 {
                end += step_s;
            }
            if let Some(b) = next_boundary {
                end = end.min(b);
            }
            if rescued_at.is_none()
                && let Some(c) = rescue_cut
            {
                end = end.min(c);
            }
            let mut dt = end - t;
            let rate = cal.items_per_s(w);
            let need = overhead + (items - done);
            let finished = rate > 0.0 && rate * dt >= need;
            if finished {
                dt = need / rate;
            }
            let capacity = rate * dt;
            let paid = overhead.min(capacity);
            overhead -= paid;
            done += capacity - paid;

            let power = cal.power_w(w);
            let e = power * dt;
            *hours_at.entry(w).or_insert(0.0) += dt / 3600.0;
            if w == 0 {
                sleep_j += e;
                paused_s += dt;
            } else {
                idle_j += cal.idle_w * dt;
                active_j += f64::from(w) * cal.active_w * dt;
                running_s += dt;
                worker_s += f64::from(w) * dt;
                ramp_j += paid / rate * power;
            }
            if slot.peak {
                peak_j += e;
            }
            let kwh = e / 3.6e6;
            co2_g += kwh * self.intensity.g_per_kwh(self.at(t + dt / 2.0));
            cost += kwh * self.tariffs.price(slot);
            t += dt;
            if finished {
                break;
            }
        }

        let kwh = |j: f64| j / 3.6e6;
        Ok(Outcome {
            policy: spec.policy,
            deadline: spec.deadline,
            makespan_h: t / 3600.0,
            energy_kwh: kwh(idle_j + active_j + sleep_j),
            co2e_kg: co2_g / 1000.0,
            cost,
            idle_kwh: kwh(idle_j),
            active_kwh: kwh(active_j),
            sleep_kwh: kwh(sleep_j),
            ramp_kwh: kwh(ramp_j),
            peak_kwh: kwh(peak_j),
            running_h: running_s / 3600.0,
            paused_h: paused_s / 3600.0,
            changes,
            mean_workers: if running_s > 0.0 {
                worker_s / running_s
            } else {
                0.0
            },
            items_done: done,
            hours_at: hours_at.into_iter().collect(),
            finished_at: self.at(t),
            rescued_at_h: rescued_at.map(|r| r / 3600.0),
            deadline_met: deadline_s.map(|d| t <= d + 1e-6),
        })
    }
}
