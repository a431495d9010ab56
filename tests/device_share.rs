//! Sources that know their users (GPUs) are shared by use, not by CPU time; a measured source
//! that stops advancing is reported.

use crate::common;

use carina::{EnergyKind, EnergyProbe, Joules, ProbeError, Scope, UsageShare};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Two 100 W "GPUs": the run uses `gpu-0` alone; `gpu-1` belongs to someone else.
struct FakeGpus {
    t0: Instant,
    seen_pids: Arc<Mutex<Vec<u32>>>,
}

impl EnergyProbe for FakeGpus {
    fn describe(&self) -> carina::record::EnergySource {
        let mut s = carina::record::EnergySource::new("fake-gpu", EnergyKind::Measured, "test");
        s.domains = vec!["gpu-0".into(), "gpu-1".into()];
        s
    }
    fn read(&mut self, r: &mut carina::Reading) -> Result<(), ProbeError> {
        let out = &mut r.energy;
        let j = 100.0 * self.t0.elapsed().as_secs_f64();
        out[0] = Joules(j);
        out[1] = Joules(j);
        Ok(())
    }
    fn knows_users(&self) -> bool {
        true
    }
    fn usage_share(&mut self, pids: &[u32], out: &mut [Option<UsageShare>]) {
        *self.seen_pids.lock().unwrap() = pids.to_vec();
        let ours = pids.contains(&std::process::id());
        out[0] = Some(UsageShare::by_use(if ours { 1.0 } else { 0.0 }));
        out[1] = Some(UsageShare::by_use(0.0));
    }
}

#[test]
fn a_gpu_the_run_uses_alone_is_all_the_runs_whatever_the_cpu_share() {
    let _s = common::serial();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (sink, _recs) = carina::sink::MemorySink::new();
    let run = carina::Run::builder("gpu")
        .run_file(false)
        .sink(sink)
        .scope(Scope::Process)
        .energy_probe(FakeGpus {
            t0: Instant::now(),
            seen_pids: seen.clone(),
        })
        .sample_interval(Duration::from_millis(20))
        .start()
        .unwrap();
    // The process barely uses the CPU (its CPU share of the host is small): a GPU job.
    std::thread::sleep(Duration::from_millis(600));
    let s = run.finish().unwrap();
    let wall = s.wall().0;
    assert!(
        (s.energy().0 - 100.0 * wall).abs() < 0.05 * 100.0 * wall,
        "run energy {} J = gpu-0 alone over {wall} s",
        s.energy().0
    );
    assert!(
        (s.host_energy().0 - 200.0 * wall).abs() < 0.05 * 200.0 * wall,
        "host {} J",
        s.host_energy().0
    );
    assert_eq!(*seen.lock().unwrap(), vec![std::process::id()]);
}

#[test]
fn host_scope_keeps_every_gpu() {
    let _s = common::serial();
    let (sink, _recs) = carina::sink::MemorySink::new();
    let run = carina::Run::builder("gpu")
        .run_file(false)
        .sink(sink)
        .scope(Scope::Host)
        .energy_probe(FakeGpus {
            t0: Instant::now(),
            seen_pids: Arc::default(),
        })
        .sample_interval(Duration::from_millis(20))
        .start()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let s = run.finish().unwrap();
    assert!((s.energy().0 - s.host_energy().0).abs() < 1e-9);
}

/// A measured counter that never moves (a virtual PMU reading 0).
struct Dead;

impl EnergyProbe for Dead {
    fn describe(&self) -> carina::record::EnergySource {
        let mut s = carina::record::EnergySource::new("dead-rapl", EnergyKind::Measured, "test");
        s.domains = vec!["psys".into()];
        s
    }
    fn read(&mut self, r: &mut carina::Reading) -> Result<(), ProbeError> {
        let out = &mut r.energy;
        out[0] = Joules::ZERO;
        Ok(())
    }
}

