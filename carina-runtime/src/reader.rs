//! Reading run files back (for the CLI, reports and tests).
//!
//! A run that crashed has no `run_end`: it loads, and [`RunFile::is_complete`] says so. A
//! truncated last line (no trailing newline, not valid JSON: the writer died mid-line) is
//! tolerated with a warning; any other malformed line is an error naming the file and line.
//! Files are read line by line as bytes ([`crate::input`]): regular files only, each line
//! bounded, and a line that is not UTF-8 is that line's problem alone.

use crate::record::{Record, RunEnd, RunStart, SCHEMA, StepRecord, StepSummary};
use carina_core::units::{Joules, Seconds};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why a run file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A line is not a valid record.
    #[error("{path}:{line}: {message}")]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong, naming the field where known.
        message: String,
    },
    /// The file holds no record at all.
    #[error(
        "{path}: the file is empty; a run file starts with a `run_start` line (docs/FORMAT.md)"
    )]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The file was refused (not a regular file, a symbolic link or a foreign file where none
    /// is read) or a line is longer than the reader's bound.
    #[error(transparent)]
    Input(crate::input::InputError),
    /// The first record is not `run_start`.
    #[error("{path}:1: expected a `run_start` record first; is this a Carina run file?")]
    NoRunStart {
        /// The file.
        path: PathBuf,
    },
    /// Written by a newer schema this reader does not understand.
    #[error(
        "{path}:1: field `schema`: this file uses schema {found}; this Carina reads schema {SCHEMA}. Upgrade Carina."
    )]
    Schema {
        /// The file.
        path: PathBuf,
        /// Schema found.
        found: u32,
    },
}

impl From<crate::input::InputError> for ReadError {
    fn from(e: crate::input::InputError) -> Self {
        use crate::input::InputError;
        match e {
            InputError::Io { path, source } => ReadError::Io { path, source },
            InputError::LineTooLong { path, line, max } => ReadError::Line {
                path,
                line,
                message: format!(
                    "line {line} longer than {max} bytes; a run file's records are far shorter: is this a run file?"
                ),
            },
            other => ReadError::Input(other),
        }
    }
}

/// A parsed run file.
#[derive(Debug, Clone)]
pub struct RunFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// The `run_start` record.
    pub start: RunStart,
    /// `step` records in file order.
    pub steps: Vec<StepRecord>,
    /// `step_summary` records.
    pub summaries: Vec<StepSummary>,
    /// `run_end`, absent if the run did not finish.
    pub end: Option<RunEnd>,
    /// `control` records (governor mode changes), in file order.
    pub controls: Vec<crate::record::ControlRecord>,
    /// `power` records (the run's energy per window of about a second), in file order; empty
    /// for files written before they existed.
    pub power: Vec<crate::record::PowerRecord>,
    /// Problems that did not prevent reading (truncated last line, missing `run_end`).
    pub warnings: Vec<String>,
}

