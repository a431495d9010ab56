//! The sink driven with records, against an in-process OTLP/HTTP receiver.

use crate::common::{Collector, close, closed_port};
use carina::record::{
    EnergyKind, EnergySource, PowerRecord, Record, RunEnd, RunStart, StepRecord, StepStatus,
    StepSummary,
};
use carina::{Sink, SinkError};
use carina_otel::OtelSink;
use carina_runtime::Seconds;
use serde_json::json;
use std::time::{Duration, Instant};

/// Records are built from their JSON, as a reader gets them: the record types are
/// `#[non_exhaustive]` (fields may be added), so they have no struct literals outside Carina.
fn record<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).expect("a valid record")
}

fn run_start(steps: &str) -> Record {
    Record::RunStart(record::<RunStart>(json!({
        "schema": 1,
        "run_id": "20261201T000000Z-42-0001",
        "job": "scenario-db",
        "host": "node7",
        "pid": 42,
        "started_at": "2026-12-01T00:00:00Z",
        "energy_sources": [
            EnergySource::new("model", EnergyKind::Estimated, "coefficients"),
            EnergySource::not_used("rapl-perf", EnergyKind::Measured, "not readable"),
        ],
        "carbon": {"g_per_kwh": 400.0, "zone": "DE", "source": "test"},
        "steps": if steps == "summary" { "summary" } else { "all" },
        "sample_interval_s": 0.1,
        "scope": "process",
        "carina_version": "0.1.0",
    })))
}

#[allow(clippy::too_many_arguments)]
fn step(
    name: &'static str,
    id: u64,
    parent: Option<u64>,
    start: f64,
    end: f64,
    items: u64,
    status: StepStatus,
    energy: f64,
) -> StepRecord {
    record(json!({
        "name": name,
        "id": id,
        "parent": parent,
        "thread": 0,
        "start_s": start,
        "end_s": end,
        "items": items,
        "status": status.as_str(),
        "energy_j": energy,
        "self_energy_j": energy,
        "co2e_g": energy * 1e-4,
    }))
}

fn summary(name: &str, steps: &[&StepRecord]) -> StepSummary {
    let wall: f64 = steps.iter().map(|s| (s.end_s - s.start_s).0).sum();
    let count = |st: StepStatus| steps.iter().filter(|s| s.status == st).count();
    record(json!({
        "name": name,
        "count": steps.len(),
        "wall_s": wall,
        "self_wall_s": wall,
        "items": steps.iter().map(|s| s.items).sum::<u64>(),
        "energy_j": steps.iter().map(|s| s.energy_j.0).sum::<f64>(),
        "self_energy_j": steps.iter().map(|s| s.self_energy_j.0).sum::<f64>(),
        "co2e_g": steps.iter().map(|s| s.co2e_g.0).sum::<f64>(),
        "p50_s": 0.1,
        "p95_s": 0.2,
        "max_s": 0.3,
        "errors": count(StepStatus::Error),
        "panics": count(StepStatus::Panicked),
    }))
}

fn power(start: f64, end: f64, energy: f64) -> Record {
    Record::Power(PowerRecord::new(
        Seconds(start),
        Seconds(end),
        carina::Joules(energy),
        carina_runtime::GramsCo2e(energy * 1e-4),
    ))
}

fn run_end(energy: f64, wall: f64, items: u64) -> Record {
    Record::RunEnd(record::<RunEnd>(json!({
        "ended_at": "2026-12-01T00:00:02Z",
        "wall_s": wall,
        "energy_j": energy,
        "unattributed_j": 1.0,
        "co2e_g": energy * 1e-4,
        "items": items,
        "steps": 3,
        "dropped": 0,
        "records_not_written": 0,
        "host_energy_j": energy * 4.0,
        "energy_kind": "estimated",
        "probe_errors": 0,
        "sink_errors": 0,
    })))
}

fn sink(c: &Collector) -> OtelSink {
    OtelSink::builder()
        .endpoint(&c.base)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap()
}

/// A whole run: two `load` steps (one failed) inside `solve`, power windows, summaries, end.
fn drive(s: &mut OtelSink) {
    let load1 = step("load", 2, Some(1), 0.1, 0.4, 10, StepStatus::Ok, 3.0);
    let load2 = step("load", 3, Some(1), 0.4, 0.5, 5, StepStatus::Error, 1.5);
    let solve = step("solve", 1, None, 0.0, 1.5, 15, StepStatus::Ok, 14.0);
    s.write(&run_start("all")).unwrap();
    for r in [&load1, &load2, &solve] {
        s.write(&Record::Step(r.clone())).unwrap();
    }
    s.write(&power(0.0, 1.0, 10.0)).unwrap();
    s.checkpoint().unwrap();
    s.write(&power(1.0, 2.0, 5.0)).unwrap();
    s.write(&Record::StepSummary(summary("load", &[&load1, &load2])))
        .unwrap();
    s.write(&Record::StepSummary(summary("solve", &[&solve])))
        .unwrap();
    s.write(&run_end(15.0, 2.0, 15)).unwrap();
}

