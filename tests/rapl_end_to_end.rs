//! End to end on a fake powercap tree: a helper thread advances the package counter at a known
//! constant power while the workload runs steps of known relative length. Every step's energy
//! must be within 5 % of power x its share, the run's total within 2 % of power x wall time.
//!
//! Also the wraparound rig of issue 9, through detection and a real run: two 30 W packages and a
//! 4 W DRAM zone whose counters wrap at 20 J and move every 5 ms, sampled at 10 Hz in host
//! scope; each domain must come out at its power.

mod common;
use carina_probes::powercap::PowercapProbe;
use common::{serial, spin};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const WATTS: f64 = 120.0;
const RANGE_UJ: u64 = 262_143_328_850;

/// Writes `uj` in place with one fixed-width `pwrite`, so a reader never sees a partial
/// number and the writer costs microseconds of CPU (its CPU time is not the workload's).
fn write_counter(file: &std::fs::File, uj: u64) {
    use std::os::unix::fs::FileExt;
    file.write_at(format!("{uj:020}\n").as_bytes(), 0).unwrap();
}

fn open_counter(zone: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(zone.join("energy_uj"))
        .unwrap()
}

#[test]
fn steps_get_power_times_their_share_from_a_fake_rapl_counter() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let zone = tmp.path().join("intel-rapl:0");
    std::fs::create_dir_all(&zone).unwrap();
    std::fs::write(zone.join("name"), "package-0\n").unwrap();
    std::fs::write(zone.join("max_energy_range_uj"), format!("{RANGE_UJ}\n")).unwrap();
    // Start near the top of the range so the counter wraps during the run.
    let start_uj = RANGE_UJ - 20_000_000;
    let counter = open_counter(&zone);
    write_counter(&counter, start_uj);

    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let uj = (t0.elapsed().as_secs_f64() * WATTS * 1e6) as u64;
                write_counter(&counter, (start_uj + uj) % RANGE_UJ);
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };

    let (sink, recs) = carina::sink::MemorySink::new();
    let run = carina::Run::builder("rapl-e2e")
        .run_file(false)
        .sink(sink)
        .energy_probe(PowercapProbe::open(tmp.path()).unwrap())
        // The fake counter is the whole machine's; take all of it.
        .scope(carina::Scope::Host)
        .sample_interval(Duration::from_millis(50))
        .start()
        .unwrap();
    let run_started = Instant::now();
    let lengths_ms = [150u64, 300, 450];
    for (i, ms) in lengths_ms.iter().enumerate() {
        let _g = carina::step(["one", "two", "three"][i]);
        spin(ms * 1000);
    }
    let s = run.finish().unwrap();
    let wall = run_started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();

    assert_eq!(s.energy_kind, carina::EnergyKind::Measured);
    let total = s.energy.0;
    let expect_total = WATTS * wall;
    eprintln!("total: {:.4} of power x wall", total / expect_total);
    assert!(
        (total / expect_total - 1.0).abs() < 0.02,
        "total {total:.3} J vs {expect_total:.3} J"
    );
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
    let end = s.run_end.unwrap();
    assert!(
        end.energy_low_j.is_none(),
        "measured energy has no model band"
    );
}

/// Where the rig's counters wrap: 20 J.
const RIG_RANGE_UJ: u64 = 20_000_000;

#[test]
fn the_wrap_rig_reads_each_domain_at_its_power_through_detection() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let zone = |dir: &Path, name: &str| {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("name"), format!("{name}\n")).unwrap();
        std::fs::write(dir.join("max_energy_range_uj"), format!("{RIG_RANGE_UJ}\n")).unwrap();
        dir.to_owned()
    };
    let p0 = zone(&tmp.path().join("intel-rapl:0"), "package-0");
    let dram = zone(&p0.join("intel-rapl:0:0"), "dram");
    let p1 = zone(&tmp.path().join("intel-rapl:1"), "package-1");
    // (file, µJ per 5 ms step, counter at start)
    let rig = [
        (open_counter(&p0), 150_000u64, 19_000_000u64),
        (open_counter(&p1), 150_000, 7_654_321),
        (open_counter(&dram), 20_000, 123),
    ];
    for (file, _, start) in &rig {
        write_counter(file, *start);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut written = 0;
            while !stop.load(Ordering::Relaxed) {
                // The counters move in whole 5 ms steps of real time, however late this thread is.
                let steps = t0.elapsed().as_millis() as u64 / 5;
                if steps != written {
                    for (file, step, start) in &rig {
                        write_counter(file, (start + steps * step) % RIG_RANGE_UJ);
                    }
                    written = steps;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };

    // Detection opens the tree and checks that its counters advance, as in a real run.
    let roots = carina_probes::Roots {
        powercap: tmp.path().to_owned(),
        perf_pmu: tmp.path().join("no-power-pmu"),
        nvml: false,
        ..Default::default()
    };
    let mut detection = carina_probes::detect_with(&roots, &Default::default());
    let probe = detection.probes.remove(0);
    assert_eq!(probe.describe().name, "rapl-powercap");
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
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();

    let wall = s.wall.0;
    let end = s.run_end.unwrap();
    let by_domain = end.energy_by_domain.expect("three domains");
    for (domain, watts) in [("package-0", 30.0), ("package-1", 30.0), ("dram-0", 4.0)] {
        let w = by_domain.get(domain).unwrap() / wall;
        eprintln!("{domain}: {w:.3} W over {wall:.3} s");
        assert!(
            (w.0 / watts - 1.0).abs() < 0.05,
            "{domain}: {w:.3} W, expected {watts} W"
        );
    }
}
