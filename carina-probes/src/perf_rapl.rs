//! RAPL energy counters read through perf_event's `power` PMU.
//!
//! The kernel's RAPL perf driver (Intel since 3.14, AMD since 5.8) registers a dynamic PMU named
//! `power` and describes it in sysfs:
//!
//! ```text
//! /sys/bus/event_source/devices/power/
//!     type                      PMU type number for perf_event_attr.type, e.g. `23`
//!     cpumask                   one CPU per package (socket or die), e.g. `0,18`
//!     format/event              where `event=` goes in perf_event_attr.config, `config:0-7`
//!     events/energy-pkg         `event=0x02`
//!     events/energy-pkg.scale   joules per count, e.g. `2.3283064365386962890625e-10`
//!     events/energy-pkg.unit    `Joules`
//!     events/energy-{cores,ram,gpu,psys}[.scale|.unit]
//! ```
//!
//! This probe opens one system-wide counter (pid = -1) per measured domain on the CPU that the
//! `cpumask` lists for its package. It is an alternative to the powercap sysfs files for hosts
//! where those are root-only (they have been since the PLATYPUS side channel, CVE-2020-8694),
//! while perf counters can be granted with `CAP_PERFMON` or `kernel.perf_event_paranoid`.
//!
//! Counter opening goes through [`CounterSource`] so that tests (and other backends) can supply
//! counters without a `power` PMU; [`PerfEventSource`] is the real implementation.

use crate::counter::Counter as EnergyCounter;
use crate::privileges::Privileges;
use crate::rapl::{self, Kind};
use carina_runtime::energy::{ProbeReport, Reading, Unavailable, UnavailableCause};
use carina_runtime::record::{Basis, SourceId};
use carina_runtime::{EnergyKind, EnergyProbe, EnergySource, Joules, ProbeError, ProbeScope};
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use crate::rapl::MaxPlausiblePower;

/// Where the kernel describes the RAPL perf PMU.
pub const DEFAULT_ROOT: &str = "/sys/bus/event_source/devices/power";

/// The RAPL events the kernel may expose, in the order they are reported. Other `energy-*` events
/// are ignored: without knowing what they overlap, adding them could count energy twice.
const KNOWN_EVENTS: [&str; 5] = ["pkg", "cores", "ram", "gpu", "psys"];

/// An upper bound on the CPUs a `cpumask` range may expand to; the `power` PMU lists one CPU per
/// package, so anything near this is a corrupt file, not a machine.
const MAX_MASK_CPUS: usize = 1 << 16;

/// The sysfs description of the `power` PMU, as read by [`describe_pmu`].
#[derive(Debug, Clone, PartialEq)]
pub struct PmuDescription {
    /// The PMU type number (`type`), for `perf_event_attr.type`.
    pub pmu_type: u32,
    /// The CPUs listed in `cpumask`: one per package, so the index in this list is the package
    /// index used in domain names (`package-<index>`).
    pub cpus: Vec<u32>,
    /// The RAPL events found, in the order `pkg`, `cores`, `ram`, `gpu`, `psys`.
    pub events: Vec<RaplEvent>,
}

/// One `events/energy-<name>` entry of the `power` PMU.
#[derive(Debug, Clone, PartialEq)]
pub struct RaplEvent {
    /// The part after `energy-`: `pkg`, `cores`, `ram`, `gpu` or `psys`.
    pub name: String,
    /// The value for `perf_event_attr.config`.
    pub config: u64,
    /// Joules per count, from `events/energy-<name>.scale`.
    pub scale: f64,
}

/// One counter to open: which domain it measures, with which event, on which CPU.
#[derive(Debug, Clone, PartialEq)]
struct Planned {
    domain: String,
    kind: Kind,
    event: RaplEvent,
    cpu: u32,
}

impl PmuDescription {
    /// The domains a probe on this PMU reports, in [`EnergyProbe::read`] order: per package,
    /// `package-<i>` then `dram-<i>`; `psys` alone when there is no `pkg` event.
    ///
    /// The names match the powercap probe's so that [`cross_check`] can compare the two sources.
    pub fn domains(&self) -> Vec<String> {
        self.plan().0.into_iter().map(|p| p.domain).collect()
    }

