//! Aggregator cost: how many step records it attributes per second with 16 threads' CPU samples
//! at 10 Hz, and what one sampling tick costs with 4 powercap zones and 16 threads.
//! Numbers and the command are in `benches/README.md`.

use carina_runtime::Joules;
use carina_runtime::attribution::{Attributor, Energy, StepDetail, Weights};
use carina_runtime::recorder::{Event, Status};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;

const THREADS: u32 = 16;
/// Steps per thread per 100 ms interval: 16 x 4096 = 65 536 steps per interval.
const STEPS_PER_INTERVAL: u64 = 4096;
const INTERVAL_NS: u64 = 100_000_000;

/// Pre-built events for one interval: each thread runs a `batch` step containing `item` steps.
fn interval_events(k: u64) -> Vec<Vec<Event>> {
    let base = k * INTERVAL_NS;
    let spacing = INTERVAL_NS / (STEPS_PER_INTERVAL + 2);
    (0..THREADS)
        .map(|th| {
            let mut v = Vec::with_capacity(2 * STEPS_PER_INTERVAL as usize + 2);
            v.push(Event::Enter {
                name: "batch",
                t: base + u64::from(th),
                async_id: 0,
            });
            for i in 0..STEPS_PER_INTERVAL {
                let t = base + (i + 1) * spacing;
                v.push(Event::Enter {
                    name: "item",
                    t,
                    async_id: 0,
                });
                v.push(Event::Exit {
                    t: t + spacing / 2,
                    items: 1,
                    status: Status::Ok,
                    done: true,
                });
            }
            v.push(Event::Exit {
                t: base + INTERVAL_NS - 1,
                items: STEPS_PER_INTERVAL,
                status: Status::Ok,
                done: true,
            });
            v
        })
        .collect()
}

fn attribute(c: &mut Criterion) {
    let mut g = c.benchmark_group("attribution");
    g.measurement_time(Duration::from_secs(5));
    let steps_per_interval = u64::from(THREADS) * (STEPS_PER_INTERVAL + 1);
    g.throughput(Throughput::Elements(steps_per_interval));
    let intervals: Vec<Vec<Vec<Event>>> = (0..8).map(interval_events).collect();
    let mut energy = Energy::total_only(Joules(25.0));
    energy.add_domain(0, Joules(20.0));
    energy.add_domain(1, Joules(5.0));
    for (label, detail) in [
        ("records_all", StepDetail::All),
        ("summaries_only", StepDetail::Summary),
    ] {
        g.bench_function(format!("interval_16_threads_{label}"), |b| {
            let mut a = Attributor::new(detail, 1 << 22)
                .with_tick(INTERVAL_NS)
                .with_domains(vec!["package-0".into(), "dram-0".into()])
                .with_band(true);
            for th in 0..THREADS {
                a.add_thread(th);
            }
            let mut k = 0u64;
            let mut moved: Vec<Event> = Vec::with_capacity(2 * STEPS_PER_INTERVAL as usize + 2);
            b.iter(|| {
                // Shift the prepared interval to its place in time.
                let evs = &intervals[(k % 8) as usize];
                let shift = (k / 8) * 8 * INTERVAL_NS;
                for (th, list) in evs.iter().enumerate() {
                    moved.clear();
                    moved.extend(list.iter().map(|e| {
                        let mut e = *e;
                        *e.time_mut() += shift;
                        e
                    }));
                    a.on_events(th as u32, &moved);
                }
                k += 1;
                let w = Weights::Cpu {
                    process_ns: INTERVAL_NS * 2,
                    threads: (0..THREADS).map(|t| (t, INTERVAL_NS / 8)).collect(),
                    unmarked_ns: 0,
                };
                a.close_interval(k * INTERVAL_NS, &energy.into(), &w);
                black_box(a.take_records().count())
            })
        });
    }
    g.finish();
}

/// One sampling tick's reads, as the session does them: every probe, the process share of host
/// CPU from /proc, the process CPU clock and every registered thread's CPU clock.
fn sampler_tick(c: &mut Criterion) {
    use carina_probes::powercap::PowercapProbe;
    use carina_runtime::cpuclock::{ThreadCpuClock, process_ns};
    use carina_runtime::sampler::Sampler;
    use carina_runtime::share::CpuShare;

    let tmp = tempfile::tempdir().unwrap();
    for (zone, name) in [
        ("intel-rapl:0", "package-0"),
        ("intel-rapl:0/intel-rapl:0:0", "dram"),
        ("intel-rapl:1", "package-1"),
        ("intel-rapl:1/intel-rapl:1:0", "dram"),
    ] {
        let d = tmp.path().join(zone);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("name"), format!("{name}\n")).unwrap();
        std::fs::write(d.join("energy_uj"), "123456789\n").unwrap();
        std::fs::write(d.join("max_energy_range_uj"), "262143328850\n").unwrap();
    }
    let probe = PowercapProbe::open(tmp.path()).unwrap();
    assert_eq!(probe.domains().len(), 4);
    // The sampler a run's aggregator uses: the probe, the process share, the method accounts.
    let mut sampler = Sampler::new(
        vec![Box::new(probe)],
        carina_runtime::Scope::Process,
        CpuShare::new("/proc"),
    );
    let mut tick = 0u64;

    let (tx, rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let stop_rx = std::sync::Arc::new(std::sync::Mutex::new(stop_rx));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let tx = tx.clone();
            let stop = stop_rx.clone();
            std::thread::spawn(move || {
                tx.send(ThreadCpuClock::current().unwrap()).unwrap();
                let _ = stop.lock().unwrap().recv();
            })
        })
        .collect();
    let clocks: Vec<ThreadCpuClock> = (0..THREADS).map(|_| rx.recv().unwrap()).collect();

    let mut g = c.benchmark_group("sampler_tick");
    g.bench_function("powercap_4_zones_16_thread_clocks", |b| {
        b.iter(|| {
            tick += 100_000_000;
            let s = sampler.sample(tick);
            let p = process_ns();
            let t: u64 = clocks.iter().filter_map(|c| c.read_ns()).sum();
            black_box((s.energy.sum().total(), p, t))
        })
    });
    g.bench_function("thread_clocks_only_16", |b| {
        b.iter(|| black_box(clocks.iter().filter_map(|c| c.read_ns()).sum::<u64>()))
    });
    g.finish();
    for _ in 0..THREADS {
        let _ = stop_tx.send(());
    }
    drop(stop_tx);
    for t in threads {
        t.join().unwrap();
    }
}

criterion_group!(benches, attribute, sampler_tick);
criterion_main!(benches);
