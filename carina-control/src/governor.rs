//! The governor: a concurrency limit that follows a peak calendar and a policy.
//!
//! Worker threads take a [`Permit`] per unit of work (a batch) and drop it when done:
//!
//! ```
//! use carina_control::{governor::Governor, policy::Policy, schedule::Schedule};
//! use std::sync::Arc;
//!
//! let gov = Arc::new(Governor::new(Schedule::default_weekday_peak(), Policy::Baseline, 2));
//! let workers: Vec<_> = (0..2)
//!     .map(|_| {
//!         let gov = gov.clone();
//!         std::thread::spawn(move || {
//!             for _batch in 0..10 {
//!                 let _permit = gov.acquire(); // blocks while the allowed concurrency is used
//!                 // ... work ...
//!             } // the permit is released here and wakes a waiter
//!         })
//!     })
//!     .collect();
//! for w in workers {
//!     w.join().unwrap();
//! }
//! assert_eq!(gov.in_use(), 0);
//! ```
//!
//! # How the limit follows the clock
//!
//! The governor keeps the current [`Slot`], cached until the calendar's
//! [`next_change`](Calendar::next_change). Every call (`acquire`, `try_acquire`, `allowed`,
//! dropping a permit, ...) first brings the state up to date with the clock; when the mode or
//! the allowed concurrency changes it records a `control` record in the installed run
//! ([`emit_control`]; nothing without a run) and, if more is allowed, wakes all waiters. The
//! initial mode is recorded when the governor is created.
//!
//! A thread that cannot get a permit waits on a condition variable until a permit is released,
//! or until the next instant at which the allowed concurrency may rise: the next calendar
//! boundary or the instant deadline rescue starts. It never polls: with the [`SystemClock`] it
//! waits with a timeout up to that instant (at most [`SystemClock::MAX_WAIT`], so a wall-clock
//! jump is noticed within a minute).
//!
//! Lowering the allowed concurrency never revokes permits already held: they drain as their
//! holders drop them, and no new permit is granted until fewer than the new limit are in use.
//! A change that happens while nobody calls the governor (all workers busy with their permits)
//! is recorded at the next call, typically when a permit is dropped.
//!
//! # Clocks and tests
//!
//! The governor reads time from a [`Clock`]. [`SystemClock`] is the real clock.
//! [`ManualClock`] is a clock that only moves when told (`advance`, `set`), so tests can run a
//! week of schedule in milliseconds. Its design: every governor registers a [`ClockWaker`]
//! (a weak reference to itself) with its clock when it is created; `ManualClock` keeps them and,
//! after each change of its time, calls [`ClockWaker::wake`] on each, which takes the
//! governor's lock, brings it up to date (recording mode changes at the new time) and wakes all
//! its waiters. Waiters on a manual clock therefore block without any timeout
//! ([`Clock::wait_budget`] returns `None`). No wakeup can be lost: a waiter reads the clock and
//! starts waiting while holding the governor's lock, and the waker takes that lock before
//! notifying, so the waiter either sees the new time or is already waiting when notified.
//!
//! # Deadlines and remaining work
//!
//! [`Governor::set_deadline`] gives the job a deadline; [`Governor::set_remaining`] (work units
//! and the rate of one worker) or [`Governor::set_remaining_time`] (time at nominal
//! concurrency) tells the governor how much work is left. Call them whenever progress is known
//! (e.g. after each batch, or every few seconds); between calls the last estimate is kept, which
//! errs on the safe side while work progresses. When `now + remaining at nominal >= deadline`
//! the governor enters rescue ([`crate::policy::rescue_due`]): it allows at least
//! nominal concurrency from then on (mode `deadline-rescue` while that overrides the policy).
//! Rescue is sticky: it lasts until [`Governor::set_deadline`] is called again. Without an
//! estimate, rescue starts at the deadline.

use super::Calendar;
use super::Slot;
use super::policy::{Mode, Policy, rescue_due, rescue_start};
use carina_runtime::recorder::{ControlEvent, emit_control};
use jiff::{SignedDuration, Timestamp};
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

