//! The governor: permits granted and withheld as the (fake or real) clock crosses schedule
//! boundaries, waiters woken at boundaries, no lost wakeups under contention, deadline rescue,
//! and `control` records in the run.
//!
//! Every test holds `serial()`: one test installs a Carina run, and a governor emits its mode
//! changes into whatever run is installed.

use carina::Record;
use carina::control::governor::{Governor, ManualClock};
use carina::control::policy::{Mode, Policy};
use carina::control::schedule::Schedule;
use carina::control::{Calendar, Slot};
use jiff::{SignedDuration, Timestamp};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use carina::testing::serial;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn hours(h: i64) -> SignedDuration {
    SignedDuration::from_hours(h)
}

/// Waits (real time, at most 10 s) until `cond` holds.
fn eventually(what: &str, cond: impl Fn() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Runs `f` on a thread; the receiver gets its result.
fn spawn<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> mpsc::Receiver<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx
}

// Monday 2026-03-16, UTC.
const MON_0700: &str = "2026-03-16T07:00:00Z";

#[test]
fn permits_are_granted_and_withheld_as_the_clock_moves() {
    let _s = serial();
    let clock = ManualClock::new(ts(MON_0700));
    let g = Governor::with_clock(
        Schedule::default_weekday_peak(),
        Policy::throttle(0.5).unwrap(),
        4,
        clock.clone(),
    );
    assert_eq!((g.allowed(), g.mode()), (4, Mode::OffPeak));
    let mut held: Vec<_> = (0..4).map(|_| g.try_acquire().unwrap()).collect();
    assert!(g.try_acquire().is_none());

    // 08:00: peak, 2 allowed; the 4 permits held are not revoked.
    clock.advance(hours(1));
    assert_eq!((g.allowed(), g.mode()), (2, Mode::Peak));
    assert_eq!(g.in_use(), 4);
    held.pop();
    held.pop();
    assert_eq!(g.in_use(), 2);
    assert!(g.try_acquire().is_none(), "2 in use, 2 allowed");
    held.pop();
    let p = g.try_acquire().expect("1 in use, 2 allowed");
    assert!(g.try_acquire().is_none());
    drop(p);
    drop(held);

    // 20:00: off-peak again.
    clock.set(ts("2026-03-16T20:00:00Z"));
    assert_eq!((g.allowed(), g.mode()), (4, Mode::OffPeak));
    let st = g.status();
    assert_eq!(st.next_change, Some(ts("2026-03-17T08:00:00Z")));
    // The clock may also go back.
    clock.set(ts("2026-03-16T12:00:00Z"));
    assert_eq!(g.allowed(), 2);
    assert_eq!(g.changes(), 4);
    // A real-time timeout while nothing is allowed to start.
    let _a = g.try_acquire().unwrap();
    let _b = g.try_acquire().unwrap();
    let t = Instant::now();
    assert!(g.acquire_timeout(Duration::from_millis(30)).is_none());
    assert!(t.elapsed() >= Duration::from_millis(30));
}

#[test]
fn waiters_wake_at_the_boundary() {
    let _s = serial();
    let clock = ManualClock::new(ts("2026-03-16T10:00:00Z"));
    let g = Arc::new(Governor::with_clock(
        Schedule::default_weekday_peak(),
        Policy::Defer,
        2,
        clock.clone(),
    ));
    assert_eq!((g.allowed(), g.mode()), (0, Mode::Paused));
    let (g2, c2) = (g.clone(), clock.clone());
    let rx = spawn(move || {
        let p = g2.acquire();
        (c2.now(), p)
    });
    eventually("the waiter", || g.waiting() == 1);
    clock.set(ts("2026-03-16T19:59:59Z"));
    std::thread::sleep(Duration::from_millis(20));
    assert!(rx.try_recv().is_err(), "still peak: no permit");
    assert_eq!(g.waiting(), 1);
    clock.advance(SignedDuration::from_secs(1));
    let (at, permit) = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("woken at 20:00");
    assert_eq!(at, ts("2026-03-16T20:00:00Z"));
    assert_eq!(g.in_use(), 1);
    // The permit is Send: dropping it on another thread releases it.
    spawn(move || drop(permit))
        .recv_timeout(Duration::from_secs(10))
        .unwrap();
    assert_eq!(g.in_use(), 0);
}

