//! `carina.Run`: one run per process, started through the facade's builder.
//!
//! The Rust `carina::Run` does not live in the Python object: it is kept in a process-wide slot
//! ([`ACTIVE`]) from `start()` to `finish()`. A run measures the whole process, and a Python
//! object can be collected at any moment (a `carina.Run("job").start()` whose result is not
//! kept would otherwise end the run on the next line), so the run lasts until `finish()`, the
//! end of its `with` block, or interpreter exit, whichever comes first: the package registers
//! [`finish_at_exit`] with `atexit`, so a run never finished still ends with its summaries and
//! `run_end`, and a Python child of `carina run` leaves a whole child file for the merge.

use crate::errors::{carbon_error, finish_error, start_error};
use crate::governor::PyGovernor;
use crate::summary::PyRunSummary;
use crate::{hook, process, stack};
use carina::{CarbonFactor, Scope, StepDetail};
use pyo3::exceptions::{PyRuntimeError, PyRuntimeWarning, PyTypeError, PyValueError};
use pyo3::prelude::*;
use std::ffi::CString;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// The run this process started, with the number of the `Run` object that owns it.
static ACTIVE: Mutex<Option<(u64, carina::Run)>> = Mutex::new(None);
/// True while a `start()` is in progress (with the interpreter released), so that two threads
/// cannot both start a run.
static STARTING: AtomicBool = AtomicBool::new(false);
static NEXT_NUMBER: AtomicU64 = AtomicU64::new(1);

/// The largest `buffer_capacity` accepted: the Rust library's, 2^22 events, 64 MiB per thread
/// that marks steps (was 2^24 here, which the library then refused with its own message).
const MAX_BUFFER_CAPACITY: usize = carina::MAX_BUFFER_CAPACITY;

fn active() -> std::sync::MutexGuard<'static, Option<(u64, carina::Run)>> {
    ACTIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// How the carbon factor is given.
#[derive(Clone)]
enum CarbonSetting {
    Default,
    Zone(String),
    Factor(f64),
    Csv(PathBuf),
}

/// The settings of a run, checked when the `Run` is created.
#[derive(Clone)]
struct Settings {
    job: String,
    output_dir: Option<PathBuf>,
    carbon: CarbonSetting,
    detail: StepDetail,
    sample_interval: Duration,
    scope: Option<Scope>,
    constant_watts: Option<f64>,
    tdp_watts: Option<f64>,
    model_watts: Option<(f64, f64)>,
    pue: Option<f64>,
    include_idle: Option<bool>,
    buffer_capacity: Option<usize>,
    best_effort: bool,
    run_file: bool,
    hook: bool,
    unmarked_threads: carina::UnmarkedThreads,
}

impl Settings {
    fn builder(&self) -> carina::RunBuilder {
        let mut b = carina::Run::builder(self.job.clone())
            .sample_interval(self.sample_interval)
            .steps(self.detail)
            .best_effort(self.best_effort)
            .run_file(self.run_file)
            .unmarked_threads(self.unmarked_threads);
        if let Some(d) = &self.output_dir {
            b = b.output_dir(d.clone());
        }
        b = match &self.carbon {
            CarbonSetting::Default => b,
            CarbonSetting::Zone(z) => b.carbon_zone(z.clone()),
            CarbonSetting::Factor(f) => b.carbon_factor_g_per_kwh(*f),
            CarbonSetting::Csv(p) => b.carbon_intensity_csv(p.clone()),
        };
        if let Some(s) = self.scope {
            b = b.scope(s);
        }
        if let Some(w) = self.constant_watts {
            b = b.constant_watts(w);
        }
        if let Some(w) = self.tdp_watts {
            b = b.tdp_watts(w);
        }
        if let Some((idle, max)) = self.model_watts {
            b = b.model_watts(idle, max);
        }
        if let Some(p) = self.pue {
            b = b.pue(p);
        }
        if let Some(i) = self.include_idle {
            b = b.include_idle(i);
        }
        if let Some(c) = self.buffer_capacity {
            b = b.buffer_capacity(c);
        }
        if self.hook {
            b = b.on_step_exit(hook::trampoline);
        }
        b
    }
}

enum State {
    Created,
    Running { number: u64 },
    Finished,
}

