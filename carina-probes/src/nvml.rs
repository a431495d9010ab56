//! NVIDIA GPU energy through NVML (`libnvidia-ml`).
//!
//! [`NvmlProbe`] reports one domain per GPU (`gpu-0`, `gpu-1`, ... by NVML index), each the
//! cumulative energy of the whole device since the probe was opened. Every process on a GPU
//! is in its number, which is why the probe has [`ProbeScope::Host`].
//!
//! Two ways to get joules, chosen per device when the probe opens:
//!
//! * **Energy counter** (Volta and newer): NVML's total-energy counter in millijoules. The
//!   probe sums its deltas in whole millijoules, so the result is as exact as the driver's
//!   counter. A counter that goes backwards (driver reload) counts as a zero delta.
//! * **Power samples** (older GPUs): NVML's instantaneous power draw, integrated with the
//!   trapezoid rule between consecutive reads. Its accuracy depends on the sampling interval:
//!   power changes between samples are invisible.
//!
//! The NVML calls go through the small [`GpuBackend`] trait, so that the arithmetic and the
//! failure handling are tested with fakes on machines without a GPU. The real backend (feature
//! `nvml`) loads `libnvidia-ml.so.1` at run time: a build needs neither a GPU nor a driver, and
//! on a machine without the driver [`NvmlProbe::open`] fails at once with the reason.

use carina_core::record::DeviceInfo;
use carina_core::{EnergyKind, EnergyProbe, EnergySource, Joules, ProbeError, ProbeScope};
use std::fmt;
use std::time::{Duration, Instant};

/// One GPU as the driver lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuInfo {
    /// NVML index (not affected by `CUDA_VISIBLE_DEVICES`).
    pub index: u32,
    /// Product name, e.g. `NVIDIA H100 80GB HBM3`.
    pub name: String,
    /// The GPU's UUID (`GPU-...`); empty if the driver gave none.
    pub uuid: String,
}

/// The few NVML queries the probe needs.
///
/// The real implementation wraps `nvml-wrapper`; tests implement it with scripted values.
/// Errors are plain strings because the probe only reports them, it never branches on them.
pub trait GpuBackend: Send {
    /// The GPUs present, in any order.
    fn devices(&self) -> Result<Vec<GpuInfo>, String>;
    /// The device's total energy counter in millijoules since the driver loaded, or `None`
    /// when the device has no such counter (GPUs older than Volta).
    fn total_energy_mj(&mut self, index: u32) -> Result<Option<u64>, String>;
    /// The device's current power draw in milliwatts.
    fn power_mw(&mut self, index: u32) -> Result<u32, String>;
}

/// At most this many warnings wait for [`NvmlProbe::take_warnings`]; a device that keeps
/// flapping for a long run must not grow memory without bound.
const MAX_PENDING_WARNINGS: usize = 64;

/// How one device's energy is followed.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Tracker {
    /// Neither the counter nor the power could be read yet; retried at each read.
    Pending,
    /// Deltas of the energy counter; `last_mj` is the last good reading.
    Counter { last_mj: u64 },
    /// Trapezoid integration of power; the last good sample's time and watts.
    Power { at: Duration, watts: f64 },
}

/// One GPU and its energy so far.
#[derive(Debug)]
struct Gpu {
    info: GpuInfo,
    tracker: Tracker,
    /// Energy from counter deltas, kept in integer millijoules so sums stay exact.
    counted_mj: u64,
    /// Energy from power integration, in joules.
    integrated_j: f64,
    /// Whether the last read failed, so that a failure streak gives one warning, not one per
    /// sample.
    failing: bool,
    /// Reads that failed since a streak started.
    streak: u64,
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
        Joules(self.counted_mj as f64 / 1000.0 + self.integrated_j)
    }

    fn method(&self) -> &'static str {
        match self.tracker {
            Tracker::Counter { .. } => "measured by energy counter",
            Tracker::Power { .. } => "integrated from power samples at the sampling interval",
            Tracker::Pending => "not readable yet",
        }
    }
}

/// NVIDIA GPU energy, one domain per GPU; see the [module documentation](self).
pub struct NvmlProbe {
    backend: Box<dyn GpuBackend>,
    gpus: Vec<Gpu>,
    /// Time base of [`read`](EnergyProbe::read); [`NvmlProbe::read_at`] takes offsets from it.
    opened: Instant,
    warnings: Vec<String>,
    dropped_warnings: u64,
    failed_reads: u64,
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
    /// Opens NVML and every GPU it lists.
    ///
    /// Fails with [`ProbeError::Unavailable`] saying why when the library cannot be loaded (no
    /// NVIDIA driver), the driver is not running, or there is no GPU. Without the `nvml`
    /// feature it always fails that way.
    pub fn open() -> Result<NvmlProbe, ProbeError> {
        #[cfg(feature = "nvml")]
        {
            Self::with_backend(Box::new(real::NvmlBackend::init()?))
        }
        #[cfg(not(feature = "nvml"))]
        {
            Err(ProbeError::Unavailable(
                "built without the `nvml` feature".to_owned(),
            ))
        }
    }

