//! `carina serve`: the report's dashboard served and kept current as a run file grows.
#![cfg(feature = "serve")]

use crate::common::{bare_run, carina_command, power, run_start, step};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A `carina serve` child, killed when dropped (also used by `serve_live`).
pub(crate) struct Server {
    child: Child,
    pub(crate) addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `carina serve ARGS --addr 127.0.0.1:0` and reads the bound address from its stderr.
pub(crate) fn serve(args: &[&str]) -> Server {
    serve_at(args, "127.0.0.1:0")
}

/// Starts `carina serve ARGS --addr ADDR` and reads the bound address from its stderr.
fn serve_at(args: &[&str], addr: &str) -> Server {
    let mut child = carina_command()
        .arg("serve")
        .args(args)
        .args(["--addr", addr])
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

/// A temporary directory holding one run file, `a.jsonl`, with only its `run_start`.
fn one_run_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.jsonl"),
        format!("{}\n", run_start("j", "a")),
    )
    .unwrap();
    dir
}

/// `GET path` (sent as is) with a plain TcpStream: (status code, body).
pub(crate) fn get(addr: &str, path: &str, header: &str) -> (u16, String) {
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
    assert!(page.contains("/live?"));
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
    let dir = one_run_dir();
    let s = serve(&[dir.path().to_str().unwrap()]);
    for path in [
        "/live/../../etc/passwd",
        "/live/a.jsonl",
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
    let dir = one_run_dir();
    let s = serve(&[dir.path().to_str().unwrap(), "--token", "s3cret"]);
    assert_eq!(get(&s.addr, "/", "").0, 401);
    assert_eq!(get(&s.addr, "/version?token=wrong", "").0, 401);
    assert_eq!(get(&s.addr, "/version?token=s3cret", "").0, 200);
    assert_eq!(get(&s.addr, "/", "Authorization: Bearer s3cret\r\n").0, 200);
    // The update path too, and the page's links carry the token on.
    assert_eq!(get(&s.addr, "/live?have=x", "").0, 401);
    assert_eq!(get(&s.addr, "/live?have=x&token=wrong", "").0, 401);
    assert_eq!(get(&s.addr, "/live?have=x&token=s3cret", "").0, 200);
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
/// the page's update script runs under the page's CSP and its request to `/live` is allowed
/// (`connect-src 'self'`): the status it sets after a successful answer replaces "connecting".
#[test]
#[ignore = "needs chromium on PATH"]
fn serve_browser_the_reload_script_reaches_the_server() {
    let dir = one_run_dir();
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

/// `data-layout` and `data-tag` of a page or an update.
fn tags(html: &str) -> (String, String) {
    let attr = |name: &str| {
        let key = format!("{name}=\"");
        let i = html
            .find(&key)
            .unwrap_or_else(|| panic!("no {name} in {html}"));
        let rest = &html[i + key.len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    };
    (attr("data-layout"), attr("data-tag"))
}

/// A finished run that started `k` minutes after a fixed time (so runs sort by `k`).
fn finished(job: &str, k: usize) -> String {
    let mut lines = bare_run(job, &format!("{job}-{k:04}"), 60.0, 3600.0, 10);
    let mut start: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    let at = jiff::Timestamp::from_second(1_790_000_000 + 60 * k as i64).unwrap();
    start["started_at"] = serde_json::json!(at.to_string());
    lines[0] = start.to_string();
    lines.join("\n") + "\n"
}

/// `/live` answers an update of what a page shows (its `data-tag`): nothing (204) when nothing
/// changed; the live section with every section stubbed (`data-same`) when only it changed;
/// the changed sections in full otherwise, under the same `data-layout` (patched in place);
/// a new run changes the layout (the page reloads).
#[test]
fn the_page_is_updated_in_place_from_live() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("done.jsonl"), finished("j", 1)).unwrap();
    let s = serve(&[dir.path().to_str().unwrap(), "--total-items", "100"]);
    let (code, page) = get(&s.addr, "/", "");
    assert_eq!(code, 200);
    assert!(
        page.contains("fetch(base+"),
        "the update script is in the page"
    );
    assert!(
        !page.contains("location.reload();}"),
        "no reload on every change"
    );
    let (layout, tag) = tags(&page);
    // A finished run: nothing changes, nothing is sent.
    let (code, body) = get(&s.addr, &format!("/live?have={tag}"), "");
    assert_eq!(code, 204, "{body}");
    // Same state, another live section: the runs are stubs, the live section is there.
    let state = tag.split('.').next().unwrap();
    let (code, upd) = get(&s.addr, &format!("/live?have={state}.0"), "");
    assert_eq!(code, 200);
    assert_eq!(tags(&upd), (layout.clone(), tag.clone()));
    assert!(upd.contains("<section id=\"live\">"), "{upd}");
    assert!(upd.contains("data-same"), "{upd}");
    assert!(
        !upd.contains("<details class=\"run\" id=\"run-0-0\" open"),
        "{upd}"
    );

    // A running run appears: a new layout (a page showing the old one reloads).
    let run = dir.path().join("live.jsonl");
    let mut start: serde_json::Value = serde_json::from_str(&run_start("j", "live-1")).unwrap();
    start["started_at"] = serde_json::json!("2026-12-01T00:00:00Z");
    std::fs::write(&run, format!("{start}\n")).unwrap();
    let mut upd = String::new();
    wait_for("the new run in an update", || {
        upd = get(&s.addr, &format!("/live?have={tag}"), "").1;
        upd.contains("live-1")
    });
    let (layout2, tag2) = tags(&upd);
    assert_ne!(layout2, layout);
    assert!(upd.contains("0 of 100 (0.0 %)"), "{upd}");
    // It grows: the update keeps the layout and brings the running run's section in full,
    // with the new figures.
    append(
        &run,
        &[
            step("solve", 1, 0.0, 10.0, 25, 900.0),
            power(0.0, 10.0, 1000.0),
        ],
    );
    wait_for("the grown run in an update", || {
        upd = get(&s.addr, &format!("/live?have={tag2}"), "").1;
        upd.contains("25 of 100 (25.0 %)")
    });
    assert_eq!(
        tags(&upd).0,
        layout2,
        "same runs, same layout: patched in place"
    );
    let section = upd
        .split("<details class=\"run\" id=\"run-0-1\"")
        .nth(1)
        .unwrap_or_else(|| panic!("the running run's section is not in full: {upd}"));
    assert!(section.starts_with(" open data-rev="), "{section}");
    assert!(section.contains("100 W"), "{section}");
}

/// The live section is rendered again at each poll, not only when a file changed: a writer
/// killed between two records reads as stopped while its file stays as it was.
#[test]
fn a_writer_killed_without_a_change_in_its_file_reads_as_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = std::process::Command::new("sleep")
        .arg("600")
        .spawn()
        .unwrap();
    let pid = writer.id();
    std::fs::write(
        dir.path().join("w.jsonl"),
        format!("{}\n", local_start("w", pid)),
    )
    .unwrap();
    let s = serve(&[dir.path().to_str().unwrap()]);
    let (_, page) = get(&s.addr, "/", "");
    assert!(page.contains(&format!("writer pid {pid} alive")), "{page}");
    let v = get(&s.addr, "/version", "").1;
    writer.kill().unwrap();
    writer.wait().unwrap();
    wait_for("the page to say the writer is gone", || {
        get(&s.addr, "/", "")
            .1
            .contains(&format!("its writer (pid {pid} on this host) is gone"))
    });
    assert_eq!(get(&s.addr, "/version", "").1, v, "the file did not change");
}

/// Many runs: a page shows the newest [50] runs' sections, says how many it does not show and
/// links the other pages; the recurring view still counts every run. The page grows with the
/// runs by one recurring row each, not by a section each.
#[test]
fn a_page_shows_the_newest_runs_and_links_the_older() {
    let dir = tempfile::tempdir().unwrap();
    for k in 0..60 {
        std::fs::write(dir.path().join(format!("r{k:04}.jsonl")), finished("j", k)).unwrap();
    }
    let s = serve(&[dir.path().to_str().unwrap()]);
    let (code, p60) = get(&s.addr, "/", "");
    assert_eq!(code, 200);
    let sections = |p: &str| p.matches("<details class=\"run\"").count();
    assert_eq!(sections(&p60), 50);
    assert!(p60.contains("runs 1 to 50 of 60, newest first"), "{p60}");
    assert!(p60.contains("10 run(s) not shown on this page"), "{p60}");
    assert!(p60.contains("href=\"/?page=2\""), "{p60}");
    assert!(p60.contains("Recurring view: 60 cycles"), "{p60}");
    assert!(p60.contains("j-0059") && !p60.contains(">Run j-0009 "));
    let (_, p2) = get(&s.addr, "/?page=2", "");
    assert_eq!(sections(&p2), 10);
    assert!(
        p2.contains("Run j-0009 ") && !p2.contains("Run j-0010 "),
        "{p2}"
    );
    // Past the last page: the last page; not a number: 400.
    assert_eq!(sections(&get(&s.addr, "/?page=99", "").1), 10);
    assert_eq!(get(&s.addr, "/?page=0", "").0, 400);
    assert_eq!(get(&s.addr, "/?page=x", "").0, 400);

    let v = get(&s.addr, "/version", "").1;
    for k in 60..300 {
        std::fs::write(dir.path().join(format!("r{k:04}.jsonl")), finished("j", k)).unwrap();
    }
    let mut p300 = String::new();
    wait_for("300 runs on the page", || {
        if get(&s.addr, "/version", "").1 == v {
            return false;
        }
        p300 = get(&s.addr, "/", "").1;
        p300.contains("of 300, newest first")
    });
    assert_eq!(sections(&p300), 50);
    assert!(p300.contains("250 run(s) not shown"), "{p300}");
    assert!(p300.contains("Recurring view: 300 cycles"));
    let per_section = p60.len() / 60;
    let per_run = (p300.len() - p60.len()) / 240;
    println!(
        "page: {} bytes with 60 runs, {} with 300: {per_run} bytes per added run ({per_section} per run at 60)",
        p60.len(),
        p300.len()
    );
    assert!(
        per_run * 3 < per_section,
        "the page grows by {per_run} bytes per run"
    );
}

/// 50 clients at once: every one gets its answer (200), whichever path it asks.
#[test]
fn fifty_clients_at_once_all_get_200() {
    let dir = tempfile::tempdir().unwrap();
    for k in 0..100 {
        std::fs::write(dir.path().join(format!("r{k:04}.jsonl")), finished("j", k)).unwrap();
    }
    let s = serve(&[dir.path().to_str().unwrap()]);
    let go = std::sync::Arc::new(std::sync::Barrier::new(50));
    let clients: Vec<_> = (0..50)
        .map(|i| {
            let (addr, go) = (s.addr.clone(), go.clone());
            std::thread::spawn(move || {
                let path = ["/", "/live?have=x", "/version", "/?page=2"][i % 4];
                go.wait();
                let (code, body) = get(&addr, path, "");
                (path, code, body.len())
            })
        })
        .collect();
    for c in clients {
        let (path, code, len) = c.join().unwrap();
        assert_eq!(code, 200, "{path}");
        assert!(len > 0, "{path}");
    }
}

/// The server's idle cost: watching 1,000 small run files, no file changing, no client, it
/// uses a small part of one core (utime + stime of `/proc/<pid>/stat` over about 10 s). The
/// goal is under 1 % (0.83 % measured in a release build); the bound is loose for a debug build
/// on a loaded machine.
#[test]
fn idle_cpu_watching_a_thousand_runs_is_small() {
    let dir = tempfile::tempdir().unwrap();
    for k in 0..1000 {
        std::fs::write(dir.path().join(format!("r{k:04}.jsonl")), finished("j", k)).unwrap();
    }
    let s = serve(&[dir.path().to_str().unwrap()]);
    wait_for("the 1,000 runs read", || {
        get(&s.addr, "/version", "").1.trim().ends_with("-1")
    });
    let cpu_s = || {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", s.child.id())).unwrap();
        let f: Vec<f64> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0.0))
            .collect();
        // utime and stime: fields 14 and 15 of the line, the 12th and 13th after the name.
        (f[11] + f[12]) / rustix::param::clock_ticks_per_second() as f64
    };
    let (c0, t0) = (cpu_s(), Instant::now());
    std::thread::sleep(Duration::from_secs(10));
    let (c1, t1) = (cpu_s(), Instant::now());
    let share = (c1 - c0) / (t1 - t0).as_secs_f64() * 100.0;
    println!("idle CPU watching 1,000 run files: {share:.2} % of one core");
    assert!(share < 5.0, "idle CPU {share:.2} % of one core");
    // Nothing changed, and the server still answers.
    assert!(get(&s.addr, "/version", "").1.trim().ends_with("-1"));
}

