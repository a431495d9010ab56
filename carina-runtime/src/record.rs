//! Run-file records, schema 1 (see `docs/FORMAT.md`).
//!
//! One JSON object per line. Times inside a run are seconds since the run's start; wall-clock
//! times are RFC 3339 UTC; energy is in joules; emissions in grams CO2e. Readers ignore unknown
//! fields and unknown `type`s, so fields may be added without a schema change.

use carina_core::units::{GramsCo2e, Joules, Seconds, Watts};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Current schema version written in `run_start.schema`.
pub const SCHEMA: u32 = 1;

/// Any line of a run file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)]
#[non_exhaustive]
pub enum Record {
    /// First line of every run file.
    RunStart(RunStart),
    /// One step instance.
    Step(StepRecord),
    /// Aggregate over all instances of one step name, written at the end.
    StepSummary(StepSummary),
    /// Last line of a run that finished; absent when the process crashed.
    RunEnd(RunEnd),
    /// Names a thread index used by `step.thread`, written when the thread's first step is seen.
    Thread(ThreadInfo),
    /// A change of execution mode (peak/off-peak, allowed concurrency) made by a governor.
    Control(ControlRecord),
    /// The run's energy over one window of about a second: the power timeline.
    Power(PowerRecord),
    /// A record type this reader does not know (written by a newer Carina); ignored.
    #[serde(other)]
    Unknown,
}

/// Whether an energy figure was measured by a hardware counter or estimated by a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnergyKind {
    /// Read from a hardware energy counter (RAPL, NVML).
    Measured,
    /// Computed by a power model from utilisation; see `docs/ENERGY.md`.
    Estimated,
}

impl EnergyKind {
    /// `measured` or `estimated`, as written in run files and shown in every output.
    pub fn as_str(self) -> &'static str {
        match self {
            EnergyKind::Measured => "measured",
            EnergyKind::Estimated => "estimated",
        }
    }
}

impl EnergyKind {
    /// The kind of a run's figures from its sources: `measured` only when at least one source
    /// is used and every used source is measured; a single estimated part (a GPU seen but not
    /// measured, the model) makes the whole figure an estimate. Sources not used are ignored.
    pub fn of_sources<'a>(sources: impl IntoIterator<Item = &'a EnergySource>) -> EnergyKind {
        let mut used = sources.into_iter().filter(|s| s.used).peekable();
        if used.peek().is_some() && used.all(|s| s.kind == EnergyKind::Measured) {
            EnergyKind::Measured
        } else {
            EnergyKind::Estimated
        }
    }
}

impl std::fmt::Display for EnergyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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

/// Whether every step instance is written, or only per-name summaries (`run_start.steps`:
/// `all` or `summary`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepDetail {
    /// One `step` record per instance, plus summaries.
    #[default]
    All,
    /// Only `step_summary` records (for very many, very short steps).
    Summary,
}

impl StepDetail {
    /// `all` or `summary`, as written in run files.
    pub fn as_str(self) -> &'static str {
        match self {
            StepDetail::All => "all",
            StepDetail::Summary => "summary",
        }
    }
}

impl std::fmt::Display for StepDetail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a probe's energy covers the whole machine or only this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProbeScope {
    /// Whole-machine energy; in `process` scope the run takes its CPU-time share.
    #[default]
    Host,
    /// Already this process's energy (e.g. a user-given constant power for the job).
    Process,
}

impl ProbeScope {
    /// `host` or `process`, as written in run files.
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeScope::Host => "host",
            ProbeScope::Process => "process",
        }
    }
}

impl std::fmt::Display for ProbeScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whose energy a run reports (`run_start.scope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunScope {
    /// This process's share of host energy, by CPU time.
    Process,
    /// A process tree's share (`carina run`: the command and every descendant), by CPU time.
    ProcessTree,
    /// All energy the sources report for the machine.
    Host,
    /// A value this version does not know (written by a newer Carina; shown as `unknown`).
    #[serde(other)]
    Unknown,
}

impl RunScope {
    /// `process`, `process-tree` or `host`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunScope::Process => "process",
            RunScope::ProcessTree => "process-tree",
            RunScope::Host => "host",
            RunScope::Unknown => "unknown",
        }
    }

    /// Whether the run reports a share of host energy (process or process tree).
    pub fn is_share(self) -> bool {
        matches!(self, RunScope::Process | RunScope::ProcessTree)
    }
}

impl std::fmt::Display for RunScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a run's energy was split across threads (`run_end.attribution`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Attribution {
    /// By each thread's CPU time in the interval (thread CPU clocks were readable).
    CpuTime,
    /// Evenly over busy thread time (no CPU clocks).
    WallTime,
    /// A value this version does not know (written by a newer Carina; shown as `unknown`).
    #[serde(other)]
    Unknown,
}

impl Attribution {
    /// `cpu-time` or `wall-time`.
    pub fn as_str(self) -> &'static str {
        match self {
            Attribution::CpuTime => "cpu-time",
            Attribution::WallTime => "wall-time",
            Attribution::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for Attribution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the CPU energy of threads that never mark a step goes (`run_end.unmarked_threads`).
///
/// Threads that never open a step (a BLAS or PyTorch intra-op pool, a rayon pool working for a
/// step marked on another thread, a logger) still use CPU time in the run's process. By default
/// their share of each interval's CPU energy is `unattributed`; with `open-steps` it goes to the
/// steps open in that interval on any thread, by wall-time overlap, as work done on their behalf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnmarkedThreads {
    /// Their share is reported as `unattributed_j` (the default in Rust).
    #[default]
    Unattributed,
    /// Their share goes to the steps open at the time, by wall-time overlap (the default in
    /// Python, whose heavy work runs in native thread pools it cannot mark).
    OpenSteps,
    /// A value this version does not know (written by a newer Carina; shown as `unknown`).
    #[serde(other)]
    Unknown,
}

impl UnmarkedThreads {
    /// `unattributed`, `open-steps` or `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            UnmarkedThreads::Unattributed => "unattributed",
            UnmarkedThreads::OpenSteps => "open-steps",
            UnmarkedThreads::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for UnmarkedThreads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a governor is doing (`control.mode`); defined in `carina-core` because the recorder's
/// control events carry it.
pub use carina_core::ControlMode;

/// How a source obtains its energy (`energy_sources[].basis`, `run_end.method.parts[].basis`).
///
/// Independent of [`EnergyKind`], which stays `measured` or `estimated` for today's readers:
/// the basis says *which* measurement or estimate a figure rests on, and whether it was
/// apportioned ([`ShareRule`]) before it reached the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Basis {
    /// The difference of a hardware energy counter (RAPL, NVML's total-energy counter).
    Counter,
    /// Power samples integrated over time (NVML without an energy counter): misses what
    /// changes between two samples.
    IntegratedPower,
    /// A power model from utilisation and published coefficients (`docs/ENERGY.md`).
    Model,
    /// Watts the user gave for the job (`.constant_watts`), times its duration.
    UserConstant,
    /// A value this version does not know (written by a newer Carina).
    #[serde(other)]
    Unknown,
}

