//! How Carina writes figures and names for people: the one set of rules behind every command's
//! output and [`RunSummary`](crate::RunSummary)'s `Display`.
//!
//! # Figures
//!
//! A figure has three significant digits ([`sig3`]) and the unit that suits its size, picked
//! from a ladder of units ([`Unit`]):
//!
//! | figure | function | ladder | units |
//! | --- | --- | --- | --- |
//! | energy, J | [`energy`] | [`JOULES`] | J, Wh from 1000 J, kWh from 1000 Wh |
//! | energy per item, J | [`energy_fine`] | [`JOULES_FINE`] | uJ, mJ from 1 mJ, then as [`energy`] |
//! | CO2e, g | [`co2e`] | [`GRAMS`] | g, kg from 1000 g, t from 1000 kg |
//! | duration, s | [`duration`] | [`SECONDS`] | s, min from 2 min, h from 2 h |
//! | duration per item, s | [`duration_fine`] | [`SECONDS_FINE`] | us, ms from 1 ms, then as [`duration`] |
//! | power, W | [`power`] | [`WATTS`] | W, kW from 1000 W |
//!
//! The `_as` variants ([`energy_as`], [`energy_fine_as`], [`co2e_as`], [`duration_as`],
//! [`duration_fine_as`]) write a figure in the unit
//! another value would get, so that the ends of a range read in the unit of its point
//! (`0.471 Wh (0.257 .. 0.684 Wh)`, not `0.471 Wh (926 J .. 0.684 Wh)`). A column of figures
//! shares one unit and one number of decimals ([`Scale`]). Shares and changes are written by
//! [`percent`] (`49.0 %`) and [`signed`] (`+5.0`, never `-0.0`).
//!
//! The prefixes are ASCII (`uJ`, `us`): terminals and CI logs show them whatever their encoding.
//!
//! # Names
//!
//! Step names, job names, hosts, run ids, paths and messages that quote them come from run files,
//! the command line and the environment: [`escape_control`] makes them safe to print on a
//! terminal, where an escape sequence in a step name would otherwise clear the screen or retitle
//! the window. Data formats (CSV, JSON) keep names as they are: there the reader decodes them.
//!
//! ```
//! use carina_runtime::format::{co2e, energy, energy_as, escape_control};
//!
//! assert_eq!(energy(12.345), "12.3 J");
//! assert_eq!(energy(7200.0), "2.00 Wh");
//! assert_eq!(energy_as(926.0, 0.471 * 3600.0), "0.257 Wh");
//! assert_eq!(co2e(21_800.0), "21.8 kg");
//! assert_eq!(escape_control("a\x1b[2Jb"), "a\\x1b[2Jb");
//! ```

use std::borrow::Cow;
use std::fmt::Write as _;

/// A figure with three significant digits: fixed notation from 1e-4 to 1e9, scientific outside
/// (`0.000123`, `12.3`, `1.23e-7`); `0`, `NaN` and `inf` as Rust writes them.
///
/// ```
/// use carina_runtime::format::sig3;
///
/// assert_eq!(sig3(12.345), "12.3");
/// assert_eq!(sig3(48_670.0), "48670");
/// assert_eq!(sig3(0.000123), "0.000123");
/// assert_eq!(sig3(1.23e-7), "1.23e-7");
/// ```
pub fn sig3(x: f64) -> String {
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

/// One unit of a ladder: its name, its size in the ladder's base unit, and the smallest
/// magnitude, in the base unit, that is written in it.
///
/// A ladder lists its units largest first and ends with a unit used `from` 0; [`Unit::pick`]
/// takes the first one a value reaches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Unit {
    /// The unit's symbol: `kWh`, `Wh`, `J`...
    pub name: &'static str,
    /// The unit's size in the ladder's base unit (a `Wh` is 3600 J).
    pub size: f64,
    /// The smallest absolute value, in the base unit, written in this unit.
    pub from: f64,
}

impl Unit {
    const fn new(name: &'static str, size: f64, from: f64) -> Unit {
        Unit { name, size, from }
    }

