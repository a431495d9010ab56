//! Python steps on the core's rings: `with carina.step(...)`, decorated functions, and the
//! resumptions of decorated coroutines and generators.
//!
//! # Why a stack of our own
//! The core pairs each exit with the innermost open step of the thread that pushes it. Rust
//! guarantees that order (a `!Send` guard dropped in scope); Python does not: a `Step` object can
//! be exited on another thread, exited out of order, exited twice, or never exited and collected
//! at any time on any thread. So the core's guards never live in Python objects. Each thread
//! keeps a stack of the steps Python opened on it ([`STACK`]), every frame tagged with a key
//! that the `Step` object remembers; only the thread's own stack ever drops its guards, which
//! keeps the ring's pairing intact whatever Python does:
//!
//! - exit of the top frame (the normal case): the guard is dropped, one ring event;
//! - exit of a frame with newer frames above it (out of order): those are closed first with
//!   status `error` and a `RuntimeWarning` names them;
//! - exit on another thread than the one that entered: nothing is recorded there and a
//!   `RuntimeWarning` says so; the step stays open on its own thread until an enclosing step
//!   exits there (then it is closed as above) or the run finishes (written `unfinished`);
//! - never exited: as the previous case; collecting the `Step` object records nothing;
//! - a thread that ends with steps open: they end with it (or are written `unfinished`);
//! - in a child forked during a run: nothing is recorded, and guards left from the parent are
//!   forgotten, never dropped (their ring and its locks are the parent's copy).
//!
//! An exception leaving a step (any `BaseException`) records status `error`; it is never
//! suppressed.
//!
//! # Cost
//! `carina.step("x")` hands out a pooled `Step` object when nobody holds the previous one
//! ([`PyStep::obtain`]), so a `with` block allocates nothing; a decorated plain function is a
//! [`StepFunction`], whose call enters and exits in Rust with no `Step` object at all. The
//! interpreter stays attached throughout: a step is a few loads and stores here plus the
//! core's two ring writes.
//!
//! # Coroutines and generators
//! A decorated `async def` (or generator function) is one step recorded as segments, as Rust
//! async steps are: each resumption (`send`, `throw`, `close`) enters a segment of the step's id
//! and leaves it when the coroutine suspends or returns, so time spent awaiting is not counted
//! and concurrent coroutines on one event loop do not nest in each other. A `with carina.step`
//! block inside such a resumption is a *child*: it is recorded as segments of its own id too,
//! suspended and resumed with its coroutine, so it may span `await`s.

use crate::names;
use crate::{hook, process};
use carina_core::{SegmentToken, Status};
use pyo3::exceptions::{PyRuntimeError, PyRuntimeWarning, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString, PyTuple};
use std::cell::RefCell;
use std::ffi::CString;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Low bits of a frame key: a per-thread counter; high bits: the thread's serial number.
const COUNTER_BITS: u32 = 40;
const COUNTER_MASK: u64 = (1 << COUNTER_BITS) - 1;

/// Serial numbers of threads that opened Python steps; 0 is never a thread's.
static SERIALS: AtomicU64 = AtomicU64::new(1);
/// Keys made when a thread's stack is busy (a step opened from inside a step exit's hook):
/// serial 0, so no thread claims them.
static STRAY_KEYS: AtomicU64 = AtomicU64::new(2);

struct ThreadStack {
    serial: u64,
    counter: u64,
    frames: Vec<Frame>,
}

impl ThreadStack {
    fn new() -> ThreadStack {
        ThreadStack {
            serial: SERIALS.fetch_add(1, Ordering::Relaxed) & ((1 << (64 - COUNTER_BITS)) - 1),
            counter: 0,
            frames: Vec::new(),
        }
    }

    #[inline]
    fn key(&mut self) -> u64 {
        self.counter = (self.counter + 1) & COUNTER_MASK;
        (self.serial << COUNTER_BITS) | self.counter
    }

    fn owns(&self, key: u64) -> bool {
        key >> COUNTER_BITS == self.serial
    }

    fn position(&self, key: u64) -> Option<usize> {
        self.frames.iter().rposition(|f| f.key == key)
    }
}

thread_local! {
    static STACK: RefCell<ThreadStack> = RefCell::new(ThreadStack::new());
}

fn new_key() -> u64 {
    STACK
        .try_with(|s| s.try_borrow_mut().ok().map(|mut s| s.key()))
        .ok()
        .flatten()
        .unwrap_or_else(|| (STRAY_KEYS.fetch_add(1, Ordering::Relaxed) & COUNTER_MASK).max(2))
}

/// What a frame holds on the core's side.
enum Held {
    /// A plain step: the core's guard, dropped only by this thread.
    Guard(carina_core::Step),
    /// One resumption of a decorated coroutine or generator.
    Task {
        token: Option<SegmentToken>,
        task: Arc<Mutex<TaskState>>,
    },
    /// A `with` block opened inside a task's resumption, recorded as segments of its own id.
    Child {
        token: Option<SegmentToken>,
        task: Arc<Mutex<TaskState>>,
    },
}

