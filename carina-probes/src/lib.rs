//! Energy probes for Carina, and the detection that picks them.
//!
//! - [`powercap`]: RAPL through `/sys/class/powercap` (root-only since Linux 5.10).
//! - [`perf_rapl`]: RAPL through perf_event's `power` PMU (`CAP_PERFMON` suffices).
//! - [`nvml`]: NVIDIA GPUs through NVML, loaded at run time (feature `nvml`).
//! - [`model`]: the estimation model for machines without counters, labelled `estimated`.
//!
//! [`detect`] returns the chosen probes and, for each source it did not choose, the reason and
//! the fix as the probe gave them ([`NotChosen`]: a typed [`UnavailableCause`], the words, and a
//! command or setting that never contradicts the words). A RAPL source that opens is also watched
//! for [`DEFAULT_LIVENESS_WAIT`] while the CPU runs: counters that do not advance (virtualised
//! PMUs that read 0) are dropped, and a source left without a live CPU counter is not used (see
//! [`detect_with`]).
//!
//! # Public API
//! - Detection: [`detect`], [`detect_in`], [`detect_with`], [`detect_with_counters`],
//!   [`detect_with_backends`] (over [`Backends`]: fake PMUs and powercap trees) return a
//!   [`Detection`] (probes, best first, and each [`NotChosen`] source with its kind, cause,
//!   reason and fix); [`Roots`] (every root injectable: `CARINA_POWERCAP_ROOT`, fake trees in
//!   tests, the NVML library, the process's [`Privileges`]), [`DEFAULT_LIVENESS_WAIT`],
//!   [`stalled_domains`], [`WithPue`].
//! - Hardware: [`powercap::PowercapProbe`] (over a [`powercap::SysFs`]),
//!   [`perf_rapl::PerfRaplProbe`] (over a [`perf_rapl::CounterSource`]), [`nvml::NvmlProbe`]
//!   (over a [`nvml::GpuBackend`]; the real one, `nvml::NvmlLibrary`, is Carina's own binding
//!   to `libnvidia-ml.so.1`, loaded at run time, with feature `nvml`). Sources are named by
//!   [`SourceId`]; a probe that cannot be used says why, and what fixes it, with
//!   [`ProbeError::Unavailable`].
//! - The counter rule every hardware probe shares: [`counter`] ([`counter::diff`] classifies an
//!   interval as plain, wrap, reset, resolved or ambiguous; [`counter::Counter`] follows one
//!   counter through failed reads and stalls and reports what it could not count exactly in the
//!   probe's `take_report`). The rule and its numbers are in `docs/COUNTERS.md`.
//! - The estimation model: [`model::ModelProbe`] (an [`EnergyProbe`] labelled `estimated`),
//!   [`model::PowerModel`], [`model::PartPower`], [`model::ModelPart`]; [`estimation_model`],
//!   [`estimation_model_with`] and [`ModelOptions`] pick its figures for this machine.
//! - Data: [`coefficients`] (CCF watts per vCPU and per GPU, NVIDIA GPUs, CPU TDPs: CSV files in
//!   `data/` with their sources, parsed once) and [`machine`] (CPU identification from
//!   `/proc/cpuinfo`, classification onto a coefficient row, memory size from `/proc/meminfo`).
//!
//! `/proc/stat` and process-tree reads go through `carina_runtime::procfs`, the one `/proc` reader
//! the core's attribution also uses; this crate parses only `/proc/cpuinfo` and `/proc/meminfo`
//! (CPU identification and memory size for the model), both in [`machine`].

#![deny(missing_docs)]

pub mod coefficients;
pub mod counter;
pub mod machine;
pub mod model;
pub mod nvml;
pub mod perf_rapl;
pub mod powercap;
mod privileges;
mod rapl;

pub use model::{ModelOptions, estimation_model, estimation_model_with};
pub use privileges::Privileges;

