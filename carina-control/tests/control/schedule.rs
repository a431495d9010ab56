//! Peak schedules: the TOML format and its errors, weekday sets, overnight windows, holidays,
//! tariffs, and daylight-saving transitions (Europe/Berlin 2026).

use carina_control::schedule::{Days, PeakWindow, Schedule, ScheduleError};
use carina_control::{Calendar, Slot};
use jiff::{SignedDuration, Timestamp};

fn ts(s: &str) -> Timestamp {
    s.parse()
        .unwrap_or_else(|e| panic!("bad timestamp {s}: {e}"))
}

fn peak(s: &Schedule, t: &str) -> bool {
    s.slot(ts(t)).peak
}

fn next(s: &Schedule, t: &str) -> String {
    s.next_change(ts(t))
        .map_or_else(|| "none".to_owned(), |t| t.to_string())
}

fn daily(tz: &str, hours: &str) -> Schedule {
    Schedule::builder(tz)
        .peak(&format!("daily {hours}"))
        .build()
        .unwrap()
}

/// The example of the module documentation (and of docs/CONTROL.md), verbatim.
const EXAMPLE: &str = r#"
# Required: an IANA time zone name ("Europe/Berlin", "America/New_York", "UTC").
# Windows are in this zone's local wall-clock time, daylight saving time included.
timezone = "Europe/Berlin"

# Optional: local dates that are off-peak all day. Quoted strings "YYYY-MM-DD" or TOML
# local dates (2026-12-25, unquoted) are both accepted.
holidays = ["2026-12-24", "2026-12-25", "2026-12-26", 2026-12-31]

# Optional: the price of electricity outside the peak windows, currency units per kWh.
offpeak_tariff = 0.21

# Zero or more peak windows, each a [[peak]] table.
[[peak]]
days = "Mon-Fri"           # weekdays on which the window starts
hours = "08:00-20:00"      # local start-end, end exclusive
tariff = 0.38              # optional, currency units per kWh inside this window

[[peak]]
days = "Sat"
hours = "17:00-21:00"
tariff = 0.31

[[peak]]
days = "Mon-Wed,Fri"
hours = "22:00-06:00"      # crosses midnight: Mon 22:00 to Tue 06:00, and so on
"#;

#[test]
fn parses_the_documented_example() {
    let s = Schedule::parse(EXAMPLE, "example.toml").unwrap();
    assert_eq!(s.time_zone_name(), "Europe/Berlin");
    assert_eq!(s.windows().len(), 3);
    assert_eq!(s.windows()[0].to_string(), "Mon-Fri 08:00-20:00");
    assert_eq!(s.windows()[1].to_string(), "Sat 17:00-21:00");
    assert_eq!(s.windows()[2].to_string(), "Mon-Wed,Fri 22:00-06:00");
    assert!(s.windows()[2].crosses_midnight());
    assert_eq!(s.windows()[0].tariff(), Some(0.38));
    assert_eq!(s.windows()[2].tariff(), None);
    assert_eq!(s.holidays().len(), 4);
    assert_eq!(s.offpeak_tariff(), Some(0.21));
    assert_eq!(
        s.describe(),
        "Mon-Fri 08:00-20:00, Sat 17:00-21:00, Mon-Wed,Fri 22:00-06:00 Europe/Berlin (4 holidays)"
    );
    // Monday 2026-11-02, 09:00 CET.
    assert_eq!(
        s.slot(ts("2026-11-02T08:00:00Z")),
        Slot {
            peak: true,
            tariff_per_kwh: Some(0.38)
        }
    );
    // Monday 23:00 CET: the overnight window, which has no tariff.
    assert_eq!(
        s.slot(ts("2026-11-02T22:00:00Z")),
        Slot {
            peak: true,
            tariff_per_kwh: None
        }
    );
    // Thursday 2026-11-05 23:00 CET: Thursday is not in Mon-Wed,Fri.
    assert_eq!(
        s.slot(ts("2026-11-05T22:00:00Z")),
        Slot {
            peak: false,
            tariff_per_kwh: Some(0.21)
        }
    );
    // Saturday 2026-11-07 18:00 CET.
    assert_eq!(
        s.slot(ts("2026-11-07T17:00:00Z")).tariff_per_kwh,
        Some(0.31)
    );
    // New Year's Eve (Thursday) is a holiday, given as an unquoted TOML date.
    assert!(!peak(&s, "2026-12-31T10:00:00Z"));
}