struct Frame {
    key: u64,
    name: &'static str,
    held: Held,
}

/// A child step of a task, remembered across its suspensions.
#[derive(Clone, Copy)]
struct ChildInfo {
    key: u64,
    name: &'static str,
    id: u64,
    gpu: bool,
}

/// A decorated coroutine's (or generator's) step.
struct TaskState {
    key: u64,
    name: &'static str,
    gpu: bool,
    items: u64,
    /// The step's segment id; 0 until first resumed while a run records.
    id: u64,
    finished: bool,
    /// Child steps open inside it, outermost first.
    children: Vec<ChildInfo>,
}

fn lock(task: &Mutex<TaskState>) -> MutexGuard<'_, TaskState> {
    task.lock().unwrap_or_else(|e| e.into_inner())
}

/// Records the end of segment step `id` with a segment of no length: for a step whose open
/// segment is not on this thread's stack. An enter and its exit pushed together cannot break
/// the ring's pairing.
fn end_by_pair(name: &'static str, id: u64, gpu: bool, items: u64, status: Status) {
    if id == 0 || process::steps_blocked() {
        return;
    }
    if let Some(t) = carina_core::enter_segment_with(name, id, gpu) {
        carina_core::exit_segment(t, items, status, true);
    }
}

/// Closes frames that were still open above a frame being exited (newest first): guards and
/// child steps end with status `error`, except the children of a task whose resumption is
/// closed here too, which are suspended with it. Returns the names of the steps ended or cut,
/// for the warning.
fn close_above(frames: Vec<Frame>) -> Vec<&'static str> {
    let blocked = process::steps_blocked();
    let keep_suspended: Vec<Arc<Mutex<TaskState>>> = frames
        .iter()
        .filter_map(|f| match &f.held {
            Held::Task { task, .. } => Some(task.clone()),
            _ => None,
        })
        .collect();
    let mut ended = Vec::new();
    for f in frames.into_iter().rev() {
        match f.held {
            Held::Guard(mut g) => {
                ended.push(f.name);
                if blocked {
                    std::mem::forget(g);
                } else {
                    g.mark_error();
                    drop(g);
                }
            }
            Held::Task { token, task } => {
                ended.push(f.name);
                // The coroutine is still running: its segment ends here; its next resumption
                // opens a new one, and its suspension finds no frame to close.
                if let Some(t) = token
                    && !blocked
                {
                    carina_core::exit_segment(t, 0, Status::Ok, false);
                }
                drop(task);
            }
            Held::Child { token, task } => {
                let suspend = keep_suspended.iter().any(|k| Arc::ptr_eq(k, &task));
                if !suspend {
                    ended.push(f.name);
                    lock(&task).children.retain(|c| c.key != f.key);
                }
                if let Some(t) = token
                    && !blocked
                {
                    let status = if suspend { Status::Ok } else { Status::Error };
                    carina_core::exit_segment(t, 0, status, !suspend);
                }
            }
        }
    }
    ended
}

fn warn(py: Python<'_>, message: String) -> PyResult<()> {
    let message = CString::new(message.replace('\0', "?")).unwrap_or_default();
    PyErr::warn(py, py.get_type::<PyRuntimeWarning>().as_any(), &message, 2)
}

fn warn_closed_early(py: Python<'_>, ended: &[&str], by: &str) -> PyResult<()> {
    if ended.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = ended.iter().map(|n| format!("{n:?}")).collect();
    warn(
        py,
        format!(
            "carina: step {by:?} exited while {} opened after it on this thread {} still open; \
             {} closed first with status \"error\" (steps must exit in the reverse order of \
             entering)",
            names.join(", "),
            if names.len() == 1 { "was" } else { "were" },
            if names.len() == 1 {
                "it was"
            } else {
                "they were"
            },
        ),
    )
}

/// `items=` as given: a non-negative int (anything with `__index__`).
pub fn items_of(value: &Bound<'_, PyAny>) -> PyResult<u64> {
    match value.extract::<u64>() {
        Ok(n) => Ok(n),
        Err(_) if value.is_instance_of::<pyo3::types::PyInt>() || value.hasattr("__index__")? => {
            Err(PyValueError::new_err(format!(
                "items must be a non-negative integer below 2**64, got {}",
                value.repr()?
            )))
        }
        Err(_) => Err(PyTypeError::new_err(format!(
            "items must be an int, got {}",
            value.get_type().name()?
        ))),
    }
}

/// Whether Python steps record now.
#[inline]
pub fn recording() -> bool {
    carina_core::is_recording() && !process::steps_blocked()
}