use carina_runtime::energy::{Unavailable, UnavailableCause};
use carina_runtime::record::SourceId;
use carina_runtime::{EnergyKind, EnergyProbe, ProbeError, procfs};
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long detection watches each RAPL counter, burning CPU on the detecting thread, before it
/// calls a counter that did not advance dead: 30 ms. Real counters update every millisecond or
/// so and a busy package draws watts, so they always move in that time.
pub const DEFAULT_LIVENESS_WAIT: Duration = Duration::from_millis(30);

/// The words of every "this counter does not count" reason.
const DID_NOT_ADVANCE: &str = "did not advance over";

/// The fix for a source that opened but whose counters did not advance (a virtualised PMU that
/// reads 0, an emulated powercap tree): no permission or driver makes such a counter count.
const NOT_COUNTING_FIX: &str = "none on this machine: the counter is exposed but does not count \
     (typical of VMs, e.g. Firecracker's energy-psys), so no permission or driver change helps; \
     the estimation model stands in (give it real figures with `model_watts`/`tdp_watts` in the \
     library), or measure on bare metal or a VM that passes RAPL through";

/// The outcome of [`detect`].
pub struct Detection {
    /// Probes to use, best first.
    pub probes: Vec<Box<dyn EnergyProbe>>,
    /// Sources considered and not used, with the cause, the reason and the fix.
    pub not_chosen: Vec<NotChosen>,
}

/// A source that was not used, and why, as its probe (or detection) told it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotChosen {
    /// Which source.
    pub id: SourceId,
    /// What the source would have given: a counter's figures are measured, the model's
    /// estimated. Set where the source is known, never guessed from its name.
    pub kind: EnergyKind,
    /// What kept it out; programs decide on this, never on the words.
    pub cause: UnavailableCause,
    /// Why, in words, naming the file, device or setting.
    pub reason: String,
    /// A command or setting that would make it usable, if one exists on this machine; never
    /// one that the reason contradicts.
    pub fix: Option<String>,
}

impl NotChosen {
    fn new(id: SourceId, kind: EnergyKind, why: Unavailable) -> NotChosen {
        NotChosen {
            id,
            kind,
            cause: why.cause,
            reason: why.reason,
            fix: why.fix,
        }
    }

    /// The `run_start.energy_sources` entry that lists it as unused, with its kind, reason and
    /// fix.
    pub fn into_source(self) -> carina_runtime::EnergySource {
        carina_runtime::EnergySource::not_used(self.id, self.kind, self.reason).with_fix(self.fix)
    }
}

/// Where detection looks; every root can point at a fake tree.
#[derive(Debug, Clone)]
pub struct Roots {
    /// `/proc`.
    pub proc: PathBuf,
    /// `/sys` (PCI devices for GPUs seen but not measurable).
    pub sys: PathBuf,
    /// `/sys/class/powercap`, or `CARINA_POWERCAP_ROOT`.
    pub powercap: PathBuf,
    /// `/sys/bus/event_source/devices/power`, the RAPL perf PMU.
    pub perf_pmu: PathBuf,
    /// Whether to try NVML (needs the `nvml` feature and an NVIDIA driver).
    pub nvml: bool,
    /// The NVML library to load (default [`nvml::DEFAULT_LIBRARY`], found through the dynamic
    /// loader's search path; a path loads that file).
    pub nvml_library: OsString,
    /// Who the process is, for the fixes of sources it may not read (default
    /// [`Privileges::of_this_process`]).
    pub privileges: Privileges,
    /// How long each RAPL source that opens is watched for counters that do not advance
    /// (default [`DEFAULT_LIVENESS_WAIT`]); the detecting thread burns CPU meanwhile.
    /// `Duration::ZERO` skips the check: every counter that opens is trusted.
    pub liveness_wait: Duration,
}

