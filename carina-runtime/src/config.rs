//! What a session needs, resolved (the facade's builder fills it), and why a run cannot start
//! or finish.

use crate::attribution::StepDetail;
use crate::carbon::Carbon;
use crate::energy::EnergyProbe;
use crate::record::{EnergySource, Scope, UnmarkedThreads};
use crate::share::ShareTarget;
use crate::sink::Sink;
use std::path::PathBuf;
use std::time::Duration;

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
    /// Path of the JSON-lines file among `sinks`, if any (reported in the summary). It must be
    /// the first sink: its `run_start` is in the file when `start` returns.
    pub run_file: Option<PathBuf>,
    /// What a run file that refuses `run_start` does (a full disk): `true`, `start` fails with
    /// [`StartError::RunStart`]; `false` (best effort), the run goes on without it. Either way
    /// the file is removed: no empty run file is left behind.
    pub require_run_file: bool,
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
    /// Where the CPU energy of threads that never mark a step goes.
    pub unmarked_threads: UnmarkedThreads,
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
    /// The run file was created but `run_start` could not be written into it (a full disk);
    /// the file was removed.
    #[error(
        "cannot write run_start to the run file {path}: {source}; the file was removed (is the disk full?)"
    )]
    RunStart {
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
