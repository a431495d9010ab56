//! Energy sources: the [`EnergyProbe`] trait every source implements (RAPL, NVML and the
//! estimation model live in `carina-probes`), and the errors a source reports.

use crate::record::{Basis, EnergySource, ShareRule};
use carina_core::units::Joules;
use std::path::PathBuf;

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
    /// The source cannot be used here: why, and what would make it usable
    /// ([`Unavailable::reason`], [`Unavailable::fix`]), as the probe itself tells it.
    #[error("{0}")]
    Unavailable(Unavailable),
}

impl ProbeError {
    /// An [`Unavailable`](ProbeError::Unavailable) error with no fix.
    pub fn unavailable(cause: UnavailableCause, reason: impl Into<String>) -> ProbeError {
        ProbeError::Unavailable(Unavailable::new(cause, reason))
    }

    /// The error as a source that cannot be used: [`Unavailable`](ProbeError::Unavailable) as it
    /// is; a file that cannot be read or parsed as [`UnavailableCause::Failed`] with the error's
    /// text (which names the file and the field) and no fix.
    pub fn into_unavailable(self) -> Unavailable {
        match self {
            ProbeError::Unavailable(u) => u,
            other => Unavailable::new(UnavailableCause::Failed, other.to_string()),
        }
    }
}

/// Why a source cannot be used, in words for people (`reason`, `fix`) and as a typed cause for
/// programs, so that nothing has to read the words to decide.
///
/// A probe builds it where it meets the problem, because only the probe knows what fixes it:
/// the fix must never contradict the reason (no "run as root" to a process that is root, no
/// permission change when the hardware is absent). The run file carries `reason` and `fix`
/// (`run_start.energy_sources[]`); `carina doctor` prints them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Unavailable {
    /// What kind of obstacle it is.
    pub cause: UnavailableCause,
    /// What was found, naming the file, device or setting.
    pub reason: String,
    /// A concrete command or setting that would make the source usable, if one exists on this
    /// machine; `None` when nothing here would help (no such hardware) or nothing is wrong (a
    /// better source is used).
    pub fix: Option<String>,
}

impl Unavailable {
    /// An obstacle with no fix.
    pub fn new(cause: UnavailableCause, reason: impl Into<String>) -> Unavailable {
        Unavailable {
            cause,
            reason: reason.into(),
            fix: None,
        }
    }

    /// Sets the fix (builder style).
    pub fn with_fix(mut self, fix: impl Into<String>) -> Unavailable {
        self.fix = Some(fix.into());
        self
    }
}

/// The reason, then the fix when there is one: `<reason>; fix: <fix>`.
impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)?;
        if let Some(fix) = &self.fix {
            write!(f, "; fix: {fix}")?;
        }
        Ok(())
    }
}

impl From<Unavailable> for ProbeError {
    fn from(u: Unavailable) -> ProbeError {
        ProbeError::Unavailable(u)
    }
}

/// A bare reason (a custom probe's message): [`UnavailableCause::Failed`], no fix.
impl From<String> for Unavailable {
    fn from(reason: String) -> Unavailable {
        Unavailable::new(UnavailableCause::Failed, reason)
    }
}

/// A bare reason (a custom probe's message): [`UnavailableCause::Failed`], no fix.
impl From<&str> for Unavailable {
    fn from(reason: &str) -> Unavailable {
        Unavailable::new(UnavailableCause::Failed, reason)
    }
}

/// What kind of obstacle keeps a source from being used ([`Unavailable::cause`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UnavailableCause {
    /// Nothing to read on this machine: no such hardware, interface or driver (no RAPL zone, no
    /// `power` PMU, no NVIDIA library or GPU).
    Absent,
    /// The source is there, but this process may not read it.
    Permission,
    /// The source opened, but its counters did not advance while the CPU ran (a virtualised PMU
    /// that reads 0, an emulated or copied tree): no permission or driver makes it count.
    NotCounting,
    /// Usable, but not needed: another source measures the same energy and is preferred.
    Superseded,
    /// Turned off, by the build (a feature) or by the caller.
    Disabled,
    /// The driver or library is there, but too old for what the probe needs.
    Outdated,
    /// Anything else: a file that cannot be read or parsed, a driver error; the reason says which.
    Failed,
}

