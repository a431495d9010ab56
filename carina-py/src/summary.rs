//! What a finished run returns to Python: [`PyRunSummary`] and its per-name [`PyStepSummary`].
//!
//! Both are read-only copies of the Rust `RunSummary`'s figures, made once at `finish()`;
//! `str(summary)` is `RunSummary::render("")`, the same text `carina run` prints.

use carina::RunSummary;
use carina::record::{Method, StepSummary};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

/// Per-name figures of a finished run (`step_summary` records).
#[pyclass(module = "carina", name = "StepSummary", frozen, get_all)]
pub struct PyStepSummary {
    /// Step name.
    name: String,
    /// Instances.
    count: u64,
    /// Sum of instance durations, seconds.
    wall_s: f64,
    /// Sum of durations minus time in child steps, seconds.
    self_wall_s: f64,
    /// Sum of items.
    items: u64,
    /// Energy including child steps, joules.
    energy_j: f64,
    /// Energy excluding child steps, joules.
    self_energy_j: f64,
    /// Low end of `energy_j` for estimates (`None` when measured), joules.
    energy_low_j: Option<f64>,
    /// High end of `energy_j` for estimates (`None` when measured), joules.
    energy_high_j: Option<f64>,
    /// Emissions of `energy_j`, grams CO2e.
    co2e_g: f64,
    /// Median instance duration, seconds.
    p50_s: f64,
    /// 95th-percentile instance duration, seconds.
    p95_s: f64,
    /// Longest instance, seconds.
    max_s: f64,
    /// Instances with status `error`.
    errors: u64,
    /// Instances with status `panicked` (Rust steps only).
    panics: u64,
    /// Whether some instance was a GPU step.
    gpu: bool,
    /// How the step figures were obtained, in words.
    method: Option<String>,
}

impl PyStepSummary {
    fn of(s: &StepSummary) -> PyStepSummary {
        PyStepSummary {
            name: s.name.clone(),
            count: s.count,
            wall_s: s.wall_s.0,
            self_wall_s: s.self_wall_s.0,
            items: s.items,
            energy_j: s.energy_j.0,
            self_energy_j: s.self_energy_j.0,
            energy_low_j: s.energy_low_j.map(|j| j.0),
            energy_high_j: s.energy_high_j.map(|j| j.0),
            co2e_g: s.co2e_g.0,
            p50_s: s.p50_s,
            p95_s: s.p95_s,
            max_s: s.max_s.0,
            errors: s.errors,
            panics: s.panics,
            gpu: s.gpu,
            method: s.method.clone(),
        }
    }
}

#[pymethods]
impl PyStepSummary {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "StepSummary(name={}, count={}, wall_s={:.6}, energy_j={:.6}, items={}{})",
            py_repr(py, &self.name)?,
            self.count,
            self.wall_s,
            self.energy_j,
            self.items,
            if self.gpu { ", gpu=True" } else { "" }
        ))
    }
}

/// `repr()` of a string, as Python writes it.
pub fn py_repr(py: Python<'_>, s: &str) -> PyResult<String> {
    Ok(PyString::new(py, s).repr()?.to_string())
}

/// Carina's own cost (`run_end.own_cost`), as plain numbers.
#[derive(Clone, Copy)]
struct OwnCost {
    aggregator_cpu_s: f64,
    aggregator_energy_j: f64,
    step_cost_ns: f64,
    steps_cpu_s: f64,
    steps_energy_j: f64,
    bytes_written: u64,
    cpu_share: f64,
}

/// What a finished run measured. Figures are attributes; `str(summary)` is the terminal summary
/// (`carina run` prints the same), `repr` one line.
#[pyclass(module = "carina", name = "RunSummary", frozen)]
pub struct PyRunSummary {
    /// Job name.
    #[pyo3(get)]
    job: String,
    /// Run id (the run file's stem).
    #[pyo3(get)]
    run_id: String,
    /// Energy in the run's scope, joules.
    #[pyo3(get)]
    energy_j: f64,
    /// Low end of an estimate's band, joules; `None` when measured.
    #[pyo3(get)]
    energy_low_j: Option<f64>,
    /// High end of an estimate's band, joules; `None` when measured.
    #[pyo3(get)]
    energy_high_j: Option<f64>,
    /// `"measured"` (every source a hardware counter) or `"estimated"`.
    #[pyo3(get)]
    kind: &'static str,
    /// How the energy was obtained, in words (`run_end.method.label`), e.g.
    /// `model x cpu-time share`.
    #[pyo3(get)]
    method: String,
    /// Whether some interval was counted low (the figure is a lower bound; see `warnings`).
    #[pyo3(get)]
    lower_bound: bool,
    /// Emissions, grams CO2e.
    #[pyo3(get)]
    co2e_g: f64,
    /// The effective grid intensity, g CO2e per kWh (`None` when the run used no energy).
    #[pyo3(get)]
    carbon_g_per_kwh: Option<f64>,
    /// Duration, seconds.
    #[pyo3(get)]
    wall_s: f64,
    /// Items: the largest per-name total, or the value given to `Run.set_items`.
    #[pyo3(get)]
    items: u64,
    /// Step instances counted (folded ones included).
    #[pyo3(get)]
    steps: u64,
    /// Step instances that could not be counted at all.
    #[pyo3(get)]
    dropped: u64,
    /// Step instances counted in the summaries only (their thread's buffer was full).
    #[pyo3(get)]
    folded: u64,
    /// Energy attributed to no step, joules.
    #[pyo3(get)]
    unattributed_j: f64,
    /// Whole-machine energy the sources saw, joules.
    #[pyo3(get)]
    host_energy_j: f64,
    /// The run file's path, or `None` when none was written.
    #[pyo3(get)]
    run_file: Option<String>,
    /// Problems met (`run_end.warnings`).
    #[pyo3(get)]
    warnings: Vec<String>,
    /// Whether the run was disabled by `CARINA_DISABLE` and recorded nothing.
    #[pyo3(get)]
    disabled: bool,
    steps_summary: Vec<Py<PyStepSummary>>,
    own_cost: Option<OwnCost>,
    text: String,
}

