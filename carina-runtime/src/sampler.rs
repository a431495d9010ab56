//! Reading a set of energy sources at each interval: the one sampler that a run's aggregator
//! thread and `carina-criterion`'s energy meter share.
//!
//! [`Sampler::sample`] reads every probe, takes the run's share of each host-wide domain (the
//! CPU-time share of the share target, or a device's own share of use), splits the interval's
//! energy into its CPU and GPU parts ([`IntervalEnergy`]), carries the band of estimates, and
//! keeps per source the accounts that say how the run's figure was obtained ([`Method`]).
//! Problems (a failed read, a probe's warnings, a stalled source) are queued for
//! [`Sampler::take_warnings`] and counted in [`Sampler::probe_errors`].

use crate::attribution::IntervalEnergy;
use crate::energy::{EnergyProbe, ProbeScope, Reading, UsageShare};
use crate::procfs;
use crate::record::{
    Basis, EnergyKind, EnergySource, Method, MethodPart, Scope, ShareRule, is_gpu_domain,
};
use crate::share::{CpuShare, ShareTarget, attribute_interval};
use carina_core::units::Joules;

/// How long a measured source may stand still while the process uses CPU before the sampler
/// says so: longer than any counter's update period (RAPL ~1 ms, NVML ~100 ms), short enough to
/// catch a dead virtual PMU within the first seconds. A safety net for probes that do not watch
/// their own counters; the built-in ones flag a stalled counter within a quarter second.
const STALL_NS: u64 = 2_000_000_000;

/// One probe and what the sampler keeps of it between reads.
struct Slot {
    probe: Box<dyn EnergyProbe>,
    /// `energy_sources[].name`, for messages and `run_end.method`.
    name: String,
    scope: ProbeScope,
    /// Per domain: a GPU's (its energy follows the GPU steps inside the run).
    gpu: Vec<bool>,
    /// Per domain: how its energy is obtained now (a GPU may fall back to power samples).
    basis: Vec<Basis>,
    /// The run's energy from this source, by basis and share rule.
    accounts: MethodAccounts,
    /// The PUE the source multiplies by, if any.
    pue: Option<f64>,
    /// Some interval was counted low for good (the probe said so, or its counters stalled).
    lower_bound: bool,
    /// Some of its energy is not being counted right now (the latest report said so).
    missing: bool,
    last: Vec<Joules>,
    reading: Reading,
    last_band: Option<(f64, f64)>,
    /// Per-domain share of the run from the probe's own knowledge of its users (GPUs).
    usage: Vec<Option<UsageShare>>,
    knows_users: bool,
    /// A measured source's counters: how long they have read the same while the process ran.
    measured: bool,
    still_ns: u64,
    ever_advanced: bool,
    stall_warned: bool,
}

/// The run's energy from one source, by basis and by the share rule that brought it to the run
/// (`None`: taken whole). A handful of entries at most.
#[derive(Debug, Default)]
struct MethodAccounts(Vec<(Basis, Option<ShareRule>, f64)>);

impl MethodAccounts {
    fn add(&mut self, basis: Basis, rule: Option<ShareRule>, e: Joules) {
        match self
            .0
            .iter_mut()
            .find(|(b, r, _)| *b == basis && *r == rule)
        {
            Some(slot) => slot.2 += e.0,
            None => self.0.push((basis, rule, e.0)),
        }
    }

    /// One method part per basis, with its energy by share rule.
    fn parts(&self, source: &str, pue: Option<f64>) -> Vec<MethodPart> {
        let mut parts: Vec<MethodPart> = Vec::new();
        for &(basis, rule, e) in &self.0 {
            let i = match parts.iter().position(|p| p.basis == basis) {
                Some(i) => i,
                None => {
                    parts.push(MethodPart {
                        source: source.to_owned(),
                        basis,
                        energy_j: Joules::ZERO,
                        shares: Default::default(),
                        pue,
                    });
                    parts.len() - 1
                }
            };
            let part = &mut parts[i];
            part.energy_j += Joules(e);
            if let Some(r) = rule {
                *part.shares.entry(r).or_insert(Joules::ZERO) += Joules(e);
            }
        }
        parts
    }
}

