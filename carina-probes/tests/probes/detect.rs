//! Detection picks measured sources where they work, the model elsewhere, and says why for
//! every source it did not pick, with the probe's own fix. Live counters follow the clock
//! (`ClockFs`), so the liveness check needs no writer thread to keep up.

use super::common::USER;
use carina_probes::powercap::{PowercapProbe, SysFs};
use carina_probes::{
    Backends, DEFAULT_LIVENESS_WAIT, Detection, ModelOptions, NotChosen, Privileges, Roots,
    detect_with, detect_with_backends, stalled_domains,
};
use carina_runtime::energy::UnavailableCause;
use carina_runtime::record::SourceId;
use carina_runtime::{EnergyKind, EnergyProbeExt, Joules, Reading};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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
        nvml_library: tmp.join("no-libnvidia-ml.so.1").into(),
        privileges: USER,
        liveness_wait: DEFAULT_LIVENESS_WAIT,
    }
}

/// The files of a fake tree, except the `energy_uj` of live zones: those read the clock, 1 µJ
/// per µs since the tree was made (1 W), as a live RAPL counter moves.
struct ClockFs {
    t0: Instant,
    live: Vec<PathBuf>,
}

impl ClockFs {
    fn new(live_zones: &[PathBuf]) -> ClockFs {
        ClockFs {
            t0: Instant::now(),
            live: live_zones.iter().map(|z| z.join("energy_uj")).collect(),
        }
    }
}

impl SysFs for ClockFs {
    fn read_to_string(&self, path: &Path) -> io::Result<String> {
        if self.live.iter().any(|l| l == path) {
            let uj = 10_000_000 + self.t0.elapsed().as_micros();
            return Ok(format!("{uj}\n"));
        }
        std::fs::read_to_string(path)
    }
}

/// Detection with the powercap tree read through a clock for the `live` zones.
fn detect_live(roots: &Roots, live: &[PathBuf]) -> Detection {
    let backends = Backends {
        powercap_fs: Box::new(ClockFs::new(live)),
        ..Backends::default()
    };
    detect_with_backends(roots, &ModelOptions::default(), backends)
}

fn not_chosen(d: &Detection, id: SourceId) -> &NotChosen {
    d.not_chosen
        .iter()
        .find(|n| n.id == id)
        .unwrap_or_else(|| panic!("{id} not listed: {:?}", d.not_chosen))
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
    let ids: Vec<_> = d.not_chosen.iter().map(|n| n.id.clone()).collect();
    assert_eq!(
        ids,
        [SourceId::RaplPerf, SourceId::RaplPowercap, SourceId::Nvml]
    );
    // No PMU: nothing to fix from here.
    let perf = &d.not_chosen[0];
    assert!(perf.reason.contains("no-power-pmu"), "{perf:?}");
    assert_eq!(
        (perf.cause, perf.fix.as_deref()),
        (UnavailableCause::Absent, None)
    );
    // No zone: the driver to load (and the tree to check, since the root is not the kernel's),
    // never a permission.
    let pc = &d.not_chosen[1];
    assert!(pc.reason.contains("no RAPL zones under"), "{pc:?}");
    assert_eq!(pc.cause, UnavailableCause::Absent);
    let fix = pc.fix.as_deref().unwrap();
    assert!(fix.contains("CARINA_POWERCAP_ROOT"), "{fix}");
    if cfg!(target_arch = "x86_64") {
        assert!(fix.contains("sudo modprobe intel_rapl_msr"), "{fix}");
    }
    assert!(
        !fix.contains("root;") && !fix.contains("run as root"),
        "{fix}"
    );
    assert!(!fix.contains("chmod"), "{fix}");
    // Turned off by the caller: said so, nothing to fix.
    let nvml = &d.not_chosen[2];
    assert_eq!(
        (nvml.cause, nvml.reason.as_str(), nvml.fix.as_deref()),
        (
            UnavailableCause::Disabled,
            "not tried (disabled by the caller)",
            None
        )
    );
    // Each reaches the run file's source list with its fix.
    let entry = pc.clone().into_source();
    assert_eq!((entry.name.as_str(), entry.used), ("rapl-powercap", false));
    assert_eq!(entry.reason.as_deref(), Some(pc.reason.as_str()));
    assert_eq!(entry.fix, pc.fix);
    assert_eq!(perf.clone().into_source().fix, None);
}

