//! Where records go: the [`Sink`] trait, the JSON-lines run file, and (feature `test-util`) a
//! memory sink for tests.
//!
//! Sinks run on the aggregator thread only, never on an application thread.

use crate::record::Record;
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
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
    /// Makes the records written so far visible to readers (in the file, not necessarily on
    /// disk), as whole lines. Called at every `power` window (about once a second), so a run
    /// killed with SIGKILL loses at most that much.
    fn checkpoint(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
    /// Makes everything written so far durable. Called once, when the run finishes.
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
    /// Bytes this sink has accepted so far (for `run_end.own_cost`); 0 when it does not count.
    fn bytes_written(&self) -> u64 {
        0
    }
    /// Records given to [`write`](Self::write) that are not in the sink's destination and will
    /// not be without another successful [`checkpoint`](Self::checkpoint) or
    /// [`flush`](Self::flush): dropped, or still held because the destination refused them.
    /// Asked after the final flush, it is what the run lost ([`RunSummary::records_lost`]);
    /// 0 for a sink that cannot lose records.
    ///
    /// [`RunSummary::records_lost`]: crate::summary::RunSummary::records_lost
    fn records_lost(&self) -> u64 {
        0
    }
}

impl<S: Sink + ?Sized> Sink for Box<S> {
    fn write(&mut self, record: &Record) -> Result<(), SinkError> {
        (**self).write(record)
    }
    fn checkpoint(&mut self) -> Result<(), SinkError> {
        (**self).checkpoint()
    }
    fn flush(&mut self) -> Result<(), SinkError> {
        (**self).flush()
    }
    fn bytes_written(&self) -> u64 {
        (**self).bytes_written()
    }
    fn records_lost(&self) -> u64 {
        (**self).records_lost()
    }
}

/// What a [`JsonLinesSink`] writes to: a file, or a fault-injecting double in tests.
pub trait LineFile: Send {
    /// Appends `buf` at the current end; on error, some prefix of `buf` may have been written.
    fn append(&mut self, buf: &[u8]) -> std::io::Result<()>;
    /// Cuts the file back to `len` bytes; later appends start there.
    fn truncate(&mut self, len: u64) -> std::io::Result<()>;
    /// Makes the content durable (fsync).
    fn sync(&mut self) -> std::io::Result<()>;
}

impl LineFile for File {
    fn append(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.write_all(buf)
    }
    fn truncate(&mut self, len: u64) -> std::io::Result<()> {
        self.set_len(len)?;
        self.seek(SeekFrom::Start(len)).map(|_| ())
    }
    fn sync(&mut self) -> std::io::Result<()> {
        self.sync_all()
    }
}

/// Largest amount of serialised records a [`JsonLinesSink`] keeps in memory while its file
/// refuses writes (a full disk): 16 MiB. Beyond it whole records are dropped and counted.
pub const MAX_PENDING_BYTES: usize = 16 << 20;
/// Pending bytes above which a [`JsonLinesSink`] writes before the next checkpoint.
const WRITE_AT: usize = 1 << 16;

/// Writes one JSON object per line to a file.
///
/// Records are serialised into memory and reach the file as whole lines only: at every
/// [`checkpoint`](Sink::checkpoint) (about once a second), when 64 KiB are pending, and at
/// [`flush`](Sink::flush), which also fsyncs. A write that fails part-way (a full disk) is cut
/// back to the last whole line, and its records stay pending for the next attempt; if the cut
/// itself fails, the next write starts on a new line so that no record is glued to a fragment.
/// While the file keeps refusing, at most [`MAX_PENDING_BYTES`] wait; later records are dropped
/// and counted ([`lost_records`](Self::lost_records)).
pub struct JsonLinesSink {
    path: PathBuf,
    out: Box<dyn LineFile>,
    pending: Vec<u8>,
    /// Bytes of whole lines in the file.
    good_len: u64,
    /// The file may end with a fragment that could not be cut off.
    torn: bool,
    lost: u64,
    /// Records in `pending` (not yet in the file).
    pending_records: u64,
    /// Bytes of records accepted (written or pending).
    accepted: u64,
}

impl JsonLinesSink {
    /// Creates `path` (and its parent directories). Never overwrites: an existing file is an
    /// error of kind `AlreadyExists` (see [`SinkError::is_already_exists`]).
    pub fn create(path: impl Into<PathBuf>) -> Result<Self, SinkError> {
        let path = path.into();
        let io = |source| SinkError::Io {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io)?;
        Ok(Self::with_file(path, Box::new(file)))
    }