#[test]
fn step_and_run_metrics_reach_the_collector_with_units_and_resource() {
    let c = Collector::start();
    let mut s = sink(&c);
    drive(&mut s);
    s.flush().unwrap();
    let m = c.last_metrics();

    let r = &m.resource;
    assert_eq!(r["service.name"], "scenario-db");
    assert_eq!(r["service.instance.id"], "20261201T000000Z-42-0001");
    assert_eq!(r["host.name"], "node7");
    assert_eq!(r["carina.job"], "scenario-db");
    assert_eq!(r["carina.run_id"], "20261201T000000Z-42-0001");
    assert_eq!(r["carina.energy.kind"], "estimated");
    assert_eq!(
        r["carina.energy.source"], "model",
        "unused sources are not listed"
    );
    assert_eq!(r["carina.scope"], "process");
    assert_eq!(r["carina.carbon.zone"], "DE");
    assert_eq!(r["process.pid"], "42");

    for (name, unit) in [
        ("carina.step.energy", "J"),
        ("carina.step.co2e", "g"),
        ("carina.step.count", "{step}"),
        ("carina.step.items", "{item}"),
        ("carina.step.wall_time", "s"),
        ("carina.step.duration", "s"),
        ("carina.run.energy", "J"),
        ("carina.run.co2e", "g"),
        ("carina.run.wall_time", "s"),
        ("carina.run.items", "{item}"),
        ("carina.run.count", "{run}"),
    ] {
        assert_eq!(m.unit(name), unit, "{name}");
    }

    let load = [("carina.step", "load")];
    let solve = [("carina.step", "solve")];
    assert!(close(m.sum("carina.step.energy", &load), 4.5));
    assert!(close(m.sum("carina.step.energy", &solve), 14.0));
    for p in m.points("carina.step.energy") {
        assert_eq!(p.attrs["carina.energy.kind"], "estimated");
    }
    assert!(close(m.sum("carina.step.co2e", &load), 4.5e-4));
    assert_eq!(m.sum("carina.step.items", &load), 15.0);
    assert_eq!(
        m.sum(
            "carina.step.count",
            &[("carina.step", "load"), ("carina.step.status", "ok")]
        ),
        1.0
    );
    assert_eq!(
        m.sum(
            "carina.step.count",
            &[("carina.step", "load"), ("carina.step.status", "error")]
        ),
        1.0
    );
    assert_eq!(m.sum("carina.step.count", &solve), 1.0);
    assert!(close(m.sum("carina.step.wall_time", &load), 0.4));
    let d = m.points("carina.step.duration");
    let load_d = d.iter().find(|p| p.attrs["carina.step"] == "load").unwrap();
    assert_eq!(load_d.count, 2);
    assert!(close(load_d.value, 0.4));

    // The run: power windows sum to run_end; summaries equal to the records add nothing.
    assert!(close(m.sum("carina.run.energy", &[]), 15.0));
    assert_eq!(
        m.points("carina.run.energy")[0].attrs["carina.energy.kind"],
        "estimated"
    );
    assert!(close(m.sum("carina.run.co2e", &[]), 15.0e-4));
    assert!(close(m.sum("carina.run.wall_time", &[]), 2.0));
    assert_eq!(m.sum("carina.run.items", &[]), 15.0);
    assert_eq!(m.sum("carina.run.count", &[]), 1.0);
    assert!(c.traces().is_empty(), "spans are off by default");
}

#[test]
fn summary_only_runs_are_exported_from_their_summaries() {
    let c = Collector::start();
    let mut s = sink(&c);
    s.write(&run_start("summary")).unwrap();
    s.write(&power(0.0, 1.0, 8.0)).unwrap();
    let mut sum = summary("simulate", &[]);
    sum.count = 313;
    sum.errors = 3;
    sum.panics = 1;
    sum.items = 20_000;
    sum.wall_s = carina::Seconds(11.9);
    sum.energy_j = carina::Joules(7.5);
    sum.co2e_g = carina_runtime::GramsCo2e(7.5e-4);
    s.write(&Record::StepSummary(sum)).unwrap();
    s.write(&run_end(8.0, 1.0, 20_000)).unwrap();
    s.flush().unwrap();
    let m = c.last_metrics();
    let f = [("carina.step", "simulate")];
    assert!(close(m.sum("carina.step.energy", &f), 7.5));
    assert_eq!(m.sum("carina.step.items", &f), 20_000.0);
    assert!(close(m.sum("carina.step.wall_time", &f), 11.9));
    assert_eq!(m.sum("carina.step.count", &f), 313.0);
    assert_eq!(
        m.sum("carina.step.count", &[("carina.step.status", "ok")]),
        309.0
    );
    assert_eq!(
        m.sum("carina.step.count", &[("carina.step.status", "error")]),
        3.0
    );
    assert_eq!(
        m.sum("carina.step.count", &[("carina.step.status", "panicked")]),
        1.0
    );
    assert!(
        !m.metrics.contains_key("carina.step.duration"),
        "no per-instance durations without step records"
    );
    assert!(close(m.sum("carina.run.energy", &[]), 8.0));
}