impl Basis {
    /// `counter`, `integrated-power`, `model`, `user-constant`.
    pub fn as_str(self) -> &'static str {
        match self {
            Basis::Counter => "counter",
            Basis::IntegratedPower => "integrated-power",
            Basis::Model => "model",
            Basis::UserConstant => "user-constant",
            Basis::Unknown => "unknown",
        }
    }

    /// Words for labels: `counter`, `integrated power`, `model`, `user constant`.
    pub fn words(self) -> &'static str {
        match self {
            Basis::Counter => "counter",
            Basis::IntegratedPower => "integrated power",
            Basis::Model => "model",
            Basis::UserConstant => "user constant",
            Basis::Unknown => "unknown",
        }
    }

    /// The basis a source of this kind has when it does not say (files of earlier versions).
    pub fn of_kind(kind: EnergyKind) -> Basis {
        match kind {
            EnergyKind::Measured => Basis::Counter,
            EnergyKind::Estimated => Basis::Model,
        }
    }

    /// What limits a figure of this basis, in one line (`docs/ENERGY.md`, "Error sources").
    pub fn error_note(self) -> &'static str {
        match self {
            Basis::Counter => {
                "hardware counter: RAPL covers package and DRAM only (no fans, disks, PSU losses) and is itself a model on pre-Haswell Intel parts; NVML counts the board"
            }
            Basis::IntegratedPower => {
                "power samples integrated by the trapezoid rule at the sampling interval: load changes between two samples are missed (+50 % seen on a 300/100 W square wave sampled at 100 ms)"
            }
            Basis::Model => {
                "estimate from fleet-average coefficients: treat as +-30 % or worse; the band shows the spread of published coefficients"
            }
            Basis::UserConstant => "as accurate as the watts given",
            Basis::Unknown => "written by a newer Carina",
        }
    }
}

impl std::fmt::Display for Basis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a whole-machine figure was reduced to the run's share, or a run's figure split across
/// steps (`run_end.method.parts[].shares`, `step_summary.method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ShareRule {
    /// The run's CPU time over the host's busy CPU time (`/proc/stat`), per interval.
    CpuTime,
    /// The run's part of a GPU's users' SM utilisation (NVML process samples), per interval.
    GpuUse,
    /// The run's processes over all processes using a GPU (the driver had no utilisation).
    Count,
    /// A value this version does not know.
    #[serde(other)]
    Unknown,
}

impl ShareRule {
    /// `cpu-time`, `gpu-use`, `count`.
    pub fn as_str(self) -> &'static str {
        match self {
            ShareRule::CpuTime => "cpu-time",
            ShareRule::GpuUse => "gpu-use",
            ShareRule::Count => "count",
            ShareRule::Unknown => "unknown",
        }
    }

    /// What limits a share of this rule, in one line.
    pub fn error_note(self) -> &'static str {
        match self {
            ShareRule::CpuTime => {
                "cpu-time share: idle and uncore power charged by CPU time; the host side moves in 10 ms ticks"
            }
            ShareRule::GpuUse => {
                "gpu-use share: SM utilisation is time, not power; memory-bound work is under-weighted"
            }
            ShareRule::Count => "count share: every process using the GPU weighs the same",
            ShareRule::Unknown => "written by a newer Carina",
        }
    }
}

impl std::fmt::Display for ShareRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a domain name is a GPU's (`gpu-N` from NVML, `gpu` from the model, possibly
/// prefixed with its source's name as `<source>:gpu`). A GPU domain's energy inside a run
/// follows the GPU steps, not the CPU time (`docs/ENERGY.md`).
pub fn is_gpu_domain(name: &str) -> bool {
    let d = name.rsplit(':').next().unwrap_or(name);
    d == "gpu"
        || d.strip_prefix("gpu-")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// How the run's figure was obtained (`run_end.method`): one part per source and basis, each
/// with the energy it contributed and the share rules that reduced it to the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Method {
    /// In words, e.g. `counter x cpu-time share` or `counter (rapl-powercap) + integrated power
    /// x gpu-use share (nvml)`. `counter` alone means a hardware counter read in host scope.
    pub label: String,
    /// The run's energy by source and basis.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<MethodPart>,
    /// True when some interval was counted low (ambiguous counter wraps, a reset, a counter that
    /// stopped): the figure is a lower bound, and `run_end.warnings` says why.
    #[serde(default, skip_serializing_if = "is_false")]
    pub lower_bound: bool,
    /// What limits each part, one line per basis and share rule used.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// One source's (and basis's) contribution to the run (`run_end.method.parts[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MethodPart {
    /// The source's name (`energy_sources[].name`).
    pub source: String,
    /// How the source obtained this energy.
    pub basis: Basis,
    /// Energy in the run's scope, joules.
    pub energy_j: Joules,
    /// Of `energy_j`, joules that reached the run through each share rule; energy taken whole
    /// (host scope, a process-scoped source, a GPU only the run used) is in no share.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub shares: BTreeMap<ShareRule, Joules>,
    /// The PUE the source's figures were multiplied by, when not 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pue: Option<f64>,
}

impl MethodPart {
    /// `energy_j` from `source` obtained by `basis`, taken whole (add shares with
    /// [`with_share`](Self::with_share)).
    pub fn new(source: impl Into<String>, basis: Basis, energy_j: Joules) -> Self {
        MethodPart {
            source: source.into(),
            basis,
            energy_j,
            shares: BTreeMap::new(),
            pue: None,
        }
    }

    /// Says that `j` of the part reached the run through `rule` (builder style).
    pub fn with_share(mut self, rule: ShareRule, j: Joules) -> Self {
        *self.shares.entry(rule).or_insert(Joules::ZERO) += j;
        self
    }

    /// Sets the PUE the part's figures were multiplied by (builder style).
    pub fn with_pue(mut self, pue: Option<f64>) -> Self {
        self.pue = pue;
        self
    }