/// `PyStep::open` of a step that is not open.
const CLOSED: u64 = 0;
/// `PyStep::open` of a step entered while nothing recorded: its exit does nothing.
const INERT: u64 = 1;

/// A step: a context manager (`with carina.step("load", items=n) as s:`) and, called on a
/// function, a decorator (`@carina.step("load")`).
///
/// Whether it records is decided at `__enter__`: a run must be active then. An exception
/// leaving the block (any `BaseException`, `KeyboardInterrupt` included) records status
/// `error` and propagates. A `Step` object may be entered again after it exited, never while
/// it is open.
///
/// Frozen, with atomic fields: a mutable pyclass pays an atomic compare-and-swap per method
/// call for its borrow flag.
#[pyclass(module = "carina", name = "Step", frozen)]
pub struct PyStep {
    name: Option<Py<PyString>>,
    /// The interned name; `None` only for `carina.step()` without a name (a decorator factory).
    interned: Option<&'static str>,
    items: AtomicU64,
    items_fn: Option<Py<PyAny>>,
    gpu: bool,
    error: AtomicBool,
    /// [`CLOSED`], [`INERT`], or the key of its frame on the entering thread's stack.
    open: AtomicU64,
    /// The task whose child this step is, while it is open as one.
    child: Mutex<Option<Arc<Mutex<TaskState>>>>,
}

/// Step objects kept per thread for reuse, by canonical name object and GPU flag.
struct NamePool {
    address: usize,
    gpu: bool,
    steps: Vec<Py<PyStep>>,
}

/// Slots of the direct-mapped table of [`NamePool`]s; a name whose slot another name took
/// allocates until it takes the slot back.
const POOL_SLOTS: usize = 128;
/// Step objects kept per name: enough for the same name nested a few deep, and for a loop's
/// `as s` still holding the previous iteration's object.
const POOL_DEPTH: usize = 4;

thread_local! {
    static POOLS: RefCell<[Option<NamePool>; POOL_SLOTS]> =
        const { RefCell::new([const { None }; POOL_SLOTS]) };
}

/// Whether the pool's reference is the object's only one. Called attached to the interpreter
/// (from `carina.step`), so no other thread changes the count meanwhile.
#[inline]
fn only_the_pool_holds(step: &Py<PyStep>) -> bool {
    // SAFETY: `step` is a live object (the pool holds a strong reference to it), so its
    // pointer is valid for reading its reference count. PyO3 0.29 deprecated its safe
    // wrapper in favour of this call.
    unsafe { pyo3::ffi::Py_REFCNT(step.as_ptr()) == 1 }
}

#[inline]
fn pool_slot(address: usize, gpu: bool) -> usize {
    // Objects are 16-byte aligned: the low bits say nothing.
    ((address >> 4) ^ usize::from(gpu)) % POOL_SLOTS
}

impl PyStep {
    fn with_parts(
        name: Option<Py<PyString>>,
        interned: Option<&'static str>,
        items: u64,
        items_fn: Option<Py<PyAny>>,
        gpu: bool,
    ) -> PyStep {
        PyStep {
            name,
            interned,
            items: AtomicU64::new(items),
            items_fn,
            gpu,
            error: AtomicBool::new(false),
            open: AtomicU64::new(CLOSED),
            child: Mutex::new(None),
        }
    }

    /// A step from `carina.step(name, items=..., gpu=...)` (`name` `None` for a decorator
    /// factory). `items` may be a callable only for decorator use. Allocates; the common
    /// `carina.step("name", items=n)` goes through [`PyStep::obtain`].
    pub fn new(
        name: Option<Bound<'_, PyString>>,
        items: Option<&Bound<'_, PyAny>>,
        gpu: bool,
    ) -> PyResult<PyStep> {
        let (items, items_fn) = match items {
            None => (0, None),
            Some(v) if v.is_none() => (0, None),
            Some(v) if v.is_callable() => (0, Some(v.clone().unbind())),
            Some(v) => (items_of(v)?, None),
        };
        let interned = match &name {
            Some(n) => Some(names::intern(n)?),
            None => None,
        };
        Ok(PyStep::with_parts(
            name.map(Bound::unbind),
            interned,
            items,
            items_fn,
            gpu,
        ))
    }

    /// `carina.step(name, items=n)`: a step object of this thread's pool for the name that
    /// nobody else references (its reference count is the pool's one), reset; else a new one.
    ///
    /// A `with` block holds its step (through the bound `__exit__`) until it ends, and `as s`
    /// holds it while `s` does, so an object is reused only once unreachable from Python: the
    /// caller cannot tell it from a new one, and a step costs no allocation.
    #[inline]
    pub fn obtain(name: &Bound<'_, PyString>, items: u64, gpu: bool) -> PyResult<Py<PyAny>> {
        let py = name.py();
        let address = name.as_ptr() as usize;
        let slot = pool_slot(address, gpu);
        let reused = POOLS
            .try_with(|p| {
                let p = p.try_borrow().ok()?;
                let pool = p[slot]
                    .as_ref()
                    .filter(|pl| pl.address == address && pl.gpu == gpu)?;
                pool.steps
                    .iter()
                    .find(|s| only_the_pool_holds(s))
                    .map(|s| s.clone_ref(py))
            })
            .ok()
            .flatten();
        if let Some(step) = reused {
            step.get().reset(items);
            return Ok(step.into_any());
        }
        PyStep::obtain_slow(name, items, gpu, address, slot)
    }

