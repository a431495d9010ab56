//! Detection picks measured sources where they work, the model elsewhere, and says why for
//! every source it did not pick.

use carina_core::{EnergyKind, Joules};
use carina_probes::{ModelOptions, Roots, detect_with};
use std::path::Path;

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
    fake_zone(&pc.join("intel-rapl:0"), "package-0", 1_000_000);
    fake_zone(
        &pc.join("intel-rapl:0").join("intel-rapl:0:0"),
        "dram",
        500_000,
    );
    let mut d = detect_with(&roots(tmp.path()), &ModelOptions::default());
    assert_eq!(d.probes.len(), 1);
    let p = &mut d.probes[0];
    let src = p.describe();
    assert_eq!(src.name, "rapl-powercap");
    assert_eq!(src.kind, EnergyKind::Measured);
    assert_eq!(p.domains(), ["package-0", "dram-0"]);
    let mut out = [Joules::ZERO; 2];
    p.read(&mut out).unwrap();
    assert!(
        d.not_chosen
            .iter()
            .any(|n| n.name == "model" && n.reason.contains("RAPL"))
    );
    assert!(d.not_chosen.iter().any(|n| n.name == "rapl-perf"));
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
    let mut d = detect_with(&roots(tmp.path()), &opts);
    let p = &mut d.probes[0];
    assert!(
        p.describe().source.ends_with("x PUE 1.5"),
        "{}",
        p.describe().source
    );
    let mut out = [Joules::ZERO];
    p.read(&mut out).unwrap();
    std::fs::write(zone.join("energy_uj"), "3000000\n").unwrap();
    p.read(&mut out).unwrap();
    // 2 J measured x 1.5.
    assert!((out[0].0 - 3.0).abs() < 1e-9, "{:?}", out[0]);
}
