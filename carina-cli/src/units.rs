//! Human-readable figures with their units, shared by every command's output.

/// Energy with a unit that keeps 3 significant digits: J, kJ, Wh, kWh.
pub fn energy(j: f64) -> String {
    let wh = j / 3600.0;
    if j.abs() < 1000.0 {
        format!("{} J", sig(j))
    } else if wh.abs() < 1000.0 {
        format!("{} Wh", sig(wh))
    } else {
        format!("{} kWh", sig(wh / 1000.0))
    }
}

/// Grams CO2e: g, kg or t.
pub fn co2e(g: f64) -> String {
    if g.abs() < 1000.0 {
        format!("{} g", sig(g))
    } else if g.abs() < 1e6 {
        format!("{} kg", sig(g / 1000.0))
    } else {
        format!("{} t", sig(g / 1e6))
    }
}

/// A duration in s, min or h.
pub fn duration(s: f64) -> String {
    if s.abs() < 120.0 {
        format!("{} s", sig(s))
    } else if s.abs() < 7200.0 {
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
    }
}
