//! Where records go: the [`Sink`] trait, the JSON-lines run file, and (feature `test-util`) a
//! memory sink for tests.
//!
//! Sinks run on the aggregator thread only, never on an application thread.

use crate::record::Record;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// A failed sink operation.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Writing or syncing a file failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Any other failure, described.
    #[error("{0}")]
    Other(String),
}

/// Receives every record of a run, in order.
///
/// Errors are counted by the aggregator (`run_end.sink_errors`) and never reach the application.
pub trait Sink: Send {
    /// Writes one record.
    fn write(&mut self, record: &Record) -> Result<(), SinkError>;
    /// Makes everything written so far durable. Called once, when the run finishes.
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

impl<S: Sink + ?Sized> Sink for Box<S> {
    fn write(&mut self, record: &Record) -> Result<(), SinkError> {
        (**self).write(record)
    }
    fn flush(&mut self) -> Result<(), SinkError> {
        (**self).flush()
    }
}

/// Writes one JSON object per line to a file, buffered; [`flush`](Sink::flush) also fsyncs.
pub struct JsonLinesSink {
    path: PathBuf,
    out: BufWriter<File>,
}

impl JsonLinesSink {
    /// Creates `path` (and its parent directories), truncating an existing file.
    pub fn create(path: impl Into<PathBuf>) -> Result<Self, SinkError> {
        let path = path.into();
        let io = |source| SinkError::Io {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let file = File::create(&path).map_err(io)?;
        Ok(JsonLinesSink {
            out: BufWriter::with_capacity(1 << 16, file),
            path,
        })
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Sink for JsonLinesSink {
    fn write(&mut self, record: &Record) -> Result<(), SinkError> {
        let io = |source| SinkError::Io {
            path: self.path.clone(),
            source,
        };
        serde_json::to_writer(&mut self.out, record).map_err(|e| io(e.into()))?;
        self.out.write_all(b"\n").map_err(io)
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        let io = |source| SinkError::Io {
            path: self.path.clone(),
            source,
        };
        self.out.flush().map_err(io)?;
        self.out.get_ref().sync_all().map_err(io)
    }
}

#[cfg(any(test, feature = "test-util"))]
pub use memory::{MemoryRecords, MemorySink};

#[cfg(any(test, feature = "test-util"))]
mod memory {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Keeps every record in memory; read them through the [`MemoryRecords`] handle.
    #[derive(Default)]
    pub struct MemorySink {
        records: Arc<Mutex<Vec<Record>>>,
    }

    /// Shared view of what a [`MemorySink`] received.
    #[derive(Clone, Default)]
    pub struct MemoryRecords {
        records: Arc<Mutex<Vec<Record>>>,
    }

    impl MemorySink {
        /// A sink and the handle to read it.
        pub fn new() -> (Self, MemoryRecords) {
            let records = Arc::new(Mutex::new(Vec::new()));
            (
                MemorySink {
                    records: records.clone(),
                },
                MemoryRecords { records },
            )
        }
    }

    impl Sink for MemorySink {
        fn write(&mut self, record: &Record) -> Result<(), SinkError> {
            self.records
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(record.clone());
            Ok(())
        }
    }

    impl MemoryRecords {
        /// A copy of all records so far.
        pub fn all(&self) -> Vec<Record> {
            self.records
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
        }

        /// The `step` records so far.
        pub fn steps(&self) -> Vec<crate::record::StepRecord> {
            self.all()
                .into_iter()
                .filter_map(|r| match r {
                    Record::Step(s) => Some(s),
                    _ => None,
                })
                .collect()
        }

        /// The `step_summary` records so far.
        pub fn summaries(&self) -> Vec<crate::record::StepSummary> {
            self.all()
                .into_iter()
                .filter_map(|r| match r {
                    Record::StepSummary(s) => Some(s),
                    _ => None,
                })
                .collect()
        }

        /// The `run_end` record, once written.
        pub fn run_end(&self) -> Option<crate::record::RunEnd> {
            self.all().into_iter().find_map(|r| match r {
                Record::RunEnd(e) => Some(e),
                _ => None,
            })
        }
    }
}
