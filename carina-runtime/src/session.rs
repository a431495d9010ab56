//! A run in progress: [`Session::start`] installs the recorder and starts the aggregator thread
//! (the crate's private `aggregator` module); [`Session::finish`] stops it and returns the [`RunSummary`].

use crate::aggregator::{Aggregator, Control, NO_OVERRIDE};
pub use crate::config::{FinishError, SessionConfig, StartError};
pub use crate::record::Scope;
pub use crate::summary::{Additions, RunSummary};
use carina_core::recorder::{self, Registry};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// A running session. Dropping it finishes it.
pub struct Session {
    epoch: u64,
    control: Arc<Control>,
    handle: Option<JoinHandle<RunSummary>>,
}

impl Session {
    /// Installs the recorder and starts the aggregator thread.
    pub fn start(cfg: SessionConfig) -> Result<Session, StartError> {
        let clock = carina_core::clock::Clock::new();
        let registry = Arc::new(Registry::new(clock, cfg.ring_capacity, cfg.step_exit_hook));
        recorder::install(registry.clone()).map_err(|_| StartError::AlreadyRunning)?;
        let epoch = registry.epoch;
        let control = Arc::new(Control {
            stop: Mutex::new(false),
            wake: Condvar::new(),
            items_override: AtomicU64::new(NO_OVERRIDE),
            additions: Mutex::new(None),
        });
        let ctl = control.clone();
        let origin = registry.clock.raw();
        // The energy baselines are read here, at the run's t = 0, not when the aggregator thread
        // gets going: on a loaded machine that can be milliseconds later, and the energy in
        // between would be in no interval.
        let step_cost_ns = recorder::calibrate_step_cost(&registry.clock);
        let mut aggregator = Aggregator::new(cfg, registry, origin);
        aggregator.baseline(step_cost_ns);
        let handle = std::thread::Builder::new()
            .name("carina-aggregator".into())
            .spawn(move || aggregator.run(&ctl));
        match handle {
            Ok(h) => Ok(Session {
                epoch,
                control,
                handle: Some(h),
            }),
            Err(e) => {
                recorder::uninstall(epoch);
                Err(StartError::Spawn(e))
            }
        }
    }

    /// Sets the run's item count explicitly (otherwise the largest per-name total).
    pub fn set_items(&self, n: u64) {
        self.control
            .items_override
            .store(n.min(NO_OVERRIDE - 1), Ordering::Relaxed);
    }

    /// Stops recording, attributes the last interval, writes summaries and `run_end`, flushes
    /// and fsyncs the sinks.
    pub fn finish(mut self) -> Result<RunSummary, FinishError> {
        self.finish_inner()
    }

    /// [`finish`](Self::finish), with records and totals from outside the session written
    /// before `run_end` and folded into it ([`Additions`]): the file's `run_end` and the
    /// returned [`RunSummary`] (and its `run_end`) carry the same figures. `carina run` passes
    /// its children's run files this way.
    pub fn finish_with(mut self, additions: Additions) -> Result<RunSummary, FinishError> {
        *self
            .control
            .additions
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(additions);
        self.finish_inner()
    }

    fn finish_inner(&mut self) -> Result<RunSummary, FinishError> {
        recorder::uninstall(self.epoch);
        {
            let mut stop = self.control.stop.lock().unwrap_or_else(|e| e.into_inner());
            *stop = true;
        }
        self.control.wake.notify_all();
        match self.handle.take().map(JoinHandle::join) {
            Some(Ok(summary)) => Ok(summary),
            Some(Err(_)) | None => Err(FinishError::AggregatorPanicked),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.handle.is_some() {
            match self.finish_inner() {
                Ok(s) => {
                    for w in &s.warnings {
                        eprintln!("carina: {w}");
                    }
                }
                Err(e) => eprintln!("carina: {e}"),
            }
        }
    }
}
