//! The hot path: step guards, per-thread rings and the process-wide run slot.
//!
//! With no run installed a step costs one relaxed atomic load. With a run installed, entering a
//! step reads the TSC and writes one event into the thread's ring; leaving does the same. No lock,
//! allocation, syscall or non-TSC clock is touched on that path. A thread's first step of a run
//! takes the `#[cold]` registration path, which locks the run's registry once.

use crate::clock::Clock;
use crate::cpuclock::ThreadCpuClock;
pub use crate::event::{Event, PARENT_MARK, Status};
use crate::ring::{self, Consumer, Writer};
use crate::slot::{self, Decoder, Slot};
use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Identifies the installed run; 0 means none. Incremented for every run so that a thread still
/// holding the previous run's ring re-registers.
static EPOCH: AtomicU64 = AtomicU64::new(0);
static NEXT_EPOCH: AtomicU64 = AtomicU64::new(1);
static NEXT_ASYNC_ID: AtomicU64 = AtomicU64::new(1);

/// The installed run's registry, used only on the cold paths (thread registration, install,
/// uninstall).
static CURRENT: Mutex<Option<Arc<Registry>>> = Mutex::new(None);

/// What the aggregator knows about one application thread (the runtime's side of its ring).
pub struct ThreadHandle {
    /// The thread's index in the run, in order of registration (`step.thread`).
    pub index: u32,
    /// The thread's name, if it has one.
    pub name: Option<String>,
    /// The reading end of the thread's ring.
    pub consumer: EventConsumer,
    /// The thread's CPU clock, read by the aggregator at each tick while the thread lives.
    pub cpu_clock: Option<ThreadCpuClock>,
    /// CPU time at registration, nanoseconds (the baseline of the first interval).
    pub cpu_at_start: Option<u64>,
    /// Written by the thread when it leaves the run (exit, or registration with a newer run).
    pub exit: Arc<ThreadExit>,
    /// Steps this thread counted without a ring slot.
    pub folds: Arc<Folds>,
}

/// Bytes of one slot of a thread's ring: a plain step's enter or exit takes one (see
/// `docs/ARCHITECTURE.md`, "The hot path"), so a ring of the default 65 536 slots is 1 MiB.
pub const RING_SLOT_BYTES: usize = std::mem::size_of::<Slot>();

/// The reading end of a thread's ring, as the aggregator sees it: [`Event`]s. The ring holds
/// them in a 16-byte form (half the cache lines a step hands from its thread to the
/// aggregator's core); this decodes them as they are drained.
pub struct EventConsumer {
    inner: Consumer<Slot>,
    /// The run's clock: a drain reads it first, to restore the full time of each event.
    clock: Clock,
}

impl EventConsumer {
    /// Moves every published event into `out`, oldest first; returns how many.
    pub fn drain_into(&mut self, out: &mut Vec<Event>) -> usize {
        let before = out.len();
        out.reserve(self.inner.pending());
        let clock = self.clock;
        // The clock is read right after the ring's published end: every event drained was
        // written before that load, so its time is before this reading (or, on another core's
        // TSC or an `rdtsc` run a little early, at most a few ticks after it), which is all the
        // decoder needs. Read before the end instead, a stall between the two (a preemption,
        // the VM descheduled) longer than the decoder's margin would let newer events in.
        self.inner.drain_with(
            || Decoder::new(clock.raw()),
            |d, s| {
                if let Some(ev) = d.decode(s) {
                    out.push(ev);
                }
            },
        );
        out.len() - before
    }

    /// Ring slots waiting (a snapshot): an event takes one, a segment's enter two or three.
    pub fn pending(&self) -> usize {
        self.inner.pending()
    }

    /// Ring capacity in slots.
    pub fn capacity(&self) -> usize {
        self.inner.capacity()
    }

    /// Events refused so far.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped()
    }

    /// Whether the producer is gone (its thread exited or its run ended).
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }
}

/// Most distinct step names one thread can fold; a step of a further name is dropped.
pub const MAX_FOLD_NAMES: usize = 256;

/// Steps that found their thread's ring full, counted per name instead of recorded: the ring
/// holds per-instance events, this holds exact totals. Written by the owning thread, read by the
/// aggregator; the lock is taken only on the overflow path, never while the ring has room.
#[derive(Default)]
pub struct Folds {
    /// One entry per step name, at most [`MAX_FOLD_NAMES`].
    pub entries: Mutex<Vec<Fold>>,
}

/// Totals of one step name's folded instances.
#[derive(Debug, Clone, Copy)]
pub struct Fold {
    /// The step name.
    pub name: &'static str,
    /// Instances folded.
    pub count: u64,
    /// Their items.
    pub items: u64,
    /// Their summed wall time, nanoseconds.
    pub wall_ns: u64,
    /// Instances that ended with an error.
    pub errors: u64,
    /// Instances that ended in a panic.
    pub panics: u64,
}

impl Folds {
    /// The entry for `name`, created if there is room.
    fn slot(&self, name: &'static str) -> Option<u32> {
        let mut e = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = e
            .iter()
            .position(|f| std::ptr::eq(f.name, name) || f.name == name)
        {
            return Some(i as u32);
        }
        if e.len() >= MAX_FOLD_NAMES {
            return None;
        }
        e.push(Fold {
            name,
            count: 0,
            items: 0,
            wall_ns: 0,
            errors: 0,
            panics: 0,
        });
        Some((e.len() - 1) as u32)
    }

    fn add(&self, slot: u32, items: u64, wall_ns: u64, status: Status) {
        let mut e = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = e.get_mut(slot as usize) {
            f.count += 1;
            f.items = f.items.saturating_add(items);
            f.wall_ns = f.wall_ns.saturating_add(wall_ns);
            match status {
                Status::Error => f.errors += 1,
                Status::Panicked => f.panics += 1,
                Status::Ok | Status::Cancelled => {}
            }
        }
    }

    /// A copy of the totals so far.
    pub fn snapshot(&self) -> Vec<Fold> {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl ThreadHandle {
    /// The thread's index in the run.
    pub fn handle_index(&self) -> u32 {
        self.index
    }
}

/// What a thread leaves behind when it stops producing for a run.
#[derive(Default)]
pub struct ThreadExit {
    /// CPU time at exit, nanoseconds, or `u64::MAX` while unknown. Stored before the ring is
    /// marked closed, so a reader that sees the ring closed sees this value.
    pub final_cpu_ns: AtomicU64,
    /// [`Step::gpu`] marks that found the ring full: those steps counted as CPU steps.
    pub marks_lost: AtomicU64,
    /// Steps still open when the thread left the run (exit, or registration with a newer run):
    /// guards leaked with `mem::forget`, `Box::leak` or a reference cycle. Those in the ring
    /// are recorded as `unfinished`; folded ones are counted in their name's fold here.
    pub leaked: AtomicU64,
    /// Step guards whose exit did not find them innermost (one dropped while a step opened
    /// after it was still open, and that later step's own exit). An exit closes the innermost
    /// open step, so such steps' names and end times may be swapped.
    pub out_of_order: AtomicU64,
    /// Segments of steps already recorded that found the ring full ([`enter_next_segment`],
    /// [`finish_segments`]): the step keeps its count, that segment's time goes to the
    /// enclosing step (a lost final segment leaves the step `unfinished`).
    pub segments_lost: AtomicU64,
    /// Steps that found the ring full and could not be folded either: the thread's fold table
    /// already held [`MAX_FOLD_NAMES`] other names. Also counted in the ring's drops.
    pub fold_names_full: AtomicU64,
}

/// Per-run registry of thread rings, shared by the cold registration path and the aggregator.
pub struct Registry {
    /// Identifies the run; a thread holding an older epoch's ring registers again.
    pub epoch: u64,
    /// The step clock of the run's raw timestamps.
    pub clock: crate::clock::Clock,
    ring_capacity: usize,
    next_thread: Mutex<u32>,
    /// Rings registered since the aggregator last looked.
    pub new_threads: Mutex<Vec<ThreadHandle>>,
    /// Control events (raw TSC time, record without its times) waiting for the aggregator.
    pub controls: Mutex<Vec<(u64, ControlEvent)>>,
    /// Called on the application thread at every step exit, before the exit time is read.
    pub exit_hook: Option<fn()>,
    /// Warnings from integrations ([`add_run_warning`]) for this run's `run_end.warnings`.
    pub warnings: Mutex<Vec<String>>,
}

/// What a governor is doing (`control.mode`); `carina_control`'s governor enters these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlMode {
    /// Off-peak time (`off-peak`).
    OffPeak,
    /// Peak time, running (`peak`).
    Peak,
    /// Nothing allowed to run (`paused`).
    Paused,
    /// Running at least nominal because the deadline would be missed otherwise
    /// (`deadline-rescue`).
    DeadlineRescue,
    /// A mode this version does not know (written by a newer Carina; shown as `unknown`). A
    /// governor never enters it.
    Unknown,
}

impl ControlMode {
    /// `off-peak`, `peak`, `paused` or `deadline-rescue`.
    pub fn as_str(self) -> &'static str {
        match self {
            ControlMode::OffPeak => "off-peak",
            ControlMode::Peak => "peak",
            ControlMode::Paused => "paused",
            ControlMode::DeadlineRescue => "deadline-rescue",
            ControlMode::Unknown => "unknown",
        }
    }
}

