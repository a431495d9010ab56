//! The step clock: raw timestamps on the hot path, converted to nanoseconds off it.
//!
//! On x86-64 with an invariant TSC (the CPU flag `constant_tsc` + `nonstop_tsc`, CPUID
//! 0x8000_0007 EDX bit 8) a timestamp is one `rdtsc` (about 11 ns on this project's VM); the
//! conversion to nanoseconds is a multiply and a shift by a factor calibrated once per process
//! against `CLOCK_MONOTONIC` (a 2 ms window, taken the first time a run starts). Elsewhere, or
//! when the TSC may stop or change rate, a timestamp is `clock_gettime(CLOCK_MONOTONIC)` in
//! nanoseconds (a vDSO call, 20-25 ns), and the conversion is the identity.
//!
//! Why not a crate: `quanta` does the same and more, but brings four crates (`raw-cpuid`,
//! `bitflags`, `portable-atomic` and itself) into the tree of every library that only marks
//! steps; this is the part Carina uses, in one file, over `libc`.

use std::sync::OnceLock;
use std::time::Duration;

/// Timestamps and their conversion. Cheap to copy; every copy in a process converts alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `rdtsc`; nanoseconds = ticks x `mul` >> `SHIFT`.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    Tsc { mul: u64 },
    /// `CLOCK_MONOTONIC` nanoseconds.
    Monotonic,
}

/// Fixed-point shift of the TSC factor: 2^32 keeps 9+ significant digits for any TSC between
/// 100 MHz and 10 GHz, and a 64-bit product of ticks x factor does not overflow for deltas up to
/// about 4 s at 4 GHz; longer deltas go through 128 bits.
const SHIFT: u32 = 32;

/// The calibration window. Longer is more precise; 2 ms gives about 1e-5 (the two clock reads at
/// each end err by tens of nanoseconds), far below what energy attribution can resolve.
const CALIBRATION: Duration = Duration::from_millis(2);

static PROCESS_CLOCK: OnceLock<Clock> = OnceLock::new();

impl Clock {
    /// The process's clock: the TSC where it is invariant (calibrated on first use, about 2 ms
    /// once), else `CLOCK_MONOTONIC`.
    pub fn new() -> Clock {
        *PROCESS_CLOCK.get_or_init(|| match tsc_ns_factor() {
            Some(mul) => Clock {
                kind: Kind::Tsc { mul },
            },
            None => Clock::monotonic(),
        })
    }

    /// A clock on `CLOCK_MONOTONIC` whatever the CPU offers (tests, and platforms without an
    /// invariant TSC).
    pub const fn monotonic() -> Clock {
        Clock {
            kind: Kind::Monotonic,
        }
    }

    /// A raw timestamp of a clock known to be the TSC ([`is_tsc`](Self::is_tsc)): `rdtsc` with
    /// no test of the clock's kind, for the recorder's inlined fast path, which is taken only
    /// for such a clock. On another clock it would return a timestamp in the wrong unit.
    #[inline(always)]
    pub(crate) fn tsc_raw() -> u64 {
        rdtsc()
    }

    /// Whether timestamps come from the TSC.
    pub fn is_tsc(&self) -> bool {
        matches!(self.kind, Kind::Tsc { .. })
    }

    /// A raw timestamp: TSC ticks or nanoseconds, comparable only with this clock's others.
    #[inline(always)]
    pub fn raw(&self) -> u64 {
        match self.kind {
            Kind::Tsc { .. } => rdtsc(),
            Kind::Monotonic => monotonic_ns(),
        }
    }

