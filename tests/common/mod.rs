//! Shared helpers for integration tests. One run may be installed per process, and the tests of
//! one file run on parallel threads, so every test that starts a run holds [`serial`].

#![allow(dead_code)]

use carina::sink::{MemoryRecords, MemorySink};
use std::sync::{Mutex, MutexGuard};

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

/// Busy-waits for `micros` so steps have a real, CPU-consuming duration.
pub fn spin(micros: u64) {
    let t = std::time::Instant::now();
    let mut x = 0u64;
    while t.elapsed().as_micros() < u128::from(micros) {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}
