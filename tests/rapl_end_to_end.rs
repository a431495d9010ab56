//! End to end on a fake powercap tree whose counters are a function of the clock: every read of
//! `energy_uj` returns what a counter at a known power would show at that instant, so no helper
//! thread has to keep up (a writer thread fell behind on loaded machines). The workload runs
//! steps of known relative length; every step's energy must be within 5 % of power x its share,
//! the run's total within 2 % of power x wall time.
//!
//! Also the wraparound rig of issue 9 through a real run: two 30 W packages and a 4 W DRAM zone
//! whose counters wrap at 20 J and move every 5 ms, sampled at 10 Hz in host scope; each domain
//! must come out at its power, and with the zones' power limits published every interval is
//! certain (no lower bound, no warning).

use crate::common;
use carina_probes::powercap::{PowercapProbe, SysFs};
use common::{serial, spin};
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const WATTS: f64 = 120.0;
const RANGE_UJ: u64 = 262_143_328_850;

/// One counter driven by the clock: `start_uj + per_step_uj x (whole steps since t0)`, wrapped.
#[derive(Clone, Copy)]
struct Drive {
    start_uj: u64,
    uj_per_step: u64,
    step: Duration,
    range_uj: u64,
}

/// The real files of a fake tree, except the `energy_uj` of driven zones, which read the clock.
struct ClockFs {
    t0: Instant,
    driven: HashMap<PathBuf, Drive>,
}

impl SysFs for ClockFs {
    fn read_to_string(&self, path: &Path) -> io::Result<String> {
        match self.driven.get(path) {
            Some(d) => {
                let steps = (self.t0.elapsed().as_nanos() / d.step.as_nanos().max(1)) as u64;
                let uj = (d.start_uj as u128 + steps as u128 * d.uj_per_step as u128)
                    % d.range_uj as u128;
                Ok(format!("{uj}\n"))
            }
            None => std::fs::read_to_string(path),
        }
    }
}

fn zone(dir: &Path, name: &str, range_uj: u64, limit_w: Option<u64>) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("name"), format!("{name}\n")).unwrap();
    std::fs::write(dir.join("max_energy_range_uj"), format!("{range_uj}\n")).unwrap();
    std::fs::write(dir.join("energy_uj"), "0\n").unwrap();
    if let Some(w) = limit_w {
        std::fs::write(
            dir.join("constraint_0_power_limit_uw"),
            format!("{}\n", w * 1_000_000),
        )
        .unwrap();
    }
    dir.to_owned()
}

#[test]
fn steps_get_power_times_their_share_from_a_fake_rapl_counter() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let pkg = zone(
        &tmp.path().join("intel-rapl:0"),
        "package-0",
        RANGE_UJ,
        None,
    );
    // Start near the top of the range so the counter wraps during the run; 1 µJ steps of
    // 1/120 ms are 120 W.
    let fs = ClockFs {
        t0: Instant::now(),
        driven: HashMap::from([(
            pkg.join("energy_uj"),
            Drive {
                start_uj: RANGE_UJ - 20_000_000,
                uj_per_step: 120,
                step: Duration::from_micros(1),
                range_uj: RANGE_UJ,
            },
        )]),
    };
    let (sink, recs) = carina::sink::MemorySink::new();
    let run = carina::Run::builder("rapl-e2e")
        .run_file(false)
        .sink(sink)
        .energy_probe(PowercapProbe::open_with(tmp.path(), Box::new(fs)).unwrap())
        // The fake counter is the whole machine's; take all of it.
        .scope(carina::Scope::Host)
        .sample_interval(Duration::from_millis(50))
        .start()
        .unwrap();
    let lengths_ms = [150u64, 300, 450];
    for (i, ms) in lengths_ms.iter().enumerate() {
        let _g = carina::step(["one", "two", "three"][i]);
        spin(ms * 1000);
    }
    let s = run.finish().unwrap();

    assert_eq!(s.energy_kind(), carina::EnergyKind::Measured);
    // The run's figure spans its wall time exactly: power x wall time, whatever the load.
    let total = s.energy().0;
    let expect_total = WATTS * s.wall().0;
    eprintln!("total: {:.4} of power x wall", total / expect_total);
    assert!(
        (total / expect_total - 1.0).abs() < 0.02,
        "total {total:.3} J vs {expect_total:.3} J"
    );
    assert_eq!(s.method().unwrap().label, "counter");
    let steps = recs.steps();
    for (i, ms) in lengths_ms.iter().enumerate() {
        let name = ["one", "two", "three"][i];
        let st = steps.iter().find(|r| r.name == name).unwrap();
        let dur = (st.end_s - st.start_s).0;
        let expect = WATTS * dur;
        eprintln!("{name}: {:.4} of power x duration", st.energy_j.0 / expect);
        assert!(
            (st.energy_j.0 / expect - 1.0).abs() < 0.05,
            "{name}: {:.3} J vs {expect:.3} J over {dur:.3} s (planned {ms} ms)",
            st.energy_j
        );
    }
    // Steps 1:2:3 in length get 1:2:3 in energy.
    let e = |n: &str| steps.iter().find(|r| r.name == n).unwrap().energy_j;
    assert!((e("three") / e("one") / 3.0 - 1.0).abs() < 0.05);
    let end = s.end.unwrap();
    assert!(
        end.energy_low_j.is_none(),
        "measured energy has no model band"
    );
}

