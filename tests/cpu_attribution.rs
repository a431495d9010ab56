//! Energy follows CPU time across threads: a step that only waits gets (almost) nothing, the
//! threads doing the work get it, and the split inside a thread follows wall time.

use crate::common;
use common::{serial, spin};

#[test]
fn a_waiting_parent_gets_little_and_busy_workers_get_the_energy() {
    let _s = serial();
    let (run, recs) = common::memory_run("cpu-split");
    {
        let _wait = carina::step("wait_for_workers");
        let workers: Vec<_> = (0..2)
            .map(|_| {
                std::thread::spawn(|| {
                    for _ in 0..40 {
                        let _g = carina::step("work");
                        spin(2_000);
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
    }
    let s = run.finish().unwrap();
    let end = s.end.clone().unwrap();
    assert_eq!(end.attribution, Some(carina::record::Attribution::CpuTime));
    let sum = |n: &str| {
        s.summaries
            .iter()
            .find(|x| x.name == n)
            .map_or(0.0, |x| x.self_energy_j.0)
    };
    let (wait, work) = (sum("wait_for_workers"), sum("work"));
    assert!(work > 0.0);
    assert!(
        wait < 0.1 * work,
        "waiting step got {wait} J vs workers {work} J"
    );
    // Conservation still holds.
    let self_sum: f64 = recs.steps().iter().map(|r| r.self_energy_j.0).sum();
    assert!((self_sum + end.unattributed_j.0 - end.energy_j.0).abs() <= 1e-6 * end.energy_j.0);
}

#[test]
fn short_steps_are_flagged_and_estimates_carry_a_band() {
    let _s = serial();
    let (sink, recs) = carina::sink::MemorySink::new();
    let run = carina::Run::builder("short")
        .run_file(false)
        .sink(sink)
        .model_watts(10.0, 50.0)
        .sample_interval(std::time::Duration::from_millis(50))
        .start()
        .unwrap();
    for _ in 0..5 {
        let _g = carina::step("blip");
        spin(100);
    }
    {
        let _g = carina::step("long");
        spin(120_000);
    }
    let s = run.finish().unwrap();
    let steps = recs.steps();
    assert!(steps.iter().filter(|r| r.name == "blip").all(|r| r.short));
    assert!(steps.iter().filter(|r| r.name == "long").all(|r| !r.short));
    let end = s.end.unwrap();
    let (lo, hi) = (end.energy_low_j.unwrap(), end.energy_high_j.unwrap());
    assert!(
        lo <= end.energy_j && end.energy_j <= hi,
        "{lo} {} {hi}",
        end.energy_j
    );
}
