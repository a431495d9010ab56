//! The default calendar ([`WeekdayPeak`]): peak on weekdays' working hours, UTC.

use crate::{Calendar, Slot};
use jiff::Timestamp;

/// The default schedule: peak Monday to Friday from `start_hour` to `end_hour` UTC (08:00 to
/// 20:00 by default), off-peak otherwise (nights and weekends). It gives no tariffs, so the
/// simulator's [`Tariffs`](super::Tariffs) apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeekdayPeak {
    /// Hour (UTC, 0..=23) the weekday peak window opens.
    pub start_hour: u8,
    /// Hour (UTC, 1..=24, after `start_hour`) the weekday peak window closes.
    pub end_hour: u8,
}

impl Default for WeekdayPeak {
    fn default() -> Self {
        WeekdayPeak {
            start_hour: 8,
            end_hour: 20,
        }
    }
}

impl WeekdayPeak {
    /// Describes the windows, e.g. `Mon-Fri 08:00-20:00 UTC`.
    pub fn describe(&self) -> String {
        format!(
            "Mon-Fri {:02}:00-{:02}:00 UTC",
            self.start_hour, self.end_hour
        )
    }

    fn bounds_s(&self) -> (i64, i64) {
        let s = i64::from(self.start_hour.min(23)) * 3600;
        let e = i64::from(self.end_hour.clamp(self.start_hour.min(23) + 1, 24)) * 3600;
        (s, e)
    }
}

/// Monday = 0 .. Sunday = 6 of the UTC day `day` (days since 1970-01-01, a Thursday).
pub(super) fn weekday(day: i64) -> i64 {
    (day + 3).rem_euclid(7)
}

impl Calendar for WeekdayPeak {
    fn slot(&self, t: Timestamp) -> Slot {
        let secs = t.as_second();
        let day = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let (s, e) = self.bounds_s();
        Slot {
            peak: weekday(day) < 5 && (s..e).contains(&sod),
            tariff_per_kwh: None,
        }
    }

    fn next_change(&self, t: Timestamp) -> Option<Timestamp> {
        let secs = t.as_second();
        let today = secs.div_euclid(86_400);
        let (s, e) = self.bounds_s();
        (today..today + 8)
            .filter(|d| weekday(*d) < 5)
            .flat_map(|d| [d * 86_400 + s, d * 86_400 + e])
            .find(|b| *b > secs)
            .and_then(|b| Timestamp::from_second(b).ok())
    }
}
