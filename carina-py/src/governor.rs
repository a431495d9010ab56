//! `carina.Governor`: peak-hour control of a job's concurrency (carina-control's governor).
//!
//! Workers take a permit per unit of work: `with gov.permit(): ...`. Waiting for one releases
//! the interpreter, and wakes every 100 ms to let Python handle signals, so Ctrl-C interrupts a
//! worker that waits through a paused peak window.

use crate::errors::schedule_error;
use carina::control::governor::{Governor, Permit};
use carina::control::policy::Policy;
use carina::control::schedule::Schedule;
use pyo3::exceptions::{PyTimeoutError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long one wait lasts before Python gets to run its signal handlers.
const SIGNAL_CHECK: Duration = Duration::from_millis(100);

/// Hands out permits up to the concurrency a policy allows in the schedule's current slot;
/// mode changes are written to the active run's file as `control` records.
///
/// `Governor(schedule=None, policy="baseline", nominal=1)`: `schedule` is a TOML schedule file
/// (docs/CONTROL.md; default Mon-Fri 08:00-20:00 UTC peak), `policy` one of `baseline`,
/// `throttle`, `offpeak-boost`, `defer` with optional parameters
/// (`throttle:peak_fraction=0.25`), `nominal` the concurrency the job uses without a policy.
#[pyclass(module = "carina", name = "Governor", frozen)]
pub struct PyGovernor {
    inner: Arc<Governor>,
}

impl PyGovernor {
    /// Loads the schedule, parses the policy, creates the governor.
    pub fn create(
        py: Python<'_>,
        schedule: Option<PathBuf>,
        policy: &str,
        nominal: u32,
    ) -> PyResult<PyGovernor> {
        let policy: Policy =
            policy
                .parse()
                .map_err(|e: carina::control::policy::PolicyError| {
                    PyValueError::new_err(e.to_string())
                })?;
        if nominal == 0 {
            return Err(PyValueError::new_err(
                "nominal is the concurrency without a policy: at least 1",
            ));
        }
        let schedule = match schedule {
            None => Schedule::default_weekday_peak(),
            Some(p) => py
                .detach(move || Schedule::load(p))
                .map_err(schedule_error)?,
        };
        Ok(PyGovernor {
            inner: Arc::new(Governor::new(schedule, policy, nominal)),
        })
    }
}

fn timestamp_of(value: &Bound<'_, PyAny>) -> PyResult<jiff::Timestamp> {
    if let Ok(text) = value.extract::<String>() {
        return text.parse().map_err(|e| {
            PyValueError::new_err(format!(
                "deadline {text:?} is not an RFC 3339 time (e.g. 2026-12-01T18:00:00Z): {e}"
            ))
        });
    }
    if value.hasattr("utcoffset")? && value.hasattr("timestamp")? {
        if value.call_method0("utcoffset")?.is_none() {
            return Err(PyValueError::new_err(
                "deadline must be a timezone-aware datetime (e.g. with tzinfo=timezone.utc)",
            ));
        }
        let secs: f64 = value.call_method0("timestamp")?.extract()?;
        return from_seconds(secs);
    }
    match value.extract::<f64>() {
        Ok(secs) => from_seconds(secs),
        Err(_) => Err(PyTypeError::new_err(format!(
            "deadline must be None, an RFC 3339 string, an aware datetime or POSIX seconds, \
             got {}",
            value.get_type().name()?
        ))),
    }
}

fn from_seconds(secs: f64) -> PyResult<jiff::Timestamp> {
    let d = jiff::SignedDuration::try_from_secs_f64(secs)
        .map_err(|e| PyValueError::new_err(format!("deadline {secs} s: {e}")))?;
    jiff::Timestamp::from_duration(d)
        .map_err(|e| PyValueError::new_err(format!("deadline {secs} s: {e}")))
}

#[pymethods]
impl PyGovernor {
    #[new]
    #[pyo3(signature = (schedule=None, policy="baseline", nominal=1))]
    fn new(
        py: Python<'_>,
        schedule: Option<PathBuf>,
        policy: &str,
        nominal: u32,
    ) -> PyResult<PyGovernor> {
        PyGovernor::create(py, schedule, policy, nominal)
    }

    /// Waits for a permit and returns it; `with gov.permit(): ...` releases it at the end of
    /// the block. With `timeout` (seconds), raises `TimeoutError` when none came in time. The
    /// interpreter is released while waiting.
    #[pyo3(signature = (timeout=None))]
    fn permit(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<PyPermit> {
        let deadline = match timeout {
            None => None,
            Some(t) if t.is_finite() && t >= 0.0 => {
                Some(Instant::now() + Duration::from_secs_f64(t.min(1e9)))
            }
            Some(t) => {
                return Err(PyValueError::new_err(format!(
                    "timeout {t} is not a non-negative number of seconds"
                )));
            }
        };
        loop {
            let wait = match deadline {
                None => SIGNAL_CHECK,
                Some(d) => d
                    .saturating_duration_since(Instant::now())
                    .min(SIGNAL_CHECK),
            };
            let gov = self.inner.clone();
            if let Some(p) = py.detach(move || gov.acquire_timeout(wait)) {
                return Ok(PyPermit::of(p));
            }
            py.check_signals()?;
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(PyTimeoutError::new_err(format!(
                    "no permit within {} s (allowed {}, in use {})",
                    timeout.unwrap_or_default(),
                    self.inner.allowed(),
                    self.inner.in_use()
                )));
            }
        }
    }

    /// A permit if one is free now, else `None`.
    fn try_permit(&self) -> Option<PyPermit> {
        self.inner.try_acquire().map(PyPermit::of)
    }

    /// The state now, as a dict: `mode` (`off-peak`, `peak`, `paused`, `deadline-rescue`),
    /// `allowed`, `nominal`, `in_use`, `waiting`, `peak`, `tariff_per_kwh`, `next_change`
    /// (RFC 3339 or `None`), `rescue`, `changes`, `policy`.
    fn status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.status();
        let d = PyDict::new(py);
        d.set_item("mode", s.mode.as_str())?;
        d.set_item("allowed", s.allowed)?;
        d.set_item("nominal", s.nominal)?;
        d.set_item("in_use", s.in_use)?;
        d.set_item("waiting", s.waiting)?;
        d.set_item("peak", s.slot.peak)?;
        d.set_item("tariff_per_kwh", s.slot.tariff_per_kwh)?;
        d.set_item("next_change", s.next_change.map(|t| t.to_string()))?;
        d.set_item("rescue", s.rescue)?;
        d.set_item("changes", s.changes)?;
        d.set_item("policy", self.inner.policy().to_string())?;
        Ok(d)
    }

    /// Sets (or with `None` clears) the job's deadline: an RFC 3339 string, an aware datetime,
    /// or POSIX seconds. When the remaining work would miss it, the governor allows at least
    /// the nominal concurrency (`deadline-rescue`).
    fn set_deadline(&self, deadline: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let t = match deadline {
            None => None,
            Some(v) if v.is_none() => None,
            Some(v) => Some(timestamp_of(v)?),
        };
        self.inner.set_deadline(t);
        Ok(())
    }

    /// Tells the governor how much work is left: `work_units` at `rate_per_worker_per_sec`
    /// units per second and worker.
    fn set_remaining(&self, work_units: f64, rate_per_worker_per_sec: f64) {
        self.inner
            .set_remaining(work_units, rate_per_worker_per_sec);
    }

    /// Concurrency allowed now.
    #[getter]
    fn allowed(&self) -> u32 {
        self.inner.allowed()
    }

    /// The most this governor ever allows: how many workers to start.
    #[getter]
    fn max_allowed(&self) -> u32 {
        self.inner.max_allowed()
    }

    /// The nominal concurrency.
    #[getter]
    fn nominal(&self) -> u32 {
        self.inner.nominal()
    }

    /// The mode now.
    #[getter]
    fn mode(&self) -> &'static str {
        self.inner.mode().as_str()
    }

    /// Permits held now.
    #[getter]
    fn in_use(&self) -> u32 {
        self.inner.in_use()
    }

    /// The policy in its string form (parses back).
    #[getter]
    fn policy(&self) -> String {
        self.inner.policy().to_string()
    }

    fn __repr__(&self) -> String {
        format!(
            "carina.Governor(policy={:?}, nominal={}, allowed={}, mode={:?})",
            self.inner.policy().to_string(),
            self.inner.nominal(),
            self.inner.allowed(),
            self.inner.mode().as_str()
        )
    }
}

/// The right to run one unit of work: released by `release()` or at the end of its `with`
/// block (or when collected). Releasing twice does nothing.
#[pyclass(module = "carina", name = "Permit", frozen)]
pub struct PyPermit {
    inner: Mutex<Option<Permit>>,
}

impl PyPermit {
    fn of(p: Permit) -> PyPermit {
        PyPermit {
            inner: Mutex::new(Some(p)),
        }
    }
}

#[pymethods]
impl PyPermit {
    /// Releases the permit (wakes a waiting worker).
    fn release(&self) {
        let p = self.inner.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(p);
    }

    /// Whether the permit is still held.
    #[getter]
    fn held(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (_exc_type=None, _exc=None, _tb=None))]
    fn __exit__(
        &self,
        _exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> bool {
        self.release();
        false
    }
}