/// How long the cached slot is trusted when the calendar reports no change within a year.
const RECHECK_WITHOUT_CHANGE: SignedDuration = SignedDuration::from_hours(24);

// ---------------------------------------------------------------------------------------------
// Clocks
// ---------------------------------------------------------------------------------------------

/// Where a governor reads the time, and how it waits for a future instant.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> Timestamp;

    /// How long, in real time, a governor may block before re-checking, when the next instant
    /// at which its state may change is `until` (by this clock; `None`: no such instant
    /// known). `None` blocks until woken: only for clocks that wake their governors themselves
    /// through [`Clock::register`] whenever their time changes.
    fn wait_budget(&self, until: Option<Timestamp>) -> Option<Duration>;

    /// Called once by each governor created on this clock. A clock whose time changes under
    /// program control keeps the waker and calls [`ClockWaker::wake`] after each change; the
    /// default ignores it.
    fn register(&self, waker: ClockWaker) {
        let _ = waker;
    }
}

/// The real clock ([`Timestamp::now`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl SystemClock {
    /// The longest single wait: a wall-clock jump is noticed within this time.
    pub const MAX_WAIT: Duration = Duration::from_secs(60);
}

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }

    fn wait_budget(&self, until: Option<Timestamp>) -> Option<Duration> {
        let Some(until) = until else {
            return Some(Self::MAX_WAIT);
        };
        let left = Timestamp::now().duration_until(until);
        if left <= SignedDuration::ZERO {
            return Some(Duration::from_millis(1));
        }
        // A millisecond late rather than early: an early wake-up would only wait again.
        let d = left.unsigned_abs() + Duration::from_millis(1);
        Some(d.min(Self::MAX_WAIT))
    }
}

/// A clock that moves only when told; see the [module documentation](self) for how it wakes
/// the governors built on it.
pub struct ManualClock {
    now: Mutex<Timestamp>,
    wakers: Mutex<Vec<ClockWaker>>,
}

impl ManualClock {
    /// A clock standing at `start`, shared so the test can keep a handle:
    /// `Governor::with_clock(.., clock.clone())`.
    pub fn new(start: Timestamp) -> Arc<ManualClock> {
        Arc::new(ManualClock {
            now: Mutex::new(start),
            wakers: Mutex::new(Vec::new()),
        })
    }

    /// The clock's time (also available through [`Clock::now`]).
    pub fn now(&self) -> Timestamp {
        *lock(&self.now)
    }

    /// Moves the clock to `t` (backwards too) and brings every governor on it up to date,
    /// waking their waiters. Returns when all governors have seen the new time.
    pub fn set(&self, t: Timestamp) {
        *lock(&self.now) = t;
        let wakers: Vec<ClockWaker> = {
            let mut w = lock(&self.wakers);
            w.retain(ClockWaker::is_alive);
            w.clone()
        };
        for w in wakers {
            w.wake();
        }
    }

    /// Moves the clock forward by `by` (see [`ManualClock::set`]).
    pub fn advance(&self, by: SignedDuration) {
        let t = self.now();
        self.set(t.checked_add(by).unwrap_or(Timestamp::MAX));
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *lock(&self.now)
    }

    fn wait_budget(&self, _until: Option<Timestamp>) -> Option<Duration> {
        None
    }

    fn register(&self, waker: ClockWaker) {
        let mut w = lock(&self.wakers);
        w.retain(ClockWaker::is_alive);
        w.push(waker);
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("now", &self.now())
            .finish_non_exhaustive()
    }
}

/// A weak handle on a governor, given to its clock: [`ClockWaker::wake`] makes the governor
/// re-read the clock and wakes its waiters.
#[derive(Clone)]
pub struct ClockWaker(Weak<Inner>);

impl ClockWaker {
    /// Brings the governor up to date with its clock and wakes all its waiters. Returns false
    /// when the governor (and all its permits) are gone.
    pub fn wake(&self) -> bool {
        match self.0.upgrade() {
            Some(inner) => {
                let mut st = inner.lock();
                inner.refresh(&mut st);
                inner.cv.notify_all();
                true
            }
            None => false,
        }
    }

