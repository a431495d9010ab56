//! Energy sources: the [`EnergyProbe`] trait and the estimation model that runs where no
//! hardware counter exists.

use crate::coefficients::USER_OVERRIDE_SPREAD;
use crate::procfs::{self, HostCpu};
use crate::record::{DeviceInfo, EnergyKind, EnergySource};
use crate::units::{Joules, Seconds, Watts};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Why an energy source could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file's content is not what the kernel documents.
    #[error("{path}, line {line}, field `{field}`: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// Field name.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The source exists but cannot be used; the message says why and what to do.
    #[error("{0}")]
    Unavailable(String),
}

/// Whether a probe's energy covers the whole machine or only this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeScope {
    /// Whole-machine energy; in `process` scope the run takes its CPU-time share.
    Host,
    /// Already this process's energy (e.g. a user-given constant power for the job).
    Process,
}

/// A source of cumulative energy.
///
/// Implementations report, at each call of [`read`](Self::read), the energy consumed since the
/// probe was created, per domain. They are called from the aggregator thread only, at the
/// sampling interval (default 10 Hz), so they may do I/O.
pub trait EnergyProbe: Send {
    /// Describes the source for the run file (`run_start.energy_sources`).
    fn describe(&self) -> EnergySource;
    /// Whole machine or this process.
    fn scope(&self) -> ProbeScope;
    /// Names of the domains, in the order [`read`](Self::read) fills them.
    fn domains(&self) -> Vec<String>;
    /// Writes each domain's cumulative energy into `out` (same length as `domains()`).
    ///
    /// Values must never decrease: counter wraparound is the probe's business.
    fn read(&mut self, out: &mut [Joules]) -> Result<(), ProbeError>;
    /// For estimates: cumulative low and high bounds of the total energy (all domains) as of the
    /// last [`read`](Self::read), from the spread of the model's coefficients. `None` for
    /// measurements.
    fn band(&self) -> Option<(Joules, Joules)> {
        None
    }
    /// Whether [`usage_share`](Self::usage_share) can say which processes used the source
    /// (a GPU lists its compute processes; a CPU package cannot). The session collects the
    /// run's pids only when some probe says yes.
    fn knows_users(&self) -> bool {
        false
    }
    /// For a host-scoped probe that knows its users: writes into `out[i]` the share of domain
    /// `i`'s energy, over the interval closed by the latest [`read`](Self::read), that belongs
    /// to the processes `pids` (sorted ascending), in `[0, 1]`. Leaves `None` where it cannot
    /// tell; the run's CPU share applies there. Called right after `read`, in process scope only.
    fn usage_share(&mut self, pids: &[u32], out: &mut [Option<f64>]) {
        let _ = (pids, out);
    }
    /// Problems the probe met since the last call (a failed query, a counter reset, a
    /// recovered read), oldest first. The session puts them in `run_end.warnings`.
    fn take_warnings(&mut self) -> Vec<String> {
        Vec::new()
    }
}

impl<P: EnergyProbe + ?Sized> EnergyProbe for Box<P> {
    fn describe(&self) -> EnergySource {
        (**self).describe()
    }
    fn scope(&self) -> ProbeScope {
        (**self).scope()
    }
    fn domains(&self) -> Vec<String> {
        (**self).domains()
    }
    fn read(&mut self, out: &mut [Joules]) -> Result<(), ProbeError> {
        (**self).read(out)
    }
    fn band(&self) -> Option<(Joules, Joules)> {
        (**self).band()
    }
    fn knows_users(&self) -> bool {
        (**self).knows_users()
    }
    fn usage_share(&mut self, pids: &[u32], out: &mut [Option<f64>]) {
        (**self).usage_share(pids, out)
    }
    fn take_warnings(&mut self) -> Vec<String> {
        (**self).take_warnings()
    }
}

/// How the estimation model turns utilisation into power, for user-given whole-machine figures.
#[derive(Debug, Clone, PartialEq)]
pub enum PowerModel {
    /// `P = idle + (max - idle) x u`, with `u` the host CPU utilisation from `/proc/stat`.
    /// Both values are for the whole machine (all vCPUs).
    Linear {
        /// Machine watts at 0 % utilisation.
        idle: Watts,
        /// Machine watts at 100 % utilisation.
        max: Watts,
    },
    /// A constant power drawn on behalf of this job, whatever the utilisation: reproduces
    /// studies that report energy = mean power x runtime.
    Constant(Watts),
}

/// Power of one model part as a function of host CPU utilisation `u` in `[0, 1]`:
/// `idle + dynamic x u`. A constant part has `dynamic == 0`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PartPower {
    /// Watts at 0 % utilisation.
    pub idle: Watts,
    /// Watts added between 0 % and 100 % utilisation (`max - idle`).
    pub dynamic: Watts,
}

impl PartPower {
    /// `idle` watts at 0 %, `max` watts at 100 %.
    pub fn linear(idle: Watts, max: Watts) -> Self {
        PartPower {
            idle,
            dynamic: Watts(max.0 - idle.0),
        }
    }

    /// The same watts at every utilisation.
    pub fn constant(w: Watts) -> Self {
        PartPower {
            idle: w,
            dynamic: Watts::ZERO,
        }
    }

