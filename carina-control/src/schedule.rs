//! Peak schedules: when electricity is expensive (or dirty), in local wall-clock time.
//!
//! A [`Schedule`] is a list of *peak windows* in one IANA time zone, plus optional holidays and
//! tariffs. Every instant that no window covers is off-peak. A schedule implements
//! [`Calendar`], so the governor and the simulator can ask it what slot an instant is in and when
//! the slot changes next.
//!
//! # File format (TOML)
//!
//! ```toml
//! # Required: an IANA time zone name ("Europe/Berlin", "America/New_York", "UTC").
//! # Windows are in this zone's local wall-clock time, daylight saving time included.
//! timezone = "Europe/Berlin"
//!
//! # Optional: local dates that are off-peak all day. Quoted strings "YYYY-MM-DD" or TOML
//! # local dates (2026-12-25, unquoted) are both accepted.
//! holidays = ["2026-12-24", "2026-12-25", "2026-12-26", 2026-12-31]
//!
//! # Optional: the price of electricity outside the peak windows, currency units per kWh.
//! offpeak_tariff = 0.21
//!
//! # Zero or more peak windows, each a [[peak]] table.
//! [[peak]]
//! days = "Mon-Fri"           # weekdays on which the window starts
//! hours = "08:00-20:00"      # local start-end, end exclusive
//! tariff = 0.38              # optional, currency units per kWh inside this window
//!
//! [[peak]]
//! days = "Sat"
//! hours = "17:00-21:00"
//! tariff = 0.31
//!
//! [[peak]]
//! days = "Mon-Wed,Fri"
//! hours = "22:00-06:00"      # crosses midnight: Mon 22:00 to Tue 06:00, and so on
//! ```
//!
//! Fields (no other keys are allowed, so typos are reported rather than ignored):
//!
//! | key | type | required | meaning |
//! |---|---|---|---|
//! | `timezone` | string | yes | IANA time zone name; `"UTC"` for UTC |
//! | `holidays` | array of dates | no | local dates treated as off-peak all day |
//! | `offpeak_tariff` | number | no | price per kWh when no window applies |
//! | `peak` | array of tables | no | the peak windows (none: always off-peak) |
//! | `peak[].days` | string | yes | days on which the window starts |
//! | `peak[].hours` | string | yes | local time range `HH:MM-HH:MM` |
//! | `peak[].tariff` | number | no | price per kWh inside the window |
//!
//! **Days** are a comma-separated list of day names and ranges: `"Mon-Fri"`, `"Sat,Sun"`,
//! `"Mon-Wed,Fri"`. Names are the English three-letter abbreviations or full names, in any
//! case (`mon`, `Monday`). A range may wrap around the week (`"Fri-Mon"` is Friday, Saturday,
//! Sunday and Monday). The words `daily` (every day), `weekdays` (Mon-Fri) and `weekend` /
//! `weekends` (Sat, Sun) can be used alone or in a list.
//!
//! **Hours** are `HH:MM-HH:MM` in 24-hour local time (`H:MM` is accepted too); the start is
//! included and the end excluded. The end may be `24:00`, midnight at the end of the day (an
//! end of `00:00` means the same); the start may not. Start and end must differ. When the end
//! is earlier than the start (`"22:00-06:00"`) the window crosses midnight: it starts on each
//! listed day and ends on the following day, whether or not that day is listed.
//!
//! **Tariffs** are plain numbers (integers or floats, negative prices allowed) in whatever
//! currency the user chooses; Carina never converts them. An instant's tariff is the tariff of
//! the first window (in file order) that covers it, else `offpeak_tariff`; either may be absent.
//! Windows may overlap: an instant is peak when at least one window covers it.
//!
//! **Holidays** are whole local dates during which no window applies. A window that starts on a
//! holiday does not occur at all (so an overnight window starting on a holiday does not spill
//! into the next morning), and the part of a window from the day before that reaches past
//! midnight into a holiday is cut at midnight.
//!
//! # Daylight saving time
//!
//! Windows are defined on the local wall clock, so an instant is in a window when its local
//! time is, in any zone and for any size of offset change (the 30-minute shifts of
//! Australia/Lord_Howe included). Consequences on transition days:
//!
//! - **Spring forward** (Europe/Berlin, 2026-03-29: 02:00 CET becomes 03:00 CEST, local times
//!   02:00-02:59 do not exist). A window that starts in the skipped hour starts at the next
//!   valid instant, 03:00 CEST; a window `01:00-04:00` lasts two real hours that day; a window
//!   `02:00-03:00` does not occur at all that day.
//! - **Fall back** (Europe/Berlin, 2026-10-25: 03:00 CEST becomes 02:00 CET, local times
//!   02:00-02:59 happen twice). The repeated hour is inside a window whenever its local time
//!   is: a window `02:00-03:00` lasts two real hours (both passes), `01:00-04:00` lasts four.
//!
//! [`Calendar::next_change`] returns the exact instant at which the slot (peak flag or
//! tariff) changes next, taking all of the above into account, so a governor can sleep until
//! then; it returns `None` when the slot does not change within 366 days.
//!
//! # Default schedule
//!
//! [`Schedule::default_weekday_peak`] is `Mon-Fri 08:00-20:00` in UTC, no holidays, no
//! tariffs. The simulator's command line uses it when no schedule file is given.
//!
//! # In code
//!
//! ```
//! use carina_control::{Calendar, schedule::Schedule};
//! let s = Schedule::builder("Europe/Berlin")
//!     .peak_with_tariff("Mon-Fri 08:00-20:00", 0.38)
//!     .holiday("2026-12-25")
//!     .offpeak_tariff(0.21)
//!     .build()?;
//! let t: jiff::Timestamp = "2026-12-24T10:00:00Z".parse()?; // Thursday, 11:00 in Berlin
//! assert!(s.slot(t).peak);
//! assert_eq!(s.slot(t).tariff_per_kwh, Some(0.38));
//! // The window ends at 20:00 local (19:00 UTC)...
//! let end = s.next_change(t).unwrap();
//! assert_eq!(end.to_string(), "2026-12-24T19:00:00Z");
//! // ...and, Friday 25th being a holiday, the next one starts on Monday 28th, 08:00 local.
//! assert_eq!(s.next_change(end).unwrap().to_string(), "2026-12-28T07:00:00Z");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use super::{Calendar, Slot};
use carina_runtime::text::edit_distance;
use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

const NANOS_PER_MINUTE: i64 = 60_000_000_000;
const MINUTES_PER_DAY: u16 = 24 * 60;
/// How far [`Calendar::next_change`] looks ahead.
const LOOKAHEAD: SignedDuration = SignedDuration::from_hours(366 * 24);
/// The origin that builder errors name instead of a file.
const BUILDER_ORIGIN: &str = "<schedule builder>";

