//! With no Carina run installed, the layer records nothing and keeps no per-thread state.

mod common;

use carina_tracing::CarinaLayer;
use tracing_subscriber::layer::SubscriberExt;

#[test]
fn spans_without_a_run_record_nothing() {
    let _s = common::serial();
    assert!(!carina::is_recording());
    let subscriber = tracing_subscriber::registry().with(CarinaLayer::new());
    tracing::subscriber::with_default(subscriber, || {
        let outer = tracing::info_span!("outer", items = 3);
        let _o = outer.enter();
        let inner = tracing::info_span!("inner");
        let _i = inner.enter();
        assert_eq!(CarinaLayer::entered_on_this_thread(), 0, "nothing pushed");
    });
    // A run started afterwards sees none of those spans.
    let (run, recs) = common::memory_run("after");
    let s = run.finish().unwrap();
    assert_eq!(s.steps, 0);
    assert!(recs.steps().is_empty());
}
