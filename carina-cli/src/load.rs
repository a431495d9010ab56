//! Loading run files given as files or directories, with messages that name the file and line.

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

/// Every `*.jsonl` file under `dir`, recursively, sorted by path, except the children's
/// `<run_id>.child-<pid>.jsonl` files that `carina run --keep-child-files` leaves beside a run:
/// their records are already merged into the parent's file, so listing them would count their
/// steps twice. Named explicitly, such a file loads like any other.
///
/// Symlinked directories are not followed: a link back up the tree (`ln -s .. loop`) would
/// otherwise list the same files again at every level. Symlinked files are included.
fn run_files_in(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), LoadError> {
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
            run_files_in(&p, out)?;
        } else if t.is_symlink() && p.is_dir() {
            continue;
        } else if p.extension().is_some_and(|e| e == "jsonl")
            && !p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.contains(".child-"))
        {
            out.push(p);
        }
    }
    Ok(())
}

/// Resolves files and directories into the run files they name, each file once: a file named
/// twice (directly, through a directory, or through a symlink) is kept at its first occurrence,
/// compared by canonical path, so its run is not counted twice.
pub fn run_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>, LoadError> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut push = |p: PathBuf, out: &mut Vec<PathBuf>| {
        // A path that cannot be canonicalized (a broken symlink) is compared as given; reading
        // it then reports the error with its name.
        let key = std::fs::canonicalize(&p).unwrap_or_else(|_| p.clone());
        if seen.insert(key) {
            out.push(p);
        }
    };
    for p in paths {
        if p.is_dir() {
            let mut found = Vec::new();
            run_files_in(p, &mut found)?;
            if found.is_empty() {
                return Err(LoadError::NoRuns(p.clone()));
            }
            for f in found {
                push(f, &mut out);
            }
        } else if p.exists() {
            push(p.clone(), &mut out);
        } else {
            return Err(LoadError::Missing(p.clone()));
        }
    }
    Ok(out)
}

/// Loads every run named by `paths` (files or directories), oldest first (by `started_at`).
/// The first file that cannot be read is an error.
pub fn load_runs(paths: &[PathBuf]) -> Result<Vec<RunFile>, LoadError> {
    let mut runs = Vec::new();
    for p in run_paths(paths)? {
        runs.push(read_run_file(&p)?);
    }
    sort_runs(&mut runs);
    Ok(runs)
}

/// Like [`load_runs`], but a run file that cannot be read (empty, malformed, unreadable) is
/// skipped instead of stopping the load: returns the runs that loaded, oldest first, and one
/// error per skipped file, in path order. A caller that needs at least one run checks that the
/// list is not empty.
///
/// Still an error: a path that does not exist, a directory that cannot be listed, or one that
/// holds no run file, since these mean the paths themselves are wrong.
pub fn load_runs_lenient(paths: &[PathBuf]) -> Result<(Vec<RunFile>, Vec<LoadError>), LoadError> {
    let mut runs = Vec::new();
    let mut skipped = Vec::new();
    for p in run_paths(paths)? {
        match read_run_file(&p) {
            Ok(r) => runs.push(r),
            Err(e) => skipped.push(LoadError::from(e)),
        }
    }
    sort_runs(&mut runs);
    Ok((runs, skipped))
}

fn sort_runs(runs: &mut [RunFile]) {
    runs.sort_by_key(|r| r.start.started_at);
}

/// Loads one run file (the path must be a file).
pub fn load_run(path: &Path) -> Result<RunFile, LoadError> {
    if !path.exists() {
        return Err(LoadError::Missing(path.to_path_buf()));
    }
    if path.is_dir() {
        return Err(LoadError::IsDir(path.to_path_buf()));
    }
    Ok(read_run_file(path)?)
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
        let found = run_paths(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(found, vec![job.join("r1.jsonl")]);
        let named = run_paths(&[job.join("r1.child-77.jsonl")]).unwrap();
        assert_eq!(named, vec![job.join("r1.child-77.jsonl")]);
        let e = load_run(&job).unwrap_err().to_string();
        assert!(
            e.contains("a directory, where one run file is expected"),
            "{e}"
        );
    }
}
