//! The run files of a run's children, merged into the run's own file.
//!
//! Under `carina run`, a child process that links Carina sees `CARINA_PARENT_PID` and writes its
//! steps to `<run_id>.child-<pid>.jsonl` beside the parent's `<run_id>.jsonl`. Once the command
//! has exited those files are complete (or as complete as a killed child left them).
//! [`collect`] reads them with the reader ([`crate::reader::read_records`]) and
//! [`ChildRuns::additions`] turns them into the [`Additions`] that the parent's session writes
//! before its `run_end` ([`Session::finish_with`](crate::session::Session::finish_with)): the
//! parent's `run_end` is written once, with the figures of the `RunSummary` it returns.
//!
//! What is merged: `thread`, `step`, `step_summary` and `control` records, with thread indices
//! and step ids shifted per child file so they stay unique (the parent itself records no steps).
//! Each child's `run_start`, `power` and `run_end` are not copied: the parent's energy is the
//! whole process tree's, the children's is inside it. Their totals fold into the parent's
//! `run_end` instead: steps, items, dropped and unwritten counts, and the children's step energy
//! leaves the parent's unattributed figure.

use crate::input::OpenRules;
use crate::reader::{ReadError, Records, read_records_with};
use crate::record::{DomainEnergy, Record, StepSummary};
use crate::session::Additions;
use carina_core::units::Joules;
use std::path::{Path, PathBuf};

/// The run files that children of run `run_id` write in `job_dir`
/// (`<run_id>.child-<pid>.jsonl`), sorted; empty when the directory cannot be read.
pub fn child_file_paths(job_dir: &Path, run_id: &str) -> Vec<PathBuf> {
    let prefix = format!("{}.child-", crate::naming::path_safe(run_id));
    let mut paths: Vec<PathBuf> = std::fs::read_dir(job_dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".jsonl"))
                })
                .collect()
        })
        .unwrap_or_default();
    paths.sort();
    paths
}

/// One child run file and what it adds to the parent's `run_end`.
#[derive(Debug, Clone, Default)]
pub struct ChildFile {
    /// The file.
    pub path: PathBuf,
    /// Lines that are not a whole record (a child killed mid-line): their content is not
    /// merged, so the file should be kept.
    pub bad_lines: usize,
    /// Whether the child wrote its `run_end` (it finished); `false`: it crashed or was killed.
    pub complete: bool,
    /// Step instances: the summaries' count when the file has summaries, else its step records.
    pub steps: u64,
    /// The steps' self energy (summaries when present, else step records).
    pub attributed: Joules,
    /// Items done: a finished child's `run_end.items` (or its largest summary total, if larger);
    /// a child without `run_end`, the item total of its progress step
    /// ([`RunFile::progress`](crate::reader::RunFile::progress)).
    pub items: u64,
    /// The progress step's name, for a child without `run_end`.
    pub progress_step: Option<String>,
    /// The child's `run_end.dropped`.
    pub dropped: u64,
    /// The child's `run_end.records_not_written`.
    pub records_not_written: u64,
    /// Records of this file among [`ChildRuns::records`].
    pub merged: usize,
}

/// The records and totals of every child run file of a run: see [`collect`].
#[derive(Debug, Clone, Default)]
pub struct ChildRuns {
    /// The records to write into the parent's file, in file order, file after file.
    pub records: Vec<Record>,
    /// The child files read, in the order of `records`.
    pub files: Vec<ChildFile>,
    /// Files not merged (they should be kept), one line each: refused (a symbolic link, not a
    /// regular file, another user's, or not this run's by its `run_start`) or unreadable.
    pub problems: Vec<String>,
}

