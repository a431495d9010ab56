//! OpenTelemetry export for Carina: a [`Sink`] that sends per-step and per-run energy, CO2e,
//! items and wall time as OTLP metrics (and, optionally, steps as spans) to an OpenTelemetry
//! Collector or any OTLP/HTTP endpoint, so that a fleet of batch jobs lands in an existing
//! Prometheus/Grafana (or other) stack.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let otel = carina_otel::OtelSink::builder()
//!     .endpoint("http://127.0.0.1:4318") // else $OTEL_EXPORTER_OTLP_ENDPOINT, else localhost:4318
//!     .build()?;
//! let run = carina::Run::builder("scenario-db").sink(otel).start()?;
//! // ... steps ...
//! run.finish()?;
//! # Ok(()) }
//! ```
//!
//! Transport: OTLP over HTTP with protobuf bodies (`/v1/metrics`, `/v1/traces`), through a
//! small blocking client ([`ureq`]) on a worker thread of this sink; no async runtime is needed
//! and the aggregator thread never does network I/O. Metrics are exported at a checkpoint once
//! the export interval has passed (default 10 s, `OTEL_METRIC_EXPORT_INTERVAL` in ms, or
//! [`OtelSinkBuilder::export_interval`]) and at the end of the run. Failed exports are reported
//! as [`SinkError`]s at the next checkpoint (so they count in `run_end.sink_errors`); a
//! collector that is down or hangs costs at most the timeout per export, on the worker, and
//! `finish()` waits for the last export at most `2 x timeout + 1 s`.
//!
//! # Public API
//! [`OtelSink`] (a `carina_runtime::Sink`) built by [`OtelSinkBuilder`] (endpoint, headers, export
//! interval, timeout, spans on/off; errors as [`BuildError`]); the attribute keys
//! [`ATTR_STEP`], [`ATTR_STATUS`], [`ATTR_ENERGY_KIND`]; defaults [`DEFAULT_ENDPOINT`],
//! [`DEFAULT_TIMEOUT`], [`DEFAULT_EXPORT_INTERVAL`], [`DEFAULT_MAX_QUEUED_SPANS`].
//!
//! Metric names, units and attributes: `docs/FLEET.md`.

#![deny(missing_docs)]

use carina_runtime::record::{
    EnergyKind, Record, RunEnd, RunStart, StepRecord, StepStatus, StepSummary,
};
use carina_runtime::{Sink, SinkError};
use opentelemetry::metrics::{Counter, Histogram, Meter, MeterProvider as _};
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter as _, SpanLinks};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Attribute: the step name (Prometheus label `carina_step`).
pub const ATTR_STEP: &str = "carina.step";
/// Attribute: how a step ended, `ok`, `error` or `panicked` (on `carina.step.count`).
pub const ATTR_STATUS: &str = "carina.step.status";
/// Attribute and resource attribute: `measured` or `estimated`.
pub const ATTR_ENERGY_KIND: &str = "carina.energy.kind";

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

/// Span id of the run's root span (step ids count up from 1 and never reach it).
const RUN_SPAN_ID: u64 = u64::MAX;
/// Bucket bounds of `carina.step.duration`, seconds.
const DURATION_BUCKETS_S: [f64; 17] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
    3600.0,
];

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
        Ok(OtelSink {
            max_spans: self.max_queued_spans.unwrap_or(DEFAULT_MAX_QUEUED_SPANS),
            cfg: self,
            timeout,
            interval,
            metrics_url,
            traces_url,
            exporters: Some((metric_exporter, span_exporter)),
            transport_error,
            live: None,
            steps: HashMap::new(),
            run: RunSeen::default(),
            kind: "estimated",
            started_at: SystemTime::now(),
            job: String::new(),
            trace_id: TraceId::INVALID,
            spans: Vec::new(),
            dropped_spans: 0,
            last_export: Instant::now(),
            finished: false,
        })
    }
}

