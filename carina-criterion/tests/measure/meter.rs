//! The meter over fake probes and a fake /proc; then over this machine's real sources.

use crate::common::{ConstantProbe, FakeClock, write_proc};
use carina_criterion::EnergyMeter;
use carina_runtime::cpuclock;
use carina_runtime::{EnergyKind, EnergyProbe, ProbeScope, Scope};
use std::time::{Duration, Instant};

fn close(a: impl Into<f64>, b: impl Into<f64>) -> bool {
    let (a, b): (f64, f64) = (a.into(), b.into());
    (a - b).abs() < 1e-9 * b.abs().max(1.0)
}

fn boxed(p: ConstantProbe) -> Vec<Box<dyn EnergyProbe>> {
    vec![Box::new(p)]
}

#[test]
fn host_scope_is_watts_times_elapsed() {
    let dir = tempfile::tempdir().unwrap();
    write_proc(dir.path(), 0, 0);
    let clock = FakeClock::default();
    let mut m = EnergyMeter::with_probes(
        boxed(ConstantProbe::host(50.0, &clock)),
        dir.path(),
        Scope::Host,
    );
    // Measured sources in host scope: every read is full and exact.
    assert_eq!(m.min_interval(), Duration::ZERO);
    assert_eq!(m.kind(), EnergyKind::Measured);
    clock.set_ms(2000);
    let r = m.read_at(Duration::from_millis(2000));
    assert!(close(r, 100.0), "{r}");
    clock.set_ms(3500);
    let r = m.read_at(Duration::from_millis(3500));
    assert!(close(r, 175.0), "{r}");
    assert!(close(m.host_total(), 175.0));
    // The process's CPU share does not matter in host scope.
    write_proc(dir.path(), 100, 1);
    clock.set_ms(4500);
    assert!(close(m.read_at(Duration::from_millis(4500)), 225.0));
}

#[test]
fn host_scope_with_a_real_clock() {
    let dir = tempfile::tempdir().unwrap();
    write_proc(dir.path(), 0, 0);
    let p = ConstantProbe {
        watts: 50.0,
        scope: ProbeScope::Host,
        kind: EnergyKind::Measured,
        time: crate::common::Time::Real(Instant::now()),
    };
    let mut m = EnergyMeter::with_probes(boxed(p), dir.path(), Scope::Host);
    let t0 = Instant::now();
    let a = m.read();
    std::thread::sleep(Duration::from_millis(40));
    let b = m.read();
    let dt = t0.elapsed().as_secs_f64();
    let e = b - a;
    // 50 W x the time between the two reads (at most the time measured around them).
    assert!(
        e > 50.0 * 0.039 && e <= 50.0 * dt + 1e-9,
        "{e} J over {dt} s"
    );
}

#[test]
fn process_scope_takes_the_share_of_each_interval() {
    let dir = tempfile::tempdir().unwrap();
    write_proc(dir.path(), 0, 0);
    let clock = FakeClock::default();
    let mut m = EnergyMeter::with_probes(
        boxed(ConstantProbe::host(50.0, &clock)),
        dir.path(),
        Scope::Process,
    )
    .with_min_interval(Duration::ZERO);
    // Interval 1: the host was busy 100 ticks, this process 25: a quarter of 100 J.
    clock.set_ms(2000);
    write_proc(dir.path(), 100, 25);
    let r = m.read_at(Duration::from_millis(2000));
    assert!(close(r, 25.0), "{r}");
    // Interval 2: 100 more host ticks, 75 of them ours: 0.75 x 100 J, not the overall 0.5.
    clock.set_ms(4000);
    write_proc(dir.path(), 200, 100);
    let r = m.read_at(Duration::from_millis(4000));
    assert!(close(r, 100.0), "{r}");
    assert!(close(m.exact(), 100.0));
    assert!(close(m.host_total(), 200.0));
    // Interval 3: the process used no CPU: nothing.
    clock.set_ms(5000);
    write_proc(dir.path(), 300, 100);
    assert!(close(m.read_at(Duration::from_millis(5000)), 100.0));
    // Interval 4: the process ran, the host counter did not move: the process gets it all.
    clock.set_ms(6000);
    write_proc(dir.path(), 300, 101);
    assert!(close(m.read_at(Duration::from_millis(6000)), 150.0));
    assert!(m.take_warnings().is_empty());
}

#[test]
fn a_process_scoped_probe_is_never_reduced() {
    let dir = tempfile::tempdir().unwrap();
    write_proc(dir.path(), 0, 0);
    let clock = FakeClock::default();
    let mut p = ConstantProbe::host(10.0, &clock);
    p.scope = ProbeScope::Process;
    p.kind = EnergyKind::Estimated;
    let mut m = EnergyMeter::with_probes(boxed(p), dir.path(), Scope::Process)
        .with_min_interval(Duration::ZERO);
    assert_eq!(m.kind(), EnergyKind::Estimated);
    clock.set_ms(1000);
    write_proc(dir.path(), 100, 10);
    assert!(close(m.read_at(Duration::from_secs(1)), 10.0));
}

