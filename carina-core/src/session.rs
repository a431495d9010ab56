//! A run in progress: installs the recorder, runs the aggregator thread, writes records.

use crate::aggregator::{Attributor, Energy, IntervalEnergy, StepDetail, Weights};
use crate::carbon::{Carbon, CarbonFactor};
use crate::energy::{EnergyProbe, ProbeScope, UsageShare};
use crate::record::CarbonInfo;
use crate::record::{
    Attribution, Basis, EnergyKind, EnergySource, Method, MethodPart, OwnCost, Record, RunEnd,
    RunScope, RunStart, SCHEMA, ShareRule, StepSummary, is_gpu_domain,
};
use crate::recorder::{self, Event, Registry, ThreadHandle};
use crate::share::{CpuShare, ShareTarget, attribute_interval};
use crate::sink::Sink;
use crate::units::{GramsCo2e, Joules, Seconds};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Which energy a run reports (`run_start.scope`: `process` or `host`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// This process's share of host energy, by CPU time (default).
    #[default]
    Process,
    /// All energy the sources report for the machine.
    Host,
}

impl Scope {
    /// `process` or `host`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Process => "process",
            Scope::Host => "host",
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything a session needs, already resolved (the facade's builder fills it).
pub struct SessionConfig {
    /// Job name.
    pub job: String,
    /// Run id.
    pub run_id: String,
    /// Energy sampling interval.
    pub sample_interval: Duration,
    /// Emission factor or time-varying intensity.
    pub carbon: Carbon,
    /// Step records or summaries only.
    pub detail: StepDetail,
    /// Energy sources (at least one for non-zero energy).
    pub probes: Vec<Box<dyn EnergyProbe>>,
    /// Record destinations.
    pub sinks: Vec<Box<dyn Sink>>,
    /// Path of the JSON-lines file among `sinks`, if any (reported in the summary).
    pub run_file: Option<PathBuf>,
    /// Process share or whole host.
    pub scope: Scope,
    /// Events per thread ring.
    pub ring_capacity: usize,
    /// Step records held between two sampling ticks at most.
    pub max_pending_records: usize,
    /// Proc root for the CPU share (`/proc`).
    pub proc_root: PathBuf,
    /// Problems found while setting up (e.g. the run file could not be created).
    pub warnings: Vec<String>,
    /// Sources considered and not used (listed in `run_start` with their reason).
    pub unused_sources: Vec<EnergySource>,
    /// Whose CPU time is the run's share in `process` scope: this process (default,
    /// `ShareTarget::SelfProcess`) or a process tree (`carina run`).
    pub share_target: ShareTarget,
    /// Called on the application thread at every step exit before the step's end time is
    /// read (e.g. a GPU synchronisation, so asynchronous kernels land in the step that launched
    /// them). `None` (the default) costs nothing.
    pub step_exit_hook: Option<fn()>,
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Another run is installed in this process.
    #[error(
        "a Carina run is already active in this process; finish it (`run.finish()`) before starting another"
    )]
    AlreadyRunning,
    /// The aggregator thread could not be spawned.
    #[error("cannot spawn the carina-aggregator thread: {0}")]
    Spawn(std::io::Error),
    /// An environment variable has a value Carina does not understand.
    #[error("environment variable {var}={value:?} is not valid: expected {expected}")]
    InvalidEnv {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
        /// What is accepted.
        expected: &'static str,
    },
    /// The carbon zone or intensity series is not usable.
    #[error(transparent)]
    Carbon(#[from] crate::carbon::CarbonError),
    /// The run file cannot be created.
    #[error(
        "cannot create the run file {path}: {source}; point CARINA_DIR (or `.output_dir()`) at a writable directory, or opt into `.best_effort(true)` to run without a file"
    )]
    RunFile {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A run file with this run id exists already; run files are never overwritten.
    #[error(
        "a run file for run id {run_id:?} exists already ({path}); run ids are unique: unset CARINA_RUN_ID or choose another id"
    )]
    RunIdTaken {
        /// The run id.
        run_id: String,
        /// The existing file.
        path: PathBuf,
    },
    /// A builder setting is out of range.
    #[error("invalid setting `{setting}`: {message}")]
    InvalidSetting {
        /// The builder method.
        setting: &'static str,
        /// What is wrong and what is accepted.
        message: String,
    },
}

/// Why finishing a run failed.
#[derive(Debug, thiserror::Error)]
pub enum FinishError {
    /// The aggregator thread panicked (a Carina bug); the run file lacks its summaries and end.
    #[error(
        "the carina-aggregator thread panicked; the run file is incomplete (please report this)"
    )]
    AggregatorPanicked,
}

/// What a finished run measured. Every energy figure is of kind [`RunSummary::energy_kind`].
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Run id.
    pub run_id: String,
    /// Job name.
    pub job: String,
    /// The JSON-lines run file, if one was written.
    pub run_file: Option<PathBuf>,
    /// Duration.
    pub wall: Seconds,
    /// Energy in the run's scope.
    pub energy: Joules,
    /// Part of `energy` attributed to no step.
    pub unattributed: Joules,
    /// Whole-machine energy from the sources.
    pub host_energy: Joules,
    /// Emissions of `energy`, grams CO2e.
    pub co2e: GramsCo2e,
    /// Items (largest per-name total, or the value set explicitly).
    pub items: u64,
    /// Step instances recorded.
    pub steps: u64,
    /// Step instances lost to full thread buffers.
    pub dropped: u64,
    /// Step instances counted in totals only, because their thread's buffer was full.
    pub folded: u64,
    /// Step instances in summaries without their own record.
    pub records_not_written: u64,
    /// Measured or estimated.
    pub energy_kind: EnergyKind,
    /// The sources used.
    pub energy_sources: Vec<EnergySource>,
    /// Emission factor or series used (as written in `run_start.carbon`).
    pub carbon: CarbonInfo,
    /// Per-name summaries.
    pub summaries: Vec<StepSummary>,
    /// Records that a sink failed to write.
    pub sink_errors: u64,
    /// Failed energy reads.
    pub probe_errors: u64,
    /// Problems worth telling the user (also printed to stderr once).
    pub warnings: Vec<String>,
    /// True when the run was disabled (`CARINA_DISABLE=1`) and recorded nothing.
    pub disabled: bool,
    /// The `run_end` record as written (absent for a disabled run).
    pub run_end: Option<RunEnd>,
    /// How [`energy`](Self::energy) was obtained, by source (`run_end.method`); `None` for a
    /// disabled run.
    pub method: Option<Method>,
    /// The effective grid intensity, emissions over energy, g/kWh (energy-weighted with a
    /// time-varying series); `None` when the run used no energy.
    pub carbon_g_per_kwh: Option<f64>,
    /// What Carina itself cost the run (`run_end.own_cost`); `None` for a disabled run.
    pub own_cost: Option<OwnCost>,
}

