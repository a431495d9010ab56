//! Incremental reading of run files that are still being written.
//!
//! A [`Watcher`] keeps, per run file, the byte offset read so far, the unterminated tail of the
//! last read (completed by a later poll) and a [`Fold`]: the run's state folded from its
//! records. Each [`Watcher::poll`] reads only the bytes appended since the last one, so a
//! run file of hundreds of megabytes is read once, not once per poll.
//!
//! Memory is bounded by steps and runs, not records: `step` records are folded into one
//! accumulator per step name (count, wall, items, energy, a log-bucketed duration histogram for
//! p50/p95), `power` windows are coalesced pairwise past [`MAX_POWER_WINDOWS`] (the timeline
//! draws a fixed number of bins anyway) with the latest window kept apart for the current
//! power, and `control` records keep the latest [`MAX_CONTROLS`]. A run is shown through
//! [`Fold::run_file`], a [`RunFile`] built from that state, so `report`'s view and page are
//! reused as they are.
//!
//! A file whose size fell below the offset was truncated, and one whose inode changed was
//! replaced (rotation, an editor's save): both are read again from the start. A file that
//! disappears is dropped and the page says so. A path that is not a regular file is never
//! opened ([`crate::input`]'s checks); the reason is listed instead.
//!
//! Lines are parsed by [`carina_runtime::reader::parse_records`], the lenient reader of run
//! files: a line that is not a record (a torn write, garbage) is counted and skipped.

use crate::input::{InputError, open_regular, special_kind};
use crate::load::{LoadError, run_files_in};
use carina_runtime::reader::{RunFile, parse_records};
use carina_runtime::record::{
    ControlRecord, PowerRecord, Record, RunEnd, RunStart, StepRecord, StepSummary,
};
use carina_runtime::units::{GramsCo2e, Joules, Seconds};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Power windows kept per run before adjacent pairs are merged into one.
pub const MAX_POWER_WINDOWS: usize = 2048;
/// `control` records kept per run (the latest).
pub const MAX_CONTROLS: usize = 256;
/// Bytes read from one file per read call.
const CHUNK: usize = 1 << 20;
/// Open steps whose children's time is pending per run; past it the pending times are
/// dropped (a file whose parents never arrive would otherwise grow this without end).
const MAX_PENDING_PARENTS: usize = 1 << 16;

/// Deepest name path kept in the step tree; deeper steps are left out of it (their ancestors'
/// inclusive figures still count them).
/// A valid run nests far less; a malformed one (an id repeated as its own ancestor) would
/// otherwise grow a path by one name per record.
const MAX_PATH_DEPTH: usize = 32;

/// Step ids remembered to spot a repeated id (a malformed file: ids are unique in a run): the
/// last this many step records. A repeated id within them still counts in the step table, not
/// in the tree; further apart, [`MAX_PATH_DEPTH`] bounds what it can do.
const RECENT_IDS: usize = 4096;

/// Step durations are bucketed by a factor of 1.02 (2 % relative error) from 1 µs.
const BUCKET_BASE: f64 = 1.02;
const BUCKET_MIN_S: f64 = 1e-6;

/// Fine time buckets kept of the step records for the forecast's interval.
pub const SERIES_BUCKETS: usize = 512;
/// The first width of a fine time bucket, s (doubled as the run grows).
const SERIES_FIRST_WIDTH_S: f64 = 1e-3;

/// The step records binned by end time, what [`crate::forecast`]'s interval needs of them:
/// the self energy of every step, and the items of each item-bearing step name, per fine
/// bucket. [`SERIES_BUCKETS`] buckets cover `0 .. SERIES_BUCKETS x width`; a record ending
/// later doubles the width, adjacent pairs merged (sums stay exact), so memory is
/// `SERIES_BUCKETS` x (item-bearing names + 1), whatever the number of records.
#[derive(Debug, Clone)]
pub struct StepSeries {
    width: f64,
    energy: Vec<f64>,
    /// Item-bearing step name -> (its item-bearing records, items per bucket).
    items: HashMap<String, (usize, Vec<f64>)>,
}

impl Default for StepSeries {
    fn default() -> Self {
        StepSeries {
            width: SERIES_FIRST_WIDTH_S,
            energy: vec![0.0; SERIES_BUCKETS],
            items: HashMap::new(),
        }
    }
}

impl StepSeries {
    /// Adds one step record: `items` of step `name` and its self energy, at its end time.
    fn add(&mut self, name: &str, end_s: f64, items: u64, self_energy_j: f64) {
        // A time that is no time (NaN, infinite) has no bucket: left out of the interval only.
        if !end_s.is_finite() {
            return;
        }
        let t = end_s.max(0.0);
        while t >= self.width * SERIES_BUCKETS as f64 {
            self.width *= 2.0;
            halve(&mut self.energy);
            for (_, v) in self.items.values_mut() {
                halve(v);
            }
        }
        let b = ((t / self.width) as usize).min(SERIES_BUCKETS - 1);
        if self_energy_j.is_finite() {
            self.energy[b] += self_energy_j;
        }
        if items > 0 {
            // The name is allocated once, at its first item-bearing record.
            if !self.items.contains_key(name) {
                self.items
                    .insert(name.to_owned(), (0, vec![0.0; SERIES_BUCKETS]));
            }
            if let Some((n, v)) = self.items.get_mut(name) {
                *n += 1;
                v[b] += items as f64;
            }
        }
    }