    /// A probe over any backend; time zero is now, and each device's first sample is taken
    /// here.
    ///
    /// Each device uses its energy counter when it has one and power samples otherwise. A
    /// device that cannot be read at all yet is kept, with a warning, and retried at each read.
    pub fn with_backend(mut backend: Box<dyn GpuBackend>) -> Result<NvmlProbe, ProbeError> {
        let mut devices = backend
            .devices()
            .map_err(|e| ProbeError::Unavailable(format!("NVML could not list the GPUs: {e}")))?;
        if devices.is_empty() {
            return Err(ProbeError::Unavailable("NVML found no GPU".to_owned()));
        }
        // Domains follow NVML's numbering, whatever order the backend used.
        devices.sort_by_key(|d| d.index);
        // Time zero is just before the first samples, which are taken at `Duration::ZERO`.
        let opened = Instant::now();
        let mut warnings = Vec::new();
        let mut failed_reads = 0;
        let gpus = devices
            .into_iter()
            .map(|info| {
                let mut gpu = Gpu {
                    info,
                    tracker: Tracker::Pending,
                    counted_mj: 0,
                    integrated_j: 0.0,
                    failing: false,
                    streak: 0,
                };
                match start(backend.as_mut(), gpu.info.index, Duration::ZERO) {
                    Ok((tracker, note)) => {
                        gpu.tracker = tracker;
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
        let mut probe = NvmlProbe {
            backend,
            gpus,
            opened,
            warnings: Vec::new(),
            dropped_warnings: 0,
            failed_reads,
        };
        for w in warnings {
            probe.warn(w);
        }
        Ok(probe)
    }

    /// Reads every device as of `elapsed` since the probe was opened, and writes each
    /// cumulative energy into `out` (in [`domains`](EnergyProbe::domains) order).
    ///
    /// [`read`](EnergyProbe::read) calls this with the monotonic clock; tests pass chosen
    /// durations so the power integration is deterministic. `elapsed` is only used by devices
    /// integrating power; an `elapsed` earlier than the previous one counts as no time.
    ///
    /// A device whose read fails keeps its last value and adds a warning (one per failure
    /// streak); the others are read as usual. It never returns an error: a GPU that stops
    /// answering must not end the measurement of the others.
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
        for (o, gpu) in out.iter_mut().zip(&self.gpus) {
            *o = gpu.energy();
        }
        Ok(())
    }

    /// Warnings recorded since the last call (failed reads, recoveries, counter resets), oldest
    /// first. The caller decides where they go (run file, log).
    pub fn take_warnings(&mut self) -> Vec<String> {
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

    /// Advances one device; `Ok` carries an optional note (e.g. a counter reset).
    fn step(&mut self, i: usize, elapsed: Duration) -> Result<Option<String>, String> {
        let gpu = &mut self.gpus[i];
        let index = gpu.info.index;
        match gpu.tracker {
            Tracker::Pending => {
                // Energy before the first good sample is unknown; it starts from here.
                let (tracker, note) = start(self.backend.as_mut(), index, elapsed)?;
                gpu.tracker = tracker;
                Ok(note)
            }
            Tracker::Counter { last_mj } => {
                let now_mj = self.backend.total_energy_mj(index)?.ok_or_else(|| {
                    "the energy counter is no longer supported by the driver".to_owned()
                })?;
                gpu.tracker = Tracker::Counter { last_mj: now_mj };
                if now_mj >= last_mj {
                    gpu.counted_mj = gpu.counted_mj.saturating_add(now_mj - last_mj);
                    Ok(None)
                } else {
                    // The driver reloaded and restarted its counter: the energy of this
                    // interval is unknown, and zero is the only value that keeps the total
                    // from decreasing or inventing energy.
                    Ok(Some(format!(
                        "energy counter went back from {last_mj} mJ to {now_mj} mJ (driver reload?); \
                         counted 0 J for that interval"
                    )))
                }
            }
            Tracker::Power { at, watts } => {
                let now_w = f64::from(self.backend.power_mw(index)?) / 1000.0;
                let dt = elapsed.saturating_sub(at);
                // Trapezoid: the power is taken to change linearly between samples. After
                // failed reads, this bridges the gap between the last two good samples.
                gpu.integrated_j += (watts + now_w) / 2.0 * dt.as_secs_f64();
                gpu.tracker = Tracker::Power {
                    at: at.max(elapsed),
                    watts: now_w,
                };
                Ok(None)
            }
        }
    }
}

/// First sample of a device: the counter if it has one, else power. `Ok` carries a note when
/// the choice deserves a warning.
fn start(
    backend: &mut dyn GpuBackend,
    index: u32,
    elapsed: Duration,
) -> Result<(Tracker, Option<String>), String> {
    let power = |backend: &mut dyn GpuBackend| {
        backend.power_mw(index).map(|mw| Tracker::Power {
            at: elapsed,
            watts: f64::from(mw) / 1000.0,
        })
    };
    match backend.total_energy_mj(index) {
        Ok(Some(mj)) => Ok((Tracker::Counter { last_mj: mj }, None)),
        Ok(None) => power(backend)
            .map(|t| (t, None))
            .map_err(|e| format!("no energy counter, and power reading failed: {e}")),
        // Whether the device has a counter is unknown; power samples are a usable fallback.
        Err(ce) => match power(backend) {
            Ok(t) => Ok((
                t,
                Some(format!(
                    "energy counter read failed ({ce}); integrating power samples instead"
                )),
            )),
            Err(pe) => Err(format!("energy counter: {ce}; power: {pe}")),
        },
    }
}

impl EnergyProbe for NvmlProbe {
    fn describe(&self) -> EnergySource {
        let parts: Vec<String> = self
            .gpus
            .iter()
            .map(|g| format!("{} {} ({})", g.domain(), g.info.name, g.method()))
            .collect();
        let mut src = EnergySource::new(
            "nvml",
            EnergyKind::Measured,
            format!(
                "NVML (libnvidia-ml): {}; whole-GPU energy, including every process on the device",
                parts.join(", ")
            ),
        );
        src.domains = self.domains();
        src.scope = "host".to_owned();
        src.devices = self
            .gpus
            .iter()
            .map(|g| DeviceInfo {
                index: g.info.index,
                name: g.info.name.clone(),
                uuid: (!g.info.uuid.is_empty()).then(|| g.info.uuid.clone()),
            })
            .collect();
        src
    }

    fn scope(&self) -> ProbeScope {
        ProbeScope::Host
    }

    fn domains(&self) -> Vec<String> {
        self.gpus.iter().map(Gpu::domain).collect()
    }

    fn read(&mut self, out: &mut [Joules]) -> Result<(), ProbeError> {
        let elapsed = self.opened.elapsed();
        self.read_at(elapsed, out)
    }
}

/// Opens NVML, reads every GPU twice 200 ms apart, and describes what it saw: device count,
/// names, UUIDs, whether each has an energy counter, the joules measured and the watts they
/// imply, next to NVML's instantaneous power.
///
/// The first line is `NVML check: ok`, `NVML check: WARN` (readings implausible: no energy in
/// 200 ms, or over 2 kW) or `NVML check: FAILED` (NVML unusable or a read failed), so that a
/// script can act on it. Meant for checking the probe on a real GPU machine.
#[cfg(feature = "nvml")]
pub fn verify_report() -> String {
    use std::fmt::Write as _;

    const INTERVAL: Duration = Duration::from_millis(200);
    let t = Instant::now();
    let backend = match real::NvmlBackend::init() {
        Ok(b) => b,
        Err(e) => {
            return format!(
                "NVML check: FAILED\nNVML unavailable after {:.1} ms: {e}\n",
                ms(t.elapsed())
            );
        }
    };
    let versions = backend.versions();
    let mut probe = match NvmlProbe::with_backend(Box::new(backend)) {
        Ok(p) => p,
        Err(e) => return format!("NVML check: FAILED\n{versions}\n{e}\n"),
    };
    let open_ms = ms(t.elapsed());
    let n = probe.gpus.len();
    let mut first = vec![Joules::ZERO; n];
    let mut second = vec![Joules::ZERO; n];
    let t1 = probe.opened.elapsed();
    // `read_at` never fails; the results are here for the compiler.
    let _ = probe.read_at(t1, &mut first);
    std::thread::sleep(INTERVAL);
    let t2 = probe.opened.elapsed();
    let _ = probe.read_at(t2, &mut second);
    let dt = (t2 - t1).as_secs_f64();

    let mut body = String::new();
    let mut warn = false;
    let _ = writeln!(body, "{versions}");
    let _ = writeln!(body, "NVML opened in {open_ms:.1} ms; {n} GPU(s)");
    for (i, gpu) in probe.gpus.iter().enumerate() {
        let joules = second[i].0 - first[i].0;
        let watts = if dt > 0.0 { joules / dt } else { 0.0 };
        let uuid = if gpu.info.uuid.is_empty() {
            "(none)"
        } else {
            gpu.info.uuid.as_str()
        };
        let counter = match gpu.tracker {
            Tracker::Counter { .. } => "yes",
            Tracker::Power { .. } => "no",
            Tracker::Pending => "unknown",
        };
        let _ = writeln!(body, "{}: {}", gpu.domain(), gpu.info.name);
        let _ = writeln!(body, "  uuid: {uuid}");
        let _ = writeln!(body, "  energy counter: {counter} ({})", gpu.method());
        let _ = writeln!(
            body,
            "  over {dt:.3} s: {joules:.3} J, i.e. {watts:.1} W (cumulative {:.3} J)",
            second[i].0
        );
        if joules <= 0.0 || watts > 2000.0 {
            warn = true;
            let _ = writeln!(body, "  WARN: implausible reading for a powered GPU");
        }
    }
    // A last instantaneous sample, to compare with the watts implied by the energy.
    for gpu in &probe.gpus {
        let line = match probe.backend.power_mw(gpu.info.index) {
            Ok(mw) => format!("{:.1} W", f64::from(mw) / 1000.0),
            Err(e) => format!("unavailable ({e})"),
        };
        let _ = writeln!(body, "{} instantaneous power (NVML): {line}", gpu.domain());
    }
    let warnings = probe.take_warnings();
    for w in &warnings {
        let _ = writeln!(body, "warning: {w}");
    }
    let status = if probe.failed_reads() > 0 {
        "FAILED"
    } else if warn || !warnings.is_empty() {
        "WARN"
    } else {
        "ok"
    };
    format!("NVML check: {status}\n{body}")
}

#[cfg(feature = "nvml")]
fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The real backend over `nvml-wrapper`.
#[cfg(feature = "nvml")]
mod real {
    use super::{GpuBackend, GpuInfo};
    use carina_core::ProbeError;
    use nvml_wrapper::Nvml;
    use nvml_wrapper::error::NvmlError;

    /// The file `nvml-wrapper` loads on Linux.
    const LIB: &str = "libnvidia-ml.so.1";

    pub(super) struct NvmlBackend {
        nvml: Nvml,
    }

    impl NvmlBackend {
        /// Loads the library and initialises NVML; the error says which step failed.
        pub(super) fn init() -> Result<Self, ProbeError> {
            Nvml::init()
                .map(|nvml| NvmlBackend { nvml })
                .map_err(|e| ProbeError::Unavailable(init_error(e)))
        }

        /// Driver and NVML versions, for reports.
        pub(super) fn versions(&self) -> String {
            let driver = self
                .nvml
                .sys_driver_version()
                .unwrap_or_else(|e| format!("unknown ({e})"));
            let lib = self
                .nvml
                .sys_nvml_version()
                .unwrap_or_else(|e| format!("unknown ({e})"));
            format!("driver {driver}, NVML {lib}")
        }
    }

    fn init_error(e: NvmlError) -> String {
        match e {
            NvmlError::LibloadingError(e) => {
                format!("{LIB} could not be loaded: {e}; no NVIDIA driver on this machine")
            }
            NvmlError::FailedToLoadSymbol(s) => {
                format!("{LIB} was loaded but lacks {s}: the NVIDIA driver is too old")
            }
            NvmlError::DriverNotLoaded => {
                format!("{LIB} was loaded but the NVIDIA kernel driver is not running")
            }
            NvmlError::NoPermission => {
                "NVML has no permission to talk to the NVIDIA driver (check /dev/nvidia*)".into()
            }
            e => format!("NVML initialisation failed: {e}"),
        }
    }

    impl GpuBackend for NvmlBackend {
        fn devices(&self) -> Result<Vec<GpuInfo>, String> {
            let count = self.nvml.device_count().map_err(|e| e.to_string())?;
            (0..count)
                .map(|index| {
                    let describe = || {
                        let d = self.nvml.device_by_index(index)?;
                        Ok::<_, NvmlError>(GpuInfo {
                            index,
                            name: d.name()?,
                            uuid: d.uuid()?,
                        })
                    };
                    describe().map_err(|e| format!("GPU {index}: {e}"))
                })
                .collect()
        }

        fn total_energy_mj(&mut self, index: u32) -> Result<Option<u64>, String> {
            // Handles borrow the `Nvml`, so they are looked up per call rather than stored;
            // the lookup is a table access in the driver.
            let d = self
                .nvml
                .device_by_index(index)
                .map_err(|e| e.to_string())?;
            match d.total_energy_consumption() {
                Ok(mj) => Ok(Some(mj)),
                // Pre-Volta GPUs, and drivers too old to export the function.
                Err(NvmlError::NotSupported | NvmlError::FailedToLoadSymbol(_)) => Ok(None),
                Err(e) => Err(e.to_string()),
            }
        }

        fn power_mw(&mut self, index: u32) -> Result<u32, String> {
            self.nvml
                .device_by_index(index)
                .and_then(|d| d.power_usage())
                .map_err(|e| e.to_string())
        }
    }
}
