//! A run in progress: [`Session::start`] installs the recorder and starts the aggregator thread
//! (the crate's private `aggregator` module); [`Session::finish`] stops it and returns the [`RunSummary`].

use crate::aggregator::{Aggregator, Control, NO_OVERRIDE};
pub use crate::config::{FinishError, SessionConfig, StartError};
pub use crate::record::Scope;
pub use crate::summary::{Additions, RunSummary};
use carina_core::recorder::{self, Registry};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// A running session. Dropping it finishes it.
pub struct Session {
    epoch: u64,
    run_file: Option<PathBuf>,
    control: Arc<Control>,
    handle: Option<JoinHandle<RunSummary>>,
}

impl Session {
    /// Installs the recorder, writes `run_start` into every sink (and into the run file, not
    /// just a buffer: a process that exits or aborts right after `start` leaves a readable,
    /// incomplete file) and starts the aggregator thread. A run file that refuses `run_start`
    /// is removed, and fails the start unless `require_run_file` is off.
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
        if let Err(e) = aggregator.write_start() {
            recorder::uninstall(epoch);
            return Err(e);
        }
        let run_file = aggregator.run_file().map(Path::to_path_buf);
        let handle = std::thread::Builder::new()
            .name("carina-aggregator".into())
            .spawn(move || aggregator.run(&ctl));
        match handle {
            Ok(h) => Ok(Session {
                epoch,
                run_file,
                control,
                handle: Some(h),
            }),
            Err(e) => {
                recorder::uninstall(epoch);
                // The aggregator (and the file's descriptor) went with the failed spawn.
                if let Some(p) = &run_file {
                    let _ = std::fs::remove_file(p);
                }
                Err(StartError::Spawn(e))
            }
        }
    }

    /// The run file being written: `SessionConfig::run_file`, or `None` when it refused
    /// `run_start` and the run goes on without it (best effort).
    pub fn run_file(&self) -> Option<&Path> {
        self.run_file.as_deref()
    }

    /// Sets the run's item count explicitly (otherwise the largest per-name total).
    pub fn set_items(&self, n: u64) {
        self.control
            .items_override
            .store(n.min(NO_OVERRIDE - 1), Ordering::Relaxed);
    }

    /// Stops recording, attributes the last interval, writes summaries and `run_end`, flushes
    /// and fsyncs the sinks.
    ///
    /// Problems met after `run_end` was written (a sink's final flush failed, e.g. the last
    /// OTLP export; records a sink lost) cannot be in the run file: they are in
    /// [`RunSummary::warnings`] after `run_end.warnings`, and printed once on stderr here.
    pub fn finish(mut self) -> Result<RunSummary, FinishError> {
        self.finish_inner().inspect(print_late_warnings)
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
        self.finish_inner().inspect(print_late_warnings)
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

/// Prints the warnings that came after `run_end` (the final flush), which no run file holds:
/// the application that ignores the returned summary still hears of them, once. (A session
/// dropped without `finish` prints all its warnings instead.)
fn print_late_warnings(s: &RunSummary) {
    let in_file = s.end.as_ref().map_or(0, |e| e.warnings.len());
    for w in s.warnings.iter().skip(in_file) {
        eprintln!("carina: warning: {w}");
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribution::StepDetail;
    use crate::carbon::{Carbon, CarbonFactor};
    use crate::share::ShareTarget;
    use crate::sink::{JsonLinesSink, LineFile, Sink};

    /// A run file on a disk that is full from the start.
    struct Full;

    impl LineFile for Full {
        fn append(&mut self, _: &[u8]) -> std::io::Result<()> {
            Err(std::io::Error::from_raw_os_error(libc::ENOSPC))
        }
        fn truncate(&mut self, _: u64) -> std::io::Result<()> {
            Ok(())
        }
        fn sync(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn config(path: &Path, require_run_file: bool) -> SessionConfig {
        let sink: Box<dyn Sink> = Box::new(JsonLinesSink::with_file(path, Box::new(Full)));
        SessionConfig {
            job: "full".into(),
            run_id: "full-1".into(),
            sample_interval: std::time::Duration::from_millis(10),
            carbon: Carbon::Fixed(CarbonFactor::world()),
            detail: StepDetail::All,
            probes: Vec::new(),
            sinks: vec![sink],
            run_file: Some(path.to_path_buf()),
            require_run_file,
            scope: Scope::Process,
            ring_capacity: 1024,
            max_pending_records: 1024,
            proc_root: "/proc".into(),
            warnings: Vec::new(),
            unused_sources: Vec::new(),
            share_target: ShareTarget::SelfProcess,
            step_exit_hook: None,
            unmarked_threads: Default::default(),
        }
    }

    // One test: one session may be installed per process.
    #[test]
    fn a_run_file_that_refuses_run_start_is_removed_and_fails_or_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("full-1.jsonl");
        // The file was created; the disk refuses its first line.
        std::fs::write(&path, "").unwrap();
        let e = Session::start(config(&path, true)).err().expect("strict");
        assert!(matches!(e, StartError::RunStart { .. }), "{e}");
        assert!(e.to_string().contains("full-1.jsonl"), "{e}");
        assert!(!path.exists(), "no empty run file left behind");

        // Best effort: the run goes on without the file, and says so.
        std::fs::write(&path, "").unwrap();
        let s = Session::start(config(&path, false)).expect("best effort");
        assert_eq!(s.run_file(), None);
        assert!(!path.exists());
        let summary = s.finish().unwrap();
        assert_eq!(summary.run_file, None);
        assert!(
            summary
                .warnings
                .iter()
                .any(|w| w.contains("full-1.jsonl") && w.contains("best effort")),
            "{:?}",
            summary.warnings
        );
    }
}
