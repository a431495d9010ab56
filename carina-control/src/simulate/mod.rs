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
//!
//! [`Calendar`]: crate::Calendar
//! [`Policy`]: crate::policy::Policy
//! [`Policy::allowed`]: crate::policy::Policy::allowed
//! [`policy::rescue_due`]: crate::policy::rescue_due

// One concept per file, each importing only files before it in this list, so no two import
// each other: `error` (SimError and the range checks), `profile`, `machine` (the model and its
// calibration), `spec`, `tariffs`, `intensity`, `weekday_peak` (the default calendar), `outcome`
// (Outcome, Report) and `scenario` (the simulation itself). The modules are private and
// everything public is re-exported here, so users import `carina_control::simulate::*` as before.

mod error;
mod intensity;
mod machine;
mod outcome;
mod profile;
mod scenario;
mod spec;
mod tariffs;
mod weekday_peak;

#[cfg(test)]
mod tests;

pub use error::SimError;
pub use intensity::{ConstantIntensity, HourlyIntensity, Intensity};
pub use machine::{
    Calibrated, DEFAULT_CONTENTION, DEFAULT_IDLE_SHARE, DEFAULT_MAX_WORKERS,
    DEFAULT_NOMINAL_WORKERS, DEFAULT_RAMP_S, DEFAULT_SLEEP_SHARE, MachineModel,
};
pub use outcome::{Outcome, Report};
pub use profile::{MAX_BASELINE_HOURS, Profile};
pub use scenario::{
    DEFAULT_START_UNIX_S, DEFAULT_STEP_S, HORIZON_FACTOR, MAX_STEPS, MIN_HORIZON_H, Scenario,
    default_start,
};
pub use spec::{
    DEFAULT_BOOST_OFFPEAK_FACTOR, DEFAULT_BOOST_PEAK_FRACTION, DEFAULT_THROTTLE_PEAK_FRACTION,
    SimSpec,
};
pub use tariffs::{DEFAULT_OFFPEAK_TARIFF, DEFAULT_PEAK_TARIFF, Tariffs};
pub use weekday_peak::WeekdayPeak;