#[test]
fn day_lists() {
    let cases = [
        ("Mon-Fri", "Mon-Fri"),
        ("Sat,Sun", "Sat,Sun"),
        ("Mon-Wed,Fri", "Mon-Wed,Fri"),
        ("daily", "daily"),
        ("Mon-Sun", "daily"),
        ("weekdays", "Mon-Fri"),
        ("weekend", "Sat,Sun"),
        ("friday-monday", "Mon,Fri-Sun"),
        ("tue, THU", "Tue,Thu"),
    ];
    for (input, canonical) in cases {
        let d = Days::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(d.to_string(), canonical, "{input}");
    }
    // Saturday and Sunday windows in UTC: 2026-03-07 is a Saturday.
    let s = Schedule::builder("UTC")
        .peak("Sat,Sun 10:00-12:00")
        .build()
        .unwrap();
    assert!(peak(&s, "2026-03-07T10:00:00Z"));
    assert!(peak(&s, "2026-03-08T11:59:59Z"));
    assert!(!peak(&s, "2026-03-09T10:00:00Z"));
    assert!(!peak(&s, "2026-03-07T12:00:00Z"));
    let s = Schedule::builder("UTC")
        .peak("Mon-Wed,Fri 10:00-12:00")
        .build()
        .unwrap();
    // Monday 9th .. Friday 13th of March 2026.
    let days: Vec<bool> = (9..=15)
        .map(|d| peak(&s, &format!("2026-03-{d:02}T11:00:00Z")))
        .collect();
    assert_eq!(days, [true, true, true, false, true, false, false]);
}

#[test]
fn weekday_window_in_berlin_winter_and_summer() {
    let s = Schedule::builder("Europe/Berlin")
        .peak("Mon-Fri 08:00-20:00")
        .build()
        .unwrap();
    // Winter (CET, UTC+1): Monday 2026-01-05 08:00 local is 07:00 UTC.
    assert!(!peak(&s, "2026-01-05T06:59:59Z"));
    assert!(peak(&s, "2026-01-05T07:00:00Z"));
    assert!(peak(&s, "2026-01-05T18:59:59Z"));
    assert!(!peak(&s, "2026-01-05T19:00:00Z"));
    assert_eq!(next(&s, "2026-01-05T00:00:00Z"), "2026-01-05T07:00:00Z");
    assert_eq!(next(&s, "2026-01-05T07:00:00Z"), "2026-01-05T19:00:00Z");
    // Friday evening to Monday morning.
    assert_eq!(next(&s, "2026-01-09T19:00:00Z"), "2026-01-12T07:00:00Z");
    // Summer (CEST, UTC+2).
    assert!(peak(&s, "2026-07-06T06:00:00Z"));
    assert!(!peak(&s, "2026-07-06T05:59:59Z"));
    assert_eq!(next(&s, "2026-07-06T06:30:00Z"), "2026-07-06T18:00:00Z");
    // Weekend in summer.
    assert!(!peak(&s, "2026-07-11T10:00:00Z"));
}

