//! An in-process OTLP/HTTP receiver for the tests: a plain HTTP/1.1 server on 127.0.0.1 that
//! keeps every POST body, and helpers that decode the protobuf requests.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use prost::Message;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request received.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub content_type: String,
    pub body: Vec<u8>,
}

/// The receiver; it runs until the test process ends.
#[derive(Clone)]
pub struct Collector {
    pub base: String,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Collector {
    /// Starts a receiver answering every request with `status`.
    pub fn start_with_status(status: u16) -> Collector {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let got = Arc::new(Mutex::new(Vec::new()));
        let g = got.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let g = g.clone();
                std::thread::spawn(move || {
                    let _ = serve(conn, &g, status);
                });
            }
        });
        Collector { base, got }
    }

    pub fn start() -> Collector {
        Self::start_with_status(200)
    }

    pub fn requests(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until `n` requests to `path` have arrived (at most `limit`).
    pub fn wait_for(&self, path: &str, n: usize, limit: Duration) -> bool {
        let t = Instant::now();
        while t.elapsed() < limit {
            if self.requests().iter().filter(|r| r.path == path).count() >= n {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn metrics(&self) -> Vec<ExportMetricsServiceRequest> {
        self.requests()
            .iter()
            .filter(|r| r.path == "/v1/metrics")
            .map(|r| {
                assert_eq!(r.content_type, "application/x-protobuf");
                ExportMetricsServiceRequest::decode(&r.body[..]).unwrap()
            })
            .collect()
    }

    pub fn traces(&self) -> Vec<ExportTraceServiceRequest> {
        self.requests()
            .iter()
            .filter(|r| r.path == "/v1/traces")
            .map(|r| ExportTraceServiceRequest::decode(&r.body[..]).unwrap())
            .collect()
    }

    /// The last metrics export (cumulative, so it holds the totals).
    pub fn last_metrics(&self) -> Snapshot {
        let all = self.metrics();
        Snapshot::of(all.last().expect("no metrics export arrived"))
    }
}

fn serve(conn: TcpStream, got: &Mutex<Vec<Received>>, status: u16) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut r = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
    let mut len = 0usize;
    let mut content_type = String::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':').unwrap_or((h, ""));
        match k.to_ascii_lowercase().as_str() {
            "content-length" => len = v.trim().parse().unwrap(),
            "content-type" => content_type = v.trim().to_owned(),
            _ => {}
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    got.lock().unwrap().push(Received {
        path,
        content_type,
        body,
    });
    let mut w = conn;
    write!(
        w,
        "HTTP/1.1 {status} X\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    w.flush()
}

/// A port on 127.0.0.1 nothing listens on.
pub fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

pub fn text(v: &Option<AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        other => format!("{other:?}"),
    }
}

pub fn attrs(kvs: &[KeyValue]) -> BTreeMap<String, String> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), text(&kv.value)))
        .collect()
}

/// One data point: its attributes and value (sums), or count and sum (histograms).
#[derive(Clone, Debug)]
pub struct Point {
    pub attrs: BTreeMap<String, String>,
    pub value: f64,
    pub count: u64,
}

/// A decoded export: resource attributes, and per metric its unit, kind and points.
#[derive(Debug)]
pub struct Snapshot {
    pub resource: BTreeMap<String, String>,
    pub metrics: BTreeMap<String, (String, &'static str, Vec<Point>)>,
}

impl Snapshot {
    pub fn of(req: &ExportMetricsServiceRequest) -> Snapshot {
        assert_eq!(req.resource_metrics.len(), 1);
        let rm = &req.resource_metrics[0];
        let resource = attrs(&rm.resource.as_ref().unwrap().attributes);
        let mut metrics = BTreeMap::new();
        for sm in &rm.scope_metrics {
            assert_eq!(sm.scope.as_ref().unwrap().name, "carina-otel");
            for m in &sm.metrics {
                let (kind, points) = match m.data.as_ref().unwrap() {
                    metric::Data::Sum(s) => {
                        assert!(s.is_monotonic, "{}", m.name);
                        assert_eq!(s.aggregation_temporality, 2, "cumulative");
                        let pts = s
                            .data_points
                            .iter()
                            .map(|p| Point {
                                attrs: attrs(&p.attributes),
                                value: match p.value.unwrap() {
                                    number_data_point::Value::AsDouble(d) => d,
                                    number_data_point::Value::AsInt(i) => i as f64,
                                },
                                count: 0,
                            })
                            .collect();
                        ("sum", pts)
                    }
                    metric::Data::Histogram(h) => {
                        let pts = h
                            .data_points
                            .iter()
                            .map(|p| Point {
                                attrs: attrs(&p.attributes),
                                value: p.sum.unwrap_or(f64::NAN),
                                count: p.count,
                            })
                            .collect();
                        ("histogram", pts)
                    }
                    other => panic!("unexpected {other:?}"),
                };
                metrics.insert(m.name.clone(), (m.unit.clone(), kind, points));
            }
        }
        Snapshot { resource, metrics }
    }

    pub fn unit(&self, name: &str) -> &str {
        &self
            .metrics
            .get(name)
            .unwrap_or_else(|| panic!("no {name}"))
            .0
    }

    pub fn points(&self, name: &str) -> &[Point] {
        &self
            .metrics
            .get(name)
            .unwrap_or_else(|| panic!("no {name}: {self:#?}"))
            .2
    }

    /// The sum of the points of `name` whose attributes include all of `filter`.
    pub fn sum(&self, name: &str, filter: &[(&str, &str)]) -> f64 {
        self.points(name)
            .iter()
            .filter(|p| {
                filter
                    .iter()
                    .all(|(k, v)| p.attrs.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|p| p.value)
            .sum()
    }
}

pub fn close(a: impl Into<f64>, b: impl Into<f64>) -> bool {
    let (a, b): (f64, f64) = (a.into(), b.into());
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// Set in a child process started by [`run_in_child`]: there, the test runs its checks
/// instead of starting a child.
pub const CHILD: &str = "CARINA_OTEL_TEST_CHILD";

/// Whether this process is a child started by [`run_in_child`].
pub fn in_child() -> bool {
    std::env::var_os(CHILD).is_some()
}

/// Runs the test `name` (its path in this binary, e.g. `otel::run::x`) again, alone, in a child
/// process of this binary without `OTEL_*` variables and with [`CHILD`] set; checks that it ran
/// there and passed, and returns its stderr. For a test that changes the environment, or whose
/// stderr is checked.
pub fn run_in_child(name: &str) -> String {
    let mut child = std::process::Command::new(std::env::current_exe().unwrap());
    child.args(["--exact", name, "--nocapture", "--test-threads=1"]);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("OTEL_") {
            child.env_remove(k);
        }
    }
    let out = child.env(CHILD, "1").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // The filter matched this test and nothing else, so its checks ran.
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "{stdout}\n{stderr}"
    );
    stderr
}