    /// Events found but not reported, each with the reason (empty when all are used).
    pub fn excluded(&self) -> Vec<String> {
        self.plan().1
    }

    fn event(&self, name: &str) -> Option<&RaplEvent> {
        self.events.iter().find(|e| e.name == name)
    }

    /// Chooses the counters to open, and says which events were left out and why. The domains
    /// must be additive: the run's energy is their sum. Which kinds count is the rule shared with
    /// the powercap route (`rapl::choose`): package and DRAM per package where `energy-pkg`
    /// exists, `psys` alone where it does not (read once: it covers the whole platform, and its
    /// DRAM too), DRAM alone where neither exists, never `cores` or `gpu`.
    fn plan(&self) -> (Vec<Planned>, Vec<String>) {
        let mut planned = Vec::new();
        let mut excluded = Vec::new();
        let pkg = self.event("pkg");
        let ram = self.event("ram");
        let psys = self.event("psys");
        let (choice, left_out) = rapl::choose(pkg.is_some(), ram.is_some(), psys.is_some());
        for (index, &cpu) in self.cpus.iter().enumerate() {
            // The counter on the cpumask's CPU for a package reads that package's MSRs.
            if let (true, Some(e)) = (choice.packages, pkg) {
                planned.push(Planned {
                    domain: format!("package-{index}"),
                    kind: Kind::Package,
                    event: e.clone(),
                    cpu,
                });
            }
            if let (true, Some(e)) = (choice.drams, ram) {
                planned.push(Planned {
                    domain: format!("dram-{index}"),
                    kind: Kind::Dram,
                    event: e.clone(),
                    cpu,
                });
            }
        }
        if let (true, Some(e), Some(&cpu)) = (choice.psys, psys, self.cpus.first()) {
            // More than one psys counter would count the platform once per package.
            planned.push(Planned {
                domain: "psys".to_owned(),
                kind: Kind::Psys,
                event: e.clone(),
                cpu,
            });
        }
        for name in ["cores", "gpu"] {
            if self.event(name).is_some() {
                excluded.push(format!(
                    "energy-{name} not reported: it is part of the package's energy"
                ));
            }
        }
        for l in left_out {
            excluded.push(
                match l {
                    rapl::LeftOut::PsysIncludesPackages => {
                        "energy-psys not reported: the platform domain includes the packages, \
                         so adding it to energy-pkg would count their energy twice"
                    }
                    rapl::LeftOut::DramInPsys => {
                        "energy-ram not reported: with no energy-pkg, energy-psys is the domain, \
                         and it includes the DRAM"
                    }
                }
                .to_owned(),
            );
        }
        (planned, excluded)
    }
}

