//! The policy simulator: what one cycle of a recurrent batch job would cost under each policy.
//!
//! Input: a workload [`Profile`] (items, and the hours and kWh the cycle took at baseline), a
//! [`MachineModel`] (nominal workers, idle share of power, sleep power, contention, ramp cost), a
//! [`Calendar`] (peak windows, tariffs), an [`Intensity`] (grid g CO2e/kWh over time) and
//! [`Tariffs`] for slots whose calendar gives no price. [`Scenario::compare`] runs each
//! [`SimSpec`] (a [`Policy`] and an optional deadline) from the same start instant until every
//! item is done and reports makespan, energy, CO2e and cost, with deltas against the baseline.
//!
//! The policies are the governor's own [`Policy`] (parsed, named and defaulted the same way),
//! and the simulator uses the governor's arithmetic: the workers in each slot are
//! [`Policy::allowed`] for the nominal workers (capped at [`MachineModel::max_workers`]), so
//! rounding (up) and deadline rescue (at least nominal, from the instant
//! [`policy::rescue_due`] says, sticky) are exactly what `Governor` would allow. See
//! [`Scenario::run`] for how the remaining work is estimated.
//!
//! The machine model is calibrated so that the baseline policy reproduces the profile's hours and
//! kWh exactly; the other policies differ only through the model's assumptions. The model, every
//! default and how the results move when the defaults move are in `docs/CONTROL.md`
//! ("Simulator").
//!
//! ```
//! use carina_control::policy::Policy;
//! use carina_control::simulate::{ConstantIntensity, Profile, Scenario, WeekdayPeak};
//! let profile = Profile::new(1_480_000, 180.30, 48.67).unwrap();
//! let calendar = WeekdayPeak::default();
//! let intensity = ConstantIntensity(448.0);
//! let scenario = Scenario::new(&profile, &calendar, &intensity);
//! let reports = scenario.compare(&Policy::STANDARD.map(Into::into)).unwrap();
//! let baseline = &reports[0].outcome;
//! assert!((baseline.energy_kwh - 48.67).abs() < 1e-6);
//! assert!((baseline.co2e_kg - 21.80).abs() < 0.01);
//! // Policies parse as on the governor's command line.
//! let boost: Policy = "offpeak-boost:offpeak_factor=1.75".parse().unwrap();
//! let r = scenario.run(boost).unwrap();
//! assert!(r.energy_kwh < baseline.energy_kwh);
//! ```

use super::policy::{self, Policy, PolicyError};
use super::{Calendar, Slot};
use carina_runtime::reader::RunFile;
use carina_runtime::units::Seconds;
use jiff::{SignedDuration, Timestamp};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// Default nominal concurrency: the number of workers the baseline runs all the time.
pub const DEFAULT_NOMINAL_WORKERS: u32 = 8;
/// Default most workers the machine can run (hardware threads available to the job).
pub const DEFAULT_MAX_WORKERS: u32 = 16;
/// Default share of the baseline's mean power that does not depend on the number of workers.
pub const DEFAULT_IDLE_SHARE: f64 = 0.40;
/// Default power while paused, as a share of the idle power.
pub const DEFAULT_SLEEP_SHARE: f64 = 0.20;
/// Default throughput lost per extra worker: per-worker efficiency is `1 / (1 + c (w - 1))`.
pub const DEFAULT_CONTENTION: f64 = 0.005;
/// Default warm-up per started worker, seconds of a worker's time that produce no items.
pub const DEFAULT_RAMP_S: f64 = 120.0;
/// Default share of nominal workers `throttle` keeps in peak windows: the governor's
/// [`Policy::DEFAULT_THROTTLE_PEAK_FRACTION`].
pub const DEFAULT_THROTTLE_PEAK_FRACTION: f64 = Policy::DEFAULT_THROTTLE_PEAK_FRACTION;
/// Default multiple of nominal workers `offpeak-boost` runs off-peak: the governor's
/// [`Policy::DEFAULT_BOOST_OFFPEAK_FACTOR`].
pub const DEFAULT_BOOST_OFFPEAK_FACTOR: f64 = Policy::DEFAULT_BOOST_OFFPEAK_FACTOR;
/// Default share of nominal workers `offpeak-boost` keeps in peak windows (0: paused): the
/// governor's [`Policy::DEFAULT_BOOST_PEAK_FRACTION`].
pub const DEFAULT_BOOST_PEAK_FRACTION: f64 = Policy::DEFAULT_BOOST_PEAK_FRACTION;
/// Default price per kWh in peak windows, when the calendar gives none.
pub const DEFAULT_PEAK_TARIFF: f64 = 0.30;
/// Default price per kWh off-peak, when the calendar gives none.
pub const DEFAULT_OFFPEAK_TARIFF: f64 = 0.18;
/// Default simulation step, seconds (steps are also cut at calendar boundaries and at the end).
pub const DEFAULT_STEP_S: i64 = 60;
/// The default start instant, 2024-01-08T00:00:00Z (a Monday), as Unix seconds.
pub const DEFAULT_START_UNIX_S: i64 = 1_704_672_000;

/// A simulation gives up (with [`SimError::NoProgress`]) after this many times the baseline
/// duration, or [`MIN_HORIZON_H`], whichever is longer.
pub const HORIZON_FACTOR: f64 = 20.0;
/// Shortest give-up horizon, hours (four weeks).
pub const MIN_HORIZON_H: f64 = 28.0 * 24.0;

/// How long the simulator waits before asking again a calendar that foresees no change.
const RECHECK_S: f64 = 7.0 * 86_400.0;

/// Steps are cut at the instant deadline rescue becomes due; an instant this close (seconds)
/// counts as reached, against the rounding of offsets to timestamps.
const CUT_TOLERANCE_S: f64 = 1e-6;

/// The default start instant: Monday 2024-01-08 00:00 UTC.
pub fn default_start() -> Timestamp {
    Timestamp::constant(DEFAULT_START_UNIX_S, 0)
}

/// Why a simulation could not run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimError {
    /// A parameter is out of range.
    #[error("`{field}` {message}")]
    Invalid {
        /// The parameter (field name of the struct it belongs to).
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// A run file does not hold a usable profile.
    #[error("{path}: {message}")]
    Run {
        /// The run file.
        path: PathBuf,
        /// What is missing.
        message: String,
    },
    /// A policy had not finished after the give-up horizon (e.g. `defer` under a calendar that
    /// is always peak).
    #[error(
        "policy `{policy}` had not finished after {horizon_h:.0} simulated hours: the schedule leaves it (almost) no time to run; give it a deadline or use another schedule"
    )]
    NoProgress {
        /// The policy's name.
        policy: &'static str,
        /// The horizon, hours.
        horizon_h: f64,
    },
}

fn invalid(field: &'static str, message: impl Into<String>) -> SimError {
    SimError::Invalid {
        field,
        message: message.into(),
    }
}