    /// [`Self::add`], for the tests of the live section.
    #[cfg(test)]
    pub(crate) fn add_for_test(&mut self, name: &str, end_s: f64, items: u64, self_energy_j: f64) {
        self.add(name, end_s, items, self_energy_j);
    }

    /// The width of one fine bucket, s.
    pub fn width(&self) -> f64 {
        self.width
    }
}

/// Merges adjacent pairs into the first half (sums kept), the second half zeroed.
fn halve(v: &mut [f64]) {
    let n = v.len();
    for i in 0..n / 2 {
        v[i] = v[2 * i] + v[2 * i + 1];
    }
    v[n / 2..].fill(0.0);
}

impl crate::forecast::StepSeries for StepSeries {
    /// All of the name's item-bearing records read, also those past a crashed run's cut (the
    /// fold does not keep them apart): the bucket count may be one higher than `forecast`'s.
    fn item_records(&self, name: &str) -> usize {
        self.items.get(name).map_or(0, |(n, _)| *n)
    }

    /// Each fine bucket's content is taken as spread evenly over its time, clipped to `0 ..
    /// k x width`, and split between the coarse buckets it overlaps; fine buckets that start
    /// past `k x width` (a crashed run's records after its cut) are left out. Exact when no
    /// record ends in a fine bucket that straddles a coarse bucket's edge.
    fn bucketed(&self, name: &str, k: usize, width: f64) -> (Vec<f64>, Vec<f64>) {
        let mut items = vec![0.0; k];
        let mut joules = vec![0.0; k];
        let span = k as f64 * width;
        let of_name = self.items.get(name).map(|(_, v)| v.as_slice());
        for j in 0..SERIES_BUCKETS {
            let a = j as f64 * self.width;
            if a >= span {
                break;
            }
            let (e, n) = (self.energy[j], of_name.map_or(0.0, |v| v[j]));
            if e == 0.0 && n == 0.0 {
                continue;
            }
            let b = ((j + 1) as f64 * self.width).min(span);
            let mut c = ((a / width) as usize).min(k - 1);
            loop {
                let (lo, hi) = (c as f64 * width, (c + 1) as f64 * width);
                let share = (b.min(hi) - a.max(lo)).max(0.0) / (b - a);
                joules[c] += e * share;
                items[c] += n * share;
                if hi >= b || c + 1 == k {
                    break;
                }
                c += 1;
            }
        }
        (items, joules)
    }
}

/// The folded figures of one name path of the step tree.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PathAcc {
    /// Instances.
    pub count: u64,
    /// Wall time summed, s.
    pub wall: f64,
    /// Inclusive energy, J.
    pub energy: f64,
    /// Self energy, J.
    pub self_energy: f64,
}

impl PathAcc {
    fn add(&mut self, o: &PathAcc) {
        self.count += o.count;
        self.wall += o.wall;
        self.energy += o.energy;
        self.self_energy += o.self_energy;
    }
}

/// Name path -> figures.
type Paths = HashMap<Vec<String>, PathAcc>;

/// One row of [`Fold::tree`].
#[derive(Debug, Clone, PartialEq)]
pub struct TreeRow {
    /// 0 for a top-level step.
    pub depth: usize,
    pub name: String,
    pub acc: PathAcc,
}

/// The name of the node under which steps whose parent has not ended yet are shown.
pub const OPEN_PARENT: &str = "(inside steps still open)";

/// The folded figures of one step name.
#[derive(Debug, Clone, Default)]
struct StepAcc {
    count: u64,
    wall: f64,
    self_wall: f64,
    items: u64,
    energy: f64,
    self_energy: f64,
    co2e: f64,
    low: Option<f64>,
    high: Option<f64>,
    max: f64,
    errors: u64,
    panics: u64,
    gpu: bool,
    /// Bucket index -> instances.
    hist: BTreeMap<i32, u64>,
}

