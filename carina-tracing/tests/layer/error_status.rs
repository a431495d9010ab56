//! A span's status: `error` from the `error` field or an ERROR event inside it, `panicked` when
//! it closes during a panic, `ok` otherwise.

use crate::common::{only, record_with, serial};
use carina::record::StepStatus;
use carina_tracing::CarinaLayer;

#[test]
fn error_field_and_error_events() {
    let _s = serial();
    let steps = record_with(CarinaLayer::new(), || {
        tracing::info_span!("field_true", error = true).in_scope(|| {});
        tracing::info_span!("field_false", error = false).in_scope(|| {});
        tracing::info_span!("field_display", error = %"disk full").in_scope(|| {});
        let later = tracing::info_span!("field_later", error = tracing::field::Empty);
        later.in_scope(|| {});
        later.record("error", true);
        drop(later);
        let outer = tracing::info_span!("event_outer");
        outer.in_scope(|| {
            tracing::info_span!("event_inner").in_scope(|| {
                tracing::error!("failed");
            });
            tracing::warn!("only a warning");
        });
        tracing::info_span!("warn_only").in_scope(|| tracing::warn!("not an error"));
        tracing::info_span!("ok").in_scope(|| {});
    });
    let status = |n| only(&steps, n).status;
    assert_eq!(status("field_true"), StepStatus::Error);
    assert_eq!(status("field_false"), StepStatus::Ok);
    assert_eq!(status("field_display"), StepStatus::Error);
    assert_eq!(status("field_later"), StepStatus::Error);
    // The event marks the innermost span only.
    assert_eq!(status("event_inner"), StepStatus::Error);
    assert_eq!(status("event_outer"), StepStatus::Ok);
    assert_eq!(status("warn_only"), StepStatus::Ok);
    assert_eq!(status("ok"), StepStatus::Ok);
}

#[test]
fn error_events_can_be_ignored() {
    let _s = serial();
    let steps = record_with(CarinaLayer::new().error_events(false), || {
        tracing::info_span!("quiet").in_scope(|| tracing::error!("ignored"));
        tracing::info_span!("flagged", failed = true).in_scope(|| {});
    });
    assert_eq!(only(&steps, "quiet").status, StepStatus::Ok);
    let steps = record_with(CarinaLayer::new().error_field("failed"), || {
        tracing::info_span!("flagged", failed = true).in_scope(|| {});
    });
    assert_eq!(only(&steps, "flagged").status, StepStatus::Error);
}

#[test]
fn span_closed_while_panicking() {
    let _s = serial();
    let steps = record_with(CarinaLayer::new(), || {
        let r = std::panic::catch_unwind(|| {
            let span = tracing::info_span!("boom");
            let _e = span.enter();
            panic!("on purpose");
        });
        assert!(r.is_err());
        tracing::info_span!("after").in_scope(|| {});
    });
    assert_eq!(only(&steps, "boom").status, StepStatus::Panicked);
    let after = only(&steps, "after");
    assert_eq!(after.status, StepStatus::Ok);
    assert_eq!(after.parent, None);
}