/// Reads `<job_dir>/<run_id>.child-*.jsonl`, leaving out `own_file` (the parent's own file,
/// when the parent is itself a child of an outer `carina run`).
///
/// Only files this run's own children wrote are merged: a regular file owned by this process's
/// user, not a symbolic link (not followed: [`OpenRules::child_file`]), whose first record is a
/// `run_start` naming `run_id` (a child writes it before its `start()` returns). Any other file
/// matching the name (planted, or another run's copied or linked in) is refused: not merged,
/// left in place, and named in [`ChildRuns::problems`] (one warning line each in the run
/// file's `run_end.warnings`, see [`ChildRuns::notes`]).
pub fn collect(job_dir: &Path, run_id: &str, own_file: Option<&Path>) -> ChildRuns {
    let mut out = ChildRuns::default();
    let (mut thread_base, mut id_base) = (0u32, 0u64);
    for path in child_file_paths(job_dir, run_id) {
        if own_file.is_some_and(|own| own == path) {
            continue;
        }
        let refused = |why: String| format!("refused {why}; left in place");
        let file = match read_records_with(&path, OpenRules::child_file()) {
            Ok(file) => match file.records.first() {
                Some(Record::RunStart(s)) if s.run_id == run_id => Ok(file),
                Some(Record::RunStart(s)) => Err(refused(format!(
                    "{}: its run_start names run id {:?}, not this run's {run_id:?}",
                    path.display(),
                    s.run_id
                ))),
                _ => Err(refused(format!(
                    "{}: it does not start with a run_start naming this run's id {run_id:?}",
                    path.display()
                ))),
            },
            // A symbolic link, another user's file, not a regular file.
            Err(ReadError::Input(e)) => Err(refused(e.to_string())),
            Err(e) => Err(format!("{e} (kept)")),
        };
        match file {
            Err(problem) => out.problems.push(problem),
            Ok(file) => {
                let (child, next_thread, max_id) =
                    add_child(&mut out.records, file, thread_base, id_base);
                thread_base = next_thread;
                id_base += max_id;
                out.files.push(child);
            }
        }
    }
    combine_summaries(&mut out.records);
    out
}

/// Replaces the children's `step_summary` records by one per step name, after the other
/// records: N workers running the same step give one summary whose counts, items, time and
/// energy are the sums, as if one process had run them all. `max_s` is the largest; `p50_s` and
/// `p95_s` are the instance-weighted means of the children's (an approximation: quantiles do not
/// add); the band and per-domain energy are kept only when every part has them (same domains).
fn combine_summaries(records: &mut Vec<Record>) {
    let mut combined: Vec<StepSummary> = Vec::new();
    records.retain(|r| {
        let Record::StepSummary(s) = r else {
            return true;
        };
        match combined.iter_mut().find(|c| c.name == s.name) {
            Some(c) => absorb(c, s),
            None => combined.push(s.clone()),
        }
        false
    });
    records.extend(combined.into_iter().map(Record::StepSummary));
}

fn absorb(into: &mut StepSummary, s: &StepSummary) {
    let n = into.count.saturating_add(s.count).max(1) as f64;
    let weighted = |a: f64, b: f64| (a * into.count as f64 + b * s.count as f64) / n;
    into.p50_s = weighted(into.p50_s, s.p50_s);
    into.p95_s = weighted(into.p95_s, s.p95_s);
    into.count = into.count.saturating_add(s.count);
    into.items = into.items.saturating_add(s.items);
    into.wall_s += s.wall_s;
    into.self_wall_s += s.self_wall_s;
    into.energy_j += s.energy_j;
    into.self_energy_j += s.self_energy_j;
    into.co2e_g += s.co2e_g;
    into.max_s = into.max_s.max(s.max_s);
    into.errors = into.errors.saturating_add(s.errors);
    into.panics = into.panics.saturating_add(s.panics);
    let add = |a: Option<Joules>, b: Option<Joules>| Some(a? + b?);
    into.energy_low_j = add(into.energy_low_j, s.energy_low_j);
    into.energy_high_j = add(into.energy_high_j, s.energy_high_j);
    into.energy_by_domain = match (into.energy_by_domain.take(), &s.energy_by_domain) {
        (Some(a), Some(b)) if a.iter().map(|x| x.0).eq(b.iter().map(|x| x.0)) => {
            let values: Vec<f64> = a.iter().zip(b.iter()).map(|(x, y)| (x.1 + y.1).0).collect();
            Some(DomainEnergy::new(a.names(), &values))
        }
        _ => None,
    };
    // Combinations of attributes: summed by combination, within the same bound per name.
    into.attrs_folded = into.attrs_folded.saturating_add(s.attrs_folded);
    for g in s.by_attrs.iter().flatten() {
        let by = into.by_attrs.get_or_insert_with(Vec::new);
        let full = by.len() >= crate::record::MAX_ATTR_GROUPS;
        match by.iter_mut().find(|x| x.attrs == g.attrs) {
            Some(x) => {
                x.count = x.count.saturating_add(g.count);
                x.items = x.items.saturating_add(g.items);
                x.wall_s += g.wall_s;
                x.energy_j += g.energy_j;
                x.self_energy_j += g.self_energy_j;
                x.co2e_g += g.co2e_g;
                x.errors = x.errors.saturating_add(g.errors);
            }
            None if !full => by.push(g.clone()),
            None => into.attrs_folded = into.attrs_folded.saturating_add(g.count),
        }
    }
    if let Some(by) = into.by_attrs.as_mut() {
        by.sort_by(|a, b| a.attrs.cmp(&b.attrs));
    }
}

