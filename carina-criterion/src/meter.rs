//! [`EnergyMeter`]: cumulative energy of this process (or of the host), read from the same
//! sources a Carina run uses.

use carina_probes::{ModelOptions, Roots};
use carina_runtime::sampler::Sampler;
use carina_runtime::share::CpuShare;
use carina_runtime::{EnergyKind, EnergyProbe, EnergySource, Scope};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The shortest interval between full reads, and of a window that sets the price of the reads
/// in between (see [`EnergyMeter`]): 100 ms, Carina's default sampling interval. Over
/// 100 ms, `/proc/stat`'s 10 ms ticks put about 10 % of noise on the host side of one window.
pub const DEFAULT_MIN_INTERVAL: Duration = Duration::from_millis(100);

/// The environment variable that sets the scope of [`EnergyMeter::new`]: `process` (default)
/// or `host`, as for a Carina run.
pub const SCOPE_ENV: &str = "CARINA_SCOPE";

/// The scope `CARINA_SCOPE` asks for: `host`, else `process` (unset, empty, `process`, or a
/// value that is neither, which [`EnergyMeter::new`] reports in its warnings).
pub fn scope_from_env() -> (Scope, Option<String>) {
    match std::env::var(SCOPE_ENV) {
        Ok(v) => match v.trim() {
            "host" => (Scope::Host, None),
            "" | "process" => (Scope::Process, None),
            other => (
                Scope::Process,
                Some(format!(
                    "{SCOPE_ENV}={other:?} is not valid (expected `process` or `host`): using \
                     process scope"
                )),
            ),
        },
        Err(_) => (Scope::Process, None),
    }
}

/// Cumulative energy attributed to this process (process scope) or of the whole machine (host
/// scope), from a set of [`EnergyProbe`]s.
///
/// A *full read* reads every probe and, in process scope, the process's share of host busy CPU
/// time over the interval since the previous full read
/// ([`CpuShare`](carina_runtime::share::CpuShare)); it adds `delta_host_energy x share` for
/// host-scoped probes and the whole delta for process-scoped ones (a user-given constant power),
/// as a Carina run does at each sampling tick. A GPU probe that knows its users gets the
/// process's share of the GPU instead of the CPU share.
///
/// `/proc/stat` moves in 10 ms ticks, and the estimation model takes the host utilisation of the
/// interval between two of its reads from it. A full read 1 ms after the previous one mostly sees
/// no tick: utilisation 0, only idle power, while the process's share is 1 or, when a tick lands
/// in it, a tenth. So, unless [`min_interval`](Self::with_min_interval) is zero, the reading is
/// *priced*: it advances by the process's CPU time (the kernel's nanosecond clock; wall time in
/// host scope) times a price, the exact attribution per CPU nanosecond over the latest window of
/// at least `min_interval` (default [`DEFAULT_MIN_INTERVAL`]) in which the process was busy at
/// least a fifth of the time. Full reads happen at most once per `min_interval`, from inside
/// [`read`](Self::read); the reads in between cost one clock read. Until the first such window
/// has passed, every read is full and the reading is the exact attribution. The reading never
/// decreases and is continuous; it follows the exact attribution ([`exact`](Self::exact)) as
/// closely as the price of one window predicts the next (a steady benchmark loop: within a few
/// per cent on this project's machine, see `docs/CRITERION.md`). With `min_interval` zero every
/// read is full and the reading is the exact attribution (the default in host scope when every
/// source is measured: hardware counters have no such resolution problem).
pub struct EnergyMeter {
    /// The same sampler a Carina run's aggregator uses.
    sampler: Sampler,
    scope: Scope,
    kind: EnergyKind,
    sources: Vec<EnergySource>,
    not_used: Vec<EnergySource>,
    min_interval: Duration,
    origin: Instant,
    /// Exact attribution up to the last full read, joules.
    exact: f64,
    /// Host energy (all probes, unreduced) up to the last full read, joules.
    host: f64,
    /// Time (since `origin`) and pricing key at the last full read.
    full_at: Duration,
    full_key: u64,
    /// The reading at the last full read.
    reported_at_full: f64,
    /// Joules per key nanosecond for priced reads; `None` before the first window.
    rate: Option<f64>,
    /// Time, key and exact attribution where the current pricing window began.
    anchor: (Duration, u64, f64),
    /// The latest reading (never decreases).
    reported: f64,
    reads: u64,
    full_reads: u64,
    warnings: Vec<String>,
}

impl std::fmt::Debug for EnergyMeter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnergyMeter")
            .field(
                "probes",
                &self.sources.iter().map(|s| &s.name).collect::<Vec<_>>(),
            )
            .field("scope", &self.scope)
            .field("kind", &self.kind)
            .field("min_interval", &self.min_interval)
            .field("reported_j", &self.reported)
            .finish_non_exhaustive()
    }
}