    /// Watts at 100 % utilisation.
    pub fn max(&self) -> Watts {
        self.idle + self.dynamic
    }

    /// Watts at utilisation `u`, clamped to `[0, 1]`.
    pub fn at(&self, u: f64) -> Watts {
        Watts(self.idle.0 + self.dynamic.0 * u.clamp(0.0, 1.0))
    }

    /// Both terms times `k`.
    pub fn scaled(self, k: f64) -> Self {
        PartPower {
            idle: self.idle * k,
            dynamic: self.dynamic * k,
        }
    }

    /// Without the idle term: the "marginal energy" view, which counts only the power added by
    /// utilisation.
    pub fn dynamic_only(self) -> Self {
        PartPower {
            idle: Watts::ZERO,
            dynamic: self.dynamic,
        }
    }

    fn lower(self, o: Self) -> Self {
        PartPower {
            idle: Watts(self.idle.0.min(o.idle.0)),
            dynamic: Watts(self.dynamic.0.min(o.dynamic.0)),
        }
    }

    fn upper(self, o: Self) -> Self {
        PartPower {
            idle: Watts(self.idle.0.max(o.idle.0)),
            dynamic: Watts(self.dynamic.0.max(o.dynamic.0)),
        }
    }
}

/// One part of the estimation model (CPU, memory, GPUs, or a user-given whole-machine figure):
/// its domain name, the central estimate, and the low and high bounds of the band.
///
/// Invariant, enforced by the constructors: `low <= estimate <= high` term by term (idle and
/// dynamic), so at every utilisation `low.at(u) <= estimate.at(u) <= high.at(u)`, also after
/// [`dynamic_only`](Self::dynamic_only).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelPart {
    domain: String,
    estimate: PartPower,
    low: PartPower,
    high: PartPower,
}

impl ModelPart {
    /// A part with a band; the band is widened where needed to contain the estimate.
    pub fn new(
        domain: impl Into<String>,
        estimate: PartPower,
        low: PartPower,
        high: PartPower,
    ) -> Self {
        ModelPart {
            domain: domain.into(),
            estimate,
            low: low.lower(estimate),
            high: high.upper(estimate),
        }
    }

    /// A part whose band is `estimate x (1 -+ spread)`.
    pub fn with_spread(domain: impl Into<String>, estimate: PartPower, spread: f64) -> Self {
        let s = spread.abs();
        Self::new(
            domain,
            estimate,
            estimate.scaled(1.0 - s),
            estimate.scaled(1.0 + s),
        )
    }

    /// The same part without idle power (estimate and band): the marginal energy view.
    pub fn dynamic_only(&self) -> Self {
        ModelPart {
            domain: self.domain.clone(),
            estimate: self.estimate.dynamic_only(),
            low: self.low.dynamic_only(),
            high: self.high.dynamic_only(),
        }
    }

    /// The domain name (`cpu`, `memory`, `gpu`, `machine`).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The central estimate.
    pub fn estimate(&self) -> PartPower {
        self.estimate
    }

    /// The low end of the band.
    pub fn low(&self) -> PartPower {
        self.low
    }

    /// The high end of the band.
    pub fn high(&self) -> PartPower {
        self.high
    }

    fn uses_utilisation(&self) -> bool {
        [self.estimate, self.low, self.high]
            .iter()
            .any(|p| p.dynamic.0 != 0.0)
    }
}

/// The estimation model as an [`EnergyProbe`]; always `kind: "estimated"`.
///
/// It holds one or more [`ModelPart`]s, each reported as its own domain, and a PUE multiplier
/// applied to every part (estimate and band). At each [`read`](EnergyProbe::read) it takes the
/// host CPU utilisation `u` over the interval since the previous read from `/proc/stat` (only if
/// some part depends on it) and adds `P_part(u) x PUE x dt` to each domain. The first read sets
/// the baseline: energies count from it. [`band`](EnergyProbe::band) returns the same integral
/// of the parts' low and high bounds.
#[derive(Debug)]
pub struct ModelProbe {
    name: String,
    source: String,
    reason: Option<String>,
    devices: Vec<DeviceInfo>,
    scope: ProbeScope,
    parts: Vec<ModelPart>,
    pue: f64,
    summary: PowerModel,
    needs_utilisation: bool,
    proc_root: PathBuf,
    origin: Instant,
    last: Option<(Duration, HostCpu)>,
    energy: Vec<Joules>,
    low: Vec<Joules>,
    high: Vec<Joules>,
}

impl ModelProbe {
    /// A model probe for a user-given whole-machine figure, reading `/proc`. `source` says where
    /// the watts come from.
    pub fn new(model: PowerModel, source: impl Into<String>) -> Self {
        Self::with_proc_root(model, source, procfs::default_root())
    }