/// The contradiction `carina doctor` once printed: "run as root" to root, for a machine with no
/// RAPL zone at all. The fix depends on the cause (no zone), not on who asks.
#[test]
fn no_zones_never_sends_root_or_anyone_after_permissions() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("proc")).unwrap();
    fake_proc(&tmp.path().join("proc"));
    std::fs::create_dir_all(tmp.path().join("powercap")).unwrap();
    let mut fixes = Vec::new();
    for root in [false, true] {
        let roots = Roots {
            privileges: Privileges {
                root,
                perf_event_paranoid: Some(2),
            },
            ..roots(tmp.path())
        };
        let d = detect_with(&roots, &ModelOptions::default());
        let pc = not_chosen(&d, SourceId::RaplPowercap);
        assert_eq!(pc.cause, UnavailableCause::Absent, "{pc:?}");
        let fix = pc.fix.clone().unwrap_or_default();
        for word in ["run as root", "chmod", "udev", "permission"] {
            assert!(!fix.contains(word), "root {root}: {word:?} in {fix}");
        }
        fixes.push(fix);
    }
    assert_eq!(fixes[0], fixes[1], "the fix must not depend on who asks");
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
    let mut d = detect_live(&roots(tmp.path()), &[pkg, dram]);
    assert_eq!(d.probes.len(), 1);
    let p = &mut d.probes[0];
    let src = p.describe();
    assert_eq!(src.id(), SourceId::RaplPowercap);
    assert_eq!(src.kind, EnergyKind::Measured);
    assert_eq!(p.domains(), ["package-0", "dram-0"]);
    let mut out = [Joules::ZERO; 2];
    p.read_energy(&mut out).unwrap();
    // Not needed is not a problem: nothing to fix.
    let model = not_chosen(&d, SourceId::Model);
    assert!(model.reason.contains("RAPL"), "{model:?}");
    assert_eq!(
        (model.cause, model.fix.as_deref()),
        (UnavailableCause::Superseded, None)
    );
    not_chosen(&d, SourceId::RaplPerf);
    // Each unused source keeps its own kind: the model's figures would have been estimates,
    // the counters' measurements; run_start.energy_sources lists them so.
    for n in &d.not_chosen {
        let want = if n.id == SourceId::Model {
            EnergyKind::Estimated
        } else {
            EnergyKind::Measured
        };
        assert_eq!(n.kind, want, "{}", n.id);
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
    assert_eq!(src.id(), SourceId::Model);
    assert_eq!(src.kind, EnergyKind::Estimated);
    let pc = not_chosen(&d, SourceId::RaplPowercap);
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
    // Typed: a counter that does not count, whose fix sends no one after permissions.
    assert_eq!(pc.cause, UnavailableCause::NotCounting);
    let fix = pc.fix.as_deref().unwrap();
    assert!(fix.starts_with("none on this machine"), "{fix}");
    assert!(
        !fix.contains("run as root") && !fix.contains("chmod"),
        "{fix}"
    );
    // The model is used, so it is not listed as "not needed".
    assert!(
        d.not_chosen.iter().all(|n| n.id != SourceId::Model),
        "{:?}",
        d.not_chosen
    );
    // The reason and the fix reach the run file's source list.
    let entry = pc.clone().into_source();
    assert!(!entry.used);
    assert_eq!(entry.reason.as_deref(), Some(pc.reason.as_str()));
    assert_eq!(entry.fix.as_deref(), Some(fix));
}

#[test]
fn a_dead_dram_counter_is_dropped_and_the_package_kept() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("proc")).unwrap();
    fake_proc(&tmp.path().join("proc"));
    let pkg = tmp.path().join("powercap").join("intel-rapl:0");
    fake_zone(&pkg, "package-0", 1_000_000);
    fake_zone(&pkg.join("intel-rapl:0:0"), "dram", 500_000);
    let d = detect_live(&roots(tmp.path()), std::slice::from_ref(&pkg));
    assert_eq!(d.probes.len(), 1);
    let src = d.probes[0].describe();
    assert_eq!(src.id(), SourceId::RaplPowercap);
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
        not_chosen(&d, SourceId::Model)
            .reason
            .contains("not needed")
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
    let d = detect_live(&roots(tmp.path()), &[dram]);
    assert_eq!(d.probes[0].describe().kind, EnergyKind::Estimated);
    let pc = not_chosen(&d, SourceId::RaplPowercap);
    assert_eq!(pc.cause, UnavailableCause::NotCounting);
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
    assert_eq!(d.probes[0].describe().id(), SourceId::RaplPowercap);
    // No burn at all: well under a second even on a loaded host.
    assert!(start.elapsed() < Duration::from_secs(2));
}

/// How long this thread has been runnable, ns: on a CPU plus queued for one
/// (`/proc/thread-self/schedstat`, fields 1 and 2).
fn runnable_ns() -> u64 {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat")
        .expect("/proc/thread-self/schedstat (a kernel with CONFIG_SCHED_INFO) is needed");
    text.split_whitespace()
        .take(2)
        .map(|f| f.parse::<u64>().unwrap())
        .sum()
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
    let before = runnable_ns();
    let start = std::time::Instant::now();
    let d = detect_with(&roots, &ModelOptions::default());
    let wall = start.elapsed();
    assert!(wall >= Duration::from_millis(80), "{wall:?}");
    // Busy, not asleep: the thread wanted the CPU the whole wait, whether it got it (a loaded
    // machine hands it out in turns) or queued for it. A sleep would be neither (a few µs).
    // The bound is half the wait, not all of it: on a VM with paravirtual steal accounting the
    // time the hypervisor took the vCPU away is missing from both fields (a CI host showed
    // 67 ms runnable over an 81 ms burn).
    let busy = Duration::from_nanos(runnable_ns() - before);
    assert!(
        busy >= Duration::from_millis(40),
        "runnable for {busy:?} of {wall:?}"
    );
    let pc = not_chosen(&d, SourceId::RaplPowercap);
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
    let fs = ClockFs::new(std::slice::from_ref(&p1));
    let mut probe = PowercapProbe::open_with(&pc, Box::new(fs)).unwrap();
    assert_eq!(
        stalled_domains(&mut probe, Duration::from_millis(10)).unwrap(),
        [0]
    );
}
