//! Typed physical units.
//!
//! Joules, watts and seconds are distinct types so that a power can never be added to an energy
//! by mistake. Each is a transparent `f64` in serialised form: run files carry plain numbers and
//! the unit is fixed by the field's documentation (`docs/FORMAT.md`).

use serde::{Deserialize, Serialize};
use std::ops::{Add, AddAssign, Div, Mul, Sub};

macro_rules! unit {
    ($(#[$doc:meta])* $name:ident, $sym:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub f64);

        impl $name {
            /// Zero of this unit.
            pub const ZERO: Self = Self(0.0);
            /// The raw value in this unit.
            pub fn value(self) -> f64 {
                self.0
            }
        }
        impl Add for $name {
            type Output = Self;
            fn add(self, o: Self) -> Self {
                Self(self.0 + o.0)
            }
        }
        impl AddAssign for $name {
            fn add_assign(&mut self, o: Self) {
                self.0 += o.0;
            }
        }
        impl Sub for $name {
            type Output = Self;
            fn sub(self, o: Self) -> Self {
                Self(self.0 - o.0)
            }
        }
        impl Mul<f64> for $name {
            type Output = Self;
            fn mul(self, k: f64) -> Self {
                Self(self.0 * k)
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                if let Some(p) = f.precision() {
                    write!(f, "{:.*} {}", p, self.0, $sym)
                } else {
                    write!(f, "{} {}", self.0, $sym)
                }
            }
        }
    };
}

unit!(
    /// Energy in joules (J).
    Joules, "J"
);
unit!(
    /// Power in watts (W).
    Watts, "W"
);
unit!(
    /// A duration in seconds (s).
    Seconds, "s"
);

impl Joules {
    /// Joules per watt-hour.
    pub const PER_WH: f64 = 3600.0;
    /// Joules per kilowatt-hour.
    pub const PER_KWH: f64 = 3.6e6;

    /// This energy in watt-hours.
    pub fn wh(self) -> f64 {
        self.0 / Self::PER_WH
    }
    /// This energy in kilowatt-hours.
    pub fn kwh(self) -> f64 {
        self.0 / Self::PER_KWH
    }
}

impl Mul<Seconds> for Watts {
    type Output = Joules;
    fn mul(self, s: Seconds) -> Joules {
        Joules(self.0 * s.0)
    }
}

impl Div<Seconds> for Joules {
    type Output = Watts;
    fn div(self, s: Seconds) -> Watts {
        Watts(self.0 / s.0)
    }
}

impl From<std::time::Duration> for Seconds {
    fn from(d: std::time::Duration) -> Self {
        Seconds(d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_times_time_is_energy() {
        let e = Watts(270.0) * Seconds(3600.0);
        assert_eq!(e, Joules(972_000.0));
        assert!((e.kwh() - 0.27).abs() < 1e-12);
        assert!((e.wh() - 270.0).abs() < 1e-9);
        assert_eq!(e / Seconds(3600.0), Watts(270.0));
    }

    #[test]
    fn display_carries_the_unit() {
        assert_eq!(format!("{:.1}", Joules(2.25)), "2.2 J");
        assert_eq!(format!("{}", Watts(3.0)), "3 W");
    }
}