#[test]
fn summaries_add_the_steps_that_had_no_record_of_their_own() {
    let c = Collector::start();
    let mut s = sink(&c);
    let a = step("a", 1, None, 0.0, 0.5, 2, StepStatus::Ok, 2.0);
    s.write(&run_start("all")).unwrap();
    s.write(&Record::Step(a.clone())).unwrap();
    // The summary counts 3 instances: two were folded or not written.
    let mut sum = summary("a", &[&a]);
    sum.count = 3;
    sum.items = 6;
    sum.energy_j = carina::Joules(5.0);
    sum.wall_s = carina::Seconds(1.25);
    s.write(&Record::StepSummary(sum)).unwrap();
    s.write(&run_end(5.0, 1.5, 6)).unwrap();
    s.flush().unwrap();
    let m = c.last_metrics();
    assert!(close(m.sum("carina.step.energy", &[]), 5.0));
    assert_eq!(m.sum("carina.step.items", &[]), 6.0);
    assert_eq!(m.sum("carina.step.count", &[]), 3.0);
    assert!(close(m.sum("carina.step.wall_time", &[]), 1.25));
    // No power records: the run's figures come from run_end.
    assert!(close(m.sum("carina.run.energy", &[]), 5.0));
    assert!(close(m.sum("carina.run.wall_time", &[]), 1.5));
}

#[test]
fn checkpoints_export_once_the_interval_has_passed() {
    let c = Collector::start();
    let mut s = OtelSink::builder()
        .endpoint(format!("{}/", c.base))
        .export_interval(Duration::ZERO)
        .build()
        .unwrap();
    assert_eq!(s.metrics_url(), format!("{}/v1/metrics", c.base));
    s.write(&run_start("all")).unwrap();
    s.write(&Record::Step(step(
        "a",
        1,
        None,
        0.0,
        0.5,
        2,
        StepStatus::Ok,
        2.0,
    )))
    .unwrap();
    s.checkpoint().unwrap();
    // The export happens on the sink's worker thread: wait for it as long as a loaded machine
    // may need (the wait ends as soon as it arrives).
    assert!(
        c.wait_for("/v1/metrics", 1, Duration::from_secs(60)),
        "exported before the end"
    );
    let m = c.last_metrics();
    assert!(close(m.sum("carina.step.energy", &[]), 2.0));
    assert!(!m.metrics.contains_key("carina.run.count"));

    // A sink with the default interval (10 s) does not export at a checkpoint right away.
    let c2 = Collector::start();
    let mut s2 = sink(&c2);
    s2.write(&run_start("all")).unwrap();
    s2.write(&power(0.0, 1.0, 1.0)).unwrap();
    s2.checkpoint().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(c2.requests().is_empty());
    s2.flush().unwrap();
    assert_eq!(c2.metrics().len(), 1);
}

#[test]
fn spans_follow_parents_and_hang_under_the_run() {
    let c = Collector::start();
    let mut s = OtelSink::builder()
        .endpoint(&c.base)
        .with_spans(true)
        .build()
        .unwrap();
    drive(&mut s);
    s.flush().unwrap();
    let spans: Vec<_> =
        c.traces()
            .into_iter()
            .flat_map(|t| {
                assert_eq!(
                    crate::common::attrs(
                        &t.resource_spans[0].resource.as_ref().unwrap().attributes
                    )["carina.run_id"],
                    "20261201T000000Z-42-0001"
                );
                t.resource_spans.into_iter()
            })
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans)
            .collect();
    assert_eq!(spans.len(), 4, "three steps and the run");
    let by = |name: &str, id: u64| {
        spans
            .iter()
            .find(|s| s.name == name && s.span_id == id.to_be_bytes())
            .unwrap_or_else(|| panic!("{name} {id}"))
    };
    let run = spans.iter().find(|s| s.name == "scenario-db").unwrap();
    let solve = by("solve", 1);
    let load = by("load", 2);
    let failed = by("load", 3);
    assert!(run.parent_span_id.is_empty());
    assert_eq!(solve.parent_span_id, run.span_id);
    assert_eq!(load.parent_span_id, solve.span_id);
    assert!(spans.iter().all(|s| s.trace_id == run.trace_id));
    let t0 = 1_796_083_200_000_000_000u64; // 2026-12-01T00:00:00Z
    assert_eq!(run.start_time_unix_nano, t0);
    assert_eq!(run.end_time_unix_nano, t0 + 2_000_000_000);
    assert_eq!(load.start_time_unix_nano, t0 + 100_000_000);
    assert_eq!(load.end_time_unix_nano, t0 + 400_000_000);
    assert_eq!(failed.status.as_ref().unwrap().code, 2, "error");
    let a = crate::common::attrs(&load.attributes);
    assert_eq!(a["carina.step.energy"], "3");
    assert_eq!(a["carina.step.items"], "10");
}