impl Default for Roots {
    fn default() -> Self {
        Roots {
            proc: procfs::default_root(),
            sys: PathBuf::from("/sys"),
            powercap: std::env::var_os(powercap::ROOT_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(powercap::DEFAULT_ROOT)),
            perf_pmu: PathBuf::from(perf_rapl::DEFAULT_ROOT),
            nvml: true,
            nvml_library: OsString::from(nvml::DEFAULT_LIBRARY),
            privileges: Privileges::of_this_process(),
            liveness_wait: DEFAULT_LIVENESS_WAIT,
        }
    }
}

/// Multiplies a measured source by the data centre's PUE, so facility overhead is counted the
/// same way for measurements as for estimates (the model applies PUE itself).
pub struct WithPue<P> {
    inner: P,
    pue: f64,
}

impl<P: EnergyProbe> WithPue<P> {
    /// Wraps `inner`; `pue` is a ratio of at least 1.
    pub fn new(inner: P, pue: f64) -> Self {
        WithPue { inner, pue }
    }
}

impl<P: EnergyProbe> EnergyProbe for WithPue<P> {
    fn describe(&self) -> carina_runtime::EnergySource {
        let mut d = self.inner.describe();
        d.source = format!("{} x PUE {}", d.source, self.pue);
        d.pue = Some(self.pue);
        d
    }
    fn read(
        &mut self,
        reading: &mut carina_runtime::energy::Reading,
    ) -> Result<(), carina_runtime::ProbeError> {
        let result = self.inner.read(reading);
        for e in reading.energy.iter_mut() {
            *e = *e * self.pue;
        }
        reading.band = reading.band.map(|(lo, hi)| (lo * self.pue, hi * self.pue));
        result
    }
    fn knows_users(&self) -> bool {
        self.inner.knows_users()
    }
    fn usage_share(&mut self, pids: &[u32], out: &mut [Option<carina_runtime::UsageShare>]) {
        self.inner.usage_share(pids, out)
    }
}

fn boxed<P: EnergyProbe + 'static>(p: P, pue: f64) -> Box<dyn EnergyProbe> {
    if pue == 1.0 {
        Box::new(p)
    } else {
        Box::new(WithPue::new(p, pue))
    }
}

/// Detects energy sources on this machine with the default estimation-model options.
pub fn detect() -> Detection {
    detect_with(&Roots::default(), &ModelOptions::default())
}

/// Detects energy sources under the given roots.
pub fn detect_in(roots: &Roots) -> Detection {
    detect_with(roots, &ModelOptions::default())
}

/// Detects energy sources: measured ones first, the estimation model where nothing measures the
/// CPU.
///
/// - CPU: RAPL through perf_event is preferred (no root needed with `CAP_PERFMON`), then RAPL
///   through powercap; when both open, their domains are cross-checked and the result noted.
/// - Liveness: every RAPL source that opens is read, the detecting thread burns CPU for
///   [`Roots::liveness_wait`], and it is read again. A domain whose counter did not advance is
///   dead: a virtualised PMU (Firecracker exposes `energy-psys` and it reads 0) or an emulated
///   zone. A source whose package/psys counters are all dead (or whose every counter is) is not
///   used: it is listed in [`Detection::not_chosen`] with the counters, the wait and what comes
///   instead, and the CPU falls back to the other RAPL route or the estimation model. Dead
///   counters of a source that still has a live package (or psys) counter are dropped from it,
///   which its source string says (`dram-0 (energy-ram) dropped: ...`).
/// - GPU: NVML when a driver is present.
/// - Otherwise the estimation model (CPU, memory, and GPUs seen on the PCI bus that NVML does not
///   measure), labelled `estimated`.
///
/// Every source not used is listed in [`Detection::not_chosen`] with its cause, the reason and
/// the fix its probe gave (see [`NotChosen`]). `model.pue` applies to measured sources too.
pub fn detect_with(roots: &Roots, model: &ModelOptions) -> Detection {
    detect_with_counters(roots, model, Box::new(perf_rapl::PerfEventSource))
}

