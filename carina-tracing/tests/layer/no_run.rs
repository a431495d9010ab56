//! With no Carina run installed, spans record nothing and the layer keeps no per-span state.

use crate::common::{memory_run, only, serial};
use carina_tracing::CarinaLayer;
use tracing_subscriber::layer::SubscriberExt;

#[test]
fn no_run_records_nothing() {
    let _s = serial();
    assert!(!carina::is_recording());
    let subscriber = tracing_subscriber::registry().with(CarinaLayer::new());
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..10_000u64 {
            let span = tracing::info_span!("before_run", items = i);
            let _e = span.enter();
            let inner = tracing::info_span!("inner_before_run");
            let _i = inner.enter();
            // Nothing is pushed: the enter was a no-op.
            assert_eq!(CarinaLayer::entered_on_this_thread(), 0);
        }
        // A span entered with no run and exited under one pushes no exit.
        let straddling = tracing::info_span!("straddling");
        let e = straddling.enter();
        // Created before the run, entered under it: recorded, with the items it was created with.
        let early = tracing::info_span!("early", items = 4);

        let (run, recs) = memory_run("no-run");
        let step_under_straddling = carina::step("step_under_straddling");
        drop(step_under_straddling);
        drop(e);
        drop(straddling);
        early.in_scope(|| {});
        drop(early);
        tracing::info_span!("after").in_scope(|| {});
        assert_eq!(CarinaLayer::entered_on_this_thread(), 0);
        run.finish().expect("finish");

        let steps = recs.steps();
        assert!(
            steps
                .iter()
                .all(|s| !s.name.contains("before_run") && s.name != "straddling"),
            "{steps:#?}"
        );
        assert_eq!(only(&steps, "step_under_straddling").parent, None);
        assert_eq!(only(&steps, "early").items, 4);
        assert_eq!(only(&steps, "after").parent, None);
        assert_eq!(steps.len(), 3, "{steps:#?}");
        assert!(steps.iter().all(|s| !s.unfinished));

        // After the run: no-ops again.
        let span = tracing::info_span!("after_run");
        let _e = span.enter();
        assert_eq!(CarinaLayer::entered_on_this_thread(), 0);
    });
}
