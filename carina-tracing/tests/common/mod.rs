//! Shared helpers. One Carina run may be installed per process and the tests of one file run on
//! parallel threads, so every test holds [`serial`] while it records.

#![allow(dead_code)]

use carina::record::StepRecord;
use carina::sink::{MemoryRecords, MemorySink};
use carina_tracing::CarinaLayer;
use std::sync::{Mutex, MutexGuard};
use tracing_subscriber::layer::SubscriberExt;

static SERIAL: Mutex<()> = Mutex::new(());

/// Serialises the tests of one binary.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts a run with a memory sink, no run file and a constant 100 W model.
pub fn memory_run(job: &str) -> (carina::Run, MemoryRecords) {
    let (sink, recs) = MemorySink::new();
    let run = carina::Run::builder(job)
        .run_file(false)
        .sink(sink)
        .constant_watts(100.0)
        .sample_interval(std::time::Duration::from_millis(10))
        .start()
        .expect("start");
    (run, recs)
}

/// Runs `f` on this thread under `registry().with(layer)` while a run records; returns the
/// run's step records.
pub fn record_with(layer: CarinaLayer, f: impl FnOnce()) -> Vec<StepRecord> {
    let (run, recs) = memory_run("carina-tracing-test");
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, f);
    let summary = run.finish().expect("finish");
    assert_eq!(summary.dropped, 0);
    assert_eq!(summary.folded, 0);
    recs.steps()
}

/// The one step named `name`.
pub fn only<'a>(steps: &'a [StepRecord], name: &str) -> &'a StepRecord {
    let found: Vec<&StepRecord> = steps.iter().filter(|s| s.name == name).collect();
    assert_eq!(
        found.len(),
        1,
        "expected one step named {name:?}, found {found:#?}"
    );
    found[0]
}

/// Busy-waits for `micros` so steps have a real, CPU-consuming duration.
pub fn spin(micros: u64) {
    let t = std::time::Instant::now();
    let mut x = 0u64;
    while t.elapsed().as_micros() < u128::from(micros) {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}
