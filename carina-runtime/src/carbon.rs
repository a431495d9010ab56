//! Grid emission factors: energy to grams CO2e.
//!
//! A run uses either a fixed factor (a zone's annual average from [`crate::zones`], the world
//! average by default, or a user-given number) or a time-varying series loaded from a CSV of
//! `timestamp,g_per_kwh`, applied per sampling interval.

use crate::record::CarbonInfo;
use crate::text::edit_distance;
use crate::zones::{ZONES, ZONES_SOURCE};
use carina_core::units::Joules;
use std::path::{Path, PathBuf};

/// Largest grid intensity accepted in a series, g CO2e/kWh: ten times the dirtiest fuel.
const MAX_G_PER_KWH: f64 = 10_000.0;

/// Why a carbon setting could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CarbonError {
    /// The zone code is not in the table.
    #[error("unknown carbon zone {zone:?}; did you mean {}? (zones are ISO 3166-1 alpha-2 codes, WORLD or EU)", suggestions.join(", "))]
    UnknownZone {
        /// What was asked for.
        zone: String,
        /// Close matches, best first.
        suggestions: Vec<String>,
    },
    /// The intensity file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A line of the intensity file is malformed.
    #[error("{path}:{line}: field `{field}`: {message}")]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// `timestamp` or `g_per_kwh`.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The file has no data rows.
    #[error("{path}: no `timestamp,g_per_kwh` rows")]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

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
            series: None,
        }
    }
}

impl Default for CarbonFactor {
    fn default() -> Self {
        Self::world()
    }
}

impl CarbonFactor {
    /// The annual average of a grid zone (`"DE"`, `"FR"`, `"WORLD"`, `"EU"`, case-insensitive).
    pub fn zone(code: &str) -> Result<Self, CarbonError> {
        let want = code.trim().to_ascii_uppercase();
        match ZONES.iter().find(|z| z.code == want) {
            Some(z) => Ok(CarbonFactor {
                g_per_kwh: z.g_per_kwh,
                zone: Some(z.code.to_owned()),
                source: format!("{} {} average ({ZONES_SOURCE})", z.name, z.year),
            }),
            None => Err(CarbonError::UnknownZone {
                zone: code.to_owned(),
                suggestions: close_zones(code),
            }),
        }
    }
}

/// Up to five zones whose code or name resembles `query`.
fn close_zones(query: &str) -> Vec<String> {
    let q = query.trim().to_ascii_lowercase();
    let mut scored: Vec<(usize, &crate::zones::Zone)> = ZONES
        .iter()
        .map(|z| {
            let code = z.code.to_ascii_lowercase();
            let name = z.name.to_ascii_lowercase();
            let d = if !q.is_empty() && (name.contains(&q) || q.contains(&code)) {
                0
            } else {
                edit_distance(&q, &code).min(edit_distance(&q, &name))
            };
            (d, z)
        })
        .collect();
    scored.sort_by_key(|(d, z)| (*d, z.code));
    scored
        .into_iter()
        .take(5)
        .map(|(_, z)| format!("{} ({})", z.code, z.name))
        .collect()
}

/// A time-varying grid intensity: each value holds from its timestamp until the next one.
#[derive(Debug, Clone, PartialEq)]
pub struct IntensitySeries {
    path: PathBuf,
    points: Vec<(jiff::Timestamp, f64)>,
}

impl IntensitySeries {
    /// Largest intensity a series may hold, g CO2e/kWh (see [`IntensitySeries::load`]).
    pub const MAX: f64 = MAX_G_PER_KWH;

    /// Largest intensity file read, bytes: 64 MiB, about 2 million rows, i.e. 20 years of
    /// 5-minute values.
    pub const MAX_FILE_BYTES: u64 = 64 << 20;

    /// Longest line of an intensity file, bytes: a row is a timestamp and a number.
    pub const MAX_LINE_BYTES: usize = 4096;

