//! NVIDIA GPU energy through NVML (`libnvidia-ml`).
//!
//! [`NvmlProbe`] reports one domain per GPU (`gpu-0`, `gpu-1`, ... by NVML index), each the
//! cumulative energy of the whole device since the probe was opened. Every process on a GPU
//! is in its number, which is why the probe has [`ProbeScope::Host`].
//!
//! Two ways to get joules, chosen per device when the probe opens:
//!
//! * **Energy counter** (Volta and newer): NVML's total-energy counter in millijoules, read
//!   through the counter rule of [`crate::counter`] and summed in whole millijoules, so the
//!   result is as exact as the driver's counter. A counter that goes backwards (driver reload)
//!   is a reset: the value since the restart is counted and the figure is a lower bound. A
//!   counter that keeps its value for more than a second is stalled (flagged, a lower bound).
//!   A failed read keeps the baseline: the next good read counts the whole gap.
//! * **Power samples** (older GPUs): NVML's instantaneous power draw, integrated with the
//!   trapezoid rule between consecutive reads. Its accuracy depends on the sampling interval:
//!   power changes between samples are invisible.
//!
//! A device whose counter becomes unsupported mid-run, or fails for a second or more while its
//! power can be read, falls back to power samples from then on, with a warning and a basis change
//! (`integrated-power`) in the report; the time since the counter's last reading is bridged with
//! the power samples taken meanwhile.
//!
//! # Basis
//!
//! [`describe`](EnergyProbe::describe) says `counter` when at least one device starts on its
//! energy counter (or none could be read yet), `integrated-power` when every readable device
//! integrates power. Each device whose method differs from that, from the start or later, is
//! listed in the next [`take_report`](NvmlProbe::take_report)'s `basis`.
//!
//! # The run's share of a GPU
//!
//! In `process` scope a host-wide domain is normally reduced to the run's share of host CPU
//! time. That is wrong for a GPU: a training loop that keeps a GPU busy uses little CPU, and
//! unrelated CPU load on the host would take most of the GPU's energy away from it. The probe
//! therefore knows its users ([`EnergyProbe::knows_users`]) when the backend can list the
//! processes on a device, and [`EnergyProbe::usage_share`] gives, per GPU and sampling interval:
//!
//! * no process used the device in the interval: **0** (an idle GPU's energy is nobody's run;
//!   host scope keeps all of it);
//! * the run's processes were its only users: **1**;
//! * it had users and none is the run's: **0**, unless none of the processes listed on it
//!   existed in this pid namespace when listed (NVML reports host pids; inside a container
//!   they do not match): then the probe cannot tell, leaves the share unknown (the CPU share
//!   applies) and warns once;
//! * the run shares it with others: the run's part of the SM utilisation its users had over
//!   the interval (`nvmlDeviceGetProcessUtilization` samples since the previous call), or the
//!   run's part of the users by count when the driver has no such samples.
//!
//! The users of an interval are the union of the process lists (compute and graphics) taken at
//! each read in it and of the processes in the utilisation samples, so a short kernel between
//! two reads still counts when the driver sampled it. A process that starts and ends between
//! two reads without a utilisation sample is missed. A pid that was the run's and used a GPU
//! stays the run's after it exits (the caller's list no longer has it, NVML's last list may).
//! A device whose process list cannot be read leaves its share unknown, with one warning; one
//! without per-process utilisation falls back to the count, with one warning.
//!
//! The NVML calls go through the small [`GpuBackend`] trait, so that the arithmetic and the
//! failure handling are tested with fakes on machines without a GPU. The real backend,
//! `NvmlLibrary` (feature `nvml`), is Carina's own thin binding: it loads `libnvidia-ml.so.1`
//! (or the path given to [`NvmlProbe::open_as`]) at run time and resolves only the functions
//! used here, so a build needs neither a GPU nor a driver, and on a machine without the driver
//! [`NvmlProbe::open`] fails at once with the reason and, where one exists, the fix.
//!
//! # Files
//!
//! `mod.rs` the probe; `backend.rs` the [`GpuBackend`] trait, the real backend and the
//! explanations of why it could not be opened; `ffi.rs` the binding (signatures and layouts of
//! nvml.h, every `unsafe` with its reason); `share.rs` the usage-share rule; `check.rs` the
//! `nvml_check` report.