    #[cold]
    #[inline(never)]
    fn obtain_slow(
        name: &Bound<'_, PyString>,
        items: u64,
        gpu: bool,
        address: usize,
        slot: usize,
    ) -> PyResult<Py<PyAny>> {
        let py = name.py();
        let (text, canonical) = names::intern_canonical(name)?;
        let step = Py::new(
            py,
            PyStep::with_parts(Some(name.clone().unbind()), Some(text), items, None, gpu),
        )?;
        if canonical {
            // Only canonical names: they are never freed, so their address stays theirs.
            let _ = POOLS.try_with(|p| {
                let Ok(mut p) = p.try_borrow_mut() else {
                    return;
                };
                match &mut p[slot] {
                    Some(pl) if pl.address == address && pl.gpu == gpu => {
                        if pl.steps.len() < POOL_DEPTH {
                            pl.steps.push(step.clone_ref(py));
                        }
                    }
                    other => {
                        *other = Some(NamePool {
                            address,
                            gpu,
                            steps: vec![step.clone_ref(py)],
                        });
                    }
                }
            });
        }
        Ok(step.into_any())
    }

    /// Makes a reused object as new.
    #[inline]
    fn reset(&self, items: u64) {
        self.items.store(items, Ordering::Relaxed);
        self.error.store(false, Ordering::Relaxed);
        if self.open.load(Ordering::Relaxed) != CLOSED {
            // Entered, never exited, then dropped by Python: its frame stays where it is (see
            // the module documentation); the object starts afresh.
            self.open.store(CLOSED, Ordering::Relaxed);
            *self.child.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }

    fn display_name(&self) -> &str {
        self.interned.unwrap_or("<unnamed>")
    }

    fn enter(&self) -> PyResult<()> {
        if self.open.load(Ordering::Relaxed) != CLOSED {
            return Err(PyRuntimeError::new_err(format!(
                "step {:?} is already open; use a new carina.step(...) for each block",
                self.display_name()
            )));
        }
        let Some(name) = self.interned else {
            return Err(PyTypeError::new_err(
                "a step used as a context manager needs a name: carina.step(\"name\")",
            ));
        };
        if self.items_fn.is_some() {
            return Err(PyTypeError::new_err(
                "a callable items= is for decorated functions (it is called with their \
                 arguments); in a with block give an int, or call add_items()",
            ));
        }
        self.error.store(false, Ordering::Relaxed);
        if !recording() {
            self.open.store(INERT, Ordering::Relaxed);
            return Ok(());
        }
        let (key, child) = open_step(name, self.gpu);
        if child.is_some() {
            *self.child.lock().unwrap_or_else(|e| e.into_inner()) = child;
        }
        self.open.store(key, Ordering::Relaxed);
        Ok(())
    }

    fn exit(&self, py: Python<'_>, raised: bool) -> PyResult<()> {
        let key = self.open.swap(CLOSED, Ordering::Relaxed);
        if key == CLOSED || key == INERT {
            return Ok(());
        }
        let items = self.items.load(Ordering::Relaxed);
        let error = self.error.load(Ordering::Relaxed) || raised;
        close_step(py, key, &self.child, items, error, self.display_name())
    }
}

/// Opens a step named `name` on this thread: a guard on the thread's stack, or, inside a
/// task's resumption, a child step. Returns the frame's key ([`INERT`] when the thread's stack
/// is busy: a step opened from inside a step exit's hook) and the task of a child.
#[inline]
fn open_step(name: &'static str, gpu: bool) -> (u64, Option<Arc<Mutex<TaskState>>>) {
    STACK
        .try_with(|cell| {
            let Ok(mut st) = cell.try_borrow_mut() else {
                return (INERT, None);
            };
            let key = st.key();
            let task = match st.frames.last() {
                Some(Frame {
                    held: Held::Task { task, .. } | Held::Child { task, .. },
                    ..
                }) => Some(task.clone()),
                _ => None,
            };
            match task {
                None => {
                    let g = if gpu {
                        carina_core::gpu_step(name)
                    } else {
                        carina_core::step(name)
                    };
                    st.frames.push(Frame {
                        key,
                        name,
                        held: Held::Guard(g),
                    });
                    (key, None)
                }
                Some(task) => (key, Some(enter_child(&mut st, key, name, gpu, task))),
            }
        })
        .unwrap_or((INERT, None))
}

/// Closes the step whose frame has `key` (see the module documentation for the cases).
/// `child` holds the task of a child step (taken here).
#[inline]
fn close_step(
    py: Python<'_>,
    key: u64,
    child: &Mutex<Option<Arc<Mutex<TaskState>>>>,
    items: u64,
    error: bool,
    display_name: &str,
) -> PyResult<()> {
    if key == INERT || key == CLOSED {
        return Ok(());
    }
    enum Found {
        Top(Frame),
        Buried(Vec<Frame>),
        Gone { ours: bool },
    }
    let found = STACK
        .try_with(|cell| {
            let Ok(mut st) = cell.try_borrow_mut() else {
                return Found::Gone { ours: true };
            };
            match st.frames.last() {
                Some(f) if f.key == key => match st.frames.pop() {
                    Some(f) => Found::Top(f),
                    None => Found::Gone { ours: true },
                },
                _ => match st.position(key) {
                    Some(i) => Found::Buried(st.frames.split_off(i)),
                    None => Found::Gone { ours: st.owns(key) },
                },
            }
        })
        .unwrap_or(Found::Gone { ours: true });
    let child = match &found {
        Found::Top(Frame {
            held: Held::Guard(_),
            ..
        }) => None,
        _ => child.lock().unwrap_or_else(|e| e.into_inner()).take(),
    };
    let _scope = hook::is_set().then(hook::ExitScope::enter);
    match found {
        Found::Top(frame) => end_frame(frame, items, error),
        Found::Buried(mut frames) => {
            let above = frames.split_off(1);
            let ended = close_above(above);
            let name = frames.first().map_or("", |f| f.name);
            for f in frames {
                end_frame(f, items, error);
            }
            warn_closed_early(py, &ended, name)?;
        }
        Found::Gone { ours } => {
            if let Some(task) = child {
                // A child whose segment is not open on this thread (its coroutine is
                // suspended): end it with a pair, if it is still the task's.
                let info = {
                    let mut t = lock(&task);
                    let i = t.children.iter().position(|c| c.key == key);
                    i.map(|i| t.children.remove(i))
                };
                if let Some(c) = info {
                    let status = if error { Status::Error } else { Status::Ok };
                    end_by_pair(c.name, c.id, c.gpu, items, status);
                    return raise_pending();
                }
            }
            if !ours {
                warn(
                    py,
                    format!(
                        "carina: step {display_name:?} exited on another thread than the one \
                         that entered it; nothing is recorded at this exit (it stays open on \
                         its thread until an enclosing step exits there or the run finishes)"
                    ),
                )?;
            }
        }
    }
    raise_pending()
}

/// Raises the `BaseException` the `on_step_exit` hook raised during this exit, if any.
fn raise_pending() -> PyResult<()> {
    if hook::is_set()
        && let Some(err) = hook::take_pending()
    {
        return Err(err);
    }
    Ok(())
}

/// Opens a child step of `task` (a `with` block inside a coroutine's resumption).
#[cold]
#[inline(never)]
fn enter_child(
    st: &mut ThreadStack,
    key: u64,
    name: &'static str,
    gpu: bool,
    task: Arc<Mutex<TaskState>>,
) -> Arc<Mutex<TaskState>> {
    let id = carina_core::new_segment_id();
    let token = carina_core::enter_segment_with(name, id, gpu);
    lock(&task).children.push(ChildInfo { key, name, id, gpu });
    st.frames.push(Frame {
        key,
        name,
        held: Held::Child {
            token,
            task: task.clone(),
        },
    });
    task
}

/// Ends the frame a step's exit found: its guard or its last segment.
fn end_frame(frame: Frame, items: u64, error: bool) {
    let blocked = process::steps_blocked();
    match frame.held {
        Held::Guard(mut g) => {
            if blocked {
                // A child forked during the run: the ring and its locks are the parent's copy.
                std::mem::forget(g);
                return;
            }
            g.set_items(items);
            if error {
                g.mark_error();
            }
            drop(g);
        }
        Held::Child { token, task } => {
            lock(&task).children.retain(|c| c.key != frame.key);
            if let Some(t) = token
                && !blocked
            {
                let status = if error { Status::Error } else { Status::Ok };
                carina_core::exit_segment(t, items, status, true);
            }
        }
        Held::Task { token, .. } => {
            if let Some(t) = token
                && !blocked
            {
                carina_core::exit_segment(t, 0, Status::Ok, false);
            }
        }
    }
}

#[pymethods]
impl PyStep {
    fn __enter__(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        slf.get().enter()?;
        Ok(slf)
    }

