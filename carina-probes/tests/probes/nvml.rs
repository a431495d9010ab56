//! The NVML probe's arithmetic and failure handling, with scripted fake GPUs; and the real
//! probe's behaviour on a machine without an NVIDIA driver.

use super::common::{ROOT, USER, unavailable};
use carina_probes::nvml::{GpuBackend, GpuInfo, NvmlProbe};
use carina_runtime::energy::UnavailableCause;
use carina_runtime::{EnergyKind, EnergyProbe, EnergyProbeExt, Joules, ProbeScope};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One scripted reading: a value, or an error.
type Reading<T> = Result<T, String>;

/// A fake GPU: each read pops the next scripted value; when the script is down to its last
/// value, that value repeats.
#[derive(Default)]
struct FakeGpu {
    info: Option<GpuInfo>,
    /// `None` entries mean "no energy counter".
    energy: VecDeque<Reading<Option<u64>>>,
    power: VecDeque<Reading<u32>>,
}

fn next<T: Clone>(q: &mut VecDeque<Reading<T>>) -> Reading<T> {
    if q.len() > 1 {
        q.pop_front().unwrap()
    } else {
        q.front()
            .cloned()
            .unwrap_or_else(|| Err("script empty".into()))
    }
}

/// The fakes live behind a shared handle so a test can change a script after the probe opened.
#[derive(Clone, Default)]
struct Fake(Arc<Mutex<Vec<FakeGpu>>>);

impl Fake {
    fn add(&self, index: u32, name: &str) -> &Self {
        self.0.lock().unwrap().push(FakeGpu {
            info: Some(GpuInfo {
                index,
                name: name.into(),
                uuid: format!("GPU-0000-{index}"),
            }),
            ..FakeGpu::default()
        });
        self
    }

    fn energy(&self, index: u32, script: Vec<Reading<Option<u64>>>) -> &Self {
        self.with(index, |g| g.energy = script.into());
        self
    }

    fn power(&self, index: u32, script: Vec<Reading<u32>>) -> &Self {
        self.with(index, |g| g.power = script.into());
        self
    }

    fn with(&self, index: u32, f: impl FnOnce(&mut FakeGpu)) {
        let mut gpus = self.0.lock().unwrap();
        let g = gpus
            .iter_mut()
            .find(|g| g.info.as_ref().unwrap().index == index)
            .expect("no such fake GPU");
        f(g);
    }

    fn probe(&self) -> NvmlProbe {
        NvmlProbe::with_backend(Box::new(self.clone())).expect("fake probe opens")
    }
}