/// [`detect_with`], with the perf RAPL counters opened through `counters` instead of
/// `perf_event_open(2)`: for tests (fake PMUs, counters that never advance) and other backends.
pub fn detect_with_counters(
    roots: &Roots,
    model: &ModelOptions,
    counters: Box<dyn perf_rapl::CounterSource + Send>,
) -> Detection {
    let backends = Backends {
        perf_counters: counters,
        ..Backends::default()
    };
    detect_with_backends(roots, model, backends)
}

/// What detection reads the RAPL sources through; [`Default`] is the real hardware.
pub struct Backends {
    /// Opens the perf RAPL counters (default [`perf_rapl::PerfEventSource`]).
    pub perf_counters: Box<dyn perf_rapl::CounterSource + Send>,
    /// Reads the powercap tree under [`Roots::powercap`] (default [`powercap::RealSysFs`]);
    /// tests give counters that follow the clock, so the liveness check needs no writer
    /// thread.
    pub powercap_fs: Box<dyn powercap::SysFs + Send>,
}

impl Default for Backends {
    fn default() -> Self {
        Backends {
            perf_counters: Box::new(perf_rapl::PerfEventSource),
            powercap_fs: Box::new(powercap::RealSysFs),
        }
    }
}

/// [`detect_with`], with both RAPL routes read through `backends`: for tests and other
/// backends.
pub fn detect_with_backends(roots: &Roots, model: &ModelOptions, backends: Backends) -> Detection {
    let Backends {
        perf_counters: counters,
        powercap_fs,
    } = backends;
    let pue = if model.pue.is_finite() && model.pue >= 1.0 {
        model.pue
    } else {
        1.0
    };
    let mut probes: Vec<Box<dyn EnergyProbe>> = Vec::new();
    let mut not_chosen = Vec::new();
    // Every source but the model is a hardware counter: measured.
    let mut reject = |id: SourceId, why: Unavailable| {
        not_chosen.push(NotChosen::new(id, EnergyKind::Measured, why))
    };

    let who = &roots.privileges;
    let mut perf =
        perf_rapl::PerfRaplProbe::open_as(&roots.perf_pmu, counters, who).map_err(Unusable::Failed);
    let mut powercap = powercap::PowercapProbe::open_as(&roots.powercap, powercap_fs, who)
        .map_err(Unusable::Failed);
    let wait = roots.liveness_wait;
    if !wait.is_zero() {
        // Both sources are watched over the same burn, so detection costs one wait, not two.
        let (has_perf, has_powercap) = (perf.is_ok(), powercap.is_ok());
        let mut watched: Vec<&mut dyn EnergyProbe> = Vec::new();
        if let Ok(p) = perf.as_mut() {
            watched.push(p);
        }
        if let Ok(p) = powercap.as_mut() {
            watched.push(p);
        }
        let mut results = watch(&mut watched, wait).into_iter();
        if has_perf {
            let r = results.next();
            if let (Ok(p), Some(r)) = (perf.as_mut(), r)
                && let Err(u) = vet(p, r, wait)
            {
                perf = Err(u);
            }
        }
        if has_powercap {
            let r = results.next();
            if let (Ok(p), Some(r)) = (powercap.as_mut(), r)
                && let Err(u) = vet(p, r, wait)
            {
                powercap = Err(u);
            }
        }
    }
    let cpu_measured = match (perf, powercap) {
        (Ok(perf), Ok(pc)) => {
            let note = match perf_rapl::cross_check(&perf.domains(), &pc.domains()) {
                Ok(()) => format!("same domains as {}, which is preferred", SourceId::RaplPerf),
                Err(diff) => format!(
                    "{} is preferred; the two disagree: {diff}",
                    SourceId::RaplPerf
                ),
            };
            reject(
                SourceId::RaplPowercap,
                Unavailable::new(UnavailableCause::Superseded, note),
            );
            probes.push(boxed(perf, pue));
            true
        }
        (Ok(perf), Err(e)) => {
            reject(SourceId::RaplPowercap, e.why(SourceId::RaplPerf.as_str()));
            probes.push(boxed(perf, pue));
            true
        }
        (Err(e), Ok(pc)) => {
            reject(SourceId::RaplPerf, e.why(SourceId::RaplPowercap.as_str()));
            probes.push(boxed(pc, pue));
            true
        }
        (Err(pe), Err(ce)) => {
            reject(SourceId::RaplPerf, pe.why("the estimation model"));
            reject(SourceId::RaplPowercap, ce.why("the estimation model"));
            false
        }
    };

    let gpu_measured = if roots.nvml {
        match nvml::NvmlProbe::open_as(&roots.nvml_library, &roots.sys, who) {
            Ok(p) => {
                probes.push(boxed(p, pue));
                true
            }
            Err(e) => {
                reject(SourceId::Nvml, e.into_unavailable());
                false
            }
        }
    } else {
        reject(
            SourceId::Nvml,
            Unavailable::new(
                UnavailableCause::Disabled,
                "not tried (disabled by the caller)",
            ),
        );
        false
    };

    if cpu_measured {
        not_chosen.push(NotChosen::new(
            SourceId::Model,
            EnergyKind::Estimated,
            Unavailable::new(
                UnavailableCause::Superseded,
                "not needed: RAPL measures the CPU (GPUs without NVML are not estimated \
                 alongside measurements)",
            ),
        ));
    } else {
        let mut opts = model.clone();
        // GPUs that NVML measures must not be estimated too.
        opts.gpu_tdp &= !gpu_measured;
        probes.insert(
            0,
            Box::new(model::estimation_model_with(&roots.proc, &roots.sys, &opts)),
        );
    }
    Detection { probes, not_chosen }
}