    /// Ends the step; status `error` when an exception is leaving the block. Never suppresses
    /// the exception.
    #[pyo3(signature = (exc_type=None, _exc=None, _tb=None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        self.exit(py, exc_type.is_some())?;
        Ok(false)
    }

    /// Adds `n` to the items this step processed.
    fn add_items(&self, n: &Bound<'_, PyAny>) -> PyResult<()> {
        let n = items_of(n)?;
        // Steps are used by one thread at a time: a load and a store, not a locked add.
        let v = self.items.load(Ordering::Relaxed).wrapping_add(n);
        self.items.store(v, Ordering::Relaxed);
        Ok(())
    }

    /// Sets the items this step processed.
    fn set_items(&self, n: &Bound<'_, PyAny>) -> PyResult<()> {
        self.items.store(items_of(n)?, Ordering::Relaxed);
        Ok(())
    }

    /// Records the step with status `error` when it exits.
    fn mark_error(&self) {
        self.error.store(true, Ordering::Relaxed);
    }

    /// The step's name (`None` for the shared no-op step and for `carina.step()` used as a
    /// decorator factory).
    #[getter]
    fn name(&self, py: Python<'_>) -> Option<Py<PyString>> {
        self.name.as_ref().map(|n| n.clone_ref(py))
    }

