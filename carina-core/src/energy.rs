//! Energy sources: the [`EnergyProbe`] trait every source implements (RAPL, NVML and the
//! estimation model live in `carina-probes`), and the errors a source reports.

use crate::record::EnergySource;
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