/// Why a RAPL source that was tried is not used.
enum Unusable {
    /// It did not open (or could not be read); the probe's error says why and how to fix it.
    Failed(ProbeError),
    /// It opened, but its counters did not advance: the reason, without what is used instead.
    Dead(String),
}

impl Unusable {
    /// The entry for [`NotChosen`]; `instead` is what measures (or estimates) the CPU.
    fn why(self, instead: &str) -> Unavailable {
        match self {
            Unusable::Failed(e) => e.into_unavailable(),
            Unusable::Dead(m) => Unavailable::new(
                UnavailableCause::NotCounting,
                format!("{m}; using {instead}"),
            )
            .with_fix(NOT_COUNTING_FIX),
        }
    }
}

/// What the liveness check needs from a RAPL probe beyond [`EnergyProbe`].
trait Watched: EnergyProbe {
    /// The counter behind each domain, in domain order.
    fn counter_labels(&self) -> Vec<String>;
    /// Removes domains from the probe, saying why in its source string.
    fn drop_domains(&mut self, names: &[String], why: &str);
    /// What a source whose counters do not advance usually is.
    fn diagnosis(&self) -> &'static str;
}

impl Watched for perf_rapl::PerfRaplProbe {
    fn counter_labels(&self) -> Vec<String> {
        perf_rapl::PerfRaplProbe::counter_labels(self)
    }
    fn drop_domains(&mut self, names: &[String], why: &str) {
        perf_rapl::PerfRaplProbe::drop_domains(self, names, why)
    }
    fn diagnosis(&self) -> &'static str {
        "a virtualised PMU that reads 0"
    }
}

impl Watched for powercap::PowercapProbe {
    fn counter_labels(&self) -> Vec<String> {
        powercap::PowercapProbe::counter_labels(self)
    }
    fn drop_domains(&mut self, names: &[String], why: &str) {
        powercap::PowercapProbe::drop_domains(self, names, why)
    }
    fn diagnosis(&self) -> &'static str {
        "an emulated or copied powercap tree whose energy_uj does not count"
    }
}

/// `30 ms`, `0.5 ms`.
fn wait_text(wait: Duration) -> String {
    let ms = wait.as_secs_f64() * 1e3;
    if ms.fract() == 0.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms} ms")
    }
}