impl ControlMode {
    /// The mode a word names (`off-peak`, `peak`, `paused`, `deadline-rescue`); any other word is
    /// [`ControlMode::Unknown`], so that files of newer versions stay readable.
    pub fn from_word(word: &str) -> ControlMode {
        match word {
            "off-peak" => ControlMode::OffPeak,
            "peak" => ControlMode::Peak,
            "paused" => ControlMode::Paused,
            "deadline-rescue" => ControlMode::DeadlineRescue,
            _ => ControlMode::Unknown,
        }
    }
}

// Written as its word (feature `serde`: the runtime's record format).
#[cfg(feature = "serde")]
impl serde::Serialize for ControlMode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for ControlMode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let word = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(ControlMode::from_word(&word))
    }
}

impl std::fmt::Display for ControlMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A governor's mode change, before the aggregator stamps its times.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlEvent {
    /// Policy name.
    pub policy: String,
    /// Mode entered.
    pub mode: ControlMode,
    /// Concurrency allowed from now on.
    pub allowed: u32,
    /// Nominal concurrency.
    pub nominal: u32,
    /// Why, in words.
    pub reason: Option<String>,
    /// The peak window the event lies in, else the next one, as Unix milliseconds `(start,
    /// end)`; the start is the event's time when it lies in one. `None` when the calendar
    /// knows no peak window ahead (within its look-ahead).
    pub next_peak_ms: Option<(i64, i64)>,
}

/// Records a control event (a governor's mode change) in the installed run, if any.
///
/// Cold path: takes a lock. Returns whether a run received it.
pub fn emit_control(ev: ControlEvent) -> bool {
    let cur = CURRENT.lock().unwrap_or_else(|e| e.into_inner());
    let Some(reg) = cur.as_ref() else {
        return false;
    };
    let t = reg.clock.raw();
    reg.controls
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((t, ev));
    true
}

impl Registry {
    /// A registry for a new run: threads get rings of `ring_capacity` events; `exit_hook` runs
    /// at every step exit before its time is read.
    pub fn new(clock: crate::clock::Clock, ring_capacity: usize, exit_hook: Option<fn()>) -> Self {
        Registry {
            exit_hook,
            epoch: NEXT_EPOCH.fetch_add(1, Ordering::Relaxed),
            clock,
            ring_capacity,
            next_thread: Mutex::new(0),
            new_threads: Mutex::new(Vec::new()),
            controls: Mutex::new(Vec::new()),
            warnings: Mutex::new(Vec::new()),
        }
    }

    /// Moves the rings registered since the last call into `out`.
    pub fn take_new_threads(&self, out: &mut Vec<ThreadHandle>) {
        let mut g = self.new_threads.lock().unwrap_or_else(|e| e.into_inner());
        out.append(&mut g);
    }
}

/// The cost of one recorded step on the application thread, nanoseconds: a loop of enter and
/// exit events (two TSC reads and two ring writes each) into a private ring, drained every few
/// hundred steps, timed with the TSC. The fastest of a few rounds is kept, so a round that was
/// preempted does not count. It leaves out the thread-local lookup (about a nanosecond) and
/// cache misses of a real workload, so it is a floor; `benches/README.md` has the measured
/// figures. Takes about 50 µs.
pub fn calibrate_step_cost(clock: &crate::clock::Clock) -> f64 {
    const STEPS: u64 = 256;
    let (producer, mut consumer) = ring::ring::<Slot>(2 * STEPS as usize + 8);
    let w = Writer::new();
    w.attach(producer);
    let mut scratch = Vec::with_capacity(2 * STEPS as usize + 8);
    let mut best = f64::INFINITY;
    for _ in 0..6 {
        let t0 = clock.raw();
        for i in 0..STEPS {
            let t = clock.raw();
            let name = slot::packed_name("calibration").unwrap_or(0);
            if w.push_open_quiet(Slot::enter(name, t, false)) {
                w.push_close(Slot::exit(clock.raw(), i, Status::Ok, true));
            }
        }
        let t1 = clock.raw();
        scratch.clear();
        consumer.drain_into(&mut scratch);
        std::hint::black_box(&scratch);
        best = best.min(clock.delta_as_nanos(t0, t1) as f64 / STEPS as f64);
    }
    w.detach();
    if best.is_finite() { best } else { 0.0 }
}

/// Error from [`install`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlreadyInstalled;

/// Warnings that integrations added with [`add_run_warning`] and have not removed: every run
/// installed while one is here carries it.
static RUN_WARNINGS: Mutex<Vec<(u64, String)>> = Mutex::new(Vec::new());

/// Adds `msg` to the `run_end.warnings` of the installed run and of every run installed until
/// [`remove_run_warning`] is called with the returned key: for an integration that finds, when
/// it is set up, that it will not see what it should record (the `tracing` layer behind a
/// global filter). Cold path: takes locks; not for per-step use.
pub fn add_run_warning(msg: String) -> u64 {
    let key = new_segment_id();
    if let Some(reg) = CURRENT.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
        push_warning(reg, &msg);
    }
    RUN_WARNINGS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((key, msg));
    key
}

/// Stops adding the warning `key` ([`add_run_warning`]) to runs installed from now on; a run
/// that already has it keeps it.
pub fn remove_run_warning(key: u64) {
    RUN_WARNINGS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|(k, _)| *k != key);
}

fn push_warning(reg: &Registry, msg: &str) {
    let mut w = reg.warnings.lock().unwrap_or_else(|e| e.into_inner());
    if !w.iter().any(|x| x == msg) {
        w.push(msg.to_owned());
    }
}

/// Makes `reg` the process's run. Fails if another run is installed.
pub fn install(reg: Arc<Registry>) -> Result<(), AlreadyInstalled> {
    let mut cur = CURRENT.lock().unwrap_or_else(|e| e.into_inner());
    if cur.is_some() {
        return Err(AlreadyInstalled);
    }
    for (_, msg) in RUN_WARNINGS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
    {
        push_warning(&reg, msg);
    }
    let epoch = reg.epoch;
    *cur = Some(reg);
    EPOCH.store(epoch, Ordering::Release);
    Ok(())
}

/// Removes the run with this epoch, if it is the installed one. New steps become no-ops at once;
/// guards already open still push their exit into the (soon drained) ring.
pub fn uninstall(epoch: u64) {
    let mut cur = CURRENT.lock().unwrap_or_else(|e| e.into_inner());
    if cur.as_ref().is_some_and(|r| r.epoch == epoch) {
        EPOCH.store(0, Ordering::Release);
        *cur = None;
    }
}

/// Whether a run is installed (steps are being recorded).
#[inline]
pub fn is_recording() -> bool {
    EPOCH.load(Ordering::Relaxed) != 0
}

/// The cold half of a thread's recording state: what the thread's ring needs besides its
/// writing state ([`Hot`]). Its drop, at thread exit or when a newer run replaces it, detaches
/// the ring from [`HOT`] and so closes it.
struct Local {
    epoch: u64,
    clock: crate::clock::Clock,
    exit: Arc<ThreadExit>,
    folds: Arc<Folds>,
    /// Slot and raw start time of each folded step still open, innermost last.
    fold_stack: Vec<(u32, u64)>,
    hook: Option<fn()>,
}