/// A child process killed (SIGKILL) and reaped when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn chromium() -> std::path::PathBuf {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH")
                .iter()
                .flat_map(std::env::split_paths)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
        .expect("chromium not found on PATH: apt-get install -y chromium")
}

/// Headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`:
/// it reads commands from its fd 3 and writes answers and events to its fd 4, each a JSON
/// object ended by a NUL byte). `sh` maps our pipes to those descriptors before it `exec`s the
/// browser, so neither a WebSocket client nor `unsafe` is needed. A reader thread hands the
/// messages over, so a browser that stops answering fails the test after a timeout instead of
/// hanging it.
struct Browser {
    child: Child,
    to: std::process::ChildStdin,
    from: std::sync::mpsc::Receiver<serde_json::Value>,
    next: u64,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts the browser and opens `url` in a new page.
    fn open(url: &str) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(r#"exec "$0" "$@" 3<&0 4>&1 0</dev/null 1>/dev/null"#)
            .arg(chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--remote-debugging-pipe",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromium");
        let to = child.stdin.take().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let (tx, from) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            while out.read_until(0, &mut buf).is_ok_and(|n| n > 0) {
                buf.pop_if(|b| *b == 0);
                if let Ok(v) = serde_json::from_slice(&buf)
                    && tx.send(v).is_err()
                {
                    break;
                }
                buf.clear();
            }
        });
        let mut b = Browser {
            child,
            to,
            from,
            next: 0,
            session: String::new(),
            _profile: profile,
        };
        let target = b.call(
            "Target.createTarget",
            serde_json::json!({ "url": url }),
            false,
        );
        let target = target["targetId"].as_str().unwrap().to_owned();
        let attached = b.call(
            "Target.attachToTarget",
            serde_json::json!({ "targetId": target, "flatten": true }),
            false,
        );
        b.session = attached["sessionId"].as_str().unwrap().to_owned();
        b
    }

    /// Sends a command (to the page's session when `page`) and waits for its result.
    fn call(&mut self, method: &str, params: serde_json::Value, page: bool) -> serde_json::Value {
        self.next += 1;
        let id = self.next;
        let mut msg = serde_json::json!({ "id": id, "method": method, "params": params });
        if page {
            msg["sessionId"] = serde_json::json!(self.session);
        }
        let mut bytes = msg.to_string().into_bytes();
        bytes.push(0);
        self.to.write_all(&bytes).unwrap();
        self.to.flush().unwrap();
        let t = Instant::now();
        loop {
            let left = Duration::from_secs(60).saturating_sub(t.elapsed());
            let m = self
                .from
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("no answer to {method} from chromium: {e}"));
            if m["id"].as_u64() == Some(id) {
                assert!(m.get("error").is_none(), "{method}: {m}");
                return m["result"].clone();
            }
        }
    }

    /// Evaluates `expr` in the page; its value (JSON).
    fn eval(&mut self, expr: &str) -> serde_json::Value {
        let r = self.call(
            "Runtime.evaluate",
            serde_json::json!({ "expression": expr, "returnByValue": true }),
            true,
        );
        assert!(r.get("exceptionDetails").is_none(), "{expr}: {r}");
        r["result"]["value"].clone()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the test reads of the page: the live figures of the first running run, the update
/// status, the count of in-place updates, and what a reload would lose (a variable set by the
/// test, an opened `<details>`, the scroll position).
const PAGE_STATE: &str = r#"(function(){
var q=function(s){var e=document.querySelector(s);return e?e.textContent:null;};
var m=document.querySelector('#run-0-0 details.method');
return {items:q('#live td.items'),energy:q('#live td.energy'),state:q('#live .state'),
note:q('#live p.note'),status:q('#live-status'),card:q('#run-0-0 .headline .card .v'),
updates:+((document.documentElement&&document.documentElement.getAttribute('data-updates'))||0),
kept:window.__carina_kept||null,open:m?m.open:null,scroll:window.scrollY};
})()"#;

