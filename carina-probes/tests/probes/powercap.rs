//! The powercap RAPL probe against fake sysfs trees.

use super::common::{ROOT, USER, unavailable};
use carina_probes::powercap::{MaxPlausiblePower, PowercapProbe, RealSysFs, SysFs};
use carina_runtime::energy::UnavailableCause;
use carina_runtime::{
    EnergyKind, EnergyProbe, EnergyProbeExt, Joules, ProbeError, ProbeScope, Watts,
};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A typical range: 2^32 units of 61 µJ.
const RANGE: u64 = 262_143_328_850;

fn zone(dir: &Path, name: &str, energy_uj: u64, range_uj: u64) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join("name"), format!("{name}\n")).unwrap();
    fs::write(dir.join("energy_uj"), format!("{energy_uj}\n")).unwrap();
    fs::write(dir.join("max_energy_range_uj"), format!("{range_uj}\n")).unwrap();
    dir.to_owned()
}

fn set(dir: &Path, energy_uj: u64) {
    fs::write(dir.join("energy_uj"), format!("{energy_uj}\n")).unwrap();
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn j(uj: u64) -> f64 {
    uj as f64 / 1e6
}

fn read(p: &mut PowercapProbe, at: f64) -> Vec<f64> {
    let mut out = vec![Joules(-1.0); p.domains().len()];
    p.read_at(secs(at), &mut out).unwrap();
    out.iter().map(|x| x.0).collect()
}

/// One socket with its parts, as an Intel server shows it.
fn one_socket(root: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let pkg = zone(&root.join("intel-rapl:0"), "package-0", 1_000_000, RANGE);
    let core = zone(&pkg.join("intel-rapl:0:0"), "core", 500_000, RANGE);
    zone(&pkg.join("intel-rapl:0:1"), "uncore", 10, RANGE);
    let dram = zone(&pkg.join("intel-rapl:0:2"), "dram", 7_000, RANGE);
    (pkg, core, dram)
}

#[test]
fn single_socket_counts_package_and_dram_not_core_or_uncore() {
    let t = tempfile::tempdir().unwrap();
    let (pkg, core, dram) = one_socket(t.path());
    let mut p = PowercapProbe::open(t.path()).unwrap();
    assert_eq!(p.domains(), ["package-0", "dram-0"]);
    assert_eq!(p.scope(), ProbeScope::Host);

    let src = p.describe();
    assert_eq!(src.name, "rapl-powercap");
    assert_eq!(src.kind, EnergyKind::Measured);
    assert_eq!(src.scope, carina_runtime::ProbeScope::Host);
    assert_eq!(src.domains, ["package-0", "dram-0"]);
    assert!(
        src.source.contains(&t.path().display().to_string()),
        "{}",
        src.source
    );
    assert!(src.source.contains("package-0, dram-0"), "{}", src.source);
    assert!(
        src.source.contains("core, uncore sub-zones not added"),
        "{}",
        src.source
    );
    assert!(!src.source.contains("psys"), "{}", src.source);
    assert_eq!(src.basis(), carina_runtime::record::Basis::Counter);

    assert_eq!(read(&mut p, 0.1), [0.0, 0.0]);
    set(&pkg, 2_500_000);
    set(&core, 1_400_000);
    set(&dram, 257_000);
    assert_eq!(read(&mut p, 1.1), [1.5, 0.25]);
}

#[test]
fn two_sockets_report_exact_joules() {
    let t = tempfile::tempdir().unwrap();
    let mut dirs = Vec::new();
    for s in 0..2u64 {
        let pkg = zone(
            &t.path().join(format!("intel-rapl:{s}")),
            &format!("package-{s}"),
            100 + s,
            RANGE,
        );
        zone(&pkg.join(format!("intel-rapl:{s}:0")), "core", 0, RANGE);
        let dram = zone(
            &pkg.join(format!("intel-rapl:{s}:1")),
            "dram",
            200 + s,
            RANGE,
        );
        dirs.push((pkg, dram));
    }
    let mut p = PowercapProbe::open(t.path()).unwrap();
    assert_eq!(p.domains(), ["package-0", "package-1", "dram-0", "dram-1"]);

    set(&dirs[0].0, 100 + 12_345_678);
    set(&dirs[1].0, 101 + 98_765_432);
    set(&dirs[0].1, 200 + 1_111_111);
    set(&dirs[1].1, 201 + 2_222_222);
    assert_eq!(
        read(&mut p, 1.0),
        [j(12_345_678), j(98_765_432), j(1_111_111), j(2_222_222)]
    );
    set(&dirs[0].0, 100 + 12_345_678 + 3);
    assert_eq!(
        read(&mut p, 1.1),
        [j(12_345_681), j(98_765_432), j(1_111_111), j(2_222_222)]
    );
}

/// The real layout: top-level zones are links into /sys/devices, sub-zones appear both inside
/// their parent and as links at the top, and the control type and MMIO zones sit beside them.
#[test]
fn sysfs_links_do_not_double_count() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("class/powercap");
    let devices = t.path().join("devices/virtual/powercap/intel-rapl");
    fs::create_dir_all(&root).unwrap();
    let pkg = zone(&devices.join("intel-rapl:0"), "package-0", 0, RANGE);
    zone(&pkg.join("intel-rapl:0:0"), "core", 0, RANGE);
    let dram = zone(&pkg.join("intel-rapl:0:1"), "dram", 0, RANGE);
    // A link back up the tree, as `subsystem` is in sysfs.
    std::os::unix::fs::symlink(&root, pkg.join("subsystem")).unwrap();
    std::os::unix::fs::symlink(&pkg, root.join("intel-rapl:0")).unwrap();
    std::os::unix::fs::symlink(pkg.join("intel-rapl:0:0"), root.join("intel-rapl:0:0")).unwrap();
    std::os::unix::fs::symlink(&dram, root.join("intel-rapl:0:1")).unwrap();
    std::os::unix::fs::symlink(&devices, root.join("intel-rapl")).unwrap();
    zone(&root.join("intel-rapl-mmio:0"), "package-0", 0, RANGE);

    let mut p = PowercapProbe::open(&root).unwrap();
    assert_eq!(p.domains(), ["package-0", "dram-0"]);
    set(&pkg, 4_000_000);
    set(&dram, 1_000_000);
    assert_eq!(read(&mut p, 1.0), [4.0, 1.0]);
}