/// Where the rig's counters wrap: 20 J.
const RIG_RANGE_UJ: u64 = 20_000_000;

#[test]
fn the_wrap_rig_reads_each_domain_at_its_power() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    // Power limits of 60 W per package and 10 W for the DRAM bound each domain at twice that:
    // 100 ms can hold at most 12 J and 2 J, less than one 20 J range, so every interval at
    // 10 Hz is certain. Without them the 2000 W default makes every interval ambiguous.
    let p0 = zone(
        &tmp.path().join("intel-rapl:0"),
        "package-0",
        RIG_RANGE_UJ,
        Some(60),
    );
    let dram = zone(&p0.join("intel-rapl:0:0"), "dram", RIG_RANGE_UJ, Some(10));
    let p1 = zone(
        &tmp.path().join("intel-rapl:1"),
        "package-1",
        RIG_RANGE_UJ,
        Some(60),
    );
    let five_ms = Duration::from_millis(5);
    let drive = |start_uj, uj_per_step| Drive {
        start_uj,
        uj_per_step,
        step: five_ms,
        range_uj: RIG_RANGE_UJ,
    };
    let fs = ClockFs {
        t0: Instant::now(),
        driven: HashMap::from([
            (p0.join("energy_uj"), drive(19_000_000, 150_000)),
            (p1.join("energy_uj"), drive(7_654_321, 150_000)),
            (dram.join("energy_uj"), drive(123, 20_000)),
        ]),
    };
    let probe = PowercapProbe::open_with(tmp.path(), Box::new(fs)).unwrap();
    assert_eq!(probe.domains(), ["package-0", "package-1", "dram-0"]);
    let (sink, _recs) = carina::sink::MemorySink::new();
    let run = carina::Run::builder("rapl-wrap-rig")
        .run_file(false)
        .sink(sink)
        .energy_probe(probe)
        .scope(carina::Scope::Host)
        .sample_interval(Duration::from_millis(100))
        .start()
        .unwrap();
    {
        let _g = carina::step("work");
        spin(1_500_000);
    }
    let s = run.finish().unwrap();

    let wall = s.wall().0;
    let end = s.end.clone().unwrap();
    let by_domain = end.energy_by_domain.expect("three domains");
    for (domain, watts) in [("package-0", 30.0), ("package-1", 30.0), ("dram-0", 4.0)] {
        let w = (by_domain.get(domain).unwrap() / wall).0;
        eprintln!("{domain}: {w:.3} W over {wall:.3} s");
        // The counters move in 5 ms steps: within one step at each end of a 1.5 s run.
        assert!(
            (w / watts - 1.0).abs() < 0.02,
            "{domain}: {w:.3} W, expected {watts} W"
        );
    }
    let m = s.method().unwrap();
    assert!(!m.lower_bound && m.label == "counter", "{m:?}");
    assert!(end.warnings.is_empty(), "{:?}", end.warnings);
}

/// Issue 15, row 4 through a session: the package counter dies 0.25 s into the run. The probe
/// flags it within a quarter second; the run ends with the counter still dead, so the figure
/// is labelled a lower bound and the warning names the counter.
#[test]
fn a_counter_that_dies_mid_run_labels_the_run_a_lower_bound() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let p0 = zone(
        &tmp.path().join("intel-rapl:0"),
        "package-0",
        RANGE_UJ,
        Some(60),
    );
    // 37.5 W in 1 ms steps, for 250 steps; then the counter stands still.
    struct Dies(Instant, PathBuf);
    impl SysFs for Dies {
        fn read_to_string(&self, path: &Path) -> io::Result<String> {
            if path == self.1 {
                let ms = (self.0.elapsed().as_millis() as u64).min(250);
                Ok(format!("{}\n", 1_000_000 + ms * 37_500))
            } else {
                std::fs::read_to_string(path)
            }
        }
    }
    let probe = PowercapProbe::open_with(
        tmp.path(),
        Box::new(Dies(Instant::now(), p0.join("energy_uj"))),
    )
    .unwrap();
    let (sink, _recs) = carina::sink::MemorySink::new();
    let run = carina::Run::builder("dies")
        .run_file(false)
        .sink(sink)
        .energy_probe(probe)
        .scope(carina::Scope::Host)
        .sample_interval(Duration::from_millis(50))
        .start()
        .unwrap();
    {
        let _g = carina::step("work");
        spin(900_000);
    }
    let s = run.finish().unwrap();
    let m = s.method().unwrap();
    assert!(m.lower_bound, "{m:?}");
    assert_eq!(m.label, "counter, lower bound");
    let end = s.end.as_ref().unwrap();
    let stalled: Vec<_> = end
        .warnings
        .iter()
        .filter(|w| w.starts_with("package-0: counter stalled"))
        .collect();
    assert_eq!(stalled.len(), 1, "{:?}", end.warnings);
    // The session's own 2 s check does not repeat it.
    assert!(
        !end.warnings.iter().any(|w| w.contains("stopped advancing")),
        "{:?}",
        end.warnings
    );
    // At most the 0.25 s it counted: 9.4 J.
    assert!(s.energy().0 <= 0.25 * 37.5 + 1e-9, "{}", s.energy().0);
    assert!(s.to_string().contains("lower bound"));
}
