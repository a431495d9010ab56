//! Carina's runtime: a run in progress and everything it writes and reads.
//!
//! [`Session`] installs the recorder of `carina-core` and runs the aggregator thread, which
//! drains the per-thread rings, reads the energy sources ([`EnergyProbe`]), splits each
//! interval's energy across threads and steps ([`attribution`]), applies the grid intensity
//! ([`carbon`]) and writes records ([`record`], [`sink`]); [`reader`] reads run files back and
//! [`merge`] folds children's run files into their parent's. No hardware access (in
//! `carina-probes`), no peak-hour control (`carina-control`).
//!
//! Applications use the `carina` facade, whose `Run` builder fills a [`SessionConfig`]; depend
//! on this crate directly to implement an [`EnergyProbe`] or a [`Sink`], or to read run files.
//! It re-exports `carina-core`, so one dependency gives both.
//!
//! # Public API
//! - Running ([`session`], [`config`], [`summary`]): [`Session`] over a [`SessionConfig`],
//!   returning a [`RunSummary`] (which implements `Display`); [`StartError`], [`FinishError`],
//!   [`Additions`](summary::Additions).
//! - Attribution ([`attribution`], [`share`]): the `Attributor`, its typed `Energy` channels;
//!   `CpuShare` / `ShareTarget` (the run's share of host energy), over [`procfs`].
//! - Energy sources ([`energy`]): the [`EnergyProbe`] trait, [`ProbeReport`], [`UsageShare`],
//!   [`ProbeError`].
//! - Carbon ([`carbon`], [`zones`]): [`Carbon`], [`CarbonFactor`], [`IntensitySeries`],
//!   [`CarbonError`]; 211 grid zones from `data/zones.csv`.
//! - Records and files ([`record`], [`sink`], [`reader`], [`merge`]): [`Record`] and its
//!   payloads (a leaf module: the types it needs live in it); [`Sink`], [`JsonLinesSink`],
//!   [`LineFile`], [`SinkError`] (and `MemorySink` with feature `test-util`);
//!   [`read_run_file`] / [`RunFile`] / [`ReadError`] (errors name the file, line and field).
//! - Input files ([`input`]): [`input::open_regular`] (regular files only, checked without
//!   blocking, bounded size), [`input::LineReader`] (bounded lines), [`input::InputError`].
//! - Text for terminals ([`format`](mod@format), [`naming`], [`text`]): figures with units,
//!   terminal escaping, run ids and path-safe names, edit distance.
//! - Everything of `carina-core` ([`step`], [`Step`], the units...).
//!
//! See `docs/ARCHITECTURE.md` for the data flow and `docs/FORMAT.md` for the record format.

#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod aggregator;
pub mod attribution;
pub mod carbon;
pub mod config;
pub mod energy;
pub mod format;
mod histogram;
pub mod input;
pub mod merge;
pub mod naming;
pub mod procfs;
pub mod reader;
pub mod record;
pub mod sampler;
pub mod session;
pub mod share;
pub mod sink;
pub mod summary;
pub mod text;
pub mod zones;

pub use carina_core::{
    ControlMode, GramsCo2e, Instrumented, Joules, KilowattHours, Seconds, SegmentToken, Status,
    Step, Watts, clock, cpuclock, enter_segment, enter_segment_with, exit_segment, gpu_step,
    instrument, is_recording, new_segment_id, recorder, ring, step, units,
};

pub use carbon::{Carbon, CarbonError, CarbonFactor, IntensitySeries};
pub use energy::{
    EnergyProbe, EnergyProbeExt, ProbeError, ProbeReport, ProbeScope, Reading, Unavailable,
    UnavailableCause, UsageShare,
};
pub use reader::{ReadError, RunFile, read_run_file};
pub use record::{EnergyKind, EnergySource, Record, SourceId, StepDetail};
pub use session::{FinishError, RunSummary, Scope, Session, SessionConfig, StartError};
pub use sink::{JsonLinesSink, LineFile, Sink, SinkError};
#[cfg(any(test, feature = "test-util"))]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub use sink::{MemoryRecords, MemorySink};
