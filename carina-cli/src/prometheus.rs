//! Prometheus metrics of `carina run` (feature `prometheus`, off by default).
//!
//! - `--prometheus ADDR` serves `GET /metrics` in the text exposition format 0.0.4
//!   (`text/plain; version=0.0.4`) while the command runs: the endpoint is bound before the
//!   command starts (a taken port stops nothing half-way: exit 2) and closed when the command
//!   has exited. Encoding: the `prometheus` crate (no protobuf); serving: `tiny_http`.
//! - `--prometheus-push URL` sends the final figures once, after the run file is finished, to a
//!   Pushgateway: `PUT URL/metrics/job/<job>/instance/<host>` with the same text (`ureq`, no
//!   TLS: an `http://` URL). A failed push is a warning; the exit status stays the command's.
//!
//! The figures are those of the live line: the run file's own `power` records as its sink sees
//! them (so they lag by at most one window, about a second), elapsed time since the command
//! started, and, when a child that links Carina writes `<run_id>.child-<pid>.jsonl` files, the
//! step records and items they hold so far ([`ChildTail`]).
//!
//! Metrics (every series has the labels `carina_job`, `run_id` and `host`). No series carries
//! `job` or `instance`: Prometheus sets those on every scraped series from its scrape config,
//! and a scraped label of the same name would be renamed `exported_job` / `exported_instance`
//! (or, with `honor_labels: true`, would replace the target's). The names are those the
//! `carina-otel` sink's metrics get from an OpenTelemetry Collector's `prometheus` exporter
//! (docs/FLEET.md), so one dashboard serves both; the labels differ (the collector turns
//! `service.name` into `job`, the run id into `instance`, `carina.energy.kind` into
//! `carina_energy_kind`).
//!
//! | metric | type | what |
//! |---|---|---|
//! | `carina_run_energy_joules_total{kind}` | counter | the run's energy so far, J; `kind` = `measured` or `estimated` |
//! | `carina_run_co2e_grams_total{kind}` | counter | its CO2e so far, g |
//! | `carina_run_wall_time_seconds_total` | counter | time since the command started, s |
//! | `carina_run_power_watts` | gauge | mean power of the last closed `power` window, W |
//! | `carina_run_running` | gauge | 1 while the command runs, 0 in the final push |
//! | `carina_run_steps_total` | counter | step records written by Carina-linked children (only when there are such children) |
//! | `carina_run_items_total` | counter | their items: the largest per-step-name item total (only then too) |

use carina_runtime::record::EnergyKind;
use carina_runtime::units::{GramsCo2e, Joules, Seconds, Watts};
use prometheus::{Encoder, Opts, Registry, TextEncoder};
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// The content type of the text exposition format 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The labels every series carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labels {
    /// The job name (the `carina_job` label).
    pub job: String,
    /// The run id.
    pub run_id: String,
    /// The host name (as in `run_start.host`).
    pub host: String,
}

/// The figures of one scrape or push.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Snapshot {
    /// Energy so far.
    pub energy: Joules,
    /// CO2e so far.
    pub co2e: GramsCo2e,
    /// Mean power of the last closed window.
    pub power: Watts,
    /// The kind of the run's energy (the `kind` label); `None` before the run has started
    /// measuring (the energy and CO2e series are then left out).
    pub kind: Option<EnergyKind>,
    /// Time since the command started.
    pub elapsed: Seconds,
    /// Whether the command is still running.
    pub running: bool,
    /// Step records and items of Carina-linked children, when there are any.
    pub steps_items: Option<(u64, u64)>,
}

/// The labels of every series, in this order, then `kind` where there is one. Not `job` nor
/// `instance`: those are Prometheus's target labels (see the module documentation).
const LABELS: [&str; 3] = ["carina_job", "run_id", "host"];

fn gauge(
    reg: &Registry,
    labels: &Labels,
    name: &str,
    help: &str,
    v: f64,
) -> prometheus::Result<()> {
    let g = prometheus::GaugeVec::new(Opts::new(name, help), &LABELS)?;
    g.with_label_values(&[&labels.job, &labels.run_id, &labels.host])
        .set(v);
    reg.register(Box::new(g))
}