    /// Loads a CSV with a `timestamp,g_per_kwh` header; timestamps are RFC 3339 and strictly
    /// increasing (any step length); `#` starts a comment line.
    ///
    /// Only a regular file of at most [`MAX_FILE_BYTES`](Self::MAX_FILE_BYTES) is read: a FIFO,
    /// a device (`/dev/zero`) or a symlink to one is refused at once, without blocking and
    /// without reading it, since it might never end.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, CarbonError> {
        let path = path.as_ref();
        let text =
            crate::input::read_regular_to_string(path, Self::MAX_FILE_BYTES).map_err(|e| {
                CarbonError::Io {
                    path: path.to_path_buf(),
                    source: e.into_io_error(),
                }
            })?;
        Self::parse(&text, path)
    }

    /// Parses CSV text; `path` is used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, CarbonError> {
        let err = |line: usize, field: &'static str, message: String| CarbonError::Line {
            path: path.to_path_buf(),
            line,
            field,
            message,
        };
        let mut points: Vec<(jiff::Timestamp, f64)> = Vec::new();
        let mut header_seen = false;
        for (i, raw) in text.lines().enumerate() {
            if raw.len() > Self::MAX_LINE_BYTES {
                return Err(err(
                    i + 1,
                    "timestamp",
                    format!(
                        "line of {} bytes, longer than the {} a `timestamp,g_per_kwh` row may have",
                        raw.len(),
                        Self::MAX_LINE_BYTES
                    ),
                ));
            }
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut cols = line.split(',').map(str::trim);
            let (ts, val) = (cols.next().unwrap_or(""), cols.next());
            if !header_seen {
                header_seen = true;
                if ts.eq_ignore_ascii_case("timestamp") {
                    if val.map(|v| v.eq_ignore_ascii_case("g_per_kwh")) != Some(true) {
                        return Err(err(
                            i + 1,
                            "g_per_kwh",
                            "header must be `timestamp,g_per_kwh`".into(),
                        ));
                    }
                    continue;
                }
            }
            let t: jiff::Timestamp = ts.parse().map_err(|e| {
                err(
                    i + 1,
                    "timestamp",
                    format!("{ts:?} is not an RFC 3339 timestamp ({e})"),
                )
            })?;
            let val = val.ok_or_else(|| err(i + 1, "g_per_kwh", "missing".into()))?;
            let g: f64 = val
                .parse()
                .ok()
                .filter(|g: &f64| g.is_finite() && *g >= 0.0)
                .ok_or_else(|| {
                    err(
                        i + 1,
                        "g_per_kwh",
                        format!("{val:?} is not a non-negative number"),
                    )
                })?;
            // Lignite, the dirtiest source, emits about 1 100-1 200 g/kWh (IPCC AR5 WG3 Annex
            // III): a value far beyond it is a unit mistake, and huge ones would overflow the
            // time-weighted mean to infinity.
            if g > MAX_G_PER_KWH {
                return Err(err(
                    i + 1,
                    "g_per_kwh",
                    format!(
                        "{val} g/kWh is beyond any grid (the dirtiest fuels emit about 1 200); \
                         is the unit kg or mg? At most {MAX_G_PER_KWH} is accepted"
                    ),
                ));
            }
            if cols.next().is_some() {
                return Err(err(i + 1, "g_per_kwh", "more than two columns".into()));
            }
            if let Some((last, _)) = points.last()
                && t <= *last
            {
                return Err(err(
                    i + 1,
                    "timestamp",
                    format!("{t} is not after the previous row's {last}"),
                ));
            }
            points.push((t, g));
        }
        if points.is_empty() {
            return Err(CarbonError::Empty {
                path: path.to_path_buf(),
            });
        }
        Ok(IntensitySeries {
            path: path.to_path_buf(),
            points,
        })
    }

    /// The file it came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// First and last timestamps.
    pub fn range(&self) -> (jiff::Timestamp, jiff::Timestamp) {
        (self.points[0].0, self.points[self.points.len() - 1].0)
    }

    /// The value at `t`; outside the series, the nearest value and `false`.
    pub fn at(&self, t: jiff::Timestamp) -> (f64, bool) {
        let i = self.points.partition_point(|(p, _)| *p <= t);
        if i == 0 {
            (self.points[0].1, false)
        } else {
            // Past the last point the last value still holds, but we only know it holds
            // until the series ends: flag it.
            (self.points[i - 1].1, i < self.points.len())
        }
    }

    /// The first point after `t`, where [`at`](Self::at) may change value; `None` past the last
    /// one (the last value holds from then on).
    pub fn next_change(&self, t: jiff::Timestamp) -> Option<jiff::Timestamp> {
        let i = self.points.partition_point(|(p, _)| *p <= t);
        self.points.get(i).map(|(p, _)| *p)
    }

    /// Time-weighted mean intensity over `[from, to]`, and whether the whole span was covered.
    pub fn mean_over(&self, from: jiff::Timestamp, to: jiff::Timestamp) -> (f64, bool) {
        if to <= from {
            return self.at(from);
        }
        let (first, last) = self.range();
        let covered = from >= first && to <= last;
        let mut acc = 0.0;
        let mut t = from;
        while t < to {
            let (g, _) = self.at(t);
            let i = self.points.partition_point(|(p, _)| *p <= t);
            let next = self.points.get(i).map_or(to, |(p, _)| (*p).min(to));
            acc += g * next.duration_since(t).as_secs_f64();
            t = next;
        }
        (acc / to.duration_since(from).as_secs_f64(), covered)
    }

    /// Mean of the values (for the run file's summary).
    pub fn mean(&self) -> f64 {
        self.points.iter().map(|(_, g)| g).sum::<f64>() / self.points.len() as f64
    }
}