/// A [`Sink`] exporting a run's energy, CO2e, items and time to an OTLP/HTTP endpoint.
///
/// Built with [`OtelSink::builder`]; pass it to `carina::Run::builder(..).sink(..)`. One sink
/// serves one run. See the crate documentation for when it exports and what happens when the
/// collector is unreachable.
pub struct OtelSink {
    cfg: OtelSinkBuilder,
    timeout: Duration,
    interval: Duration,
    metrics_url: String,
    traces_url: String,
    /// Until the first record: the exporters, waiting for the run's resource.
    exporters: Option<(
        opentelemetry_otlp::MetricExporter,
        Option<opentelemetry_otlp::SpanExporter>,
    )>,
    transport_error: Arc<Mutex<Option<String>>>,
    live: Option<Live>,
    /// What the `step` records added so far, per step name (reconciled with the summaries).
    steps: HashMap<String, StepSeen>,
    run: RunSeen,
    kind: &'static str,
    started_at: SystemTime,
    job: String,
    trace_id: TraceId,
    spans: Vec<SpanData>,
    max_spans: usize,
    dropped_spans: u64,
    last_export: Instant,
    finished: bool,
}

impl std::fmt::Debug for OtelSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtelSink")
            .field("metrics_url", &self.metrics_url)
            .field("traces_url", &self.cfg.spans.then_some(&self.traces_url))
            .field("timeout", &self.timeout)
            .field("export_interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl OtelSink {
    /// A builder; `OtelSink::builder().build()` uses the standard `OTEL_EXPORTER_OTLP_*`
    /// environment variables, else `http://localhost:4318`.
    pub fn builder() -> OtelSinkBuilder {
        OtelSinkBuilder::default()
    }

    /// The URL metrics are posted to.
    pub fn metrics_url(&self) -> &str {
        &self.metrics_url
    }

    /// The URL spans are posted to (used only [`with_spans`](OtelSinkBuilder::with_spans)).
    pub fn traces_url(&self) -> &str {
        &self.traces_url
    }

    /// Creates the meter provider (with the run's resource), the instruments and the worker.
    fn init(&mut self, start: Option<&RunStart>) -> Result<(), SinkError> {
        let Some((metric_exporter, mut span_exporter)) = self.exporters.take() else {
            return Ok(());
        };
        let mut attrs: Vec<KeyValue> = Vec::new();
        let service = self
            .cfg
            .service_name
            .clone()
            .or_else(|| {
                std::env::var("OTEL_SERVICE_NAME")
                    .ok()
                    .filter(|s| !s.is_empty())
            })
            .or_else(|| start.map(|s| s.job.clone()))
            .unwrap_or_else(|| "carina".to_owned());
        attrs.push(KeyValue::new("service.name", service));
        if let Some(s) = start {
            let used: Vec<_> = s.energy_sources.iter().filter(|e| e.used).collect();
            self.kind = EnergyKind::of_sources(&s.energy_sources).as_str();
            let sources: Vec<&str> = used.iter().map(|e| e.name.as_str()).collect();
            attrs.extend([
                KeyValue::new("service.instance.id", s.run_id.clone()),
                KeyValue::new("host.name", s.host.clone()),
                KeyValue::new("process.pid", i64::from(s.pid)),
                KeyValue::new("carina.job", s.job.clone()),
                KeyValue::new("carina.run_id", s.run_id.clone()),
                KeyValue::new(ATTR_ENERGY_KIND, self.kind),
                KeyValue::new("carina.energy.source", sources.join(",")),
                KeyValue::new("carina.scope", s.scope.map_or("unknown", |x| x.as_str())),
            ]);
            if let Some(zone) = &s.carbon.zone {
                attrs.push(KeyValue::new("carina.carbon.zone", zone.clone()));
            }
            self.job = s.job.clone();
            self.trace_id = trace_id_of(&s.run_id);
            if let Ok(t) = s.started_at.parse::<jiff::Timestamp>()
                && let Ok(ns) = u64::try_from(t.as_nanosecond())
            {
                self.started_at = SystemTime::UNIX_EPOCH + Duration::from_nanos(ns);
            }
        } else {
            self.trace_id = trace_id_of(&format!("{:?}", self.started_at));
        }
        attrs.extend(
            self.cfg
                .attributes
                .iter()
                .map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
        );
        // Resource::builder() reads OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME; ours win.
        let resource = Resource::builder().with_attributes(attrs).build();
        let last_error = Arc::new(Mutex::new(None));
        let reader = PeriodicReader::builder(Reporting {
            inner: metric_exporter,
            last_error: last_error.clone(),
        })
        // The worker exports on demand (force_flush); the reader's own timer never fires.
        .with_interval(Duration::from_secs(365 * 24 * 3600))
        .build();
        let provider = SdkMeterProvider::builder()
            .with_resource(resource.clone())
            .with_reader(reader)
            .build();
        let meter = provider.meter_with_scope(scope());
        let instruments = Instruments::new(&meter);
        if let Some(x) = span_exporter.as_mut() {
            x.set_resource(&resource);
        }
        let shared = Arc::new(Shared::default());
        // Room for one pending export and the final one: `send` never blocks.
        let (tx, rx) = mpsc::sync_channel(2);
        let worker = Worker {
            meters: provider,
            spans: span_exporter,
            last_error,
            transport_error: self.transport_error.clone(),
            shared: shared.clone(),
            metrics_url: self.metrics_url.clone(),
            traces_url: self.traces_url.clone(),
        };
        std::thread::Builder::new()
            .name("carina-otel".into())
            .spawn(move || worker.run(rx))
            .map_err(|e| {
                SinkError::Other(format!("OpenTelemetry sink: cannot start its thread: {e}"))
            })?;
        self.live = Some(Live {
            instruments,
            attrs: HashMap::new(),
            tx,
            shared,
        });
        self.last_export = Instant::now();
        Ok(())
    }

    fn step(&mut self, s: &StepRecord) {
        let Some(live) = self.live.as_mut() else {
            return;
        };
        let a = live.attrs_for(&s.name, self.kind);
        let i = &live.instruments;
        let wall = (s.end_s - s.start_s).max(carina_runtime::Seconds::ZERO);
        i.step_energy.add(s.energy_j.into(), &a.energy);
        i.step_co2e.add(s.co2e_g.into(), &a.energy);
        i.step_count.add(1, &a.status[status_index(s.status)]);
        i.step_items.add(s.items, &a.name);
        i.step_wall.add(wall.into(), &a.name);
        i.step_duration.record(wall.into(), &a.name);
        let tally = |seen: &mut StepSeen| {
            seen.energy_j += s.energy_j.0;
            seen.co2e_g += s.co2e_g.0;
            seen.wall_s += wall.0;
            seen.items = seen.items.saturating_add(s.items);
            seen.count[status_index(s.status)] += 1;
        };
        // Looked up by &str: no allocation per record once the name is known.
        match self.steps.get_mut(s.name.as_ref()) {
            Some(seen) => tally(seen),
            None => tally(self.steps.entry(s.name.to_string()).or_default()),
        }
        if self.cfg.spans {
            self.queue_span(step_span(s, self.trace_id, self.started_at, self.kind));
        }
    }

    /// Adds what the summary has beyond the `step` records seen (all of it when the run
    /// records summaries only; steps without a record of their own otherwise).
    fn summary(&mut self, s: &StepSummary) {
        let Some(live) = self.live.as_mut() else {
            return;
        };
        let a = live.attrs_for(&s.name, self.kind);
        let i = &live.instruments;
        let seen = self.steps.entry(s.name.clone()).or_default();
        add_f64(
            &i.step_energy,
            s.energy_j.into(),
            &mut seen.energy_j,
            &a.energy,
        );
        add_f64(&i.step_co2e, s.co2e_g.into(), &mut seen.co2e_g, &a.energy);
        add_f64(&i.step_wall, s.wall_s.into(), &mut seen.wall_s, &a.name);
        add_u64(&i.step_items, s.items, &mut seen.items, &a.name);
        let ok = s.count.saturating_sub(s.errors).saturating_sub(s.panics);
        for (k, total) in [ok, s.errors, s.panics].into_iter().enumerate() {
            add_u64(&i.step_count, total, &mut seen.count[k], &a.status[k]);
        }
    }

    fn power(&mut self, energy_j: f64, co2e_g: f64, wall_s: f64) {
        let Some(live) = self.live.as_ref() else {
            return;
        };
        let kind = [KeyValue::new(ATTR_ENERGY_KIND, self.kind)];
        let i = &live.instruments;
        add_f64(
            &i.run_energy,
            self.run.energy_j + energy_j,
            &mut self.run.energy_j,
            &kind,
        );
        add_f64(
            &i.run_co2e,
            self.run.co2e_g + co2e_g,
            &mut self.run.co2e_g,
            &kind,
        );
        add_f64(
            &i.run_wall,
            self.run.wall_s + wall_s,
            &mut self.run.wall_s,
            &[],
        );
    }

    fn run_end(&mut self, e: &RunEnd) {
        let Some(live) = self.live.as_ref() else {
            return;
        };
        self.kind = e.energy_kind.as_str();
        let kind = [KeyValue::new(ATTR_ENERGY_KIND, self.kind)];
        let i = &live.instruments;
        add_f64(
            &i.run_energy,
            e.energy_j.into(),
            &mut self.run.energy_j,
            &kind,
        );
        add_f64(&i.run_co2e, e.co2e_g.into(), &mut self.run.co2e_g, &kind);
        add_f64(&i.run_wall, e.wall_s.into(), &mut self.run.wall_s, &[]);
        i.run_items.add(e.items, &[]);
        i.run_count.add(1, &[]);
        if self.cfg.spans {
            let span = run_span(e, &self.job, self.trace_id, self.started_at, self.kind);
            self.queue_span(span);
        }
    }

    fn queue_span(&mut self, span: SpanData) {
        if self.spans.len() >= self.max_spans {
            self.dropped_spans += 1;
        } else {
            self.spans.push(span);
        }
    }

    /// Hands an export to the worker if none is running; never blocks.
    fn trigger_export(&mut self) -> Result<(), SinkError> {
        let Some(live) = self.live.as_ref() else {
            return Ok(());
        };
        if live.shared.busy.swap(true, Ordering::AcqRel) {
            return Ok(()); // the previous export is still running: the next checkpoint retries
        }
        self.last_export = Instant::now();
        match live
            .tx
            .try_send(Job::Export(std::mem::take(&mut self.spans)))
        {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(Job::Export(spans))) => {
                live.shared.busy.store(false, Ordering::Release);
                self.spans = spans;
                Ok(())
            }
            Err(_) => Err(SinkError::Other(
                "OpenTelemetry sink: its export thread has stopped; no more exports".into(),
            )),
        }
    }

    /// Failures reported by the worker since the last call, and spans dropped, as one error.
    fn take_failures(&mut self) -> Result<(), SinkError> {
        let mut msgs = match self.live.as_ref() {
            Some(live) => std::mem::take(&mut *lock(&live.shared.failures)),
            None => Vec::new(),
        };
        if self.dropped_spans > 0 {
            msgs.push(format!(
                "{} spans dropped: more than {} waited for the next export (raise \
                 OtelSinkBuilder::max_queued_spans or lower the export interval)",
                self.dropped_spans, self.max_spans
            ));
            self.dropped_spans = 0;
        }
        if msgs.is_empty() {
            Ok(())
        } else {
            Err(SinkError::Other(format!(
                "OpenTelemetry export failed: {}",
                msgs.join("; ")
            )))
        }
    }

    fn finish_now(&mut self) -> Result<(), SinkError> {
        self.finished = true;
        let Some(live) = self.live.as_ref() else {
            return Ok(());
        };
        let (reply_tx, reply_rx) = mpsc::channel();
        let spans = std::mem::take(&mut self.spans);
        let wait = 2 * self.timeout + Duration::from_secs(1);
        let result = match live.tx.try_send(Job::Finish(spans, reply_tx)) {
            Ok(()) => match reply_rx.recv_timeout(wait) {
                Ok(r) => r,
                Err(_) => Err(format!(
                    "the final export to {} did not finish within {:.1} s; the last metrics \
                     may be lost",
                    self.metrics_url,
                    wait.as_secs_f64()
                )),
            },
            Err(_) => Err("its export thread has stopped; the last metrics are lost".into()),
        };
        let earlier = self.take_failures();
        match (result, earlier) {
            (Ok(()), r) => r,
            (Err(m), Ok(())) => Err(SinkError::Other(format!(
                "OpenTelemetry export failed: {m}"
            ))),
            (Err(m), Err(e)) => Err(SinkError::Other(format!("{e}; {m}"))),
        }
    }
}

