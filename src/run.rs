//! The [`Run`] builder: configuration, environment, probe choice, install.

use carina_core::session::{FinishError, Session, SessionConfig, StartError};
use carina_core::{
    CarbonFactor, EnergyProbe, JsonLinesSink, ModelProbe, PowerModel, RunSummary, Scope, Sink,
    StepDetail, Watts,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default energy sampling interval (10 Hz).
pub const DEFAULT_SAMPLE_INTERVAL: Duration = Duration::from_millis(100);
/// Default events per thread buffer (each step uses two): 65 536 events, 2.5 MiB per thread.
pub const DEFAULT_BUFFER_CAPACITY: usize = 1 << 16;
/// Default bound on step records held between two sampling ticks.
pub const DEFAULT_MAX_PENDING_RECORDS: usize = 1 << 20;

/// Configures a run; created by [`Run::builder`].
#[must_use = "call `.start()` to begin recording"]
pub struct RunBuilder {
    job: String,
    output_dir: Option<PathBuf>,
    sample_interval: Duration,
    carbon: CarbonFactor,
    detail: StepDetail,
    model: Option<PowerModel>,
    probes: Vec<Box<dyn EnergyProbe>>,
    sinks: Vec<Box<dyn Sink>>,
    run_file: bool,
    scope: Option<Scope>,
    buffer_capacity: usize,
    max_pending_records: usize,
    proc_root: PathBuf,
}

/// A run in progress. Steps are recorded while it lives; [`finish`](Run::finish) (or dropping
/// it) writes the summaries and `run_end`.
pub struct Run {
    session: Option<Session>,
    job: String,
    run_id: String,
    run_file: Option<PathBuf>,
}

impl Run {
    /// Starts configuring a run of `job` (a stable name: runs of one job are compared).
    pub fn builder(job: impl Into<String>) -> RunBuilder {
        RunBuilder {
            job: job.into(),
            output_dir: None,
            sample_interval: DEFAULT_SAMPLE_INTERVAL,
            carbon: CarbonFactor::world(),
            detail: StepDetail::All,
            model: None,
            probes: Vec::new(),
            sinks: Vec::new(),
            run_file: true,
            scope: None,
            buffer_capacity: DEFAULT_BUFFER_CAPACITY,
            max_pending_records: DEFAULT_MAX_PENDING_RECORDS,
            proc_root: PathBuf::from("/proc"),
        }
    }

    /// This run's id (the run file's stem).
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The job name.
    pub fn job(&self) -> &str {
        &self.job
    }

    /// The run file being written, if any.
    pub fn run_file(&self) -> Option<&Path> {
        self.run_file.as_deref()
    }

    /// Whether this run records (false with `CARINA_DISABLE=1`).
    pub fn is_recording(&self) -> bool {
        self.session.is_some()
    }

    /// Sets the run's item count (`run_end.items`); by default it is the largest per-step-name
    /// item total.
    pub fn set_items(&self, n: u64) {
        if let Some(s) = &self.session {
            s.set_items(n);
        }
    }

    /// Stops recording and writes the step summaries and `run_end`; flushes and fsyncs the run
    /// file. Steps still open are recorded as `unfinished`.
    pub fn finish(mut self) -> Result<RunSummary, FinishError> {
        match self.session.take() {
            Some(s) => s.finish(),
            None => Ok(RunSummary::disabled(&self.job, &self.run_id)),
        }
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run")
            .field("job", &self.job)
            .field("run_id", &self.run_id)
            .field("run_file", &self.run_file)
            .field("recording", &self.is_recording())
            .finish()
    }
}

fn env_nonempty(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

/// A file-name-safe form of a job name.
fn path_safe(job: &str) -> String {
    let s: String = job
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with('.') {
        format!("job{s}")
    } else {
        s
    }
}

fn new_run_id() -> String {
    let now = jiff::Timestamp::now();
    let nanos = now.subsec_nanosecond() as u32;
    let stamp = now.strftime("%Y%m%dT%H%M%SZ");
    format!(
        "{stamp}-{}-{:04x}",
        std::process::id(),
        (nanos ^ (nanos >> 16)) & 0xffff
    )
}

impl RunBuilder {
    /// Directory for run files; the file is `<dir>/<job>/<run_id>.jsonl`. Default:
    /// `$CARINA_DIR`, else `./carina-runs`.
    pub fn output_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.output_dir = Some(dir.into());
        self
    }

    /// Energy sampling interval (default 100 ms). Shorter intervals attribute energy to short
    /// steps more precisely and cost more aggregator wake-ups.
    pub fn sample_interval(mut self, interval: Duration) -> Self {
        self.sample_interval = interval;
        self
    }

    /// A fixed grid emission factor, grams CO2e per kWh (default: 2024 world average, 472.94).
    pub fn carbon_factor_g_per_kwh(mut self, g_per_kwh: f64) -> Self {
        self.carbon = CarbonFactor::fixed(g_per_kwh);
        self
    }

    /// One record per step instance ([`StepDetail::All`], default) or summaries only.
    pub fn steps(mut self, detail: StepDetail) -> Self {
        self.detail = detail;
        self
    }

    /// Replaces the detected power model: the machine draws `idle` watts at 0 % CPU and `max`
    /// watts at 100 % (whole machine, not per vCPU).
    pub fn model_watts(mut self, idle: f64, max: f64) -> Self {
        self.model = Some(PowerModel::Linear {
            idle: Watts(idle),
            max: Watts(max),
        });
        self
    }

    /// Estimates energy as `watts` x wall time, all of it this job's (the "mean power x runtime"
    /// method of many published studies).
    pub fn constant_watts(mut self, watts: f64) -> Self {
        self.model = Some(PowerModel::Constant(Watts(watts)));
        self
    }

    /// Uses this energy probe (repeatable) instead of detection.
    pub fn energy_probe(mut self, probe: impl EnergyProbe + 'static) -> Self {
        self.probes.push(Box::new(probe));
        self
    }

    /// Sends records to this sink too (repeatable).
    pub fn sink(mut self, sink: impl Sink + 'static) -> Self {
        self.sinks.push(Box::new(sink));
        self
    }

    /// Whether to write the JSON-lines run file (default true).
    pub fn run_file(mut self, write: bool) -> Self {
        self.run_file = write;
        self
    }

    /// `Scope::Process` (default; this process's CPU-time share of host energy) or
    /// `Scope::Host`. Overrides `CARINA_SCOPE`.
    pub fn scope(mut self, scope: Scope) -> Self {
        self.scope = Some(scope);
        self
    }

    /// Events each thread may buffer before the aggregator drains them (two per step; default
    /// 65 536). Steps beyond it are dropped and counted, never waited for.
    pub fn buffer_capacity(mut self, events: usize) -> Self {
        self.buffer_capacity = events;
        self
    }

    /// Step records the aggregator may hold between two sampling ticks (default 2^20); beyond
    /// it, ended steps are counted in summaries only.
    pub fn max_pending_records(mut self, n: usize) -> Self {
        self.max_pending_records = n;
        self
    }

    /// Reads `/proc` from another root (tests use fake trees).
    pub fn proc_root(mut self, root: impl Into<PathBuf>) -> Self {
        self.proc_root = root.into();
        self
    }

    /// Installs the run. Fails if another run is active in this process or a setting is
    /// invalid. With `CARINA_DISABLE=1` it returns a run that records nothing.
    pub fn start(self) -> Result<Run, StartError> {
        let job = env_nonempty("CARINA_JOB").unwrap_or(self.job);
        let run_id = env_nonempty("CARINA_RUN_ID").unwrap_or_else(new_run_id);
        if env_nonempty("CARINA_DISABLE").is_some_and(|v| v != "0") {
            return Ok(Run {
                session: None,
                job,
                run_id,
                run_file: None,
            });
        }
        if self.sample_interval < Duration::from_millis(1) {
            return Err(StartError::InvalidSetting {
                setting: "sample_interval",
                message: format!("{:?} is below the 1 ms minimum", self.sample_interval),
            });
        }
        if !(self.carbon.g_per_kwh.is_finite() && self.carbon.g_per_kwh >= 0.0) {
            return Err(StartError::InvalidSetting {
                setting: "carbon_factor_g_per_kwh",
                message: format!(
                    "{} is not a finite, non-negative number",
                    self.carbon.g_per_kwh
                ),
            });
        }
        if let Some(PowerModel::Linear { idle, max }) = &self.model
            && !(idle.0 >= 0.0 && max.0 >= idle.0 && max.0.is_finite())
        {
            return Err(StartError::InvalidSetting {
                setting: "model_watts",
                message: format!("need 0 <= idle <= max, got idle {idle} and max {max}"),
            });
        }
        let scope = match (self.scope, env_nonempty("CARINA_SCOPE")) {
            (Some(s), _) => s,
            (None, None) => Scope::Process,
            (None, Some(v)) => match v.trim() {
                "process" => Scope::Process,
                "host" => Scope::Host,
                _ => {
                    return Err(StartError::InvalidEnv {
                        var: "CARINA_SCOPE",
                        value: v,
                        expected: "`process` or `host`",
                    });
                }
            },
        };
        let mut probes = self.probes;
        let mut unused_sources = Vec::new();
        if probes.is_empty() {
            match self.model {
                Some(model) => {
                    let source = match model {
                        PowerModel::Constant(_) => {
                            "user-given constant power (Run::constant_watts)"
                        }
                        PowerModel::Linear { .. } => "user-given machine watts (Run::model_watts)",
                    };
                    probes.push(Box::new(ModelProbe::with_proc_root(
                        model,
                        source,
                        &self.proc_root,
                    )));
                }
                None => {
                    let roots = carina_probes::Roots {
                        proc: self.proc_root.clone(),
                        ..Default::default()
                    };
                    let detection = carina_probes::detect_in(&roots);
                    probes = detection.probes;
                    unused_sources = detection
                        .not_chosen
                        .into_iter()
                        .map(|n| {
                            carina_core::EnergySource::not_used(
                                n.name,
                                carina_core::EnergyKind::Measured,
                                n.reason,
                            )
                        })
                        .collect();
                }
            }
        }
        let mut warnings = Vec::new();
        let mut sinks = self.sinks;
        let mut run_file = None;
        if self.run_file {
            let dir = self
                .output_dir
                .or_else(|| env_nonempty("CARINA_DIR").map(PathBuf::from))
                .unwrap_or_else(|| PathBuf::from("carina-runs"));
            let path = dir
                .join(path_safe(&job))
                .join(format!("{}.jsonl", path_safe(&run_id)));
            match JsonLinesSink::create(&path) {
                Ok(s) => {
                    sinks.insert(0, Box::new(s));
                    run_file = Some(path);
                }
                Err(e) => {
                    // Reported in `RunSummary::warnings` (and on stderr if the run is dropped).
                    warnings.push(format!(
                        "{e}; this run writes no run file (other sinks still work)"
                    ));
                }
            }
        }
        let session = Session::start(SessionConfig {
            job: job.clone(),
            run_id: run_id.clone(),
            sample_interval: self.sample_interval,
            carbon: self.carbon,
            detail: self.detail,
            probes,
            sinks,
            run_file: run_file.clone(),
            scope,
            ring_capacity: self.buffer_capacity,
            max_pending_records: self.max_pending_records,
            proc_root: self.proc_root,
            warnings,
            unused_sources,
        })?;
        Ok(Run {
            session: Some(session),
            job,
            run_id,
            run_file,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_names_become_safe_paths() {
        assert_eq!(path_safe("scenario-db"), "scenario-db");
        assert_eq!(path_safe("../etc/x y"), "job.._etc_x_y");
        assert_eq!(path_safe(""), "job");
    }

    #[test]
    fn run_ids_are_sortable_stamps() {
        let id = new_run_id();
        assert!(id.len() > 16 && id.as_bytes()[8] == b'T', "{id}");
    }
}
