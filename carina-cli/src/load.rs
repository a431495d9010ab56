//! Loading run files given as files or directories, with messages that name the file and line.
//!
//! Every path is checked before the reader opens it ([`crate::input`]): a regular file of at
//! most [`MAX_RUN_FILE_BYTES`], examined without blocking. A FIFO, device or socket named on
//! the command line is an error; one found while walking a directory (`job/evil.jsonl` as a
//! FIFO, a symlink to `/dev/zero`) is skipped with a warning, as is a run file in a directory
//! that cannot be read (empty, malformed, unreadable): the other runs are still analysed.

use crate::input::{InputError, MAX_RUN_FILE_BYTES, check_regular, special_kind};
use carina_runtime::reader::{ReadError, RunFile, read_run_file};
use std::path::{Path, PathBuf};

/// Why runs could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A path does not exist.
    #[error("{0}: no such file or directory")]
    Missing(PathBuf),
    /// A directory was given where one run file is expected.
    #[error(
        "{0}: a directory, where one run file is expected: give one of its *.jsonl files (`carina summary {0}` lists the runs in it)"
    )]
    IsDir(PathBuf),
    /// A directory holds no `*.jsonl` run file (searched recursively).
    #[error("{0}: no run files (*.jsonl) found in this directory")]
    NoRuns(PathBuf),
    /// Run files were found, but none could be read; each reason is listed.
    #[error("no run file could be read: {}", list(.0))]
    NoneReadable(Vec<LoadError>),
    /// A path is not a regular file, or too large.
    #[error(transparent)]
    Input(#[from] InputError),
    /// A run file is malformed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A directory could not be listed.
    #[error("cannot list {path}: {source}")]
    List {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

fn list(errors: &[LoadError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The run files that paths name: `named` were given on the command line (an error in one of
/// them stops the command); `found` were found while walking a directory (an error in one of
/// them skips it with a warning). `skipped`: entries of the walked directories that are not
/// regular files (a FIFO, a device, a socket), never opened.
#[derive(Debug, Default)]
pub struct RunPaths {
    /// Each path in order, with `true` when it was named on the command line.
    pub paths: Vec<(PathBuf, bool)>,
    /// Entries of a walked directory that were not read, and why.
    pub skipped: Vec<LoadError>,
}

/// Every `*.jsonl` file under `dir`, recursively, sorted by path, except the children's
/// `<run_id>.child-<pid>.jsonl` files that `carina run --keep-child-files` leaves beside a run:
/// their records are already merged into the parent's file, so listing them would count their
/// steps twice. Named explicitly, such a file loads like any other.
///
/// Symlinked directories are not followed: a link back up the tree (`ln -s .. loop`) would
/// otherwise list the same files again at every level. Symlinked files are included. A
/// `*.jsonl` entry that is not a regular file (a FIFO, a device, a symlink to one) goes to
/// `skipped`, unopened.
pub(crate) fn run_files_in(
    dir: &Path,
    out: &mut Vec<PathBuf>,
    skipped: &mut Vec<LoadError>,
) -> Result<(), LoadError> {
    let entries = std::fs::read_dir(dir).map_err(|source| LoadError::List {
        path: dir.to_path_buf(),
        source,
    })?;
    // `DirEntry::file_type` describes the entry itself, not what a symlink points to.
    let mut found: Vec<(PathBuf, std::fs::FileType)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_type().ok().map(|t| (e.path(), t)))
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    for (p, t) in found {
        if t.is_dir() {
            run_files_in(&p, out, skipped)?;
            continue;
        }
        if t.is_symlink() && p.is_dir() {
            continue;
        }
        let is_run = p.extension().is_some_and(|e| e == "jsonl")
            && !p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.contains(".child-"));
        if !is_run {
            continue;
        }
        // What the entry is, or what a symlink points to (a broken link is left to the
        // reader, which names it).
        let target = if t.is_symlink() {
            std::fs::metadata(&p).ok().map(|m| m.file_type())
        } else {
            Some(t)
        };
        match target.and_then(special_kind) {
            Some(kind) => skipped.push(LoadError::Input(InputError::NotRegular { path: p, kind })),
            None => out.push(p),
        }
    }
    Ok(())
}

/// The run files or directories a command reads: `paths`, else `$CARINA_DIR`, else
/// `./carina-runs` (the same default as where runs are written).
pub fn paths_or_default(paths: &[PathBuf]) -> Vec<PathBuf> {
    if paths.is_empty() {
        vec![
            std::env::var_os("CARINA_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("carina-runs")),
        ]
    } else {
        paths.to_vec()
    }
}

/// Resolves files and directories into the run files they name, each file once: a file named
/// twice (directly, through a directory, or through a symlink) is kept at its first occurrence,
/// compared by canonical path, so its run is not counted twice.
pub fn run_paths(paths: &[PathBuf]) -> Result<RunPaths, LoadError> {
    let mut out = RunPaths::default();
    let mut seen = std::collections::HashSet::new();
    let mut push = |p: PathBuf, named: bool, out: &mut RunPaths| {
        // A path that cannot be canonicalized (a broken symlink) is compared as given; reading
        // it then reports the error with its name.
        let key = std::fs::canonicalize(&p).unwrap_or_else(|_| p.clone());
        if seen.insert(key) {
            out.paths.push((p, named));
        }
    };
    for p in paths {
        if p.is_dir() {
            let mut found = Vec::new();
            let mut skipped = Vec::new();
            run_files_in(p, &mut found, &mut skipped)?;
            if found.is_empty() && skipped.is_empty() {
                return Err(LoadError::NoRuns(p.clone()));
            }
            for f in found {
                push(f, false, &mut out);
            }
            out.skipped.extend(skipped);
        } else if p.exists() {
            push(p.clone(), true, &mut out);
        } else {
            return Err(LoadError::Missing(p.clone()));
        }
    }
    Ok(out)
}

/// Reads one run file after checking that it is a regular file within the size bound.
fn read_checked(path: &Path) -> Result<RunFile, LoadError> {
    check_regular(path, MAX_RUN_FILE_BYTES, "a run file")?;
    Ok(read_run_file(path)?)
}

/// Loads every run named by `paths` (files or directories), oldest first (by `started_at`).
/// The first file that cannot be read (named, or found in a directory; a special file found in
/// a directory too) is an error: for a caller that needs every run or none.
pub fn load_runs(paths: &[PathBuf]) -> Result<Vec<RunFile>, LoadError> {
    let RunPaths { paths, skipped } = run_paths(paths)?;
    if let Some(e) = skipped.into_iter().next() {
        return Err(e);
    }
    let mut runs = Vec::new();
    for (p, _) in paths {
        runs.push(read_checked(&p)?);
    }
    sort_runs(&mut runs);
    Ok(runs)
}

/// Loads every run named by `paths` (files or directories), oldest first (by `started_at`),
/// with the files of walked directories that were skipped (not regular, empty, malformed,
/// unreadable; each error names the file), for the caller to warn about.
///
/// An error: a file named on the command line that cannot be read, a path that does not exist,
/// a directory that cannot be listed or holds no `*.jsonl`, or no run file readable at all.
/// `summary`, `compare` and `export` load their runs so.
pub fn load_runs_skipping(paths: &[PathBuf]) -> Result<(Vec<RunFile>, Vec<LoadError>), LoadError> {
    let RunPaths { paths, mut skipped } = run_paths(paths)?;
    let mut runs = Vec::new();
    for (p, named) in paths {
        match read_checked(&p) {
            Ok(r) => runs.push(r),
            Err(e) if named => return Err(e),
            Err(e) => skipped.push(e),
        }
    }
    if runs.is_empty() {
        return Err(LoadError::NoneReadable(skipped));
    }
    sort_runs(&mut runs);
    Ok((runs, skipped))
}

/// Like [`load_runs_skipping`], but a run file that cannot be read is skipped whether it was named or
/// found in a directory (`carina report`): returns the runs that loaded, oldest first, and one
/// error per skipped file, in path order. A caller that needs at least one run checks that the
/// list is not empty.
///
/// Still an error: a path that does not exist, a directory that cannot be listed, or one that
/// holds no run file, since these mean the paths themselves are wrong.
pub fn load_runs_lenient(paths: &[PathBuf]) -> Result<(Vec<RunFile>, Vec<LoadError>), LoadError> {
    let RunPaths { paths, mut skipped } = run_paths(paths)?;
    let mut runs = Vec::new();
    for (p, _) in paths {
        match read_checked(&p) {
            Ok(r) => runs.push(r),
            Err(e) => skipped.push(e),
        }
    }
    sort_runs(&mut runs);
    Ok((runs, skipped))
}

fn sort_runs(runs: &mut [RunFile]) {
    runs.sort_by_key(|r| r.start.started_at);
}

/// Loads one run file (the path must be a regular file).
pub fn load_run(path: &Path) -> Result<RunFile, LoadError> {
    if !path.exists() {
        return Err(LoadError::Missing(path.to_path_buf()));
    }
    if path.is_dir() {
        return Err(LoadError::IsDir(path.to_path_buf()));
    }
    read_checked(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_skip_merged_child_files_but_named_ones_load() {
        let dir = tempfile::tempdir().unwrap();
        let job = dir.path().join("job");
        std::fs::create_dir(&job).unwrap();
        for n in ["r1.jsonl", "r1.child-77.jsonl", "notes.txt"] {
            std::fs::write(job.join(n), "").unwrap();
        }
        let found = run_paths(&[dir.path().to_path_buf()]).unwrap().paths;
        assert_eq!(found, vec![(job.join("r1.jsonl"), false)]);
        let named = run_paths(&[job.join("r1.child-77.jsonl")]).unwrap().paths;
        assert_eq!(named, vec![(job.join("r1.child-77.jsonl"), true)]);
        let e = load_run(&job).unwrap_err().to_string();
        assert!(
            e.contains("a directory, where one run file is expected"),
            "{e}"
        );
    }
}