impl RunFile {
    /// No records yet, with a blank `run_start` (filled in as records are read).
    fn empty(path: &Path) -> RunFile {
        RunFile {
            path: path.to_path_buf(),
            start: blank_start(),
            steps: Vec::new(),
            summaries: Vec::new(),
            end: None,
            controls: Vec::new(),
            power: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Whether the run finished (has a `run_end`).
    pub fn is_complete(&self) -> bool {
        self.end.is_some()
    }

    /// The step whose items measure how far the run got: the name with the most item-bearing
    /// instances (ties: the larger item total, then the first name), because the work loop
    /// repeats while a set-up step that declares the whole cycle's items (`generate_grid` with
    /// all 400 000 scenarios) runs once. When no name has more than one item-bearing instance,
    /// the one whose instance ended last (the loop's first instance ends after the set-up),
    /// or, from summaries only, the largest item total. Instances are counted from the `step` records, or from the
    /// summaries' counts in a summaries-only file. `None` when no step has items.
    ///
    /// A complete run's item count is `run_end.items`; this is for runs that did not finish.
    /// Every `step` record counts; [`progress_until`](Self::progress_until) stops at a moment.
    pub fn progress(&self) -> Option<Progress> {
        self.progress_until(Seconds(f64::INFINITY))
    }

    /// [`progress`](Self::progress) counting only the `step` records that ended by `cut_s`
    /// (seconds since the run's start): a crashed run's items up to
    /// [`partial_cut_s`](Self::partial_cut_s), the moment its energy and wall time stop at.
    /// Summaries, written once at the end, count whole.
    pub fn progress_until(&self, cut_s: Seconds) -> Option<Progress> {
        let mut per: BTreeMap<&str, (u64, u64)> = BTreeMap::new(); // name -> (instances, items)
        // name -> latest end of an item-bearing instance, for the tie-break below.
        let mut last_end: BTreeMap<&str, f64> = BTreeMap::new();
        for s in self
            .steps
            .iter()
            .filter(|s| s.items > 0 && s.end_s <= cut_s)
        {
            let e = per.entry(&s.name).or_default();
            e.0 += 1;
            // Capped at u64::MAX (the reader warns), not wrapped to a small number.
            e.1 = e.1.saturating_add(s.items);
            let l = last_end.entry(&s.name).or_insert(f64::NEG_INFINITY);
            *l = l.max(s.end_s.0);
        }
        if !self.summaries.is_empty() {
            // Summaries count every instance, written or not: their totals win.
            for s in self.summaries.iter().filter(|s| s.items > 0) {
                let e = per.entry(&s.name).or_default();
                if self.steps.is_empty() {
                    e.0 = s.count;
                }
                e.1 = s.items;
            }
        }
        // BTreeMap order is by name; `max_by` keeps the last of equals, so compare names reversed.
        let best = |key: fn(&(u64, u64)) -> (u64, u64)| {
            per.iter()
                .max_by(|a, b| key(a.1).cmp(&key(b.1)).then_with(|| b.0.cmp(a.0)))
        };
        let (name, &(instances, items)) = match best(|&(n, i)| (n, i))? {
            (name, v) if v.0 > 1 => (name, v),
            // One instance each, from step records: the one that ended last. Early in a run
            // that is the work loop's first instance, which ends after the set-up step that
            // declares the whole cycle (a running run's page showed "1000000 of 1000000" until
            // the loop's second instance ended).
            _ if self.summaries.is_empty() && per.len() > 1 => per.iter().max_by(|a, b| {
                let (ea, eb) = (last_end[a.0], last_end[b.0]);
                ea.total_cmp(&eb).then_with(|| a.1.1.cmp(&b.1.1))
            })?,
            _ => best(|&(_, i)| (i, 0))?,
        };
        Some(Progress {
            name: (*name).to_owned(),
            items,
            instances,
        })
    }

    /// The sum of the `power` records' energy (J) and the end of the last window (s): all of
    /// the run's energy up to its last closed window, steps or not. `None` for files without
    /// `power` records.
    pub fn power_totals(&self) -> Option<(Joules, Seconds)> {
        let last = self.power.last()?;
        Some((self.power.iter().map(|p| p.energy_j).sum(), last.end_s))
    }

    /// The moment (seconds since the run's start) that the figures of a run without `run_end`
    /// stop at, one cut for its energy, items and wall time: the end of its last `power` record
    /// when it has them (its energy is known up to there, and no further), else the end of its
    /// last `step` record (its energy is then its steps' own). `None` when it has neither.
    /// Step records that end after the cut are left out of every figure (the run's energy does
    /// not cover them), so no step takes more than the run's energy or time.
    pub fn partial_cut_s(&self) -> Option<Seconds> {
        if !self.power.is_empty() {
            return self.power.iter().map(|p| p.end_s).reduce(Seconds::max);
        }
        self.steps.iter().map(|s| s.end_s).reduce(Seconds::max)
    }
}

/// See [`RunFile::progress`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// The step name.
    pub name: String,
    /// Its item total so far.
    pub items: u64,
    /// Its item-bearing instances.
    pub instances: u64,
}

/// Reads and validates a run file.
///
/// Only a regular file is read ([`crate::input::open_regular`]: a FIFO, a device or a
/// directory is refused at once, naming the path), line by line as bytes, each line at most
/// [`MAX_LINE_BYTES`](crate::input::MAX_LINE_BYTES) long: a line that is not UTF-8 is that
/// line's error (or, as the unterminated last line, a truncated one: a warning), never the
/// whole file's.
pub fn read_run_file(path: impl AsRef<Path>) -> Result<RunFile, ReadError> {
    let path = path.as_ref();
    let file = crate::input::open_regular(path, None)?;
    parse_reader(std::io::BufReader::with_capacity(1 << 16, file), path)
}

/// Parses the text of a run file; `path` is used in messages.
pub fn parse_run_file(text: &str, path: &Path) -> Result<RunFile, ReadError> {
    parse_reader(text.as_bytes(), path)
}

/// Parses the bytes of a run file, which need not be UTF-8 throughout (as
/// [`read_run_file`] reads them); `path` is used in messages.
pub fn parse_run_bytes(bytes: &[u8], path: &Path) -> Result<RunFile, ReadError> {
    parse_reader(bytes, path)
}

/// One line of a run file, with what the reader needs to know about its place.
struct LineAt<'a> {
    /// 1-based.
    no: usize,
    /// Without `\n` and trailing `\r`, and without a byte-order mark on the first line.
    bytes: &'a [u8],
    /// Ended with `\n`.
    terminated: bool,
    /// No line follows.
    last: bool,
}