impl StepAcc {
    fn quantile(&self, q: f64) -> f64 {
        let rank = ((self.count as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (&b, &n) in &self.hist {
            seen += n;
            if seen >= rank {
                return BUCKET_MIN_S * BUCKET_BASE.powi(b);
            }
        }
        self.max
    }
}

/// One run's state, folded from its records.
#[derive(Debug, Clone, Default)]
pub struct Fold {
    start: Option<RunStart>,
    /// Step names in order of first appearance.
    names: Vec<String>,
    steps: HashMap<String, StepAcc>,
    /// Children's wall time per parent id not yet seen (children end, and are written, first).
    child_time: HashMap<u64, f64>,
    /// The step record that ends last, its items and energy cleared: it carries the run's cut
    /// for a file without `power` records.
    last_step: Option<StepRecord>,
    summaries: Vec<StepSummary>,
    end: Option<RunEnd>,
    controls: VecDeque<ControlRecord>,
    power: Vec<PowerRecord>,
    last_power: Option<PowerRecord>,
    series: StepSeries,
    /// The step tree by name path, of the steps whose top-level ancestor has ended.
    paths: Paths,
    /// Per parent id not yet seen: its children's subtrees, by name path below it (children
    /// end, and are written, before their parent).
    pending_paths: HashMap<u64, Paths>,
    /// The last [`RECENT_IDS`] step ids, oldest first, and the same as a set.
    recent_ids: VecDeque<u64>,
    recent_set: std::collections::HashSet<u64>,
    /// Step records left out of the tree: their id repeated a recent one, or their parent was
    /// themselves.
    pub tree_skipped: u64,
    /// Records folded.
    pub records: u64,
    /// Lines that were not a record (torn writes, garbage), skipped.
    pub bad_lines: u64,
    /// Records seen before any `run_start`.
    pub before_start: u64,
}

impl Fold {
    /// Folds one record in.
    pub fn apply(&mut self, rec: Record) {
        self.records += 1;
        if self.start.is_none() && !matches!(rec, Record::RunStart(_)) {
            self.before_start += 1;
            return;
        }
        match rec {
            // One file holds one run: a second `run_start` is ignored (the reader refuses it).
            Record::RunStart(s) if self.start.is_none() => self.start = Some(s),
            Record::Step(s) => self.step(s),
            Record::StepSummary(s) => self.summaries.push(s),
            Record::RunEnd(e) => self.end = Some(e),
            Record::Control(c) => {
                if self.controls.len() == MAX_CONTROLS {
                    self.controls.pop_front();
                }
                self.controls.push_back(c);
            }
            Record::Power(p) => self.power(p),
            // Thread names and record types of later versions are not shown.
            _ => {}
        }
    }

    fn step(&mut self, s: StepRecord) {
        let d = (s.end_s - s.start_s).0.max(0.0);
        if let Some(p) = s.parent {
            if self.child_time.len() >= MAX_PENDING_PARENTS {
                self.child_time.clear();
            }
            *self.child_time.entry(p).or_default() += d;
        }
        let children = self.child_time.remove(&s.id).unwrap_or(0.0);
        self.path_step(&s, d);
        if !self.steps.contains_key(s.name.as_ref()) {
            self.names.push(s.name.to_string());
        }
        self.series
            .add(&s.name, s.end_s.0, s.items, s.self_energy_j.0);
        let a = self.steps.entry(s.name.to_string()).or_default();
        a.count += 1;
        a.wall += d;
        a.self_wall += (d - children).max(0.0);
        a.items = a.items.saturating_add(s.items);
        a.energy += s.energy_j.0;
        a.self_energy += s.self_energy_j.0;
        a.co2e += s.co2e_g.0;
        if let (Some(l), Some(h)) = (s.energy_low_j, s.energy_high_j) {
            *a.low.get_or_insert(0.0) += l.0;
            *a.high.get_or_insert(0.0) += h.0;
        }
        a.max = a.max.max(d);
        match s.status {
            carina_runtime::record::StepStatus::Error => a.errors += 1,
            carina_runtime::record::StepStatus::Panicked => a.panics += 1,
            _ => {}
        }
        a.gpu |= s.gpu;
        let bucket = if d > BUCKET_MIN_S {
            ((d / BUCKET_MIN_S).ln() / BUCKET_BASE.ln()).ceil() as i32
        } else {
            0
        };
        *a.hist.entry(bucket).or_default() += 1;
        if self.last_step.as_ref().is_none_or(|l| s.end_s > l.end_s) {
            let mut marker = s;
            marker.items = 0;
            marker.energy_j = Joules::ZERO;
            marker.self_energy_j = Joules::ZERO;
            marker.co2e_g = GramsCo2e::ZERO;
            marker.energy_low_j = None;
            marker.energy_high_j = None;
            marker.energy_by_domain = None;
            self.last_step = Some(marker);
        }
    }

    /// Folds one step into the tree: its own node and its children's pending subtrees, moved
    /// under its parent's pending subtrees, or into the tree when it is top level.
    fn path_step(&mut self, s: &StepRecord, d: f64) {
        // Ids are unique in a valid file; a repeated id or a step that is its own parent would
        // make the tree re-nest itself at every record (found by review: 400 such lines took
        // 9.5 s and 3,000 hung the server): left out of the tree and counted.
        if s.parent == Some(s.id) || self.recent_set.contains(&s.id) {
            self.tree_skipped += 1;
            return;
        }
        if self.recent_ids.len() == RECENT_IDS
            && let Some(old) = self.recent_ids.pop_front()
        {
            self.recent_set.remove(&old);
        }
        self.recent_ids.push_back(s.id);
        self.recent_set.insert(s.id);
        let mut mine: Paths = HashMap::new();
        mine.insert(
            vec![s.name.to_string()],
            PathAcc {
                count: 1,
                wall: d,
                energy: s.energy_j.0,
                self_energy: s.self_energy_j.0,
            },
        );
        for (rel, acc) in self.pending_paths.remove(&s.id).unwrap_or_default() {
            if rel.len() >= MAX_PATH_DEPTH {
                // Too deep to show; its ancestors' inclusive figures still count it.
                self.tree_skipped = self.tree_skipped.saturating_add(acc.count);
                continue;
            }
            let mut path = Vec::with_capacity(rel.len() + 1);
            path.push(s.name.to_string());
            path.extend(rel);
            mine.entry(path).or_default().add(&acc);
        }
        let into = match s.parent {
            Some(p) => {
                if self.pending_paths.len() >= MAX_PENDING_PARENTS
                    && !self.pending_paths.contains_key(&p)
                {
                    // Parents that never come: shown at the top level rather than kept.
                    &mut self.paths
                } else {
                    self.pending_paths.entry(p).or_default()
                }
            }
            None => &mut self.paths,
        };
        for (path, acc) in mine {
            into.entry(path).or_default().add(&acc);
        }
    }

    /// The step tree so far, depth first, siblings by inclusive energy (largest first), at
    /// most `max_rows` rows, and the rows left out. Steps whose parent has not ended yet (a
    /// top-level step runs the whole cycle) are shown under one [`OPEN_PARENT`] node: their
    /// parent's name comes with the parent's record.
    pub fn tree(&self, max_rows: usize) -> (Vec<TreeRow>, usize) {
        let mut all: Paths = self.paths.clone();
        let mut open = PathAcc::default();
        for sub in self.pending_paths.values() {
            open.count += 1;
            for (rel, acc) in sub {
                if rel.len() == 1 {
                    open.energy += acc.energy;
                    open.wall += acc.wall;
                }
                let mut path = vec![OPEN_PARENT.to_owned()];
                path.extend(rel.iter().cloned());
                all.entry(path).or_default().add(acc);
            }
        }
        if open.count > 0 {
            all.insert(vec![OPEN_PARENT.to_owned()], open);
        }
        let mut children: HashMap<&[String], Vec<&Vec<String>>> = HashMap::new();
        for path in all.keys() {
            children
                .entry(&path[..path.len() - 1])
                .or_default()
                .push(path);
        }
        for c in children.values_mut() {
            c.sort_by(|a, b| all[*b].energy.total_cmp(&all[*a].energy).then(a.cmp(b)));
        }
        let mut rows = Vec::new();
        let mut left_out = 0;
        let mut stack: Vec<&Vec<String>> = children
            .get(&[][..])
            .map(|c| c.iter().rev().copied().collect())
            .unwrap_or_default();
        while let Some(path) = stack.pop() {
            if rows.len() >= max_rows {
                left_out += 1;
                continue;
            }
            rows.push(TreeRow {
                depth: path.len() - 1,
                name: path[path.len() - 1].clone(),
                acc: all[path],
            });
            if let Some(c) = children.get(&path[..]) {
                stack.extend(c.iter().rev().copied());
            }
        }
        (rows, left_out)
    }

    fn power(&mut self, p: PowerRecord) {
        if self.power.len() >= MAX_POWER_WINDOWS {
            // Halve the resolution of everything so far: windows stay contiguous and the sums
            // (energy, CO2e, band) are exact.
            let old = std::mem::take(&mut self.power);
            let mut it = old.into_iter();
            while let Some(mut a) = it.next() {
                if let Some(b) = it.next() {
                    a.end_s = b.end_s;
                    a.energy_j += b.energy_j;
                    a.co2e_g += b.co2e_g;
                    a.energy_low_j = a.energy_low_j.zip(b.energy_low_j).map(|(x, y)| x + y);
                    a.energy_high_j = a.energy_high_j.zip(b.energy_high_j).map(|(x, y)| x + y);
                }
                self.power.push(a);
            }
        }
        self.last_power = Some(p.clone());
        self.power.push(p);
    }

    /// The step records binned by end time, for the forecast's interval.
    pub fn series(&self) -> &StepSeries {
        &self.series
    }

    /// Whether a `run_start` has been read.
    pub fn has_start(&self) -> bool {
        self.start.is_some()
    }

    /// The power of the latest window, W, and when it ended (seconds since the run's start).
    pub fn current_power(&self) -> Option<(f64, Seconds)> {
        let p = self.last_power.as_ref()?;
        let span = (p.end_s - p.start_s).0;
        (span > 0.0).then(|| (p.energy_j.0 / span, p.end_s))
    }

    /// The step summaries: the file's own (written at the end of a run) when it has them, else
    /// one per step name folded from the `step` records so far.
    fn summaries(&self) -> Vec<StepSummary> {
        if !self.summaries.is_empty() {
            return self.summaries.clone();
        }
        self.names
            .iter()
            .filter_map(|n| {
                let a = self.steps.get(n)?;
                // `StepSummary` is non-exhaustive: built through its serialized form.
                let v = serde_json::json!({
                    "name": n, "count": a.count, "wall_s": a.wall, "self_wall_s": a.self_wall,
                    "items": a.items, "energy_j": a.energy, "self_energy_j": a.self_energy,
                    "co2e_g": a.co2e, "p50_s": a.quantile(0.5), "p95_s": a.quantile(0.95),
                    "max_s": a.max, "errors": a.errors, "panics": a.panics,
                    "energy_low_j": a.low, "energy_high_j": a.high, "gpu": a.gpu,
                });
                serde_json::from_value(v).ok()
            })
            .collect()
    }

    /// The run as a [`RunFile`] for the report's view: `None` before its `run_start`. Its
    /// `steps` hold at most one record, only in a file without `power` records (the last to
    /// end, with no items or energy: the run's cut); per-step figures come from the summaries,
    /// so the report's step tree (which needs the step records) is empty.
    pub fn run_file(&self, path: &Path) -> Option<RunFile> {
        let start = self.start.clone()?;
        let mut warnings = Vec::new();
        if self.bad_lines > 0 {
            warnings.push(format!(
                "{}: {} line(s) not a record (torn write or garbage); skipped",
                path.display(),
                self.bad_lines
            ));
        }
        if self.end.is_none() {
            warnings.push(format!(
                "{}: no `run_end` record yet: running, or stopped without finishing",
                path.display()
            ));
        }
        Some(RunFile {
            path: path.to_path_buf(),
            start,
            // With `power` records the cut is theirs, and a step record would only make the
            // timeline and the step tree draw a step without energy.
            steps: if self.power.is_empty() {
                self.last_step.iter().cloned().collect()
            } else {
                Vec::new()
            },
            summaries: self.summaries(),
            end: self.end.clone(),
            controls: self.controls.iter().cloned().collect(),
            power: self.power.clone(),
            warnings,
        })
    }
}

/// What the watcher knows of one file.
#[derive(Debug, Default)]
struct Watched {
    dev: u64,
    ino: u64,
    offset: u64,
    /// Bytes after the last newline read: a line still being written.
    partial: Vec<u8>,
    fold: Fold,
    /// When bytes were last read (the file grew), by this process's clock.
    grew_at: Option<std::time::Instant>,
    /// The file's first bytes and the last bytes before `offset`, as read, and its mtime: a file
    /// rewritten in place (same inode, not shorter) is told by these no longer matching.
    head: Vec<u8>,
    tail: Vec<u8>,
    mtime: Option<std::time::SystemTime>,
}

/// Bytes kept of a file's start and of the end of what was read, to tell a rewrite in place.
const PRINT: usize = 256;

impl Watched {
    /// Whether the bytes read so far are still what the file holds where they were read: the
    /// first and the last [`PRINT`] bytes before the offset, read again (two small reads, only
    /// for a file that changed since the last poll).
    fn still_matches(&self, f: &std::fs::File) -> bool {
        use std::os::unix::fs::FileExt;
        let same = |at: u64, want: &[u8]| {
            let mut got = vec![0u8; want.len()];
            f.read_exact_at(&mut got, at).is_ok() && got == want
        };
        same(0, &self.head) && same(self.offset - self.tail.len() as u64, &self.tail)
    }

    /// Keeps the fingerprints up to date with `bytes`, just read and ending at `self.offset`.
    fn remember(&mut self, bytes: &[u8]) {
        if self.head.len() < PRINT {
            let more = (PRINT - self.head.len()).min(bytes.len());
            self.head.extend_from_slice(&bytes[..more]);
        }
        self.tail.extend_from_slice(bytes);
        if self.tail.len() > PRINT {
            self.tail.drain(..self.tail.len() - PRINT);
        }
    }
}

/// What one poll found, for the caller to log.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PollEvents {
    /// Files read again from the start: truncated (size below the offset) or replaced (another
    /// inode).
    pub reread: Vec<PathBuf>,
    /// Files that disappeared; their runs were dropped.
    pub deleted: Vec<PathBuf>,
}

/// Run files under watch, read incrementally.
#[derive(Debug)]
pub struct Watcher {
    inputs: Vec<PathBuf>,
    files: BTreeMap<PathBuf, Watched>,
    /// Why paths are not shown (not regular, unreadable, no `run_start`, deleted), this poll.
    notes: Vec<LoadError>,
    /// Files dropped because they disappeared, listed until they come back.
    gone: std::collections::BTreeSet<PathBuf>,
    version: u64,
}

impl Watcher {
    /// Watches `inputs` (run files or directories searched recursively for `*.jsonl`); nothing
    /// is read before the first [`poll`](Self::poll).
    pub fn new(inputs: Vec<PathBuf>) -> Watcher {
        Watcher {
            inputs,
            files: BTreeMap::new(),
            notes: Vec::new(),
            gone: Default::default(),
            version: 0,
        }
    }