impl UnavailableCause {
    /// A stable lower-case word for machine-readable output (`carina doctor --format json`):
    /// `absent`, `permission`, `not-counting`, `superseded`, `disabled`, `outdated`, `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            UnavailableCause::Absent => "absent",
            UnavailableCause::Permission => "permission",
            UnavailableCause::NotCounting => "not-counting",
            UnavailableCause::Superseded => "superseded",
            UnavailableCause::Disabled => "disabled",
            UnavailableCause::Outdated => "outdated",
            UnavailableCause::Failed => "failed",
        }
    }
}

impl std::fmt::Display for UnavailableCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

pub use crate::record::ProbeScope;

/// A source of cumulative energy.
///
/// Implementations report, at each call of [`read`](Self::read), the energy consumed since the
/// probe was created, per domain. They are called from the aggregator thread only, at the
/// sampling interval (default 10 Hz), so they may do I/O.
pub trait EnergyProbe: Send {
    /// What the source is, for the run file (`run_start.energy_sources`) and the sampler: its
    /// name, kind and basis, its `domains` in the order [`read`](Self::read) fills them, and
    /// its `scope` (whole machine or this process).
    fn describe(&self) -> EnergySource;
    /// Writes each domain's cumulative energy into `reading.energy` (one value per domain of
    /// [`describe`](Self::describe)), an estimate's cumulative band into `reading.band`, and
    /// what the probe met since the last read into `reading.report`. The report is read even
    /// when `read` fails, so a probe can count its failed reads there.
    ///
    /// Values must never decrease: counter wraparound is the probe's business.
    fn read(&mut self, reading: &mut Reading) -> Result<(), ProbeError>;
    /// Whether [`usage_share`](Self::usage_share) can say which processes used the source
    /// (a GPU lists its compute processes; a CPU package cannot). The session collects the
    /// run's pids only when some probe says yes.
    fn knows_users(&self) -> bool {
        false
    }
    /// For a host-scoped probe that knows its users: writes into `out[i]` the share of domain
    /// `i`'s energy, over the interval closed by the latest [`read`](Self::read), that belongs
    /// to the processes `pids` (sorted ascending), in `[0, 1]`, with the rule that gave it.
    /// Leaves `None` where it cannot tell; the run's CPU share applies there. Called right
    /// after `read`, in process scope only.
    fn usage_share(&mut self, pids: &[u32], out: &mut [Option<UsageShare>]) {
        let _ = (pids, out);
    }
}

/// What one [`EnergyProbe::read`] gives: the energy per domain, an estimate's band, and a
/// report of what the probe met.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    /// Cumulative energy per domain since the probe opened.
    pub energy: Vec<Joules>,
    /// For estimates: cumulative low and high bounds of the total energy (all domains), from
    /// the spread of the model's coefficients; `None` for measurements.
    pub band: Option<(Joules, Joules)>,
    /// What the probe met since the last read: warnings, failed counter reads, intervals counted
    /// low, basis changes. The sampler puts the warnings in `run_end.warnings`, adds the read
    /// errors to `run_end.probe_errors` and labels the figures (`run_end.method`).
    pub report: ProbeReport,
}

impl Reading {
    /// A reading of `domains` domains, all at zero.
    pub fn new(domains: usize) -> Reading {
        Reading {
            energy: vec![Joules::ZERO; domains],
            band: None,
            report: ProbeReport::default(),
        }
    }
}

