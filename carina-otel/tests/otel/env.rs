//! The standard environment variables. The other tests of this binary build sinks, which read
//! the environment, on parallel threads: the test of the process environment changes it only in
//! a process of its own, this binary started again to run this one test; the others give the
//! variables through `OtelSink::builder_with_env`.

use crate::common::{Collector, close, in_child, run_in_child};
use carina::Sink;
use carina::record::{PowerRecord, Record};
use carina_otel::OtelSink;
use std::collections::HashMap;
use std::time::Duration;

#[test]
fn otel_exporter_otlp_endpoint_and_service_name_are_honoured() {
    if in_child() {
        honoured();
    } else {
        // The test's name as the harness knows it: its module path without the crate's name.
        run_in_child(&format!(
            "{}::otel_exporter_otlp_endpoint_and_service_name_are_honoured",
            module_path!().split_once("::").unwrap().1
        ));
    }
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
    // A bad interval is ignored with a warning naming its variable (the default applies).
    unsafe { std::env::set_var("OTEL_METRIC_EXPORT_INTERVAL", "10s") };
    let s = OtelSink::builder().build().unwrap();
    assert_eq!(s.export_interval(), carina_otel::DEFAULT_EXPORT_INTERVAL);
    assert_eq!(
        s.warnings(),
        [
            "OTEL_METRIC_EXPORT_INTERVAL=\"10s\" ignored: not a whole number of milliseconds (e.g. \
          3000); the default applies"
        ]
    );
}

/// A lookup over `vars`, as `OtelSink::builder_with_env` takes it: the process environment is
/// left alone.
fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| vars.get(k).cloned()
}

#[test]
fn an_invalid_timeout_warns_and_the_default_applies() {
    let s = OtelSink::builder_with_env(lookup(&[("OTEL_EXPORTER_OTLP_TIMEOUT", "10s")]))
        .build()
        .unwrap();
    assert_eq!(s.timeout(), carina_otel::DEFAULT_TIMEOUT);
    assert_eq!(
        s.warnings(),
        [
            "OTEL_EXPORTER_OTLP_TIMEOUT=\"10s\" ignored: not a whole number of milliseconds (e.g. \
          3000); the default applies"
        ]
    );

    // A valid one applies, the per-signal variable wins, and an invalid per-signal one falls
    // back to the general variable.
    let s = OtelSink::builder_with_env(lookup(&[("OTEL_EXPORTER_OTLP_TIMEOUT", "500")]))
        .build()
        .unwrap();
    assert_eq!(s.timeout(), Duration::from_millis(500));
    assert!(s.warnings().is_empty(), "{:?}", s.warnings());
    let s = OtelSink::builder_with_env(lookup(&[
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "500"),
        ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "250"),
    ]))
    .build()
    .unwrap();
    assert_eq!(s.timeout(), Duration::from_millis(250));
    let s = OtelSink::builder_with_env(lookup(&[
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "500"),
        ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "-1"),
    ]))
    .build()
    .unwrap();
    assert_eq!(s.timeout(), Duration::from_millis(500));
    assert_eq!(
        s.warnings(),
        [
            "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT=\"-1\" ignored: not a whole number of milliseconds \
          (e.g. 3000); OTEL_EXPORTER_OTLP_TIMEOUT or the default applies"
        ]
    );
    // The traces' variable counts only when spans are exported; the longer one bounds the wait.
    let env = [("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "7000")];
    let s = OtelSink::builder_with_env(lookup(&env)).build().unwrap();
    assert_eq!(s.timeout(), carina_otel::DEFAULT_TIMEOUT);
    let s = OtelSink::builder_with_env(lookup(&env))
        .with_spans(true)
        .build()
        .unwrap();
    assert_eq!(s.timeout(), Duration::from_millis(7000));
    // The builder's own timeout wins over every variable, valid or not, without a warning.
    let s = OtelSink::builder_with_env(lookup(&[("OTEL_EXPORTER_OTLP_TIMEOUT", "10s")]))
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    assert_eq!(s.timeout(), Duration::from_secs(1));
    assert!(s.warnings().is_empty(), "{:?}", s.warnings());
}

/// Writes a minimal run to `s` and flushes it: a run-level power window.
fn feed(s: &mut OtelSink) -> Result<(), carina::SinkError> {
    s.write(&Record::Power(PowerRecord::new(
        carina::Seconds::ZERO,
        carina::Seconds(1.0),
        carina::Joules(3.0),
        carina_runtime::units::GramsCo2e(0.001),
    )))?;
    s.checkpoint()?;
    s.flush()
}

#[test]
fn otel_sdk_disabled_builds_a_sink_that_sends_nothing_and_says_so() {
    let c = Collector::start();
    let base = c.base.clone();
    let with = |disabled: &str| {
        OtelSink::builder_with_env(lookup(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &base),
            ("OTEL_SDK_DISABLED", disabled),
            // Ignored when disabled: nothing is checked, nothing is sent.
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ]))
        .build()
    };
    let mut s = with("TRUE").unwrap();
    assert!(!s.is_enabled());
    assert_eq!(
        s.warnings(),
        [
            "OTEL_SDK_DISABLED=true: OpenTelemetry export is disabled, this sink sends nothing (the \
          run file is written as usual)"
        ]
    );
    feed(&mut s).unwrap();
    assert!(c.requests().is_empty(), "{:?}", c.requests());

    // `false` exports (here refused for the protocol, which is then checked); another value
    // warns and exports.
    assert!(with("false").is_err());
    let mut s = OtelSink::builder_with_env(lookup(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &base),
        ("OTEL_SDK_DISABLED", "yes"),
    ]))
    .build()
    .unwrap();
    assert!(s.is_enabled());
    assert_eq!(
        s.warnings(),
        ["OTEL_SDK_DISABLED=\"yes\" ignored: neither true nor false; export stays enabled"]
    );
    feed(&mut s).unwrap();
    assert!(close(c.last_metrics().sum("carina.run.energy", &[]), 3.0));
}