/// Reads the `power` PMU's description under `root` (normally [`DEFAULT_ROOT`]).
///
/// Events that are absent are simply not listed. An event that is present must have a `.scale`
/// and a `.unit` of `Joules`; its `event=` term is placed in `config` according to
/// `format/event` when that file exists (the driver has always used `config:0-7`, which is
/// assumed otherwise). Other terms in the event file are accepted only with the value 0, which
/// cannot change the configuration whatever its bit layout; a non-zero one is a
/// [`ProbeError::Parse`] rather than a counter for a different event than intended.
///
/// # Errors
///
/// [`ProbeError::Unavailable`] ([`UnavailableCause::Absent`], no fix) when `root` is not a
/// directory (no RAPL PMU on this machine);
/// [`ProbeError::Io`] for a file that cannot be read (including a missing `type`, `cpumask`,
/// `.scale` or `.unit`); [`ProbeError::Parse`] for content that is not as the kernel documents,
/// naming the file, line 1 and the field.
pub fn describe_pmu(root: &Path) -> Result<PmuDescription, ProbeError> {
    if !root.is_dir() {
        // No fix: a kernel with the RAPL perf driver registers the PMU by itself wherever the
        // CPU has RAPL; without it, nothing a user can change here brings it.
        return Err(ProbeError::unavailable(
            UnavailableCause::Absent,
            format!(
                "no `power` PMU at {}: RAPL not exposed through perf_event here (VM, non-x86, \
                 or a kernel before 3.14 on Intel, 5.8 on AMD)",
                root.display()
            ),
        ));
    }
    let type_path = root.join("type");
    let text = read(&type_path)?;
    let pmu_type = text.trim().parse::<u32>().map_err(|_| {
        parse_error(
            &type_path,
            "type",
            format!("expected a decimal PMU type number, got {:?}", text.trim()),
        )
    })?;
    let mask_path = root.join("cpumask");
    let cpus = parse_cpu_list(read(&mask_path)?.trim(), &mask_path)?;
    let layout = event_layout(root)?;
    let mut events = Vec::new();
    for name in KNOWN_EVENTS {
        let path = root.join("events").join(format!("energy-{name}"));
        if !path.exists() {
            continue;
        }
        let value = parse_event_terms(read(&path)?.trim(), &path)?;
        let config = layout.place(value, &path)?;
        let scale_path = root.join("events").join(format!("energy-{name}.scale"));
        let text = read(&scale_path)?;
        let scale = text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s > 0.0)
            .ok_or_else(|| {
                parse_error(
                    &scale_path,
                    "scale",
                    format!(
                        "expected a positive number of joules per count, got {:?}",
                        text.trim()
                    ),
                )
            })?;
        // The scale is only meaningful in joules; another unit would need its own conversion.
        let unit_path = root.join("events").join(format!("energy-{name}.unit"));
        let unit = read(&unit_path)?;
        if unit.trim() != "Joules" {
            return Err(parse_error(
                &unit_path,
                "unit",
                format!("expected `Joules`, got {:?}", unit.trim()),
            ));
        }
        events.push(RaplEvent {
            name: name.to_owned(),
            config,
            scale,
        });
    }
    Ok(PmuDescription {
        pmu_type,
        cpus,
        events,
    })
}

