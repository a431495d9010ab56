//! `carina run` and signals outside the command's lifetime: a stop signal during start-up ends
//! `carina` before anything runs, and the command does not outlive a `carina` killed with
//! SIGKILL.

use crate::common;
use std::fs::File;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A fake powercap tree (`CARINA_POWERCAP_ROOT`) whose `package-0` counter, `energy_uj`, is a
/// FIFO: a read of it waits for the test, as a read of a hung sysfs file would.
struct StuckPowercap {
    root: tempfile::TempDir,
    fifo: PathBuf,
}

impl StuckPowercap {
    fn new() -> StuckPowercap {
        let root = tempfile::tempdir().unwrap();
        let zone = root.path().join("intel-rapl:0");
        std::fs::create_dir_all(&zone).unwrap();
        std::fs::write(zone.join("name"), "package-0\n").unwrap();
        std::fs::write(zone.join("max_energy_range_uj"), "262143328850\n").unwrap();
        let fifo = zone.join("energy_uj");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo");
        assert!(made.success(), "mkfifo {}", fifo.display());
        StuckPowercap { root, fifo }
    }
}

/// A child process killed and reaped when the test ends, passed or failed.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Reaped {
    /// Its exit status once it has exited; `None` if it is still running after `limit`.
    fn exit_within(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = self.0.try_wait().unwrap() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn stderr(&mut self) -> String {
        let mut s = String::new();
        if let Some(mut e) = self.0.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut s);
        }
        s
    }
}

/// `carina run` with the counters of `tree`, running a command that would create `marker`.
fn carina_run_touching(tree: &StuckPowercap, dir: &Path, marker: &Path) -> Reaped {
    let child = common::carina_command()
        .env("CARINA_POWERCAP_ROOT", tree.root.path())
        .args(["run", "--dir"])
        .arg(dir)
        .args(["--job", "stopped", "--", "sh", "-c", "touch \"$0\""])
        .arg(marker)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    Reaped(child)
}

fn sigterm(child: &Child) {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
}

/// The run files under `dir/stopped`.
fn run_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir.join("stopped"))
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
                .collect()
        })
        .unwrap_or_default()
}

/// What a stop signal during start-up must leave: exit 128 + 15 at once, said on stderr, the
/// command never run, no run file.
fn assert_stopped(carina: &mut Reaped, dir: &Path, marker: &Path) {
    // Generous: `carina` is blocked on a FIFO that never yields, so without the fix it would
    // not exit at all; with it, it exits within milliseconds.
    let status = carina
        .exit_within(Duration::from_secs(30))
        .expect("carina still running 30 s after SIGTERM during start-up");
    let err = carina.stderr();
    assert_eq!(status.code(), Some(143), "{status:?}: {err}");
    assert!(
        err.contains("SIGTERM during start-up: the command was not started"),
        "{err}"
    );
    assert!(!marker.exists(), "the command ran: {err}");
    assert_eq!(run_files(dir), Vec::<PathBuf>::new(), "{err}");
}

#[test]
fn sigterm_while_start_up_is_stuck_on_an_input_ends_carina_at_once() {
    let tree = StuckPowercap::new();
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let mut carina = carina_run_touching(&tree, dir.path(), &marker);
    // Once `carina` has the counter open (a writer's non-blocking open succeeds only with a
    // reader there), it is in start-up: its handlers are installed, the command not started.
    // The writer stays open and silent, so the read never ends.
    let deadline = Instant::now() + Duration::from_secs(60);
    let _writer = loop {
        match std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&tree.fifo)
        {
            Ok(w) => break w,
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::ENXIO), "{e}"),
        }
        if let Some(s) = carina.0.try_wait().unwrap() {
            panic!(
                "carina exited ({s:?}) before reading the counter: {}",
                carina.stderr()
            );
        }
        assert!(Instant::now() < deadline, "carina never opened the counter");
        std::thread::sleep(Duration::from_millis(5));
    };
    sigterm(&carina.0);
    assert_stopped(&mut carina, dir.path(), &marker);
}

