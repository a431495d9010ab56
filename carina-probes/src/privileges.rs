//! What the process may do, as far as the probes' reasons and fixes depend on it.
//!
//! A fix must never contradict its reason: "run as root" is no fix for a process that is root,
//! and "lower `perf_event_paranoid`" none where it is already low enough. The probes take these
//! facts as a value ([`Privileges`]), so tests state them instead of depending on who runs them.

use std::path::Path;

/// Where Linux publishes `kernel.perf_event_paranoid`, under the proc root.
const PARANOID_FILE: &str = "sys/kernel/perf_event_paranoid";

/// Who the process is, for the probes' explanations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Privileges {
    /// Whether the effective user id is 0. A root process that is still refused is confined
    /// (a container, a user namespace, a security module, a seccomp filter), which is what its
    /// fix must address.
    pub root: bool,
    /// `kernel.perf_event_paranoid`, when it could be read: CPU-wide perf events (RAPL's) need
    /// a level of 0 or less without `CAP_PERFMON`.
    pub perf_event_paranoid: Option<i32>,
}

impl Privileges {
    /// This process's: its effective user id, and the paranoid level under `/proc`.
    pub fn of_this_process() -> Privileges {
        Privileges::read(Path::new("/proc"))
    }

    /// This process's effective user id, and the paranoid level read under `proc_root`.
    pub fn read(proc_root: &Path) -> Privileges {
        Privileges {
            root: effective_uid() == 0,
            perf_event_paranoid: std::fs::read_to_string(proc_root.join(PARANOID_FILE))
                .ok()
                .and_then(|t| t.trim().parse().ok()),
        }
    }

    /// The path the paranoid level is read from, for messages.
    pub fn paranoid_path() -> &'static str {
        "/proc/sys/kernel/perf_event_paranoid"
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

    /// The effective uid from `/proc/self/status` (`Uid: real effective saved fs`).
    fn status_euid() -> u32 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
        line.split_whitespace().nth(2).unwrap().parse().unwrap()
    }

    #[test]
    fn the_effective_uid_is_the_kernels() {
        assert_eq!(effective_uid(), status_euid());
        assert_eq!(Privileges::of_this_process().root, status_euid() == 0);
    }

    #[test]
    fn the_paranoid_level_is_read_under_the_proc_root() {
        let t = tempfile::tempdir().unwrap();
        assert_eq!(Privileges::read(t.path()).perf_event_paranoid, None);
        std::fs::create_dir_all(t.path().join("sys/kernel")).unwrap();
        std::fs::write(t.path().join(PARANOID_FILE), "-1\n").unwrap();
        assert_eq!(Privileges::read(t.path()).perf_event_paranoid, Some(-1));
        std::fs::write(t.path().join(PARANOID_FILE), "four\n").unwrap();
        assert_eq!(Privileges::read(t.path()).perf_event_paranoid, None);
    }
}