    /// The index in `ladder` of the unit for `like` (a value in the ladder's base unit): the
    /// first, largest first, whose `from` `|like|` reaches; the last when none does (and for
    /// NaN).
    pub fn index(ladder: &[Unit], like: f64) -> usize {
        ladder
            .iter()
            .position(|u| like.abs() >= u.from)
            .unwrap_or(ladder.len().saturating_sub(1))
    }

    /// The unit of `ladder` for `like` (see [`index`](Self::index)).
    ///
    /// # Panics
    ///
    /// When `ladder` is empty.
    pub fn pick(ladder: &[Unit], like: f64) -> Unit {
        ladder[Self::index(ladder, like)]
    }

    /// `x` (in the base unit) in this unit with three significant digits, and the unit's name:
    /// `2.00 Wh`.
    pub fn write(&self, x: f64) -> String {
        format!("{} {}", sig3(x / self.size), self.name)
    }
}

/// Energy in joules: J below 1000 J, Wh below 1000 Wh, then kWh.
pub const JOULES: [Unit; 3] = [
    Unit::new("kWh", 3.6e6, 3.6e6),
    Unit::new("Wh", 3600.0, 1000.0),
    Unit::new("J", 1.0, 0.0),
];

/// Energy in joules, small ones too: uJ below 1 mJ, mJ below 1 J, then as [`JOULES`].
pub const JOULES_FINE: [Unit; 5] = [
    Unit::new("kWh", 3.6e6, 3.6e6),
    Unit::new("Wh", 3600.0, 1000.0),
    Unit::new("J", 1.0, 1.0),
    Unit::new("mJ", 1e-3, 1e-3),
    Unit::new("uJ", 1e-6, 0.0),
];

/// Energy in joules with SI prefixes only, for benchmarks: J from 1 J, mJ, µJ, then nJ.
pub const JOULES_SI: [Unit; 4] = [
    Unit::new("J", 1.0, 1.0),
    Unit::new("mJ", 1e-3, 1e-3),
    Unit::new("µJ", 1e-6, 1e-6),
    Unit::new("nJ", 1e-9, 0.0),
];

/// CO2e in grams: g below 1000 g, kg below 1000 kg, then t.
pub const GRAMS: [Unit; 3] = [
    Unit::new("t", 1e6, 1e6),
    Unit::new("kg", 1e3, 1e3),
    Unit::new("g", 1.0, 0.0),
];

/// Durations in seconds: s below 2 min, min below 2 h, then h.
pub const SECONDS: [Unit; 3] = [
    Unit::new("h", 3600.0, 7200.0),
    Unit::new("min", 60.0, 120.0),
    Unit::new("s", 1.0, 0.0),
];

/// Durations in seconds, short ones too: us below 1 ms, ms below 1 s, then as [`SECONDS`].
pub const SECONDS_FINE: [Unit; 5] = [
    Unit::new("h", 3600.0, 7200.0),
    Unit::new("min", 60.0, 120.0),
    Unit::new("s", 1.0, 1.0),
    Unit::new("ms", 1e-3, 1e-3),
    Unit::new("us", 1e-6, 0.0),
];

/// Power in watts: W below 1000 W, then kW.
pub const WATTS: [Unit; 2] = [Unit::new("kW", 1e3, 1e3), Unit::new("W", 1.0, 0.0)];

/// Energy in joules with a unit that keeps 3 significant digits: J, Wh or kWh ([`JOULES`]).
///
/// ```
/// # use carina_runtime::format::energy;
/// assert_eq!(energy(926.0), "926 J");
/// assert_eq!(energy(48.67 * 3.6e6), "48.7 kWh");
/// ```
pub fn energy(j: f64) -> String {
    energy_as(j, j)
}

/// `j` joules in the unit [`energy`] would choose for `like` joules: the ends of a range read in
/// the unit of its point.
pub fn energy_as(j: f64, like: f64) -> String {
    Unit::pick(&JOULES, like).write(j)
}

