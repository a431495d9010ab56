//! The run's share of host energy in `process` scope: the target's CPU time (this process, a
//! process tree, or every descendant) over the host's busy CPU time, sampled from `/proc`.

use crate::energy::{ProbeError, UsageShare};
use crate::procfs::{self, descendants_cpu_ticks, tree_cpu_ticks, walk_tree_parts};
use carina_core::units::Joules;
use std::path::{Path, PathBuf};

/// Whose CPU time [`CpuShare`] compares with the host's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ShareTarget {
    /// This process (`/proc/self/stat`: utime + stime). The default.
    #[default]
    SelfProcess,
    /// A process tree: the process `root` (a child of this process) and every live process
    /// whose ancestry leads to it.
    ///
    /// Each tree member counts `utime + stime + cutime + cstime` from `/proc/<pid>/stat`.
    /// `cutime`/`cstime` hold the CPU time of children the process has already waited for
    /// (reaped), so a short-lived grandchild that ran and was reaped between two samples still
    /// counts: its time moved into its parent's `cutime`/`cstime`, inside the tree. When the
    /// root itself exits and this process reaps it, the root's totals land in this process's
    /// `cutime`/`cstime`, which are added too (this process should have no other children), so
    /// the total never drops at the end. A process that leaves the tree alive (daemonised,
    /// reparented to init) is no longer counted.
    Tree {
        /// Pid of the tree's root.
        root: u32,
    },
    /// Every descendant of this process, live or reaped, but not this process itself: what
    /// `carina run` measures. With this process a child subreaper
    /// (`PR_SET_CHILD_SUBREAPER`), a grandchild orphaned by its parent (a `cmd &` in a shell
    /// script that exits) is re-parented here instead of to init, so it stays counted; once
    /// reaped, its time is in this process's `cutime`/`cstime`.
    Descendants,
}

impl ShareTarget {
    /// The scope a run with this share target and `scope` setting reports
    /// (`run_start.scope`).
    pub fn run_scope(self, scope: crate::record::Scope) -> crate::record::RunScope {
        use crate::record::{RunScope, Scope};
        match (scope, self) {
            (Scope::Host, _) => RunScope::Host,
            (Scope::Process, ShareTarget::SelfProcess) => RunScope::Process,
            (Scope::Process, ShareTarget::Tree { .. } | ShareTarget::Descendants) => {
                RunScope::ProcessTree
            }
        }
    }
}

/// Samples a process's (or a process tree's) share of host CPU time, for `process` scope.
#[derive(Debug)]
pub struct CpuShare {
    proc_root: PathBuf,
    target: ShareTarget,
    /// Host busy and target CPU time at the last sample, nanoseconds.
    last: Option<(u64, u64)>,
    /// The target's CPU time between the last two samples, nanoseconds.
    last_target_delta: u64,
    tick_ns: u64,
}

impl CpuShare {
    /// Reads `<proc_root>/stat` and `<proc_root>/self/stat`.
    pub fn new(proc_root: impl Into<PathBuf>) -> Self {
        Self::with_target(proc_root, ShareTarget::SelfProcess)
    }

    /// Reads `<proc_root>/stat` and the target's `stat` files (see [`ShareTarget`]).
    pub fn with_target(proc_root: impl Into<PathBuf>, target: ShareTarget) -> Self {
        CpuShare {
            proc_root: proc_root.into(),
            target,
            last: None,
            last_target_delta: 0,
            tick_ns: carina_core::cpuclock::tick_ns(),
        }
    }

    /// Share of host busy CPU time used by the target since the previous call, in `[0, 1]`.
    /// The first call returns `None`.
    pub fn sample(&mut self) -> Result<Option<f64>, ProbeError> {
        let host = procfs::host_cpu(&self.proc_root)?
            .busy
            .saturating_mul(self.tick_ns);
        let own = self.target_ns()?;
        let prev = self.last.replace((host, own));
        self.last_target_delta = prev.map_or(0, |(_, p0)| own.saturating_sub(p0));
        Ok(prev.map(|(h0, p0)| share(host.saturating_sub(h0), own.saturating_sub(p0))))
    }

    /// The target's CPU time between the last two [`sample`](Self::sample)s, nanoseconds (0
    /// before the second): the CPU time the run's share stands for.
    pub fn last_target_delta_ns(&self) -> u64 {
        self.last_target_delta
    }

    /// Whether the proc root is the live `/proc` of this process, so the kernel's nanosecond
    /// clocks describe the same processes as its files.
    fn live(&self) -> bool {
        self.proc_root == Path::new("/proc")
    }

