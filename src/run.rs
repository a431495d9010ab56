//! The [`Run`] builder: configuration, environment, probe choice, install.

use carina_runtime::record::{PowerRecord, RunScope, UnmarkedThreads};
use carina_runtime::session::{FinishError, Session, SessionConfig, StartError};
use carina_runtime::{
    Carbon, CarbonFactor, EnergyKind, EnergyProbe, IntensitySeries, JsonLinesSink, Record,
    RunSummary, Scope, Sink, SinkError, StepDetail,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use carina_runtime::session::Additions;
pub use carina_runtime::share::ShareTarget;

/// Default energy sampling interval (10 Hz).
pub const DEFAULT_SAMPLE_INTERVAL: Duration = Duration::from_millis(100);
/// Default events per thread buffer (each step uses two): 65 536 ring slots of 16 bytes, 1 MiB
/// per thread that marks steps.
pub const DEFAULT_BUFFER_CAPACITY: usize = 1 << 16;
/// Default bound on step records held between two sampling ticks.
pub const DEFAULT_MAX_PENDING_RECORDS: usize = 1 << 20;
/// Shortest energy sampling interval `start` accepts: 1 ms (shorter, the aggregator would do
/// nothing but sample).
pub const MIN_SAMPLE_INTERVAL: Duration = Duration::from_millis(1);
/// Longest energy sampling interval `start` accepts: one hour (longer, energy counters can wrap
/// unseen between two samples, and a crashed run's file would lack up to that much).
pub const MAX_SAMPLE_INTERVAL: Duration = Duration::from_secs(3_600);
/// Smallest `buffer_capacity` `start` accepts: 4 events (two steps).
pub const MIN_BUFFER_CAPACITY: usize = 4;
/// Largest `buffer_capacity` `start` accepts: 2^22 events, 64 MiB per thread that marks steps
/// (the buffer is allocated at a thread's first step: a larger one could abort the process
/// there).
pub const MAX_BUFFER_CAPACITY: usize = 1 << 22;
/// Largest `max_pending_records` `start` accepts: 2^24 step records between two samples (a few
/// GiB at most), 16 times the default.
pub const MAX_PENDING_RECORDS: usize = 1 << 24;

/// How the run's carbon factor is given, resolved at `start`.
enum CarbonChoice {
    Factor(CarbonFactor),
    Zone(String),
    Series(PathBuf),
}

/// Configures a run; created by [`Run::builder`].
#[must_use = "call `.start()` to begin recording"]
pub struct RunBuilder {
    job: String,
    output_dir: Option<PathBuf>,
    sample_interval: Duration,
    carbon: CarbonChoice,
    detail: StepDetail,
    model: carina_probes::ModelOptions,
    sys_root: PathBuf,
    probes: Vec<Box<dyn EnergyProbe>>,
    extra_probes: Vec<Box<dyn EnergyProbe>>,
    sinks: Vec<Box<dyn Sink>>,
    run_file: bool,
    scope: Option<Scope>,
    buffer_capacity: usize,
    max_pending_records: usize,
    proc_root: PathBuf,
    best_effort: bool,
    step_exit_hook: Option<fn()>,
    share_target: ShareTarget,
    unmarked_threads: UnmarkedThreads,
    warnings: Vec<String>,
}

/// A run in progress. Steps are recorded while it lives; [`finish`](Run::finish) (or dropping
/// it) writes the summaries and `run_end`.
pub struct Run {
    session: Option<Session>,
    job: String,
    run_id: String,
    run_file: Option<PathBuf>,
    scope: Option<RunScope>,
}

impl Run {
    /// Starts configuring a run of `job` (a stable name: runs of one job are compared).
    pub fn builder(job: impl Into<String>) -> RunBuilder {
        RunBuilder {
            job: job.into(),
            output_dir: None,
            sample_interval: DEFAULT_SAMPLE_INTERVAL,
            carbon: CarbonChoice::Factor(CarbonFactor::world()),
            detail: StepDetail::All,
            model: carina_probes::ModelOptions::default(),
            sys_root: PathBuf::from("/sys"),
            probes: Vec::new(),
            extra_probes: Vec::new(),
            sinks: Vec::new(),
            run_file: true,
            scope: None,
            buffer_capacity: DEFAULT_BUFFER_CAPACITY,
            max_pending_records: DEFAULT_MAX_PENDING_RECORDS,
            proc_root: PathBuf::from("/proc"),
            best_effort: false,
            step_exit_hook: None,
            share_target: ShareTarget::SelfProcess,
            unmarked_threads: UnmarkedThreads::Unattributed,
            warnings: Vec::new(),
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

    /// What the run's energy covers, as `run_start.scope` says: `process`, `process-tree` (a
    /// [`ShareTarget`] other than this process) or `host`. `None` for a run that does not
    /// record.
    pub fn scope(&self) -> Option<RunScope> {
        self.scope
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
    ///
    /// Cost: the last interval's attribution, the summaries, and one `fsync` of the run file.
    pub fn finish(mut self) -> Result<RunSummary, FinishError> {
        match self.session.take() {
            Some(s) => s.finish(),
            None => Ok(RunSummary::disabled(&self.job, &self.run_id)),
        }
    }

    /// [`finish`](Self::finish), with records and totals from outside this process written
    /// before `run_end` and folded into it, so the file's `run_end` and the returned summary
    /// agree. `carina run` passes its children's run files this way
    /// (`carina_runtime::merge::ChildRuns::additions`). A run that does not record ignores them.
    pub fn finish_with(mut self, additions: Additions) -> Result<RunSummary, FinishError> {
        match self.session.take() {
            Some(s) => s.finish_with(additions),
            None => Ok(RunSummary::disabled(&self.job, &self.run_id)),
        }
    }

    /// Stops recording and deletes the run file: for a run that turned out to have nothing to
    /// measure (`carina run` whose command could not be started). The job directory is left
    /// as it is.
    pub fn discard(mut self) {
        if let Some(s) = self.session.take() {
            let _ = s.finish();
        }
        if let Some(p) = &self.run_file {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The sink behind [`RunBuilder::on_power`]: the kind of the run's energy from `run_start`,
/// then the callback at every `power` record.
struct PowerObserver<F> {
    on_power: F,
    kind: EnergyKind,
}

impl<F: FnMut(&PowerRecord, EnergyKind) + Send> Sink for PowerObserver<F> {
    fn write(&mut self, record: &Record) -> Result<(), SinkError> {
        match record {
            Record::RunStart(s) => self.kind = EnergyKind::of_sources(&s.energy_sources),
            Record::Power(p) => (self.on_power)(p, self.kind),
            _ => {}
        }
        Ok(())
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

impl RunBuilder {
    /// Directory for run files; the file is `<dir>/<job>/<run_id>.jsonl`. Default:
    /// `$CARINA_DIR`, else `./carina-runs`.
    pub fn output_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.output_dir = Some(dir.into());
        self
    }

    /// Energy sampling interval (default 100 ms). Shorter intervals attribute energy to short
    /// steps more precisely and cost more aggregator wake-ups. From [`MIN_SAMPLE_INTERVAL`]
    /// (1 ms) to [`MAX_SAMPLE_INTERVAL`] (1 h): [`start`](Self::start) refuses anything else
    /// with [`StartError::InvalidSetting`] naming `sample_interval`.
    pub fn sample_interval(mut self, interval: Duration) -> Self {
        self.sample_interval = interval;
        self
    }

    /// A fixed grid emission factor, grams CO2e per kWh (default: 2024 world average, 472.94).
    pub fn carbon_factor_g_per_kwh(mut self, g_per_kwh: f64) -> Self {
        self.carbon = CarbonChoice::Factor(CarbonFactor::fixed(g_per_kwh));
        self
    }

    /// The annual average intensity of a grid zone: an ISO 3166-1 alpha-2 code (`"DE"`), `"EU"`
    /// or `"WORLD"` (Ember, latest year 2022-2024). An unknown zone makes `start` fail with close
    /// matches.
    pub fn carbon_zone(mut self, zone: impl Into<String>) -> Self {
        self.carbon = CarbonChoice::Zone(zone.into());
        self
    }

    /// A time-varying intensity: a CSV of `timestamp,g_per_kwh` (RFC 3339, any step length),
    /// applied per sampling interval. Outside the series the nearest value is used and the run
    /// file says so; a malformed file makes `start` fail naming the file, line and field.
    pub fn carbon_intensity_csv(mut self, path: impl Into<PathBuf>) -> Self {
        self.carbon = CarbonChoice::Series(path.into());
        self
    }

    /// One record per step instance ([`StepDetail::All`], default) or summaries only.
    pub fn steps(mut self, detail: StepDetail) -> Self {
        self.detail = detail;
        self
    }

    /// Replaces detection with the estimation model at these whole-machine watts: `idle` at 0 %
    /// CPU and `max` at 100 % (e.g. from a wall-power meter or a vendor sheet). Band: +-10 %.
    pub fn model_watts(mut self, idle: f64, max: f64) -> Self {
        self.model.idle_w = Some(idle);
        self.model.max_w = Some(max);
        self
    }

    /// Replaces detection with a constant power drawn on behalf of this job, whatever the
    /// utilisation: energy = `watts` x wall time (the "mean power x runtime" method of many
    /// published studies). Band: +-10 %.
    pub fn constant_watts(mut self, watts: f64) -> Self {
        self.model.constant_w = Some(watts);
        self
    }

    /// Replaces detection with the estimation model using this CPU thermal design power (whole
    /// machine, watts) as the CPU's maximum; idle follows the CPU family's idle/max ratio.
    pub fn tdp_watts(mut self, watts: f64) -> Self {
        self.model.tdp_w = Some(watts);
        self
    }

    /// Power usage effectiveness of the data centre (default 1.0: IT power only; 1.58 is Cloud
    /// Carbon Footprint's on-premise default). Multiplies all energy, measured and estimated.
    pub fn pue(mut self, pue: f64) -> Self {
        self.model.pue = pue;
        self
    }

    /// Whether estimates include idle power (default true). `false` counts only the dynamic
    /// part, the "marginal energy" of the work.
    pub fn include_idle(mut self, include: bool) -> Self {
        self.model.include_idle = include;
        self
    }

    /// Memory power in watts per GB for the estimation model (default 0.392, Cloud Carbon
    /// Footprint).
    pub fn memory_watts_per_gb(mut self, w: f64) -> Self {
        self.model.memory_w_per_gb = Some(w);
        self
    }

    /// Uses this energy probe (repeatable) instead of detection.
    pub fn energy_probe(mut self, probe: impl EnergyProbe + 'static) -> Self {
        self.probes.push(Box::new(probe));
        self
    }

    /// Adds this energy probe (repeatable) to the sources that detection (or
    /// [`energy_probe`](Self::energy_probe)) chose: a meter of a part nothing else measures, or
    /// a simulated device. Its domains must not overlap theirs (they would count twice).
    pub fn extra_probe(mut self, probe: impl EnergyProbe + 'static) -> Self {
        self.extra_probes.push(Box::new(probe));
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
    /// 65 536, rounded up to a power of two). Memory: 16 bytes per event and thread that marks
    /// steps (1 MiB at the default; the enter of an async step's poll or of a `tracing` span
    /// takes two slots, three with a name longer than 65 535 bytes). A step that finds its thread's buffer full is folded into
    /// its name's exact counts (`run_end.folded`), never waited for; only past 256 folded names
    /// is it dropped and counted (`run_end.dropped`). From [`MIN_BUFFER_CAPACITY`] (4) to
    /// [`MAX_BUFFER_CAPACITY`] (2^22, 64 MiB per thread): [`start`](Self::start) refuses
    /// anything else with [`StartError::InvalidSetting`] naming `buffer_capacity`.
    pub fn buffer_capacity(mut self, events: usize) -> Self {
        self.buffer_capacity = events;
        self
    }

    /// Step records the aggregator may hold between two sampling ticks (default 2^20); beyond
    /// it, ended steps are counted in summaries only (`run_end.records_not_written`). At most
    /// [`MAX_PENDING_RECORDS`] (2^24); [`start`](Self::start) refuses more with
    /// [`StartError::InvalidSetting`] naming `max_pending_records`.
    pub fn max_pending_records(mut self, n: usize) -> Self {
        self.max_pending_records = n;
        self
    }

    /// Reads `/sys` (PCI devices for GPUs seen by the estimation model) from another root.
    pub fn sys_root(mut self, root: impl Into<PathBuf>) -> Self {
        self.sys_root = root.into();
        self
    }

    /// With `true`, a run file that cannot be created (unwritable directory, name too long,
    /// an explicit run id already taken) or that refuses its first record (a full disk; the
    /// file is then removed) does not stop [`start`](Self::start): the run goes on without a
    /// file and says so on stderr and in `RunSummary::warnings`. Default `false`: `start`
    /// fails with [`StartError::RunFile`], [`StartError::RunIdTaken`] or
    /// [`StartError::RunStart`].
    pub fn best_effort(mut self, yes: bool) -> Self {
        self.best_effort = yes;
        self
    }

    /// Calls `hook` on the application thread at every step exit, before the step's end time
    /// is read. For GPU work launched asynchronously, pass a synchronisation (e.g. a wrapper of
    /// `cudaDeviceSynchronize`), so that each step's span, and so its GPU energy, covers the
    /// kernels it launched (docs/ENERGY.md). Off by default; the hook's cost is paid per step.
    pub fn on_step_exit(mut self, hook: fn()) -> Self {
        self.step_exit_hook = Some(hook);
        self
    }

    /// Where the CPU energy of threads that never mark a step goes: a thread pool working for
    /// a step opened on another thread (rayon, BLAS, a PyTorch intra-op pool) or a background
    /// thread. [`UnmarkedThreads::Unattributed`] (default): their CPU-time share of each
    /// interval is `unattributed_j`. [`UnmarkedThreads::OpenSteps`]: it goes to the steps open
    /// in that interval on any thread, by wall-time overlap, as work done on their behalf.
    /// Carina's own aggregator thread is neither (its cost is reported apart). The run file
    /// says which (`run_end.unmarked_threads`; docs/ENERGY.md).
    pub fn unmarked_threads(mut self, rule: UnmarkedThreads) -> Self {
        self.unmarked_threads = rule;
        self
    }

    /// Whose CPU time is the run's share of host energy in `process` scope:
    /// [`ShareTarget::SelfProcess`] (default), a process tree ([`ShareTarget::Tree`]), or every
    /// descendant of this process ([`ShareTarget::Descendants`], what `carina run` measures:
    /// the command it started, whatever that command starts in turn). `run_start.scope` says
    /// `process-tree` for the last two.
    pub fn share_target(mut self, target: ShareTarget) -> Self {
        self.share_target = target;
        self
    }

    /// Calls `f` on the aggregator thread with every `power` record as it is written (one
    /// window of about a second; their `energy_j` sum to the run's energy) and the kind of the
    /// run's energy: the figures of the run file itself, for a live display (`carina run`'s
    /// status line). Keep `f` short: the aggregator waits for it. Repeatable.
    pub fn on_power(mut self, f: impl FnMut(&PowerRecord, EnergyKind) + Send + 'static) -> Self {
        self.sinks.push(Box::new(PowerObserver {
            on_power: f,
            kind: EnergyKind::Estimated,
        }));
        self
    }

    /// Adds a line to the run's warnings (`run_end.warnings` and `RunSummary::warnings`): a
    /// limit of the caller's own set-up that readers of the run file should know (e.g.
    /// `carina run` could not become a child subreaper). Repeatable.
    pub fn warning(mut self, message: impl Into<String>) -> Self {
        self.warnings.push(message.into());
        self
    }

    /// Reads `/proc` from another root (tests use fake trees).
    pub fn proc_root(mut self, root: impl Into<PathBuf>) -> Self {
        self.proc_root = root.into();
        self
    }

    /// Installs the run. Fails if another run is active in this process or a setting is
    /// invalid. With `CARINA_DISABLE=1` it returns a run that records nothing.
    ///
    /// Cost: energy-source detection (a 30 ms busy watch when a RAPL source opens, to tell a
    /// dead counter; well under a millisecond otherwise), creating the run file, a 2 ms TSC
    /// calibration the first time a process starts a run, a 50 µs step-cost calibration, and one
    /// thread (the aggregator) for the run's lifetime.
    pub fn start(self) -> Result<Run, StartError> {
        // Out-of-range settings are programming errors: refused whether or not the run is
        // disabled, so they surface on the first try.
        self.check_limits()?;
        let job = env_nonempty("CARINA_JOB").unwrap_or(self.job);
        let explicit_id = env_nonempty("CARINA_RUN_ID");
        let mut run_id = explicit_id
            .clone()
            .unwrap_or_else(carina_runtime::naming::new_run_id);
        if disabled_by_env()? {
            return Ok(Run {
                session: None,
                job,
                run_id,
                run_file: None,
                scope: None,
            });
        }
        let carbon = match self.carbon {
            CarbonChoice::Factor(f) => {
                if !(f.g_per_kwh.is_finite() && f.g_per_kwh >= 0.0) {
                    return Err(StartError::InvalidSetting {
                        setting: "carbon_factor_g_per_kwh",
                        message: format!("{} is not a finite, non-negative number", f.g_per_kwh),
                    });
                }
                Carbon::Fixed(f)
            }
            CarbonChoice::Zone(z) => Carbon::Fixed(CarbonFactor::zone(&z)?),
            CarbonChoice::Series(p) => Carbon::Series(IntensitySeries::load(&p)?),
        };
        let m = &self.model;
        if let (Some(idle), Some(max)) = (m.idle_w, m.max_w)
            && !(idle >= 0.0 && max >= idle && max.is_finite())
        {
            return Err(StartError::InvalidSetting {
                setting: "model_watts",
                message: format!("need 0 <= idle <= max, got idle {idle} W and max {max} W"),
            });
        }
        for (setting, v) in [
            ("constant_watts", m.constant_w),
            ("tdp_watts", m.tdp_w),
            ("memory_watts_per_gb", m.memory_w_per_gb),
        ] {
            if let Some(v) = v
                && !(v.is_finite() && v >= 0.0)
            {
                return Err(StartError::InvalidSetting {
                    setting,
                    message: format!("{v} is not a finite, non-negative number of watts"),
                });
            }
        }
        if !(m.pue.is_finite() && m.pue >= 1.0) {
            return Err(StartError::InvalidSetting {
                setting: "pue",
                message: format!("{} is not a PUE: it is a ratio of at least 1.0", m.pue),
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
            let m = &self.model;
            let explicit = m.constant_w.is_some()
                || m.tdp_w.is_some()
                || (m.idle_w.is_some() && m.max_w.is_some());
            if explicit {
                probes.push(Box::new(carina_probes::estimation_model_with(
                    &self.proc_root,
                    &self.sys_root,
                    m,
                )));
            } else {
                let roots = carina_probes::Roots {
                    proc: self.proc_root.clone(),
                    sys: self.sys_root.clone(),
                    ..Default::default()
                };
                let detection = carina_probes::detect_with(&roots, m);
                probes = detection.probes;
                unused_sources = detection
                    .not_chosen
                    .into_iter()
                    .map(carina_probes::NotChosen::into_source)
                    .collect();
            }
        }
        probes.extend(self.extra_probes);
        let mut warnings = self.warnings;
        let mut sinks = self.sinks;
        let mut run_file = None;
        if self.run_file {
            let dir = self
                .output_dir
                .or_else(|| env_nonempty("CARINA_DIR").map(PathBuf::from))
                .unwrap_or_else(|| PathBuf::from("carina-runs"));
            let job_dir = dir.join(carina_runtime::naming::path_safe(&job));
            let mut fresh_ids = 0;
            loop {
                // Under `carina run` the parent writes `<run_id>.jsonl` (the whole process
                // tree); a child that links Carina writes its steps beside it, and the parent
                // merges them into its file when the command ends.
                let stem = match env_nonempty("CARINA_PARENT_PID") {
                    Some(_) => format!(
                        "{}.child-{}",
                        carina_runtime::naming::path_safe(&run_id),
                        std::process::id()
                    ),
                    None => carina_runtime::naming::path_safe(&run_id),
                };
                let path = job_dir.join(format!("{stem}.jsonl"));
                let err = match JsonLinesSink::create(&path) {
                    Ok(s) => {
                        sinks.insert(0, Box::new(s));
                        run_file = Some(path);
                        break;
                    }
                    Err(e) => e,
                };
                // A generated id that is taken (another process, same second) gets a new one;
                // a file is never overwritten.
                if err.is_already_exists() && explicit_id.is_none() && fresh_ids < 8 {
                    fresh_ids += 1;
                    run_id = carina_runtime::naming::new_run_id();
                    continue;
                }
                let fatal = if err.is_already_exists() {
                    StartError::RunIdTaken {
                        run_id: run_id.clone(),
                        path,
                    }
                } else {
                    match err {
                        carina_runtime::SinkError::Io { path, source } => {
                            StartError::RunFile { path, source }
                        }
                        other => StartError::RunFile {
                            path,
                            source: std::io::Error::other(other.to_string()),
                        },
                    }
                };
                if !self.best_effort {
                    return Err(fatal);
                }
                let w = format!("{fatal}; best effort: this run writes no run file");
                eprintln!("carina: {w}");
                warnings.push(w);
                break;
            }
        }
        let session = Session::start(SessionConfig {
            job: job.clone(),
            run_id: run_id.clone(),
            sample_interval: self.sample_interval,
            carbon,
            detail: self.detail,
            probes,
            sinks,
            run_file: run_file.clone(),
            require_run_file: !self.best_effort,
            scope,
            ring_capacity: self.buffer_capacity,
            max_pending_records: self.max_pending_records,
            proc_root: self.proc_root,
            warnings,
            unused_sources,
            share_target: self.share_target,
            step_exit_hook: self.step_exit_hook,
            unmarked_threads: self.unmarked_threads,
        });
        let session = match session {
            // Best effort: a run file that refused `run_start` was removed.
            Ok(s) => {
                run_file = s.run_file().map(Path::to_path_buf);
                s
            }
            Err(e) => {
                // Nothing was recorded: leave no empty file behind.
                if let Some(p) = &run_file {
                    let _ = std::fs::remove_file(p);
                }
                return Err(e);
            }
        };
        Ok(Run {
            session: Some(session),
            job,
            run_id,
            run_file,
            scope: Some(self.share_target.run_scope(scope)),
        })
    }
}

impl RunBuilder {
    /// The settings with a range: [`StartError::InvalidSetting`] naming the first one out of
    /// it and the range.
    fn check_limits(&self) -> Result<(), StartError> {
        let interval = self.sample_interval;
        if !(MIN_SAMPLE_INTERVAL..=MAX_SAMPLE_INTERVAL).contains(&interval) {
            return Err(StartError::InvalidSetting {
                setting: "sample_interval",
                message: format!(
                    "{interval:?} is out of range: from 1 ms to 1 h (3600 s) are accepted"
                ),
            });
        }
        let cap = self.buffer_capacity;
        if !(MIN_BUFFER_CAPACITY..=MAX_BUFFER_CAPACITY).contains(&cap) {
            return Err(StartError::InvalidSetting {
                setting: "buffer_capacity",
                message: format!(
                    "{cap} events is out of range: from {MIN_BUFFER_CAPACITY} to \
                     {MAX_BUFFER_CAPACITY} (2^22, 64 MiB per thread) are accepted"
                ),
            });
        }
        let pending = self.max_pending_records;
        if pending > MAX_PENDING_RECORDS {
            return Err(StartError::InvalidSetting {
                setting: "max_pending_records",
                message: format!(
                    "{pending} is out of range: from 0 to {MAX_PENDING_RECORDS} (2^24) are accepted"
                ),
            });
        }
        Ok(())
    }
}

/// `CARINA_DISABLE`: `1`, `true`, `yes` (any case) disable; unset, empty, `0`, `false`, `no`
/// record; anything else is an error rather than a guess.
fn disabled_by_env() -> Result<bool, StartError> {
    let Some(v) = env_nonempty("CARINA_DISABLE") else {
        return Ok(false);
    };
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" => Ok(true),
        "0" | "false" | "no" => Ok(false),
        _ => Err(StartError::InvalidEnv {
            var: "CARINA_DISABLE",
            value: v,
            expected: "`1`, `true` or `yes` to disable; `0`, `false`, `no` or unset to record",
        }),
    }
}