// ---------------------------------------------------------------------------------------------
// Days
// ---------------------------------------------------------------------------------------------

/// A set of weekdays.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Days(u8);

const DAY_NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const DAY_FULL_NAMES: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

impl Days {
    /// No day.
    pub const NONE: Days = Days(0);
    /// Monday to Sunday.
    pub const DAILY: Days = Days(0b111_1111);
    /// Monday to Friday.
    pub const WEEKDAYS: Days = Days(0b001_1111);
    /// Saturday and Sunday.
    pub const WEEKEND: Days = Days(0b110_0000);

    /// The set of the given weekdays.
    pub fn of(days: impl IntoIterator<Item = Weekday>) -> Days {
        days.into_iter().fold(Days::NONE, |acc, d| acc.with(d))
    }

    /// This set plus `day`.
    pub fn with(self, day: Weekday) -> Days {
        Days(self.0 | 1 << day.to_monday_zero_offset())
    }

    /// Whether `day` is in the set.
    pub fn contains(self, day: Weekday) -> bool {
        self.contains_index(day.to_monday_zero_offset())
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    fn contains_index(self, monday_zero: i8) -> bool {
        self.0 & (1 << monday_zero) != 0
    }

    /// Parses a day list: `"Mon-Fri"`, `"Sat,Sun"`, `"Mon-Wed,Fri"`, `"daily"`, `"weekdays"`,
    /// `"weekend"`; see the [module documentation](self). The error says what is wrong.
    pub fn parse(text: &str) -> Result<Days, String> {
        if text.trim().is_empty() {
            return Err("empty (expected e.g. \"Mon-Fri\", \"Sat,Sun\" or \"daily\")".into());
        }
        let mut days = Days::NONE;
        for item in text.split(',') {
            let item = item.trim();
            if item.is_empty() {
                return Err("empty item in the list (two commas, or a trailing comma)".into());
            }
            match item.to_ascii_lowercase().as_str() {
                "daily" | "everyday" | "every day" | "all" => {
                    days = Days(days.0 | Days::DAILY.0);
                    continue;
                }
                "weekdays" => {
                    days = Days(days.0 | Days::WEEKDAYS.0);
                    continue;
                }
                "weekend" | "weekends" => {
                    days = Days(days.0 | Days::WEEKEND.0);
                    continue;
                }
                _ => {}
            }
            match item.split_once('-') {
                Some((a, b)) => {
                    let a = day_index(a)?;
                    let b = day_index(b)?;
                    let mut i = a;
                    loop {
                        days.0 |= 1 << i;
                        if i == b {
                            break;
                        }
                        i = (i + 1) % 7;
                    }
                }
                None => days.0 |= 1 << day_index(item)?,
            }
        }
        Ok(days)
    }
}

/// Monday-zero index of a day name.
fn day_index(name: &str) -> Result<i8, String> {
    let n = name.trim().to_ascii_lowercase();
    for (i, (short, full)) in DAY_NAMES.iter().zip(DAY_FULL_NAMES).enumerate() {
        if n == short.to_ascii_lowercase() || n == full {
            return Ok(i as i8);
        }
    }
    Err(format!(
        "unknown day `{}` (expected Mon, Tue, Wed, Thu, Fri, Sat, Sun, a range like Mon-Fri, \
         or daily, weekdays, weekend)",
        name.trim()
    ))
}

impl fmt::Display for Days {
    /// Canonical form: `daily`, or runs of three or more days as ranges (`Mon-Fri`) and other
    /// days listed (`Sat,Sun`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == Days::DAILY {
            return f.write_str("daily");
        }
        if self.is_empty() {
            return f.write_str("none");
        }
        let mut parts = Vec::new();
        let mut i = 0i8;
        while i < 7 {
            if !self.contains_index(i) {
                i += 1;
                continue;
            }
            let start = i;
            while i + 1 < 7 && self.contains_index(i + 1) {
                i += 1;
            }
            match i - start {
                0 => parts.push(DAY_NAMES[start as usize].to_owned()),
                1 => {
                    parts.push(DAY_NAMES[start as usize].to_owned());
                    parts.push(DAY_NAMES[i as usize].to_owned());
                }
                _ => parts.push(format!(
                    "{}-{}",
                    DAY_NAMES[start as usize], DAY_NAMES[i as usize]
                )),
            }
            i += 1;
        }
        f.write_str(&parts.join(","))
    }
}

impl fmt::Debug for Days {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Days({self})")
    }
}

// ---------------------------------------------------------------------------------------------
// Peak windows
// ---------------------------------------------------------------------------------------------

/// One peak window: the days it starts on, a local start and end time, an optional tariff.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeakWindow {
    days: Days,
    start: u16,
    end: u16,
    tariff: Option<f64>,
}

impl PeakWindow {
    /// A window on `days` from `start_minute` to `end_minute`, minutes after local midnight
    /// (`0..1440` for the start, `1..=1440` for the end; `end < start` crosses midnight).
    pub fn new(days: Days, start_minute: u16, end_minute: u16) -> Result<PeakWindow, String> {
        if start_minute >= MINUTES_PER_DAY {
            return Err(format!(
                "the start must be before 24:00 (got minute {start_minute})"
            ));
        }
        if end_minute == 0 || end_minute > MINUTES_PER_DAY {
            return Err(format!(
                "the end must be after 00:00 and at most 24:00 (got minute {end_minute}; \
                 write midnight at the end of the day as 24:00)"
            ));
        }
        if start_minute == end_minute {
            return Err("start equals end (an empty window)".into());
        }
        if days.is_empty() {
            return Err("no days".into());
        }
        Ok(PeakWindow {
            days,
            start: start_minute,
            end: end_minute,
            tariff: None,
        })
    }

    /// Parses `"<days> <hours>"`, e.g. `"Mon-Fri 08:00-20:00"` or `"daily 22:00-06:00"`.
    pub fn parse(spec: &str) -> Result<PeakWindow, String> {
        let spec = spec.trim();
        let Some((days, hours)) = spec.rsplit_once(char::is_whitespace) else {
            return Err(format!(
                "`{spec}`: expected \"<days> <HH:MM-HH:MM>\", e.g. \"Mon-Fri 08:00-20:00\""
            ));
        };
        let days = Days::parse(days)?;
        let (start, end) = parse_hours(hours)?;
        PeakWindow::new(days, start, end)
    }

    /// The same window with a tariff (currency units per kWh).
    pub fn with_tariff(mut self, tariff_per_kwh: f64) -> PeakWindow {
        self.tariff = Some(tariff_per_kwh);
        self
    }

    /// The days the window starts on.
    pub fn days(&self) -> Days {
        self.days
    }

    /// Start, minutes after local midnight.
    pub fn start_minute(&self) -> u16 {
        self.start
    }

