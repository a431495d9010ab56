//! Ten million steps from two threads: every step is recorded or counted as dropped, and
//! resident memory stays bounded.

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn ten_million_steps_with_bounded_memory() {
    let _s = carina::testing::serial();
    const PER_THREAD: u64 = 5_000_000;
    let run = carina::Run::builder("soak")
        .run_file(false)
        .steps(carina::StepDetail::Summary)
        .constant_watts(50.0)
        .start()
        .unwrap();
    let before = rss_kib();
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(before));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let peak = peak.clone();
            std::thread::spawn(move || {
                let mut x = 1u64;
                for i in 0..PER_THREAD {
                    let mut g = carina::step("tiny");
                    g.add_items(1);
                    // A little work per step, as a real step has: ~100 ns in a debug build.
                    for _ in 0..8 {
                        x = std::hint::black_box(
                            x.wrapping_mul(6364136223846793005).wrapping_add(1),
                        );
                    }
                    if i % 500_000 == 0 {
                        peak.fetch_max(rss_kib(), std::sync::atomic::Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let s = run.finish().unwrap();
    let after = rss_kib().max(peak.load(std::sync::atomic::Ordering::Relaxed));
    assert_eq!(
        s.steps() + s.dropped(),
        2 * PER_THREAD,
        "every step recorded or counted"
    );
    let tiny = s
        .summaries
        .iter()
        .find(|x| x.name == "tiny")
        .map_or(0, |x| x.count);
    assert_eq!(tiny, s.steps());
    // The aggregator keeps up with most of it (98 % here); drops are counted, never blocking.
    assert!(
        s.steps() >= PER_THREAD,
        "only {} of {} recorded",
        s.steps(),
        2 * PER_THREAD
    );
    let growth_mib = (after.saturating_sub(before)) as f64 / 1024.0;
    assert!(growth_mib < 64.0, "resident growth {growth_mib:.1} MiB");
    eprintln!(
        "soak: {} recorded, {} dropped, resident growth {growth_mib:.1} MiB",
        s.steps(),
        s.dropped()
    );
}
