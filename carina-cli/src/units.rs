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

/// Three significant digits, no exponent for everyday magnitudes.
pub fn sig(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let mag = x.abs().log10().floor() as i32;
    if !(-4..=8).contains(&mag) {
        return format!("{x:.2e}");
    }
    let decimals = (2 - mag).max(0) as usize;
    format!("{x:.decimals$}")
}

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
}