/// Lines with one line of look-ahead (whether a line is the last decides whether a malformed
/// one is a truncated tail, a torn write, or an error).
struct Lines<R> {
    reader: crate::input::LineReader<R>,
    cur: Vec<u8>,
    next: Vec<u8>,
    /// Whether `next` holds a line, and whether it was terminated.
    next_state: Option<bool>,
    started: bool,
    no: usize,
}

impl<R: std::io::BufRead> Lines<R> {
    fn new(inner: R, path: &Path) -> Self {
        Lines {
            reader: crate::input::LineReader::new(inner, path, crate::input::MAX_LINE_BYTES),
            cur: Vec::new(),
            next: Vec::new(),
            next_state: None,
            started: false,
            no: 0,
        }
    }

    fn next_line(&mut self) -> Result<Option<LineAt<'_>>, ReadError> {
        if !self.started {
            self.started = true;
            self.next_state = self.reader.read_line(&mut self.next)?;
        }
        let Some(terminated) = self.next_state else {
            return Ok(None);
        };
        std::mem::swap(&mut self.cur, &mut self.next);
        self.no += 1;
        self.next_state = self.reader.read_line(&mut self.next)?;
        let mut bytes = self.cur.as_slice();
        if self.no == 1 {
            // Editors on some systems add a UTF-8 byte-order mark; it is not part of the record.
            bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
        }
        while let [rest @ .., b'\r'] = bytes {
            bytes = rest;
        }
        Ok(Some(LineAt {
            no: self.no,
            bytes,
            terminated,
            last: self.next_state.is_none(),
        }))
    }
}

/// Why a line is not a record.
enum Bad {
    /// Not UTF-8: the byte offset of the first bad byte in the line, and whether the bytes end
    /// in the middle of a character (a cut write) rather than holding an invalid sequence.
    Utf8 { at: usize, cut: bool },
    /// Valid UTF-8, not a valid record.
    Json(serde_json::Error),
}

/// A line as text, `None` when blank.
fn record_of(line: &[u8]) -> Option<Result<Record, Bad>> {
    match std::str::from_utf8(line) {
        Ok(text) if text.trim().is_empty() => None,
        Ok(text) => Some(serde_json::from_str(text).map_err(Bad::Json)),
        Err(e) => Some(Err(Bad::Utf8 {
            at: e.valid_up_to(),
            cut: e.error_len().is_none(),
        })),
    }
}

