//! Cost of one `tracing` span (new span + enter + exit + close) with a plain `Registry`, with
//! `CarinaLayer` and no run, with `CarinaLayer` and a run installed, next to a plain
//! `carina::step` guard, all in one run; and a span inside a parent span, with and without the
//! layer. Numbers in `benches/README.md`.
//!
//! Every case is timed in chunks that fit the thread's ring (65 536 events; a span pushes four:
//! enter and exit of its one segment, and the zero-length final segment at close); between
//! chunks (untimed) the thread sleeps so the aggregator (1 ms tick here) drains the ring. The run's
//! recorded, dropped and folded counts are printed at the end: dropped and folded must be 0, so
//! that every timed span took the accepted path.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::{Duration, Instant};
use tracing_subscriber::layer::SubscriberExt;

/// Spans per timed chunk: 4 events each, half the ring.
const CHUNK: u64 = 8_192;

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
        std::thread::sleep(Duration::from_millis(20));
    }
    total
}

fn span_once(i: u64) {
    let span = tracing::info_span!("work", items = i);
    let _e = span.enter();
    black_box(&span);
}

/// A span per iteration inside a parent span entered on this thread: the parent lookup of the
/// layer's first enter (tracing's parent, found entered here: no parent mark) is in the cost.
fn nested(c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>, id: &str) {
    let parent = tracing::info_span!("parent");
    let _p = parent.enter();
    c.bench_function(id, |b| b.iter_custom(|iters| chunked(iters, span_once)));
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("span_cost");
    g.measurement_time(Duration::from_secs(3));
    g.warm_up_time(Duration::from_millis(500));

    {
        let _sub = tracing::subscriber::set_default(tracing_subscriber::registry());
        g.bench_function("registry_only", |b| {
            b.iter_custom(|iters| chunked(iters, span_once))
        });
    }
    {
        let _sub = tracing::subscriber::set_default(
            tracing_subscriber::registry().with(carina_tracing::CarinaLayer::new()),
        );
        g.bench_function("registry_carina_layer_no_run", |b| {
            b.iter_custom(|iters| chunked(iters, span_once))
        });
    }

    let run = carina::Run::builder("bench")
        .run_file(false)
        .steps(carina::StepDetail::Summary)
        .constant_watts(1.0)
        // A 1 ms tick bounds the aggregator's sleep, so the 20 ms pause between chunks lets it
        // drain the ring, with margin for a shared 2-vCPU VM.
        .sample_interval(Duration::from_millis(1))
        .start()
        .expect("start run");
    {
        let _sub = tracing::subscriber::set_default(tracing_subscriber::registry());
        g.bench_function("registry_only_run_installed", |b| {
            b.iter_custom(|iters| chunked(iters, span_once))
        });
        nested(&mut g, "registry_only_child_span");
    }
    {
        let _sub = tracing::subscriber::set_default(
            tracing_subscriber::registry().with(carina_tracing::CarinaLayer::new()),
        );
        g.bench_function("registry_carina_layer_run_installed", |b| {
            b.iter_custom(|iters| chunked(iters, span_once))
        });
        nested(&mut g, "registry_carina_layer_child_span");
        // One poll of an instrumented future: enter + exit of a span that already exists.
        let span = tracing::info_span!("existing");
        g.bench_function("enter_exit_existing_span_carina_layer", |b| {
            b.iter_custom(|iters| {
                chunked(iters, |_| {
                    let _e = span.enter();
                })
            })
        });
    }
    g.bench_function("carina_step_guard", |b| {
        b.iter_custom(|iters| {
            chunked(iters, |i| {
                let mut s = carina::step("guard");
                s.add_items(black_box(i));
            })
        })
    });
    g.finish();
    let s = run.finish().expect("finish");
    eprintln!(
        "carina steps recorded: {}, dropped: {}, folded: {} (dropped and folded must be 0)",
        s.steps(),
        s.dropped(),
        s.folded()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
