//! A filter added with `.with(filter)` is global: the spans it disables never reach any layer.
//! The layer cannot record them, so it says so (stderr and `run_end.warnings`); a per-layer
//! filter on the other layer hides nothing from Carina.

use crate::common::{memory_run, serial};
use carina_tracing::CarinaLayer;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;

fn work() {
    for i in 0..3u64 {
        let s = tracing::info_span!("load", items = i);
        let _e = s.enter();
        tracing::debug_span!("parse").in_scope(|| {});
    }
}

/// A fmt layer writing nowhere, as an application's log output.
fn fmt_layer<S>() -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer().with_writer(std::io::sink)
}

fn per_layer_hint(w: &str) -> bool {
    w.contains("carina-tracing") && w.contains("per-layer filter")
}

#[test]
fn global_filter_hides_spans_and_is_reported() {
    let _s = serial();
    let (run, recs) = memory_run("global-filter");
    // As `EnvFilter::from_default_env()` with RUST_LOG unset: ERROR and nothing else, for all.
    let subscriber = tracing_subscriber::registry()
        .with(CarinaLayer::new())
        .with(fmt_layer())
        .with(LevelFilter::ERROR);
    tracing::subscriber::with_default(subscriber, work);
    let summary = run.finish().expect("finish");
    assert!(recs.steps().is_empty(), "{:#?}", recs.steps());
    let end = recs.run_end().expect("run_end");
    let hits: Vec<&String> = end.warnings.iter().filter(|w| per_layer_hint(w)).collect();
    assert_eq!(hits.len(), 1, "{:#?}", end.warnings);
    assert!(hits[0].contains("INFO"), "{}", hits[0]);
    assert!(summary.warnings.iter().any(|w| per_layer_hint(w)));

    // The subscriber is gone: a later run does not inherit its warning.
    let (run, recs) = memory_run("after-global-filter");
    run.finish().expect("finish");
    let end = recs.run_end().expect("run_end");
    assert!(
        !end.warnings.iter().any(|w| per_layer_hint(w)),
        "{:#?}",
        end.warnings
    );
}

#[test]
fn global_filter_set_up_before_the_run_is_reported_in_it() {
    let _s = serial();
    // The usual order: the subscriber first, the run later.
    let subscriber = tracing_subscriber::registry()
        .with(CarinaLayer::new())
        .with(LevelFilter::WARN);
    let dispatch = tracing::Dispatch::new(subscriber);
    let (run, recs) = memory_run("global-filter-first");
    tracing::dispatcher::with_default(&dispatch, work);
    run.finish().expect("finish");
    drop(dispatch);
    assert!(recs.steps().is_empty());
    let end = recs.run_end().expect("run_end");
    assert!(
        end.warnings.iter().any(|w| per_layer_hint(w)),
        "{:#?}",
        end.warnings
    );
}

#[test]
fn per_layer_filter_on_the_other_layer_hides_nothing() {
    let _s = serial();
    let (run, recs) = memory_run("per-layer-fmt-filter");
    // The fix the warning names: the filter belongs to the fmt layer only.
    let subscriber = tracing_subscriber::registry()
        .with(CarinaLayer::new())
        .with(fmt_layer().with_filter(LevelFilter::ERROR));
    tracing::subscriber::with_default(subscriber, work);
    let summary = run.finish().expect("finish");
    let steps = recs.steps();
    assert_eq!(steps.iter().filter(|s| s.name == "load").count(), 3);
    assert_eq!(steps.iter().filter(|s| s.name == "parse").count(), 3);
    let end = recs.run_end().expect("run_end");
    assert!(
        !end.warnings.iter().any(|w| per_layer_hint(w)),
        "{:#?}",
        end.warnings
    );
    assert!(!summary.warnings.iter().any(|w| per_layer_hint(w)));

    // A global filter that lets INFO through is not reported either.
    let (run, recs) = memory_run("global-info-filter");
    let subscriber = tracing_subscriber::registry()
        .with(CarinaLayer::new())
        .with(LevelFilter::INFO);
    tracing::subscriber::with_default(subscriber, work);
    run.finish().expect("finish");
    assert_eq!(recs.steps().len(), 3, "only the INFO spans pass");
    let end = recs.run_end().expect("run_end");
    assert!(
        !end.warnings.iter().any(|w| per_layer_hint(w)),
        "{:#?}",
        end.warnings
    );
}
