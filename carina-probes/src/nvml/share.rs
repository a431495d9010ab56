//! Who used a GPU over a sampling interval, and the rule that turns that into the run's share
//! of its energy (see the [parent module](super)'s "The run's share of a GPU").

use carina_runtime::energy::UsageShare;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{SystemTime, UNIX_EPOCH};

/// A device's users over one share interval (between two
/// [`usage_share`](EnergyProbe::usage_share) calls), and the one-time warnings about them.
#[derive(Debug)]
pub(super) struct Users {
    /// Pids listed on the device or sampled busy since the previous share.
    pub(super) seen: BTreeSet<u32>,
    /// Whether a process list was taken since the previous share.
    pub(super) listed: bool,
    /// Whether a compute-process list was read successfully since the previous share.
    pub(super) list_ok: bool,
    /// Whether a process list since the previous share had a pid in it.
    pub(super) listed_any: bool,
    /// Whether one of those listed pids existed in this pid namespace when it was listed.
    pub(super) listed_here: bool,
    /// Sum of the SM utilisation samples per pid since the previous share; `None` when the
    /// utilisation query failed.
    pub(super) util: Option<BTreeMap<u32, u64>>,
    /// Timestamp of the newest utilisation sample seen (at first: when the probe opened).
    pub(super) since_us: u64,
    pub(super) warned_list: bool,
    pub(super) warned_graphics: bool,
    pub(super) warned_util: bool,
    pub(super) warned_namespace: bool,
}

impl Users {
    pub(super) fn new(since_us: u64) -> Self {
        Users {
            seen: BTreeSet::new(),
            listed: false,
            list_ok: false,
            listed_any: false,
            listed_here: false,
            util: None,
            since_us,
            warned_list: false,
            warned_graphics: false,
            warned_util: false,
            warned_namespace: false,
        }
    }

    /// Forgets the interval's users; keeps the sample timestamp and the warnings given.
    pub(super) fn reset(&mut self) {
        self.seen.clear();
        self.listed = false;
        self.list_ok = false;
        self.listed_any = false;
        self.listed_here = false;
        self.util = None;
    }
}

/// What the run's share of one device is over one interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Share {
    Known(UsageShare),
    /// The device has users, none of which exists in this pid namespace.
    OtherNamespace,
}

/// The share rule, see the [module documentation](self). `users` are the interval's users;
/// `util` sums their SM utilisation samples per pid, if the driver gave them; `foreign` says
/// that processes were listed and none of them existed in this pid namespace when listed.
pub(super) fn share_of(
    users: &BTreeSet<u32>,
    util: Option<&BTreeMap<u32, u64>>,
    is_ours: impl Fn(u32) -> bool,
    foreign: bool,
) -> Share {
    if users.is_empty() {
        return Share::Known(UsageShare::by_use(0.0));
    }
    let ours: Vec<u32> = users.iter().copied().filter(|&p| is_ours(p)).collect();
    if ours.len() == users.len() {
        return Share::Known(UsageShare::by_use(1.0));
    }
    if ours.is_empty() {
        // NVML's pids are the host's: if none of them is a process here, this is another pid
        // namespace (a container) and "not ours" cannot be told from "ours, numbered
        // differently".
        return if foreign {
            Share::OtherNamespace
        } else {
            Share::Known(UsageShare::by_use(0.0))
        };
    }
    if let Some(util) = util {
        let sum = |ps: &mut dyn Iterator<Item = u32>| -> u64 {
            ps.map(|p| util.get(&p).copied().unwrap_or(0)).sum()
        };
        let total = sum(&mut users.iter().copied());
        if total > 0 {
            let mine = sum(&mut ours.iter().copied());
            return Share::Known(UsageShare::by_use(
                (mine as f64 / total as f64).clamp(0.0, 1.0),
            ));
        }
    }
    Share::Known(UsageShare::by_count(ours.len() as f64 / users.len() as f64))
}

/// Microseconds since the Unix epoch, the clock of NVML's utilisation samples.
pub(super) fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}