/// The same, without the nested copies: only the top-level links name the sub-zones.
#[test]
fn sub_zones_found_only_as_top_level_entries() {
    let t = tempfile::tempdir().unwrap();
    zone(&t.path().join("intel-rapl:0"), "package-0", 0, RANGE);
    zone(&t.path().join("intel-rapl:0:0"), "core", 0, RANGE);
    zone(&t.path().join("intel-rapl:0:1"), "dram", 0, RANGE);
    let p = PowercapProbe::open(t.path()).unwrap();
    assert_eq!(p.domains(), ["package-0", "dram-0"]);
}

#[test]
fn psys_alone_is_the_single_domain() {
    let t = tempfile::tempdir().unwrap();
    let psys = zone(&t.path().join("intel-rapl:1"), "psys", 5, RANGE);
    let mut p = PowercapProbe::open(t.path()).unwrap();
    assert_eq!(p.domains(), ["psys"]);
    set(&psys, 5 + 42_000_000);
    assert_eq!(read(&mut p, 1.0), [42.0]);
}

#[test]
fn psys_is_not_added_to_packages() {
    let t = tempfile::tempdir().unwrap();
    let pkg = zone(&t.path().join("intel-rapl:0"), "package-0", 0, RANGE);
    zone(&pkg.join("intel-rapl:0:0"), "core", 0, RANGE);
    zone(&pkg.join("intel-rapl:0:1"), "uncore", 0, RANGE);
    let psys = zone(&t.path().join("intel-rapl:1"), "psys", 0, RANGE);
    let mut p = PowercapProbe::open(t.path()).unwrap();
    assert_eq!(p.domains(), ["package-0"]);
    let src = p.describe().source;
    assert!(
        src.contains("psys present, not added: it includes the packages"),
        "{src}"
    );
    set(&pkg, 3_000_000);
    set(&psys, 9_000_000);
    assert_eq!(read(&mut p, 1.0), [3.0]);
}

#[test]
fn top_level_dram_zone_is_a_domain() {
    let t = tempfile::tempdir().unwrap();
    zone(&t.path().join("intel-rapl:0"), "package-0", 0, RANGE);
    let dram = zone(&t.path().join("intel-rapl:1"), "dram", 0, RANGE);
    let mut p = PowercapProbe::open(t.path()).unwrap();
    assert_eq!(p.domains(), ["package-0", "dram-0"]);
    set(&dram, 2_000_000);
    assert_eq!(read(&mut p, 1.0), [0.0, 2.0]);
}

#[test]
fn single_wraparound_is_undone() {
    let t = tempfile::tempdir().unwrap();
    let pkg = zone(
        &t.path().join("intel-rapl:0"),
        "package-0",
        RANGE - 1_000_000,
        RANGE,
    );
    let mut p = PowercapProbe::open(t.path()).unwrap();
    set(&pkg, 500_000);
    // 1 J to the wrap, then 0.5 J.
    assert_eq!(read(&mut p, 0.1), [1.5]);
    set(&pkg, 20_500_000);
    assert_eq!(read(&mut p, 0.2), [21.5]);
    assert!(p.take_report().is_empty());

    // A wrap landing exactly on zero.
    let t = tempfile::tempdir().unwrap();
    let pkg = zone(
        &t.path().join("intel-rapl:0"),
        "package-0",
        RANGE - 30_000_100,
        RANGE,
    );
    let mut p = PowercapProbe::open(t.path()).unwrap();
    set(&pkg, RANGE - 100);
    assert_eq!(read(&mut p, 0.1), [30.0]);
    set(&pkg, 0);
    assert_eq!(read(&mut p, 0.2), [30.0 + j(100)]);
    assert!(p.take_report().is_empty());
}

#[test]
fn double_wraparound_on_a_late_tick_is_inferred_from_time() {
    let t = tempfile::tempdir().unwrap();
    // A 10 J range, so that a steady 4 W goes round it every 2.5 s.
    let range = 10_000_000;
    let pkg = zone(&t.path().join("intel-rapl:0"), "package-0", 0, range);
    // A 6 W long-term limit, as the zone publishes it: the bound is 12 W, so a 1 s interval
    // (at most 12 J, under the 14 J a second wrap would need) is certain and feeds the
    // reference; at the 2000 W default nothing on a 10 J counter read once a second would be.
    fs::write(pkg.join("constraint_0_power_limit_uw"), "6000000\n").unwrap();
    let mut p = PowercapProbe::open(t.path()).unwrap();
    assert_eq!(p.max_plausible_power(), [Watts(12.0)]);
    assert!(
        p.describe()
            .source
            .contains("wrap bounds: package-0 <= 12 W (2 x its largest power limit, 6 W)"),
        "{}",
        p.describe().source
    );
    set(&pkg, 4_000_000);
    assert_eq!(read(&mut p, 1.0), [4.0]);
    // The next tick comes 4.5 s late: 18 J more, i.e. 22 J on the counter, which shows 2 J.
    // One wrap alone would say 8 J; the 4 W seen before says two wraps.
    set(&pkg, 2_000_000);
    assert_eq!(read(&mut p, 5.5), [22.0]);
    // Back on time, no extra wrap is added.
    set(&pkg, 2_400_000);
    assert_eq!(read(&mut p, 5.6), [22.4]);
    assert!(p.take_report().is_empty());
}