/// Parses a run file from any byte stream.
fn parse_reader<R: std::io::BufRead>(inner: R, path: &Path) -> Result<RunFile, ReadError> {
    let mut start = None;
    let mut file = RunFile::empty(path);
    let mut lines = Lines::new(inner, path);
    let mut any_content = false;
    while let Some(at) = lines.next_line()? {
        let line_no = at.no;
        let Some(parsed) = record_of(at.bytes) else {
            continue;
        };
        any_content = true;
        let rec: Record = match parsed {
            Ok(r) => r,
            Err(bad) => {
                if at.last && !at.terminated {
                    file.warnings.push(format!(
                        "{}:{line_no}: last line is truncated (the writer stopped mid-line); ignored",
                        path.display()
                    ));
                    break;
                }
                // Only a middle line can be a torn write the writer moved past.
                let torn = if at.last {
                    Torn::No
                } else {
                    torn(at.bytes, &bad)
                };
                match torn {
                    Torn::Fragment => {
                        file.warnings.push(format!(
                            "{}:{line_no}: a torn write (part of a record, cut off by a write error); skipped",
                            path.display()
                        ));
                        continue;
                    }
                    Torn::Glued(rec) => {
                        file.warnings.push(format!(
                            "{}:{line_no}: a torn write (part of a record, then a whole one); the fragment was skipped",
                            path.display()
                        ));
                        *rec
                    }
                    Torn::No => {
                        let message = match &bad {
                            Bad::Json(e) => {
                                describe(e, std::str::from_utf8(at.bytes).unwrap_or_default())
                            }
                            Bad::Utf8 { at, .. } => format!(
                                "not valid UTF-8 (byte {} of the line); a run file is UTF-8 JSON lines",
                                at + 1
                            ),
                        };
                        return Err(ReadError::Line {
                            path: path.to_path_buf(),
                            line: line_no,
                            message,
                        });
                    }
                }
            }
        };
        if start.is_none() && !matches!(rec, Record::RunStart(_)) {
            return Err(ReadError::NoRunStart {
                path: path.to_path_buf(),
            });
        }
        if let Some(message) = impossible(&rec) {
            return Err(ReadError::Line {
                path: path.to_path_buf(),
                line: line_no,
                message,
            });
        }
        match rec {
            Record::RunStart(s) => {
                if start.is_some() {
                    return Err(ReadError::Line {
                        path: path.to_path_buf(),
                        line: line_no,
                        message: "a second `run_start` record; one file holds one run".into(),
                    });
                }
                if s.schema > SCHEMA {
                    return Err(ReadError::Schema {
                        path: path.to_path_buf(),
                        found: s.schema,
                    });
                }
                start = Some(s);
            }
            Record::Step(s) => file.steps.push(s),
            Record::StepSummary(s) => file.summaries.push(s),
            Record::RunEnd(e) => file.end = Some(e),
            Record::Control(c) => file.controls.push(c),
            Record::Power(p) => file.power.push(p),
            Record::Thread(_) | Record::Unknown => {}
        }
    }
    file.start = start.ok_or_else(|| {
        if !any_content {
            ReadError::Empty {
                path: path.to_path_buf(),
            }
        } else {
            ReadError::NoRunStart {
                path: path.to_path_buf(),
            }
        }
    })?;
    let mut sums: BTreeMap<&str, u64> = BTreeMap::new();
    for s in &file.steps {
        let e = sums.entry(&s.name).or_default();
        *e = e.saturating_add(s.items);
    }
    let from_summaries = file.summaries.iter().map(|s| (s.name.as_str(), s.items));
    let capped: std::collections::BTreeSet<&str> = sums
        .into_iter()
        .chain(from_summaries)
        .filter(|&(_, items)| items == u64::MAX)
        .map(|(name, _)| name)
        .collect();
    let capped: Vec<String> = capped
        .into_iter()
        .map(|name| {
            format!(
                "{}: {}",
                path.display(),
                crate::aggregator::items_capped(name)
            )
        })
        .collect();
    file.warnings.extend(capped);
    if file.end.is_none() {
        file.warnings.push(format!(
            "{}: no `run_end` record: the run did not finish (crashed or still running); figures are partial",
            path.display()
        ));
    }
    Ok(file)
}

