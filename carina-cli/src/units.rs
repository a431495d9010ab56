//! Human-readable figures with their units, shared by every command's output.

/// Energy with a unit that keeps 3 significant digits: J, Wh, kWh.
pub fn energy(j: f64) -> String {
    energy_as(j, j)
}

/// `j` in the unit [`energy`] would choose for `like`: the ends of a range read in the unit of
/// its point (`0.471 Wh (0.257 .. 0.684 Wh)`, not `0.471 Wh (926 J .. 0.684 Wh)`).
pub fn energy_as(j: f64, like: f64) -> String {
    let wh = like / 3600.0;
    if like.abs() < 1000.0 {
        format!("{} J", sig(j))
    } else if wh.abs() < 1000.0 {
        format!("{} Wh", sig(j / 3600.0))
    } else {
        format!("{} kWh", sig(j / 3.6e6))
    }
}

/// Grams CO2e: g, kg or t.
pub fn co2e(g: f64) -> String {
    co2e_as(g, g)
}

/// `g` in the unit [`co2e`] would choose for `like`.
pub fn co2e_as(g: f64, like: f64) -> String {
    if like.abs() < 1000.0 {
        format!("{} g", sig(g))
    } else if like.abs() < 1e6 {
        format!("{} kg", sig(g / 1000.0))
    } else {
        format!("{} t", sig(g / 1e6))
    }
}

/// A duration in s, min or h.
pub fn duration(s: f64) -> String {
    duration_as(s, s)
}

/// `s` in the unit [`duration`] would choose for `like`.
pub fn duration_as(s: f64, like: f64) -> String {
    if like.abs() < 120.0 {
        format!("{} s", sig(s))
    } else if like.abs() < 7200.0 {
        format!("{} min", sig(s / 60.0))
    } else {
        format!("{} h", sig(s / 3600.0))
    }
}

/// Power in W or kW.
pub fn power(w: f64) -> String {
    if w.abs() < 1000.0 {
        format!("{} W", sig(w))
    } else {
        format!("{} kW", sig(w / 1000.0))
    }
}

/// Three significant digits (the one rule, `carina_core::text::sig3`).
pub use carina_core::text::sig3 as sig;

/// How a column of figures is printed: the unit, the size of that unit in the figures' own unit,
/// and the decimals.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    /// The unit's name, for the header: `kWh`, `Wh`, `J`...
    pub unit: &'static str,
    /// The unit's size in the figures' own unit (`Wh` is 0.001 of a kWh).
    pub size: f64,
    /// Decimals, so that the column's largest figure shows at least 3 significant digits.
    pub decimals: usize,
}

impl Scale {
    /// The unit for a column whose largest absolute figure is `max`: the first of `scales`
    /// (name, size, from: the smallest `max` it is used for), largest first, that `max`
    /// reaches, else the last; decimals for 3 significant digits of `max`, at least
    /// `min_decimals`, at most 6 (2 when `max` is 0).
    pub fn pick(max: f64, scales: &[(&'static str, f64, f64)], min_decimals: usize) -> Scale {
        let &(unit, size, _) = scales
            .iter()
            .find(|s| max.abs() >= s.2)
            .unwrap_or(&scales[scales.len() - 1]);
        Scale::with(unit, size, max, min_decimals)
    }

    /// A fixed unit, with decimals chosen for `max` as in [`pick`](Self::pick).
    pub fn with(unit: &'static str, size: f64, max: f64, min_decimals: usize) -> Scale {
        let m = (max / size).abs();
        // 3 significant digits for the largest figure, at least `min_decimals`, at most 6
        // (`min_decimals` itself when larger); 2 for a column of zeros.
        let decimals = if m > 0.0 && m.is_finite() {
            (2 - m.log10().floor() as i64).clamp(0, 6) as usize
        } else {
            2
        };
        Scale {
            unit,
            size,
            decimals: decimals.max(min_decimals),
        }
    }

    /// Only the decimals change: the figure is already in `unit`.
    pub fn decimals_for(&self, max: f64, min_decimals: usize) -> Scale {
        let mut s = Scale::with(self.unit, self.size, max, 0);
        s.decimals = s.decimals.min(self.decimals).max(min_decimals);
        s
    }

    /// `x` (in the figures' own unit) in this unit, without the unit's name.
    pub fn fmt(&self, x: f64) -> String {
        format!("{:.*}", self.decimals, x / self.size)
    }
}

/// Scales for energy given in kWh: kWh from 1 kWh, Wh from 0.01 Wh, else J.
pub const KWH_SCALES: [(&str, f64, f64); 3] = [
    ("kWh", 1.0, 1.0),
    ("Wh", 1e-3, 1e-5),
    ("J", 1.0 / 3.6e6, 0.0),
];
/// Scales for CO2e given in kg: kg from 1 kg, g from 0.01 g, else mg.
pub const KG_SCALES: [(&str, f64, f64); 3] =
    [("kg", 1.0, 1.0), ("g", 1e-3, 1e-5), ("mg", 1e-6, 0.0)];
/// Scales for durations given in hours: h from 2 h, min from 2 min, else s.
pub const HOUR_SCALES: [(&str, f64, f64); 3] = [
    ("h", 1.0, 2.0),
    ("min", 1.0 / 60.0, 2.0 / 60.0),
    ("s", 1.0 / 3600.0, 0.0),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_scale() {
        assert_eq!(energy(12.345), "12.3 J");
        assert_eq!(energy(7200.0), "2.00 Wh");
        assert_eq!(energy(48.67 * 3.6e6), "48.7 kWh");
        assert_eq!(co2e(21_800.0), "21.8 kg");
        assert_eq!(duration(649_080.0), "180 h");
        assert_eq!(power(270.0), "270 W");
        assert_eq!(sig(0.000123), "0.000123");
        // Range ends follow the point's unit.
        assert_eq!(energy_as(926.0, 0.471 * 3600.0), "0.257 Wh");
        assert_eq!(duration_as(101.0, 128.0), "1.68 min");
        assert_eq!(co2e_as(900.0, 2000.0), "0.900 kg");
    }

    #[test]
    fn column_scales() {
        let s = Scale::pick(48.67, &KWH_SCALES, 2);
        assert_eq!((s.unit, s.fmt(48.67)), ("kWh", "48.67".to_owned()));
        let s = Scale::pick(0.000_27, &KWH_SCALES, 0);
        assert_eq!((s.unit, s.fmt(0.000_27)), ("Wh", "0.270".to_owned()));
        let s = Scale::pick(2.0e-7, &KWH_SCALES, 0);
        assert_eq!((s.unit, s.fmt(2.0e-7)), ("J", "0.720".to_owned()));
        let s = Scale::pick(180.3, &HOUR_SCALES, 2);
        assert_eq!((s.unit, s.fmt(180.3)), ("h", "180.30".to_owned()));
        let s = Scale::pick(0.5, &HOUR_SCALES, 0);
        assert_eq!((s.unit, s.fmt(0.5)), ("min", "30.0".to_owned()));
        let s = Scale::pick(10.0 / 3600.0, &HOUR_SCALES, 0);
        assert_eq!((s.unit, s.fmt(10.0 / 3600.0)), ("s", "10.0".to_owned()));
        let s = Scale::pick(0.0001, &KG_SCALES, 0);
        assert_eq!((s.unit, s.fmt(0.0001)), ("g", "0.100".to_owned()));
        assert_eq!(Scale::pick(0.0, &KG_SCALES, 0).fmt(0.0), "0.00");
        assert_eq!(Scale::pick(200.0, &HOUR_SCALES, 1).fmt(200.0), "200.0");
    }
}