#[test]
fn no_false_wrap_on_steady_reads() {
    let t = tempfile::tempdir().unwrap();
    let pkg = zone(&t.path().join("intel-rapl:0"), "package-0", 0, RANGE);
    let mut p = PowercapProbe::open(t.path()).unwrap();
    // 300 W at 10 Hz.
    let mut raw = 0;
    for tick in 1..=10 {
        raw += 30_000_000;
        set(&pkg, raw);
        assert_eq!(read(&mut p, f64::from(tick) / 10.0), [j(raw)]);
    }
    // A tick 60 s late: 18 kJ is far from a whole range, so nothing is added.
    raw += 18_000_000_000;
    set(&pkg, raw);
    assert_eq!(read(&mut p, 61.0), [j(raw)]);
    // No movement over a short gap is no energy.
    assert_eq!(read(&mut p, 61.1), [j(raw)]);
    // After the idle interval, a small move is that small move.
    set(&pkg, raw + 1);
    assert_eq!(read(&mut p, 61.2), [j(raw + 1)]);
    assert!(p.take_report().warnings.is_empty());
}

/// Power that drifts by a few percent, read at irregular and often late ticks on a counter
/// that wraps every half second: the whole wraps are recovered from the recent power.
#[test]
fn steady_power_recovers_many_wraps_exactly() {
    let t = tempfile::tempdir().unwrap();
    let range = 50_000_000;
    let pkg = zone(&t.path().join("intel-rapl:0"), "package-0", 0, range);
    // A bound near the load (150 W, as twice a 75 W limit would give): intervals up to about
    // a third of a second are certain and feed the reference, which resolves the longer ones.
    // At the 2000 W default no interval on a 50 J counter read this slowly is certain, and
    // every one would be flagged instead.
    let mut p = PowercapProbe::open(t.path())
        .unwrap()
        .with_max_plausible_power(MaxPlausiblePower {
            package: Watts(150.0),
            ..MaxPlausiblePower::default()
        });
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let (mut now, mut truth) = (0.0, 0u64);
    let mut watts = 100.0;
    for tick in 0..500 {
        // The first interval is short: with no history only one wrap can be undone.
        let dt = if tick == 0 {
            0.1
        } else {
            0.1 + (next() % 900) as f64 / 1000.0
        };
        watts *= 1.0 + ((next() % 101) as f64 - 50.0) / 1000.0;
        watts = f64::clamp(watts, 95.0, 105.0);
        now += dt;
        truth += (watts * dt * 1e6) as u64;
        set(&pkg, truth % range);
        assert_eq!(read(&mut p, now), [j(truth)], "tick {tick}");
    }
    assert!(p.take_report().is_empty());
}

/// 9 W for 1 s, then 2 s in which the 10 J counter moved 8.001 J: the candidates are 8.001,
/// 18.001, 28.001 J…; 9 W expects 18 J. Returns the total after the second interval.
fn late_tick_with_bound(package_w: f64) -> f64 {
    let t = tempfile::tempdir().unwrap();
    let pkg = zone(&t.path().join("intel-rapl:0"), "package-0", 0, 10_000_000);
    let mut p = PowercapProbe::open(t.path())
        .unwrap()
        .with_max_plausible_power(MaxPlausiblePower {
            package: Watts(package_w),
            ..MaxPlausiblePower::default()
        });
    set(&pkg, 9_000_000);
    assert_eq!(read(&mut p, 1.0), [9.0]);
    set(&pkg, 7_001_000);
    read(&mut p, 3.0)[0]
}

#[test]
fn extra_wraps_never_exceed_the_plausible_power() {
    // 12 W x 2 s = 24 J: 18.001 J is allowed and the only candidate near the 18 J expected.
    assert_eq!(late_tick_with_bound(12.0), j(9_000_000 + 18_001_000));
    // 8.5 W x 2 s = 17 J: 18.001 J is over the bound, 8.001 J is the only count left.
    assert_eq!(late_tick_with_bound(8.5), j(9_000_000 + 8_001_000));
}

/// Reads through the real file system, except for chosen files that fail as for a non-root
/// user since the CVE-2020-8694 fix.
struct DenyFs {
    denied: Arc<Mutex<Vec<PathBuf>>>,
}

impl SysFs for DenyFs {
    fn read_to_string(&self, path: &Path) -> io::Result<String> {
        if self.denied.lock().unwrap().iter().any(|d| d == path) {
            return Err(io::Error::from(io::ErrorKind::PermissionDenied));
        }
        fs::read_to_string(path)
    }
}

#[test]
fn root_only_energy_files_explain_the_fixes() {
    let t = tempfile::tempdir().unwrap();
    let (pkg, _, _) = one_socket(t.path());
    let file = pkg.join("energy_uj");
    let fs = DenyFs {
        denied: Arc::new(Mutex::new(vec![file.clone()])),
    };
    let u = unavailable(PowercapProbe::open_as(t.path(), Box::new(fs), &USER).unwrap_err());
    assert_eq!(u.cause, UnavailableCause::Permission);
    for needle in [&file.display().to_string(), "CVE-2020-8694", "root only"] {
        assert!(
            u.reason.contains(needle),
            "{needle:?} missing from {}",
            u.reason
        );
    }
    let fix = u.fix.as_deref().unwrap();
    let files = format!("{}/intel-rapl:*/energy_uj", t.path().display());
    for needle in [
        format!("`sudo chmod o+r {files}`"),
        "/etc/udev/rules.d/99-rapl.rules".to_owned(),
        "run as root".to_owned(),
    ] {
        assert!(fix.contains(&needle), "{needle:?} missing from {fix}");
    }
    // The error's text carries both, for callers that only print it.
    let text = ProbeError::from(u.clone()).to_string();
    assert_eq!(text, format!("{}; fix: {fix}", u.reason));
}

