//! A training loop whose steps launch GPU work, recorded with Carina: how to mark GPU steps.
//!
//! ```text
//! cargo run --release --example train_gpu -- --steps 60
//! cargo run --release --example train_gpu -- --steps 60 --sync-hook
//! ```
//!
//! A GPU training step mostly *waits*: it queues kernels, which run asynchronously on the
//! device, and then blocks in a synchronisation (reading the loss). Meanwhile a data-loader
//! thread and a logger burn CPU. Split by CPU time, the GPU's energy would land on the loader
//! and the logger; marked as a GPU step (`#[carina::step(gpu)]`, `carina::gpu_step(..)` or
//! `carina::step(..).gpu()`), the training step gets the GPU's energy of every sampling interval
//! it was open in, whatever its CPU time (`docs/ENERGY.md`, "GPU energy inside a run").
//!
//! So that this runs on any machine, the GPU is simulated: a device thread executes queued
//! "kernels" (it sleeps for their duration, as a real GPU leaves the host CPU idle), and an
//! energy probe reports its energy at 60 W idle and 300 W busy as domain `gpu-0`, added next
//! to the detected CPU source with `RunBuilder::extra_probe`. On a machine with an NVIDIA GPU,
//! NVML is detected and measured instead: mark your real training step the same way.
//!
//! `--sync-hook` installs `RunBuilder::on_step_exit` with the device's synchronisation, so that
//! every step (also unmarked ones) ends only when the kernels it queued have finished: use it
//! when a step returns before its kernels end (no `.item()`, no `synchronize()` in it) and the
//! per-step figures matter more than the overlap of CPU and GPU work.

use carina::record::{Basis, EnergySource};
use carina::{EnergyKind, EnergyProbe, Joules, ProbeError, Reading, UsageShare};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

const HELP: &str = "\
train_gpu: a training loop with GPU steps, a data loader and a logger, recorded with Carina

USAGE:
    cargo run --release --example train_gpu -- [OPTIONS]

OPTIONS:
    --steps N      training steps (default 60)
    --batch B      samples per batch (default 256)
    --sync-hook    end every step only when its kernels have finished (on_step_exit)
    -h, --help     print this help

Run files go to $CARINA_DIR or ./carina-runs.";

/// Simulated board power, watts.
const IDLE_W: f64 = 60.0;
const BUSY_W: f64 = 300.0;

/// A simulated GPU: kernels run one after another on a device thread; the host only queues them.
struct Device {
    queue: SyncSender<Duration>,
    /// Kernels queued and not finished.
    pending: Mutex<u64>,
    idle: Condvar,
    busy_ns: AtomicU64,
    opened: Instant,
}

static DEVICE: OnceLock<Arc<Device>> = OnceLock::new();

impl Device {
    fn start() -> Arc<Device> {
        let (queue, kernels) = sync_channel::<Duration>(1024);
        let dev = Arc::new(Device {
            queue,
            pending: Mutex::new(0),
            idle: Condvar::new(),
            busy_ns: AtomicU64::new(0),
            opened: Instant::now(),
        });
        let d = dev.clone();
        std::thread::Builder::new()
            .name("simulated-gpu".into())
            .spawn(move || d.execute(kernels))
            .expect("spawn the simulated GPU thread");
        dev
    }

    /// The device's side: runs kernels in order. Sleeping, not spinning: a GPU kernel costs the
    /// host no CPU.
    fn execute(&self, kernels: Receiver<Duration>) {
        for k in kernels {
            std::thread::sleep(k);
            self.busy_ns
                .fetch_add(k.as_nanos() as u64, Ordering::Relaxed);
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            *p -= 1;
            if *p == 0 {
                self.idle.notify_all();
            }
        }
    }

    /// Queues a kernel and returns at once, as a CUDA launch does.
    fn launch(&self, duration: Duration) {
        *self.pending.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        let _ = self.queue.send(duration);
    }