    /// Same as [`new`](Self::new) with another proc root (tests use fake trees).
    ///
    /// One domain, `cpu` (as in earlier versions). `Linear` is host-scoped, `Constant`
    /// process-scoped (name `constant`). The band is the user's figure `x (1 -+ 0.10)`
    /// ([`USER_OVERRIDE_SPREAD`]); PUE 1.
    pub fn with_proc_root(
        model: PowerModel,
        source: impl Into<String>,
        proc_root: impl Into<PathBuf>,
    ) -> Self {
        let (power, scope, name) = match model {
            PowerModel::Linear { idle, max } => {
                (PartPower::linear(idle, max), ProbeScope::Host, "model")
            }
            PowerModel::Constant(w) => (PartPower::constant(w), ProbeScope::Process, "constant"),
        };
        let part = ModelPart::with_spread("cpu", power, USER_OVERRIDE_SPREAD);
        let mut p = Self::from_parts(vec![part], scope, source, proc_root);
        p.name = name.to_owned();
        p.summary = model;
        p
    }

    /// A model probe made of `parts`, one domain each, in that order. Name `model`, PUE 1.
    pub fn from_parts(
        parts: Vec<ModelPart>,
        scope: ProbeScope,
        source: impl Into<String>,
        proc_root: impl Into<PathBuf>,
    ) -> Self {
        let n = parts.len();
        let mut p = ModelProbe {
            name: "model".to_owned(),
            source: source.into(),
            reason: None,
            devices: Vec::new(),
            scope,
            needs_utilisation: parts.iter().any(ModelPart::uses_utilisation),
            parts,
            pue: 1.0,
            summary: PowerModel::Constant(Watts::ZERO),
            proc_root: proc_root.into(),
            origin: Instant::now(),
            last: None,
            energy: vec![Joules::ZERO; n],
            low: vec![Joules::ZERO; n],
            high: vec![Joules::ZERO; n],
        };
        p.summary = p.summarise();
        p
    }

    /// Multiplies every part (estimate and band) by the power usage effectiveness `pue`
    /// (facility power / IT power; 1.0 = IT power only). Values that are not finite or below 1
    /// are ignored (PUE 1).
    pub fn with_pue(mut self, pue: f64) -> Self {
        self.pue = if pue.is_finite() && pue >= 1.0 {
            pue
        } else {
            1.0
        };
        self.summary = self.summarise();
        self
    }

    /// The name in the run file (`model`, `constant`).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// What limits the estimate, for `energy_sources[].reason`.
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// Devices the model covers (e.g. GPUs seen but not measured).
    pub fn with_devices(mut self, devices: Vec<DeviceInfo>) -> Self {
        self.devices = devices;
        self
    }

    fn summarise(&self) -> PowerModel {
        let idle: f64 = self.parts.iter().map(|p| p.estimate.idle.0).sum();
        let max: f64 = self.parts.iter().map(|p| p.estimate.max().0).sum();
        match self.scope {
            ProbeScope::Process => PowerModel::Constant(Watts(idle * self.pue)),
            ProbeScope::Host => PowerModel::Linear {
                idle: Watts(idle * self.pue),
                max: Watts(max * self.pue),
            },
        }
    }

    /// The whole-machine equivalent of the model: all parts summed, PUE applied (`Constant` for
    /// a process-scoped probe).
    pub fn model(&self) -> &PowerModel {
        &self.summary
    }

    /// The parts, in domain order.
    pub fn parts(&self) -> &[ModelPart] {
        &self.parts
    }

    /// The PUE multiplier in use.
    pub fn pue(&self) -> f64 {
        self.pue
    }

    /// Total power at host utilisation `u` in `[0, 1]`, PUE applied.
    pub fn power_at(&self, u: f64) -> Watts {
        Watts(self.powers_at(u).iter().map(|w| w.0).sum())
    }

    /// Each part's power at utilisation `u`, PUE applied, in domain order.
    pub fn powers_at(&self, u: f64) -> Vec<Watts> {
        self.parts
            .iter()
            .map(|p| Watts(p.estimate.at(u).0 * self.pue))
            .collect()
    }

    /// Advances the model by `dt` at utilisation `u` and returns the energy added (all domains);
    /// exposed for tests of the arithmetic. A negative or NaN `dt` counts as zero.
    pub fn advance(&mut self, dt: Seconds, u: f64) -> Joules {
        let dt = if dt.0 > 0.0 { dt.0 } else { 0.0 };
        let mut added = Joules::ZERO;
        for (i, p) in self.parts.iter().enumerate() {
            let e = Joules(p.estimate.at(u).0 * self.pue * dt);
            self.energy[i] += e;
            self.low[i] += Joules(p.low.at(u).0 * self.pue * dt);
            self.high[i] += Joules(p.high.at(u).0 * self.pue * dt);
            added += e;
        }
        added
    }

    /// Cumulative energy per domain, in domain order.
    pub fn energies(&self) -> &[Joules] {
        &self.energy
    }

    /// Cumulative energy of all domains.
    pub fn total(&self) -> Joules {
        Joules(self.energy.iter().map(|e| e.0).sum())
    }

    /// [`read`](EnergyProbe::read) with the clock given: `elapsed` is the time since an origin
    /// of the caller's choosing (`read` uses the probe's creation), and must not go backwards
    /// (an earlier value counts as no time passing). Tests use it to inject time.
    pub fn read_at(&mut self, elapsed: Duration, out: &mut [Joules]) -> Result<(), ProbeError> {
        let cpu = if self.needs_utilisation {
            procfs::host_cpu(&self.proc_root)?
        } else {
            HostCpu::default()
        };
        let mut now = elapsed;
        if let Some((t, prev)) = self.last {
            now = now.max(t);
            let total = cpu.total.saturating_sub(prev.total);
            let busy = cpu.busy.saturating_sub(prev.busy);
            let u = if total == 0 {
                0.0
            } else {
                busy as f64 / total as f64
            };
            self.advance((now - t).into(), u);
        }
        self.last = Some((now, cpu));
        for (o, e) in out.iter_mut().zip(&self.energy) {
            *o = *e;
        }
        Ok(())
    }
}