impl Drop for Local {
    fn drop(&mut self) {
        // Runs on the owning thread (thread exit, or replacement by a newer run); the ring is
        // closed by the `detach` at the end, after the counts below are stored: the aggregator
        // reads them once it sees the ring closed.
        // A step still open here can never be closed (its guard was leaked): count it, and give
        // a folded one its instance in the fold table, which would otherwise never see it.
        let open = HOT.try_with(|h| h.w.open_closes()).unwrap_or(0);
        let leaked = open + self.fold_stack.len();
        if leaked > 0 {
            let now = self.clock.raw();
            for (slot, t0) in std::mem::take(&mut self.fold_stack) {
                let wall = self.clock.delta_as_nanos(t0, now);
                self.folds.add(slot, 0, wall, Status::Ok);
            }
            self.exit.leaked.fetch_add(leaked as u64, Ordering::Relaxed);
        }
        let cpu = crate::cpuclock::this_thread_ns().unwrap_or(u64::MAX);
        self.exit.final_cpu_ns.store(cpu, Ordering::Release);
        // Last: the ring is closed only once the counts above are stored, which the aggregator
        // reads when it sees the ring closed.
        let _ = HOT.try_with(|h| {
            h.enter_epoch.set(0);
            h.exit_tag.set(0);
            h.w.detach();
        });
    }
}

/// The hot half of a thread's recording state: what a step's enter and exit touch, as plain
/// `Cell`s in the thread-local block itself. No destructor, so an access is one
/// `%fs`-relative address with no state check (a thread-local with a destructor checks, and on
/// first use registers, it at every access: measured +6 instructions per access), and no
/// `RefCell` borrow: nothing on the hot path calls out while it holds these cells. Steps
/// opened from a signal handler that interrupted a step's enter or exit on the same thread are
/// not supported (as for any non-async-signal-safe code); the cold paths take `LOCAL`'s borrow.
struct Hot {
    /// Epoch of the run whose ring `w` writes, when its clock is the TSC (the inlined enter
    /// reads it with no test of the clock's kind); 0 otherwise: every enter then takes
    /// [`enter_cold`], which reads any clock.
    enter_epoch: Cell<u64>,
    /// The [`Tag`] of an unflagged guard of this run, without its depth, when the inlined exit
    /// may write the exit event (TSC clock, no exit hook); 0 otherwise: every exit then takes
    /// [`exit_slow`], which reads any clock and runs the hook first.
    exit_tag: Cell<u64>,
    /// The writing state of this thread's ring, attached while a `Local` is installed.
    w: Writer<Slot>,
}

thread_local! {
    static LOCAL: RefCell<Option<Local>> = const { RefCell::new(None) };
    static HOT: Hot = const {
        Hot {
            enter_epoch: Cell::new(0),
            exit_tag: Cell::new(0),
            w: Writer::new(),
        }
    };
}

// The hot thread-local must stay free of destructors (see `Hot`).
const _: () = assert!(!std::mem::needs_drop::<Hot>());

/// Runs `f` on this thread's [`Hot`], inlined: `HOT.with(f)` with the whole step inside `f`
/// is a call the compiler declines to inline (measured: +20 instructions per step, most of
/// them saving and restoring registers); the closure that only takes the address always is.
#[inline(always)]
fn with_hot<R>(f: impl FnOnce(&Hot) -> R) -> R {
    let p: *const Hot = HOT.with(|h| h as *const Hot);
    // SAFETY: `p` is the address of this thread's `HOT`, just given by `with` (which would
    // panic, not return, were the value gone), and `f` runs now, on this thread, before
    // anything could tear it down, and the reference does not outlive it. With native
    // thread-locals (every Linux target) a `const`-initialised one with no destructor
    // (asserted above) is never torn down at all. `Hot` is made of `Cell`s, so a shared
    // reference allows its updates.
    f(unsafe { &*p })
}

#[cold]
#[inline(never)]
fn register(slot: &mut Option<Local>, epoch: u64) -> bool {
    let cur = CURRENT.lock().unwrap_or_else(|e| e.into_inner());
    let Some(reg) = cur.as_ref().filter(|r| r.epoch == epoch) else {
        return false;
    };
    let index = {
        let mut n = reg.next_thread.lock().unwrap_or_else(|e| e.into_inner());
        *n += 1;
        *n - 1
    };
    let (producer, consumer) = ring::ring(reg.ring_capacity);
    let name = std::thread::current().name().map(str::to_owned);
    let exit = Arc::new(ThreadExit {
        final_cpu_ns: AtomicU64::new(u64::MAX),
        ..ThreadExit::default()
    });
    let folds = Arc::new(Folds::default());
    reg.new_threads
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(ThreadHandle {
            index,
            name,
            consumer: EventConsumer {
                inner: consumer,
                clock: reg.clock,
            },
            cpu_clock: ThreadCpuClock::current(),
            cpu_at_start: crate::cpuclock::this_thread_ns(),
            exit: exit.clone(),
            folds: folds.clone(),
        });
    // Replacing an older run's `Local` detaches its ring from `HOT` (closing it) before the
    // new one is attached.
    *slot = Some(Local {
        epoch,
        clock: reg.clock,
        exit,
        folds,
        fold_stack: Vec::new(),
        hook: reg.exit_hook,
    });
    let _ = HOT.try_with(|h| {
        h.w.attach(producer);
        let fast = if reg.clock.is_tsc() { epoch } else { 0 };
        h.enter_epoch.set(fast);
        h.exit_tag
            .set(if reg.clock.is_tsc() && reg.exit_hook.is_none() {
                Tag::new(epoch, 0, 0).0
            } else {
                0
            });
    });
    true
}

/// Enters a step for the current thread: into the ring, or folded when the ring is full.
/// Returns the guard's `(epoch, meta)`: plain data, not a tag the caller would dispatch on, nor
/// a `Step` (a type with a destructor, whose fallback value would need a drop of its own).
///
/// The common case (this thread's ring belongs to the run and has room) is inlined into the
/// caller: one `%fs`-relative compare, the clock read, the slot write. Everything else
/// (the thread's first step of a run, a full ring) is [`enter_cold`].
#[inline(always)]
fn enter_step<const GPU: bool>(epoch: u64, name: &'static str) -> Tag {
    with_hot(
        // Always: `step_with` marks this branch cold, and a cold branch's closures are not
        // inlined by default (without this the enter is a call: 83 -> 110 instructions per step).
        #[inline(always)]
        |h| {
            if h.enter_epoch.get() == epoch
                && let Some(packed) = slot::packed_name(name)
            {
                let t = crate::clock::Clock::tsc_raw();
                if h.w.push_open_quiet(Slot::enter(packed, t, GPU)) {
                    // The step's depth is the number of open closes, this one included: its exit
                    // expects to find the same number (the out-of-order check in `exit_step`).
                    return Tag::new(epoch, 0, h.w.open_closes());
                }
            }
            enter_cold::<GPU>(epoch, name)
        },
    )
}

/// [`enter_step`] when the thread's ring is not this run's yet (registers it), the clock is
/// not the TSC, or the ring is full (folds the step).
#[cold]
#[inline(never)]
fn enter_cold<const GPU: bool>(epoch: u64, name: &'static str) -> Tag {
    LOCAL
        .try_with(move |cell| {
            let Ok(mut slot) = cell.try_borrow_mut() else {
                return Tag::NONE;
            };
            if slot.as_ref().is_none_or(|l| l.epoch != epoch) && !register(&mut slot, epoch) {
                return Tag::NONE;
            }
            let Some(local) = slot.as_mut() else {
                return Tag::NONE;
            };
            let t = local.clock.raw();
            HOT.with(|h| {
                if h.w
                    .push_open_slots(slot::encode(Event::enter(name, t, 0, GPU)).as_slice())
                {
                    Tag::new(epoch, 0, h.w.open_closes())
                } else {
                    fold_enter(local, epoch, name, t)
                }
            })
        })
        .unwrap_or(Tag::NONE)
}

/// A guard's state in one word, so that a guard is 16 bytes and an inactive one two stores:
/// 0 when the guard records nothing; else bit 63 set, bits 0-31 the run's epoch modulo 2^32,
/// bits 32-39 the flags ([`ERROR`], [`FOLDED`]), bits 40-62 the depth modulo 2^23: the open
/// steps on the thread, this one included, when it was entered (a thread with 8 million steps
/// open at once would see two depths 2^23 apart as equal, and a guard kept across 2^32 runs
/// would match a run of the same epoch modulo 2^32: either way an out-of-order or stale drop
/// goes uncounted). An in-order exit of an unflagged guard finds the whole word equal to
/// `Hot::exit_tag` with the open count as depth: one compare.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Tag(u64);