mod backend;
#[cfg(feature = "nvml")]
mod check;
#[cfg(feature = "nvml")]
mod ffi;
mod share;

#[cfg(feature = "nvml")]
pub use backend::NvmlLibrary;
pub use backend::{GpuBackend, GpuInfo, NOT_SUPPORTED, ProcessUtilization};
#[cfg(feature = "nvml")]
pub use check::{verify_library, verify_report};

use crate::Privileges;
use crate::counter::{Counter as EnergyCounter, Limits};
use carina_runtime::energy::{ProbeReport, Reading, UnavailableCause, UsageShare};
use carina_runtime::record::{Basis, DeviceInfo, SourceId};
use carina_runtime::{
    EnergyKind, EnergyProbe, EnergySource, Joules, ProbeError, ProbeScope, Watts,
};
use share::{Share, Users, now_us, share_of};
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The NVML library the driver installs, found through the dynamic loader's search path.
pub const DEFAULT_LIBRARY: &str = "libnvidia-ml.so.1";

/// At most this many warnings wait for [`EnergyProbe::take_report`]; a device that keeps
/// flapping for a long run must not grow memory without bound.
const MAX_PENDING_WARNINGS: usize = 64;

/// The counter rule's bound for a GPU board: about 1.5 times the largest board power on sale
/// (B300-class boards, about 1.4 kW). NVML's counter is 64-bit and never wraps, so the bound only
/// decides whether a counter that went back could have restarted from zero within the interval.
const GPU_MAX_PLAUSIBLE: Watts = Watts(2000.0);

/// A GPU energy counter that keeps its value for longer than this is stalled. The counter moves
/// far more often: about every 10 ms in a pynvml contributor's measurements
/// (gpuopenanalytics/pynvml pull request 18), and the board's power sensor behind it is sampled
/// at least every 100 ms on A100 and H100 (Yang et al., "Part-time power measurements", SC24).
/// An idle board still draws tens of watts, tens of millijoules per update. A second is ten
/// sensor periods: no live counter stays still that long, and it is ten times the default
/// sampling interval, so a dead counter is flagged about a second after it stops.
const GPU_STALL_AFTER: Duration = Duration::from_secs(1);

/// The counter's update step, as time at the reference power (see [`Limits::quantum`]).
const GPU_QUANTUM: Duration = Duration::from_millis(100);

/// A counter that fails for this long while the device's power can be read is given up for
/// power samples: a transient error (a driver busy for a few reads) recovers well within it and
/// keeps the exact counter; a persistent one would otherwise leave the device frozen.
const FALLBACK_AFTER: Duration = Duration::from_secs(1);

/// How one device's energy is followed.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    /// Neither the counter nor the power could be read yet; retried at each read.
    Pending,
    /// The energy counter, through [`Gpu::counter`].
    Counter,
    /// Trapezoid integration of power; the last good sample's time and watts.
    Power { at: Duration, watts: f64 },
}

/// Power samples taken while the counter fails, ready to bridge the time since its last good
/// reading if it is given up.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bridge {
    /// Time and watts of the latest sample.
    at: Duration,
    watts: f64,
    /// Energy from the counter's last good reading to `at`, J: the first sample held back to
    /// that reading, then the trapezoid between samples.
    joules: f64,
}

/// One GPU and its energy so far.
#[derive(Debug)]
struct Gpu {
    info: GpuInfo,
    mode: Mode,
    /// The energy counter once it gave a first value; kept after a fallback to power, for the
    /// energy it counted.
    counter: Option<EnergyCounter>,
    bridge: Option<Bridge>,
    /// Energy from power integration, in joules.
    integrated_j: f64,
    /// Whether the last read failed (pending or power-integrating devices; the counter keeps its
    /// own streak), so that a failure streak gives one warning, not one per sample.
    failing: bool,
    /// Reads that failed since a streak started.
    streak: u64,
    /// Who used the device in the current share interval.
    users: Users,
    /// The basis the session was last told for this device.
    reported: Basis,
}