/// A few lines for a terminal: energy with its kind and source, the host share, carbon, items,
/// one line per step name, the counts of folded and dropped steps, and the run file. Warnings are
/// not included (print [`RunSummary::warnings`] where they belong, e.g. on stderr).
impl std::fmt::Display for RunSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Energy in Wh whatever its size, so that runs read side by side; names and paths
        // escaped, since they come from the program and its environment.
        use crate::format::{counters_not_used, escape_control, own_cost_line, percent, sig3};
        if self.disabled {
            return writeln!(
                f,
                "energy:   not recorded (Carina disabled by CARINA_DISABLE)"
            );
        }
        let kind = self.energy_kind.as_str();
        let source = self
            .energy_sources
            .iter()
            .filter(|s| s.used)
            .map(|s| escape_control(&s.name))
            .collect::<Vec<_>>()
            .join(" + ");
        let share = if self.host_energy.0 > 0.0 {
            format!(
                "; {} of the whole machine's {} Wh",
                percent(self.energy.0 / self.host_energy.0, 0),
                sig3(self.host_energy.wh())
            )
        } else {
            String::new()
        };
        let method = self.method.as_ref().map_or_else(
            || kind.to_owned(),
            |m| escape_control(&m.label).into_owned(),
        );
        let band = match (
            self.run_end.as_ref().and_then(|e| e.energy_low_j),
            self.run_end.as_ref().and_then(|e| e.energy_high_j),
        ) {
            (Some(lo), Some(hi)) => format!("; band {}-{} Wh", sig3(lo.wh()), sig3(hi.wh())),
            _ => String::new(),
        };
        writeln!(
            f,
            "energy:   {} Wh {kind} ({method}{band}; source: {}){share}",
            sig3(self.energy.wh()),
            if source.is_empty() {
                "no source"
            } else {
                &source
            }
        )?;
        if self.energy_kind == EnergyKind::Estimated
            && let Some((name, why)) = counters_not_used(&self.energy_sources)
        {
            writeln!(
                f,
                "          counters not used: {}: {}",
                escape_control(name),
                escape_control(&why)
            )?;
        }
        let g_per_kwh = self.carbon_g_per_kwh.unwrap_or(self.carbon.g_per_kwh);
        writeln!(
            f,
            "carbon:   {} g CO2e at {:.1} g/kWh{} ({}), {kind}",
            sig3(self.co2e.0),
            g_per_kwh,
            if self.carbon.series.is_some() {
                " energy-weighted"
            } else {
                ""
            },
            escape_control(self.carbon.zone.as_deref().unwrap_or(&self.carbon.source))
        )?;
        let per_item = if self.items > 0 {
            format!(
                "; {} Wh per 1000 items",
                sig3(self.energy.wh() / self.items as f64 * 1000.0)
            )
        } else {
            String::new()
        };
        writeln!(
            f,
            "run:      {:.2} s, {} items, {} steps{per_item}",
            self.wall.0, self.items, self.steps
        )?;
        let names: Vec<_> = self
            .summaries
            .iter()
            .map(|s| escape_control(&s.name))
            .collect();
        let width = names
            .iter()
            .map(|n| n.chars().count())
            .max()
            .unwrap_or(0)
            .clamp(8, 40);
        for (i, (st, name)) in self.summaries.iter().zip(&names).enumerate() {
            writeln!(
                f,
                "{} {:<width$} {:>8} x {:>9.3} s  {:>9} Wh {kind}  {} g CO2e  ({} items){}",
                if i == 0 { "steps:   " } else { "         " },
                name,
                st.count,
                st.wall_s.0,
                sig3(st.energy_j.wh()),
                sig3(st.co2e_g.0),
                st.items,
                if st.gpu { ", GPU step" } else { "" },
            )?;
        }
        if let Some(split) = self.summaries.iter().find_map(|s| {
            let m = s.method.as_deref()?;
            let rest = &m[m.find("; to steps by ")? + 2..];
            Some(rest.split(';').next().unwrap_or(rest))
        }) {
            let gpu = if self.summaries.iter().any(|s| s.gpu) {
                "; GPU energy to the GPU steps open, by wall-time overlap"
            } else {
                ""
            };
            writeln!(
                f,
                "          (step figures: the run's figure split {}{gpu})",
                escape_control(split)
            )?;
        }
        if self.folded > 0 {
            writeln!(
                f,
                "          ({} step instances counted in summaries only: thread buffers full)",
                self.folded
            )?;
        }
        if self.dropped > 0 {
            writeln!(
                f,
                "          ({} step instances not counted: thread buffers full)",
                self.dropped
            )?;
        }
        if let Some(own) = &self.own_cost {
            writeln!(f, "own cost: {}", own_cost_line(own))?;
        }
        match &self.run_file {
            Some(p) => writeln!(f, "run file: {}", escape_control(&p.display().to_string())),
            None => writeln!(f, "run file: none"),
        }
    }
}

impl RunSummary {
    /// An empty summary for a disabled run.
    pub fn disabled(job: &str, run_id: &str) -> Self {
        RunSummary {
            run_id: run_id.to_owned(),
            job: job.to_owned(),
            run_file: None,
            wall: Seconds::ZERO,
            energy: Joules::ZERO,
            unattributed: Joules::ZERO,
            host_energy: Joules::ZERO,
            co2e: GramsCo2e::ZERO,
            items: 0,
            steps: 0,
            dropped: 0,
            folded: 0,
            records_not_written: 0,
            energy_kind: EnergyKind::Estimated,
            energy_sources: Vec::new(),
            carbon: CarbonFactor::world().info(),
            summaries: Vec::new(),
            sink_errors: 0,
            probe_errors: 0,
            warnings: Vec::new(),
            disabled: true,
            run_end: None,
            method: None,
            carbon_g_per_kwh: None,
            own_cost: None,
        }
    }
}

/// Records and totals that come from outside the session, written just before its `run_end`
/// and folded into it: see [`Session::finish_with`].
///
/// `carina run` fills it from its children's run files (`carina_core::merge`), so the run file
/// holds their steps and `run_end` is written once, with the figures of the [`RunSummary`]
/// that `finish_with` returns.
#[derive(Debug, Clone, Default)]
pub struct Additions {
    /// Written after the session's own step summaries, before `run_end`, in this order
    /// (`thread`, `step`, `step_summary`, `control`...). Their `step_summary` records are also
    /// appended to [`RunSummary::summaries`]. Thread indices and step ids are written as given:
    /// they must not clash with the session's own.
    pub records: Vec<Record>,
    /// Step instances they add to `run_end.steps`.
    pub steps: u64,
    /// Items done outside the session: `run_end.items` becomes the larger of the session's own
    /// and this.
    pub items: u64,
    /// Step instances lost outside the session, added to `run_end.dropped`.
    pub dropped: u64,
    /// Step instances without their own record, added to `run_end.records_not_written`.
    pub records_not_written: u64,
    /// Energy the added steps account for: it is part of the session's energy (the session
    /// measured the process tree that did the work), so it leaves `run_end.unattributed_j`
    /// (never below zero); the run's total does not change.
    pub attributed: Joules,
    /// Lines for `run_end.warnings` (and [`RunSummary::warnings`]).
    pub warnings: Vec<String>,
}

