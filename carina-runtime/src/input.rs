//! Opening input files without trusting them: regular files only, checked without blocking, and
//! bounded in size and line length.
//!
//! A path given to Carina may name a FIFO (reading it blocks until a writer comes), `/dev/zero`
//! (endless bytes, never a newline), a directory, or a symbolic link to any of those. Reading
//! such a path the ordinary way hangs or exhausts memory. [`open_regular`] opens it with
//! `O_NONBLOCK` (so a FIFO opens at once) and `O_CLOEXEC`, asks the open descriptor what it is
//! (`fstat`, so nothing can be swapped in between), and refuses anything but a regular file,
//! naming the path. [`LineReader`] then reads it line by line with a bound per line, and
//! [`read_regular_to_string`] reads a small input (a schedule, an intensity series) whole with
//! a bound on its size.
//!
//! Every reader of input files in Carina goes through here: the run-file reader
//! ([`crate::reader`]), the child-file merge ([`crate::merge`], with [`OpenRules::child_file`]:
//! no symbolic link followed, owned by this user), and the CLI's other inputs.

use std::fs::File;
use std::io::{BufRead, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Longest line a run file may have: 16 MiB. A record is a few hundred bytes (a `run_end` with
/// many warnings a few KiB); a longer line is not a run file's, and reading it whole would only
/// allocate without limit.
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// Why an input file was refused or could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// Opening or reading failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Not a regular file: a FIFO, a device (`/dev/zero`), a directory, a socket.
    #[error("{path}: not a regular file (it is {kind}); Carina reads regular files only")]
    NotRegular {
        /// The path.
        path: PathBuf,
        /// What it is instead, in words ("a FIFO", "a character device", "a directory"...).
        kind: &'static str,
    },
    /// A symbolic link where none is followed ([`OpenRules::follow_symlinks`] off).
    #[error("{path}: a symbolic link, which is not followed here")]
    Symlink {
        /// The path.
        path: PathBuf,
    },
    /// Owned by another user where only this user's files are read ([`OpenRules::owner_only`]).
    #[error("{path}: owned by user id {owner}, not by this process's user ({me})")]
    NotOwned {
        /// The path.
        path: PathBuf,
        /// The file's owner.
        owner: u32,
        /// This process's effective user id.
        me: u32,
    },
    /// Larger than the bound the caller gave.
    #[error("{path}: {size} bytes, more than the {max} bytes this input may have")]
    TooLarge {
        /// The path.
        path: PathBuf,
        /// Its size (at least), bytes.
        size: u64,
        /// The bound, bytes.
        max: u64,
    },
    /// A line longer than the bound the reader was given.
    #[error("{path}:{line}: line {line} longer than {max} bytes; is this the right file?")]
    LineTooLong {
        /// The path.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The bound, bytes.
        max: usize,
    },
}

impl InputError {
    /// This error as an `std::io::Error` whose message does not repeat the path, for error
    /// types that carry the path beside an I/O source (a schedule's, an intensity series'):
    /// an I/O failure stays itself; a refusal becomes `InvalidInput` (`InvalidData` for an
    /// over-long line) saying why.
    pub fn into_io_error(self) -> std::io::Error {
        use std::io::{Error, ErrorKind};
        match self {
            InputError::Io { source, .. } => source,
            InputError::NotRegular { kind, .. } => Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "not a regular file (it is {kind}); only regular files are read (a pipe or a device may block or never end)"
                ),
            ),
            InputError::Symlink { .. } => Error::new(
                ErrorKind::InvalidInput,
                "a symbolic link, which is not followed here",
            ),
            InputError::NotOwned { owner, me, .. } => Error::new(
                ErrorKind::PermissionDenied,
                format!("owned by user id {owner}, not by this process's user ({me})"),
            ),
            InputError::TooLarge { size, max, .. } => Error::new(
                ErrorKind::InvalidInput,
                format!("{size} bytes, more than the {max} bytes read at most"),
            ),
            InputError::LineTooLong { line, max, .. } => Error::new(
                ErrorKind::InvalidData,
                format!("line {line} longer than {max} bytes"),
            ),
        }
    }
}

/// What [`open_with`] accepts beyond "a regular file".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenRules {
    /// Largest size accepted, bytes (`None`: any size; lines are still bounded by
    /// [`LineReader`]).
    pub max_bytes: Option<u64>,
    /// Whether a symbolic link as the last path component is followed (its target must then be
    /// a regular file); off, it is refused ([`InputError::Symlink`]).
    pub follow_symlinks: bool,
    /// Whether only files owned by this process's effective user are accepted.
    pub owner_only: bool,
}