#[test]
fn sigterm_after_the_run_file_is_made_removes_it() {
    // Where the RAPL perf PMU exists it is preferred to powercap, whose counter is then not
    // read again after detection: there is no stall after the run file to test.
    if Path::new("/sys/bus/event_source/devices/power/events/energy-pkg").exists() {
        eprintln!("skipped: the RAPL perf PMU is preferred to the fake powercap tree here");
        return;
    }
    let tree = StuckPowercap::new();
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    // The counter advances for every read until the run file exists (detection watches it
    // move); the first read after that (the run's energy baseline) never gets an answer.
    let stop = Arc::new(AtomicBool::new(false));
    let held: Arc<Mutex<Option<File>>> = Arc::new(Mutex::new(None));
    let server = {
        let (stop, held, fifo) = (stop.clone(), held.clone(), tree.fifo.clone());
        let job = dir.path().to_path_buf();
        let t0 = Instant::now();
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                // Opening a FIFO for writing waits for a reader.
                let Ok(mut w) = std::fs::OpenOptions::new().write(true).open(&fifo) else {
                    return;
                };
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                if !run_files(&job).is_empty() {
                    *held.lock().unwrap() = Some(w);
                    return;
                }
                let uj = 1000 + (t0.elapsed().as_secs_f64() * 37.5e6) as u64;
                let _ = writeln!(w, "{uj}");
                drop(w);
                // Let the reader see the end of this value before a new open joins its read.
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let mut carina = carina_run_touching(&tree, dir.path(), &marker);
    let deadline = Instant::now() + Duration::from_secs(60);
    while held.lock().unwrap().is_none() {
        if let Some(s) = carina.0.try_wait().unwrap() {
            panic!(
                "carina exited ({s:?}) before its baseline read: {}",
                carina.stderr()
            );
        }
        assert!(
            Instant::now() < deadline,
            "carina never read the counter after making its run file"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(run_files(dir.path()).len(), 1);
    sigterm(&carina.0);
    assert_stopped(&mut carina, dir.path(), &marker);
    // The job directory held nothing else: it goes too.
    assert!(!dir.path().join("stopped").exists());
    stop.store(true, Ordering::SeqCst);
    // The server may wait in `open` for a reader: be one that does not wait for a writer.
    let _reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&tree.fifo);
    server.join().unwrap();
}

/// The start time of process `pid` (clock ticks since boot, field 22 of `/proc/<pid>/stat`),
/// while it is alive: `None` once it is gone or a zombie (dead, waiting to be reaped).
fn alive_since(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    (fields.first() != Some(&"Z"))
        .then(|| fields.get(19)?.parse().ok())
        .flatten()
}

/// Kills process `pid` when the test ends, if it is still the one that started at `since`.
struct KillAtEnd {
    pid: u32,
    since: u64,
}

impl Drop for KillAtEnd {
    fn drop(&mut self) {
        if alive_since(self.pid) == Some(self.since)
            && let Some(pid) = rustix::process::Pid::from_raw(self.pid as i32)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
}

#[test]
fn the_command_dies_with_a_carina_killed_by_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    // The command writes its pid (whole, by rename) and becomes `sleep 300` in place.
    let carina = common::carina_command()
        .args(["run", "--dir"])
        .arg(dir.path())
        .args(["--job", "orphan", "--", "sh", "-c"])
        .arg("echo $$ > \"$0.tmp\" && mv \"$0.tmp\" \"$0\" && exec sleep 300")
        .arg(&pid_file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut carina = Reaped(carina);
    let deadline = Instant::now() + Duration::from_secs(60);
    let pid: u32 = loop {
        if let Some(p) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            break p;
        }
        assert!(
            carina.0.try_wait().unwrap().is_none(),
            "carina exited before the command wrote its pid"
        );
        assert!(Instant::now() < deadline, "the command never wrote its pid");
        std::thread::sleep(Duration::from_millis(5));
    };
    let since = alive_since(pid).expect("the command is running");
    let _cleanup = KillAtEnd { pid, since };
    carina.0.kill().unwrap();
    carina.0.wait().unwrap();
    // Generous: the parent-death signal is sent as `carina` exits; without it the command
    // would sleep on for five minutes.
    let deadline = Instant::now() + Duration::from_secs(30);
    while alive_since(pid) == Some(since) {
        assert!(
            Instant::now() < deadline,
            "the command (pid {pid}) still runs 30 s after carina was killed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