    /// Whether the governor still exists.
    pub fn is_alive(&self) -> bool {
        self.0.strong_count() > 0
    }
}

impl fmt::Debug for ClockWaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClockWaker")
            .field("alive", &self.is_alive())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------------
// The governor
// ---------------------------------------------------------------------------------------------

/// A snapshot of a governor's state.
#[derive(Debug, Clone, PartialEq)]
pub struct GovernorStatus {
    /// The current mode.
    pub mode: Mode,
    /// Concurrency allowed now.
    pub allowed: u32,
    /// The nominal concurrency.
    pub nominal: u32,
    /// Permits held.
    pub in_use: u32,
    /// Threads blocked in `acquire`.
    pub waiting: u32,
    /// The calendar's slot now.
    pub slot: Slot,
    /// When the slot changes next (`None`: not within a year).
    pub next_change: Option<Timestamp>,
    /// Whether deadline rescue is on.
    pub rescue: bool,
    /// Mode or allowed-concurrency changes so far, the initial mode included (one `control`
    /// record each when a run is installed).
    pub changes: u64,
}

struct State {
    in_use: u32,
    waiting: u32,
    allowed: u32,
    mode: Mode,
    slot: Slot,
    /// The cached slot holds on `[slot_from, slot_until)`.
    slot_from: Timestamp,
    slot_until: Timestamp,
    /// Whether `slot_until` is the calendar's `next_change` (not a re-check time).
    slot_until_is_change: bool,
    deadline: Option<Timestamp>,
    remaining: Option<SignedDuration>,
    rescue: bool,
    changes: u64,
}

/// The shared part of a governor; permits and clock wakers point to it.
struct Inner {
    calendar: Arc<dyn Calendar>,
    clock: Arc<dyn Clock>,
    policy: Policy,
    nominal: u32,
    state: Mutex<State>,
    cv: Condvar,
}

/// Hands out permits up to the concurrency that the policy allows in the calendar's current
/// slot. `Send + Sync`: share it as `&Governor` or `Arc<Governor>`. See the [module
/// documentation](self).
pub struct Governor {
    inner: Arc<Inner>,
}

/// The right to run one unit of work; released (waking a waiter) when dropped. `Send`: it may
/// be dropped on another thread. Holds the governor's shared state alive.
#[must_use = "the permit is released as soon as it is dropped"]
pub struct Permit {
    inner: Arc<Inner>,
}

impl Governor {
    /// A governor on the real clock. `nominal` is the concurrency the job would use without a
    /// policy (at least 1; 0 is taken as 1).
    pub fn new(calendar: impl Calendar + 'static, policy: Policy, nominal: u32) -> Governor {
        Governor::from_shared(Arc::new(calendar), policy, nominal, Arc::new(SystemClock))
    }

    /// A governor on the given clock (e.g. a [`ManualClock`] in tests).
    pub fn with_clock(
        calendar: impl Calendar + 'static,
        policy: Policy,
        nominal: u32,
        clock: Arc<dyn Clock>,
    ) -> Governor {
        Governor::from_shared(Arc::new(calendar), policy, nominal, clock)
    }

    /// A governor on a shared calendar.
    pub fn from_shared(
        calendar: Arc<dyn Calendar>,
        policy: Policy,
        nominal: u32,
        clock: Arc<dyn Clock>,
    ) -> Governor {
        let now = clock.now();
        let slot = calendar.slot(now);
        let nominal = nominal.max(1);
        let inner = Arc::new(Inner {
            calendar,
            clock,
            policy,
            nominal,
            state: Mutex::new(State {
                in_use: 0,
                waiting: 0,
                allowed: 0,
                mode: Mode::Paused,
                slot,
                // Forces the first refresh to ask the calendar.
                slot_from: now,
                slot_until: now,
                slot_until_is_change: false,
                deadline: None,
                remaining: None,
                rescue: false,
                changes: 0,
            }),
            cv: Condvar::new(),
        });
        {
            let mut st = inner.lock();
            inner.refresh(&mut st);
        }
        inner.clock.register(ClockWaker(Arc::downgrade(&inner)));
        Governor { inner }
    }

