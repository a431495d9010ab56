//! CPU-time clocks: per thread (read from another thread) and per process.
//!
//! Used by the aggregator at every sampling tick to split the process's energy across threads by
//! the CPU time each consumed: off the hot path. A thread's clock id is taken on the thread itself
//! when it registers (its first step of a run), and its final CPU time is stored when it exits, so
//! a thread that lives between two ticks is still counted.

/// A handle on one thread's CPU-time clock, readable from any thread of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadCpuClock {
    id: libc::clockid_t,
}

fn read_clock(id: libc::clockid_t) -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call; clock_gettime
    // only writes it. An invalid clock id (e.g. of a thread that exited) makes it fail with
    // EINVAL, which we report as `None`; it never touches other memory.
    let rc = unsafe { libc::clock_gettime(id, &mut ts) };
    (rc == 0).then(|| ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

impl ThreadCpuClock {
    /// The calling thread's CPU clock, or `None` where the platform has none.
    pub fn current() -> Option<Self> {
        let mut id: libc::clockid_t = 0;
        // SAFETY: pthread_self() is always valid for the calling thread, and `id` is a valid
        // out-pointer for the duration of the call.
        let rc = unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut id) };
        (rc == 0).then_some(ThreadCpuClock { id })
    }

    /// CPU time consumed by the thread so far, in nanoseconds; `None` once the thread is gone.
    pub fn read_ns(&self) -> Option<u64> {
        read_clock(self.id)
    }
}

/// CPU time consumed by the calling thread, nanoseconds.
pub fn this_thread_ns() -> Option<u64> {
    read_clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// CPU time consumed by the whole process (all threads, including exited ones), nanoseconds.
pub fn process_ns() -> Option<u64> {
    read_clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// CPU time of this process's waited-for (reaped) children and their descendants, nanoseconds
/// (`getrusage(RUSAGE_CHILDREN)`, microsecond resolution; `/proc/self/stat`'s `cutime` holds the
/// same time rounded down to 10 ms ticks).
pub fn reaped_children_ns() -> Option<u64> {
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage for the duration of the call, which only writes it.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    (rc == 0).then(|| (us(ru.ru_utime) + us(ru.ru_stime)) * 1_000)
}

/// Length of one `/proc` clock tick (USER_HZ), nanoseconds; 10 ms where it cannot be read.
pub fn tick_ns() -> u64 {
    // SAFETY: sysconf takes an integer name and has no memory effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        1_000_000_000 / hz as u64
    } else {
        10_000_000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn burn(ms: u64) {
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while t.elapsed().as_millis() < u128::from(ms) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
    }

    #[test]
    fn another_threads_clock_tracks_its_cpu_and_stops_when_it_exits() {
        let (tx, rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let (burned_tx, burned_rx) = std::sync::mpsc::channel::<()>();
        let h = std::thread::spawn(move || {
            tx.send(ThreadCpuClock::current().unwrap()).unwrap();
            // Burn 30 ms of CPU, not of wall time: on a loaded machine (parallel tests, two
            // cores) 30 ms of wall time can be half that on the CPU.
            let start = this_thread_ns().unwrap();
            while this_thread_ns().unwrap() - start < 30_000_000 {
                burn(1);
            }
            burned_tx.send(()).unwrap();
            go_rx.recv().unwrap();
            this_thread_ns().unwrap()
        });
        let clock = rx.recv().unwrap();
        burned_rx.recv().unwrap();
        let seen = clock.read_ns().expect("thread alive");
        assert!(
            seen >= 30_000_000,
            "burned 30 ms of CPU, clock says {seen} ns"
        );
        go_tx.send(()).unwrap();
        let own = h.join().unwrap();
        assert!(own >= seen);
        // A sleeping reader's own clock barely moves.
        assert!(this_thread_ns().unwrap() < process_ns().unwrap());
    }

    #[test]
    fn reaped_children_clock_counts_a_waited_for_child() {
        let before = reaped_children_ns().unwrap();
        let st = std::process::Command::new("sh")
            .args(["-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done"])
            .status()
            .unwrap();
        assert!(st.success());
        let after = reaped_children_ns().unwrap();
        assert!(
            after > before,
            "the child's CPU time shows up: {before} -> {after}"
        );
        assert_eq!(tick_ns(), 1_000_000_000 / 100, "Linux's USER_HZ is 100");
    }

    #[test]
    fn process_clock_includes_this_thread() {
        let before = process_ns().unwrap();
        burn(10);
        let after = process_ns().unwrap();
        assert!(after - before >= 5_000_000);
    }
}
