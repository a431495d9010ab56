//! `carina serve`'s live section end to end: the forecast with its interval and method, the
//! step tree so far, the next peak window from the governor's `control` record, and the hosts
//! of one job running at once.
#![cfg(feature = "serve")]

use crate::common::{carina_command, power, run_start, step};
use crate::serve::{get, serve};
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

/// The page at `/`.
fn page(addr: &str) -> String {
    let (code, body) = get(addr, "/", "");
    assert_eq!(code, 200, "{body}");
    body
}

/// Waits (generously: the server polls once a second, the machine may be slow) until the page
/// satisfies `f`, and returns it.
fn page_when(addr: &str, what: &str, f: impl Fn(&str) -> bool) -> String {
    let t = Instant::now();
    loop {
        let p = page(addr);
        if f(&p) {
            return p;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}: {p}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A running run of `job` on `host`: 48 one-second `solve` steps under a `cycle` step still
/// open, items alternating 2 and 6, a power window a second, and a throttle governor's control
/// record naming the next peak window.
fn running(dir: &Path, host: &str, watts: f64) {
    let mut start: serde_json::Value = serde_json::from_str(&run_start("nightly", "c1")).unwrap();
    start["host"] = json!(host);
    let mut lines = vec![
        start.to_string(),
        json!({
            "type": "control", "t_s": 0.0, "at": "2026-11-28T05:12:00Z", "policy": "throttle",
            "mode": "off-peak", "allowed": 8, "nominal": 8, "reason": "start; off-peak",
            "next_peak": {"start": "2099-01-02T08:00:00Z", "end": "2099-01-02T20:00:00Z"}
        })
        .to_string(),
    ];
    for i in 1..=48u64 {
        let (a, b) = ((i - 1) as f64, i as f64);
        let mut s: serde_json::Value = serde_json::from_str(&step(
            "solve",
            i + 1,
            a,
            b - 0.5,
            if i % 2 == 0 { 6 } else { 2 },
            watts * 0.5,
        ))
        .unwrap();
        s["parent"] = json!(1);
        lines.push(s.to_string());
        lines.push(power(a, b, watts));
    }
    let text = lines.join("\n") + "\n";
    std::fs::write(dir.join(format!("{host}.jsonl")), text).unwrap();
}

#[test]
fn the_live_section_shows_the_interval_the_tree_the_next_peak_and_the_hosts() {
    let dir = tempfile::tempdir().unwrap();
    running(dir.path(), "node-a", 100.0);
    let s = serve(&[dir.path().to_str().unwrap(), "--total-items", "1000"]);
    let p = page_when(&s.addr, "the first run", |p| {
        p.contains("Job nightly, run c1")
    });
    // The forecast: 192 items in 48 s, 808 remaining at 4 items/s; an interval, and the method.
    assert!(
        p.contains("class=\"l fc-runtime\">4.17 min  ("),
        "no runtime interval: {p}"
    );
    assert!(
        p.contains("items-rate extrapolation: elapsed + remaining 808 items at the average items/s so far (192 items in 48.0 s); ~95 % interval from the spread of the rate over 16 equal time buckets"),
        "{p}"
    );
    assert!(
        p.contains("class=\"l fc-finish\">2026-11-28T05:16:10Z  ("),
        "{p}"
    );
    // The next peak window, from the control record.
    assert!(
        p.contains("2099-01-02T08:00:00Z .. 2099-01-02T20:00:00Z: starts in"),
        "{p}"
    );
    // The step tree so far: the `solve` steps wait for their parent, still open.
    assert!(p.contains("Step tree so far (2 name path(s))"), "{p}");
    assert!(p.contains("└ solve</td><td>48</td>"), "{p}");
    // A second host joins the cycle: a row each and the total.
    running(dir.path(), "node-b", 50.0);
    let p = page_when(&s.addr, "the second host", |p| p.contains("2 hosts"));
    assert!(
        p.contains("<b>total</b></td><td>2</td><td>2</td><td class=\"items\">384</td>"),
        "{p}"
    );
    // 48 s at 100 W and at 50 W: 4,800 J + 2,400 J; 150 W now.
    assert!(p.contains("<td class=\"energy\">2.00 Wh</td>"), "{p}");
    assert!(p.contains("<td class=\"power\">150 W</td>"), "{p}");
}

/// `--schedule FILE`: the next peak window comes from the schedule (computed at each render),
/// whatever the run's control records say; an unreadable schedule is refused at start, exit 2.
#[test]
fn a_schedule_given_to_serve_names_the_next_peak_window() {
    let dir = tempfile::tempdir().unwrap();
    running(dir.path(), "node-a", 100.0);
    let sched = dir.path().join("peak.toml");
    // Every day but one minute: the window is current (or, at 23:59 UTC, a minute ahead).
    std::fs::write(
        &sched,
        "timezone = \"UTC\"\n[[peak]]\ndays = \"Mon-Sun\"\nhours = \"00:00-23:59\"\n",
    )
    .unwrap();
    let s = serve(&[
        dir.path().join("node-a.jsonl").to_str().unwrap(),
        "--schedule",
        sched.to_str().unwrap(),
    ]);
    let p = page_when(&s.addr, "the run", |p| p.contains("Job nightly, run c1"));
    assert!(p.contains("(from --schedule)"), "{p}");
    assert!(
        p.contains("now, until ") || p.contains(": starts in 1"),
        "{p}"
    );
    assert!(
        !p.contains("2099-01-02T08:00:00Z"),
        "the record's window shown: {p}"
    );
    drop(s);

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "timezone = \"Nowhere/City\"\n").unwrap();
    let out = carina_command()
        .args(["serve", "--addr", "127.0.0.1:0", "--schedule"])
        .arg(&bad)
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--schedule") && err.contains("bad.toml"),
        "{err}"
    );
}