fn read(path: &Path) -> Result<String, ProbeError> {
    std::fs::read_to_string(path).map_err(|source| ProbeError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn parse_error(path: &Path, field: &str, message: String) -> ProbeError {
    // Every file of the PMU description is a single line.
    ProbeError::Parse {
        path: path.to_path_buf(),
        line: 1,
        field: field.to_owned(),
        message,
    }
}

/// Parses a kernel CPU list (`0`, `0,18`, `0-3,8-11`).
fn parse_cpu_list(text: &str, path: &Path) -> Result<Vec<u32>, ProbeError> {
    let bad = |why: String| parse_error(path, "cpumask", why);
    if text.is_empty() {
        return Err(bad("empty CPU list".to_owned()));
    }
    let mut cpus = Vec::new();
    for part in text.split(',') {
        let part = part.trim();
        let num = |s: &str| {
            s.trim()
                .parse::<u32>()
                .map_err(|_| bad(format!("expected a CPU number or range, got {part:?}")))
        };
        let (lo, hi) = match part.split_once('-') {
            Some((lo, hi)) => (num(lo)?, num(hi)?),
            None => {
                let n = num(part)?;
                (n, n)
            }
        };
        if hi < lo {
            return Err(bad(format!("range {part:?} ends before it starts")));
        }
        if cpus.len() + (hi - lo) as usize >= MAX_MASK_CPUS {
            return Err(bad(format!("more than {MAX_MASK_CPUS} CPUs listed")));
        }
        cpus.extend(lo..=hi);
    }
    // Package indices follow CPU order, as the kernel prints the mask.
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// Parses an event file's terms (`event=0x02`, `event=0x02,umask=0x0`) into the `event` value.
fn parse_event_terms(text: &str, path: &Path) -> Result<u64, ProbeError> {
    let mut event = None;
    for term in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        // A bare term means 1 in perf's event syntax.
        let (key, value) = term.split_once('=').unwrap_or((term, "1"));
        let key = key.trim();
        let value = parse_number(value.trim()).ok_or_else(|| {
            parse_error(
                path,
                key,
                format!("expected a decimal or 0x-hexadecimal value in {term:?}"),
            )
        })?;
        if key == "event" {
            event = Some(value);
        } else if value != 0 {
            // Zero cannot change the configuration wherever its bits go; anything else would need
            // that term's format, and guessing it would count a different event.
            return Err(parse_error(
                path,
                key,
                format!(
                    "term {term:?} would change the event configuration; only `event=` is handled"
                ),
            ));
        }
    }
    event.ok_or_else(|| parse_error(path, "event", format!("no `event=` term in {text:?}")))
}

fn parse_number(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Where the `event` field lives in `perf_event_attr.config`, from `format/event`.
struct EventLayout {
    path: PathBuf,
    lo: u32,
    bits: u32,
}

impl EventLayout {
    /// Shifts `value` into place, refusing values wider than the field.
    fn place(&self, value: u64, event_path: &Path) -> Result<u64, ProbeError> {
        if self.bits < 64 && value >> self.bits != 0 {
            return Err(parse_error(
                event_path,
                "event",
                format!(
                    "value {value:#x} does not fit the {} bits given by {}",
                    self.bits,
                    self.path.display()
                ),
            ));
        }
        Ok(value << self.lo)
    }
}

fn event_layout(root: &Path) -> Result<EventLayout, ProbeError> {
    let path = root.join("format").join("event");
    if !path.exists() {
        // The layout the RAPL driver has always declared.
        return Ok(EventLayout {
            path,
            lo: 0,
            bits: 8,
        });
    }
    let text = read(&path)?;
    let text = text.trim();
    let bad = || {
        parse_error(
            &path,
            "event",
            format!("expected `config:<lo>-<hi>` or `config:<bit>`, got {text:?}"),
        )
    };
    let bits = text.strip_prefix("config:").ok_or_else(bad)?;
    let num = |s: &str| s.trim().parse::<u32>().ok().filter(|&n| n < 64);
    let (lo, hi) = match bits.split_once('-') {
        Some((lo, hi)) => (num(lo).ok_or_else(bad)?, num(hi).ok_or_else(bad)?),
        None => {
            let n = num(bits).ok_or_else(bad)?;
            (n, n)
        }
    };
    if hi < lo {
        return Err(bad());
    }
    Ok(EventLayout {
        path: path.clone(),
        lo,
        bits: hi - lo + 1,
    })
}

/// Opens energy counters; the seam between the probe and `perf_event_open(2)`.
///
/// [`PerfEventSource`] is the real implementation. Tests use fake sources to exercise the probe
/// without a `power` PMU; another backend (a privileged helper handing over counters, say) can
/// implement it too. Pass one to [`PerfRaplProbe::open_with`].
pub trait CounterSource {
    /// Opens a system-wide counter (all processes) for `config` of PMU `pmu_type` on `cpu`.
    ///
    /// Errors keep the OS error kind and code: the probe turns them into an explanation.
    fn open(&self, pmu_type: u32, config: u64, cpu: u32) -> io::Result<Box<dyn Counter>>;
}

/// An open energy counter.
pub trait Counter: Send {
    /// The counter's raw count: 64 bits, never decreasing, in units of its event's scale.
    fn read(&mut self) -> io::Result<u64>;
}

/// Opens counters with `perf_event_open(2)`, through the `perf-event2` crate.
#[derive(Debug, Clone, Copy, Default)]
pub struct PerfEventSource;

/// A perf-event2 counter as a [`Counter`].
struct PerfCounter(perf_event::Counter);

impl Counter for PerfCounter {
    fn read(&mut self) -> io::Result<u64> {
        self.0.read()
    }
}

impl CounterSource for PerfEventSource {
    fn open(&self, pmu_type: u32, config: u64, cpu: u32) -> io::Result<Box<dyn Counter>> {
        // `Raw` sets the config; the type is then switched from PERF_TYPE_RAW to the dynamic PMU.
        let mut builder = perf_event::Builder::new(perf_event::events::Raw::new(config));
        builder.attrs_mut().type_ = pmu_type;
        builder
            // The energy is the machine's, not a process's: pid = -1 on one CPU.
            .any_pid()
            .one_cpu(cpu as usize)
            // The RAPL PMU has no privilege-level filtering and rejects any exclude_* flag with
            // EINVAL; the builder sets exclude_kernel and exclude_hv by default.
            .exclude_kernel(false)
            .exclude_hv(false)
            // Start counting at once, so the first read gives the baseline.
            .enabled(true);
        Ok(Box::new(PerfCounter(builder.build()?)))
    }
}

/// One open counter and its conversion to cumulative joules.
struct Slot {
    counter: Box<dyn Counter>,
    kind: Kind,
    /// The count since open, through the counter rule: the kernel's 64-bit counts never wrap,
    /// so a count that goes back is a reset, and one that stops moving is stalled.
    energy: EnergyCounter,
    /// `energy-pkg on CPU 0`, for error messages.
    label: String,
    /// `energy-pkg`, and the CPU it is read on: for [`PerfRaplProbe::counter_labels`].
    event: String,
    cpu: u32,
}

/// RAPL energy from the perf `power` PMU, as an [`EnergyProbe`].
///
/// Domains are `package-<i>` and `dram-<i>` per package (or `psys` alone where there is no
/// package event); see [`PmuDescription::domains`]. The kernel accumulates the 32-bit RAPL
/// registers into a 64-bit count and polls them often enough not to miss a wrap, so the counts
/// read here only grow; they still go through the counter rule of [`crate::counter`], which
/// calls a count that goes back a reset and one that stops moving for 250 ms stalled. A counter
/// whose read fails keeps its baseline; the next good read counts the whole gap.
pub struct PerfRaplProbe {
    root: PathBuf,
    pmu_type: u32,
    domains: Vec<String>,
    slots: Vec<Slot>,
    excluded: Vec<String>,
    opened: Instant,
    report: ProbeReport,
}

impl std::fmt::Debug for PerfRaplProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerfRaplProbe")
            .field("root", &self.root)
            .field("pmu_type", &self.pmu_type)
            .field("domains", &self.domains)
            .field("excluded", &self.excluded)
            .finish_non_exhaustive()
    }
}

impl PerfRaplProbe {
    /// Opens the probe on the PMU described at [`DEFAULT_ROOT`].
    pub fn open_default() -> Result<PerfRaplProbe, ProbeError> {
        Self::open(DEFAULT_ROOT)
    }

    /// Opens the probe on the PMU described under `root`, with real perf counters.
    ///
    /// # Errors
    ///
    /// As [`describe_pmu`]; [`ProbeError::Unavailable`] when the PMU has no usable event
    /// ([`UnavailableCause::Absent`]) or a counter cannot be opened: refused
    /// ([`UnavailableCause::Permission`], with the capability, `perf_event_paranoid` or
    /// container setting that fits this process), not supported by the kernel
    /// ([`UnavailableCause::Absent`]), or another error ([`UnavailableCause::Failed`]).
    pub fn open(root: impl Into<PathBuf>) -> Result<PerfRaplProbe, ProbeError> {
        Self::open_with(root, Box::new(PerfEventSource))
    }

    /// Opens the probe with counters from `source` instead of `perf_event_open`: for tests and
    /// alternative backends. The sysfs description is still read from `root`.
    ///
    /// Either every counter opens or none is kept.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub fn open_with(
        root: impl Into<PathBuf>,
        source: Box<dyn CounterSource + Send>,
    ) -> Result<PerfRaplProbe, ProbeError> {
        Self::open_as(root, source, &Privileges::of_this_process())
    }

    /// Same as [`open_with`](Self::open_with), explaining a refused counter for a process with
    /// `privileges` (detection passes [`Roots::privileges`](crate::Roots::privileges); tests
    /// state them).
    pub fn open_as(
        root: impl Into<PathBuf>,
        source: Box<dyn CounterSource + Send>,
        privileges: &Privileges,
    ) -> Result<PerfRaplProbe, ProbeError> {
        let root = root.into();
        let desc = describe_pmu(&root)?;
        let (plan, excluded) = desc.plan();
        if plan.is_empty() {
            return Err(ProbeError::unavailable(
                UnavailableCause::Absent,
                format!(
                    "the `power` PMU at {} has no energy-pkg, energy-ram or energy-psys event \
                     on any CPU of its cpumask",
                    root.display()
                ),
            ));
        }
        let mut slots = Vec::with_capacity(plan.len());
        for p in &plan {
            let label = format!("energy-{} on CPU {}", p.event.name, p.cpu);
            let opened = source
                .open(desc.pmu_type, p.event.config, p.cpu)
                .and_then(|mut c| c.read().map(|initial| (c, initial)));
            let (counter, initial) = opened
                .map_err(|e| open_error(&e, &root, desc.pmu_type, &p.event, p.cpu, privileges))?;
            let limits = p.kind.limits(
                &MaxPlausiblePower::default(),
                1u128 << 64,
                // Exact for the power-of-two scales RAPL uses (2^-32 J).
                1.0 / p.event.scale,
                "counts",
            );
            slots.push(Slot {
                counter,
                kind: p.kind,
                energy: EnergyCounter::new(p.domain.clone(), label.clone(), limits)
                    .with_first(initial, Duration::ZERO),
                label,
                event: format!("energy-{}", p.event.name),
                cpu: p.cpu,
            });
        }
        Ok(PerfRaplProbe {
            root,
            pmu_type: desc.pmu_type,
            domains: plan.into_iter().map(|p| p.domain).collect(),
            slots,
            excluded,
            opened: Instant::now(),
            report: ProbeReport::default(),
        })
    }

    /// Replaces the power bounds of the counter rule (defaults: [`MaxPlausiblePower::default`]).
    /// The counts do not wrap, so the bound only decides whether a count that went back could be
    /// counted from zero.
    pub fn with_max_plausible_power(mut self, bounds: MaxPlausiblePower) -> Self {
        for s in &mut self.slots {
            s.energy.set_max_power(s.kind.bound(&bounds));
        }
        self
    }

    /// [`read`](EnergyProbe::read) as if called `since_open` after the probe opened; `read`
    /// passes the monotonic clock. Exposed so that tests and replays can control time; a time
    /// earlier than the previous one counts as no time elapsed. Fills `out` (one value per
    /// domain; extra slots are left alone) with joules since open.
    ///
    /// # Errors
    ///
    /// Only when no counter could be read, after still filling `out` with the frozen values; a
    /// counter that fails alone is reported in [`take_report`](Self::take_report).
    pub fn read_at(&mut self, since_open: Duration, out: &mut [Joules]) -> Result<(), ProbeError> {
        let mut first_error = None;
        let mut any_ok = false;
        for (i, slot) in self.slots.iter_mut().enumerate() {
            match slot.counter.read() {
                Ok(count) => {
                    any_ok = true;
                    slot.energy.update(count, since_open, &mut self.report);
                }
                Err(e) => {
                    slot.energy
                        .failed(since_open, &e.to_string(), &mut self.report);
                    first_error.get_or_insert_with(|| {
                        ProbeError::unavailable(
                            UnavailableCause::Failed,
                            format!("cannot read perf counter {}: {e}", slot.label),
                        )
                    });
                }
            }
            if let Some(o) = out.get_mut(i) {
                *o = slot.energy.joules();
            }
        }
        match first_error {
            Some(e) if !any_ok => Err(e),
            _ => Ok(()),
        }
    }

    /// Events of the PMU that this probe does not report, with the reason.
    pub fn excluded(&self) -> &[String] {
        &self.excluded
    }

    /// The sysfs directory the PMU was described from.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The counter behind each domain, in domain order, for messages: the event name
    /// (`energy-psys`) where every counter is read on the same CPU, else with its CPU
    /// (`energy-pkg on CPU 18`).
    pub fn counter_labels(&self) -> Vec<String> {
        let one_cpu = self.slots.windows(2).all(|w| w[0].cpu == w[1].cpu);
        self.slots
            .iter()
            .map(|s| {
                if one_cpu {
                    s.event.clone()
                } else {
                    s.label.clone()
                }
            })
            .collect()
    }

    /// Stops reporting the domains named in `names` (a counter found not to advance, say): their
    /// counters are closed, they leave [`domains`](Self::domains), and
    /// [`excluded`](Self::excluded) (so the source string) says
    /// `<domain> (<counter>) dropped: <why>`. Unknown names are ignored. Call it before the first
    /// [`read`](EnergyProbe::read) of a run: the domain list must not change during one.
    pub fn drop_domains(&mut self, names: &[String], why: &str) {
        let labels = self.counter_labels();
        let mut domains = Vec::with_capacity(self.domains.len());
        let mut slots = Vec::with_capacity(self.slots.len());
        let pairs = self.domains.drain(..).zip(self.slots.drain(..));
        for ((domain, slot), label) in pairs.zip(labels) {
            if names.contains(&domain) {
                self.excluded
                    .push(format!("{domain} ({label}) dropped: {why}"));
            } else {
                domains.push(domain);
                slots.push(slot);
            }
        }
        self.domains = domains;
        self.slots = slots;
    }
}