impl PyRunSummary {
    /// Copies the figures of a Rust summary.
    pub fn of(py: Python<'_>, s: &RunSummary) -> PyResult<PyRunSummary> {
        let kind = s.energy_kind();
        let method = s
            .method()
            .cloned()
            .unwrap_or_else(|| Method::derived(&s.energy_sources, s.scope));
        let steps_summary = s
            .summaries
            .iter()
            .map(|st| Py::new(py, PyStepSummary::of(st)))
            .collect::<PyResult<Vec<_>>>()?;
        let band = s.band();
        Ok(PyRunSummary {
            job: s.job.clone(),
            run_id: s.run_id.clone(),
            energy_j: s.energy().0,
            energy_low_j: band.map(|b| b.0.0),
            energy_high_j: band.map(|b| b.1.0),
            kind: kind.as_str(),
            method: method.label.clone(),
            lower_bound: method.lower_bound,
            co2e_g: s.co2e().0,
            carbon_g_per_kwh: s.carbon_g_per_kwh(),
            wall_s: s.wall().0,
            items: s.items(),
            steps: s.steps(),
            dropped: s.dropped(),
            folded: s.folded(),
            unattributed_j: s.unattributed().0,
            host_energy_j: s.host_energy().0,
            run_file: s.run_file.as_ref().map(|p| p.display().to_string()),
            warnings: s.warnings.clone(),
            disabled: s.is_disabled(),
            steps_summary,
            own_cost: s.own_cost().map(|o| OwnCost {
                aggregator_cpu_s: o.aggregator_cpu_s.0,
                aggregator_energy_j: o.aggregator_energy_j.0,
                step_cost_ns: o.step_cost_ns,
                steps_cpu_s: o.steps_cpu_s.0,
                steps_energy_j: o.steps_energy_j.0,
                bytes_written: o.bytes_written,
                cpu_share: o.cpu_share,
            }),
            text: s.render(""),
        })
    }
}

#[pymethods]
impl PyRunSummary {
    /// Per-name summaries, in the order of the run file.
    #[getter]
    fn steps_summary(&self, py: Python<'_>) -> Vec<Py<PyStepSummary>> {
        self.steps_summary.iter().map(|s| s.clone_ref(py)).collect()
    }

    /// Carina's own cost as a dict (`aggregator_cpu_s`, `aggregator_energy_j`, `step_cost_ns`,
    /// `steps_cpu_s`, `steps_energy_j`, `bytes_written`, `cpu_share`), or `None` for a disabled
    /// run.
    #[getter]
    fn own_cost<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(o) = self.own_cost else {
            return Ok(None);
        };
        let d = PyDict::new(py);
        d.set_item("aggregator_cpu_s", o.aggregator_cpu_s)?;
        d.set_item("aggregator_energy_j", o.aggregator_energy_j)?;
        d.set_item("step_cost_ns", o.step_cost_ns)?;
        d.set_item("steps_cpu_s", o.steps_cpu_s)?;
        d.set_item("steps_energy_j", o.steps_energy_j)?;
        d.set_item("bytes_written", o.bytes_written)?;
        d.set_item("cpu_share", o.cpu_share)?;
        Ok(Some(d))
    }

    /// Energy in watt-hours.
    #[getter]
    fn energy_wh(&self) -> f64 {
        self.energy_j / 3600.0
    }

    fn __str__(&self) -> &str {
        &self.text
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "RunSummary(job={}, energy_j={:.6}, kind='{}', co2e_g={:.6}, wall_s={:.3}, steps={})",
            py_repr(py, &self.job)?,
            self.energy_j,
            self.kind,
            self.co2e_g,
            self.wall_s,
            self.steps
        ))
    }
}
