//! Energy is conserved: the steps' self energy plus the unattributed energy is the run's energy.

use crate::common;
use common::{serial, spin};

#[test]
fn self_energy_plus_unattributed_equals_run_energy() {
    let _s = serial();
    let (sink, recs) = carina::sink::MemorySink::new();
    let run = carina::Run::builder("conservation")
        .run_file(false)
        .sink(sink)
        .constant_watts(250.0)
        .sample_interval(std::time::Duration::from_millis(5))
        .start()
        .unwrap();
    let worker = std::thread::spawn(|| {
        for _ in 0..200 {
            let _a = carina::step("worker_outer");
            spin(150);
            let _b = carina::step("worker_inner");
            spin(100);
        }
    });
    for i in 0..100 {
        let _g = carina::step("main");
        spin(300);
        if i % 10 == 0 {
            // Idle gaps outside any step.
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
    worker.join().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let s = run.finish().unwrap();
    let end = recs.run_end().unwrap();
    let self_sum: f64 = recs.steps().iter().map(|r| r.self_energy_j.0).sum();
    let total = end.energy_j.0;
    assert!(total > 0.0);
    let rel = (self_sum + end.unattributed_j.0 - total).abs() / total;
    assert!(rel < 1e-6, "relative error {rel}");
    assert!(
        end.unattributed_j.0 > 0.0,
        "the idle tail must be unattributed"
    );
    // Constant model: energy = 250 W x wall time (within sampling granularity).
    let expect = 250.0 * s.wall().0;
    assert!(
        (total / expect - 1.0).abs() < 0.05,
        "total {total} vs {expect}"
    );
    // Summaries carry the same totals.
    let sum_self: f64 = s.summaries.iter().map(|x| x.self_energy_j.0).sum();
    assert!(((sum_self - self_sum) / self_sum).abs() < 1e-9);
    // CO2e at the default world factor.
    let co2: f64 = total / 3.6e6 * 472.94;
    assert!((end.co2e_g.0 - co2).abs() < 1e-9 * co2.max(1.0));
}