/// Root is refused only when confined (a container, a user namespace, a security module):
/// running as root again is no fix, and "root only" no reason.
#[test]
fn a_refused_root_is_told_to_fix_the_host_not_to_become_root() {
    let t = tempfile::tempdir().unwrap();
    let (pkg, _, _) = one_socket(t.path());
    let fs = DenyFs {
        denied: Arc::new(Mutex::new(vec![pkg.join("name")])),
    };
    let u = unavailable(PowercapProbe::open_as(t.path(), Box::new(fs), &ROOT).unwrap_err());
    assert_eq!(u.cause, UnavailableCause::Permission);
    assert!(
        u.reason.contains(&pkg.join("name").display().to_string()),
        "{}",
        u.reason
    );
    assert!(
        u.reason.contains("although this process runs as root"),
        "{}",
        u.reason
    );
    assert!(!u.reason.contains("root only"), "{}", u.reason);
    let fix = u.fix.as_deref().unwrap();
    assert!(fix.contains("on the host, outside the container"), "{fix}");
    assert!(fix.contains("chmod o+r"), "{fix}");
    assert!(!fix.contains("run as root"), "{fix}");
}

#[test]
fn permission_lost_mid_run_freezes_the_domain() {
    let t = tempfile::tempdir().unwrap();
    let (pkg, _, dram) = one_socket(t.path());
    let denied = Arc::new(Mutex::new(Vec::new()));
    let fs = DenyFs {
        denied: denied.clone(),
    };
    let mut p = PowercapProbe::open_as(t.path(), Box::new(fs), &USER).unwrap();
    set(&pkg, 2_000_000);
    set(&dram, 507_000);
    assert_eq!(read(&mut p, 1.0), [1.0, 0.5]);
    assert!(p.take_report().is_empty());
    denied.lock().unwrap().push(pkg.join("energy_uj"));
    set(&pkg, 3_000_000);
    set(&dram, 1_007_000);
    assert_eq!(read(&mut p, 2.0), [1.0, 1.0]);
    let r = p.take_report();
    assert_eq!(r.warnings.len(), 1, "{r:?}");
    assert!(
        r.warnings[0].starts_with("package-0: read failed")
            && r.warnings[0].contains("CVE-2020-8694"),
        "{r:?}"
    );
    assert_eq!(r.read_errors, 1);
    assert!(
        r.missing && !r.lower_bound,
        "its energy is missing while it cannot be read"
    );
}

#[test]
fn garbage_counters_are_parse_errors() {
    let t = tempfile::tempdir().unwrap();
    let (pkg, _, _) = one_socket(t.path());
    fs::write(pkg.join("energy_uj"), "abc\n").unwrap();
    match PowercapProbe::open(t.path()).unwrap_err() {
        ProbeError::Parse {
            path,
            line,
            field,
            message,
        } => {
            assert_eq!(path, pkg.join("energy_uj"));
            assert_eq!(line, 1);
            assert_eq!(field, "energy_uj");
            assert!(message.contains("abc"), "{message}");
        }
        e => panic!("{e:?}"),
    }

    set(&pkg, 1);
    fs::write(pkg.join("max_energy_range_uj"), "-5").unwrap();
    let e = PowercapProbe::open(t.path()).unwrap_err();
    assert!(
        matches!(&e, ProbeError::Parse { field, line: 1, .. } if field == "max_energy_range_uj"),
        "{e:?}"
    );
    assert!(e.to_string().contains("max_energy_range_uj"), "{e}");

    fs::write(pkg.join("max_energy_range_uj"), "").unwrap();
    assert!(matches!(
        PowercapProbe::open(t.path()).unwrap_err(),
        ProbeError::Parse { .. }
    ));
    fs::write(pkg.join("max_energy_range_uj"), "0\n").unwrap();
    assert!(matches!(
        PowercapProbe::open(t.path()).unwrap_err(),
        ProbeError::Parse { .. }
    ));
}

#[test]
fn garbage_mid_run_freezes_the_domain() {
    let t = tempfile::tempdir().unwrap();
    let (pkg, _, dram) = one_socket(t.path());
    let mut p = PowercapProbe::open(t.path()).unwrap();
    fs::write(pkg.join("energy_uj"), "\u{1}\u{2}garbage").unwrap();
    set(&dram, 2_007_000);
    assert_eq!(read(&mut p, 0.2), [0.0, 2.0]);
    let r = p.take_report();
    assert!(
        r.warnings.len() == 1 && r.warnings[0].contains("energy_uj"),
        "{r:?}"
    );
    assert_eq!(r.read_errors, 1);
}

#[test]
fn zone_removed_mid_run_is_frozen_and_reported() {
    let t = tempfile::tempdir().unwrap();
    let mut pkgs = Vec::new();
    for s in 0..2 {
        pkgs.push(zone(
            &t.path().join(format!("intel-rapl:{s}")),
            &format!("package-{s}"),
            0,
            RANGE,
        ));
    }
    let mut p = PowercapProbe::open(t.path()).unwrap();
    set(&pkgs[0], 1_000_000);
    set(&pkgs[1], 2_000_000);
    assert_eq!(read(&mut p, 0.1), [1.0, 2.0]);

    // Socket 1 goes offline.
    fs::remove_dir_all(&pkgs[1]).unwrap();
    set(&pkgs[0], 3_000_000);
    assert_eq!(read(&mut p, 0.2), [3.0, 2.0]);
    set(&pkgs[0], 4_000_000);
    assert_eq!(read(&mut p, 0.3), [4.0, 2.0]);
    let r = p.take_report();
    assert_eq!(r.warnings.len(), 1, "warned once: {r:?}");
    assert!(r.warnings[0].starts_with("package-1: read failed"), "{r:?}");
    assert_eq!(r.read_errors, 2);
    assert!(r.missing);

    // It comes back, its counter 0.25 J further: the gap is counted from the counter.
    zone(&pkgs[1], "package-1", 2_250_000, RANGE);
    set(&pkgs[0], 5_000_000);
    assert_eq!(read(&mut p, 0.4), [5.0, 2.25]);
    let r = p.take_report();
    assert!(
        r.warnings.len() == 1 && r.warnings[0].contains("readable again after 2 failed read(s)"),
        "{r:?}"
    );
    assert_eq!(r.read_errors, 0);

    // Re-created once more with a counter that starts again from zero: a reset, counted from
    // zero and flagged.
    fs::remove_dir_all(&pkgs[1]).unwrap();
    set(&pkgs[0], 6_000_000);
    read(&mut p, 0.5);
    zone(&pkgs[1], "package-1", 100_000, RANGE);
    set(&pkgs[0], 7_000_000);
    assert_eq!(read(&mut p, 0.6), [7.0, 2.35]);
    let r = p.take_report();
    assert!(r.lower_bound);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.starts_with("package-1: counter reset")),
        "{r:?}"
    );
}

