//! Synchronous nested spans become nested steps with the right parents and items.

use crate::common::{only, record_with, serial, spin};
use carina::record::StepStatus;
use carina_tracing::CarinaLayer;

#[tracing::instrument(fields(items = rows.len()))]
fn parse(rows: &[u32]) -> u32 {
    spin(200);
    rows.iter().sum()
}

#[test]
fn nested_spans_are_nested_steps() {
    let _s = serial();
    let steps = record_with(CarinaLayer::new(), || {
        let outer = tracing::info_span!("outer", items = 7u64);
        let _o = outer.enter();
        spin(500);
        {
            let inner = tracing::debug_span!("inner", items = 3);
            let _i = inner.enter();
            spin(500);
            let leaf = tracing::trace_span!("leaf");
            leaf.in_scope(|| spin(200));
        }
        // A plain Carina step inside a span, and a span inside that step.
        {
            let _g = carina::step("guard");
            assert_eq!(parse(&[1, 2, 3, 4]), 10);
        }
        assert_eq!(CarinaLayer::entered_on_this_thread(), 1);
    });
    assert_eq!(CarinaLayer::entered_on_this_thread(), 0);

    let outer = only(&steps, "outer");
    let inner = only(&steps, "inner");
    let leaf = only(&steps, "leaf");
    let guard = only(&steps, "guard");
    let parse = only(&steps, "parse");
    assert_eq!(outer.parent, None);
    assert_eq!(inner.parent, Some(outer.id));
    assert_eq!(leaf.parent, Some(inner.id));
    assert_eq!(guard.parent, Some(outer.id));
    assert_eq!(parse.parent, Some(guard.id));
    assert_eq!(outer.items, 7);
    assert_eq!(inner.items, 3);
    assert_eq!(leaf.items, 0);
    assert_eq!(parse.items, 4);
    for s in [outer, inner, leaf, guard, parse] {
        assert_eq!(s.status, StepStatus::Ok, "{s:?}");
        assert!(!s.unfinished, "{s:?}");
        assert!(s.end_s >= s.start_s);
    }
    // Spans are recorded as segmented steps.
    assert!(outer.r#async && inner.r#async && !guard.r#async);
    // Children lie within their parents.
    assert!(inner.start_s >= outer.start_s && inner.end_s <= outer.end_s);
    assert!(leaf.start_s >= inner.start_s && leaf.end_s <= inner.end_s);
    // Energy nests too: a parent's inclusive energy covers its children's.
    assert!(outer.energy_j > carina::Joules::ZERO);
    assert!(outer.energy_j + carina::Joules(1e-9) >= inner.energy_j + guard.energy_j);
    assert!(outer.self_energy_j < outer.energy_j);
    assert_eq!(steps.len(), 5, "{steps:#?}");
}

#[test]
fn sibling_spans_are_siblings() {
    let _s = serial();
    let steps = record_with(CarinaLayer::new(), || {
        let root = tracing::info_span!("root");
        let _r = root.enter();
        for i in 0..3u64 {
            let s = tracing::info_span!("child", items = i);
            let _e = s.enter();
        }
    });
    let root = only(&steps, "root");
    let children: Vec<_> = steps.iter().filter(|s| s.name == "child").collect();
    assert_eq!(children.len(), 3);
    let mut items: Vec<u64> = children.iter().map(|c| c.items).collect();
    items.sort();
    assert_eq!(items, [0, 1, 2]);
    assert!(children.iter().all(|c| c.parent == Some(root.id)));
}