/// Longest cycle the simulator accepts, hours (10 years).
pub const MAX_BASELINE_HOURS: f64 = 87_600.0;

fn check_positive(field: &'static str, x: f64) -> Result<(), SimError> {
    if x.is_finite() && x > 0.0 {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("must be a positive number, got {x}"),
        ))
    }
}

fn check_range(field: &'static str, x: f64, lo: f64, hi: f64) -> Result<(), SimError> {
    if x.is_finite() && (lo..=hi).contains(&x) {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("must be within {lo}..={hi}, got {x}"),
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Profile
// ---------------------------------------------------------------------------------------------

/// What one cycle of the job does at baseline: how many items, in how long, for how much energy.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Items the cycle processes.
    pub items: u64,
    /// Hours the cycle takes at baseline (nominal workers all the time).
    pub baseline_hours: f64,
    /// Energy of the cycle at baseline, kWh.
    pub baseline_kwh: f64,
    /// False when taken from a run that did not finish (no `run_end`): the figures cover only
    /// what the run recorded.
    pub complete: bool,
    /// Where the figures come from and what limits them, in words.
    pub notes: Vec<String>,
}

impl Profile {
    /// A profile given directly. All three figures must be positive.
    pub fn new(items: u64, baseline_hours: f64, baseline_kwh: f64) -> Result<Self, SimError> {
        let p = Profile {
            items,
            baseline_hours,
            baseline_kwh,
            complete: true,
            notes: Vec::new(),
        };
        p.validate()?;
        Ok(p)
    }

    /// The profile of a recorded run: items are `run_end.items` (else, for a run that did not
    /// finish, the items of its progress step up to the run's cut, [`RunFile::progress_until`]
    /// and [`RunFile::partial_cut_s`]), hours are `run_end.wall_s` (else the cut: the end of the
    /// last `power` window, or of the last step without them) and energy is
    /// `run_end.energy_j` (else the sum of the `power` records, or without them the steps' own
    /// energy, which leaves out unattributed energy). A run without `run_end` gives a profile
    /// with `complete: false` and a note saying so.
    pub fn from_run(run: &RunFile) -> Result<Self, SimError> {
        let err = |message: String| SimError::Run {
            path: run.path.clone(),
            message,
        };
        let mut notes = Vec::new();
        let largest_total = || -> (u64, &'static str) {
            if let Some(m) = run.summaries.iter().map(|s| s.items).max() {
                return (m, "step summaries");
            }
            let mut per_name: BTreeMap<&str, u64> = BTreeMap::new();
            for s in &run.steps {
                *per_name.entry(&s.name).or_default() += s.items;
            }
            (
                per_name.values().copied().max().unwrap_or(0),
                "step records",
            )
        };
        let (items, wall_s, energy_j) = match &run.end {
            Some(end) => {
                let items = if end.items > 0 {
                    end.items
                } else {
                    let (n, from) = largest_total();
                    if n > 0 {
                        notes.push(format!(
                            "run_end.items is 0; items taken from the largest per-step total in the {from}"
                        ));
                    }
                    n
                };
                (items, end.wall_s, end.energy_j)
            }
            None => {
                // One cut for every figure (docs/CLI.md): the end of the last power window, else
                // the last step's end; items, time and energy all stop there.
                let cut = run.partial_cut_s().unwrap_or(Seconds::ZERO);
                let progress = run.progress_until(cut);
                let items = progress.as_ref().map_or(0, |p| p.items);
                let (wall_s, energy_j, energy_from) = match run.power_totals() {
                    Some((e, end)) => (end, e, "power records: all of it"),
                    None => (
                        cut,
                        if run.summaries.is_empty() {
                            run.steps
                                .iter()
                                .filter(|s| s.end_s <= cut)
                                .map(|s| s.self_energy_j)
                                .sum()
                        } else {
                            run.summaries.iter().map(|s| s.self_energy_j).sum()
                        },
                        "steps' own energy; unattributed energy unknown",
                    ),
                };
                notes.push(format!(
                    "the run did not finish (no run_end): the profile covers what it recorded: \
                     {items} items (progress step `{}`) in {:.2} h for {:.3} kWh ({energy_from})",
                    progress.as_ref().map_or("-", |p| p.name.as_str()),
                    wall_s.0 / 3600.0,
                    energy_j.kwh()
                ));
                (items, wall_s, energy_j)
            }
        };
        if items == 0 {
            return Err(err(
                "no items recorded (run_end.items is 0 and no step counted items); give --items"
                    .into(),
            ));
        }
        if !(wall_s.0.is_finite() && wall_s.0 > 0.0) {
            return Err(err(format!("no duration recorded (wall time {wall_s})")));
        }
        if !(energy_j.0.is_finite() && energy_j.0 > 0.0) {
            return Err(err(format!("no energy recorded ({energy_j})")));
        }
        let mut p = Profile::new(items, wall_s.0 / 3600.0, energy_j.kwh())?;
        p.complete = run.end.is_some();
        notes.insert(
            0,
            format!(
                "profile from run `{}` of job `{}` ({})",
                run.start.run_id,
                run.start.job,
                run.path.display()
            ),
        );
        p.notes = notes;
        Ok(p)
    }

    /// Mean power at baseline, watts.
    pub fn mean_w(&self) -> f64 {
        self.baseline_kwh * 1000.0 / self.baseline_hours
    }

    /// Wall time per item at baseline, seconds (the whole machine's throughput, not a worker's).
    pub fn seconds_per_item(&self) -> f64 {
        self.baseline_hours * 3600.0 / self.items as f64
    }

    fn validate(&self) -> Result<(), SimError> {
        if self.items == 0 {
            return Err(invalid("items", "must be at least 1"));
        }
        check_positive("baseline_hours", self.baseline_hours)?;
        if self.baseline_hours > MAX_BASELINE_HOURS {
            // The simulation walks the schedule window by window: a horizon of 1e9 hours would
            // run for hours. Ten years covers any recurrent cycle.
            return Err(invalid(
                "baseline_hours",
                format!(
                    "{} h is beyond the {MAX_BASELINE_HOURS} h (10 years) the simulator covers; \
                     simulate one cycle, or a part of it and scale",
                    self.baseline_hours
                ),
            ));
        }
        check_positive("baseline_kwh", self.baseline_kwh)
    }
}

// ---------------------------------------------------------------------------------------------
// Machine model
// ---------------------------------------------------------------------------------------------

/// The machine's power and throughput as functions of the number of active workers, in shares
/// of the baseline; [`MachineModel::calibrate`] turns it into watts and items per second for a
/// profile. Defaults: the `DEFAULT_*` constants, reasoned in `docs/CONTROL.md`.
///
/// With `w` workers running: throughput `w * r * e(w)` with `e(w) = 1 / (1 + contention (w-1))`,
/// power `idle_w + w * active_w`; paused (`w = 0`): power `sleep_w`. Each started worker first
/// spends `ramp_s` seconds producing nothing while drawing power.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MachineModel {
    /// Workers the baseline runs all the time (and the unit policies scale).
    pub nominal_workers: u32,
    /// Most workers the machine can run (caps `offpeak-boost`).
    pub max_workers: u32,
    /// Share of the baseline's mean power that is paid whenever at least one worker runs,
    /// whatever the count (platform, uncore, memory, the job's coordinator and I/O), 0..1.
    pub idle_share: f64,
    /// Power while paused, as a share of the idle power, 0..=1 (1: pausing saves nothing).
    pub sleep_share: f64,
    /// Throughput lost per extra worker (memory bandwidth, caches, locks), >= 0.
    pub contention: f64,
    /// Seconds each started worker spends warming up (loading state, cold caches) before it
    /// produces items, while drawing its power. >= 0.
    pub ramp_s: f64,
}