/// Energy in joules down to uJ and mJ ([`JOULES_FINE`]), for figures per item: `0 J` for 0.
///
/// ```
/// # use carina_runtime::format::energy_fine;
/// assert_eq!(energy_fine(0.0123), "12.3 mJ");
/// assert_eq!(energy_fine(4.5e-6), "4.50 uJ");
/// assert_eq!(energy_fine(12.0), "12.0 J");
/// ```
pub fn energy_fine(j: f64) -> String {
    energy_fine_as(j, j)
}

/// `j` joules in the unit [`energy_fine`] would choose for `like` joules (J when `like` is 0).
pub fn energy_fine_as(j: f64, like: f64) -> String {
    if like == 0.0 {
        JOULES_FINE[2].write(j)
    } else {
        Unit::pick(&JOULES_FINE, like).write(j)
    }
}

/// Grams CO2e in g, kg or t ([`GRAMS`]).
pub fn co2e(g: f64) -> String {
    co2e_as(g, g)
}

/// `g` grams in the unit [`co2e`] would choose for `like` grams.
pub fn co2e_as(g: f64, like: f64) -> String {
    Unit::pick(&GRAMS, like).write(g)
}

/// A duration in seconds, written in s, min or h ([`SECONDS`]).
///
/// ```
/// # use carina_runtime::format::duration;
/// assert_eq!(duration(90.0), "90.0 s");
/// assert_eq!(duration(649_080.0), "180 h");
/// ```
pub fn duration(s: f64) -> String {
    duration_as(s, s)
}

/// `s` seconds in the unit [`duration`] would choose for `like` seconds.
pub fn duration_as(s: f64, like: f64) -> String {
    Unit::pick(&SECONDS, like).write(s)
}

/// A duration in seconds down to us and ms ([`SECONDS_FINE`]), for figures per item: `0 s`
/// for 0.
pub fn duration_fine(s: f64) -> String {
    duration_fine_as(s, s)
}

/// `s` seconds in the unit [`duration_fine`] would choose for `like` seconds (s when `like` is
/// 0).
pub fn duration_fine_as(s: f64, like: f64) -> String {
    if like == 0.0 {
        SECONDS_FINE[2].write(s)
    } else {
        Unit::pick(&SECONDS_FINE, like).write(s)
    }
}

/// Power in watts, written in W or kW ([`WATTS`]).
pub fn power(w: f64) -> String {
    Unit::pick(&WATTS, w).write(w)
}

/// A byte count in decimal units: `512 B`, `12.3 kB`, `4.56 MB`, `1.20 GB`.
pub fn bytes(n: u64) -> String {
    let x = n as f64;
    match n {
        0..1_000 => format!("{n} B"),
        1_000..1_000_000 => format!("{} kB", sig3(x / 1e3)),
        1_000_000..1_000_000_000 => format!("{} MB", sig3(x / 1e6)),
        _ => format!("{} GB", sig3(x / 1e9)),
    }
}

/// A ratio as a percentage with `decimals` decimals and a space before the sign:
/// `percent(0.49, 1)` is `49.0 %`.
pub fn percent(ratio: f64, decimals: usize) -> String {
    format!("{:.decimals$} %", 100.0 * ratio)
}

/// A change with its sign and `decimals` decimals: `+5.0`, `-12.5`; a value that rounds to zero
/// is `+0.0`, never `-0.0`. Callers add the unit (`%` in a table cell, ` %` in a sentence).
pub fn signed(x: f64, decimals: usize) -> String {
    let s = format!("{x:+.decimals$}");
    match s.strip_prefix('-') {
        Some(digits) if digits.bytes().all(|b| b == b'0' || b == b'.') => format!("+{digits}"),
        _ => s,
    }
}