#[test]
fn short_reads_are_priced_by_cpu_time() {
    let dir = tempfile::tempdir().unwrap();
    write_proc(dir.path(), 0, 0);
    let clock = FakeClock::default();
    let mut m = EnergyMeter::with_probes(
        boxed(ConstantProbe::host(50.0, &clock)),
        dir.path(),
        Scope::Process,
    );
    // Process scope: reads closer than 100 ms to the last full read are priced.
    assert_eq!(m.min_interval(), Duration::from_millis(100));
    let at = |m: &mut EnergyMeter, clock: &FakeClock, ms: u64, busy: u64, own: u64| {
        clock.set_ms(ms);
        write_proc(dir.path(), busy, own);
        m.read_at(Duration::from_millis(ms))
    };
    // No price yet: full and exact. Share 1: 50 W x 50 ms.
    assert!(close(at(&mut m, &clock, 50, 5, 5), 2.5));
    // The first 100 ms window (busy all the time): exact 5 J, price 5 J per 10 ticks of CPU.
    assert!(close(at(&mut m, &clock, 100, 10, 10), 5.0));
    assert_eq!(m.read_counts(), (2, 2));
    // 50 ms later, 5 ticks of our CPU: priced, no probe read.
    assert!(close(at(&mut m, &clock, 150, 15, 15), 7.5));
    assert_eq!(m.read_counts(), (3, 2));
    // Full at 200 ms: others took half the host's CPU, so the window's exact share is 0.5
    // (2.5 J, exact 7.5 J) while the price says 10 J. The reading follows the price (continuous);
    // the next window is priced at 2.5 J per 10 ticks.
    assert!(close(at(&mut m, &clock, 200, 30, 20), 10.0));
    assert!(close(m.exact(), 7.5));
    assert!(close(at(&mut m, &clock, 250, 45, 25), 11.25));
    // A window in which the process hardly ran (1 tick in 100 ms) leaves the price alone, though
    // its exact share is 1 (the host counter did not move).
    assert!(close(at(&mut m, &clock, 300, 50, 30), 12.5));
    assert!(close(at(&mut m, &clock, 400, 50, 31), 12.75));
    assert!(close(m.exact(), 7.5 + 2.5 + 5.0));
    assert!(close(at(&mut m, &clock, 450, 50, 41), 15.25));
    assert!(close(m.host_total(), 20.0));
    assert_eq!(m.read_counts(), (8, 5));
}

#[test]
fn host_scope_prices_by_wall_time_when_estimated() {
    let dir = tempfile::tempdir().unwrap();
    write_proc(dir.path(), 0, 0);
    let clock = FakeClock::default();
    let mut p = ConstantProbe::host(50.0, &clock);
    p.kind = EnergyKind::Estimated;
    let mut m = EnergyMeter::with_probes(boxed(p), dir.path(), Scope::Host);
    assert_eq!(m.min_interval(), Duration::from_millis(100));
    for ms in (10..=1000).step_by(10) {
        clock.set_ms(ms);
        let r = m.read_at(Duration::from_millis(ms));
        assert!(close(r, 0.05 * ms as f64), "{ms} ms: {r}");
    }
    assert_eq!(m.read_counts().1, 19);
}

#[test]
fn describe_gives_a_models_machine_watts_with_their_unit_once() {
    struct Model;
    impl EnergyProbe for Model {
        fn describe(&self) -> carina_runtime::EnergySource {
            let mut s = carina_runtime::EnergySource::new("model", EnergyKind::Estimated, "table");
            s.domains = vec!["cpu".into(), "memory".into()];
            s.idle_w = Some(carina_runtime::Watts(10.5));
            s.max_w = Some(carina_runtime::Watts(17.25));
            s
        }
        fn read(
            &mut self,
            _: &mut carina_runtime::energy::Reading,
        ) -> Result<(), carina_runtime::ProbeError> {
            Ok(())
        }
    }
    let dir = tempfile::tempdir().unwrap();
    write_proc(dir.path(), 0, 0);
    let m = EnergyMeter::with_probes(vec![Box::new(Model)], dir.path(), Scope::Process);
    assert_eq!(
        m.describe(),
        "estimated energy from model (cpu, memory; 10.50 W idle, 17.25 W busy), process scope \
         (share of host CPU time), full reads every >= 100 ms, priced by CPU time between"
    );
}

#[test]
fn a_failing_probe_counts_zero_and_warns() {
    struct Broken;
    impl EnergyProbe for Broken {
        fn describe(&self) -> carina_runtime::EnergySource {
            let mut s =
                carina_runtime::EnergySource::new("broken", EnergyKind::Measured, "nothing");
            s.domains = vec!["package-0".into()];
            s
        }
        fn read(
            &mut self,
            _: &mut carina_runtime::energy::Reading,
        ) -> Result<(), carina_runtime::ProbeError> {
            Err(carina_runtime::ProbeError::Unavailable("gone".into()))
        }
    }
    let dir = tempfile::tempdir().unwrap();
    write_proc(dir.path(), 0, 0);
    let mut m = EnergyMeter::with_probes(vec![Box::new(Broken)], dir.path(), Scope::Host);
    assert_eq!(m.read_at(Duration::from_secs(1)), 0.0);
    let w = m.take_warnings();
    assert!(
        w.iter().any(|w| w.contains("broken") && w.contains("gone")),
        "{w:?}"
    );
}

