//! Carina's errors as Python exceptions, with Carina's own messages.
//!
//! - `ValueError`: a setting, a zone, an environment variable, a schedule or policy that is not
//!   valid (what is wrong and what is accepted);
//! - `OSError` (the subclass its errno gives: `PermissionError`, `FileNotFoundError`,
//!   `FileExistsError`, ...): a file that cannot be created or read;
//! - `RuntimeError`: a second run in the process, a run used in the wrong state, a forked child.

use carina::control::schedule::ScheduleError;
use carina::{CarbonError, FinishError, StartError};
use pyo3::PyErr;
use pyo3::exceptions::{PyFileExistsError, PyOSError, PyRuntimeError, PyValueError};

/// `OSError(errno, message)`: Python picks the subclass from the errno.
pub fn os_error(source: &std::io::Error, message: String) -> PyErr {
    match source.raw_os_error() {
        Some(errno) => PyOSError::new_err((errno, message)),
        None => PyOSError::new_err(message),
    }
}

/// A run that cannot start.
pub fn start_error(e: StartError) -> PyErr {
    let message = e.to_string();
    match e {
        StartError::AlreadyRunning => PyRuntimeError::new_err(message),
        StartError::Spawn(source) => os_error(&source, message),
        StartError::RunFile { source, .. } => os_error(&source, message),
        StartError::RunIdTaken { .. } => PyFileExistsError::new_err(message),
        StartError::Carbon(c) => carbon_error(c),
        StartError::InvalidEnv { .. } | StartError::InvalidSetting { .. } => {
            PyValueError::new_err(message)
        }
        // A variant added later: its message is still Carina's.
        #[allow(unreachable_patterns)]
        _ => PyRuntimeError::new_err(message),
    }
}

/// A carbon zone or intensity series that cannot be used.
pub fn carbon_error(e: CarbonError) -> PyErr {
    let message = e.to_string();
    match e {
        CarbonError::Io { source, .. } => os_error(&source, message),
        _ => PyValueError::new_err(message),
    }
}

/// A run that cannot finish.
pub fn finish_error(e: FinishError) -> PyErr {
    PyRuntimeError::new_err(e.to_string())
}

/// A schedule file that cannot be read or is invalid.
pub fn schedule_error(e: ScheduleError) -> PyErr {
    let message = e.to_string();
    match e {
        ScheduleError::Read { source, .. } => os_error(&source, message),
        _ => PyValueError::new_err(message),
    }
}