impl GpuBackend for Fake {
    fn devices(&self) -> Result<Vec<GpuInfo>, String> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|g| g.info.clone())
            .collect())
    }
    fn total_energy_mj(&mut self, index: u32) -> Result<Option<u64>, String> {
        let mut r = None;
        self.with(index, |g| r = Some(next(&mut g.energy)));
        r.unwrap()
    }
    fn power_mw(&mut self, index: u32) -> Result<u32, String> {
        let mut r = None;
        self.with(index, |g| r = Some(next(&mut g.power)));
        r.unwrap()
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// Reads at `at` seconds and returns the cumulative joules.
fn read(p: &mut NvmlProbe, at: f64) -> Vec<f64> {
    let mut out = vec![Joules(-1.0); p.domains().len()];
    p.read_at(secs(at), &mut out).unwrap();
    out.iter().map(|j| j.0).collect()
}

#[test]
fn energy_counter_deltas_are_exact_and_cumulative() {
    let fake = Fake::default();
    fake.add(0, "NVIDIA H100 80GB HBM3").energy(
        0,
        vec![
            Ok(Some(5_000_000)), // at open: only the baseline
            Ok(Some(5_000_100)),
            Ok(Some(5_000_300)),
            Ok(Some(5_000_300)),
            Ok(Some(5_123_456)),
        ],
    );
    let mut p = fake.probe();
    assert_eq!(p.domains(), ["gpu-0"]);
    assert_eq!(read(&mut p, 0.1), [0.1]);
    assert_eq!(read(&mut p, 0.2), [0.3]);
    assert_eq!(read(&mut p, 0.3), [0.3]);
    // 123_456 mJ since open, summed in millijoules: no float drift.
    assert_eq!(read(&mut p, 0.4), [123.456]);
    assert!(p.take_report().is_empty());
    assert_eq!(p.failed_reads(), 0);
    // A counter that does not move for over a second has stopped counting: a powered board
    // draws tens of watts. The energy stays what the counter says, flagged as missing (a lower
    // bound if it never moves again).
    assert_eq!(read(&mut p, 99.0), [123.456]);
    let r = p.take_report();
    assert!(r.missing && !r.lower_bound);
    assert!(
        r.warnings.len() == 1 && r.warnings[0].starts_with("gpu-0: counter stalled"),
        "{r:?}"
    );
}

#[test]
fn many_small_counter_deltas_sum_without_drift() {
    let fake = Fake::default();
    fake.add(0, "gpu")
        .energy(0, (0..=1000).map(|k| Ok(Some(k * 7))).collect());
    let mut p = fake.probe();
    let mut last = 0.0;
    for k in 1..=1000 {
        let now = read(&mut p, f64::from(k) * 0.1)[0];
        assert!(now >= last);
        last = now;
    }
    assert_eq!(last, 7.0);
}

#[test]
fn power_is_integrated_with_the_trapezoid_rule() {
    let fake = Fake::default();
    fake.add(0, "Tesla P100-PCIE-16GB")
        .energy(0, vec![Ok(None)])
        .power(0, vec![Ok(100_000), Ok(200_000), Ok(200_000), Ok(50_000)]);
    let mut p = fake.probe();
    // 100 W at open, 200 W one second later: 150 J.
    assert_eq!(read(&mut p, 1.0), [150.0]);
    // Constant 200 W for 2 s: 400 J more.
    assert_eq!(read(&mut p, 3.0), [550.0]);
    // 200 W down to 50 W over 0.5 s: 62.5 J.
    assert_eq!(read(&mut p, 3.5), [612.5]);
}

#[test]
fn constant_power_gives_power_times_time() {
    let fake = Fake::default();
    fake.add(0, "old")
        .energy(0, vec![Ok(None)])
        .power(0, vec![Ok(75_000)]);
    let mut p = fake.probe();
    let mut at = 0.0;
    for _ in 0..40 {
        at += 0.25;
        read(&mut p, at);
    }
    let e = read(&mut p, 10.0)[0];
    assert!((e - 750.0).abs() < 1e-9, "{e}");
}

#[test]
fn time_going_backwards_adds_nothing() {
    let fake = Fake::default();
    fake.add(0, "old")
        .energy(0, vec![Ok(None)])
        .power(0, vec![Ok(100_000)]);
    let mut p = fake.probe();
    assert_eq!(read(&mut p, 2.0), [200.0]);
    assert_eq!(read(&mut p, 1.0), [200.0]);
    // Time is counted from the latest sample time, not from the earlier call.
    assert_eq!(read(&mut p, 3.0), [300.0]);
}

#[test]
fn mixed_devices_each_use_their_method() {
    let fake = Fake::default();
    // Listed out of order: domains still follow the NVML index.
    fake.add(1, "Tesla K80")
        .energy(1, vec![Ok(None)])
        .power(1, vec![Ok(60_000)]);
    fake.add(0, "NVIDIA A100-SXM4-40GB")
        .energy(0, vec![Ok(Some(0)), Ok(Some(2_500))]);
    let mut p = fake.probe();
    assert_eq!(p.domains(), ["gpu-0", "gpu-1"]);
    assert_eq!(read(&mut p, 0.5), [2.5, 30.0]);

    let src = p.describe();
    assert_eq!(src.name, "nvml");
    assert_eq!(src.kind, EnergyKind::Measured);
    assert!(
        src.source
            .contains("gpu-0 NVIDIA A100-SXM4-40GB (measured by energy counter)"),
        "{}",
        src.source
    );
    assert!(
        src.source
            .contains("gpu-1 Tesla K80 (integrated from power samples at the sampling interval)"),
        "{}",
        src.source
    );
}

#[test]
fn a_failing_device_keeps_its_value_and_warns_once_per_streak() {
    let fake = Fake::default();
    fake.add(0, "flaky").energy(
        0,
        vec![
            Ok(Some(1_000)),
            Ok(Some(3_000)),
            Err("GPU is lost".into()),
            Err("GPU is lost".into()),
            Err("GPU is lost".into()),
            Ok(Some(10_000)),
        ],
    );
    fake.add(1, "steady")
        .energy(1, (0..10).map(|k| Ok(Some(k * 1_000))).collect());
    let mut p = fake.probe();
    assert_eq!(read(&mut p, 0.1), [2.0, 1.0]);
    // Three failed reads: gpu-0 frozen, gpu-1 goes on.
    assert_eq!(read(&mut p, 0.2), [2.0, 2.0]);
    assert_eq!(read(&mut p, 0.3), [2.0, 3.0]);
    assert_eq!(read(&mut p, 0.4), [2.0, 4.0]);
    assert_eq!(p.failed_reads(), 3);
    let w = p.take_report().warnings;
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("gpu-0 (flaky)") && w[0].contains("GPU is lost"),
        "{w:?}"
    );
    assert!(w[0].contains("2.000 J"), "{w:?}");
    // Back: the counter kept counting meanwhile, so nothing is lost.
    assert_eq!(read(&mut p, 0.5), [9.0, 5.0]);
    let w = p.take_report().warnings;
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("readable again after 3 failed read(s)"),
        "{w:?}"
    );
    assert!(p.take_report().warnings.is_empty());
}