    /// Waits until a permit is available and takes it.
    pub fn acquire(&self) -> Permit {
        self.acquire_until(None)
            .expect("acquire without a time limit always gets a permit")
    }

    /// Takes a permit if one is available now.
    pub fn try_acquire(&self) -> Option<Permit> {
        let mut st = self.inner.lock();
        self.inner.refresh(&mut st);
        self.take(&mut st)
    }

    /// Waits at most `timeout` (real time) for a permit.
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<Permit> {
        self.acquire_until(Some(Instant::now() + timeout))
    }

    fn take(&self, st: &mut State) -> Option<Permit> {
        if st.in_use < st.allowed {
            st.in_use += 1;
            Some(Permit {
                inner: self.inner.clone(),
            })
        } else {
            None
        }
    }

    fn acquire_until(&self, limit: Option<Instant>) -> Option<Permit> {
        let inner = &*self.inner;
        let mut st = inner.lock();
        loop {
            inner.refresh(&mut st);
            if let Some(p) = self.take(&mut st) {
                return Some(p);
            }
            let mut budget = inner.clock.wait_budget(inner.wake_at(&st));
            if let Some(limit) = limit {
                let left = limit.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return None;
                }
                budget = Some(budget.map_or(left, |b| b.min(left)));
            }
            st.waiting += 1;
            st = match budget {
                Some(d) => {
                    inner
                        .cv
                        .wait_timeout(st, d)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                None => inner.cv.wait(st).unwrap_or_else(|e| e.into_inner()),
            };
            st.waiting -= 1;
        }
    }

    /// The concurrency allowed now.
    pub fn allowed(&self) -> u32 {
        self.status().allowed
    }

    /// The mode now.
    pub fn mode(&self) -> Mode {
        self.status().mode
    }

    /// Permits held now.
    pub fn in_use(&self) -> u32 {
        lock(&self.inner.state).in_use
    }

    /// Threads blocked in `acquire` now.
    pub fn waiting(&self) -> u32 {
        lock(&self.inner.state).waiting
    }

    /// Mode or allowed-concurrency changes so far, the initial mode included.
    pub fn changes(&self) -> u64 {
        self.status().changes
    }

    /// The nominal concurrency.
    pub fn nominal(&self) -> u32 {
        self.inner.nominal
    }