    /// `counter`, `counter x cpu-time share`, `integrated power x gpu-use/count share x PUE 1.2`.
    pub fn label(&self) -> String {
        let mut s = self.basis.words().to_owned();
        // Shares that carried a negligible part of the energy do not name the method.
        let total: f64 = self.shares.values().map(|j| j.0).sum();
        let rules: Vec<&str> = self
            .shares
            .iter()
            .filter(|(_, j)| j.0 > 0.0 || total == 0.0)
            .map(|(r, _)| r.as_str())
            .collect();
        if !rules.is_empty() {
            s.push_str(&format!(" x {} share", rules.join("/")));
        }
        if let Some(p) = self.pue {
            s.push_str(&format!(" x PUE {p}"));
        }
        s
    }
}

impl Method {
    /// A method from its parts: the label joins the parts' labels (with their source names
    /// when there are several sources) and the notes list each basis and share rule once.
    pub fn from_parts(parts: Vec<MethodPart>, lower_bound: bool) -> Method {
        let mut sources: Vec<&str> = parts.iter().map(|p| p.source.as_str()).collect();
        sources.dedup();
        let named = sources.len() > 1;
        let mut labels: Vec<String> = Vec::new();
        for p in &parts {
            let l = if named {
                format!("{} ({})", p.label(), p.source)
            } else {
                p.label()
            };
            if !labels.contains(&l) {
                labels.push(l);
            }
        }
        let mut label = if labels.is_empty() {
            "no source".to_owned()
        } else {
            labels.join(" + ")
        };
        if lower_bound {
            label.push_str(", lower bound");
        }
        let mut notes: Vec<String> = Vec::new();
        let mut bases: Vec<Basis> = parts.iter().map(|p| p.basis).collect();
        bases.sort();
        bases.dedup();
        notes.extend(bases.iter().map(|b| b.error_note().to_owned()));
        let mut rules: Vec<ShareRule> = parts
            .iter()
            .flat_map(|p| p.shares.keys().copied())
            .collect();
        rules.sort();
        rules.dedup();
        notes.extend(rules.iter().map(|r| r.error_note().to_owned()));
        Method {
            label,
            parts,
            lower_bound,
            notes,
        }
    }

    /// The method of a file that does not record one (`run_end.method` is absent: a file of an
    /// earlier version, or a run that crashed before `run_end`), from its sources and scope.
    ///
    /// Each used source is one part of its basis ([`EnergySource::basis`]: as written, else from
    /// its kind). A host-scope source in a run that reports a share (`process`, `process-tree`,
    /// and files too old to state their scope, whose default was `process`) reached the run
    /// through a share: `cpu-time` for CPU and memory sources; for a source whose domains are all
    /// GPUs the file does not say which rule was used (GPU use, process count, or the CPU-time
    /// fallback of earlier versions), so all three are named. The parts carry no energy (the file
    /// does not split it) and the method is never a lower bound (nothing says so).
    pub fn derived(sources: &[EnergySource], scope: Option<RunScope>) -> Method {
        let share = scope != Some(RunScope::Host);
        let parts = sources
            .iter()
            .filter(|s| s.used)
            .map(|s| {
                let mut shares = BTreeMap::new();
                if share && s.scope == ProbeScope::Host {
                    let gpu = !s.domains.is_empty() && s.domains.iter().all(|d| is_gpu_domain(d));
                    let rules: &[ShareRule] = if gpu {
                        &[ShareRule::CpuTime, ShareRule::GpuUse, ShareRule::Count]
                    } else {
                        &[ShareRule::CpuTime]
                    };
                    for r in rules {
                        shares.insert(*r, Joules::ZERO);
                    }
                }
                MethodPart {
                    source: s.name.clone(),
                    basis: s.basis(),
                    energy_j: Joules::ZERO,
                    shares,
                    pue: s.pue,
                }
            })
            .collect();
        Method::from_parts(parts, false)
    }

    /// The kind in two words, for a column header or a badge, where the method does not fit:
    /// `measured` only for a plain counter in host scope ([`Method::is_plain_counter`]); a measured
    /// figure obtained otherwise says what was done to the counter (`measured x share`, `measured,
    /// integrated`, `measured x PUE`); an estimate is `estimated`; either ends in `, lower bound`
    /// when some interval was counted low (rare, and worth the wider header).
    pub fn kind_tag(&self, kind: EnergyKind) -> String {
        let m = self;
        if kind == EnergyKind::Measured && m.is_plain_counter() {
            return "measured".into();
        }
        let mut t = kind.as_str().to_owned();
        if kind == EnergyKind::Measured {
            if m.parts.iter().any(|p| !p.shares.is_empty()) {
                t.push_str(" x share");
            }
            if m.parts.iter().any(|p| p.basis == Basis::IntegratedPower) {
                t.push_str(", integrated");
            }
            if m.parts.iter().any(|p| p.pue.is_some()) {
                t.push_str(" x PUE");
            }
        }
        if m.lower_bound {
            t.push_str(", lower bound");
        }
        t
    }

    /// The kind and the method's label, for text with room for both: `measured (counter)`,
    /// `measured (counter x cpu-time share)`, `estimated (model x cpu-time share, lower bound)`.
    pub fn kind_and_label(&self, kind: EnergyKind) -> String {
        format!("{} ({})", kind.as_str(), self.label)
    }

    /// Whether the figure is a plain counter reading of the whole machine (the only method
    /// shown as `measured` alone).
    pub fn is_plain_counter(&self) -> bool {
        !self.lower_bound
            && !self.parts.is_empty()
            && self
                .parts
                .iter()
                .all(|p| p.basis == Basis::Counter && p.shares.is_empty() && p.pue.is_none())
    }
}

/// What Carina itself cost the run (`run_end.own_cost`): its aggregator thread, the steps'
/// recording, and what it wrote. Part of the run's energy, like any other work of the process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OwnCost {
    /// CPU time of the aggregator thread (its own CPU clock), seconds.
    pub aggregator_cpu_s: Seconds,
    /// The aggregator's energy: per interval, its CPU time at the run's CPU-side energy per
    /// CPU-second (the share target's: this process, or `carina run`'s process tree), joules.
    /// Part of the run's energy in a library run; on top of it under `carina run`, whose
    /// aggregator is outside the measured tree.
    pub aggregator_energy_j: Joules,
    /// Cost of one step (enter and exit) on the application thread, nanoseconds, calibrated
    /// when the run started (a loop of step pairs into a private buffer, timed with the TSC).
    pub step_cost_ns: f64,
    /// Steps recorded (and folded) times `step_cost_ns`: the CPU time the steps cost the
    /// application threads, seconds (an estimate).
    pub steps_cpu_s: Seconds,
    /// The energy of `steps_cpu_s` at the run's mean energy per CPU-second, joules (an estimate).
    pub steps_energy_j: Joules,
    /// Bytes the run file received (records and newlines).
    pub bytes_written: u64,
    /// `(aggregator_cpu_s + steps_cpu_s)` over the run's CPU time (the share target's, plus the
    /// aggregator's when it is outside the target), in `[0, 1]`.
    pub cpu_share: f64,
}