#[test]
fn all_zones_gone_is_an_error_with_frozen_values() {
    let t = tempfile::tempdir().unwrap();
    let pkg = zone(&t.path().join("intel-rapl:0"), "package-0", 0, RANGE);
    let mut p = PowercapProbe::open(t.path()).unwrap();
    set(&pkg, 1_000_000);
    assert_eq!(read(&mut p, 1.0), [1.0]);
    fs::remove_dir_all(&pkg).unwrap();
    let mut out = [Joules::ZERO];
    let e = p.read_at(secs(2.0), &mut out).unwrap_err();
    assert!(e.to_string().contains("energy_uj"), "{e}");
    assert_eq!(out, [Joules(1.0)]);
}

#[test]
fn a_counter_reset_counts_what_the_counter_shows_and_is_flagged() {
    let t = tempfile::tempdir().unwrap();
    let pkg = zone(&t.path().join("intel-rapl:0"), "package-0", 0, RANGE);
    let mut p = PowercapProbe::open(t.path()).unwrap();
    set(&pkg, 100_000_000);
    assert_eq!(read(&mut p, 1.0), [100.0]);
    assert!(p.take_report().is_empty());
    // Going back to 0.5 J would be a 262 kJ wrap in 0.1 s: the counter restarted, and the
    // 0.5 J since then is what it proves.
    set(&pkg, 500_000);
    assert_eq!(read(&mut p, 1.1), [100.5]);
    let r = p.take_report();
    assert!(r.lower_bound);
    assert!(
        r.warnings.len() == 1 && r.warnings[0].starts_with("package-0: counter reset"),
        "{r:?}"
    );
    assert!(r.warnings[0].contains("intel-rapl:0/energy_uj"), "{r:?}");
    set(&pkg, 1_500_000);
    assert_eq!(read(&mut p, 1.2), [101.5]);
    assert!(p.take_report().is_empty());
}

#[test]
fn missing_or_empty_root_is_unavailable() {
    let t = tempfile::tempdir().unwrap();
    let missing = t.path().join("no-powercap");
    for who in [USER, ROOT] {
        let u =
            unavailable(PowercapProbe::open_as(&missing, Box::new(RealSysFs), &who).unwrap_err());
        assert_eq!(u.cause, UnavailableCause::Absent);
        assert!(
            u.reason.contains(&missing.display().to_string()),
            "{}",
            u.reason
        );
        assert!(u.reason.contains("no RAPL zones"), "{}", u.reason);
        assert!(u.reason.contains("intel_rapl"), "{}", u.reason);
        // No zone is not a permission problem, for root or anyone.
        let fix = u.fix.unwrap();
        assert!(
            !fix.contains("run as root") && !fix.contains("chmod"),
            "{fix}"
        );
        assert!(fix.contains("CARINA_POWERCAP_ROOT"), "{fix}");
        if cfg!(target_arch = "x86_64") {
            assert!(fix.contains("`sudo modprobe intel_rapl_msr`"), "{fix}");
        }
    }
    // A powercap tree with other drivers only.
    fs::create_dir_all(t.path().join("intel-rapl")).unwrap();
    zone(&t.path().join("dtpm:0"), "dtpm", 0, RANGE);
    let u = unavailable(PowercapProbe::open(t.path()).unwrap_err());
    assert_eq!(u.cause, UnavailableCause::Absent);
    assert!(u.reason.contains("no RAPL zones"), "{}", u.reason);
}

/// Zones, but none that measures: nothing to load or grant.
#[test]
fn zones_without_a_package_dram_or_psys_have_no_fix() {
    let t = tempfile::tempdir().unwrap();
    zone(&t.path().join("intel-rapl:0"), "mystery", 0, RANGE);
    let u = unavailable(PowercapProbe::open(t.path()).unwrap_err());
    assert_eq!(u.cause, UnavailableCause::Absent);
    assert!(
        u.reason.contains("none is a package, dram or psys zone"),
        "{}",
        u.reason
    );
    assert_eq!(u.fix, None);
}

#[test]
fn counters_never_decrease_across_random_reads() {
    let t = tempfile::tempdir().unwrap();
    // A small range so that wraps are frequent.
    let range = 50_000_000;
    // In domain order: packages, then DRAM.
    let mut dirs = Vec::new();
    let mut drams = Vec::new();
    for s in 0..2u64 {
        let pkg = zone(
            &t.path().join(format!("intel-rapl:{s}")),
            &format!("package-{s}"),
            s * 7,
            range,
        );
        drams.push(zone(
            &pkg.join(format!("intel-rapl:{s}:0")),
            "dram",
            3,
            range,
        ));
        dirs.push(pkg);
    }
    dirs.append(&mut drams);
    // Bounds that leave no room for a second wrap in any tick (300 W x 0.15 s < 50 J) make
    // every interval certain and the exact sum known.
    let mut p = PowercapProbe::open(t.path())
        .unwrap()
        .with_max_plausible_power(MaxPlausiblePower {
            package: Watts(300.0),
            dram: Watts(300.0),
            psys: Watts(300.0),
        });
    let mut raw: [u64; 4] = [0, 7, 3, 3];
    let mut truth = [0u64; 4];
    let mut last = [0.0; 4];
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut now = 0.0;
    for _ in 0..2000 {
        now += 0.05 + (next() % 100) as f64 / 1000.0;
        for i in 0..4 {
            // Up to 10 J per tick: at most 200 W, below the bound.
            let inc = next() % 10_000_000;
            truth[i] += inc;
            raw[i] = (raw[i] + inc) % range;
            set(&dirs[i], raw[i]);
        }
        let got = read(&mut p, now);
        for i in 0..4 {
            assert!(
                got[i] >= last[i],
                "domain {i} went from {} to {}",
                last[i],
                got[i]
            );
            last[i] = got[i];
        }
    }
    for i in 0..4 {
        assert!(
            (last[i] - j(truth[i])).abs() < 1e-6,
            "{} vs {}",
            last[i],
            j(truth[i])
        );
    }
    assert!(p.take_report().warnings.is_empty());
}