    /// End, minutes after local midnight (1440 = 24:00; less than the start when the window
    /// crosses midnight).
    pub fn end_minute(&self) -> u16 {
        self.end
    }

    /// The window's tariff, if any.
    pub fn tariff(&self) -> Option<f64> {
        self.tariff
    }

    /// Whether the window ends on the day after it starts.
    pub fn crosses_midnight(&self) -> bool {
        self.end < self.start
    }

    /// Whether the window covers local position `ns` (nanoseconds after midnight) of the local
    /// day `day` (days since 1970-01-01), given the holiday set. The rule itself; `slot` reads
    /// it from the table `cover_table` builds, which tests check against this.
    #[cfg(test)]
    fn covers(&self, day: i64, ns: i64, holidays: &BTreeSet<i64>) -> bool {
        let start_ns = i64::from(self.start) * NANOS_PER_MINUTE;
        let end_ns = i64::from(self.end) * NANOS_PER_MINUTE;
        let starts_on =
            |d: i64| self.days.contains_index(weekday_index(d)) && !holidays.contains(&d);
        if self.start < self.end {
            starts_on(day) && start_ns <= ns && ns < end_ns
        } else {
            (starts_on(day) && ns >= start_ns) || (starts_on(day - 1) && ns < end_ns)
        }
    }
}

impl fmt::Display for PeakWindow {
    /// `Mon-Fri 08:00-20:00`, as [`PeakWindow::parse`] reads it (without the tariff).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}-{}", self.days, hhmm(self.start), hhmm(self.end))
    }
}

fn hhmm(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// Parses `HH:MM-HH:MM` into (start, end) minutes; checks the ranges but not start != end.
fn parse_hours(text: &str) -> Result<(u16, u16), String> {
    let Some((a, b)) = text.split_once('-') else {
        return Err("expected HH:MM-HH:MM, e.g. 08:00-20:00".into());
    };
    let start = parse_time(a, false)?;
    let end = parse_time(b, true)?;
    if start == end {
        return Err("start equals end (an empty window)".into());
    }
    Ok((start, if end == 0 { MINUTES_PER_DAY } else { end }))
}

/// `HH:MM` (or `H:MM`) into minutes after midnight; `24:00` only when `allow_24`.
fn parse_time(text: &str, allow_24: bool) -> Result<u16, String> {
    let t = text.trim();
    let bad = || format!("bad time `{t}` (expected HH:MM from 00:00 to 23:59, or 24:00 as an end)");
    let (h, m) = t.split_once(':').ok_or_else(bad)?;
    let digits = |s: &str, max_len: usize| {
        !s.is_empty() && s.len() <= max_len && s.bytes().all(|c| c.is_ascii_digit())
    };
    if !digits(h, 2) || !digits(m, 2) || m.len() != 2 {
        return Err(bad());
    }
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        return Err(bad());
    }
    if h == 24 && !allow_24 {
        return Err(format!("bad time `{t}`: a window cannot start at 24:00"));
    }
    Ok(h * 60 + m)
}

/// Monday-zero weekday of a day number (days since 1970-01-01, a Thursday).
fn weekday_index(day: i64) -> i8 {
    (day + 3).rem_euclid(7) as i8
}

/// Days since 1970-01-01 of a civil date.
fn day_number(date: Date) -> i64 {
    date.duration_since(Date::constant(1970, 1, 1)).as_secs() / 86_400
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Where in a schedule a problem is: the file (or `<schedule builder>`), the line if known, and
/// the field (`timezone`, `holidays[2]`, `peak[0].hours`, ...; array indices count from 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file name given to [`Schedule::parse`] or [`Schedule::load`].
    pub origin: String,
    /// 1-based line, when the problem is in the file.
    pub line: Option<usize>,
    /// The field's path.
    pub field: String,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: `{}`", self.origin, line, self.field),
            None => write!(f, "{}: `{}`", self.origin, self.field),
        }
    }
}

