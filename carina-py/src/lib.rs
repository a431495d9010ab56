//! `carina._native`: the Rust half of the `carina` Python package (PyO3, stable ABI 3.9+).
//!
//! The package (`python/carina/__init__.py`) re-exports what is here and adds what is easier in
//! Python: decorators for functions, coroutines and generators (`carina._wrap`), the `atexit`
//! and `os.register_at_fork` hooks. Everything records through the same core as Rust steps
//! (`carina-core`) and runs through the facade's builder (`carina::Run::builder`), so run
//! files, environment variables and `carina run`'s child-file merge behave as in Rust.
//!
//! # Modules
//! - `names`: Python `str` names to `&'static str`, interned once per distinct name.
//! - `stack`: `Step` (context manager and decorator), `Site`, `Task`: the per-thread stack that
//!   keeps the core's rings paired whatever order Python exits steps in.
//! - `run`: `Run` and the process-wide slot of the active run; `summary`: `RunSummary`,
//!   `StepSummary`; `governor`: `Governor`, `Permit`.
//! - `hook`: the `on_step_exit` callable; `process`: fork safety; `errors`: exceptions.
//!
//! Nothing here panics on purpose: locks recover from poisoning, thread-local state is reached
//! with `try_with`/`try_borrow_mut`, and every failure is a Python exception or a warning.

mod errors;
mod governor;
mod hook;
mod names;
mod process;
mod run;
mod stack;
mod summary;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyString;

/// A step named `name`, as a context manager (`with carina.step("load", items=n) as s:`) or a
/// decorator (`@carina.step`, `@carina.step("name", items=..., gpu=True)`).
///
/// Called with a function (`@carina.step` without parentheses), returns the decorated function,
/// named `module.qualname`.
#[pyfunction]
#[pyo3(signature = (name=None, /, *, items=None, gpu=false))]
fn step(
    py: Python<'_>,
    name: Option<&Bound<'_, PyAny>>,
    items: Option<&Bound<'_, PyAny>>,
    gpu: bool,
) -> PyResult<Py<PyAny>> {
    make_step(py, name, items, gpu)
}

/// A GPU step: `carina.step(..., gpu=True)`. A GPU's energy goes to the GPU steps open in each
/// sampling interval, by wall-time overlap, whatever their CPU time.
#[pyfunction]
#[pyo3(signature = (name=None, /, *, items=None))]
fn gpu_step(
    py: Python<'_>,
    name: Option<&Bound<'_, PyAny>>,
    items: Option<&Bound<'_, PyAny>>,
) -> PyResult<Py<PyAny>> {
    make_step(py, name, items, true)
}

#[inline]
fn make_step(
    py: Python<'_>,
    name: Option<&Bound<'_, PyAny>>,
    items: Option<&Bound<'_, PyAny>>,
    gpu: bool,
) -> PyResult<Py<PyAny>> {
    match name {
        Some(n) => {
            if let Ok(s) = n.cast::<PyString>() {
                let count = match items {
                    None => Some(0),
                    Some(i) if i.is_none() => Some(0),
                    Some(i) if i.is_callable() => None,
                    Some(i) => Some(stack::items_of(i)?),
                };
                if let Some(count) = count {
                    return stack::PyStep::obtain(s, count, gpu);
                }
                let step = stack::PyStep::new(Some(s.clone()), items, gpu)?;
                return Ok(Py::new(py, step)?.into_any());
            }
            if n.is_none() {
                return Ok(Py::new(py, stack::PyStep::new(None, items, gpu)?)?.into_any());
            }
            if n.is_callable() {
                let items = items.map_or_else(|| py.None(), |i| i.clone().unbind());
                return stack::decorate(py, n, py.None(), items, gpu);
            }
            Err(PyTypeError::new_err(format!(
                "a step name must be a str (or carina.step decorates a function), got {}",
                n.get_type().name()?
            )))
        }
        None => Ok(Py::new(py, stack::PyStep::new(None, items, gpu)?)?.into_any()),
    }
}

/// Whether a run is active in this process and steps record (false in a child forked during a
/// run, and with `CARINA_DISABLE=1`).
#[pyfunction]
fn is_recording() -> bool {
    stack::recording()
}

/// Registered by the package with `os.register_at_fork(after_in_child=...)`.
#[pyfunction]
fn _after_fork_in_child() {
    process::after_fork_in_child();
}

/// Registered by the package with `atexit`: finishes a run still active at interpreter exit.
#[pyfunction]
fn _finish_at_exit(py: Python<'_>) {
    run::finish_at_exit(py);
}

/// The number of distinct step names interned so far (each is kept for the process's life).
#[pyfunction]
fn _distinct_names() -> usize {
    names::distinct_names()
}

/// The Rust half of the `carina` package; import `carina` instead.
#[pymodule(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(step, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_step, m)?)?;
    m.add_function(wrap_pyfunction!(is_recording, m)?)?;
    m.add_function(wrap_pyfunction!(_after_fork_in_child, m)?)?;
    m.add_function(wrap_pyfunction!(_finish_at_exit, m)?)?;
    m.add_function(wrap_pyfunction!(_distinct_names, m)?)?;
    m.add_class::<stack::PyStep>()?;
    m.add_class::<stack::Site>()?;
    m.add_class::<stack::StepFunction>()?;
    m.add_class::<stack::PyTask>()?;
    m.add_class::<run::PyRun>()?;
    m.add_class::<summary::PyRunSummary>()?;
    m.add_class::<summary::PyStepSummary>()?;
    m.add_class::<governor::PyGovernor>()?;
    m.add_class::<governor::PyPermit>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