/// A `run_start` with nothing in it, for a file that lacks its own.
fn blank_start() -> RunStart {
    RunStart {
        schema: SCHEMA,
        run_id: String::new(),
        job: String::new(),
        host: String::new(),
        pid: 0,
        // A placeholder until the file's own `run_start` is read.
        started_at: jiff::Timestamp::UNIX_EPOCH,
        energy_sources: Vec::new(),
        carbon: crate::carbon::CarbonFactor::world().info(),
        steps: None,
        sample_interval_s: Seconds::ZERO,
        scope: None,
        carina_version: String::new(),
    }
}

/// Every record of a run file in file order, read leniently: see [`read_records`].
#[derive(Debug, Clone)]
pub struct Records {
    /// Where they were read from.
    pub path: PathBuf,
    /// The records that parsed, in file order, `thread` records included.
    pub records: Vec<Record>,
    /// Lines that are not a whole record (a truncated last line, a torn write, garbage): their
    /// content, or the part of it that was cut off, is not in `records`.
    pub bad_lines: usize,
}

impl Records {
    /// The records as a [`RunFile`] (steps, summaries, `run_end`, controls, power), with a blank
    /// `run_start` when the file has none (a process killed before its first write), so that
    /// [`RunFile::progress`] and the other figures work on a partial file.
    pub fn run_file(&self) -> RunFile {
        let mut file = RunFile::empty(&self.path);
        for rec in &self.records {
            match rec {
                Record::RunStart(s) => file.start = s.clone(),
                Record::Step(s) => file.steps.push(s.clone()),
                Record::StepSummary(s) => file.summaries.push(s.clone()),
                Record::RunEnd(e) => file.end = Some(e.clone()),
                Record::Control(c) => file.controls.push(c.clone()),
                Record::Power(p) => file.power.push(p.clone()),
                Record::Thread(_) | Record::Unknown => {}
            }
        }
        file
    }
}

/// Reads every record of a file written by a process that may have died mid-run (a child's run
/// file under `carina run`), without the checks of [`read_run_file`]: no `run_start` needed,
/// and a line that is not a record (invalid JSON or invalid UTF-8) is counted in
/// [`Records::bad_lines`] and skipped rather than failing the read (a torn write followed by a
/// whole record keeps the whole record). Only a regular file is read, lines at most
/// [`MAX_LINE_BYTES`](crate::input::MAX_LINE_BYTES) long; an I/O error, a refused file or an
/// over-long line fails.
pub fn read_records(path: impl AsRef<Path>) -> Result<Records, ReadError> {
    read_records_with(path, crate::input::OpenRules::input(None))
}

/// [`read_records`] of a file opened under `rules` (the child-file merge opens with
/// [`OpenRules::child_file`](crate::input::OpenRules::child_file)).
pub fn read_records_with(
    path: impl AsRef<Path>,
    rules: crate::input::OpenRules,
) -> Result<Records, ReadError> {
    let path = path.as_ref();
    let file = crate::input::open_with(path, rules)?;
    records_from(std::io::BufReader::with_capacity(1 << 16, file), path)
}

/// [`read_records`] on text; `path` is kept in the result.
pub fn parse_records(text: &str, path: &Path) -> Records {
    // Reading from memory fails only on a line over the bound: keep what came before it.
    records_from(text.as_bytes(), path).unwrap_or_else(|_| Records {
        path: path.to_path_buf(),
        records: Vec::new(),
        bad_lines: 1,
    })
}

fn records_from<R: std::io::BufRead>(inner: R, path: &Path) -> Result<Records, ReadError> {
    let mut out = Records {
        path: path.to_path_buf(),
        records: Vec::new(),
        bad_lines: 0,
    };
    let mut lines = Lines::new(inner, path);
    while let Some(at) = lines.next_line()? {
        match record_of(at.bytes) {
            None => {}
            // A record with an impossible value is as bad as a malformed line: not merged.
            Some(Ok(r)) if impossible(&r).is_some() => out.bad_lines += 1,
            Some(Ok(r)) => out.records.push(r),
            Some(Err(bad)) => {
                out.bad_lines += 1;
                if let Torn::Glued(rec) = torn(at.bytes, &bad)
                    && impossible(&rec).is_none()
                {
                    out.records.push(*rec);
                }
            }
        }
    }
    Ok(out)
}