/// Appends one child file's records to `records`, shifted by `thread_base` and `id_base`;
/// returns the file's totals, the next free thread index and the file's largest step id.
fn add_child(
    records: &mut Vec<Record>,
    file: Records,
    thread_base: u32,
    id_base: u64,
) -> (ChildFile, u32, u64) {
    let view = file.run_file();
    let mut child = ChildFile {
        path: file.path.clone(),
        bad_lines: file.bad_lines,
        ..ChildFile::default()
    };
    let (mut max_thread, mut max_id) = (None::<u32>, 0u64);
    let before = records.len();
    for rec in file.records {
        records.push(match rec {
            Record::Thread(mut t) => {
                max_thread = max_thread.max(Some(t.index));
                t.index += thread_base;
                Record::Thread(t)
            }
            Record::Step(mut s) => {
                max_thread = max_thread.max(Some(s.thread));
                max_id = max_id.max(s.id);
                s.thread += thread_base;
                s.id += id_base;
                s.parent = s.parent.map(|p| p + id_base);
                Record::Step(s)
            }
            r @ (Record::StepSummary(_) | Record::Control(_)) => r,
            Record::RunStart(_) | Record::RunEnd(_) | Record::Power(_) | Record::Unknown => {
                continue;
            }
        });
    }
    child.merged = records.len() - before;
    (child.steps, child.attributed) = if view.summaries.is_empty() {
        (
            view.steps.len() as u64,
            view.steps.iter().map(|s| s.self_energy_j).sum(),
        )
    } else {
        (
            view.summaries
                .iter()
                .fold(0u64, |n, s| n.saturating_add(s.count)),
            view.summaries.iter().map(|s| s.self_energy_j).sum(),
        )
    };
    match &view.end {
        Some(e) => {
            let largest_summary = view.summaries.iter().map(|s| s.items).max().unwrap_or(0);
            child.complete = true;
            child.items = e.items.max(largest_summary);
            child.dropped = e.dropped;
            child.records_not_written = e.records_not_written;
        }
        None => {
            // The child did not finish: its items are those of its progress step, the rule of
            // `carina summary` for a crashed run. Every merged step counts: the parent's energy
            // covers the whole process tree until the command exited.
            if let Some(p) = view.progress() {
                child.items = p.items;
                child.progress_step = Some(p.name);
            }
        }
    }
    let next_thread = thread_base + max_thread.map_or(0, |t| t + 1);
    (child, next_thread, max_id)
}

