//! `carina forecast`, run as the built binary on hand-written run files.

use crate::common::*;
use std::path::{Path, PathBuf};

fn forecast_json(path: &Path, total: &str) -> serde_json::Value {
    let o = carina(&[
        "forecast",
        path.to_str().unwrap(),
        "--total-items",
        total,
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    serde_json::from_str(&stdout(&o)).expect("stdout is JSON")
}

fn num(v: &serde_json::Value, path: &[&str]) -> f64 {
    let mut x = v;
    for p in path {
        x = &x[*p];
    }
    x.as_f64()
        .unwrap_or_else(|| panic!("{path:?} is not a number in {v}"))
}

/// A crashed run of 50 steps of 10 items, 1 s and 5 J each, with a little jitter in energy:
/// 500 items in 50 s.
fn half_done(dir: &Path) -> PathBuf {
    let insts = noisy(50, 10, 5.0, 0.1, 7)
        .into_iter()
        .map(|x| Inst { dur: 1.0, ..x })
        .collect();
    write_run(
        dir,
        "half.jsonl",
        &run_lines("scenario-db", "half", &[("simulate", insts)], false),
    )
}

#[test]
fn half_done_run_projects_twice_the_elapsed_time_and_energy() {
    let dir = tempfile::tempdir().unwrap();
    let p = half_done(dir.path());
    let v = forecast_json(&p, "1000");
    assert_eq!(v["complete"], false);
    assert_eq!(v["items_done"].as_u64(), Some(500));
    assert_eq!(v["remaining_items"].as_u64(), Some(500));
    let elapsed = num(&v, &["elapsed_s"]);
    assert!((elapsed - 50.0).abs() < 1e-9, "{v}");
    let (t, tl, th) = (
        num(&v, &["runtime_s", "point"]),
        num(&v, &["runtime_s", "low"]),
        num(&v, &["runtime_s", "high"]),
    );
    assert!((t - 2.0 * elapsed).abs() < 1e-6, "{v}");
    assert!(tl <= 2.0 * elapsed && 2.0 * elapsed <= th, "{v}");
    assert!(
        tl > 1.8 * elapsed && th < 2.2 * elapsed,
        "steady rate, narrow interval: {v}"
    );
    let so_far = num(&v, &["energy_so_far_j"]);
    let (e, el, eh) = (
        num(&v, &["energy_j", "point"]),
        num(&v, &["energy_j", "low"]),
        num(&v, &["energy_j", "high"]),
    );
    assert!((e - 2.0 * so_far).abs() < 1e-6, "{v}");
    assert!(
        el < e && e < eh,
        "jittery energy gives a real interval: {v}"
    );
    assert!(el > 1.8 * so_far && eh < 2.2 * so_far, "{v}");
    assert!(num(&v, &["co2e_g", "point"]) > 0.0);
    // Finish: started 05:12:00 + 100 s.
    assert_eq!(v["finish_at"], "2026-11-28T05:13:40Z", "{v}");

    let o = carina(&["forecast", p.to_str().unwrap(), "--total-items", "1000"]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    for want in [
        "500 of 1000",
        "runtime",
        "100 s",
        "energy",
        "CO2e",
        "finish at",
        "2026-11-28T05:13:40Z",
    ] {
        assert!(out.contains(want), "no {want:?} in:\n{out}");
    }
}

#[test]
fn complete_run_forecasts_a_full_cycle() {
    let dir = tempfile::tempdir().unwrap();
    let lines = run_lines(
        "scenario-db",
        "done",
        &[("simulate", steady(40, 1.0, 25, 36.0))],
        true,
    );
    let p = write_run(dir.path(), "done.jsonl", &lines);
    let v = forecast_json(&p, "2000");
    assert_eq!(v["complete"], true);
    assert_eq!(v["items_done"].as_u64(), Some(1000));
    assert_eq!(v["remaining_items"].as_u64(), Some(2000));
    // 1000 items in 40 s: 2000 items take 80 s; energy 1440 J + 1 % unattributed, doubled.
    assert!(
        (num(&v, &["runtime_s", "point"]) - 80.0).abs() < 1e-6,
        "{v}"
    );
    assert!(
        (num(&v, &["energy_j", "point"]) - 2.0 * 1454.4).abs() < 1e-6,
        "{v}"
    );
    let o = carina(&["forecast", p.to_str().unwrap(), "--total-items", "2000"]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert!(out.contains("complete"), "{out}");
    assert!(out.contains("full new cycle"), "{out}");
}

#[test]
fn bad_total_items_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let p = half_done(dir.path());
    for bad in ["0", "abc", "-5", "1.5"] {
        let o = carina(&["forecast", p.to_str().unwrap(), "--total-items", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", stderr(&o));
    }
    let o = carina(&["forecast", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "missing --total-items");
    let missing = dir.path().join("missing.jsonl");
    let o = carina(&["forecast", missing.to_str().unwrap(), "--total-items", "10"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("missing.jsonl"));
    // Empty and malformed files: the message names the file (and the line and field).
    let empty = write_run(dir.path(), "empty.jsonl", &[]);
    let o = carina(&["forecast", empty.to_str().unwrap(), "--total-items", "10"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("empty.jsonl") && stderr(&o).contains("empty"));
    let mut lines = run_lines("job", "r", &[("simulate", steady(5, 1.0, 10, 1.0))], false);
    lines[2] = lines[2].replace("\"items\":10", "\"items\":\"ten\"");
    let bad = write_run(dir.path(), "bad.jsonl", &lines);
    let o = carina(&["forecast", bad.to_str().unwrap(), "--total-items", "10"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("bad.jsonl:3:") && err.contains("field `items`"),
        "{err}"
    );
}

#[test]
fn run_without_items_cannot_be_forecast() {
    let dir = tempfile::tempdir().unwrap();
    let lines = run_lines("job", "r", &[("setup", steady(5, 1.0, 0, 1.0))], false);
    let p = write_run(dir.path(), "noitems.jsonl", &lines);
    let o = carina(&["forecast", p.to_str().unwrap(), "--total-items", "10"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no items"), "{}", stderr(&o));
}

#[test]
fn long_help_documents_the_method() {
    let o = carina(&["forecast", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    for want in ["Method.", "buckets", "1.96", "started_at"] {
        assert!(out.contains(want), "no {want:?} in:\n{out}");
    }
}

#[test]
fn crashed_run_counts_items_of_the_progress_step_not_a_setup_step() {
    let dir = tempfile::tempdir().unwrap();
    // `generate_grid` declares all 400000 items in one record; `simulate` has done 50 x 64.
    let lines = run_lines(
        "grid",
        "run-setup",
        &[
            ("generate_grid", steady(1, 0.5, 400_000, 1.0)),
            ("simulate", noisy(50, 64, 36.0, 0.1, 3)),
        ],
        false,
    );
    let p = write_run(dir.path(), "crashed.jsonl", &lines);
    let v = forecast_json(&p, "400000");
    assert_eq!(v["items_done"].as_u64(), Some(3200), "{v}");
    assert_eq!(v["remaining_items"].as_u64(), Some(396_800), "{v}");
    // The buckets count `simulate`'s records (50 / 3 -> 16), not the single set-up record.
    assert_eq!(v["buckets"].as_u64(), Some(16), "{v}");
    let o = carina(&["forecast", p.to_str().unwrap(), "--total-items", "400000"]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("3200 of 400000 items done (0.8 %)"), "{out}");
}

#[test]
fn truncated_last_line_is_warned_on_stderr_and_json_stays_clean() {
    let dir = tempfile::tempdir().unwrap();
    let lines = run_lines(
        "scenario-db",
        "cut",
        &[("simulate", steady(20, 1.0, 10, 5.0))],
        false,
    );
    let p = write_truncated(dir.path(), "cut.jsonl", &lines);
    let o = carina(&[
        "forecast",
        p.to_str().unwrap(),
        "--total-items",
        "1000",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.lines()
            .any(|l| l.starts_with("carina forecast: warning: ")
                && l.contains("cut.jsonl:")
                && l.contains("truncated")),
        "{err}"
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("stdout is JSON alone");
    assert_eq!(v["items_done"].as_u64(), Some(190), "{v}");
}

#[test]
fn the_forecast_says_how_the_energy_was_obtained() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_run(
        dir.path(),
        "share.jsonl",
        &counter_share_run("train", "r-share", false),
    );
    let v = forecast_json(&p, "200");
    assert_eq!(v["energy_kind"], "measured");
    assert_eq!(v["energy_method"], "measured (counter x cpu-time share)");
    let o = carina(&["forecast", p.to_str().unwrap(), "--total-items", "200"]);
    let out = stdout(&o);
    assert!(
        out.contains("energy and CO2e measured (counter x cpu-time share))\n"),
        "{out}"
    );
    // The energy so far: 153.52 J, with the method beside it.
    assert!(
        out.contains("154 J measured (counter x cpu-time share)\n"),
        "{out}"
    );
}