#[test]
fn a_failing_power_device_bridges_the_gap_when_it_returns() {
    let fake = Fake::default();
    fake.add(0, "old").energy(0, vec![Ok(None)]).power(
        0,
        vec![
            Ok(100_000),
            Err("timeout".into()),
            Err("timeout".into()),
            Ok(100_000),
        ],
    );
    let mut p = fake.probe();
    assert_eq!(read(&mut p, 1.0), [0.0]);
    assert_eq!(read(&mut p, 2.0), [0.0]);
    // 100 W at 0 s and at 3 s.
    assert_eq!(read(&mut p, 3.0), [300.0]);
    assert_eq!(p.failed_reads(), 2);
}

#[test]
fn a_counter_going_backwards_is_a_reset_counted_from_zero() {
    let fake = Fake::default();
    fake.add(0, "reset").energy(
        0,
        vec![
            Ok(Some(900_000)),
            Ok(Some(905_000)),
            Ok(Some(1_000)), // driver reload
            Ok(Some(4_000)),
        ],
    );
    let mut p = fake.probe();
    assert_eq!(read(&mut p, 1.0), [5.0]);
    assert!(p.take_report().is_empty());
    // The restarted counter proves 1 J since the reload; what came before it is lost.
    assert_eq!(read(&mut p, 2.0), [6.0]);
    let r = p.take_report();
    assert!(r.lower_bound);
    assert_eq!(r.warnings.len(), 1, "{r:?}");
    assert!(r.warnings[0].starts_with("gpu-0: counter reset"), "{r:?}");
    assert!(r.warnings[0].contains("905000 to 1000 mJ"), "{r:?}");
    // Counting goes on from the new value.
    assert_eq!(read(&mut p, 3.0), [9.0]);
    assert_eq!(p.failed_reads(), 0);
}

#[test]
fn values_never_decrease_under_any_script() {
    let fake = Fake::default();
    fake.add(0, "chaos").energy(
        0,
        vec![
            Ok(Some(50)),
            Ok(Some(10)),
            Err("x".into()),
            Ok(Some(5)),
            Ok(Some(70)),
            Ok(Some(0)),
            Err("y".into()),
            Ok(Some(3)),
        ],
    );
    let mut p = fake.probe();
    let mut last = 0.0;
    for k in 1..=8 {
        let now = read(&mut p, f64::from(k) * 0.1)[0];
        assert!(now >= last, "read {k}: {now} < {last}");
        last = now;
    }
    // Resets count the new value (10, 5, 0 mJ), plain deltas their difference (65, 3 mJ).
    assert_eq!(last, 0.083);
}