    /// Bumped by every poll that changed what is shown (bytes read, a file added, dropped or
    /// re-read, a note changed).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The runs read so far, oldest first, and the paths not shown with their reason.
    pub fn runs(&self) -> (Vec<RunFile>, Vec<&LoadError>) {
        let mut runs: Vec<RunFile> = self
            .files
            .iter()
            .filter_map(|(p, w)| w.fold.run_file(p))
            .collect();
        runs.sort_by_key(|r| r.start.started_at);
        (runs, self.notes.iter().collect())
    }

    /// How long ago `path` last grew, as seen by the polls.
    pub fn quiet_for(&self, path: &Path) -> Option<std::time::Duration> {
        Some(self.files.get(path)?.grew_at?.elapsed())
    }

    /// The fold of one file, for tests and the live figures.
    pub fn fold(&self, path: &Path) -> Option<&Fold> {
        self.files.get(path).map(|w| &w.fold)
    }

    /// Reads what was appended to every watched file since the last poll, picks up new files
    /// and drops deleted ones.
    pub fn poll(&mut self) -> PollEvents {
        let mut events = PollEvents::default();
        let mut notes = Vec::new();
        let mut listed: Vec<PathBuf> = Vec::new();
        for input in &self.inputs {
            // `load`'s directory walk (children's files and symlinked directories left out,
            // special files listed), without `run_paths`' canonicalization of every file at
            // every poll: a file seen twice is told by its inode below.
            if input.is_dir() {
                if let Err(e) = run_files_in(input, &mut listed, &mut notes) {
                    notes.push(e);
                }
            } else if input.exists() {
                listed.push(input.clone());
            } else {
                notes.push(LoadError::Missing(input.clone()));
            }
        }
        let mut changed = false;
        let listed_set: std::collections::HashSet<&PathBuf> = listed.iter().collect();
        let gone: Vec<PathBuf> = self
            .files
            .keys()
            .filter(|p| !listed_set.contains(p))
            .cloned()
            .collect();
        drop(listed_set);
        for p in gone {
            self.files.remove(&p);
            self.gone.insert(p.clone());
            events.deleted.push(p);
            changed = true;
        }
        for p in &listed {
            self.gone.remove(p);
        }
        let mut inodes = std::collections::HashSet::new();
        for p in listed {
            match self.read_one(&p, &mut events, &mut inodes) {
                Ok(Some(c)) => changed |= c,
                // The same file under another name: shown once, at its first name.
                Ok(None) => changed |= self.files.remove(&p).is_some(),
                Err(e) => {
                    // Unreadable now: not shown, with the reason (it is re-tried next poll).
                    changed |= self.files.remove(&p).is_some();
                    notes.push(e);
                }
            }
        }
        for (p, w) in &self.files {
            if !w.fold.has_start() && (w.fold.records > 0 || w.fold.bad_lines > 0) {
                notes.push(LoadError::Read(
                    carina_runtime::reader::ReadError::NoRunStart { path: p.clone() },
                ));
            }
        }
        for p in &self.gone {
            notes.push(LoadError::Input(InputError::Io {
                path: p.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "deleted while watched; its run is no longer shown",
                ),
            }));
        }
        let notes_changed = notes.len() != self.notes.len()
            || notes
                .iter()
                .zip(&self.notes)
                .any(|(a, b)| a.to_string() != b.to_string());
        if notes_changed {
            self.notes = notes;
        }
        if changed || notes_changed {
            self.version += 1;
        }
        events
    }