impl Gpu {
    fn domain(&self) -> String {
        format!("gpu-{}", self.info.index)
    }

    fn label(&self) -> String {
        format!("gpu-{} ({})", self.info.index, self.info.name)
    }

    /// Cumulative joules; both parts only grow, so the sum never decreases.
    fn energy(&self) -> Joules {
        Joules(self.counter.as_ref().map_or(0.0, |c| c.joules().0) + self.integrated_j)
    }

    fn method(&self) -> &'static str {
        match self.mode {
            Mode::Counter => "measured by energy counter",
            Mode::Power { .. } => "integrated from power samples at the sampling interval",
            Mode::Pending => "not readable yet",
        }
    }

    /// The device's basis now; `None` while it could not be read yet.
    fn basis(&self) -> Option<Basis> {
        match self.mode {
            Mode::Counter => Some(Basis::Counter),
            Mode::Power { .. } => Some(Basis::IntegratedPower),
            Mode::Pending => None,
        }
    }

    /// A counter tracker for this device, with `mj` read at `at` as its baseline.
    fn new_counter(&self, mj: u64, at: Duration) -> EnergyCounter {
        let limits = Limits {
            range: 1u128 << 64,
            units_per_joule: 1e3,
            unit: "mJ",
            max_power: GPU_MAX_PLAUSIBLE,
            quantum: GPU_QUANTUM,
            stall_after: GPU_STALL_AFTER,
        };
        let what = format!("energy counter of {}", self.label());
        EnergyCounter::new(self.domain(), what, limits).with_first(mj, at)
    }
}

/// NVIDIA GPU energy, one domain per GPU; see the [module documentation](self).
pub struct NvmlProbe {
    backend: Box<dyn GpuBackend>,
    gpus: Vec<Gpu>,
    /// The basis [`describe`](EnergyProbe::describe) gives; see the module's "Basis".
    basis: Basis,
    /// Read errors, lower-bound flag and basis changes since the last report (warnings wait in
    /// `warnings`).
    report: ProbeReport,
    /// Time base of [`read`](EnergyProbe::read); [`NvmlProbe::read_at`] takes offsets from it.
    opened: Instant,
    warnings: Vec<String>,
    dropped_warnings: u64,
    failed_reads: u64,
    /// Whether reads also list each device's processes: set by the first
    /// [`usage_share`](EnergyProbe::usage_share), so host scope pays nothing for it.
    tracking_users: bool,
    /// Where the pid-namespace check looks for `<pid>` directories (`/proc`).
    proc_root: PathBuf,
    /// Pids that were the run's when a share was asked for, and used a GPU: they stay the
    /// run's after they exit, when the caller no longer lists them.
    known_ours: BTreeSet<u32>,
}

impl fmt::Debug for NvmlProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The backend holds a library handle with nothing useful to print.
        f.debug_struct("NvmlProbe")
            .field("gpus", &self.gpus)
            .field("failed_reads", &self.failed_reads)
            .finish_non_exhaustive()
    }
}

impl NvmlProbe {
    /// Opens NVML ([`DEFAULT_LIBRARY`]) and every GPU it lists, explaining failures for this
    /// process; see [`open_as`](Self::open_as).
    pub fn open() -> Result<NvmlProbe, ProbeError> {
        Self::open_as(
            DEFAULT_LIBRARY,
            Path::new("/sys"),
            &Privileges::of_this_process(),
        )
    }

