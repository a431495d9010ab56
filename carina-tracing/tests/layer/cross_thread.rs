//! Parents follow tracing: a span created under a parent (contextual or `parent:`) and entered
//! on other threads, inside other spans, stays that parent's child, and its energy counts in
//! that parent's inclusive energy, whatever thread ran it.

use crate::common::{memory_run, only, serial, spin};
use carina::record::StepRecord;
use carina_tracing::CarinaLayer;
use tracing_subscriber::layer::SubscriberExt;

const EPS: f64 = 1e-9;

fn energy(s: &StepRecord) -> f64 {
    s.energy_j.0
}

#[test]
fn spans_entered_on_other_threads_keep_tracing_parents() {
    let _s = serial();
    let (run, recs) = memory_run("cross-thread-parents");
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(CarinaLayer::new()));
    tracing::dispatcher::with_default(&dispatch, || {
        let root = tracing::info_span!("fetch_all");
        let root_guard = root.enter();
        spin(300);
        // Created here (contextual parent: fetch_all), entered on the workers: as spawned
        // tasks whose futures carry `#[instrument]` spans.
        let fetches: Vec<tracing::Span> = (0..4u64)
            .map(|i| tracing::info_span!("fetch", items = i))
            .collect();
        // The root stays entered here while the workers run, as a `join_all` would poll it.
        std::thread::scope(|scope| {
            for (w, pair) in fetches.chunks(2).enumerate() {
                let dispatch = &dispatch;
                let root = &root;
                scope.spawn(move || {
                    tracing::dispatcher::with_default(dispatch, || {
                        // The worker's own span, as tokio's `runtime.spawn`: not a parent of
                        // what it polls.
                        let worker = tracing::info_span!(parent: None, "worker", items = w as u64);
                        let _w = worker.enter();
                        for f in pair {
                            f.in_scope(|| spin(2_000));
                        }
                        // An explicit parent, created inside the worker's span.
                        tracing::info_span!(parent: root, "explicit").in_scope(|| spin(1_000));
                    });
                });
            }
        });
        drop(root_guard);
        // Migration: each fetch is entered once more, on a third thread, inside another span.
        std::thread::scope(|scope| {
            let dispatch = &dispatch;
            let fetches = &fetches;
            scope.spawn(move || {
                tracing::dispatcher::with_default(dispatch, || {
                    let other = tracing::info_span!(parent: None, "other_worker");
                    let _o = other.enter();
                    for f in fetches {
                        f.in_scope(|| spin(1_000));
                    }
                });
            });
        });
        drop(fetches);
        root.in_scope(|| spin(300));
    });
    drop(dispatch);
    let summary = run.finish().expect("finish");
    assert_eq!(summary.dropped(), 0);
    let steps = recs.steps();
    let root = only(&steps, "fetch_all");
    let fetches: Vec<&StepRecord> = steps.iter().filter(|s| s.name == "fetch").collect();
    let explicit: Vec<&StepRecord> = steps.iter().filter(|s| s.name == "explicit").collect();
    let workers: Vec<&StepRecord> = steps.iter().filter(|s| s.name == "worker").collect();
    let other = only(&steps, "other_worker");
    // One step per span, however many threads entered it.
    assert_eq!(fetches.len(), 4, "{steps:#?}");
    assert_eq!(explicit.len(), 2, "{steps:#?}");
    assert_eq!(workers.len(), 2, "{steps:#?}");
    assert_eq!(steps.len(), 10, "{steps:#?}");
    // Parents are tracing's, not the span open on the entering thread.
    assert_eq!(root.parent, None);
    for f in fetches.iter().chain(&explicit) {
        assert_eq!(f.parent, Some(root.id), "{f:#?}");
        assert!(!f.unfinished, "{f:#?}");
    }
    for w in workers.iter().chain([&other]) {
        assert_eq!(w.parent, None, "{w:#?}");
    }
    // Inclusive energy covers every descendant on any thread, and never falls below self.
    for s in &steps {
        assert!(
            energy(s) + EPS >= s.self_energy_j.0,
            "inclusive below self: {s:#?}"
        );
    }
    let children: f64 = fetches.iter().chain(&explicit).map(|s| energy(s)).sum();
    assert!(children > 0.0);
    assert!(
        energy(root) + EPS >= children + root.self_energy_j.0,
        "fetch_all {} J < its own {} J + children {} J",
        energy(root),
        root.self_energy_j.0,
        children
    );
    // The workers' spans hold their own time only, not the spans they polled: each worker spun
    // at most a few microseconds itself, its fetches 4 ms and more.
    let polled: f64 = fetches.iter().map(|s| energy(s)).sum();
    for w in workers.iter().chain([&other]) {
        assert!(energy(w) < polled / 4.0, "{w:#?} vs fetches {polled} J");
    }
}
