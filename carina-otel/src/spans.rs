//! Spans built from records: one per `step` record under a root span for the run, in one trace
//! per run.

use crate::attributes::{ATTR_ENERGY_KIND, ATTR_STATUS, scope};
use carina_runtime::record::{RunEnd, StepRecord, StepStatus};
use opentelemetry::KeyValue;
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use std::time::{Duration, SystemTime};

/// Span id of the run's root span (step ids count up from 1 and never reach it).
const RUN_SPAN_ID: u64 = u64::MAX;

/// A trace id derived from the run id (FNV-1a, twice), so a run's trace can be found from it.
pub(crate) fn trace_id_of(run_id: &str) -> TraceId {
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

pub(crate) fn step_span(
    s: &StepRecord,
    trace_id: TraceId,
    t0: SystemTime,
    kind: &'static str,
) -> SpanData {
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

pub(crate) fn run_span(
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
    fn trace_ids_are_stable_and_valid() {
        assert_eq!(trace_id_of("a"), trace_id_of("a"));
        assert_ne!(trace_id_of("a"), trace_id_of("b"));
        assert_ne!(trace_id_of(""), TraceId::INVALID);
    }
}
