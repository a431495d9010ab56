//! Annual grid carbon intensity per zone, from the data file `data/zones.csv` (its header
//! cites the source), compiled in with `include_str!` and parsed on first use.

use std::sync::LazyLock;

/// One zone's annual average intensity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Zone {
    /// Zone code: ISO 3166-1 alpha-2, `WORLD` or `EU`.
    pub code: &'static str,
    /// Country or region name.
    pub name: &'static str,
    /// Grams CO2e per kWh generated.
    pub g_per_kwh: f64,
    /// Year of the figure.
    pub year: u16,
}

/// Citation for every row of [`ZONES`].
pub const ZONES_SOURCE: &str = "Ember yearly electricity data, lifecycle, production-based (via thegreenwebfoundation/co2.js@b459b5e data/output/average-intensities.json)";

/// The data file: `#` comment lines (the source), a header, one zone per line.
pub const ZONES_CSV: &str = include_str!("../data/zones.csv");

/// All zones, `EU` and `WORLD` first, then by code.
pub static ZONES: LazyLock<Vec<Zone>> = LazyLock::new(|| parse(ZONES_CSV).0);

/// Parses the zone table; returns the zones and the 1-based numbers of lines that are not a
/// zone (none in the shipped file: a test holds it to that).
fn parse(text: &'static str) -> (Vec<Zone>, Vec<usize>) {
    let mut zones = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() || line.starts_with("code,") {
            continue;
        }
        let mut f = line.split(',');
        let zone = (|| {
            Some(Zone {
                code: f.next()?,
                name: f.next()?,
                g_per_kwh: f.next()?.parse().ok().filter(|g: &f64| g.is_finite())?,
                year: f.next()?.parse().ok()?,
            })
        })();
        match zone {
            Some(z) if f.next().is_none() => zones.push(z),
            _ => bad.push(i + 1),
        }
    }
    (zones, bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_of_the_data_file_is_a_zone() {
        let (zones, bad) = parse(ZONES_CSV);
        assert!(bad.is_empty(), "malformed lines in data/zones.csv: {bad:?}");
        assert_eq!(zones.len(), 211);
        assert_eq!(zones[0].code, "EU");
        assert_eq!(zones[1].code, "WORLD");
        assert_eq!(zones[1].g_per_kwh, 472.94);
        let de = zones.iter().find(|z| z.code == "DE").unwrap();
        assert_eq!((de.g_per_kwh, de.year), (342.06, 2024));
        let codes: std::collections::HashSet<_> = zones.iter().map(|z| z.code).collect();
        assert_eq!(codes.len(), zones.len(), "codes are unique");
    }
}
