//! The machine model ([`MachineModel`]): power and throughput as functions of the number of
//! workers, its defaults, its calibration against a profile ([`Calibrated`]) and the workers a
//! policy runs.

use super::error::{SimError, check_range, invalid};
use super::profile::Profile;
use crate::Slot;
use crate::policy::Policy;

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
