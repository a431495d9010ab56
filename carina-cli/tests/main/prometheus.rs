//! `carina run --prometheus HOST:PORT`: the `/metrics` endpoint while the command runs.
#![cfg(feature = "prometheus")]

use crate::common::{Busy, carina_command};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A port free on 127.0.0.1 a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET path` with a plain TcpStream; (status line, headers and body).
fn get(port: u16, path: &str) -> std::io::Result<(String, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    Ok((head.to_owned(), body.to_owned()))
}

/// The value of the one series of `name` in `body` (its labels checked by the caller).
fn series<'a>(body: &'a str, name: &str) -> Option<(&'a str, f64)> {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.starts_with(&format!("{name}{{")))
        .map(|l| {
            let (series, v) = l.rsplit_once(' ').unwrap();
            (series, v.parse().unwrap())
        })
}

/// One sample of the text exposition format: metric name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses `text` as the text exposition format 0.0.4, as strictly as Prometheus's own parser
/// reads it: `# HELP` / `# TYPE` lines (a known type, before the family's samples, once),
/// metric and label names of the allowed characters, label values with only the escapes `\\`,
/// `\"` and `\n`, no label twice, no series twice, a float value (`NaN`, `+Inf`, `-Inf`
/// included) and an optional integer timestamp. An error names the line.
fn parse_exposition(text: &str) -> Result<Vec<Sample>, String> {
    fn name_ok(n: &str, colon: bool) -> bool {
        let mut cs = n.chars();
        cs.next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':'))
            && cs.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':'))
    }
    fn value(v: &str) -> Option<f64> {
        match v {
            "NaN" => Some(f64::NAN),
            "+Inf" => Some(f64::INFINITY),
            "-Inf" => Some(f64::NEG_INFINITY),
            _ => v.parse().ok().filter(|x: &f64| x.is_finite()),
        }
    }
    let mut typed: HashMap<String, String> = HashMap::new();
    let mut sampled: HashSet<String> = HashSet::new();
    let mut series: HashSet<String> = HashSet::new();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let err = |why: &str| format!("line {}: {why}: {line:?}", i + 1);
        if line.trim().is_empty() {
            continue;
        }
        if let Some(c) = line.strip_prefix('#') {
            let mut w = c.trim_start().splitn(3, ' ');
            match (w.next(), w.next(), w.next()) {
                (Some("HELP"), Some(n), _) if name_ok(n, true) => {}
                (Some("TYPE"), Some(n), Some(t)) if name_ok(n, true) => {
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&t) {
                        return Err(err("unknown type"));
                    }
                    if sampled.contains(n) || typed.insert(n.to_owned(), t.to_owned()).is_some() {
                        return Err(err("TYPE after samples or twice"));
                    }
                }
                (Some("HELP" | "TYPE"), _, _) => return Err(err("bad HELP/TYPE")),
                _ => {}
            }
            continue;
        }
        let end = line.find(['{', ' ']).ok_or_else(|| err("no value"))?;
        let name = &line[..end];
        if !name_ok(name, true) {
            return Err(err("bad metric name"));
        }
        let mut rest = &line[end..];
        let mut labels = BTreeMap::new();
        if let Some(mut r) = rest.strip_prefix('{') {
            loop {
                r = r.trim_start();
                if let Some(after) = r.strip_prefix('}') {
                    r = after;
                    break;
                }
                let eq = r.find('=').ok_or_else(|| err("label without ="))?;
                let lname = r[..eq].trim();
                if !name_ok(lname, false) || lname.starts_with("__") {
                    return Err(err("bad label name"));
                }
                let mut chars = r[eq + 1..].trim_start().char_indices();
                let body = r[eq + 1..].trim_start();
                if chars.next().map(|(_, c)| c) != Some('"') {
                    return Err(err("label value not quoted"));
                }
                let mut v = String::new();
                let mut closed = None;
                while let Some((j, c)) = chars.next() {
                    match c {
                        '"' => {
                            closed = Some(j);
                            break;
                        }
                        '\\' => match chars.next().map(|(_, e)| e) {
                            Some('\\') => v.push('\\'),
                            Some('"') => v.push('"'),
                            Some('n') => v.push('\n'),
                            _ => return Err(err("bad escape")),
                        },
                        '\n' => return Err(err("raw newline")),
                        c => v.push(c),
                    }
                }
                let j = closed.ok_or_else(|| err("unterminated label value"))?;
                if labels.insert(lname.to_owned(), v).is_some() {
                    return Err(err("label twice"));
                }
                r = body[j + 1..].trim_start();
                if let Some(after) = r.strip_prefix(',') {
                    r = after;
                } else if !r.starts_with('}') {
                    return Err(err("expected , or }"));
                }
            }
            rest = r;
        }
        let mut fields = rest.split_whitespace();
        let v = fields
            .next()
            .and_then(value)
            .ok_or_else(|| err("bad value"))?;
        if let Some(ts) = fields.next()
            && ts.parse::<i64>().is_err()
        {
            return Err(err("bad timestamp"));
        }
        if fields.next().is_some() || !rest.starts_with(' ') {
            return Err(err("trailing text"));
        }
        if !series.insert(format!("{name}{labels:?}")) {
            return Err(err("series twice"));
        }
        sampled.insert(name.to_owned());
        out.push(Sample {
            name: name.to_owned(),
            labels,
            value: v,
        });
    }
    Ok(out)
}