impl EnergyProbe for ModelProbe {
    fn describe(&self) -> EnergySource {
        let mut src = EnergySource::new(&self.name, EnergyKind::Estimated, self.source.clone());
        src.domains = self.domains();
        src.scope = match self.scope {
            ProbeScope::Host => "host",
            ProbeScope::Process => "process",
        }
        .to_owned();
        let (idle, max) = match self.summary {
            PowerModel::Linear { idle, max } => (idle.0, max.0),
            PowerModel::Constant(w) => (w.0, w.0),
        };
        src.idle_w = Some(idle);
        src.max_w = Some(max);
        src.reason = self.reason.clone();
        src.devices = self.devices.clone();
        src
    }

    fn scope(&self) -> ProbeScope {
        self.scope
    }

    fn domains(&self) -> Vec<String> {
        self.parts.iter().map(|p| p.domain.clone()).collect()
    }

    fn read(&mut self, out: &mut [Joules]) -> Result<(), ProbeError> {
        let elapsed = self.origin.elapsed();
        self.read_at(elapsed, out)
    }

    fn band(&self) -> Option<(Joules, Joules)> {
        let sum = |v: &[Joules]| Joules(v.iter().map(|e| e.0).sum());
        Some((sum(&self.low), sum(&self.high)))
    }
}

/// Whose CPU time [`CpuShare`] compares with the host's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ShareTarget {
    /// This process (`/proc/self/stat`: utime + stime). The default.
    #[default]
    SelfProcess,
    /// A process tree: the process `root` (a child of this process) and every live process
    /// whose ancestry leads to it.
    ///
    /// Each tree member counts `utime + stime + cutime + cstime` from `/proc/<pid>/stat`.
    /// `cutime`/`cstime` hold the CPU time of children the process has already waited for
    /// (reaped), so a short-lived grandchild that ran and was reaped between two samples still
    /// counts: its time moved into its parent's `cutime`/`cstime`, inside the tree. When the
    /// root itself exits and this process reaps it, the root's totals land in this process's
    /// `cutime`/`cstime`, which are added too (this process should have no other children), so
    /// the total never drops at the end. A process that leaves the tree alive (daemonised,
    /// reparented to init) is no longer counted.
    Tree {
        /// Pid of the tree's root.
        root: u32,
    },
    /// Every descendant of this process, live or reaped, but not this process itself: what
    /// `carina run` measures. With this process a child subreaper
    /// (`PR_SET_CHILD_SUBREAPER`), a grandchild orphaned by its parent (a `cmd &` in a shell
    /// script that exits) is re-parented here instead of to init, so it stays counted; once
    /// reaped, its time is in this process's `cutime`/`cstime`.
    Descendants,
}

/// Samples a process's (or a process tree's) share of host CPU time, for `process` scope.
#[derive(Debug)]
pub struct CpuShare {
    proc_root: PathBuf,
    target: ShareTarget,
    /// Host busy and target CPU time at the last sample, nanoseconds.
    last: Option<(u64, u64)>,
    tick_ns: u64,
}

impl CpuShare {
    /// Reads `<proc_root>/stat` and `<proc_root>/self/stat`.
    pub fn new(proc_root: impl Into<PathBuf>) -> Self {
        Self::with_target(proc_root, ShareTarget::SelfProcess)
    }

    /// Reads `<proc_root>/stat` and the target's `stat` files (see [`ShareTarget`]).
    pub fn with_target(proc_root: impl Into<PathBuf>, target: ShareTarget) -> Self {
        CpuShare {
            proc_root: proc_root.into(),
            target,
            last: None,
            tick_ns: crate::cpuclock::tick_ns(),
        }
    }

    /// Share of host busy CPU time used by the target since the previous call, in `[0, 1]`.
    /// The first call returns `None`.
    pub fn sample(&mut self) -> Result<Option<f64>, ProbeError> {
        let host = procfs::host_cpu(&self.proc_root)?
            .busy
            .saturating_mul(self.tick_ns);
        let own = self.target_ns()?;
        let prev = self.last.replace((host, own));
        Ok(prev.map(|(h0, p0)| share(host.saturating_sub(h0), own.saturating_sub(p0))))
    }

    /// Whether the proc root is the live `/proc` of this process, so the kernel's nanosecond
    /// clocks describe the same processes as its files.
    fn live(&self) -> bool {
        self.proc_root == Path::new("/proc")
    }