#[test]
fn overnight_window_belongs_to_its_start_day() {
    let s = Schedule::builder("UTC")
        .peak("Mon-Fri 22:00-06:00")
        .build()
        .unwrap();
    // Friday 2026-03-13 23:00 and Saturday 05:00 (the Friday window), Saturday 07:00 no.
    assert!(peak(&s, "2026-03-13T23:00:00Z"));
    assert!(peak(&s, "2026-03-14T05:59:59Z"));
    assert!(!peak(&s, "2026-03-14T06:00:00Z"));
    // Saturday night: no window starts on Saturday or Sunday.
    assert!(!peak(&s, "2026-03-14T23:00:00Z"));
    assert!(
        !peak(&s, "2026-03-16T03:00:00Z"),
        "Monday 03:00 comes from Sunday"
    );
    assert!(peak(&s, "2026-03-16T22:00:00Z"));
    assert!(peak(&s, "2026-03-17T03:00:00Z"));
    // Midnight inside a window is not a change.
    assert_eq!(next(&s, "2026-03-16T22:00:00Z"), "2026-03-17T06:00:00Z");
    assert_eq!(next(&s, "2026-03-14T06:00:00Z"), "2026-03-16T22:00:00Z");
}

#[test]
fn end_of_day_windows() {
    for hours in ["18:00-24:00", "18:00-00:00"] {
        let s = Schedule::builder("UTC")
            .peak(&format!("Mon {hours}"))
            .build()
            .unwrap();
        assert_eq!(s.windows()[0].end_minute(), 1440, "{hours}");
        assert!(peak(&s, "2026-03-16T23:59:59Z"));
        assert!(!peak(&s, "2026-03-17T00:00:00Z"));
        assert_eq!(next(&s, "2026-03-16T19:00:00Z"), "2026-03-17T00:00:00Z");
    }
    let s = daily("UTC", "00:00-24:00");
    assert!(peak(&s, "2026-03-16T00:00:00Z"));
    assert_eq!(next(&s, "2026-03-16T12:00:00Z"), "none", "always peak");
}

#[test]
fn holidays_are_off_peak_all_day() {
    let s = Schedule::builder("Europe/Berlin")
        .peak("Mon-Fri 08:00-20:00")
        .holiday("2026-12-24")
        .holiday("2026-12-25")
        .build()
        .unwrap();
    assert!(s.is_holiday(jiff::civil::date(2026, 12, 25)));
    assert!(peak(&s, "2026-12-23T10:00:00Z"));
    assert!(!peak(&s, "2026-12-24T10:00:00Z"));
    assert!(!peak(&s, "2026-12-25T10:00:00Z"));
    assert_eq!(next(&s, "2026-12-23T10:00:00Z"), "2026-12-23T19:00:00Z");
    // Wednesday evening to Monday 28th 08:00 CET.
    assert_eq!(next(&s, "2026-12-23T19:00:00Z"), "2026-12-28T07:00:00Z");
}

#[test]
fn holidays_cut_overnight_windows_at_midnight() {
    let s = Schedule::builder("Europe/Berlin")
        .peak("daily 22:00-06:00")
        .holiday("2026-12-25")
        .build()
        .unwrap();
    // 24th 22:00 CET: peak, until local midnight, when the holiday begins.
    assert!(peak(&s, "2026-12-24T21:00:00Z"));
    assert_eq!(next(&s, "2026-12-24T21:00:00Z"), "2026-12-24T23:00:00Z");
    assert!(!peak(&s, "2026-12-24T23:30:00Z"));
    // The window starting on the holiday does not occur, not even after midnight.
    assert!(!peak(&s, "2026-12-25T21:30:00Z"));
    assert!(!peak(&s, "2026-12-26T04:00:00Z"));
    assert_eq!(next(&s, "2026-12-24T23:00:00Z"), "2026-12-26T21:00:00Z");
}