/// Checks that `body` parses, that every series has exactly the labels `carina_job` (= `job`),
/// `run_id`, `host` (and `kind` on energy and CO2e), and none that Prometheus sets on a scrape
/// (`job`, `instance`: scraped, they would come out as `exported_job` / `exported_instance`).
fn check_exposition(body: &str, job: &str) -> Vec<Sample> {
    let samples = parse_exposition(body).unwrap_or_else(|e| panic!("{e}\n{body}"));
    assert!(!samples.is_empty(), "{body}");
    for s in &samples {
        let names: Vec<&str> = s.labels.keys().map(String::as_str).collect();
        let kind = s.name.starts_with("carina_run_energy") || s.name.starts_with("carina_run_co2e");
        let want: &[&str] = if kind {
            &["carina_job", "host", "kind", "run_id"]
        } else {
            &["carina_job", "host", "run_id"]
        };
        assert_eq!(names, want, "{s:?}");
        assert_eq!(s.labels["carina_job"], job, "{s:?}");
        assert!(s.value >= 0.0, "{s:?}");
    }
    // The raw text too: every `job="` is a `carina_job="`.
    assert_eq!(
        body.matches("job=\"").count(),
        body.matches("carina_job=\"").count(),
        "{body}"
    );
    assert!(!body.contains("instance="), "{body}");
    samples
}

#[test]
fn the_exposition_parser_rejects_what_prometheus_rejects() {
    let ok =
        "# HELP a_total x\n# TYPE a_total counter\na_total{b=\"c\\\"d\",e=\"\"} 1.5 123\nb NaN\n";
    let got = parse_exposition(ok).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].labels["b"], "c\"d");
    for bad in [
        "a{b=\"c} 1",
        "a{1b=\"c\"} 1",
        "a{__b=\"c\"} 1",
        "a{b=\"c\",b=\"d\"} 1",
        "a{b=c} 1",
        "a{b=\"\\x\"} 1",
        "a 1\na 2",
        "a one",
        "a 1 2 3",
        "1a 1",
        "a 1\n# TYPE a counter",
        "# TYPE a countr\na 1",
    ] {
        assert!(parse_exposition(bad).is_err(), "accepted {bad:?}");
    }
}