/// Applies the liveness check's result to `p`: drops dead counters while a package (or psys)
/// counter lives, else says why the source is not used.
fn vet<P: Watched>(
    p: &mut P,
    stalled: Result<Vec<usize>, ProbeError>,
    wait: Duration,
) -> Result<(), Unusable> {
    let over = wait_text(wait);
    let stalled = stalled.map_err(|e| {
        let mut why = e.into_unavailable();
        why.reason = format!(
            "opened, but a read during the {over} liveness check failed: {}",
            why.reason
        );
        Unusable::Failed(why.into())
    })?;
    if stalled.is_empty() {
        return Ok(());
    }
    let names = p.describe().domains;
    let labels = p.counter_labels();
    let is_cpu = |n: &str| n.starts_with("package-") || n == "psys";
    let has_cpu = names.iter().any(|n| is_cpu(n));
    let live: Vec<usize> = (0..names.len()).filter(|i| !stalled.contains(i)).collect();
    let live_cpu = live.iter().any(|&i| is_cpu(&names[i]));
    let list = |idx: &[usize]| {
        idx.iter()
            .filter_map(|&i| labels.get(i).cloned())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if live.is_empty() || (has_cpu && !live_cpu) {
        let mut msg = format!(
            "{} {} {DID_NOT_ADVANCE} {over} while the CPU was running",
            if stalled.len() == 1 {
                "counter"
            } else {
                "counters"
            },
            list(&stalled),
        );
        if !live.is_empty() {
            msg.push_str(&format!(
                " ({} did, but without a package or psys counter the CPU is not measured)",
                list(&live)
            ));
        }
        msg.push_str(&format!(": {}", p.diagnosis()));
        return Err(Unusable::Dead(msg));
    }
    let dead: Vec<String> = stalled.iter().map(|&i| names[i].clone()).collect();
    p.drop_domains(
        &dead,
        &format!(
            "its counter {DID_NOT_ADVANCE} {over} while the CPU was running, so its energy is \
             not counted"
        ),
    );
    Ok(())
}

/// Keeps this thread's CPU busy for `wait`, so that a live package counter has something to
/// count (an idle package advances too on real hardware, a platform counter might not).
fn burn_cpu(wait: Duration) {
    let start = Instant::now();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    while start.elapsed() < wait {
        for i in 0..1024u64 {
            x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i));
        }
    }
    std::hint::black_box(x);
}

/// Reads every probe, burns CPU for `wait`, reads them again; for each probe, the indices (in
/// [`EnergyProbe::domains`] order) of the domains whose energy did not grow, or the read error.
fn watch(
    probes: &mut [&mut dyn EnergyProbe],
    wait: Duration,
) -> Vec<Result<Vec<usize>, ProbeError>> {
    let read = |p: &mut dyn EnergyProbe| {
        let mut r = carina_runtime::energy::Reading::new(p.describe().domains.len());
        p.read(&mut r).map(|()| r.energy)
    };
    let first: Vec<_> = probes.iter_mut().map(|p| read(&mut **p)).collect();
    burn_cpu(wait);
    probes
        .iter_mut()
        .zip(first)
        .map(|(p, before)| {
            let before = before?;
            let after = read(&mut **p)?;
            Ok((0..after.len())
                .filter(|&i| after[i].0 <= before.get(i).map_or(0.0, |b| b.0))
                .collect())
        })
        .collect()
}

/// Which domains of `probe` do not advance: reads it, keeps this thread's CPU busy for `wait`,
/// reads it again, and returns the indices (in the order of [`EnergyProbe::describe`]'s
/// domains) of the domains whose energy did not grow. Detection uses the same check on every
/// RAPL source ([`Roots::liveness_wait`]).
///
/// # Errors
///
/// The first read error of the probe.
pub fn stalled_domains(
    probe: &mut dyn EnergyProbe,
    wait: Duration,
) -> Result<Vec<usize>, ProbeError> {
    watch(&mut [probe], wait)
        .pop()
        .unwrap_or_else(|| Ok(Vec::new()))
}
