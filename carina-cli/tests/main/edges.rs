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

/// Runs `carina ARGS`, failing the test instead of hanging if it has not ended within a minute
/// (a blocking open of a FIFO would never end at all).
fn carina_within_a_minute(args: &[&std::ffi::OsStr]) -> std::process::Output {
    let child = carina_command()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(std::time::Duration::from_secs(60)) {
        Ok(o) => o.unwrap(),
        Err(_) => {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
            panic!("carina {args:?} still runs after a minute: blocked on its input");
        }
    }
}

fn os(s: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(s)
}

fn mkfifo(path: &std::path::Path) {
    let made = std::process::Command::new("mkfifo").arg(path).status();
    assert!(made.unwrap().success());
}

#[test]
fn a_device_named_as_input_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let zero_link = dir.path().join("zero.jsonl");
    std::os::unix::fs::symlink("/dev/zero", &zero_link).unwrap();
    let fifo = dir.path().join("fifo.jsonl");
    mkfifo(&fifo);
    for input in [std::path::Path::new("/dev/zero"), &zero_link, &fifo] {
        for cmd in [
            vec![os("summary"), input.as_os_str()],
            vec![os("export"), input.as_os_str()],
            vec![
                os("forecast"),
                input.as_os_str(),
                os("--total-items"),
                os("10"),
            ],
            vec![os("compare"), input.as_os_str(), input.as_os_str()],
            vec![
                os("report"),
                input.as_os_str(),
                os("-o"),
                dir.path().join("r.html").as_os_str(),
            ],
        ] {
            let o = carina_within_a_minute(&cmd);
            let err = stderr(&o);
            assert_eq!(o.status.code(), Some(2), "{cmd:?}: {err}");
            assert!(err.contains("not a regular file"), "{cmd:?}: {err}");
            assert!(err.contains(&input.display().to_string()), "{cmd:?}: {err}");
        }
    }
    let o = carina_within_a_minute(&[
        os("simulate"),
        os("--items"),
        os("100"),
        os("--hours"),
        os("2"),
        os("--kwh"),
        os("1"),
        os("--schedule"),
        os("/dev/zero"),
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("/dev/zero") && err.contains("not a regular file"),
        "{err}"
    );
    for intensity in [os("/dev/zero"), fifo.as_os_str()] {
        let marker = dir.path().join("ran");
        let o = carina_within_a_minute(&[
            os("run"),
            os("--dir"),
            dir.path().join("runs").as_os_str(),
            os("--carbon-intensity"),
            intensity,
            os("--"),
            os("touch"),
            marker.as_os_str(),
        ]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(
            err.contains("--carbon-intensity") && err.contains("not a regular file"),
            "{err}"
        );
        assert!(!marker.exists(), "the command ran despite the bad input");
    }
}

/// A FIFO, a symlink to `/dev/zero` and an empty run file inside a runs directory are skipped
/// with a warning naming each; the good runs are analysed and the command succeeds.
#[test]
fn special_and_empty_files_in_a_directory_are_skipped_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job");
    std::fs::create_dir(&job).unwrap();
    let lines = |id: &str| run_lines("job", id, &[("work", steady(10, 1.0, 10, 20.0))], true);
    write_run(&job, "a.jsonl", &lines("r1"));
    write_run(&job, "b.jsonl", &lines("r2"));
    mkfifo(&job.join("evil.jsonl"));
    std::os::unix::fs::symlink("/dev/zero", job.join("zero.jsonl")).unwrap();
    std::fs::write(job.join("empty.jsonl"), "").unwrap();
    let d = dir.path().as_os_str();
    let html = dir.path().join("r.html");
    for cmd in [
        vec![os("summary"), d],
        vec![os("export"), d],
        vec![os("export"), d, os("--steps")],
        vec![os("compare"), d, job.join("a.jsonl").as_os_str()],
        vec![os("report"), d, os("-o"), html.as_os_str()],
    ] {
        let o = carina_within_a_minute(&cmd);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(0), "{cmd:?}: {err}");
        for (name, why) in [
            ("evil.jsonl", "a FIFO"),
            ("zero.jsonl", "a character device"),
            ("empty.jsonl", "the file is empty"),
        ] {
            let warned = err
                .lines()
                .any(|l| l.contains("warning: skipped") && l.contains(name) && l.contains(why));
            assert!(warned, "{cmd:?}: no warning for {name}: {err}");
        }
    }
    // The two good runs are in the output.
    let o = carina_within_a_minute(&[os("export"), d]);
    assert_eq!(stdout(&o).lines().count(), 3, "{}", stdout(&o));
    // Only bad files: nothing to analyse, exit 2 with every reason.
    std::fs::remove_file(job.join("a.jsonl")).unwrap();
    std::fs::remove_file(job.join("b.jsonl")).unwrap();
    let o = carina_within_a_minute(&[os("summary"), d]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("no run file could be read"), "{err}");
    assert!(
        err.contains("evil.jsonl") && err.contains("empty.jsonl"),
        "{err}"
    );
}