struct Control {
    stop: Mutex<bool>,
    wake: Condvar,
    items_override: AtomicU64,
    /// Handed over by [`Session::finish_with`]; taken when `run_end` is written.
    additions: Mutex<Option<Additions>>,
}

/// A running session. Dropping it finishes it.
pub struct Session {
    epoch: u64,
    control: Arc<Control>,
    handle: Option<JoinHandle<RunSummary>>,
}

const NO_OVERRIDE: u64 = u64::MAX;

impl Session {
    /// Installs the recorder and starts the aggregator thread.
    pub fn start(cfg: SessionConfig) -> Result<Session, StartError> {
        let clock = quanta::Clock::new();
        let registry = Arc::new(Registry::new(clock, cfg.ring_capacity, cfg.step_exit_hook));
        recorder::install(registry.clone()).map_err(|_| StartError::AlreadyRunning)?;
        let epoch = registry.epoch;
        let control = Arc::new(Control {
            stop: Mutex::new(false),
            wake: Condvar::new(),
            items_override: AtomicU64::new(NO_OVERRIDE),
            additions: Mutex::new(None),
        });
        let ctl = control.clone();
        let origin = registry.clock.raw();
        // The energy baselines are read here, at the run's t = 0, not when the aggregator thread
        // gets going: on a loaded machine that can be milliseconds later, and the energy in
        // between would be in no interval.
        let step_cost_ns = recorder::calibrate_step_cost(&registry.clock);
        let mut aggregator = Aggregator::new(cfg, registry, origin);
        aggregator.own.step_cost_ns = step_cost_ns;
        aggregator.sample_energy();
        // The baseline read's delta is energy from before the run (since each probe opened).
        aggregator.host_j = 0.0;
        for p in &mut aggregator.probes {
            p.accounts = MethodAccounts::default();
        }
        let handle = std::thread::Builder::new()
            .name("carina-aggregator".into())
            .spawn(move || aggregator.run(&ctl));
        match handle {
            Ok(h) => Ok(Session {
                epoch,
                control,
                handle: Some(h),
            }),
            Err(e) => {
                recorder::uninstall(epoch);
                Err(StartError::Spawn(e))
            }
        }
    }

    /// Sets the run's item count explicitly (otherwise the largest per-name total).
    pub fn set_items(&self, n: u64) {
        self.control
            .items_override
            .store(n.min(NO_OVERRIDE - 1), Ordering::Relaxed);
    }

    /// Stops recording, attributes the last interval, writes summaries and `run_end`, flushes
    /// and fsyncs the sinks.
    pub fn finish(mut self) -> Result<RunSummary, FinishError> {
        self.finish_inner()
    }

    /// [`finish`](Self::finish), with records and totals from outside the session written
    /// before `run_end` and folded into it ([`Additions`]): the file's `run_end` and the
    /// returned [`RunSummary`] (and its `run_end`) carry the same figures. `carina run` passes
    /// its children's run files this way.
    pub fn finish_with(mut self, additions: Additions) -> Result<RunSummary, FinishError> {
        *self
            .control
            .additions
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(additions);
        self.finish_inner()
    }

    fn finish_inner(&mut self) -> Result<RunSummary, FinishError> {
        recorder::uninstall(self.epoch);
        {
            let mut stop = self.control.stop.lock().unwrap_or_else(|e| e.into_inner());
            *stop = true;
        }
        self.control.wake.notify_all();
        match self.handle.take().map(JoinHandle::join) {
            Some(Ok(summary)) => Ok(summary),
            Some(Err(_)) | None => Err(FinishError::AggregatorPanicked),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.handle.is_some() {
            match self.finish_inner() {
                Ok(s) => {
                    for w in &s.warnings {
                        eprintln!("carina: {w}");
                    }
                }
                Err(e) => eprintln!("carina: {e}"),
            }
        }
    }
}

struct Probe {
    probe: Box<dyn EnergyProbe>,
    /// `energy_sources[].name`, for messages and `run_end.method`.
    name: String,
    scope: ProbeScope,
    /// Per domain: a GPU's (its energy follows the GPU steps inside the run).
    gpu: Vec<bool>,
    /// Per domain: how its energy is obtained now (a GPU may fall back to power samples).
    basis: Vec<Basis>,
    /// The run's energy from this source, by basis and share rule.
    accounts: MethodAccounts,
    /// The PUE the source multiplies by, if any.
    pue: Option<f64>,
    /// Some interval was counted low for good (the probe said so, or its counters stalled).
    lower_bound: bool,
    /// Some of its energy is not being counted right now (the latest report said so).
    missing: bool,
    last: Vec<Joules>,
    buf: Vec<Joules>,
    last_band: Option<(f64, f64)>,
    /// Per-domain share of the run from the probe's own knowledge of its users (GPUs).
    usage: Vec<Option<UsageShare>>,
    knows_users: bool,
    /// A measured source's counters: how long they have read the same while the process ran.
    measured: bool,
    still_ns: u64,
    ever_advanced: bool,
    stall_warned: bool,
}

/// The run's energy from one source, by basis and by the share rule that brought it to the run
/// (`None`: taken whole). A handful of entries at most.
#[derive(Debug, Default)]
struct MethodAccounts(Vec<(Basis, Option<ShareRule>, f64)>);

impl MethodAccounts {
    fn add(&mut self, basis: Basis, rule: Option<ShareRule>, e: Joules) {
        match self
            .0
            .iter_mut()
            .find(|(b, r, _)| *b == basis && *r == rule)
        {
            Some(slot) => slot.2 += e.0,
            None => self.0.push((basis, rule, e.0)),
        }
    }

