//! Starting a run never loses its file silently and never overwrites another run's file.

use crate::common;

use std::os::unix::fs::PermissionsExt;

fn am_root() -> bool {
    // SAFETY: geteuid has no preconditions and only returns a number.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn an_unwritable_directory_fails_start_with_the_path() {
    let _s = common::serial();
    let dir = tempfile::tempdir().unwrap();
    // A regular file where the job directory should be: unwritable even for root.
    let blocker = dir.path().join("blocked");
    std::fs::write(&blocker, "").unwrap();
    let err = carina::Run::builder("job")
        .output_dir(&blocker)
        .constant_watts(10.0)
        .start()
        .unwrap_err();
    assert!(matches!(err, carina::StartError::RunFile { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("blocked"), "{msg}");
    assert!(msg.contains("CARINA_DIR"), "says what to do: {msg}");

    if !am_root() {
        let ro = dir.path().join("ro");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o500)).unwrap();
        let err = carina::Run::builder("job")
            .output_dir(&ro)
            .start()
            .unwrap_err();
        assert!(matches!(err, carina::StartError::RunFile { .. }), "{err}");
    }
}

#[test]
fn best_effort_runs_without_a_file_and_says_so() {
    let _s = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("blocked");
    std::fs::write(&blocker, "").unwrap();
    let run = carina::Run::builder("job")
        .output_dir(&blocker)
        .constant_watts(10.0)
        .best_effort(true)
        .start()
        .expect("best effort starts");
    assert!(run.run_file().is_none());
    {
        let _g = carina::step("x");
    }
    let s = run.finish().unwrap();
    assert_eq!(s.steps(), 1);
    assert!(
        s.warnings.iter().any(|w| w.contains("writes no run file")),
        "{:?}",
        s.warnings
    );
}

#[test]
fn a_too_long_run_id_fails_start() {
    let _s = common::serial();
    let dir = tempfile::tempdir().unwrap();
    // SAFETY (env): the serial lock keeps other tests of this binary from reading it meanwhile.
    unsafe { std::env::set_var("CARINA_RUN_ID", "x".repeat(300)) };
    let r = carina::Run::builder("job")
        .output_dir(dir.path())
        .constant_watts(10.0)
        .start();
    unsafe { std::env::remove_var("CARINA_RUN_ID") };
    let err = r.unwrap_err();
    assert!(matches!(err, carina::StartError::RunFile { .. }), "{err}");
}

#[test]
fn a_reused_run_id_never_overwrites() {
    let _s = common::serial();
    let dir = tempfile::tempdir().unwrap();
    unsafe { std::env::set_var("CARINA_RUN_ID", "fixed-id") };
    let first = carina::Run::builder("job")
        .output_dir(dir.path())
        .constant_watts(10.0)
        .start()
        .unwrap();
    {
        let _g = carina::step("first");
    }
    let path = first.run_file().unwrap().to_path_buf();
    first.finish().unwrap();
    let second = carina::Run::builder("job")
        .output_dir(dir.path())
        .constant_watts(10.0)
        .start();
    unsafe { std::env::remove_var("CARINA_RUN_ID") };
    let err = second.unwrap_err();
    assert!(
        matches!(err, carina::StartError::RunIdTaken { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("fixed-id"), "{err}");
    let kept = carina::read_run_file(&path).unwrap();
    assert!(kept.is_complete());
    assert_eq!(
        kept.steps[0].name, "first",
        "the first run's file is intact"
    );
}

#[test]
fn two_thousand_runs_in_one_process_get_two_thousand_files() {
    let _s = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let mut ids = std::collections::HashSet::new();
    for _ in 0..2_000 {
        let run = carina::Run::builder("many")
            .output_dir(dir.path())
            .constant_watts(10.0)
            .sample_interval(std::time::Duration::from_millis(1))
            .start()
            .unwrap();
        assert!(
            ids.insert(run.run_id().to_owned()),
            "duplicate {}",
            run.run_id()
        );
        run.finish().unwrap();
    }
    let files = std::fs::read_dir(dir.path().join("many")).unwrap().count();
    assert_eq!(files, 2_000);
}