#[test]
fn tariffs_come_from_the_first_covering_window() {
    let s = Schedule::builder("UTC")
        .peak_with_tariff("Mon-Fri 08:00-20:00", 0.38)
        .peak_with_tariff("daily 17:00-21:00", 0.45)
        .offpeak_tariff(0.21)
        .build()
        .unwrap();
    let tariff = |t: &str| s.slot(ts(t)).tariff_per_kwh;
    // Monday 2026-03-16.
    assert_eq!(tariff("2026-03-16T18:00:00Z"), Some(0.38));
    assert_eq!(tariff("2026-03-16T20:30:00Z"), Some(0.45));
    assert_eq!(tariff("2026-03-16T22:00:00Z"), Some(0.21));
    assert_eq!(tariff("2026-03-14T18:00:00Z"), Some(0.45), "Saturday");
    assert_eq!(tariff("2026-03-14T10:00:00Z"), Some(0.21));
    // A change of tariff inside peak time is a change of slot.
    assert_eq!(next(&s, "2026-03-16T18:00:00Z"), "2026-03-16T20:00:00Z");
    assert_eq!(next(&s, "2026-03-16T20:00:00Z"), "2026-03-16T21:00:00Z");
}

// --- Daylight saving time: Europe/Berlin, spring forward 2026-03-29 01:00 UTC (02:00 CET ->
// --- 03:00 CEST), fall back 2026-10-25 01:00 UTC (03:00 CEST -> 02:00 CET).

#[test]
fn spring_forward_window_01_04_lasts_two_hours() {
    let s = daily("Europe/Berlin", "01:00-04:00");
    // 01:00 CET = 00:00 UTC; 04:00 CEST = 02:00 UTC.
    assert!(!peak(&s, "2026-03-28T23:59:59Z"));
    assert!(peak(&s, "2026-03-29T00:00:00Z"));
    assert!(peak(&s, "2026-03-29T00:59:59Z"), "01:59:59 CET");
    assert!(peak(&s, "2026-03-29T01:00:00Z"), "03:00 CEST");
    assert!(peak(&s, "2026-03-29T01:59:59Z"));
    assert!(!peak(&s, "2026-03-29T02:00:00Z"));
    assert_eq!(next(&s, "2026-03-28T22:00:00Z"), "2026-03-29T00:00:00Z");
    assert_eq!(next(&s, "2026-03-29T00:00:00Z"), "2026-03-29T02:00:00Z");
    // The offset change itself (01:00 UTC) is not a slot change.
    assert_eq!(next(&s, "2026-03-29T00:30:00Z"), "2026-03-29T02:00:00Z");
    // The next day in summer time: 01:00 CEST = 23:00 UTC.
    assert_eq!(next(&s, "2026-03-29T02:00:00Z"), "2026-03-29T23:00:00Z");
}

#[test]
fn spring_forward_window_02_03_does_not_occur() {
    let s = daily("Europe/Berlin", "02:00-03:00");
    // The 28th (CET): 01:00-02:00 UTC.
    assert!(peak(&s, "2026-03-28T01:30:00Z"));
    // The 29th: 02:00-02:59 local does not exist.
    for t in [
        "2026-03-29T00:30:00Z",
        "2026-03-29T00:59:59Z",
        "2026-03-29T01:00:00Z",
        "2026-03-29T01:30:00Z",
    ] {
        assert!(!peak(&s, t), "{t}");
    }
    // From the end of the 28th's window straight to the 30th's (02:00 CEST = 00:00 UTC).
    assert_eq!(next(&s, "2026-03-28T02:00:00Z"), "2026-03-30T00:00:00Z");
}

#[test]
fn spring_forward_window_starting_in_the_gap_starts_at_the_next_valid_instant() {
    let s = daily("Europe/Berlin", "02:30-05:00");
    // The next valid instant after 02:29 CET is 03:00 CEST = 01:00 UTC.
    assert!(!peak(&s, "2026-03-29T00:59:59Z"));
    assert!(peak(&s, "2026-03-29T01:00:00Z"));
    assert_eq!(next(&s, "2026-03-29T00:00:00Z"), "2026-03-29T01:00:00Z");
    // 05:00 CEST = 03:00 UTC.
    assert_eq!(next(&s, "2026-03-29T01:00:00Z"), "2026-03-29T03:00:00Z");
}

