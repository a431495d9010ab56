//! What the two RAPL routes ([`crate::powercap`] and [`crate::perf_rapl`]) share: which domains
//! are reported, the power bounds of the counter rule, and how quickly a live RAPL counter moves.

use crate::counter::Limits;
use carina_runtime::Watts;
use std::time::Duration;

/// RAPL updates its energy counters about every millisecond. The counter rule allows an
/// interval ten update steps of slack (fake trees in tests move in 5 ms steps).
pub(crate) const QUANTUM: Duration = Duration::from_millis(10);

/// A RAPL counter that keeps its value for longer than this is stalled. A powered package or
/// DRAM draws watts even when idle and its counter moves every millisecond or so, so 250 ms
/// without a change is 250 missed updates, not a quiet machine; and it is short enough to catch
/// a counter that dies a quarter of a second into a run.
pub(crate) const STALL_AFTER: Duration = Duration::from_millis(250);

/// The bound read from a powercap zone's power limits is this many times its largest limit
/// (see [`crate::powercap`], "Power bounds").
pub(crate) const LIMIT_FACTOR: f64 = 2.0;

/// Limits below this many watts are not taken as a bound (a zone that publishes 0 or a
/// placeholder).
pub(crate) const MIN_LIMIT_W: f64 = 1.0;

/// Upper bounds on the average power of each kind of RAPL domain.
///
/// They decide how many whole counter wraps may have happened between two reads, and whether a
/// drop can be a wrap at all (see [`crate::counter`]): an interval is never credited with more
/// energy than its bound times its duration unless the counter itself shows more. An interval
/// shorter than the time the counter needs to go round once at the bound is certain. The
/// defaults are loose on purpose, since a bound below a real draw would make the probe treat a
/// genuine wrap as a counter reset:
///
/// * package: 2000 W, four times the highest package TDP on sale (500 W, 2024 server parts);
/// * DRAM: 1000 W, several times what a fully populated socket's DIMMs draw (a few W each);
/// * psys: 3000 W, the package and DRAM bounds together, since the platform counter includes
///   both.
///
/// With a real range (262 kJ on Intel, 65 kJ on AMD) these make every interval shorter than
/// 30 s certain. The powercap probe tightens them per zone from the zone's power limits;
/// [`PowercapProbe::with_max_plausible_power`](crate::powercap::PowercapProbe::with_max_plausible_power)
/// replaces both.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MaxPlausiblePower {
    /// Bound for each `package-N` domain.
    pub package: Watts,
    /// Bound for each `dram-N` domain.
    pub dram: Watts,
    /// Bound for the `psys` domain.
    pub psys: Watts,
}

impl Default for MaxPlausiblePower {
    fn default() -> Self {
        MaxPlausiblePower {
            package: Watts(2000.0),
            dram: Watts(1000.0),
            psys: Watts(3000.0),
        }
    }
}

/// The kind of a reported RAPL domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    Package,
    Dram,
    Psys,
}

impl Kind {
    /// This kind's bound.
    pub(crate) fn bound(self, p: &MaxPlausiblePower) -> Watts {
        match self {
            Kind::Package => p.package,
            Kind::Dram => p.dram,
            Kind::Psys => p.psys,
        }
    }

    /// The counter rule's limits for a RAPL counter of this kind.
    pub(crate) fn limits(
        self,
        bounds: &MaxPlausiblePower,
        range: u128,
        units_per_joule: f64,
        unit: &'static str,
    ) -> Limits {
        Limits {
            range,
            units_per_joule,
            unit,
            max_power: self.bound(bounds),
            quantum: QUANTUM,
            stall_after: STALL_AFTER,
        }
    }
}

/// Which kinds of RAPL domain a machine reports, given which it exposes. The reported domains
/// must add up without counting anything twice:
///
/// * every package and every DRAM zone, when a package exists (DRAM is powered outside the
///   package, so it adds to it; `psys` includes the packages, so it is left out);
/// * `psys` alone where no package exists (it includes the DRAM, which is left out);
/// * DRAM alone where there is neither;
/// * never a sub-part of the package (`core`/`cores`, `uncore`, `gpu`): its energy is already in
///   the package's counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Choice {
    pub(crate) packages: bool,
    pub(crate) drams: bool,
    pub(crate) psys: bool,
}

/// Why a kind that exists was left out by [`choose`], for the source string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LeftOut {
    /// `psys` beside packages.
    PsysIncludesPackages,
    /// DRAM beside `psys` with no package.
    DramInPsys,
}

/// The one domain rule of both RAPL routes; see [`Choice`].
pub(crate) fn choose(has_package: bool, has_dram: bool, has_psys: bool) -> (Choice, Vec<LeftOut>) {
    let mut left = Vec::new();
    let choice = if has_package {
        if has_psys {
            left.push(LeftOut::PsysIncludesPackages);
        }
        Choice {
            packages: true,
            drams: has_dram,
            psys: false,
        }
    } else if has_psys {
        if has_dram {
            left.push(LeftOut::DramInPsys);
        }
        Choice {
            packages: false,
            drams: false,
            psys: true,
        }
    } else {
        Choice {
            packages: false,
            drams: has_dram,
            psys: false,
        }
    };
    (choice, left)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_domain_rule_never_adds_an_including_domain() {
        let all = |p, d, s| choose(p, d, s).0;
        let c = |packages, drams, psys| Choice {
            packages,
            drams,
            psys,
        };
        assert_eq!(all(true, true, true), c(true, true, false));
        assert_eq!(all(true, false, true), c(true, false, false));
        assert_eq!(all(false, true, true), c(false, false, true));
        assert_eq!(all(false, false, true), c(false, false, true));
        assert_eq!(all(false, true, false), c(false, true, false));
        assert_eq!(choose(false, true, true).1, [LeftOut::DramInPsys]);
        assert_eq!(choose(true, true, true).1, [LeftOut::PsysIncludesPackages]);
    }
}
