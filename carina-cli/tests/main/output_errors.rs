//! Output that cannot be written: a full disk is an error (one line on stderr, exit status 1),
//! a reader that closed the pipe ends the command quietly with its own status; never a panic.
//! Run as the built binary with stdout on `/dev/full` or on a pipe whose reader is closed.

use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A complete run and a copy of it under another name, for `compare`.
fn runs(dir: &Path) -> (PathBuf, PathBuf) {
    let lines = run_lines(
        "scenario-db",
        "run-1",
        &[
            ("load", steady(10, 0.2, 10, 2.0)),
            ("simulate", steady(40, 1.0, 25, 36.0)),
        ],
        true,
    );
    (
        write_run(dir, "a.jsonl", &lines),
        write_run(dir, "b.jsonl", &lines),
    )
}

/// Every command that prints to stdout, with arguments that succeed (status 0).
fn commands(a: &Path, b: &Path) -> Vec<Vec<String>> {
    let html = a.with_extension("html").display().to_string();
    let (a, b) = (a.display().to_string(), b.display().to_string());
    let v = |args: &[&str]| args.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        v(&["report", &a, "-o", &html]),
        v(&["summary", &a]),
        v(&["summary", &a, &b]),
        v(&["compare", &a, &b]),
        v(&["compare", &a, &b, "--format", "json"]),
        v(&["forecast", &a, "--total-items", "2000"]),
        v(&["forecast", &a, "--total-items", "2000", "--format", "json"]),
        v(&["export", &a]),
        v(&["export", &a, "--steps"]),
        v(&["simulate", "--items", "1000", "--hours", "2", "--kwh", "1"]),
        v(&["doctor"]),
        v(&["doctor", "--format", "json"]),
    ]
}

fn run_with_stdout(args: &[String], out: Stdio) -> Output {
    carina_command()
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(Stdio::piped())
        .output()
        .expect("run the carina binary")
}

#[test]
fn a_full_disk_is_one_error_line_and_status_1() {
    // Linux's always-full device: every write fails with ENOSPC, as on a full disk.
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full, the device every Linux system has");
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = runs(dir.path());
    for args in commands(&a, &b) {
        let o = run_with_stdout(&args, Stdio::from(full.try_clone().unwrap()));
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        let want = format!("carina {}: error: cannot write output: ", args[0]);
        let lines: Vec<&str> = err.lines().filter(|l| l.starts_with(&want)).collect();
        assert_eq!(lines.len(), 1, "{args:?}: one error line in {err}");
        assert!(
            lines[0].contains("No space left on device"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn a_closed_pipe_ends_quietly_with_the_commands_status() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = runs(dir.path());
    for args in commands(&a, &b) {
        // The reader is gone before the command writes a byte: every write is EPIPE.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let o = run_with_stdout(&args, Stdio::from(writer));
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(!err.contains("cannot write"), "{args:?}: {err}");
        assert!(!err.contains("Broken pipe"), "{args:?}: {err}");
    }
}

#[test]
fn a_regression_keeps_status_1_when_the_pipe_closes() {
    let dir = tempfile::tempdir().unwrap();
    let base = run_lines("job", "base", &[("solve", steady(40, 1.0, 25, 36.0))], true);
    let cand = run_lines("job", "cand", &[("solve", steady(40, 1.0, 25, 54.0))], true);
    let (b, c) = (
        write_run(dir.path(), "base.jsonl", &base),
        write_run(dir.path(), "cand.jsonl", &cand),
    );
    let args: Vec<String> = ["compare", b.to_str().unwrap(), c.to_str().unwrap()]
        .map(String::from)
        .to_vec();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let o = run_with_stdout(&args, Stdio::from(writer));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "the verdict stands: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("cannot write"),
        "{err}"
    );
}

#[test]
fn a_pipe_closed_midway_by_head_is_quiet() {
    // More output than a pipe holds, read by `head -c 1`, which exits after one byte: the
    // writes after that fail with EPIPE at an arbitrary point.
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for i in 0..300 {
        let lines = host_run(
            "job",
            &format!("run-{i}"),
            &format!("node-{i:03}"),
            // Two minutes apart, one minute long: a cycle each, about 130 KB of output.
            &format!("2026-11-01T{:02}:{:02}:00Z", i / 30, (i % 30) * 2),
            60.0,
            7200.0,
            100,
        );
        paths.push(write_run(dir.path(), &format!("r{i}.jsonl"), &lines));
    }
    let script = format!(
        "\"$0\" summary '{}' | head -c 1 >/dev/null; echo \"status ${{PIPESTATUS[0]}}\" >&2",
        dir.path().display()
    );
    let o = Command::new("bash")
        .args(["-c", &script, env!("CARGO_BIN_EXE_carina")])
        .output()
        .expect("run bash");
    let err = stderr(&o);
    assert!(err.contains("status 0"), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("cannot write"),
        "{err}"
    );
}