impl Sink for OtelSink {
    fn write(&mut self, record: &Record) -> Result<(), SinkError> {
        if self.finished {
            return Ok(());
        }
        if self.exporters.is_some() {
            let start = match record {
                Record::RunStart(s) => Some(s),
                _ => None,
            };
            self.init(start)?;
        }
        match record {
            Record::Step(s) => self.step(s),
            Record::StepSummary(s) => self.summary(s),
            Record::Power(p) => self.power(
                p.energy_j.into(),
                p.co2e_g.into(),
                (p.end_s - p.start_s)
                    .max(carina_runtime::Seconds::ZERO)
                    .into(),
            ),
            Record::RunEnd(e) => self.run_end(e),
            _ => {}
        }
        Ok(())
    }

    fn checkpoint(&mut self) -> Result<(), SinkError> {
        if self.finished {
            return Ok(());
        }
        let failures = self.take_failures();
        if self.last_export.elapsed() >= self.interval {
            self.trigger_export()?;
        }
        failures
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        if self.finished {
            return Ok(());
        }
        self.finish_now()
    }
}

impl Drop for OtelSink {
    fn drop(&mut self) {
        // Never flushed (the run was abandoned): let the worker export once more, in the
        // background, without waiting for it.
        if !self.finished
            && let Some(live) = self.live.as_ref()
        {
            let (reply_tx, _) = mpsc::channel();
            let _ = live
                .tx
                .try_send(Job::Finish(std::mem::take(&mut self.spans), reply_tx));
        }
    }
}