    /// Waits until every queued kernel has finished (`cudaDeviceSynchronize`).
    fn synchronize(&self) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        while *p > 0 {
            p = self.idle.wait(p).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Energy since the device started: idle power all the time, busy power while a kernel ran.
    fn energy_j(&self) -> f64 {
        let t = self.opened.elapsed().as_secs_f64();
        let busy = self.busy_ns.load(Ordering::Relaxed) as f64 / 1e9;
        IDLE_W * t + (BUSY_W - IDLE_W) * busy
    }
}

/// The simulated GPU as an energy source: one domain, `gpu-0`, used only by this process.
struct SimulatedGpu(Arc<Device>);

impl EnergyProbe for SimulatedGpu {
    fn describe(&self) -> EnergySource {
        EnergySource::new(
            "simulated-gpu",
            EnergyKind::Estimated,
            format!("examples/train_gpu.rs: {IDLE_W} W idle, {BUSY_W} W while a kernel runs"),
        )
        .with_basis(Basis::Model)
        .with_domains(["gpu-0"])
    }
    fn read(&mut self, r: &mut Reading) -> Result<(), ProbeError> {
        if let Some(o) = r.energy.first_mut() {
            *o = Joules(self.0.energy_j());
        }
        Ok(())
    }
    fn knows_users(&self) -> bool {
        true
    }
    fn usage_share(&mut self, _pids: &[u32], out: &mut [Option<UsageShare>]) {
        // Only this process uses the simulated device.
        if let Some(o) = out.first_mut() {
            *o = Some(UsageShare::by_use(1.0));
        }
    }
}

fn sync_hook() {
    if let Some(d) = DEVICE.get() {
        d.synchronize();
    }
}

/// One training step: forward, backward and optimizer kernels, then reading the loss, which
/// waits for them. A GPU step: its thread spends nearly all of it waiting.
#[carina::step(name = "train_step", gpu, items = batch.len())]
fn train_step(dev: &Device, batch: &[f32]) -> f32 {
    dev.launch(Duration::from_millis(6)); // forward
    dev.launch(Duration::from_millis(11)); // backward
    dev.launch(Duration::from_millis(3)); // optimizer
    dev.synchronize(); // loss.item()
    batch.iter().sum::<f32>() / batch.len().max(1) as f32
}

/// Decodes and augments one batch on the CPU.
#[carina::step(name = "load_batch", items = n)]
fn load_batch(n: usize, seed: u64) -> Vec<f32> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            // A little work per sample, as decoding and augmentation would be.
            let mut acc = 0.0f32;
            for _ in 0..2_000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                acc += (x >> 40) as f32 * 1e-7;
            }
            acc
        })
        .collect()
}

/// Formats and "writes" the metrics: burns about 10 ms of CPU every 100 ms.
fn logger(stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        {
            let _g = carina::step("log_metrics");
            let until = Instant::now() + Duration::from_millis(10);
            let mut s = String::new();
            while Instant::now() < until {
                s.clear();
                for i in 0..64 {
                    s.push_str(&format!("{i}:{:.3} ", i as f64 / 7.0));
                }
                std::hint::black_box(&s);
            }
        }
        std::thread::sleep(Duration::from_millis(90));
    }
}

struct Args {
    steps: usize,
    batch: usize,
    sync_hook: bool,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut args = Args {
        steps: 60,
        batch: 256,
        sync_hook: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |flag: &str| -> Result<usize, String> {
            let v = it
                .next()
                .ok_or_else(|| format!("{flag} needs a value (try --help)"))?;
            v.parse::<usize>()
                .ok()
                .filter(|n| (1..=1_000_000).contains(n))
                .ok_or_else(|| {
                    format!("{flag} expects a whole number from 1 to 1000000, got `{v}`")
                })
        };
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--steps" => args.steps = value("--steps")?,
            "--batch" => args.batch = value("--batch")?,
            "--sync-hook" => args.sync_hook = true,
            _ => return Err(format!("unknown argument `{arg}` (try --help)")),
        }
    }
    Ok(Some(args))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("train_gpu: {e}");
            return ExitCode::from(2);
        }
    };
    let dev = DEVICE.get_or_init(Device::start).clone();
    let mut builder = carina::Run::builder("train-gpu").extra_probe(SimulatedGpu(dev.clone()));
    if args.sync_hook {
        builder = builder.on_step_exit(sync_hook);
    }
    let run = match builder.start() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("train_gpu: cannot start the Carina run: {e}");
            return ExitCode::FAILURE;
        }
    };

    let stop = Arc::new(AtomicBool::new(false));
    let log = {
        let stop = stop.clone();
        std::thread::spawn(move || logger(stop))
    };
    let (batches, ready) = sync_channel::<Vec<f32>>(4);
    let (steps, size) = (args.steps, args.batch);
    let loader = std::thread::spawn(move || {
        for i in 0..steps {
            if batches.send(load_batch(size, i as u64)).is_err() {
                break;
            }
        }
    });
    let t0 = Instant::now();
    let mut loss = 0.0;
    for batch in ready.iter() {
        loss = train_step(&dev, &batch);
    }
    stop.store(true, Ordering::Relaxed);
    let _ = loader.join();
    let _ = log.join();
    let elapsed = t0.elapsed();

    let summary = match run.finish() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("train_gpu: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "train_gpu: {steps} steps of {size} samples in {:.2} s (last batch mean {loss:.4})",
        elapsed.as_secs_f64()
    );
    print!("{summary}");
    // Where the GPU's energy went, by step name.
    println!("GPU energy (gpu-0) by step:");
    let gpu_total: f64 = summary
        .end
        .as_ref()
        .and_then(|e| e.energy_by_domain.as_ref())
        .and_then(|d| d.get("gpu-0"))
        .map_or(0.0, |j| j.0);
    for s in &summary.summaries {
        let j = s
            .energy_by_domain
            .as_ref()
            .and_then(|d| d.get("gpu-0"))
            .map_or(0.0, |j| j.0);
        let pct = if gpu_total > 0.0 {
            100.0 * j / gpu_total
        } else {
            0.0
        };
        println!("  {:<12} {:>9.2} J  {pct:5.1} %", s.name, j);
    }
    for w in &summary.warnings {
        eprintln!("carina: {w}");
    }
    ExitCode::SUCCESS
}
