//! Tests of the perf_event RAPL probe on fake sysfs trees and fake counters.

use super::common::{ROOT, USER, unavailable};
use carina_probes::perf_rapl::{
    Counter, CounterSource, PerfRaplProbe, RaplEvent, cross_check, describe_pmu,
};
use carina_probes::{DEFAULT_LIVENESS_WAIT, ModelOptions, Privileges, Roots, detect_with_counters};
use carina_runtime::energy::UnavailableCause;
use carina_runtime::record::SourceId;
use carina_runtime::{EnergyKind, EnergyProbe, EnergyProbeExt, Joules, ProbeError, ProbeScope};
use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SCALE: &str = "2.3283064365386962890625e-10";
/// The value of `SCALE`: 2^-32 joules per count, exactly.
const SCALE_F: f64 = 1.0 / 4_294_967_296.0;

/// Writes a fake `power` PMU: `events` are (name, event file content).
fn fake_pmu(dir: &Path, cpumask: &str, events: &[(&str, &str)]) {
    std::fs::create_dir_all(dir.join("events")).unwrap();
    std::fs::write(dir.join("type"), "23\n").unwrap();
    std::fs::write(dir.join("cpumask"), format!("{cpumask}\n")).unwrap();
    for (name, content) in events {
        let base = dir.join("events").join(format!("energy-{name}"));
        std::fs::write(&base, format!("{content}\n")).unwrap();
        std::fs::write(base.with_extension("scale"), format!("{SCALE}\n")).unwrap();
        std::fs::write(base.with_extension("unit"), "Joules\n").unwrap();
    }
}

const PKG: (&str, &str) = ("pkg", "event=0x02");
const CORES: (&str, &str) = ("cores", "event=0x01");
const RAM: (&str, &str) = ("ram", "event=0x03");
const GPU: (&str, &str) = ("gpu", "event=0x04");
const PSYS: (&str, &str) = ("psys", "event=0x05");

/// Fake counters: counts keyed by (config, cpu), shared with the test so it can advance them.
///
/// By default a count changes only when the test sets it, so during detection's liveness check
/// it never advances (a virtualised PMU that reads 0, as Firecracker's `energy-psys` does);
/// [`advancing`](Self::advancing) and [`with_step`](Self::with_step) make reads advance it, as
/// a live counter on a busy machine does.
#[derive(Clone, Default)]
struct FakeSource {
    counts: Arc<Mutex<HashMap<(u64, u32), u64>>>,
    /// Counts added at every read, per (config, cpu); `all_step` for the others.
    steps: Arc<Mutex<HashMap<(u64, u32), u64>>>,
    all_step: u64,
    opened: Arc<Mutex<Vec<(u32, u64, u32)>>>,
    fail: Option<(i32, u32)>,
    /// Counters, by (config, cpu), whose reads fail while listed.
    unreadable: Arc<Mutex<Vec<(u64, u32)>>>,
}

impl FakeSource {
    fn set(&self, config: u64, cpu: u32, count: u64) {
        self.counts.lock().unwrap().insert((config, cpu), count);
    }
    /// Counters that never advance: every read returns the same count.
    fn never_advancing() -> Self {
        FakeSource::default()
    }
    /// Every counter advances by `step` counts at each read.
    fn advancing(step: u64) -> Self {
        FakeSource {
            all_step: step,
            ..Default::default()
        }
    }
    /// The counter of `config` on `cpu` advances by `step` counts at each read (0: never).
    fn with_step(self, config: u64, cpu: u32, step: u64) -> Self {
        self.steps.lock().unwrap().insert((config, cpu), step);
        self
    }
    /// Fails opens on `cpu` with OS error `errno`.
    fn failing(errno: i32, cpu: u32) -> Self {
        FakeSource {
            fail: Some((errno, cpu)),
            ..Default::default()
        }
    }
}

struct FakeCounter {
    key: (u64, u32),
    counts: Arc<Mutex<HashMap<(u64, u32), u64>>>,
    step: u64,
    unreadable: Arc<Mutex<Vec<(u64, u32)>>>,
}

impl Counter for FakeCounter {
    fn read(&mut self) -> io::Result<u64> {
        if self.unreadable.lock().unwrap().contains(&self.key) {
            return Err(io::Error::from_raw_os_error(5 /* EIO */));
        }
        let mut counts = self.counts.lock().unwrap();
        let c = counts.entry(self.key).or_insert(0);
        *c = c.saturating_add(self.step);
        Ok(*c)
    }
}