    /// Nanoseconds from raw timestamp `from` to `to`; 0 when `to` is earlier.
    #[inline]
    pub fn delta_as_nanos(&self, from: u64, to: u64) -> u64 {
        let ticks = to.saturating_sub(from);
        match self.kind {
            Kind::Tsc { mul } => match ticks.checked_mul(mul) {
                Some(p) => p >> SHIFT,
                None => ((u128::from(ticks) * u128::from(mul)) >> SHIFT) as u64,
            },
            Kind::Monotonic => ticks,
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds.
#[inline]
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call, which only
    // writes it; CLOCK_MONOTONIC exists on every Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn rdtsc() -> u64 {
    // SAFETY: RDTSC is part of the x86-64 baseline (every x86-64 CPU has it); it reads a
    // register and touches no memory. Only reached when `tsc_ns_factor` found an invariant TSC.
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn rdtsc() -> u64 {
    // Never reached: `Kind::Tsc` is only built on x86-64.
    monotonic_ns()
}

/// The TSC's nanoseconds per tick as a fixed-point factor, when the TSC is invariant.
#[cfg(target_arch = "x86_64")]
fn tsc_ns_factor() -> Option<u64> {
    use core::arch::x86_64::__cpuid;
    // Leaf 0x8000_0000 reports the highest extended leaf; 0x8000_0007 is read only when it
    // exists (CPUID is safe to call on x86-64).
    let max_ext = __cpuid(0x8000_0000).eax;
    if max_ext < 0x8000_0007 {
        return None;
    }
    let invariant = __cpuid(0x8000_0007).edx & (1 << 8) != 0;
    if !invariant {
        return None;
    }
    let (t0, c0) = paired_read();
    let until = t0 + CALIBRATION.as_nanos() as u64;
    while monotonic_ns() < until {}
    let (t1, c1) = paired_read();
    let ticks = c1.checked_sub(c0).filter(|&t| t > 0)?;
    if t1 <= t0 {
        return None;
    }
    let mul = (u128::from(t1 - t0) << SHIFT) / u128::from(ticks);
    u64::try_from(mul).ok().filter(|&m| m > 0)
}

/// A `(CLOCK_MONOTONIC ns, TSC)` pair read as close together as this thread manages: the TSC
/// read between two monotonic reads, the narrowest of a few tries, with the monotonic time
/// of its middle. A preemption between the reads of one try (a busy neighbour) widens only
/// that try; unbracketed, one 10 µs preemption at either end of the 2 ms calibration skewed
/// the factor by 0.5 % (seen on this project's loaded 2-vCPU VM).
#[cfg(target_arch = "x86_64")]
fn paired_read() -> (u64, u64) {
    let mut best = (u64::MAX, 0, 0);
    for _ in 0..8 {
        let a = monotonic_ns();
        let c = rdtsc();
        let b = monotonic_ns();
        let width = b.saturating_sub(a);
        if width < best.0 {
            best = (width, a + width / 2, c);
        }
    }
    (best.1, best.2)
}

#[cfg(not(target_arch = "x86_64"))]
fn tsc_ns_factor() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn the_step_clock_agrees_with_the_monotonic_clock() {
        let c = Clock::new();
        if !c.is_tsc() {
            // Not an invariant TSC: the step clock is CLOCK_MONOTONIC and converts as the
            // identity.
            let (a, b) = (c.raw(), c.raw());
            assert!(b >= a);
            assert_eq!(c.delta_as_nanos(a, b), b - a);
            assert_eq!(c, Clock::monotonic());
            return;
        }
        // Bracketed pairs, as the calibration takes them: an unbracketed pair split by a
        // preemption on a loaded machine would fail this test, not the clock.
        let (m0, r0) = paired_read();
        std::thread::sleep(Duration::from_millis(50));
        let (m1, r1) = paired_read();
        let step = c.delta_as_nanos(r0, r1) as f64;
        let mono = (m1 - m0) as f64;
        // Within 0.5 %: the calibration error is far smaller; the rest is the reads' skew.
        assert!((step / mono - 1.0).abs() < 0.005, "{step} ns vs {mono} ns");
        // Copies convert alike, and backwards is zero.
        assert_eq!(Clock::new(), c);
        assert_eq!(c.delta_as_nanos(r1, r0), 0);
    }

    #[test]
    fn long_deltas_do_not_overflow() {
        let c = Clock {
            kind: Kind::Tsc { mul: 3 << SHIFT },
        };
        // 10^12 ticks at 3 ns each: the 64-bit product would overflow.
        assert_eq!(c.delta_as_nanos(0, 1_000_000_000_000), 3_000_000_000_000);
        assert_eq!(Clock::monotonic().delta_as_nanos(5, 12), 7);
    }

    #[test]
    fn the_tsc_is_used_exactly_where_the_kernel_sees_it_invariant() {
        // CPUID's invariant-TSC bit is what the kernel reports as `constant_tsc` and
        // `nonstop_tsc` in /proc/cpuinfo; the two must agree.
        let flags = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let invariant = cfg!(target_arch = "x86_64")
            && flags.contains(" constant_tsc")
            && flags.contains(" nonstop_tsc");
        assert_eq!(Clock::new().is_tsc(), invariant, "{flags:.200}");
    }
}
