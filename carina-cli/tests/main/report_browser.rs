//! `carina report` in a real browser (headless Chromium). Ignored by default: it needs
//! `chromium` (or `chromium-browser`) on PATH.
//!
//! ```text
//! apt-get update && apt-get install -y chromium
//! cargo test -p carina-cli --test main -- --ignored report_browser
//! ```
//!
//! How the no-network check works. The report carries a Content-Security-Policy meta tag
//! (`default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:`),
//! so the browser refuses any fetch other than inline styles, inline scripts and data: images.
//! The test loads a copy of the report with two probe scripts added: one at the very top of
//! `<head>` that records every `securitypolicyviolation` event (each attempted request the CSP
//! blocked, with its URL), one at the end that, on `load`, writes those URLs and every
//! Resource Timing entry (`performance.getEntriesByType('resource')`: each subresource the page
//! actually fetched, whatever its scheme) into attributes of `<html>`. Chromium's `--dump-dom`
//! prints the DOM after load, and the test asserts both lists are empty. A positive control
//! page (the same report plus an `<img>` and a stylesheet `<link>` pointing at http(s) URLs)
//! must show up in the probe, so a probe that silently stops working fails the test instead of
//! passing it. Chromium runs with background networking, component updates and sync disabled
//! and a fresh profile, so nothing else competes. The same DOM dump checks that the charts
//! (inline `<svg>` with the power and cumulative paths) and the tables are there, and that the
//! inline sorting script ran (it adds the `sortable` class to the headers) under the CSP.

use carina_cli::load::load_runs;
use carina_cli::report::render;
use std::path::{Path, PathBuf};
use std::process::Command;

fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Some(dir) = std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .find(|d| d.join(name).is_file())
        {
            return dir.join(name);
        }
    }
    panic!("chromium not found on PATH: apt-get update && apt-get install -y chromium");
}

fn chromium_cmd(profile: &Path) -> Command {
    let mut c = Command::new(chromium());
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--disable-default-apps",
        "--no-first-run",
        "--no-default-browser-check",
        "--hide-scrollbars",
    ]);
    c.arg(format!("--user-data-dir={}", profile.display()));
    c
}

fn dump_dom(page: &Path, profile: &Path) -> String {
    let out = chromium_cmd(profile)
        .arg("--virtual-time-budget=3000")
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    assert!(out.status.success(), "chromium failed: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const PROBE_HEAD: &str = "<script>window.__blocked=[];document.addEventListener('securitypolicyviolation',function(e){window.__blocked.push(e.blockedURI+' ('+e.violatedDirective+')');});</script>";
const PROBE_END: &str = "<script>window.addEventListener('load',function(){var r=performance.getEntriesByType('resource').map(function(e){return e.name;});document.documentElement.setAttribute('data-resources',r.join(' '));document.documentElement.setAttribute('data-blocked',window.__blocked.join(' '));document.documentElement.setAttribute('data-probe','done');});</script>";

fn with_probe(html: &str, extra_body: &str) -> String {
    let html = html.replacen("<head>", &format!("<head>{PROBE_HEAD}"), 1);
    html.replacen("</body>", &format!("{extra_body}{PROBE_END}</body>"), 1)
}

fn attr<'a>(dom: &'a str, name: &str) -> &'a str {
    let key = format!("{name}=\"");
    let i = dom
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in the dumped DOM: the probe did not run"));
    let rest = &dom[i + key.len()..];
    &rest[..rest.find('"').unwrap()]
}