#[test]
fn a_device_unreadable_at_open_starts_counting_when_it_answers() {
    let fake = Fake::default();
    fake.add(0, "late")
        .energy(0, vec![Err("busy".into()), Ok(Some(700)), Ok(Some(1_700))])
        .power(0, vec![Err("busy".into())]);
    let mut p = fake.probe();
    assert_eq!(p.failed_reads(), 1);
    let w = p.take_report().warnings;
    assert!(w[0].contains("cannot be read"), "{w:?}");
    assert!(p.describe().source.contains("not readable yet"));
    // First good sample is a baseline; the energy counts from there.
    assert_eq!(read(&mut p, 1.0), [0.0]);
    assert_eq!(read(&mut p, 2.0), [1.0]);
    assert!(p.describe().source.contains("measured by energy counter"));
    let w = p.take_report().warnings;
    assert!(w[0].contains("readable again"), "{w:?}");
}

#[test]
fn a_counter_error_at_open_falls_back_to_power() {
    let fake = Fake::default();
    fake.add(0, "odd")
        .energy(0, vec![Err("unknown error".into())])
        .power(0, vec![Ok(40_000)]);
    let mut p = fake.probe();
    assert_eq!(read(&mut p, 2.0), [80.0]);
    let w = p.take_report().warnings;
    assert!(w[0].contains("integrating power samples instead"), "{w:?}");
    assert_eq!(p.failed_reads(), 0);
}

#[test]
fn warnings_are_bounded() {
    let fake = Fake::default();
    // Alternating failures: two warnings per cycle (the failure and the recovery).
    fake.add(0, "flappy").energy(
        0,
        std::iter::once(Ok(Some(0)))
            .chain((1..=200).flat_map(|k| [Err("x".to_string()), Ok(Some(k))]))
            .collect(),
    );
    let mut p = fake.probe();
    for k in 0..400 {
        read(&mut p, f64::from(k) * 0.1);
    }
    let w = p.take_report().warnings;
    assert_eq!(w.len(), 65);
    assert!(
        w[64].contains("336 further NVML warning(s) dropped"),
        "{:?}",
        w[64]
    );
    assert!(p.take_report().warnings.is_empty());
}

#[test]
fn no_device_is_unavailable() {
    let u = unavailable(NvmlProbe::with_backend(Box::new(Fake::default())).unwrap_err());
    assert_eq!(u.reason, "NVML found no GPU");
    assert_eq!((u.cause, u.fix), (UnavailableCause::Absent, None));
}

#[test]
fn a_listing_error_is_unavailable() {
    struct Broken;
    impl GpuBackend for Broken {
        fn devices(&self) -> Result<Vec<GpuInfo>, String> {
            Err("GPU 1: GPU is lost".into())
        }
        fn total_energy_mj(&mut self, _: u32) -> Result<Option<u64>, String> {
            unreachable!()
        }
        fn power_mw(&mut self, _: u32) -> Result<u32, String> {
            unreachable!()
        }
    }
    let u = unavailable(NvmlProbe::with_backend(Box::new(Broken)).unwrap_err());
    assert!(u.reason.contains("GPU 1: GPU is lost"), "{u:?}");
    assert_eq!((u.cause, u.fix), (UnavailableCause::Failed, None));
}

