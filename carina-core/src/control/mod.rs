//! Peak-aware execution: schedules of peak windows, policies, the governor that applications ask
//! for permits, and the simulator that answers "what would this cycle cost under policy X".
//!
//! See `docs/CONTROL.md` for the schedule format, the policies and the simulator's model.

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