    /// One method part per basis, with its energy by share rule.
    fn parts(&self, source: &str, pue: Option<f64>) -> Vec<MethodPart> {
        let mut parts: Vec<MethodPart> = Vec::new();
        for &(basis, rule, e) in &self.0 {
            let part = match parts.iter_mut().find(|p| p.basis == basis) {
                Some(p) => p,
                None => {
                    parts.push(MethodPart {
                        source: source.to_owned(),
                        basis,
                        energy_j: Joules::ZERO,
                        shares: Default::default(),
                        pue,
                    });
                    parts.last_mut().expect("just pushed")
                }
            };
            part.energy_j += Joules(e);
            if let Some(r) = rule {
                *part.shares.entry(r).or_insert(Joules::ZERO) += Joules(e);
            }
        }
        parts
    }
}

/// How long a measured counter may stand still while the process uses CPU before the run says
/// so: longer than any counter's update period (RAPL ~1 ms, NVML ~100 ms), short enough to
/// catch a dead virtual PMU within the first seconds.
const STALL_NS: u64 = 2_000_000_000;

/// A registered thread and the CPU time it had at the last tick.
struct Tracked {
    handle: ThreadHandle,
    last_cpu: Option<u64>,
}

struct Aggregator {
    cfg: SessionConfig,
    registry: Arc<Registry>,
    origin: u64,
    started: Instant,
    started_at: String,
    attributor: Attributor,
    threads: Vec<Tracked>,
    probes: Vec<Probe>,
    last_process_cpu: u64,
    cpu_weighted: bool,
    share: CpuShare,
    scratch: Vec<Event>,
    host_j: f64,
    probe_errors: u64,
    sink_errors: u64,
    retired_dropped: u64,
    sources: Vec<EnergySource>,
    /// Events drained at a tick that are newer than the tick; applied after it closes.
    pending_carry: Vec<(u32, Vec<Event>)>,
    /// Wall-clock time of the last energy sample (start of the open interval).
    last_sample_at: jiff::Timestamp,
    /// The open `power` window: its start (ns since the origin) and its energy so far.
    power_from_ns: u64,
    power_acc: Energy,
    /// Whether a used source is an estimate (then figures carry a low/high band).
    estimated: bool,
    /// Folded step totals of threads already retired, per name.
    folded: Vec<crate::recorder::Fold>,
    /// Time of the last energy sample and the process CPU time then, for stall detection.
    last_energy_ns: u64,
    last_energy_cpu: u64,
    /// The process's share of host busy CPU time over the last interval (sampled in every
    /// scope).
    last_share: f64,
    /// Carina's own cost so far.
    own: OwnAccounts,
    /// `Step::gpu` marks lost by threads already retired.
    marks_lost: u64,
}

/// What Carina itself costs the run, accumulated at every tick on the aggregator thread.
#[derive(Debug, Default)]
struct OwnAccounts {
    /// The aggregator thread's CPU clock at the previous tick.
    last_thread_ns: Option<u64>,
    aggregator_cpu_ns: u64,
    aggregator_energy_j: f64,
    /// The run's CPU time (its share target's: this process, or a process tree) and the
    /// CPU-side energy that stands for it, over the run.
    target_cpu_ns: u64,
    target_energy_j: f64,
    /// CPU time of the aggregator outside the target (`carina run` measures its command's
    /// tree, not itself).
    outside_cpu_ns: u64,
    /// One step's cost, calibrated at start.
    step_cost_ns: f64,
}

impl OwnAccounts {
    /// Adds an interval in which the run's share target used `target_ns` of CPU time, which
    /// the run's CPU-side energy `target_energy_j` stands for. The aggregator's energy is its
    /// CPU time at that rate: part of the run's energy when the aggregator is inside the target
    /// (a library run), on top of it when it is not (`outside`: `carina run`). Must run on the
    /// aggregator thread.
    fn account(&mut self, target_energy_j: f64, target_ns: u64, outside: bool) {
        let Some(now) = crate::cpuclock::this_thread_ns() else {
            return;
        };
        let d = self
            .last_thread_ns
            .replace(now)
            .map_or(0, |last| now.saturating_sub(last));
        self.aggregator_cpu_ns += d;
        self.target_cpu_ns += target_ns;
        self.target_energy_j += target_energy_j;
        if outside {
            self.outside_cpu_ns += d;
        }
        if target_ns > 0 {
            // Inside the target its CPU time is part of `target_ns`: never more than all of it.
            let part = d as f64 / target_ns as f64;
            let part = if outside { part } else { part.min(1.0) };
            self.aggregator_energy_j += target_energy_j * part;
        }
    }

    /// The run's `own_cost` once `steps` steps were counted and `bytes` written.
    fn cost(&self, steps: u64, bytes: u64) -> OwnCost {
        let steps_cpu_s = steps as f64 * self.step_cost_ns / 1e9;
        let target_s = self.target_cpu_ns as f64 / 1e9;
        let per_cpu_s = if target_s > 0.0 {
            self.target_energy_j / target_s
        } else {
            0.0
        };
        let agg_s = self.aggregator_cpu_ns as f64 / 1e9;
        let all_s = target_s + self.outside_cpu_ns as f64 / 1e9;
        OwnCost {
            aggregator_cpu_s: Seconds(agg_s),
            aggregator_energy_j: Joules(self.aggregator_energy_j),
            step_cost_ns: self.step_cost_ns,
            steps_cpu_s: Seconds(steps_cpu_s),
            steps_energy_j: Joules(steps_cpu_s * per_cpu_s),
            bytes_written: bytes,
            cpu_share: if all_s > 0.0 {
                ((agg_s + steps_cpu_s) / all_s).min(1.0)
            } else {
                0.0
            },
        }
    }
}

/// Shortest `power` window: ticks are coalesced until this much time has passed, so a run at a
/// 100 ms sampling interval writes one power record a second (3 600 an hour), not ten.
const POWER_WINDOW_NS: u64 = 1_000_000_000;

impl Aggregator {
    fn new(mut cfg: SessionConfig, registry: Arc<Registry>, origin: u64) -> Self {
        let probes: Vec<Probe> = std::mem::take(&mut cfg.probes)
            .into_iter()
            .map(|p| {
                let n = p.domains().len().max(1);
                let desc = p.describe();
                let names = p.domains();
                Probe {
                    name: desc.name.clone(),
                    gpu: (0..n)
                        .map(|i| names.get(i).is_some_and(|d| is_gpu_domain(d)))
                        .collect(),
                    basis: vec![desc.basis(); n],
                    accounts: MethodAccounts::default(),
                    pue: desc.pue,
                    lower_bound: false,
                    missing: false,
                    scope: p.scope(),
                    knows_users: p.knows_users(),
                    measured: desc.kind == EnergyKind::Measured,
                    probe: p,
                    last: vec![Joules::ZERO; n],
                    buf: vec![Joules::ZERO; n],
                    last_band: None,
                    usage: vec![None; n],
                    still_ns: 0,
                    ever_advanced: false,
                    stall_warned: false,
                }
            })
            .collect();
        let mut sources: Vec<EnergySource> = probes.iter().map(|p| p.probe.describe()).collect();
        let mut domains = Vec::new();
        for p in &probes {
            let prefix = p.probe.describe().name;
            for d in p.probe.domains() {
                // Two sources naming a domain alike (two models' `cpu`) stay apart.
                domains.push(if domains.contains(&d) {
                    format!("{prefix}:{d}")
                } else {
                    d
                });
            }
        }
        let band = sources.iter().any(|s| s.kind == EnergyKind::Estimated);
        sources.extend(std::mem::take(&mut cfg.unused_sources));
        let tick_ns = cfg.sample_interval.as_nanos().min(u128::from(u64::MAX)) as u64;
        Aggregator {
            attributor: Attributor::new(cfg.detail, cfg.max_pending_records)
                .with_tick(tick_ns)
                .with_domains(domains)
                .with_band(band),
            estimated: band,
            last_process_cpu: crate::cpuclock::process_ns().unwrap_or(0),
            cpu_weighted: false,
            share: CpuShare::with_target(cfg.proc_root.clone(), cfg.share_target),
            cfg,
            registry,
            origin,
            started: Instant::now(),
            started_at: jiff::Timestamp::now().to_string(),
            threads: Vec::new(),
            probes,
            scratch: Vec::new(),
            host_j: 0.0,
            probe_errors: 0,
            sink_errors: 0,
            retired_dropped: 0,
            sources,
            pending_carry: Vec::new(),
            last_sample_at: jiff::Timestamp::now(),
            power_from_ns: 0,
            power_acc: Energy::ZERO,
            folded: Vec::new(),
            last_energy_ns: 0,
            last_energy_cpu: crate::cpuclock::process_ns().unwrap_or(0),
            last_share: 0.0,
            own: OwnAccounts::default(),
            marks_lost: 0,
        }
    }

