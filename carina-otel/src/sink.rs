//! [`OtelSink`]: the records of a run become instrument updates and spans, handed to the export
//! worker at checkpoints and at the end.

use crate::attributes::{ATTR_ENERGY_KIND, scope};
use crate::instruments::{Instruments, StepAttrs, status_index};
use crate::spans::{run_span, step_span, trace_id_of};
use crate::worker::{Job, Reporting, Shared, Worker, lock};
use carina_runtime::record::{EnergyKind, Record, RunEnd, RunStart, StepRecord, StepSummary};
use carina_runtime::{Sink, SinkError};
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, MeterProvider as _};
use opentelemetry::trace::TraceId;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{SpanData, SpanExporter as _};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// What the builder resolved: the configuration the sink keeps, and the exporters it hands to
/// its worker at the first record.
pub(crate) struct Settings {
    pub(crate) with_spans: bool,
    pub(crate) service_name: Option<String>,
    pub(crate) attributes: Vec<(String, String)>,
    pub(crate) timeout: Duration,
    pub(crate) interval: Duration,
    pub(crate) metrics_url: String,
    pub(crate) traces_url: String,
    /// `None` when export is disabled (`OTEL_SDK_DISABLED=true`): the sink does nothing.
    pub(crate) exporters: Option<(
        opentelemetry_otlp::MetricExporter,
        Option<opentelemetry_otlp::SpanExporter>,
    )>,
    pub(crate) transport_error: Arc<Mutex<Option<String>>>,
    pub(crate) max_spans: usize,
    pub(crate) warnings: Vec<String>,
}

/// A [`Sink`] exporting a run's energy, CO2e, items and time to an OTLP/HTTP endpoint.
///
/// Built with [`OtelSink::builder`]; pass it to `carina::Run::builder(..).sink(..)`. One sink
/// serves one run. See the crate documentation for when it exports and what happens when the
/// collector is unreachable.
pub struct OtelSink {
    with_spans: bool,
    service_name: Option<String>,
    attributes: Vec<(String, String)>,
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
    enabled: bool,
    warnings: Vec<String>,
}

impl std::fmt::Debug for OtelSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtelSink")
            .field("metrics_url", &self.metrics_url)
            .field("traces_url", &self.with_spans.then_some(&self.traces_url))
            .field("enabled", &self.enabled)
            .field("timeout", &self.timeout)
            .field("export_interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl OtelSink {
    /// The sink the builder configured: nothing runs until the first record.
    pub(crate) fn new(s: Settings) -> OtelSink {
        OtelSink {
            with_spans: s.with_spans,
            service_name: s.service_name,
            attributes: s.attributes,
            timeout: s.timeout,
            interval: s.interval,
            metrics_url: s.metrics_url,
            traces_url: s.traces_url,
            enabled: s.exporters.is_some(),
            exporters: s.exporters,
            warnings: s.warnings,
            transport_error: s.transport_error,
            live: None,
            steps: HashMap::new(),
            run: RunSeen::default(),
            kind: "estimated",
            started_at: SystemTime::now(),
            job: String::new(),
            trace_id: TraceId::INVALID,
            spans: Vec::new(),
            max_spans: s.max_spans,
            dropped_spans: 0,
            last_export: Instant::now(),
            finished: false,
        }
    }

    /// Whether the sink exports at all: `false` when `OTEL_SDK_DISABLED=true` built it as a
    /// sink that does nothing.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// What the build said about the configuration (also printed once on stderr then): `OTEL_*`
    /// values it ignored, and that export is disabled. Empty when all was well.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The time one export may take, retries included, as the build resolved it (the longer of
    /// the metrics' and the traces' when both are exported; zero when disabled).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The least time between two metric exports, as the build resolved it.
    pub fn export_interval(&self) -> Duration {
        self.interval
    }

    /// The URL metrics are posted to.
    pub fn metrics_url(&self) -> &str {
        &self.metrics_url
    }

    /// The URL spans are posted to (used only [`with_spans`](crate::OtelSinkBuilder::with_spans)).
    pub fn traces_url(&self) -> &str {
        &self.traces_url
    }

    /// Creates the meter provider (with the run's resource), the instruments and the worker.
    fn init(&mut self, start: Option<&RunStart>) -> Result<(), SinkError> {
        let Some((metric_exporter, mut span_exporter)) = self.exporters.take() else {
            return Ok(());
        };
        let mut attrs: Vec<KeyValue> = Vec::new();
        // The builder resolved OTEL_SERVICE_NAME already.
        let service = self
            .service_name
            .clone()
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
            if let Ok(ns) = u64::try_from(s.started_at.as_nanosecond()) {
                self.started_at = SystemTime::UNIX_EPOCH + Duration::from_nanos(ns);
            }
        } else {
            self.trace_id = trace_id_of(&format!("{:?}", self.started_at));
        }
        attrs.extend(
            self.attributes
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
        if self.with_spans {
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
        if self.with_spans {
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
                "OpenTelemetry export failed: {}; {}",
                msgs.join("; "),
                self.what_is_lost()
            )))
        }
    }

    /// What a failed export during the run costs: nothing is kept for a retry beyond the
    /// exporter's own (within the timeout), but metrics are cumulative.
    fn what_is_lost(&self) -> &'static str {
        if self.with_spans {
            "nothing is re-sent: metrics are cumulative, so the next successful export carries \
             their totals, but the spans of a failed export are dropped"
        } else {
            "nothing is re-sent: metrics are cumulative, so the next successful export carries \
             their totals"
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
        let last = |m: String| {
            format!(
                "OpenTelemetry final export failed: {m}; the run's last metrics{} did not reach \
                 the collector (the run file has every figure). It came after run_end was \
                 written, so run_end.sink_errors does not count it: the summary's sink_errors \
                 and warnings do",
                if self.with_spans { " and spans" } else { "" }
            )
        };
        match (result, earlier) {
            (Ok(()), r) => r,
            (Err(m), Ok(())) => Err(SinkError::Other(last(m))),
            (Err(m), Err(e)) => Err(SinkError::Other(format!("{e}; {}", last(m)))),
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

/// What the sink holds from its first record on: the instruments, the attribute sets and the
/// channel to its worker.
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
        let a = Arc::new(StepAttrs::new(name, kind));
        self.attrs.insert(name.to_owned(), a.clone());
        a
    }
}
