//! Grid carbon intensity over time ([`Intensity`]): constant, daily, or any function of time.

use jiff::Timestamp;

/// Grid carbon intensity over time.
pub trait Intensity {
    /// Grams CO2e per kWh at `t`.
    fn g_per_kwh(&self, t: Timestamp) -> f64;

    /// The first instant after `t` at which the intensity may change; `None` when it never
    /// does. The simulator takes one step across a stretch where neither the calendar's slot
    /// nor the intensity changes, instead of one per [`Scenario::step`](super::Scenario::step).
    /// The default, `Some(t)`, says "at any time": the intensity is then sampled at the middle
    /// of every step.
    fn next_change(&self, t: Timestamp) -> Option<Timestamp> {
        Some(t)
    }
}

/// The same intensity at all times, g CO2e/kWh.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConstantIntensity(pub f64);

impl Intensity for ConstantIntensity {
    fn g_per_kwh(&self, _t: Timestamp) -> f64 {
        self.0
    }

    fn next_change(&self, _t: Timestamp) -> Option<Timestamp> {
        None
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

    /// The next full UTC hour.
    fn next_change(&self, t: Timestamp) -> Option<Timestamp> {
        let next = (t.as_second().div_euclid(3600) + 1) * 3600;
        Timestamp::from_second(next).ok()
    }
}

/// Any `Fn(Timestamp) -> f64` is an intensity (e.g. `|t| series.at(t).0` for a
/// [`carina_runtime::carbon::IntensitySeries`]).
impl<F: Fn(Timestamp) -> f64> Intensity for F {
    fn g_per_kwh(&self, t: Timestamp) -> f64 {
        self(t)
    }
}