impl CounterSource for FakeSource {
    fn open(&self, pmu_type: u32, config: u64, cpu: u32) -> io::Result<Box<dyn Counter>> {
        if let Some((errno, on)) = self.fail
            && on == cpu
        {
            return Err(io::Error::from_raw_os_error(errno));
        }
        self.opened.lock().unwrap().push((pmu_type, config, cpu));
        let key = (config, cpu);
        let step = *self
            .steps
            .lock()
            .unwrap()
            .get(&key)
            .unwrap_or(&self.all_step);
        Ok(Box::new(FakeCounter {
            key,
            counts: self.counts.clone(),
            step,
            unreadable: self.unreadable.clone(),
        }))
    }
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn reason(e: ProbeError) -> String {
    unavailable(e).reason
}

/// A kernel that lets every user count CPU-wide.
const OPEN_KERNEL: Privileges = Privileges {
    root: false,
    perf_event_paranoid: Some(-1),
};

#[test]
fn single_socket_reports_package_and_dram_not_cores() {
    let dir = tempfile::tempdir().unwrap();
    fake_pmu(dir.path(), "0", &[PKG, CORES, RAM]);
    let desc = describe_pmu(dir.path()).unwrap();
    assert_eq!(desc.pmu_type, 23);
    assert_eq!(desc.cpus, vec![0]);
    assert_eq!(
        desc.events,
        vec![
            RaplEvent {
                name: "pkg".into(),
                config: 2,
                scale: SCALE_F
            },
            RaplEvent {
                name: "cores".into(),
                config: 1,
                scale: SCALE_F
            },
            RaplEvent {
                name: "ram".into(),
                config: 3,
                scale: SCALE_F
            },
        ]
    );
    assert_eq!(desc.domains(), names(&["package-0", "dram-0"]));

    let fake = FakeSource::default();
    let probe = PerfRaplProbe::open_with(dir.path(), Box::new(fake.clone())).unwrap();
    assert_eq!(probe.domains(), names(&["package-0", "dram-0"]));
    assert_eq!(*fake.opened.lock().unwrap(), vec![(23, 2, 0), (23, 3, 0)]);
    assert_eq!(probe.scope(), ProbeScope::Host);
    let src = probe.describe();
    assert_eq!(src.id(), SourceId::RaplPerf);
    assert_eq!(src.kind, EnergyKind::Measured);
    assert_eq!(src.scope, carina_runtime::ProbeScope::Host);
    assert_eq!(src.domains, names(&["package-0", "dram-0"]));
    assert!(src.source.contains("energy-cores"), "{}", src.source);
    assert!(src.source.contains(&dir.path().display().to_string()));
    assert_eq!(probe.excluded().len(), 1);
}

#[test]
fn two_sockets_give_four_domains_on_the_mask_cpus() {
    let dir = tempfile::tempdir().unwrap();
    fake_pmu(dir.path(), "0,18", &[PKG, RAM, CORES, GPU]);
    let desc = describe_pmu(dir.path()).unwrap();
    assert_eq!(desc.cpus, vec![0, 18]);
    let fake = FakeSource::default();
    let probe = PerfRaplProbe::open_with(dir.path(), Box::new(fake.clone())).unwrap();
    assert_eq!(
        probe.domains(),
        names(&["package-0", "dram-0", "package-1", "dram-1"])
    );
    assert_eq!(
        *fake.opened.lock().unwrap(),
        vec![(23, 2, 0), (23, 3, 0), (23, 2, 18), (23, 3, 18)]
    );
    // cores and gpu are both mentioned as excluded.
    assert_eq!(probe.excluded().len(), 2);
}

#[test]
fn cpumask_ranges_are_expanded() {
    let dir = tempfile::tempdir().unwrap();
    fake_pmu(dir.path(), "0-1", &[PKG]);
    assert_eq!(describe_pmu(dir.path()).unwrap().cpus, vec![0, 1]);
    std::fs::write(dir.path().join("cpumask"), "0-1,4,8-9\n").unwrap();
    assert_eq!(describe_pmu(dir.path()).unwrap().cpus, vec![0, 1, 4, 8, 9]);
    for bad in ["", "a", "3-1", "0,,1"] {
        std::fs::write(dir.path().join("cpumask"), bad).unwrap();
        match describe_pmu(dir.path()).unwrap_err() {
            ProbeError::Parse { path, field, .. } => {
                assert!(path.ends_with("cpumask"), "{bad:?}");
                assert_eq!(field, "cpumask");
            }
            other => panic!("{bad:?}: {other:?}"),
        }
    }
}

#[test]
fn bad_scale_is_a_parse_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    fake_pmu(dir.path(), "0", &[PKG]);
    std::fs::write(dir.path().join("events/energy-pkg.scale"), "abc\n").unwrap();
    let e = describe_pmu(dir.path()).unwrap_err();
    let msg = e.to_string();
    match e {
        ProbeError::Parse {
            path, line, field, ..
        } => {
            assert!(path.ends_with("events/energy-pkg.scale"), "{path:?}");
            assert_eq!(line, 1);
            assert_eq!(field, "scale");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        msg.contains("energy-pkg.scale") && msg.contains("abc"),
        "{msg}"
    );
}

#[test]
fn missing_scale_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    fake_pmu(dir.path(), "0", &[PKG]);
    std::fs::remove_file(dir.path().join("events/energy-pkg.scale")).unwrap();
    let msg = describe_pmu(dir.path()).unwrap_err().to_string();
    assert!(msg.contains("energy-pkg.scale"), "{msg}");
}