impl OwnCost {
    /// Aggregator and steps together, joules.
    pub fn energy_j(&self) -> Joules {
        self.aggregator_energy_j + self.steps_energy_j
    }
}

/// Which energy source a name stands for: Carina's own sources typed, any other name (a custom
/// probe's) kept as written.
///
/// Written as the names run files have always used ([`as_str`](Self::as_str)); reading never
/// fails ([`parse`](Self::parse)): an unknown name is [`Other`](Self::Other). Two ids are equal
/// when their names are, so `Other("nvml")` built by hand equals [`Nvml`](Self::Nvml); build
/// ids with `parse` (or `From<&str>`) and they are always the typed variant.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SourceId {
    /// RAPL through perf_event's `power` PMU: `rapl-perf`.
    RaplPerf,
    /// RAPL through the powercap sysfs tree: `rapl-powercap`.
    RaplPowercap,
    /// NVIDIA GPUs through NVML: `nvml`.
    Nvml,
    /// The estimation model: `model`.
    Model,
    /// Watts the user gave for the job: `constant`.
    Constant,
    /// Any other name, e.g. a custom probe's.
    Other(String),
}

impl SourceId {
    /// Carina's own sources, in the order tools list them (CPU counters first, the model last).
    pub const KNOWN: [SourceId; 5] = [
        SourceId::RaplPerf,
        SourceId::RaplPowercap,
        SourceId::Nvml,
        SourceId::Model,
        SourceId::Constant,
    ];

    /// The name in run files: `rapl-perf`, `rapl-powercap`, `nvml`, `model`, `constant`, or the
    /// other name as given.
    pub fn as_str(&self) -> &str {
        match self {
            SourceId::RaplPerf => "rapl-perf",
            SourceId::RaplPowercap => "rapl-powercap",
            SourceId::Nvml => "nvml",
            SourceId::Model => "model",
            SourceId::Constant => "constant",
            SourceId::Other(name) => name,
        }
    }

    /// The id of a name as written in a run file; never fails (unknown names are
    /// [`Other`](Self::Other)).
    pub fn parse(name: &str) -> SourceId {
        Self::KNOWN
            .into_iter()
            .find(|k| k.as_str() == name)
            .unwrap_or_else(|| SourceId::Other(name.to_owned()))
    }

    /// Its place in [`KNOWN`](Self::KNOWN); `None` for other names.
    pub fn known_index(&self) -> Option<usize> {
        Self::KNOWN.iter().position(|k| k == self)
    }
}

impl PartialEq for SourceId {
    fn eq(&self, other: &SourceId) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for SourceId {}

impl std::hash::Hash for SourceId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl PartialEq<str> for SourceId {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for SourceId {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Display for SourceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SourceId {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<SourceId, Self::Err> {
        Ok(SourceId::parse(s))
    }
}

impl From<&str> for SourceId {
    fn from(name: &str) -> SourceId {
        SourceId::parse(name)
    }
}

impl From<String> for SourceId {
    fn from(name: String) -> SourceId {
        match SourceId::parse(&name) {
            SourceId::Other(_) => SourceId::Other(name),
            known => known,
        }
    }
}

impl From<SourceId> for String {
    fn from(id: SourceId) -> String {
        match id {
            SourceId::Other(name) => name,
            known => known.as_str().to_owned(),
        }
    }
}

impl Serialize for SourceId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SourceId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<SourceId, D::Error> {
        String::deserialize(d).map(SourceId::from)
    }
}

#[cfg(test)]
mod source_id_tests {
    use super::*;

    #[test]
    fn known_names_round_trip_as_the_words_run_files_use() {
        for (id, word) in
            SourceId::KNOWN
                .iter()
                .zip(["rapl-perf", "rapl-powercap", "nvml", "model", "constant"])
        {
            assert_eq!(id.as_str(), word);
            assert_eq!(SourceId::parse(word), *id);
            let json = serde_json::to_string(id).unwrap();
            assert_eq!(json, format!("\"{word}\""));
            assert_eq!(serde_json::from_str::<SourceId>(&json).unwrap(), *id);
        }
        assert!(matches!(SourceId::parse("nvml"), SourceId::Nvml));
        assert!(matches!(
            SourceId::from("rapl-perf".to_owned()),
            SourceId::RaplPerf
        ));
        assert_eq!(String::from(SourceId::Model), "model");
    }

    #[test]
    fn other_names_are_kept_and_equal_by_name() {
        let id = SourceId::parse("fake-gpu");
        assert!(matches!(&id, SourceId::Other(n) if n == "fake-gpu"));
        assert_eq!(id.known_index(), None);
        assert_eq!(id, "fake-gpu");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"fake-gpu\"");
        // Built by hand with a known name, it is still that source.
        assert_eq!(SourceId::Other("nvml".into()), SourceId::Nvml);
        assert_eq!(SourceId::Nvml.known_index(), Some(2));
    }

    #[test]
    fn a_source_not_used_carries_its_fix_and_older_files_read_without_one() {
        let s = EnergySource::not_used(SourceId::RaplPowercap, EnergyKind::Measured, "no zones")
            .with_fix(Some("modprobe".into()));
        assert_eq!(s.id(), SourceId::RaplPowercap);
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["name"], "rapl-powercap");
        assert_eq!(v["reason"], "no zones");
        assert_eq!(v["fix"], "modprobe");
        // No fix: no field.
        let v = serde_json::to_value(EnergySource::not_used("nvml", EnergyKind::Measured, "x"))
            .unwrap();
        assert!(v.get("fix").is_none(), "{v}");
        let old: EnergySource = serde_json::from_str(
            r#"{"name":"rapl-perf","kind":"measured","source":"","used":false,"reason":"no PMU"}"#,
        )
        .unwrap();
        assert_eq!((old.id(), old.fix), (SourceId::RaplPerf, None));
    }
}