    /// The target's cumulative CPU time now, nanoseconds.
    ///
    /// On the live `/proc`, this process's time comes from its CPU-time clock and reaped
    /// children's from `getrusage`, both finer than the files' 10 ms ticks: a 7 ms run on four
    /// threads used 28 ms of CPU, which tick counts can read as zero. Live processes of a tree
    /// have no such clock readable from here and stay in ticks. Fake roots (tests) use the
    /// files alone.
    pub fn target_ns(&self) -> Result<u64, ProbeError> {
        let tick = self.tick_ns;
        if !self.live() {
            return Ok(self.target_ticks()?.saturating_mul(tick));
        }
        match self.target {
            ShareTarget::SelfProcess => match crate::cpuclock::process_ns() {
                Some(ns) => Ok(ns),
                None => Ok(self.target_ticks()?.saturating_mul(tick)),
            },
            ShareTarget::Tree { .. } | ShareTarget::Descendants => {
                let root = match self.target {
                    ShareTarget::Tree { root } => Some(root),
                    _ => None,
                };
                let t = walk_tree_parts(&self.proc_root, root)?;
                let reaped = crate::cpuclock::reaped_children_ns()
                    .unwrap_or(t.reaped_ticks.saturating_mul(tick));
                Ok(t.live_ticks.saturating_mul(tick).saturating_add(reaped))
            }
        }
    }

    /// The target's cumulative CPU time now, in clock ticks (USER_HZ).
    pub fn target_ticks(&self) -> Result<u64, ProbeError> {
        match self.target {
            ShareTarget::SelfProcess => procfs::process_cpu_ticks(&self.proc_root),
            ShareTarget::Tree { root } => tree_cpu_ticks(&self.proc_root, root),
            ShareTarget::Descendants => descendants_cpu_ticks(&self.proc_root),
        }
    }

    /// The proc root in use.
    pub fn proc_root(&self) -> &Path {
        &self.proc_root
    }

    /// Whose CPU time is compared.
    pub fn target(&self) -> ShareTarget {
        self.target
    }
}

/// The fields of `/proc/<pid>/stat` a tree walk needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// Parent pid (field 4).
    pub ppid: u32,
    /// utime + stime (fields 14, 15), clock ticks.
    pub own_ticks: u64,
    /// cutime + cstime (fields 16, 17): reaped children, clock ticks.
    pub children_ticks: u64,
}

/// Parses `/proc/<pid>/stat`; `path` is used in errors only.
pub fn parse_proc_stat(text: &str, path: &Path) -> Result<ProcStat, ProbeError> {
    let err = |field: &str, message: String| ProbeError::Parse {
        path: path.to_path_buf(),
        line: 1,
        field: field.to_owned(),
        message,
    };
    // The command name (field 2) may contain spaces and parentheses: resume after the last ')'.
    let rest = text
        .rfind(')')
        .map(|p| &text[p + 1..])
        .ok_or_else(|| err("comm", "no closing ')'".into()))?;
    // `rest` starts at field 3 (state).
    let fields: Vec<&str> = rest.split_ascii_whitespace().take(15).collect();
    let num = |i: usize, name: &str| -> Result<u64, ProbeError> {
        let tok = fields.get(i).ok_or_else(|| err(name, "missing".into()))?;
        // cutime and cstime are signed in the kernel's format; negative never happens in
        // practice and counts as zero.
        if let Some(neg) = tok.strip_prefix('-') {
            return neg
                .parse::<u64>()
                .map(|_| 0)
                .map_err(|_| err(name, format!("expected an integer, got {tok:?}")));
        }
        tok.parse()
            .map_err(|_| err(name, format!("expected an integer, got {tok:?}")))
    };
    let ppid = num(1, "ppid")?;
    let own = num(11, "utime")? + num(12, "stime")?;
    let children = num(13, "cutime")? + num(14, "cstime")?;
    Ok(ProcStat {
        ppid: u32::try_from(ppid).unwrap_or(0),
        own_ticks: own,
        children_ticks: children,
    })
}

/// Cumulative CPU time of the process tree rooted at `root` (see [`ShareTarget::Tree`]), clock
/// ticks: every live tree member's utime + stime + cutime + cstime, plus this process's
/// cutime + cstime (the root, once reaped).
///
/// Processes that exit while `<proc_root>` is being scanned are skipped.
pub fn tree_cpu_ticks(proc_root: &Path, root: u32) -> Result<u64, ProbeError> {
    walk_tree(proc_root, Some(root))
}

/// Cumulative CPU time of every descendant of this process (see
/// [`ShareTarget::Descendants`]), clock ticks: every live descendant's utime + stime + cutime +
/// cstime, plus this process's cutime + cstime (descendants already reaped). This process's own
/// utime + stime are not counted.
pub fn descendants_cpu_ticks(proc_root: &Path) -> Result<u64, ProbeError> {
    walk_tree(proc_root, None)
}

/// The live processes of the tree rooted at `root` (a child of this process), or of every
/// descendant of this process when `None` (this process excluded), unsorted.
pub fn tree_pids(proc_root: &Path, root: Option<u32>) -> Result<Vec<u32>, ProbeError> {
    Ok(walk_tree_parts(proc_root, root)?.members)
}

/// Sums the tree below `root`, or below this process when `None`; this process's own CPU time
/// never counts, its reaped children's always does.
fn walk_tree(proc_root: &Path, root: Option<u32>) -> Result<u64, ProbeError> {
    let t = walk_tree_parts(proc_root, root)?;
    Ok(t.live_ticks + t.reaped_ticks)
}

