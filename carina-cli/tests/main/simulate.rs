//! `carina simulate`, run as the built binary.

use crate::common::{carina, stderr, stdout};
use serde_json::Value;
use std::path::Path;

const PUBLISHED: [&str; 9] = [
    "simulate", "--items", "1480000", "--hours", "180.30", "--kwh", "48.67", "--factor", "448",
];

fn json_rows(args: &[&str]) -> Vec<Value> {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--format", "json"]);
    let o = carina(&all);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).expect("stdout is JSON");
    v.as_array().expect("a JSON array").clone()
}

fn row<'a>(rows: &'a [Value], policy: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["policy"] == policy)
        .unwrap_or_else(|| panic!("no row for {policy}"))
}

fn num(v: &Value, field: &str) -> f64 {
    v[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} is not a number in {v}"))
}

#[test]
fn text_table_has_one_row_per_policy_with_units() {
    let o = carina(&PUBLISHED);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    let out = stdout(&o);
    for unit in ["(h)", "(kWh)", "(kg)", "(%)"] {
        assert!(out.contains(unit), "no {unit} header in:\n{out}");
    }
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| {
            ["baseline ", "throttle ", "offpeak-boost ", "defer "]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .collect();
    assert_eq!(rows.len(), 4, "{out}");
    let baseline = rows[0];
    assert!(baseline.contains("180.30"), "{baseline}");
    assert!(baseline.contains("48.67"), "{baseline}");
    assert!(baseline.contains("21.80"), "{baseline}");
    // Aligned: the value columns end at the same offsets in every row.
    let ends = |l: &str| -> Vec<usize> {
        let b = l.as_bytes();
        (1..b.len())
            .filter(|&i| b[i - 1] != b' ' && (i == b.len() || b[i] == b' '))
            .chain([b.len()])
            .collect()
    };
    let first = ends(rows[0]);
    for r in &rows[1..] {
        assert_eq!(&ends(r)[1..], &first[1..], "misaligned:\n{out}");
    }
    assert!(out.contains("Mon-Fri 08:00-20:00 UTC"), "{out}");
}

#[test]
fn json_reproduces_the_published_case() {
    let rows = json_rows(&PUBLISHED);
    let names: Vec<&str> = rows.iter().map(|r| r["policy"].as_str().unwrap()).collect();
    assert_eq!(names, ["baseline", "throttle", "offpeak-boost", "defer"]);
    for r in &rows {
        for field in [
            "makespan_h",
            "energy_kwh",
            "co2e_kg",
            "cost",
            "energy_delta_pct",
            "makespan_delta_pct",
        ] {
            num(r, field);
        }
    }
    let b = row(&rows, "baseline");
    assert!((num(b, "energy_kwh") - 48.67).abs() < 0.01);
    assert!((num(b, "makespan_h") - 180.30).abs() < 0.01);
    assert!((num(b, "co2e_kg") - 21.8).abs() <= 0.1);
    assert_eq!(num(b, "energy_delta_pct"), 0.0);
    assert_eq!(b["profile_complete"], true);
    let boost = row(&rows, "offpeak-boost");
    let de = num(boost, "energy_delta_pct");
    let dm = num(boost, "makespan_delta_pct");
    assert!((-15.0..=-5.0).contains(&de), "{de}");
    assert!((3.0..=12.0).contains(&dm), "{dm}");
    assert!(num(row(&rows, "throttle"), "energy_delta_pct") > 0.0);
}

#[test]
fn policy_subset_and_deadline() {
    let mut args = PUBLISHED.to_vec();
    args.extend(["--policy", "defer,offpeak-boost", "--deadline-h", "200"]);
    let rows = json_rows(&args);
    assert_eq!(rows.len(), 2);
    let defer = row(&rows, "defer");
    assert_eq!(defer["deadline_met"], true);
    assert_eq!(num(defer, "deadline_h"), 200.0);
    assert!(num(defer, "makespan_h") <= 200.0);
    // Deltas are against the baseline even when it is not shown.
    assert!(num(defer, "makespan_delta_pct") > 0.0);
    // The text table gets a deadline column.
    let o = carina(&args);
    assert!(stdout(&o).contains("200.0 met"), "{}", stdout(&o));
}

#[test]
fn items_accept_scientific_notation_and_machine_flags_change_results() {
    let rows = json_rows(&[
        "simulate", "--items", "1.48e6", "--hours", "180.3", "--kwh", "48.67",
    ]);
    // Default factor: the 2024 world average, 472.94 g/kWh.
    let b = row(&rows, "baseline");
    assert!((num(b, "co2e_kg") - 48.67 * 0.47294).abs() < 0.01);
    // When pausing saves nothing, boosting off-peak and pausing in peak costs energy.
    let rows = json_rows(&[
        "simulate",
        "--items",
        "1480000",
        "--hours",
        "180.3",
        "--kwh",
        "48.67",
        "--sleep-share",
        "1",
    ]);
    assert!(num(row(&rows, "offpeak-boost"), "energy_delta_pct") > 0.0);
}

const START: &str = r#"{"type":"run_start","schema":1,"run_id":"20240108T000000Z-7-ab12","job":"scenario-db","host":"node7","pid":7,"started_at":"2024-01-08T00:00:00Z","energy_sources":[{"name":"model","kind":"estimated","source":"test","domains":["cpu"],"scope":"host","idle_w":100.0,"max_w":400.0}],"carbon":{"g_per_kwh":300.0,"zone":null,"source":"user-given factor"},"steps":"all","sample_interval_s":0.1,"scope":"process","carina_version":"0.1.0"}"#;

fn step(id: u32, end_s: f64, items: u64, energy_j: f64) -> String {
    format!(
        r#"{{"type":"step","name":"solve","id":{id},"parent":null,"thread":0,"start_s":0.0,"end_s":{end_s},"items":{items},"status":"ok","energy_j":{energy_j},"self_energy_j":{energy_j},"co2e_g":0.0}}"#
    )
}

fn write(dir: &Path, name: &str, lines: &[String]) -> String {
    let path = dir.join(name);
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn from_a_complete_run_file() {
    let dir = tempfile::tempdir().unwrap();
    // 40 hours, 10.8 kWh (270 W), 100000 items.
    let summary = r#"{"type":"step_summary","name":"solve","count":2,"wall_s":144000.0,"self_wall_s":144000.0,"items":100000,"energy_j":38880000.0,"self_energy_j":38880000.0,"co2e_g":0.0,"p50_s":1.0,"p95_s":1.0,"max_s":1.0,"errors":0,"panics":0}"#;
    let end = r#"{"type":"run_end","ended_at":"2024-01-09T16:00:00Z","wall_s":144000.0,"energy_j":38880000.0,"unattributed_j":0.0,"co2e_g":3240.0,"items":100000,"steps":2,"dropped":0,"records_not_written":0,"host_energy_j":38880000.0,"energy_kind":"estimated","probe_errors":0,"sink_errors":0}"#;
    let path = write(
        dir.path(),
        "run.jsonl",
        &[
            START.to_owned(),
            step(1, 72000.0, 50000, 19440000.0),
            step(2, 144000.0, 50000, 19440000.0),
            summary.to_owned(),
            end.to_owned(),
        ],
    );
    let rows = json_rows(&["simulate", "--from", &path]);
    assert_eq!(rows.len(), 4);
    let b = row(&rows, "baseline");
    assert!((num(b, "makespan_h") - 40.0).abs() < 1e-6);
    assert!((num(b, "energy_kwh") - 10.8).abs() < 1e-6);
    // The run file's factor (300 g/kWh) applies when --factor is not given.
    assert!((num(b, "co2e_kg") - 3.24).abs() < 1e-6);
    assert_eq!(b["profile_complete"], true);
    let o = carina(&["simulate", "--from", &path]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("100000 items"), "{}", stdout(&o));
    assert!(stderr(&o).contains("scenario-db"), "{}", stderr(&o));
    // --factor overrides it.
    let rows = json_rows(&["simulate", "--from", &path, "--factor", "100"]);
    assert!((num(row(&rows, "baseline"), "co2e_kg") - 1.08).abs() < 1e-6);
    // `carina simulate RUNFILE` is the same as --from; both at once is a usage error.
    let positional = carina(&["simulate", &path]);
    assert_eq!(positional.status.code(), Some(0));
    assert_eq!(stdout(&positional), stdout(&o));
    let both = carina(&["simulate", &path, "--from", &path]);
    assert_eq!(both.status.code(), Some(2));
}

#[test]
fn from_an_incomplete_run_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "crashed.jsonl",
        &[
            START.to_owned(),
            step(1, 3600.0, 1000, 900000.0),
            step(2, 7200.0, 1000, 900000.0),
        ],
    );
    let o = carina(&["simulate", "--from", &path, "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("did not finish"), "{}", stderr(&o));
    let rows: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let b = row(rows.as_array().unwrap(), "baseline");
    assert_eq!(b["profile_complete"], false);
    assert!((num(b, "makespan_h") - 2.0).abs() < 1e-6);
    assert!((num(b, "energy_kwh") - 0.5).abs() < 1e-6);
    let o = carina(&["simulate", "--from", &path]);
    assert!(stdout(&o).contains("partial"), "{}", stdout(&o));
}

#[test]
fn time_varying_intensity_from_a_csv() {
    let dir = tempfile::tempdir().unwrap();
    // 100 g/kWh on the first day, 500 on the second: a 48 h, 48 kWh baseline emits
    // 24 * 100 + 24 * 500 g.
    let csv = write(
        dir.path(),
        "intensity.csv",
        &[
            "timestamp,g_per_kwh".to_owned(),
            "2024-01-08T00:00:00Z,100".to_owned(),
            "2024-01-09T00:00:00Z,500".to_owned(),
            "2024-01-31T00:00:00Z,500".to_owned(),
        ],
    );
    let rows = json_rows(&[
        "simulate",
        "--items",
        "1000",
        "--hours",
        "48",
        "--kwh",
        "48",
        "--intensity",
        &csv,
        "--policy",
        "baseline",
    ]);
    assert!(
        (num(&rows[0], "co2e_kg") - 14.4).abs() < 1e-6,
        "{}",
        rows[0]
    );
}

fn assert_bad(args: &[&str], needle: &str) {
    let o = carina(args);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{args:?}: stdout {} stderr {}",
        stdout(&o),
        stderr(&o)
    );
    let err = stderr(&o);
    assert!(
        err.contains(needle),
        "{args:?}: expected {needle:?} in {err}"
    );
    assert!(stdout(&o).is_empty(), "{args:?}: {}", stdout(&o));
}

#[test]
fn bad_input_exits_2_naming_the_flag_or_file() {
    let base = ["simulate", "--items", "1000", "--hours", "10", "--kwh", "2"];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut v = base.to_vec();
        v.extend_from_slice(extra);
        v
    };
    assert_bad(
        &["simulate", "--items", "0", "--hours", "1", "--kwh", "1"],
        "--items",
    );
    assert_bad(
        &["simulate", "--items", "10", "--hours", "-1", "--kwh", "1"],
        "--hours",
    );
    assert_bad(
        &["simulate", "--items", "10", "--hours", "1", "--kwh", "0"],
        "--kwh",
    );
    assert_bad(
        &["simulate", "--items", "ten", "--hours", "1", "--kwh", "1"],
        "--items",
    );
    assert_bad(&["simulate", "--hours", "1", "--kwh", "1"], "--items");
    assert_bad(&with(&["--idle-share", "1.5"]), "--idle-share");
    assert_bad(&with(&["--sleep-share", "-0.1"]), "--sleep-share");
    assert_bad(&with(&["--workers", "0"]), "--workers");
    assert_bad(
        &with(&["--workers", "8", "--max-workers", "4"]),
        "--max-workers",
    );
    assert_bad(&with(&["--throttle-fraction", "2"]), "--throttle-fraction");
    assert_bad(&with(&["--boost-factor", "0.5"]), "--boost-factor");
    assert_bad(&with(&["--deadline-h", "0"]), "--deadline-h");
    assert_bad(&with(&["--factor", "-3"]), "--factor");
    assert_bad(&with(&["--peak-tariff", "nan"]), "--peak-tariff");
    assert_bad(&with(&["--format", "xml"]), "--format");
    assert_bad(&with(&["--policy", "fast"]), "--policy");
    assert_bad(&with(&["--start", "monday"]), "--start");
    assert_bad(&with(&["--from", "x.jsonl"]), "--from");
    assert_bad(
        &["simulate", "--from", "/nonexistent/run.jsonl"],
        "/nonexistent/run.jsonl",
    );
    assert_bad(
        &with(&["--intensity", "/nonexistent/i.csv"]),
        "/nonexistent/i.csv",
    );
    assert_bad(
        &with(&["--schedule", "/nonexistent/peak.toml"]),
        "--schedule",
    );

    let dir = tempfile::tempdir().unwrap();
    let junk = write(
        dir.path(),
        "junk.jsonl",
        &["not json".to_owned(), "{}".to_owned()],
    );
    assert_bad(&["simulate", "--from", &junk], "junk.jsonl");
}