#[test]
fn read_uses_the_real_clock() {
    let t = tempfile::tempdir().unwrap();
    let pkg = zone(&t.path().join("intel-rapl:0"), "package-0", 10, RANGE);
    let mut p: Box<dyn EnergyProbe> = Box::new(PowercapProbe::open(t.path()).unwrap());
    let mut out = [Joules(-1.0)];
    p.read_energy(&mut out).unwrap();
    assert_eq!(out, [Joules::ZERO]);
    set(&pkg, 10 + 1_000);
    std::thread::sleep(Duration::from_millis(5));
    p.read_energy(&mut out).unwrap();
    assert_eq!(out, [Joules(0.001)]);
}

#[test]
fn dropped_domains_leave_the_probe_and_are_named() {
    let t = tempfile::tempdir().unwrap();
    let (pkg, _, dram) = one_socket(t.path());
    let mut p = PowercapProbe::open(t.path()).unwrap();
    assert_eq!(
        p.counter_labels(),
        [
            "package-0 (intel-rapl:0/energy_uj)",
            "dram-0 (intel-rapl:0:2/energy_uj)"
        ]
    );
    p.drop_domains(&["dram-0".to_owned(), "psys".to_owned()], "dead");
    assert_eq!(p.domains(), ["package-0"]);
    assert!(
        p.describe()
            .source
            .contains("dram-0 (intel-rapl:0:2) dropped: dead"),
        "{}",
        p.describe().source
    );
    set(&pkg, 3_000_000);
    set(&dram, 9_000_000);
    assert_eq!(read(&mut p, 1.0), [2.0]);
}

/// Both RAPL routes apply the same domain rule (`rapl::choose`): with DRAM and
/// psys but no package, psys alone (it includes the DRAM).
#[test]
fn dram_beside_psys_without_a_package_is_not_added() {
    let t = tempfile::tempdir().unwrap();
    let psys = zone(&t.path().join("intel-rapl:0"), "psys", 0, RANGE);
    let dram = zone(&t.path().join("intel-rapl:1"), "dram", 0, RANGE);
    let mut p = PowercapProbe::open(t.path()).unwrap();
    assert_eq!(p.domains(), ["psys"]);
    let src = p.describe().source;
    assert!(src.contains("dram not added: psys includes it"), "{src}");
    set(&psys, 5_000_000);
    set(&dram, 1_000_000);
    assert_eq!(read(&mut p, 0.1), [5.0]);
}

/// Each row of the table in issue 15 ("counters that fail say so"), on fake trees with a 20 J
/// counter range and a package at 37.5 W: every figure is within 2 % of the truth, or it is
/// flagged (`lower_bound` in the report) with a warning that names the counter. The numbers are
/// printed for `docs/COUNTERS.md` (`cargo test -p carina-probes --test powercap issue_15 --
/// --nocapture`).
mod issue_15_table {
    use super::*;
    use carina_runtime::energy::ProbeReport;

    /// The table's counter range: 20 J.
    const R20: u64 = 20_000_000;
    /// The table's package power.
    const W: f64 = 37.5;

    /// A 20 J zone. With `limit_w`, the zone publishes a long-term power limit, as real zones do;
    /// the counter rule's bound is then twice it.
    fn zone20(dir: &Path, name: &str, limit_w: Option<u64>) -> PathBuf {
        let d = zone(dir, name, 0, R20);
        if let Some(w) = limit_w {
            fs::write(
                d.join("constraint_0_power_limit_uw"),
                format!("{}\n", w * 1_000_000),
            )
            .unwrap();
        }
        d
    }

    /// The counter of a zone drawing `w` watts since time 0, at `t` seconds.
    fn raw(w: f64, t: f64) -> u64 {
        (w * t * 1e6).round() as u64 % R20
    }

    /// Reads at `at` and adds the probe's report to `all`. A read whose every counter failed is
    /// an error, with the frozen values still written: those are returned.
    fn tick(p: &mut PowercapProbe, at: f64, all: &mut ProbeReport) -> Vec<f64> {
        let mut out = vec![Joules(-1.0); p.domains().len()];
        let _ = p.read_at(secs(at), &mut out);
        all.merge(p.take_report());
        out.iter().map(|x| x.0).collect()
    }

    fn within_2_percent(got: f64, truth: f64) -> bool {
        (got / truth - 1.0).abs() < 0.02
    }

