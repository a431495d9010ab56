//! `carina run` itself killed with SIGKILL: what its run file held is kept, in whole lines, and
//! `carina summary` reads it as an incomplete run.

use crate::common;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The run file under `job` (not a child's), once there is one.
fn run_file(job: &Path) -> Option<PathBuf> {
    std::fs::read_dir(job).ok()?.find_map(|e| {
        let p = e.ok()?.path();
        let name = p.file_name()?.to_string_lossy().into_owned();
        (name.ends_with(".jsonl") && !name.contains(".child-")).then_some(p)
    })
}

/// The end of the last `power` record among the whole lines of `text`, in seconds of the run.
fn power_until(text: &str) -> Option<f64> {
    // A line is whole once its newline is written; the last piece may be half a record.
    let whole = &text[..text.rfind('\n').map_or(0, |n| n + 1)];
    whole
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["type"] == "power")
        .and_then(|v| v["end_s"].as_f64())
}

#[test]
fn sigkill_of_carina_run_leaves_a_readable_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    // Busy for the whole run, so the process tree gets energy in every window; once carina is
    // killed, only the test stops the loop.
    let busy = common::Busy::new(dir.path());
    let mut carina = common::carina_command()
        .args(["run", "--dir"])
        .arg(dir.path())
        .args(["--job", "killed", "--", "sh", "-c", &busy.script()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Killed once the file holds 2 s of power records, however long a loaded machine takes to
    // write them: the test is about what a kill leaves, not how soon records are written.
    let job = dir.path().join("killed");
    let deadline = Instant::now() + Duration::from_secs(60);
    let (file, seen) = loop {
        if let Some(f) = run_file(&job) {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            if let Some(t) = power_until(&text).filter(|&t| t >= 2.0) {
                break (f, t);
            }
        }
        assert!(
            Instant::now() < deadline,
            "no 2 s of power records in {} after 60 s",
            job.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    carina.kill().unwrap(); // SIGKILL: no signal handler, no flush
    carina.wait().unwrap();
    drop(busy);

    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.ends_with('\n'), "whole lines only");
    let run = carina_runtime::read_run_file(&file).unwrap();
    assert!(!run.is_complete());
    let (energy, covered) = run.power_totals().expect("power records");
    assert!(
        covered >= carina_runtime::Seconds(seen),
        "power windows cover {covered}, {seen} s were on disk before the kill"
    );
    assert!(energy > carina_runtime::Joules::ZERO);
    let out = common::carina(&["summary", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let s = common::stdout(&out);
    assert!(s.contains("INCOMPLETE") || s.contains("incomplete"), "{s}");
}