#[test]
fn metrics_are_served_while_the_command_runs() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    // Busy until the test has scraped what it needs: two power windows, about 1 s each, however
    // late they come on a loaded machine.
    let busy = Busy::new(dir.path());
    let mut child = carina_command()
        .arg("run")
        .arg("--dir")
        .arg(dir.path())
        .args([
            "--job",
            "prom-job",
            "--prometheus",
            &addr,
            "--",
            "sh",
            "-c",
            &busy.script(),
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The endpoint is announced (and bound) before the command starts.
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    err.read_line(&mut first).unwrap();
    assert!(
        first.contains(&format!("metrics at http://{addr}/metrics")),
        "{first}"
    );
    let rest = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });

    // Wait for the first power window: the energy series appears with it.
    let t0 = Instant::now();
    let (head, body1) = loop {
        let (head, body) = get(port, "/metrics").unwrap();
        if series(&body, "carina_run_energy_joules_total").is_some_and(|(_, e)| e > 0.0) {
            break (head, body);
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no energy after 60 s:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    for name in [
        "carina_run_energy_joules_total",
        "carina_run_co2e_grams_total",
        "carina_run_wall_time_seconds_total",
    ] {
        assert!(body1.contains(&format!("# TYPE {name} counter")), "{body1}");
    }
    assert!(
        body1.contains("# TYPE carina_run_power_watts gauge"),
        "{body1}"
    );
    check_exposition(&body1, "prom-job");
    let (labels, e1) = series(&body1, "carina_run_energy_joules_total").unwrap();
    assert!(labels.contains("carina_job=\"prom-job\""), "{labels}");
    assert!(labels.contains("run_id=\""), "{labels}");
    assert!(labels.contains("host=\""), "{labels}");
    assert!(
        labels.contains("kind=\"measured\"") || labels.contains("kind=\"estimated\""),
        "{labels}"
    );
    assert!(e1 > 0.0, "{body1}");
    let (_, w1) = series(&body1, "carina_run_wall_time_seconds_total").unwrap();
    let (plabels, _) = series(&body1, "carina_run_power_watts").unwrap();
    assert!(plabels.contains("carina_job=\"prom-job\""), "{plabels}");

    // Scrapes until the next window: the counters grow.
    let t1 = Instant::now();
    let (body2, e2, w2) = loop {
        std::thread::sleep(Duration::from_millis(100));
        let (_, body) = get(port, "/metrics").unwrap();
        let (_, e) = series(&body, "carina_run_energy_joules_total").unwrap();
        let (_, w) = series(&body, "carina_run_wall_time_seconds_total").unwrap();
        assert!(
            e >= e1 && w >= w1,
            "a counter went down: {e1} J, {w1} s, then:\n{body}"
        );
        if e > e1 {
            break (body, e, w);
        }
        assert!(
            t1.elapsed() < Duration::from_secs(60),
            "energy still {e1} after 60 s:\n{body}"
        );
    };
    assert!(e2 > e1, "energy {e1} then {e2}:\n{body2}");
    assert!(w2 > w1, "wall time {w1} then {w2}");
    let (_, c2) = series(&body2, "carina_run_co2e_grams_total").unwrap();
    assert!(c2 > 0.0, "{body2}");

    // Other paths: 404.
    let (head, _) = get(port, "/").unwrap();
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");

    drop(busy);
    let status = child.wait().unwrap();
    let rest = rest.join().unwrap();
    assert!(status.success(), "{rest}");
    // Closed once the command has exited.
    assert!(get(port, "/metrics").is_err(), "still served after the run");
}

#[test]
fn a_taken_port_is_a_usage_error_and_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let marker = dir.path().join("ran");
    let out = carina_command()
        .arg("run")
        .arg("--dir")
        .arg(dir.path())
        .args(["--job", "taken", "--prometheus", &addr, "--", "touch"])
        .arg(&marker)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--prometheus"), "{err}");
    assert!(!marker.exists(), "the command ran");
}

#[test]
fn the_final_figures_are_pushed_once() {
    let dir = tempfile::tempdir().unwrap();
    // A stand-in Pushgateway: answers one request 200 and hands it back.
    let gw = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", gw.local_addr().unwrap());
    let got = std::thread::spawn(move || {
        let (s, _) = gw.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut r = BufReader::new(s);
        let mut head = String::new();
        let mut len = 0;
        loop {
            let mut l = String::new();
            r.read_line(&mut l).unwrap();
            if let Some(v) = l.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
            head.push_str(&l);
            if l == "\r\n" || l.is_empty() {
                break;
            }
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body).unwrap();
        r.get_mut()
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .unwrap();
        (head, String::from_utf8(body).unwrap())
    });
    let out = carina_command()
        .arg("run")
        .arg("--dir")
        .arg(dir.path())
        .args([
            "--job",
            "pushed",
            "--prometheus-push",
            &url,
            "--",
            "sleep",
            "0.3",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let (head, body) = got.join().unwrap();
    assert!(
        head.starts_with("PUT /metrics/job/pushed/instance/"),
        "{head}"
    );
    assert!(err.contains("pushed    metrics to"), "{err}");
    check_exposition(&body, "pushed");
    let (labels, e) = series(&body, "carina_run_energy_joules_total").unwrap();
    assert!(labels.contains("carina_job=\"pushed\""), "{labels}");
    assert!(e >= 0.0);
    assert!(body.contains("carina_run_running{"), "{body}");
    let (_, running) = series(&body, "carina_run_running").unwrap();
    assert_eq!(running, 0.0);
}