    fn now_ns(&self) -> u64 {
        self.registry
            .clock
            .delta_as_nanos(self.origin, self.registry.clock.raw())
    }

    fn write(&mut self, rec: &Record) {
        for s in self.cfg.sinks.iter_mut() {
            if let Err(e) = s.write(rec) {
                self.sink_errors += 1;
                if self.sink_errors == 1 {
                    self.cfg
                        .warnings
                        .push(format!("{e}; later records may be missing"));
                }
            }
        }
    }

    /// Lets every sink put what it holds into its file as whole lines (crash durability).
    fn checkpoint(&mut self) {
        for s in self.cfg.sinks.iter_mut() {
            if let Err(e) = s.checkpoint() {
                self.sink_errors += 1;
                if self.sink_errors == 1 {
                    self.cfg.warnings.push(format!(
                        "{e}; the records stay in memory and are written when the file accepts them"
                    ));
                }
            }
        }
    }

    fn run(mut self, ctl: &Control) -> RunSummary {
        self.own.last_thread_ns = crate::cpuclock::this_thread_ns();
        let start = Record::RunStart(RunStart {
            schema: SCHEMA,
            run_id: self.cfg.run_id.clone(),
            job: self.cfg.job.clone(),
            host: crate::naming::hostname(),
            pid: std::process::id(),
            started_at: self.started_at.clone(),
            energy_sources: self.sources.clone(),
            carbon: self.cfg.carbon.info(),
            steps: Some(self.cfg.detail),
            sample_interval_s: Seconds(self.cfg.sample_interval.as_secs_f64()),
            scope: Some(RunScope::of(self.cfg.scope, self.cfg.share_target)),
            carina_version: env!("CARGO_PKG_VERSION").into(),
        });
        self.write(&start);

        let tick = self.cfg.sample_interval.max(Duration::from_millis(1));
        let mut next_tick = Instant::now() + tick;
        // Drain more often than we tick while events flow, so bursts do not overflow the rings;
        // back off to the tick when idle.
        let min_wait = Duration::from_millis(1).min(tick);
        let mut drain_wait = min_wait;
        loop {
            let stop = {
                let guard = ctl.stop.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                let wait = next_tick.saturating_duration_since(now).min(drain_wait);
                if *guard || wait.is_zero() {
                    *guard
                } else {
                    let (g, _) = ctl
                        .wake
                        .wait_timeout(guard, wait)
                        .unwrap_or_else(|e| e.into_inner());
                    *g
                }
            };
            if stop {
                break;
            }
            if Instant::now() >= next_tick {
                self.tick(false);
                next_tick += tick;
                let now = Instant::now();
                if next_tick < now {
                    // We fell behind (suspended, overloaded): skip missed ticks, lose nothing.
                    next_tick = now + tick;
                }
            } else {
                let fill = self.drain_all(u64::MAX, false);
                drain_wait = if fill > 0.25 {
                    // Busy: go round again at once.
                    Duration::ZERO
                } else if fill > 0.01 {
                    min_wait
                } else {
                    (drain_wait * 2).clamp(min_wait, tick)
                };
            }
        }
        self.tick(true);
        self.finish(ctl)
    }

