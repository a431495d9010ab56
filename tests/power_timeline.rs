//! `power` records tile the run: contiguous windows of about a second from 0 to the run's end,
//! whose energy sums to the run's energy, and which see energy spent outside any step.

use crate::common;
use carina::record::Record;
use common::{serial, spin};

#[test]
fn power_windows_tile_the_run_and_sum_to_its_energy() {
    let _s = serial();
    let (sink, recs) = carina::sink::MemorySink::new();
    let run = carina::Run::builder("power")
        .run_file(false)
        .sink(sink)
        .constant_watts(100.0)
        .sample_interval(std::time::Duration::from_millis(50))
        .start()
        .unwrap();
    for _ in 0..10 {
        let _g = carina::step("busy");
        spin(100_000);
    }
    // 1.2 s with no step open: the timeline must still show power there.
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let summary = run.finish().unwrap();
    let end = recs.run_end().unwrap();
    let power: Vec<_> = recs
        .all()
        .into_iter()
        .filter_map(|r| match r {
            Record::Power(p) => Some(p),
            _ => None,
        })
        .collect();
    assert!(power.len() >= 2, "{} windows", power.len());
    assert_eq!(power[0].start_s, carina::Seconds::ZERO);
    for w in power.windows(2) {
        assert_eq!(w[0].end_s, w[1].start_s, "windows are contiguous");
    }
    for p in &power[..power.len() - 1] {
        let len = (p.end_s - p.start_s).0;
        assert!((1.0..1.2).contains(&len), "window of {len} s");
    }
    let last = power.last().unwrap();
    assert!(
        (last.end_s - summary.wall()).abs().0 < 0.1,
        "{} vs {}",
        last.end_s,
        summary.wall().0
    );
    let sum: f64 = power.iter().map(|p| p.energy_j.0).sum();
    assert!(
        (sum - end.energy_j.0).abs() <= 1e-9 * end.energy_j.0,
        "{sum} vs {}",
        end.energy_j
    );
    let co2: f64 = power.iter().map(|p| p.co2e_g.0).sum();
    assert!((co2 - end.co2e_g.0).abs() <= 1e-9 * end.co2e_g.0.max(1e-12));
    // A constant 100 W source in process scope: every full window's mean power is 100 W,
    // including the windows where no step was open.
    for p in &power[..power.len() - 1] {
        let w = p.energy_j / (p.end_s - p.start_s);
        assert!((w.0 - 100.0).abs() < 1.0, "{w} in {:?}", p);
        let (lo, hi) = (p.energy_low_j.unwrap(), p.energy_high_j.unwrap());
        assert!(lo.0 <= p.energy_j.0 + 1e-12 && p.energy_j.0 <= hi.0 + 1e-12);
    }
}