impl OpenRules {
    /// A user-given input: symbolic links followed, any owner, at most `max_bytes`.
    pub fn input(max_bytes: Option<u64>) -> Self {
        OpenRules {
            max_bytes,
            follow_symlinks: true,
            owner_only: false,
        }
    }

    /// A file a run's child wrote into the run's own directory: no symbolic link followed,
    /// owned by this user, any size.
    pub fn child_file() -> Self {
        OpenRules {
            max_bytes: None,
            follow_symlinks: false,
            owner_only: true,
        }
    }
}

/// Opens `path` for reading if it is a regular file of at most `max_bytes` (`None`: any size),
/// without blocking whatever it is: a FIFO, `/dev/zero`, a directory, a socket (or a symbolic
/// link to one) is refused with [`InputError::NotRegular`] naming the path. For the CLI's inputs
/// (schedules, intensity series, run files); see [`open_with`] for stricter rules.
pub fn open_regular(path: impl AsRef<Path>, max_bytes: Option<u64>) -> Result<File, InputError> {
    open_with(path, OpenRules::input(max_bytes))
}

/// [`open_regular`] under `rules`.
pub fn open_with(path: impl AsRef<Path>, rules: OpenRules) -> Result<File, InputError> {
    let path = path.as_ref();
    let io = |source| InputError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut flags = libc::O_NONBLOCK | libc::O_CLOEXEC;
    if !rules.follow_symlinks {
        flags |= libc::O_NOFOLLOW;
    }
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
    {
        Ok(f) => f,
        // O_NOFOLLOW on a symbolic link fails with ELOOP: say what it is.
        Err(e) if !rules.follow_symlinks && e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(InputError::Symlink {
                path: path.to_path_buf(),
            });
        }
        Err(e) => return Err(io(e)),
    };
    // The descriptor's own metadata: what was opened, not what the path names now.
    let meta = file.metadata().map_err(io)?;
    let ft = meta.file_type();
    if !ft.is_file() {
        let kind = if ft.is_dir() {
            "a directory"
        } else if ft.is_fifo() {
            "a FIFO"
        } else if ft.is_char_device() {
            "a character device"
        } else if ft.is_block_device() {
            "a block device"
        } else if ft.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        };
        return Err(InputError::NotRegular {
            path: path.to_path_buf(),
            kind,
        });
    }
    if rules.owner_only {
        let me = effective_uid();
        if meta.uid() != me {
            return Err(InputError::NotOwned {
                path: path.to_path_buf(),
                owner: meta.uid(),
                me,
            });
        }
    }
    if let Some(max) = rules.max_bytes
        && meta.len() > max
    {
        return Err(InputError::TooLarge {
            path: path.to_path_buf(),
            size: meta.len(),
            max,
        });
    }
    Ok(file)
}

/// Reads a regular file of at most `max_bytes` whole, as UTF-8 ([`open_regular`], then a
/// bounded read: a file that grows past the bound while it is read is refused too). For small
/// inputs such as a schedule or an intensity series.
pub fn read_regular_to_string(
    path: impl AsRef<Path>,
    max_bytes: u64,
) -> Result<String, InputError> {
    let path = path.as_ref();
    let file = open_regular(path, Some(max_bytes))?;
    let mut bytes = Vec::new();
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|source| InputError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if bytes.len() as u64 > max_bytes {
        return Err(InputError::TooLarge {
            path: path.to_path_buf(),
            size: bytes.len() as u64,
            max: max_bytes,
        });
    }
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        InputError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("not valid UTF-8 (at byte {at})"),
            ),
        }
    })
}

/// Reads lines as bytes, each at most a bound long, counting them: the caller decides what a
/// line that is not UTF-8 means (the run-file reader: the line's own error, or a truncated last
/// line).
pub struct LineReader<R> {
    inner: R,
    path: PathBuf,
    max: usize,
    line: usize,
}

impl<R: BufRead> LineReader<R> {
    /// Lines of `inner` (named `path` in errors), each at most `max` bytes without its `\n`.
    pub fn new(inner: R, path: impl Into<PathBuf>, max: usize) -> Self {
        LineReader {
            inner,
            path: path.into(),
            max,
            line: 0,
        }
    }

    /// The number of the last line read (1-based; 0 before the first).
    pub fn line_number(&self) -> usize {
        self.line
    }

