//! Carina's core: what marking a step needs, and nothing else.
//!
//! A library marks its steps with [`step`] (or `#[carina::step]` through the facade) and pays
//! one relaxed atomic load per step while no run is installed. An application installs a run
//! with the runtime (`carina-runtime`, through the facade's `carina::Run`), and the steps of
//! every library then reach its per-thread rings: a TSC read and a ring write per event, no
//! lock, no allocation, no syscall.
//!
//! This crate depends on `libc` and `pin-project-lite` alone (and on `serde` with feature `serde`, which the runtime
//! turns on to write units and control modes into run files), so that any library can mark
//! steps at the cost of three small crates in its tree.
//!
//! # Public API
//! - Marking ([`recorder`]): [`step`], [`gpu_step`] and their guard [`Step`]; [`instrument`] /
//!   [`Instrumented`] for futures; the segment API ([`enter_segment`], [`enter_segment_with`],
//!   [`exit_segment`], [`new_segment_id`], [`SegmentToken`]) for integrations, and for those whose
//!   steps end after their last segment ([`enter_first_segment`], [`enter_next_segment`],
//!   [`finish_segments`], [`fold_step`]: exact counts when the thread's buffer is full);
//!   [`is_recording`]; [`recorder::emit_control`] (a governor's mode change, [`ControlMode`]).
//! - Step attributes ([`attrs`]): `key = value` strings an integration attaches to a step by
//!   its segment id, beside the rings (cold path; the `tracing` layer's listed span fields).
//! - Units ([`units`]): [`Joules`], [`Watts`], [`Seconds`], [`GramsCo2e`], [`KilowattHours`].
//! - Clocks: the step clock ([`clock::Clock`]: TSC or `CLOCK_MONOTONIC`) and CPU-time clocks
//!   ([`cpuclock`]).
//! - For the runtime only: the run's [`recorder::Registry`], thread rings ([`ring::Consumer`])
//!   and [`recorder::Event`]s; applications never use them.
//!
//! See `docs/ARCHITECTURE.md` for the data flow.

#![deny(missing_docs)]

pub mod attrs;
pub mod clock;
pub mod cpuclock;
mod event;
pub mod recorder;
pub mod ring;
mod slot;
pub mod units;

pub use recorder::{
    ControlMode, FinalSegment, FirstSegment, Instrumented, SegmentToken, Status, Step,
    enter_first_segment, enter_next_segment, enter_segment, enter_segment_with, exit_segment,
    finish_segments, fold_step, gpu_step, instrument, is_recording, new_segment_id, step,
};
pub use units::{GramsCo2e, Joules, KilowattHours, Seconds, Watts};
