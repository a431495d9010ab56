//! Detection picks measured sources where they work, the model elsewhere, and says why for
//! every source it did not pick.

use carina_probes::{DEFAULT_LIVENESS_WAIT, ModelOptions, Roots, detect_with, stalled_domains};
use carina_runtime::{EnergyKind, EnergyProbeExt, Joules, Reading};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

fn fake_proc(dir: &Path) {
    std::fs::write(
        dir.join("cpuinfo"),
        "processor : 0\nvendor_id : GenuineIntel\ncpu family : 6\nmodel : 85\nmodel name : Intel Xeon\nprocessor : 1\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("stat"),
        "cpu 1 0 1 10 0 0 0 0\ncpu0 1 0 1 5\ncpu1 0 0 0 5\n",
    )
    .unwrap();
}

fn fake_zone(dir: &Path, name: &str, uj: u64) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("name"), format!("{name}\n")).unwrap();
    std::fs::write(dir.join("energy_uj"), format!("{uj}\n")).unwrap();
    std::fs::write(dir.join("max_energy_range_uj"), "262143328850\n").unwrap();
}

fn roots(tmp: &Path) -> Roots {
    Roots {
        proc: tmp.join("proc"),
        sys: tmp.join("sys"),
        powercap: tmp.join("powercap"),
        perf_pmu: tmp.join("no-power-pmu"),
        nvml: false,
        liveness_wait: DEFAULT_LIVENESS_WAIT,
    }
}

/// Advances the `energy_uj` of the given zones by 1 mJ every millisecond until dropped, as a
/// live RAPL counter does.
struct Advancer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Advancer {
    fn start(zones: &[PathBuf]) -> Advancer {
        let stop = Arc::new(AtomicBool::new(false));
        let files: Vec<PathBuf> = zones.iter().map(|z| z.join("energy_uj")).collect();
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut uj = 10_000_000u64;
                while !stop.load(Ordering::Relaxed) {
                    uj += 1_000;
                    for f in &files {
                        // Replaced whole, so that a reader never sees a half-written file.
                        let tmp = f.with_extension("new");
                        std::fs::write(&tmp, format!("{uj}\n")).unwrap();
                        std::fs::rename(&tmp, f).unwrap();
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            })
        };
        // The counter has moved before detection looks at it.
        let first = &zones[0].join("energy_uj");
        let before = std::fs::read_to_string(first).unwrap_or_default();
        while std::fs::read_to_string(first).unwrap_or_default() == before {
            std::thread::sleep(Duration::from_millis(1));
        }
        Advancer {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Advancer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn a_vm_without_counters_gets_the_estimation_model_and_reasons() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("proc")).unwrap();
    std::fs::create_dir_all(tmp.path().join("sys")).unwrap();
    fake_proc(&tmp.path().join("proc"));
    let d = detect_with(&roots(tmp.path()), &ModelOptions::default());
    assert_eq!(d.probes.len(), 1);
    let src = d.probes[0].describe();
    assert_eq!(src.kind, EnergyKind::Estimated);
    assert!(src.source.contains("Skylake"), "{}", src.source);
    let names: Vec<_> = d.not_chosen.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["rapl-perf", "rapl-powercap", "nvml"]);
    assert!(
        d.not_chosen[0].reason.contains("no-power-pmu"),
        "{:?}",
        d.not_chosen[0]
    );
    assert!(
        d.not_chosen[1].reason.contains("powercap"),
        "{:?}",
        d.not_chosen[1]
    );
}

#[test]
fn rapl_through_powercap_is_chosen_over_the_model_when_readable() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("proc")).unwrap();
    fake_proc(&tmp.path().join("proc"));
    let pc = tmp.path().join("powercap");
    let pkg = pc.join("intel-rapl:0");
    let dram = pkg.join("intel-rapl:0:0");
    fake_zone(&pkg, "package-0", 1_000_000);
    fake_zone(&dram, "dram", 500_000);
    // Live counters, so that the liveness check passes.
    let _advancing = Advancer::start(&[pkg, dram]);
    let mut d = detect_with(&roots(tmp.path()), &ModelOptions::default());
    assert_eq!(d.probes.len(), 1);
    let p = &mut d.probes[0];
    let src = p.describe();
    assert_eq!(src.name, "rapl-powercap");
    assert_eq!(src.kind, EnergyKind::Measured);
    assert_eq!(p.domains(), ["package-0", "dram-0"]);
    let mut out = [Joules::ZERO; 2];
    p.read_energy(&mut out).unwrap();
    assert!(
        d.not_chosen
            .iter()
            .any(|n| n.name == "model" && n.reason.contains("RAPL"))
    );
    assert!(d.not_chosen.iter().any(|n| n.name == "rapl-perf"));
    // Each unused source keeps its own kind: the model's figures would have been estimates,
    // the counters' measurements; run_start.energy_sources lists them so.
    for n in &d.not_chosen {
        let want = if n.name == "model" {
            EnergyKind::Estimated
        } else {
            EnergyKind::Measured
        };
        assert_eq!(n.kind, want, "{}", n.name);
        assert_eq!(n.clone().into_source().kind, want);
    }
}

