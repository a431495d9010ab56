//! Every `/proc` reader of the core: host CPU time (`/proc/stat`), a process's CPU time and parent
//! (`/proc/<pid>/stat`), and process-tree walks, with errors that name the file, line and field.
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

/// Parses `/proc/<pid>/stat` into utime + stime (fields 14 and 15), clock ticks.
pub fn parse_process_cpu_ticks(text: &str, path: &Path) -> Result<u64, ProbeError> {
    Ok(parse_proc_stat(text, path)?.own_ticks)
}

/// The default proc root, `/proc`.
pub fn default_root() -> PathBuf {
    PathBuf::from("/proc")
}

/// The fields of `/proc/<pid>/stat` a tree walk needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// Parent pid (field 4).
    pub ppid: u32,
    /// utime + stime (fields 14, 15), clock ticks.
    pub own_ticks: u64,
    /// cutime + cstime (fields 16, 17): reaped children, clock ticks.
    pub children_ticks: u64,
}

/// Parses `/proc/<pid>/stat`; `path` is used in errors only.
pub fn parse_proc_stat(text: &str, path: &Path) -> Result<ProcStat, ProbeError> {
    let err = |field: &str, message: String| parse_err(path, 1, field, message);
    // The command name (field 2) may contain spaces and parentheses: resume after the last ')'.
    let rest = text
        .rfind(')')
        .map(|p| &text[p + 1..])
        .ok_or_else(|| err("comm", "no closing ')'".into()))?;
    // `rest` starts at field 3 (state).
    let fields: Vec<&str> = rest.split_ascii_whitespace().take(15).collect();
    let num = |i: usize, name: &str| -> Result<u64, ProbeError> {
        let tok = fields.get(i).ok_or_else(|| err(name, "missing".into()))?;
        // cutime and cstime are signed in the kernel's format; negative never happens in
        // practice and counts as zero.
        if let Some(neg) = tok.strip_prefix('-') {
            return neg
                .parse::<u64>()
                .map(|_| 0)
                .map_err(|_| err(name, format!("expected an integer, got {tok:?}")));
        }
        tok.parse()
            .map_err(|_| err(name, format!("expected an integer, got {tok:?}")))
    };
    let ppid = num(1, "ppid")?;
    let own = num(11, "utime")? + num(12, "stime")?;
    let children = num(13, "cutime")? + num(14, "cstime")?;
    Ok(ProcStat {
        ppid: u32::try_from(ppid).unwrap_or(0),
        own_ticks: own,
        children_ticks: children,
    })
}

/// Cumulative CPU time of the process tree rooted at `root` (see [`ShareTarget::Tree`](crate::share::ShareTarget::Tree)), clock
/// ticks: every live tree member's utime + stime + cutime + cstime, plus this process's
/// cutime + cstime (the root, once reaped).
///
/// Processes that exit while `<proc_root>` is being scanned are skipped.
pub fn tree_cpu_ticks(proc_root: &Path, root: u32) -> Result<u64, ProbeError> {
    walk_tree(proc_root, Some(root))
}

/// Cumulative CPU time of every descendant of this process (see
/// [`ShareTarget::Descendants`](crate::share::ShareTarget::Descendants)), clock ticks: every live descendant's utime + stime + cutime +
/// cstime, plus this process's cutime + cstime (descendants already reaped). This process's own
/// utime + stime are not counted.
pub fn descendants_cpu_ticks(proc_root: &Path) -> Result<u64, ProbeError> {
    walk_tree(proc_root, None)
}

/// The live processes of the tree rooted at `root` (a child of this process), or of every
/// descendant of this process when `None` (this process excluded), unsorted.
pub fn tree_pids(proc_root: &Path, root: Option<u32>) -> Result<Vec<u32>, ProbeError> {
    Ok(walk_tree_parts(proc_root, root)?.members)
}

/// Sums the tree below `root`, or below this process when `None`; this process's own CPU time
/// never counts, its reaped children's always does.
fn walk_tree(proc_root: &Path, root: Option<u32>) -> Result<u64, ProbeError> {
    let t = walk_tree_parts(proc_root, root)?;
    Ok(t.live_ticks + t.reaped_ticks)
}

/// A tree's CPU time in two parts, clock ticks.
pub(crate) struct TreeTicks {
    /// Live members' utime + stime + cutime + cstime.
    pub(crate) live_ticks: u64,
    /// This process's cutime + cstime: members already reaped.
    pub(crate) reaped_ticks: u64,
    /// Live members' pids.
    pub(crate) members: Vec<u32>,
}

pub(crate) fn walk_tree_parts(
    proc_root: &Path,
    root: Option<u32>,
) -> Result<TreeTicks, ProbeError> {
    let self_path = proc_root.join("self").join("stat");
    let own = read(&self_path)?;
    let reaped_ticks = parse_proc_stat(&own, &self_path)?.children_ticks;
    let mut total = 0;
    // The first field of a stat line is the pid.
    let self_pid = own
        .split_whitespace()
        .next()
        .and_then(|p| p.parse::<u32>().ok());
    let Some(root) = root.or(self_pid) else {
        return Err(ProbeError::Parse {
            path: self_path,
            line: 1,
            field: "pid".into(),
            message: "no pid at the start of the line".into(),
        });
    };
    let dir = std::fs::read_dir(proc_root).map_err(|source| ProbeError::Io {
        path: proc_root.to_path_buf(),
        source,
    })?;
    let mut procs: std::collections::HashMap<u32, ProcStat> = std::collections::HashMap::new();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let path = entry.path().join("stat");
        // Gone since the listing, or not ours to read: not part of the sum.
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        if let Ok(st) = parse_proc_stat(&text, &path) {
            procs.insert(pid, st);
        }
    }
    // Walk each process's ancestry up to the root (member) or to pid 1/0 (not a member),
    // memoising the verdict.
    let mut member: std::collections::HashMap<u32, bool> = std::collections::HashMap::new();
    member.insert(root, true);
    let pids: Vec<u32> = procs.keys().copied().collect();
    for pid in pids {
        let mut chain = Vec::new();
        let mut cur = pid;
        let verdict = loop {
            if let Some(&m) = member.get(&cur) {
                break m;
            }
            match procs.get(&cur) {
                Some(st) if st.ppid != 0 && st.ppid != cur && chain.len() < 4096 => {
                    chain.push(cur);
                    cur = st.ppid;
                }
                _ => {
                    chain.push(cur);
                    break false;
                }
            }
        };
        for p in chain {
            member.insert(p, verdict);
        }
    }
    let mut members = Vec::new();
    for (pid, st) in &procs {
        if Some(*pid) != self_pid && member.get(pid).copied().unwrap_or(false) {
            total += st.own_ticks + st.children_ticks;
            members.push(*pid);
        }
    }
    Ok(TreeTicks {
        live_ticks: total,
        reaped_ticks,
        members,
    })
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
