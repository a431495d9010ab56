//! Configuring an [`OtelSink`]: [`OtelSinkBuilder`], the defaults, the standard `OTEL_*`
//! environment variables, and the exporters it creates.

use crate::http::UreqClient;
use crate::sink::{OtelSink, Settings};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::metrics::Temporality;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Default export timeout (per export; retries included). `OTEL_EXPORTER_OTLP_TIMEOUT` (ms)
/// overrides it, [`OtelSinkBuilder::timeout`] overrides both.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
/// Default interval between metric exports. `OTEL_METRIC_EXPORT_INTERVAL` (ms) overrides it,
/// [`OtelSinkBuilder::export_interval`] overrides both.
pub const DEFAULT_EXPORT_INTERVAL: Duration = Duration::from_secs(10);
/// Default bound on spans waiting for the next export; more are dropped and reported.
pub const DEFAULT_MAX_QUEUED_SPANS: usize = 16_384;
/// The endpoint used when neither the builder nor the environment gives one.
pub const DEFAULT_ENDPOINT: &str = "http://localhost:4318";

/// A sink that could not be built: an invalid endpoint or configuration.
#[derive(Debug, thiserror::Error)]
#[error("OpenTelemetry sink: {0}")]
pub struct BuildError(String);

/// Configures an [`OtelSink`]; see [`OtelSink::builder`].
#[derive(Debug, Clone, Default)]
pub struct OtelSinkBuilder {
    endpoint: Option<String>,
    timeout: Option<Duration>,
    export_interval: Option<Duration>,
    spans: bool,
    service_name: Option<String>,
    headers: HashMap<String, String>,
    attributes: Vec<(String, String)>,
    max_queued_spans: Option<usize>,
}

impl OtelSinkBuilder {
    /// Base URL of the OTLP/HTTP receiver, e.g. `http://127.0.0.1:4318`; `/v1/metrics` and
    /// `/v1/traces` are appended. Without it: `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` /
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (full URLs), else `OTEL_EXPORTER_OTLP_ENDPOINT`
    /// (base), else [`DEFAULT_ENDPOINT`].
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }

    /// Time one export may take, retries included (default [`DEFAULT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Least time between two metric exports (default [`DEFAULT_EXPORT_INTERVAL`]); exports
    /// happen at the first checkpoint (about once a second) after it has passed, and at the end.
    /// `Duration::ZERO` exports at every checkpoint.
    pub fn export_interval(mut self, interval: Duration) -> Self {
        self.export_interval = Some(interval);
        self
    }

    /// Also exports one span per `step` record (parent links from `parent`, one trace per run
    /// with a root span for the run). Off by default: a span per step instance is only sensible
    /// for coarse steps.
    pub fn with_spans(mut self, yes: bool) -> Self {
        self.spans = yes;
        self
    }

    /// `service.name` of the resource. Default: `OTEL_SERVICE_NAME`, else the run's job name.
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = Some(name.into());
        self
    }

    /// An HTTP header sent with every export (e.g. an API key); `OTEL_EXPORTER_OTLP_HEADERS`
    /// is honoured too.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }

    /// An extra resource attribute (e.g. `deployment.environment.name`);
    /// `OTEL_RESOURCE_ATTRIBUTES` is honoured too.
    pub fn resource_attribute(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.push((key.into(), value.into()));
        self
    }

    /// Most spans waiting for the next export (default [`DEFAULT_MAX_QUEUED_SPANS`]).
    pub fn max_queued_spans(mut self, n: usize) -> Self {
        self.max_queued_spans = Some(n);
        self
    }

    /// Builds the sink: checks the endpoint and creates the exporters. Nothing is sent and no
    /// thread is started before the run's first record.
    pub fn build(self) -> Result<OtelSink, BuildError> {
        let timeout = match self.timeout {
            Some(t) => t,
            None => env_ms("OTEL_EXPORTER_OTLP_TIMEOUT")?.unwrap_or(DEFAULT_TIMEOUT),
        };
        let interval = match self.export_interval {
            Some(t) => t,
            None => env_ms("OTEL_METRIC_EXPORT_INTERVAL")?.unwrap_or(DEFAULT_EXPORT_INTERVAL),
        };
        let (metrics_url, metrics_from) = signal_url(
            self.endpoint.as_deref(),
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            "/v1/metrics",
        );
        let (traces_url, traces_from) = signal_url(
            self.endpoint.as_deref(),
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "/v1/traces",
        );
        let scheme_ok = |u: &str| {
            u.starts_with("http://") || (cfg!(feature = "tls") && u.starts_with("https://"))
        };
        // The traces URL matters only when spans are exported.
        let checked = [(&metrics_url, metrics_from), (&traces_url, traces_from)];
        for (u, from) in checked.iter().take(if self.spans { 2 } else { 1 }) {
            if !scheme_ok(u) {
                return Err(BuildError(format!(
                    "endpoint {u:?} (from {from}): only http:// URLs are supported{}",
                    if cfg!(feature = "tls") {
                        " and https:// URLs"
                    } else {
                        " (https:// needs the crate feature `tls`)"
                    }
                )));
            }
        }
        let transport_error = Arc::new(Mutex::new(None));
        let metric_exporter = opentelemetry_otlp::MetricExporter::builder()
            .with_http()
            .with_http_client(UreqClient::new(timeout, transport_error.clone()))
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(metrics_url.clone())
            .with_timeout(timeout)
            .with_headers(self.headers.clone())
            .with_temporality(Temporality::Cumulative)
            .build()
            .map_err(|e| BuildError(format!("metrics exporter for {metrics_url}: {e}")))?;
        let span_exporter = if self.spans {
            Some(
                opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_http_client(UreqClient::new(timeout, transport_error.clone()))
                    .with_protocol(Protocol::HttpBinary)
                    .with_endpoint(traces_url.clone())
                    .with_timeout(timeout)
                    .with_headers(self.headers.clone())
                    .build()
                    .map_err(|e| BuildError(format!("span exporter for {traces_url}: {e}")))?,
            )
        } else {
            None
        };
        Ok(OtelSink::new(Settings {
            with_spans: self.spans,
            service_name: self.service_name,
            attributes: self.attributes,
            timeout,
            interval,
            metrics_url,
            traces_url,
            metric_exporter,
            span_exporter,
            transport_error,
            max_spans: self.max_queued_spans.unwrap_or(DEFAULT_MAX_QUEUED_SPANS),
        }))
    }
}