    /// A sink over any [`LineFile`]; `path` names it in messages.
    pub fn with_file(path: impl Into<PathBuf>, out: Box<dyn LineFile>) -> Self {
        JsonLinesSink {
            path: path.into(),
            out,
            pending: Vec::with_capacity(WRITE_AT),
            good_len: 0,
            torn: false,
            lost: 0,
            pending_records: 0,
            accepted: 0,
        }
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records dropped because the file refused writes for longer than
    /// [`MAX_PENDING_BYTES`] could hold.
    pub fn lost_records(&self) -> u64 {
        self.lost
    }

    fn io(&self, source: std::io::Error) -> SinkError {
        SinkError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Writes the pending whole lines; on failure cuts the file back to its last whole line.
    fn write_pending(&mut self) -> Result<(), SinkError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        if self.torn {
            // A fragment could not be cut off: end it, so the reader sees one bad line and
            // the next record on a line of its own.
            if let Err(e) = self.out.append(b"\n") {
                return Err(self.io(e));
            }
            self.torn = false;
            self.good_len = u64::MAX; // unknown from here on; only used for cutting back
        }
        match self.out.append(&self.pending) {
            Ok(()) => {
                self.good_len = self.good_len.saturating_add(self.pending.len() as u64);
                self.pending.clear();
                self.pending_records = 0;
                Ok(())
            }
            Err(e) => {
                let cut = if self.good_len == u64::MAX {
                    Err(std::io::Error::other("length unknown"))
                } else {
                    self.out.truncate(self.good_len)
                };
                if cut.is_err() {
                    self.torn = true;
                }
                Err(self.io(e))
            }
        }
    }
}

impl SinkError {
    /// Whether this is a file that already exists (a run file is never overwritten).
    pub fn is_already_exists(&self) -> bool {
        matches!(self, SinkError::Io { source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists)
    }
}

impl Sink for JsonLinesSink {
    fn write(&mut self, record: &Record) -> Result<(), SinkError> {
        let mark = self.pending.len();
        if let Err(e) = serde_json::to_writer(&mut self.pending, record) {
            self.pending.truncate(mark);
            return Err(self.io(e.into()));
        }
        self.pending.push(b'\n');
        if self.pending.len() > MAX_PENDING_BYTES {
            // The file has refused writes for a while: keep what is pending, drop this one.
            self.pending.truncate(mark);
            self.lost += 1;
            return Err(SinkError::Other(format!(
                "{}: {} MiB of records wait for a file that refuses writes; a record was dropped",
                self.path.display(),
                MAX_PENDING_BYTES >> 20
            )));
        }
        self.accepted += (self.pending.len() - mark) as u64;
        self.pending_records += 1;
        if self.pending.len() >= WRITE_AT {
            self.write_pending()?;
        }
        Ok(())
    }

    fn bytes_written(&self) -> u64 {
        self.accepted
    }

    /// Records dropped beyond [`MAX_PENDING_BYTES`] plus those still pending (the file refused
    /// them at the last attempt).
    fn records_lost(&self) -> u64 {
        self.lost + self.pending_records
    }