/// What a line that does not parse is, when it is not the last one.
enum Torn {
    /// A malformed record: an error.
    No,
    /// The start of a record that a failed write cut off (the JSON ends early).
    Fragment,
    /// A cut-off record with a whole record glued after it (a write resumed on the same line).
    Glued(Box<Record>),
}

/// Tells a torn write (which the writer can leave after a full disk, docs/FORMAT.md) from a
/// malformed record: a line whose JSON (or UTF-8: a write cut inside a character) ends early,
/// or which holds a whole record after a fragment. Anything else stays an error naming the
/// field.
fn torn(line: &[u8], bad: &Bad) -> Torn {
    const START: &[u8] = b"{\"type\":";
    if let Some(p) = line
        .windows(START.len())
        .rposition(|w| w == START)
        .filter(|&p| p > 0)
        && let Ok(rest) = std::str::from_utf8(&line[p..])
        && let Ok(rec) = serde_json::from_str::<Record>(rest)
    {
        return Torn::Glued(Box::new(rec));
    }
    let cut_short = match bad {
        Bad::Json(e) => e.is_eof(),
        Bad::Utf8 { cut, .. } => *cut,
    };
    if cut_short && line.starts_with(START) {
        return Torn::Fragment;
    }
    Torn::No
}

/// serde_json's message already names the missing or invalid field; drop its own position,
/// which counts within the line only.
/// serde_json's message, prefixed with the field it was reading when serde does not name one.
fn describe(e: &serde_json::Error, line: &str) -> String {
    let msg = e.to_string();
    let msg = match msg.rfind(" at line ") {
        Some(p) => format!("{} (column {})", &msg[..p], e.column()),
        None => msg,
    };
    if msg.contains("field `") {
        return msg;
    }
    // Records are internally tagged, so serde_json buffers them and its type errors carry no
    // position; find the field by trial instead (on the error path only).
    let field = if e.column() > 0 {
        field_before(line, e.column()).map(str::to_owned)
    } else {
        culprit(line)
    };
    match field {
        Some(f) => format!("field `{f}`: {msg}"),
        None => msg,
    }
}

/// The field holding the bad value, found in one pass: the line is parsed once into a JSON
/// value, then deserialised as the record type its `type` names with the path tracked. (Records
/// are internally tagged, so serde_json buffers them and its own errors carry no field.) `None`
/// when the line is not a JSON object with a known `type`, or no field is to blame.
fn culprit(line: &str) -> Option<String> {
    use crate::record::{ControlRecord, PowerRecord, ThreadInfo};
    fn path<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Option<String> {
        match serde_path_to_error::deserialize::<_, T>(v) {
            Ok(_) => None,
            Err(e) => {
                let p = e.path().to_string();
                (p != ".").then_some(p)
            }
        }
    }
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let ty = v.get("type")?.as_str()?.to_owned();
    match ty.as_str() {
        "run_start" => path::<RunStart>(v),
        "step" => path::<StepRecord>(v),
        "step_summary" => path::<StepSummary>(v),
        "run_end" => path::<RunEnd>(v),
        "thread" => path::<ThreadInfo>(v),
        "control" => path::<ControlRecord>(v),
        "power" => path::<PowerRecord>(v),
        _ => None,
    }
}

/// The last object key that starts before `column` (1-based, bytes): the field whose value
/// serde_json was reading when it stopped.
fn field_before(line: &str, column: usize) -> Option<&str> {
    let mut end = column.min(line.len());
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    let head = &line[..end];
    let colon = head.rfind("\":")?;
    let open = head[..colon].rfind('"')?;
    let key = &head[open + 1..colon];
    (!key.is_empty() && !key.contains(['{', '}', ',', ':'])).then_some(key)
}

