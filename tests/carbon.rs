//! Carbon: zone factors, time-varying intensity applied per sampling interval, and clear errors.

use crate::common;
use common::{serial, spin};
use std::time::Duration;

fn run_with(builder: carina::RunBuilder) -> (carina::RunSummary, carina::sink::MemoryRecords) {
    let (sink, recs) = carina::sink::MemorySink::new();
    let run = builder
        .run_file(false)
        .sink(sink)
        .constant_watts(100.0)
        .sample_interval(Duration::from_millis(10))
        .start()
        .unwrap();
    {
        let _g = carina::step("work");
        spin(50_000);
    }
    (run.finish().unwrap(), recs)
}

#[test]
fn a_zone_sets_the_factor_and_is_recorded() {
    let _s = serial();
    let (s, recs) = run_with(carina::Run::builder("zone").carbon_zone("de"));
    assert_eq!(s.carbon.zone.as_deref(), Some("DE"));
    assert_eq!(s.carbon.g_per_kwh, 342.06);
    let start = recs.all().into_iter().find_map(|r| match r {
        carina::Record::RunStart(st) => Some(st),
        _ => None,
    });
    assert!(start.unwrap().carbon.source.contains("Germany 2024"));
    let expect = s.energy().0 / 3.6e6 * 342.06;
    assert!(
        (s.co2e().0 - expect).abs() <= 1e-9 * expect.max(1e-12),
        "{} vs {expect}",
        s.co2e()
    );
}

#[test]
fn an_unknown_zone_fails_with_close_matches() {
    let _s = serial();
    let e = carina::Run::builder("zone")
        .run_file(false)
        .carbon_zone("Frnace")
        .start()
        .unwrap_err()
        .to_string();
    assert!(e.contains("FR (France)"), "{e}");
}

#[test]
fn a_time_varying_series_is_applied_per_interval() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("intensity.csv");
    let now = jiff::Timestamp::now();
    let switch = now + jiff::SignedDuration::from_millis(400);
    std::fs::write(
        &path,
        format!(
            "timestamp,g_per_kwh\n{},100\n{},900\n{},900\n",
            now - jiff::SignedDuration::from_hours(1),
            switch,
            now + jiff::SignedDuration::from_hours(1)
        ),
    )
    .unwrap();
    let (sink, recs) = carina::sink::MemorySink::new();
    let run = carina::Run::builder("series")
        .run_file(false)
        .sink(sink)
        .constant_watts(100.0)
        .sample_interval(Duration::from_millis(10))
        .carbon_intensity_csv(&path)
        .start()
        .unwrap();
    {
        let _g = carina::step("before");
        spin(150_000);
    }
    while jiff::Timestamp::now() < switch + jiff::SignedDuration::from_millis(50) {
        std::thread::sleep(Duration::from_millis(5));
    }
    {
        let _g = carina::step("after");
        spin(150_000);
    }
    let s = run.finish().unwrap();
    let steps = recs.steps();
    let ratio = |n: &str| {
        let r = steps.iter().find(|r| r.name == n).unwrap();
        r.co2e_g.0 / r.energy_j.0 * 3.6e6
    };
    assert!((ratio("before") - 100.0).abs() < 1.0, "{}", ratio("before"));
    assert!((ratio("after") - 900.0).abs() < 1.0, "{}", ratio("after"));
    assert_eq!(s.carbon.series.as_deref(), Some(path.to_str().unwrap()));
    // The run's factor is the energy-weighted one, not the series' plain mean (633 g/kWh):
    // most of the energy was spent at 100 g/kWh.
    let effective = s.carbon_g_per_kwh().unwrap();
    assert!(
        (effective - s.co2e().0 / s.energy().kwh()).abs() < 1e-9 * effective,
        "{effective}"
    );
    assert!((100.0..600.0).contains(&effective), "{effective}");
    assert!(
        (s.carbon.g_per_kwh - 633.3).abs() < 0.1,
        "{}",
        s.carbon.g_per_kwh
    );
    let text = s.to_string();
    assert!(
        text.contains(&format!("at {effective:.1} g/kWh energy-weighted")),
        "{text}"
    );
    let end = s.end.unwrap();
    assert_eq!(end.carbon_g_per_kwh, Some(effective));
    assert!(end.warnings.is_empty());
}

#[test]
fn a_series_that_misses_the_run_warns_in_the_run_file() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.csv");
    std::fs::write(
        &path,
        "timestamp,g_per_kwh\n2020-01-01T00:00:00Z,250\n2020-01-01T01:00:00Z,260\n",
    )
    .unwrap();
    let (s, _) = run_with(carina::Run::builder("old").carbon_intensity_csv(&path));
    let end = s.end.unwrap();
    assert!(
        end.warnings.iter().any(|w| w.contains("does not cover")),
        "{:?}",
        end.warnings
    );
    // The nearest value (the last one) was used.
    assert!((end.co2e_g.0 / end.energy_j.0 * 3.6e6 - 260.0).abs() < 1e-6);
}

#[test]
fn a_malformed_series_fails_to_start_naming_file_line_and_field() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.csv");
    std::fs::write(
        &path,
        "timestamp,g_per_kwh\n2026-01-01T00:00:00Z,12\n2026-01-01T01:00:00Z,lots\n",
    )
    .unwrap();
    let e = carina::Run::builder("bad")
        .run_file(false)
        .carbon_intensity_csv(&path)
        .start()
        .unwrap_err()
        .to_string();
    assert!(e.contains("bad.csv:3:") && e.contains("g_per_kwh"), "{e}");
}