    fn checkpoint(&mut self) -> Result<(), SinkError> {
        self.write_pending()
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.write_pending()?;
        self.out.sync().map_err(|e| self.io(e))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{PowerRecord, Record};
    use std::sync::{Arc, Mutex};

    /// A file that accepts `budget` bytes, then fails like a full disk, having written part of
    /// the buffer; `cut_fails` makes truncation fail too.
    #[derive(Clone, Default)]
    struct FullDisk {
        data: Arc<Mutex<Vec<u8>>>,
        budget: Arc<Mutex<usize>>,
        cut_fails: bool,
    }

    impl LineFile for FullDisk {
        fn append(&mut self, buf: &[u8]) -> std::io::Result<()> {
            let mut budget = self.budget.lock().unwrap();
            let n = buf.len().min(*budget);
            self.data.lock().unwrap().extend_from_slice(&buf[..n]);
            *budget -= n;
            if n < buf.len() {
                return Err(std::io::Error::from_raw_os_error(libc::ENOSPC));
            }
            Ok(())
        }
        fn truncate(&mut self, len: u64) -> std::io::Result<()> {
            if self.cut_fails {
                return Err(std::io::Error::from_raw_os_error(libc::EIO));
            }
            self.data.lock().unwrap().truncate(len as usize);
            Ok(())
        }
        fn sync(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn power(i: u32) -> Record {
        Record::Power(PowerRecord {
            start_s: carina_core::units::Seconds(f64::from(i)),
            end_s: carina_core::units::Seconds(f64::from(i + 1)),
            energy_j: carina_core::units::Joules(10.0),
            co2e_g: carina_core::units::GramsCo2e(1.0),
            energy_low_j: None,
            energy_high_j: None,
        })
    }

    fn lines(f: &FullDisk) -> Vec<String> {
        String::from_utf8(f.data.lock().unwrap().clone())
            .unwrap()
            .split_terminator('\n')
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn checkpoint_writes_whole_lines_before_the_run_ends() {
        let f = FullDisk::default();
        *f.budget.lock().unwrap() = usize::MAX;
        let mut sink = JsonLinesSink::with_file("x.jsonl", Box::new(f.clone()));
        sink.write(&power(0)).unwrap();
        assert!(lines(&f).is_empty(), "buffered until the checkpoint");
        sink.checkpoint().unwrap();
        assert_eq!(lines(&f).len(), 1);
        assert!(f.data.lock().unwrap().ends_with(b"\n"));
    }

    #[test]
    fn a_full_disk_leaves_no_partial_line_and_loses_nothing_once_space_returns() {
        let f = FullDisk::default();
        let mut sink = JsonLinesSink::with_file("x.jsonl", Box::new(f.clone()));
        *f.budget.lock().unwrap() = usize::MAX;
        sink.write(&power(0)).unwrap();
        sink.checkpoint().unwrap();
        // The disk fills up in the middle of the next write.
        *f.budget.lock().unwrap() = 30;
        sink.write(&power(1)).unwrap();
        sink.write(&power(2)).unwrap();
        let e = sink.checkpoint().unwrap_err();
        assert!(e.to_string().contains("x.jsonl"), "{e}");
        assert_eq!(lines(&f).len(), 1, "the fragment was cut back");
        assert!(f.data.lock().unwrap().ends_with(b"\n"));
        // Space comes back: the pending records arrive, in order, once each.
        *f.budget.lock().unwrap() = usize::MAX;
        sink.write(&power(3)).unwrap();
        sink.flush().unwrap();
        let all = lines(&f);
        assert_eq!(all.len(), 4);
        for (i, l) in all.iter().enumerate() {
            let r: Record = serde_json::from_str(l).unwrap();
            match r {
                Record::Power(p) => assert_eq!(p.start_s, carina_core::units::Seconds(i as f64)),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(sink.lost_records(), 0);
        assert_eq!(sink.records_lost(), 0, "held, then written: nothing lost");
    }

    #[test]
    fn when_the_cut_fails_the_next_record_starts_a_new_line() {
        let f = FullDisk {
            cut_fails: true,
            ..Default::default()
        };
        let mut sink = JsonLinesSink::with_file("x.jsonl", Box::new(f.clone()));
        *f.budget.lock().unwrap() = 25;
        sink.write(&power(0)).unwrap();
        assert!(sink.checkpoint().is_err());
        *f.budget.lock().unwrap() = usize::MAX;
        sink.flush().unwrap();
        let all = lines(&f);
        assert_eq!(all.len(), 2, "{all:?}");
        assert!(
            serde_json::from_str::<Record>(&all[0]).is_err(),
            "the fragment"
        );
        assert!(
            serde_json::from_str::<Record>(&all[1]).is_ok(),
            "a whole record"
        );
    }

    #[test]
    fn a_disk_that_stays_full_drops_and_counts_beyond_the_bound() {
        let f = FullDisk::default();
        let mut sink = JsonLinesSink::with_file("x.jsonl", Box::new(f.clone()));
        let mut errors = 0u64;
        let mut written = 0u64;
        while sink.lost_records() < 3 {
            written += 1;
            if sink.write(&power(0)).is_err() {
                errors += 1;
            }
        }
        assert!(
            written > 100_000,
            "about 16 MiB held first ({written} records)"
        );
        assert!(errors >= 3);
        assert!(sink.pending.len() <= MAX_PENDING_BYTES);
        // Nothing reached the file: every record is lost, those held as much as those dropped.
        assert!(sink.flush().is_err());
        assert_eq!(sink.records_lost(), written);
        assert!(lines(&f).is_empty());
    }

    #[test]
    fn create_never_overwrites() {
        let dir = std::env::temp_dir().join(format!("carina-sink-{}", std::process::id()));
        let path = dir.join("run.jsonl");
        let _ = std::fs::remove_file(&path);
        let mut a = JsonLinesSink::create(&path).unwrap();
        a.write(&power(0)).unwrap();
        a.flush().unwrap();
        let e = JsonLinesSink::create(&path).err().expect("exists");
        assert!(e.is_already_exists(), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