// The open count (below a ring's capacity) never wraps to 0 in the depth's bits: the fast exit's
// unchecked close relies on it.
const _: () = assert!(ring::MAX_SLOTS as u64 <= Tag::DEPTH_MASK);

impl Tag {
    const NONE: Tag = Tag(0);
    const ACTIVE: u64 = 1 << 63;
    const DEPTH_MASK: u64 = (1 << 23) - 1;

    #[inline(always)]
    fn new(epoch: u64, flags: u8, depth: usize) -> Tag {
        Tag(Self::ACTIVE
            | u64::from(epoch as u32)
            | u64::from(flags) << 32
            | ((depth as u64 & Self::DEPTH_MASK) << 40))
    }
    #[inline(always)]
    fn is_active(self) -> bool {
        self.0 != 0
    }
    #[inline(always)]
    fn epoch32(self) -> u32 {
        self.0 as u32
    }
    #[inline(always)]
    fn flags(self) -> u8 {
        (self.0 >> 32) as u8
    }
    #[inline(always)]
    fn depth(self) -> u32 {
        ((self.0 >> 40) & Self::DEPTH_MASK) as u32
    }
    /// The depth field of `open` open steps, to compare with [`depth`](Self::depth).
    #[inline(always)]
    fn depth_of(open: usize) -> u32 {
        (open as u64 & Self::DEPTH_MASK) as u32
    }
}

#[cold]
#[inline(never)]
fn fold_enter(local: &mut Local, epoch: u64, name: &'static str, t: u64) -> Tag {
    // The ring was full: counted in the thread's fold table; the slot and start time go on the
    // thread's fold stack (kept off the guard so the guard stays small on the hot path).
    match local.folds.slot(name) {
        Some(slot) => {
            local.fold_stack.push((slot, t));
            Tag::new(epoch, FOLDED, local.fold_stack.len())
        }
        None => {
            fold_table_full(local);
            Tag::NONE
        }
    }
}

#[cold]
fn fold_table_full(local: &Local) {
    let _ = HOT.try_with(|h| h.w.count_drop());
    local.exit.fold_names_full.fetch_add(1, Ordering::Relaxed);
}

#[cold]
#[inline(never)]
fn fold_exit(epoch32: u32, items: u64, status: Status, depth: u32) {
    let _ = LOCAL.try_with(|cell| {
        let hook = match cell.try_borrow() {
            Ok(s) => s
                .as_ref()
                .filter(|l| l.epoch as u32 == epoch32)
                .and_then(|l| l.hook),
            Err(_) => None,
        };
        if let Some(h) = hook {
            h();
        }
        // Guards drop in reverse order of creation, so the innermost folded step is on top;
        // one that does not is counted (its totals go to the innermost step's name).
        if let Ok(mut slot_ref) = cell.try_borrow_mut()
            && let Some(local) = slot_ref.as_mut()
            && local.epoch as u32 == epoch32
        {
            if Tag::depth_of(local.fold_stack.len()) != depth {
                local.exit.out_of_order.fetch_add(1, Ordering::Relaxed);
            }
            let Some((slot, t0)) = local.fold_stack.pop() else {
                return;
            };
            let wall = local.clock.delta_as_nanos(t0, local.clock.raw());
            local.folds.add(slot, items, wall, status);
        }
    });
}

/// Pushes an enter event for the current thread; returns whether it was accepted.
#[inline]
fn push_enter(epoch: u64, name: &'static str, async_id: u64, gpu: bool) -> bool {
    LOCAL
        .try_with(|cell| {
            let Ok(mut slot) = cell.try_borrow_mut() else {
                return false;
            };
            if slot.as_ref().is_none_or(|l| l.epoch != epoch) && !register(&mut slot, epoch) {
                return false;
            }
            let Some(local) = slot.as_mut() else {
                return false;
            };
            let t = local.clock.raw();
            let slots = slot::encode(Event::enter(name, t, async_id, gpu));
            HOT.with(|h| {
                let ok = h.w.push_open_slots(slots.as_slice());
                if !ok {
                    h.w.count_drop();
                }
                ok
            })
        })
        .unwrap_or(false)
}

/// Pushes the exit event matching an accepted enter.
#[inline]
fn push_exit(epoch: u64, items: u64, status: Status, done: bool) {
    let _ = LOCAL.try_with(move |cell| exit_in(cell, epoch as u32, items, status, done, 0));
}

/// The exit event into this thread's ring, given its thread-local cell. `epoch32`: the run's
/// epoch modulo 2^32 (what a guard keeps, [`Tag`]); `depth`: the guard's depth at entry, or 0
/// for a segment (not checked).
#[inline(always)]
fn exit_in(
    cell: &RefCell<Option<Local>>,
    epoch32: u32,
    items: u64,
    status: Status,
    done: bool,
    depth: u32,
) {
    let Ok(mut slot) = cell.try_borrow_mut() else {
        return;
    };
    let Some(local) = slot.as_mut().filter(|l| l.epoch as u32 == epoch32) else {
        return;
    };
    // A guard dropped while a step opened after it is still open: its exit closes that step
    // instead (the ring holds no ids). Counted.
    let open = HOT.with(|h| h.w.open_closes());
    if depth != 0 && Tag::depth_of(open) != depth {
        out_of_order(local);
    }
    if local.hook.is_some() {
        drop(slot);
        exit_after_hook(cell, epoch32, items, status, done);
        return;
    }
    let t = local.clock.raw();
    HOT.with(|h| h.w.push_close(Slot::exit(t, items, status, done)));
}

/// The exit path of a run with an exit hook: the user's synchronisation (e.g. waiting for GPU
/// kernels) runs before the exit time is read, so the step's span covers the work it launched.
/// No borrow is held while it runs: a step it opens is simply not recorded.
#[cold]
#[inline(never)]
fn exit_after_hook(
    cell: &RefCell<Option<Local>>,
    epoch32: u32,
    items: u64,
    status: Status,
    done: bool,
) {
    let hook = match cell.try_borrow() {
        Ok(s) => s.as_ref().and_then(|l| l.hook),
        Err(_) => None,
    };
    if let Some(h) = hook {
        h();
    }
    if let Ok(mut slot) = cell.try_borrow_mut()
        && let Some(local) = slot.as_mut()
        && local.epoch as u32 == epoch32
    {
        let t = local.clock.raw();
        HOT.with(|h| h.w.push_close(Slot::exit(t, items, status, done)));
    }
}

/// Marks this thread's innermost open step as a GPU step from now on ([`Step::gpu`]).
#[cold]
#[inline(never)]
fn push_gpu_mark(epoch32: u32) {
    let _ = LOCAL.try_with(|cell| {
        let Ok(mut slot) = cell.try_borrow_mut() else {
            return;
        };
        let Some(local) = slot.as_mut().filter(|l| l.epoch as u32 == epoch32) else {
            return;
        };
        let t = local.clock.raw();
        if !HOT.with(|h| h.w.push_extra(Slot::gpu_mark(t))) {
            local.exit.marks_lost.fetch_add(1, Ordering::Relaxed);
        }
    });
}

/// [`Tag::flags`]: the step ends with `status: "error"`.
const ERROR: u8 = 1;
/// [`Tag::flags`]: counted in the thread's fold table (its ring was full), not in the ring.
const FOLDED: u8 = 2;

/// An open step; the step ends when this guard is dropped.
///
/// Created by [`step`]. Guards nest: a step opened while another is open on the same thread
/// becomes its child. A guard must be dropped on the thread that created it (it is `!Send`).
#[must_use = "a step ends when its guard is dropped; bind it with `let _g = ...`"]
pub struct Step {
    /// Run, flags and depth ([`Tag`]); 0 when this guard records nothing.
    tag: Tag,
    items: u64,
    _not_send: PhantomData<*const ()>,
}

const _: () = assert!(std::mem::size_of::<Step>() == 16);

impl Step {
    #[inline]
    const fn inactive() -> Self {
        Step {
            tag: Tag::NONE,
            items: 0,
            _not_send: PhantomData,
        }
    }

    /// Adds `n` to the number of items (scenarios, samples, rows) this step processed.
    ///
    /// The count saturates at `u64::MAX` rather than wrapping to a small number; the run file
    /// then names the step in an `items_saturated` warning.
    #[inline]
    pub fn add_items(&mut self, n: u64) {
        self.items = self.items.saturating_add(n);
    }