impl Default for EnergyMeter {
    fn default() -> Self {
        Self::new()
    }
}

impl EnergyMeter {
    /// The sources a Carina run would use on this machine
    /// (`carina_probes::detect_with(&Roots::default(), &ModelOptions::default())`: RAPL and NVML
    /// where readable, else the estimation model), in the scope `CARINA_SCOPE` says (process by
    /// default). Detection costs about 30 ms of CPU when a RAPL source opens (its liveness check).
    pub fn new() -> Self {
        let (scope, warning) = scope_from_env();
        let mut m = Self::detect(scope);
        m.warnings.extend(warning);
        m
    }

    /// [`new`](Self::new) in the given scope, whatever `CARINA_SCOPE` says.
    pub fn detect(scope: Scope) -> Self {
        Self::detect_with(&Roots::default(), &ModelOptions::default(), scope)
    }

    /// Detection under other roots or model options (e.g. `pue`, `include_idle`).
    pub fn detect_with(roots: &Roots, model: &ModelOptions, scope: Scope) -> Self {
        let d = carina_probes::detect_with(roots, model);
        let mut m = Self::with_probes(d.probes, roots.proc.clone(), scope);
        m.not_used = d.not_chosen.into_iter().map(|n| n.into_source()).collect();
        m
    }

    /// A meter over explicit probes; `proc_root` is where [`CpuShare`] reads `stat` and
    /// `self/stat` (a fake tree in tests; the live `/proc` uses the nanosecond process clock).
    /// The probes are read once now: energy counts from here.
    pub fn with_probes(
        probes: Vec<Box<dyn EnergyProbe>>,
        proc_root: impl Into<PathBuf>,
        scope: Scope,
    ) -> Self {
        let mut sampler = Sampler::new(probes, scope, CpuShare::new(proc_root));
        let sources = sampler.sources();
        // The first sample sets every baseline: energy counts from here.
        sampler.sample(0);
        sampler.reset();
        let warnings = sampler.take_warnings();
        let kind = EnergyKind::of_sources(&sources);
        let min_interval = if scope == Scope::Host && kind == EnergyKind::Measured {
            Duration::ZERO
        } else {
            DEFAULT_MIN_INTERVAL
        };
        let mut m = EnergyMeter {
            sampler,
            scope,
            kind,
            sources,
            not_used: Vec::new(),
            min_interval,
            origin: Instant::now(),
            exact: 0.0,
            host: 0.0,
            full_at: Duration::ZERO,
            full_key: 0,
            reported_at_full: 0.0,
            rate: None,
            anchor: (Duration::ZERO, 0, 0.0),
            reported: 0.0,
            reads: 0,
            full_reads: 0,
            warnings,
        };
        m.full_key = m.key(Duration::ZERO);
        m.anchor.1 = m.full_key;
        m
    }

    /// Sets the shortest interval between full reads; reads in between are priced by CPU
    /// time (see the type's documentation). `Duration::ZERO`: every read is full and exact.
    pub fn with_min_interval(mut self, d: Duration) -> Self {
        self.min_interval = d;
        self
    }

    /// The shortest interval between full reads.
    pub fn min_interval(&self) -> Duration {
        self.min_interval
    }

    /// Process or host.
    pub fn scope(&self) -> Scope {
        self.scope
    }

    /// `Measured` when every source used is a hardware counter, else `Estimated`.
    pub fn kind(&self) -> EnergyKind {
        self.kind
    }

    /// The sources in use, as a run file's `run_start.energy_sources` lists them.
    pub fn sources(&self) -> &[EnergySource] {
        &self.sources
    }

    /// The sources detection considered and did not use, with the reason (empty for
    /// [`with_probes`](Self::with_probes)).
    pub fn not_used(&self) -> &[EnergySource] {
        &self.not_used
    }

    /// One line: kind, sources with their domains (and a model's machine watts), scope, reads;
    /// e.g. `estimated energy from model (cpu, memory; 10.53 W idle, 17.19 W busy), process
    /// scope (share of host CPU time), full reads every >= 100 ms, priced by CPU time
    /// between`.
    pub fn describe(&self) -> String {
        let kind = self.kind.as_str();
        let srcs = if self.sources.is_empty() {
            "no source (reads 0 J)".to_owned()
        } else {
            self.sources
                .iter()
                .map(|s| match (s.idle_w, s.max_w) {
                    (Some(lo), Some(hi)) => format!(
                        "{} ({}; {lo:.2} idle, {hi:.2} busy)",
                        s.name,
                        s.domains.join(", ")
                    ),
                    _ => format!("{} ({})", s.name, s.domains.join(", ")),
                })
                .collect::<Vec<_>>()
                .join(" + ")
        };
        let scope = match self.scope {
            Scope::Process => "process scope (share of host CPU time)",
            Scope::Host => "host scope (whole machine)",
        };
        let reads = if self.min_interval.is_zero() {
            "every read full".to_owned()
        } else {
            format!(
                "full reads every >= {} ms, priced by {} time between",
                self.min_interval.as_secs_f64() * 1e3,
                match self.scope {
                    Scope::Process => "CPU",
                    Scope::Host => "wall",
                }
            )
        };
        format!("{kind} energy from {srcs}, {scope}, {reads}")
    }

