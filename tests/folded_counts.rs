//! Counts never get lost: a tight loop of steps that overflows the thread buffers still gets
//! exact per-name counts, items and status in the summaries.

use crate::common;

use carina::StepDetail;

fn tight_loop(
    threads: usize,
    rounds: usize,
    per_round: u64,
    detail: StepDetail,
) -> carina::RunSummary {
    let (sink, _recs) = carina::sink::MemorySink::new();
    let run = carina::Run::builder("tight")
        .run_file(false)
        .sink(sink)
        .constant_watts(100.0)
        .steps(detail)
        .buffer_capacity(256)
        .start()
        .unwrap();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for _ in 0..rounds {
                    for i in 0..per_round {
                        let mut g = carina::step("tiny");
                        g.add_items(1);
                        if i % 1000 == 0 {
                            g.mark_error();
                        }
                    }
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
            });
        }
    });
    run.finish().unwrap()
}

#[test]
fn summary_counts_equal_the_steps_executed() {
    let _s = common::serial();
    let (threads, rounds, per_round) = (4, 3, 200_000u64);
    let s = tight_loop(threads, rounds, per_round, StepDetail::Summary);
    let total = threads as u64 * rounds as u64 * per_round;
    let tiny = s.summaries.iter().find(|x| x.name == "tiny").unwrap();
    assert_eq!(tiny.count, total, "count");
    assert_eq!(tiny.items, total, "items");
    assert_eq!(tiny.errors, total / 1000, "errors");
    assert_eq!(s.steps(), total);
    assert_eq!(s.dropped(), 0, "nothing dropped: overflow is folded");
    assert!(
        s.folded() > 0,
        "a 256-event ring cannot keep up with this loop"
    );
    assert_eq!(s.items(), total);
    assert!(tiny.wall_s > carina::Seconds::ZERO);
    let end = s.end.clone().unwrap();
    assert_eq!(end.folded, s.folded());
    assert!(
        end.warnings
            .iter()
            .any(|w| w.contains("counted in the step summaries only"))
    );
}

#[test]
fn folded_steps_also_count_with_per_instance_records() {
    let _s = common::serial();
    let s = tight_loop(2, 2, 100_000, StepDetail::All);
    let tiny = s.summaries.iter().find(|x| x.name == "tiny").unwrap();
    assert_eq!(tiny.count, 400_000);
    assert_eq!(tiny.items, 400_000);
    assert_eq!(s.dropped(), 0);
}