    /// Opens the NVML library `library` (a file name the dynamic loader searches for, or a
    /// path) and every GPU it lists; failures are explained for a process with `privileges`.
    ///
    /// # Errors
    ///
    /// [`ProbeError::Unavailable`] saying why, with a fix where one exists: the library cannot
    /// be loaded ([`UnavailableCause::Absent`]; the fix to install the driver only when
    /// `<sys_root>/bus/pci/devices` shows an NVIDIA GPU), the kernel driver is not running
    /// (`Absent`), this process may not use the devices (`Permission`), the library lacks a
    /// function the probe needs (`Outdated`), or there is no GPU (`Absent`, no fix). Without
    /// the `nvml` feature it always fails, with [`UnavailableCause::Disabled`].
    pub fn open_as(
        library: impl AsRef<OsStr>,
        sys_root: &Path,
        privileges: &Privileges,
    ) -> Result<NvmlProbe, ProbeError> {
        #[cfg(feature = "nvml")]
        {
            let backend = NvmlLibrary::load_as(library, sys_root, privileges)?;
            Self::with_backend(Box::new(backend))
        }
        #[cfg(not(feature = "nvml"))]
        {
            let _ = (library, sys_root, privileges);
            Err(carina_runtime::energy::Unavailable::new(
                UnavailableCause::Disabled,
                "built without the `nvml` feature",
            )
            .with_fix("rebuild with the `nvml` feature (on by default in `carina`)")
            .into())
        }
    }

    /// A probe over any backend; time zero is now, and each device's first sample is taken
    /// here.
    ///
    /// Each device uses its energy counter when it has one and power samples otherwise. A
    /// device that cannot be read at all yet is kept, with a warning, and retried at each read.
    pub fn with_backend(mut backend: Box<dyn GpuBackend>) -> Result<NvmlProbe, ProbeError> {
        let mut devices = backend.devices().map_err(|e| {
            ProbeError::unavailable(
                UnavailableCause::Failed,
                format!("NVML could not list the GPUs: {e}"),
            )
        })?;
        if devices.is_empty() {
            return Err(ProbeError::unavailable(
                UnavailableCause::Absent,
                "NVML found no GPU",
            ));
        }
        // Domains follow NVML's numbering, whatever order the backend used.
        devices.sort_by_key(|d| d.index);
        // Time zero is just before the first samples, which are taken at `Duration::ZERO`.
        let opened = Instant::now();
        let since_us = now_us();
        let mut warnings = Vec::new();
        let mut failed_reads = 0;
        let gpus: Vec<Gpu> = devices
            .into_iter()
            .map(|info| {
                let mut gpu = Gpu {
                    info,
                    mode: Mode::Pending,
                    counter: None,
                    bridge: None,
                    integrated_j: 0.0,
                    failing: false,
                    streak: 0,
                    users: Users::new(since_us),
                    reported: Basis::Counter,
                };
                match start(backend.as_mut(), &gpu, Duration::ZERO) {
                    Ok((mode, counter, note)) => {
                        gpu.mode = mode;
                        gpu.counter = counter;
                        warnings.extend(note.map(|n| format!("{}: {n}", gpu.label())));
                    }
                    Err(e) => {
                        gpu.failing = true;
                        gpu.streak = 1;
                        failed_reads += 1;
                        warnings.push(format!(
                            "{}: cannot be read ({e}); it counts 0 J until a read succeeds",
                            gpu.label()
                        ));
                    }
                }
                gpu
            })
            .collect();
        // The rule of the module's "Basis": counter unless every readable device integrates.
        let on_counter = gpus.iter().any(|g| g.mode == Mode::Counter);
        let integrating = gpus.iter().any(|g| matches!(g.mode, Mode::Power { .. }));
        let basis = if integrating && !on_counter {
            Basis::IntegratedPower
        } else {
            Basis::Counter
        };
        let gpus = gpus
            .into_iter()
            .map(|mut g| {
                g.reported = basis;
                g
            })
            .collect();
        let mut probe = NvmlProbe {
            backend,
            gpus,
            basis,
            report: ProbeReport {
                read_errors: failed_reads,
                lower_bound: failed_reads > 0,
                ..ProbeReport::default()
            },
            opened,
            warnings: Vec::new(),
            dropped_warnings: 0,
            failed_reads,
            tracking_users: false,
            proc_root: PathBuf::from("/proc"),
            known_ours: BTreeSet::new(),
        };
        for w in warnings {
            probe.warn(w);
        }
        Ok(probe)
    }

