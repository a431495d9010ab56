//! The criterion `Measurement` and its formatter.

use crate::common::{ConstantProbe, Time, write_proc};
use carina_criterion::{Energy, EnergyAware, EnergyFormatter, EnergyMeter, group};
use carina_runtime::{EnergyKind, ProbeScope, Scope};
use criterion::Throughput;
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use std::time::{Duration, Instant};

fn fifty_watts(kind: EnergyKind) -> (Energy, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    write_proc(dir.path(), 0, 0);
    let p = ConstantProbe {
        watts: 50.0,
        scope: ProbeScope::Host,
        kind,
        time: Time::Real(Instant::now()),
    };
    let m = EnergyMeter::with_probes(vec![Box::new(p)], dir.path(), Scope::Host)
        .with_min_interval(Duration::ZERO);
    (Energy::from_meter(m).assume_separate_output(), dir)
}

#[test]
fn start_end_add_zero_to_f64() {
    let (e, _dir) = fifty_watts(EnergyKind::Measured);
    assert_eq!(e.kind(), EnergyKind::Measured);
    let t = Instant::now();
    let s = e.start();
    std::thread::sleep(Duration::from_millis(20));
    let v = e.end(s);
    let dt = t.elapsed().as_secs_f64();
    assert!(v >= 50.0 * 0.02 && v <= 50.0 * dt + 1e-9, "{v} over {dt} s");
    assert_eq!(e.zero(), 0.0);
    assert_eq!(e.add(&1.5, &0.25), 1.75);
    assert_eq!(e.add(&e.zero(), &v), v);
    assert_eq!(e.to_f64(&0.125), 0.125);
    // An end below its start (never happens: the meter never decreases) is zero, not negative.
    let s = e.start();
    assert_eq!(e.end(s + 1e9), 0.0);
    assert!(
        e.describe()
            .contains("measured energy from fake (package-0), host scope")
    );
    assert_eq!(
        e.formatter().format_value(0.0025),
        format!("{:>6} mJ (measured)", "2.5000")
    );
}

#[test]
fn formatter_scales_joules() {
    let f = EnergyFormatter::new(EnergyKind::Estimated);
    let cases: [(f64, &str, f64); 5] = [
        (2.5, "J (estimated)", 2.5),
        (0.0025, "mJ (estimated)", 2.5),
        (2.5e-6, "µJ (estimated)", 2.5),
        (2.5e-9, "nJ (estimated)", 2.5),
        (2.5e-12, "nJ (estimated)", 0.0025),
    ];
    for (typical, unit, scaled) in cases {
        let mut v = [typical, typical * 2.0];
        assert_eq!(f.scale_values(typical, &mut v), unit);
        assert!(
            (v[0] - scaled).abs() < 1e-9 * scaled && (v[1] - 2.0 * scaled).abs() < 1e-9 * scaled
        );
    }
    let m = EnergyFormatter::new(EnergyKind::Measured);
    let mut v = [0.5e-3];
    assert_eq!(m.scale_values(0.5e-3, &mut v), "µJ (measured)");
    assert!((v[0] - 500.0).abs() < 1e-9);
    assert!(m.format_value(1.0).ends_with("J (measured)"));
    // For machines: joules, unchanged.
    let mut v = [1.0, 2e-6];
    assert_eq!(f.scale_for_machines(&mut v), "J");
    assert_eq!(v, [1.0, 2e-6]);
}

#[test]
fn formatter_gives_joules_per_element_byte_bit() {
    let f = EnergyFormatter::new(EnergyKind::Estimated);
    // 1 mJ per iteration of 10 000 elements: 100 nJ per element.
    let mut v = [1e-3];
    assert_eq!(
        f.scale_throughputs(1e-3, &Throughput::Elements(10_000), &mut v),
        "nJ/elem (estimated)"
    );
    assert!((v[0] - 100.0).abs() < 1e-9, "{v:?}");
    let mut v = [4e-3];
    assert_eq!(
        f.scale_throughputs(4e-3, &Throughput::Bytes(1000), &mut v),
        "µJ/B (estimated)"
    );
    assert!((v[0] - 4.0).abs() < 1e-9);
    let mut v = [4e-3];
    assert_eq!(
        f.scale_throughputs(4e-3, &Throughput::BytesDecimal(1000), &mut v),
        "µJ/B (estimated)"
    );
    let mut v = [8.0];
    assert_eq!(
        EnergyFormatter::new(EnergyKind::Measured).scale_throughputs(
            8.0,
            &Throughput::Bits(2),
            &mut v
        ),
        "J/bit (measured)"
    );
    assert_eq!(v, [4.0]);
    let mut v = [3e-3];
    assert_eq!(
        f.scale_throughputs(
            3e-3,
            &Throughput::ElementsAndBytes {
                elements: 3,
                bytes: 24
            },
            &mut v
        ),
        "mJ/elem (estimated)"
    );
    assert!((v[0] - 1.0).abs() < 1e-9);
    assert!(
        f.format_throughput(&Throughput::Elements(1000), 2e-3)
            .ends_with("µJ/elem (estimated)")
    );
}

#[test]
fn group_names_keep_time_and_energy_apart() {
    assert_eq!(<WallTime as EnergyAware>::group_name("sort"), "sort");
    assert_eq!(<Energy as EnergyAware>::group_name("sort"), "sort-energy");
    // The helper compiles for both measurements.
    let _ = group::<WallTime>;
    let _ = group::<Energy>;
}