#[test]
fn a_closed_port_yields_sink_errors_and_never_hangs() {
    let t = Instant::now();
    let mut s = OtelSink::builder()
        .endpoint(format!("http://127.0.0.1:{}", closed_port()))
        .timeout(Duration::from_secs(1))
        .export_interval(Duration::ZERO)
        .with_spans(true)
        .build()
        .unwrap();
    drive(&mut s);
    // The export runs on the sink's thread; its failure is reported at a later checkpoint.
    let mut err: Option<SinkError> = None;
    while t.elapsed() < Duration::from_secs(5) {
        if let Err(e) = s.checkpoint() {
            err = Some(e);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let err = err.expect("a failed export is reported").to_string();
    eprintln!("checkpoint: {err}");
    assert!(err.contains("/v1/metrics"), "{err}");
    assert!(
        err.ends_with("but the spans of a failed export are dropped"),
        "{err}"
    );
    let e = s.flush().unwrap_err().to_string();
    eprintln!("flush: {e} after {:?}", t.elapsed());
    assert!(e.contains("OpenTelemetry final export failed"), "{e}");
    assert!(
        e.contains("the run's last metrics and spans did not reach"),
        "{e}"
    );
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
}

#[test]
fn a_collector_that_never_answers_costs_at_most_the_timeout() {
    // Accepts connections (the kernel does) and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut s = OtelSink::builder()
        .endpoint(format!("http://{}", silent.local_addr().unwrap()))
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    drive(&mut s);
    let t = Instant::now();
    let e = s.flush().unwrap_err().to_string();
    let took = t.elapsed();
    eprintln!("flush: {e} after {took:?}");
    assert!(took < Duration::from_millis(2500), "{took:?}: {e}");
    drop(silent);
}

#[test]
fn a_collector_that_refuses_the_data_is_reported() {
    let c = Collector::start_with_status(400);
    let mut s = sink(&c);
    drive(&mut s);
    let e = s.flush().unwrap_err().to_string();
    eprintln!("flush: {e}");
    assert!(e.contains("400"), "{e}");
    assert_eq!(c.metrics().len(), 1, "a 400 is not retried");
}

#[test]
fn a_sink_that_saw_nothing_sends_nothing() {
    let c = Collector::start();
    let mut s = sink(&c);
    s.checkpoint().unwrap();
    s.flush().unwrap();
    assert!(c.requests().is_empty());
}

/// `cargo test -p carina-otel --release --test main -- --ignored --nocapture cost_per_step_record`:
/// the sink's cost per `step` record on the aggregator thread, and the size of one export.
#[test]
#[ignore = "prints timings; run in release by .ci/run"]
fn cost_per_step_record() {
    let c = Collector::start();
    let mut s = sink(&c);
    s.write(&run_start("all")).unwrap();
    let names = [
        "load", "solve", "write", "check", "merge", "index", "plot", "send",
    ];
    let recs: Vec<Record> = (0..200_000u64)
        .map(|i| {
            let st = if i % 50 == 0 {
                StepStatus::Error
            } else {
                StepStatus::Ok
            };
            Record::Step(step(
                names[i as usize % 8],
                i + 1,
                None,
                0.0,
                0.01,
                3,
                st,
                0.5,
            ))
        })
        .collect();
    let t = Instant::now();
    for r in &recs {
        s.write(r).unwrap();
    }
    let per = t.elapsed().as_secs_f64() / recs.len() as f64;
    s.write(&power(0.0, 1.0, 1.0)).unwrap();
    s.flush().unwrap();
    let bytes = c.requests().iter().map(|r| r.body.len()).max().unwrap();
    eprintln!(
        "{:.0} ns per step record; one export of 8 step names: {bytes} bytes",
        per * 1e9
    );
}