    /// Sets the number of items this step processed.
    #[inline]
    pub fn set_items(&mut self, n: u64) {
        self.items = n;
    }

    /// Records the step with `status: "error"` when it ends.
    #[inline]
    pub fn mark_error(&mut self) {
        // Only on a recording guard: a flag on an inactive one would make it look active.
        if self.tag.is_active() {
            self.tag.0 |= u64::from(ERROR) << 32;
        }
    }

    /// Whether this guard is recording (a run is installed and the event was accepted).
    #[inline]
    pub fn is_recording(&self) -> bool {
        self.tag.is_active()
    }

    /// Makes this a GPU step from now on: a GPU domain's energy in each sampling interval goes
    /// to the GPU steps open then, by wall-time overlap, whatever their thread's CPU time (a
    /// step that launches kernels mostly waits). Call it on the fresh guard,
    /// `carina::step("train").gpu()`: it marks the innermost step open on this thread.
    /// [`gpu_step`] does the same in one event.
    ///
    /// ```
    /// let _g = carina_core::step("forward").gpu();
    /// ```
    #[inline]
    pub fn gpu(self) -> Self {
        if self.tag.is_active() && self.tag.flags() & FOLDED == 0 {
            push_gpu_mark(self.tag.epoch32());
        }
        self
    }
}

impl Drop for Step {
    // Always inlined, so that an inactive guard's drop is one compare at the call site.
    #[inline(always)]
    fn drop(&mut self) {
        if self.tag.is_active() {
            exit_step(self);
        }
    }
}

/// The exit of a recording guard. The common case (no flag, the ring still this run's, a TSC
/// clock, no exit hook, guards dropped in order, not unwinding) writes the exit event here,
/// inlined into the guard's drop; anything else goes through [`exit_slow`]. The guard comes by
/// reference and is 16 bytes, so an inactive guard's drop stays one compare and the drop glue
/// stays inlined (callgrind: no-run step 18 instructions either way; with the 24-byte guard,
/// inlining this made the drop glue a call, 24 -> 33). Inlined, a recorded step is 98 -> 83
/// instructions, and criterion's guard 1.18-1.27x -> 1.07-1.21x its two TSC reads (A/B pairs,
/// `benches/README.md`).
#[inline(always)]
fn exit_step(g: &Step) {
    let fast = with_hot(|h| {
        // One compare: no flag, this run, a fast exit allowed, and the depth it was entered at.
        // A guard dropped while a step opened after it is still open would close that step
        // instead (the ring holds no ids): its depth differs from the open count, and the slow
        // path counts it.
        g.tag.0 == h.exit_tag.get() | (u64::from(Tag::depth_of(h.w.open_closes())) << 40)
    }) && !std::thread::panicking();
    if fast {
        let t = crate::clock::Clock::tsc_raw();
        // SAFETY: the compare above found the open count's depth equal to the guard's, which
        // is at least 1 (a recording guard is made after its open is accepted, and the count
        // never reaches 2^23, where the depth would wrap to 0: reserved closes stay below the
        // ring's capacity, at most `ring::MAX_SLOTS` = 2^22, asserted against the depth's
        // width below `Tag`): a close is reserved. `guards_dropped_in_order_are_not_flagged` and every recorded
        // step take this path.
        with_hot(|h| unsafe {
            h.w.push_close_reserved(Slot::exit(t, g.items, Status::Ok, true))
        });
    } else {
        exit_slow(g);
    }
}

/// [`exit_step`] for an error or folded step, a panic, an exit hook, or an out-of-order drop.
#[cold]
#[inline(never)]
fn exit_slow(g: &Step) {
    let (epoch32, items, flags, depth) = (g.tag.epoch32(), g.items, g.tag.flags(), g.tag.depth());
    let status = if std::thread::panicking() {
        Status::Panicked
    } else if flags & ERROR != 0 {
        Status::Error
    } else {
        Status::Ok
    };
    if flags & FOLDED != 0 {
        fold_exit(epoch32, items, status, depth);
    } else {
        let _ = LOCAL.try_with(move |cell| exit_in(cell, epoch32, items, status, true, depth));
    }
}

#[cold]
#[inline(never)]
fn out_of_order(local: &Local) {
    local.exit.out_of_order.fetch_add(1, Ordering::Relaxed);
}

impl std::fmt::Debug for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Step")
            .field("recording", &self.is_recording())
            .field("items", &self.items)
            .finish()
    }
}

/// Opens a step named `name` on the current thread.
///
/// Returns a guard; the step ends when the guard is dropped. With no run installed (or with
/// `CARINA_DISABLE=1`) this costs one relaxed atomic load and records nothing (1.1-1.8 ns).
/// With a run installed, entering and leaving read the step clock and write one 16-byte slot
/// into the thread's ring each: about 1.1x the cost of the two clock reads alone (29-31 ns
/// where those take 26-27 ns on this project's AMD EPYC VM; `benches/README.md`). A thread's
/// first step of a run registers its ring (a lock, an allocation of the ring: cold path).
///
/// Not async-signal-safe: do not open steps in a signal handler (one that interrupted a step's
/// enter or exit on the same thread could corrupt that thread's ring).
///
/// ```
/// let mut g = carina_core::step("load");
/// g.add_items(3);
/// drop(g);
/// ```
#[inline(always)]
pub fn step(name: &'static str) -> Step {
    step_with::<false>(name)
}

/// Opens a GPU step named `name` on the current thread: a step that launches GPU work (a
/// training or inference step). A GPU domain's energy in each sampling interval goes to the GPU
/// steps open then, by wall-time overlap, whatever their thread's CPU time; CPU and DRAM
/// energy follow CPU time as for any step. See `docs/ENERGY.md`, "GPU energy inside a run".
///
/// ```
/// let _g = carina_core::gpu_step("train_step");
/// ```
#[inline(always)]
pub fn gpu_step(name: &'static str) -> Step {
    step_with::<true>(name)
}

#[inline(always)]
fn step_with<const GPU: bool>(name: &'static str) -> Step {
    let epoch = EPOCH.load(Ordering::Relaxed);
    if epoch == 0 {
        return Step::inactive();
    }
    // Not that recording is rare: the hint makes the compiler lay the no-run case out as the
    // fall-through, so that in the caller's loop an inactive step is straight-line code up to
    // the loop's own back-edge. Unhinted, it took two jumps, and where they landed (the caller's
    // layout) moved it by half a nanosecond: no-run step 1.5-2.4 -> 1.1-1.8 ns, the recorded
    // step unchanged (83 instructions; `benches/README.md`). The drop's branch is left
    // unhinted: hinted too, the recorded step took 89 instructions and one more jump.
    cold_path();
    // A const parameter, so `step`'s path is the one it was before GPU steps existed.
    // Every field spelled out: `..Step::inactive()` makes a temporary guard whose drop the
    // compiler outlined as a call once the branch was cold.
    Step {
        tag: enter_step::<GPU>(epoch, name),
        items: 0,
        _not_send: PhantomData,
    }
}

/// `std::hint::cold_path`, which is stable only since Rust 1.95 (this crate's MSRV is 1.88): the
/// branch that calls a `#[cold]` function is laid out as the unlikely one.
#[cold]
#[inline]
fn cold_path() {}

/// Proof that [`enter_segment`] recorded a segment; pass it to [`exit_segment`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentToken {
    epoch: u64,
}

/// A fresh id for a step recorded as segments: segments with one id (on any threads) merge into
/// one `step` record, as an async step's polls do. Never 0, always below 2^63 (a counter from 1:
/// it would take 2^63 ids to get there).
pub fn new_segment_id() -> u64 {
    NEXT_ASYNC_ID.fetch_add(1, Ordering::Relaxed)
}

/// Opens a segment of step `id` (from [`new_segment_id`]) named `name` on this thread: the
/// building block for integrations whose spans are entered and exited many times (`tracing`
/// spans, hand-rolled futures). Energy is credited only between a segment's enter and exit.
///
/// Returns `None`, recording nothing, when no run is installed or the thread's buffer is full
/// (then counted in `run_end.dropped`). Segments nest like steps: the exit closes the innermost
/// open segment or step of this thread, so exits must come in reverse order of enters.
#[inline]
pub fn enter_segment(name: &'static str, id: u64) -> Option<SegmentToken> {
    enter_segment_with(name, id, false)
}