/// An energy source used by the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EnergySource {
    /// Short name, e.g. `rapl-perf`, `model`, `constant` ([`SourceId::as_str`]); typed by
    /// [`id`](Self::id).
    pub name: String,
    /// Measured or estimated.
    pub kind: EnergyKind,
    /// Where the numbers come from (coefficient table and row, counter path, user setting).
    pub source: String,
    /// Energy domains this source reports (e.g. `cpu`, `package-0`).
    #[serde(default)]
    pub domains: Vec<String>,
    /// `host` when the source measures the whole machine (the run's share is taken by CPU
    /// time), `process` when it already describes this process.
    #[serde(default)]
    pub scope: ProbeScope,
    /// Model parameters, when estimated: machine idle watts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_w: Option<Watts>,
    /// Model parameters, when estimated: machine watts at full utilisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_w: Option<Watts>,
    /// Whether the run uses this source. Sources that were considered and not used are listed
    /// too, with `used: false`, the `reason` and, when one exists, the `fix`.
    #[serde(default = "default_true")]
    pub used: bool,
    /// Why the source is not used, or what limits it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What would make a source that is not used usable: a command or setting, given by the
    /// probe with its reason, never contradicting it. Absent when nothing on the machine would
    /// help, when nothing is wrong (a better source is used), and in files of earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// Devices behind the source (GPUs, sockets), when it has several.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceInfo>,
    /// How the source obtains its energy at the run's start; absent in files of earlier
    /// versions (read as `counter` for `measured`, `model` for `estimated`: [`Self::basis`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basis: Option<Basis>,
    /// The PUE its figures are multiplied by, when not 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pue: Option<f64>,
}

/// One device behind an energy source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeviceInfo {
    /// Index as the driver numbers it.
    pub index: u32,
    /// Product name.
    pub name: String,
    /// Stable identifier (a GPU's UUID), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
}

impl DeviceInfo {
    /// A device by its index, name and (if any) stable identifier.
    pub fn new(index: u32, name: impl Into<String>, uuid: Option<String>) -> Self {
        DeviceInfo {
            index,
            name: name.into(),
            uuid,
        }
    }
}

impl EnergySource {
    /// A used source with no domains, model parameters or devices; fill the rest as needed.
    pub fn new(name: impl Into<String>, kind: EnergyKind, source: impl Into<String>) -> Self {
        EnergySource {
            name: name.into(),
            kind,
            source: source.into(),
            domains: Vec::new(),
            scope: ProbeScope::Host,
            idle_w: None,
            max_w: None,
            used: true,
            reason: None,
            fix: None,
            devices: Vec::new(),
            basis: Some(Basis::of_kind(kind)),
            pue: None,
        }
    }

    /// The typed name ([`SourceId::parse`] of [`name`](Self::name)).
    pub fn id(&self) -> SourceId {
        SourceId::parse(&self.name)
    }

    /// The source's basis: as written, else from its kind.
    pub fn basis(&self) -> Basis {
        self.basis.unwrap_or(Basis::of_kind(self.kind))
    }

    /// Sets the domains, in the order the source's reads fill them (builder style).
    pub fn with_domains<S: Into<String>>(mut self, domains: impl IntoIterator<Item = S>) -> Self {
        self.domains = domains.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the basis (builder style).
    pub fn with_basis(mut self, basis: Basis) -> Self {
        self.basis = Some(basis);
        self
    }

    /// A source that was considered and not used, with the reason (and no fix: see
    /// [`with_fix`](Self::with_fix)).
    pub fn not_used(name: impl Into<String>, kind: EnergyKind, reason: impl Into<String>) -> Self {
        let mut s = Self::new(name, kind, "");
        s.used = false;
        s.reason = Some(reason.into());
        s
    }

    /// Sets what would make the source usable (builder style); `None` for no fix.
    pub fn with_fix(mut self, fix: Option<String>) -> Self {
        self.fix = fix;
        self
    }
}

fn default_true() -> bool {
    true
}

/// The grid emission factor applied to the run's energy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CarbonInfo {
    /// Grams CO2e per kWh.
    pub g_per_kwh: f64,
    /// Grid zone (ISO 3166-1 alpha-2, `WORLD`, `EU`), or null for a user-given factor.
    pub zone: Option<String>,
    /// Where the factor comes from.
    pub source: String,
    /// Path of the time-varying intensity series, when one is used (then `g_per_kwh` is its
    /// mean and each interval uses the series' value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<String>,
}

/// `run_start` record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunStart {
    /// Always [`SCHEMA`] for files written by this version.
    pub schema: u32,
    /// Unique id of this run; also the file's stem.
    pub run_id: String,
    /// Job name given to `Run::builder`.
    pub job: String,
    /// Host name.
    pub host: String,
    /// Process id.
    pub pid: u32,
    /// Wall-clock start, RFC 3339 UTC.
    pub started_at: jiff::Timestamp,
    /// Energy sources used by this run.
    pub energy_sources: Vec<EnergySource>,
    /// Emission factor.
    pub carbon: CarbonInfo,
    /// `all` (one `step` record per instance) or `summary` (summaries only); absent in files of
    /// early versions.
    #[serde(default)]
    pub steps: Option<StepDetail>,
    /// Energy sampling interval, seconds.
    #[serde(default)]
    pub sample_interval_s: Seconds,
    /// Whose energy the run reports; absent in files of early versions.
    #[serde(default)]
    pub scope: Option<RunScope>,
    /// Carina version that wrote the file.
    #[serde(default)]
    pub carina_version: String,
}

