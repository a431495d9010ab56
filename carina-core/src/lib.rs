//! Carina's core: the step recorder, the aggregator and energy attribution, the estimation
//! model, carbon factors, run-file records, sinks and the run-file reader.
//!
//! Most users depend on the `carina` facade crate instead, which re-exports what is needed and
//! adds the `Run` builder and the `#[carina::step]` attribute. Depend on `carina-core` directly
//! to implement an [`EnergyProbe`] or a [`Sink`], or to read run files.
//!
//! See `docs/ARCHITECTURE.md` for the data flow and `docs/FORMAT.md` for the record format.

#![deny(missing_docs)]

pub mod aggregator;
pub mod carbon;
pub mod coefficients;
pub mod control;
pub mod cpuclock;
pub mod energy;
mod histogram;
pub mod naming;
pub mod procfs;
pub mod reader;
pub mod record;
pub mod recorder;
mod ring;
pub mod session;
pub mod sink;
pub mod text;
pub mod units;
pub mod zones;

pub use aggregator::StepDetail;
pub use carbon::{Carbon, CarbonError, CarbonFactor, IntensitySeries};
pub use energy::{EnergyProbe, ModelProbe, PowerModel, ProbeError, ProbeScope};
pub use reader::{ReadError, RunFile, read_run_file};
pub use record::{EnergyKind, EnergySource, Record};
pub use recorder::{
    Instrumented, SegmentToken, Status, Step, enter_segment, exit_segment, instrument,
    is_recording, new_segment_id, step,
};
pub use session::{FinishError, RunSummary, Scope, Session, SessionConfig, StartError};
pub use sink::{JsonLinesSink, LineFile, Sink, SinkError};
#[cfg(any(test, feature = "test-util"))]
pub use sink::{MemoryRecords, MemorySink};
pub use units::{Joules, Seconds, Watts};
