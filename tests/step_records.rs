//! Every executed step becomes exactly one record, across threads, with the right parent links
//! and statuses.

use crate::common;
use carina::record::StepStatus;
use common::{memory_run, serial, spin};

#[test]
fn exact_counts_across_threads_including_threads_that_exit_early() {
    let _s = serial();
    let (run, recs) = memory_run("counts");
    let mut handles = Vec::new();
    for t in 0..4u64 {
        handles.push(std::thread::spawn(move || {
            // Thread t runs 1000 * (t + 1) steps and exits at once.
            for _ in 0..1000 * (t + 1) {
                let mut g = carina::step("work");
                g.add_items(2);
            }
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    for _ in 0..500 {
        let _g = carina::step("main_work");
    }
    let summary = run.finish().unwrap();
    let steps = recs.steps();
    assert_eq!(steps.iter().filter(|s| s.name == "work").count(), 10_000);
    assert_eq!(steps.iter().filter(|s| s.name == "main_work").count(), 500);
    assert_eq!(summary.steps(), 10_500);
    assert_eq!(summary.dropped(), 0);
    let work = summary.summaries.iter().find(|s| s.name == "work").unwrap();
    assert_eq!((work.count, work.items), (10_000, 20_000));
    assert_eq!(summary.items(), 20_000);
    // Ids are unique.
    let mut ids: Vec<u64> = steps.iter().map(|s| s.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 10_500);
    // Five threads, each named in a `thread` record.
    let threads: std::collections::HashSet<u32> = steps.iter().map(|s| s.thread).collect();
    assert_eq!(threads.len(), 5);
}

#[test]
fn nesting_and_recursion_link_parents() {
    fn recurse(n: u32) {
        let _g = carina::step("recurse");
        if n > 0 {
            recurse(n - 1);
        }
    }
    let _s = serial();
    let (run, recs) = memory_run("nesting");
    {
        let _outer = carina::step("outer");
        spin(200);
        {
            let _inner = carina::step("inner");
            spin(200);
        }
        recurse(3);
    }
    let _ = run.finish().unwrap();
    let steps = recs.steps();
    let by = |n: &str| steps.iter().filter(|s| s.name == n).collect::<Vec<_>>();
    let outer = by("outer")[0];
    let inner = by("inner")[0];
    assert_eq!(outer.parent, None);
    assert_eq!(inner.parent, Some(outer.id));
    let mut rec = by("recurse");
    rec.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
    assert_eq!(rec.len(), 4);
    assert_eq!(rec[0].parent, Some(outer.id));
    for w in rec.windows(2) {
        assert_eq!(w[1].parent, Some(w[0].id));
        assert!(w[1].start_s >= w[0].start_s && w[1].end_s <= w[0].end_s);
    }
    assert!(inner.start_s >= outer.start_s && inner.end_s <= outer.end_s);
    assert!(outer.energy_j >= inner.energy_j && outer.energy_j >= outer.self_energy_j);
}

#[test]
fn statuses_ok_error_panicked() {
    let _s = serial();
    let (run, recs) = memory_run("status");
    {
        let _g = carina::step("fine");
    }
    {
        let mut g = carina::step("failed");
        g.mark_error();
    }
    let r = std::panic::catch_unwind(|| {
        let _g = carina::step("boom");
        panic!("expected in test");
    });
    assert!(r.is_err());
    let summary = run.finish().unwrap();
    let status = |n: &str| {
        recs.steps()
            .into_iter()
            .find(|s| s.name == n)
            .unwrap()
            .status
    };
    assert_eq!(status("fine"), StepStatus::Ok);
    assert_eq!(status("failed"), StepStatus::Error);
    assert_eq!(status("boom"), StepStatus::Panicked);
    let boom = summary.summaries.iter().find(|s| s.name == "boom").unwrap();
    assert_eq!(boom.panics, 1);
}

#[test]
fn steps_without_a_run_record_nothing_and_open_steps_end_unfinished() {
    let _s = serial();
    let g = carina::step("before");
    assert!(!g.is_recording());
    drop(g);
    let (run, recs) = memory_run("unfinished");
    let main = carina::step("main");
    assert!(main.is_recording());
    spin(100);
    let _ = run.finish().unwrap();
    drop(main);
    let steps = recs.steps();
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0].name, "main");
    assert!(steps[0].unfinished);
}

#[test]
fn a_full_buffer_folds_and_counts_instead_of_blocking() {
    let _s = serial();
    let (sink, recs) = carina::sink::MemorySink::new();
    let run = carina::Run::builder("tiny-buffer")
        .run_file(false)
        .sink(sink)
        .constant_watts(1.0)
        // Room for 4 steps at a time, and a slow aggregator: most steps find the ring full.
        .buffer_capacity(8)
        .sample_interval(std::time::Duration::from_secs(20))
        .start()
        .unwrap();
    let t = std::time::Instant::now();
    std::thread::spawn(|| {
        for _ in 0..10_000 {
            let _g = carina::step("burst");
        }
    })
    .join()
    .unwrap();
    // Never blocked on the aggregator's 20 s tick (a wide margin so a loaded host cannot fail it).
    assert!(t.elapsed() < std::time::Duration::from_secs(10));
    let s = run.finish().unwrap();
    assert_eq!(s.dropped(), 0, "folded, not dropped");
    assert!(s.folded() > 0);
    assert_eq!(s.steps(), 10_000, "every step counted");
    assert_eq!(
        recs.steps().len() as u64,
        s.steps() - s.folded(),
        "records for the others"
    );
    assert_eq!(recs.summaries()[0].count, 10_000);
    assert_eq!(recs.run_end().unwrap().folded, s.folded());
    assert!(
        s.warnings.iter().any(|w| w.contains("buffer")),
        "{:?}",
        s.warnings
    );
}

#[test]
fn beyond_256_folded_names_a_thread_drops_and_counts() {
    let _s = serial();
    let (sink, _recs) = carina::sink::MemorySink::new();
    let names: Vec<&'static str> = (0..400)
        .map(|i| &*Box::leak(format!("name-{i}").into_boxed_str()))
        .collect();
    let run = carina::Run::builder("many-names")
        .run_file(false)
        .sink(sink)
        .constant_watts(1.0)
        .buffer_capacity(8)
        .sample_interval(std::time::Duration::from_millis(500))
        .start()
        .unwrap();
    std::thread::spawn(move || {
        // Hold the ring full with open steps, then open 400 differently named ones.
        let _open: Vec<_> = (0..3).map(|_| carina::step("holder")).collect();
        for n in &names {
            let _g = carina::step(n);
        }
    })
    .join()
    .unwrap();
    let s = run.finish().unwrap();
    assert!(s.dropped() > 0, "names past the fold table are dropped");
    assert_eq!(s.steps() + s.dropped(), 403, "and counted as such");
    assert!(
        s.warnings.iter().any(|w| w.contains("not counted")),
        "{:?}",
        s.warnings
    );
}
