//! Electricity prices for slots whose calendar gives none ([`Tariffs`]).

use crate::Slot;

/// Default price per kWh in peak windows, when the calendar gives none.
pub const DEFAULT_PEAK_TARIFF: f64 = 0.30;
/// Default price per kWh off-peak, when the calendar gives none.
pub const DEFAULT_OFFPEAK_TARIFF: f64 = 0.18;

/// Prices per kWh for slots whose calendar gives none.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tariffs {
    /// Price per kWh in peak windows.
    pub peak_per_kwh: f64,
    /// Price per kWh off-peak.
    pub offpeak_per_kwh: f64,
}

impl Default for Tariffs {
    fn default() -> Self {
        Tariffs {
            peak_per_kwh: DEFAULT_PEAK_TARIFF,
            offpeak_per_kwh: DEFAULT_OFFPEAK_TARIFF,
        }
    }
}

impl Tariffs {
    /// The price in `slot`: the calendar's if it has one, else this table's.
    pub fn price(&self, slot: Slot) -> f64 {
        slot.tariff_per_kwh.unwrap_or(if slot.peak {
            self.peak_per_kwh
        } else {
            self.offpeak_per_kwh
        })
    }
}