#[test]
fn a_counter_that_never_advances_is_reported() {
    let _s = common::serial();
    let (sink, _recs) = carina::sink::MemorySink::new();
    let run = carina::Run::builder("dead")
        .run_file(false)
        .sink(sink)
        .energy_probe(Dead)
        .sample_interval(Duration::from_millis(50))
        .start()
        .unwrap();
    common::spin(2_600_000);
    let s = run.finish().unwrap();
    let end = s.end.unwrap();
    assert!(
        end.warnings
            .iter()
            .any(|w| w.contains("dead-rapl") && w.contains("has not advanced")),
        "{:?}",
        end.warnings
    );
}

/// A 200 W GPU used only by this process: its energy is P x wall time since open.
struct WaitingGpu {
    t0: Instant,
}

impl EnergyProbe for WaitingGpu {
    fn describe(&self) -> carina::record::EnergySource {
        let mut s = carina::record::EnergySource::new("fake-gpu", EnergyKind::Measured, "test");
        s.domains = vec!["gpu-0".into()];
        s
    }
    fn read(&mut self, r: &mut carina::Reading) -> Result<(), ProbeError> {
        let out = &mut r.energy;
        out[0] = Joules(200.0 * self.t0.elapsed().as_secs_f64());
        Ok(())
    }
    fn knows_users(&self) -> bool {
        true
    }
    fn usage_share(&mut self, _pids: &[u32], out: &mut [Option<UsageShare>]) {
        out[0] = Some(UsageShare::by_use(1.0));
    }
}

/// The training loop of issue 15: a GPU step that only waits (kernels run asynchronously), a
/// logger burning 10 ms of CPU every 100 ms and a data loader burning CPU in its own steps.
/// By CPU time the logger took 205 J of 216 J; the GPU step must get the GPU's energy.
#[test]
fn a_waiting_gpu_step_gets_the_gpu_energy_not_the_cpu_burning_threads() {
    let _s = common::serial();
    let (sink, recs) = carina::sink::MemorySink::new();
    let run = carina::Run::builder("train")
        .run_file(false)
        .sink(sink)
        .scope(Scope::Process)
        .energy_probe(WaitingGpu { t0: Instant::now() })
        .sample_interval(Duration::from_millis(50))
        .start()
        .unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let spawn = |name: &'static str, busy_us: u64, idle_ms: u64| {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                {
                    let _g = carina::step(name);
                    common::spin(busy_us);
                }
                std::thread::sleep(Duration::from_millis(idle_ms));
            }
        })
    };
    let logger = spawn("log", 10_000, 90);
    let loader = spawn("load", 30_000, 5);
    for _ in 0..12 {
        let _g = carina::gpu_step("train_step");
        // Waiting for the GPU: no CPU.
        std::thread::sleep(Duration::from_millis(80));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    // The GPU step stays open while the helpers wind down, as a training loop's next step would.
    {
        let _g = carina::step("sync").gpu();
        logger.join().unwrap();
        loader.join().unwrap();
    }
    let s = run.finish().unwrap();
    let steps = recs.steps();
    let gpu_of = |name: &str| -> f64 {
        steps
            .iter()
            .filter(|r| r.name == name)
            .map(|r| r.energy_j.0)
            .sum()
    };
    let total = s.energy().0;
    let train = gpu_of("train_step") + gpu_of("sync");
    assert!(total > 100.0, "{total}");
    assert!(train >= 0.95 * total, "GPU steps {train} J of {total} J");
    assert_eq!(gpu_of("load"), 0.0);
    assert_eq!(gpu_of("log"), 0.0);
    assert!(
        steps
            .iter()
            .filter(|r| r.name == "train_step")
            .all(|r| r.gpu)
    );
    assert!(steps.iter().filter(|r| r.name == "sync").all(|r| r.gpu));
    let self_sum: f64 = steps.iter().map(|r| r.self_energy_j.0).sum();
    assert!(
        ((self_sum + s.unattributed().0) - total).abs() <= 1e-6 * total,
        "{self_sum} + {} vs {total}",
        s.unattributed().0
    );
    // The summary says how the GPU step's figure was split.
    let sum = s.summaries.iter().find(|x| x.name == "train_step").unwrap();
    assert!(sum.gpu);
    assert!(
        sum.method.as_deref().unwrap().contains("GPU-step overlap"),
        "{:?}",
        sum.method
    );
}
