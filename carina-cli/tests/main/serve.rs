//! `carina serve`: the report's dashboard served and kept current as a run file grows.
#![cfg(feature = "serve")]

use crate::common::{carina_command, power, run_start, step};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A `carina serve` child, killed when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `carina serve ARGS --addr 127.0.0.1:0` and reads the bound address from its stderr.
fn serve(args: &[&str]) -> Server {
    let mut child = carina_command()
        .arg("serve")
        .args(args)
        .args(["--addr", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    Server { child, addr }
}

/// `GET path` (sent as is) with a plain TcpStream: (status code, body).
fn get(addr: &str, path: &str, header: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{header}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let code = resp
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (code, body)
}

/// Waits (generously: the server polls once a second, the machine may be slow) until `f`.
fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn append(p: &Path, lines: &[String]) {
    let mut f = std::fs::OpenOptions::new().append(true).open(p).unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

#[test]
fn the_page_follows_a_growing_run_file() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("live.jsonl");
    std::fs::write(&run, format!("{}\n", run_start("nightly", "live-1"))).unwrap();
    let s = serve(&[dir.path().to_str().unwrap(), "--total-items", "100"]);
    let (code, v0) = get(&s.addr, "/version", "");
    assert_eq!(code, 200);
    let (code, page) = get(&s.addr, "/", "");
    assert_eq!(code, 200);
    assert!(page.contains("0 of 100 (0.0 %)"), "{page}");
    assert!(page.contains("connect-src 'self'"));
    assert!(page.contains("/version"));
    append(
        &run,
        &[
            step("solve", 1, 0.0, 10.0, 25, 900.0),
            power(0.0, 10.0, 1000.0),
        ],
    );
    wait_for("/version to change", || {
        get(&s.addr, "/version", "").1 != v0
    });
    let (_, page) = get(&s.addr, "/", "");
    assert!(page.contains("25 of 100 (25.0 %)"), "{page}");
    // The power records' sum, and the latest window's power: 1000 J over 10 s.
    assert!(
        page.contains("energy so far</td><td class=\"l energy\">0.278 Wh"),
        "{page}"
    );
    assert!(page.contains("100 W"), "{page}");
    assert!(page.contains("forecast: runtime"), "{page}");
    assert!(page.contains("40.0 s"), "{page}");
    assert!(page.contains("no governor in this run"), "{page}");
    // A governor holding back for a peak window: its mode and reason appear within a poll.
    let (_, v1) = get(&s.addr, "/version", "");
    append(
        &run,
        &[r#"{"type":"control","t_s":10.5,"at":"2026-12-07T08:00:00Z","policy":"throttle","mode":"peak","allowed":2,"nominal":8,"reason":"peak window Mon-Fri 08:00-20:00 Europe/Berlin"}"#.to_owned()],
    );
    wait_for("/version to change", || {
        get(&s.addr, "/version", "").1 != v1
    });
    let (_, page) = get(&s.addr, "/", "");
    assert!(
        page.contains("peak (throttle): 2 of 8 workers since 2026-12-07T08:00:00Z; peak window Mon-Fri 08:00-20:00 Europe/Berlin"),
        "{page}"
    );
}

#[test]
fn no_request_path_reaches_the_filesystem() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.jsonl"),
        format!("{}\n", run_start("j", "a")),
    )
    .unwrap();
    let s = serve(&[dir.path().to_str().unwrap()]);
    for path in [
        "/../../etc/passwd",
        "/etc/passwd",
        "/a.jsonl",
        "/%2e%2e/%2e%2e/etc/passwd",
    ] {
        let (code, body) = get(&s.addr, path, "");
        assert_eq!(code, 404, "{path}: {body}");
        assert!(!body.contains("root:"), "{path}: {body}");
    }
}

#[test]
fn a_token_is_required_when_given() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.jsonl"),
        format!("{}\n", run_start("j", "a")),
    )
    .unwrap();
    let s = serve(&[dir.path().to_str().unwrap(), "--token", "s3cret"]);
    assert_eq!(get(&s.addr, "/", "").0, 401);
    assert_eq!(get(&s.addr, "/version?token=wrong", "").0, 401);
    assert_eq!(get(&s.addr, "/version?token=s3cret", "").0, 200);
    assert_eq!(get(&s.addr, "/", "Authorization: Bearer s3cret\r\n").0, 200);
}

#[test]
fn a_network_address_without_a_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = carina_command()
        .env_remove("CARINA_SERVE_TOKEN")
        .args(["serve", dir.path().to_str().unwrap(), "--addr", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not a loopback address") && err.contains("--token"),
        "{err}"
    );
}

/// `run_start` of a run written on this host by `pid`.
fn local_start(run_id: &str, pid: u32) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&run_start("j", run_id)).unwrap();
    v["host"] = serde_json::json!(host.trim());
    v["pid"] = serde_json::json!(pid);
    // Now: a process that started after its run's start is not its writer (a reused pid).
    v["started_at"] = serde_json::json!(jiff::Timestamp::now().to_string());
    v.to_string()
}

#[test]
fn a_run_whose_writer_is_gone_is_marked_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    std::fs::write(
        dir.path().join("dead.jsonl"),
        format!("{}\n", local_start("dead", dead)),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("alive.jsonl"),
        format!("{}\n", local_start("alive", std::process::id())),
    )
    .unwrap();
    let s = serve(&[dir.path().to_str().unwrap()]);
    let (_, page) = get(&s.addr, "/", "");
    assert!(
        page.contains(&format!("its writer (pid {dead} on this host) is gone")),
        "{page}"
    );
    assert!(
        page.contains(&format!("writer pid {} alive", std::process::id())),
        "{page}"
    );
}

#[test]
fn a_reused_pid_is_not_taken_for_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    // A run that started a day before this (live) process: its pid was reused.
    let mut v: serde_json::Value =
        serde_json::from_str(&local_start("old", std::process::id())).unwrap();
    let day_ago = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24);
    v["started_at"] = serde_json::json!(day_ago.to_string());
    std::fs::write(dir.path().join("old.jsonl"), format!("{v}\n")).unwrap();
    let s = serve(&[dir.path().to_str().unwrap()]);
    let (_, page) = get(&s.addr, "/", "");
    assert!(
        page.contains(&format!(
            "its writer (pid {} on this host) is gone",
            std::process::id()
        )),
        "{page}"
    );
}

/// In headless Chromium (ignored by default, as `report_browser`: it needs `chromium` on PATH):
/// the page's reload script runs under the page's CSP and its request to `/version` is allowed
/// (`connect-src 'self'`): the status it sets after a successful answer replaces "connecting".
#[test]
#[ignore = "needs chromium on PATH"]
fn serve_browser_the_reload_script_reaches_the_server() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.jsonl"),
        format!("{}\n", run_start("j", "a")),
    )
    .unwrap();
    let s = serve(&[dir.path().to_str().unwrap()]);
    let profile = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--virtual-time-budget=3000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("http://{}/", s.addr))
        .output()
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(dom.contains("id=\"live-status\">live<"), "{dom}");
}