#[test]
fn fall_back_window_02_03_covers_both_passes_of_the_hour() {
    let s = daily("Europe/Berlin", "02:00-03:00");
    // 02:00 CEST = 00:00 UTC; the second 02:00 (CET) = 01:00 UTC; 03:00 CET = 02:00 UTC.
    assert!(!peak(&s, "2026-10-24T23:59:59Z"));
    assert!(peak(&s, "2026-10-25T00:00:00Z"));
    assert!(peak(&s, "2026-10-25T00:59:59Z"), "02:59:59 CEST");
    assert!(peak(&s, "2026-10-25T01:00:00Z"), "02:00 CET");
    assert!(peak(&s, "2026-10-25T01:59:59Z"));
    assert!(!peak(&s, "2026-10-25T02:00:00Z"));
    assert_eq!(next(&s, "2026-10-24T12:00:00Z"), "2026-10-25T00:00:00Z");
    assert_eq!(next(&s, "2026-10-25T00:00:00Z"), "2026-10-25T02:00:00Z");
    let start = ts("2026-10-25T00:00:00Z");
    let end = s.next_change(start).unwrap();
    assert_eq!(start.duration_until(end), SignedDuration::from_hours(2));
}

#[test]
fn fall_back_window_01_04_lasts_four_hours() {
    let s = daily("Europe/Berlin", "01:00-04:00");
    // 01:00 CEST = 23:00 UTC on the 24th; 04:00 CET = 03:00 UTC.
    assert_eq!(next(&s, "2026-10-24T12:00:00Z"), "2026-10-24T23:00:00Z");
    assert_eq!(next(&s, "2026-10-24T23:00:00Z"), "2026-10-25T03:00:00Z");
    assert!(peak(&s, "2026-10-25T02:59:59Z"));
    assert!(!peak(&s, "2026-10-25T03:00:00Z"));
}

/// Every instant where the slot changes (found by scanning minute by minute) is exactly the
/// chain of `next_change`, across DST transitions, overnight windows, holidays and a zone with
/// a 30-minute DST shift.
#[test]
fn next_change_agrees_with_a_minute_by_minute_scan() {
    let cases = [
        ("Europe/Berlin", "2026-03-26T00:00:00Z"),
        ("Europe/Berlin", "2026-10-22T00:00:00Z"),
        ("America/New_York", "2026-03-06T00:00:00Z"),
        ("America/New_York", "2026-10-30T00:00:00Z"),
        ("Australia/Lord_Howe", "2026-04-02T00:00:00Z"),
        ("Australia/Lord_Howe", "2026-10-01T00:00:00Z"),
        ("Asia/Kolkata", "2026-03-26T00:00:00Z"),
    ];
    for (tz, from) in cases {
        let s = Schedule::builder(tz)
            .peak_with_tariff("Mon-Fri 08:00-20:00", 0.4)
            .peak("daily 01:30-02:30")
            .peak("Fri,Sat 23:00-03:00")
            .peak("Sun 02:00-03:00")
            .holiday("2026-03-27")
            .holiday("2026-10-31")
            .build()
            .unwrap();
        let start = ts(from);
        let end = start + SignedDuration::from_hours(24 * 6);
        let mut scanned = Vec::new();
        let mut prev = s.slot(start);
        let mut t = start + SignedDuration::from_mins(1);
        while t <= end {
            let slot = s.slot(t);
            if slot != prev {
                scanned.push(t);
                prev = slot;
            }
            t += SignedDuration::from_mins(1);
        }
        let mut chained = Vec::new();
        let mut t = start;
        while let Some(n) = s.next_change(t) {
            if n > end {
                break;
            }
            assert!(n > t);
            chained.push(n);
            t = n;
        }
        assert!(scanned.len() > 10, "{tz}: {} changes", scanned.len());
        assert_eq!(scanned, chained, "{tz} from {from}");
        // From an instant that is not a boundary, the next change is the next scanned one.
        let mid = start + SignedDuration::from_secs(7 * 3600 + 17);
        let expected = scanned.iter().copied().find(|&c| c > mid);
        assert_eq!(s.next_change(mid), expected, "{tz}");
    }
}