/// Explains a failure to open (or first read) a counter, with the fix that fits `who`.
fn open_error(
    e: &io::Error,
    root: &Path,
    pmu_type: u32,
    event: &RaplEvent,
    cpu: u32,
    who: &Privileges,
) -> ProbeError {
    let what = format!(
        "cannot open perf counter power/energy-{}/ (type {pmu_type}, config {:#x}) on CPU {cpu}: {e}",
        event.name, event.config
    );
    let errno = e.raw_os_error();
    if e.kind() == io::ErrorKind::PermissionDenied
        || errno == Some(libc_errno::EACCES)
        || errno == Some(libc_errno::EPERM)
    {
        refused(what, who)
    } else if matches!(
        errno,
        Some(libc_errno::ENOENT | libc_errno::ENODEV | libc_errno::EINVAL | libc_errno::EOPNOTSUPP)
    ) || matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::InvalidInput | io::ErrorKind::Unsupported
    ) {
        ProbeError::unavailable(
            UnavailableCause::Absent,
            format!(
                "{what}. The `power` PMU or this event is not supported here \
                 (sysfs at {} describes a PMU the kernel will not open)",
                root.display()
            ),
        )
    } else {
        ProbeError::unavailable(UnavailableCause::Failed, what)
    }
}

/// A counter the kernel refused. perf_event_open checks CPU-wide events against
/// `perf_event_paranoid`: without `CAP_PERFMON` (or `CAP_SYS_ADMIN` before Linux 5.8) the level
/// must be 0 or less. Which of those is missing decides the fix; a refusal that neither explains
/// (root, or a low level) comes from a confinement: a container without the capability, a
/// seccomp filter, a security module.
fn refused(what: String, who: &Privileges) -> ProbeError {
    let path = Privileges::paranoid_path();
    let level = match who.perf_event_paranoid {
        Some(l) => format!("{path} is {l}"),
        None => format!("{path} unreadable"),
    };
    let low_enough = who.perf_event_paranoid.is_some_and(|l| l <= 0);
    let why = if low_enough {
        Unavailable::new(
            UnavailableCause::Permission,
            format!(
                "{what}. CPU-wide perf events are open to every user here ({level}), so something \
                 else refuses them: a seccomp filter (Docker's default profile blocks \
                 perf_event_open) or a security module"
            ),
        )
        .with_fix(
            "allow perf_event_open in the container's seccomp profile (e.g. `docker run \
             --security-opt seccomp=<profile allowing perf_event_open>`) or in the security \
             module's policy",
        )
    } else if who.root {
        Unavailable::new(
            UnavailableCause::Permission,
            format!(
                "{what}. The process runs as root but lacks CAP_PERFMON (and CAP_SYS_ADMIN), as \
                 in a container, and CPU-wide perf events then need kernel.perf_event_paranoid \
                 <= 0 ({level})"
            ),
        )
        .with_fix(
            "give the container the capability (`docker run --cap-add PERFMON`, or \
             `--cap-add SYS_ADMIN` before Linux 5.8), or on the host \
             `sudo sysctl kernel.perf_event_paranoid=0`",
        )
    } else {
        Unavailable::new(
            UnavailableCause::Permission,
            format!(
                "{what}. System-wide perf events need CAP_PERFMON (or CAP_SYS_ADMIN), or \
                 kernel.perf_event_paranoid <= 0 ({level})"
            ),
        )
        .with_fix(
            "`sudo setcap cap_perfmon+ep <program>` (Linux 5.8 or later; cap_sys_admin before), \
             or `sudo sysctl kernel.perf_event_paranoid=0`, or run as root",
        )
    };
    why.into()
}

