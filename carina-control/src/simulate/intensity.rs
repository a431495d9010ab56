//! Grid carbon intensity over time ([`Intensity`]): constant, daily, or any function of time.

use jiff::Timestamp;

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