impl Default for MachineModel {
    fn default() -> Self {
        MachineModel {
            nominal_workers: DEFAULT_NOMINAL_WORKERS,
            max_workers: DEFAULT_MAX_WORKERS,
            idle_share: DEFAULT_IDLE_SHARE,
            sleep_share: DEFAULT_SLEEP_SHARE,
            contention: DEFAULT_CONTENTION,
            ramp_s: DEFAULT_RAMP_S,
        }
    }
}

impl MachineModel {
    /// Per-worker efficiency with `workers` running: `1 / (1 + contention (workers - 1))`
    /// (1 for one worker; 0 workers give 0).
    pub fn efficiency(&self, workers: u32) -> f64 {
        if workers == 0 {
            0.0
        } else {
            1.0 / (1.0 + self.contention * f64::from(workers - 1))
        }
    }

    /// Checks every field's range.
    pub fn validate(&self) -> Result<(), SimError> {
        if self.nominal_workers == 0 {
            return Err(invalid("nominal_workers", "must be at least 1"));
        }
        if self.max_workers < self.nominal_workers {
            return Err(invalid(
                "max_workers",
                format!(
                    "must be at least nominal_workers ({}), got {}",
                    self.nominal_workers, self.max_workers
                ),
            ));
        }
        if !(self.idle_share.is_finite() && (0.0..1.0).contains(&self.idle_share)) {
            return Err(invalid(
                "idle_share",
                format!(
                    "must be at least 0 and below 1 (a share of the baseline's mean power), got {}",
                    self.idle_share
                ),
            ));
        }
        check_range("sleep_share", self.sleep_share, 0.0, 1.0)?;
        check_range("contention", self.contention, 0.0, 10.0)?;
        check_range("ramp_s", self.ramp_s, 0.0, 86_400.0)
    }

    /// Watts and rates for `profile`, chosen so that the nominal workers, running all the time,
    /// process `profile.items` in exactly `profile.baseline_hours` for exactly
    /// `profile.baseline_kwh`.
    pub fn calibrate(&self, profile: &Profile) -> Result<Calibrated, SimError> {
        self.validate()?;
        profile.validate()?;
        let n = self.nominal_workers;
        let mean_w = profile.mean_w();
        let idle_w = self.idle_share * mean_w;
        let active_w = (mean_w - idle_w) / f64::from(n);
        let baseline_s = profile.baseline_hours * 3600.0;
        let worker_items_per_s =
            profile.items as f64 / (baseline_s * f64::from(n) * self.efficiency(n));
        Ok(Calibrated {
            model: *self,
            idle_w,
            active_w,
            sleep_w: self.sleep_share * idle_w,
            worker_items_per_s,
        })
    }
}

/// A [`MachineModel`] in absolute terms for one profile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Calibrated {
    /// The model it was calibrated from.
    pub model: MachineModel,
    /// Power paid whenever at least one worker runs, W.
    pub idle_w: f64,
    /// Power of each running worker, W.
    pub active_w: f64,
    /// Power while paused, W.
    pub sleep_w: f64,
    /// Items per second of one worker at efficiency 1.
    pub worker_items_per_s: f64,
}

impl Calibrated {
    /// Machine power with `workers` running (0: paused), W.
    pub fn power_w(&self, workers: u32) -> f64 {
        if workers == 0 {
            self.sleep_w
        } else {
            self.idle_w + f64::from(workers) * self.active_w
        }
    }

    /// Items per second with `workers` running.
    pub fn items_per_s(&self, workers: u32) -> f64 {
        f64::from(workers) * self.worker_items_per_s * self.model.efficiency(workers)
    }