/// A tree's CPU time in two parts, clock ticks.
struct TreeTicks {
    /// Live members' utime + stime + cutime + cstime.
    live_ticks: u64,
    /// This process's cutime + cstime: members already reaped.
    reaped_ticks: u64,
    /// Live members' pids.
    members: Vec<u32>,
}

fn walk_tree_parts(proc_root: &Path, root: Option<u32>) -> Result<TreeTicks, ProbeError> {
    let self_path = proc_root.join("self").join("stat");
    let own = std::fs::read_to_string(&self_path).map_err(|source| ProbeError::Io {
        path: self_path.clone(),
        source,
    })?;
    let reaped_ticks = parse_proc_stat(&own, &self_path)?.children_ticks;
    let mut total = 0;
    // The first field of a stat line is the pid.
    let self_pid = own
        .split_whitespace()
        .next()
        .and_then(|p| p.parse::<u32>().ok());
    let Some(root) = root.or(self_pid) else {
        return Err(ProbeError::Parse {
            path: self_path,
            line: 1,
            field: "pid".into(),
            message: "no pid at the start of the line".into(),
        });
    };
    let dir = std::fs::read_dir(proc_root).map_err(|source| ProbeError::Io {
        path: proc_root.to_path_buf(),
        source,
    })?;
    let mut procs: std::collections::HashMap<u32, ProcStat> = std::collections::HashMap::new();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let path = entry.path().join("stat");
        // Gone since the listing, or not ours to read: not part of the sum.
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        if let Ok(st) = parse_proc_stat(&text, &path) {
            procs.insert(pid, st);
        }
    }
    // Walk each process's ancestry up to the root (member) or to pid 1/0 (not a member),
    // memoising the verdict.
    let mut member: std::collections::HashMap<u32, bool> = std::collections::HashMap::new();
    member.insert(root, true);
    let pids: Vec<u32> = procs.keys().copied().collect();
    for pid in pids {
        let mut chain = Vec::new();
        let mut cur = pid;
        let verdict = loop {
            if let Some(&m) = member.get(&cur) {
                break m;
            }
            match procs.get(&cur) {
                Some(st) if st.ppid != 0 && st.ppid != cur && chain.len() < 4096 => {
                    chain.push(cur);
                    cur = st.ppid;
                }
                _ => {
                    chain.push(cur);
                    break false;
                }
            }
        };
        for p in chain {
            member.insert(p, verdict);
        }
    }
    let mut members = Vec::new();
    for (pid, st) in &procs {
        if Some(*pid) != self_pid && member.get(pid).copied().unwrap_or(false) {
            total += st.own_ticks + st.children_ticks;
            members.push(*pid);
        }
    }
    Ok(TreeTicks {
        live_ticks: total,
        reaped_ticks,
        members,
    })
}