/// How a step ended, as written in run files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    /// Returned normally (or, for an `unfinished` step, still open when the run ended).
    Ok,
    /// Returned an error, was marked as failed, or (async) was cancelled.
    Error,
    /// Its guard was dropped during a panic.
    Panicked,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// `step` record: one step instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StepRecord {
    /// Step name. Borrowed from the call site's `&'static str` when written (no allocation per
    /// record), owned when read back.
    pub name: Cow<'static, str>,
    /// Id, unique within the run (starts at 1).
    pub id: u64,
    /// Id of the enclosing step on the same thread, or null.
    pub parent: Option<u64>,
    /// Index of the thread that ran it, in order of first step (0-based).
    pub thread: u32,
    /// Start, seconds since run start.
    pub start_s: Seconds,
    /// End, seconds since run start.
    pub end_s: Seconds,
    /// Items processed.
    pub items: u64,
    /// How it ended.
    pub status: StepStatus,
    /// Energy attributed to this step including its children, joules.
    pub energy_j: Joules,
    /// Energy attributed to this step excluding its children, joules.
    pub self_energy_j: Joules,
    /// Emissions of `energy_j`, grams CO2e.
    pub co2e_g: GramsCo2e,
    /// True when the step was still open when the run finished (then `end_s` is the run's end).
    #[serde(default, skip_serializing_if = "is_false")]
    pub unfinished: bool,
    /// True for an async step cancelled (its future dropped) before completion.
    #[serde(default, skip_serializing_if = "is_false")]
    pub cancelled: bool,
    /// True for an `async fn` step (its energy covers only the time it was polled).
    #[serde(default, skip_serializing_if = "is_false")]
    pub r#async: bool,
    /// True when the step was shorter than the sampling interval: its energy is the
    /// interval's mean power over its duration (interpolated), not a difference of readings.
    #[serde(default, skip_serializing_if = "is_false")]
    pub short: bool,
    /// Low bound of `energy_j` when the energy is an estimate, joules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_low_j: Option<Joules>,
    /// High bound of `energy_j` when the energy is an estimate, joules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_high_j: Option<Joules>,
    /// `energy_j` per energy domain (e.g. `package-0`, `dram-0`, `gpu-0`), joules; present when
    /// the run has more than one domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_by_domain: Option<DomainEnergy>,
    /// True for a GPU step (`#[carina::step(gpu)]`, `carina::gpu_step`, `Step::gpu`): GPU
    /// energy goes to the GPU steps open in an interval, by wall-time overlap, whatever their
    /// thread's CPU time.
    #[serde(default, skip_serializing_if = "is_false")]
    pub gpu: bool,
    /// The step's attributes, `key: value` strings: the span fields listed with
    /// `carina_tracing::CarinaLayer::attributes` (numbers and booleans written as text). Absent
    /// when the step has none, and in files of earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attrs: Option<StepAttrs>,
}

/// Most combinations of attributes kept per step name in its `step_summary` (`by_attrs`):
/// bounded memory whatever the values (a request id as an attribute makes one combination per
/// instance). Instances with attributes beyond it count in the name's totals and in
/// `attrs_folded`, and the run's warnings say how many.
pub const MAX_ATTR_GROUPS: usize = 64;

/// A step's attributes, by key (sorted, so that a combination has one spelling).
pub type StepAttrs = std::collections::BTreeMap<String, String>;

/// One combination of attributes within a `step_summary` record: the instances of that name
/// written with exactly these attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AttrsSummary {
    /// The attributes.
    pub attrs: StepAttrs,
    /// Number of instances.
    pub count: u64,
    /// Sum of instance durations, seconds.
    pub wall_s: Seconds,
    /// Sum of items.
    pub items: u64,
    /// Sum of inclusive energy, joules.
    pub energy_j: Joules,
    /// Sum of exclusive energy, joules.
    pub self_energy_j: Joules,
    /// Emissions of `energy_j`, grams CO2e.
    pub co2e_g: GramsCo2e,
    /// Instances that ended with `error` or `panicked`.
    #[serde(default)]
    pub errors: u64,
}

impl AttrsSummary {
    /// An empty combination (no instance yet).
    pub fn new(attrs: StepAttrs) -> Self {
        AttrsSummary {
            attrs,
            count: 0,
            wall_s: Seconds::ZERO,
            items: 0,
            energy_j: Joules::ZERO,
            self_energy_j: Joules::ZERO,
            co2e_g: GramsCo2e::ZERO,
            errors: 0,
        }
    }
}

/// `control` record: the governor changed mode or allowed concurrency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ControlRecord {
    /// Seconds since the run's start.
    pub t_s: Seconds,
    /// Wall-clock time, RFC 3339 UTC.
    pub at: jiff::Timestamp,
    /// Policy name: `baseline`, `throttle`, `offpeak-boost`, `defer`.
    pub policy: String,
    /// Mode entered.
    pub mode: ControlMode,
    /// Concurrency allowed from now on (0 = paused).
    pub allowed: u32,
    /// The nominal concurrency the policy scales.
    pub nominal: u32,
    /// Why, in words (e.g. "peak window Mon-Fri 08:00-20:00 Europe/Berlin").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The peak window `at` lies in (then `start` is `at`), else the next one, from the
    /// governor's calendar; absent when it knows none ahead, and in files of earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_peak: Option<PeakWindowAt>,
}

/// `control.next_peak`: a peak window in wall-clock time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PeakWindowAt {
    /// Its start, RFC 3339 UTC.
    pub start: jiff::Timestamp,
    /// Its end (the first instant off-peak), RFC 3339 UTC.
    pub end: jiff::Timestamp,
}

/// `power` record: the energy of one window of the run (about one second: the sampling ticks
/// are coalesced until at least a second has passed), whether or not any step was open. The
/// windows tile the run from its start to its end, so their `energy_j` sum to
/// `run_end.energy_j`; `energy_j / (end_s - start_s)` is the mean power in the run's scope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PowerRecord {
    /// Window start, seconds since the run's start (the steps' time base).
    pub start_s: Seconds,
    /// Window end, seconds since the run's start.
    pub end_s: Seconds,
    /// Energy in the run's scope over the window, J.
    pub energy_j: Joules,
    /// Emissions of that energy, g CO2e (at the intensity of the window).
    pub co2e_g: GramsCo2e,
    /// Low bound of `energy_j` when the energy is estimated, J.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_low_j: Option<Joules>,
    /// High bound of `energy_j` when the energy is estimated, J.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_high_j: Option<Joules>,
}

impl PowerRecord {
    /// A window from `start_s` to `end_s` with its energy and emissions, no band.
    pub fn new(start_s: Seconds, end_s: Seconds, energy_j: Joules, co2e_g: GramsCo2e) -> Self {
        PowerRecord {
            start_s,
            end_s,
            energy_j,
            co2e_g,
            energy_low_j: None,
            energy_high_j: None,
        }
    }
}

/// `thread` record: maps a thread index to its name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ThreadInfo {
    /// Index used in `step.thread`.
    pub index: u32,
    /// The thread's name, if it has one.
    pub name: Option<String>,
}

impl ThreadInfo {
    /// The thread numbered `index` in the run, with its name if it has one.
    pub fn new(index: u32, name: Option<String>) -> Self {
        ThreadInfo { index, name }
    }
}