    /// Reads every device as of `elapsed` since the probe was opened, and writes each
    /// cumulative energy into `out` (in [`domains`](Self::domains) order).
    ///
    /// [`read`](EnergyProbe::read) calls this with the monotonic clock; tests pass chosen
    /// durations so the counter rule and the power integration are deterministic. An `elapsed`
    /// earlier than the previous one counts as no time.
    ///
    /// A device whose read fails keeps its last value and adds a warning (one per failure
    /// streak) and a read error to the report; the others are read as usual. It never returns
    /// an error: a GPU that stops answering must not end the measurement of the others.
    pub fn read_at(&mut self, elapsed: Duration, out: &mut [Joules]) -> Result<(), ProbeError> {
        for i in 0..self.gpus.len() {
            let result = self.step(i, elapsed);
            let gpu = &mut self.gpus[i];
            match result {
                Ok(note) => {
                    let recovered = gpu.failing.then(|| {
                        format!(
                            "{}: readable again after {} failed read(s)",
                            gpu.label(),
                            gpu.streak
                        )
                    });
                    gpu.failing = false;
                    gpu.streak = 0;
                    let label = gpu.label();
                    if let Some(r) = recovered {
                        self.warn(r);
                    }
                    if let Some(n) = note {
                        self.warn(format!("{label}: {n}"));
                    }
                }
                Err(e) => {
                    self.failed_reads += 1;
                    self.report.read_errors += 1;
                    // Its energy is frozen until it answers again.
                    self.report.missing = true;
                    gpu.streak += 1;
                    if !gpu.failing {
                        gpu.failing = true;
                        let msg = format!(
                            "{}: read failed ({e}); keeping its last value {:.3} J until it answers again",
                            gpu.label(),
                            gpu.energy().0
                        );
                        self.warn(msg);
                    }
                }
            }
        }
        if self.tracking_users {
            for i in 0..self.gpus.len() {
                self.list_users(i);
            }
        }
        for (o, gpu) in out.iter_mut().zip(&self.gpus) {
            *o = gpu.energy();
        }
        Ok(())
    }

    /// Where the pid-namespace check of [`usage_share`](EnergyProbe::usage_share) looks for
    /// `<pid>` directories; `/proc` unless changed (tests).
    pub fn with_proc_root(mut self, root: impl Into<PathBuf>) -> Self {
        self.proc_root = root.into();
        self
    }

    /// Adds the device's current compute and graphics processes to the interval's users.
    fn list_users(&mut self, i: usize) {
        let index = self.gpus[i].info.index;
        let compute = self.backend.compute_processes(index);
        let graphics = self.backend.graphics_processes(index);
        let gpu = &mut self.gpus[i];
        let label = gpu.label();
        let users = &mut gpu.users;
        users.listed = true;
        let root = &self.proc_root;
        let add = |users: &mut Users, pids: Vec<u32>| {
            // Checked now, while the processes run: at the share they may have exited.
            if !pids.is_empty() {
                users.listed_any = true;
                if !users.listed_here {
                    users.listed_here = pids.iter().any(|p| root.join(p.to_string()).exists());
                }
            }
            users.seen.extend(pids);
        };
        let mut notes = Vec::new();
        match compute {
            Ok(pids) => {
                users.list_ok = true;
                add(users, pids);
            }
            Err(e) if !users.warned_list => {
                users.warned_list = true;
                notes.push(format!(
                    "{label}: cannot list the processes using it ({e}); in process scope its energy \
                     is shared by CPU time instead of by GPU use"
                ));
            }
            Err(_) => {}
        }
        match graphics {
            Ok(pids) => add(users, pids),
            Err(e) if !users.warned_graphics => {
                users.warned_graphics = true;
                notes.push(format!(
                    "{label}: cannot list its graphics processes ({e}); only compute processes \
                     count as its users"
                ));
            }
            Err(_) => {}
        }
        for n in notes {
            self.warn(n);
        }
    }