/// How a column of figures is printed: one unit and one number of decimals for every row, so
/// the figures line up and compare at a glance.
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
    /// The unit for a column whose largest absolute figure is `max`: the unit of `ladder` that
    /// `max` reaches ([`Unit::pick`]); decimals for 3 significant digits of `max`, at least
    /// `min_decimals`, at most 6 (2 when `max` is 0).
    pub fn pick(max: f64, ladder: &[Unit], min_decimals: usize) -> Scale {
        let u = Unit::pick(ladder, max);
        Scale::with(u.name, u.size, max, min_decimals)
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

/// Columns of energy given in kWh: kWh from 1 kWh, Wh from 0.01 Wh, else J.
pub const KWH_COLUMN: [Unit; 3] = [
    Unit::new("kWh", 1.0, 1.0),
    Unit::new("Wh", 1e-3, 1e-5),
    Unit::new("J", 1.0 / 3.6e6, 0.0),
];

/// Columns of CO2e given in kg: kg from 1 kg, g from 0.01 g, else mg.
pub const KG_COLUMN: [Unit; 3] = [
    Unit::new("kg", 1.0, 1.0),
    Unit::new("g", 1e-3, 1e-5),
    Unit::new("mg", 1e-6, 0.0),
];

/// Columns of durations given in hours: h from 2 h, min from 2 min, else s.
pub const HOUR_COLUMN: [Unit; 3] = [
    Unit::new("h", 1.0, 2.0),
    Unit::new("min", 1.0 / 60.0, 2.0 / 60.0),
    Unit::new("s", 1.0 / 3600.0, 0.0),
];

/// Whether `c` is escaped by [`escape_control`]: a C0 control (U+0000 to U+001F), DEL (U+007F) or
/// a C1 control (U+0080 to U+009F), exactly Unicode's `Cc` category.
fn is_escaped(c: char) -> bool {
    c.is_control()
}

/// Text safe to print on a terminal: every control character written as a visible escape,
/// everything else as it is.
///
/// C0 controls and DEL read as in Rust and C source (`\n`, `\r`, `\t`, else `\x1b`, `\x07`,
/// `\x7f`), C1 controls as `\u{9b}`. Ordinary Unicode (accents, CJK, emoji) is kept. Text without
/// controls is borrowed, not copied. Use it on every name and message from a run file, the command
/// line or the environment before it reaches a terminal; not on data formats (CSV, JSON), whose
/// readers decode the names themselves.
///
/// The result is for reading, not for parsing back: a name that holds a backslash followed by
/// `x1b` reads the same as one that holds ESC.
///
/// ```
/// use carina_runtime::format::escape_control;
///
/// assert_eq!(escape_control("a\x1b[2Jb\x07"), r"a\x1b[2Jb\x07");
/// assert_eq!(escape_control("two\nlines"), r"two\nlines");
/// assert_eq!(escape_control("zürich 東京"), "zürich 東京");
/// ```
pub fn escape_control(s: &str) -> Cow<'_, str> {
    escape_where(s, is_escaped)
}

/// [`escape_control`] for text of several lines: the same escapes, except that line feeds stay
/// line breaks. For a whole rendered page of terminal output, as a last safeguard behind the
/// escaping of each name.
///
/// ```
/// use carina_runtime::format::escape_control_lines;
///
/// assert_eq!(escape_control_lines("a\x1bb\nc\r\n"), "a\\x1bb\nc\\r\n");
/// ```
pub fn escape_control_lines(s: &str) -> Cow<'_, str> {
    escape_where(s, |c| c != '\n' && is_escaped(c))
}

