//! Configuring an [`OtelSink`]: [`OtelSinkBuilder`], the defaults, the standard `OTEL_*`
//! environment variables, and the exporters it creates.

use crate::http::UreqClient;
use crate::sink::{OtelSink, Settings};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::metrics::Temporality;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Default export timeout (per export; retries included). `OTEL_EXPORTER_OTLP_TIMEOUT` (ms), or
/// per signal `OTEL_EXPORTER_OTLP_METRICS_TIMEOUT` / `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`,
/// overrides it, [`OtelSinkBuilder::timeout`] overrides them. Shorter than the OTLP exporter
/// specification's 10 s because `finish()` waits for the last export (at most
/// `2 x timeout + 1 s`).
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

/// Where the builder reads the `OTEL_*` variables: the process environment, or a lookup
/// given to [`OtelSink::builder_with_env`].
#[derive(Clone, Default)]
struct Env(Option<Arc<Lookup>>);

/// A variable's value by name, as [`OtelSink::builder_with_env`] takes it.
type Lookup = dyn Fn(&str) -> Option<String> + Send + Sync;

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Env(lookup)"
        } else {
            "Env(process)"
        })
    }
}

impl Env {
    /// The variable's value; unset and blank are the same (`None`), as the specification says.
    fn get(&self, var: &str) -> Option<String> {
        match &self.0 {
            Some(f) => f(var),
            None => std::env::var(var).ok(),
        }
        .filter(|v| !v.trim().is_empty())
    }
}

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
    env: Env,
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

    /// Builds the sink: reads the `OTEL_*` variables, checks the endpoint and creates the
    /// exporters. Nothing is sent and no thread is started before the run's first record.
    ///
    /// As the OpenTelemetry specification asks: `OTEL_SDK_DISABLED=true` builds a sink that
    /// sends nothing; a timeout or interval that is not a whole number of milliseconds is
    /// ignored with a warning (the default is used). Warnings and the disabled note are
    /// printed once on stderr here and kept in [`OtelSink::warnings`]. A protocol other than
    /// `http/protobuf` (`OTEL_EXPORTER_OTLP_PROTOCOL=grpc`, `http/json`) is an error: the sink
    /// would send nothing the collector accepts.
    pub fn build(self) -> Result<OtelSink, BuildError> {
        let env = self.env.clone();
        let mut warnings = Vec::new();
        let (metrics_url, metrics_from) = signal_url(
            &env,
            self.endpoint.as_deref(),
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            "/v1/metrics",
        );
        let (traces_url, traces_from) = signal_url(
            &env,
            self.endpoint.as_deref(),
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "/v1/traces",
        );
        let service_name = self
            .service_name
            .clone()
            .or_else(|| env.get("OTEL_SERVICE_NAME"));
        let interval = match self.export_interval {
            Some(t) => t,
            None => env_ms(&env, &mut warnings, &["OTEL_METRIC_EXPORT_INTERVAL"])
                .unwrap_or(DEFAULT_EXPORT_INTERVAL),
        };
        let max_spans = self.max_queued_spans.unwrap_or(DEFAULT_MAX_QUEUED_SPANS);
        if sdk_disabled(&env, &mut warnings) {
            let note = "OTEL_SDK_DISABLED=true: OpenTelemetry export is disabled, this sink sends \
                        nothing (the run file is written as usual)"
                .to_owned();
            for w in &warnings {
                eprintln!("carina-otel: warning: {w}");
            }
            eprintln!("carina-otel: {note}");
            warnings.push(note);
            return Ok(OtelSink::new(Settings {
                with_spans: self.spans,
                service_name,
                attributes: self.attributes,
                timeout: Duration::ZERO,
                interval,
                metrics_url,
                traces_url,
                exporters: None,
                transport_error: Arc::new(Mutex::new(None)),
                max_spans,
                warnings,
            }));
        }
        let signals: &[(&str, &str, &str)] = &[
            (
                "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
                "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
                "metrics",
            ),
            (
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
                "traces",
            ),
        ];
        // The traces settings matter only when spans are exported.
        let signals = &signals[..if self.spans { 2 } else { 1 }];
        let mut timeouts = [DEFAULT_TIMEOUT; 2];
        for (i, (protocol_var, timeout_var, _)) in signals.iter().enumerate() {
            check_protocol(&env, &mut warnings, protocol_var)?;
            timeouts[i] = match self.timeout {
                Some(t) => t,
                None => env_ms(
                    &env,
                    &mut warnings,
                    &[timeout_var, "OTEL_EXPORTER_OTLP_TIMEOUT"],
                )
                .unwrap_or(DEFAULT_TIMEOUT),
            };
        }
        let scheme_ok = |u: &str| {
            u.starts_with("http://") || (cfg!(feature = "tls") && u.starts_with("https://"))
        };
        let checked = [(&metrics_url, metrics_from), (&traces_url, traces_from)];
        for (u, from) in checked.iter().take(signals.len()) {
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
        for w in &warnings {
            eprintln!("carina-otel: warning: {w}");
        }
        let transport_error = Arc::new(Mutex::new(None));
        let metric_exporter = opentelemetry_otlp::MetricExporter::builder()
            .with_http()
            .with_http_client(UreqClient::new(timeouts[0], transport_error.clone()))
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(metrics_url.clone())
            .with_timeout(timeouts[0])
            .with_headers(self.headers.clone())
            .with_temporality(Temporality::Cumulative)
            .build()
            .map_err(|e| BuildError(format!("metrics exporter for {metrics_url}: {e}")))?;
        let span_exporter = if self.spans {
            Some(
                opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_http_client(UreqClient::new(timeouts[1], transport_error.clone()))
                    .with_protocol(Protocol::HttpBinary)
                    .with_endpoint(traces_url.clone())
                    .with_timeout(timeouts[1])
                    .with_headers(self.headers.clone())
                    .build()
                    .map_err(|e| BuildError(format!("span exporter for {traces_url}: {e}")))?,
            )
        } else {
            None
        };
        Ok(OtelSink::new(Settings {
            with_spans: self.spans,
            service_name,
            attributes: self.attributes,
            // The final export sends metrics, then spans: the wait covers the longer one.
            timeout: timeouts[..signals.len()]
                .iter()
                .copied()
                .max()
                .unwrap_or(DEFAULT_TIMEOUT),
            interval,
            metrics_url,
            traces_url,
            exporters: Some((metric_exporter, span_exporter)),
            transport_error,
            max_spans,
            warnings,
        }))
    }
}