/// Largest energy any figure of a run file may have: 1e15 J (1 PJ, about 278 GWh, a large data
/// centre's year). A larger one is corruption, and would overflow the sums and percentages of
/// the analyses (1e308 J gave `[NaN, NaN]%`).
pub const MAX_ENERGY_J: f64 = 1e15;
/// Largest emissions any figure may have: 1e15 g CO2e.
pub const MAX_CO2E_G: f64 = 1e15;
/// Largest time or duration any figure may have: 1e10 s (over 300 years).
pub const MAX_SECONDS: f64 = 1e10;
/// Negative figures this close to zero are floating-point rounding (a difference of sums), not
/// impossible values.
const ROUNDING: f64 = 1e-6;

/// The first impossible value of a record, as `field `x`: why`: a negative, non-finite or
/// absurdly large energy, emission, time or duration, or a step or window that ends before it
/// starts. Carina never writes one; a file that holds one was damaged or forged.
fn impossible(rec: &Record) -> Option<String> {
    let mut c = Check(None);
    match rec {
        Record::RunStart(s) => c.seconds("sample_interval_s", s.sample_interval_s.0),
        Record::Step(s) => {
            c.span(s.start_s.0, s.end_s.0);
            c.energies(
                s.energy_j.0,
                ("self_energy_j", s.self_energy_j.0),
                s.energy_low_j,
                s.energy_high_j,
                s.energy_by_domain.as_ref(),
            );
            c.co2e("co2e_g", s.co2e_g.0);
        }
        Record::StepSummary(s) => {
            for (field, v) in [
                ("wall_s", s.wall_s.0),
                ("self_wall_s", s.self_wall_s.0),
                ("p50_s", s.p50_s),
                ("p95_s", s.p95_s),
                ("max_s", s.max_s.0),
            ] {
                c.seconds(field, v);
            }
            c.energies(
                s.energy_j.0,
                ("self_energy_j", s.self_energy_j.0),
                s.energy_low_j,
                s.energy_high_j,
                s.energy_by_domain.as_ref(),
            );
            c.co2e("co2e_g", s.co2e_g.0);
            for g in s.by_attrs.iter().flatten() {
                c.seconds("by_attrs.wall_s", g.wall_s.0);
                c.energy("by_attrs.energy_j", g.energy_j.0);
                c.energy("by_attrs.self_energy_j", g.self_energy_j.0);
                c.co2e("by_attrs.co2e_g", g.co2e_g.0);
            }
        }
        Record::Power(p) => {
            c.span(p.start_s.0, p.end_s.0);
            c.energy("energy_j", p.energy_j.0);
            c.energy_opt("energy_low_j", p.energy_low_j);
            c.energy_opt("energy_high_j", p.energy_high_j);
            c.co2e("co2e_g", p.co2e_g.0);
        }
        Record::RunEnd(e) => {
            c.seconds("wall_s", e.wall_s.0);
            c.energies(
                e.energy_j.0,
                ("unattributed_j", e.unattributed_j.0),
                e.energy_low_j,
                e.energy_high_j,
                e.energy_by_domain.as_ref(),
            );
            c.energy("host_energy_j", e.host_energy_j.0);
            c.co2e("co2e_g", e.co2e_g.0);
        }
        Record::Control(k) => c.seconds("t_s", k.t_s.0),
        Record::Thread(_) | Record::Unknown => {}
    }
    c.0
}

/// `v` as a message shows it: `{v}` writes 1e308 with 309 digits, so magnitudes outside
/// [1e-4, 1e9) use exponent notation.
fn short(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-4..1e9).contains(&a) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// The first problem found.
struct Check(Option<String>);

