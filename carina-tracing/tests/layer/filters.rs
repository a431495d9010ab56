//! Spans left out by the level, target or custom filter are not steps; their children attach to
//! the nearest recorded ancestor.

use crate::common::{only, record_with, serial};
use carina_tracing::CarinaLayer;

mod app {
    pub fn work() {
        tracing::info_span!("app_span").in_scope(|| {
            tracing::trace_span!("app_trace").in_scope(|| {
                tracing::info_span!(target: "other::lib", "lib_span").in_scope(|| {
                    tracing::info_span!("app_poll").in_scope(|| {
                        tracing::info_span!("app_leaf").in_scope(|| {});
                    });
                });
            });
        });
    }
}

#[test]
fn level_target_and_custom_filters() {
    let _s = serial();
    let layer = CarinaLayer::new()
        .with_max_level(tracing::Level::DEBUG)
        .with_target(concat!(module_path!(), "::app"))
        .with_span_filter(|m| m.name() != "app_poll");
    let steps = record_with(layer, app::work);
    let names: Vec<&str> = steps.iter().map(|s| s.name.as_ref()).collect();
    assert_eq!(steps.len(), 2, "{names:?}");
    let top = only(&steps, "app_span");
    assert_eq!(only(&steps, "app_leaf").parent, Some(top.id));

    // No filter: all five.
    let steps = record_with(CarinaLayer::new(), app::work);
    assert_eq!(steps.len(), 5);
}

#[test]
fn per_layer_filter() {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    let _s = serial();
    let (run, recs) = crate::common::memory_run("per-layer-filter");
    let layer = CarinaLayer::new().with_filter(tracing_subscriber::filter::filter_fn(|m| {
        m.name() != "app_poll" && m.name() != "lib_span"
    }));
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), app::work);
    run.finish().expect("finish");
    let steps = recs.steps();
    assert_eq!(steps.len(), 3, "{steps:#?}");
    let trace = only(&steps, "app_trace");
    assert_eq!(only(&steps, "app_leaf").parent, Some(trace.id));
    assert_eq!(trace.parent, Some(only(&steps, "app_span").id));
}
