//! `carina run`: exit codes, signals, the run file, the child's environment, child-file merge.

use crate::common::carina_command as carina;
use carina_runtime::format::sig3;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A shell command writing the `run_start` a child that links Carina writes first, naming the
/// run, to "$f": the merge refuses a child file without it.
const CHILD_START: &str = r#"printf '{"type":"run_start","schema":1,"run_id":"%s","job":"j","host":"h","pid":1,"started_at":"2026-11-28T00:00:00Z","energy_sources":[],"carbon":{"g_per_kwh":472.94,"zone":"WORLD","source":"x"}}\n' "$CARINA_RUN_ID" > "$f""#;

/// Runs `carina run --dir <dir> --job <job> -- sh -c <script>`; returns (exit code, stderr).
fn run_sh(dir: &Path, job: &str, script: &str) -> (Option<i32>, String) {
    let out = carina()
        .arg("run")
        .arg("--dir")
        .arg(dir)
        .args(["--job", job, "--interval", "20", "--", "sh", "-c", script])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn run_files(dir: &Path, job: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join(job))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.ends_with(".jsonl") && !n.contains(".child-")
        })
        .collect();
    v.sort();
    v
}

fn records(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn exit_code_is_passed_through() {
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = run_sh(dir.path(), "exit3", "exit 3");
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("exited with status 3"), "{err}");
    // The run file is complete even for a failing command.
    let files = run_files(dir.path(), "exit3");
    assert_eq!(files.len(), 1);
    let recs = records(&files[0]);
    assert_eq!(recs.last().unwrap()["type"], "run_end");
}

#[test]
fn death_by_signal_is_128_plus_n() {
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = run_sh(dir.path(), "killed", "kill -TERM $$");
    assert_eq!(code, Some(143), "{err}");
    assert!(err.contains("killed by signal 15"), "{err}");
}