/// The process's share of host busy time, from deltas in one unit. The host's counter moves in
/// 10 ms ticks while the process's may be exact, so within one interval the process delta can
/// exceed the host delta by up to a tick; the share is clamped to 1. When the host counter did not
/// move but the process ran, the process gets it all: a run that used CPU never gets a zero share.
pub fn share(host_busy: u64, own: u64) -> f64 {
    match (host_busy, own) {
        (_, 0) => 0.0,
        (0, _) => 1.0,
        (h, p) => (p as f64 / h as f64).min(1.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linear(idle: f64, max: f64) -> PowerModel {
        PowerModel::Linear {
            idle: Watts(idle),
            max: Watts(max),
        }
    }

    #[test]
    fn linear_model_interpolates() {
        let mut p = ModelProbe::new(linear(10.0, 50.0), "test");
        assert_eq!(p.power_at(0.0), Watts(10.0));
        assert_eq!(p.power_at(0.5), Watts(30.0));
        assert_eq!(p.power_at(2.0), Watts(50.0));
        assert_eq!(p.advance(Seconds(2.0), 0.25), Joules(40.0));
    }

    #[test]
    fn model_reads_fake_proc_stat() {
        let dir = tempfile::tempdir().unwrap();
        let stat = dir.path().join("stat");
        std::fs::write(&stat, "cpu  0 0 0 100 0 0 0 0\ncpu0 0 0 0 100 0 0 0 0\n").unwrap();
        let mut p = ModelProbe::with_proc_root(linear(10.0, 50.0), "test", dir.path());
        let mut out = [Joules::ZERO];
        p.read(&mut out).unwrap();
        assert_eq!(out[0], Joules::ZERO);
        std::thread::sleep(std::time::Duration::from_millis(50));
        // 100 % busy in this interval.
        std::fs::write(
            &stat,
            "cpu  100 0 0 100 0 0 0 0\ncpu0 100 0 0 100 0 0 0 0\n",
        )
        .unwrap();
        p.read(&mut out).unwrap();
        // >= 50 ms at 50 W.
        assert!(out[0].0 >= 2.5 && out[0].0 < 10.0, "{:?}", out[0]);
        assert_eq!(p.describe().kind, EnergyKind::Estimated);
    }

    #[test]
    fn missing_proc_is_a_clear_error() {
        let mut p = ModelProbe::with_proc_root(linear(1.0, 2.0), "t", "/nonexistent/proc");
        let e = p.read(&mut [Joules::ZERO]).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/proc/stat"), "{e}");
    }

    #[test]
    fn share_is_bounded() {
        assert_eq!(share(0, 0), 0.0);
        assert_eq!(share(0, 3), 1.0);
        assert_eq!(share(10, 5), 0.5);
        assert_eq!(share(10, 12), 1.0);
    }

    #[test]
    fn user_override_band_is_ten_percent() {
        let mut p = ModelProbe::new(PowerModel::Constant(Watts(100.0)), "user");
        assert_eq!(p.advance(Seconds(10.0), 0.3), Joules(1000.0));
        let (lo, hi) = p.band().unwrap();
        assert!((lo.0 - 900.0).abs() < 1e-9 && (hi.0 - 1100.0).abs() < 1e-9);
        assert_eq!(p.domains(), vec!["cpu".to_owned()]);
        assert_eq!(p.model(), &PowerModel::Constant(Watts(100.0)));
    }

    #[test]
    fn parts_are_domains_and_pue_scales_everything() {
        let cpu = ModelPart::new(
            "cpu",
            PartPower::linear(Watts(10.0), Watts(50.0)),
            PartPower::linear(Watts(5.0), Watts(30.0)),
            PartPower::linear(Watts(20.0), Watts(80.0)),
        );
        let mem = ModelPart::with_spread("memory", PartPower::constant(Watts(4.0)), 0.25);
        let mut p = ModelProbe::from_parts(vec![cpu, mem], ProbeScope::Host, "t", "/nonexistent")
            .with_pue(1.5);
        assert_eq!(p.domains(), vec!["cpu".to_owned(), "memory".to_owned()]);
        assert_eq!(p.powers_at(0.5), vec![Watts(45.0), Watts(6.0)]);
        assert_eq!(p.power_at(0.5), Watts(51.0));
        assert_eq!(
            p.model(),
            &PowerModel::Linear {
                idle: Watts(21.0),
                max: Watts(81.0)
            }
        );
        let src = p.describe();
        assert_eq!((src.idle_w, src.max_w), (Some(21.0), Some(81.0)));
        assert_eq!(src.kind, EnergyKind::Estimated);
        p.advance(Seconds(2.0), 0.5);
        assert_eq!(p.energies(), &[Joules(90.0), Joules(12.0)]);
        assert_eq!(p.total(), Joules(102.0));
        let (lo, hi) = p.band().unwrap();
        // low: cpu (5 + 25 x 0.5) x 1.5 x 2 = 52.5, memory 3 x 1.5 x 2 = 9.
        // high: cpu (20 + 60 x 0.5) x 1.5 x 2 = 150, memory 5 x 1.5 x 2 = 15.
        assert_eq!((lo, hi), (Joules(61.5), Joules(165.0)));
        // A PUE below 1 is ignored.
        assert_eq!(p.with_pue(0.5).pue(), 1.0);
    }

    #[test]
    fn band_is_widened_to_contain_the_estimate() {
        let part = ModelPart::new(
            "cpu",
            PartPower::linear(Watts(10.0), Watts(50.0)),
            PartPower::linear(Watts(12.0), Watts(60.0)),
            PartPower::linear(Watts(8.0), Watts(40.0)),
        );
        // The given low lies above the estimate and the given high below it: both collapse onto
        // the estimate.
        let est = PartPower::linear(Watts(10.0), Watts(50.0));
        assert_eq!((part.low(), part.high()), (est, est));
        let part = ModelPart::new(
            "cpu",
            est,
            PartPower::linear(Watts(12.0), Watts(40.0)),
            PartPower::linear(Watts(8.0), Watts(60.0)),
        );
        // Term by term: low idle 10 (not 12), low dynamic 28; high idle 10, high dynamic 52.
        assert_eq!(
            part.low(),
            PartPower {
                idle: Watts(10.0),
                dynamic: Watts(28.0)
            }
        );
        assert_eq!(
            part.high(),
            PartPower {
                idle: Watts(10.0),
                dynamic: Watts(52.0)
            }
        );
        let m = part.dynamic_only();
        assert_eq!(
            m.estimate(),
            PartPower {
                idle: Watts::ZERO,
                dynamic: Watts(40.0)
            }
        );
        assert!(
            m.low().at(1.0) <= m.estimate().at(1.0) && m.estimate().at(1.0) <= m.high().at(1.0)
        );
    }

    #[test]
    fn read_at_injects_time() {
        let dir = tempfile::tempdir().unwrap();
        let stat = dir.path().join("stat");
        std::fs::write(&stat, "cpu  0 0 0 100 0 0 0 0\ncpu0 0 0 0 100 0 0 0 0\n").unwrap();
        let mut p = ModelProbe::with_proc_root(linear(10.0, 50.0), "t", dir.path());
        let mut out = [Joules::ZERO];
        p.read_at(Duration::from_secs(5), &mut out).unwrap();
        assert_eq!(out[0], Joules::ZERO);
        // 25 % busy over 4 s: (10 + 40 x 0.25) x 4 = 80 J.
        std::fs::write(&stat, "cpu  25 0 0 175 0 0 0 0\ncpu0 25 0 0 175 0 0 0 0\n").unwrap();
        p.read_at(Duration::from_secs(9), &mut out).unwrap();
        assert_eq!(out[0], Joules(80.0));
        // Time going backwards adds nothing.
        p.read_at(Duration::from_secs(1), &mut out).unwrap();
        assert_eq!(out[0], Joules(80.0));
        let (lo, hi) = p.band().unwrap();
        assert!(
            (lo.0 - 72.0).abs() < 1e-9 && (hi.0 - 88.0).abs() < 1e-9,
            "{lo} {hi}"
        );
    }

    fn fake_proc(root: &Path, pid: u32, ppid: u32, ticks: [u64; 4]) {
        let dir = root.join(pid.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("stat"),
            format!(
                "{pid} (a b) c) S {ppid} 1 1 0 -1 0 0 0 0 0 {} {} {} {} 20 0 1 0 5",
                ticks[0], ticks[1], ticks[2], ticks[3]
            ),
        )
        .unwrap();
    }

    #[test]
    fn proc_stat_fields() {
        let st = parse_proc_stat(
            "7 (x) y) S 3 1 1 0 -1 0 0 0 0 0 10 20 30 40 20 0",
            Path::new("s"),
        )
        .unwrap();
        assert_eq!(
            st,
            ProcStat {
                ppid: 3,
                own_ticks: 30,
                children_ticks: 70
            }
        );
        let e = parse_proc_stat("7 (x) S 3", Path::new("/p/7/stat"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/p/7/stat") && e.contains("utime"), "{e}");
    }

    /// This process is 100 (2000 ticks of its own, 5 of reaped children); 200 is its child,
    /// 201 a grandchild.
    fn fake_family(root: &Path) {
        fake_proc(root, 100, 1, [1000, 1000, 2, 3]);
        std::fs::create_dir_all(root.join("self")).unwrap();
        std::fs::copy(root.join("100/stat"), root.join("self/stat")).unwrap();
        fake_proc(root, 200, 100, [10, 5, 1, 1]);
        fake_proc(root, 201, 200, [3, 2, 0, 0]);
    }

    #[test]
    fn tree_sums_descendants_and_reaped_children() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // self (100) reaped 5 ticks of children; 200 is the tree root, 201 and 202 below it,
        // 300 is unrelated.
        fake_family(root);
        fake_proc(root, 202, 201, [1, 1, 4, 0]);
        fake_proc(root, 300, 1, [500, 500, 0, 0]);
        std::fs::write(root.join("stat"), "cpu  100 0 0 0 0 0 0 0\n").unwrap();
        // 5 (self's reaped) + 17 + 5 + 6.
        assert_eq!(tree_cpu_ticks(root, 200).unwrap(), 33);
        let mut s = CpuShare::with_target(root, ShareTarget::Tree { root: 200 });
        assert_eq!(s.target(), ShareTarget::Tree { root: 200 });
        assert_eq!(s.sample().unwrap(), None);
        fake_proc(root, 202, 201, [11, 1, 4, 0]);
        std::fs::write(root.join("stat"), "cpu  120 0 0 0 0 0 0 0\n").unwrap();
        assert_eq!(s.sample().unwrap(), Some(0.5));
        // The default target is this process.
        assert_eq!(CpuShare::new(root).target(), ShareTarget::SelfProcess);
    }

    #[test]
    fn descendants_count_everything_below_this_process_but_itself() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // self (100): own 2000 ticks (not counted), 5 reaped; children 200 (with 201 below)
        // and 400, an orphan adopted by the subreaper; 300 is unrelated.
        fake_family(root);
        fake_proc(root, 400, 100, [7, 0, 0, 0]);
        fake_proc(root, 300, 1, [500, 500, 0, 0]);
        // 5 + 17 + 5 + 7.
        assert_eq!(descendants_cpu_ticks(root).unwrap(), 34);
        // The tree below 200 does not see the adopted orphan.
        assert_eq!(tree_cpu_ticks(root, 200).unwrap(), 27);
        let s = CpuShare::with_target(root, ShareTarget::Descendants);
        assert_eq!(s.target_ticks().unwrap(), 34);
    }

    #[test]
    fn tree_of_a_real_child_counts_its_cpu() {
        let mut child = std::process::Command::new("sh")
            .args([
                "-c",
                "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; sleep 5",
            ])
            .spawn()
            .unwrap();
        let t0 = tree_cpu_ticks(Path::new("/proc"), child.id()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut t = t0;
        while Instant::now() < deadline && t < t0 + 5 {
            std::thread::sleep(Duration::from_millis(50));
            t = tree_cpu_ticks(Path::new("/proc"), child.id()).unwrap();
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(t >= t0 + 5, "{t0} -> {t}");
        // Reaped: its time is in our cutime/cstime, still counted.
        let after = tree_cpu_ticks(Path::new("/proc"), child.id()).unwrap();
        assert!(after >= t, "{t} -> {after}");
    }

    #[test]
    fn constant_model_is_process_scoped() {
        let p = ModelProbe::new(PowerModel::Constant(Watts(270.0)), "user");
        assert_eq!(p.scope(), ProbeScope::Process);
        assert_eq!(p.describe().name, "constant");
    }
}