impl OtelSink {
    /// A builder; `OtelSink::builder().build()` uses the standard `OTEL_*` environment
    /// variables, else `http://localhost:4318`.
    pub fn builder() -> OtelSinkBuilder {
        OtelSinkBuilder::default()
    }

    /// A builder that reads the `OTEL_*` variables through `lookup` instead of the process
    /// environment (`lookup("OTEL_EXPORTER_OTLP_ENDPOINT")`), e.g. from a configuration file,
    /// or in tests that must not change the environment of a process whose other threads read
    /// it. (`OTEL_EXPORTER_OTLP_HEADERS` and `OTEL_RESOURCE_ATTRIBUTES` are read by the
    /// OpenTelemetry SDK itself, from the process environment.)
    pub fn builder_with_env(
        lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> OtelSinkBuilder {
        OtelSinkBuilder {
            env: Env(Some(Arc::new(lookup))),
            ..OtelSinkBuilder::default()
        }
    }
}

/// A duration in milliseconds from the first of `vars` that holds a valid one. A value that is
/// not a whole number of milliseconds is ignored with a warning naming the variable, as the
/// specification asks (the next variable, else the caller's default, applies).
fn env_ms(env: &Env, warnings: &mut Vec<String>, vars: &[&str]) -> Option<Duration> {
    for var in vars {
        let Some(v) = env.get(var) else { continue };
        match v.trim().parse::<u64>() {
            Ok(ms) => return Some(Duration::from_millis(ms)),
            Err(_) => {
                let next = match vars.iter().skip_while(|x| *x != var).nth(1) {
                    Some(n) => format!("{n} or the default"),
                    None => "the default".to_owned(),
                };
                warnings.push(format!(
                    "{var}={v:?} ignored: not a whole number of milliseconds (e.g. 3000); \
                     {next} applies"
                ));
            }
        }
    }
    None
}

/// `OTEL_SDK_DISABLED`: `true` (any case) disables the export; a value other than `true` or
/// `false` is ignored with a warning.
fn sdk_disabled(env: &Env, warnings: &mut Vec<String>) -> bool {
    match env.get("OTEL_SDK_DISABLED") {
        Some(v) if v.trim().eq_ignore_ascii_case("true") => true,
        Some(v) if v.trim().eq_ignore_ascii_case("false") => false,
        Some(v) => {
            warnings.push(format!(
                "OTEL_SDK_DISABLED={v:?} ignored: neither true nor false; export stays enabled"
            ));
            false
        }
        None => false,
    }
}

/// The protocol of one signal (its own variable, else `OTEL_EXPORTER_OTLP_PROTOCOL`): only
/// `http/protobuf` is implemented. A known protocol this sink does not speak is refused (the
/// collector would get nothing it accepts); an unknown value is ignored with a warning.
fn check_protocol(
    env: &Env,
    warnings: &mut Vec<String>,
    signal_var: &str,
) -> Result<(), BuildError> {
    let (var, v) = match env.get(signal_var) {
        Some(v) => (signal_var, v),
        None => match env.get("OTEL_EXPORTER_OTLP_PROTOCOL") {
            Some(v) => ("OTEL_EXPORTER_OTLP_PROTOCOL", v),
            None => return Ok(()),
        },
    };
    match v.trim() {
        "http/protobuf" => Ok(()),
        p @ ("grpc" | "http/json") => Err(BuildError(format!(
            "{var}={p:?}: carina-otel speaks OTLP over HTTP with protobuf bodies only (supported: \
             http/protobuf); {p} is not implemented. Set {var}=http/protobuf (or unset it) and \
             point the endpoint at the collector's OTLP/HTTP port (4318 by default)"
        ))),
        _ => {
            warnings.push(format!(
                "{var}={v:?} ignored: not an OTLP protocol (grpc, http/protobuf, http/json); \
                 http/protobuf is used"
            ));
            Ok(())
        }
    }
}

/// The URL for one signal: the builder's base URL + path, else the per-signal variable (a full
/// URL), else `OTEL_EXPORTER_OTLP_ENDPOINT` + path, else the default + path; with where it came
/// from, for error messages.
fn signal_url(
    env: &Env,
    base: Option<&str>,
    signal_var: &'static str,
    path: &str,
) -> (String, &'static str) {
    let join = |b: &str| format!("{}{path}", b.trim_end_matches('/'));
    if let Some(b) = base {
        return (join(b), "OtelSinkBuilder::endpoint");
    }
    if let Some(u) = env.get(signal_var) {
        return (u, signal_var);
    }
    match env.get("OTEL_EXPORTER_OTLP_ENDPOINT") {
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
            signal_url(
                &Env::default(),
                Some("http://127.0.0.1:4318/"),
                "X_UNSET",
                "/v1/metrics"
            )
            .0,
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
