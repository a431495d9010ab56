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
    // A fixed number of steps, not a time: the count does not depend on the machine's load.
    for _ in 0..2_000 {
        let _g = carina::step("work");
        common::spin(1_000);
    }
    let s = run
        .finish()
        .expect("the application is not failed by the sink");
    assert_eq!(s.steps(), 2_000);
    assert!(s.sink_errors() > 0, "the failures are counted");
    assert!(
        s.warnings.iter().any(|w| w.contains("/dev/full")),
        "and said: {:?}",
        s.warnings
    );
    // Nothing reached the disk: the caller can tell without parsing warnings.
    assert!(!s.is_complete());
    // run_start, a thread, 2 000 steps, power windows, a summary and run_end at least.
    assert!(s.records_lost() >= 2_004, "{} lost", s.records_lost());
    assert!(
        s.warnings
            .iter()
            .any(|w| w.starts_with("records_lost: ") && w.contains(&s.records_lost().to_string())),
        "{:?}",
        s.warnings
    );
}

#[test]
fn a_run_whose_sinks_wrote_everything_is_complete() {
    let _s = common::serial();
    let (run, _records) = common::memory_run("complete");
    for _ in 0..10 {
        let _g = carina::step("work");
    }
    let s = run.finish().unwrap();
    assert!(s.is_complete(), "{:?}", s.warnings);
    assert_eq!(s.records_lost(), 0);
    assert!(!s.warnings.iter().any(|w| w.contains("records_")));
}

#[test]
fn step_records_not_written_are_named_in_the_warnings() {
    let _s = common::serial();
    let (sink, _records) = carina::sink::MemorySink::new();
    let run = carina::Run::builder("queue")
        .run_file(false)
        .sink(sink)
        .constant_watts(10.0)
        // One hour between samples: every step ends between the same two samples.
        .sample_interval(std::time::Duration::from_secs(3_600))
        .max_pending_records(4)
        .start()
        .unwrap();
    for _ in 0..10 {
        let _g = carina::step("work");
    }
    let s = run.finish().unwrap();
    assert!(s.records_not_written() > 0, "{s:?}");
    assert!(!s.is_complete());
    let w = format!(
        "records_not_written: {} step instances",
        s.records_not_written()
    );
    assert!(
        s.warnings.iter().any(|x| x.starts_with(&w)),
        "{:?}",
        s.warnings
    );
}

#[test]
fn item_totals_saturate_and_say_so() {
    let _s = common::serial();
    let (run, records) = common::memory_run("many-items");
    for _ in 0..3 {
        let mut g = carina::step("huge");
        g.add_items(u64::MAX);
    }
    let s = run.finish().unwrap();
    let huge = s.summaries.iter().find(|x| x.name == "huge").unwrap();
    assert_eq!((huge.count, huge.items), (3, u64::MAX));
    assert_eq!(s.items(), u64::MAX);
    let end = records.run_end().unwrap();
    assert!(
        end.warnings
            .iter()
            .any(|w| w.starts_with("items_saturated: ") && w.contains("`huge`")),
        "{:?}",
        end.warnings
    );
}