/// Cumulative amounts already added to the run-level counters.
#[derive(Default)]
struct RunSeen {
    energy_j: f64,
    co2e_g: f64,
    wall_s: f64,
}

/// Cumulative amounts already added to one step name's counters.
#[derive(Default)]
struct StepSeen {
    energy_j: f64,
    co2e_g: f64,
    wall_s: f64,
    items: u64,
    /// Per status: ok, error, panicked.
    count: [u64; 3],
}

/// Adds `total - *seen` to a monotonic counter when positive (beyond rounding) and remembers
/// `total`.
fn add_f64(c: &Counter<f64>, total: f64, seen: &mut f64, attrs: &[KeyValue]) {
    let d = total - *seen;
    if d.is_finite() && d > 1e-12 * total.abs().max(1.0) {
        c.add(d, attrs);
        *seen = total;
    }
}

fn add_u64(c: &Counter<u64>, total: u64, seen: &mut u64, attrs: &[KeyValue]) {
    if total > *seen {
        c.add(total - *seen, attrs);
        *seen = total;
    }
}

fn status_index(s: StepStatus) -> usize {
    match s {
        StepStatus::Ok => 0,
        StepStatus::Error => 1,
        StepStatus::Panicked => 2,
    }
}

struct Live {
    instruments: Instruments,
    /// Attribute sets per step name, built once.
    attrs: HashMap<String, Arc<StepAttrs>>,
    tx: SyncSender<Job>,
    shared: Arc<Shared>,
}

