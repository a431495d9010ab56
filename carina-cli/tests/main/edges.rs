//! Inputs and settings at the edges (issue 18): a file where the job directory should be, the
//! ends of a flag's range, help that cannot be written, special files given as input.

use crate::common::*;
use std::process::Stdio;

#[test]
fn a_file_in_place_of_the_job_directory_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("nightly"), "not a directory").unwrap();
    let o = carina_command()
        .arg("run")
        .arg("--dir")
        .arg(dir.path())
        .args(["--job", "nightly", "--", "true"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("is not a directory"), "{err}");
    assert!(err.contains("nightly"), "{err}");
    assert!(!err.contains("CARINA_RUN_ID"), "{err}");
    assert!(!err.contains("exists already"), "{err}");
    // The file is left as it was.
    assert_eq!(
        std::fs::read_to_string(dir.path().join("nightly")).unwrap(),
        "not a directory"
    );
}

#[test]
fn the_threshold_range_is_the_one_the_message_names() {
    let dir = tempfile::tempdir().unwrap();
    let lines = run_lines("job", "r1", &[("work", steady(10, 1.0, 10, 20.0))], true);
    let a = write_run(dir.path(), "a.jsonl", &lines);
    let b = write_run(dir.path(), "b.jsonl", &lines);
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let o = carina(&["compare", a, b, "--threshold", "1000%"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = carina(&["compare", a, b, "--threshold", "1001%"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("from 0 to 1000"), "{}", stderr(&o));
}

#[test]
fn help_and_version_that_cannot_be_written_are_errors() {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    for args in [
        &["--help"][..],
        &["--version"],
        &["summary", "--help"],
        &["help"],
    ] {
        let o = carina_command()
            .args(args)
            .stdout(Stdio::from(full.try_clone().unwrap()))
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("cannot write output"), "{args:?}: {err}");
        assert!(err.contains("No space left on device"), "{args:?}: {err}");
    }
    // Written, help is still status 0, and a usage error still 2.
    assert_eq!(carina(&["--help"]).status.code(), Some(0));
    assert_eq!(carina(&["summary", "--bogus"]).status.code(), Some(2));
}

/// `report -o` and `export -o` write a temporary file beside the target and rename it: a write
/// that fails (here the rename, onto a directory) leaves the target as it was and no temporary
/// file behind; one that succeeds replaces the previous file whole.
#[test]
fn an_output_file_is_replaced_whole_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let lines = run_lines("job", "r1", &[("work", steady(10, 1.0, 10, 20.0))], true);
    let run = write_run(dir.path(), "a.jsonl", &lines);
    let run = run.to_str().unwrap();
    let out = tempfile::tempdir().unwrap();
    let listing = |d: &std::path::Path| {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    for (cmd, name) in [("report", "r.html"), ("export", "r.csv")] {
        let target = out.path().join(name);
        // A directory in the way: the rename fails, the directory and its file stay.
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("keep"), "kept").unwrap();
        let o = carina(&[cmd, run, "-o", target.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{cmd}: {}", stderr(&o));
        assert!(stderr(&o).contains("cannot write"), "{}", stderr(&o));
        assert_eq!(
            std::fs::read_to_string(target.join("keep")).unwrap(),
            "kept"
        );
        assert_eq!(listing(out.path()), vec![name.to_owned()], "{cmd}");
        std::fs::remove_dir_all(&target).unwrap();
        // Over an old file: replaced whole.
        std::fs::write(&target, "old").unwrap();
        let o = carina(&[cmd, run, "-o", target.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(0), "{cmd}: {}", stderr(&o));
        let new = std::fs::read_to_string(&target).unwrap();
        assert!(new.len() > 100 && !new.starts_with("old"), "{cmd}: {new}");
        assert_eq!(listing(out.path()), vec![name.to_owned()], "{cmd}");
        std::fs::remove_file(&target).unwrap();
    }
}
