//! Input files the CLI reads: regular files only, checked without blocking, with a size bound.
//!
//! A path given as input may name a FIFO (its `open` blocks until a writer appears, forever if
//! none does), a device (`/dev/zero` never ends and fills memory), or a symlink to either. Each
//! input is therefore checked before anything reads it: `stat` first, so a special file is
//! refused without being opened at all (opening some devices has side effects); then an `open`
//! with `O_NONBLOCK | O_CLOEXEC` and an `fstat` of what was opened, so a file swapped for a FIFO
//! in between is still caught and the open itself cannot block. What passes is a regular file
//! no larger than the caller's bound.
//!
//! The run-file reader opens the path again; a file replaced between the check and that open
//! is not caught here (the reader's own checks then apply).

use std::fs::File;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The largest run file read: 4 GiB. Every record of a run is held in memory while it is
/// analysed, so a larger file (or a file that grows without end) would exhaust memory rather
/// than give an answer.
pub const MAX_RUN_FILE_BYTES: u64 = 4 << 30;

/// Why an input path is refused.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The path does not exist (or is a broken symlink).
    #[error("{0}: no such file or directory")]
    Missing(PathBuf),
    /// The path is not a regular file.
    #[error(
        "{path}: {kind}, not a regular file; only regular files are read (a pipe or a device may block or never end)"
    )]
    NotRegular {
        /// The path as given.
        path: PathBuf,
        /// What it is: "a FIFO (named pipe)", "a character device", ...
        kind: &'static str,
    },
    /// The file is larger than the bound for its kind of input.
    #[error("{path}: {size} bytes, more than the {limit} bytes read at most for {what}")]
    TooLarge {
        /// The path as given.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The bound.
        limit: u64,
        /// The kind of input ("a run file").
        what: &'static str,
    },
    /// The path cannot be examined or opened.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path as given.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// What a file type is, in words, for a message; `None` for a regular file.
pub fn special_kind(t: std::fs::FileType) -> Option<&'static str> {
    if t.is_file() {
        None
    } else if t.is_dir() {
        Some("a directory")
    } else if t.is_fifo() {
        Some("a FIFO (named pipe)")
    } else if t.is_char_device() {
        Some("a character device")
    } else if t.is_block_device() {
        Some("a block device")
    } else if t.is_socket() {
        Some("a socket")
    } else {
        Some("not a file")
    }
}

/// Opens `path` for reading if it is a regular file of at most `limit` bytes (symlinks
/// followed); never blocks, whatever the path names. `what` names the kind of input in the
/// size message ("a run file", "a schedule").
pub fn open_regular(path: &Path, limit: u64, what: &'static str) -> Result<File, InputError> {
    let io = |source: std::io::Error| {
        if source.kind() == std::io::ErrorKind::NotFound {
            InputError::Missing(path.to_path_buf())
        } else {
            InputError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    };
    let check = |m: &std::fs::Metadata| match special_kind(m.file_type()) {
        Some(kind) => Err(InputError::NotRegular {
            path: path.to_path_buf(),
            kind,
        }),
        None if m.len() > limit => Err(InputError::TooLarge {
            path: path.to_path_buf(),
            size: m.len(),
            limit,
            what,
        }),
        None => Ok(()),
    };
    check(&std::fs::metadata(path).map_err(io)?)?;
    // O_NONBLOCK: should the path have become a FIFO since the `stat`, the open returns at once
    // instead of waiting for a writer. On a regular file it changes nothing.
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(io)?;
    check(&file.metadata().map_err(io)?)?;
    Ok(file)
}

/// [`open_regular`], closing the file again: the path is fit to hand to a reader that opens it
/// by name.
pub fn check_regular(path: &Path, limit: u64, what: &'static str) -> Result<(), InputError> {
    open_regular(path, limit, what).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn mkfifo(path: &Path) {
        let ok = std::process::Command::new("mkfifo").arg(path).status();
        assert!(ok.unwrap().success());
    }

    #[test]
    fn special_files_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("evil.jsonl");
        mkfifo(&fifo);
        let link = dir.path().join("zero.jsonl");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let t = Instant::now();
        for (p, kind) in [
            (fifo.as_path(), "a FIFO"),
            (link.as_path(), "a character device"),
            (Path::new("/dev/zero"), "a character device"),
            (dir.path(), "a directory"),
        ] {
            let e = check_regular(p, 1 << 20, "a test input").unwrap_err();
            let msg = e.to_string();
            assert!(matches!(e, InputError::NotRegular { .. }), "{msg}");
            assert!(msg.contains(kind), "{msg}");
            assert!(msg.starts_with(&p.display().to_string()), "{msg}");
        }
        // Not a timing test: a blocking open would never return at all.
        assert!(t.elapsed() < Duration::from_secs(60));
    }

    #[test]
    fn regular_files_pass_up_to_their_bound() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.csv");
        std::fs::write(&f, "0123456789").unwrap();
        check_regular(&f, 10, "a test input").unwrap();
        let e = check_regular(&f, 9, "a test input")
            .unwrap_err()
            .to_string();
        assert!(e.contains("10 bytes, more than the 9 bytes"), "{e}");
        let e = check_regular(&dir.path().join("none"), 9, "x").unwrap_err();
        assert!(matches!(e, InputError::Missing(_)), "{e}");
    }
}
