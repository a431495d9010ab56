//! End to end: a real Carina run with the OpenTelemetry sink, against an in-process receiver.

use crate::common::{Collector, close, in_child, run_in_child};
use carina_otel::OtelSink;
use std::time::Duration;

#[test]
fn a_real_run_exports_what_its_summary_says() {
    // One run per process: any other test of this binary that starts one waits for this one.
    let _s = carina::testing::serial();
    let c = Collector::start();
    let sink = OtelSink::builder()
        .endpoint(&c.base)
        .export_interval(Duration::ZERO)
        .build()
        .unwrap();
    let run = carina::Run::builder("otel-e2e")
        .run_file(false)
        .sink(sink)
        .constant_watts(100.0)
        .start()
        .unwrap();
    let run_id = run.run_id().to_owned();
    {
        let mut outer = carina::step("solve");
        for _ in 0..3 {
            let mut g = carina::step("load");
            g.add_items(10);
            std::thread::sleep(Duration::from_millis(40));
        }
        outer.add_items(30);
        // Open until the aggregator's first checkpoint (about a second in, after power windows)
        // has exported: waiting for that export, not a fixed second, holds however late the
        // aggregator thread runs on a loaded machine.
        assert!(
            c.wait_for("/v1/metrics", 1, Duration::from_secs(120)),
            "no checkpoint export within 2 minutes"
        );
    }
    let summary = run.finish().unwrap();
    assert_eq!(summary.sink_errors(), 0, "{:?}", summary.warnings);
    let end = summary.end.clone().unwrap();
    assert!(
        c.metrics().len() >= 2,
        "a checkpoint export and the final one"
    );

    let m = c.last_metrics();
    assert_eq!(m.resource["service.name"], "otel-e2e");
    assert_eq!(m.resource["carina.job"], "otel-e2e");
    assert_eq!(m.resource["carina.run_id"], run_id);
    assert_eq!(m.resource["service.instance.id"], run_id);
    let kind = if end.energy_kind == carina::EnergyKind::Measured {
        "measured"
    } else {
        "estimated"
    };
    assert_eq!(m.resource["carina.energy.kind"], kind);
    assert!(m.resource.contains_key("host.name"));

    assert!(end.energy_j > carina::Joules::ZERO);
    let run_energy = m.sum("carina.run.energy", &[("carina.energy.kind", kind)]);
    assert!(
        close(run_energy, end.energy_j),
        "{run_energy} vs {}",
        end.energy_j
    );
    assert!(close(m.sum("carina.run.co2e", &[]), end.co2e_g));
    assert!(close(m.sum("carina.run.wall_time", &[]), end.wall_s));
    assert_eq!(m.sum("carina.run.items", &[]), end.items as f64);
    for s in &summary.summaries {
        let f = [("carina.step", s.name.as_str())];
        let e = m.sum("carina.step.energy", &f);
        assert!(close(e, s.energy_j), "{}: {e} vs {}", s.name, s.energy_j);
        assert_eq!(m.sum("carina.step.count", &f), s.count as f64);
        assert_eq!(m.sum("carina.step.items", &f), s.items as f64);
    }
    assert_eq!(m.sum("carina.step.count", &[("carina.step", "load")]), 3.0);
    assert_eq!(m.sum("carina.step.items", &[("carina.step", "load")]), 30.0);
}

/// A run whose collector refuses every export (HTTP 400, not retried) with the given interval;
/// `while_open` runs inside its one step.
fn refused_run(interval: Duration, while_open: impl FnOnce(&Collector)) -> carina::RunSummary {
    let c = Collector::start_with_status(400);
    let sink = OtelSink::builder()
        .endpoint(&c.base)
        .export_interval(interval)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let run = carina::Run::builder("otel-refused")
        .run_file(false)
        .sink(sink)
        .constant_watts(100.0)
        .start()
        .unwrap();
    {
        let _g = carina::step("load");
        while_open(&c);
    }
    let summary = run.finish().unwrap();
    assert!(!c.metrics().is_empty(), "the collector was asked");
    summary
}

const FINAL: &str = "OpenTelemetry final export failed: metrics to ";

#[test]
fn a_failed_final_export_is_in_the_summary_and_on_stderr_once() {
    if !in_child() {
        let stderr = run_in_child(&format!(
            "{}::a_failed_final_export_is_in_the_summary_and_on_stderr_once",
            module_path!().split_once("::").unwrap().1
        ));
        let lines: Vec<&str> = stderr.lines().filter(|l| l.contains(FINAL)).collect();
        assert_eq!(lines.len(), 1, "{stderr}");
        assert!(lines[0].starts_with("carina: warning: "), "{stderr}");
        return;
    }
    // In the child: the only export is the final one (the interval is never reached).
    let _s = carina::testing::serial();
    let summary = refused_run(Duration::from_secs(3600), |_| {});
    let end = summary.end.clone().unwrap();
    // run_end was written before the final export: the file cannot count it, the summary does.
    assert_eq!(end.sink_errors, 0, "{:?}", end.warnings);
    assert!(end.warnings.iter().all(|w| !w.contains("OpenTelemetry")));
    assert_eq!(summary.sink_errors(), 1, "{:?}", summary.warnings);
    let finals: Vec<&String> = summary
        .warnings
        .iter()
        .filter(|w| w.contains(FINAL))
        .collect();
    assert_eq!(finals.len(), 1, "{:?}", summary.warnings);
    let w = finals[0];
    assert!(w.contains("400"), "{w}");
    assert!(
        w.ends_with(
            "the run's last metrics did not reach the collector (the run file has every \
             figure). It came after run_end was written, so run_end.sink_errors does not count \
             it: the summary's sink_errors and warnings do"
        ),
        "{w}"
    );
}

#[test]
fn a_failed_export_during_the_run_says_what_becomes_of_the_otlp_data() {
    let _s = carina::testing::serial();
    let summary = refused_run(Duration::ZERO, |c| {
        // The second export is triggered by the checkpoint that reported the first one's
        // failure (an export starts only once the previous one is done).
        assert!(
            c.wait_for("/v1/metrics", 2, Duration::from_secs(120)),
            "no second export within 2 minutes"
        );
    });
    let end = summary.end.clone().unwrap();
    assert!(end.sink_errors >= 1, "{:?}", end.warnings);
    let w = end
        .warnings
        .iter()
        .find(|w| w.starts_with("OpenTelemetry export failed: metrics to "))
        .unwrap_or_else(|| panic!("{:?}", end.warnings));
    assert!(
        w.ends_with(
            "nothing is re-sent: metrics are cumulative, so the next successful export carries \
             their totals"
        ),
        "{w}"
    );
    assert!(!w.contains("file"), "a file sink's text: {w}");
}