/// The errno values the explanation distinguishes (Linux, all architectures this runs on).
mod libc_errno {
    pub const EPERM: i32 = 1;
    pub const ENOENT: i32 = 2;
    pub const EACCES: i32 = 13;
    pub const ENODEV: i32 = 19;
    pub const EINVAL: i32 = 22;
    pub const EOPNOTSUPP: i32 = 95;
}

impl PerfRaplProbe {
    /// Whole machine or this process (as [`EnergyProbe::describe`] says).
    pub fn scope(&self) -> ProbeScope {
        ProbeScope::Host
    }

    /// The domains, in the order reads fill them (as [`EnergyProbe::describe`] lists them).
    pub fn domains(&self) -> Vec<String> {
        self.domains.clone()
    }

    /// What the probe met since the last call (also delivered with every [`EnergyProbe::read`]).
    pub fn take_report(&mut self) -> ProbeReport {
        std::mem::take(&mut self.report)
    }
}

impl EnergyProbe for PerfRaplProbe {
    fn describe(&self) -> EnergySource {
        let mut source = format!(
            "perf_event PMU `power` (type {}) described at {}",
            self.pmu_type,
            self.root.display()
        );
        for note in &self.excluded {
            let _ = write!(source, "; {note}");
        }
        let mut src = EnergySource::new(SourceId::RaplPerf, EnergyKind::Measured, source)
            .with_basis(Basis::Counter);
        src.domains = self.domains();
        src.scope = carina_runtime::ProbeScope::Host;
        src
    }

