//! The names Carina's telemetry carries: the attribute keys, and the instrumentation scope of
//! every metric and span.

use opentelemetry::InstrumentationScope;

/// Attribute: the step name (Prometheus label `carina_step`).
pub const ATTR_STEP: &str = "carina.step";
/// Attribute: how a step ended, `ok`, `error` or `panicked` (on `carina.step.count`).
pub const ATTR_STATUS: &str = "carina.step.status";
/// Attribute and resource attribute: `measured` or `estimated`.
pub const ATTR_ENERGY_KIND: &str = "carina.energy.kind";

pub(crate) fn scope() -> InstrumentationScope {
    InstrumentationScope::builder("carina-otel")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
}