    /// Adds the utilisation samples the driver took since the last ones to the interval.
    fn sample_users(&mut self, i: usize) {
        let index = self.gpus[i].info.index;
        let since = self.gpus[i].users.since_us;
        let result = self.backend.process_utilization(index, since);
        let gpu = &mut self.gpus[i];
        let users = &mut gpu.users;
        match result {
            Ok(samples) => {
                let util = users.util.get_or_insert_with(BTreeMap::new);
                for s in samples {
                    users.since_us = users.since_us.max(s.timestamp_us);
                    if s.sm_util > 0 {
                        *util.entry(s.pid).or_insert(0) += u64::from(s.sm_util);
                        // Busy in the interval, even if it was never in a process list.
                        users.seen.insert(s.pid);
                    }
                }
            }
            Err(e) => {
                users.util = None;
                if !users.warned_util {
                    users.warned_util = true;
                    let msg = format!(
                        "{}: no per-process utilisation ({e}); when the run shares it with other \
                         processes, its share is by count of processes",
                        gpu.label()
                    );
                    self.warn(msg);
                }
            }
        }
    }

    /// Warnings recorded since the last call (failed reads, recoveries, counter resets), oldest
    /// first, with a count of those dropped beyond the cap.
    fn take_warnings(&mut self) -> Vec<String> {
        let mut w = std::mem::take(&mut self.warnings);
        if self.dropped_warnings > 0 {
            w.push(format!(
                "{} further NVML warning(s) dropped",
                self.dropped_warnings
            ));
            self.dropped_warnings = 0;
        }
        w
    }

    /// Device reads that failed since the probe opened, all devices together.
    pub fn failed_reads(&self) -> u64 {
        self.failed_reads
    }

    fn warn(&mut self, msg: String) {
        if self.warnings.len() < MAX_PENDING_WARNINGS {
            self.warnings.push(msg);
        } else {
            self.dropped_warnings += 1;
        }
    }

    /// Moves what a counter tracker put in `rep` into the probe's report and warnings.
    fn absorb(&mut self, rep: ProbeReport) {
        self.report.read_errors += rep.read_errors;
        self.report.lower_bound |= rep.lower_bound;
        self.report.missing |= rep.missing;
        for w in rep.warnings {
            self.warn(w);
        }
    }

    /// Advances one device; `Ok` carries an optional note. Failures of the energy counter are
    /// handled here (the counter keeps its baseline, power samples wait to bridge the gap, a
    /// persistent failure falls back to them) and are not errors; `Err` is a device that could
    /// not be read at all.
    fn step(&mut self, i: usize, elapsed: Duration) -> Result<Option<String>, String> {
        let index = self.gpus[i].info.index;
        match self.gpus[i].mode {
            Mode::Pending => {
                // Energy before the first good sample is unknown; it starts from here.
                let (mode, counter, note) = start(self.backend.as_mut(), &self.gpus[i], elapsed)?;
                let gpu = &mut self.gpus[i];
                gpu.mode = mode;
                gpu.counter = counter;
                Ok(note)
            }
            Mode::Counter => {
                let mut rep = ProbeReport::default();
                let outcome = match self.backend.total_energy_mj(index) {
                    Ok(Some(mj)) => {
                        let gpu = &mut self.gpus[i];
                        match gpu.counter.as_mut() {
                            Some(c) => {
                                c.update(mj, elapsed, &mut rep);
                            }
                            None => gpu.counter = Some(gpu.new_counter(mj, elapsed)),
                        }
                        gpu.bridge = None;
                        Ok(None)
                    }
                    Ok(None) => self.fall_back(
                        i,
                        elapsed,
                        "its energy counter is no longer supported by the driver".to_owned(),
                    ),
                    Err(e) => {
                        self.failed_reads += 1;
                        let since = {
                            let c = self.gpus[i].counter.as_mut();
                            c.and_then(|c| {
                                c.failed(elapsed, &e, &mut rep);
                                c.last_read_at()
                            })
                        };
                        // Power samples taken now bridge the gap if the counter is given up.
                        if let (Ok(mw), Some(since)) = (self.backend.power_mw(index), since) {
                            let gpu = &mut self.gpus[i];
                            let w = f64::from(mw) / 1000.0;
                            gpu.bridge = Some(match gpu.bridge {
                                None => Bridge {
                                    at: elapsed.max(since),
                                    watts: w,
                                    joules: w * elapsed.saturating_sub(since).as_secs_f64(),
                                },
                                Some(b) => Bridge {
                                    at: b.at.max(elapsed),
                                    watts: w,
                                    joules: b.joules
                                        + (b.watts + w) / 2.0
                                            * elapsed.saturating_sub(b.at).as_secs_f64(),
                                },
                            });
                        }
                        match since {
                            Some(t)
                                if self.gpus[i].bridge.is_some()
                                    && elapsed.saturating_sub(t) >= FALLBACK_AFTER =>
                            {
                                self.fall_back(
                                    i,
                                    elapsed,
                                    format!(
                                        "its energy counter has failed since its last reading at \
                                         {:.3} s ({e})",
                                        t.as_secs_f64()
                                    ),
                                )
                            }
                            _ => Ok(None),
                        }
                    }
                };
                self.absorb(rep);
                outcome
            }
            Mode::Power { at, watts } => {
                let now_w = f64::from(self.backend.power_mw(index)?) / 1000.0;
                let gpu = &mut self.gpus[i];
                let dt = elapsed.saturating_sub(at);
                // Trapezoid: the power is taken to change linearly between samples. After
                // failed reads, this bridges the gap between the last two good samples.
                gpu.integrated_j += (watts + now_w) / 2.0 * dt.as_secs_f64();
                gpu.mode = Mode::Power {
                    at: at.max(elapsed),
                    watts: now_w,
                };
                Ok(None)
            }
        }
    }