/// One interval as the sampler read it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// The run's energy over the interval, CPU and GPU parts (no emissions yet: the caller
    /// applies the interval's grid intensity).
    pub energy: IntervalEnergy,
    /// The whole machine's energy over the interval, as the sources saw it.
    pub host: Joules,
}

/// Reads a set of [`EnergyProbe`]s at each interval; see the [module documentation](self).
pub struct Sampler {
    slots: Vec<Slot>,
    share: CpuShare,
    scope: Scope,
    /// Every domain, named as in the run file (two sources naming a domain alike stay apart).
    domains: Vec<String>,
    host_j: f64,
    probe_errors: u64,
    last_share: f64,
    /// Time of the last sample and the process CPU time then, for the stall safety net.
    last_ns: u64,
    last_process_cpu: u64,
    warnings: Vec<String>,
}

impl Sampler {
    /// Samples `probes` in `scope`, taking the run's share of host-wide sources by `share`'s
    /// target. Nothing is read until the first [`sample`](Self::sample), which sets the
    /// baselines.
    pub fn new(probes: Vec<Box<dyn EnergyProbe>>, scope: Scope, share: CpuShare) -> Sampler {
        let mut domains: Vec<String> = Vec::new();
        let slots = probes
            .into_iter()
            .map(|probe| {
                let desc = probe.describe();
                let n = desc.domains.len().max(1);
                for d in &desc.domains {
                    domains.push(if domains.contains(d) {
                        format!("{}:{d}", desc.name)
                    } else {
                        d.clone()
                    });
                }
                Slot {
                    name: desc.name.clone(),
                    gpu: (0..n)
                        .map(|i| desc.domains.get(i).is_some_and(|d| is_gpu_domain(d)))
                        .collect(),
                    basis: vec![desc.basis(); n],
                    accounts: MethodAccounts::default(),
                    pue: desc.pue,
                    lower_bound: false,
                    missing: false,
                    scope: desc.scope,
                    knows_users: probe.knows_users(),
                    measured: desc.kind == EnergyKind::Measured,
                    probe,
                    last: vec![Joules::ZERO; n],
                    reading: Reading::new(n),
                    last_band: None,
                    usage: vec![None; n],
                    still_ns: 0,
                    ever_advanced: false,
                    stall_warned: false,
                }
            })
            .collect();
        Sampler {
            slots,
            share,
            scope,
            domains,
            host_j: 0.0,
            probe_errors: 0,
            last_share: 0.0,
            last_ns: 0,
            last_process_cpu: carina_core::cpuclock::process_ns().unwrap_or(0),
            warnings: Vec::new(),
        }
    }

    /// How each source describes itself (`run_start.energy_sources`).
    pub fn sources(&self) -> Vec<EnergySource> {
        self.slots.iter().map(|s| s.probe.describe()).collect()
    }

    /// Every domain, in channel order.
    pub fn domains(&self) -> &[String] {
        &self.domains
    }

    /// Whether some source is an estimate (then figures carry a band).
    pub fn estimated(&self) -> bool {
        self.slots.iter().any(|s| !s.measured)
    }

    /// Whether some source reports a GPU domain.
    pub fn has_gpu(&self) -> bool {
        self.slots.iter().any(|s| s.gpu.iter().any(|&g| g))
    }

    /// The whole machine's energy since the last [`reset`](Self::reset), as the sources saw it.
    pub fn host_energy(&self) -> Joules {
        Joules(self.host_j)
    }

    /// Failed reads so far (a source's failed read, a counter read a probe reports, the share).
    pub fn probe_errors(&self) -> u64 {
        self.probe_errors
    }

    /// The share target's share of host busy CPU time over the last interval.
    pub fn last_share(&self) -> f64 {
        self.last_share
    }

    /// The share target's CPU time over the last interval, nanoseconds.
    pub fn last_target_ns(&self) -> u64 {
        self.share.last_target_delta_ns()
    }

