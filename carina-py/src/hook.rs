//! `on_step_exit`: a Python callable run at every step exit, before the step's end time is read.
//!
//! The core takes a plain `fn()` (no state, no allocation on the exit path), so the callable
//! lives in a static and [`trampoline`] calls it. The core calls the hook on the thread whose
//! step ends; for Python steps that thread is inside `__exit__` and attached to the
//! interpreter, so attaching again costs little. A step of a Rust library running on a thread
//! Python does not know attaches that thread for the call.
//!
//! What the callable raises never becomes a panic:
//! - an `Exception` is reported as a `RuntimeWarning` (the step is recorded without the hook);
//! - a `BaseException` that is not an `Exception` (`KeyboardInterrupt`, `SystemExit`) raised
//!   during a Python step's exit is kept and raised by that `__exit__` once the step is recorded,
//!   so it is never swallowed; raised anywhere else, it is reported as unraisable
//!   (`sys.unraisablehook`), the one thing Python offers for an error with no caller.

use pyo3::exceptions::{PyException, PyRuntimeWarning};
use pyo3::prelude::*;
use std::cell::{Cell, RefCell};
use std::ffi::CString;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

static HOOK: Mutex<Option<Py<PyAny>>> = Mutex::new(None);
static HOOK_SET: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// Set while a Python step's exit runs on this thread.
    static IN_STEP_EXIT: Cell<bool> = const { Cell::new(false) };
    /// A `BaseException` the hook raised during that exit, for `__exit__` to raise.
    static PENDING: RefCell<Option<PyErr>> = const { RefCell::new(None) };
}

/// Makes `callable` the hook of the run being started.
pub fn install(callable: Py<PyAny>) {
    *HOOK.lock().unwrap_or_else(|e| e.into_inner()) = Some(callable);
    HOOK_SET.store(true, Ordering::Release);
}

/// Removes the hook (the run finished or failed to start). The callable is released by the
/// caller, who is attached to the interpreter.
pub fn take() -> Option<Py<PyAny>> {
    HOOK_SET.store(false, Ordering::Release);
    HOOK.lock().unwrap_or_else(|e| e.into_inner()).take()
}

/// Whether a hook is installed (one relaxed load: the exit path checks it before looking for a
/// pending exception).
#[inline]
pub fn is_set() -> bool {
    HOOK_SET.load(Ordering::Relaxed)
}

/// Marks this thread as inside a Python step's exit while the value lives.
pub struct ExitScope {
    was: bool,
}

impl ExitScope {
    /// Enters the scope.
    #[inline]
    pub fn enter() -> ExitScope {
        ExitScope {
            was: IN_STEP_EXIT.with(|c| c.replace(true)),
        }
    }
}

impl Drop for ExitScope {
    #[inline]
    fn drop(&mut self) {
        let was = self.was;
        IN_STEP_EXIT.with(|c| c.set(was));
    }
}

/// The `BaseException` the hook raised during this thread's last step exit, if any.
pub fn take_pending() -> Option<PyErr> {
    PENDING.with(|p| p.try_borrow_mut().ok().and_then(|mut p| p.take()))
}

/// The `fn()` handed to the run builder.
pub fn trampoline() {
    // During interpreter shutdown, or in a GC traversal, there is nobody to call.
    let _ = Python::try_attach(|py| {
        let callable = {
            let g = HOOK.lock().unwrap_or_else(|e| e.into_inner());
            // Cloned out so the lock is not held while Python runs: the callable may release
            // the interpreter (e.g. `torch.cuda.synchronize`) and another thread's step exit
            // would then wait on this lock while holding it.
            g.as_ref().map(|c| c.clone_ref(py))
        };
        if let Some(callable) = callable
            && let Err(err) = callable.call0(py)
        {
            report(py, err);
        }
    });
}

fn report(py: Python<'_>, err: PyErr) {
    if !err.is_instance_of::<PyException>(py) {
        let left = if IN_STEP_EXIT.with(Cell::get) {
            // Kept for `__exit__` to raise; a second one meanwhile is reported below.
            PENDING.with(move |p| match p.try_borrow_mut() {
                Ok(mut p) if p.is_none() => {
                    *p = Some(err);
                    None
                }
                _ => Some(err),
            })
        } else {
            Some(err)
        };
        if let Some(err) = left {
            err.write_unraisable(py, None);
        }
        return;
    }
    let message = format!(
        "carina: the on_step_exit hook raised {}; the step was recorded without it",
        describe(py, &err)
    );
    let message = CString::new(message.replace('\0', "?")).unwrap_or_default();
    let category = py.get_type::<PyRuntimeWarning>();
    if let Err(e) = PyErr::warn(py, category.as_any(), &message, 1) {
        e.write_unraisable(py, None);
    }
}

/// `TypeName: message` of an exception, for warnings.
pub fn describe(py: Python<'_>, err: &PyErr) -> String {
    let ty = err
        .get_type(py)
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "exception".into());
    let value = err
        .value(py)
        .str()
        .map(|s| s.to_string())
        .unwrap_or_default();
    if value.is_empty() {
        ty
    } else {
        format!("{ty}: {value}")
    }
}