/// Shorthands over [`EnergyProbe::describe`] and [`EnergyProbe::read`] for code that reads a
/// probe by hand (tests, tools); the sampler does not use them.
pub trait EnergyProbeExt: EnergyProbe {
    /// The domains, as [`describe`](EnergyProbe::describe) lists them.
    fn domains(&self) -> Vec<String> {
        self.describe().domains
    }
    /// The scope, as [`describe`](EnergyProbe::describe) gives it.
    fn scope(&self) -> ProbeScope {
        self.describe().scope
    }
    /// Reads into `out` (one value per domain), dropping the band and the report.
    fn read_energy(&mut self, out: &mut [Joules]) -> Result<(), ProbeError> {
        let mut r = Reading::new(out.len());
        let result = self.read(&mut r);
        for (o, e) in out.iter_mut().zip(&r.energy) {
            *o = *e;
        }
        result
    }
}

impl<P: EnergyProbe + ?Sized> EnergyProbeExt for P {}

/// The part of a device's energy over an interval that belongs to the run
/// ([`EnergyProbe::usage_share`]), and how it was told.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UsageShare {
    /// The run's part, in `[0, 1]`.
    pub share: f64,
    /// How: the users' utilisation ([`ShareRule::GpuUse`]) or their count ([`ShareRule::Count`]).
    /// A share of 0 or 1 (the device idle, used by others only, or by the run alone) is taken
    /// whole, whatever the rule.
    pub rule: ShareRule,
}

impl UsageShare {
    /// `share` told by the users' utilisation.
    pub fn by_use(share: f64) -> Self {
        UsageShare {
            share,
            rule: ShareRule::GpuUse,
        }
    }

    /// `share` told by counting the users.
    pub fn by_count(share: f64) -> Self {
        UsageShare {
            share,
            rule: ShareRule::Count,
        }
    }
}

/// What a probe reports to the session after a read, besides the energy
/// ([`Reading::report`]). Empty by default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProbeReport {
    /// Problems worth telling the user, oldest first (`run_end.warnings`).
    pub warnings: Vec<String>,
    /// Counter reads that failed since the last report, even when the probe recovered from
    /// them (`run_end.probe_errors`).
    pub read_errors: u64,
    /// Whether some interval since the last report was counted low for good: a gap whose wraps
    /// could not be told apart, a counter reset, a stall that ended (what the counter did not
    /// count meanwhile never comes back). The run's figures are then labelled a lower bound,
    /// and a warning says why.
    pub lower_bound: bool,
    /// Whether some energy is not being counted right now: a counter that cannot be read or
    /// that stands still. It may still come back (a counter that is readable again counts the
    /// whole gap); if it is still missing when the run ends, the run's figures are a lower bound.
    pub missing: bool,
    /// Domains whose [`Basis`] changed (by index into the `domains` of [`EnergyProbe::describe`]): a GPU whose
    /// energy counter became unsupported, now integrated from power samples.
    pub basis: Vec<(usize, Basis)>,
}

impl ProbeReport {
    /// Whether there is nothing to report.
    pub fn is_empty(&self) -> bool {
        self.warnings.is_empty()
            && self.read_errors == 0
            && !self.lower_bound
            && !self.missing
            && self.basis.is_empty()
    }

    /// Adds `other` to this report.
    pub fn merge(&mut self, other: ProbeReport) {
        self.warnings.extend(other.warnings);
        self.read_errors += other.read_errors;
        self.lower_bound |= other.lower_bound;
        self.missing |= other.missing;
        self.basis.extend(other.basis);
    }
}

impl<P: EnergyProbe + ?Sized> EnergyProbe for Box<P> {
    fn describe(&self) -> EnergySource {
        (**self).describe()
    }
    fn read(&mut self, reading: &mut Reading) -> Result<(), ProbeError> {
        (**self).read(reading)
    }
    fn knows_users(&self) -> bool {
        (**self).knows_users()
    }
    fn usage_share(&mut self, pids: &[u32], out: &mut [Option<UsageShare>]) {
        (**self).usage_share(pids, out)
    }
}
