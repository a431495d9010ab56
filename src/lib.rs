//! Carina: energy- and carbon-aware execution of recurrent analytics.
//!
//! Mark the steps of a batch job, run it, and get a run file with per-step time, energy
//! (measured where a hardware counter exists, estimated otherwise, and always labelled) and CO2e.
//!
//! # In executables
//! Start one run per process, mark steps, finish:
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let run = carina::Run::builder("scenario-db").output_dir("runs").start()?;
//! {
//!     let mut g = carina::step("load");
//!     g.add_items(1000);
//! }
//! let summary = run.finish()?;
//! println!("{:.2} Wh ({})", summary.energy().wh(), summary.energy_kind());
//! # Ok(()) }
//! ```
//!
//! # In libraries
//! Mark steps with `#[carina::step]` or [`step()`] and never start a run: with no run installed a
//! step costs one relaxed atomic load and records nothing, so the application decides.
//!
//! ```
//! #[carina::step(name = "solve", items = cases.len())]
//! fn solve(cases: &[f64]) -> f64 {
//!     cases.iter().sum()
//! }
//! assert_eq!(solve(&[1.0, 2.0]), 3.0);
//! ```
//!
//! # Environment
//! `CARINA_DIR` output directory, `CARINA_DISABLE=1` no-op, `CARINA_SCOPE=host|process`,
//! `CARINA_POWERCAP_ROOT` replaces `/sys/class/powercap`, `CARINA_RUN_ID` / `CARINA_JOB`
//! override the run id and job name; `CARINA_PARENT_PID` (set by `carina run`) makes the run file
//! `<run_id>.child-<pid>.jsonl`, which the parent merges into its own. [`RunBuilder`] reads them
//! all (`carina run` starts its run through it too), but `CARINA_POWERCAP_ROOT`, which the
//! powercap probe reads where it opens its tree.
//!
//! # Public API
//! - Marking steps: [`step()`] (an RAII guard, [`Step`]), `#[carina::step]` (feature `macros`),
//!   [`is_recording`].
//! - Running (feature `run`, default): [`Run`], [`RunBuilder`] (settings, sinks, probes, scope,
//!   [`ShareTarget`], observers), [`RunSummary`] (prints itself), [`Additions`] for
//!   `finish_with`, [`StartError`], [`FinishError`], the defaults; [`PowerModel`] for a
//!   user-given power.
//! - Figures: [`Joules`], [`Watts`], [`Seconds`], [`GramsCo2e`], [`KilowattHours`],
//!   [`EnergyKind`], [`Scope`], [`ProbeScope`], [`StepDetail`]; carbon: [`Carbon`],
//!   [`CarbonFactor`], [`IntensitySeries`], [`CarbonError`].
//! - Files: [`record`] (the record types), [`sink`] ([`Sink`], the JSON-lines sink), reading:
//!   [`read_run_file`], [`RunFile`], [`ReadError`].
//! - Extending: [`EnergyProbe`], [`ProbeError`].
//! - Peak-hour control (feature `control`, default): [`control`].
//!
//! Features: `macros`, `run`, `nvml`, `control` (all default) and `test-util`. A library that
//! only marks steps uses `default-features = false, features = ["macros"]`: it then depends on
//! `carina-core` (libc and pin-project-lite) and `carina-macros` (syn, quote, proc-macro2)
//! only; without `macros`, on `carina-core` alone.

#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "run")]
#[cfg_attr(docsrs, doc(cfg(feature = "run")))]
mod run;

#[cfg(feature = "run")]
#[cfg_attr(docsrs, doc(cfg(feature = "run")))]
pub use run::{
    Additions, DEFAULT_BUFFER_CAPACITY, DEFAULT_MAX_PENDING_RECORDS, DEFAULT_SAMPLE_INTERVAL,
    MAX_BUFFER_CAPACITY, MAX_PENDING_RECORDS, MAX_SAMPLE_INTERVAL, MIN_BUFFER_CAPACITY,
    MIN_SAMPLE_INTERVAL, Run, RunBuilder, ShareTarget,
};

#[doc(inline)]
pub use carina_core::{
    ControlMode, GramsCo2e, Joules, KilowattHours, Seconds, Step, Watts, gpu_step, is_recording,
    step,
};

#[cfg(feature = "run")]
#[cfg_attr(docsrs, doc(cfg(feature = "run")))]
#[doc(inline)]
pub use carina_runtime::{
    Carbon, CarbonError, CarbonFactor, EnergyKind, EnergyProbe, EnergyProbeExt, FinishError,
    IntensitySeries, ProbeError, ProbeReport, ProbeScope, ReadError, Reading, Record, RunFile,
    RunSummary, Scope, Sink, SinkError, SourceId, StartError, StepDetail, Unavailable,
    UnavailableCause, UsageShare, read_run_file, record::UnmarkedThreads,
};

/// Run-file record types (schema 1).
#[cfg(feature = "run")]
#[cfg_attr(docsrs, doc(cfg(feature = "run")))]
pub use carina_runtime::record;

