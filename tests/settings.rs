//! Builder settings out of range are refused by `start()` with an error naming the setting and
//! the range, before anything is installed or allocated.

use carina::StartError;
use std::time::Duration;

/// `start()`'s error for a builder of a run without a file.
fn refused(b: carina::RunBuilder) -> StartError {
    match b.run_file(false).constant_watts(1.0).start() {
        Ok(_) => panic!("the settings were accepted"),
        Err(e) => e,
    }
}

#[test]
fn out_of_range_settings_are_refused_with_the_setting_and_range_named() {
    let _s = crate::common::serial();
    let b = || carina::Run::builder("settings");
    for (e, setting, range) in [
        (
            refused(b().sample_interval(Duration::MAX)),
            "sample_interval",
            "1 h",
        ),
        (
            refused(b().sample_interval(Duration::ZERO)),
            "sample_interval",
            "from 1 ms",
        ),
        (
            refused(b().sample_interval(carina::MAX_SAMPLE_INTERVAL + Duration::from_nanos(1))),
            "sample_interval",
            "1 h",
        ),
        (
            refused(b().buffer_capacity(1 << 36)),
            "buffer_capacity",
            "4194304",
        ),
        (
            refused(b().buffer_capacity(usize::MAX)),
            "buffer_capacity",
            "4194304",
        ),
        (refused(b().buffer_capacity(0)), "buffer_capacity", "from 4"),
        (
            refused(b().max_pending_records(usize::MAX)),
            "max_pending_records",
            "16777216",
        ),
    ] {
        let msg = e.to_string();
        assert!(
            matches!(e, StartError::InvalidSetting { setting: s, .. } if s == setting),
            "{msg}"
        );
        assert!(
            msg.contains(&format!("`{setting}`")) && msg.contains(range),
            "{msg}"
        );
    }
    // Nothing was installed: a run starts now.
    assert!(!carina::is_recording());
}

#[test]
fn the_bounds_themselves_are_accepted() {
    let _s = crate::common::serial();
    for b in [
        carina::Run::builder("bounds")
            .sample_interval(carina::MIN_SAMPLE_INTERVAL)
            .buffer_capacity(carina::MIN_BUFFER_CAPACITY)
            .max_pending_records(0),
        carina::Run::builder("bounds")
            .sample_interval(carina::MAX_SAMPLE_INTERVAL)
            .buffer_capacity(carina::MAX_BUFFER_CAPACITY)
            .max_pending_records(carina::MAX_PENDING_RECORDS),
    ] {
        let run = b.run_file(false).constant_watts(1.0).start().unwrap();
        {
            let mut g = carina::step("one");
            g.add_items(1);
        }
        let s = run.finish().unwrap();
        assert_eq!(s.steps(), 1);
    }
}
