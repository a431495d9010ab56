//! `tracing` allows exiting a span while a span entered after it is still entered. The layer must
//! keep the ring's pairing intact: every span still becomes one step, and the steps recorded
//! afterwards nest correctly. Also: a span entered again while entered, and a guard leaked
//! (`mem::forget`) so that the span closes while still entered.

use crate::common::{only, record_with, serial, spin};
use carina::record::StepStatus;
use carina_tracing::CarinaLayer;

#[test]
fn out_of_order_exits_do_not_corrupt_later_steps() {
    let _s = serial();
    let steps = record_with(CarinaLayer::new(), || {
        let a = tracing::info_span!("a", items = 1);
        let b = tracing::info_span!("b", items = 2);
        let ga = a.enter();
        let gb = b.enter();
        spin(200);
        drop(ga); // `a` exits while `b` is still entered
        spin(200);
        drop(gb);
        drop(b);
        drop(a);
        // Later spans nest as usual.
        let outer = tracing::info_span!("outer");
        outer.in_scope(|| {
            let inner = tracing::info_span!("inner");
            inner.in_scope(|| spin(100));
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

#[test]
fn out_of_order_exit_keeps_pairing() {
    let _s = serial();
    let steps = record_with(CarinaLayer::new(), || {
        let a = tracing::info_span!("a");
        let b = tracing::info_span!("b");
        let c = tracing::info_span!("c");
        let ga = a.enter();
        spin(200);
        let gb = b.enter();
        let gc = c.enter();
        spin(200);
        // `a` exits first, while `b` and `c` are still entered.
        drop(ga);
        assert_eq!(CarinaLayer::entered_on_this_thread(), 2);
        spin(200);
        drop(gc);
        drop(gb);
        assert_eq!(CarinaLayer::entered_on_this_thread(), 0);
        drop((a, b, c));

        // Next steps: a span, a guard inside it, a span inside that.
        let next = tracing::info_span!("next", items = 2);
        next.in_scope(|| {
            let _g = carina::step("next_guard");
            tracing::info_span!("next_leaf").in_scope(|| spin(100));
        });
        let _g = carina::step("top_guard");
    });
    let (a, b, c) = (only(&steps, "a"), only(&steps, "b"), only(&steps, "c"));
    assert_eq!(a.parent, None);
    assert_eq!(b.parent, Some(a.id));
    assert_eq!(c.parent, Some(b.id));
    let next = only(&steps, "next");
    let guard = only(&steps, "next_guard");
    let leaf = only(&steps, "next_leaf");
    assert_eq!(next.parent, None);
    assert_eq!(next.items, 2);
    assert_eq!(guard.parent, Some(next.id));
    assert_eq!(leaf.parent, Some(guard.id));
    assert_eq!(only(&steps, "top_guard").parent, None);
    for s in &steps {
        assert!(!s.unfinished, "{s:?}");
        assert_eq!(s.status, StepStatus::Ok, "{s:?}");
    }
    assert_eq!(steps.len(), 7, "{steps:#?}");
}

#[test]
fn reentered_and_leaked_spans() {
    let _s = serial();
    let steps = record_with(CarinaLayer::new(), || {
        // A span entered again while entered: one step, no double counting.
        let r = tracing::info_span!("reentered", items = 1);
        r.in_scope(|| r.in_scope(|| spin(100)));
        drop(r);

        // A leaked guard: the span is closed while still entered on this thread.
        let leaked = tracing::info_span!("leaked");
        std::mem::forget(leaked.enter());
        assert_eq!(CarinaLayer::entered_on_this_thread(), 1);
        drop(leaked);
        assert_eq!(CarinaLayer::entered_on_this_thread(), 0);

        tracing::info_span!("after").in_scope(|| {
            let _g = carina::step("after_guard");
        });
    });
    assert_eq!(only(&steps, "reentered").items, 1);
    assert!(!only(&steps, "leaked").unfinished);
    let after = only(&steps, "after");
    assert_eq!(after.parent, None);
    assert_eq!(only(&steps, "after_guard").parent, Some(after.id));
    assert!(steps.iter().all(|s| !s.unfinished), "{steps:#?}");
    assert_eq!(steps.len(), 4, "{steps:#?}");
}
