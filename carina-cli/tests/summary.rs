//! `carina summary`, run as the built binary on hand-written run files.

mod common;
use common::*;
use std::path::{Path, PathBuf};

fn complete_run(dir: &Path) -> PathBuf {
    let lines = run_lines(
        "scenario-db",
        "run-complete",
        &[
            ("load", steady(10, 0.2, 0, 2.0)),
            ("simulate", steady(40, 1.0, 25, 36.0)),
        ],
        true,
    );
    write_run(dir, "complete.jsonl", &lines)
}

#[test]
fn complete_run_has_headline_and_aligned_step_table() {
    let dir = tempfile::tempdir().unwrap();
    let p = complete_run(dir.path());
    let o = carina(&["summary", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    let out = stdout(&o);
    for want in [
        "scenario-db",
        "run-complete",
        "2026-11-28T05:12:00Z",
        "estimated",
        "model",
        "CO2e",
        "1000",
        "unattributed",
        "dropped",
        "simulate",
        "load",
        "p50",
        "p95",
        "self energy",
        "share",
    ] {
        assert!(out.contains(want), "no {want:?} in:\n{out}");
    }
    assert!(!out.contains("INCOMPLETE"), "{out}");
    // Energy: 40 x 36 + 10 x 2 = 1460 J, + 1 % unattributed = 1474.6 J = 0.410 Wh.
    assert!(out.contains("0.410 Wh"), "{out}");
    // Wh per item of simulate: 1440 J / 1000 items / 3600 = 0.0004 Wh.
    assert!(out.contains("0.000400 Wh"), "{out}");
    // Aligned: the header and every row of the table have the same width up to the last column.
    let table: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("step "))
        .take_while(|l| !l.is_empty())
        .collect();
    assert_eq!(table.len(), 4, "header, rule, 2 rows:\n{out}");
    let w = table[1].len();
    assert!(table.iter().all(|l| l.len() == w), "not aligned:\n{out}");
    // Sorted by energy: simulate first.
    assert!(table[2].starts_with("simulate"), "{out}");
}

#[test]
fn crashed_run_is_incomplete_with_figures_from_steps() {
    let dir = tempfile::tempdir().unwrap();
    let lines = run_lines(
        "scenario-db",
        "run-crashed",
        &[("simulate", steady(20, 1.0, 25, 36.0))],
        false,
    );
    let p = write_run(dir.path(), "crashed.jsonl", &lines);
    let o = carina(&["summary", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("INCOMPLETE"), "{out}");
    // 20 x 36 J = 720 J, 500 items, 20 s.
    assert!(out.contains("720 J"), "{out}");
    assert!(out.contains("500"), "{out}");
    assert!(out.contains("20.0 s"), "{out}");
    assert!(out.contains("simulate"), "{out}");
}

#[test]
fn crashed_run_with_power_records_counts_energy_outside_steps() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = run_lines(
        "scenario-db",
        "run-crashed-power",
        &[("simulate", steady(20, 1.0, 25, 36.0))],
        false,
    );
    // 22 one-second windows of 40 J: 880 J in all, 160 J of it outside the steps.
    for k in 0..22 {
        lines.push(format!(
            r#"{{"type":"power","start_s":{k}.0,"end_s":{}.0,"energy_j":40.0,"co2e_g":0.0044}}"#,
            k + 1
        ));
    }
    let p = write_run(dir.path(), "crashed.jsonl", &lines);
    let o = carina(&["summary", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("INCOMPLETE"), "{out}");
    assert!(out.contains("880 J"), "{out}");
    assert!(out.contains("22.0 s"), "{out}");
    assert!(out.contains("160 J"), "unattributed: {out}");
}

#[test]
fn malformed_line_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = run_lines(
        "scenario-db",
        "run-bad",
        &[("simulate", steady(3, 1.0, 25, 36.0))],
        true,
    );
    lines[2] = "{\"type\":\"step\",\"name\":".into();
    let p = write_run(dir.path(), "bad.jsonl", &lines);
    let o = carina(&["summary", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("bad.jsonl:3"), "{err}");
}

#[test]
fn missing_and_empty_files_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.jsonl");
    let o = carina(&["summary", missing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("nope.jsonl"), "{}", stderr(&o));

    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let o = carina(&["summary", empty.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("empty.jsonl"), "{}", stderr(&o));
}