    /// Gives up device `i`'s energy counter at `at` for power samples, bridging the time since
    /// its last good reading with the samples taken meanwhile (or, with none, with the power now
    /// held back to that reading). `Err` when the power cannot be read either: the counter stays,
    /// and the next read tries again.
    fn fall_back(&mut self, i: usize, at: Duration, why: String) -> Result<Option<String>, String> {
        let index = self.gpus[i].info.index;
        let since = self.gpus[i]
            .counter
            .as_ref()
            .and_then(|c| c.last_read_at())
            .unwrap_or(at);
        let (watts, bridged) = match self.gpus[i].bridge {
            // Sampled in this very read, while the counter failed.
            Some(b) if b.at == at => (b.watts, b.joules),
            bridge => {
                let w = f64::from(
                    self.backend
                        .power_mw(index)
                        .map_err(|e| format!("{why}, and its power cannot be read: {e}"))?,
                ) / 1000.0;
                let bridged = match bridge {
                    Some(b) => {
                        b.joules + (b.watts + w) / 2.0 * at.saturating_sub(b.at).as_secs_f64()
                    }
                    None => w * at.saturating_sub(since).as_secs_f64(),
                };
                (w, bridged)
            }
        };
        let gpu = &mut self.gpus[i];
        gpu.integrated_j += bridged;
        gpu.bridge = None;
        gpu.mode = Mode::Power { at, watts };
        Ok(Some(format!(
            "energy counter given up at {:.3} s: {why}; integrating power samples from now on \
             (basis integrated-power); the {:.3} s since its last reading are bridged with power \
             samples ({bridged:.3} J)",
            at.as_secs_f64(),
            at.saturating_sub(since).as_secs_f64()
        )))
    }
}

/// First sample of a device: the counter if it has one, else power. `Ok` carries a note when
/// the choice deserves a warning.
fn start(
    backend: &mut dyn GpuBackend,
    gpu: &Gpu,
    elapsed: Duration,
) -> Result<(Mode, Option<EnergyCounter>, Option<String>), String> {
    let index = gpu.info.index;
    let power = |backend: &mut dyn GpuBackend| {
        backend.power_mw(index).map(|mw| Mode::Power {
            at: elapsed,
            watts: f64::from(mw) / 1000.0,
        })
    };
    match backend.total_energy_mj(index) {
        Ok(Some(mj)) => Ok((Mode::Counter, Some(gpu.new_counter(mj, elapsed)), None)),
        Ok(None) => power(backend)
            .map(|m| (m, None, None))
            .map_err(|e| format!("no energy counter, and power reading failed: {e}")),
        // Whether the device has a counter is unknown; power samples are a usable fallback.
        Err(ce) => match power(backend) {
            Ok(m) => Ok((
                m,
                None,
                Some(format!(
                    "energy counter read failed ({ce}); integrating power samples instead"
                )),
            )),
            Err(pe) => Err(format!("energy counter: {ce}; power: {pe}")),
        },
    }
}

