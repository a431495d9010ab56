//! End to end: a real Carina run with the OpenTelemetry sink, against an in-process receiver.

use crate::common::{Collector, close};
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