/// A run of a job: per-step time, energy and CO2e of this process, written to a run file.
///
/// `with carina.Run("train") as run:` starts it and finishes it at the end of the block
/// (`run.summary` then holds the result); or `run = carina.Run("train").start()` and
/// `summary = run.finish()`. One run at a time per process; a run not finished is finished at
/// interpreter exit. `CARINA_DIR`, `CARINA_DISABLE`, `CARINA_SCOPE`, `CARINA_RUN_ID`,
/// `CARINA_JOB` and `carina run`'s `CARINA_PARENT_PID` apply as in Rust.
///
/// Parameters (all but `job` and `output_dir` keyword-only):
/// - `job`: a stable name; runs of one job are compared.
/// - `output_dir`: where run files go (`<dir>/<job>/<run_id>.jsonl`); default `$CARINA_DIR`,
///   else `./carina-runs`.
/// - `carbon_zone` (`"DE"`, `"EU"`, `"WORLD"`), `carbon_factor` (g CO2e/kWh) or
///   `carbon_intensity_csv` (a `timestamp,g_per_kwh` file): at most one; default the world
///   average.
/// - `steps`: `"all"` (a record per step instance) or `"summary"` (per-name summaries only).
/// - `sample_interval`: energy sampling interval in seconds (default 0.1, at least 0.001).
/// - `scope`: `"process"` (this process's CPU-time share of the machine's energy) or `"host"`.
/// - `constant_watts`, `tdp_watts`, `model_watts=(idle, max)`, `pue`, `include_idle`: the
///   estimation model's inputs, as the Rust builder's methods of those names.
/// - `buffer_capacity`: events each thread may buffer (default 65 536, 16 bytes each).
/// - `on_step_exit`: a callable run at every step exit before its end time is read (e.g.
///   `torch.cuda.synchronize`, so GPU steps cover their kernels); what it raises is a
///   `RuntimeWarning`, a `KeyboardInterrupt` is raised by the step's exit.
/// - `best_effort`: run on without a run file that cannot be created (a warning says so).
/// - `run_file`: `False` writes no file (the summary is still returned).
/// - `unmarked_threads`: where the CPU energy of threads that never mark a step goes:
///   `"open-steps"` (default here: NumPy's BLAS threads and PyTorch's intra-op pool work for
///   the step open on the Python thread, so their energy goes to the steps open at the time,
///   by wall-time overlap) or `"unattributed"` (Rust's default: reported as
///   `unattributed_j`).
#[pyclass(module = "carina", name = "Run")]
pub struct PyRun {
    settings: Settings,
    hook: Option<Py<PyAny>>,
    state: State,
    job: String,
    run_id: Option<String>,
    run_file: Option<String>,
    recording: bool,
    summary: Option<Py<PyRunSummary>>,
}

fn finite_non_negative(setting: &str, v: f64) -> PyResult<f64> {
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(PyValueError::new_err(format!(
            "invalid setting `{setting}`: {v} is not a finite, non-negative number"
        )))
    }
}