impl ChildRuns {
    /// Whether there was nothing to merge (no child file, readable or not).
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.problems.is_empty()
    }

    /// Records to write into the parent's file.
    pub fn merged(&self) -> usize {
        self.records.len()
    }

    /// Step instances of every child file ([`ChildFile::steps`]).
    pub fn steps(&self) -> u64 {
        // Saturating: the counts come from files other processes wrote.
        self.files
            .iter()
            .fold(0u64, |n, f| n.saturating_add(f.steps))
    }

    /// The children's items: the largest of the child files' ([`ChildFile::items`]) and of the
    /// combined per-name summaries (workers that share a step add up).
    pub fn items(&self) -> u64 {
        let combined = self.records.iter().filter_map(|r| match r {
            Record::StepSummary(s) => Some(s.items),
            _ => None,
        });
        self.files
            .iter()
            .map(|f| f.items)
            .chain(combined)
            .max()
            .unwrap_or(0)
    }

    /// The `run_end.warnings` lines saying what was merged (none when there was nothing): the
    /// merge itself, each file not merged ([`problems`](Self::problems)), then each child that
    /// did not finish and each file with lines that could not be merged.
    pub fn notes(&self) -> Vec<String> {
        if self.is_empty() {
            return Vec::new();
        }
        let mut note = format!(
            "merged {} records (thread, step, step_summary, control) from {} child run \
             file(s); their energy is each child's own process share, already inside this \
             run's process-tree total",
            self.merged(),
            self.files.len()
        );
        if !self.problems.is_empty() {
            note.push_str(&format!("; {} file(s) not merged", self.problems.len()));
        }
        let mut notes = vec![note];
        // One line per file not merged, naming it: a refused file (a symbolic link, another
        // run's or user's file) is evidence someone may want to look at.
        notes.extend(
            self.problems
                .iter()
                .map(|p| format!("child run file not merged: {p}")),
        );
        for f in &self.files {
            if !f.complete {
                notes.push(format!(
                    "child run file {} has no run_end (the child crashed or was killed): its {} \
                     step record(s) are merged, and its items are those of its progress step{} \
                     ({})",
                    f.path.display(),
                    f.steps,
                    f.progress_step
                        .as_deref()
                        .map_or(String::new(), |n| format!(" `{n}`")),
                    f.items
                ));
            }
            if f.bad_lines > 0 {
                notes.push(format!(
                    "child run file {}: {} malformed line(s) (a child killed mid-line?) could \
                     not be merged; the file is kept",
                    f.path.display(),
                    f.bad_lines
                ));
            }
        }
        notes
    }

    /// What the parent's session writes before its `run_end` and folds into it
    /// ([`Session::finish_with`](crate::session::Session::finish_with)): the records, the
    /// children's steps, items (the largest child's), dropped and unwritten counts, their steps'
    /// energy as attributed, and [`notes`](Self::notes) as warnings.
    pub fn additions(&self) -> Additions {
        Additions {
            records: self.records.clone(),
            steps: self.steps(),
            items: self.items(),
            dropped: self
                .files
                .iter()
                .fold(0u64, |n, f| n.saturating_add(f.dropped)),
            records_not_written: self
                .files
                .iter()
                .fold(0u64, |n, f| n.saturating_add(f.records_not_written)),
            attributed: self.files.iter().map(|f| f.attributed).sum(),
            warnings: self.notes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use carina_core::units::Seconds;

    const THREAD: &str = r#"{"type":"thread","index":0,"name":"main"}"#;

    /// A child's first line: its `run_start`, naming the run it belongs to.
    fn start(run_id: &str) -> String {
        format!(
            r#"{{"type":"run_start","schema":1,"run_id":"{run_id}","job":"j","host":"h","pid":10,"started_at":"2026-11-28T00:00:00Z","energy_sources":[],"carbon":{{"g_per_kwh":472.94,"zone":"WORLD","source":"x"}}}}"#
        )
    }

    fn step(id: u64, parent: Option<u64>, items: u64) -> String {
        format!(
            r#"{{"type":"step","name":"load","id":{id},"parent":{},"thread":0,"start_s":0.1,"end_s":0.2,"items":{items},"status":"ok","energy_j":0.5,"self_energy_j":0.25,"co2e_g":0.0001}}"#,
            parent.map_or("null".to_owned(), |p| p.to_string())
        )
    }

    #[test]
    fn two_children_keep_unique_threads_and_ids_and_fold_their_totals() {
        let dir = tempfile::tempdir().unwrap();
        let end = r#"{"type":"run_end","ended_at":"2026-11-28T05:13:00Z","wall_s":0.2,"energy_j":0.5,"unattributed_j":0.0,"co2e_g":0.0001,"items":9,"steps":2,"dropped":1}"#;
        let a = [
            start("r1"),
            THREAD.to_owned(),
            step(1, None, 4),
            step(2, Some(1), 5),
            end.to_owned(),
        ];
        std::fs::write(dir.path().join("r1.child-10.jsonl"), a.join("\n") + "\n").unwrap();
        // Killed: no run_end, a line cut off at the end.
        let b = [
            start("r1"),
            THREAD.to_owned(),
            step(1, None, 3),
            "{\"type\":\"st".to_owned(),
        ];
        std::fs::write(dir.path().join("r1.child-11.jsonl"), b.join("\n")).unwrap();
        // Another run's child and the parent's own file are not merged.
        std::fs::write(dir.path().join("r2.child-12.jsonl"), step(1, None, 1)).unwrap();
        std::fs::write(dir.path().join("r1.jsonl"), "").unwrap();

        let runs = collect(dir.path(), "r1", None);
        assert_eq!(runs.files.len(), 2);
        assert_eq!(runs.merged(), 5);
        let steps: Vec<_> = runs
            .records
            .iter()
            .filter_map(|r| match r {
                Record::Step(s) => Some((s.id, s.parent, s.thread)),
                _ => None,
            })
            .collect();
        assert_eq!(steps, [(1, None, 0), (2, Some(1), 0), (3, None, 1)]);
        let (a, b) = (&runs.files[0], &runs.files[1]);
        assert!(a.complete && !b.complete);
        assert_eq!((a.items, a.dropped, a.bad_lines), (9, 1, 0));
        assert_eq!((b.items, b.bad_lines), (3, 1));
        assert_eq!(b.progress_step.as_deref(), Some("load"));
        let add = runs.additions();
        assert_eq!((add.steps, add.items, add.dropped), (3, 9, 1));
        assert!((add.attributed.0 - 0.75).abs() < 1e-12);
        assert_eq!(add.warnings.len(), 3, "{:?}", add.warnings);

        let own = dir.path().join("r1.child-10.jsonl");
        assert_eq!(collect(dir.path(), "r1", Some(&own)).files.len(), 1);
    }

    #[test]
    fn bad_utf8_costs_a_child_file_only_its_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = format!("{}\n{THREAD}\n{}\n", start("r1"), step(1, None, 4)).into_bytes();
        // A middle line with a byte that starts no character...
        let mut bad = step(2, None, 5).replace("load", "lo~d").into_bytes();
        let p = bad.iter().position(|&b| b == b'~').unwrap();
        bad[p] = 0xff;
        bytes.extend_from_slice(&bad);
        bytes.extend_from_slice(format!("\n{}\n", step(3, None, 6)).as_bytes());
        // ...and a last line cut inside a character (a child killed mid-write).
        let wide = step(4, None, 7).replace("load", "größe");
        let cut = wide.find('ö').unwrap() + 1;
        bytes.extend_from_slice(&wide.as_bytes()[..cut]);
        std::fs::write(dir.path().join("r1.child-10.jsonl"), &bytes).unwrap();
        let runs = collect(dir.path(), "r1", None);
        assert!(runs.problems.is_empty(), "{:?}", runs.problems);
        assert_eq!(runs.files.len(), 1);
        assert_eq!(runs.files[0].bad_lines, 2);
        let ids: Vec<u64> = runs
            .records
            .iter()
            .filter_map(|r| match r {
                Record::Step(s) => Some(s.id),
                _ => None,
            })
            .collect();
        assert_eq!(ids, [1, 3]);
    }

    #[test]
    fn only_this_runs_own_child_files_are_merged() {
        let dir = tempfile::tempdir().unwrap();
        let own = [start("r1"), step(1, None, 4)].join("\n") + "\n";
        std::fs::write(dir.path().join("r1.child-10.jsonl"), &own).unwrap();
        // Another run's file, linked in under this run's child name: not followed, even though
        // its target would name this run.
        let elsewhere = tempfile::tempdir().unwrap();
        let target = elsewhere.path().join("foreign.jsonl");
        let foreign = [start("r1"), step(1, None, 11_904)].join("\n") + "\n";
        std::fs::write(&target, &foreign).unwrap();
        let link = dir.path().join("r1.child-20.jsonl");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        // Another run's file copied in, and one with no run_start at all.
        let copied = dir.path().join("r1.child-21.jsonl");
        let other = [start("r0"), step(1, None, 559)].join("\n") + "\n";
        std::fs::write(&copied, &other).unwrap();
        let bare = dir.path().join("r1.child-22.jsonl");
        std::fs::write(&bare, step(1, None, 7) + "\n").unwrap();

        let runs = collect(dir.path(), "r1", None);
        assert_eq!(runs.files.len(), 1);
        assert_eq!(runs.files[0].path, dir.path().join("r1.child-10.jsonl"));
        assert_eq!(runs.items(), 4, "nothing of the refused files is counted");
        assert_eq!(runs.problems.len(), 3, "{:?}", runs.problems);
        for (p, why) in [
            (&link, "symbolic link"),
            (&copied, "run id \"r0\""),
            (&bare, "does not start with a run_start"),
        ] {
            let name = p.display().to_string();
            assert!(
                runs.problems
                    .iter()
                    .any(|x| x.contains(&name) && x.contains(why) && x.ends_with("left in place")),
                "{why}: {:?}",
                runs.problems
            );
            // Left in place, untouched.
            assert!(std::fs::symlink_metadata(p).is_ok());
        }
        assert_eq!(std::fs::read_to_string(&target).unwrap(), foreign);
        // Each refused file is a warning line of its own in the run file.
        let notes = runs.notes();
        assert_eq!(
            notes
                .iter()
                .filter(|n| n.starts_with("child run file not merged: refused "))
                .count(),
            3,
            "{notes:?}"
        );
    }

    #[test]
    fn hostile_counts_saturate_instead_of_overflowing() {
        let dir = tempfile::tempdir().unwrap();
        let max = u64::MAX;
        let summary = format!(
            r#"{{"type":"step_summary","name":"solve","count":{max},"wall_s":1.0,"self_wall_s":1.0,"items":{max},"energy_j":1.0,"self_energy_j":1.0,"co2e_g":0.001,"p50_s":1.0,"p95_s":1.0,"max_s":1.0,"errors":{max},"panics":{max}}}"#
        );
        let end = format!(
            r#"{{"type":"run_end","ended_at":"2026-11-28T05:13:00Z","wall_s":1.0,"energy_j":1.0,"unattributed_j":0.0,"co2e_g":0.001,"items":{max},"steps":{max},"dropped":{max},"records_not_written":{max}}}"#
        );
        for pid in [10, 11] {
            let lines = [start("r1"), summary.clone(), end.clone()];
            std::fs::write(
                dir.path().join(format!("r1.child-{pid}.jsonl")),
                lines.join("\n") + "\n",
            )
            .unwrap();
        }
        let c = collect(dir.path(), "r1", None);
        let add = c.additions();
        assert_eq!(
            (add.steps, add.items, add.dropped, add.records_not_written),
            (max, max, max, max)
        );
        let Some(Record::StepSummary(s)) = c.records.last() else {
            panic!("{:?}", c.records);
        };
        assert_eq!((s.count, s.items, s.errors, s.panics), (max, max, max, max));
    }

    #[test]
    fn a_child_record_with_an_impossible_value_is_not_merged() {
        let dir = tempfile::tempdir().unwrap();
        let negative = step(2, None, 5).replace(r#""energy_j":0.5"#, r#""energy_j":-1e9"#);
        let lines = [start("r1"), step(1, None, 4), negative, step(3, None, 6)];
        std::fs::write(
            dir.path().join("r1.child-10.jsonl"),
            lines.join("\n") + "\n",
        )
        .unwrap();
        let runs = collect(dir.path(), "r1", None);
        assert_eq!(runs.files[0].bad_lines, 1);
        assert_eq!(runs.steps(), 2);
        assert!((runs.additions().attributed.0 - 0.5).abs() < 1e-12);
    }

    #[test]
    fn workers_sharing_a_step_give_one_summary_with_the_sums() {
        let dir = tempfile::tempdir().unwrap();
        let summary = |count: u64, items: u64, p50: f64| {
            format!(
                r#"{{"type":"step_summary","name":"solve","count":{count},"wall_s":{count}.0,"self_wall_s":{count}.0,"items":{items},"energy_j":{count}.0,"self_energy_j":{count}.0,"co2e_g":0.001,"p50_s":{p50},"p95_s":{p50},"max_s":{p50}}}"#
            )
        };
        let end = |items: u64| {
            format!(
                r#"{{"type":"run_end","ended_at":"2026-11-28T05:13:00Z","wall_s":1.0,"energy_j":1.0,"unattributed_j":0.0,"co2e_g":0.001,"items":{items},"steps":1}}"#
            )
        };
        for (pid, count, items, p50) in [(10, 1u64, 300u64, 1.0), (11, 3, 500, 2.0)] {
            let lines = [start("r1"), summary(count, items, p50), end(items)];
            std::fs::write(
                dir.path().join(format!("r1.child-{pid}.jsonl")),
                lines.join("\n") + "\n",
            )
            .unwrap();
        }
        let c = collect(dir.path(), "r1", None);
        let sums: Vec<&StepSummary> = c
            .records
            .iter()
            .filter_map(|r| match r {
                Record::StepSummary(s) => Some(s),
                _ => None,
            })
            .collect();
        assert_eq!(sums.len(), 1, "{sums:?}");
        let s = sums[0];
        assert_eq!((s.count, s.items), (4, 800));
        assert_eq!((s.wall_s, s.energy_j), (Seconds(4.0), Joules(4.0)));
        assert_eq!(s.max_s, Seconds(2.0));
        // Instance-weighted: (1 x 1.0 + 3 x 2.0) / 4.
        assert!((s.p50_s - 1.75).abs() < 1e-12);
        // Two workers of one step: their items add up.
        assert_eq!(c.items(), 800);
        assert_eq!(c.additions().steps, 4);
    }

    /// Children's `by_attrs` add up per combination, as their totals do.
    #[test]
    fn summaries_combine_their_attribute_combinations() {
        let sum = |groups: &str, folded: u64| -> StepSummary {
            serde_json::from_str(&format!(
                r#"{{"name":"train","count":4,"wall_s":4.0,"self_wall_s":4.0,"items":4,"energy_j":4.0,"self_energy_j":4.0,"co2e_g":0.004,"p50_s":1.0,"p95_s":1.0,"max_s":1.0,"by_attrs":[{groups}],"attrs_folded":{folded}}}"#
            ))
            .unwrap()
        };
        let g = |d: &str, n: u64| {
            format!(
                r#"{{"attrs":{{"dataset":"{d}"}},"count":{n},"wall_s":{n}.0,"items":{n},"energy_j":{n}.0,"self_energy_j":{n}.0,"co2e_g":0.001}}"#
            )
        };
        let mut a = sum(&[g("b", 1), g("c", 2)].join(","), 1);
        let b = sum(&[g("a", 3), g("b", 1)].join(","), 0);
        absorb(&mut a, &b);
        let by = a.by_attrs.unwrap();
        let got: Vec<(&str, u64, f64)> = by
            .iter()
            .map(|x| (x.attrs["dataset"].as_str(), x.count, x.energy_j.0))
            .collect();
        assert_eq!(got, [("a", 3, 3.0), ("b", 2, 2.0), ("c", 2, 2.0)]);
        assert_eq!((a.count, a.attrs_folded), (8, 1));
    }
}
