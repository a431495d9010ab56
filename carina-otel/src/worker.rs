//! The export worker: a thread of the sink that owns the meter provider and the span exporter
//! and does all network I/O, so the aggregator thread never waits on the collector.

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{SdkMeterProvider, Temporality};
use opentelemetry_sdk::trace::{SpanData, SpanExporter as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
pub(crate) struct Shared {
    /// An export is queued or running.
    pub(crate) busy: AtomicBool,
    /// Failed exports not yet reported.
    pub(crate) failures: Mutex<Vec<String>>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) enum Job {
    Export(Vec<SpanData>),
    Finish(Vec<SpanData>, mpsc::Sender<Result<(), String>>),
}

/// Owns the providers and exporters; all network I/O happens here.
pub(crate) struct Worker {
    pub(crate) meters: SdkMeterProvider,
    pub(crate) spans: Option<opentelemetry_otlp::SpanExporter>,
    pub(crate) last_error: Arc<Mutex<Option<String>>>,
    pub(crate) transport_error: Arc<Mutex<Option<String>>>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) metrics_url: String,
    pub(crate) traces_url: String,
}

impl Worker {
    pub(crate) fn run(self, rx: Receiver<Job>) {
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
pub(crate) struct Reporting {
    pub(crate) inner: opentelemetry_otlp::MetricExporter,
    pub(crate) last_error: Arc<Mutex<Option<String>>>,
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