impl NvmlProbe {
    /// Whole machine or this process (as [`EnergyProbe::describe`] says).
    pub fn scope(&self) -> ProbeScope {
        ProbeScope::Host
    }

    /// The domains, in the order reads fill them (as [`EnergyProbe::describe`] lists them).
    pub fn domains(&self) -> Vec<String> {
        self.gpus.iter().map(Gpu::domain).collect()
    }

    /// What the probe met since the last call (also delivered with every [`EnergyProbe::read`]).
    pub fn take_report(&mut self) -> ProbeReport {
        let mut report = std::mem::take(&mut self.report);
        report.warnings = self.take_warnings();
        for (i, gpu) in self.gpus.iter_mut().enumerate() {
            if let Some(b) = gpu.basis()
                && b != gpu.reported
            {
                gpu.reported = b;
                report.basis.push((i, b));
            }
        }
        report
    }
}

impl EnergyProbe for NvmlProbe {
    fn describe(&self) -> EnergySource {
        let parts: Vec<String> = self
            .gpus
            .iter()
            .map(|g| format!("{} {} ({})", g.domain(), g.info.name, g.method()))
            .collect();
        let share = if self.backend.knows_processes() {
            "; in process scope the run gets each GPU's energy by its processes' GPU use"
        } else {
            ""
        };
        let mut src = EnergySource::new(
            SourceId::Nvml,
            EnergyKind::Measured,
            format!(
                "NVML (libnvidia-ml): {}; whole-GPU energy, including every process on the device{share}",
                parts.join(", ")
            ),
        )
        .with_basis(self.basis);
        src.domains = self.domains();
        src.scope = carina_runtime::ProbeScope::Host;
        src.devices = self
            .gpus
            .iter()
            .map(|g| {
                DeviceInfo::new(
                    g.info.index,
                    g.info.name.clone(),
                    (!g.info.uuid.is_empty()).then(|| g.info.uuid.clone()),
                )
            })
            .collect();
        src
    }

    fn knows_users(&self) -> bool {
        self.backend.knows_processes()
    }

    /// The run's share of each GPU over the interval since the previous call; see the
    /// [module documentation](self) for the rule. The first call starts listing each device's
    /// processes at every read; if no read listed them since the previous call, they are
    /// listed here.
    fn usage_share(&mut self, pids: &[u32], out: &mut [Option<UsageShare>]) {
        if !self.backend.knows_processes() {
            return;
        }
        self.tracking_users = true;
        for i in 0..self.gpus.len() {
            if !self.gpus[i].users.listed {
                self.list_users(i);
            }
            self.sample_users(i);
            let gpu = &mut self.gpus[i];
            let users = &gpu.users;
            let known = &self.known_ours;
            let is_ours = |p: u32| pids.binary_search(&p).is_ok() || known.contains(&p);
            let share = if users.list_ok {
                let foreign = users.listed_any && !users.listed_here;
                match share_of(&users.seen, users.util.as_ref(), is_ours, foreign) {
                    Share::Known(s) => Some(s),
                    Share::OtherNamespace => {
                        let note = (!users.warned_namespace).then(|| {
                            format!(
                                "{}: used by pid(s) {:?}, none of which is a process in this pid \
                                 namespace (a container?); NVML reports host pids, so the run's \
                                 share of it cannot be told and its CPU share applies",
                                gpu.label(),
                                users.seen.iter().take(8).collect::<Vec<_>>()
                            )
                        });
                        gpu.users.warned_namespace = true;
                        if let Some(n) = note {
                            self.warn(n);
                        }
                        None
                    }
                }
            } else {
                None
            };
            if let Some(o) = out.get_mut(i) {
                *o = share;
            }
            let users = &mut self.gpus[i].users;
            self.known_ours
                .extend(users.seen.iter().filter(|p| pids.binary_search(p).is_ok()));
            users.reset();
        }
    }

    fn read(&mut self, reading: &mut Reading) -> Result<(), ProbeError> {
        let elapsed = self.opened.elapsed();
        let result = self.read_at(elapsed, &mut reading.energy);
        reading.report.merge(self.take_report());
        result
    }
}
