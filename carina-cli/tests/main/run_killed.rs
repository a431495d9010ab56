//! `carina run` itself killed with SIGKILL: the run file already holds whole lines up to about a
//! second before, and `carina summary` reads it as an incomplete run.

use crate::common;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn sigkill_of_carina_run_leaves_a_readable_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut carina = Command::new(env!("CARGO_BIN_EXE_carina"))
        .args(["run", "--dir"])
        .arg(dir.path())
        .args(["--job", "killed", "--", "sh", "-c"])
        // Busy for the whole run (so the process tree gets energy in every window), and gone by
        // itself 6 s later: once carina is killed nobody else would stop it.
        .arg("end=$(($(date +%s)+6)); while [ $(date +%s) -lt $end ]; do :; done")
        .env_remove("CARINA_RUN_ID")
        .env_remove("CARINA_PARENT_PID")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(3_300));
    carina.kill().unwrap(); // SIGKILL: no signal handler, no flush
    carina.wait().unwrap();
    let job = dir.path().join("killed");
    let deadline = Instant::now() + Duration::from_secs(5);
    let file = loop {
        let f = std::fs::read_dir(&job).ok().and_then(|d| {
            d.map(|e| e.unwrap().path())
                .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
        });
        if let Some(f) = f {
            break f;
        }
        assert!(
            Instant::now() < deadline,
            "no run file in {}",
            job.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.is_empty(), "not a 0-byte file");
    assert!(text.ends_with('\n'), "whole lines only");
    let run = carina_runtime::read_run_file(&file).unwrap();
    assert!(!run.is_complete());
    let (energy, covered) = run.power_totals().expect("power records");
    assert!(
        covered >= carina_runtime::Seconds(1.9),
        "power windows cover {covered} of 3.3 s"
    );
    assert!(energy > carina_runtime::Joules::ZERO);
    let out = common::carina(&["summary", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let s = common::stdout(&out);
    assert!(s.contains("INCOMPLETE") || s.contains("incomplete"), "{s}");
}
