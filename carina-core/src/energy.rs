//! Energy sources: the [`EnergyProbe`] trait every source implements (RAPL, NVML and the
//! estimation model live in `carina-probes`), and the errors a source reports.

use crate::record::{Basis, EnergySource, ShareRule};
use crate::units::Joules;
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
    /// The source exists but cannot be used; the message says why and what to do.
    #[error("{0}")]
    Unavailable(String),
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
    /// to the processes `pids` (sorted ascending), in `[0, 1]`, with the rule that gave it.
    /// Leaves `None` where it cannot tell; the run's CPU share applies there. Called right
    /// after `read`, in process scope only.
    fn usage_share(&mut self, pids: &[u32], out: &mut [Option<UsageShare>]) {
        let _ = (pids, out);
    }
    /// What the probe met since the last call, besides energy: warnings (a failed query, a
    /// counter reset, a recovered read), counter reads that failed, intervals it could only
    /// count low, and domains whose method changed. Called by the session after every
    /// [`read`](Self::read); it puts the warnings in `run_end.warnings`, adds the read errors to
    /// `run_end.probe_errors` and labels the figures (`run_end.method`).
    fn take_report(&mut self) -> ProbeReport {
        ProbeReport::default()
    }
}

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
/// ([`EnergyProbe::take_report`]). Empty by default.
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
    /// Domains whose [`Basis`] changed (by index into [`EnergyProbe::domains`]): a GPU whose
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
    fn usage_share(&mut self, pids: &[u32], out: &mut [Option<UsageShare>]) {
        (**self).usage_share(pids, out)
    }
    fn take_report(&mut self) -> ProbeReport {
        (**self).take_report()
    }
}