#[test]
fn grpc_and_http_json_are_refused_naming_the_supported_protocol() {
    let build = |vars: &[(&str, &str)], spans: bool| {
        OtelSink::builder_with_env(lookup(vars))
            .with_spans(spans)
            .build()
            .map(|s| s.warnings().to_vec())
            .map_err(|e| e.to_string())
    };
    let e = build(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")], false).unwrap_err();
    assert_eq!(
        e,
        "OpenTelemetry sink: OTEL_EXPORTER_OTLP_PROTOCOL=\"grpc\": carina-otel speaks OTLP over \
         HTTP with protobuf bodies only (supported: http/protobuf); grpc is not implemented. Set \
         OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf (or unset it) and point the endpoint at the \
         collector's OTLP/HTTP port (4318 by default)"
    );
    let e = build(
        &[("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/json")],
        false,
    )
    .unwrap_err();
    assert!(
        e.contains("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL=\"http/json\"")
            && e.contains("supported: http/protobuf"),
        "{e}"
    );
    // The per-signal variable wins over the general one.
    let ok = [
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/protobuf"),
    ];
    assert_eq!(build(&ok, false), Ok(vec![]));
    // The traces' protocol counts only when spans are exported.
    let traces = [("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc")];
    assert_eq!(build(&traces, false), Ok(vec![]));
    let e = build(&traces, true).unwrap_err();
    assert!(
        e.contains("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=\"grpc\""),
        "{e}"
    );
    assert_eq!(
        build(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")], true),
        Ok(vec![])
    );
    // A value that is no protocol at all is ignored with a warning.
    assert_eq!(
        build(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "quic")], false),
        Ok(vec![
            "OTEL_EXPORTER_OTLP_PROTOCOL=\"quic\" ignored: not an OTLP protocol (grpc, \
             http/protobuf, http/json); http/protobuf is used"
                .to_owned()
        ])
    );
}
