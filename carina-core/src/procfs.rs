//! Readers for `/proc/stat` and `/proc/self/stat`, with errors that name the file, line and field.
//!
//! The root is injectable so tests run against fake trees.

use crate::energy::ProbeError;
use std::path::{Path, PathBuf};

/// Host CPU time from the aggregate `cpu` line of `/proc/stat`, in clock ticks (USER_HZ).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HostCpu {
    /// user + nice + system + irq + softirq: time spent running something.
    pub busy: u64,
    /// busy + idle + iowait + steal: all time the vCPUs existed.
    pub total: u64,
    /// Number of `cpuN` lines (online logical CPUs).
    pub cpus: u32,
}

fn parse_err(path: &Path, line: usize, field: &str, message: String) -> ProbeError {
    ProbeError::Parse {
        path: path.to_path_buf(),
        line,
        field: field.to_owned(),
        message,
    }
}

fn read(path: &Path) -> Result<String, ProbeError> {
    std::fs::read_to_string(path).map_err(|source| ProbeError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads host CPU time from `<proc_root>/stat`.
pub fn host_cpu(proc_root: &Path) -> Result<HostCpu, ProbeError> {
    let path = proc_root.join("stat");
    parse_host_cpu(&read(&path)?, &path)
}

/// Parses the contents of `/proc/stat`; `path` is used in errors only.
pub fn parse_host_cpu(text: &str, path: &Path) -> Result<HostCpu, ProbeError> {
    const FIELDS: [&str; 8] = [
        "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
    ];
    let mut agg = None;
    let mut cpus = 0u32;
    for (i, line) in text.lines().enumerate() {
        let mut it = line.split_ascii_whitespace();
        match it.next() {
            Some("cpu") => {
                let mut v = [0u64; 8];
                for (k, name) in FIELDS.iter().enumerate() {
                    // Old kernels lack the later columns; absent means zero.
                    if let Some(tok) = it.next() {
                        v[k] = tok.parse().map_err(|_| {
                            parse_err(
                                path,
                                i + 1,
                                name,
                                format!("expected an integer, got {tok:?}"),
                            )
                        })?;
                    } else if k < 4 {
                        return Err(parse_err(path, i + 1, name, "missing".into()));
                    }
                }
                let busy = v[0] + v[1] + v[2] + v[5] + v[6];
                agg = Some((busy, busy + v[3] + v[4] + v[7]));
            }
            Some(tag) if tag.starts_with("cpu") => cpus += 1,
            _ => {}
        }
    }
    let (busy, total) =
        agg.ok_or_else(|| parse_err(path, 1, "cpu", "no aggregate `cpu` line".into()))?;
    Ok(HostCpu {
        busy,
        total,
        cpus: cpus.max(1),
    })
}

/// Reads this process's CPU time (utime + stime, clock ticks) from `<proc_root>/self/stat`.
pub fn process_cpu_ticks(proc_root: &Path) -> Result<u64, ProbeError> {
    let path = proc_root.join("self").join("stat");
    parse_process_cpu_ticks(&read(&path)?, &path)
}

/// Parses `/proc/<pid>/stat`; fields 14 and 15 are utime and stime.
pub fn parse_process_cpu_ticks(text: &str, path: &Path) -> Result<u64, ProbeError> {
    // The command name (field 2) may contain spaces and parentheses: fields resume after the
    // last ')'.
    let rest = text
        .rfind(')')
        .map(|p| &text[p + 1..])
        .ok_or_else(|| parse_err(path, 1, "comm", "no closing ')'".into()))?;
    let mut it = rest.split_ascii_whitespace();
    // `rest` starts at field 3 (state); utime is field 14.
    let mut take = |n: usize, name: &str| -> Result<u64, ProbeError> {
        let tok = it
            .nth(n)
            .ok_or_else(|| parse_err(path, 1, name, "missing".into()))?;
        tok.parse()
            .map_err(|_| parse_err(path, 1, name, format!("expected an integer, got {tok:?}")))
    };
    let utime = take(11, "utime")?;
    let stime = take(0, "stime")?;
    Ok(utime + stime)
}

/// The default proc root, `/proc`.
pub fn default_root() -> PathBuf {
    PathBuf::from("/proc")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_stat() {
        let text = "cpu  100 5 50 800 10 3 2 7 0 0\ncpu0 50 2 25 400 5 1 1 3 0 0\ncpu1 50 3 25 400 5 2 1 4 0 0\nintr 1\n";
        let h = parse_host_cpu(text, Path::new("/proc/stat")).unwrap();
        assert_eq!(h.busy, 100 + 5 + 50 + 3 + 2);
        assert_eq!(h.total, h.busy + 800 + 10 + 7);
        assert_eq!(h.cpus, 2);
    }

    #[test]
    fn bad_proc_stat_names_file_line_and_field() {
        let text = "intr 5\ncpu  1 2 x 4\n";
        let e = parse_host_cpu(text, Path::new("/fake/stat")).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("/fake/stat"), "{msg}");
        assert!(msg.contains("line 2"), "{msg}");
        assert!(msg.contains("system"), "{msg}");
    }

    #[test]
    fn parses_self_stat_with_awkward_comm() {
        let text = "42 (a) b) c) R 1 2 3 4 5 6 7 8 9 10 123 45 0 0 20 0 1 0";
        let t = parse_process_cpu_ticks(text, Path::new("x")).unwrap();
        assert_eq!(t, 168);
    }
}
