//! Cost of one step (enter + exit + hand-off to the aggregator), next to a bare baseline of two
//! TSC reads and to `tracing` spans, in one run. See `benches/README.md` for the numbers.
//!
//! Steps with a run installed are timed in chunks that fit the thread's ring; between chunks
//! (untimed) the aggregator drains it. That measures the accepted-event path, which is what an
//! application pays when the aggregator keeps up, and not the cheaper drop path.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::{Duration, Instant};

const CHUNK: u64 = 8_192;

#[inline(never)]
#[carina::step(name = "bench_fn")]
fn stepped_fn(x: u64) -> u64 {
    black_box(x)
}

/// Times `iters` calls of `f` in chunks, letting the aggregator drain between chunks.
fn chunked(iters: u64, mut f: impl FnMut(u64)) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let n = CHUNK.min(iters - done);
        let t = Instant::now();
        for i in 0..n {
            f(i);
        }
        total += t.elapsed();
        done += n;
        std::thread::sleep(Duration::from_millis(3));
    }
    total
}

fn bench(c: &mut Criterion) {
    let clock = carina_core::clock::Clock::new();
    let mut g = c.benchmark_group("step_overhead");
    g.measurement_time(Duration::from_secs(3));
    g.warm_up_time(Duration::from_millis(500));

    g.bench_function("baseline_two_tsc_reads", |b| {
        b.iter(|| {
            let a = clock.raw();
            let z = clock.raw();
            black_box((a, z))
        })
    });

    g.bench_function("step_no_run_installed", |b| {
        b.iter(|| {
            let s = carina::step("idle");
            black_box(&s);
        })
    });

    {
        let _sub = tracing::subscriber::set_default(tracing_subscriber::registry());
        g.bench_function("tracing_new_span_per_iteration", |b| {
            b.iter(|| {
                let span = tracing::info_span!("work");
                let _e = span.enter();
            })
        });
        let span = tracing::info_span!("existing");
        g.bench_function("tracing_enter_existing_span", |b| {
            b.iter(|| {
                let _e = span.enter();
            })
        });
    }

    let run = carina::Run::builder("bench")
        .run_file(false)
        .steps(carina::StepDetail::Summary)
        .constant_watts(1.0)
        // A 1 ms tick bounds the aggregator's sleep, so the 3 ms pause between chunks always
        // lets it drain the ring.
        .sample_interval(Duration::from_millis(1))
        .start()
        .expect("start run");
    g.bench_function("carina_step_guard", |b| {
        b.iter_custom(|iters| {
            chunked(iters, |i| {
                let mut s = carina::step("work");
                s.add_items(black_box(i));
            })
        })
    });
    g.bench_function("carina_step_attribute_fn", |b| {
        b.iter_custom(|iters| {
            chunked(iters, |i| {
                black_box(stepped_fn(i));
            })
        })
    });
    g.bench_function("baseline_two_tsc_reads_chunked", |b| {
        b.iter_custom(|iters| {
            chunked(iters, |_| {
                let a = clock.raw();
                let z = clock.raw();
                black_box((a, z));
            })
        })
    });
    g.finish();
    let s = run.finish().expect("finish");
    eprintln!(
        "carina steps recorded: {}, dropped: {} (must be 0 for the guard numbers to be the accepted path)",
        s.steps(),
        s.dropped()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