    fn xorshift(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    /// Row 1: a sampler that reads every 0.7 to 1.2 s from the start, longer than the 0.53 s
    /// the counter takes to go round. No interval can be certain, even under a tight bound
    /// (2 x a 45 W limit), so no reference power exists: every interval is counted at its
    /// smallest candidate and flagged with its possible range.
    #[test]
    fn row_1_a_sampler_slower_than_the_range_is_flagged() {
        for seed0 in 1..=5u64 {
            let t = tempfile::tempdir().unwrap();
            let pkg = zone20(&t.path().join("intel-rapl:0"), "package-0", Some(45));
            let mut p = PowercapProbe::open(t.path()).unwrap();
            let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ seed0;
            let (mut now, mut got, mut all) = (0.0, 0.0, ProbeReport::default());
            while now < 7.0 {
                now += 0.7 + (xorshift(&mut seed) % 501) as f64 / 1000.0;
                set(&pkg, raw(W, now));
                got = tick(&mut p, now, &mut all)[0];
            }
            let truth = W * now;
            eprintln!(
                "row 1 (seed {seed0}): truth {truth:.1} J, reported {got:.1} J, lower bound {}",
                all.lower_bound
            );
            assert!(all.lower_bound);
            assert!(got <= truth + 1e-6, "a lower bound: {got} vs {truth}");
            let w = &all.warnings[0];
            assert!(
                w.starts_with("package-0: interval ambiguous, 0.000 s-"),
                "{w}"
            );
            assert!(w.contains("intel-rapl:0/energy_uj"), "{w}");
            assert!(w.contains("no reference power"), "{w}");
        }
    }

    /// Row 1, a sampler that stalls after a normal start: the 10 Hz intervals of the first
    /// two seconds are certain under the zone's bound and give the reference (37.5 W), which
    /// singles out one count for every later 0.7-1.2 s interval.
    #[test]
    fn row_1_a_sampler_that_stalls_after_a_normal_start_is_resolved() {
        let t = tempfile::tempdir().unwrap();
        let pkg = zone20(&t.path().join("intel-rapl:0"), "package-0", Some(45));
        let mut p = PowercapProbe::open(t.path()).unwrap();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let (mut now, mut got, mut all) = (0.0, 0.0, ProbeReport::default());
        while now < 7.0 {
            now += if now < 2.0 {
                0.1
            } else {
                0.7 + (xorshift(&mut seed) % 501) as f64 / 1000.0
            };
            set(&pkg, raw(W, now));
            got = tick(&mut p, now, &mut all)[0];
        }
        let truth = W * now;
        eprintln!("row 1 (stall after 2 s): truth {truth:.1} J, reported {got:.1} J");
        assert!((got - truth).abs() < 1e-5, "{got} vs {truth}");
        assert!(all.is_empty(), "{all:?}");
    }

    /// Row 2: the counter restarts from 0 between two 10 Hz reads (at 2.45 s; the read at 2.4 s
    /// saw 90 J mod 20 = 10 J, the one at 2.5 s sees 1.875 J). One wrap would mean 11.875 J in 0.1 s (119 W), above the zone's
    /// 90 W bound: a reset. The 1.875 J since the restart is counted, the 1.875 J before it is
    /// lost, and the report says so.
    #[test]
    fn row_2_a_counter_reset_is_not_read_as_a_wrap() {
        let t = tempfile::tempdir().unwrap();
        let pkg = zone20(&t.path().join("intel-rapl:0"), "package-0", Some(45));
        let mut p = PowercapProbe::open(t.path()).unwrap();
        let (mut got, mut all) = (0.0, ProbeReport::default());
        for n in 1..=50 {
            let now = f64::from(n) * 0.1;
            let value = if now < 2.45 {
                raw(W, now)
            } else {
                raw(W, now - 2.45)
            };
            set(&pkg, value);
            got = tick(&mut p, now, &mut all)[0];
        }
        let truth = W * 5.0;
        eprintln!(
            "row 2: truth {truth:.1} J, reported {got:.3} J, lower bound {}",
            all.lower_bound
        );
        assert!((got - (truth - 1.875)).abs() < 1e-6, "{got}");
        assert!(within_2_percent(got, truth));
        assert!(all.lower_bound);
        assert_eq!(all.warnings.len(), 1, "{all:?}");
        let w = &all.warnings[0];
        assert!(
            w.starts_with("package-0: counter reset between 2.400 s and 2.500 s"),
            "{w}"
        );
        assert!(w.contains("above the 90 W bound"), "{w}");
    }

    /// Row 2 where the bound allows the wrap: a 130 W bound (given explicitly; 10 Hz intervals
    /// stay certain under it) admits the 11.875 J "wrap" (119 W) of the restart from 10 J to
    /// 1.875 J, but that is more than twice the 37.5 W of every recent interval, while the
    /// 1.875 J since a restart fits: a reset, on the reference's word.
    #[test]
    fn row_2_a_reset_the_reference_finds_implausible_as_a_wrap() {
        let t = tempfile::tempdir().unwrap();
        let pkg = zone20(&t.path().join("intel-rapl:0"), "package-0", None);
        let mut p = PowercapProbe::open(t.path())
            .unwrap()
            .with_max_plausible_power(MaxPlausiblePower {
                package: Watts(130.0),
                ..MaxPlausiblePower::default()
            });
        let (mut got, mut all) = (0.0, ProbeReport::default());
        for n in 1..=50 {
            let now = f64::from(n) * 0.1;
            let value = if now < 2.45 {
                raw(W, now)
            } else {
                raw(W, now - 2.45)
            };
            set(&pkg, value);
            got = tick(&mut p, now, &mut all)[0];
        }
        let truth = W * 5.0;
        eprintln!(
            "row 2 (reference decides): truth {truth:.1} J, reported {got:.3} J, lower bound {}",
            all.lower_bound
        );
        assert!((got - (truth - 1.875)).abs() < 1e-6, "{got}");
        assert!(all.lower_bound);
        assert_eq!(all.warnings.len(), 1, "{all:?}");
        assert!(
            all.warnings[0].starts_with("package-0: counter reset")
                && all.warnings[0].contains("more than 2 times the most the recent intervals drew"),
            "{all:?}"
        );
    }

    /// Row 3: the package counter never moves while the DRAM's does. The package is flagged
    /// as stalled once it has kept its value for more than 250 ms; the DRAM is not.
    #[test]
    fn row_3_a_dead_package_beside_a_live_dram_is_flagged() {
        let t = tempfile::tempdir().unwrap();
        let pkg = zone20(&t.path().join("intel-rapl:0"), "package-0", Some(45));
        let dram = zone20(&pkg.join("intel-rapl:0:0"), "dram", Some(10));
        let mut p = PowercapProbe::open(t.path()).unwrap();
        let (mut got, mut all) = (vec![], ProbeReport::default());
        let mut flagged_at = None;
        for n in 1..=30 {
            let now = f64::from(n) * 0.1;
            set(&dram, raw(10.0, now));
            got = tick(&mut p, now, &mut all);
            if all.missing && flagged_at.is_none() {
                flagged_at = Some(now);
            }
        }
        let truth = W * 3.0 + 10.0 * 3.0;
        let sum: f64 = got.iter().sum();
        eprintln!(
            "row 3: truth {truth:.1} J, reported {sum:.1} J ({got:?}), flagged at {flagged_at:?} s"
        );
        assert!(
            flagged_at.is_some_and(|t| t <= 0.3 + 1e-9),
            "{flagged_at:?}"
        );
        assert_eq!(all.warnings.len(), 1, "{all:?}");
        let w = &all.warnings[0];
        assert!(w.starts_with("package-0: counter stalled"), "{w}");
        assert!(
            w.contains("intel-rapl:0/energy_uj has not advanced since 0.000 s"),
            "{w}"
        );
        assert!((got[1] - 30.0).abs() < 1e-6, "the DRAM is counted: {got:?}");
    }

    /// Row 4: the counter dies 0.25 s into a 1.5 s run. It last moved at the 0.3 s read and is
    /// flagged at the 0.6 s read, the first more than 250 ms later.
    #[test]
    fn row_4_a_counter_that_dies_early_is_flagged_within_a_quarter_second() {
        let t = tempfile::tempdir().unwrap();
        let pkg = zone20(&t.path().join("intel-rapl:0"), "package-0", Some(45));
        let mut p = PowercapProbe::open(t.path()).unwrap();
        let (mut got, mut all) = (0.0, ProbeReport::default());
        let mut flagged_at = None;
        for n in 1..=15 {
            let now = f64::from(n) * 0.1;
            set(&pkg, raw(W, now.min(0.25)));
            got = tick(&mut p, now, &mut all)[0];
            if all.missing && flagged_at.is_none() {
                flagged_at = Some(now);
            }
        }
        let truth = W * 1.5;
        eprintln!("row 4: truth {truth:.2} J, reported {got:.3} J, flagged at {flagged_at:?} s");
        assert!(
            flagged_at.is_some_and(|t| (t - 0.6).abs() < 1e-9),
            "{flagged_at:?}"
        );
        let w = &all.warnings[0];
        assert!(w.starts_with("package-0: counter stalled"), "{w}");
        assert!(w.contains("has not advanced since 0.300 s"), "{w}");
    }

    /// Row 5: `energy_uj` unreadable from 2.1 s to 4.6 s of a 10 s run. The baseline is kept,
    /// so the first good read counts the 2.6 s gap (97.5 J, almost five ranges) by the counter
    /// rule: the reference (37.5 W from certain 100 ms intervals) singles out one count. Every
    /// failed read counts as a read error; one warning when the streak starts, one when it ends.
    #[test]
    fn row_5_an_unreadable_counter_is_counted_across_the_gap() {
        let t = tempfile::tempdir().unwrap();
        let pkg = zone20(&t.path().join("intel-rapl:0"), "package-0", Some(45));
        let denied = Arc::new(Mutex::new(Vec::new()));
        let fs = DenyFs {
            denied: denied.clone(),
        };
        let mut p = PowercapProbe::open_with(t.path(), Box::new(fs)).unwrap();
        let (mut got, mut all) = (0.0, ProbeReport::default());
        for n in 1..=100 {
            let now = f64::from(n) * 0.1;
            let unreadable = n > 20 && n <= 46;
            *denied.lock().unwrap() = if unreadable {
                vec![pkg.join("energy_uj")]
            } else {
                Vec::new()
            };
            set(&pkg, raw(W, now));
            got = tick(&mut p, now, &mut all)[0];
        }
        let truth = W * 10.0;
        eprintln!(
            "row 5: truth {truth:.1} J, reported {got:.3} J, read errors {}",
            all.read_errors
        );
        assert!((got - truth).abs() < 1e-5, "{got}");
        assert_eq!(all.read_errors, 26);
        assert_eq!(all.warnings.len(), 2, "{all:?}");
        assert!(
            all.warnings[0].starts_with("package-0: read failed at 2.100 s"),
            "{all:?}"
        );
        assert!(
            all.warnings[1].starts_with("package-0: readable again after 26 failed read(s)"),
            "{all:?}"
        );
    }

    /// Row 5 without a reference: the same gap on a tree that publishes no limit. At the
    /// 2000 W default nothing on a 20 J counter read at 10 Hz is certain, so the gap is counted
    /// at its smallest candidate and flagged with its range.
    #[test]
    fn row_5_without_a_bound_the_gap_is_flagged() {
        let t = tempfile::tempdir().unwrap();
        let pkg = zone20(&t.path().join("intel-rapl:0"), "package-0", None);
        let denied = Arc::new(Mutex::new(Vec::new()));
        let fs = DenyFs {
            denied: denied.clone(),
        };
        let mut p = PowercapProbe::open_with(t.path(), Box::new(fs)).unwrap();
        let (mut got, mut all) = (0.0, ProbeReport::default());
        for n in 1..=100 {
            let now = f64::from(n) * 0.1;
            *denied.lock().unwrap() = if n > 20 && n <= 46 {
                vec![pkg.join("energy_uj")]
            } else {
                Vec::new()
            };
            set(&pkg, raw(W, now));
            got = tick(&mut p, now, &mut all)[0];
        }
        let truth = W * 10.0;
        eprintln!(
            "row 5 (no limits published): truth {truth:.1} J, reported {got:.3} J, lower bound {}",
            all.lower_bound
        );
        assert!(all.lower_bound);
        assert!(got <= truth + 1e-6);
        assert!(
            all.warnings
                .iter()
                .any(|w| w.starts_with("package-0: interval ambiguous")),
            "{all:?}"
        );
    }
}