    /// The most this governor ever allows ([`Policy::max_allowed`]): how many workers to
    /// spawn.
    pub fn max_allowed(&self) -> u32 {
        self.inner.policy.max_allowed(self.inner.nominal)
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.inner.policy
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// The state now (brought up to date with the clock first).
    pub fn status(&self) -> GovernorStatus {
        let mut st = self.inner.lock();
        self.inner.refresh(&mut st);
        GovernorStatus {
            mode: st.mode,
            allowed: st.allowed,
            nominal: self.inner.nominal,
            in_use: st.in_use,
            waiting: st.waiting,
            slot: st.slot,
            next_change: st.slot_until_is_change.then_some(st.slot_until),
            rescue: st.rescue,
            changes: st.changes,
        }
    }

    /// Sets (or clears) the deadline, and ends a rescue in progress (it is re-evaluated at
    /// once).
    pub fn set_deadline(&self, deadline: Option<Timestamp>) {
        let mut st = self.inner.lock();
        st.deadline = deadline;
        st.rescue = false;
        self.inner.refresh(&mut st);
        self.inner.cv.notify_all();
    }

    /// Tells the governor how much work is left: `work_units` (any unit: items, batches, ...)
    /// processed at `rate_per_worker_per_sec` units per second by one worker, so
    /// `work_units / (rate * nominal)` seconds at nominal concurrency. A zero or negative
    /// `work_units` means done; a rate that is not positive and finite means "never": rescue
    /// starts at once if there is a deadline.
    pub fn set_remaining(&self, work_units: f64, rate_per_worker_per_sec: f64) {
        let secs = if work_units <= 0.0 || work_units.is_nan() {
            0.0
        } else if rate_per_worker_per_sec > 0.0 && rate_per_worker_per_sec.is_finite() {
            work_units / (rate_per_worker_per_sec * f64::from(self.inner.nominal))
        } else {
            f64::INFINITY
        };
        let d = SignedDuration::try_from_secs_f64(secs).unwrap_or(SignedDuration::MAX);
        self.set_remaining_time(Some(d));
    }

    /// Tells the governor the time the remaining work takes at nominal concurrency (`None`:
    /// unknown, rescue then starts at the deadline).
    pub fn set_remaining_time(&self, at_nominal: Option<SignedDuration>) {
        let mut st = self.inner.lock();
        st.remaining = at_nominal;
        self.inner.refresh(&mut st);
        // The instant rescue starts may have moved: let waiters recompute their wait.
        self.inner.cv.notify_all();
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The next instant at which the allowed concurrency may change by itself.
    fn wake_at(&self, st: &State) -> Option<Timestamp> {
        let rescue_at = match st.deadline {
            Some(d) if !st.rescue => Some(rescue_start(d, st.remaining)),
            _ => None,
        };
        Some(match rescue_at {
            Some(r) => r.min(st.slot_until),
            None => st.slot_until,
        })
    }

    /// Brings the state up to date with the clock; records and signals changes.
    fn refresh(&self, st: &mut State) {
        let now = self.clock.now();
        if now < st.slot_from || now >= st.slot_until {
            st.slot = self.calendar.slot(now);
            st.slot_from = now;
            match self.calendar.next_change(now).filter(|&n| n > now) {
                Some(n) => {
                    st.slot_until = n;
                    st.slot_until_is_change = true;
                }
                None => {
                    st.slot_until = now
                        .checked_add(RECHECK_WITHOUT_CHANGE)
                        .unwrap_or(Timestamp::MAX);
                    st.slot_until_is_change = false;
                }
            }
        }
        if !st.rescue && rescue_due(now, st.deadline, st.remaining) {
            st.rescue = true;
        }
        let allowed = self.policy.allowed(st.slot, self.nominal, st.rescue);
        let mode = self.policy.mode(st.slot, self.nominal, st.rescue);
        if st.changes > 0 && allowed == st.allowed && mode == st.mode {
            return;
        }
        let grew = allowed > st.allowed;
        st.allowed = allowed;
        st.mode = mode;
        st.changes += 1;
        emit_control(ControlEvent {
            policy: self.policy.name().to_owned(),
            mode,
            allowed,
            nominal: self.nominal,
            reason: Some(self.reason(st, now)),
            next_peak_ms: next_peak(self.calendar.as_ref(), now)
                .map(|(a, b)| (a.as_millisecond(), b.as_millisecond())),
        });
        if grew {
            self.cv.notify_all();
        }
    }

    /// Why the governor is in its mode, in words.
    fn reason(&self, st: &State, now: Timestamp) -> String {
        let mut s = String::new();
        if st.changes == 1 {
            s.push_str("start; ");
        }
        if st.mode == Mode::DeadlineRescue {
            let deadline = st
                .deadline
                .map_or_else(|| "?".to_owned(), |d| d.to_string());
            match st.remaining {
                Some(r) if now < deadline_or_max(st.deadline) => s.push_str(&format!(
                    "deadline {deadline}: the remaining work needs {:.2} h at nominal \
                     concurrency; ",
                    r.as_secs_f64() / 3600.0
                )),
                _ => s.push_str(&format!("deadline {deadline} reached; ")),
            }
        }
        s.push_str(if st.slot.peak { "peak" } else { "off-peak" });
        if st.slot_until_is_change {
            s.push_str(&format!(" until {}", st.slot_until));
        }
        if let Some(t) = st.slot.tariff_per_kwh {
            s.push_str(&format!(", tariff {t}/kWh"));
        }
        s.push_str(&format!("; policy {}", self.policy));
        s
    }
}

fn deadline_or_max(d: Option<Timestamp>) -> Timestamp {
    d.unwrap_or(Timestamp::MAX)
}

impl Drop for Permit {
    fn drop(&mut self) {
        let inner = &*self.inner;
        let mut st = inner.lock();
        st.in_use = st.in_use.saturating_sub(1);
        inner.refresh(&mut st);
        if st.waiting > 0 && st.in_use < st.allowed {
            inner.cv.notify_one();
        }
    }
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit").finish_non_exhaustive()
    }
}

impl fmt::Debug for Governor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.inner.lock();
        f.debug_struct("Governor")
            .field("policy", &self.inner.policy)
            .field("nominal", &self.inner.nominal)
            .field("mode", &st.mode)
            .field("allowed", &st.allowed)
            .field("in_use", &st.in_use)
            .field("waiting", &st.waiting)
            .finish_non_exhaustive()
    }
}

