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
//! `finish()` waits for the last export at most `2 x timeout + 1 s`. The last export comes
//! after `run_end` is written: its failure is counted in the returned summary's `sink_errors`
//! and `warnings` (not in the run file) and printed once on stderr by `finish()`.
//!
//! Environment: the standard `OTEL_*` variables, read as the OTLP exporter specification says
//! (invalid durations ignored with a warning, `OTEL_SDK_DISABLED=true` builds a sink that sends
//! nothing, `grpc` and `http/json` protocols refused: only `http/protobuf` is implemented);
//! [`OtelSink::builder_with_env`] takes them from a function instead. Details: `docs/FLEET.md`.
//!
//! # Public API
//! [`OtelSink`] (a `carina_runtime::Sink`; what the build resolved: `timeout`,
//! `export_interval`, `is_enabled`, `warnings`) built by [`OtelSinkBuilder`] (endpoint, headers,
//! export interval, timeout, spans on/off; errors as [`BuildError`]); the attribute keys
//! [`ATTR_STEP`], [`ATTR_STATUS`], [`ATTR_ENERGY_KIND`]; defaults [`DEFAULT_ENDPOINT`],
//! [`DEFAULT_TIMEOUT`], [`DEFAULT_EXPORT_INTERVAL`], [`DEFAULT_MAX_QUEUED_SPANS`].
//!
//! Metric names, units and attributes: `docs/FLEET.md`.
//!
//! [`Sink`]: carina_runtime::Sink
//! [`SinkError`]: carina_runtime::SinkError

#![deny(missing_docs)]

// One concept per file; the arrows are the only imports between them, so none forms a circle:
// builder -> sink, http; sink -> attributes, instruments, spans, worker; instruments, spans ->
// attributes. `builder` resolves the configuration (environment, URLs) and creates the exporters,
// `http` is the blocking client they post with, `sink` turns records into instrument updates
// and spans, `instruments` holds the metric instruments, `spans` builds span data, and `worker`
// owns the thread that does all network I/O.
mod attributes;
mod builder;
mod http;
mod instruments;
mod sink;
mod spans;
mod worker;

pub use attributes::{ATTR_ENERGY_KIND, ATTR_STATUS, ATTR_STEP};
pub use builder::{
    BuildError, DEFAULT_ENDPOINT, DEFAULT_EXPORT_INTERVAL, DEFAULT_MAX_QUEUED_SPANS,
    DEFAULT_TIMEOUT, OtelSinkBuilder,
};
pub use sink::OtelSink;