    /// Items so far.
    #[getter]
    fn items(&self) -> u64 {
        self.items.load(Ordering::Relaxed)
    }

    /// Whether this is a GPU step.
    #[getter]
    fn gpu(&self) -> bool {
        self.gpu
    }

    /// Whether the step is open and recording.
    #[getter]
    fn is_recording(&self) -> bool {
        !matches!(self.open.load(Ordering::Relaxed), CLOSED | INERT)
    }

    /// Used as a decorator: returns `func` wrapped so that each call is this step.
    fn __call__(&self, py: Python<'_>, func: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let items = match (&self.items_fn, self.items.load(Ordering::Relaxed)) {
            (Some(f), _) => f.clone_ref(py).into_any(),
            (None, 0) => py.None(),
            (None, n) => n.into_pyobject(py)?.into_any().unbind(),
        };
        let name = match &self.name {
            Some(n) => n.clone_ref(py).into_any(),
            None => py.None(),
        };
        decorate(py, func, name, items, self.gpu)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let name = match &self.name {
            Some(n) => n.bind(py).repr()?.to_string(),
            None => "None".into(),
        };
        Ok(format!(
            "carina.Step({name}, items={}{}{})",
            self.items(),
            if self.gpu { ", gpu=True" } else { "" },
            if self.is_recording() { ", open" } else { "" }
        ))
    }
}

static DECORATE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// Calls `carina._wrap.decorate(func, name, items, gpu)`, the Python side of decorators
/// (functions, coroutines and generators are wrapped differently; that is easier in Python).
pub fn decorate(
    py: Python<'_>,
    func: &Bound<'_, PyAny>,
    name: Py<PyAny>,
    items: Py<PyAny>,
    gpu: bool,
) -> PyResult<Py<PyAny>> {
    if !func.is_callable() {
        return Err(PyTypeError::new_err(format!(
            "carina.step decorates functions; got {}",
            func.get_type().name()?
        )));
    }
    let decorate = DECORATE.get_or_try_init(py, || {
        py.import("carina._wrap")
            .and_then(|m| m.getattr("decorate"))
            .map(Bound::unbind)
    })?;
    let args = PyTuple::new(
        py,
        [
            func.clone().unbind(),
            name,
            items,
            gpu.into_pyobject(py)?.to_owned().into_any().unbind(),
        ],
    )?;
    decorate.call1(py, args)
}

/// A decorated function's step name, interned once when it is decorated, and whether it is a
/// GPU step; each call makes a [`PyStep`] or a [`PyTask`] from it without looking the name up.
#[pyclass(module = "carina._native", name = "Site", frozen)]
pub struct Site {
    name: Py<PyString>,
    interned: &'static str,
    gpu: bool,
}

#[pymethods]
impl Site {
    #[new]
    fn new(name: &Bound<'_, PyString>, gpu: bool) -> PyResult<Site> {
        Ok(Site {
            name: name.clone().unbind(),
            interned: names::intern(name)?,
            gpu,
        })
    }

    /// A step for one call of a coroutine or generator function.
    #[pyo3(signature = (items=None))]
    fn task(&self, items: Option<&Bound<'_, PyAny>>) -> PyResult<PyTask> {
        let items = match items {
            Some(n) => items_of(n)?,
            None => 0,
        };
        Ok(PyTask {
            state: Arc::new(Mutex::new(TaskState {
                key: new_key(),
                name: self.interned,
                gpu: self.gpu,
                items,
                id: 0,
                finished: false,
                children: Vec::new(),
            })),
        })
    }

    /// The step name.
    #[getter]
    fn name(&self, py: Python<'_>) -> Py<PyString> {
        self.name.clone_ref(py)
    }