/// `step_summary` record: all instances of one step name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StepSummary {
    /// Step name.
    pub name: String,
    /// Number of instances.
    pub count: u64,
    /// Sum of instance durations, seconds.
    pub wall_s: Seconds,
    /// Sum of durations excluding child steps, seconds.
    pub self_wall_s: Seconds,
    /// Sum of items.
    pub items: u64,
    /// Sum of inclusive energy, joules.
    pub energy_j: Joules,
    /// Sum of exclusive energy, joules.
    pub self_energy_j: Joules,
    /// Emissions of `energy_j`, grams CO2e.
    pub co2e_g: GramsCo2e,
    /// Median instance duration, seconds (log-bucketed, relative error below 1.6 %).
    pub p50_s: f64,
    /// 95th-percentile instance duration, seconds (same precision).
    pub p95_s: f64,
    /// Longest instance duration, seconds (exact).
    pub max_s: Seconds,
    /// Instances that ended with `error`.
    #[serde(default)]
    pub errors: u64,
    /// Instances that ended with `panicked`.
    #[serde(default)]
    pub panics: u64,
    /// Low bound of `energy_j` for estimates, joules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_low_j: Option<Joules>,
    /// High bound of `energy_j` for estimates, joules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_high_j: Option<Joules>,
    /// `energy_j` per domain, joules, when there is more than one domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_by_domain: Option<DomainEnergy>,
    /// True when some instance was a GPU step.
    #[serde(default, skip_serializing_if = "is_false")]
    pub gpu: bool,
    /// How the step figures were obtained: the run's method (`run_end.method.label`), then how
    /// it was split across steps, e.g. `counter x cpu-time share; to steps by thread CPU time
    /// and wall time`. Absent in files of earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The instances with attributes, one entry per combination (sorted by attributes), at
    /// most [`MAX_ATTR_GROUPS`] per name: the totals above cover every instance, these the
    /// ones written with attributes; instances without attributes are the difference. Absent
    /// when no instance had attributes, and in files of earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by_attrs: Option<Vec<AttrsSummary>>,
    /// Instances with attributes that came after [`MAX_ATTR_GROUPS`] combinations of this name:
    /// counted in the totals above (and in a `run_end` warning), in no `by_attrs` entry.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attrs_folded: u64,
}

/// `run_end` record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunEnd {
    /// Wall-clock end, RFC 3339 UTC.
    pub ended_at: jiff::Timestamp,
    /// Run duration, seconds.
    pub wall_s: Seconds,
    /// Energy of the run in its scope (process share or host), joules.
    pub energy_j: Joules,
    /// Part of `energy_j` not attributed to any step, joules.
    pub unattributed_j: Joules,
    /// Emissions of `energy_j`, grams CO2e.
    pub co2e_g: GramsCo2e,
    /// Items of the run: the largest per-name item total, or the value set with `Run::set_items`.
    pub items: u64,
    /// Step instances recorded (counted in summaries).
    pub steps: u64,
    /// Step instances lost because a thread's buffer was full (not counted anywhere).
    pub dropped: u64,
    /// Step instances that found their thread's buffer full and were counted in the step
    /// summaries only (exact count, items, wall time; no record of their own). Absent when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub folded: u64,
    /// Step instances counted in summaries whose individual `step` record was not written
    /// (the aggregator's record queue was full).
    #[serde(default)]
    pub records_not_written: u64,
    /// Whole-machine energy over the run as seen by the energy sources, joules.
    #[serde(default)]
    pub host_energy_j: Joules,
    /// `measured` or `estimated`: the kind of `energy_j`.
    #[serde(default = "default_kind")]
    pub energy_kind: EnergyKind,
    /// Energy reads that failed (their intervals count as zero energy).
    #[serde(default)]
    pub probe_errors: u64,
    /// Records a sink failed to write (this file may lack them).
    #[serde(default)]
    pub sink_errors: u64,
    /// Low bound of `energy_j` for estimates, joules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_low_j: Option<Joules>,
    /// High bound of `energy_j` for estimates, joules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_high_j: Option<Joules>,
    /// `energy_j` per domain, joules, when there is more than one domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_by_domain: Option<DomainEnergy>,
    /// How energy was split across threads: `cpu-time` or `wall-time` (no CPU clocks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<Attribution>,
    /// Where the CPU energy of threads that never marked a step went (absent in files written
    /// before this field: `unattributed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmarked_threads: Option<UnmarkedThreads>,
    /// Problems the run met (an intensity series not covering the run, a failed sink...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// How `energy_j` was obtained, by source; absent in files of earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<Method>,
    /// The effective grid intensity: `co2e_g` over `energy_j` in kWh, g/kWh. With a
    /// time-varying series this is the energy-weighted mean, which `run_start.carbon.g_per_kwh`
    /// (the series' plain mean) is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carbon_g_per_kwh: Option<f64>,
    /// What Carina itself cost the run; absent in files of earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub own_cost: Option<OwnCost>,
}

fn default_kind() -> EnergyKind {
    EnergyKind::Estimated
}

impl StepStatus {
    /// The status as written in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Ok => "ok",
            StepStatus::Error => "error",
            StepStatus::Panicked => "panicked",
        }
    }
}

/// Most energy domains reported per figure; more are summed into the last, named `other`.
pub const MAX_DOMAINS: usize = 8;

/// Energy per domain, joules, written as a JSON object `{"package-0": 1.5, "dram-0": 0.2}`.
///
/// The domain names are shared by every record of a run, so building one costs no allocation
/// (the aggregator makes millions per second).
#[derive(Debug, Clone, PartialEq)]
pub struct DomainEnergy {
    names: Arc<[String]>,
    values: [f64; MAX_DOMAINS],
}

impl DomainEnergy {
    /// Pairs `names` (at most [`MAX_DOMAINS`]) with `values` in the same order.
    pub fn new(names: Arc<[String]>, values: &[f64]) -> Self {
        let mut v = [0.0; MAX_DOMAINS];
        for (slot, x) in v.iter_mut().zip(values) {
            *slot = *x;
        }
        DomainEnergy { names, values: v }
    }

    /// Energy of one domain.
    pub fn get(&self, name: &str) -> Option<Joules> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// `(domain, energy)` pairs in domain order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Joules)> {
        self.names
            .iter()
            .take(MAX_DOMAINS)
            .zip(self.values)
            .map(|(n, v)| (n.as_str(), Joules(v)))
    }

    /// The shared list of domain names.
    pub fn names(&self) -> Arc<[String]> {
        self.names.clone()
    }

    /// Number of domains.
    pub fn len(&self) -> usize {
        self.names.len().min(MAX_DOMAINS)
    }

    /// Whether there are no domains.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::ops::Index<&str> for DomainEnergy {
    type Output = f64;
    fn index(&self, name: &str) -> &f64 {
        let i = self
            .names
            .iter()
            .take(MAX_DOMAINS)
            .position(|n| n == name)
            .unwrap_or_else(|| panic!("no energy domain named {name:?}"));
        &self.values[i]
    }
}