/// The carbon setting of a run.
#[derive(Debug, Clone, PartialEq)]
pub enum Carbon {
    /// One factor for the whole run.
    Fixed(CarbonFactor),
    /// A time-varying intensity, applied per sampling interval.
    Series(IntensitySeries),
}

impl Default for Carbon {
    fn default() -> Self {
        Carbon::Fixed(CarbonFactor::world())
    }
}

impl Carbon {
    /// Grams CO2e per kWh over `[from, to]`, and whether it is known there (false: a series
    /// that does not cover the span; its nearest value was used).
    pub fn g_per_kwh(&self, from: jiff::Timestamp, to: jiff::Timestamp) -> (f64, bool) {
        match self {
            Carbon::Fixed(f) => (f.g_per_kwh, true),
            Carbon::Series(s) => s.mean_over(from, to),
        }
    }

    /// The run-file form.
    pub fn info(&self) -> CarbonInfo {
        match self {
            Carbon::Fixed(f) => f.info(),
            Carbon::Series(s) => {
                let (a, b) = s.range();
                CarbonInfo {
                    g_per_kwh: s.mean(),
                    zone: None,
                    source: format!(
                        "time-varying intensity from {} ({} points, {a} to {b}); g_per_kwh is the series' mean",
                        s.path().display(),
                        s.points.len()
                    ),
                    series: Some(s.path().display().to_string()),
                }
            }
        }
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
    fn zones_resolve_and_unknown_ones_suggest() {
        let de = CarbonFactor::zone("de").unwrap();
        assert_eq!(de.g_per_kwh, 342.06);
        assert_eq!(de.zone.as_deref(), Some("DE"));
        assert!(de.source.contains("Germany 2024"));
        let e = CarbonFactor::zone("Germny").unwrap_err().to_string();
        assert!(e.contains("DE (Germany)"), "{e}");
        let e = CarbonFactor::zone("XX").unwrap_err().to_string();
        assert!(e.contains("unknown carbon zone \"XX\""), "{e}");
        assert_eq!(
            CarbonFactor::zone("WORLD").unwrap().g_per_kwh,
            WORLD_G_PER_KWH
        );
    }

    fn ts(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn intensities_that_would_overflow_the_mean_are_rejected_with_the_line() {
        let text = "timestamp,g_per_kwh\n2026-01-01T00:00:00Z,100\n2026-01-01T01:00:00Z,1e308\n2026-01-01T02:00:00Z,1e308\n";
        let e = IntensitySeries::parse(text, Path::new("big.csv"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("big.csv") && e.contains('3') && e.contains("g_per_kwh"),
            "{e}"
        );
        assert!(e.contains("kg or mg"), "says what is likely wrong: {e}");
        // The dirtiest real grids pass.
        let ok = "timestamp,g_per_kwh\n2026-01-01T00:00:00Z,1150\n";
        assert!(IntensitySeries::parse(ok, Path::new("ok.csv")).is_ok());
    }

    #[test]
    fn series_parses_and_integrates_per_interval() {
        let text = "# hourly\ntimestamp,g_per_kwh\n2026-01-01T00:00:00Z,100\n2026-01-01T01:00:00Z,300\n2026-01-01T02:00:00Z,200\n";
        let s = IntensitySeries::parse(text, Path::new("i.csv")).unwrap();
        assert_eq!(s.at(ts("2026-01-01T00:30:00Z")), (100.0, true));
        // Half an hour at 100, half at 300.
        let (g, ok) = s.mean_over(ts("2026-01-01T00:30:00Z"), ts("2026-01-01T01:30:00Z"));
        assert!((g - 200.0).abs() < 1e-9 && ok);
        // Before the series: nearest value, flagged.
        assert_eq!(s.at(ts("2025-12-31T23:00:00Z")), (100.0, false));
        let (g, ok) = s.mean_over(ts("2026-01-01T02:00:00Z"), ts("2026-01-01T03:00:00Z"));
        assert!((g - 200.0).abs() < 1e-9 && !ok);
    }

    #[test]
    fn special_files_are_refused_at_once_and_size_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("i.csv");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.unwrap().success());
        let zero = dir.path().join("zero.csv");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        // A blocking open of the FIFO (no writer) or a read of /dev/zero would never return.
        for (p, kind) in [
            (fifo.as_path(), "a FIFO"),
            (zero.as_path(), "device"),
            (Path::new("/dev/zero"), "device"),
            (dir.path(), "a directory"),
        ] {
            let e = IntensitySeries::load(p).unwrap_err();
            let msg = e.to_string();
            assert!(matches!(e, CarbonError::Io { .. }), "{msg}");
            assert!(msg.contains(&p.display().to_string()), "{msg}");
            assert!(
                msg.contains(kind) && msg.contains("not a regular file"),
                "{msg}"
            );
        }
        let big = dir.path().join("big.csv");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(IntensitySeries::MAX_FILE_BYTES + 1).unwrap();
        let msg = IntensitySeries::load(&big).unwrap_err().to_string();
        assert!(msg.contains("more than the 67108864 bytes"), "{msg}");
        let long = format!("timestamp,g_per_kwh\n{}\n", "9".repeat(5000));
        let msg = IntensitySeries::parse(&long, Path::new("l.csv"))
            .unwrap_err()
            .to_string();
        assert!(
            msg.starts_with("l.csv:2:") && msg.contains("5000 bytes"),
            "{msg}"
        );
    }

    #[test]
    fn malformed_series_names_file_line_and_field() {
        let bad = [
            ("timestamp,g_per_kwh\nyesterday,100\n", 2, "timestamp"),
            (
                "timestamp,g_per_kwh\n2026-01-01T00:00:00Z,-5\n",
                2,
                "g_per_kwh",
            ),
            (
                "2026-01-01T00:00:00Z,1\n2026-01-01T00:00:00Z,2\n",
                2,
                "timestamp",
            ),
            ("2026-01-01T00:00:00Z\n", 1, "g_per_kwh"),
        ];
        for (text, line, field) in bad {
            let e = IntensitySeries::parse(text, Path::new("/x/i.csv")).unwrap_err();
            let msg = e.to_string();
            assert!(msg.starts_with(&format!("/x/i.csv:{line}:")), "{msg}");
            assert!(msg.contains(field), "{msg}");
        }
        assert!(matches!(
            IntensitySeries::parse("timestamp,g_per_kwh\n", Path::new("e.csv")),
            Err(CarbonError::Empty { .. })
        ));
    }

    #[test]
    fn world_default_is_cited() {
        let w = CarbonFactor::default();
        assert_eq!(w.g_per_kwh, 472.94);
        assert!(w.source.contains("Ember"));
    }
}
