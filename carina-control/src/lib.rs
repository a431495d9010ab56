//! Peak-aware execution: schedules of peak windows, policies, the governor that applications ask
//! for permits, and the simulator that answers "what would this cycle cost under policy X".
//!
//! See `docs/CONTROL.md` for the schedule format, the policies and the simulator's model.
//! Applications reach this crate through the facade as `carina::control` (feature `control`,
//! on by default); a library that only marks steps does not compile it. It depends on
//! `carina-core` only for the recorder's control events (`carina_runtime::recorder::emit_control`,
//! which puts the governor's mode changes into the run file) and the reader (the simulator's
//! `--from` profile); nothing in the core depends on it.
//!
//! # Public API
//! - [`Calendar`] (what a schedule answers: the [`Slot`] at an instant, the next change) and
//!   [`Slot`].
//! - [`schedule`]: [`schedule::Schedule`] (TOML file or [`schedule::ScheduleBuilder`]; IANA time
//!   zone, weekly peak windows with tariffs, holidays), [`schedule::PeakWindow`],
//!   [`schedule::Days`], [`schedule::ScheduleError`] (file, line and column).
//! - [`policy`]: [`policy::Policy`] (`baseline`, `throttle`, `offpeak-boost`, `defer`; parsed
//!   from `name:key=value`), [`policy::Mode`], [`policy::PolicyError`].
//! - [`governor`]: [`governor::Governor`] hands out [`governor::Permit`]s within the concurrency
//!   the policy allows now; [`governor::Clock`], [`governor::SystemClock`],
//!   [`governor::ManualClock`] (tests), [`governor::GovernorStatus`].
//! - [`simulate`]: [`simulate::Profile`] (a cycle: from a run file or given figures),
//!   [`simulate::MachineModel`], [`simulate::Scenario`], [`simulate::SimSpec`], the outcome per
//!   policy ([`simulate::Outcome`], [`simulate::Report`]), intensity and tariff inputs, and
//!   [`simulate::SimError`].

#![deny(missing_docs)]

pub mod governor;
pub mod policy;
pub mod schedule;
pub mod simulate;

/// What the calendar says about one instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slot {
    /// Whether the instant is in a peak window.
    pub peak: bool,
    /// Electricity price at that instant, currency units per kWh, if the schedule gives one.
    pub tariff_per_kwh: Option<f64>,
}

/// A calendar of peak and off-peak time. Implemented by [`schedule::Schedule`]; the governor and
/// the simulator take any implementation (tests use simple ones).
pub trait Calendar: Send + Sync {
    /// The slot at `t`.
    fn slot(&self, t: jiff::Timestamp) -> Slot;
    /// The first instant after `t` at which the slot may change (a window boundary), if any
    /// within a year. The governor sleeps until then instead of polling.
    fn next_change(&self, t: jiff::Timestamp) -> Option<jiff::Timestamp>;
}
