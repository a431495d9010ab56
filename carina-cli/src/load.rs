//! Loading run files given as files or directories, with messages that name the file and line.

use carina_core::reader::{ReadError, RunFile, read_run_file};
use std::path::{Path, PathBuf};

/// Why runs could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A path does not exist.
    #[error("{0}: no such file or directory")]
    Missing(PathBuf),
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
fn run_files_in(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), LoadError> {
    let entries = std::fs::read_dir(dir).map_err(|source| LoadError::List {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            run_files_in(&p, out)?;
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

/// Resolves files and directories into the run files they name.
pub fn run_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>, LoadError> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let before = out.len();
            run_files_in(p, &mut out)?;
            if out.len() == before {
                return Err(LoadError::NoRuns(p.clone()));
            }
        } else if p.exists() {
            out.push(p.clone());
        } else {
            return Err(LoadError::Missing(p.clone()));
        }
    }
    Ok(out)
}

/// Loads every run named by `paths` (files or directories), oldest first (by `started_at`).
pub fn load_runs(paths: &[PathBuf]) -> Result<Vec<RunFile>, LoadError> {
    let mut runs = Vec::new();
    for p in run_paths(paths)? {
        runs.push(read_run_file(&p)?);
    }
    runs.sort_by(|a, b| a.start.started_at.cmp(&b.start.started_at));
    Ok(runs)
}

/// Loads one run file (the path must be a file).
pub fn load_run(path: &Path) -> Result<RunFile, LoadError> {
    if !path.exists() {
        return Err(LoadError::Missing(path.to_path_buf()));
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
    }
}