/// The issue's scenario in headless Chromium (ignored by default: it needs `chromium` on PATH
/// and the `scenario_db` example, which `cargo test` builds): the page open while
/// `scenario_db` writes a run; the items, the energy and the run's cards advance in the DOM
/// through in-place updates (a variable set in the page, an opened `<details>` and the scroll
/// position survive them: no reload); the writer killed with SIGKILL, the live section marks
/// the run stopped and incomplete; the server killed, the page says it is unreachable; a
/// server started again on the same address, the page reconnects by itself and shows the same
/// figures, still without a reload. Then a second run: it appears (the page reloads once: a
/// new run is a new structure), and turns complete in place.
#[test]
#[ignore = "needs chromium on PATH and the scenario_db example (cargo test builds it)"]
fn serve_browser_a_live_run_its_kill_and_a_server_restart() {
    let exe = Path::new(env!("CARGO_BIN_EXE_carina"))
        .parent()
        .unwrap()
        .join("examples/scenario_db");
    assert!(
        exe.is_file(),
        "{} is missing: cargo build --example scenario_db",
        exe.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let mut writer = Killed(
        std::process::Command::new(&exe)
            .env("CARINA_DIR", &runs)
            .args(["--scenarios", "1000000", "--threads", "1", "--batch", "8"])
            .arg("--out")
            .arg(dir.path().join("db.csv"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for("scenario_db's run file", || {
        std::fs::read_dir(runs.join("scenario-db")).is_ok_and(|mut d| d.next().is_some())
    });
    let runs_arg = runs.to_str().unwrap();
    let s = serve(&[runs_arg, "--total-items", "1000000"]);
    let addr = s.addr.clone();
    let mut b = Browser::open(&format!("http://{addr}/"));
    let mut st = serde_json::Value::Null;
    // Items done: the number before " of 1000000".
    let items = |st: &serde_json::Value| -> u64 {
        st["items"]
            .as_str()
            .and_then(|i| i.strip_suffix(")")?.split(" of ").next()?.parse().ok())
            .unwrap_or(0)
    };
    // (The `generate_grid` step, first to end, carries every scenario as its items: wait for
    // the simulation's batches.)
    wait_for("the live run on the page", || {
        st = b.eval(PAGE_STATE);
        st["status"] == "live" && (1..1_000_000).contains(&items(&st))
    });
    b.eval(
        "window.__carina_kept='yes';document.querySelector('#run-0-0 details.method').open=true;\
         window.scrollTo(0,300);window.scrollY",
    );
    let before = b.eval(PAGE_STATE);
    assert_eq!(before["open"], true, "{before}");
    assert_eq!(
        before["scroll"], 300,
        "the page is long enough to scroll: {before}"
    );
    wait_for(
        "items, energy and the run's card to advance in place",
        || {
            st = b.eval(PAGE_STATE);
            items(&st) > items(&before)
                && st["energy"] != before["energy"]
                && st["card"] != before["card"]
                && st["updates"].as_u64() > before["updates"].as_u64()
        },
    );
    println!("advanced: {before} -> {st}");
    assert_eq!(st["kept"], "yes", "the page was reloaded: {st}");
    assert_eq!(st["open"], true, "{st}");
    assert_eq!(st["scroll"], 300, "{st}");
    assert_eq!(st["state"], "running", "{st}");

    // kill -9 of the writer: no run_end; the live section says so.
    writer.0.kill().unwrap();
    writer.0.wait().unwrap();
    wait_for("the run marked stopped", || {
        st = b.eval(PAGE_STATE);
        st["state"] == "stopped"
    });
    assert!(
        st["note"]
            .as_str()
            .unwrap()
            .starts_with("incomplete: no run_end"),
        "{st}"
    );
    assert_eq!(st["kept"], "yes", "{st}");
    // The last figures, once the last bytes written are read.
    std::thread::sleep(Duration::from_secs(3));
    let last = b.eval(PAGE_STATE);

    // The server goes away: the page says so and keeps asking.
    drop(s);
    wait_for("the page to notice the server is gone", || {
        st = b.eval(PAGE_STATE);
        st["status"] == "server unreachable; retrying"
    });
    // A new server on the same address: the page reconnects by itself, brought up to date in
    // place (the new server's tags differ), with the same figures.
    let s2 = serve_at(&[runs_arg, "--total-items", "1000000"], &addr);
    assert_eq!(s2.addr, addr);
    wait_for("the page to reconnect", || {
        st = b.eval(PAGE_STATE);
        st["status"] == "live" && st["updates"].as_u64() > last["updates"].as_u64()
    });
    println!("after the restart: {st}");
    for k in ["items", "energy", "card", "state", "kept", "open", "scroll"] {
        assert_eq!(st[k], last[k], "{k}: {last} -> {st}");
    }

    // A second cycle: a new run is a new page structure (the page reloads once), and its
    // turning complete is an in-place update.
    let mut second = Killed(
        std::process::Command::new(&exe)
            .env("CARINA_DIR", &runs)
            .args(["--scenarios", "4000", "--seconds", "10", "--threads", "1"])
            .args(["--batch", "8"])
            .arg("--out")
            .arg(dir.path().join("db2.csv"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let badge = "(function(){var b=document.querySelector('#run-0-1 summary .badge');\
                 return b?b.textContent:null;})()";
    wait_for("the second run, running, on the page", || {
        b.eval(badge) == "incomplete"
    });
    b.eval("window.__carina_kept='second';1");
    assert!(second.0.wait().unwrap().success(), "scenario_db failed");
    wait_for("the second run to turn complete", || {
        b.eval(badge) == "complete"
    });
    st = b.eval(PAGE_STATE);
    assert_eq!(st["kept"], "second", "reloaded for the run_end: {st}");
    assert_eq!(st["state"], "stopped", "the first run: {st}");
}