    /// The target's cumulative CPU time now, nanoseconds.
    ///
    /// On the live `/proc`, this process's time comes from its CPU-time clock and reaped
    /// children's from `getrusage`, both finer than the files' 10 ms ticks: a 7 ms run on four
    /// threads used 28 ms of CPU, which tick counts can read as zero. Live processes of a tree
    /// have no such clock readable from here and stay in ticks. Fake roots (tests) use the
    /// files alone.
    pub fn target_ns(&self) -> Result<u64, ProbeError> {
        let tick = self.tick_ns;
        if !self.live() {
            return Ok(self.target_ticks()?.saturating_mul(tick));
        }
        match self.target {
            ShareTarget::SelfProcess => match carina_core::cpuclock::process_ns() {
                Some(ns) => Ok(ns),
                None => Ok(self.target_ticks()?.saturating_mul(tick)),
            },
            ShareTarget::Tree { .. } | ShareTarget::Descendants => {
                let root = match self.target {
                    ShareTarget::Tree { root } => Some(root),
                    _ => None,
                };
                let t = walk_tree_parts(&self.proc_root, root)?;
                let reaped = carina_core::cpuclock::reaped_children_ns()
                    .unwrap_or(t.reaped_ticks.saturating_mul(tick));
                Ok(t.live_ticks.saturating_mul(tick).saturating_add(reaped))
            }
        }
    }

    /// The target's cumulative CPU time now, in clock ticks (USER_HZ).
    pub fn target_ticks(&self) -> Result<u64, ProbeError> {
        match self.target {
            ShareTarget::SelfProcess => procfs::process_cpu_ticks(&self.proc_root),
            ShareTarget::Tree { root } => tree_cpu_ticks(&self.proc_root, root),
            ShareTarget::Descendants => descendants_cpu_ticks(&self.proc_root),
        }
    }

    /// The proc root in use.
    pub fn proc_root(&self) -> &Path {
        &self.proc_root
    }

    /// Whose CPU time is compared.
    pub fn target(&self) -> ShareTarget {
        self.target
    }
}

/// The process's share of host busy time, from deltas in one unit. The host's counter moves in
/// 10 ms ticks while the process's may be exact, so within one interval the process delta can
/// exceed the host delta by up to a tick; the share is clamped to 1. When the host counter did not
/// move but the process ran, the process gets it all: a run that used CPU never gets a zero share.
pub fn share(host_busy: u64, own: u64) -> f64 {
    match (host_busy, own) {
        (_, 0) => 0.0,
        (0, _) => 1.0,
        (h, p) => (p as f64 / h as f64).min(1.0),
    }
}

