//! A span entered several times (an instrumented future polled across `.await`s) is one step,
//! credited with energy only while it is entered.

use crate::common::{only, record_with, serial, spin};
use carina::record::StepStatus;
use carina_tracing::CarinaLayer;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use tracing::Instrument;

#[test]
fn span_entered_three_times_is_one_step() {
    let _s = serial();
    let steps = record_with(CarinaLayer::new(), || {
        let parent = tracing::info_span!("parent");
        let _p = parent.enter();
        let span = tracing::info_span!("polled", items = 9);
        for _ in 0..3 {
            {
                let _e = span.enter();
                spin(20_000);
            }
            // Work between the enters, in a step of its own.
            let _g = carina::step("gap");
            spin(20_000);
        }
        drop(span);
    });
    let polled = only(&steps, "polled");
    let parent = only(&steps, "parent");
    assert_eq!(polled.items, 9);
    assert_eq!(polled.status, StepStatus::Ok);
    assert!(polled.r#async && !polled.unfinished);
    assert_eq!(polled.parent, Some(parent.id));
    // The step spans first enter to close: the gaps are inside its wall time...
    let gaps: Vec<_> = steps.iter().filter(|s| s.name == "gap").collect();
    assert_eq!(gaps.len(), 3);
    assert!(
        polled.end_s - polled.start_s >= carina::Seconds(0.1),
        "{polled:?}"
    );
    // ...but not in its energy: 60 ms entered and 60 ms of gaps get about the same.
    let gap_j: carina::Joules = gaps.iter().map(|g| g.energy_j).sum();
    let ratio = polled.energy_j / gap_j;
    assert!(
        (0.33..3.0).contains(&ratio),
        "span {polled:?}, gaps {gap_j}"
    );
    // The gaps are children of the parent, not of the exited span.
    assert!(gaps.iter().all(|g| g.parent == Some(parent.id)));
}

/// Returns `Pending` `n` times (spinning before each), then `Ready`.
async fn yield_times(n: u32) {
    let mut left = n;
    std::future::poll_fn(move |cx| {
        spin(1_000);
        if left == 0 {
            Poll::Ready(())
        } else {
            left -= 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await;
}

#[test]
fn instrumented_future_polled_three_times_is_one_step() {
    let _s = serial();
    let mut polls = 0;
    let steps = record_with(CarinaLayer::new(), || {
        let fut = async {
            yield_times(2).await;
            tracing::info_span!("inside_task").in_scope(|| spin(500));
            7u32
        }
        .instrument(tracing::info_span!("task", items = 5));
        let mut fut = pin!(fut);
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            polls += 1;
            if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
                assert_eq!(v, 7);
                break;
            }
            // Between polls the span is not entered.
            assert_eq!(CarinaLayer::entered_on_this_thread(), 0);
            let _g = carina::step("between_polls");
            spin(500);
        }
    });
    assert_eq!(polls, 3);
    let task = only(&steps, "task");
    assert_eq!(task.items, 5);
    assert_eq!(task.parent, None);
    assert!(task.r#async && !task.unfinished && !task.cancelled);
    assert_eq!(only(&steps, "inside_task").parent, Some(task.id));
    let between: Vec<_> = steps.iter().filter(|s| s.name == "between_polls").collect();
    assert_eq!(between.len(), 2);
    assert!(between.iter().all(|b| b.parent.is_none()));
}