    /// Reads the next line into `buf` (cleared first), without its `\n`. Returns `None` at the
    /// end of the input, else whether the line ended with `\n` (`false`: the last line, cut
    /// off). A line longer than the bound is [`InputError::LineTooLong`] after reading at most
    /// the bound plus one byte of it.
    pub fn read_line(&mut self, buf: &mut Vec<u8>) -> Result<Option<bool>, InputError> {
        buf.clear();
        let limit = (self.max as u64).saturating_add(1);
        let n = (&mut self.inner)
            .take(limit)
            .read_until(b'\n', buf)
            .map_err(|source| InputError::Io {
                path: self.path.clone(),
                source,
            })?;
        if n == 0 {
            return Ok(None);
        }
        self.line += 1;
        let terminated = buf.last() == Some(&b'\n');
        if terminated {
            buf.pop();
        }
        if buf.len() > self.max {
            return Err(InputError::LineTooLong {
                path: self.path.clone(),
                line: self.line,
                max: self.max,
            });
        }
        Ok(Some(terminated))
    }
}

/// The effective user id of this process.
fn effective_uid() -> u32 {
    // SAFETY: geteuid(2) takes no argument, touches no memory of ours and cannot fail.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_come_back_without_newline_and_a_cut_last_line_says_so() {
        let mut r = LineReader::new(&b"ab\n\ncd"[..], "x", 8);
        let mut buf = Vec::new();
        assert_eq!(r.read_line(&mut buf).unwrap(), Some(true));
        assert_eq!(buf, b"ab");
        assert_eq!(r.read_line(&mut buf).unwrap(), Some(true));
        assert_eq!(buf, b"");
        assert_eq!(r.read_line(&mut buf).unwrap(), Some(false));
        assert_eq!((buf.as_slice(), r.line_number()), (&b"cd"[..], 3));
        assert_eq!(r.read_line(&mut buf).unwrap(), None);
    }

    #[test]
    fn a_line_of_exactly_the_bound_passes_one_more_byte_fails() {
        let mut buf = Vec::new();
        let mut r = LineReader::new(&b"1234\n12345\n"[..], "x.jsonl", 4);
        assert_eq!(r.read_line(&mut buf).unwrap(), Some(true));
        let e = r.read_line(&mut buf).unwrap_err();
        assert!(
            matches!(
                e,
                InputError::LineTooLong {
                    line: 2,
                    max: 4,
                    ..
                }
            ),
            "{e}"
        );
        assert!(
            e.to_string()
                .contains("x.jsonl:2: line 2 longer than 4 bytes"),
            "{e}"
        );
        // Unterminated at the bound: fine too.
        let mut r = LineReader::new(&b"1234"[..], "x", 4);
        assert_eq!(r.read_line(&mut buf).unwrap(), Some(false));
    }

    #[test]
    fn the_effective_uid_is_the_owner_of_a_file_this_process_creates() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("mine");
        std::fs::write(&p, "x").unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().uid(),
            effective_uid(),
            "geteuid agrees with the kernel's owner of a new file"
        );
        assert!(open_with(&p, OpenRules::child_file()).is_ok());
    }

    #[test]
    fn another_users_file_and_a_symbolic_link_are_refused_by_the_child_rules() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("theirs.jsonl");
        std::fs::write(&p, "x").unwrap();
        let me = effective_uid();
        // As root, give the file away; otherwise root's own /etc/passwd is another user's.
        let theirs = if std::os::unix::fs::chown(&p, Some(me + 1), None).is_ok() {
            p.clone()
        } else {
            PathBuf::from("/etc/passwd")
        };
        let e = open_with(&theirs, OpenRules::child_file()).unwrap_err();
        assert!(matches!(e, InputError::NotOwned { .. }), "{e}");
        assert!(e.to_string().contains(&theirs.display().to_string()), "{e}");
        // The input rules do not care who owns it.
        assert!(open_regular(&theirs, None).is_ok());

        let link = dir.path().join("link.jsonl");
        std::os::unix::fs::symlink(&theirs, &link).unwrap();
        let e = open_with(&link, OpenRules::child_file()).unwrap_err();
        assert!(matches!(e, InputError::Symlink { .. }), "{e}");
    }

    #[test]
    fn bounded_read_refuses_a_larger_file_and_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.toml");
        std::fs::write(&p, "x".repeat(100)).unwrap();
        assert_eq!(read_regular_to_string(&p, 100).unwrap().len(), 100);
        let e = read_regular_to_string(&p, 99).unwrap_err();
        assert!(
            matches!(
                e,
                InputError::TooLarge {
                    size: 100,
                    max: 99,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("big.toml"), "{e}");
    }
}
