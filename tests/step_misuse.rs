//! Misused step guards are counted or flagged in the run file, never lost or swapped silently
//! (issue 18, item 5): steps leaked at thread exit (also when the buffer is full and they were
//! folded), guards dropped out of order, and a `mem::forget` guard that becomes the parent of
//! every later step.

use crate::common;
use common::{memory_run, serial};

fn warnings(s: &carina::RunSummary) -> Vec<String> {
    s.end.clone().expect("run_end").warnings
}

#[test]
fn a_forgotten_guard_is_named_as_never_closed() {
    let _s = serial();
    let (run, recs) = memory_run("forget");
    std::mem::forget(carina::step("forgotten"));
    for _ in 0..3 {
        let _g = carina::step("later");
    }
    let s = run.finish().unwrap();
    let w = warnings(&s);
    let never: Vec<&String> = w.iter().filter(|w| w.contains("never closed")).collect();
    assert_eq!(never.len(), 1, "{w:?}");
    assert!(never[0].contains("`forgotten` (thread"), "{w:?}");
    assert!(!never[0].contains("`later`"), "{w:?}");
    // What the warning explains: the later steps are its children, and it is unfinished.
    let steps = recs.steps();
    let forgotten = steps.iter().find(|r| r.name == "forgotten").unwrap();
    assert!(forgotten.unfinished);
    let later: Vec<_> = steps.iter().filter(|r| r.name == "later").collect();
    assert_eq!(later.len(), 3);
    assert!(later.iter().all(|r| r.parent == Some(forgotten.id)));
}

#[test]
fn a_run_with_well_nested_guards_has_no_such_warning() {
    let _s = serial();
    let (run, _recs) = memory_run("nested");
    {
        let _a = carina::step("a");
        let _b = carina::step("b");
    }
    let s = run.finish().unwrap();
    let w = warnings(&s);
    assert!(
        !w.iter()
            .any(|w| w.contains("never closed") || w.contains("out of order")),
        "{w:?}"
    );
}

#[test]
fn guards_dropped_out_of_order_are_flagged() {
    let _s = serial();
    let (run, _recs) = memory_run("order");
    let a = carina::step("a");
    let b = carina::step("b");
    drop(a);
    drop(b);
    let s = run.finish().unwrap();
    let w = warnings(&s);
    assert!(
        w.iter()
            .any(|w| w.starts_with("2 steps ended out of order")),
        "{w:?}"
    );
}

#[test]
fn steps_leaked_at_thread_exit_with_a_full_buffer_are_counted() {
    let _s = serial();
    let (sink, _recs) = carina::sink::MemorySink::new();
    let run = carina::Run::builder("leak")
        .run_file(false)
        .sink(sink)
        .constant_watts(100.0)
        .buffer_capacity(256)
        .start()
        .unwrap();
    const LEAKED: u64 = 1000;
    std::thread::spawn(|| {
        // A 256-event ring holds at most 128 open steps: most of these are folded.
        for _ in 0..LEAKED {
            std::mem::forget(carina::step("leaky"));
        }
    })
    .join()
    .unwrap();
    let s = run.finish().unwrap();
    assert!(s.folded() > 0, "the buffer must have overflowed");
    // Every instance is counted: those in the ring as unfinished records, the folded ones in
    // the folded totals. Nothing dropped.
    let leaky = s.summaries.iter().find(|x| x.name == "leaky").unwrap();
    assert_eq!(leaky.count, LEAKED);
    assert_eq!(s.dropped(), 0);
    let w = warnings(&s);
    assert!(
        w.iter().any(|w| w.starts_with(&format!(
            "{LEAKED} steps were never closed on threads that have exited"
        ))),
        "{w:?}"
    );
}

#[test]
fn item_counts_saturate_and_are_named_instead_of_wrapping() {
    let _s = serial();
    let (run, recs) = memory_run("items");
    {
        let mut g = carina::step("huge");
        g.add_items(u64::MAX - 1);
        // Wrapping would leave 1; saturating keeps the ceiling.
        g.add_items(3);
    }
    {
        let mut g = carina::step("huge");
        g.add_items(5);
    }
    let s = run.finish().unwrap();
    let steps = recs.steps();
    let first = steps.iter().find(|r| r.name == "huge").unwrap();
    assert_eq!(first.items, u64::MAX);
    let huge = s.summaries.iter().find(|x| x.name == "huge").unwrap();
    assert_eq!(huge.items, u64::MAX, "the name's total saturates too");
    let w = warnings(&s);
    assert!(
        w.iter()
            .any(|w| w.starts_with("items_saturated") && w.contains("`huge`")),
        "{w:?}"
    );
}
