//! Spans that find their thread's buffer full are folded, as `carina::step` guards are: exact
//! counts, items and statuses, never lost.

use crate::common::serial;
use carina::sink::MemorySink;
use carina_tracing::CarinaLayer;
use tracing_subscriber::layer::SubscriberExt;

/// A run whose threads get a 64-event buffer: a tight loop fills it within microseconds.
fn small_buffer_run(job: &str) -> (carina::Run, carina::sink::MemoryRecords) {
    let (sink, recs) = MemorySink::new();
    let run = carina::Run::builder(job)
        .run_file(false)
        .sink(sink)
        .constant_watts(100.0)
        .buffer_capacity(64)
        .sample_interval(std::time::Duration::from_millis(10))
        .start()
        .expect("start");
    (run, recs)
}

#[test]
fn spans_back_to_back_are_all_counted() {
    let _s = serial();
    const N: u64 = 20_000;
    let (run, recs) = small_buffer_run("spans-full-buffer");
    let subscriber = tracing_subscriber::registry().with(CarinaLayer::new());
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..N {
            let span = tracing::info_span!("tight", items = 1u64, error = i % 10 == 0);
            let _e = span.enter();
            // A nested span and a plain step in the same loop: all three names fold.
            tracing::info_span!("inner").in_scope(|| {
                let _g = carina::step("guard");
            });
        }
    });
    let summary = run.finish().expect("finish");
    let sums = recs.summaries();
    let count = |name: &str| sums.iter().find(|s| s.name == name).map_or(0, |s| s.count);
    assert_eq!(count("tight"), N, "{sums:#?}");
    assert_eq!(count("inner"), N, "{sums:#?}");
    assert_eq!(count("guard"), N, "{sums:#?}");
    let tight = sums.iter().find(|s| s.name == "tight").expect("tight");
    assert_eq!(tight.items, N);
    assert_eq!(tight.errors, N / 10);
    assert_eq!(summary.dropped(), 0, "{:#?}", summary.warnings);
    assert!(
        summary.folded() > 0,
        "the buffer never filled: the test proves nothing"
    );
    assert_eq!(summary.steps(), 3 * N);
    // Every span with a record of its own completed: the final segment always had its room.
    let steps = recs.steps();
    assert!(
        steps.iter().all(|s| !s.unfinished),
        "{:#?}",
        summary.warnings
    );
    // The warning says what happened, not that 256 names were folded.
    assert!(
        summary
            .warnings
            .iter()
            .any(|w| w.contains("counted in the step summaries")),
        "{:#?}",
        summary.warnings
    );
    assert!(
        !summary.warnings.iter().any(|w| w.contains("256")),
        "{:#?}",
        summary.warnings
    );
}