/// A schedule that cannot be read or is invalid. Every variant names the file; all but
/// [`ScheduleError::Read`] name the line (when known) and the field.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// The file cannot be read.
    #[error("cannot read schedule file `{}`: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid TOML.
    #[error("{origin}:{line}: invalid TOML: {message}")]
    Syntax {
        /// The file name.
        origin: String,
        /// 1-based line.
        line: usize,
        /// The parser's message.
        message: String,
    },
    /// A key the format does not know (often a typo).
    #[error("{at}: unknown field (expected one of: {expected})")]
    UnknownField {
        /// Where.
        at: Location,
        /// The keys allowed there.
        expected: &'static str,
    },
    /// A required key is absent.
    #[error("{at}: missing (required)")]
    MissingField {
        /// Where.
        at: Location,
    },
    /// A value of the wrong TOML type.
    #[error("{at}: expected {expected}, found {found}")]
    WrongType {
        /// Where.
        at: Location,
        /// What the format wants.
        expected: &'static str,
        /// What the file has.
        found: &'static str,
    },
    /// The time zone is not in the time zone database.
    #[error("{at}: unknown time zone `{name}`{}", suggestion_text(suggestions))]
    UnknownTimeZone {
        /// Where.
        at: Location,
        /// The name given.
        name: String,
        /// Close matches from the database (may be empty).
        suggestions: Vec<String>,
    },
    /// A bad day list (`days`).
    #[error("{at}: bad days `{value}`: {reason}")]
    BadDays {
        /// Where.
        at: Location,
        /// The value given.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// A bad time range (`hours`): bad time, start equal to end, ...
    #[error("{at}: bad hours `{value}`: {reason}")]
    BadHours {
        /// Where.
        at: Location,
        /// The value given.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// A bad window given to the builder as one string (`"Mon-Fri 08:00-20:00"`).
    #[error("{at}: bad window `{value}`: {reason}")]
    BadWindow {
        /// Where.
        at: Location,
        /// The value given.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// A holiday that is not a valid `YYYY-MM-DD` date.
    #[error("{at}: bad holiday date `{value}`: {reason}")]
    BadHoliday {
        /// Where.
        at: Location,
        /// The value given.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// A tariff that is not a finite number.
    #[error("{at}: bad tariff `{value}`: expected a finite number (price per kWh)")]
    BadTariff {
        /// Where.
        at: Location,
        /// The value given.
        value: String,
    },
}

fn suggestion_text(suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        if jiff::tz::db().is_definitively_empty() {
            " (no time zone database was found on this system)".to_owned()
        } else {
            " (expected an IANA name such as \"Europe/Berlin\" or \"UTC\")".to_owned()
        }
    } else {
        format!(" (did you mean {}?)", suggestions.join(", "))
    }
}

impl ScheduleError {
    /// The location of the problem, for all variants except [`ScheduleError::Read`] and
    /// [`ScheduleError::Syntax`].
    pub fn location(&self) -> Option<&Location> {
        match self {
            ScheduleError::Read { .. } | ScheduleError::Syntax { .. } => None,
            ScheduleError::UnknownField { at, .. }
            | ScheduleError::MissingField { at }
            | ScheduleError::WrongType { at, .. }
            | ScheduleError::UnknownTimeZone { at, .. }
            | ScheduleError::BadDays { at, .. }
            | ScheduleError::BadHours { at, .. }
            | ScheduleError::BadWindow { at, .. }
            | ScheduleError::BadHoliday { at, .. }
            | ScheduleError::BadTariff { at, .. } => Some(at),
        }
    }

    /// The 1-based line of the problem, when known.
    pub fn line(&self) -> Option<usize> {
        match self {
            ScheduleError::Syntax { line, .. } => Some(*line),
            _ => self.location().and_then(|l| l.line),
        }
    }
}

/// Looks up a time zone; `UTC` works without a time zone database.
fn lookup_time_zone(name: &str) -> Result<(TimeZone, String), Vec<String>> {
    let trimmed = name.trim();
    if trimmed.eq_ignore_ascii_case("UTC") || trimmed.eq_ignore_ascii_case("Etc/UTC") {
        return Ok((TimeZone::UTC, "UTC".to_owned()));
    }
    match TimeZone::get(trimmed) {
        Ok(tz) => {
            let canonical = tz.iana_name().unwrap_or(trimmed).to_owned();
            Ok((tz, canonical))
        }
        Err(_) => Err(close_time_zones(trimmed)),
    }
}

/// Up to five time zone names close to `name` (same city, or a small edit distance).
fn close_time_zones(name: &str) -> Vec<String> {
    let want = name.to_ascii_lowercase();
    let want_city = want.rsplit('/').next().unwrap_or(&want).to_owned();
    let mut scored: Vec<(usize, String)> = jiff::tz::db()
        .available()
        .filter_map(|n| {
            let n = n.as_str().to_owned();
            let lower = n.to_ascii_lowercase();
            let city = lower.rsplit('/').next().unwrap_or(&lower);
            let d_full = edit_distance(&want, &lower);
            let d_city = edit_distance(&want_city, city);
            let d = d_full.min(d_city + 1);
            let tolerance = (want_city.len() / 4).max(2);
            (d <= tolerance || (want_city.len() >= 3 && city.starts_with(&want_city)))
                .then_some((d, n))
        })
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(5).map(|(_, n)| n).collect()
}

/// Parses a `YYYY-MM-DD` holiday.
fn parse_date(text: &str) -> Result<Date, String> {
    let t = text.trim();
    let b = t.as_bytes();
    let shape_ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape_ok {
        return Err("expected a date YYYY-MM-DD, e.g. 2026-12-25".into());
    }
    let y: i16 = t[0..4].parse().map_err(|_| "bad year".to_owned())?;
    let m: i8 = t[5..7].parse().map_err(|_| "bad month".to_owned())?;
    let d: i8 = t[8..10].parse().map_err(|_| "bad day".to_owned())?;
    Date::new(y, m, d).map_err(|_| "no such date".to_owned())
}

// ---------------------------------------------------------------------------------------------
// The schedule
// ---------------------------------------------------------------------------------------------

/// Peak windows in an IANA time zone, with holidays and tariffs. See the
/// [module documentation](self) for the file format and the daylight-saving rules.
#[derive(Debug, Clone)]
pub struct Schedule {
    tz: TimeZone,
    tz_name: String,
    windows: Vec<PeakWindow>,
    holidays: Vec<Date>,
    holiday_days: BTreeSet<i64>,
    offpeak_tariff: Option<f64>,
    /// For each minute of the local day, the next minute (1..=1440) at which a window starts
    /// or ends: where the slot may change next. Windows start and end on whole minutes.
    next_boundary: Vec<u16>,
    /// The window that covers each minute of a local day that is not a holiday (`NO_WINDOW`:
    /// none), per Monday-zero weekday and whether the day before is a holiday (which cancels
    /// the tails of its overnight windows): index `(weekday * 2 + yesterday_holiday) * 1440 +
    /// minute`. It turns `slot` into one lookup instead of a scan of every window, which a
    /// schedule of hundreds of windows a day makes slow (the simulator asks at every boundary).
    cover: Vec<u32>,
    /// The time zone's offsets over [`OFFSETS_FROM_S`, `OFFSETS_UNTIL_S`), read from `tz` once:
    /// jiff takes hundreds of nanoseconds per offset lookup in a zone with rules, and the
    /// simulator asks at every boundary of the schedule.
    offsets: OffsetTable,
}

/// The span the offset table covers: 1900-01-01 to 2200-01-01 UTC, in Unix seconds.
const OFFSETS_FROM_S: i64 = -2_208_988_800;
const OFFSETS_UNTIL_S: i64 = 7_258_118_400;

/// A time zone's UTC offsets over a span, as sorted transitions.
#[derive(Debug, Clone)]
struct OffsetTable {
    /// The offset (seconds) before the first transition.
    before: i32,
    /// `(instant in Unix seconds, offset in seconds from then on)`, by instant.
    transitions: Vec<(i64, i32)>,
}

impl OffsetTable {
    fn of(tz: &TimeZone) -> OffsetTable {
        let from = Timestamp::from_second(OFFSETS_FROM_S).unwrap_or(Timestamp::MIN);
        let transitions = tz
            .following(from)
            .map(|tr| (tr.timestamp().as_second(), tr.offset().seconds()))
            .take_while(|&(at, _)| at < OFFSETS_UNTIL_S)
            .collect();
        OffsetTable {
            before: tz.to_offset(from).seconds(),
            transitions,
        }
    }

    fn covers(second: i64) -> bool {
        (OFFSETS_FROM_S..OFFSETS_UNTIL_S).contains(&second)
    }

    /// The offset at Unix second `second`, which the table covers.
    fn offset_at(&self, second: i64) -> i32 {
        match self.transitions.partition_point(|&(at, _)| at <= second) {
            0 => self.before,
            i => self.transitions[i - 1].1,
        }
    }

    /// The first transition after Unix second `second` within the table, else the table's end
    /// (a harmless extra point for `next_change` to look at, from where jiff takes over).
    fn next_after(&self, second: i64) -> i64 {
        let i = self.transitions.partition_point(|&(at, _)| at <= second);
        self.transitions
            .get(i)
            .map_or(OFFSETS_UNTIL_S, |&(at, _)| at)
    }
}

/// No window covers the interval, in [`Schedule::cover`].
const NO_WINDOW: u32 = u32::MAX;

/// The table of [`Schedule::cover`]: for each (weekday, yesterday a holiday), the first window
/// in file order that covers each minute, as `PeakWindow::covers` defines it.
fn cover_table(windows: &[PeakWindow]) -> Vec<u32> {
    let n = usize::from(MINUTES_PER_DAY);
    let mut table = vec![NO_WINDOW; 14 * n];
    // Marks the minutes of `[from, to)` not yet covered by an earlier window.
    let mark = |row: &mut [u32], from: u16, to: u16, wi: u32| {
        for slot in &mut row[usize::from(from)..usize::from(to)] {
            if *slot == NO_WINDOW {
                *slot = wi;
            }
        }
    };
    for wd in 0..7i8 {
        for yh in 0..2usize {
            let at = (wd as usize * 2 + yh) * n;
            let row = &mut table[at..at + n];
            let yesterday = (wd + 6) % 7;
            for (wi, w) in windows.iter().enumerate() {
                let wi = wi as u32;
                if w.start < w.end {
                    if w.days.contains_index(wd) {
                        mark(row, w.start, w.end, wi);
                    }
                } else {
                    // Overnight: from its start to midnight on its own days, and from midnight
                    // to its end on the day after one of them, unless that one is a holiday.
                    if w.days.contains_index(wd) {
                        mark(row, w.start, MINUTES_PER_DAY, wi);
                    }
                    if yh == 0 && w.days.contains_index(yesterday) {
                        mark(row, 0, w.end, wi);
                    }
                }
            }
        }
    }
    table
}

/// [`Schedule::next_boundary`]: for each minute, the next window start or end after it, or
/// 1440 (midnight, where the day's table changes).
fn next_boundaries(windows: &[PeakWindow]) -> Vec<u16> {
    let mut is_boundary = vec![false; usize::from(MINUTES_PER_DAY) + 1];
    is_boundary[usize::from(MINUTES_PER_DAY)] = true;
    for w in windows {
        is_boundary[usize::from(w.start)] = true;
        is_boundary[usize::from(w.end)] = true;
    }
    let mut next = vec![MINUTES_PER_DAY; usize::from(MINUTES_PER_DAY)];
    let mut upcoming = MINUTES_PER_DAY;
    for m in (0..MINUTES_PER_DAY).rev() {
        next[usize::from(m)] = upcoming;
        if is_boundary[usize::from(m)] {
            upcoming = m;
        }
    }
    next
}

impl Schedule {
    /// A schedule from its parts. Prefer [`Schedule::builder`], which also parses strings.
    pub fn new(
        tz: TimeZone,
        windows: Vec<PeakWindow>,
        holidays: impl IntoIterator<Item = Date>,
        offpeak_tariff: Option<f64>,
    ) -> Schedule {
        let tz_name = tz.iana_name().unwrap_or("UTC").to_owned();
        let mut holidays: Vec<Date> = holidays.into_iter().collect();
        holidays.sort();
        holidays.dedup();
        let holiday_days = holidays.iter().map(|&d| day_number(d)).collect();
        let next_boundary = next_boundaries(&windows);
        let cover = cover_table(&windows);
        let offsets = OffsetTable::of(&tz);
        Schedule {
            tz,
            tz_name,
            windows,
            holidays,
            holiday_days,
            offpeak_tariff,
            next_boundary,
            cover,
            offsets,
        }
    }

    /// Starts a builder for a schedule in the IANA time zone `tz` (checked by `build`).
    pub fn builder(tz: &str) -> ScheduleBuilder {
        ScheduleBuilder {
            tz: tz.to_owned(),
            windows: Vec::new(),
            holidays: Vec::new(),
            offpeak_tariff: None,
            error: None,
        }
    }

    /// The documented default: peak `Mon-Fri 08:00-20:00` in UTC, no holidays, no tariffs.
    pub fn default_weekday_peak() -> Schedule {
        let window =
            PeakWindow::new(Days::WEEKDAYS, 8 * 60, 20 * 60).expect("the default window is valid");
        Schedule::new(TimeZone::UTC, vec![window], [], None)
    }

    /// Largest schedule file read, bytes (1 MiB: thousands of windows and holidays).
    pub const MAX_FILE_BYTES: u64 = 1 << 20;

    /// Reads and parses a TOML schedule file. Only a regular file of at most
    /// [`MAX_FILE_BYTES`](Self::MAX_FILE_BYTES) is read: a FIFO, a device (`/dev/zero`) or a
    /// symlink to one is refused at once, without blocking and without reading it.
    pub fn load(path: impl AsRef<Path>) -> Result<Schedule, ScheduleError> {
        let path = path.as_ref();
        let text = carina_runtime::input::read_regular_to_string(path, Self::MAX_FILE_BYTES)
            .map_err(|e| ScheduleError::Read {
                path: path.to_owned(),
                source: e.into_io_error(),
            })?;
        Schedule::parse(&text, path)
    }

    /// Parses TOML schedule text; `origin` (usually the file's path) is named in errors.
    pub fn parse(text: &str, origin: impl AsRef<Path>) -> Result<Schedule, ScheduleError> {
        let origin = origin.as_ref().display().to_string();
        Parser {
            text,
            origin: &origin,
        }
        .parse()
    }

    /// The time zone.
    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }

    /// The time zone's name (canonical IANA spelling, e.g. `Europe/Berlin`).
    pub fn time_zone_name(&self) -> &str {
        &self.tz_name
    }

    /// The peak windows, in file order.
    pub fn windows(&self) -> &[PeakWindow] {
        &self.windows
    }

    /// The holidays, sorted.
    pub fn holidays(&self) -> &[Date] {
        &self.holidays
    }

    /// The off-peak tariff, if any.
    pub fn offpeak_tariff(&self) -> Option<f64> {
        self.offpeak_tariff
    }

    /// Whether the local date is a holiday.
    pub fn is_holiday(&self, date: Date) -> bool {
        self.holiday_days.contains(&day_number(date))
    }

    /// The first window (in file order) that covers `t`, if any.
    pub fn window_at(&self, t: Timestamp) -> Option<&PeakWindow> {
        self.window_at_local(self.local(t))
    }

    /// [`Schedule::window_at`] of a local (day, ns after midnight).
    fn window_at_local(&self, (day, ns): (i64, i64)) -> Option<&PeakWindow> {
        let holiday = |d: i64| !self.holiday_days.is_empty() && self.holiday_days.contains(&d);
        if holiday(day) {
            return None;
        }
        let row = (weekday_index(day) as usize) * 2 + usize::from(holiday(day - 1));
        let minute = (ns / NANOS_PER_MINUTE) as usize;
        let wi = self.cover[row * usize::from(MINUTES_PER_DAY) + minute];
        self.windows.get(wi as usize)
    }

    /// [`Schedule::window_at`] by scanning every window, as the rules say it: the reference the
    /// table is tested against.
    #[cfg(test)]
    fn window_at_by_scan(&self, t: Timestamp) -> Option<&PeakWindow> {
        let (day, ns) = self.local(t);
        if self.holiday_days.contains(&day) {
            return None;
        }
        self.windows
            .iter()
            .find(|w| w.covers(day, ns, &self.holiday_days))
    }

    /// A one-line description: `Mon-Fri 08:00-20:00, Sat 17:00-21:00 Europe/Berlin (2
    /// holidays)`.
    pub fn describe(&self) -> String {
        let mut s = if self.windows.is_empty() {
            "no peak windows".to_owned()
        } else {
            self.windows
                .iter()
                .map(|w| w.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        s.push(' ');
        s.push_str(&self.tz_name);
        match self.holidays.len() {
            0 => {}
            1 => s.push_str(" (1 holiday)"),
            n => s.push_str(&format!(" ({n} holidays)")),
        }
        s
    }

    /// The local day number (days since 1970-01-01) and position in it (ns after midnight).
    fn local(&self, t: Timestamp) -> (i64, i64) {
        Self::local_at(t, self.offset_at(t))
    }

    /// The UTC offset at `t`, seconds.
    fn offset_at(&self, t: Timestamp) -> i64 {
        if OffsetTable::covers(t.as_second()) {
            i64::from(self.offsets.offset_at(t.as_second()))
        } else {
            i64::from(self.tz.to_offset(t).seconds())
        }
    }

    /// [`Schedule::local`] with the offset known.
    fn local_at(t: Timestamp, offset: i64) -> (i64, i64) {
        let local_s = t.as_second() + offset;
        let day = local_s.div_euclid(86_400);
        let ns = local_s.rem_euclid(86_400) * 1_000_000_000 + i64::from(t.subsec_nanosecond());
        (day, ns)
    }
}

impl Schedule {
    /// The time zone's first offset transition after `t` (or, inside the offset table's span,
    /// the table's end when it holds no later one).
    fn transition_after(&self, t: Timestamp) -> Option<Timestamp> {
        if OffsetTable::covers(t.as_second()) {
            Timestamp::from_second(self.offsets.next_after(t.as_second())).ok()
        } else {
            self.tz.following(t).next().map(|tr| tr.timestamp())
        }
    }
}

impl Calendar for Schedule {
    fn slot(&self, t: Timestamp) -> Slot {
        self.slot_local(self.local(t))
    }

    /// Walks forward through the instants where the slot can change (local boundaries and the
    /// time zone's offset transitions) and returns the first one where it does.
    fn next_change(&self, t: Timestamp) -> Option<Timestamp> {
        let mut offset = self.offset_at(t);
        let current = self.slot_local(Self::local_at(t, offset));
        let limit = t.checked_add(LOOKAHEAD).unwrap_or(Timestamp::MAX);
        let mut x = t;
        // The next offset transition after `x`: the offset is constant before it.
        let mut transition = self.transition_after(x);
        loop {
            let (_, ns) = Self::local_at(x, offset);
            let minute = (ns / NANOS_PER_MINUTE) as usize;
            let next_boundary = i64::from(self.next_boundary[minute]) * NANOS_PER_MINUTE;
            let candidate = x.checked_add(SignedDuration::from_nanos(next_boundary - ns));
            let candidate = match candidate {
                Ok(c) => c,
                Err(_) => return None,
            };
            x = match transition {
                Some(tr) if tr <= candidate => {
                    transition = self.transition_after(tr);
                    offset = self.offset_at(tr);
                    tr
                }
                _ => candidate,
            };
            if x > limit {
                return None;
            }
            if self.slot_local(Self::local_at(x, offset)) != current {
                return Some(x);
            }
        }
    }
}

impl Schedule {
    /// The slot at a local (day, ns after midnight).
    fn slot_local(&self, local: (i64, i64)) -> Slot {
        match self.window_at_local(local) {
            Some(w) => Slot {
                peak: true,
                tariff_per_kwh: w.tariff,
            },
            None => Slot {
                peak: false,
                tariff_per_kwh: self.offpeak_tariff,
            },
        }
    }
}

/// Builds a [`Schedule`] in code. Problems are reported by [`ScheduleBuilder::build`], with
/// `<schedule builder>` as the origin and the call's index as the field (`peak[1]`).
#[derive(Debug)]
pub struct ScheduleBuilder {
    tz: String,
    windows: Vec<PeakWindow>,
    holidays: Vec<Date>,
    offpeak_tariff: Option<f64>,
    error: Option<ScheduleError>,
}

impl ScheduleBuilder {
    fn fail(&mut self, e: ScheduleError) {
        if self.error.is_none() {
            self.error = Some(e);
        }
    }

    fn at(field: String) -> Location {
        Location {
            origin: BUILDER_ORIGIN.to_owned(),
            line: None,
            field,
        }
    }

    /// Adds a window written as `"<days> <HH:MM-HH:MM>"`, e.g. `"Mon-Fri 08:00-20:00"`.
    pub fn peak(self, spec: &str) -> Self {
        self.peak_inner(spec, None)
    }

    /// Adds a window with a tariff (currency units per kWh).
    pub fn peak_with_tariff(self, spec: &str, tariff_per_kwh: f64) -> Self {
        self.peak_inner(spec, Some(tariff_per_kwh))
    }

    fn peak_inner(mut self, spec: &str, tariff: Option<f64>) -> Self {
        let field = format!("peak[{}]", self.windows.len());
        match PeakWindow::parse(spec) {
            Ok(mut w) => {
                if let Some(t) = tariff {
                    if !t.is_finite() {
                        self.fail(ScheduleError::BadTariff {
                            at: Self::at(format!("{field}.tariff")),
                            value: t.to_string(),
                        });
                    }
                    w = w.with_tariff(t);
                }
                self.windows.push(w);
            }
            Err(reason) => {
                self.fail(ScheduleError::BadWindow {
                    at: Self::at(field),
                    value: spec.to_owned(),
                    reason,
                });
                // Keep the numbering of later windows.
                self.windows.push(PeakWindow {
                    days: Days::NONE,
                    start: 0,
                    end: 1,
                    tariff: None,
                });
            }
        }
        self
    }

    /// Adds a window built in code.
    pub fn window(mut self, window: PeakWindow) -> Self {
        self.windows.push(window);
        self
    }

    /// Adds a holiday, `YYYY-MM-DD`.
    pub fn holiday(mut self, date: &str) -> Self {
        match parse_date(date) {
            Ok(d) => self.holidays.push(d),
            Err(reason) => {
                let at = Self::at(format!("holidays[{}]", self.holidays.len()));
                self.fail(ScheduleError::BadHoliday {
                    at,
                    value: date.to_owned(),
                    reason,
                });
            }
        }
        self
    }

    /// Adds a holiday given as a date.
    pub fn holiday_date(mut self, date: Date) -> Self {
        self.holidays.push(date);
        self
    }

    /// Sets the off-peak tariff (currency units per kWh).
    pub fn offpeak_tariff(mut self, tariff_per_kwh: f64) -> Self {
        if !tariff_per_kwh.is_finite() {
            self.fail(ScheduleError::BadTariff {
                at: Self::at("offpeak_tariff".into()),
                value: tariff_per_kwh.to_string(),
            });
        }
        self.offpeak_tariff = Some(tariff_per_kwh);
        self
    }

    /// The schedule, or the first problem found.
    pub fn build(self) -> Result<Schedule, ScheduleError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let (tz, name) =
            lookup_time_zone(&self.tz).map_err(|suggestions| ScheduleError::UnknownTimeZone {
                at: Self::at("timezone".into()),
                name: self.tz.clone(),
                suggestions,
            })?;
        let mut s = Schedule::new(tz, self.windows, self.holidays, self.offpeak_tariff);
        s.tz_name = name;
        Ok(s)
    }
}

// ---------------------------------------------------------------------------------------------
// TOML
// ---------------------------------------------------------------------------------------------

use toml::Spanned;
use toml::de::{DeTable, DeValue};

const TOP_KEYS: &str = "timezone, holidays, offpeak_tariff, peak";
const PEAK_KEYS: &str = "days, hours, tariff";

struct Parser<'a> {
    text: &'a str,
    origin: &'a str,
}

impl Parser<'_> {
    fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    fn at(&self, field: impl Into<String>, span: Option<std::ops::Range<usize>>) -> Location {
        Location {
            origin: self.origin.to_owned(),
            line: span.map(|s| self.line(s.start)),
            field: field.into(),
        }
    }

    fn wrong_type(
        &self,
        field: impl Into<String>,
        v: &Spanned<DeValue<'_>>,
        expected: &'static str,
    ) -> ScheduleError {
        ScheduleError::WrongType {
            at: self.at(field, Some(v.span())),
            expected,
            found: v.get_ref().type_str(),
        }
    }

    fn string<'v>(
        &self,
        field: &str,
        v: &'v Spanned<DeValue<'_>>,
    ) -> Result<&'v str, ScheduleError> {
        v.get_ref()
            .as_str()
            .ok_or_else(|| self.wrong_type(field, v, "a string"))
    }

    fn tariff(&self, field: &str, v: &Spanned<DeValue<'_>>) -> Result<f64, ScheduleError> {
        let text = match v.get_ref() {
            DeValue::Float(f) => f.as_str().to_owned(),
            DeValue::Integer(i) if i.radix() == 10 => i.as_str().to_owned(),
            _ => return Err(self.wrong_type(field, v, "a number")),
        };
        match text.replace('_', "").parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(x),
            _ => Err(ScheduleError::BadTariff {
                at: self.at(field, Some(v.span())),
                value: text,
            }),
        }
    }

    /// Entries of a table in file order.
    fn entries<'t, 'i>(
        table: &'t DeTable<'i>,
    ) -> Vec<(
        &'t Spanned<std::borrow::Cow<'i, str>>,
        &'t Spanned<DeValue<'i>>,
    )> {
        let mut e: Vec<_> = table.iter().collect();
        e.sort_by_key(|(k, _)| k.span().start);
        e
    }

    fn parse(&self) -> Result<Schedule, ScheduleError> {
        let doc = DeTable::parse(self.text).map_err(|e| ScheduleError::Syntax {
            origin: self.origin.to_owned(),
            line: self.line(e.span().map_or(0, |s| s.start)),
            message: e.message().trim().to_owned(),
        })?;
        let mut tz = None;
        let mut holidays = Vec::new();
        let mut offpeak_tariff = None;
        let mut windows = Vec::new();
        for (key, value) in Self::entries(doc.get_ref()) {
            let name: &str = key.get_ref();
            match name {
                "timezone" => {
                    let s = self.string(name, value)?;
                    let found = lookup_time_zone(s).map_err(|suggestions| {
                        ScheduleError::UnknownTimeZone {
                            at: self.at(name, Some(value.span())),
                            name: s.to_owned(),
                            suggestions,
                        }
                    })?;
                    tz = Some(found);
                }
                "holidays" => {
                    let Some(items) = value.get_ref().as_array() else {
                        return Err(self.wrong_type(name, value, "an array of dates"));
                    };
                    for (i, item) in items.iter().enumerate() {
                        holidays.push(self.holiday(&format!("holidays[{i}]"), item)?);
                    }
                }
                "offpeak_tariff" => offpeak_tariff = Some(self.tariff(name, value)?),
                "peak" => {
                    let items = match value.get_ref() {
                        DeValue::Array(a) => a,
                        _ => {
                            return Err(self.wrong_type(
                                name,
                                value,
                                "an array of tables ([[peak]] sections)",
                            ));
                        }
                    };
                    for (i, item) in items.iter().enumerate() {
                        windows.push(self.window(i, item)?);
                    }
                }
                _ => {
                    return Err(ScheduleError::UnknownField {
                        at: self.at(name, Some(key.span())),
                        expected: TOP_KEYS,
                    });
                }
            }
        }
        let Some((tz, tz_name)) = tz else {
            return Err(ScheduleError::MissingField {
                at: self.at("timezone", None),
            });
        };
        let mut s = Schedule::new(tz, windows, holidays, offpeak_tariff);
        s.tz_name = tz_name;
        Ok(s)
    }

    fn holiday(&self, field: &str, v: &Spanned<DeValue<'_>>) -> Result<Date, ScheduleError> {
        let bad = |value: String, reason: String| ScheduleError::BadHoliday {
            at: self.at(field, Some(v.span())),
            value,
            reason,
        };
        match v.get_ref() {
            DeValue::String(s) => parse_date(s).map_err(|r| bad(s.to_string(), r)),
            DeValue::Datetime(dt) => match (dt.date, dt.time, dt.offset) {
                (Some(d), None, None) => {
                    let (y, m, day) = (d.year, d.month, d.day);
                    i16::try_from(y)
                        .ok()
                        .and_then(|y| Date::new(y, m as i8, day as i8).ok())
                        .ok_or_else(|| bad(dt.to_string(), "no such date".into()))
                }
                _ => Err(bad(
                    dt.to_string(),
                    "expected a date without a time, YYYY-MM-DD".into(),
                )),
            },
            _ => Err(self.wrong_type(field, v, "a date (\"YYYY-MM-DD\")")),
        }
    }

    fn window(&self, i: usize, v: &Spanned<DeValue<'_>>) -> Result<PeakWindow, ScheduleError> {
        let field = format!("peak[{i}]");
        let Some(table) = v.get_ref().as_table() else {
            return Err(self.wrong_type(field, v, "a table ([[peak]] section)"));
        };
        let mut days = None;
        let mut hours = None;
        let mut tariff = None;
        for (key, value) in Self::entries(table) {
            let name: &str = key.get_ref();
            let f = format!("{field}.{name}");
            match name {
                "days" => {
                    let s = self.string(&f, value)?;
                    let d = Days::parse(s).map_err(|reason| ScheduleError::BadDays {
                        at: self.at(&f, Some(value.span())),
                        value: s.to_owned(),
                        reason,
                    })?;
                    days = Some(d);
                }
                "hours" => {
                    let s = self.string(&f, value)?;
                    let h = parse_hours(s).map_err(|reason| ScheduleError::BadHours {
                        at: self.at(&f, Some(value.span())),
                        value: s.to_owned(),
                        reason,
                    })?;
                    hours = Some(h);
                }
                "tariff" => tariff = Some(self.tariff(&f, value)?),
                _ => {
                    return Err(ScheduleError::UnknownField {
                        at: self.at(f, Some(key.span())),
                        expected: PEAK_KEYS,
                    });
                }
            }
        }
        // A missing key is reported at the start of its [[peak]] section.
        let section = Some(v.span());
        let days = days.ok_or_else(|| ScheduleError::MissingField {
            at: self.at(format!("{field}.days"), section.clone()),
        })?;
        let (start, end) = hours.ok_or_else(|| ScheduleError::MissingField {
            at: self.at(format!("{field}.hours"), section.clone()),
        })?;
        let w = PeakWindow::new(days, start, end).map_err(|reason| ScheduleError::BadHours {
            at: self.at(format!("{field}.hours"), section),
            value: format!("{}-{}", hhmm(start), hhmm(end)),
            reason,
        })?;
        Ok(match tariff {
            Some(t) => w.with_tariff(t),
            None => w,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The offset table gives jiff's offsets and transitions, inside its span and out of it.
    #[test]
    fn the_offset_table_agrees_with_the_time_zone() {
        for tz in [
            "UTC",
            "Europe/Berlin",
            "America/Sao_Paulo",
            "Australia/Lord_Howe",
            "Asia/Kolkata",
        ] {
            let s = Schedule::builder(tz).build().unwrap();
            let mut second = -2_300_000_000_i64;
            while second < 7_400_000_000 {
                let t = Timestamp::from_second(second).unwrap();
                let (day, ns) = s.local(t);
                let off = i64::from(s.tz.to_offset(t).seconds());
                assert_eq!(day * 86_400 + ns / 1_000_000_000, second + off, "{tz} {t}");
                let jiff_next = s.tz.following(t).next().map(|tr| tr.timestamp());
                let ours = s.transition_after(t);
                // Past its last transition the table names its own end, an extra instant where
                // `next_change` looks again.
                let end = Timestamp::from_second(OFFSETS_UNTIL_S).ok();
                let same =
                    ours == jiff_next || (ours == end && jiff_next.is_none_or(|j| Some(j) >= end));
                assert!(same, "{tz} {t}: {ours:?} vs {jiff_next:?}");
                second += 3_599_999;
            }
        }
    }

    /// The window table gives the window the rule gives, for windows of every shape (overnight,
    /// to 24:00, overlapping, on some days), with holidays, at every minute of two weeks (a DST change in Berlin among them) and
    /// at instants just before and after each boundary.
    #[test]
    fn the_window_table_agrees_with_the_rule() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for tz in ["UTC", "Europe/Berlin"] {
            for _ in 0..4 {
                let mut b = Schedule::builder(tz);
                for _ in 0..1 + next(12) {
                    let start = next(24 * 60) as u16;
                    let mut end = next(24 * 60 + 1) as u16;
                    if end == start {
                        end = (start + 1) % (24 * 60);
                    }
                    let days = Days((1 + next(127)) as u8);
                    b = b.window(PeakWindow::new(days, start, end).unwrap());
                }
                for d in ["2026-03-02", "2026-03-10", "2026-03-11", "2026-03-29"] {
                    b = b.holiday(d);
                }
                let s = b.build().unwrap();
                let from = "2026-03-01T00:00:00Z".parse::<Timestamp>().unwrap();
                for minute in 0..14 * 24 * 60 {
                    for delta_ns in [0, 1, 59_999_999_999] {
                        let t =
                            from + SignedDuration::from_nanos(minute * NANOS_PER_MINUTE + delta_ns);
                        let fast = s.window_at(t).map(|w| w as *const PeakWindow);
                        let slow = s.window_at_by_scan(t).map(|w| w as *const PeakWindow);
                        assert_eq!(fast, slow, "{} at {t}", s.describe());
                    }
                }
            }
        }
    }

    #[test]
    fn days_parse_and_display() {
        assert_eq!(Days::parse("Mon-Fri").unwrap(), Days::WEEKDAYS);
        assert_eq!(Days::parse("sat, SUNDAY").unwrap(), Days::WEEKEND);
        assert_eq!(Days::parse("daily").unwrap(), Days::DAILY);
        assert_eq!(
            Days::parse("Mon-Wed,Fri").unwrap().to_string(),
            "Mon-Wed,Fri"
        );
        assert_eq!(Days::parse("Fri-Mon").unwrap().to_string(), "Mon,Fri-Sun");
        assert!(Days::parse("Mon-Fry").unwrap_err().contains("`Fry`"));
        assert!(Days::parse("Mon,,Tue").is_err());
        assert!(Days::parse("").is_err());
    }

    #[test]
    fn hours_parse() {
        assert_eq!(parse_hours("08:00-20:00").unwrap(), (480, 1200));
        assert_eq!(parse_hours("8:00 - 24:00").unwrap(), (480, 1440));
        assert_eq!(parse_hours("22:00-06:30").unwrap(), (1320, 390));
        assert_eq!(parse_hours("22:00-00:00").unwrap(), (1320, 1440));
        assert!(parse_hours("24:00-06:00").is_err());
        assert!(
            parse_hours("08:00-08:00")
                .unwrap_err()
                .contains("start equals end")
        );
        assert!(parse_hours("08:60-09:00").is_err());
        assert!(parse_hours("0800-0900").is_err());
        assert!(parse_hours("25:00-26:00").is_err());
    }

    #[test]
    fn weekday_of_day_numbers() {
        // 1970-01-01 was a Thursday; 2026-03-29 is a Sunday.
        assert_eq!(weekday_index(0), 3);
        let d = Date::constant(2026, 3, 29);
        assert_eq!(
            weekday_index(day_number(d)),
            d.weekday().to_monday_zero_offset()
        );
        let d = Date::constant(1969, 12, 31);
        assert_eq!(
            weekday_index(day_number(d)),
            d.weekday().to_monday_zero_offset()
        );
    }
}
