//! Typed physical units.
//!
//! Joules, watts, seconds, grams CO2e and kilowatt-hours are distinct types so that a power can never be added to an energy
//! by mistake. Each is a transparent `f64` in serialised form: run files carry plain numbers and
//! the unit is fixed by the field's documentation (`docs/FORMAT.md`).

use std::ops::{Add, AddAssign, Div, Mul, Sub};

macro_rules! unit {
    ($(#[$doc:meta])* $name:ident, $sym:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
        pub struct $name(pub f64);

        // A plain number in serialised form (feature `serde`: the runtime's record format),
        // so the step-only tree needs no serde.
        #[cfg(feature = "serde")]
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_f64(self.0)
            }
        }

        #[cfg(feature = "serde")]
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                f64::deserialize(d).map($name)
            }
        }

        impl $name {
            /// Zero of this unit.
            pub const ZERO: Self = Self(0.0);
            /// The raw value in this unit.
            pub fn value(self) -> f64 {
                self.0
            }
            /// The larger of two values (NaN-ignoring, like `f64::max`).
            pub fn max(self, o: Self) -> Self {
                Self(self.0.max(o.0))
            }
            /// The smaller of two values (NaN-ignoring, like `f64::min`).
            pub fn min(self, o: Self) -> Self {
                Self(self.0.min(o.0))
            }
            /// The absolute value.
            pub fn abs(self) -> Self {
                Self(self.0.abs())
            }
            /// Whether the value is neither infinite nor NaN.
            pub fn is_finite(self) -> bool {
                self.0.is_finite()
            }
            /// A total order (as `f64::total_cmp`), for sorting.
            pub fn total_cmp(&self, o: &Self) -> std::cmp::Ordering {
                self.0.total_cmp(&o.0)
            }
        }
        impl Mul<$name> for f64 {
            type Output = $name;
            fn mul(self, x: $name) -> $name {
                $name(self * x.0)
            }
        }
        impl From<$name> for f64 {
            fn from(x: $name) -> f64 {
                x.0
            }
        }
        impl std::ops::SubAssign for $name {
            fn sub_assign(&mut self, o: Self) {
                self.0 -= o.0;
            }
        }
        impl Div<f64> for $name {
            type Output = Self;
            fn div(self, k: f64) -> Self {
                Self(self.0 / k)
            }
        }
        impl Div for $name {
            /// A ratio of two values of one unit (a share), unitless.
            type Output = f64;
            fn div(self, o: Self) -> f64 {
                self.0 / o.0
            }
        }
        impl std::iter::Sum for $name {
            fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
                Self(iter.map(|e| e.0).sum())
            }
        }
        impl<'a> std::iter::Sum<&'a $name> for $name {
            fn sum<I: Iterator<Item = &'a Self>>(iter: I) -> Self {
                Self(iter.map(|e| e.0).sum())
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
unit!(
    /// Emissions in grams of CO2 equivalent (g CO2e).
    GramsCo2e, "g CO2e"
);
unit!(
    /// Energy in kilowatt-hours (kWh): the unit of grid intensities and tariffs.
    KilowattHours, "kWh"
);

impl From<Joules> for KilowattHours {
    fn from(e: Joules) -> Self {
        KilowattHours(e.0 / Joules::PER_KWH)
    }
}

impl From<KilowattHours> for Joules {
    fn from(e: KilowattHours) -> Self {
        Joules(e.0 * Joules::PER_KWH)
    }
}

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
        assert!((KilowattHours::from(e).0 - 0.27).abs() < 1e-12);
        assert!((Joules::from(KilowattHours(0.27)).0 - e.0).abs() < 1e-6);
        assert_eq!(e / Joules(486_000.0), 2.0);
        assert_eq!(
            [Joules(1.0), Joules(2.5)].into_iter().sum::<Joules>(),
            Joules(3.5)
        );
    }

    #[test]
    fn display_carries_the_unit() {
        assert_eq!(format!("{:.1}", Joules(2.25)), "2.2 J");
        assert_eq!(format!("{}", Watts(3.0)), "3 W");
    }
}