#[test]
fn pue_multiplies_measured_sources_too() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("proc")).unwrap();
    fake_proc(&tmp.path().join("proc"));
    let zone = tmp.path().join("powercap").join("intel-rapl:0");
    fake_zone(&zone, "package-0", 1_000_000);
    let opts = ModelOptions {
        pue: 1.5,
        ..ModelOptions::default()
    };
    // This test is about PUE and moves the counter itself: no liveness check.
    let roots = Roots {
        liveness_wait: Duration::ZERO,
        ..roots(tmp.path())
    };
    let mut d = detect_with(&roots, &opts);
    let p = &mut d.probes[0];
    assert!(
        p.describe().source.ends_with("x PUE 1.5"),
        "{}",
        p.describe().source
    );
    assert_eq!(p.describe().pue, Some(1.5));
    assert_eq!(
        p.describe().basis,
        Some(carina_runtime::record::Basis::Counter)
    );
    let mut reading = Reading::new(1);
    p.read(&mut reading).unwrap();
    std::fs::write(zone.join("energy_uj"), "3000000\n").unwrap();
    let mut reading = Reading::new(1);
    p.read(&mut reading).unwrap();
    // 2 J measured x 1.5.
    let out = &reading.energy;
    assert!((out[0].0 - 3.0).abs() < 1e-9, "{:?}", out[0]);
    assert!(reading.report.is_empty());
    // What the counter meets reaches the session through the PUE wrapper: a counter that went
    // back is a reset, reported and flagged.
    std::fs::write(zone.join("energy_uj"), "1000\n").unwrap();
    let mut reading = Reading::new(1);
    p.read(&mut reading).unwrap();
    let r = reading.report;
    assert!(r.lower_bound);
    assert!(
        r.warnings.len() == 1 && r.warnings[0].starts_with("package-0: counter reset"),
        "{r:?}"
    );
}

/// A powercap tree whose counters never move (a copied or emulated tree, a VM that fakes RAPL):
/// detection must not call it a measurement of 0 J, but fall back to the model and say why.
#[test]
fn a_static_powercap_tree_is_dead_and_the_model_is_used() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("proc")).unwrap();
    fake_proc(&tmp.path().join("proc"));
    let pc = tmp.path().join("powercap");
    fake_zone(&pc.join("intel-rapl:0"), "package-0", 1_000_000);
    fake_zone(
        &pc.join("intel-rapl:0").join("intel-rapl:0:0"),
        "dram",
        500_000,
    );
    let d = detect_with(&roots(tmp.path()), &ModelOptions::default());
    assert_eq!(d.probes.len(), 1);
    let src = d.probes[0].describe();
    assert_eq!(src.name, "model");
    assert_eq!(src.kind, EnergyKind::Estimated);
    let pc = d
        .not_chosen
        .iter()
        .find(|n| n.name == "rapl-powercap")
        .unwrap();
    for needle in [
        "counters package-0 (intel-rapl:0/energy_uj), dram-0 (intel-rapl:0:0/energy_uj)",
        "did not advance over 30 ms while the CPU was running",
        "energy_uj does not count",
        "using the estimation model",
    ] {
        assert!(
            pc.reason.contains(needle),
            "{needle:?} not in {}",
            pc.reason
        );
    }
    assert!(pc.counter_did_not_advance());
    // The model is used, so it is not listed as "not needed".
    assert!(
        d.not_chosen.iter().all(|n| n.name != "model"),
        "{:?}",
        d.not_chosen
    );
    // The reason reaches the run file's source list.
    let entry = pc.clone().into_source();
    assert!(!entry.used);
    assert_eq!(entry.reason.as_deref(), Some(pc.reason.as_str()));
}