/// Spins for `d` of wall time.
fn busy(d: Duration) -> u64 {
    let t = Instant::now();
    let mut x = 1u64;
    while t.elapsed() < d {
        x = spin_a_little(x);
    }
    x
}

/// Spins until this thread has run for `d` of CPU time. On a loaded machine that takes longer
/// than `d` of wall time, but the meter (which counts CPU time) sees the same work as on an idle
/// one, where a wall-time loop may get almost none of it.
fn busy_cpu(d: Duration) -> u64 {
    let cpu_ns = || cpuclock::this_thread_ns().expect("this thread's CPU clock");
    let until = cpu_ns() + u64::try_from(d.as_nanos()).unwrap();
    let mut x = 1u64;
    while cpu_ns() < until {
        x = spin_a_little(x);
    }
    x
}

fn spin_a_little(mut x: u64) -> u64 {
    for i in 0..1000u64 {
        x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i));
    }
    x
}

#[test]
fn a_busy_loop_on_this_machine_costs_energy() {
    let mut m = EnergyMeter::detect(Scope::Process);
    eprintln!("{}", m.describe());
    let a = m.read();
    busy_cpu(Duration::from_millis(50));
    let b = m.read();
    let e = b - a;
    eprintln!("50 ms busy loop: {e:.6} J ({:?})", m.kind());
    assert!(e > 0.0, "{e}");
    // Exact mode too: every read full.
    let mut m = EnergyMeter::detect(Scope::Process).with_min_interval(Duration::ZERO);
    let a = m.read();
    busy_cpu(Duration::from_millis(50));
    let e = m.read() - a;
    assert!(e > 0.0, "{e}");
}

#[test]
fn short_samples_of_a_busy_loop_are_never_zero() {
    let mut m = EnergyMeter::detect(Scope::Process);
    // A first window sets the price, if this process ran at least a fifth of it. A loaded
    // machine may give it less: then the next window tries again.
    let t = Instant::now();
    loop {
        m.read();
        busy_cpu(Duration::from_millis(120));
        m.read();
        // Right after a full read, a priced read is not full.
        let full = m.read_counts().1;
        m.read();
        if m.read_counts().1 == full {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "in 2 minutes, no window of 120 ms of CPU had this process busy a fifth of the time"
        );
    }
    let mut samples = Vec::new();
    for _ in 0..50 {
        let a = m.read();
        busy(Duration::from_millis(2));
        samples.push(m.read() - a);
    }
    assert!(samples.iter().all(|&e| e > 0.0), "{samples:?}");
    let mean = samples.iter().sum::<f64>() / samples.len() as f64;
    eprintln!(
        "2 ms busy samples: mean {:.3} mJ, min {:.3} mJ, max {:.3} mJ ({:?}; reads {:?})",
        mean * 1e3,
        samples.iter().cloned().fold(f64::INFINITY, f64::min) * 1e3,
        samples.iter().cloned().fold(0.0, f64::max) * 1e3,
        m.kind(),
        m.read_counts()
    );
}

/// `cargo test --release -p carina-criterion --test main -- --ignored --nocapture read_cost`
#[test]
#[ignore = "prints timings"]
fn read_cost() {
    let mut m = EnergyMeter::detect(Scope::Process).with_min_interval(Duration::ZERO);
    let n = 2000;
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(m.read());
    }
    let full = t.elapsed() / n;
    let mut m = EnergyMeter::detect(Scope::Process);
    m.read();
    busy(Duration::from_millis(110));
    m.read();
    let (_, full0) = m.read_counts();
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(m.read());
    }
    let priced = t.elapsed() / n;
    let (_, full1) = m.read_counts();
    eprintln!(
        "{}\nfull read: {full:?}; priced read: {priced:?} ({} full reads among {n})",
        m.describe(),
        full1 - full0
    );
}

/// A steady busy loop read every millisecond for 2 s: the priced reading against the exact
/// attribution of the same full reads.
#[test]
fn the_priced_reading_follows_the_exact_attribution() {
    let mut m = EnergyMeter::detect(Scope::Process);
    let t = Instant::now();
    let mut reading;
    loop {
        busy(Duration::from_millis(1));
        let before = m.read_counts().1;
        reading = m.read();
        // Stop at a full read, where the exact attribution is up to date.
        if t.elapsed() >= Duration::from_secs(2) && m.read_counts().1 > before {
            break;
        }
    }
    let exact = m.exact();
    eprintln!(
        "2 s busy, read every 1 ms: reading {reading:.4} J, exact {exact:.4} J ({:+.1} %), \
         reads {:?}",
        (reading / exact - 1.0) * 100.0,
        m.read_counts()
    );
    assert!(reading > 0.5 * exact && reading < 1.5 * exact);
}