#[test]
fn no_change_within_a_year() {
    let s = Schedule::builder("Europe/Berlin").build().unwrap();
    assert!(!peak(&s, "2026-03-16T10:00:00Z"));
    assert_eq!(next(&s, "2026-03-16T10:00:00Z"), "none");
}

#[test]
fn default_weekday_peak_is_mon_fri_8_to_20_utc() {
    let s = Schedule::default_weekday_peak();
    assert_eq!(s.describe(), "Mon-Fri 08:00-20:00 UTC");
    assert!(peak(&s, "2026-03-16T08:00:00Z"));
    assert!(!peak(&s, "2026-03-16T07:59:59Z"));
    assert!(!peak(&s, "2026-03-16T20:00:00Z"));
    assert!(!peak(&s, "2026-03-14T12:00:00Z"));
    assert_eq!(s.slot(ts("2026-03-16T12:00:00Z")).tariff_per_kwh, None);
    // Usable as a trait object.
    let cal: &dyn Calendar = &s;
    assert_eq!(
        cal.next_change(ts("2026-03-13T20:00:00Z")),
        Some(ts("2026-03-16T08:00:00Z"))
    );
}

#[test]
fn builder_with_code_windows_and_errors() {
    let w = PeakWindow::new(Days::WEEKEND, 9 * 60, 12 * 60)
        .unwrap()
        .with_tariff(0.3);
    let s = Schedule::builder("europe/berlin")
        .window(w)
        .holiday_date(jiff::civil::date(2026, 5, 1))
        .build()
        .unwrap();
    assert_eq!(s.time_zone_name(), "Europe/Berlin");
    assert_eq!(s.windows(), &[w]);
    assert!(PeakWindow::new(Days::DAILY, 600, 600).is_err());
    assert!(PeakWindow::new(Days::DAILY, 1440, 60).is_err());
    assert!(PeakWindow::new(Days::NONE, 60, 120).is_err());

    let e = Schedule::builder("UTC")
        .peak("Mon-Fri 08:00-20:00")
        .peak("Mon-Fri 8-20")
        .build()
        .unwrap_err();
    assert!(matches!(e, ScheduleError::BadWindow { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("<schedule builder>") && msg.contains("`peak[1]`"),
        "{msg}"
    );
    let e = Schedule::builder("Mars/Olympus_Mons").build().unwrap_err();
    assert!(matches!(e, ScheduleError::UnknownTimeZone { .. }), "{e}");
    let e = Schedule::builder("UTC")
        .holiday("tomorrow")
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("`holidays[0]`"), "{e}");
}

// --- Errors name the file, the line and the field.

fn parse_err(text: &str) -> (ScheduleError, String) {
    let e = Schedule::parse(text, "peaks.toml").expect_err("should fail");
    let msg = e.to_string();
    assert!(msg.starts_with("peaks.toml"), "{msg}");
    (e, msg)
}

const HEAD: &str = "timezone = \"Europe/Berlin\"\n\n[[peak]]\n";

#[test]
fn bad_day_name() {
    let (e, msg) = parse_err(&format!(
        "{HEAD}days = \"Mon-Fry\"\nhours = \"08:00-20:00\"\n"
    ));
    assert!(matches!(e, ScheduleError::BadDays { .. }));
    assert_eq!(e.line(), Some(4));
    assert!(msg.contains("peaks.toml:4: `peak[0].days`"), "{msg}");
    assert!(msg.contains("unknown day `Fry`"), "{msg}");
}

#[test]
fn bad_time() {
    let (e, msg) = parse_err(&format!(
        "{HEAD}days = \"daily\"\nhours = \"25:00-26:00\"\n"
    ));
    assert!(matches!(e, ScheduleError::BadHours { .. }));
    assert!(msg.contains("peaks.toml:5: `peak[0].hours`"), "{msg}");
    assert!(msg.contains("bad time `25:00`"), "{msg}");
    let (_, msg) = parse_err(&format!("{HEAD}days = \"daily\"\nhours = \"08:00\"\n"));
    assert!(msg.contains("HH:MM-HH:MM"), "{msg}");
    let (_, msg) = parse_err(&format!(
        "{HEAD}days = \"daily\"\nhours = \"24:00-06:00\"\n"
    ));
    assert!(msg.contains("cannot start at 24:00"), "{msg}");
}

#[test]
fn start_equal_to_end() {
    let (e, msg) = parse_err(&format!(
        "{HEAD}days = \"daily\"\nhours = \"08:00-08:00\"\n"
    ));
    assert!(matches!(e, ScheduleError::BadHours { .. }));
    assert!(msg.contains(":5: `peak[0].hours`"), "{msg}");
    assert!(msg.contains("start equals end"), "{msg}");
}

#[test]
fn unknown_time_zone_lists_close_matches() {
    let (e, msg) = parse_err("\n\ntimezone = \"Europe/Berln\"\n");
    let ScheduleError::UnknownTimeZone { suggestions, .. } = &e else {
        panic!("{e:?}");
    };
    assert!(
        suggestions.iter().any(|s| s == "Europe/Berlin"),
        "{suggestions:?}"
    );
    assert!(msg.contains("peaks.toml:3: `timezone`"), "{msg}");
    assert!(
        msg.contains("did you mean") && msg.contains("Europe/Berlin"),
        "{msg}"
    );
    let (e, _) = parse_err("timezone = \"Berlin\"\n");
    let ScheduleError::UnknownTimeZone { suggestions, .. } = &e else {
        panic!("{e:?}");
    };
    assert_eq!(
        suggestions.first().map(String::as_str),
        Some("Europe/Berlin")
    );
}

#[test]
fn bad_holiday_dates() {
    let (e, msg) =
        parse_err("timezone = \"UTC\"\nholidays = [\n  \"2026-12-25\",\n  \"2026-02-30\",\n]\n");
    assert!(matches!(e, ScheduleError::BadHoliday { .. }));
    assert!(msg.contains("peaks.toml:4: `holidays[1]`"), "{msg}");
    assert!(msg.contains("no such date"), "{msg}");
    let (_, msg) = parse_err("timezone = \"UTC\"\nholidays = [\"25.12.2026\"]\n");
    assert!(
        msg.contains(":2: `holidays[0]`") && msg.contains("YYYY-MM-DD"),
        "{msg}"
    );
    let (_, msg) = parse_err("timezone = \"UTC\"\nholidays = [2026-12-25T10:00:00]\n");
    assert!(msg.contains("without a time"), "{msg}");
    let (e, _) = parse_err("timezone = \"UTC\"\nholidays = \"2026-12-25\"\n");
    assert!(matches!(e, ScheduleError::WrongType { .. }), "{e:?}");
}

#[test]
fn unknown_and_missing_fields_and_wrong_types() {
    let (e, msg) = parse_err(&format!(
        "{HEAD}days = \"daily\"\nhours = \"08:00-20:00\"\ntarif = 0.3\n"
    ));
    assert!(matches!(e, ScheduleError::UnknownField { .. }));
    assert!(
        msg.contains("peaks.toml:6: `peak[0].tarif`: unknown field"),
        "{msg}"
    );
    let (e, msg) = parse_err("timezone = \"UTC\"\ntimzone = \"UTC\"\n");
    assert!(matches!(e, ScheduleError::UnknownField { .. }));
    assert!(msg.contains(":2: `timzone`"), "{msg}");
    let (e, msg) = parse_err("[[peak]]\ndays = \"daily\"\nhours = \"08:00-20:00\"\n");
    assert!(matches!(e, ScheduleError::MissingField { .. }));
    assert!(msg.contains("`timezone`: missing"), "{msg}");
    let (e, msg) = parse_err(&format!(
        "{HEAD}days = \"daily\"\n\n[[peak]]\nhours = \"1:00-2:00\"\n"
    ));
    assert!(matches!(e, ScheduleError::MissingField { .. }));
    assert!(msg.contains("`peak[0].hours`: missing"), "{msg}");
    assert_eq!(e.line(), Some(3), "the line of the [[peak]] header");
    let (e, msg) = parse_err(&format!("{HEAD}days = \"daily\"\nhours = 8\n"));
    assert!(matches!(e, ScheduleError::WrongType { .. }));
    assert!(
        msg.contains(":5: `peak[0].hours`: expected a string, found integer"),
        "{msg}"
    );
    let (e, msg) =
        parse_err("timezone = \"UTC\"\n[peak]\ndays = \"daily\"\nhours = \"08:00-20:00\"\n");
    assert!(matches!(e, ScheduleError::WrongType { .. }));
    assert!(msg.contains("[[peak]]"), "{msg}");
    let (e, msg) = parse_err("timezone = \"UTC\"\noffpeak_tariff = \"cheap\"\n");
    assert!(matches!(e, ScheduleError::WrongType { .. }));
    assert!(
        msg.contains(":2: `offpeak_tariff`: expected a number"),
        "{msg}"
    );
    let (e, _) = parse_err("timezone = \"UTC\"\noffpeak_tariff = nan\n");
    assert!(matches!(e, ScheduleError::BadTariff { .. }), "{e:?}");
}

#[test]
fn toml_syntax_errors_name_the_line() {
    let (e, msg) = parse_err("timezone = \"UTC\"\n\n[[peak]\ndays = \"daily\"\n");
    assert!(matches!(e, ScheduleError::Syntax { line: 3, .. }), "{e:?}");
    assert!(msg.starts_with("peaks.toml:3: invalid TOML"), "{msg}");
}

#[test]
fn integer_and_negative_tariffs_are_numbers() {
    let s = Schedule::parse(
        "timezone = \"UTC\"\noffpeak_tariff = -0.05\n[[peak]]\ndays = \"daily\"\nhours = \"08:00-09:00\"\ntariff = 1\n",
        "t.toml",
    )
    .unwrap();
    assert_eq!(s.offpeak_tariff(), Some(-0.05));
    assert_eq!(s.windows()[0].tariff(), Some(1.0));
}

#[test]
fn load_reads_files_and_names_missing_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("schedule.toml");
    std::fs::write(&path, EXAMPLE).unwrap();
    let s = Schedule::load(&path).unwrap();
    assert_eq!(s.windows().len(), 3);
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "timezone = \"UTC\"\n[[peak]]\ndays = \"Mo\"\nhours = \"08:00-20:00\"\n",
    )
    .unwrap();
    let msg = Schedule::load(&bad).unwrap_err().to_string();
    assert!(
        msg.starts_with(&format!("{}:3: `peak[0].days`", bad.display())),
        "{msg}"
    );
    let missing = dir.path().join("missing.toml");
    let e = Schedule::load(&missing).unwrap_err();
    assert!(matches!(e, ScheduleError::Read { .. }));
    assert!(e.to_string().contains("missing.toml"), "{e}");
}

/// A FIFO (whose blocking open would wait for a writer forever), a device that never ends and a
/// symlink to it are refused before any byte is read; a file over the bound is refused by size.
#[test]
fn special_files_are_refused_at_once_and_size_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.toml");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.unwrap().success());
    let zero = dir.path().join("zero.toml");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    for (p, kind) in [
        (fifo.as_path(), "a FIFO"),
        (zero.as_path(), "device"),
        (std::path::Path::new("/dev/zero"), "device"),
    ] {
        let e = Schedule::load(p).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, ScheduleError::Read { .. }), "{msg}");
        assert!(msg.contains(&p.display().to_string()), "{msg}");
        assert!(
            msg.contains(kind) && msg.contains("not a regular file"),
            "{msg}"
        );
    }
    let big = dir.path().join("big.toml");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(Schedule::MAX_FILE_BYTES + 1).unwrap();
    let msg = Schedule::load(&big).unwrap_err().to_string();
    assert!(msg.contains("more than the 1048576 bytes"), "{msg}");
}