    /// Writes control events emitted since the last look.
    fn write_controls(&mut self) {
        let events = std::mem::take(
            &mut *self
                .registry
                .controls
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        let now_ns = self.now_ns();
        let now = jiff::Timestamp::now();
        for (t, ev) in events {
            let t_ns = self.registry.clock.delta_as_nanos(self.origin, t);
            let age = jiff::SignedDuration::from_nanos(now_ns.saturating_sub(t_ns) as i64);
            let at = now.checked_sub(age).unwrap_or(now);
            let rec = Record::Control(crate::record::ControlRecord {
                t_s: Seconds(t_ns as f64 / 1e9),
                at: at.to_string(),
                policy: ev.policy,
                mode: ev.mode,
                allowed: ev.allowed,
                nominal: ev.nominal,
                reason: ev.reason,
            });
            self.write(&rec);
        }
    }

    /// Takes threads registered since the last look into the aggregator's list.
    fn adopt_new_threads(&mut self) {
        let mut fresh = Vec::new();
        self.registry.take_new_threads(&mut fresh);
        for th in fresh {
            self.attributor.add_thread(th.handle_index());
            let rec = Record::Thread(crate::record::ThreadInfo {
                index: th.index,
                name: th.name.clone(),
            });
            self.write(&rec);
            self.threads.push(Tracked {
                last_cpu: th.cpu_at_start,
                handle: th,
            });
        }
    }

    /// Drains every ring; applies events up to `limit_ns` and keeps later ones in `carry`.
    /// With `retire`, forgets threads that exited and are fully drained (only at ticks, after
    /// their final CPU time was sampled). Returns the highest ring fill ratio seen.
    fn drain_all(&mut self, limit_ns: u64, retire: bool) -> f64 {
        self.adopt_new_threads();
        self.write_controls();
        let mut max_fill: f64 = 0.0;
        let mut carry: Vec<(u32, Vec<Event>)> = Vec::new();
        for tr in self.threads.iter_mut() {
            let th = &mut tr.handle;
            max_fill = max_fill.max(th.consumer.pending() as f64 / th.consumer.capacity() as f64);
            self.scratch.clear();
            th.consumer.drain_into(&mut self.scratch);
            for ev in self.scratch.iter_mut() {
                let t = ev.time_mut();
                *t = self.registry.clock.delta_as_nanos(self.origin, *t);
            }
            let split = self.scratch.partition_point(|ev| ev.time() <= limit_ns);
            self.attributor.on_events(th.index, &self.scratch[..split]);
            if split < self.scratch.len() {
                carry.push((th.index, self.scratch[split..].to_vec()));
            }
        }
        if retire {
            let attributor = &mut self.attributor;
            let retired_dropped = &mut self.retired_dropped;
            let marks_lost = &mut self.marks_lost;
            let folded = &mut self.folded;
            self.threads.retain(|tr| {
                let th = &tr.handle;
                let gone = th.consumer.is_closed() && th.consumer.pending() == 0;
                if gone {
                    *retired_dropped += th.consumer.dropped();
                    *marks_lost += th.exit.marks_lost.load(Ordering::Relaxed);
                    merge_folds(folded, &th.folds.snapshot());
                    attributor.close_thread(th.index);
                }
                !gone
            });
        }
        self.pending_carry = carry;
        max_fill
    }

    /// CPU time of every registered thread and of the process since the last tick.
    fn sample_cpu(&mut self) -> Weights {
        let process = crate::cpuclock::process_ns();
        let mut threads = Vec::with_capacity(self.threads.len());
        let mut complete = process.is_some();
        for tr in self.threads.iter_mut() {
            let th = &tr.handle;
            // A closed ring means the thread stored its final CPU time before closing it.
            let now = if th.consumer.is_closed() {
                Some(th.exit.final_cpu_ns.load(Ordering::Acquire)).filter(|&v| v != u64::MAX)
            } else {
                th.cpu_clock.and_then(|c| c.read_ns()).or_else(|| {
                    Some(th.exit.final_cpu_ns.load(Ordering::Acquire)).filter(|&v| v != u64::MAX)
                })
            };
            match (now, tr.last_cpu) {
                (Some(now), Some(last)) => {
                    threads.push((th.index, now.saturating_sub(last)));
                    tr.last_cpu = Some(now);
                }
                (Some(now), None) => tr.last_cpu = Some(now),
                (None, _) => {
                    if th.cpu_clock.is_none() {
                        complete = false;
                    }
                }
            }
        }
        let process = process.unwrap_or(0);
        let delta = process.saturating_sub(self.last_process_cpu);
        self.last_process_cpu = process;
        if complete {
            Weights::Cpu {
                process_ns: delta,
                threads,
            }
        } else {
            Weights::Wall
        }
    }

    /// Reads every probe; returns the interval's energy per channel in the run's scope, split
    /// into its CPU and GPU parts, and keeps each source's method accounts.
    fn sample_energy(&mut self) -> IntervalEnergy {
        // In host scope the share is still sampled: Carina's own cost is its part of the
        // process's share, whatever the run reports.
        let (share, share_ok) = match self.share.sample() {
            Ok(s) => (s.unwrap_or(0.0), true),
            Err(e) => {
                if self.cfg.scope == Scope::Process {
                    self.probe_errors += 1;
                    self.warn_once(format!(
                        "cannot take the process share ({e}); using the whole host"
                    ));
                }
                (1.0, false)
            }
        };
        self.last_share = share;
        let (share, by_cpu_share) = match self.cfg.scope {
            Scope::Host => (1.0, false),
            Scope::Process => (share, share_ok),
        };
        let mut energy = IntervalEnergy::ZERO;
        let mut offset = 0;
        let mut failures = Vec::new();
        let now_ns = self.now_ns();
        let dt_ns = now_ns.saturating_sub(self.last_energy_ns);
        self.last_energy_ns = now_ns;
        let cpu_now = crate::cpuclock::process_ns().unwrap_or(0);
        let cpu_used = cpu_now.saturating_sub(self.last_energy_cpu);
        self.last_energy_cpu = cpu_now;
        let pids = if self.cfg.scope == Scope::Process && self.probes.iter().any(|p| p.knows_users)
        {
            Some(self.run_pids())
        } else {
            None
        };
        for p in self.probes.iter_mut() {
            let n = p.last.len();
            let mut read_failed = false;
            match p.probe.read(&mut p.buf) {
                Ok(()) => {
                    let k = match p.scope {
                        ProbeScope::Host => share,
                        ProbeScope::Process => 1.0,
                    };
                    let cpu_rule = by_cpu_share && p.scope == ProbeScope::Host;
                    p.usage.iter_mut().for_each(|u| *u = None);
                    if let (Some(pids), true, ProbeScope::Host) = (&pids, p.knows_users, p.scope) {
                        p.probe.usage_share(pids, &mut p.usage);
                    }
                    let (mut run_cpu, mut run_gpu) = (0.0, 0.0);
                    let (gpu, basis, usage, accounts) =
                        (&p.gpu, &p.basis, &p.usage, &mut p.accounts);
                    let (total, total_run) =
                        attribute_interval(&p.buf, &mut p.last, &p.usage, k, |i, _, run| {
                            let is_gpu = gpu.get(i).copied().unwrap_or(false);
                            let part = if is_gpu {
                                run_gpu += run.0;
                                &mut energy.gpu
                            } else {
                                run_cpu += run.0;
                                &mut energy.cpu
                            };
                            part.add_domain(offset + i, run);
                            // Which rule brought the domain's energy to the run: a device's own
                            // users (taken whole when the run was its only user), else the CPU
                            // share of a host-wide source in process scope.
                            let rule = match usage.get(i).copied().flatten() {
                                Some(u) if u.share > 0.0 && u.share < 1.0 => Some(u.rule),
                                Some(_) => None,
                                None => cpu_rule.then_some(ShareRule::CpuTime),
                            };
                            let b = basis.get(i).copied().unwrap_or(Basis::Unknown);
                            accounts.add(b, rule, run);
                        });
                    let (total, total_run) = (total.0, total_run.0);
                    if p.measured && !p.stall_warned && !p.lower_bound && !p.missing {
                        // A safety net for probes that do not watch their own counters (the
                        // built-in ones flag a stalled counter within a few hundred ms).
                        if total > 0.0 {
                            p.ever_advanced = true;
                            p.still_ns = 0;
                        } else if cpu_used > 0 {
                            p.still_ns += dt_ns;
                            if p.still_ns >= STALL_NS {
                                p.stall_warned = true;
                                p.lower_bound = true;
                                let name = &p.name;
                                let at = now_ns.saturating_sub(p.still_ns) as f64 / 1e9;
                                failures.push(if p.ever_advanced {
                                    format!(
                                        "energy source `{name}` stopped advancing at {at:.1} s (its counters read the same for {:.1} s while this process used CPU): energy after that is missing from the figures, which are a lower bound",
                                        p.still_ns as f64 / 1e9
                                    )
                                } else {
                                    format!(
                                        "energy source `{name}` has not advanced since the run started ({:.1} s while this process used CPU): a dead or virtualised counter; its energy reads 0 (set `.constant_watts`/`.tdp_watts` or CARINA_POWERCAP_ROOT, see `carina doctor`)",
                                        p.still_ns as f64 / 1e9
                                    )
                                });
                            }
                        }
                    }
                    self.host_j += total;
                    // The band follows the run's share of this source's total, and each part
                    // (CPU, GPU) takes the band in proportion to its energy.
                    let (lo, hi) = match p.probe.band() {
                        Some((lo, hi)) => {
                            let (l0, h0) =
                                p.last_band.replace((lo.0, hi.0)).unwrap_or((lo.0, hi.0));
                            ((lo.0 - l0).max(0.0), (hi.0 - h0).max(0.0))
                        }
                        None => (total, total),
                    };
                    let k = if total > 0.0 { total_run / total } else { k };
                    let (lo, hi) = (lo * k, hi * k);
                    let f_gpu = if total_run > 0.0 {
                        run_gpu / total_run
                    } else {
                        0.0
                    };
                    energy.cpu.add_total(Joules(run_cpu));
                    energy
                        .cpu
                        .add_band(Joules(lo * (1.0 - f_gpu)), Joules(hi * (1.0 - f_gpu)));
                    energy.gpu.add_total(Joules(run_gpu));
                    energy.gpu.add_band(Joules(lo * f_gpu), Joules(hi * f_gpu));
                }
                Err(e) => {
                    read_failed = true;
                    failures.push(format!(
                        "energy source `{}` failed ({e}); its energy stays where it was until a \
                         read succeeds",
                        p.name
                    ));
                }
            }
            let report = p.probe.take_report();
            // A probe that counts its own failed reads counts this one too.
            self.probe_errors += report.read_errors.max(u64::from(read_failed));
            p.lower_bound |= report.lower_bound;
            p.missing = report.missing || read_failed;
            for (i, b) in report.basis {
                if let Some(slot) = p.basis.get_mut(i) {
                    *slot = b;
                }
            }
            failures.extend(report.warnings);
            offset += n;
        }
        for f in failures {
            self.warn_once(f);
        }
        let now = jiff::Timestamp::now();
        let (g, covered) = self.cfg.carbon.g_per_kwh(self.last_sample_at, now);
        if !covered {
            self.warn_once(format!(
                "the carbon intensity series does not cover {} .. {}: the nearest value was used",
                self.last_sample_at
                    .round(jiff::Unit::Second)
                    .unwrap_or(self.last_sample_at),
                now.round(jiff::Unit::Second).unwrap_or(now)
            ));
        }
        self.last_sample_at = now;
        for part in [&mut energy.cpu, &mut energy.gpu] {
            part.set_co2e(GramsCo2e(part.total().kwh() * g));
        }
        energy
    }

    /// The processes whose use of a device is the run's: this process, or the measured tree.
    fn run_pids(&self) -> Vec<u32> {
        let own = std::process::id();
        let mut pids = match self.cfg.share_target {
            ShareTarget::SelfProcess => vec![own],
            ShareTarget::Tree { root } => {
                crate::procfs::tree_pids(&self.cfg.proc_root, Some(root)).unwrap_or_default()
            }
            ShareTarget::Descendants => {
                crate::procfs::tree_pids(&self.cfg.proc_root, None).unwrap_or_default()
            }
        };
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    fn warn_once(&mut self, w: String) {
        // Messages that differ only in their times count as one (e.g. series coverage).
        let key: String = w.chars().take(40).collect();
        if !self.cfg.warnings.iter().any(|x| x.starts_with(&key)) && self.cfg.warnings.len() < 32 {
            self.cfg.warnings.push(w);
        }
    }

    fn tick(&mut self, last: bool) {
        self.adopt_new_threads();
        let end = self.now_ns();
        let energy = self.sample_energy();
        let window_closed = self.power_window(end, &energy.sum(), last);
        let weights = self.sample_cpu();
        let host_part = match self.cfg.scope {
            Scope::Host => self.last_share,
            Scope::Process => 1.0,
        };
        let outside = self.cfg.share_target != ShareTarget::SelfProcess;
        self.own.account(
            energy.cpu.total().0 * host_part,
            self.share.last_target_delta_ns(),
            outside,
        );
        self.cpu_weighted |= matches!(weights, Weights::Cpu { .. });
        self.drain_all(end, true);
        if last {
            self.attributor.finish(end, &energy, &weights);
        } else {
            self.attributor.close_interval(end, &energy, &weights);
        }
        for (index, evs) in std::mem::take(&mut self.pending_carry) {
            self.attributor.on_events(index, &evs);
        }
        let recs: Vec<_> = self.attributor.take_records().collect();
        for r in recs {
            self.write(&Record::Step(r));
        }
        // About once a second the file gets the power window and the steps so far as whole
        // lines, so a run killed with SIGKILL loses at most that much (finish fsyncs).
        if window_closed && !last {
            self.checkpoint();
        }
    }

    /// Adds a tick's energy to the open power window; writes the window once it spans
    /// [`POWER_WINDOW_NS`] or the run ends.
    fn power_window(&mut self, end_ns: u64, energy: &Energy, last: bool) -> bool {
        self.power_acc.add(energy);
        if !last && end_ns.saturating_sub(self.power_from_ns) < POWER_WINDOW_NS {
            return false;
        }
        let estimated = self.estimated;
        let acc = std::mem::replace(&mut self.power_acc, Energy::ZERO);
        let rec = Record::Power(crate::record::PowerRecord {
            start_s: Seconds(self.power_from_ns as f64 / 1e9),
            end_s: Seconds(end_ns as f64 / 1e9),
            energy_j: acc.total(),
            co2e_g: acc.co2e(),
            energy_low_j: estimated.then_some(acc.low()),
            energy_high_j: estimated.then_some(acc.high()),
        });
        self.power_from_ns = end_ns;
        self.write(&rec);
        true
    }

    /// How the run's figure was obtained, from each source's accounts.
    fn method(&self) -> Method {
        let parts = self
            .probes
            .iter()
            .flat_map(|p| p.accounts.parts(&p.name, p.pue))
            .collect();
        // Energy still missing at the end (a counter still failing or stalled) never came.
        Method::from_parts(
            parts,
            self.probes.iter().any(|p| p.lower_bound || p.missing),
        )
    }

    /// How the run's energy was split across steps, in words.
    fn step_split(&self) -> &'static str {
        if self.cpu_weighted {
            "thread CPU time and wall time"
        } else {
            "wall time"
        }
    }

    /// Whether some source reports a GPU domain.
    fn has_gpu(&self) -> bool {
        self.probes.iter().any(|p| p.gpu.iter().any(|&g| g))
    }

    fn finish(mut self, ctl: &Control) -> RunSummary {
        let mut folds = std::mem::take(&mut self.folded);
        for t in &self.threads {
            merge_folds(&mut folds, &t.handle.folds.snapshot());
        }
        let folded: u64 = folds.iter().map(|f| f.count).sum();
        let mut summaries = self.attributor.summaries();
        apply_folds(&mut summaries, &folds);
        let method = self.method();
        let split = self.step_split();
        for s in &mut summaries {
            let gpu_note = if s.gpu {
                "; GPU energy by GPU-step overlap"
            } else if self.has_gpu() {
                "; GPU energy by wall time, in intervals with no GPU step open"
            } else {
                ""
            };
            s.method = Some(format!("{}; to steps by {split}{gpu_note}", method.label));
        }
        for s in &summaries {
            self.write(&Record::StepSummary(s.clone()));
        }
        let added = ctl
            .additions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_default();
        for r in &added.records {
            self.write(r);
        }
        let totals = self.attributor.totals();
        let band = if self.estimated {
            (Some(totals.channels.low()), Some(totals.channels.high()))
        } else {
            (None, None)
        };
        let dropped = self.retired_dropped
            + self
                .threads
                .iter()
                .map(|t| t.handle.consumer.dropped())
                .sum::<u64>();
        let items = match ctl.items_override.load(Ordering::Relaxed) {
            NO_OVERRIDE => summaries.iter().map(|s| s.items).max().unwrap_or(0),
            n => n,
        }
        .max(added.items);
        let steps = self.attributor.steps() + folded + added.steps;
        let energy_kind = EnergyKind::of_sources(&self.sources);
        let marks_lost = self.marks_lost
            + self
                .threads
                .iter()
                .map(|t| t.handle.exit.marks_lost.load(Ordering::Relaxed))
                .sum::<u64>();
        if marks_lost > 0 {
            self.cfg.warnings.push(format!(
                "{marks_lost} `Step::gpu` marks found their thread's buffer full: those steps \
                 were counted as CPU steps (use `carina::gpu_step`, which needs no extra event, \
                 or raise `buffer_capacity`)"
            ));
        }
        if folded > 0 {
            self.cfg.warnings.push(format!(
                "{folded} steps found their thread's buffer full and were counted in the step \
                 summaries only (exact counts, items and wall time; no record or energy split of \
                 their own; raise `buffer_capacity` to record them)"
            ));
        }
        if dropped > 0 {
            self.cfg.warnings.push(format!(
                "{dropped} steps were not counted: their thread's buffer was full and it had \
                 already folded 256 other step names (raise `buffer_capacity`)"
            ));
        }
        // What the additions bring: their steps are the session's own energy at work, so their
        // energy leaves the unattributed part and the total stays as measured.
        let dropped = dropped + added.dropped;
        let records_not_written = self.attributor.records_not_written() + added.records_not_written;
        let unattributed = (totals.unattributed - added.attributed).max(Joules::ZERO);
        summaries.extend(added.records.iter().filter_map(|r| match r {
            Record::StepSummary(s) => Some(s.clone()),
            _ => None,
        }));
        self.cfg.warnings.extend(added.warnings);
        // The run ends at its last energy sample: the span its energy covers (the summaries
        // and records written since are bookkeeping, not the job).
        let wall = if self.power_from_ns > 0 {
            self.power_from_ns as f64 / 1e9
        } else {
            self.started.elapsed().as_secs_f64()
        };
        let bytes: u64 = self.cfg.sinks.iter().map(|s| s.bytes_written()).sum();
        let own_cost = self.own.cost(self.attributor.steps() + folded, bytes);
        let energy_j = totals.total();
        let carbon_g_per_kwh = (energy_j.0 > 0.0)
            .then(|| totals.channels.co2e().0 / energy_j.kwh())
            .filter(|g| g.is_finite());
        let end = RunEnd {
            ended_at: jiff::Timestamp::now().to_string(),
            wall_s: Seconds(wall),
            energy_j: totals.total(),
            unattributed_j: unattributed,
            co2e_g: totals.channels.co2e(),
            items,
            steps,
            dropped,
            folded,
            records_not_written,
            host_energy_j: Joules(self.host_j),
            energy_kind,
            probe_errors: self.probe_errors,
            sink_errors: self.sink_errors,
            energy_low_j: band.0,
            energy_high_j: band.1,
            energy_by_domain: self.attributor.by_domain(&totals.channels),
            attribution: Some(if self.cpu_weighted {
                Attribution::CpuTime
            } else {
                Attribution::WallTime
            }),
            warnings: self.cfg.warnings.clone(),
            method: Some(method.clone()),
            carbon_g_per_kwh,
            own_cost: Some(own_cost.clone()),
        };
        self.write(&Record::RunEnd(end.clone()));
        for s in self.cfg.sinks.iter_mut() {
            if let Err(e) = s.flush() {
                self.sink_errors += 1;
                self.cfg.warnings.push(format!("{e}"));
            }
        }
        RunSummary {
            run_id: self.cfg.run_id.clone(),
            job: self.cfg.job.clone(),
            run_file: self.cfg.run_file.clone(),
            wall: Seconds(wall),
            energy: totals.total(),
            unattributed,
            host_energy: Joules(self.host_j),
            co2e: totals.channels.co2e(),
            items,
            steps,
            dropped,
            folded,
            records_not_written,
            energy_kind,
            energy_sources: self.sources.clone(),
            carbon: self.cfg.carbon.info(),
            summaries,
            sink_errors: self.sink_errors,
            probe_errors: self.probe_errors,
            warnings: std::mem::take(&mut self.cfg.warnings),
            disabled: false,
            run_end: Some(end),
            method: Some(method),
            carbon_g_per_kwh,
            own_cost: Some(own_cost),
        }
    }
}

/// Adds `more` into `into`, by step name.
fn merge_folds(into: &mut Vec<crate::recorder::Fold>, more: &[crate::recorder::Fold]) {
    for f in more {
        match into.iter_mut().find(|g| g.name == f.name) {
            Some(g) => {
                g.count += f.count;
                g.items = g.items.wrapping_add(f.items);
                g.wall_ns = g.wall_ns.saturating_add(f.wall_ns);
                g.errors += f.errors;
                g.panics += f.panics;
            }
            None => into.push(*f),
        }
    }
}

/// Puts folded instances into the per-name summaries: counts, items, errors and wall time are
/// exact; their wall time counts as self time (their children are unknown) and their energy
/// stayed with whatever recorded step was open, or in `unattributed_j`.
fn apply_folds(summaries: &mut Vec<StepSummary>, folds: &[crate::recorder::Fold]) {
    for f in folds.iter().filter(|f| f.count > 0) {
        let wall = f.wall_ns as f64 / 1e9;
        match summaries.iter_mut().find(|s| s.name == f.name) {
            Some(s) => {
                s.count += f.count;
                s.items = s.items.wrapping_add(f.items);
                s.wall_s += Seconds(wall);
                s.self_wall_s += Seconds(wall);
                s.errors += f.errors;
                s.panics += f.panics;
                s.max_s = s.max_s.max(Seconds(wall / f.count as f64));
            }
            None => summaries.push(StepSummary {
                name: f.name.to_owned(),
                count: f.count,
                wall_s: Seconds(wall),
                self_wall_s: Seconds(wall),
                items: f.items,
                energy_j: Joules::ZERO,
                self_energy_j: Joules::ZERO,
                co2e_g: GramsCo2e::ZERO,
                p50_s: wall / f.count as f64,
                p95_s: wall / f.count as f64,
                max_s: Seconds(wall / f.count as f64),
                errors: f.errors,
                panics: f.panics,
                energy_low_j: None,
                energy_high_j: None,
                energy_by_domain: None,
                gpu: false,
                method: None,
            }),
        }
    }
}