/// The estimation model's power figures (watts per part), for `RunBuilder::model`.
#[cfg(feature = "run")]
#[cfg_attr(docsrs, doc(cfg(feature = "run")))]
pub use carina_probes::model::PowerModel;

/// Peak-aware execution: schedules, policies, the governor and the simulator
/// (`docs/CONTROL.md`; feature `control`, on by default).
#[cfg(feature = "control")]
#[cfg_attr(docsrs, doc(cfg(feature = "control")))]
pub use carina_control as control;

/// Sinks: the JSON-lines run file and, with feature `test-util`, a memory sink.
#[cfg(feature = "run")]
#[cfg_attr(docsrs, doc(cfg(feature = "run")))]
pub mod sink {
    pub use carina_runtime::sink::{JsonLinesSink, LineFile, MAX_PENDING_BYTES};
    #[cfg(feature = "test-util")]
    #[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
    pub use carina_runtime::sink::{MemoryRecords, MemorySink};
}

/// Helpers for tests that record runs (feature `test-util`): one run may be installed per
/// process and the tests of one binary run on parallel threads, so each such test holds
/// [`serial`](testing::serial) while it records.
#[cfg(all(feature = "test-util", feature = "run"))]
pub mod testing {
    use crate::sink::{MemoryRecords, MemorySink};
    use std::sync::{Mutex, MutexGuard};

    static SERIAL: Mutex<()> = Mutex::new(());

    /// Serialises the tests of one binary that start runs.
    pub fn serial() -> MutexGuard<'static, ()> {
        SERIAL.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a run with a memory sink, no run file, a constant 100 W model and a 10 ms
    /// sampling interval. Panics if the run cannot start (test code).
    pub fn memory_run(job: &str) -> (crate::Run, MemoryRecords) {
        let (sink, recs) = MemorySink::new();
        let run = crate::Run::builder(job)
            .run_file(false)
            .sink(sink)
            .constant_watts(100.0)
            .sample_interval(std::time::Duration::from_millis(10))
            .start()
            .expect("start");
        (run, recs)
    }

    /// Busy-waits for `micros` so that steps have a real, CPU-consuming duration.
    pub fn spin(micros: u64) {
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while t.elapsed().as_micros() < u128::from(micros) {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
}

/// Records a function call as a step.
///
/// Arguments (all optional): `name = "..."` (default `module::path::function`),
/// `items = <expr>` (evaluated before the body, converted with `as u64`), `crate = path` (where
/// the `carina` crate is, if renamed). Works on free functions, methods, generic and `unsafe`
/// functions, and `async fn` (the step spans first poll to completion; energy is counted only
/// while polled). A function returning `...Result<_, _>` records `status: "error"` when it
/// returns `Err`.
#[cfg(feature = "macros")]
#[cfg_attr(docsrs, doc(cfg(feature = "macros")))]
pub use carina_macros::step;

/// Used by code that `#[carina::step]` generates. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use carina_core::recorder::{
        Instrumented, Step, gpu_step as gpu_enter, instrument, step as enter,
    };

    /// Whether a `Result` is an `Err`; generated code calls it on `Result`-returning functions.
    #[inline]
    pub fn is_err<T, E>(r: &Result<T, E>) -> bool {
        r.is_err()
    }

    /// Never an error; used for functions not returning a `Result`.
    #[inline]
    pub fn never_err<T>(_: &T) -> bool {
        false
    }
}

/// The Rust snippets of `docs/*.md` that need nothing but this crate, compiled (and, unless
/// marked `no_run` with the reason beside them, run) by `cargo test -p carina --doc`, so a doc
/// that falls behind the API fails the tests. Non-Rust blocks carry their language (`text`,
/// `sh`, `toml`, `json`, `csv`), which rustdoc leaves alone.
///
/// README.md and the integration guides (docs/TRACING.md, docs/CRITERION.md, docs/FLEET.md) use
/// `carina-tracing`, `carina-criterion`, `carina-otel`, `tracing-subscriber` and `criterion`,
/// which this crate must not depend on, not even as dev-dependencies (`cargo run --example`
/// would build them): the doc-only library of the `carina-tests` package compiles them. The
/// data examples of the docs (the intensity CSV, the schedule TOML, the run file) are parsed by
/// carina-tests' `doc_examples` module.
#[cfg(doctest)]
mod doc_snippets {
    #[doc = include_str!("../docs/ARCHITECTURE.md")]
    struct Architecture;
    #[doc = include_str!("../docs/CARBON.md")]
    struct Carbon;
    #[doc = include_str!("../docs/CLI.md")]
    struct Cli;
    #[doc = include_str!("../docs/CONTROL.md")]
    struct Control;
    #[doc = include_str!("../docs/COUNTERS.md")]
    struct Counters;
    #[doc = include_str!("../docs/ENERGY.md")]
    struct Energy;
    #[doc = include_str!("../docs/FORMAT.md")]
    struct Format;
}