fn escape_where(s: &str, escape: impl Fn(char) -> bool) -> Cow<'_, str> {
    let Some(first) = s.find(&escape) else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len() + 8);
    out.push_str(&s[..first]);
    for c in s[first..].chars() {
        if !escape(c) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // Writing to a String cannot fail.
            c if (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    Cow::Owned(out)
}

/// The first hardware counter considered and not used, with its reason cut to its first
/// sentence: why a run is estimated.
pub fn counters_not_used(sources: &[crate::record::EnergySource]) -> Option<(&str, String)> {
    let s = sources
        .iter()
        .find(|s| !s.used && s.kind == crate::record::EnergyKind::Measured && s.reason.is_some())?;
    let why = s.reason.as_deref().unwrap_or_default();
    let first = why.split("; ").next().unwrap_or(why);
    let mut line: String = first.chars().take(160).collect();
    if line.len() < first.len() {
        line.push_str("...");
    }
    Some((&s.name, line))
}

/// `0.4 % of CPU time, 0.02 J (aggregator ...)`: Carina's own cost in one line, for terminals.
pub fn own_cost_line(own: &crate::record::OwnCost) -> String {
    format!(
        "{} of CPU time, {} J (aggregator {} s CPU; steps {} s CPU at {} ns each; {} written)",
        percent(own.cpu_share, 2),
        sig3(own.energy_j().0),
        sig3(own.aggregator_cpu_s.0),
        sig3(own.steps_cpu_s.0),
        sig3(own.step_cost_ns),
        bytes(own.bytes_written),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_significant_digits() {
        assert_eq!(sig3(12.345), "12.3");
        assert_eq!(sig3(0.000123), "0.000123");
        assert_eq!(sig3(1.23e-7), "1.23e-7");
        assert_eq!(sig3(0.0), "0");
        assert_eq!(sig3(-0.5), "-0.500");
        assert_eq!(sig3(999_999_999.0), "999999999");
        assert_eq!(sig3(1.5e9), "1.50e9");
        assert_eq!(sig3(f64::NAN), "NaN");
    }

    #[test]
    fn units_follow_the_size() {
        assert_eq!(energy(12.345), "12.3 J");
        assert_eq!(energy(999.0), "999 J");
        assert_eq!(energy(1000.0), "0.278 Wh");
        assert_eq!(energy(7200.0), "2.00 Wh");
        assert_eq!(energy(48.67 * 3.6e6), "48.7 kWh");
        assert_eq!(energy(-7200.0), "-2.00 Wh");
        assert_eq!(co2e(21_800.0), "21.8 kg");
        assert_eq!(co2e(4.0), "4.00 g");
        assert_eq!(co2e(2.5e6), "2.50 t");
        assert_eq!(duration(119.0), "119 s");
        assert_eq!(duration(120.0), "2.00 min");
        assert_eq!(duration(649_080.0), "180 h");
        assert_eq!(power(270.0), "270 W");
        assert_eq!(power(1500.0), "1.50 kW");
    }

    #[test]
    fn range_ends_follow_the_point() {
        assert_eq!(energy_as(926.0, 0.471 * 3600.0), "0.257 Wh");
        assert_eq!(duration_as(101.0, 128.0), "1.68 min");
        assert_eq!(co2e_as(900.0, 2000.0), "0.900 kg");
    }

    #[test]
    fn fine_units_reach_below_one() {
        assert_eq!(energy_fine(0.0), "0 J");
        assert_eq!(energy_fine(0.5), "500 mJ");
        assert_eq!(energy_fine(0.000_25), "250 uJ");
        assert_eq!(energy_fine(1.0), "1.00 J");
        assert_eq!(energy_fine(7200.0), "2.00 Wh");
        assert_eq!(duration_fine(0.0), "0 s");
        assert_eq!(duration_fine(0.012), "12.0 ms");
        assert_eq!(duration_fine(3e-6), "3.00 us");
        assert_eq!(duration_fine(300.0), "5.00 min");
        assert_eq!(energy_fine_as(1.02, 0.95), "1020 mJ");
        assert_eq!(energy_fine_as(0.5, 0.0), "0.500 J");
        assert_eq!(duration_fine_as(0.0004, 0.002), "0.400 ms");
    }

    #[test]
    fn ladders_pick_the_first_unit_reached() {
        assert_eq!(Unit::index(&JOULES_SI, 2.0), 0);
        assert_eq!(Unit::index(&JOULES_SI, 0.002), 1);
        assert_eq!(Unit::index(&JOULES_SI, 2e-6), 2);
        assert_eq!(Unit::index(&JOULES_SI, 2e-9), 3);
        assert_eq!(Unit::index(&JOULES_SI, f64::NAN), 3);
        assert_eq!(Unit::pick(&JOULES, f64::INFINITY).name, "kWh");
    }

    #[test]
    fn percentages_and_changes() {
        assert_eq!(percent(0.49, 1), "49.0 %");
        assert_eq!(percent(0.4949, 0), "49 %");
        assert_eq!(signed(5.0, 1), "+5.0");
        assert_eq!(signed(-12.46, 1), "-12.5");
        assert_eq!(signed(-0.04, 1), "+0.0");
        assert_eq!(signed(-0.0, 1), "+0.0");
        assert_eq!(signed(-10.04, 1), "-10.0");
        assert_eq!(signed(0.0, 0), "+0");
    }

    #[test]
    fn column_scales() {
        let s = Scale::pick(48.67, &KWH_COLUMN, 2);
        assert_eq!((s.unit, s.fmt(48.67)), ("kWh", "48.67".to_owned()));
        let s = Scale::pick(0.000_27, &KWH_COLUMN, 0);
        assert_eq!((s.unit, s.fmt(0.000_27)), ("Wh", "0.270".to_owned()));
        let s = Scale::pick(2.0e-7, &KWH_COLUMN, 0);
        assert_eq!((s.unit, s.fmt(2.0e-7)), ("J", "0.720".to_owned()));
        let s = Scale::pick(180.3, &HOUR_COLUMN, 2);
        assert_eq!((s.unit, s.fmt(180.3)), ("h", "180.30".to_owned()));
        let s = Scale::pick(0.5, &HOUR_COLUMN, 0);
        assert_eq!((s.unit, s.fmt(0.5)), ("min", "30.0".to_owned()));
        let s = Scale::pick(10.0 / 3600.0, &HOUR_COLUMN, 0);
        assert_eq!((s.unit, s.fmt(10.0 / 3600.0)), ("s", "10.0".to_owned()));
        let s = Scale::pick(0.0001, &KG_COLUMN, 0);
        assert_eq!((s.unit, s.fmt(0.0001)), ("g", "0.100".to_owned()));
        assert_eq!(Scale::pick(0.0, &KG_COLUMN, 0).fmt(0.0), "0.00");
        assert_eq!(Scale::pick(200.0, &HOUR_COLUMN, 1).fmt(200.0), "200.0");
        let s = Scale::pick(180.3, &HOUR_COLUMN, 2).decimals_for(3.0, 0);
        assert_eq!(s.fmt(3.0), "3.00");
    }

    #[test]
    fn controls_are_escaped_and_unicode_kept() {
        assert!(matches!(escape_control("plain name"), Cow::Borrowed(_)));
        assert_eq!(escape_control("a\x1b[2Jb"), "a\\x1b[2Jb");
        assert_eq!(escape_control("bell\x07"), "bell\\x07");
        assert_eq!(escape_control("\0\x7f"), "\\x00\\x7f");
        assert_eq!(escape_control("t\tr\rn\n"), "t\\tr\\rn\\n");
        assert_eq!(escape_control("csi\u{9b}31m"), "csi\\u{9b}31m");
        assert_eq!(escape_control("nel\u{85}"), "nel\\u{85}");
        // Not controls: Latin-1 letters right after C1, non-breaking space, CJK, emoji.
        assert_eq!(escape_control("\u{a0}é東京🙂"), "\u{a0}é東京🙂");
        let e = escape_control("x\x1b]0;pwned\x07y");
        assert!(!e.bytes().any(|b| b < 0x20 || b == 0x7f), "{e}");
    }

    #[test]
    fn lines_keep_their_breaks() {
        assert!(matches!(escape_control_lines("a\nb\n"), Cow::Borrowed(_)));
        assert_eq!(escape_control_lines("a\x1bb\nc\r\n"), "a\\x1bb\nc\\r\n");
        assert_eq!(escape_control_lines("tab\there"), "tab\\there");
    }
}