    fn read(&mut self, reading: &mut Reading) -> Result<(), ProbeError> {
        let since_open = self.opened.elapsed();
        let result = self.read_at(since_open, &mut reading.energy);
        reading.report.merge(self.take_report());
        result
    }
}

/// Compares two domain lists (e.g. the powercap probe's and this one's), ignoring order.
///
/// # Errors
///
/// A message naming the domains only in `a`, only in `b`, and those listed a different number of
/// times, so detection can say why it distrusts one of the sources.
pub fn cross_check(a: &[String], b: &[String]) -> Result<(), String> {
    let mut a: Vec<&str> = a.iter().map(String::as_str).collect();
    let mut b: Vec<&str> = b.iter().map(String::as_str).collect();
    a.sort_unstable();
    b.sort_unstable();
    if a == b {
        return Ok(());
    }
    let count = |list: &[&str], d: &str| list.iter().filter(|x| **x == d).count();
    let mut all: Vec<&str> = a.iter().chain(&b).copied().collect();
    all.sort_unstable();
    all.dedup();
    let (mut only_a, mut only_b, mut repeated) = (Vec::new(), Vec::new(), Vec::new());
    for d in all {
        match (count(&a, d), count(&b, d)) {
            (_, 0) => only_a.push(d),
            (0, _) => only_b.push(d),
            (x, y) if x != y => repeated.push(format!("{d} ({x} vs {y} times)")),
            _ => {}
        }
    }
    let mut parts = Vec::new();
    if !only_a.is_empty() {
        parts.push(format!("only in the first: {}", only_a.join(", ")));
    }
    if !only_b.is_empty() {
        parts.push(format!("only in the second: {}", only_b.join(", ")));
    }
    if !repeated.is_empty() {
        parts.push(format!(
            "listed a different number of times: {}",
            repeated.join(", ")
        ));
    }
    Err(format!("energy domains differ: {}", parts.join("; ")))
}
