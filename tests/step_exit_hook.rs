//! `on_step_exit`: a user hook (e.g. a GPU synchronisation) runs at every step exit, before the
//! step's end time is read, so the step's span includes what the hook waited for.

use crate::common;

use std::sync::atomic::{AtomicU64, Ordering};

static CALLS: AtomicU64 = AtomicU64::new(0);

fn slow_sync() {
    CALLS.fetch_add(1, Ordering::Relaxed);
    std::thread::sleep(std::time::Duration::from_millis(20));
}

#[test]
fn the_hook_runs_at_every_exit_and_inside_the_step() {
    let _s = common::serial();
    let (sink, recs) = carina::sink::MemorySink::new();
    let run = carina::Run::builder("hook")
        .run_file(false)
        .sink(sink)
        .constant_watts(10.0)
        .on_step_exit(slow_sync)
        .start()
        .unwrap();
    for _ in 0..3 {
        let _outer = carina::step("outer");
        let _inner = carina::step("inner");
    }
    run.finish().unwrap();
    assert_eq!(CALLS.load(Ordering::Relaxed), 6);
    for s in recs.steps() {
        assert!(
            s.end_s - s.start_s >= carina::Seconds(0.019),
            "{} lasted {}",
            s.name,
            s.end_s - s.start_s
        );
    }
    // A run without the hook does not call it.
    let (sink, _recs) = carina::sink::MemorySink::new();
    let run = carina::Run::builder("nohook")
        .run_file(false)
        .sink(sink)
        .constant_watts(10.0)
        .start()
        .unwrap();
    {
        let _g = carina::step("x");
    }
    run.finish().unwrap();
    assert_eq!(CALLS.load(Ordering::Relaxed), 6);
}
