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

/// A step waits on the main thread while a thread that never marks a step (a BLAS or PyTorch
/// pool working for it) burns the CPU. By default that thread's share is unattributed; with
/// `UnmarkedThreads::OpenSteps` it goes to the open step.
#[test]
fn unmarked_threads_cpu_goes_to_the_open_step_only_when_asked() {
    use carina::UnmarkedThreads;
    let _s = serial();
    let measure = |rule: UnmarkedThreads| {
        let (sink, recs) = carina::sink::MemorySink::new();
        let run = carina::Run::builder("unmarked")
            .run_file(false)
            .sink(sink)
            .constant_watts(100.0)
            .sample_interval(std::time::Duration::from_millis(10))
            .unmarked_threads(rule)
            .start()
            .unwrap();
        {
            let _wait = carina::step("wait_for_pool");
            let pool = std::thread::spawn(|| spin(300_000));
            pool.join().unwrap();
        }
        let s = run.finish().unwrap();
        let end = s.end.clone().unwrap();
        let wait: f64 = recs
            .steps()
            .iter()
            .filter(|r| r.name == "wait_for_pool")
            .map(|r| r.self_energy_j.0)
            .sum();
        assert_eq!(end.unmarked_threads, Some(rule));
        let self_sum: f64 = recs.steps().iter().map(|r| r.self_energy_j.0).sum();
        assert!(
            (self_sum + end.unattributed_j.0 - end.energy_j.0).abs() <= 1e-6 * end.energy_j.0,
            "conservation"
        );
        (wait / end.energy_j.0, end.unattributed_j.0 / end.energy_j.0)
    };
    let (wait, unattributed) = measure(UnmarkedThreads::Unattributed);
    assert!(
        wait < 0.1,
        "by default the pool's CPU is not the step's: {wait}"
    );
    assert!(unattributed > 0.8, "{unattributed}");
    let (wait, unattributed) = measure(UnmarkedThreads::OpenSteps);
    assert!(wait > 0.7, "the pool's CPU goes to the open step: {wait}");
    assert!(unattributed < 0.3, "{unattributed}");
}