#[test]
fn a_dead_dram_counter_is_dropped_and_the_package_kept() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("proc")).unwrap();
    fake_proc(&tmp.path().join("proc"));
    let pkg = tmp.path().join("powercap").join("intel-rapl:0");
    fake_zone(&pkg, "package-0", 1_000_000);
    fake_zone(&pkg.join("intel-rapl:0:0"), "dram", 500_000);
    let _advancing = Advancer::start(std::slice::from_ref(&pkg));
    let d = detect_with(&roots(tmp.path()), &ModelOptions::default());
    assert_eq!(d.probes.len(), 1);
    let src = d.probes[0].describe();
    assert_eq!(src.name, "rapl-powercap");
    assert_eq!(src.kind, EnergyKind::Measured);
    assert_eq!(d.probes[0].domains(), ["package-0"]);
    assert!(
        src.source.contains(
            "dram-0 (intel-rapl:0:0) dropped: its counter did not advance over 30 ms while the \
             CPU was running"
        ),
        "{}",
        src.source
    );
    assert!(
        d.not_chosen
            .iter()
            .any(|n| n.name == "model" && n.reason.contains("not needed"))
    );
}

#[test]
fn a_dead_package_with_a_live_dram_does_not_measure_the_cpu() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("proc")).unwrap();
    fake_proc(&tmp.path().join("proc"));
    let pkg = tmp.path().join("powercap").join("intel-rapl:0");
    let dram = pkg.join("intel-rapl:0:0");
    fake_zone(&pkg, "package-0", 1_000_000);
    fake_zone(&dram, "dram", 500_000);
    let _advancing = Advancer::start(&[dram]);
    let d = detect_with(&roots(tmp.path()), &ModelOptions::default());
    assert_eq!(d.probes[0].describe().kind, EnergyKind::Estimated);
    let pc = d
        .not_chosen
        .iter()
        .find(|n| n.name == "rapl-powercap")
        .unwrap();
    assert!(
        pc.reason.starts_with(
            "counter package-0 (intel-rapl:0/energy_uj) did not advance over 30 ms while the \
             CPU was running (dram-0 (intel-rapl:0:0/energy_uj) did, but without a package or \
             psys counter the CPU is not measured)"
        ),
        "{}",
        pc.reason
    );
    assert!(
        pc.reason.ends_with("using the estimation model"),
        "{}",
        pc.reason
    );
}

#[test]
fn a_zero_wait_trusts_every_counter_that_opens() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("proc")).unwrap();
    fake_proc(&tmp.path().join("proc"));
    fake_zone(&tmp.path().join("powercap/intel-rapl:0"), "package-0", 5);
    let roots = Roots {
        liveness_wait: Duration::ZERO,
        ..roots(tmp.path())
    };
    let start = std::time::Instant::now();
    let d = detect_with(&roots, &ModelOptions::default());
    assert_eq!(d.probes[0].describe().name, "rapl-powercap");
    assert!(start.elapsed() < Duration::from_millis(500));
}

/// The wait is a parameter, the message quotes it, and the detecting thread burns CPU for it.
#[test]
fn the_wait_is_configurable_and_spent_on_the_cpu() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("proc")).unwrap();
    fake_proc(&tmp.path().join("proc"));
    fake_zone(&tmp.path().join("powercap/intel-rapl:1"), "psys", 5);
    let roots = Roots {
        liveness_wait: Duration::from_millis(80),
        ..roots(tmp.path())
    };
    let cpu_before = carina_runtime::cpuclock::this_thread_ns();
    let start = std::time::Instant::now();
    let d = detect_with(&roots, &ModelOptions::default());
    let wall = start.elapsed();
    assert!(wall >= Duration::from_millis(80), "{wall:?}");
    if let (Some(a), Some(b)) = (cpu_before, carina_runtime::cpuclock::this_thread_ns()) {
        // Busy, not asleep (with room for a loaded machine taking the CPU away).
        assert!(
            b - a >= 40_000_000,
            "{} ms of CPU in {wall:?}",
            (b - a) / 1_000_000
        );
    }
    let pc = d
        .not_chosen
        .iter()
        .find(|n| n.name == "rapl-powercap")
        .unwrap();
    assert!(
        pc.reason
            .starts_with("counter psys (intel-rapl:1/energy_uj) did not advance over 80 ms"),
        "{}",
        pc.reason
    );
}

#[test]
fn stalled_domains_names_the_counters_that_did_not_move() {
    let tmp = tempfile::tempdir().unwrap();
    let pc = tmp.path().join("powercap");
    let p0 = pc.join("intel-rapl:0");
    let p1 = pc.join("intel-rapl:1");
    fake_zone(&p0, "package-0", 1);
    fake_zone(&p1, "package-1", 1);
    let _advancing = Advancer::start(std::slice::from_ref(&p1));
    let mut probe = carina_probes::powercap::PowercapProbe::open(&pc).unwrap();
    assert_eq!(
        stalled_domains(&mut probe, Duration::from_millis(10)).unwrap(),
        [0]
    );
}