    /// The share target's cumulative CPU time now, nanoseconds (a read of `/proc` or the
    /// process clock).
    pub fn target_cpu_ns(&self) -> Result<u64, crate::energy::ProbeError> {
        self.share.target_ns()
    }

    /// Whose CPU time is the run's.
    pub fn share_target(&self) -> ShareTarget {
        self.share.target()
    }

    /// Problems met since the last call, oldest first.
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    /// Forgets what was counted so far (host energy and method accounts): the first sample's
    /// delta is energy from before the run (since each probe opened), not the run's.
    pub fn reset(&mut self) {
        self.host_j = 0.0;
        for s in &mut self.slots {
            s.accounts = MethodAccounts::default();
        }
    }

    /// How the run's figure was obtained so far, from each source's accounts.
    pub fn method(&self) -> Method {
        let parts = self
            .slots
            .iter()
            .flat_map(|s| s.accounts.parts(&s.name, s.pue))
            .collect();
        // Energy still missing (a counter still failing or stalled) never came.
        Method::from_parts(parts, self.slots.iter().any(|s| s.lower_bound || s.missing))
    }

    /// The processes whose use of a device is the run's: this process, or the share target's
    /// tree.
    fn run_pids(&self) -> Vec<u32> {
        let own = std::process::id();
        let root = self.share.proc_root();
        let mut pids = match self.share.target() {
            ShareTarget::SelfProcess => vec![own],
            ShareTarget::Tree { root: r } => procfs::tree_pids(root, Some(r)).unwrap_or_default(),
            ShareTarget::Descendants => procfs::tree_pids(root, None).unwrap_or_default(),
        };
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Reads every source for the interval ending now (`now_ns` on the caller's clock, for the
    /// stall safety net) and returns the run's energy over it.
    pub fn sample(&mut self, now_ns: u64) -> Sample {
        // The share is sampled in host scope too: Carina's own cost is its part of the target's.
        let (share, share_ok) = match self.share.sample() {
            Ok(s) => (s.unwrap_or(0.0), true),
            Err(e) => {
                if self.scope == Scope::Process {
                    self.probe_errors += 1;
                    self.warnings.push(format!(
                        "cannot take the process share ({e}); using the whole host"
                    ));
                }
                (1.0, false)
            }
        };
        self.last_share = share;
        let (share, by_cpu_share) = match self.scope {
            Scope::Host => (1.0, false),
            Scope::Process => (share, share_ok),
        };
        let dt_ns = now_ns.saturating_sub(self.last_ns);
        self.last_ns = now_ns;
        let cpu_now = carina_core::cpuclock::process_ns().unwrap_or(0);
        let cpu_used = cpu_now.saturating_sub(self.last_process_cpu);
        self.last_process_cpu = cpu_now;
        let pids = (self.scope == Scope::Process && self.slots.iter().any(|s| s.knows_users))
            .then(|| self.run_pids());
        let mut out = Sample::default();
        let mut offset = 0;
        for s in &mut self.slots {
            let n = s.last.len();
            s.reading.report = Default::default();
            s.reading.band = None;
            let read = s.probe.read(&mut s.reading);
            let report = std::mem::take(&mut s.reading.report);
            // A probe that counts its own failed reads counts this one too.
            self.probe_errors += report.read_errors.max(u64::from(read.is_err()));
            s.lower_bound |= report.lower_bound;
            s.missing = report.missing || read.is_err();
            for (i, b) in report.basis {
                if let Some(slot) = s.basis.get_mut(i) {
                    *slot = b;
                }
            }
            match read {
                Ok(()) => {
                    let k = match s.scope {
                        ProbeScope::Host => share,
                        ProbeScope::Process => 1.0,
                    };
                    let cpu_rule = by_cpu_share && s.scope == ProbeScope::Host;
                    s.usage.iter_mut().for_each(|u| *u = None);
                    if let (Some(pids), true, ProbeScope::Host) = (&pids, s.knows_users, s.scope) {
                        s.probe.usage_share(pids, &mut s.usage);
                    }
                    let (mut run_cpu, mut run_gpu) = (0.0, 0.0);
                    let (gpu, basis, usage, accounts, energy) =
                        (&s.gpu, &s.basis, &s.usage, &mut s.accounts, &mut out.energy);
                    let (total, total_run) = attribute_interval(
                        &s.reading.energy,
                        &mut s.last,
                        &s.usage,
                        k,
                        |i, _, run| {
                            let is_gpu = gpu.get(i).copied().unwrap_or(false);
                            let part = if is_gpu {
                                run_gpu += run.0;
                                &mut energy.gpu
                            } else {
                                run_cpu += run.0;
                                &mut energy.cpu
                            };
                            part.add_domain(offset + i, run);
                            // Which rule brought the domain's energy to the run: a device's own
                            // users (taken whole when the run was its only user), else the CPU
                            // share of a host-wide source in process scope.
                            let rule = match usage.get(i).copied().flatten() {
                                Some(u) if u.share > 0.0 && u.share < 1.0 => Some(u.rule),
                                Some(_) => None,
                                None => cpu_rule.then_some(ShareRule::CpuTime),
                            };
                            let b = basis.get(i).copied().unwrap_or(Basis::Unknown);
                            accounts.add(b, rule, run);
                        },
                    );
                    let (total, total_run) = (total.0, total_run.0);
                    if s.measured && !s.stall_warned && !s.lower_bound && !s.missing {
                        if total > 0.0 {
                            s.ever_advanced = true;
                            s.still_ns = 0;
                        } else if cpu_used > 0 {
                            s.still_ns += dt_ns;
                            if s.still_ns >= STALL_NS {
                                s.stall_warned = true;
                                s.lower_bound = true;
                                let at = now_ns.saturating_sub(s.still_ns) as f64 / 1e9;
                                let still = s.still_ns as f64 / 1e9;
                                self.warnings.push(if s.ever_advanced {
                                    format!(
                                        "energy source `{}` stopped advancing at {at:.1} s (its counters read the same for {still:.1} s while this process used CPU): energy after that is missing from the figures, which are a lower bound",
                                        s.name
                                    )
                                } else {
                                    format!(
                                        "energy source `{}` has not advanced since the run started ({still:.1} s while this process used CPU): a dead or virtualised counter; its energy reads 0 (set `.constant_watts`/`.tdp_watts` or CARINA_POWERCAP_ROOT, see `carina doctor`)",
                                        s.name
                                    )
                                });
                            }
                        }
                    }
                    self.host_j += total;
                    out.host += Joules(total);
                    // The band follows the run's share of this source's total, and each part
                    // (CPU, GPU) takes the band in proportion to its energy.
                    let (lo, hi) = match s.reading.band {
                        Some((lo, hi)) => {
                            let (l0, h0) =
                                s.last_band.replace((lo.0, hi.0)).unwrap_or((lo.0, hi.0));
                            ((lo.0 - l0).max(0.0), (hi.0 - h0).max(0.0))
                        }
                        None => (total, total),
                    };
                    let k = if total > 0.0 { total_run / total } else { k };
                    let (lo, hi) = (lo * k, hi * k);
                    let f_gpu = if total_run > 0.0 {
                        run_gpu / total_run
                    } else {
                        0.0
                    };
                    out.energy.cpu.add_total(Joules(run_cpu));
                    out.energy
                        .cpu
                        .add_band(Joules(lo * (1.0 - f_gpu)), Joules(hi * (1.0 - f_gpu)));
                    out.energy.gpu.add_total(Joules(run_gpu));
                    out.energy
                        .gpu
                        .add_band(Joules(lo * f_gpu), Joules(hi * f_gpu));
                }
                Err(e) => self.warnings.push(format!(
                    "energy source `{}` failed ({e}); its energy stays where it was until a read \
                     succeeds",
                    s.name
                )),
            }
            self.warnings.extend(report.warnings);
            offset += n;
        }
        out
    }
}