#[test]
fn describe_lists_devices_with_uuid() {
    let fake = Fake::default();
    fake.add(0, "NVIDIA H100 80GB HBM3")
        .energy(0, vec![Ok(Some(1))]);
    fake.add(1, "NVIDIA H100 80GB HBM3")
        .energy(1, vec![Ok(Some(1))]);
    let p = fake.probe();
    let src = p.describe();
    assert_eq!(src.scope, carina_runtime::ProbeScope::Host);
    assert_eq!(p.scope(), ProbeScope::Host);
    assert_eq!(src.domains, ["gpu-0", "gpu-1"]);
    assert!(src.used);
    assert_eq!(src.devices.len(), 2);
    assert_eq!(src.devices[1].index, 1);
    assert_eq!(src.devices[1].name, "NVIDIA H100 80GB HBM3");
    assert_eq!(src.devices[1].uuid.as_deref(), Some("GPU-0000-1"));
    assert!(
        src.source.starts_with(
            "NVML (libnvidia-ml): gpu-0 NVIDIA H100 80GB HBM3 (measured by energy counter), gpu-1 "
        ),
        "{}",
        src.source
    );
    assert!(src.source.contains("whole-GPU"), "{}", src.source);
}

#[test]
fn read_uses_the_clock_and_never_decreases() {
    let fake = Fake::default();
    fake.add(0, "old")
        .energy(0, vec![Ok(None)])
        .power(0, vec![Ok(1_000_000)]);
    let mut p = fake.probe();
    let mut out = [Joules::ZERO];
    p.read_energy(&mut out).unwrap();
    let first = out[0];
    std::thread::sleep(Duration::from_millis(20));
    p.read_energy(&mut out).unwrap();
    // 1 kW for at least 20 ms.
    assert!(
        out[0].0 >= first.0 + 20.0 - 1e-9,
        "{first:?} -> {:?}",
        out[0]
    );
}

#[test]
fn a_short_output_slice_is_filled_as_far_as_it_goes() {
    let fake = Fake::default();
    fake.add(0, "a")
        .energy(0, vec![Ok(Some(0)), Ok(Some(1_000))]);
    fake.add(1, "b").energy(1, vec![Ok(Some(0))]);
    let mut p = fake.probe();
    let mut out = [Joules::ZERO];
    p.read_at(secs(1.0), &mut out).unwrap();
    assert_eq!(out, [Joules(1.0)]);
}

#[test]
fn a_backend_without_process_queries_does_not_know_its_users() {
    // This fake implements only the energy queries: the defaults answer "not supported".
    let fake = Fake::default();
    fake.add(0, "a").energy(0, vec![Ok(Some(0))]);
    let mut p = fake.probe();
    assert!(!p.knows_users());
    read(&mut p, 1.0);
    let mut out = [None];
    p.usage_share(&[1, 2, 3], &mut out);
    // Unknown: the run's CPU share applies to this GPU.
    assert_eq!(out, [None]);
    assert!(p.take_report().warnings.is_empty());
    assert!(!p.describe().source.contains("GPU use"));
    let mut b = fake.clone();
    assert_eq!(
        b.compute_processes(0).unwrap_err(),
        carina_probes::nvml::NOT_SUPPORTED
    );
    assert!(b.process_utilization(0, 0).is_err());
}

/// A sysfs tree whose PCI bus shows `nvidia` NVIDIA GPUs (and an Intel VGA controller).
fn pci_tree(nvidia: usize) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let device = |addr: &str, vendor: &str, class: &str| {
        let d = t.path().join("bus/pci/devices").join(addr);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("vendor"), format!("{vendor}\n")).unwrap();
        std::fs::write(d.join("class"), format!("{class}\n")).unwrap();
        std::fs::write(d.join("device"), "0x2330\n").unwrap();
    };
    device("0000:00:02.0", "0x8086", "0x030000");
    for i in 0..nvidia {
        device(&format!("0000:0{}:00.0", i + 1), "0x10de", "0x030200");
    }
    t
}