/// Calendar changes walked at most to find a peak window's start or end: a calendar whose
/// slots change without a peak (tariff steps) is not walked without end.
const PEAK_WALK: usize = 64;

/// The peak window `now` lies in (its start given as `now`), else the next one: `(start, end)`.
/// `None` when no peak window starts within the calendar's look-ahead, or its end is not
/// found. Written in each `control` record, so `carina serve` can show when the next peak
/// starts without the schedule.
pub fn next_peak(calendar: &dyn Calendar, now: Timestamp) -> Option<(Timestamp, Timestamp)> {
    let after = |t: Timestamp| calendar.next_change(t).filter(|&n| n > t);
    let mut start = now;
    let mut walked = 0;
    while !calendar.slot(start).peak {
        start = after(start)?;
        walked += 1;
        if walked > PEAK_WALK {
            return None;
        }
    }
    let mut end = start;
    loop {
        end = after(end)?;
        if !calendar.slot(end).peak {
            return Some((start, end));
        }
        walked += 1;
        if walked > 2 * PEAK_WALK {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    // Governors emit control records into whatever run is installed, and other unit tests of
    // this crate install runs: governor behaviour is tested in the `carina` package's
    // `tests/governor.rs`.

    #[test]
    fn the_next_peak_window_is_found_ahead_or_around_now() {
        use crate::schedule::Schedule;
        let s = Schedule::default_weekday_peak();
        let t = |x: &str| x.parse::<Timestamp>().unwrap();
        // Monday 07:00 UTC: the day's window is ahead; inside it, it runs from now.
        assert_eq!(
            next_peak(&s, t("2026-03-16T07:00:00Z")),
            Some((t("2026-03-16T08:00:00Z"), t("2026-03-16T20:00:00Z")))
        );
        assert_eq!(
            next_peak(&s, t("2026-03-16T09:30:00Z")),
            Some((t("2026-03-16T09:30:00Z"), t("2026-03-16T20:00:00Z")))
        );
        // Friday evening: Monday's window, over the weekend.
        assert_eq!(
            next_peak(&s, t("2026-03-20T21:00:00Z")),
            Some((t("2026-03-23T08:00:00Z"), t("2026-03-23T20:00:00Z")))
        );
        // A calendar without a peak window: none.
        let none = Schedule::builder("UTC").build().unwrap();
        assert_eq!(next_peak(&none, t("2026-03-16T07:00:00Z")), None);
    }

    #[test]
    fn governor_and_permit_are_send_and_sync() {
        assert_send_sync::<Governor>();
        assert_send_sync::<Permit>();
        assert_send_sync::<ManualClock>();
    }

    #[test]
    fn system_clock_budget_is_bounded() {
        let c = SystemClock;
        assert_eq!(c.wait_budget(None), Some(SystemClock::MAX_WAIT));
        let past = Timestamp::now() - SignedDuration::from_secs(5);
        assert_eq!(c.wait_budget(Some(past)), Some(Duration::from_millis(1)));
        // The budget is the time left until `soon` plus a millisecond, so it lies between that
        // and that less however long this thread was held up between the two clock reads
        // (bounded by `took`, which a loaded machine stretches).
        let t0 = std::time::Instant::now();
        let soon = Timestamp::now() + SignedDuration::from_millis(200);
        let b = c.wait_budget(Some(soon)).unwrap();
        let took = t0.elapsed();
        assert!(b <= Duration::from_millis(202), "{b:?}");
        // A millisecond of slack for the wall clock and the monotonic clock ticking apart.
        assert!(
            b + took + Duration::from_millis(1) >= Duration::from_millis(201),
            "{b:?} {took:?}"
        );
    }
}
