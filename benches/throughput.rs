//! Sustained throughput: two threads record steps spaced at least 200 ns apart (busy work
//! between steps), for a fixed number of steps, while the aggregator attributes them. Reports
//! time per step and, on stderr, how many were dropped (the goal is 0).

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::{Duration, Instant};

fn spin_ns(ns: u64) {
    let t = Instant::now();
    while (t.elapsed().as_nanos() as u64) < ns {
        black_box(());
    }
}

fn two_threads(steps_per_thread: u64, gap_ns: u64, with_steps: bool) -> Duration {
    let start = Instant::now();
    let hs: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(move || {
                for _ in 0..steps_per_thread {
                    if with_steps {
                        let mut g = carina::step("unit");
                        g.add_items(1);
                    }
                    spin_ns(gap_ns);
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("throughput_2_threads");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(5));
    const N: u64 = 200_000;
    for (label, detail) in [
        ("summary", carina::StepDetail::Summary),
        ("all_records", carina::StepDetail::All),
    ] {
        g.bench_function(format!("baseline_gap_200ns_{label}"), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| two_threads(N, 200, false)).sum())
        });
        let dir = tempfile::tempdir().unwrap();
        let run = carina::Run::builder("throughput")
            .output_dir(dir.path())
            .steps(detail)
            .start()
            .expect("start");
        g.bench_function(format!("steps_gap_200ns_{label}"), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| two_threads(N, 200, true)).sum())
        });
        let s = run.finish().expect("finish");
        eprintln!(
            "throughput ({label}): {} steps recorded, {} dropped, {} summarised only",
            s.steps(),
            s.dropped(),
            s.records_not_written()
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