/// No NVML library: the driver is the fix only where an NVIDIA GPU is on the PCI bus.
#[cfg(feature = "nvml")]
#[test]
fn without_the_library_open_is_unavailable_at_once() {
    let missing = tempfile::tempdir().unwrap();
    let lib = missing.path().join("libnvidia-ml.so.1");
    for (gpus, who) in [(0, USER), (1, USER), (2, ROOT)] {
        let sys = pci_tree(gpus);
        let t = std::time::Instant::now();
        let u = unavailable(NvmlProbe::open_as(&lib, sys.path(), &who).unwrap_err());
        let took = t.elapsed();
        assert!(took < Duration::from_secs(1), "took {took:?}");
        assert_eq!(u.cause, UnavailableCause::Absent);
        assert!(
            u.reason.contains(&lib.display().to_string()),
            "{}",
            u.reason
        );
        assert!(u.reason.contains("could not be loaded"), "{}", u.reason);
        assert!(u.reason.contains("no NVIDIA driver"), "{}", u.reason);
        if gpus == 0 {
            assert!(
                u.reason.contains("no NVIDIA GPU on the PCI bus"),
                "{}",
                u.reason
            );
            assert_eq!(u.fix, None);
        } else {
            assert!(
                u.reason.contains(&format!("shows {gpus} NVIDIA GPU(s)")),
                "{}",
                u.reason
            );
            let fix = u.fix.unwrap();
            assert!(fix.starts_with("install the NVIDIA driver"), "{fix}");
            assert!(!fix.contains("run as root"), "{fix}");
        }
    }
    let report = carina_probes::nvml::verify_library(&lib);
    assert!(report.starts_with("NVML check: FAILED\n"), "{report}");
    assert!(report.contains("could not be loaded"), "{report}");
}

#[cfg(not(feature = "nvml"))]
#[test]
fn without_the_feature_open_is_unavailable() {
    let u = unavailable(NvmlProbe::open().unwrap_err());
    assert_eq!(u.reason, "built without the `nvml` feature");
    assert_eq!(u.cause, UnavailableCause::Disabled);
    assert!(u.fix.unwrap().contains("`nvml` feature"));
    // The same whatever the library and whoever asks.
    let sys = pci_tree(1);
    for who in [USER, ROOT] {
        let u = unavailable(NvmlProbe::open_as("libnvidia-ml.so.1", sys.path(), &who).unwrap_err());
        assert_eq!(u.cause, UnavailableCause::Disabled);
    }
}

/// Row 6 of the table in issue 15 and the rest of the counter's failure modes: a counter that
/// becomes unsupported, or fails for good, is replaced by power samples (basis
/// `integrated-power`), a counter that fails briefly keeps its baseline, and the source's basis
/// follows the rule of the module documentation.
mod counter_lost {
    use super::*;
    use carina_runtime::record::Basis;

    /// A 100 W board: the counter reads 10 J per 0.1 s for `good` reads after the baseline,
    /// then `then` forever; power reads 100 W.
    fn board(good: u64, then: Reading<Option<u64>>) -> Fake {
        let fake = Fake::default();
        fake.add(0, "NVIDIA H100 80GB HBM3")
            .energy(
                0,
                (0..=good)
                    .map(|k| Ok(Some(k * 10_000)))
                    .chain(std::iter::once(then))
                    .collect(),
            )
            .power(0, vec![Ok(100_000)]);
        fake
    }

    /// Row 6: the counter becomes unsupported at 1.0 s of a 3 s run at 100 W. From then on the
    /// device integrates its power samples; the 0.1 s since the counter's last reading is
    /// bridged with the first sample.
    #[test]
    fn row_6_an_unsupported_counter_falls_back_to_power_samples() {
        let fake = board(9, Ok(None));
        let mut p = fake.probe();
        assert_eq!(p.describe().basis, Some(Basis::Counter));
        let mut all = carina_runtime::energy::ProbeReport::default();
        let mut got = 0.0;
        let mut switched_at = None;
        for n in 1..=30 {
            got = read(&mut p, f64::from(n) * 0.1)[0];
            let r = p.take_report();
            if !r.basis.is_empty() {
                switched_at.get_or_insert(n);
            }
            all.merge(r);
        }
        eprintln!(
            "row 6: truth 300 J, reported {got:.3} J, basis {:?}",
            all.basis
        );
        assert!((got - 300.0).abs() < 1e-6, "{got}");
        assert_eq!(all.basis, [(0, Basis::IntegratedPower)]);
        assert_eq!(switched_at, Some(10));
        assert_eq!(all.warnings.len(), 1, "{all:?}");
        let w = &all.warnings[0];
        assert!(
            w.starts_with("gpu-0 (NVIDIA H100 80GB HBM3): energy counter given up at 1.000 s"),
            "{w}"
        );
        assert!(w.contains("no longer supported"), "{w}");
        assert!(w.contains("integrating power samples from now on"), "{w}");
        assert!(!all.lower_bound);
        assert_eq!(all.read_errors, 0);
        assert!(
            p.describe()
                .source
                .contains("integrated from power samples")
        );
    }

