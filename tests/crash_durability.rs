//! A run killed with SIGKILL leaves a readable run file that lacks at most about a second.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The run's power windows cover this much before the child is killed.
const COVERED_BEFORE_KILL: f64 = 2.5;

#[test]
fn killed_run_leaves_a_readable_file() {
    let _s = crate::common::serial();
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_crash-child"))
        .arg(dir.path())
        .env_remove("CARINA_RUN_ID")
        .env_remove("CARINA_DIR")
        .env_remove("CARINA_PARENT_PID")
        .env_remove("CARINA_DISABLE")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let file = std::path::PathBuf::from(
        line.trim()
            .strip_prefix("started ")
            .unwrap_or_else(|| panic!("child said {line:?}")),
    );
    // Wait for the file, not for a fixed time: on a loaded machine the child may be slow.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let covered = carina::read_run_file(&file)
            .ok()
            .and_then(|r| r.power_totals())
            .map_or(0.0, |(_, c)| c.0);
        if covered >= COVERED_BEFORE_KILL {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the child wrote {covered} s of power windows in 60 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap(); // SIGKILL: no destructor, no flush
    child.wait().unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.ends_with('\n'), "whole lines only");
    let run = carina::read_run_file(&file).unwrap();
    assert!(!run.is_complete());
    // Everything written before the kill is there: at least what the test saw.
    let (energy, covered) = run.power_totals().expect("power records");
    assert!(
        covered >= carina::Seconds(COVERED_BEFORE_KILL),
        "power windows cover {covered}"
    );
    assert!(
        (energy.0 - 50.0 * covered.0).abs() < 0.05 * 50.0 * covered.0,
        "{energy} J over {covered} s at 50 W"
    );
    let last_step_end = run.steps.iter().map(|s| s.end_s.0).fold(0.0, f64::max);
    // 200 ms steps over at least 2.5 s, the last one or two still open when it was killed.
    assert!(run.steps.len() >= 8, "{} steps", run.steps.len());
    assert!(
        last_step_end >= (covered - carina::Seconds(1.0)).into(),
        "steps reach {last_step_end} s"
    );
}

/// The run file of a child that ends with `how` (`abort` or `exit`) as soon as `start()`
/// returns.
fn run_file_of_a_child_that_ends_at_once(how: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_crash-child"))
        .arg(dir.path())
        .arg(how)
        .env_remove("CARINA_RUN_ID")
        .env_remove("CARINA_DIR")
        .env_remove("CARINA_PARENT_PID")
        .env_remove("CARINA_DISABLE")
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(
        how != "exit" || out.status.success(),
        "{how}: {:?}",
        out.status
    );
    let line = String::from_utf8(out.stdout).unwrap();
    let file = std::path::PathBuf::from(
        line.trim()
            .strip_prefix("started ")
            .unwrap_or_else(|| panic!("child said {line:?}")),
    );
    (dir, file)
}

#[test]
fn a_process_that_aborts_or_exits_right_after_start_leaves_run_start() {
    let _s = crate::common::serial();
    for how in ["abort", "exit"] {
        let (_dir, file) = run_file_of_a_child_that_ends_at_once(how);
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.starts_with("{\"type\":\"run_start\"") && text.ends_with('\n'),
            "{how}: {text:?}"
        );
        let run = carina::read_run_file(&file).unwrap();
        assert!(!run.is_complete(), "{how}");
        assert_eq!(run.start.job, "crash");
        assert!(
            run.warnings.iter().any(|w| w.contains("did not finish")),
            "{how}: {:?}",
            run.warnings
        );
    }
}