#[test]
fn a_released_permit_wakes_a_waiter() {
    let _s = serial();
    let clock = ManualClock::new(ts(MON_0700));
    let g = Arc::new(Governor::with_clock(
        Schedule::default_weekday_peak(),
        Policy::Baseline,
        1,
        clock,
    ));
    let p = g.acquire();
    let g2 = g.clone();
    let rx = spawn(move || drop(g2.acquire()));
    eventually("the waiter", || g.waiting() == 1);
    std::thread::sleep(Duration::from_millis(10));
    assert!(rx.try_recv().is_err());
    drop(p);
    rx.recv_timeout(Duration::from_secs(10))
        .expect("woken by the release");
}

/// Peak until `until`, then off-peak; counts the calendar's calls.
struct PeakUntil {
    until: Timestamp,
    calls: AtomicUsize,
}

impl Calendar for PeakUntil {
    fn slot(&self, t: Timestamp) -> Slot {
        self.calls.fetch_add(1, Ordering::Relaxed);
        Slot {
            peak: t < self.until,
            tariff_per_kwh: None,
        }
    }
    fn next_change(&self, t: Timestamp) -> Option<Timestamp> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        (t < self.until).then_some(self.until)
    }
}

#[test]
fn system_clock_waiters_sleep_until_the_next_change_without_polling() {
    let _s = serial();
    let cal = Arc::new(PeakUntil {
        until: Timestamp::now() + SignedDuration::from_millis(300),
        calls: AtomicUsize::new(0),
    });
    let g = Governor::from_shared(
        cal.clone(),
        Policy::Defer,
        1,
        Arc::new(carina::control::governor::SystemClock),
    );
    let t = Instant::now();
    let p = g.acquire();
    let waited = t.elapsed();
    assert!(Timestamp::now() >= cal.until);
    assert!(waited >= Duration::from_millis(250), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    // One wait, not a poll loop: a handful of calendar calls (each of the two control
    // records also asks the calendar for the next peak window: up to 3 calls each).
    let calls = cal.calls.load(Ordering::Relaxed);
    assert!(calls <= 14, "{calls} calendar calls");
    drop(p);
}

#[test]
fn system_clock_waiters_wake_when_deadline_rescue_starts() {
    let _s = serial();
    let now = Timestamp::now();
    let cal = PeakUntil {
        until: now + hours(24),
        calls: AtomicUsize::new(0),
    };
    let g = Governor::new(cal, Policy::Defer, 2);
    assert_eq!(g.allowed(), 0);
    // 700 ms of work at nominal concurrency, deadline in 1 s: rescue starts in 300 ms.
    g.set_deadline(Some(now + SignedDuration::from_secs(1)));
    g.set_remaining_time(Some(SignedDuration::from_millis(700)));
    assert_eq!(g.mode(), Mode::Paused);
    let t = Instant::now();
    let _p = g.acquire();
    let waited = t.elapsed();
    assert!(waited >= Duration::from_millis(200), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    assert_eq!((g.mode(), g.allowed()), (Mode::DeadlineRescue, 2));
}

#[test]
fn defer_pauses_in_peak_until_the_deadline_needs_the_work_to_run() {
    let _s = serial();
    let clock = ManualClock::new(ts("2026-03-16T09:00:00Z"));
    let schedule = Schedule::builder("UTC")
        .peak("daily 08:00-20:00")
        .build()
        .unwrap();
    let g = Arc::new(Governor::with_clock(
        schedule,
        Policy::Defer,
        4,
        clock.clone(),
    ));
    g.set_deadline(Some(ts("2026-03-16T20:00:00Z")));
    // 72 000 units at 1 unit/s per worker, 4 workers: 5 h at nominal, so rescue at 15:00.
    g.set_remaining(72_000.0, 1.0);
    assert_eq!((g.allowed(), g.mode()), (0, Mode::Paused));
    let (g2, c2) = (g.clone(), clock.clone());
    let rx = spawn(move || {
        let p = g2.acquire();
        (c2.now(), p)
    });
    eventually("the waiter", || g.waiting() == 1);
    clock.set(ts("2026-03-16T14:59:00Z"));
    std::thread::sleep(Duration::from_millis(20));
    assert!(
        rx.try_recv().is_err(),
        "the deadline can still be met later"
    );
    assert_eq!(g.mode(), Mode::Paused);
    clock.set(ts("2026-03-16T15:00:00Z"));
    let (at, permit) = rx.recv_timeout(Duration::from_secs(10)).expect("rescued");
    assert_eq!(at, ts("2026-03-16T15:00:00Z"));
    assert_eq!((g.allowed(), g.mode()), (4, Mode::DeadlineRescue));
    assert!(g.status().rescue);
    // Progress does not end the rescue (it is sticky until the deadline is set again).
    g.set_remaining(1_000.0, 1.0);
    assert_eq!(g.mode(), Mode::DeadlineRescue);
    drop(permit);
    // Off-peak: the policy's own nominal.
    clock.set(ts("2026-03-16T20:00:00Z"));
    assert_eq!((g.allowed(), g.mode()), (4, Mode::OffPeak));
    // A new deadline starts over: tomorrow 20:00, 1 h left, so paused in peak until 19:00.
    g.set_deadline(Some(ts("2026-03-17T20:00:00Z")));
    g.set_remaining_time(Some(hours(1)));
    clock.set(ts("2026-03-17T09:00:00Z"));
    assert_eq!(g.mode(), Mode::Paused);
    clock.set(ts("2026-03-17T19:00:00Z"));
    assert_eq!(g.mode(), Mode::DeadlineRescue);
}

#[test]
fn without_an_estimate_rescue_starts_at_the_deadline() {
    let _s = serial();
    let clock = ManualClock::new(ts("2026-03-16T09:00:00Z"));
    let g = Governor::with_clock(
        Schedule::default_weekday_peak(),
        Policy::offpeak_boost(2.0, 0.0).unwrap(),
        3,
        clock.clone(),
    );
    g.set_deadline(Some(ts("2026-03-16T12:00:00Z")));
    assert_eq!(g.allowed(), 0);
    clock.set(ts("2026-03-16T11:59:59Z"));
    assert_eq!(g.allowed(), 0);
    clock.set(ts("2026-03-16T12:00:00Z"));
    assert_eq!((g.allowed(), g.mode()), (3, Mode::DeadlineRescue));
    // Off-peak keeps the boost.
    clock.set(ts("2026-03-16T21:00:00Z"));
    assert_eq!((g.allowed(), g.mode()), (6, Mode::OffPeak));
}

/// 8 threads take and release permits as fast as they can while the clock alternates between
/// off-peak (`off` allowed) and peak (`peak` allowed) every hour. Within each phase, once the
/// permits from before have drained, the number of threads holding a permit (an atomic
/// counter) never exceeds the phase's limit; every thread finishes.
fn hammer(policy: Policy, nominal: u32, off: usize, peak: usize) {
    const THREADS: usize = 8;
    // Peak 01:00-02:00, 03:00-04:00, 05:00-06:00, 07:00-08:00 every day (UTC).
    let schedule = Schedule::builder("UTC")
        .peak("daily 01:00-02:00")
        .peak("daily 03:00-04:00")
        .peak("daily 05:00-06:00")
        .peak("daily 07:00-08:00")
        .build()
        .unwrap();
    let clock = ManualClock::new(ts("2026-03-16T00:00:00Z"));
    let g = Arc::new(Governor::with_clock(
        schedule,
        policy,
        nominal,
        clock.clone(),
    ));
    assert_eq!(g.max_allowed() as usize, off);
    let holding = Arc::new(AtomicUsize::new(0));
    let phase_max = Arc::new(AtomicUsize::new(0));
    let overall_max = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let acquired = Arc::new(AtomicU32::new(0));
    let done: Vec<_> = (0..THREADS)
        .map(|_| {
            let (g, holding, phase_max, overall_max, stop, acquired) = (
                g.clone(),
                holding.clone(),
                phase_max.clone(),
                overall_max.clone(),
                stop.clone(),
                acquired.clone(),
            );
            spawn(move || {
                let mut i = 0u32;
                while !stop.load(Ordering::Relaxed) || i < 200 {
                    let p = g.acquire();
                    let n = holding.fetch_add(1, Ordering::SeqCst) + 1;
                    phase_max.fetch_max(n, Ordering::SeqCst);
                    overall_max.fetch_max(n, Ordering::SeqCst);
                    acquired.fetch_add(1, Ordering::Relaxed);
                    for _ in 0..50 {
                        std::hint::spin_loop();
                    }
                    holding.fetch_sub(1, Ordering::SeqCst);
                    drop(p);
                    if i.is_multiple_of(8) {
                        std::thread::yield_now();
                    }
                    i += 1;
                }
                i
            })
        })
        .collect();

    for step in 1..=8 {
        let in_peak = step % 2 == 1;
        let limit = if in_peak { peak } else { off };
        clock.advance(hours(1));
        assert_eq!(g.status().slot.peak, in_peak, "step {step}");
        assert_eq!(g.allowed() as usize, limit, "step {step}");
        // Permits from the previous phase drain; then the limit holds.
        eventually("the drain", || g.in_use() as usize <= limit);
        phase_max.store(holding.load(Ordering::SeqCst), Ordering::SeqCst);
        let before = acquired.load(Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(15));
        let max = phase_max.load(Ordering::SeqCst);
        assert!(max <= limit, "step {step}: {max} holders, limit {limit}");
        if limit == 0 {
            eventually("all threads waiting", || g.waiting() as usize == THREADS);
            assert_eq!(acquired.load(Ordering::Relaxed), before, "paused");
        } else {
            eventually("progress", || {
                acquired.load(Ordering::Relaxed) > before + 10
            });
        }
    }
    // The clock now stands still off-peak (08:00): the threads finish on release wakeups
    // alone; a lost wakeup would hang them.
    assert!(!g.status().slot.peak);
    stop.store(true, Ordering::Relaxed);
    for (i, rx) in done.into_iter().enumerate() {
        let n = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("thread {i} did not finish"));
        assert!(n >= 200);
    }
    assert!(overall_max.load(Ordering::SeqCst) <= off);
    assert_eq!((g.in_use(), g.waiting()), (0, 0));
    assert_eq!(g.changes(), 9);
}

#[test]
fn eight_threads_hammering_across_boundaries_with_a_reduced_peak() {
    let _s = serial();
    // Off-peak 2 x 2 = 4, peak ceil(2 x 0.5) = 1.
    hammer(Policy::offpeak_boost(2.0, 0.5).unwrap(), 2, 4, 1);
}

#[test]
fn eight_threads_hammering_across_boundaries_with_a_paused_peak() {
    let _s = serial();
    // Off-peak 3, paused in peak: all 8 threads block, and all wake at the boundary.
    hammer(Policy::Defer, 3, 3, 0);
}

#[test]
fn control_records_are_written_to_the_run() {
    let _s = serial();
    let (sink, records) = carina::sink::MemorySink::new();
    let run = carina::Run::builder("governor-control")
        .run_file(false)
        .sink(sink)
        .constant_watts(50.0)
        .sample_interval(Duration::from_millis(10))
        .start()
        .expect("start the run");
    let clock = ManualClock::new(ts(MON_0700));
    let g = Governor::with_clock(
        Schedule::default_weekday_peak(),
        Policy::throttle(0.5).unwrap(),
        7,
        clock.clone(),
    );
    clock.advance(hours(1)); // 08:00 peak
    clock.advance(hours(6)); // 14:00 still peak: no record
    clock.advance(hours(6)); // 20:00 off-peak
    assert_eq!(g.changes(), 3);
    let _ = run.finish().expect("finish");
    let controls: Vec<_> = records
        .all()
        .into_iter()
        .filter_map(|r| match r {
            Record::Control(c) => Some(c),
            _ => None,
        })
        .collect();
    let seen: Vec<(&str, u32, u32)> = controls
        .iter()
        .map(|c| (c.mode.as_str(), c.allowed, c.nominal))
        .collect();
    assert_eq!(
        seen,
        [("off-peak", 7, 7), ("peak", 4, 7), ("off-peak", 7, 7)],
        "{controls:#?}"
    );
    assert!(controls.iter().all(|c| c.policy == "throttle"));
    let reason = controls[1].reason.as_deref().unwrap_or("");
    assert!(
        reason.contains("peak until 2026-03-16T20:00:00Z") && reason.contains("throttle"),
        "{reason}"
    );
    assert!(
        controls[0]
            .reason
            .as_deref()
            .unwrap_or("")
            .starts_with("start")
    );
    assert!(controls.windows(2).all(|w| w[0].t_s <= w[1].t_s));
    // Each record names the peak window it lies in, else the next one (Monday's, then
    // Tuesday's once Monday's has ended).
    let peaks: Vec<_> = controls
        .iter()
        .map(|c| {
            c.next_peak
                .map(|w| (w.start.to_string(), w.end.to_string()))
        })
        .collect();
    let w = |a: &str, b: &str| Some((a.to_owned(), b.to_owned()));
    assert_eq!(
        peaks,
        [
            w("2026-03-16T08:00:00Z", "2026-03-16T20:00:00Z"),
            w("2026-03-16T08:00:00Z", "2026-03-16T20:00:00Z"),
            w("2026-03-17T08:00:00Z", "2026-03-17T20:00:00Z"),
        ]
    );
}

#[test]
fn without_a_run_changes_are_counted_but_not_recorded() {
    let _s = serial();
    assert!(!carina::is_recording());
    let clock = ManualClock::new(ts(MON_0700));
    let g = Governor::with_clock(
        Schedule::default_weekday_peak(),
        Policy::Defer,
        2,
        clock.clone(),
    );
    clock.advance(hours(1));
    assert_eq!((g.changes(), g.allowed()), (2, 0));
    // A dropped governor is forgotten by its clock.
    drop(g);
    clock.advance(hours(1));
}