    /// Energy per item with `workers` running all the time (ramps aside), J.
    pub fn joules_per_item(&self, workers: u32) -> f64 {
        if workers == 0 {
            f64::INFINITY
        } else {
            self.power_w(workers) / self.items_per_s(workers)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Policies: the governor's
// ---------------------------------------------------------------------------------------------

impl MachineModel {
    /// Workers `policy` runs in `slot` (0: paused): exactly what the governor allows
    /// ([`Policy::allowed`] for [`MachineModel::nominal_workers`], with `rescue` when deadline
    /// rescue is on), capped at [`MachineModel::max_workers`]. Rescue gives at least the nominal
    /// workers, which the cap never cuts (`max_workers >= nominal_workers`).
    pub fn workers(&self, policy: &Policy, slot: Slot, rescue: bool) -> u32 {
        policy
            .allowed(slot, self.nominal_workers, rescue)
            .min(self.max_workers)
    }
}

/// A policy's parameters out of range, as a [`SimError::Invalid`] naming the parameter
/// (`peak_fraction`, `offpeak_factor`).
fn policy_error(e: PolicyError) -> SimError {
    match e {
        PolicyError::BadParameter {
            key, value, reason, ..
        } => invalid(key, format!("{reason}, got {value}")),
        other => invalid("policy", other.to_string()),
    }
}

/// A policy to simulate, with an optional deadline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimSpec {
    /// The policy: the governor's [`Policy`], with its parameters.
    pub policy: Policy,
    /// Time after the start by which every item must be done: what the governor is given with
    /// `Governor::set_deadline`. Deadline rescue follows the governor's rule
    /// ([`policy::rescue_due`]); see [`Scenario::run`].
    pub deadline: Option<SignedDuration>,
}

impl SimSpec {
    /// `policy` with a deadline `hours` after the start. Hours beyond what a duration holds
    /// saturate; a deadline that is not positive (or NaN) is rejected by [`Scenario::run`].
    pub fn with_deadline_hours(policy: Policy, hours: f64) -> Self {
        let deadline =
            SignedDuration::try_from_secs_f64(hours * 3600.0).unwrap_or(if hours > 0.0 {
                SignedDuration::MAX
            } else {
                SignedDuration::ZERO
            });
        SimSpec {
            policy,
            deadline: Some(deadline),
        }
    }
}

impl From<Policy> for SimSpec {
    fn from(policy: Policy) -> Self {
        SimSpec {
            policy,
            deadline: None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tariffs, intensity, the default calendar
// ---------------------------------------------------------------------------------------------

/// Prices per kWh for slots whose calendar gives none.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tariffs {
    /// Price per kWh in peak windows.
    pub peak_per_kwh: f64,
    /// Price per kWh off-peak.
    pub offpeak_per_kwh: f64,
}

impl Default for Tariffs {
    fn default() -> Self {
        Tariffs {
            peak_per_kwh: DEFAULT_PEAK_TARIFF,
            offpeak_per_kwh: DEFAULT_OFFPEAK_TARIFF,
        }
    }
}

impl Tariffs {
    /// The price in `slot`: the calendar's if it has one, else this table's.
    pub fn price(&self, slot: Slot) -> f64 {
        slot.tariff_per_kwh.unwrap_or(if slot.peak {
            self.peak_per_kwh
        } else {
            self.offpeak_per_kwh
        })
    }
}

/// Grid carbon intensity over time.
pub trait Intensity {
    /// Grams CO2e per kWh at `t`.
    fn g_per_kwh(&self, t: Timestamp) -> f64;
}

/// The same intensity at all times, g CO2e/kWh.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConstantIntensity(pub f64);

impl Intensity for ConstantIntensity {
    fn g_per_kwh(&self, _t: Timestamp) -> f64 {
        self.0
    }
}

/// A daily profile: one intensity per UTC hour of the day, the same every day.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HourlyIntensity {
    /// g CO2e/kWh for hours 00..23 UTC.
    pub g_per_kwh: [f64; 24],
}

impl Intensity for HourlyIntensity {
    fn g_per_kwh(&self, t: Timestamp) -> f64 {
        let hour = t.as_second().rem_euclid(86_400) / 3600;
        self.g_per_kwh[hour as usize]
    }
}

/// Any `Fn(Timestamp) -> f64` is an intensity (e.g. `|t| series.at(t).0` for a
/// [`carina_runtime::carbon::IntensitySeries`]).
impl<F: Fn(Timestamp) -> f64> Intensity for F {
    fn g_per_kwh(&self, t: Timestamp) -> f64 {
        self(t)
    }
}

/// The default schedule: peak Monday to Friday from `start_hour` to `end_hour` UTC (08:00 to
/// 20:00 by default), off-peak otherwise (nights and weekends). It gives no tariffs, so the
/// simulator's [`Tariffs`] apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeekdayPeak {
    /// Hour (UTC, 0..=23) the weekday peak window opens.
    pub start_hour: u8,
    /// Hour (UTC, 1..=24, after `start_hour`) the weekday peak window closes.
    pub end_hour: u8,
}

impl Default for WeekdayPeak {
    fn default() -> Self {
        WeekdayPeak {
            start_hour: 8,
            end_hour: 20,
        }
    }
}

impl WeekdayPeak {
    /// Describes the windows, e.g. `Mon-Fri 08:00-20:00 UTC`.
    pub fn describe(&self) -> String {
        format!(
            "Mon-Fri {:02}:00-{:02}:00 UTC",
            self.start_hour, self.end_hour
        )
    }

    fn bounds_s(&self) -> (i64, i64) {
        let s = i64::from(self.start_hour.min(23)) * 3600;
        let e = i64::from(self.end_hour.clamp(self.start_hour.min(23) + 1, 24)) * 3600;
        (s, e)
    }
}

/// Monday = 0 .. Sunday = 6 of the UTC day `day` (days since 1970-01-01, a Thursday).
fn weekday(day: i64) -> i64 {
    (day + 3).rem_euclid(7)
}

impl Calendar for WeekdayPeak {
    fn slot(&self, t: Timestamp) -> Slot {
        let secs = t.as_second();
        let day = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let (s, e) = self.bounds_s();
        Slot {
            peak: weekday(day) < 5 && (s..e).contains(&sod),
            tariff_per_kwh: None,
        }
    }

    fn next_change(&self, t: Timestamp) -> Option<Timestamp> {
        let secs = t.as_second();
        let today = secs.div_euclid(86_400);
        let (s, e) = self.bounds_s();
        (today..today + 8)
            .filter(|d| weekday(*d) < 5)
            .flat_map(|d| [d * 86_400 + s, d * 86_400 + e])
            .find(|b| *b > secs)
            .and_then(|b| Timestamp::from_second(b).ok())
    }
}

// ---------------------------------------------------------------------------------------------
// The simulation
// ---------------------------------------------------------------------------------------------

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

/// What one policy did over the cycle.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The policy.
    pub policy: Policy,
    /// Its deadline, if any.
    pub deadline: Option<SignedDuration>,
    /// Hours from the start until the last item was done.
    pub makespan_h: f64,
    /// Energy over the makespan, kWh (running and paused).
    pub energy_kwh: f64,
    /// Emissions of that energy at the intensity of each step, kg CO2e.
    pub co2e_kg: f64,
    /// Price of that energy at the tariff of each step, currency units.
    pub cost: f64,
    /// Part of `energy_kwh` that is idle power while running, kWh.
    pub idle_kwh: f64,
    /// Part of `energy_kwh` that is workers' power, kWh.
    pub active_kwh: f64,
    /// Part of `energy_kwh` spent paused, kWh.
    pub sleep_kwh: f64,
    /// Energy of the run time lost to warm-ups (included in idle and active), kWh.
    pub ramp_kwh: f64,
    /// Part of `energy_kwh` used in peak windows, kWh.
    pub peak_kwh: f64,
    /// Hours with at least one worker running.
    pub running_h: f64,
    /// Hours paused.
    pub paused_h: f64,
    /// Times the worker count changed.
    pub changes: u32,
    /// Time-weighted mean workers while running.
    pub mean_workers: f64,
    /// Items done (the profile's items, up to rounding: the simulation runs until all are
    /// done).
    pub items_done: f64,
    /// Hours spent at each worker count (0: paused), by increasing count.
    pub hours_at: Vec<(u32, f64)>,
    /// When the last item was done.
    pub finished_at: Timestamp,
    /// Hours after the start at which deadline rescue began (the governor's rule
    /// [`policy::rescue_due`] became true; from then on at least the nominal workers run), if
    /// it did. 0 when the deadline cannot be met even at nominal concurrency.
    pub rescued_at_h: Option<f64>,
    /// Whether the deadline was met; `None` without a deadline.
    pub deadline_met: Option<bool>,
}

impl Outcome {
    /// The policy's name.
    pub fn name(&self) -> &'static str {
        self.policy.name()
    }

    /// Mean power over the makespan, W.
    pub fn mean_w(&self) -> f64 {
        self.energy_kwh * 1000.0 / self.makespan_h
    }
}

