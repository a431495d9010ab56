//! A disk that refuses writes (ENOSPC) costs the run its file, never the host application:
//! the run finishes, counts the failures and says so.

use crate::common;

use carina::sink::JsonLinesSink;

#[test]
fn dev_full_sink_degrades_counts_and_reports() {
    let _s = common::serial();
    // /dev/full fails every write with ENOSPC: a real kernel error, not a test double.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let sink = JsonLinesSink::with_file("/dev/full", Box::new(file));
    let run = carina::Run::builder("full")
        .run_file(false)
        .sink(sink)
        .constant_watts(10.0)
        .sample_interval(std::time::Duration::from_millis(10))
        .start()
        .unwrap();
    let t = std::time::Instant::now();
    while t.elapsed() < std::time::Duration::from_millis(1_300) {
        let _g = carina::step("work");
        common::spin(1_000);
    }
    let s = run
        .finish()
        .expect("the application is not failed by the sink");
    assert!(s.steps() > 500);
    assert!(s.sink_errors() > 0, "the failures are counted");
    assert!(
        s.warnings.iter().any(|w| w.contains("/dev/full")),
        "and said: {:?}",
        s.warnings
    );
}
