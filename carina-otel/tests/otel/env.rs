//! The standard environment variables. The other tests of this binary build sinks, which read
//! the environment, on parallel threads: this test changes the environment only in a process of
//! its own, this binary started again to run this one test.

use crate::common::{Collector, close};
use carina::Sink;
use carina::record::{PowerRecord, Record};
use carina_otel::OtelSink;
use std::process::Command;

/// Set in the child process: there, the test runs its checks instead of starting a child.
const CHILD: &str = "CARINA_OTEL_ENV_TEST_CHILD";

#[test]
fn otel_exporter_otlp_endpoint_and_service_name_are_honoured() {
    if std::env::var_os(CHILD).is_some() {
        honoured();
    } else {
        honoured_in_a_child();
    }
}

/// Runs this test again in a child process with [`CHILD`] set, and checks that it ran there and
/// passed.
fn honoured_in_a_child() {
    // The test's name as the harness knows it: its module path without the crate's name.
    let name = format!(
        "{}::otel_exporter_otlp_endpoint_and_service_name_are_honoured",
        module_path!().split_once("::").unwrap().1
    );
    let mut child = Command::new(std::env::current_exe().unwrap());
    child.args(["--exact", &name, "--nocapture", "--test-threads=1"]);
    // The child starts from an environment without OTEL_ variables: only the test's count.
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("OTEL_") {
            child.env_remove(k);
        }
    }
    let out = child.env(CHILD, "1").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // The filter matched this test and nothing else, so its checks ran.
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "{stdout}\n{stderr}"
    );
}

/// The checks, in the child process: the only test there, so nothing else reads the environment
/// while they change it (the collector's threads never do).
fn honoured() {
    let c = Collector::start();
    // SAFETY: the only test of this process (see `honoured_in_a_child`); no other thread
    // reads the environment.
    unsafe {
        std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", &c.base);
        std::env::set_var("OTEL_SERVICE_NAME", "fleet-a");
        std::env::set_var(
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment.name=test",
        );
    }
    let mut s = OtelSink::builder().build().unwrap();
    assert_eq!(s.metrics_url(), format!("{}/v1/metrics", c.base));
    assert_eq!(s.traces_url(), format!("{}/v1/traces", c.base));
    s.write(&Record::Power(PowerRecord::new(
        carina::Seconds::ZERO,
        carina::Seconds(1.0),
        carina::Joules(3.0),
        carina_runtime::units::GramsCo2e(0.001),
    )))
    .unwrap();
    s.flush().unwrap();
    let m = c.last_metrics();
    assert!(close(m.sum("carina.run.energy", &[]), 3.0));
    assert_eq!(m.resource["service.name"], "fleet-a");
    assert_eq!(m.resource["deployment.environment.name"], "test");

    // The builder's endpoint wins over the variable.
    let s = OtelSink::builder()
        .endpoint("http://127.0.0.1:9")
        .build()
        .unwrap();
    assert_eq!(s.metrics_url(), "http://127.0.0.1:9/v1/metrics");

    // A traces URL the sink cannot use matters only when spans are exported, and the error
    // names the variable it came from; a bad interval names its variable too.
    // SAFETY: still the only test of this process.
    unsafe { std::env::set_var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "ftp://traces:4318") };
    assert!(OtelSink::builder().build().is_ok());
    let e = OtelSink::builder()
        .with_spans(true)
        .build()
        .unwrap_err()
        .to_string();
    assert!(e.contains("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), "{e}");
    unsafe { std::env::set_var("OTEL_METRIC_EXPORT_INTERVAL", "10s") };
    let e = OtelSink::builder().build().unwrap_err().to_string();
    assert!(
        e.contains("OTEL_METRIC_EXPORT_INTERVAL") && e.contains("milliseconds"),
        "{e}"
    );
}