#[test]
fn a_unit_other_than_joules_is_a_parse_error() {
    let dir = tempfile::tempdir().unwrap();
    fake_pmu(dir.path(), "0", &[PKG, RAM]);
    std::fs::write(dir.path().join("events/energy-ram.unit"), "Watts\n").unwrap();
    match describe_pmu(dir.path()).unwrap_err() {
        ProbeError::Parse {
            path,
            field,
            message,
            ..
        } => {
            assert!(path.ends_with("events/energy-ram.unit"), "{path:?}");
            assert_eq!(field, "unit");
            assert!(message.contains("Watts"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn missing_type_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    fake_pmu(dir.path(), "0", &[PKG]);
    std::fs::remove_file(dir.path().join("type")).unwrap();
    let e = describe_pmu(dir.path()).unwrap_err();
    assert!(e.to_string().contains("type"), "{e}");
    match e {
        ProbeError::Io { path, .. } => assert_eq!(path, dir.path().join("type")),
        other => panic!("{other:?}"),
    }
    // Not a number.
    std::fs::write(dir.path().join("type"), "power\n").unwrap();
    match describe_pmu(dir.path()).unwrap_err() {
        ProbeError::Parse { path, field, .. } => {
            assert_eq!(path, dir.path().join("type"));
            assert_eq!(field, "type");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn missing_root_is_unavailable_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("power");
    let msg = reason(describe_pmu(&root).unwrap_err());
    assert!(msg.contains("no `power` PMU"), "{msg}");
    assert!(msg.contains(&root.display().to_string()), "{msg}");
    let u =
        unavailable(PerfRaplProbe::open_with(&root, Box::new(FakeSource::default())).unwrap_err());
    assert!(u.reason.contains("VM"), "{}", u.reason);
    // Nothing a user can change brings a PMU the kernel did not register.
    assert_eq!((u.cause, u.fix), (UnavailableCause::Absent, None));
}

#[test]
fn psys_is_not_added_to_packages() {
    let dir = tempfile::tempdir().unwrap();
    fake_pmu(dir.path(), "0,18", &[PKG, RAM, PSYS]);
    let probe = PerfRaplProbe::open_with(dir.path(), Box::new(FakeSource::default())).unwrap();
    assert_eq!(
        probe.domains(),
        names(&["package-0", "dram-0", "package-1", "dram-1"])
    );
    assert!(
        probe.excluded().iter().any(|n| n.contains("psys")),
        "{:?}",
        probe.excluded()
    );
    assert!(probe.describe().source.contains("psys"));
}

/// The domain rule shared with powercap: with `energy-ram` and `energy-psys` but no
/// `energy-pkg`, psys alone, since it includes the DRAM (the rule before counted the DRAM twice:
/// in `dram-N` and in `psys`).
#[test]
fn ram_beside_psys_without_pkg_is_not_added() {
    let dir = tempfile::tempdir().unwrap();
    fake_pmu(dir.path(), "0,18", &[RAM, PSYS]);
    let fake = FakeSource::default();
    let probe = PerfRaplProbe::open_with(dir.path(), Box::new(fake.clone())).unwrap();
    assert_eq!(probe.domains(), names(&["psys"]));
    assert_eq!(*fake.opened.lock().unwrap(), vec![(23, 5, 0)]);
    assert!(
        probe
            .excluded()
            .iter()
            .any(|n| n.starts_with("energy-ram not reported") && n.contains("includes the DRAM")),
        "{:?}",
        probe.excluded()
    );
    // DRAM alone, with neither a package nor psys, is what there is to report.
    let dir = tempfile::tempdir().unwrap();
    fake_pmu(dir.path(), "0", &[RAM]);
    let probe = PerfRaplProbe::open_with(dir.path(), Box::new(FakeSource::default())).unwrap();
    assert_eq!(probe.domains(), names(&["dram-0"]));
}

/// A counter whose read fails mid-run keeps its baseline: the next good read counts the whole
/// gap, every failed read is a read error, and one warning opens and one closes the streak. A
/// counter that then stops moving is stalled after 250 ms.
#[test]
fn a_failed_read_keeps_the_baseline_and_a_still_counter_is_stalled() {
    let dir = tempfile::tempdir().unwrap();
    fake_pmu(dir.path(), "0", &[PKG, RAM]);
    let fake = FakeSource::default();
    let mut probe = PerfRaplProbe::open_with(dir.path(), Box::new(fake.clone())).unwrap();
    let one_joule = 4_294_967_296u64;
    let mut out = [Joules::ZERO; 2];
    let mut at = |probe: &mut PerfRaplProbe, s: f64, pkg: u64, ram: u64| {
        fake.set(2, 0, pkg * one_joule);
        fake.set(3, 0, ram * one_joule);
        let r = probe.read_at(Duration::from_secs_f64(s), &mut out);
        (r.is_ok(), out)
    };
    assert_eq!(
        at(&mut probe, 0.1, 3, 1),
        (true, [Joules(3.0), Joules(1.0)])
    );
    fake.unreadable.lock().unwrap().push((2, 0));
    assert_eq!(
        at(&mut probe, 0.2, 6, 2),
        (true, [Joules(3.0), Joules(2.0)])
    );
    assert_eq!(
        at(&mut probe, 0.3, 9, 3),
        (true, [Joules(3.0), Joules(3.0)])
    );
    let r = probe.take_report();
    assert_eq!(r.read_errors, 2);
    assert!(r.missing && !r.lower_bound);
    assert_eq!(r.warnings.len(), 1, "{r:?}");
    assert!(
        r.warnings[0].starts_with("package-0: read failed at 0.200 s"),
        "{r:?}"
    );
    assert!(r.warnings[0].contains("energy-pkg on CPU 0"), "{r:?}");
    fake.unreadable.lock().unwrap().clear();
    assert_eq!(
        at(&mut probe, 0.4, 12, 4),
        (true, [Joules(12.0), Joules(4.0)])
    );
    let r = probe.take_report();
    assert!(
        r.warnings.len() == 1 && r.warnings[0].contains("readable again after 2 failed read(s)"),
        "{r:?}"
    );
    // Every counter unreadable: the read is an error, with the frozen values written.
    fake.unreadable.lock().unwrap().extend([(2, 0), (3, 0)]);
    assert_eq!(
        at(&mut probe, 0.5, 15, 5),
        (false, [Joules(12.0), Joules(4.0)])
    );
    fake.unreadable.lock().unwrap().clear();
    assert_eq!(
        at(&mut probe, 0.6, 18, 6),
        (true, [Joules(18.0), Joules(6.0)])
    );
    probe.take_report();
    // The DRAM counter stops; the package goes on.
    for (n, s) in [0.7, 0.8, 0.9, 1.0].into_iter().enumerate() {
        at(&mut probe, s, 19 + n as u64, 6);
    }
    let r = probe.take_report();
    assert!(r.missing);
    assert!(
        r.warnings.len() == 1 && r.warnings[0].starts_with("dram-0: counter stalled"),
        "{r:?}"
    );
    assert!(
        r.warnings[0].contains("has not advanced since 0.600 s"),
        "{r:?}"
    );
}

#[test]
fn psys_alone_is_read_once_on_the_first_cpu() {
    let dir = tempfile::tempdir().unwrap();
    fake_pmu(dir.path(), "0,18", &[PSYS]);
    let fake = FakeSource::default();
    let probe = PerfRaplProbe::open_with(dir.path(), Box::new(fake.clone())).unwrap();
    assert_eq!(probe.domains(), names(&["psys"]));
    assert_eq!(*fake.opened.lock().unwrap(), vec![(23, 5, 0)]);
    assert!(probe.excluded().is_empty());
}

#[test]
fn event_terms_and_format() {
    let dir = tempfile::tempdir().unwrap();
    // A zero-valued extra term cannot change the config.
    fake_pmu(dir.path(), "0", &[("pkg", "event=0x02,umask=0x0")]);
    assert_eq!(describe_pmu(dir.path()).unwrap().events[0].config, 2);
    // Decimal values are accepted too.
    std::fs::write(dir.path().join("events/energy-pkg"), "event=2\n").unwrap();
    assert_eq!(describe_pmu(dir.path()).unwrap().events[0].config, 2);
    // format/event places the value.
    std::fs::create_dir_all(dir.path().join("format")).unwrap();
    std::fs::write(dir.path().join("format/event"), "config:0-7\n").unwrap();
    assert_eq!(describe_pmu(dir.path()).unwrap().events[0].config, 2);
    std::fs::write(dir.path().join("format/event"), "config:8-15\n").unwrap();
    assert_eq!(describe_pmu(dir.path()).unwrap().events[0].config, 0x200);
    std::fs::write(dir.path().join("format/event"), "config1:0-7\n").unwrap();
    assert!(matches!(
        describe_pmu(dir.path()).unwrap_err(),
        ProbeError::Parse { .. }
    ));
    std::fs::write(dir.path().join("format/event"), "config:0-7\n").unwrap();
    // Too wide for the field.
    std::fs::write(dir.path().join("events/energy-pkg"), "event=0x102\n").unwrap();
    assert!(matches!(
        describe_pmu(dir.path()).unwrap_err(),
        ProbeError::Parse { .. }
    ));
    // A non-zero unknown term would change the config: refused, naming it.
    std::fs::write(
        dir.path().join("events/energy-pkg"),
        "event=0x02,umask=0x1\n",
    )
    .unwrap();
    match describe_pmu(dir.path()).unwrap_err() {
        ProbeError::Parse { path, field, .. } => {
            assert!(path.ends_with("events/energy-pkg"));
            assert_eq!(field, "umask");
        }
        other => panic!("{other:?}"),
    }
    // No event term.
    std::fs::write(dir.path().join("events/energy-pkg"), "umask=0x0\n").unwrap();
    match describe_pmu(dir.path()).unwrap_err() {
        ProbeError::Parse { field, .. } => assert_eq!(field, "event"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn no_energy_event_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    fake_pmu(dir.path(), "0", &[CORES]);
    let msg =
        reason(PerfRaplProbe::open_with(dir.path(), Box::new(FakeSource::default())).unwrap_err());
    assert!(msg.contains("energy-pkg"), "{msg}");
}

#[test]
fn read_is_scale_times_count_since_open_cumulative_and_non_decreasing() {
    let dir = tempfile::tempdir().unwrap();
    fake_pmu(dir.path(), "0,18", &[PKG, RAM]);
    let fake = FakeSource::default();
    // Counts at open: the probe must report from these.
    let initial = [
        (2, 0, 1_000_000u64),
        (3, 0, 5),
        (2, 18, u64::MAX - 10),
        (3, 18, 0),
    ];
    for (config, cpu, c) in initial {
        fake.set(config, cpu, c);
    }
    let mut probe = PerfRaplProbe::open_with(dir.path(), Box::new(fake.clone())).unwrap();
    let mut out = [Joules(-1.0); 4];
    probe.read_energy(&mut out).unwrap();
    assert_eq!(out, [Joules::ZERO; 4]);

    let steps: [[u64; 4]; 3] = [
        [
            1_000_000 + 4_294_967_296,
            5 + 1_000,
            u64::MAX - 5,
            123_456_789,
        ],
        [
            1_000_000 + 8_589_934_592,
            5 + 1_000,
            u64::MAX,
            987_654_321_000,
        ],
        [
            1_000_000 + 8_589_934_593,
            5 + 2_000,
            u64::MAX,
            987_654_321_001,
        ],
    ];
    let mut prev = [Joules::ZERO; 4];
    for step in steps {
        for (i, (config, cpu, _)) in initial.iter().enumerate() {
            fake.set(*config, *cpu, step[i]);
        }
        probe.read_energy(&mut out).unwrap();
        for i in 0..4 {
            let expected = Joules((step[i] - initial[i].2) as f64 * SCALE_F);
            assert_eq!(out[i], expected, "domain {i}");
            assert!(out[i] >= prev[i], "domain {i} decreased");
        }
        prev = out;
    }
    // 2^32 counts at 2^-32 J per count is exactly one joule.
    assert_eq!(out[0], Joules(2.0 + SCALE_F));

    assert!(probe.take_report().is_empty());

    // A count that went back (not something the kernel does) is a reset: energy does not
    // decrease, the count since the restart is added, and the figure is flagged.
    fake.set(2, 0, 1_000_000);
    let mut reading = carina_runtime::Reading::new(4);
    probe.read(&mut reading).unwrap();
    assert_eq!(reading.energy[0], Joules(prev[0].0 + 1_000_000.0 * SCALE_F));
    // The report comes with the reading (the sampler's path).
    let r = reading.report;
    assert!(r.lower_bound);
    assert!(
        r.warnings.len() == 1 && r.warnings[0].starts_with("package-0: counter reset"),
        "{r:?}"
    );
    assert!(r.warnings[0].contains("energy-pkg on CPU 0"), "{r:?}");
}

#[test]
fn permission_denied_explains_capabilities_and_paranoid() {
    let dir = tempfile::tempdir().unwrap();
    fake_pmu(dir.path(), "0,18", &[PKG]);
    for errno in [13 /* EACCES */, 1 /* EPERM */] {
        let src = FakeSource::failing(errno, 18);
        let u = unavailable(PerfRaplProbe::open_as(dir.path(), Box::new(src), &USER).unwrap_err());
        assert_eq!(u.cause, UnavailableCause::Permission);
        let msg = &u.reason;
        assert!(msg.contains("CAP_PERFMON"), "{msg}");
        assert!(msg.contains("perf_event_paranoid <= 0"), "{msg}");
        assert!(msg.contains("CPU 18"), "{msg}");
        assert!(msg.contains("energy-pkg"), "{msg}");
        // The level is quoted.
        assert!(
            msg.contains("/proc/sys/kernel/perf_event_paranoid is 2"),
            "{msg}"
        );
        let fix = u.fix.unwrap();
        assert!(
            fix.contains("`sudo setcap cap_perfmon+ep <program>`"),
            "{fix}"
        );
        assert!(
            fix.contains("`sudo sysctl kernel.perf_event_paranoid=0`"),
            "{fix}"
        );
        assert!(fix.contains("run as root"), "{fix}");
    }
}

/// Root is refused only inside a confinement: the fix is the container's capability (or the
/// host's sysctl), never "run as root".
#[test]
fn a_refused_root_is_told_about_the_container() {
    let dir = tempfile::tempdir().unwrap();
    fake_pmu(dir.path(), "0", &[PKG]);
    let src = FakeSource::failing(1 /* EPERM */, 0);
    let u = unavailable(PerfRaplProbe::open_as(dir.path(), Box::new(src), &ROOT).unwrap_err());
    assert_eq!(u.cause, UnavailableCause::Permission);
    assert!(
        u.reason.contains("runs as root but lacks CAP_PERFMON"),
        "{}",
        u.reason
    );
    let fix = u.fix.unwrap();
    assert!(fix.contains("--cap-add PERFMON"), "{fix}");
    assert!(
        !fix.contains("run as root") && !fix.contains("setcap"),
        "{fix}"
    );
}

/// With the sysctl already at 0 or less, lowering it is no fix: something else refuses.
#[test]
fn a_refusal_on_an_open_kernel_points_at_the_filter() {
    let dir = tempfile::tempdir().unwrap();
    fake_pmu(dir.path(), "0", &[PKG]);
    for who in [
        OPEN_KERNEL,
        Privileges {
            root: true,
            ..OPEN_KERNEL
        },
    ] {
        let src = FakeSource::failing(13 /* EACCES */, 0);
        let u = unavailable(PerfRaplProbe::open_as(dir.path(), Box::new(src), &who).unwrap_err());
        assert_eq!(u.cause, UnavailableCause::Permission);
        assert!(
            u.reason.contains("perf_event_paranoid is -1"),
            "{}",
            u.reason
        );
        assert!(u.reason.contains("seccomp"), "{}", u.reason);
        let fix = u.fix.unwrap();
        assert!(fix.contains("seccomp"), "{fix}");
        for word in ["sysctl", "setcap", "run as root"] {
            assert!(!fix.contains(word), "{word:?} in {fix}");
        }
    }
}

#[test]
fn unsupported_event_says_so() {
    let dir = tempfile::tempdir().unwrap();
    fake_pmu(dir.path(), "0", &[PKG]);
    for errno in [
        2,  /* ENOENT */
        19, /* ENODEV */
        22, /* EINVAL */
    ] {
        let src = FakeSource::failing(errno, 0);
        let u = unavailable(PerfRaplProbe::open_with(dir.path(), Box::new(src)).unwrap_err());
        assert_eq!(
            (u.cause, u.fix.as_deref()),
            (UnavailableCause::Absent, None)
        );
        assert!(u.reason.contains("not supported"), "{errno}: {}", u.reason);
        assert!(!u.reason.contains("CAP_PERFMON"), "{errno}: {}", u.reason);
    }
    // Other errors keep the OS message.
    let src = FakeSource::failing(24 /* EMFILE */, 0);
    let u = unavailable(PerfRaplProbe::open_with(dir.path(), Box::new(src)).unwrap_err());
    assert_eq!(
        (u.cause, u.fix.as_deref()),
        (UnavailableCause::Failed, None)
    );
    assert!(
        u.reason.contains("cannot open perf counter"),
        "{}",
        u.reason
    );
}

#[test]
fn real_open_default_degrades_quickly_without_panicking() {
    let start = Instant::now();
    let result = PerfRaplProbe::open_default();
    let elapsed = start.elapsed();
    assert!(elapsed < Duration::from_secs(1), "took {elapsed:?}");
    let has_pmu = Path::new("/sys/bus/event_source/devices/power").exists();
    match result {
        Err(e) => {
            let msg = reason(e);
            assert!(!msg.trim().is_empty());
            if !has_pmu {
                assert!(msg.contains("no `power` PMU"), "{msg}");
            }
        }
        // Only possible on RAPL hardware with perf permissions.
        Ok(mut probe) => {
            assert!(has_pmu);
            let mut out = vec![Joules::ZERO; probe.domains().len()];
            probe.read_energy(&mut out).unwrap();
        }
    }
}

#[test]
fn cross_check_ignores_order_and_names_differences() {
    let a = names(&["package-0", "dram-0", "package-1"]);
    let b = names(&["package-1", "package-0", "dram-0"]);
    assert_eq!(cross_check(&a, &b), Ok(()));
    assert_eq!(cross_check(&[], &[]), Ok(()));

    let c = names(&["package-0", "psys"]);
    let msg = cross_check(&a, &c).unwrap_err();
    assert!(
        msg.contains("only in the first: dram-0, package-1"),
        "{msg}"
    );
    assert!(msg.contains("only in the second: psys"), "{msg}");

    let d = names(&["package-0", "package-0"]);
    let msg = cross_check(&names(&["package-0"]), &d).unwrap_err();
    assert!(msg.contains("package-0 (1 vs 2 times)"), "{msg}");
}

/// The real `perf_event_open` path, on a fake description that points at the always-present
/// software PMU (type 1, `cpu-clock` = config 0, counting nanoseconds): either the counter opens
/// and reads grow, or the failure is explained, depending on this process's perf permissions.
#[test]
fn real_perf_source_opens_or_explains() {
    let dir = tempfile::tempdir().unwrap();
    fake_pmu(dir.path(), "0", &[("pkg", "event=0x0")]);
    std::fs::write(dir.path().join("type"), "1\n").unwrap();
    std::fs::write(dir.path().join("events/energy-pkg.scale"), "1e-9\n").unwrap();
    match PerfRaplProbe::open(dir.path()) {
        Ok(mut probe) => {
            let mut first = [Joules::ZERO];
            probe.read_energy(&mut first).unwrap();
            std::thread::sleep(Duration::from_millis(20));
            let mut second = [Joules::ZERO];
            probe.read_energy(&mut second).unwrap();
            assert!(second[0] >= first[0], "{first:?} then {second:?}");
            // CPU 0's clock ran for at least part of the sleep.
            assert!(second[0] > Joules::ZERO, "{second:?}");
            eprintln!("real perf_event_open worked here: {second:?} of cpu-clock");
        }
        Err(e) => {
            let u = unavailable(e);
            assert!(u.reason.contains("CPU 0"), "{}", u.reason);
            if u.cause == UnavailableCause::Permission {
                assert!(u.reason.contains("CAP_PERFMON"), "{}", u.reason);
                assert!(u.fix.is_some(), "{u:?}");
            }
            eprintln!("real perf_event_open refused here: {u}");
        }
    }
}

/// Detection's roots for a fake PMU at `pmu`, a fake /proc for the model, and no powercap tree.
fn detection_roots(tmp: &Path, pmu: &Path) -> Roots {
    let proc = tmp.join("proc");
    std::fs::create_dir_all(&proc).unwrap();
    std::fs::write(
        proc.join("cpuinfo"),
        "processor : 0\nvendor_id : GenuineIntel\ncpu family : 6\nmodel : 85\n\
         model name : Intel Xeon\nprocessor : 1\n",
    )
    .unwrap();
    std::fs::write(
        proc.join("stat"),
        "cpu 1 0 1 10 0 0 0 0\ncpu0 1 0 1 5\ncpu1 0 0 0 5\n",
    )
    .unwrap();
    Roots {
        proc,
        sys: tmp.join("sys"),
        powercap: tmp.join("no-powercap"),
        perf_pmu: pmu.to_owned(),
        nvml: false,
        nvml_library: tmp.join("no-libnvidia-ml.so.1").into(),
        privileges: USER,
        liveness_wait: DEFAULT_LIVENESS_WAIT,
    }
}

/// The GPU cloud VM of issue 9 (Firecracker): the `power` PMU has only `energy-psys`, which
/// opens and reads 0 for ever. Detection must not label 0 J as measured: the model estimates the
/// CPU, and the reason says what happened.
#[test]
fn detection_falls_back_to_the_model_when_psys_never_advances() {
    let tmp = tempfile::tempdir().unwrap();
    let pmu = tmp.path().join("power");
    fake_pmu(&pmu, "0", &[PSYS]);
    let fake = FakeSource::never_advancing();
    let roots = detection_roots(tmp.path(), &pmu);
    let d = detect_with_counters(&roots, &ModelOptions::default(), Box::new(fake.clone()));
    // It was opened, and read during the check.
    assert_eq!(*fake.opened.lock().unwrap(), vec![(23, 5, 0)]);
    assert_eq!(d.probes.len(), 1);
    let src = d.probes[0].describe();
    assert_eq!(src.id(), SourceId::Model);
    assert_eq!(src.kind, EnergyKind::Estimated);
    let perf = d
        .not_chosen
        .iter()
        .find(|n| n.id == SourceId::RaplPerf)
        .unwrap();
    assert_eq!(
        perf.reason,
        "counter energy-psys did not advance over 30 ms while the CPU was running: a \
         virtualised PMU that reads 0; using the estimation model"
    );
    assert_eq!(perf.cause, UnavailableCause::NotCounting);
    assert!(
        perf.fix
            .as_deref()
            .unwrap()
            .starts_with("none on this machine")
    );
    assert!(d.not_chosen.iter().all(|n| n.id != SourceId::Model));
}

#[test]
fn detection_uses_a_psys_counter_that_advances() {
    let tmp = tempfile::tempdir().unwrap();
    let pmu = tmp.path().join("power");
    fake_pmu(&pmu, "0", &[PSYS]);
    let roots = detection_roots(tmp.path(), &pmu);
    let mut d = detect_with_counters(
        &roots,
        &ModelOptions::default(),
        Box::new(FakeSource::advancing(1 << 20)),
    );
    let src = d.probes[0].describe();
    assert_eq!(src.id(), SourceId::RaplPerf);
    assert_eq!(src.kind, EnergyKind::Measured);
    assert_eq!(d.probes[0].domains(), names(&["psys"]));
    let mut out = [Joules::ZERO];
    d.probes[0].read_energy(&mut out).unwrap();
    assert!(out[0] > Joules::ZERO);
    assert!(
        d.not_chosen
            .iter()
            .any(|n| n.id == SourceId::Model && n.reason.contains("not needed"))
    );
}

/// Two sockets whose packages count and whose DRAM counters do not: the DRAM domains are
/// dropped, the packages kept, and the source string says so.
#[test]
fn dead_dram_counters_are_dropped_from_a_live_source() {
    let tmp = tempfile::tempdir().unwrap();
    let pmu = tmp.path().join("power");
    fake_pmu(&pmu, "0,18", &[PKG, RAM]);
    let fake = FakeSource::advancing(1 << 20)
        .with_step(3, 0, 0)
        .with_step(3, 18, 0);
    let roots = detection_roots(tmp.path(), &pmu);
    let d = detect_with_counters(&roots, &ModelOptions::default(), Box::new(fake));
    let src = d.probes[0].describe();
    assert_eq!(src.id(), SourceId::RaplPerf);
    assert_eq!(d.probes[0].domains(), names(&["package-0", "package-1"]));
    for needle in [
        "dram-0 (energy-ram on CPU 0) dropped: its counter did not advance over 30 ms",
        "dram-1 (energy-ram on CPU 18) dropped",
        "so its energy is not counted",
    ] {
        assert!(
            src.source.contains(needle),
            "{needle:?} not in {}",
            src.source
        );
    }
}

/// `drop_domains` removes a domain and its counter, keeps the others in order and reading their
/// own counters, and names what it dropped.
#[test]
fn probe_drop_domains_keeps_the_rest_in_order() {
    let dir = tempfile::tempdir().unwrap();
    fake_pmu(dir.path(), "0,18", &[PKG, RAM]);
    let fake = FakeSource::default();
    let mut probe = PerfRaplProbe::open_with(dir.path(), Box::new(fake.clone())).unwrap();
    assert_eq!(
        probe.counter_labels(),
        names(&[
            "energy-pkg on CPU 0",
            "energy-ram on CPU 0",
            "energy-pkg on CPU 18",
            "energy-ram on CPU 18"
        ])
    );
    probe.drop_domains(&names(&["package-1", "nothing"]), "dead");
    assert_eq!(probe.domains(), names(&["package-0", "dram-0", "dram-1"]));
    assert!(
        probe
            .excluded()
            .contains(&"package-1 (energy-pkg on CPU 18) dropped: dead".to_owned()),
        "{:?}",
        probe.excluded()
    );
    fake.set(3, 18, 4_294_967_296);
    let mut out = [Joules(-1.0); 3];
    probe.read_energy(&mut out).unwrap();
    assert_eq!(out, [Joules::ZERO, Joules::ZERO, Joules(1.0)]);
}

/// A live perf source and a powercap tree that never moves: perf is used, and powercap's
/// reason says its counters are dead and what measures instead.
#[test]
fn a_dead_powercap_tree_beside_live_perf_names_perf() {
    let tmp = tempfile::tempdir().unwrap();
    let pmu = tmp.path().join("power");
    fake_pmu(&pmu, "0", &[PKG]);
    let mut roots = detection_roots(tmp.path(), &pmu);
    roots.powercap = tmp.path().join("powercap");
    let zone = roots.powercap.join("intel-rapl:0");
    std::fs::create_dir_all(&zone).unwrap();
    std::fs::write(zone.join("name"), "package-0\n").unwrap();
    std::fs::write(zone.join("energy_uj"), "7\n").unwrap();
    std::fs::write(zone.join("max_energy_range_uj"), "262143328850\n").unwrap();
    let d = detect_with_counters(
        &roots,
        &ModelOptions::default(),
        Box::new(FakeSource::advancing(1 << 20)),
    );
    assert_eq!(d.probes[0].describe().id(), SourceId::RaplPerf);
    let pc = d
        .not_chosen
        .iter()
        .find(|n| n.id == SourceId::RaplPowercap)
        .unwrap();
    assert!(
        pc.reason
            .starts_with("counter package-0 (intel-rapl:0/energy_uj) did not advance over 30 ms"),
        "{}",
        pc.reason
    );
    assert!(pc.reason.ends_with("; using rapl-perf"), "{}", pc.reason);
}

/// Without the check (a zero wait) a counter that never moves is trusted, as before.
#[test]
fn a_zero_wait_skips_the_check() {
    let tmp = tempfile::tempdir().unwrap();
    let pmu = tmp.path().join("power");
    fake_pmu(&pmu, "0", &[PSYS]);
    let roots = Roots {
        liveness_wait: Duration::ZERO,
        ..detection_roots(tmp.path(), &pmu)
    };
    let d = detect_with_counters(
        &roots,
        &ModelOptions::default(),
        Box::new(FakeSource::never_advancing()),
    );
    assert_eq!(d.probes[0].describe().id(), SourceId::RaplPerf);
}
