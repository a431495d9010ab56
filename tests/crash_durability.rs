//! A run killed with SIGKILL leaves a readable run file that lacks at most about a second.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "CARINA_TEST_CRASH_CHILD_DIR";

/// The child: records 200 ms steps until it is killed. Only runs when the parent test starts
/// this binary with the variable set.
#[test]
#[ignore = "run by killed_run_leaves_a_readable_file in a child process"]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let run = carina::Run::builder("crash")
        .output_dir(dir)
        .constant_watts(50.0)
        .start()
        .expect("start");
    println!("started {}", run.run_file().unwrap().display());
    loop {
        let mut g = carina::step("work");
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(200) {
            std::hint::black_box(t.elapsed());
        }
        g.add_items(1);
    }
}

#[test]
fn killed_run_leaves_a_readable_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--ignored", "--nocapture"])
        .env(CHILD_ENV, dir.path())
        .env_remove("CARINA_RUN_ID")
        .env_remove("CARINA_DIR")
        .env_remove("CARINA_PARENT_PID")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(3_500));
    child.kill().unwrap(); // SIGKILL: no destructor, no flush
    child.wait().unwrap();
    let job = dir.path().join("crash");
    let file = std::fs::read_dir(&job)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .expect("a run file");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.ends_with('\n'), "whole lines only");
    let run = carina::read_run_file(&file).unwrap();
    assert!(!run.is_complete());
    // 3.5 s of running: everything up to the last checkpoint (about a second ago) is there.
    let (energy, covered) = run.power_totals().expect("power records");
    assert!(
        covered >= carina::Seconds(1.9),
        "power windows cover {covered} of 3.5 s"
    );
    assert!(
        (energy.0 - 50.0 * covered.0).abs() < 0.05 * 50.0 * covered.0,
        "{energy} J over {covered} s at 50 W"
    );
    let last_step_end = run.steps.iter().map(|s| s.end_s.0).fold(0.0, f64::max);
    assert!(run.steps.len() >= 8, "{} steps", run.steps.len());
    assert!(
        last_step_end >= (covered - carina::Seconds(1.0)).into(),
        "steps reach {last_step_end} s"
    );
}