/// An [`Outcome`] with its differences from the baseline, in percent of the baseline's figure.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The policy's outcome.
    pub outcome: Outcome,
    /// Energy against baseline, %.
    pub energy_delta_pct: f64,
    /// Makespan against baseline, %.
    pub makespan_delta_pct: f64,
    /// CO2e against baseline, %.
    pub co2e_delta_pct: f64,
    /// Cost against baseline, %.
    pub cost_delta_pct: f64,
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
        let outcomes = specs
            .iter()
            .map(|s| self.run(*s))
            .collect::<Result<Vec<_>, _>>()?;
        let base = match outcomes
            .iter()
            .find(|o| o.policy == Policy::Baseline && o.deadline.is_none())
        {
            Some(b) => b.clone(),
            None => self.run(Policy::Baseline)?,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_horizon_beyond_ten_years_is_refused_at_once() {
        let e = Profile::new(10, 1e9, 5.0).unwrap_err().to_string();
        assert!(e.contains("baseline_hours") && e.contains("87600"), "{e}");
        assert!(Profile::new(10, 87_600.0, 5.0).is_ok());
    }

    /// The published case: the first workflow, 1.48 million items, 180.30 h and 48.67 kWh at
    /// baseline (mean 270 W).
    fn published() -> Profile {
        Profile::new(1_480_000, 180.30, 48.67).unwrap()
    }

    fn compare_default(profile: &Profile, g: f64) -> Vec<Report> {
        let cal = WeekdayPeak::default();
        let int = ConstantIntensity(g);
        let s = Scenario::new(profile, &cal, &int);
        s.compare(&Policy::STANDARD.map(Into::into)).unwrap()
    }

    fn find<'r>(reports: &'r [Report], name: &str) -> &'r Report {
        reports.iter().find(|r| r.outcome.name() == name).unwrap()
    }

    #[test]
    fn published_case_baseline() {
        let p = published();
        let r = compare_default(&p, 448.0);
        let b = &find(&r, "baseline").outcome;
        assert!(
            (b.energy_kwh / 48.67 - 1.0).abs() < 0.005,
            "{}",
            b.energy_kwh
        );
        assert!(
            (b.makespan_h / 180.30 - 1.0).abs() < 0.005,
            "{}",
            b.makespan_h
        );
        assert!((b.co2e_kg - 21.8).abs() <= 0.1, "{}", b.co2e_kg);
        assert_eq!(b.changes, 0);
        assert_eq!(b.paused_h, 0.0);
        assert!((b.mean_w() - 269.94).abs() < 0.1, "{}", b.mean_w());
    }

    #[test]
    fn published_case_policies() {
        let p = published();
        let r = compare_default(&p, 448.0);
        let boost = find(&r, "offpeak-boost");
        assert!(
            (-15.0..=-5.0).contains(&boost.energy_delta_pct),
            "boost energy {:+.2} %",
            boost.energy_delta_pct
        );
        assert!(
            (3.0..=12.0).contains(&boost.makespan_delta_pct),
            "boost makespan {:+.2} %",
            boost.makespan_delta_pct
        );
        let throttle = find(&r, "throttle");
        assert!(
            throttle.energy_delta_pct > 0.0,
            "throttle energy {:+.2} %",
            throttle.energy_delta_pct
        );
        assert!(throttle.makespan_delta_pct > 0.0);
        // With a constant intensity, CO2e follows energy.
        assert!((boost.co2e_delta_pct - boost.energy_delta_pct).abs() < 1e-9);
        // Moving energy out of peak windows makes it cheaper per kWh.
        let b = &find(&r, "baseline").outcome;
        assert!(boost.outcome.cost / boost.outcome.energy_kwh < b.cost / b.energy_kwh);
        assert!(boost.outcome.peak_kwh < b.peak_kwh);
        let defer = find(&r, "defer");
        assert_eq!(defer.outcome.peak_kwh - defer.outcome.sleep_kwh, 0.0);
        assert!(defer.makespan_delta_pct > boost.makespan_delta_pct);
    }

    #[test]
    fn every_item_is_done_and_energy_adds_up() {
        let p = published();
        for r in compare_default(&p, 448.0) {
            let o = &r.outcome;
            assert!(
                (o.items_done / p.items as f64 - 1.0).abs() < 1e-9,
                "{}",
                o.name()
            );
            let parts = o.idle_kwh + o.active_kwh + o.sleep_kwh;
            assert!((parts - o.energy_kwh).abs() < 1e-9, "{}", o.name());
            assert!((o.running_h + o.paused_h - o.makespan_h).abs() < 1e-9);
            assert!(o.ramp_kwh <= o.idle_kwh + o.active_kwh);
        }
        // Counting items independently, without warm-ups: the hours spent at each worker count
        // times that count's throughput add up to the profile's items, for every policy.
        let cal = WeekdayPeak::default();
        let int = ConstantIntensity(448.0);
        let machine = MachineModel {
            ramp_s: 0.0,
            ..Default::default()
        };
        let s = Scenario {
            machine,
            ..Scenario::new(&p, &cal, &int)
        };
        let rates = machine.calibrate(&p).unwrap();
        for policy in Policy::STANDARD {
            let o = s.run(policy).unwrap();
            let items: f64 = o
                .hours_at
                .iter()
                .map(|(w, h)| rates.items_per_s(*w) * h * 3600.0)
                .sum();
            assert!(
                (items / p.items as f64 - 1.0).abs() < 1e-9,
                "{policy}: {items}"
            );
            let hours: f64 = o.hours_at.iter().map(|(_, h)| h).sum();
            assert!((hours - o.makespan_h).abs() < 1e-9);
        }
    }

    #[test]
    fn calibration_reproduces_the_profile() {
        let p = published();
        let m = MachineModel::default();
        let c = m.calibrate(&p).unwrap();
        let mean = p.mean_w();
        assert!((c.power_w(8) - mean).abs() < 1e-9);
        assert!((c.idle_w - 0.4 * mean).abs() < 1e-9);
        assert!((c.sleep_w - 0.2 * c.idle_w).abs() < 1e-9);
        // More workers amortize idle power: less energy per item at 12 than at 8, more at 4.
        assert!(c.joules_per_item(12) < c.joules_per_item(8));
        assert!(c.joules_per_item(4) > c.joules_per_item(8));
    }

    #[test]
    fn defer_respects_its_deadline() {
        let p = published();
        let cal = WeekdayPeak::default();
        let int = ConstantIntensity(448.0);
        let s = Scenario::new(&p, &cal, &int);
        let free = s.run(Policy::Defer).unwrap();
        assert!(free.makespan_h > 250.0, "{}", free.makespan_h);
        assert_eq!(free.deadline_met, None);
        for deadline_h in [190.0, 200.0, 230.0] {
            let o = s
                .run(SimSpec::with_deadline_hours(Policy::Defer, deadline_h))
                .unwrap();
            // Rescue starts when the remaining work at nominal concurrency just fits: the
            // last item is done at the deadline (to floating-point rounding).
            assert!(
                (o.makespan_h - deadline_h).abs() < 1e-9,
                "{deadline_h}: {}",
                o.makespan_h
            );
            assert_eq!(o.deadline_met, Some(true));
            assert!(o.rescued_at_h.is_some());
            assert!(o.makespan_h > 180.30);
            assert!((o.items_done / p.items as f64 - 1.0).abs() < 1e-9);
        }
        for bad in [0.0, -1.0, f64::NAN] {
            let e = s
                .run(SimSpec::with_deadline_hours(Policy::Defer, bad))
                .unwrap_err();
            assert!(
                matches!(
                    e,
                    SimError::Invalid {
                        field: "deadline",
                        ..
                    }
                ),
                "{e}"
            );
        }
        let o = s
            .run(SimSpec::with_deadline_hours(Policy::Defer, f64::INFINITY))
            .unwrap();
        assert_eq!(o.deadline_met, Some(true));
        assert_eq!(o.makespan_h, free.makespan_h);
        // A deadline shorter than the baseline cannot be met: as for the governor, rescue is
        // due from the start (the work at nominal concurrency already ends after the
        // deadline), so the policy never pauses, and the outcome says the deadline is missed.
        let o = s
            .run(SimSpec::with_deadline_hours(Policy::Defer, 100.0))
            .unwrap();
        assert_eq!(o.deadline_met, Some(false));
        assert_eq!(o.rescued_at_h, Some(0.0));
        assert_eq!(o.paused_h, 0.0);
        assert!((o.makespan_h - 180.30).abs() < 0.01, "{}", o.makespan_h);
        // Boost with a deadline between its free makespan and the baseline's.
        let o = s
            .run(SimSpec::with_deadline_hours(Policy::OFFPEAK_BOOST, 185.0))
            .unwrap();
        assert_eq!(o.deadline_met, Some(true), "{}", o.makespan_h);
        // The governor's rule judges the remaining work at nominal concurrency, so a deadline
        // after boost's own makespan still rescues it; it then runs 8 workers in peak (12
        // off-peak) and finishes early.
        let free = s.run(Policy::OFFPEAK_BOOST).unwrap();
        assert!(free.makespan_h < 200.0, "{}", free.makespan_h);
        let o = s
            .run(SimSpec::with_deadline_hours(Policy::OFFPEAK_BOOST, 200.0))
            .unwrap();
        assert!(o.rescued_at_h.is_some());
        assert!(o.makespan_h < free.makespan_h, "{}", o.makespan_h);
        let counts: Vec<u32> = o.hours_at.iter().map(|(w, _)| *w).collect();
        assert_eq!(counts, [0, 8, 12]);
        // Rescue is sticky: after it, nothing pauses again.
        let rescued = o.rescued_at_h.unwrap();
        assert!(o.paused_h <= rescued, "{} > {rescued}", o.paused_h);
        // A policy that keeps running below nominal (throttle) is rescued on the estimate of
        // the step's start, slightly early: it meets the deadline.
        let o = s
            .run(SimSpec::with_deadline_hours(Policy::THROTTLE, 200.0))
            .unwrap();
        assert!(o.rescued_at_h.is_some());
        assert!(
            o.makespan_h <= 200.0 && o.makespan_h > 199.9,
            "{}",
            o.makespan_h
        );
    }

    #[test]
    fn time_varying_intensity_is_integrated() {
        // 24 h at a constant 1 kW, from Monday 00:00 UTC: 24 kWh; 100 g/kWh for 00-12 UTC and
        // 500 for 12-24 gives 12 * 100 + 12 * 500 = 7200 g.
        let p = Profile::new(1000, 24.0, 24.0).unwrap();
        let cal = WeekdayPeak::default();
        let mut hours = [100.0; 24];
        hours[12..].fill(500.0);
        let int = HourlyIntensity { g_per_kwh: hours };
        let s = Scenario::new(&p, &cal, &int);
        let o = s.run(Policy::Baseline).unwrap();
        assert!((o.energy_kwh - 24.0).abs() < 1e-9);
        assert!((o.co2e_kg - 7.2).abs() < 1e-9, "{}", o.co2e_kg);
        // A closure works too; a linear ramp in time integrates to its midpoint value.
        let start = default_start().as_second();
        let ramp = move |t: Timestamp| (t.as_second() - start) as f64 / 3600.0 * 10.0;
        let s = Scenario::new(&p, &cal, &ramp);
        let o = s.run(Policy::Baseline).unwrap();
        assert!(
            (o.co2e_kg - 24.0 * 120.0 / 1000.0).abs() < 1e-3,
            "{}",
            o.co2e_kg
        );
        // Leaving peak hours also leaves dirty hours where they coincide (the example in
        // docs/CONTROL.md): 600 g/kWh 08-20 UTC, 200 otherwise.
        let p = published();
        let mut day = [200.0; 24];
        day[8..20].fill(600.0);
        let int = HourlyIntensity { g_per_kwh: day };
        let s = Scenario::new(&p, &cal, &int);
        let r = s.compare(&Policy::STANDARD.map(Into::into)).unwrap();
        let round1 = |x: f64| (x * 10.0).round() / 10.0;
        assert_eq!((r[0].outcome.co2e_kg * 100.0).round() / 100.0, 19.27);
        let co2: Vec<f64> = r.iter().map(|x| round1(x.co2e_delta_pct)).collect();
        assert_eq!(co2, [0.0, 1.4, -33.0, -25.3]);
        assert!(r[3].co2e_delta_pct < r[3].energy_delta_pct - 10.0);
    }

    #[test]
    fn tariffs_come_from_the_calendar_or_the_defaults() {
        struct Flat;
        impl Calendar for Flat {
            fn slot(&self, _t: Timestamp) -> Slot {
                Slot {
                    peak: true,
                    tariff_per_kwh: Some(0.5),
                }
            }
            fn next_change(&self, _t: Timestamp) -> Option<Timestamp> {
                None
            }
        }
        let p = Profile::new(100, 10.0, 2.0).unwrap();
        let int = ConstantIntensity(0.0);
        let s = Scenario::new(&p, &Flat, &int);
        let o = s.run(Policy::Baseline).unwrap();
        assert!((o.cost - 1.0).abs() < 1e-9);
        assert_eq!(o.peak_kwh, o.energy_kwh);
        // Defer under an always-peak calendar never runs.
        let e = s.run(Policy::Defer).unwrap_err();
        assert!(
            matches!(
                e,
                SimError::NoProgress {
                    policy: "defer",
                    ..
                }
            ),
            "{e}"
        );
        // ... unless a deadline rescues it.
        let o = s
            .run(SimSpec::with_deadline_hours(Policy::Defer, 48.0))
            .unwrap();
        assert_eq!(o.deadline_met, Some(true));
        // Baseline under the default calendar pays the default tariffs: 60 of the week's 168 h
        // are peak.
        let p = Profile::new(100, 168.0, 168.0).unwrap();
        let cal = WeekdayPeak::default();
        let o = Scenario::new(&p, &cal, &int).run(Policy::Baseline).unwrap();
        assert!(
            (o.cost - (60.0 * 0.30 + 108.0 * 0.18)).abs() < 1e-6,
            "{}",
            o.cost
        );
        assert!((o.peak_kwh - 60.0).abs() < 1e-9);
    }

    #[test]
    fn weekday_peak_calendar() {
        let cal = WeekdayPeak::default();
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        let peak = |s: &str| cal.slot(at(s)).peak;
        assert!(!peak("2024-01-08T07:59:59Z")); // Monday
        assert!(peak("2024-01-08T08:00:00Z"));
        assert!(peak("2024-01-12T19:59:59Z")); // Friday
        assert!(!peak("2024-01-12T20:00:00Z"));
        assert!(!peak("2024-01-13T12:00:00Z")); // Saturday
        assert!(!peak("2024-01-14T12:00:00Z")); // Sunday
        assert_eq!(cal.slot(at("2024-01-08T09:00:00Z")).tariff_per_kwh, None);
        let next = |s: &str| cal.next_change(at(s)).unwrap();
        assert_eq!(next("2024-01-08T00:00:00Z"), at("2024-01-08T08:00:00Z"));
        assert_eq!(next("2024-01-08T08:00:00Z"), at("2024-01-08T20:00:00Z"));
        assert_eq!(next("2024-01-12T20:00:00Z"), at("2024-01-15T08:00:00Z"));
        assert_eq!(next("2024-01-13T05:00:00Z"), at("2024-01-15T08:00:00Z"));
        assert_eq!(cal.describe(), "Mon-Fri 08:00-20:00 UTC");
        assert_eq!(weekday(default_start().as_second() / 86_400), 0);
    }

    #[test]
    fn workers_are_what_the_governor_allows() {
        for (name, policy) in Policy::NAMES.iter().zip(Policy::STANDARD) {
            assert_eq!(name.parse::<Policy>().unwrap(), policy);
        }
        assert!("fast".parse::<Policy>().is_err());
        let m = MachineModel::default();
        let peak = Slot {
            peak: true,
            tariff_per_kwh: None,
        };
        let off = Slot {
            peak: false,
            tariff_per_kwh: None,
        };
        let w = |p: Policy, slot, rescue| m.workers(&p, slot, rescue);
        assert_eq!(w(Policy::THROTTLE, peak, false), 4);
        assert_eq!(w(Policy::THROTTLE, off, false), 8);
        assert_eq!(w(Policy::OFFPEAK_BOOST, off, false), 12);
        assert_eq!(w(Policy::OFFPEAK_BOOST, peak, false), 0);
        assert_eq!(w(Policy::Defer, peak, false), 0);
        // Rounding is the governor's: up, and a throttle keeps at least one worker.
        let tiny = Policy::throttle(0.01).unwrap();
        assert_eq!(w(tiny, peak, false), 1);
        let third = Policy::throttle(1.0 / 3.0).unwrap();
        assert_eq!(w(third, peak, false), 3, "8 / 3 rounds up");
        let boost = Policy::offpeak_boost(1.3, 0.2).unwrap();
        assert_eq!(w(boost, off, false), 11, "10.4 rounds up");
        assert_eq!(w(boost, peak, false), 2, "1.6 rounds up");
        // Capped at the machine's max workers.
        let huge = Policy::offpeak_boost(5.0, 0.0).unwrap();
        assert_eq!(w(huge, off, false), 16);
        assert_eq!(w(huge, off, true), 16);
        // Rescue: at least nominal, never less than the policy allows.
        assert_eq!(w(huge, peak, true), 8);
        assert_eq!(w(Policy::Defer, peak, true), 8);
        assert_eq!(w(Policy::OFFPEAK_BOOST, off, true), 12);
        for p in Policy::STANDARD
            .into_iter()
            .chain([tiny, third, boost, huge])
        {
            for slot in [peak, off] {
                for rescue in [false, true] {
                    assert_eq!(
                        w(p, slot, rescue),
                        p.allowed(slot, 8, rescue).min(16),
                        "{p} {slot:?} {rescue}"
                    );
                }
            }
        }
        // Parameters out of range are named.
        let p = published();
        let cal = WeekdayPeak::default();
        let int = ConstantIntensity(448.0);
        let e = Scenario::new(&p, &cal, &int)
            .run(Policy::Throttle { peak_fraction: 1.5 })
            .unwrap_err();
        assert!(
            matches!(
                e,
                SimError::Invalid {
                    field: "peak_fraction",
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn bad_inputs_are_named() {
        let e = Profile::new(0, 1.0, 1.0).unwrap_err();
        assert!(matches!(e, SimError::Invalid { field: "items", .. }));
        let e = Profile::new(1, f64::NAN, 1.0).unwrap_err();
        assert!(matches!(
            e,
            SimError::Invalid {
                field: "baseline_hours",
                ..
            }
        ));
        let e = Profile::new(1, 1.0, -1.0).unwrap_err();
        assert!(matches!(
            e,
            SimError::Invalid {
                field: "baseline_kwh",
                ..
            }
        ));
        let p = published();
        for (m, field) in [
            (
                MachineModel {
                    idle_share: 1.0,
                    ..Default::default()
                },
                "idle_share",
            ),
            (
                MachineModel {
                    max_workers: 4,
                    ..Default::default()
                },
                "max_workers",
            ),
            (
                MachineModel {
                    nominal_workers: 0,
                    ..Default::default()
                },
                "nominal_workers",
            ),
        ] {
            match m.calibrate(&p).unwrap_err() {
                SimError::Invalid { field: f, .. } => assert_eq!(f, field),
                other => panic!("{other}"),
            }
        }
    }

    #[test]
    fn profile_from_run_files() {
        use carina_runtime::reader::parse_run_file;
        use std::path::Path;
        let start = r#"{"type":"run_start","schema":1,"run_id":"r1","job":"scenario-db","host":"h","pid":1,"started_at":"2024-01-08T00:00:00Z","energy_sources":[],"carbon":{"g_per_kwh":448.0,"zone":null,"source":"test"},"steps":"all","sample_interval_s":0.1,"scope":"process","carina_version":"0.1.0"}"#;
        let step = |id: u32, name: &str, end: f64, items: u32, e: f64| {
            format!(
                r#"{{"type":"step","name":"{name}","id":{id},"parent":null,"thread":0,"start_s":0.0,"end_s":{end},"items":{items},"status":"ok","energy_j":{e},"self_energy_j":{e},"co2e_g":0.0}}"#
            )
        };
        let end = r#"{"type":"run_end","ended_at":"2024-01-08T02:00:00Z","wall_s":7200.0,"energy_j":1800000.0,"unattributed_j":0.0,"co2e_g":0.0,"items":4000,"steps":2,"dropped":0}"#;
        let text = format!(
            "{start}\n{}\n{}\n{end}\n",
            step(1, "solve", 3600.0, 4000, 1e6),
            step(2, "load", 3700.0, 10, 1e5)
        );
        let run = parse_run_file(&text, Path::new("r1.jsonl")).unwrap();
        let p = Profile::from_run(&run).unwrap();
        assert_eq!(p.items, 4000);
        assert_eq!(p.baseline_hours, 2.0);
        assert_eq!(p.baseline_kwh, 0.5);
        assert!(p.complete);
        assert!((p.seconds_per_item() - 1.8).abs() < 1e-12);

        // No run_end: items from the progress step (`solve` repeats), time from the last
        // step's end, energy from the steps (no power records here).
        let text = format!(
            "{start}\n{}\n{}\n{}\n",
            step(1, "solve", 1800.0, 1000, 1e6),
            step(2, "solve", 3600.0, 1000, 1e6),
            step(3, "load", 3700.0, 10, 1e5)
        );
        let run = parse_run_file(&text, Path::new("r2.jsonl")).unwrap();
        let p = Profile::from_run(&run).unwrap();
        assert_eq!(p.items, 2000);
        assert!((p.baseline_hours - 3700.0 / 3600.0).abs() < 1e-12);
        assert!((p.baseline_kwh - 2.1e6 / 3.6e6).abs() < 1e-12);
        assert!(!p.complete);
        assert!(p.notes.iter().any(|n| n.contains("did not finish")));

        // Nothing to simulate.
        let run = parse_run_file(&format!("{start}\n"), Path::new("r3.jsonl")).unwrap();
        let e = Profile::from_run(&run).unwrap_err();
        assert!(e.to_string().contains("r3.jsonl"), "{e}");
    }

    // -----------------------------------------------------------------------------------------
    // The sensitivity table in docs/CONTROL.md
    // -----------------------------------------------------------------------------------------

    struct Variant {
        label: &'static str,
        machine: MachineModel,
        boost: Policy,
        throttle: Policy,
        start: Timestamp,
    }

    fn variants() -> Vec<Variant> {
        let d = MachineModel::default();
        let base = Variant {
            label: "defaults",
            machine: d,
            boost: Policy::OFFPEAK_BOOST,
            throttle: Policy::THROTTLE,
            start: default_start(),
        };
        let m = |label, machine| Variant {
            label,
            machine,
            ..base
        };
        let boost = |label, offpeak_factor, peak_fraction| Variant {
            label,
            boost: Policy::OffPeakBoost {
                offpeak_factor,
                peak_fraction,
            },
            ..base
        };
        let day = 86_400;
        let start = |label, secs: i64| Variant {
            label,
            start: Timestamp::constant(DEFAULT_START_UNIX_S + secs, 0),
            ..base
        };
        vec![
            m("defaults", d),
            m(
                "idle share 0.30",
                MachineModel {
                    idle_share: 0.30,
                    ..d
                },
            ),
            m(
                "idle share 0.50",
                MachineModel {
                    idle_share: 0.50,
                    ..d
                },
            ),
            m(
                "sleep share 0 (paused = off)",
                MachineModel {
                    sleep_share: 0.0,
                    ..d
                },
            ),
            m(
                "sleep share 0.5",
                MachineModel {
                    sleep_share: 0.5,
                    ..d
                },
            ),
            m(
                "sleep share 1 (paused = idle)",
                MachineModel {
                    sleep_share: 1.0,
                    ..d
                },
            ),
            m(
                "contention 0",
                MachineModel {
                    contention: 0.0,
                    ..d
                },
            ),
            m(
                "contention 0.01",
                MachineModel {
                    contention: 0.01,
                    ..d
                },
            ),
            m(
                "contention 0.02",
                MachineModel {
                    contention: 0.02,
                    ..d
                },
            ),
            m("ramp 0 s", MachineModel { ramp_s: 0.0, ..d }),
            m("ramp 900 s", MachineModel { ramp_s: 900.0, ..d }),
            m(
                "4 nominal workers (max 8)",
                MachineModel {
                    nominal_workers: 4,
                    max_workers: 8,
                    ..d
                },
            ),
            m(
                "16 nominal workers (max 32)",
                MachineModel {
                    nominal_workers: 16,
                    max_workers: 32,
                    ..d
                },
            ),
            boost("boost x1.25 off-peak (10 workers)", 1.25, 0.0),
            boost("boost x1.75 off-peak (14 workers)", 1.75, 0.0),
            boost("boost keeps 1/8 in peak (1 worker)", 1.5, 0.125),
            boost("boost keeps 1/2 in peak (4 workers)", 1.5, 0.5),
            Variant {
                label: "throttle keeps 1/4 in peak (2 workers)",
                throttle: Policy::Throttle {
                    peak_fraction: 0.25,
                },
                ..base
            },
            start("start Wednesday 00:00 UTC", 2 * day),
            start("start Friday 20:00 UTC", 4 * day + 20 * 3600),
        ]
    }

    fn sensitivity_table() -> String {
        let p = published();
        let cal = WeekdayPeak::default();
        let int = ConstantIntensity(448.0);
        let mut out = String::from(
            "| assumption changed | offpeak-boost energy | offpeak-boost makespan | throttle energy | throttle makespan | defer energy | defer makespan |\n\
             |---|---:|---:|---:|---:|---:|---:|\n",
        );
        for v in variants() {
            let s = Scenario {
                machine: v.machine,
                start: v.start,
                ..Scenario::new(&p, &cal, &int)
            };
            let r = s
                .compare(&[
                    Policy::Baseline.into(),
                    v.boost.into(),
                    v.throttle.into(),
                    Policy::Defer.into(),
                ])
                .unwrap();
            out.push_str(&format!(
                "| {} | {:+.1} % | {:+.1} % | {:+.1} % | {:+.1} % | {:+.1} % | {:+.1} % |\n",
                v.label,
                r[1].energy_delta_pct,
                r[1].makespan_delta_pct,
                r[2].energy_delta_pct,
                r[2].makespan_delta_pct,
                r[3].energy_delta_pct,
                r[3].makespan_delta_pct,
            ));
        }
        out
    }

    /// The numbers in docs/CONTROL.md's sensitivity table are this simulator's. Regenerate
    /// with `cargo test -p carina-core control::simulate::tests::sensitivity -- --nocapture`
    /// and paste the printed table.
    #[test]
    fn sensitivity_table_matches_the_docs() {
        let table = sensitivity_table();
        println!("{table}");
        let doc_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/CONTROL.md");
        let doc = std::fs::read_to_string(doc_path).unwrap_or_default();
        let norm = |s: &str| {
            s.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert!(
            norm(&doc).contains(&norm(&table)),
            "docs/CONTROL.md's sensitivity table is out of date; replace it with:\n{table}"
        );
    }
}