#[pymethods]
impl PyRun {
    /// Configures a run of `job` (a stable name: runs of one job are compared). Nothing starts
    /// until `start()` or `with`.
    #[new]
    #[pyo3(signature = (
        job, output_dir=None, *, carbon_zone=None, carbon_factor=None,
        carbon_intensity_csv=None, steps="all", sample_interval=0.1, scope=None,
        constant_watts=None, tdp_watts=None, model_watts=None, pue=None, include_idle=None,
        buffer_capacity=None, on_step_exit=None, best_effort=false, run_file=true,
        unmarked_threads="open-steps"
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        job: String,
        output_dir: Option<PathBuf>,
        carbon_zone: Option<String>,
        carbon_factor: Option<f64>,
        carbon_intensity_csv: Option<PathBuf>,
        steps: &str,
        sample_interval: f64,
        scope: Option<&str>,
        constant_watts: Option<f64>,
        tdp_watts: Option<f64>,
        model_watts: Option<(f64, f64)>,
        pue: Option<f64>,
        include_idle: Option<bool>,
        buffer_capacity: Option<usize>,
        on_step_exit: Option<Bound<'_, PyAny>>,
        best_effort: bool,
        run_file: bool,
        unmarked_threads: &str,
    ) -> PyResult<PyRun> {
        if job.trim().is_empty() {
            return Err(PyValueError::new_err("job must be a non-empty name"));
        }
        let given = [
            carbon_zone.is_some(),
            carbon_factor.is_some(),
            carbon_intensity_csv.is_some(),
        ];
        if given.iter().filter(|g| **g).count() > 1 {
            return Err(PyValueError::new_err(
                "give at most one of carbon_zone, carbon_factor and carbon_intensity_csv",
            ));
        }
        let carbon = if let Some(z) = carbon_zone {
            // Checked now, so that a typo fails where it is written (with close matches).
            CarbonFactor::zone(&z).map_err(carbon_error)?;
            CarbonSetting::Zone(z)
        } else if let Some(f) = carbon_factor {
            CarbonSetting::Factor(finite_non_negative("carbon_factor", f)?)
        } else if let Some(p) = carbon_intensity_csv {
            CarbonSetting::Csv(p)
        } else {
            CarbonSetting::Default
        };
        let detail = match steps {
            "all" => StepDetail::All,
            "summary" => StepDetail::Summary,
            other => {
                return Err(PyValueError::new_err(format!(
                    "invalid setting `steps`: {other:?} is not \"all\" (a record per step \
                     instance) or \"summary\" (per-name summaries only)"
                )));
            }
        };
        let sample_interval = match Duration::try_from_secs_f64(sample_interval) {
            Ok(d) if d >= Duration::from_millis(1) => d,
            _ => {
                return Err(PyValueError::new_err(format!(
                    "invalid setting `sample_interval`: {sample_interval} s is not a number of \
                     seconds of at least 0.001 (the 1 ms minimum)"
                )));
            }
        };
        let scope = match scope {
            None => None,
            Some("process") => Some(Scope::Process),
            Some("host") => Some(Scope::Host),
            Some(other) => {
                return Err(PyValueError::new_err(format!(
                    "invalid setting `scope`: {other:?} is not \"process\" (this process's \
                     share of the machine's energy) or \"host\" (the whole machine)"
                )));
            }
        };
        for (name, v) in [("constant_watts", constant_watts), ("tdp_watts", tdp_watts)] {
            if let Some(v) = v {
                finite_non_negative(name, v)?;
            }
        }
        if let Some((idle, max)) = model_watts
            && !(idle >= 0.0 && max >= idle && max.is_finite())
        {
            return Err(PyValueError::new_err(format!(
                "invalid setting `model_watts`: need 0 <= idle <= max, got idle {idle} W and \
                 max {max} W"
            )));
        }
        if let Some(p) = pue
            && !(p.is_finite() && p >= 1.0)
        {
            return Err(PyValueError::new_err(format!(
                "invalid setting `pue`: {p} is not a PUE: it is a ratio of at least 1.0"
            )));
        }
        if let Some(c) = buffer_capacity
            && !(1..=MAX_BUFFER_CAPACITY).contains(&c)
        {
            return Err(PyValueError::new_err(format!(
                "invalid setting `buffer_capacity`: {c} is not a number of events between 1 and \
                 {MAX_BUFFER_CAPACITY} (16 bytes each, per thread that marks steps)"
            )));
        }
        let unmarked_threads = match unmarked_threads {
            "open-steps" => carina::UnmarkedThreads::OpenSteps,
            "unattributed" => carina::UnmarkedThreads::Unattributed,
            other => {
                return Err(PyValueError::new_err(format!(
                    "invalid setting `unmarked_threads`: {other:?} is not \"open-steps\" (the \
                     CPU energy of threads that never mark a step goes to the steps open at the \
                     time) or \"unattributed\" (it is reported as unattributed)"
                )));
            }
        };
        let hook = match on_step_exit {
            Some(h) if h.is_none() => None,
            Some(h) if h.is_callable() => Some(h.unbind()),
            Some(h) => {
                return Err(PyTypeError::new_err(format!(
                    "on_step_exit must be a callable taking no arguments (e.g. \
                     torch.cuda.synchronize), got {}",
                    h.get_type().name()?
                )));
            }
            None => None,
        };
        Ok(PyRun {
            settings: Settings {
                job: job.clone(),
                output_dir,
                carbon,
                detail,
                sample_interval,
                scope,
                constant_watts,
                tdp_watts,
                model_watts,
                pue,
                include_idle,
                buffer_capacity,
                best_effort,
                run_file,
                hook: hook.is_some(),
                unmarked_threads,
            },
            hook,
            state: State::Created,
            job,
            run_id: None,
            run_file: None,
            recording: false,
            summary: None,
        })
    }

    /// Starts the run and returns it. Raises `RuntimeError` if a run is already active in this
    /// process, `ValueError` for a setting or environment variable Carina rejects, `OSError`
    /// when the run file cannot be created. The interpreter is released meanwhile (energy
    /// source detection takes up to ~30 ms).
    fn start(mut slf: PyRefMut<'_, Self>) -> PyResult<PyRefMut<'_, Self>> {
        let py = slf.py();
        match slf.state {
            State::Created => {}
            State::Running { .. } | State::Finished => {
                return Err(PyRuntimeError::new_err(
                    "this Run was started already; create a new carina.Run(...) for another run",
                ));
            }
        }
        if process::is_forked_child() {
            return Err(PyRuntimeError::new_err(format!(
                "this process was forked while a Carina run of its parent (pid {}) was active: \
                 a forked child records nothing and cannot start a run of its own; start the \
                 run after forking, or use the multiprocessing 'spawn' or 'forkserver' start \
                 method",
                process::owner().map_or_else(|| "?".into(), |p| p.to_string())
            )));
        }
        if STARTING
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
            || active().is_some()
        {
            STARTING.store(false, Ordering::Release);
            return Err(start_error(carina::StartError::AlreadyRunning));
        }
        if let Some(h) = &slf.hook {
            hook::install(h.clone_ref(py));
        }
        let settings = slf.settings.clone();
        let started = py.detach(move || settings.builder().start());
        let run = match started {
            Ok(run) => run,
            Err(e) => {
                if slf.hook.is_some() {
                    drop(hook::take());
                }
                STARTING.store(false, Ordering::Release);
                return Err(start_error(e));
            }
        };
        let number = NEXT_NUMBER.fetch_add(1, Ordering::Relaxed);
        slf.job = run.job().to_owned();
        slf.run_id = Some(run.run_id().to_owned());
        slf.run_file = run.run_file().map(|p| p.display().to_string());
        slf.recording = run.is_recording();
        *active() = Some((number, run));
        process::set_owner();
        STARTING.store(false, Ordering::Release);
        slf.state = State::Running { number };
        Ok(slf)
    }

    /// Stops recording, writes the step summaries and `run_end`, flushes and fsyncs the run
    /// file, and returns the summary (also kept in `run.summary`). Steps still open are written
    /// as unfinished. The interpreter is released meanwhile. Calling it again returns the same
    /// summary.
    fn finish(&mut self, py: Python<'_>) -> PyResult<Py<PyRunSummary>> {
        let number = match self.state {
            State::Created => {
                return Err(PyRuntimeError::new_err(
                    "this Run was not started: call start() or use `with carina.Run(...)`",
                ));
            }
            State::Finished => {
                return match &self.summary {
                    Some(s) => Ok(s.clone_ref(py)),
                    None => Err(PyRuntimeError::new_err("this run has no summary")),
                };
            }
            State::Running { number } => number,
        };
        if !process::owns_run() {
            return Err(PyRuntimeError::new_err(format!(
                "this run belongs to process {} (this process was forked from it): only that \
                 process can finish it",
                process::owner().map_or_else(|| "?".into(), |p| p.to_string())
            )));
        }
        let run = {
            let mut slot = active();
            match slot.take() {
                Some((n, run)) if n == number => Some(run),
                other => {
                    *slot = other;
                    None
                }
            }
        };
        let Some(run) = run else {
            self.state = State::Finished;
            return Err(PyRuntimeError::new_err(
                "this run was already finished (at interpreter exit)",
            ));
        };
        let result = py.detach(move || run.finish());
        process::clear_owner();
        if self.settings.hook {
            drop(hook::take());
        }
        self.state = State::Finished;
        let summary = result.map_err(finish_error)?;
        let summary = Py::new(py, PyRunSummary::of(py, &summary)?)?;
        self.summary = Some(summary.clone_ref(py));
        Ok(summary)
    }

    fn __enter__(slf: PyRefMut<'_, Self>) -> PyResult<PyRefMut<'_, Self>> {
        match slf.state {
            State::Created => PyRun::start(slf),
            _ => Ok(slf),
        }
    }

    /// Finishes the run. If an exception is leaving the block and finishing fails too, the
    /// failure is a `RuntimeWarning` and the block's exception propagates.
    #[pyo3(signature = (exc_type=None, _exc=None, _tb=None))]
    fn __exit__(
        &mut self,
        py: Python<'_>,
        exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        if !matches!(self.state, State::Running { .. }) {
            return Ok(false);
        }
        if process::is_forked_child() {
            warn(
                py,
                "carina: the with block of a run ended in a process forked from the run's own; \
                 the run belongs to the parent and is not finished here",
            )?;
            return Ok(false);
        }
        match self.finish(py) {
            Ok(_) => Ok(false),
            Err(e) if exc_type.is_some() => {
                warn(
                    py,
                    &format!(
                        "carina: the run could not be finished: {}",
                        hook::describe(py, &e)
                    ),
                )?;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Sets the run's item count (`run_end.items`); by default the largest per-step-name total.
    fn set_items(&self, n: &Bound<'_, PyAny>) -> PyResult<()> {
        let n = stack::items_of(n)?;
        if let State::Running { number } = self.state
            && let Some((m, run)) = active().as_ref()
            && *m == number
        {
            run.set_items(n);
        }
        Ok(())
    }

    /// A governor for peak-hour control (see `carina.Governor`): `schedule` a TOML schedule
    /// file (default: Mon-Fri 08:00-20:00 UTC peak), `policy` `baseline`, `throttle`,
    /// `offpeak-boost` or `defer` (with parameters, e.g. `throttle:peak_fraction=0.25`),
    /// `nominal` the concurrency without a policy. Its mode changes are written to this run's
    /// file as `control` records.
    #[pyo3(signature = (schedule=None, policy="baseline", nominal=1))]
    fn governor(
        &self,
        py: Python<'_>,
        schedule: Option<PathBuf>,
        policy: &str,
        nominal: u32,
    ) -> PyResult<PyGovernor> {
        PyGovernor::create(py, schedule, policy, nominal)
    }

    /// The job name (`CARINA_JOB` overrides it under `carina run`).
    #[getter]
    fn job(&self) -> &str {
        &self.job
    }

    /// The run id, once started.
    #[getter]
    fn run_id(&self) -> Option<&str> {
        self.run_id.as_deref()
    }

    /// The run file being written, once started (`None` without one).
    #[getter]
    fn run_file(&self) -> Option<&str> {
        self.run_file.as_deref()
    }

    /// Whether the run is started, not finished, and records (false with `CARINA_DISABLE=1`).
    #[getter]
    fn is_recording(&self) -> bool {
        self.recording && matches!(self.state, State::Running { .. })
    }

    /// The summary, once finished; `None` before.
    #[getter]
    fn summary(&self, py: Python<'_>) -> Option<Py<PyRunSummary>> {
        self.summary.as_ref().map(|s| s.clone_ref(py))
    }

    fn __repr__(&self) -> String {
        let state = match self.state {
            State::Created => "not started",
            State::Running { .. } => "running",
            State::Finished => "finished",
        };
        match &self.run_id {
            Some(id) => format!("carina.Run({:?}, run_id={id:?}, {state})", self.job),
            None => format!("carina.Run({:?}, {state})", self.job),
        }
    }
}

fn warn(py: Python<'_>, message: &str) -> PyResult<()> {
    let message = CString::new(message.replace('\0', "?")).unwrap_or_default();
    PyErr::warn(py, py.get_type::<PyRuntimeWarning>().as_any(), &message, 1)
}

/// Finishes the run this process started, if it is still active (registered with `atexit`).
/// In a forked child it does nothing: the run is the parent's.
pub fn finish_at_exit(py: Python<'_>) {
    if !process::owns_run() {
        return;
    }
    let run = active().take();
    let Some((_, run)) = run else {
        return;
    };
    let result = py.detach(move || run.finish());
    process::clear_owner();
    drop(hook::take());
    match result {
        Ok(s) => {
            for w in &s.warnings {
                eprintln!("carina: {w}");
            }
        }
        Err(e) => eprintln!("carina: {e}"),
    }
}
