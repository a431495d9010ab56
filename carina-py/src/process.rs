//! What this process is to the run: the owner, or a child forked while the run was active.
//!
//! `os.fork()` copies the run's memory (the installed recorder, the thread rings, the open run
//! file's descriptor) but not its aggregator thread. Left alone, the child's steps would fill a
//! ring nobody drains, and finishing or dropping the copied run in the child would write the
//! parent's summaries into the parent's file. So the package registers [`after_fork_in_child`]
//! with `os.register_at_fork`: in a child forked during a run every step is a no-op, the copied
//! run is never finished nor dropped there, and starting another run raises `RuntimeError`.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// The pid of the process whose run is active (0: none). Set by `Run.start`, cleared by
/// `finish`; a process whose pid differs is a forked child and owns nothing.
static RUN_OWNER: AtomicU32 = AtomicU32::new(0);

/// True in a child forked while a run was active: steps record nothing there.
static FORKED_DURING_RUN: AtomicBool = AtomicBool::new(false);

/// Whether Python steps may record in this process (one relaxed load on the hot path).
#[inline]
pub fn steps_blocked() -> bool {
    FORKED_DURING_RUN.load(Ordering::Relaxed)
}

/// Records that this process now owns the active run.
pub fn set_owner() {
    RUN_OWNER.store(std::process::id(), Ordering::Release);
}

/// Records that the active run has finished.
pub fn clear_owner() {
    RUN_OWNER.store(0, Ordering::Release);
}

/// The pid that owns the active run, if any (it may be another process: the parent).
pub fn owner() -> Option<u32> {
    match RUN_OWNER.load(Ordering::Acquire) {
        0 => None,
        pid => Some(pid),
    }
}

/// Whether this process owns the active run.
pub fn owns_run() -> bool {
    owner() == Some(std::process::id())
}

/// Whether this process is a child forked while a run of its parent was active.
pub fn is_forked_child() -> bool {
    FORKED_DURING_RUN.load(Ordering::Relaxed)
}

/// Called in the child after `os.fork()` (registered by the package with
/// `os.register_at_fork`). Touches no lock: another thread of the parent may have held one at
/// the fork.
pub fn after_fork_in_child() {
    if owner().is_some_and(|pid| pid != std::process::id()) {
        FORKED_DURING_RUN.store(true, Ordering::Relaxed);
    }
}
