//! Items come from the `items` field, at creation or recorded later; the field name is
//! configurable.

use crate::common::{only, record_with, serial};
use carina_tracing::CarinaLayer;

#[test]
fn items_recorded_later() {
    let _s = serial();
    let steps = record_with(CarinaLayer::new(), || {
        let span = tracing::info_span!("later", items = tracing::field::Empty);
        {
            let _e = span.enter();
            span.record("items", 42u64);
        }
        // After the last exit, before the close, still counts.
        let again = tracing::info_span!("overwritten", items = 1);
        again.in_scope(|| {});
        again.record("items", 5);
        drop(again);
        let signed = tracing::info_span!("signed", items = -4);
        signed.in_scope(|| {});
        let usize_items = tracing::info_span!("usize", items = vec![0u8; 11].len());
        usize_items.in_scope(|| {});
        let text = tracing::info_span!("text", items = "12");
        text.in_scope(|| {});
    });
    assert_eq!(only(&steps, "later").items, 42);
    assert_eq!(only(&steps, "overwritten").items, 5);
    // A negative or non-integer value is ignored.
    assert_eq!(only(&steps, "signed").items, 0);
    assert_eq!(only(&steps, "text").items, 0);
    assert_eq!(only(&steps, "usize").items, 11);
}

#[test]
fn custom_items_field() {
    let _s = serial();
    let steps = record_with(CarinaLayer::new().items_field("rows"), || {
        let span = tracing::info_span!("load", rows = tracing::field::Empty, items = 99);
        let _e = span.enter();
        span.record("rows", 1000);
    });
    assert_eq!(only(&steps, "load").items, 1000);
}

#[test]
fn the_gpu_field_makes_a_gpu_step() {
    let _s = serial();
    let steps = record_with(CarinaLayer::new(), || {
        tracing::info_span!("train_step", gpu = true).in_scope(|| {});
        tracing::info_span!("log", gpu = false).in_scope(|| {});
        tracing::info_span!("plain").in_scope(|| {});
    });
    assert!(only(&steps, "train_step").gpu);
    assert!(!only(&steps, "log").gpu);
    assert!(!only(&steps, "plain").gpu);
    let steps = record_with(CarinaLayer::new().gpu_field("cuda"), || {
        tracing::info_span!("kernel", cuda = true).in_scope(|| {});
    });
    assert!(only(&steps, "kernel").gpu);
}