impl OtelSink {
    /// A builder; `OtelSink::builder().build()` uses the standard `OTEL_EXPORTER_OTLP_*`
    /// environment variables, else `http://localhost:4318`.
    pub fn builder() -> OtelSinkBuilder {
        OtelSinkBuilder::default()
    }
}

/// A duration in milliseconds from `var`; unset or empty is `None`, anything else than a whole
/// number of milliseconds an error naming the variable.
fn env_ms(var: &str) -> Result<Option<Duration>, BuildError> {
    let Some(v) = std::env::var(var).ok().filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    v.trim()
        .parse::<u64>()
        .map(|ms| Some(Duration::from_millis(ms)))
        .map_err(|_| {
            BuildError(format!(
                "{var}={v:?}: expected a whole number of milliseconds (e.g. 3000)"
            ))
        })
}

/// The URL for one signal: the builder's base URL + path, else the per-signal variable (a full
/// URL), else `OTEL_EXPORTER_OTLP_ENDPOINT` + path, else the default + path; with where it came
/// from, for error messages.
fn signal_url(base: Option<&str>, signal_var: &'static str, path: &str) -> (String, &'static str) {
    let join = |b: &str| format!("{}{path}", b.trim_end_matches('/'));
    let env = |v: &str| std::env::var(v).ok().filter(|s| !s.trim().is_empty());
    if let Some(b) = base {
        return (join(b), "OtelSinkBuilder::endpoint");
    }
    if let Some(u) = env(signal_var) {
        return (u, signal_var);
    }
    match env("OTEL_EXPORTER_OTLP_ENDPOINT") {
        Some(b) => (join(&b), "OTEL_EXPORTER_OTLP_ENDPOINT"),
        None => (join(DEFAULT_ENDPOINT), "the default endpoint"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_join_the_signal_path() {
        assert_eq!(
            signal_url(Some("http://127.0.0.1:4318/"), "X_UNSET", "/v1/metrics").0,
            "http://127.0.0.1:4318/v1/metrics"
        );
    }

    #[test]
    fn a_metrics_only_sink_ignores_the_traces_url_and_errors_name_their_source() {
        let ok = OtelSink::builder()
            .endpoint("http://127.0.0.1:9")
            .build()
            .is_ok();
        assert!(ok);
        let e = OtelSink::builder()
            .endpoint("ftp://collector:4318")
            .build()
            .unwrap_err()
            .to_string();
        assert!(e.contains("OtelSinkBuilder::endpoint"), "{e}");
    }

    #[test]
    fn https_without_tls_is_refused_at_build() {
        let r = OtelSink::builder()
            .endpoint("https://example.invalid")
            .build();
        assert_eq!(r.is_err(), !cfg!(feature = "tls"));
    }
}