    /// Reads the bytes appended to `path`; whether anything changed, `None` when its inode is
    /// in `inodes` already (a file seen under another name this poll).
    fn read_one(
        &mut self,
        path: &Path,
        events: &mut PollEvents,
        inodes: &mut std::collections::HashSet<(u64, u64)>,
    ) -> Result<Option<bool>, LoadError> {
        let meta = std::fs::metadata(path).map_err(|source| {
            LoadError::Input(InputError::Io {
                path: path.to_path_buf(),
                source,
            })
        })?;
        if let Some(kind) = special_kind(meta.file_type()) {
            return Err(LoadError::Input(InputError::NotRegular {
                path: path.to_path_buf(),
                kind,
            }));
        }
        if !inodes.insert((meta.dev(), meta.ino())) {
            return Ok(None);
        }
        let new = !self.files.contains_key(path);
        let w = self.files.entry(path.to_path_buf()).or_default();
        let replaced = !new && (w.dev, w.ino) != (meta.dev(), meta.ino());
        let truncated = meta.len() < w.offset;
        if replaced || truncated {
            *w = Watched::default();
            events.reread.push(path.to_path_buf());
        }
        w.dev = meta.dev();
        w.ino = meta.ino();
        let mtime = meta.modified().ok();
        let touched = w.mtime.is_some() && mtime != w.mtime;
        w.mtime = mtime;
        if meta.len() == w.offset && !touched {
            return Ok(Some(new || replaced || truncated));
        }
        // The checks of every input: a regular file, opened without blocking.
        let mut f = open_regular(path, u64::MAX, "a run file")?;
        if w.offset > 0 && !w.still_matches(&f) {
            // Rewritten in place (same inode, not shorter): what was folded is no longer the
            // file's; read it again from the start.
            let (dev, ino) = (w.dev, w.ino);
            *w = Watched {
                dev,
                ino,
                mtime,
                ..Watched::default()
            };
            events.reread.push(path.to_path_buf());
        } else if meta.len() == w.offset {
            // Touched, or rewritten with the same bytes where we look: nothing new to read.
            return Ok(Some(new || replaced || truncated));
        }
        let opened = f.metadata().map_err(|source| InputError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if (opened.dev(), opened.ino()) != (w.dev, w.ino) {
            // Replaced between the stat and the open: the next poll reads the new file.
            return Ok(Some(new));
        }
        let io = |source| {
            LoadError::Input(InputError::Io {
                path: path.to_path_buf(),
                source,
            })
        };
        f.seek(SeekFrom::Start(w.offset)).map_err(io)?;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io(e)),
            };
            w.offset += n as u64;
            w.remember(&buf[..n]);
            fold_bytes(w, &buf[..n], path);
        }
        w.grew_at = Some(std::time::Instant::now());
        Ok(Some(true))
    }
}

