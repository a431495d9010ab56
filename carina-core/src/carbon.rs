//! Grid emission factors: energy to grams CO2e.

use crate::record::CarbonInfo;
use crate::units::Joules;

/// A fixed grid emission factor in grams CO2e per kWh, with where it comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct CarbonFactor {
    /// Grams CO2e per kWh.
    pub g_per_kwh: f64,
    /// Grid zone, if the factor is a zone's average.
    pub zone: Option<String>,
    /// Citation or description of the factor.
    pub source: String,
}

/// World average lifecycle intensity of electricity generation, 2024: 472.94 gCO2e/kWh.
///
/// Source: Ember yearly electricity data (country_overview_yearly), as cached by
/// thegreenwebfoundation/co2.js@b459b5e `data/output/average-intensities.json` (fetched
/// 2025-08). Lifecycle basis, production-based.
pub const WORLD_G_PER_KWH: f64 = 472.94;

const WORLD_SOURCE: &str = "Ember 2024 world average, lifecycle, production-based \
(via thegreenwebfoundation/co2.js@b459b5e data/output/average-intensities.json)";

impl CarbonFactor {
    /// The default: the 2024 world average ([`WORLD_G_PER_KWH`]).
    pub fn world() -> Self {
        CarbonFactor {
            g_per_kwh: WORLD_G_PER_KWH,
            zone: Some("WORLD".to_owned()),
            source: WORLD_SOURCE.to_owned(),
        }
    }

    /// A factor given by the user.
    pub fn fixed(g_per_kwh: f64) -> Self {
        CarbonFactor {
            g_per_kwh,
            zone: None,
            source: "user-given factor".to_owned(),
        }
    }

    /// Grams CO2e emitted by `energy` at this factor.
    pub fn grams(&self, energy: Joules) -> f64 {
        energy.kwh() * self.g_per_kwh
    }

    /// The run-file form of this factor.
    pub fn info(&self) -> CarbonInfo {
        CarbonInfo {
            g_per_kwh: self.g_per_kwh,
            zone: self.zone.clone(),
            source: self.source.clone(),
        }
    }
}

impl Default for CarbonFactor {
    fn default() -> Self {
        Self::world()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_cycle_converts_to_published_co2e() {
        // 48.67 kWh at 0.448 kg/kWh is the ~21.8 kg CO2e of the reference refresh cycle.
        let f = CarbonFactor::fixed(448.0);
        let g = f.grams(Joules(48.67 * Joules::PER_KWH));
        assert!((g / 1000.0 - 21.80).abs() < 0.01, "{g}");
    }

    #[test]
    fn world_default_is_cited() {
        let w = CarbonFactor::default();
        assert_eq!(w.g_per_kwh, 472.94);
        assert!(w.source.contains("Ember"));
    }
}
