//! Carina's core: the contract every other crate builds on. The step recorder (hot path), the
//! aggregator and energy attribution, the session runtime, the [`EnergyProbe`] trait, carbon
//! factors, run-file records, sinks, the run-file reader and typed units. No hardware access,
//! no estimation model (both in `carina-probes`), no peak-hour control (`carina-control`).
//!
//! Most users depend on the `carina` facade crate instead, which re-exports what is needed and
//! adds the `Run` builder and the `#[carina::step]` attribute. Depend on `carina-core` directly
//! to implement an [`EnergyProbe`] or a [`Sink`], or to read run files.
//!
//! # Public API
//! - Units ([`units`]): [`Joules`], [`Watts`], [`Seconds`], [`GramsCo2e`], [`KilowattHours`].
//! - Recording ([`recorder`]): [`step`] and its guard [`Step`], [`instrument`] /
//!   [`Instrumented`] (async), the segment API ([`enter_segment`], [`exit_segment`],
//!   [`new_segment_id`], [`SegmentToken`]) for integrations, [`is_recording`],
//!   `recorder::emit_control` (a governor's mode change).
//! - Running ([`session`]): [`Session`] over a [`SessionConfig`], returning a [`RunSummary`]
//!   (which implements `Display`); [`Scope`], [`StartError`], [`FinishError`]. Applications
//!   start runs through the facade's `RunBuilder`, which fills the config.
//! - Attribution ([`aggregator`], [`share`]): the `Attributor`, its typed `Energy` channels,
//!   [`StepDetail`]; `CpuShare` / `ShareTarget` (the run's share of host energy), over [`procfs`]
//!   (every `/proc` read of the core) and [`cpuclock`].
//! - Energy sources ([`energy`]): the [`EnergyProbe`] trait, [`ProbeScope`], [`ProbeError`].
//! - Carbon ([`carbon`], [`zones`]): [`Carbon`], [`CarbonFactor`], [`IntensitySeries`],
//!   [`CarbonError`]; 211 grid zones from `data/zones.csv`.
//! - Records and files ([`record`], [`sink`], [`reader`], [`merge`]): [`Record`] and its
//!   payloads, [`EnergyKind`], [`EnergySource`]; [`Sink`], [`JsonLinesSink`], [`LineFile`],
//!   [`SinkError`] (and `MemorySink` with feature `test-util`); [`read_run_file`] / [`RunFile`] /
//!   [`ReadError`] (errors name the file, line and field); merging children's run files.
//! - Text ([`format`](mod@format), [`naming`], [`text`]): the one formatting module every output uses
//!   (figures with units, terminal escaping), run ids and path-safe names, edit distance.
//!
//! See `docs/ARCHITECTURE.md` for the data flow and `docs/FORMAT.md` for the record format.

#![deny(missing_docs)]

pub mod aggregator;
pub mod carbon;
pub mod cpuclock;
pub mod energy;
pub mod format;
mod histogram;
pub mod merge;
pub mod naming;
pub mod procfs;
pub mod reader;
pub mod record;
pub mod recorder;
mod ring;
pub mod session;
pub mod share;
pub mod sink;
pub mod text;
pub mod units;
pub mod zones;

pub use aggregator::StepDetail;
pub use carbon::{Carbon, CarbonError, CarbonFactor, IntensitySeries};
pub use energy::{EnergyProbe, ProbeError, ProbeReport, ProbeScope, UsageShare};
pub use reader::{ReadError, RunFile, read_run_file};
pub use record::{EnergyKind, EnergySource, Record};
pub use recorder::{
    Instrumented, SegmentToken, Status, Step, enter_segment, enter_segment_with, exit_segment,
    gpu_step, instrument, is_recording, new_segment_id, step,
};
pub use session::{FinishError, RunSummary, Scope, Session, SessionConfig, StartError};
pub use sink::{JsonLinesSink, LineFile, Sink, SinkError};
#[cfg(any(test, feature = "test-util"))]
pub use sink::{MemoryRecords, MemorySink};
pub use units::{GramsCo2e, Joules, KilowattHours, Seconds, Watts};