fn fixture_runs(dir: &Path) -> Vec<PathBuf> {
    let start = |id: &str, at: &str| {
        format!(
            r#"{{"type":"run_start","schema":1,"run_id":"{id}","job":"nightly <b>","host":"node7","pid":1,"started_at":"{at}","energy_sources":[{{"name":"model","kind":"estimated","source":"model","domains":["cpu"]}}],"carbon":{{"g_per_kwh":400.0,"zone":"WORLD","source":"Ember"}},"steps":"all","sample_interval_s":0.1,"scope":"process","carina_version":"0.1.0"}}"#
        )
    };
    let step = |name: &str, id: u64, parent: &str, a: f64, b: f64, e: f64, se: f64| {
        format!(
            r#"{{"type":"step","name":"{name}","id":{id},"parent":{parent},"thread":0,"start_s":{a},"end_s":{b},"items":10,"status":"ok","energy_j":{e},"self_energy_j":{se},"co2e_g":0.001}}"#
        )
    };
    let mut paths = Vec::new();
    for (k, scale) in [1.0, 1.2, 0.9].iter().enumerate() {
        let mut lines = vec![
            start(&format!("r{k}"), &format!("2026-11-2{k}T05:00:00Z")),
            r#"{"type":"control","t_s":3.0,"at":"2026-11-28T05:00:03Z","policy":"throttle","mode":"peak","allowed":1,"nominal":2}"#.into(),
        ];
        for i in 0..50u64 {
            let a = i as f64 * 0.2;
            lines.push(step(
                "<script>alert(1)</script>",
                i + 2,
                "1",
                a,
                a + 0.2,
                scale * (1.0 + (i % 7) as f64),
                scale * (1.0 + (i % 7) as f64),
            ));
        }
        lines.push(step("job", 1, "null", 0.0, 10.0, scale * 200.0, 0.0));
        lines.push(format!(
            r#"{{"type":"run_end","ended_at":"2026-11-28T05:13:00Z","wall_s":10.0,"energy_j":{},"unattributed_j":0.0,"co2e_g":0.02,"items":500,"steps":51,"dropped":0,"energy_kind":"estimated"}}"#,
            scale * 200.0
        ));
        let p = dir.join(format!("r{k}.jsonl"));
        std::fs::write(&p, lines.join("\n") + "\n").unwrap();
        paths.push(p);
    }
    paths
}

#[test]
#[ignore = "needs chromium on PATH"]
fn renders_in_chromium_without_network_requests() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("profile");
    let runs = load_runs(&fixture_runs(dir.path())).unwrap();
    let html = render(&runs);

    let page = dir.path().join("report.html");
    std::fs::write(&page, with_probe(&html, "")).unwrap();
    let dom = dump_dom(&page, &profile);
    assert_eq!(attr(&dom, "data-probe"), "done");
    assert_eq!(
        attr(&dom, "data-resources"),
        "",
        "the page fetched resources"
    );
    assert_eq!(attr(&dom, "data-blocked"), "", "the page tried to fetch");
    // Charts, tables, escaping, and the inline script ran under the CSP.
    assert!(
        dom.matches("<svg").count() >= 4,
        "timeline per run + cycle chart"
    );
    assert!(dom.contains("class=\"power\""));
    assert!(dom.contains("class=\"cumulative\""));
    assert!(dom.contains("<table class=\"sortable steps\""));
    assert!(dom.contains("<table class=\"tree\""));
    assert!(dom.contains("Recurring view: 3 cycles"));
    assert!(dom.contains("sortable\""), "sorting script ran");
    assert!(
        dom.contains("th class=\"l sortable\""),
        "sorting script ran"
    );
    assert!(!dom.contains("<script>alert(1)"));
    assert!(dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));

    // Positive control: the probe sees attempted requests.
    let control = dir.path().join("control.html");
    std::fs::write(
        &control,
        with_probe(
            &html,
            "<img src=\"http://192.0.2.1/pixel.png\"><link rel=\"stylesheet\" href=\"https://192.0.2.1/x.css\">",
        ),
    )
    .unwrap();
    let dom = dump_dom(&control, &profile);
    let blocked = attr(&dom, "data-blocked");
    assert!(
        blocked.contains("192.0.2.1"),
        "probe missed requests: {blocked:?}"
    );
}