#[test]
fn sigterm_is_forwarded_and_the_run_file_ends() {
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready");
    let script = format!(
        "trap 'kill $!; exit 7' TERM; touch '{}'; sleep 30 & wait",
        ready.display()
    );
    let child = carina()
        .arg("run")
        .arg("--dir")
        .arg(dir.path())
        .args(["--job", "fwd", "--", "sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready.exists() {
        assert!(Instant::now() < deadline, "the command never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{err}");
    assert!(started.elapsed() < Duration::from_secs(15), "not forwarded");
    let recs = records(&run_files(dir.path(), "fwd")[0]);
    assert_eq!(recs.last().unwrap()["type"], "run_end");
}

#[test]
fn cpu_burning_child_has_energy_and_a_complete_run_file() {
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = run_sh(
        dir.path(),
        "burn",
        "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done",
    );
    assert_eq!(code, Some(0), "{err}");
    for needle in ["energy", "CO2e", "run file", " J ("] {
        assert!(err.contains(needle), "{needle}: {err}");
    }
    let files = run_files(dir.path(), "burn");
    assert_eq!(files.len(), 1);
    assert!(err.contains(&files[0].display().to_string()), "{err}");
    let recs = records(&files[0]);
    let start = &recs[0];
    assert_eq!(start["type"], "run_start");
    assert_eq!(start["job"], "burn");
    assert_eq!(start["scope"], "process-tree");
    assert!((start["sample_interval_s"].as_f64().unwrap() - 0.02).abs() < 1e-9);
    let sources = start["energy_sources"].as_array().unwrap();
    // Every source considered is listed; unused ones with a reason.
    for name in ["rapl-perf", "rapl-powercap"] {
        assert!(
            sources.iter().any(|s| s["name"] == name),
            "{name} missing: {sources:?}"
        );
    }
    for s in sources.iter().filter(|s| s["used"] == false) {
        assert!(s["reason"].as_str().is_some_and(|r| !r.is_empty()), "{s}");
    }
    let end = recs.last().unwrap();
    assert_eq!(end["type"], "run_end");
    assert!(end["energy_j"].as_f64().unwrap() > 0.0, "{end}");
    let measured = sources
        .iter()
        .any(|s| s["used"] == true && s["kind"] == "measured");
    let kind = if measured { "measured" } else { "estimated" };
    assert_eq!(end["energy_kind"], kind);
    assert!(err.contains(kind), "{err}");
    // How the figure was obtained, beside its kind; an estimate's band and the reason the
    // counters were not used; Carina's own cost.
    let label = end["method"]["label"].as_str().unwrap();
    assert!(
        err.contains(&format!(" Wh {kind} ({label}) from ")),
        "{label}: {err}"
    );
    if kind == "estimated" {
        assert!(err.contains("\n  band      "), "{err}");
        let unused_counter = sources
            .iter()
            .any(|s| s["used"] == false && s["kind"] == "measured" && s["reason"].is_string());
        assert_eq!(
            err.contains("\n  counters  not used: "),
            unused_counter,
            "{err}"
        );
    }
    assert!(err.contains("\n  own cost  "), "{err}");
    // The file parses with the library's reader.
    let rf = carina_runtime::read_run_file(&files[0]).unwrap();
    assert!(rf.is_complete());
}

#[test]
fn the_child_sees_the_run_environment() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("env.txt");
    let script = format!(
        "echo \"$CARINA_RUN_ID|$CARINA_JOB|$CARINA_DIR|$CARINA_PARENT_PID\" > '{}'",
        out.display()
    );
    let child = carina()
        .arg("run")
        .arg("--dir")
        .arg(dir.path())
        .args(["--", "sh", "-c", &script])
        .output()
        .unwrap();
    assert_eq!(child.status.code(), Some(0));
    let text = std::fs::read_to_string(&out).unwrap();
    let parts: Vec<&str> = text.trim().split('|').collect();
    assert_eq!(parts.len(), 4, "{text}");
    // Default job: the command's file name.
    assert_eq!(parts[1], "sh");
    assert_eq!(
        Path::new(parts[2]),
        std::fs::canonicalize(dir.path()).unwrap()
    );
    assert!(parts[3].parse::<u32>().unwrap() > 0);
    let files = run_files(dir.path(), "sh");
    assert_eq!(files.len(), 1);
    assert_eq!(
        files[0].file_stem().unwrap().to_string_lossy(),
        parts[0],
        "the run file is named after CARINA_RUN_ID"
    );
}

#[test]
fn child_run_files_are_merged_before_run_end() {
    let dir = tempfile::tempdir().unwrap();
    let thread = r#"{"type":"thread","index":0,"name":"main"}"#;
    let step = r#"{"type":"step","name":"child-load","id":1,"parent":null,"thread":0,"start_s":0.01,"end_s":0.02,"items":5,"status":"ok","energy_j":0.5,"self_energy_j":0.5,"co2e_g":0.0001}"#;
    let summary = r#"{"type":"step_summary","name":"child-load","count":1,"wall_s":0.01,"self_wall_s":0.01,"items":5,"energy_j":0.5,"self_energy_j":0.5,"co2e_g":0.0001,"p50_s":0.01,"p95_s":0.01,"max_s":0.01}"#;
    let child_end = r#"{"type":"run_end","ended_at":"2026-11-28T05:13:00Z","wall_s":0.02,"energy_j":0.5,"unattributed_j":0.0,"co2e_g":0.0001,"items":5,"steps":1,"dropped":2}"#;
    let script = format!(
        "f=\"$CARINA_DIR/$CARINA_JOB/$CARINA_RUN_ID.child-$$.jsonl\"; {CHILD_START}; \
         printf '%s\\n' '{thread}' '{step}' '{summary}' '{child_end}' >> \"$f\""
    );
    let (code, err) = run_sh(dir.path(), "merge", &script);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("merged    3 records from 1 child"), "{err}");
    let files = run_files(dir.path(), "merge");
    assert_eq!(files.len(), 1);
    let recs = records(&files[0]);
    let types: Vec<&str> = recs.iter().map(|r| r["type"].as_str().unwrap()).collect();
    let n = types.len();
    assert_eq!(
        &types[n - 4..],
        ["thread", "step", "step_summary", "run_end"],
        "{types:?}"
    );
    assert_eq!(recs[n - 3]["name"], "child-load");
    let end = &recs[n - 1];
    assert!(
        end["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("merged 3 records")),
        "{end}"
    );
    // The parent's run_end counts the child's step, items and drops; the child's step energy
    // is attributed, so it leaves the unattributed figure (the total stays the tree's).
    assert_eq!(end["steps"], 1, "{end}");
    assert_eq!(end["items"], 5, "{end}");
    assert_eq!(end["dropped"], 2, "{end}");
    let (e, u) = (
        end["energy_j"].as_f64().unwrap(),
        end["unattributed_j"].as_f64().unwrap(),
    );
    assert!((u - (e - 0.5).max(0.0)).abs() < 1e-9, "{end}");
    // The merged file reads back with the step.
    let rf = carina_runtime::read_run_file(&files[0]).unwrap();
    assert_eq!(rf.steps.len(), 1);
    assert_eq!(rf.summaries.len(), 1);
    // The child file is gone after a successful merge.
    let left: Vec<_> = std::fs::read_dir(dir.path().join("merge"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".child-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn missing_and_unexecutable_commands() {
    let dir = tempfile::tempdir().unwrap();
    let out = carina()
        .arg("run")
        .arg("--dir")
        .arg(dir.path())
        .args(["--", "carina-no-such-command-xyz"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(127), "{err}");
    assert!(
        err.contains("command not found: carina-no-such-command-xyz"),
        "{err}"
    );
    std::fs::create_dir(dir.path().join("bin")).unwrap();
    let script = dir.path().join("bin").join("not-exec.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    let out = carina()
        .arg("run")
        .arg("--dir")
        .arg(dir.path().join("runs"))
        .arg("--")
        .arg(&script)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(126), "{err}");
    assert!(err.contains("cannot execute"), "{err}");
}

#[test]
fn carbon_flags_set_the_factor_and_the_scope_says_process_tree() {
    let dir = tempfile::tempdir().unwrap();
    let out = carina()
        .arg("run")
        .arg("--dir")
        .arg(dir.path())
        .args(["--job", "fr", "--carbon-zone", "FR", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let recs = records(&run_files(dir.path(), "fr")[0]);
    let start = &recs[0];
    assert_eq!(start["carbon"]["zone"], "FR");
    let fr = carina_runtime::CarbonFactor::zone("FR").unwrap().g_per_kwh;
    assert_eq!(start["carbon"]["g_per_kwh"].as_f64().unwrap(), fr);
    assert_eq!(start["scope"], "process-tree");

    let out = carina()
        .arg("run")
        .arg("--dir")
        .arg(dir.path())
        .args(["--job", "fixed", "--carbon-factor", "123.5", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let recs = records(&run_files(dir.path(), "fixed")[0]);
    assert_eq!(recs[0]["carbon"]["g_per_kwh"].as_f64().unwrap(), 123.5);

    let csv = dir.path().join("i.csv");
    std::fs::write(
        &csv,
        "timestamp,g_per_kwh\n2020-01-01T00:00:00Z,100\n2099-01-01T00:00:00Z,100\n",
    )
    .unwrap();
    let out = carina()
        .arg("run")
        .arg("--dir")
        .arg(dir.path())
        .args(["--job", "series", "--carbon-intensity"])
        .arg(&csv)
        .args(["--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let recs = records(&run_files(dir.path(), "series")[0]);
    assert!(
        recs[0]["carbon"]["series"]
            .as_str()
            .unwrap()
            .ends_with("i.csv")
    );
}

#[test]
fn a_bad_carbon_flag_exits_2_before_the_command_runs() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let script = format!("touch {}", marker.display());
    for flags in [
        vec!["--carbon-zone", "ATLANTIS"],
        vec!["--carbon-factor", "-3"],
        vec!["--carbon-zone", "FR", "--carbon-factor", "10"],
    ] {
        let out = carina()
            .arg("run")
            .arg("--dir")
            .arg(dir.path())
            .args(&flags)
            .args(["--", "sh", "-c", &script])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {err}");
        assert!(err.contains("carbon"), "{flags:?}: {err}");
        assert!(!marker.exists(), "{flags:?}: the command ran");
    }
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "timestamp,g_per_kwh\n2020-01-01T00:00:00Z,lots\n").unwrap();
    let out = carina()
        .arg("run")
        .arg("--dir")
        .arg(dir.path())
        .arg("--carbon-intensity")
        .arg(&bad)
        .args(["--", "sh", "-c", &script])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("bad.csv:2:") && err.contains("g_per_kwh"),
        "{err}"
    );
    assert!(!marker.exists());
}

#[test]
fn a_mistyped_flag_is_a_usage_error_not_a_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = carina()
        .arg("run")
        .arg("--dir")
        .arg(dir.path())
        .args(["--job", "x", "--jbo", "y", "--", "true"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--jbo"), "{err}");
    assert!(!dir.path().join("--jbo").exists());
    assert!(
        !dir.path().join("x").exists(),
        "nothing ran, nothing written"
    );
    // Hyphens after `--` belong to the command.
    let out = carina()
        .arg("run")
        .arg("--dir")
        .arg(dir.path())
        .args([
            "--job",
            "h",
            "--",
            "sh",
            "-c",
            "test \"$0\" = --x && exit 4",
            "--x",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{out:?}");
}

#[test]
fn a_failed_start_leaves_no_job_directory() {
    let dir = tempfile::tempdir().unwrap();
    let out = carina()
        .arg("run")
        .arg("--dir")
        .arg(dir.path())
        .args(["--job", "ghost", "--", "/nonexistent/cmd"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(127));
    assert!(!dir.path().join("ghost").exists());
}

#[test]
fn an_orphaned_background_process_still_counts() {
    // The shell starts a CPU-bound loop in a subshell and exits that subshell at once, so the
    // loop is orphaned: without the subreaper it would be re-parented to init and not counted.
    // The shell then idles until the loop says it is done, so the whole loop falls inside the
    // run however slowly a loaded machine runs it.
    let dir = tempfile::tempdir().unwrap();
    let done = dir.path().join("done");
    let script = format!(
        "(sh -c 'i=0; while [ $i -lt 1500000 ]; do i=$((i+1)); done; touch \"$0\"' '{}' &); \
         while [ ! -e '{}' ]; do sleep 0.05; done",
        done.display(),
        done.display()
    );
    let (code, err) = run_sh(dir.path(), "orphan", &script);
    assert_eq!(code, Some(0), "{err}");
    let recs = records(&run_files(dir.path(), "orphan")[0]);
    let end = recs.last().unwrap();
    assert_eq!(end["type"], "run_end");
    let e = end["energy_j"].as_f64().unwrap();
    // The loop keeps a core busy for about a second; the waiting shell alone gets ~0 J.
    assert!(e > 0.5, "orphan's energy not counted: {end}");
}

/// Set by [`carina_runs_this_test`] for the copy of this test binary that it starts under
/// `carina run`: the name of the test whose child role that copy plays.
const CHILD_OF: &str = "CARINA_TEST_CHILD_OF";

/// Runs `carina run --dir DIR --job JOB --interval 20 --` on a copy of this test binary that runs
/// the test `name` of this module alone, with [`CHILD_OF`] set to `name`: a Carina-linked child
/// whose code is the test's own (see [`is_child_of`]).
fn carina_runs_this_test(dir: &Path, job: &str, name: &str) -> std::process::Output {
    // libtest names a test by its path below the crate root; `module_path!()` starts with the
    // crate's name (`main::run`).
    let module = module_path!().split_once("::").map_or("", |(_, m)| m);
    carina()
        .arg("run")
        .arg("--dir")
        .arg(dir)
        .args(["--job", job, "--interval", "20", "--"])
        .arg(std::env::current_exe().unwrap())
        .args([
            &format!("{module}::{name}"),
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_OF, name)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Whether this process is the copy of the test binary that the test `name` started under
/// `carina run` ([`carina_runs_this_test`]): then the test plays its child role, else its parent
/// role. The variable is set by the test itself, never by the caller of `cargo test`; the child
/// checks that `carina run` started it.
fn is_child_of(name: &str) -> bool {
    if std::env::var_os(CHILD_OF).is_none_or(|v| v != name) {
        return false;
    }
    assert!(
        std::env::var_os("CARINA_PARENT_PID").is_some(),
        "{CHILD_OF}={name} but no CARINA_PARENT_PID: the child role runs under `carina run` only"
    );
    true
}

/// The child role of [`a_killed_carina_child_keeps_its_steps_and_its_items_count`]: this copy
/// goes on until at least this many of its `work` steps (8 items each; 163 x 8 = 1 304 items, as
/// in issue 9) are in its child run file.
const KILLED_STEPS: usize = 163;

/// The child role of [`a_killed_carina_child_keeps_its_steps_and_its_items_count`]: records
/// `work` steps of 8 items until at least [`KILLED_STEPS`] of their records are in its child run
/// file (the sink writes whole lines, every second or every 64 KiB), then kills itself with
/// SIGKILL: no `run_end`, no summaries, and whatever was still buffered is lost, as in a real
/// crash.
fn killed_child() -> ! {
    let run = carina::Run::builder("helper")
        .sample_interval(Duration::from_millis(20))
        .start()
        .unwrap();
    let path = run.run_file().expect("a child run file").to_path_buf();
    assert!(
        path.to_string_lossy().contains(".child-"),
        "{}: not a child run file",
        path.display()
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        for i in 0..50u64 {
            let mut g = carina::step("work");
            g.add_items(8);
            std::hint::black_box((0..2_000u64).map(|x| x ^ i).sum::<u64>());
        }
        std::thread::sleep(Duration::from_millis(10));
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let on_disk = text
            .lines()
            .filter(|l| l.starts_with("{\"type\":\"step\""))
            .count();
        if on_disk >= KILLED_STEPS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{on_disk} of {KILLED_STEPS} step records in {} after 60 s",
            path.display()
        );
    }
    // SAFETY: kill(2) with our own pid and a valid signal number; it does not return.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    // The run stays alive up to the kill: dropping it would finish it.
    drop(run);
    unreachable!("SIGKILL ends this process");
}

/// A Carina-linked child of `carina run` killed mid-run: its steps on disk are merged and their
/// items counted. The test runs twice: here, as the parent that starts `carina run` on a copy
/// of this test binary, and in that copy, as the child ([`killed_child`]).
#[test]
fn a_killed_carina_child_keeps_its_steps_and_its_items_count() {
    const NAME: &str = "a_killed_carina_child_keeps_its_steps_and_its_items_count";
    if is_child_of(NAME) {
        killed_child();
    }
    let dir = tempfile::tempdir().unwrap();
    let out = carina_runs_this_test(dir.path(), "killed", NAME);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(128 + 9), "{err}");
    let files = run_files(dir.path(), "killed");
    assert_eq!(files.len(), 1, "{err}");
    let recs = records(&files[0]);
    let work: Vec<_> = recs
        .iter()
        .filter(|r| r["type"] == "step" && r["name"] == "work")
        .collect();
    assert!(
        work.len() >= KILLED_STEPS,
        "{} steps merged: {err}",
        work.len()
    );
    let merged_items: u64 = work.iter().map(|r| r["items"].as_u64().unwrap()).sum();
    assert_eq!(merged_items, 8 * work.len() as u64);
    let end = recs.last().unwrap();
    assert_eq!(end["type"], "run_end");
    // Items from the merged steps (the progress rule), not 0 for a child without run_end.
    assert_eq!(end["items"], merged_items, "{end}");
    assert_eq!(end["steps"], work.len(), "{end}");
    assert!(
        end["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("has no run_end")),
        "{end}"
    );
    assert!(err.contains(&format!("items     {merged_items} ")), "{err}");
    // The child's data is kept: merged into the parent's file, and the child file is removed
    // only when all of it was merged; otherwise it stays, with a warning.
    let left: Vec<_> = std::fs::read_dir(dir.path().join("killed"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".child-"))
        .collect();
    assert_eq!(
        !left.is_empty(),
        err.contains("kept child run file"),
        "{left:?}: {err}"
    );
    // `carina summary` of the parent reads the same items.
    let s = carina().args(["summary"]).arg(&files[0]).output().unwrap();
    let text = String::from_utf8_lossy(&s.stdout);
    assert!(
        text.lines().any(|l| l.trim_start().starts_with("items")
            && l.trim_end().ends_with(&format!(" {merged_items}"))),
        "{text}"
    );
}

#[test]
fn a_child_file_that_cannot_be_merged_whole_is_kept_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let step = |id: u64| {
        format!(
            r#"{{"type":"step","name":"fetch","id":{id},"parent":null,"thread":0,"start_s":{id}.0,"end_s":{id}.5,"items":7,"status":"ok","energy_j":0.5,"self_energy_j":0.5,"co2e_g":0.0001}}"#
        )
    };
    // A crashed child (no run_end) with a malformed line between its steps.
    let script = format!(
        "f=\"$CARINA_DIR/$CARINA_JOB/$CARINA_RUN_ID.child-$$.jsonl\"; {CHILD_START}; \
         printf '%s\\n' '{}' '{}' 'garbage{{' '{}' >> \"$f\"",
        step(1),
        step(2),
        step(3)
    );
    let (code, err) = run_sh(dir.path(), "partial", &script);
    assert_eq!(code, Some(0), "{err}");
    let recs = records(&run_files(dir.path(), "partial")[0]);
    let end = recs.last().unwrap();
    // The three whole steps are merged and counted: 21 items.
    assert_eq!(end["items"], 21, "{end}");
    assert_eq!(end["steps"], 3, "{end}");
    assert!(err.contains("kept child run file"), "{err}");
    let left: Vec<_> = std::fs::read_dir(dir.path().join("partial"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".child-"))
        .collect();
    assert_eq!(left.len(), 1, "the partly merged child file is kept");
    assert!(
        end["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("malformed line(s)")),
        "{end}"
    );
}

#[test]
fn every_zone_named_in_the_help_is_accepted() {
    let out = carina().args(["run", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    // The `--carbon-zone` entry: up to the next option.
    let at = help
        .find("--carbon-zone")
        .expect("--carbon-zone in the help");
    let entry = &help[at + 2..];
    let entry = &entry[..entry.find("\n  -").unwrap_or(entry.len())];
    let zones: Vec<&str> = entry
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|t| {
            !t.is_empty()
                && t.chars()
                    .all(|c| c.is_ascii_uppercase() || c == '-' || c.is_ascii_digit())
        })
        .collect();
    assert!(zones.len() >= 2, "no example zones in:\n{entry}");
    for z in zones {
        assert!(
            carina_runtime::CarbonFactor::zone(z).is_ok(),
            "the help names zone {z}, which is rejected"
        );
    }
}

#[test]
fn no_live_line_when_stderr_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    // Longer than a redraw period: a live line would have been drawn by now.
    let (code, err) = run_sh(dir.path(), "quiet", "sleep 1.3; echo done >&2");
    assert_eq!(code, Some(0), "{err}");
    assert!(!err.contains('\r') && !err.contains("\x1b["), "{err:?}");
    assert!(err.contains("done\n"), "{err}");
}

/// Built without the `prometheus` feature, the flag is a usage error that says how to get it.
#[cfg(not(feature = "prometheus"))]
#[test]
fn prometheus_without_the_feature_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = carina()
        .arg("run")
        .arg("--dir")
        .arg(dir.path())
        .args(["--prometheus", "127.0.0.1:0", "--", "true"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--features prometheus"), "{err}");
}

/// The child role of [`the_printed_summary_and_the_merged_run_end_agree`]: a Carina-linked child
/// of `carina run` that records 40 `work` steps of 3 items each, finishes its run, and checks its
/// child run file before the parent merges it.
fn stepping_child() {
    let run = carina::Run::builder("helper")
        .sample_interval(Duration::from_millis(10))
        .start()
        .unwrap();
    let path = run.run_file().expect("a child run file").to_path_buf();
    for i in 0..40u64 {
        let mut g = carina::step("work");
        g.add_items(3);
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(5) {
            std::hint::black_box((0..1_000u64).map(|x| x ^ i).sum::<u64>());
        }
    }
    run.finish().unwrap();
    assert!(
        path.to_string_lossy().contains(".child-"),
        "{}: not a child run file",
        path.display()
    );
    let file = carina_runtime::read_run_file(&path).unwrap();
    assert!(file.is_complete(), "{}", path.display());
    assert_eq!(file.steps.len(), 40);
    assert_eq!(file.steps.iter().map(|s| s.items).sum::<u64>(), 120);
}

/// The figures `carina run` prints are those of the merged file's one `run_end`, which counts
/// the child's steps; the child's step records are in the file. The test runs twice: here, as
/// the parent that starts `carina run` on a copy of this test binary, and in that copy, as the
/// child ([`stepping_child`]).
#[test]
fn the_printed_summary_and_the_merged_run_end_agree() {
    const NAME: &str = "the_printed_summary_and_the_merged_run_end_agree";
    if is_child_of(NAME) {
        return stepping_child();
    }
    let dir = tempfile::tempdir().unwrap();
    let out = carina_runs_this_test(dir.path(), "agree", NAME);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let files = run_files(dir.path(), "agree");
    assert_eq!(files.len(), 1, "{err}");
    let recs = records(&files[0]);
    let ends: Vec<_> = recs.iter().filter(|r| r["type"] == "run_end").collect();
    assert_eq!(ends.len(), 1, "one run_end");
    let end = ends[0];
    assert_eq!(recs.last().unwrap(), end, "run_end is last");

    // The child's steps are in the parent's file, and counted in its run_end.
    let work: Vec<_> = recs
        .iter()
        .filter(|r| r["type"] == "step" && r["name"] == "work")
        .collect();
    assert_eq!(work.len(), 40, "{err}");
    assert!(
        recs.iter()
            .any(|r| r["type"] == "step_summary" && r["name"] == "work")
    );
    assert_eq!(end["steps"], 40, "{end}");
    assert_eq!(end["items"], 120, "{end}");
    let child_self: f64 = work
        .iter()
        .map(|r| r["self_energy_j"].as_f64().unwrap())
        .sum();
    let (e, u) = (
        end["energy_j"].as_f64().unwrap(),
        end["unattributed_j"].as_f64().unwrap(),
    );
    assert!((u - (e - child_self).max(0.0)).abs() < 1e-6, "{end}");

    // What `carina run` printed is what the file's run_end holds.
    let f = |k: &str| end[k].as_f64().unwrap();
    for needle in [
        format!("after {:.2} s\n", f("wall_s")),
        format!("energy    {} Wh ", sig3(f("energy_j") / 3600.0)),
        format!("CO2e      {} g, ", sig3(f("co2e_g"))),
        format!("items     {} (the children's)", end["items"]),
        format!("steps     {} (the children's)", end["steps"]),
    ] {
        assert!(err.contains(&needle), "{needle:?} not in:\n{err}\n{end}");
    }
    // The child file is gone after a complete merge.
    let left: Vec<_> = std::fs::read_dir(dir.path().join("agree"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".child-"))
        .collect();
    assert!(left.is_empty(), "{left:?}: {err}");
}

/// A fake powercap tree (`CARINA_POWERCAP_ROOT`) whose `package-0` counter reads 37.5 W since
/// the tree was made. Its `energy_uj` is a FIFO served by a thread: a read blocks until the
/// thread writes the counter's value at that instant. So a read never sees a stale value however
/// late the thread is scheduled on a loaded machine (a late thread only makes the read wait), and
/// the counter advances between any two reads, `carina run`'s liveness check among them. A file
/// rewritten every few milliseconds by a thread would stand still whenever the thread fell
/// behind, and the run would then fall back to the estimation model.
struct ClockPowercap {
    dir: tempfile::TempDir,
    fifo: PathBuf,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    server: Option<std::thread::JoinHandle<()>>,
}

impl ClockPowercap {
    fn start() -> ClockPowercap {
        use std::io::Write as _;
        use std::sync::atomic::{AtomicBool, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let zone = dir.path().join("intel-rapl:0");
        std::fs::create_dir_all(&zone).unwrap();
        std::fs::write(zone.join("name"), "package-0\n").unwrap();
        std::fs::write(zone.join("max_energy_range_uj"), "262143328850\n").unwrap();
        let fifo = zone.join("energy_uj");
        let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
        assert!(made.success(), "mkfifo {}", fifo.display());
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let (flag, path) = (stop.clone(), fifo.clone());
        let t0 = Instant::now();
        let server = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                // Opening a FIFO for writing waits for a reader.
                let mut w = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .expect("open the FIFO for writing");
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                let uj = 1000 + (t0.elapsed().as_secs_f64() * 37.5e6) as u64;
                // A reader gone before the write leaves EPIPE (Rust ignores SIGPIPE): it wanted
                // no value.
                let _ = writeln!(w, "{uj}");
                drop(w);
                // The reader reads to the end of the file: let it see the end before the next
                // open joins its read. (It would read this value and the next, and take this
                // one: a later read is still a later value.)
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        ClockPowercap {
            dir,
            fifo,
            stop,
            server: Some(server),
        }
    }
}

impl Drop for ClockPowercap {
    fn drop(&mut self) {
        use std::os::unix::fs::OpenOptionsExt as _;
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // The server may be waiting in `open` for a reader: be one, without waiting for a
        // writer (O_NONBLOCK), and stay one until it has seen the stop.
        let _reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&self.fifo);
        if let Some(s) = self.server.take() {
            let _ = s.join();
        }
    }
}

#[test]
fn the_terminal_summary_says_how_the_energy_was_obtained() {
    use carina_runtime::record::Method;
    let tree = ClockPowercap::start();
    let dir = tempfile::tempdir().unwrap();
    for scope in ["process", "host"] {
        let out = carina()
            .env("CARINA_POWERCAP_ROOT", tree.dir.path())
            .env("CARINA_SCOPE", scope)
            .arg("run")
            .arg("--dir")
            .arg(dir.path())
            .args(["--job", scope, "--interval", "20", "--", "sh", "-c"])
            .arg("i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{err}");
        let recs = records(&run_files(dir.path(), scope)[0]);
        let end = recs.last().unwrap();
        // The live counter is used: a measured run on any machine.
        assert_eq!(end["energy_kind"], "measured", "{scope}: {end}");
        let method: Method = serde_json::from_value(end["method"].clone()).unwrap();
        let energy = err
            .lines()
            .find(|l| l.starts_with("  energy    "))
            .unwrap_or_else(|| panic!("no energy line: {err}"));
        assert!(
            energy.contains(&format!(" Wh measured ({}) from ", method.label)),
            "{scope}: {energy}"
        );
        let co2e = err.lines().find(|l| l.starts_with("  CO2e      ")).unwrap();
        if scope == "process" {
            // The process tree's share of host counters: never `measured` alone.
            assert!(!method.is_plain_counter(), "{method:?}");
            assert!(
                method.label.contains("x cpu-time share"),
                "{}",
                method.label
            );
            assert!(co2e.contains(", measured x share at "), "{co2e}");
        } else {
            assert_eq!(
                co2e.contains(", measured at "),
                method.is_plain_counter(),
                "{co2e} / {method:?}"
            );
        }
        // Measured: no band and no "counters not used" line; the own cost always.
        assert!(
            !err.contains("\n  band ") && !err.contains("\n  counters "),
            "{err}"
        );
        let own = &end["own_cost"];
        let share = own["cpu_share"].as_f64().unwrap();
        assert!(
            err.contains(&format!(
                "\n  own cost  {:.2} % of CPU time, ",
                100.0 * share
            )),
            "{err}"
        );
        assert!(
            co2e.contains(&format!(
                " at {:.1} g/kWh (",
                end["carbon_g_per_kwh"].as_f64().unwrap()
            )),
            "{co2e}"
        );
    }
}