    /// Whether its steps are GPU steps.
    #[getter]
    fn gpu(&self) -> bool {
        self.gpu
    }
}

/// A function decorated with `@carina.step`: each call is one step, entered and exited here
/// (no `Step` object per call). Coroutine and generator functions are wrapped in Python
/// instead (`carina._wrap`), since they run in resumptions.
///
/// It behaves as the function: `functools.update_wrapper` copies its name, docstring and
/// `__wrapped__` (so `inspect.signature` sees the original), it binds as a method, and pickles
/// by reference (its qualified name).
#[pyclass(module = "carina", name = "StepFunction", frozen, dict)]
pub struct StepFunction {
    func: Py<PyAny>,
    name: &'static str,
    gpu: bool,
    items: u64,
    items_fn: Option<Py<PyAny>>,
}

static METHOD_TYPE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

#[pymethods]
impl StepFunction {
    /// Wraps `func` as steps of `site`; `items` an int, or a callable taking the function's
    /// arguments, or `None`.
    #[new]
    #[pyo3(signature = (func, site, items=None))]
    fn new(
        func: &Bound<'_, PyAny>,
        site: &Bound<'_, Site>,
        items: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<StepFunction> {
        if !func.is_callable() {
            return Err(PyTypeError::new_err("carina.step decorates callables"));
        }
        let (items, items_fn) = match items {
            None => (0, None),
            Some(v) if v.is_none() => (0, None),
            Some(v) if v.is_callable() => (0, Some(v.clone().unbind())),
            Some(v) => (items_of(v)?, None),
        };
        let site = site.get();
        Ok(StepFunction {
            func: func.clone().unbind(),
            name: site.interned,
            gpu: site.gpu,
            items,
            items_fn,
        })
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn __call__(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        let func = self.func.bind(py);
        if !recording() {
            return func.call(args, kwargs).map(Bound::unbind);
        }
        let items = match &self.items_fn {
            // Evaluated before the body, as Rust's `items = expr`; what it raises propagates.
            Some(count) => items_of(&count.bind(py).call(args, kwargs)?)?,
            None => self.items,
        };
        let (key, child) = open_step(self.name, self.gpu);
        let slot = Mutex::new(child);
        let out = func.call(args, kwargs);
        let closed = close_step(py, key, &slot, items, out.is_err(), self.name);
        match (out, closed) {
            (Ok(v), Ok(())) => Ok(v.unbind()),
            (Err(e), Ok(())) => Err(e),
            (Ok(_), Err(e)) => Err(e),
            (Err(inner), Err(e)) => {
                // The hook's KeyboardInterrupt (or a warning turned error) wins; the
                // function's exception is its context, as if raised while handling it.
                let _ = e.value(py).setattr("__context__", inner.value(py));
                Err(e)
            }
        }
    }

    /// Binds as a method: `obj.method` is the wrapper bound to `obj`.
    fn __get__(
        slf: Bound<'_, Self>,
        obj: Option<Bound<'_, PyAny>>,
        _owner: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        match obj {
            Some(obj) if !obj.is_none() => {
                let method_type = METHOD_TYPE.get_or_try_init(py, || {
                    py.import("types")
                        .and_then(|m| m.getattr("MethodType"))
                        .map(Bound::unbind)
                })?;
                Ok(method_type.call1(py, (slf, obj))?)
            }
            _ => Ok(slf.into_any().unbind()),
        }
    }

    /// Pickled by reference: its qualified name in its module, as a function is.
    fn __reduce__(slf: &Bound<'_, Self>) -> PyResult<Py<PyAny>> {
        Ok(slf.getattr("__qualname__")?.unbind())
    }

    /// The step name.
    #[getter]
    fn step_name(&self) -> &'static str {
        self.name
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "<carina step {} of {}>",
            crate::summary::py_repr(py, self.name)?,
            self.func.bind(py).repr()?
        ))
    }
}

/// How a resumption of a task ended, as `carina._wrap` reports it.
const SUSPENDED: u8 = 0;
const RETURNED: u8 = 1;
const RAISED: u8 = 2;
const CANCELLED: u8 = 3;

/// One call of a decorated coroutine or generator function: a step recorded as one segment per
/// resumption (`carina._wrap` calls [`resume`](PyTask::resume) before each `send`/`throw`/
/// `close` and [`suspend`](PyTask::suspend) after it).
#[pyclass(module = "carina._native", name = "Task", frozen)]
pub struct PyTask {
    state: Arc<Mutex<TaskState>>,
}