    /// Cumulative energy since the meter was created, joules: this process's share (process
    /// scope) or the machine's (host scope). Never decreases. A full read when
    /// [`min_interval`](Self::with_min_interval) has passed since the last one, else
    /// priced (see the type's documentation).
    pub fn read(&mut self) -> f64 {
        let now = self.origin.elapsed();
        self.read_at(now)
    }

    /// [`read`](Self::read) with the clock given: `now` is the time since the meter was created
    /// (it should not go backwards; an earlier value counts as no time passing). For tests and
    /// replays; the probes keep their own clocks.
    pub fn read_at(&mut self, now: Duration) -> f64 {
        self.reads += 1;
        let now = now.max(self.full_at);
        let key = self.key(now);
        let dkey = key.saturating_sub(self.full_key);
        let due = now - self.full_at >= self.min_interval;
        let value = match self.rate {
            Some(rate) if !due => self.reported_at_full + rate * dkey as f64,
            _ => self.full_read(now, key),
        };
        self.reported = self.reported.max(value);
        self.reported
    }

    /// The exact attribution as of the last full read (what a Carina run would report over the
    /// same reads), joules.
    pub fn exact(&self) -> f64 {
        self.exact
    }

    /// Whole-machine energy of all sources as of the last full read, unreduced, joules.
    pub fn host_total(&self) -> f64 {
        self.host
    }

    /// Reads so far, and how many of them were full.
    pub fn read_counts(&self) -> (u64, u64) {
        (self.reads, self.full_reads)
    }

    /// Problems met so far (a failed probe, no process share, an invalid `CARINA_SCOPE`),
    /// oldest first, each once.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// [`warnings`](Self::warnings), emptied.
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    fn warn(&mut self, w: String) {
        if !self.warnings.contains(&w) && self.warnings.len() < 64 {
            self.warnings.push(w);
        }
    }

    /// What reads between full reads are priced by: the process's CPU time (process scope) or wall
    /// time (host scope), nanoseconds.
    fn key(&mut self, now: Duration) -> u64 {
        match self.scope {
            Scope::Host => u64::try_from(now.as_nanos()).unwrap_or(u64::MAX),
            Scope::Process => match self.sampler.target_cpu_ns() {
                Ok(ns) => ns,
                Err(e) => {
                    self.warn(format!("cannot read this process's CPU time ({e})"));
                    self.full_key
                }
            },
        }
    }

    /// Reads every probe and the share, adds the window's attribution, sets the next window's
    /// price; returns the reading at this full read.
    fn full_read(&mut self, now: Duration, key: u64) -> f64 {
        self.full_reads += 1;
        let now_ns = u64::try_from(now.as_nanos()).unwrap_or(u64::MAX);
        let sample = self.sampler.sample(now_ns);
        for w in self.sampler.take_warnings() {
            self.warn(w);
        }
        let attributed = sample.energy.sum().total().0;
        let host = sample.host.0;
        self.exact += attributed;
        self.host += host;
        let dkey = key.saturating_sub(self.full_key);
        let reading = match self.rate {
            // No price yet (or exact mode): the reading is the exact attribution.
            None => self.exact,
            // Continuous: what the price says now.
            Some(rate) => self.reported_at_full + rate * dkey as f64,
        };
        if !self.min_interval.is_zero() {
            self.update_price(now, key);
        }
        self.reported_at_full = reading;
        self.full_at = now;
        self.full_key = key;
        reading
    }

    /// Sets the price of reads between full reads from the window since the last price: the exact
    /// attribution over it per key nanosecond, once it lasted `min_interval`. A window in which
    /// the process used CPU less than a fifth of the time is dropped and the price kept: its
    /// share (the whole host interval whenever `/proc/stat` did not move) says little about the
    /// energy per CPU nanosecond of a busy benchmark.
    fn update_price(&mut self, now: Duration, key: u64) {
        let (t0, k0, e0) = self.anchor;
        let wall = now.saturating_sub(t0);
        if wall < self.min_interval {
            return;
        }
        let dkey = key.saturating_sub(k0);
        if dkey > 0 && dkey as f64 >= MIN_BUSY * wall.as_nanos() as f64 {
            self.rate = Some((self.exact - e0).max(0.0) / dkey as f64);
        }
        self.anchor = (now, key, self.exact);
    }
}

/// The least CPU time per wall time of a window that sets the price: a fifth.
const MIN_BUSY: f64 = 0.2;