/// Folds the complete lines of `w.partial` + `bytes` into `w.fold`, keeping the unterminated
/// rest for the next read.
fn fold_bytes(w: &mut Watched, bytes: &[u8], path: &Path) {
    let Some(last_nl) = bytes.iter().rposition(|&b| b == b'\n') else {
        w.partial.extend_from_slice(bytes);
        if w.partial.len() > carina_runtime::input::MAX_LINE_BYTES {
            // No run-file record is this long: not a run file's line; dropped and counted.
            w.partial.clear();
            w.fold.bad_lines += 1;
        }
        return;
    };
    let mut lines = std::mem::take(&mut w.partial);
    lines.extend_from_slice(&bytes[..=last_nl]);
    w.partial.extend_from_slice(&bytes[last_nl + 1..]);
    let text = String::from_utf8_lossy(&lines);
    let recs = parse_records(&text, path);
    w.fold.bad_lines += recs.bad_lines as u64;
    for r in recs.records {
        w.fold.apply(r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const START: &str = r#"{"type":"run_start","schema":1,"run_id":"r1","job":"j","host":"h","pid":1,"started_at":"2026-01-01T00:00:00Z","energy_sources":[],"carbon":{"source":"test","zone":"WORLD","g_per_kwh":400.0},"sample_interval_s":1.0,"carina_version":"0"}"#;

    fn step(id: u64, end: f64, items: u64) -> String {
        format!(
            r#"{{"type":"step","name":"work","id":{id},"parent":null,"thread":0,"start_s":{},"end_s":{end},"items":{items},"status":"ok","energy_j":10.0,"self_energy_j":10.0,"co2e_g":0.001}}"#,
            end - 1.0
        )
    }

    fn power(start: f64, end: f64, j: f64) -> String {
        format!(
            r#"{{"type":"power","start_s":{start},"end_s":{end},"energy_j":{j},"co2e_g":0.001}}"#
        )
    }

    fn append(p: &Path, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(p)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn items(w: &Watcher) -> u64 {
        let (runs, _) = w.runs();
        runs.iter()
            .map(|r| crate::view::RunView::new(r).items)
            .sum()
    }

    fn setup() -> (tempfile::TempDir, PathBuf, Watcher) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("run.jsonl");
        append(&p, &format!("{START}\n"));
        let w = Watcher::new(vec![dir.path().to_path_buf()]);
        (dir, p, w)
    }

    /// A step record of name `name`, id `id` and parent `parent`, ending at `end`.
    fn nested(name: &str, id: u64, parent: Option<u64>, end: f64) -> String {
        let parent = parent.map_or("null".to_owned(), |p| p.to_string());
        format!(
            r#"{{"type":"step","name":"{name}","id":{id},"parent":{parent},"thread":0,"start_s":{},"end_s":{end},"items":0,"status":"ok","energy_j":1.0,"self_energy_j":1.0,"co2e_g":0.0}}"#,
            end - 0.5
        )
    }

    #[test]
    fn repeated_ids_and_parent_cycles_cannot_blow_up_the_step_tree() {
        // A malformed file: 3,000 records of a step that is its own parent, then 3,000 of two
        // ids that are each other's parent, repeated. Each used to re-nest the tree one level
        // deeper per record (cubic time: the server hung); now they count in the step table
        // and leave the tree bounded.
        let (_d, p, mut w) = setup();
        let mut text = String::new();
        for i in 0..3000 {
            text.push_str(&nested("self", 7, Some(7), 1.0 + i as f64));
            text.push('\n');
        }
        for i in 0..3000 {
            let (id, parent) = if i % 2 == 0 { (8, 9) } else { (9, 8) };
            text.push_str(&nested("cycle", id, Some(parent), 5000.0 + i as f64));
            text.push('\n');
        }
        // And a valid nest below, which the tree must still show.
        text.push_str(&nested("inner", 100, Some(101), 9000.0));
        text.push('\n');
        text.push_str(&nested("outer", 101, None, 9001.0));
        text.push('\n');
        append(&p, &text);
        let t = std::time::Instant::now();
        w.poll();
        let f = w.fold(&p).unwrap();
        let (rows, _) = f.tree(1000);
        assert!(rows.len() < 40, "{} rows", rows.len());
        assert!(
            rows.iter().any(|r| r.name == "inner" && r.depth == 1),
            "{rows:?}"
        );
        assert!(f.tree_skipped >= 5_997, "{}", f.tree_skipped);
        // The step table still counts every record.
        let (runs, _) = w.runs();
        let v = crate::view::RunView::new(&runs[0]);
        let count = |n: &str| v.rows.iter().find(|r| r.name == n).map_or(0, |r| r.count);
        assert_eq!((count("self"), count("cycle")), (3000, 3000));
        // Not a timing assertion: a generous bound that the cubic fold exceeded by minutes.
        assert!(t.elapsed() < std::time::Duration::from_secs(60));
    }

    #[test]
    fn appended_records_are_read_once_and_folded() {
        let (_d, p, mut w) = setup();
        w.poll();
        assert_eq!(w.runs().0.len(), 1);
        let v0 = w.version();
        append(
            &p,
            &format!(
                "{}\n{}\n{}\n",
                step(1, 1.0, 5),
                step(2, 2.0, 5),
                power(0.0, 2.0, 40.0)
            ),
        );
        w.poll();
        assert!(w.version() > v0);
        assert_eq!(items(&w), 10);
        assert_eq!(w.fold(&p).unwrap().records, 4);
        let (runs, _) = w.runs();
        let v = crate::view::RunView::new(&runs[0]);
        assert_eq!(v.energy, Joules(40.0));
        assert_eq!(v.rows.len(), 1);
        assert_eq!(v.rows[0].count, 2);
        assert_eq!(
            w.fold(&p).unwrap().current_power(),
            Some((20.0, Seconds(2.0)))
        );
        // Nothing appended: nothing read again, no new version.
        let v1 = w.version();
        w.poll();
        assert_eq!(w.version(), v1);
        assert_eq!(w.fold(&p).unwrap().records, 4);
    }

    #[test]
    fn a_partial_last_line_waits_for_its_end() {
        let (_d, p, mut w) = setup();
        let line = step(1, 1.0, 7);
        let (a, b) = line.split_at(40);
        append(&p, a);
        w.poll();
        assert_eq!(items(&w), 0);
        assert_eq!(w.fold(&p).unwrap().bad_lines, 0);
        append(&p, &format!("{b}\n"));
        w.poll();
        assert_eq!(items(&w), 7);
        assert_eq!(w.fold(&p).unwrap().bad_lines, 0);
    }

    #[test]
    fn a_truncated_file_is_read_again_from_the_start() {
        let (_d, p, mut w) = setup();
        append(&p, &format!("{}\n{}\n", step(1, 1.0, 5), step(2, 2.0, 5)));
        w.poll();
        assert_eq!(items(&w), 10);
        std::fs::write(&p, format!("{START}\n{}\n", step(1, 1.0, 3))).unwrap();
        let ev = w.poll();
        assert_eq!(ev.reread, vec![p.clone()]);
        assert_eq!(items(&w), 3);
    }

    #[test]
    fn a_file_rewritten_in_place_is_read_again_from_the_start() {
        let (_d, p, mut w) = setup();
        append(&p, &format!("{}\n{}\n", step(1, 1.0, 5), step(2, 2.0, 5)));
        w.poll();
        assert_eq!(items(&w), 10);
        // Same inode, a larger file, another content: only the bytes tell.
        let body = format!(
            "{START}\n{}\n{}\n{}\n",
            step(1, 1.0, 7),
            step(2, 2.0, 7),
            step(3, 3.0, 7)
        );
        let mut f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        std::io::Write::write_all(&mut f, body.as_bytes()).unwrap();
        drop(f);
        let ev = w.poll();
        assert_eq!(ev.reread, vec![p.clone()]);
        assert_eq!(items(&w), 21);
        // Appends after that are read as appends again.
        append(&p, &format!("{}\n", step(4, 4.0, 1)));
        let ev = w.poll();
        assert!(ev.reread.is_empty(), "{ev:?}");
        assert_eq!(items(&w), 22);
    }

    #[test]
    fn a_replaced_file_is_read_again_from_the_start() {
        let (d, p, mut w) = setup();
        append(&p, &format!("{}\n", step(1, 1.0, 5)));
        w.poll();
        assert_eq!(items(&w), 5);
        // A new inode with more bytes than the offset: only the inode tells.
        let tmp = d.path().join("new.tmp");
        let body = format!("{START}\n{}\n{}\n", step(1, 1.0, 2), step(2, 2.0, 2));
        std::fs::write(&tmp, body).unwrap();
        std::fs::rename(&tmp, &p).unwrap();
        let ev = w.poll();
        assert_eq!(ev.reread, vec![p.clone()]);
        assert_eq!(items(&w), 4);
    }

    #[test]
    fn a_deleted_file_is_dropped_and_said_so() {
        let (_d, p, mut w) = setup();
        w.poll();
        assert_eq!(w.runs().0.len(), 1);
        std::fs::remove_file(&p).unwrap();
        let ev = w.poll();
        assert_eq!(ev.deleted, vec![p.clone()]);
        let (runs, notes) = w.runs();
        assert!(runs.is_empty());
        assert!(
            notes[0].to_string().contains("deleted while watched"),
            "{}",
            notes[0]
        );
    }

    #[test]
    fn a_file_named_twice_is_one_run() {
        let (d, p, _) = setup();
        std::os::unix::fs::symlink(&p, d.path().join("again.jsonl")).unwrap();
        let mut w = Watcher::new(vec![d.path().to_path_buf(), p.clone()]);
        w.poll();
        assert_eq!(w.runs().0.len(), 1);
    }

    #[test]
    fn special_files_are_listed_not_opened() {
        let (d, _p, mut w) = setup();
        let fifo = d.path().join("evil.jsonl");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        w.poll();
        let (runs, notes) = w.runs();
        assert_eq!(runs.len(), 1);
        assert!(
            notes.iter().any(|n| n.to_string().contains("FIFO")),
            "{notes:?}"
        );
    }

    #[test]
    fn power_windows_stay_bounded_and_their_sum_exact() {
        let (_d, p, mut w) = setup();
        let mut text = String::new();
        for i in 0..(3 * MAX_POWER_WINDOWS) {
            text.push_str(&power(i as f64, i as f64 + 1.0, 1.0));
            text.push('\n');
        }
        append(&p, &text);
        w.poll();
        let (runs, _) = w.runs();
        assert!(runs[0].power.len() <= MAX_POWER_WINDOWS);
        let v = crate::view::RunView::new(&runs[0]);
        assert_eq!(v.energy, Joules((3 * MAX_POWER_WINDOWS) as f64));
    }
}