impl Live {
    fn attrs_for(&mut self, name: &str, kind: &'static str) -> Arc<StepAttrs> {
        if let Some(a) = self.attrs.get(name) {
            return a.clone();
        }
        let step = KeyValue::new(ATTR_STEP, name.to_owned());
        let st = |s: &'static str| [step.clone(), KeyValue::new(ATTR_STATUS, s)];
        let a = Arc::new(StepAttrs {
            name: [step.clone()],
            energy: [step.clone(), KeyValue::new(ATTR_ENERGY_KIND, kind)],
            status: [st("ok"), st("error"), st("panicked")],
        });
        self.attrs.insert(name.to_owned(), a.clone());
        a
    }
}

struct StepAttrs {
    name: [KeyValue; 1],
    energy: [KeyValue; 2],
    status: [[KeyValue; 2]; 3],
}

struct Instruments {
    step_energy: Counter<f64>,
    step_co2e: Counter<f64>,
    step_count: Counter<u64>,
    step_items: Counter<u64>,
    step_wall: Counter<f64>,
    step_duration: Histogram<f64>,
    run_energy: Counter<f64>,
    run_co2e: Counter<f64>,
    run_wall: Counter<f64>,
    run_items: Counter<u64>,
    run_count: Counter<u64>,
}

impl Instruments {
    fn new(m: &Meter) -> Self {
        let f = |name: &'static str, unit: &'static str, desc: &'static str| {
            m.f64_counter(name)
                .with_unit(unit)
                .with_description(desc)
                .build()
        };
        let u = |name: &'static str, unit: &'static str, desc: &'static str| {
            m.u64_counter(name)
                .with_unit(unit)
                .with_description(desc)
                .build()
        };
        Instruments {
            step_energy: f(
                "carina.step.energy",
                "J",
                "Energy attributed to the step, children included",
            ),
            step_co2e: f(
                "carina.step.co2e",
                "g",
                "Emissions of the step's energy, CO2e",
            ),
            step_count: u("carina.step.count", "{step}", "Step instances that ended"),
            step_items: u("carina.step.items", "{item}", "Items the step processed"),
            step_wall: f(
                "carina.step.wall_time",
                "s",
                "Wall time of the step instances, summed",
            ),
            step_duration: m
                .f64_histogram("carina.step.duration")
                .with_unit("s")
                .with_description("Duration of one step instance")
                .with_boundaries(DURATION_BUCKETS_S.to_vec())
                .build(),
            run_energy: f("carina.run.energy", "J", "Energy of the run in its scope"),
            run_co2e: f(
                "carina.run.co2e",
                "g",
                "Emissions of the run's energy, CO2e",
            ),
            run_wall: f("carina.run.wall_time", "s", "Wall time of the run"),
            run_items: u(
                "carina.run.items",
                "{item}",
                "Items of the run (at its end)",
            ),
            run_count: u("carina.run.count", "{run}", "Runs finished"),
        }
    }
}