impl Check {
    fn bounded(&mut self, field: &str, v: f64, unit: &str, max: f64) {
        if self.0.is_some() {
            return;
        }
        let why = if !v.is_finite() {
            format!("{v} is not a finite number")
        } else if v < -ROUNDING {
            format!(
                "{} {unit} is negative; run-file figures are never below 0",
                short(v)
            )
        } else if v > max {
            format!(
                "{} {unit} is above {max:e} {unit}: no run has such a figure",
                short(v)
            )
        } else {
            return;
        };
        self.0 = Some(format!("field `{field}`: {why}"));
    }
    fn energy(&mut self, field: &str, v: f64) {
        self.bounded(field, v, "J", MAX_ENERGY_J);
    }
    fn energy_opt(&mut self, field: &str, v: Option<Joules>) {
        if let Some(v) = v {
            self.energy(field, v.0);
        }
    }
    fn co2e(&mut self, field: &str, v: f64) {
        self.bounded(field, v, "g", MAX_CO2E_G);
    }
    fn seconds(&mut self, field: &str, v: f64) {
        self.bounded(field, v, "s", MAX_SECONDS);
    }
    /// `energy_j` and a second energy (`self_energy_j`, `unattributed_j`), the band and the
    /// domains.
    fn energies(
        &mut self,
        energy: f64,
        (other_field, other): (&str, f64),
        low: Option<Joules>,
        high: Option<Joules>,
        domains: Option<&crate::record::DomainEnergy>,
    ) {
        self.energy("energy_j", energy);
        self.energy(other_field, other);
        self.energy_opt("energy_low_j", low);
        self.energy_opt("energy_high_j", high);
        for (name, v) in domains.into_iter().flat_map(|d| d.iter()) {
            self.energy(&format!("energy_by_domain.{name}"), v.0);
        }
    }
    /// A start and an end in seconds since the run's start, the end not before the start.
    fn span(&mut self, start: f64, end: f64) {
        self.seconds("start_s", start);
        self.seconds("end_s", end);
        if self.0.is_none() && end < start - ROUNDING {
            self.0 = Some(format!(
                "field `end_s`: {end} s is before `start_s` {start} s: a negative duration"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: &str = r#"{"type":"run_start","schema":1,"run_id":"r1","job":"train","host":"h","pid":1,"started_at":"2026-11-28T05:12:00Z","energy_sources":[{"name":"model","kind":"estimated","source":"x","domains":["cpu"],"scope":"host","idle_w":0.9,"max_w":4.0}],"carbon":{"g_per_kwh":400.0,"zone":"WORLD","source":"t"},"steps":"all","sample_interval_s":0.1,"scope":"process","carina_version":"0.1.0"}"#;
    const STEP: &str = r#"{"type":"step","name":"train","id":1,"parent":null,"thread":0,"start_s":0.0,"end_s":1.0,"items":2,"status":"ok","energy_j":4.0,"self_energy_j":4.0,"co2e_g":0.001,"attrs":{"dataset":"imagenet"}}"#;
    const SUMMARY: &str = r#"{"type":"step_summary","name":"train","count":1,"wall_s":1.0,"self_wall_s":1.0,"items":2,"energy_j":4.0,"self_energy_j":4.0,"co2e_g":0.001,"p50_s":1.0,"p95_s":1.0,"max_s":1.0,"by_attrs":[{"attrs":{"dataset":"imagenet"},"count":1,"wall_s":1.0,"items":2,"energy_j":4.0,"self_energy_j":4.0,"co2e_g":0.001}]}"#;

    /// A run file whose steps carry attributes reads back with them; an impossible figure in a
    /// `by_attrs` entry is refused naming the line and the field, as in any other record.
    #[test]
    fn attributes_are_read_back_and_checked() {
        let text = [START, STEP, SUMMARY].join("\n") + "\n";
        let f = parse_run_file(&text, Path::new("a.jsonl")).unwrap();
        assert_eq!(f.steps[0].attrs.as_ref().unwrap()["dataset"], "imagenet");
        let by = f.summaries[0].by_attrs.as_ref().unwrap();
        assert_eq!(
            (by[0].count, by[0].attrs["dataset"].as_str()),
            (1, "imagenet")
        );
        let bad = SUMMARY.replace(
            r#""attrs":{"dataset":"imagenet"},"count":1,"wall_s":1.0,"items":2,"energy_j":4.0"#,
            r#""attrs":{"dataset":"imagenet"},"count":1,"wall_s":1.0,"items":2,"energy_j":-4.0"#,
        );
        assert_ne!(bad, SUMMARY);
        let text = [START, STEP, &bad].join("\n") + "\n";
        let e = parse_run_file(&text, Path::new("a.jsonl"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("a.jsonl:3") && e.contains("`by_attrs.energy_j`"),
            "{e}"
        );
    }
}
