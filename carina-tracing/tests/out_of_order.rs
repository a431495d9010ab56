//! `tracing` allows exiting a span while a span entered after it is still entered. The layer must
//! keep the ring's pairing intact: every span still becomes one step, and the steps recorded
//! afterwards nest correctly.

mod common;

use carina_tracing::CarinaLayer;
use common::{only, record_with, serial};

#[test]
fn out_of_order_exits_do_not_corrupt_later_steps() {
    let _s = serial();
    let steps = record_with(CarinaLayer::new(), || {
        let a = tracing::info_span!("a", items = 1);
        let b = tracing::info_span!("b", items = 2);
        let ga = a.enter();
        let gb = b.enter();
        common::spin(200);
        drop(ga); // `a` exits while `b` is still entered
        common::spin(200);
        drop(gb);
        drop(b);
        drop(a);
        // Later spans nest as usual.
        let outer = tracing::info_span!("outer");
        outer.in_scope(|| {
            let inner = tracing::info_span!("inner");
            inner.in_scope(|| common::spin(100));
        });
        assert_eq!(CarinaLayer::entered_on_this_thread(), 0);
    });
    let a = only(&steps, "a");
    let b = only(&steps, "b");
    assert_eq!((a.items, b.items), (1, 2));
    let outer = only(&steps, "outer");
    let inner = only(&steps, "inner");
    assert_eq!(
        inner.parent,
        Some(outer.id),
        "nesting intact after the out-of-order exit"
    );
    assert_eq!(outer.parent, None);
    assert!(!a.unfinished && !b.unfinished && !outer.unfinished && !inner.unfinished);
}