/// [`enter_segment`], with `gpu` marking the step as a GPU step ([`gpu_step`]): the `tracing`
/// layer passes the span's `gpu = true` field here.
#[inline]
pub fn enter_segment_with(name: &'static str, id: u64, gpu: bool) -> Option<SegmentToken> {
    let epoch = EPOCH.load(Ordering::Relaxed);
    if epoch == 0 || id == 0 {
        return None;
    }
    push_enter(epoch, name, id, gpu).then_some(SegmentToken { epoch })
}

/// Closes the segment `token` opened (the innermost open one on this thread). With `done`, the
/// step is complete and `items` and `status` are its final values; otherwise more segments may
/// follow and `items` is ignored. A step whose last segment is not `done` when the run ends is
/// recorded as unfinished.
#[inline]
pub fn exit_segment(token: SegmentToken, items: u64, status: Status, done: bool) {
    push_exit(token.epoch, items, status, done);
}

/// The promise of room for a span's final segment, made by [`enter_first_segment`]: pass it to
/// [`finish_segments`]. Dropped unused, it gives the room back.
pub struct FinalSegment {
    epoch: u64,
    releaser: Option<ring::Releaser<Slot>>,
    /// The slots promised to the final pair (its open's and its close's).
    slots: usize,
}

impl std::fmt::Debug for FinalSegment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FinalSegment")
            .field("epoch", &self.epoch)
            .finish()
    }
}

impl Drop for FinalSegment {
    fn drop(&mut self) {
        if let Some(r) = self.releaser.take() {
            r.release_final(self.slots);
        }
    }
}

/// What [`enter_first_segment`] did.
#[derive(Debug)]
pub enum FirstSegment {
    /// Recorded: close the segment with [`exit_segment`], and the step with
    /// [`finish_segments`] and the promise.
    Recorded(SegmentToken, FinalSegment),
    /// The thread's ring had no room: nothing was recorded or counted. Count the step with
    /// [`fold_step`] when it ends, so that it is counted exactly once.
    Full,
    /// No run is installed (or `id` is 0): nothing to do.
    Off,
}

/// Opens the first segment of step `id`, like [`enter_segment_with`], and promises room in this
/// thread's ring for the step's final zero-length segment ([`finish_segments`]), so that a step
/// whose first segment was recorded can always be completed on this thread, however full its
/// ring gets meanwhile. For integrations whose steps end after their last segment (a `tracing`
/// span ends at its close, after its last exit). Needs four free slots; refused quietly
/// ([`FirstSegment::Full`]) otherwise.
///
/// `parent`: 0, or the id of the segmented step this one is a child of ([`Event::parent_mark`],
/// one more slot) when that step is not open on this thread: the record's `parent` is then
/// that step, and this step's energy counts in that step's inclusive energy (and its
/// ancestors'), on whatever thread either ran.
pub fn enter_first_segment(name: &'static str, id: u64, gpu: bool, parent: u64) -> FirstSegment {
    let epoch = EPOCH.load(Ordering::Relaxed);
    if epoch == 0 || id == 0 {
        return FirstSegment::Off;
    }
    LOCAL
        .try_with(|cell| {
            let Ok(mut slot) = cell.try_borrow_mut() else {
                return FirstSegment::Off;
            };
            if slot.as_ref().is_none_or(|l| l.epoch != epoch) && !register(&mut slot, epoch) {
                return FirstSegment::Off;
            }
            let Some(local) = slot.as_mut() else {
                return FirstSegment::Off;
            };
            let t = local.clock.raw();
            let extra = usize::from(parent != 0);
            let open = slot::encode(Event::enter(name, t, id, gpu));
            // The final pair: an open like this one (same name and id: as many slots) and its
            // one-slot close.
            let final_len = open.as_slice().len() + 1;
            HOT.with(|h| {
                if h.w.has_room(open.as_slice().len() + 1 + final_len + extra)
                    && h.w.push_open_with_final(open.as_slice(), final_len)
                {
                    if parent != 0 {
                        // Room checked above: cannot fail.
                        let _ = h.w.push_extra(Slot::parent_mark(t, parent));
                    }
                    FirstSegment::Recorded(
                        SegmentToken { epoch },
                        FinalSegment {
                            epoch,
                            releaser: h.w.releaser(),
                            slots: final_len,
                        },
                    )
                } else {
                    FirstSegment::Full
                }
            })
        })
        .unwrap_or(FirstSegment::Off)
}

/// Opens a further segment of a step whose first segment was recorded: [`enter_segment_with`],
/// except that a full ring is counted as a lost segment (`ThreadExit::segments_lost`: the step
/// keeps its count, that stretch of time goes to the enclosing step), not as a dropped step.
pub fn enter_next_segment(name: &'static str, id: u64, gpu: bool) -> Option<SegmentToken> {
    let epoch = EPOCH.load(Ordering::Relaxed);
    if epoch == 0 || id == 0 {
        return None;
    }
    LOCAL
        .try_with(|cell| {
            let Ok(mut slot) = cell.try_borrow_mut() else {
                return None;
            };
            if slot.as_ref().is_none_or(|l| l.epoch != epoch) && !register(&mut slot, epoch) {
                return None;
            }
            let local = slot.as_mut()?;
            let t = local.clock.raw();
            let slots = slot::encode(Event::enter(name, t, id, gpu));
            if HOT.with(|h| h.w.push_open_slots(slots.as_slice())) {
                Some(SegmentToken { epoch })
            } else {
                local.exit.segments_lost.fetch_add(1, Ordering::Relaxed);
                None
            }
        })
        .ok()
        .flatten()
}

/// Completes step `id` with a zero-length final segment carrying its `items` and `status`: in
/// the room `fin` promised when the step's first segment was entered on this thread, or, on
/// another thread, where there is room (else counted in `segments_lost`, and the step is
/// recorded `unfinished` when the run ends). With no run, or a run other than the one `fin`
/// was made in, it records the segment where it can, as [`enter_segment_with`] would.
pub fn finish_segments(
    mut fin: Option<FinalSegment>,
    name: &'static str,
    id: u64,
    gpu: bool,
    items: u64,
    status: Status,
) {
    let epoch = EPOCH.load(Ordering::Relaxed);
    if epoch == 0 || id == 0 {
        return;
    }
    let _ = LOCAL.try_with(|cell| {
        let Ok(mut slot) = cell.try_borrow_mut() else {
            return;
        };
        if slot.as_ref().is_none_or(|l| l.epoch != epoch) && !register(&mut slot, epoch) {
            return;
        }
        let Some(local) = slot.as_mut() else {
            return;
        };
        let t = local.clock.raw();
        let pair =
            slot::encode(Event::enter(name, t, id, gpu)).then(Slot::exit(t, items, status, true));
        HOT.with(|h| {
            if let Some(f) = fin.as_mut()
                && f.epoch == epoch
                && f.releaser.as_ref().is_some_and(|r| h.w.owns(r))
                && f.slots == pair.as_slice().len()
                && h.w.push_final(pair.as_slice())
            {
                // Used: nothing to give back.
                f.releaser = None;
                return;
            }
            // Another thread's promise (given back when `fin` drops, below) or none.
            if !h.w.push_pair_quiet(pair.as_slice()) {
                local.exit.segments_lost.fetch_add(1, Ordering::Relaxed);
            }
        });
    });
    drop(fin);
}

/// Counts one instance of step `name` in this thread's fold table (exact count, items, wall
/// time and status; no record and no energy of its own), as a step guard that finds its ring
/// full is counted: for an integration whose step could not get its first segment recorded
/// ([`FirstSegment::Full`]). Returns `false` when no run is installed, or when the table
/// already holds [`MAX_FOLD_NAMES`] other names (then counted in `run_end.dropped`).
pub fn fold_step(name: &'static str, items: u64, wall_ns: u64, status: Status) -> bool {
    let epoch = EPOCH.load(Ordering::Relaxed);
    if epoch == 0 {
        return false;
    }
    LOCAL
        .try_with(|cell| {
            let Ok(mut slot) = cell.try_borrow_mut() else {
                return false;
            };
            if slot.as_ref().is_none_or(|l| l.epoch != epoch) && !register(&mut slot, epoch) {
                return false;
            }
            let Some(local) = slot.as_mut() else {
                return false;
            };
            match local.folds.slot(name) {
                Some(i) => {
                    local.folds.add(i, items, wall_ns, status);
                    true
                }
                None => {
                    fold_table_full(local);
                    false
                }
            }
        })
        .unwrap_or(false)
}