fn scope() -> InstrumentationScope {
    InstrumentationScope::builder("carina-otel")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
}

#[derive(Default)]
struct Shared {
    /// An export is queued or running.
    busy: AtomicBool,
    /// Failed exports not yet reported.
    failures: Mutex<Vec<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

enum Job {
    Export(Vec<SpanData>),
    Finish(Vec<SpanData>, mpsc::Sender<Result<(), String>>),
}

/// Owns the providers and exporters; all network I/O happens here.
struct Worker {
    meters: SdkMeterProvider,
    spans: Option<opentelemetry_otlp::SpanExporter>,
    last_error: Arc<Mutex<Option<String>>>,
    transport_error: Arc<Mutex<Option<String>>>,
    shared: Arc<Shared>,
    metrics_url: String,
    traces_url: String,
}

impl Worker {
    fn run(self, rx: Receiver<Job>) {
        loop {
            match rx.recv() {
                Ok(Job::Export(spans)) => {
                    let mut errors = Vec::new();
                    if let Err(e) = self.meters.force_flush() {
                        errors.push(self.metrics_error(&e.to_string()));
                    }
                    if let Err(e) = self.export_spans(spans) {
                        errors.push(e);
                    }
                    lock(&self.shared.failures).extend(errors);
                    self.shared.busy.store(false, Ordering::Release);
                }
                Ok(Job::Finish(spans, reply)) => {
                    let r = self.finish(spans);
                    let _ = reply.send(r);
                    return;
                }
                Err(_) => {
                    let _ = self.finish(Vec::new());
                    return;
                }
            }
        }
    }

