//! Names from run files, paths and the environment reach the terminal escaped: a step named
//! `a ESC [2J b` must not clear the screen. Data formats (CSV) keep them as they are.

use crate::common::*;
use std::path::{Path, PathBuf};

const STEP: &str = "a\x1b[2Jb";
const STEP_SHOWN: &str = r"a\x1b[2Jb";
const JOB: &str = "j\x07ob";
const JOB_SHOWN: &str = r"j\x07ob";
const HOST: &str = "h\x1b]0;pwned\x07";
const HOST_SHOWN: &str = r"h\x1b]0;pwned\x07";
/// A C1 control: CSI in its 8-bit form.
const RUN_ID: &str = "r\u{9b}1";
const RUN_ID_SHOWN: &str = r"r\u{9b}1";

fn hostile_run(dir: &Path, file: &str) -> PathBuf {
    let mut lines = run_lines(
        JOB,
        RUN_ID,
        &[
            (STEP, steady(20, 1.0, 10, 36.0)),
            ("plain", steady(10, 0.5, 0, 2.0)),
        ],
        true,
    );
    let mut start: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    start["host"] = HOST.into();
    lines[0] = start.to_string();
    write_run(dir, file, &lines)
}

/// No C0 control but the line feed, no DEL, no C1 control.
fn assert_clean(what: &str, text: &str) {
    let bad: Vec<char> = text
        .chars()
        .filter(|c| c.is_control() && *c != '\n')
        .collect();
    assert!(bad.is_empty(), "{what}: raw controls {bad:?} in\n{text}");
}

#[test]
fn summary_escapes_names_and_keeps_the_table_aligned() {
    // (`scope` is an enum since the records were typed: a value with a control character in it
    // reads as `unknown`, tested in `unknown_scope_reads_as_unknown` below.)
    let dir = tempfile::tempdir().unwrap();
    let p = hostile_run(dir.path(), "run.jsonl");
    let o = carina(&["summary", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!o.stdout.contains(&0x1b) && !o.stdout.contains(&0x07));
    let out = stdout(&o);
    assert_clean("summary", &out);
    for want in [STEP_SHOWN, JOB_SHOWN, HOST_SHOWN, RUN_ID_SHOWN] {
        assert!(out.contains(want), "{want} in\n{out}");
    }
    // The escaped name is measured for the column widths: the header and the rows line up.
    let table: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("step"))
        .take(4)
        .collect();
    let step_row = table.iter().find(|l| l.starts_with(STEP_SHOWN)).unwrap();
    let plain_row = table.iter().find(|l| l.starts_with("plain")).unwrap();
    assert_eq!(
        step_row.chars().count(),
        plain_row.chars().count(),
        "{table:#?}"
    );
}

#[test]
fn fleet_view_escapes_jobs_and_hosts() {
    let dir = tempfile::tempdir().unwrap();
    hostile_run(dir.path(), "a.jsonl");
    hostile_run(dir.path(), "b.jsonl");
    let o = carina(&["summary", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert_clean("fleet", &out);
    assert!(out.contains(JOB_SHOWN) && out.contains(HOST_SHOWN), "{out}");
}

#[test]
fn compare_and_forecast_escape_names() {
    let dir = tempfile::tempdir().unwrap();
    let a = hostile_run(dir.path(), "a.jsonl");
    let b = hostile_run(dir.path(), "b.jsonl");
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    for format in ["text", "markdown"] {
        let o = carina(&["compare", a, b, "--format", format]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert_clean(format, &stdout(&o));
    }
    let out = stdout(&carina(&["compare", a, b]));
    assert!(out.contains(STEP_SHOWN) && out.contains(JOB_SHOWN), "{out}");
    let o = carina(&["forecast", a, "--total-items", "1000"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert_clean("forecast", &out);
    assert!(
        out.contains(JOB_SHOWN) && out.contains(RUN_ID_SHOWN),
        "{out}"
    );
    // JSON escapes every control character, C1 included, and decodes to the names themselves.
    let o = carina(&["forecast", a, "--total-items", "1000", "--format", "json"]);
    let json = stdout(&o);
    assert_clean("forecast json", &json);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        (v["job"].as_str(), v["run_id"].as_str()),
        (Some(JOB), Some(RUN_ID))
    );
}

#[test]
fn csv_keeps_names_as_data() {
    let dir = tempfile::tempdir().unwrap();
    let p = hostile_run(dir.path(), "run.jsonl");
    let o = carina(&["export", p.to_str().unwrap(), "--steps"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let csv = stdout(&o);
    assert!(csv.contains(STEP) && csv.contains(JOB), "{csv:?}");
    assert!(!csv.contains(STEP_SHOWN), "{csv:?}");
}

#[test]
fn error_messages_escape_the_paths_they_quote() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no\x1b[2Jsuch.jsonl");
    let m = missing.to_str().unwrap();
    let cases: [&[&str]; 5] = [
        &["summary", m],
        &["compare", m, m],
        &["forecast", m, "--total-items", "10"],
        &["export", m],
        &["simulate", "--from", m],
    ];
    for args in cases {
        let o = carina(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = stderr(&o);
        assert_clean(&format!("{args:?}"), &err);
        assert!(err.contains(r"no\x1b[2Jsuch.jsonl"), "{args:?}: {err}");
    }
}

#[test]
fn doctor_escapes_the_environment() {
    let o = carina_command()
        .arg("doctor")
        .env("CARINA_JOB", "x\x1b[2Jy")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert_clean("doctor", &out);
    assert!(out.contains(r"x\x1b[2Jy"), "{out}");
}

#[test]
fn unknown_scope_reads_as_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let p = hostile_run(dir.path(), "run.jsonl");
    let text = std::fs::read_to_string(&p).unwrap();
    let text = text.replacen(
        "\"scope\":\"process\"",
        "\"scope\":\"process\\u001b[1m\"",
        1,
    );
    assert!(text.contains("\\u001b[1m"), "{text}");
    std::fs::write(&p, text).unwrap();
    let o = carina(&["summary", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!o.stdout.contains(&0x1b));
    assert!(stdout(&o).contains("unknown"), "{}", stdout(&o));
}

#[test]
fn method_labels_and_notes_from_the_file_are_escaped() {
    // A newer Carina's method, quoted from the file: its label, notes and the steps' method
    // reach the terminal in summary, the fleet view and forecast.
    let dir = tempfile::tempdir().unwrap();
    let mut lines = counter_share_run("train", "r", false);
    patch(&mut lines, "run_end", |v| {
        v["method"]["label"] = format!("counter ({STEP})").into();
        v["method"]["notes"] = serde_json::json!([format!("note {JOB}")]);
    });
    patch(&mut lines, "step_summary", |v| {
        v["method"] = format!("split {HOST}").into();
    });
    let p = write_run(dir.path(), "m.jsonl", &lines);
    let out = stdout(&carina(&["summary", p.to_str().unwrap()]));
    assert_clean("summary", &out);
    for want in [
        format!("counter ({STEP_SHOWN})"),
        format!("note {JOB_SHOWN}"),
        format!("split {HOST_SHOWN}"),
    ] {
        assert!(out.contains(&want), "{want} in\n{out}");
    }
    let q = write_run(dir.path(), "n.jsonl", &lines);
    let fleet = stdout(&carina(&[
        "summary",
        p.to_str().unwrap(),
        q.to_str().unwrap(),
    ]));
    assert_clean("fleet", &fleet);
    let o = carina(&["forecast", p.to_str().unwrap(), "--total-items", "200"]);
    assert_clean("forecast", &stdout(&o));
}