pin_project_lite::pin_project! {
    /// A future recorded as one step, from its first poll to its completion.
    ///
    /// Each poll is pushed to the polling thread's ring as a segment (so no thread-local guard
    /// lives across an `.await`, and energy is attributed only while the future actually runs);
    /// the aggregator merges the segments into one step record. Created by [`instrument`].
    pub struct Instrumented<F, C> {
        #[pin]
        fut: F,
        name: &'static str,
        items: u64,
        classify: C,
        // 0 until first polled under a run.
        async_id: u64,
        epoch: u64,
        finished: bool,
        gpu: bool,
    }

    impl<F, C> PinnedDrop for Instrumented<F, C> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if *this.async_id != 0 && !*this.finished && push_enter(*this.epoch, this.name, *this.async_id, *this.gpu) {
                push_exit(*this.epoch, *this.items, Status::Cancelled, true);
            }
        }
    }
}

/// Wraps `fut` so that it is recorded as a step named `name` with `items` items.
///
/// `is_error` classifies the output: `true` records `status: "error"`.
pub fn instrument<F, C>(name: &'static str, items: u64, is_error: C, fut: F) -> Instrumented<F, C>
where
    F: std::future::Future,
    C: Fn(&F::Output) -> bool,
{
    Instrumented {
        fut,
        name,
        items,
        classify: is_error,
        async_id: 0,
        epoch: 0,
        finished: false,
        gpu: false,
    }
}

impl<F, C> Instrumented<F, C> {
    /// Records the future as a GPU step ([`gpu_step`]); call before it is first polled.
    pub fn gpu(mut self) -> Self {
        self.gpu = true;
        self
    }
}

/// Closes a poll segment even if the inner poll panics.
struct SegmentGuard {
    epoch: u64,
    items: u64,
    armed: bool,
}

impl Drop for SegmentGuard {
    fn drop(&mut self) {
        if self.armed {
            push_exit(self.epoch, self.items, Status::Panicked, true);
        }
    }
}

impl<F, C> std::future::Future for Instrumented<F, C>
where
    F: std::future::Future,
    C: Fn(&F::Output) -> bool,
{
    type Output = F::Output;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let this = self.project();
        if *this.async_id == 0 && !*this.finished {
            let epoch = EPOCH.load(Ordering::Relaxed);
            if epoch != 0 {
                *this.epoch = epoch;
                *this.async_id = NEXT_ASYNC_ID.fetch_add(1, Ordering::Relaxed);
            }
        }
        let recording =
            *this.async_id != 0 && push_enter(*this.epoch, this.name, *this.async_id, *this.gpu);
        let mut guard = SegmentGuard {
            epoch: *this.epoch,
            items: *this.items,
            armed: recording,
        };
        let out = this.fut.poll(cx);
        guard.armed = false;
        match out {
            std::task::Poll::Ready(v) => {
                *this.finished = true;
                if recording {
                    let status = if (this.classify)(&v) {
                        Status::Error
                    } else {
                        Status::Ok
                    };
                    push_exit(*this.epoch, *this.items, status, true);
                }
                std::task::Poll::Ready(v)
            }
            std::task::Poll::Pending => {
                if recording {
                    push_exit(*this.epoch, 0, Status::Ok, false);
                }
                std::task::Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One run may be installed per process; these tests take turns.
    static SERIAL: Mutex<()> = Mutex::new(());

    /// Installs a run with rings of `capacity` events, runs `f` on a fresh thread (which exits
    /// before this returns), uninstalls, and returns that thread's handle.
    fn on_thread(capacity: usize, f: impl FnOnce() + Send) -> ThreadHandle {
        on_thread_with(crate::clock::Clock::new(), capacity, f)
    }

    /// [`on_thread`] with the run on `clock`.
    fn on_thread_with(
        clock: crate::clock::Clock,
        capacity: usize,
        f: impl FnOnce() + Send,
    ) -> ThreadHandle {
        let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let reg = Arc::new(Registry::new(clock, capacity, None));
        install(reg.clone()).unwrap();
        std::thread::scope(|s| {
            s.spawn(f);
        });
        uninstall(reg.epoch);
        let mut handles = Vec::new();
        reg.take_new_threads(&mut handles);
        assert_eq!(handles.len(), 1);
        let h = handles.pop().unwrap();
        // The scope returns when the closure has; the thread-local destructor (which counts the
        // leaks, then closes the ring) runs after that.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !h.consumer.is_closed() {
            assert!(
                std::time::Instant::now() < deadline,
                "the thread never left"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        h
    }

    #[test]
    fn a_final_segment_promise_is_kept_here_and_given_back_from_elsewhere() {
        let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        // 16 slots: a first segment takes 6 (its enter's two slots, its exit, the promised
        // final pair's three).
        let reg = Arc::new(Registry::new(crate::clock::Clock::new(), 16, None));
        install(reg.clone()).unwrap();
        let nested_recorded = std::thread::scope(|s| {
            s.spawn(|| {
                let id = new_segment_id();
                let FirstSegment::Recorded(token, fin) = enter_first_segment("span", id, false, 0)
                else {
                    panic!("an empty ring refused a first segment");
                };
                exit_segment(token, 0, Status::Ok, false);
                // Further segments never take the promised room: 3 slots written, 3 promised,
                // 10 free: three more segments (3 slots each) fit, then none, although 4 slots
                // are still free counting the promised ones.
                for _ in 0..3 {
                    let t = enter_next_segment("span", id, false).expect("room");
                    exit_segment(t, 0, Status::Ok, false);
                }
                assert!(enter_next_segment("span", id, false).is_none());
                // Closed on another thread: completed there, the promise given back here.
                std::thread::scope(|s| {
                    s.spawn(move || finish_segments(Some(fin), "span", id, false, 3, Status::Ok));
                });
                // 12 slots written, none promised any more: a step (2 slots) fits in the 4
                // left; had the promise not come back, only 1 would be.
                let a = step("a");
                a.tag.flags() & FOLDED == 0
            })
            .join()
            .unwrap()
        });
        uninstall(reg.epoch);
        assert!(nested_recorded, "the promise was not given back");
        let mut handles = Vec::new();
        reg.take_new_threads(&mut handles);
        handles.sort_by_key(|h| h.index);
        assert_eq!(handles.len(), 2);
        let lost = handles[0].exit.segments_lost.load(Ordering::Relaxed);
        assert_eq!(lost, 1, "the refused segment is counted as lost");
        assert_eq!(handles[0].consumer.dropped(), 0);
        let mut evs = Vec::new();
        handles[1].consumer.drain_into(&mut evs);
        assert!(
            matches!(
                evs[..],
                [
                    Event::Enter { .. },
                    Event::Exit {
                        items: 3,
                        done: true,
                        ..
                    }
                ]
            ),
            "{evs:?}"
        );
    }

    fn counts(h: &ThreadHandle) -> (u64, u64) {
        (
            h.exit.leaked.load(Ordering::Relaxed),
            h.exit.out_of_order.load(Ordering::Relaxed),
        )
    }

    #[test]
    fn a_tag_packs_run_flags_and_depth_and_is_never_zero_when_active() {
        for (epoch, flags, depth) in [
            (1u64, 0u8, 0usize),
            (7, FOLDED, 1),
            (u64::from(u32::MAX) + 5, ERROR | FOLDED, 12_345),
            (3, 0, 1 << 23),
        ] {
            let t = Tag::new(epoch, flags, depth);
            assert!(t.is_active() && t != Tag::NONE);
            assert_eq!(t.epoch32(), epoch as u32);
            assert_eq!(t.flags(), flags);
            assert_eq!(t.depth() as usize, depth & ((1 << 23) - 1));
            assert_eq!(t.depth(), Tag::depth_of(depth));
        }
        assert!(!Tag::NONE.is_active());
        // The in-order exit's one compare: equal only with no flag, the same run, the same
        // depth, and a fast exit allowed (`exit_tag` non-zero).
        let exit_tag = Tag::new(9, 0, 0).0;
        let expected = |open: usize| exit_tag | (u64::from(Tag::depth_of(open)) << 40);
        assert_eq!(Tag::new(9, 0, 4).0, expected(4));
        assert_ne!(Tag::new(9, 0, 4).0, expected(5));
        assert_ne!(Tag::new(9, ERROR, 4).0, expected(4));
        assert_ne!(Tag::new(10, 0, 4).0, expected(4));
        assert_ne!(Tag::new(9, 0, 4).0, u64::from(Tag::depth_of(4)) << 40);
        // An error mark on an inactive guard leaves it inactive.
        let mut g = Step::inactive();
        g.mark_error();
        assert!(!g.is_recording());
    }

    #[test]
    fn every_kind_of_enter_comes_back_from_the_ring_whole_with_its_time() {
        // A plain step (one slot, inlined enter), a name too long to pack (the cold path, an
        // `EXT_NAME` slot), an async segment (an `EXT_ID` slot) and a GPU mark, through a real
        // ring and drain: names, ids and times as they were written.
        static LONG: std::sync::LazyLock<&'static str> =
            std::sync::LazyLock::new(|| "x".repeat(70_000).leak());
        let clock = crate::clock::Clock::new();
        let before = clock.raw();
        let id = new_segment_id();
        let mut h = on_thread_with(clock, 64, || {
            let mut plain = step("plain");
            plain.add_items(7);
            drop(step(*LONG).gpu());
            let t = enter_segment_with("seg", id, true).expect("recorded");
            exit_segment(t, 3, Status::Ok, false);
        });
        let after = clock.raw();
        let mut evs = Vec::new();
        h.consumer.drain_into(&mut evs);
        assert_eq!(evs.len(), 7, "{evs:?}");
        let mut last = before;
        for e in &evs {
            assert!(
                (last..=after).contains(&e.time()),
                "{e:?} not in {last}..={after}"
            );
            last = e.time();
        }
        assert!(matches!(
            evs[0],
            Event::Enter {
                name: "plain",
                async_id: 0,
                ..
            }
        ));
        assert!(
            matches!(evs[1], Event::Enter { name, async_id: 0, .. } if std::ptr::eq(name, *LONG))
        );
        assert!(matches!(
            evs[2],
            Event::Enter {
                async_id: Event::GPU_MARK,
                ..
            }
        ));
        assert!(matches!(
            evs[3],
            Event::Exit {
                items: 0,
                status: Status::Ok,
                done: true,
                ..
            }
        ));
        assert!(
            matches!(evs[4], Event::Enter { name: "seg", async_id, .. } if async_id == id | Event::GPU_STEP)
        );
        assert!(matches!(
            evs[5],
            Event::Exit {
                items: 3,
                done: false,
                ..
            }
        ));
        assert!(matches!(
            evs[6],
            Event::Exit {
                items: 7,
                done: true,
                ..
            }
        ));
    }

    #[test]
    fn a_run_on_a_clock_other_than_the_tsc_records_every_step_through_the_cold_path() {
        // The inlined enter and exit read the TSC with no test of the clock's kind; a run on
        // another clock must never reach them (`Hot::enter_epoch` stays 0), or its timestamps
        // would mix units.
        let clock = crate::clock::Clock::monotonic();
        let before = clock.raw();
        let mut h = on_thread_with(clock, 64, || {
            let mut outer = step("outer");
            {
                let mut inner = step("inner");
                inner.add_items(2);
                inner.mark_error();
            }
            drop(step("sibling"));
            outer.add_items(5);
        });
        let after = clock.raw();
        let mut evs = Vec::new();
        h.consumer.drain_into(&mut evs);
        assert_eq!(evs.len(), 6, "{evs:?}");
        for e in &evs {
            assert!(
                (before..=after).contains(&e.time()),
                "{} not a CLOCK_MONOTONIC time in {before}..={after}",
                e.time()
            );
        }
        assert!(matches!(evs[0], Event::Enter { name: "outer", .. }));
        assert!(matches!(evs[1], Event::Enter { name: "inner", .. }));
        assert!(matches!(
            evs[2],
            Event::Exit {
                items: 2,
                status: Status::Error,
                ..
            }
        ));
        assert!(matches!(
            evs[3],
            Event::Enter {
                name: "sibling",
                ..
            }
        ));
        assert!(matches!(
            evs[4],
            Event::Exit {
                status: Status::Ok,
                ..
            }
        ));
        assert!(matches!(
            evs[5],
            Event::Exit {
                items: 5,
                status: Status::Ok,
                ..
            }
        ));
        assert_eq!(counts(&h), (0, 0));
    }

    #[test]
    fn a_thread_that_outlives_a_run_writes_the_next_run_into_a_new_ring() {
        // One thread, two runs: the thread's ring of the first is detached (and closed) when
        // its first step of the second registers, and nothing of the second reaches the first.
        let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let worker = std::thread::spawn(move || {
            while go_rx.recv().is_ok() {
                let mut g = step("work");
                g.add_items(1);
                drop(g);
                done_tx.send(()).unwrap();
            }
        });
        let mut rings = Vec::new();
        for run in 0..2 {
            let reg = Arc::new(Registry::new(crate::clock::Clock::new(), 64, None));
            install(reg.clone()).unwrap();
            for _ in 0..=run {
                go_tx.send(()).unwrap();
                done_rx.recv().unwrap();
            }
            uninstall(reg.epoch);
            let mut handles = Vec::new();
            reg.take_new_threads(&mut handles);
            assert_eq!(handles.len(), 1, "run {run}");
            rings.push(handles.pop().unwrap());
        }
        // Still alive: only the first ring is closed (by the second run's registration).
        assert!(rings[0].consumer.is_closed());
        assert!(!rings[1].consumer.is_closed());
        let mut evs = Vec::new();
        assert_eq!(rings[0].consumer.drain_into(&mut evs), 2);
        evs.clear();
        assert_eq!(rings[1].consumer.drain_into(&mut evs), 4);
        drop(go_tx);
        worker.join().unwrap();
        assert!(rings[1].consumer.is_closed(), "thread exit closes the ring");
        assert_eq!(rings[1].consumer.dropped(), 0);
    }

    #[test]
    fn guards_dropped_in_order_are_not_flagged() {
        let h = on_thread(64, || {
            let a = step("a");
            let b = step("b");
            drop(b);
            let c = step("c");
            drop(c);
            drop(a);
        });
        assert_eq!(counts(&h), (0, 0));
    }

    #[test]
    fn guards_dropped_out_of_order_are_counted() {
        let h = on_thread(64, || {
            let a = step("a");
            let b = step("b");
            drop(a); // closes `b`'s frame: flagged
            drop(b); // closes `a`'s frame: flagged too (both records are swapped)
        });
        assert_eq!(counts(&h), (0, 2));
    }

    #[test]
    fn folded_guards_dropped_out_of_order_are_counted() {
        // A 4-event ring takes two open steps; the next ones are folded.
        let h = on_thread(4, || {
            let a = step("a");
            let b = step("b");
            let c = step("c");
            let d = step("d");
            assert!(c.tag.flags() & FOLDED != 0 && d.tag.flags() & FOLDED != 0);
            drop(c); // folded, but `d` is the innermost folded step
            drop(d);
            drop(b);
            drop(a);
        });
        assert_eq!(counts(&h), (0, 2), "`c` and `d`, not the ring steps");
        let folds = h.folds.snapshot();
        assert_eq!(folds.iter().map(|f| f.count).sum::<u64>(), 2);
    }

    #[test]
    fn steps_leaked_at_thread_exit_are_counted_even_when_folded() {
        let h = on_thread(4, || {
            std::mem::forget(step("ring-1"));
            std::mem::forget(step("ring-2"));
            // The ring is full: this one is folded, and its guard leaked too.
            let g = step("folded");
            assert!(g.tag.flags() & FOLDED != 0);
            std::mem::forget(g);
        });
        assert_eq!(
            counts(&h),
            (3, 0),
            "two ring steps and one folded step leaked"
        );
        // The folded one is an instance of its name, not lost.
        let folds = h.folds.snapshot();
        let f = folds.iter().find(|f| f.name == "folded").unwrap();
        assert_eq!(f.count, 1);
        // The ring holds the two enters with no exit: the aggregator records them `unfinished`.
        let mut h = h;
        let mut evs = Vec::new();
        h.consumer.drain_into(&mut evs);
        assert_eq!(evs.len(), 2);
        assert!(evs.iter().all(|e| matches!(e, Event::Enter { .. })));
    }

    #[test]
    fn an_inactive_guard_is_not_flagged_or_counted() {
        // No run: nothing recorded, nothing counted, whatever the drop order.
        let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let a = step("a");
        let b = step("b");
        assert!(!a.is_recording() && !b.is_recording());
        drop(a);
        drop(b);
    }
}