    fn finish(&self, spans: Vec<SpanData>) -> Result<(), String> {
        let mut errors = Vec::new();
        if let Err(e) = self.export_spans(spans) {
            errors.push(e);
        }
        // Shutting the reader down collects and exports one last time.
        if let Err(e) = self.meters.shutdown() {
            errors.push(self.metrics_error(&e.to_string()));
        }
        if let Some(x) = &self.spans {
            let _ = x.shutdown();
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    fn metrics_error(&self, fallback: &str) -> String {
        let why = lock(&self.last_error)
            .take()
            .unwrap_or_else(|| fallback.to_owned());
        format!("metrics to {}: {why}{}", self.metrics_url, self.cause())
    }

    /// `" (<transport error>)"` when the HTTP client failed, else empty.
    fn cause(&self) -> String {
        lock(&self.transport_error)
            .take()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default()
    }

    fn export_spans(&self, spans: Vec<SpanData>) -> Result<(), String> {
        match &self.spans {
            Some(x) if !spans.is_empty() => {
                let n = spans.len();
                futures_executor::block_on(x.export(spans))
                    .map_err(|e| format!("{n} spans to {}: {e}{}", self.traces_url, self.cause()))
            }
            _ => Ok(()),
        }
    }
}

/// The OTLP metric exporter, keeping the text of the last failure (the reader reports only
/// that an export failed).
#[derive(Debug)]
struct Reporting {
    inner: opentelemetry_otlp::MetricExporter,
    last_error: Arc<Mutex<Option<String>>>,
}

impl PushMetricExporter for Reporting {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let r = self.inner.export(metrics).await;
        if let Err(e) = &r {
            *lock(&self.last_error) = Some(e.to_string());
        }
        r
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }
    fn temporality(&self) -> Temporality {
        self.inner.temporality()
    }
}

/// A blocking HTTP/1.1 client for the OTLP exporter: [`ureq`], with one overall timeout per
/// request and every status code returned as a response (the exporter classifies them).
#[derive(Debug)]
struct UreqClient {
    agent: ureq::Agent,
    /// The last transport error's text (the exporter reports only "network error").
    last_error: Arc<Mutex<Option<String>>>,
}

impl UreqClient {
    fn new(timeout: Duration, last_error: Arc<Mutex<Option<String>>>) -> Self {
        let cfg = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .user_agent(concat!("carina-otel/", env!("CARGO_PKG_VERSION")))
            .build();
        UreqClient {
            agent: ureq::Agent::new_with_config(cfg),
            last_error,
        }
    }
}

/// Largest response body read (the collector's answer is a few bytes).
const MAX_RESPONSE_BYTES: u64 = 4 << 20;

#[async_trait::async_trait]
impl HttpClient for UreqClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let (parts, body) = request.into_parts();
        let sent = self
            .agent
            .run(Request::from_parts(parts, &body[..]))
            .and_then(|response| {
                let (parts, mut body) = response.into_parts();
                let bytes = body.with_config().limit(MAX_RESPONSE_BYTES).read_to_vec()?;
                Ok(Response::from_parts(parts, Bytes::from(bytes)))
            });
        if let Err(e) = &sent {
            *lock(&self.last_error) = Some(e.to_string());
        }
        Ok(sent?)
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

/// A trace id derived from the run id (FNV-1a, twice), so a run's trace can be found from it.
fn trace_id_of(run_id: &str) -> TraceId {
    let fnv = |seed: u64| {
        run_id.bytes().fold(seed, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    let hi = fnv(0xcbf2_9ce4_8422_2325);
    let lo = fnv(0x8422_2325_cbf2_9ce4);
    let id = (u128::from(hi) << 64) | u128::from(lo);
    TraceId::from(if id == 0 { 1 } else { id })
}

fn at(start: SystemTime, offset_s: f64) -> SystemTime {
    if offset_s.is_finite() && offset_s > 0.0 {
        start + Duration::from_secs_f64(offset_s)
    } else {
        start
    }
}

fn span_context(trace_id: TraceId, span_id: u64) -> SpanContext {
    SpanContext::new(
        trace_id,
        SpanId::from(span_id),
        TraceFlags::SAMPLED,
        false,
        TraceState::default(),
    )
}

fn step_span(s: &StepRecord, trace_id: TraceId, t0: SystemTime, kind: &'static str) -> SpanData {
    let mut attributes = vec![
        KeyValue::new("carina.step.id", s.id as i64),
        KeyValue::new("carina.step.thread", i64::from(s.thread)),
        KeyValue::new("carina.step.items", s.items as i64),
        KeyValue::new("carina.step.energy", s.energy_j.0),
        KeyValue::new("carina.step.self_energy", s.self_energy_j.0),
        KeyValue::new("carina.step.co2e", s.co2e_g.0),
        KeyValue::new(ATTR_ENERGY_KIND, kind),
        KeyValue::new(ATTR_STATUS, s.status.as_str()),
    ];
    if s.unfinished {
        attributes.push(KeyValue::new("carina.step.unfinished", true));
    }
    let status = match s.status {
        StepStatus::Ok => Status::Unset,
        StepStatus::Error => Status::error("step returned an error"),
        StepStatus::Panicked => Status::error("step panicked"),
    };
    SpanData {
        span_context: span_context(trace_id, s.id),
        parent_span_id: SpanId::from(s.parent.unwrap_or(RUN_SPAN_ID)),
        parent_span_is_remote: false,
        span_kind: SpanKind::Internal,
        name: s.name.to_string().into(),
        start_time: at(t0, s.start_s.into()),
        end_time: at(t0, s.end_s.into()),
        attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status,
        instrumentation_scope: scope(),
    }
}

fn run_span(
    e: &RunEnd,
    job: &str,
    trace_id: TraceId,
    t0: SystemTime,
    kind: &'static str,
) -> SpanData {
    SpanData {
        span_context: span_context(trace_id, RUN_SPAN_ID),
        parent_span_id: SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: SpanKind::Internal,
        name: if job.is_empty() {
            "run".to_owned()
        } else {
            job.to_owned()
        }
        .into(),
        start_time: t0,
        end_time: at(t0, e.wall_s.into()),
        attributes: vec![
            KeyValue::new("carina.run.energy", e.energy_j.0),
            KeyValue::new("carina.run.co2e", e.co2e_g.0),
            KeyValue::new("carina.run.items", e.items as i64),
            KeyValue::new("carina.run.steps", e.steps as i64),
            KeyValue::new("carina.run.unattributed_energy", e.unattributed_j.0),
            KeyValue::new(ATTR_ENERGY_KIND, kind),
        ],
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: scope(),
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
    fn trace_ids_are_stable_and_valid() {
        assert_eq!(trace_id_of("a"), trace_id_of("a"));
        assert_ne!(trace_id_of("a"), trace_id_of("b"));
        assert_ne!(trace_id_of(""), TraceId::INVALID);
    }

    #[test]
    fn https_without_tls_is_refused_at_build() {
        let r = OtelSink::builder()
            .endpoint("https://example.invalid")
            .build();
        assert_eq!(r.is_err(), !cfg!(feature = "tls"));
    }
}