/// One probe's sampling interval, the rule every reader of probes shares (the session and
/// `carina-criterion`'s meter): each domain's energy since `last` (a counter that went
/// backwards was reset: the interval counts as zero), and the run's part of it: the device's
/// own share of use where the probe gave one (`usage[i]`, a GPU that knows its processes), else
/// `k` (the CPU share for a host-wide probe, 1 for a process-scoped one). Updates `last` to
/// `now`, calls `each(domain, energy, run's part)` and returns the totals of both.
pub fn attribute_interval(
    now: &[Joules],
    last: &mut [Joules],
    usage: &[Option<UsageShare>],
    k: f64,
    mut each: impl FnMut(usize, Joules, Joules),
) -> (Joules, Joules) {
    let (mut total, mut run) = (Joules::ZERO, Joules::ZERO);
    for (i, (now, last)) in now.iter().zip(last.iter_mut()).enumerate() {
        let d = (*now - *last).max(Joules::ZERO);
        *last = *now;
        let ki = match usage.get(i).copied().flatten() {
            Some(u) => u.share.clamp(0.0, 1.0),
            None => k,
        };
        each(i, d, d * ki);
        total += d;
        run += d * ki;
    }
    (total, run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::{ProcStat, parse_proc_stat};
    use std::time::{Duration, Instant};

    #[test]
    fn share_is_bounded() {
        assert_eq!(share(0, 0), 0.0);
        assert_eq!(share(0, 3), 1.0);
        assert_eq!(share(10, 5), 0.5);
        assert_eq!(share(10, 12), 1.0);
    }

    fn fake_proc(root: &Path, pid: u32, ppid: u32, ticks: [u64; 4]) {
        let dir = root.join(pid.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("stat"),
            format!(
                "{pid} (a b) c) S {ppid} 1 1 0 -1 0 0 0 0 0 {} {} {} {} 20 0 1 0 5",
                ticks[0], ticks[1], ticks[2], ticks[3]
            ),
        )
        .unwrap();
    }

    #[test]
    fn proc_stat_fields() {
        let st = parse_proc_stat(
            "7 (x) y) S 3 1 1 0 -1 0 0 0 0 0 10 20 30 40 20 0",
            Path::new("s"),
        )
        .unwrap();
        assert_eq!(
            st,
            ProcStat {
                ppid: 3,
                own_ticks: 30,
                children_ticks: 70
            }
        );
        let e = parse_proc_stat("7 (x) S 3", Path::new("/p/7/stat"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/p/7/stat") && e.contains("utime"), "{e}");
    }

    /// This process is 100 (2000 ticks of its own, 5 of reaped children); 200 is its child,
    /// 201 a grandchild.
    fn fake_family(root: &Path) {
        fake_proc(root, 100, 1, [1000, 1000, 2, 3]);
        std::fs::create_dir_all(root.join("self")).unwrap();
        std::fs::copy(root.join("100/stat"), root.join("self/stat")).unwrap();
        fake_proc(root, 200, 100, [10, 5, 1, 1]);
        fake_proc(root, 201, 200, [3, 2, 0, 0]);
    }

    #[test]
    fn tree_sums_descendants_and_reaped_children() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // self (100) reaped 5 ticks of children; 200 is the tree root, 201 and 202 below it,
        // 300 is unrelated.
        fake_family(root);
        fake_proc(root, 202, 201, [1, 1, 4, 0]);
        fake_proc(root, 300, 1, [500, 500, 0, 0]);
        std::fs::write(root.join("stat"), "cpu  100 0 0 0 0 0 0 0\n").unwrap();
        // 5 (self's reaped) + 17 + 5 + 6.
        assert_eq!(tree_cpu_ticks(root, 200).unwrap(), 33);
        let mut s = CpuShare::with_target(root, ShareTarget::Tree { root: 200 });
        assert_eq!(s.target(), ShareTarget::Tree { root: 200 });
        assert_eq!(s.sample().unwrap(), None);
        fake_proc(root, 202, 201, [11, 1, 4, 0]);
        std::fs::write(root.join("stat"), "cpu  120 0 0 0 0 0 0 0\n").unwrap();
        assert_eq!(s.sample().unwrap(), Some(0.5));
        // The default target is this process.
        assert_eq!(CpuShare::new(root).target(), ShareTarget::SelfProcess);
    }

    #[test]
    fn descendants_count_everything_below_this_process_but_itself() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // self (100): own 2000 ticks (not counted), 5 reaped; children 200 (with 201 below)
        // and 400, an orphan adopted by the subreaper; 300 is unrelated.
        fake_family(root);
        fake_proc(root, 400, 100, [7, 0, 0, 0]);
        fake_proc(root, 300, 1, [500, 500, 0, 0]);
        // 5 + 17 + 5 + 7.
        assert_eq!(descendants_cpu_ticks(root).unwrap(), 34);
        // The tree below 200 does not see the adopted orphan.
        assert_eq!(tree_cpu_ticks(root, 200).unwrap(), 27);
        let s = CpuShare::with_target(root, ShareTarget::Descendants);
        assert_eq!(s.target_ticks().unwrap(), 34);
    }

    #[test]
    fn tree_of_a_real_child_counts_its_cpu() {
        let mut child = std::process::Command::new("sh")
            .args([
                "-c",
                "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; sleep 5",
            ])
            .spawn()
            .unwrap();
        let t0 = tree_cpu_ticks(Path::new("/proc"), child.id()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut t = t0;
        while Instant::now() < deadline && t < t0 + 5 {
            std::thread::sleep(Duration::from_millis(50));
            t = tree_cpu_ticks(Path::new("/proc"), child.id()).unwrap();
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(t >= t0 + 5, "{t0} -> {t}");
        // Reaped: its time is in our cutime/cstime, still counted.
        let after = tree_cpu_ticks(Path::new("/proc"), child.id()).unwrap();
        assert!(after >= t, "{t} -> {after}");
    }

    #[test]
    fn an_interval_takes_the_device_share_else_k_and_a_reset_counts_zero() {
        let mut last = [Joules(10.0), Joules(50.0), Joules(7.0)];
        let now = [Joules(20.0), Joules(30.0), Joules(11.0)];
        // Domain 1 went backwards (reset); domain 2 is a GPU used 25 % by the run.
        let usage = [None, None, Some(UsageShare::by_use(0.25))];
        let mut seen = Vec::new();
        let (total, run) =
            attribute_interval(&now, &mut last, &usage, 0.5, |i, d, r| seen.push((i, d, r)));
        assert_eq!(last, now);
        assert_eq!(
            seen,
            vec![
                (0, Joules(10.0), Joules(5.0)),
                (1, Joules::ZERO, Joules::ZERO),
                (2, Joules(4.0), Joules(1.0)),
            ]
        );
        assert_eq!((total, run), (Joules(14.0), Joules(6.0)));
    }
}