    /// A counter that keeps failing for a second while the power answers is given up too; the
    /// failing reads are read errors, and the gap is bridged with the power sampled meanwhile.
    #[test]
    fn a_counter_failing_for_a_second_falls_back_to_power_samples() {
        let fake = board(9, Err("Unknown Error".into()));
        let mut p = fake.probe();
        let mut all = carina_runtime::energy::ProbeReport::default();
        let mut got = 0.0;
        for n in 1..=30 {
            got = read(&mut p, f64::from(n) * 0.1)[0];
            all.merge(p.take_report());
        }
        eprintln!("counter failing from 1.0 s: truth 300 J, reported {got:.3} J");
        assert!((got - 300.0).abs() < 1e-6, "{got}");
        assert_eq!(all.basis, [(0, Basis::IntegratedPower)]);
        // From 1.0 s to 1.9 s: ten failed reads; at 1.9 s the counter's last reading (0.9 s) is
        // a second old.
        assert_eq!(all.read_errors, 10);
        assert_eq!(p.failed_reads(), 10);
        assert!(
            all.warnings[0].starts_with("gpu-0: read failed at 1.000 s"),
            "{all:?}"
        );
        assert!(
            all.warnings
                .iter()
                .any(|w| w.contains("energy counter given up at 1.900 s")
                    && w.contains("has failed since its last reading at 0.900 s")),
            "{all:?}"
        );
    }

    /// Devices that integrate power from the start say so in the first report when the source
    /// says `counter`; a source whose every device integrates says `integrated-power` itself.
    #[test]
    fn the_basis_of_each_device_reaches_the_first_report() {
        let fake = Fake::default();
        fake.add(0, "NVIDIA A100-SXM4-40GB")
            .energy(0, (0..10).map(|k| Ok(Some(k * 1_000))).collect());
        fake.add(1, "Tesla K80")
            .energy(1, vec![Ok(None)])
            .power(1, vec![Ok(60_000)]);
        let mut p = fake.probe();
        assert_eq!(p.describe().basis, Some(Basis::Counter));
        read(&mut p, 0.1);
        assert_eq!(p.take_report().basis, [(1, Basis::IntegratedPower)]);
        read(&mut p, 0.2);
        assert!(p.take_report().basis.is_empty());

        let fake = Fake::default();
        fake.add(0, "Tesla K80")
            .energy(0, vec![Ok(None)])
            .power(0, vec![Ok(60_000)]);
        let mut p = fake.probe();
        assert_eq!(p.describe().basis, Some(Basis::IntegratedPower));
        read(&mut p, 0.1);
        assert!(p.take_report().is_empty());
    }

    /// A device unreadable at open counts as a read error in the first report, and its basis is
    /// reported once it answers.
    #[test]
    fn a_device_unreadable_at_open_reports_its_basis_when_it_answers() {
        let fake = Fake::default();
        fake.add(0, "late")
            .energy(0, vec![Err("busy".into()), Ok(None)])
            .power(0, vec![Err("busy".into()), Ok(50_000)]);
        let mut p = fake.probe();
        assert_eq!(p.describe().basis, Some(Basis::Counter));
        let r = p.take_report();
        assert_eq!(r.read_errors, 1);
        assert!(r.lower_bound);
        read(&mut p, 0.1);
        let r = p.take_report();
        assert_eq!(r.basis, [(0, Basis::IntegratedPower)]);
    }
}