impl Serialize for DomainEnergy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.len()))?;
        for (k, v) in self.iter() {
            m.serialize_entry(k, &v.0)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for DomainEnergy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, f64>::deserialize(d)?;
        let (names, values): (Vec<String>, Vec<f64>) = map.into_iter().take(MAX_DOMAINS).unzip();
        Ok(DomainEnergy::new(names.into(), &values))
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_lists_read_new_values_as_unknown_and_closed_lists_refuse_them() {
        let scope: RunScope = serde_json::from_str("\"container\"").unwrap();
        assert_eq!(scope, RunScope::Unknown);
        assert!(!scope.is_share());
        let a: Attribution = serde_json::from_str("\"gpu-time\"").unwrap();
        assert_eq!(a, Attribution::Unknown);
        let m: ControlMode = serde_json::from_str("\"storm\"").unwrap();
        assert_eq!(m.as_str(), "unknown");
        // Known values round-trip as the words the format documents.
        for s in [RunScope::Process, RunScope::ProcessTree, RunScope::Host] {
            let text = serde_json::to_string(&s).unwrap();
            assert_eq!(text, format!("\"{}\"", s.as_str()));
            assert_eq!(serde_json::from_str::<RunScope>(&text).unwrap(), s);
        }
        assert_eq!(
            serde_json::to_string(&ControlMode::DeadlineRescue).unwrap(),
            "\"deadline-rescue\""
        );
        assert_eq!(
            serde_json::to_string(&Attribution::CpuTime).unwrap(),
            "\"cpu-time\""
        );
        // Closed lists: an unknown value is an error.
        assert!(serde_json::from_str::<EnergyKind>("\"guessed\"").is_err());
        assert!(serde_json::from_str::<StepStatus>("\"odd\"").is_err());
        assert!(serde_json::from_str::<StepDetail>("\"some\"").is_err());
        assert!(serde_json::from_str::<ProbeScope>("\"rack\"").is_err());
    }

    #[test]
    fn typed_figures_serialise_as_plain_numbers() {
        let p = PowerRecord {
            start_s: Seconds(1.0),
            end_s: Seconds(2.5),
            energy_j: Joules(30.0),
            co2e_g: GramsCo2e(0.004),
            energy_low_j: None,
            energy_high_j: Some(Joules(33.0)),
        };
        let text = serde_json::to_string(&p).unwrap();
        assert_eq!(
            text,
            r#"{"start_s":1.0,"end_s":2.5,"energy_j":30.0,"co2e_g":0.004,"energy_high_j":33.0}"#
        );
        assert_eq!(serde_json::from_str::<PowerRecord>(&text).unwrap(), p);
    }

    /// Step attributes are additive: absent when there are none, an object of strings when
    /// there are, read back by this version, and ignored by a reader that does not know them
    /// (the records of earlier versions have no `deny_unknown_fields`).
    #[test]
    fn step_attributes_are_an_additive_field() {
        let line = r#"{"name":"train","id":3,"parent":null,"thread":0,"start_s":0.5,"end_s":1.5,"items":2,"status":"ok","energy_j":4.0,"self_energy_j":4.0,"co2e_g":0.001,"async":true,"attrs":{"model":"resnet","dataset":"imagenet"}}"#;
        let rec: StepRecord = serde_json::from_str(line).unwrap();
        let attrs = rec.attrs.clone().unwrap();
        assert_eq!(
            attrs.iter().collect::<Vec<_>>(),
            vec![
                (&"dataset".to_owned(), &"imagenet".to_owned()),
                (&"model".to_owned(), &"resnet".to_owned())
            ]
        );
        // Written back with its keys sorted, as one spelling per combination.
        let text = serde_json::to_string(&rec).unwrap();
        assert!(
            text.ends_with(r#""attrs":{"dataset":"imagenet","model":"resnet"}}"#),
            "{text}"
        );
        // Without attributes: no key at all, as before.
        let plain = StepRecord {
            attrs: None,
            ..rec.clone()
        };
        assert!(!serde_json::to_string(&plain).unwrap().contains("attrs"));
        // A reader of the fields before attributes (the step record as it was) reads the line.
        #[derive(Deserialize)]
        #[allow(dead_code)]
        struct EarlierStep {
            name: String,
            id: u64,
            parent: Option<u64>,
            items: u64,
            energy_j: f64,
            #[serde(default)]
            r#async: bool,
        }
        let old: EarlierStep = serde_json::from_str(line).unwrap();
        assert_eq!((old.name.as_str(), old.id, old.items), ("train", 3, 2));
        // Attribute values are strings: a number is refused, with the field named.
        let bad = line.replace(r#""model":"resnet""#, r#""model":3"#);
        let e = serde_json::from_str::<StepRecord>(&bad).unwrap_err();
        assert!(e.to_string().contains("expected a string"), "{e}");
        // step_summary: `by_attrs` and `attrs_folded` likewise optional.
        let sum = r#"{"name":"train","count":3,"wall_s":3.0,"self_wall_s":3.0,"items":6,"energy_j":12.0,"self_energy_j":12.0,"co2e_g":0.003,"p50_s":1.0,"p95_s":1.0,"max_s":1.0}"#;
        let s: StepSummary = serde_json::from_str(sum).unwrap();
        assert_eq!((s.by_attrs.as_ref(), s.attrs_folded), (None, 0));
        let text = serde_json::to_string(&s).unwrap();
        assert!(
            !text.contains("by_attrs") && !text.contains("attrs_folded"),
            "{text}"
        );
        let with = sum.replace(
            r#""max_s":1.0}"#,
            r#""max_s":1.0,"by_attrs":[{"attrs":{"dataset":"a"},"count":2,"wall_s":2.0,"items":4,"energy_j":8.0,"self_energy_j":8.0,"co2e_g":0.002}],"attrs_folded":1}"#,
        );
        let s: StepSummary = serde_json::from_str(&with).unwrap();
        let by = s.by_attrs.unwrap();
        assert_eq!(
            (by.len(), by[0].count, by[0].errors, s.attrs_folded),
            (1, 2, 0, 1)
        );
        assert_eq!(by[0].attrs["dataset"], "a");
    }
}
