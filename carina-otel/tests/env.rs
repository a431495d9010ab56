//! The standard environment variables (one test: the process environment is shared).

mod common;

use carina::Sink;
use carina::record::{PowerRecord, Record};
use carina_otel::OtelSink;
use common::{Collector, close};

#[test]
fn otel_exporter_otlp_endpoint_and_service_name_are_honoured() {
    let c = Collector::start();
    // SAFETY: the only test of this binary; no other thread reads the environment yet.
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
    s.write(&Record::Power(PowerRecord {
        start_s: carina::Seconds::ZERO,
        end_s: carina::Seconds(1.0),
        energy_j: carina::Joules(3.0),
        co2e_g: carina_runtime::units::GramsCo2e(0.001),
        energy_low_j: None,
        energy_high_j: None,
    }))
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
    // SAFETY: still the only test of this binary, on its own thread.
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