#[test]
fn help_and_version() {
    let o = carina(&["--version"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).starts_with("carina "), "{}", stdout(&o));
    let o = carina(&["simulate", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    let help = stdout(&o);
    for flag in [
        "--items",
        "--hours",
        "--kwh",
        "--from",
        "--schedule",
        "--factor",
        "--format",
        "offpeak-boost",
        "docs/CONTROL.md",
    ] {
        assert!(help.contains(flag), "help lacks {flag}:\n{help}");
    }
    let o = carina(&[]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn schedule_files_give_windows_and_tariffs() {
    let dir = tempfile::tempdir().unwrap();
    let schedule = write(
        dir.path(),
        "peak.toml",
        &[
            r#"timezone = "UTC""#.to_owned(),
            "offpeak_tariff = 0.10".to_owned(),
            "[[peak]]".to_owned(),
            r#"days = "Mon-Fri""#.to_owned(),
            r#"hours = "08:00-20:00""#.to_owned(),
            "tariff = 0.40".to_owned(),
        ],
    );
    let mut args = PUBLISHED.to_vec();
    args.extend(["--schedule", &schedule]);
    let rows = json_rows(&args);
    // The same windows as the default schedule: the same energy; the file's prices.
    let default_rows = json_rows(&PUBLISHED);
    for (r, d) in rows.iter().zip(&default_rows) {
        assert_eq!(r["policy"], d["policy"]);
        assert!((num(r, "energy_kwh") - num(d, "energy_kwh")).abs() < 1e-6);
        let peak = num(r, "peak_energy_kwh");
        let expected = peak * 0.40 + (num(r, "energy_kwh") - peak) * 0.10;
        assert!((num(r, "cost") - expected).abs() < 1e-4, "{r}");
    }
    let o = carina(&args);
    assert!(stdout(&o).contains("peak.toml"), "{}", stdout(&o));

    // A local-time schedule with a holiday runs too.
    let berlin = write(
        dir.path(),
        "berlin.toml",
        &[
            r#"timezone = "Europe/Berlin""#.to_owned(),
            r#"holidays = ["2024-01-09"]"#.to_owned(),
            "[[peak]]".to_owned(),
            r#"days = "weekdays""#.to_owned(),
            r#"hours = "07:00-21:00""#.to_owned(),
        ],
    );
    let mut args = PUBLISHED.to_vec();
    args.extend(["--schedule", &berlin]);
    let rows = json_rows(&args);
    assert!((num(row(&rows, "baseline"), "energy_kwh") - 48.67).abs() < 1e-6);
    assert!(num(row(&rows, "offpeak-boost"), "energy_delta_pct") < 0.0);

    // A bad file is named, with its line.
    let bad = write(
        dir.path(),
        "bad.toml",
        &[
            r#"timezone = "UTC""#.to_owned(),
            "[[peak]]".to_owned(),
            r#"days = "Mon-Fry""#.to_owned(),
            r#"hours = "08:00-20:00""#.to_owned(),
        ],
    );
    let mut args = PUBLISHED.to_vec();
    args.extend(["--schedule", &bad]);
    assert_bad(&args, "bad.toml:3");
}

#[test]
fn policies_are_written_and_rounded_as_for_the_governor() {
    // Full policy strings, with the commas between parameters kept together.
    let mut args = PUBLISHED.to_vec();
    args.extend([
        "--policy",
        "throttle:peak_fraction=0.25,offpeak-boost:offpeak_factor=1.75,peak_fraction=0,defer",
    ]);
    let rows = json_rows(&args);
    let specs: Vec<&str> = rows
        .iter()
        .map(|r| r["policy_spec"].as_str().unwrap())
        .collect();
    assert_eq!(
        specs,
        [
            "throttle:peak_fraction=0.25",
            "offpeak-boost:offpeak_factor=1.75,peak_fraction=0",
            "defer"
        ]
    );
    // A bare name takes the flags' parameters: the same policy, the same figures.
    let mut flags = PUBLISHED.to_vec();
    flags.extend(["--policy", "throttle", "--throttle-fraction", "0.25"]);
    let by_flag = json_rows(&flags);
    assert_eq!(by_flag[0]["policy_spec"], "throttle:peak_fraction=0.25");
    assert_eq!(by_flag[0]["energy_kwh"], rows[0]["energy_kwh"]);
    // Default parameters are the governor's.
    let rows = json_rows(&PUBLISHED);
    assert_eq!(
        row(&rows, "throttle")["policy_spec"],
        "throttle:peak_fraction=0.5"
    );
    assert_eq!(
        row(&rows, "offpeak-boost")["policy_spec"],
        "offpeak-boost:offpeak_factor=1.5,peak_fraction=0"
    );
    // Worker counts round up, as the governor's: 0.3 and 0.375 of 8 workers are both 3.
    let energy = |fraction: &str| {
        let mut a = PUBLISHED.to_vec();
        a.extend(["--policy", "throttle", "--throttle-fraction", fraction]);
        num(&json_rows(&a)[0], "energy_kwh")
    };
    assert_eq!(energy("0.3"), energy("0.375"));
    assert_ne!(energy("0.3"), energy("0.25"));
}

#[test]
fn deadline_rescue_starts_where_the_governor_would_start_it() {
    use carina_control::governor::{Governor, ManualClock};
    use carina_control::policy::{Mode, Policy};
    use carina_control::simulate::{WeekdayPeak, default_start};
    use jiff::SignedDuration;

    let mut args = PUBLISHED.to_vec();
    args.extend(["--policy", "defer", "--deadline-h", "200"]);
    let rows = json_rows(&args);
    let defer = row(&rows, "defer");
    assert_eq!(defer["deadline_met"], true);
    let rescued_h = num(defer, "rescued_at_h");
    // After rescue, defer runs the nominal workers until the last item, done at the deadline:
    // at the rescue instant the remaining work at nominal concurrency is what is left to it.
    assert!((num(defer, "makespan_h") - 200.0).abs() < 1e-6);
    let start = default_start();
    let at = |h: f64| start + SignedDuration::from_secs_f64(h * 3600.0);
    let clock = ManualClock::new(at(rescued_h - 0.01));
    let gov = Governor::with_clock(WeekdayPeak::default(), Policy::Defer, 8, clock.clone());
    gov.set_deadline(Some(at(200.0)));
    gov.set_remaining_time(Some(SignedDuration::from_secs_f64(
        (200.0 - rescued_h) * 3600.0,
    )));
    // Paused in a peak window just before, rescued at the instant the simulator says (to the
    // 3.6 ms of the JSON's six decimals of an hour).
    assert_eq!((gov.mode(), gov.allowed()), (Mode::Paused, 0));
    clock.set(at(rescued_h + 1e-6));
    assert_eq!((gov.mode(), gov.allowed()), (Mode::DeadlineRescue, 8));
}

#[test]
fn policy_parameters_out_of_range_name_the_flag() {
    let base = ["simulate", "--items", "1000", "--hours", "10", "--kwh", "2"];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut v = base.to_vec();
        v.extend_from_slice(extra);
        v
    };
    // As for the governor, throttle keeps at least a share of the workers: 0 is defer.
    assert_bad(&with(&["--throttle-fraction", "0"]), "--throttle-fraction");
    assert_bad(
        &with(&["--boost-peak-fraction", "1.5"]),
        "--boost-peak-fraction",
    );
    assert_bad(&with(&["--policy", "throttle:peak_fraction=2"]), "--policy");
    assert_bad(&with(&["--policy", "defer:x=1"]), "--policy");
    // Parameters of a policy that is not shown are not checked.
    let mut ok = with(&["--policy", "baseline", "--throttle-fraction", "0"]);
    ok.extend(["--format", "json"]);
    assert_eq!(carina(&ok).status.code(), Some(0));
}

#[test]
fn a_short_run_reads_in_small_units_with_meaningful_digits() {
    // 18 s and 0.4 Wh: in h and kWh every column read 0.00.
    let o = carina(&[
        "simulate", "--items", "1000", "--hours", "0.005", "--kwh", "0.0004", "--factor", "400",
    ]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("at baseline 18.0 s and 0.400 Wh"),
        "the workload line:\n{out}"
    );
    for unit in ["(s)", "(Wh)", "(g)"] {
        assert!(out.contains(unit), "no {unit} header in:\n{out}");
    }
    let baseline = out
        .lines()
        .find(|l| l.starts_with("baseline "))
        .unwrap_or_else(|| panic!("{out}"));
    let cells: Vec<&str> = baseline.split_whitespace().collect();
    // makespan 18 s, energy 0.4 Wh, CO2e 0.16 g (400 g/kWh), cost 0.000072: non-zero digits.
    assert_eq!(cells[1], "18.00", "{baseline}");
    assert_eq!(cells[3], "0.400", "{baseline}");
    assert_eq!(cells[5], "0.160", "{baseline}");
    assert!(cells[7].parse::<f64>().unwrap() > 0.0, "{baseline}");
    // JSON keeps its fixed units (h, kWh, kg).
    let rows = json_rows(&[
        "simulate", "--items", "1000", "--hours", "0.005", "--kwh", "0.0004", "--factor", "400",
    ]);
    assert!((num(row(&rows, "baseline"), "energy_kwh") - 0.0004).abs() < 1e-6);
}
