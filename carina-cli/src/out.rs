//! Writing a command's output without panicking.
//!
//! `println!` panics when stdout fails: on a broken pipe (`carina summary runs | head -1`, once
//! `head` has its line and exits) and on a full disk (`carina summary runs > /dev/full`). The
//! commands render their output into a `String` and write it here, once, through a locked
//! stdout, and map the outcome to an exit status ([`finish`]):
//!
//! - written: the command's own status;
//! - broken pipe: the reader has what it wanted and went away, so quietly the command's own
//!   status too (0, or `compare`'s verdict), as `head`, `grep -q` and `less` users expect;
//! - any other error: one line on stderr, `carina <cmd>: error: cannot write output: <error>`,
//!   and status 1.
//!
//! Terminal text goes through [`print_text`], which escapes control characters as a last
//! safeguard behind the escaping of each name ([`carina_runtime::format::escape_control`]); CSV goes
//! through [`print_data`] unchanged, JSON through [`print_json`], which escapes what
//! `serde_json` leaves raw. Messages on stderr go through [`message`],
//! escaped the same way, and never panic.

use carina_runtime::format::escape_control_lines;
use carina_runtime::reader::RunFile;
use std::borrow::Cow;
use std::fmt::Display;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Writes `text` to stdout in one go and flushes it.
pub fn write_stdout(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// The exit status after writing the output of `carina <cmd>`: `status` when it was written
/// or the reader closed the pipe; 1, with one line on stderr, on any other error.
pub fn finish(cmd: &str, written: io::Result<()>, status: ExitCode) -> ExitCode {
    match written {
        Ok(()) => status,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => status,
        Err(e) => {
            message(cmd, format_args!("error: cannot write output: {e}"));
            ExitCode::from(1)
        }
    }
}

/// Prints terminal text (a table, a summary): control characters escaped, line breaks kept;
/// returns `status`, or 1 when stdout fails ([`finish`]).
pub fn print_text(cmd: &str, text: &str, status: ExitCode) -> ExitCode {
    finish(cmd, write_stdout(&escape_control_lines(text)), status)
}

/// Prints data (CSV) exactly as given; returns `status`, or 1 when stdout fails ([`finish`]).
pub fn print_data(cmd: &str, text: &str, status: ExitCode) -> ExitCode {
    finish(cmd, write_stdout(text), status)
}

/// Prints a serialised JSON document; returns `status`, or 1 when stdout fails ([`finish`]).
///
/// `serde_json` escapes C0 controls in strings (`\u001b`) but writes DEL and the C1 controls
/// raw; those are escaped here the same way (`\u009b`), which a JSON reader decodes to the same
/// string. Outside strings a JSON document holds no such character, so nothing else changes.
pub fn print_json(cmd: &str, json: &str, status: ExitCode) -> ExitCode {
    finish(cmd, write_stdout(&escape_json_controls(json)), status)
}

fn escape_json_controls(json: &str) -> Cow<'_, str> {
    // Line feeds and tabs are the document's own whitespace (inside strings they are escaped).
    let raw = |c: char| c.is_control() && !matches!(c, '\n' | '\t' | '\r');
    if !json.chars().any(raw) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 8);
    for c in json.chars() {
        if raw(c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// One line on stderr, `carina <cmd>: <text>`, with control characters escaped. A stderr that
/// cannot be written is ignored: there is nowhere left to say so.
pub fn message(cmd: &str, text: impl Display) {
    line(format_args!("carina {cmd}: {text}"));
}

/// The reader's warnings about each run (a truncated last line, a missing `run_end`; each
/// names its file and line) on stderr, so that figures are read knowing what was left out.
pub fn reader_warnings<'a>(cmd: &str, runs: impl IntoIterator<Item = &'a RunFile>) {
    for w in runs.into_iter().flat_map(|r| &r.warnings) {
        warning(cmd, w);
    }
}

/// One warning per run file that a directory walk skipped (not a regular file, empty,
/// malformed, unreadable; each names the file), so the figures are read knowing which runs are
/// missing from them.
pub fn skipped_warnings(cmd: &str, skipped: &[crate::load::LoadError]) {
    for e in skipped {
        warning(cmd, format_args!("skipped {e}"));
    }
}

/// `carina <cmd>: warning: <text>` on stderr, as [`message`].
pub fn warning(cmd: &str, text: impl Display) {
    message(cmd, format_args!("warning: {text}"));
}

/// One line on stderr as given (`note: ...`), control characters escaped; never panics.
pub fn line(text: impl Display) {
    let mut s = text.to_string();
    s.push('\n');
    let _ = io::stderr()
        .lock()
        .write_all(escape_control_lines(&s).as_bytes());
}

/// Writes `bytes` to the file `path` (`report -o`, `export -o`) so that a failure leaves the
/// previous file as it was: the bytes go to a new temporary file in the same directory, synced,
/// then renamed over `path` (atomic within one file system). On any error the temporary file is
/// removed and `path` is untouched. The new file keeps the old one's permissions, if there was
/// one. A symlink at `path` is replaced by the file, not followed.
pub fn write_file_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_file_atomic_with(path, |f| f.write_all(bytes))
}

/// [`write_file_atomic`] with the writing done by `fill`, so that a test can fail it midway.
fn write_file_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut std::fs::File) -> io::Result<()>,
) -> io::Result<()> {
    let (tmp, mut file) = create_temp_beside(path)?;
    let result = (|| {
        fill(&mut file)?;
        if let Ok(old) = std::fs::metadata(path) {
            file.set_permissions(old.permissions())?;
        }
        // A full disk may only show when the data reaches it: before the rename, not after.
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A new file `.<name>.<pid>-<n>.tmp` beside `path`, created exclusively (never an existing one).
fn create_temp_beside(path: &Path) -> io::Result<(PathBuf, std::fs::File)> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?;
    let mut last = None;
    for n in 0..100u32 {
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".{}-{n}.tmp", std::process::id()));
        let tmp = dir.join(tmp_name);
        match std::fs::File::options()
            .write(true)
            .create_new(true)
            .open(&tmp)
        {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free temporary name")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_that_fails_midway_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.html");
        std::fs::write(&path, "the previous report").unwrap();
        let e = write_file_atomic_with(&path, |f| {
            f.write_all(b"half of the new rep")?;
            Err(io::Error::from_raw_os_error(libc::ENOSPC))
        })
        .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "the previous report"
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("report.html")]);
        // Written whole, it replaces the old file.
        write_file_atomic(&path, b"the new report").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "the new report");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn the_new_file_keeps_the_old_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.csv");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_file_atomic(&path, b"new").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
    }

    #[test]
    fn json_controls_are_escaped_losslessly() {
        let v = serde_json::json!({ "name": "a\x1bb\x7fc\u{9b}d\u{e9}" });
        let raw = serde_json::to_string_pretty(&v).unwrap();
        let escaped = escape_json_controls(&raw);
        assert!(
            !escaped.chars().any(|c| c.is_control() && c != '\n'),
            "{escaped}"
        );
        assert!(escaped.contains(r"a\u001bb\u007fc\u009bdé"), "{escaped}");
        let back: serde_json::Value = serde_json::from_str(&escaped).unwrap();
        assert_eq!(back, v);
        assert!(matches!(
            escape_json_controls("{\n  \"a\": 1\n}"),
            Cow::Borrowed(_)
        ));
    }
}