#[pymethods]
impl PyTask {
    /// Opens a segment of the step (and of its open child steps) on this thread.
    fn resume(&self) {
        if !recording() {
            return;
        }
        let (key, name, gpu, id, children) = {
            let mut t = lock(&self.state);
            if t.finished {
                return;
            }
            if t.id == 0 {
                t.id = carina_core::new_segment_id();
            }
            (t.key, t.name, t.gpu, t.id, t.children.clone())
        };
        let _ = STACK.try_with(|cell| {
            let Ok(mut st) = cell.try_borrow_mut() else {
                return;
            };
            let token = carina_core::enter_segment_with(name, id, gpu);
            st.frames.push(Frame {
                key,
                name,
                held: Held::Task {
                    token,
                    task: self.state.clone(),
                },
            });
            for c in children {
                let token = carina_core::enter_segment_with(c.name, c.id, c.gpu);
                st.frames.push(Frame {
                    key: c.key,
                    name: c.name,
                    held: Held::Child {
                        token,
                        task: self.state.clone(),
                    },
                });
            }
        });
    }

    /// Closes the segments `resume` opened. `outcome`: 0 suspended (more resumptions follow),
    /// 1 returned, 2 raised, 3 cancelled (`CancelledError`, `GeneratorExit`).
    fn suspend(&self, py: Python<'_>, outcome: u8) -> PyResult<()> {
        let (done, status) = match outcome {
            SUSPENDED => (false, Status::Ok),
            RETURNED => (true, Status::Ok),
            RAISED => (true, Status::Error),
            CANCELLED => (true, Status::Cancelled),
            other => {
                return Err(PyValueError::new_err(format!(
                    "outcome {other} is not 0, 1, 2 or 3"
                )));
            }
        };
        let (key, name, gpu, items, id) = {
            let t = lock(&self.state);
            if t.finished {
                return Ok(());
            }
            (t.key, t.name, t.gpu, t.items, t.id)
        };
        let mut frames = STACK
            .try_with(|cell| {
                let Ok(mut st) = cell.try_borrow_mut() else {
                    return Vec::new();
                };
                match st
                    .frames
                    .iter()
                    .rposition(|f| f.key == key && matches!(f.held, Held::Task { .. }))
                {
                    Some(i) => st.frames.split_off(i),
                    None => Vec::new(),
                }
            })
            .unwrap_or_default();
        let blocked = process::steps_blocked();
        let mut ended = Vec::new();
        let _scope = hook::is_set().then(hook::ExitScope::enter);
        if frames.is_empty() {
            if done {
                end_by_pair(name, id, gpu, items, status);
            }
        } else {
            let above = frames.split_off(1);
            // This task's children are suspended with it (ended if it is done); anything else
            // left open in the resumption is closed.
            let mut foreign = Vec::new();
            for f in above.into_iter().rev() {
                match f.held {
                    Held::Child { token, task } if Arc::ptr_eq(&task, &self.state) => {
                        if done {
                            lock(&task).children.retain(|c| c.key != f.key);
                        }
                        if let Some(t) = token
                            && !blocked
                        {
                            let s = if done { Status::Error } else { Status::Ok };
                            carina_core::exit_segment(t, 0, s, done);
                        }
                    }
                    held => foreign.push(Frame { held, ..f }),
                }
            }
            foreign.reverse();
            ended = close_above(foreign);
            for f in frames {
                if let Held::Task { token: Some(t), .. } = f.held
                    && !blocked
                {
                    carina_core::exit_segment(t, items, status, done);
                }
            }
        }
        if done {
            let left = {
                let mut t = lock(&self.state);
                t.finished = true;
                std::mem::take(&mut t.children)
            };
            for c in left {
                end_by_pair(c.name, c.id, c.gpu, 0, Status::Error);
            }
        }
        drop(_scope);
        warn_closed_early(py, &ended, name)?;
        if hook::is_set()
            && let Some(err) = hook::take_pending()
        {
            return Err(err);
        }
        Ok(())
    }

    /// The step name.
    #[getter]
    fn name(&self) -> &'static str {
        lock(&self.state).name
    }

    /// Whether it was resumed while a run recorded (it then has a step id).
    #[getter]
    fn started(&self) -> bool {
        lock(&self.state).id != 0
    }

    /// Whether the coroutine or generator has finished.
    #[getter]
    fn finished(&self) -> bool {
        lock(&self.state).finished
    }
}

impl Drop for PyTask {
    fn drop(&mut self) {
        // Collected after it started and before it finished without being closed (Python
        // closes started coroutines it collects, which `carina._wrap` records as cancelled):
        // recorded as cancelled, as Rust records a dropped future.
        let (name, gpu, items, id, children) = {
            let mut t = lock(&self.state);
            if t.finished || t.id == 0 {
                return;
            }
            t.finished = true;
            (
                t.name,
                t.gpu,
                t.items,
                t.id,
                std::mem::take(&mut t.children),
            )
        };
        end_by_pair(name, id, gpu, items, Status::Cancelled);
        for c in children {
            end_by_pair(c.name, c.id, c.gpu, 0, Status::Error);
        }
    }
}