fn counter(
    reg: &Registry,
    labels: &Labels,
    name: &str,
    help: &str,
    kind: Option<&str>,
    v: f64,
) -> prometheus::Result<()> {
    let v = if v.is_finite() { v.max(0.0) } else { 0.0 };
    let mut names = LABELS.to_vec();
    let mut values = vec![labels.job.as_str(), &labels.run_id, &labels.host];
    if let Some(k) = kind {
        names.push("kind");
        values.push(k);
    }
    let c = prometheus::CounterVec::new(Opts::new(name, help), &names)?;
    c.with_label_values(&values).inc_by(v);
    reg.register(Box::new(c))
}

/// The metrics of `s` in the text exposition format 0.0.4.
pub fn encode(labels: &Labels, s: &Snapshot) -> String {
    let build = || -> prometheus::Result<String> {
        let reg = Registry::new();
        if let Some(kind) = s.kind.map(EnergyKind::as_str) {
            counter(
                &reg,
                labels,
                "carina_run_energy_joules_total",
                "Energy of the run so far (its scope's share of the host), joules.",
                Some(kind),
                s.energy.0,
            )?;
            counter(
                &reg,
                labels,
                "carina_run_co2e_grams_total",
                "CO2e of the run so far, grams.",
                Some(kind),
                s.co2e.0,
            )?;
            gauge(
                &reg,
                labels,
                "carina_run_power_watts",
                "Mean power of the last closed power window (about a second), watts.",
                s.power.0,
            )?;
        }
        counter(
            &reg,
            labels,
            "carina_run_wall_time_seconds_total",
            "Wall time of the run so far (since the command started), seconds.",
            None,
            s.elapsed.0,
        )?;
        gauge(
            &reg,
            labels,
            "carina_run_running",
            "1 while the command runs, 0 once it has exited.",
            if s.running { 1.0 } else { 0.0 },
        )?;
        if let Some((steps, items)) = s.steps_items {
            counter(
                &reg,
                labels,
                "carina_run_steps_total",
                "Step records written so far by the command's Carina-linked children.",
                None,
                steps as f64,
            )?;
            counter(
                &reg,
                labels,
                "carina_run_items_total",
                "Items of the children's steps so far (the largest per-step-name total).",
                None,
                items as f64,
            )?;
        }
        let mut buf = Vec::new();
        TextEncoder::new().encode(&reg.gather(), &mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    };
    // Names and label names are constants, so this cannot fail; a label value is any string.
    build().unwrap_or_else(|e| format!("# carina: cannot encode the metrics: {e}\n"))
}

/// Reads the children's `<run_id>.child-<pid>.jsonl` files as they grow: step records and
/// items so far. Each file is read from where the last call stopped, whole lines only, so a
/// scrape costs what was written since the previous one.
#[derive(Debug)]
pub struct ChildTail {
    dir: PathBuf,
    run_id: String,
    /// Per file: bytes consumed (up to the last complete line).
    offsets: HashMap<PathBuf, u64>,
    steps: u64,
    items_by_name: HashMap<String, u64>,
}

impl ChildTail {
    /// Follows the child files of run `run_id` in `job_dir`.
    pub fn new(job_dir: &Path, run_id: &str) -> ChildTail {
        ChildTail {
            dir: job_dir.to_path_buf(),
            run_id: run_id.to_owned(),
            offsets: HashMap::new(),
            steps: 0,
            items_by_name: HashMap::new(),
        }
    }

    /// Step records and items so far; `None` while no child file exists.
    pub fn poll(&mut self) -> Option<(u64, u64)> {
        let paths = carina_runtime::merge::child_file_paths(&self.dir, &self.run_id);
        for p in paths {
            let off = self.offsets.entry(p.clone()).or_insert(0);
            // A FIFO or device planted under a child file's name must not block the metrics.
            let Ok(mut f) = crate::input::open_regular(
                &p,
                crate::input::MAX_RUN_FILE_BYTES,
                "a child run file",
            ) else {
                continue;
            };
            if f.seek(SeekFrom::Start(*off)).is_err() {
                continue;
            }
            let mut buf = Vec::new();
            if f.read_to_end(&mut buf).is_err() {
                continue;
            }
            let Some(last_nl) = buf.iter().rposition(|&b| b == b'\n') else {
                continue;
            };
            *off += last_nl as u64 + 1;
            for line in buf[..last_nl].split(|&b| b == b'\n') {
                // Only step records count; a cheap test avoids parsing every other line.
                if !line.windows(13).any(|w| w == b"\"type\":\"step\"") {
                    continue;
                }
                if let Ok(carina_runtime::record::Record::Step(s)) = serde_json::from_slice(line) {
                    self.steps += 1;
                    *self.items_by_name.entry(s.name.to_string()).or_default() += s.items;
                }
            }
        }
        if self.offsets.is_empty() {
            return None;
        }
        let items = self.items_by_name.values().copied().max().unwrap_or(0);
        Some((self.steps, items))
    }
}

/// The `/metrics` endpoint: serves until [`Exporter::stop`].
pub struct Exporter {
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
    /// The address bound (the port chosen when `:0` was asked).
    pub addr: String,
}

/// Binds `addr` (`HOST:PORT`) now and serves `GET /metrics` from a thread, each scrape
/// encoding `snapshot()`. Other paths get 404, other methods 405.
pub fn serve(
    addr: &str,
    labels: Labels,
    snapshot: impl Fn() -> Snapshot + Send + 'static,
) -> Result<Exporter, String> {
    let server = tiny_http::Server::http(addr).map_err(|e| {
        format!("--prometheus {addr}: cannot listen: {e} (choose another HOST:PORT)")
    })?;
    let bound = server
        .server_addr()
        .to_ip()
        .map_or_else(|| addr.to_owned(), |a| a.to_string());
    let server = Arc::new(server);
    let srv = server.clone();
    let thread = std::thread::Builder::new()
        .name("carina-prometheus".into())
        .spawn(move || {
            // Ends when `unblock` is called (stop).
            for req in srv.incoming_requests() {
                let path = req.url().split('?').next().unwrap_or("");
                let resp = match (req.method(), path) {
                    (tiny_http::Method::Get | tiny_http::Method::Head, "/metrics") => {
                        let body = encode(&labels, &snapshot());
                        tiny_http::Response::from_string(body).with_header(header(CONTENT_TYPE))
                    }
                    (tiny_http::Method::Get | tiny_http::Method::Head, _) => {
                        tiny_http::Response::from_string("not found: the metrics are at /metrics\n")
                            .with_status_code(404)
                            .with_header(header("text/plain; charset=utf-8"))
                    }
                    _ => tiny_http::Response::from_string("method not allowed: GET /metrics\n")
                        .with_status_code(405)
                        .with_header(header("text/plain; charset=utf-8")),
                };
                let _ = req.respond(resp);
            }
        })
        .map_err(|e| format!("--prometheus: cannot start the server thread: {e}"))?;
    Ok(Exporter {
        server,
        thread: Some(thread),
        addr: bound,
    })
}

fn header(content_type: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(&b"Content-Type"[..], content_type.as_bytes())
        .expect("a valid header")
}

impl Exporter {
    /// Stops serving and waits for the server thread.
    pub fn stop(mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A Pushgateway path segment for a grouping label: the value itself when it is made of
/// URL-safe characters, else `<name>@base64/<base64url>` (the Pushgateway's rule, which also
/// covers `/` and the empty value).
fn grouping(name: &str, value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b));
    if plain {
        format!("{name}/{value}")
    } else {
        format!("{name}@base64/{}", base64url(value.as_bytes()))
    }
}

/// Base64 with the URL alphabet and `=` padding (RFC 4648 §5); the Pushgateway accepts it.
fn base64url(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    if out.is_empty() {
        // An empty value: one `=` (the Pushgateway's encoding of "").
        out.push('=');
    }
    out
}

/// The Pushgateway URL of this run: `BASE/metrics/job/<job>/instance/<host>`.
pub fn push_url(base: &str, labels: &Labels) -> String {
    format!(
        "{}/metrics/{}/{}",
        base.trim_end_matches('/'),
        grouping("job", &labels.job),
        grouping("instance", &labels.host)
    )
}

/// Sends `body` with `PUT` to the Pushgateway at `base` (10 s timeout in all).
pub fn push(base: &str, labels: &Labels, body: &str) -> Result<(), String> {
    let url = push_url(base, labels);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    agent
        .put(&url)
        .header("Content-Type", CONTENT_TYPE)
        .send(body)
        .map(|_| ())
        .map_err(|e| format!("push to {url} failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Labels {
        Labels {
            job: "nightly".into(),
            run_id: "r1".into(),
            host: "node-1".into(),
        }
    }

    #[test]
    fn encodes_the_text_format_with_labels() {
        let s = Snapshot {
            energy: Joules(12.5),
            co2e: GramsCo2e(0.25),
            power: Watts(30.0),
            kind: Some(EnergyKind::Estimated),
            elapsed: Seconds(3.0),
            running: true,
            steps_items: Some((4, 40)),
        };
        let t = encode(&labels(), &s);
        assert!(
            t.contains("# TYPE carina_run_energy_joules_total counter"),
            "{t}"
        );
        assert!(
            t.contains(
                "carina_run_energy_joules_total{carina_job=\"nightly\",host=\"node-1\",kind=\"estimated\",run_id=\"r1\"} 12.5"
            ),
            "{t}"
        );
        assert!(t.contains("carina_run_power_watts{"), "{t}");
        assert!(
            t.contains("carina_run_items_total{") && t.contains("} 40"),
            "{t}"
        );
        assert!(t.contains(
            "carina_run_running{carina_job=\"nightly\",host=\"node-1\",run_id=\"r1\"} 1"
        ));
        // Before measuring starts: no energy series, and no child series without children.
        let early = encode(&labels(), &Snapshot::default());
        assert!(!early.contains("carina_run_energy_joules_total"), "{early}");
        assert!(!early.contains("carina_run_items_total"), "{early}");
        assert!(
            early.contains("carina_run_wall_time_seconds_total"),
            "{early}"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let l = Labels {
            job: "a\"b\\c\nd".into(),
            ..labels()
        };
        let t = encode(&l, &Snapshot::default());
        assert!(t.contains(r#"carina_job="a\"b\\c\nd""#), "{t}");
    }

    #[test]
    fn push_urls_follow_the_pushgateway_rules() {
        assert_eq!(
            push_url("http://127.0.0.1:9091/", &labels()),
            "http://127.0.0.1:9091/metrics/job/nightly/instance/node-1"
        );
        let l = Labels {
            job: "a/b".into(),
            host: String::new(),
            ..labels()
        };
        assert_eq!(
            push_url("http://gw", &l),
            "http://gw/metrics/job@base64/YS9i/instance@base64/="
        );
        assert_eq!(base64url(b"ab?"), "YWI_");
        assert_eq!(base64url(b"a"), "YQ==");
    }

    #[test]
    fn the_child_tail_reads_whole_lines_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut tail = ChildTail::new(dir.path(), "r1");
        assert_eq!(tail.poll(), None);
        let f = dir.path().join("r1.child-7.jsonl");
        let step = |id: u64, items: u64| {
            format!(
                r#"{{"type":"step","name":"solve","id":{id},"parent":null,"thread":0,"start_s":0.0,"end_s":0.1,"items":{items},"status":"ok","energy_j":1.0,"self_energy_j":1.0,"co2e_g":0.0}}"#
            )
        };
        std::fs::write(&f, format!("{}\n{}", step(1, 5), &step(2, 7)[..20])).unwrap();
        assert_eq!(tail.poll(), Some((1, 5)), "the half line waits");
        std::fs::write(&f, format!("{}\n{}\n", step(1, 5), step(2, 7))).unwrap();
        assert_eq!(tail.poll(), Some((2, 12)));
        assert_eq!(tail.poll(), Some((2, 12)), "nothing is counted twice");
    }
}
