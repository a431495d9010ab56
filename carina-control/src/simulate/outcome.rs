//! What a simulation reports: one policy's [`Outcome`] over the cycle, and a [`Report`] that sets
//! it against the baseline.

use crate::policy::Policy;
use jiff::{SignedDuration, Timestamp};

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
    ///
    /// [`policy::rescue_due`]: crate::policy::rescue_due
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
