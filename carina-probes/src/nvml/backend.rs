//! The seam between the probe and NVML: the [`GpuBackend`] trait (fakes implement it in tests)
//! and the real backend, loaded at run time (feature `nvml`), with the explanations of why it
//! could not be opened.

use crate::Privileges;
use carina_runtime::energy::{Unavailable, UnavailableCause};
use std::path::Path;

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

/// One per-process utilisation sample of a GPU, as `nvmlDeviceGetProcessUtilization` gives
/// it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessUtilization {
    /// The process, in the host's pid namespace.
    pub pid: u32,
    /// When the driver took the sample, in microseconds since the Unix epoch.
    pub timestamp_us: u64,
    /// The process's SM (compute and 3D) utilisation over the sample's period, in percent.
    pub sm_util: u32,
}

/// The error text of the process queries of a backend that does not implement them.
pub const NOT_SUPPORTED: &str = "process queries are not supported by this GPU backend";

/// The few NVML queries the probe needs.
///
/// The real implementation wraps `nvml-wrapper`; tests implement it with scripted values.
/// Errors are plain strings because the probe only reports them, it never branches on them.
///
/// The process queries have defaults that answer [`NOT_SUPPORTED`], so a backend that only
/// reads energy implements the first three methods; its probe then does not know its users
/// ([`EnergyProbe::knows_users`] is false) and the run's CPU share applies to its GPUs.
pub trait GpuBackend: Send {
    /// The GPUs present, in any order.
    fn devices(&self) -> Result<Vec<GpuInfo>, String>;
    /// The device's total energy counter in millijoules since the driver loaded, or `None`
    /// when the device has no such counter (GPUs older than Volta).
    fn total_energy_mj(&mut self, index: u32) -> Result<Option<u64>, String>;
    /// The device's current power draw in milliwatts.
    fn power_mw(&mut self, index: u32) -> Result<u32, String>;
    /// Whether this backend implements the process queries below. A device's query can still
    /// fail (old driver, no permission, MIG); that is reported per call.
    fn knows_processes(&self) -> bool {
        false
    }
    /// Pids of the processes with a compute context (CUDA) on the device now
    /// (`nvmlDeviceGetComputeRunningProcesses`), in the host's pid namespace, in any order.
    fn compute_processes(&mut self, index: u32) -> Result<Vec<u32>, String> {
        let _ = index;
        Err(NOT_SUPPORTED.to_owned())
    }
    /// Pids of the processes with a graphics context (OpenGL, Vulkan) on the device now
    /// (`nvmlDeviceGetGraphicsRunningProcesses`), in the host's pid namespace, in any order.
    fn graphics_processes(&mut self, index: u32) -> Result<Vec<u32>, String> {
        let _ = index;
        Err(NOT_SUPPORTED.to_owned())
    }
    /// The per-process utilisation samples the driver took after `since_us` (microseconds
    /// since the Unix epoch; 0 for all it holds), in any order
    /// (`nvmlDeviceGetProcessUtilization`). The driver only returns processes whose
    /// utilisation was non-zero at some point; no sample at all is `Ok` and empty.
    fn process_utilization(
        &mut self,
        index: u32,
        since_us: u64,
    ) -> Result<Vec<ProcessUtilization>, String> {
        let _ = (index, since_us);
        Err(NOT_SUPPORTED.to_owned())
    }
}

/// The real backend over `nvml-wrapper`.
#[cfg(feature = "nvml")]
pub(super) mod real {
    use super::{GpuBackend, GpuInfo, ProcessUtilization};
    use crate::Privileges;
    use carina_runtime::ProbeError;
    use carina_runtime::energy::{Unavailable, UnavailableCause};
    use nvml_wrapper::Nvml;
    use nvml_wrapper::error::NvmlError;
    use std::ffi::OsStr;
    use std::path::Path;

    pub(in crate::nvml) struct NvmlBackend {
        nvml: Nvml,
    }

    impl NvmlBackend {
        /// Loads `library` and initialises NVML; the error says which step failed, with the
        /// fix that fits.
        pub(in crate::nvml) fn load(
            library: &OsStr,
            sys_root: &Path,
            who: &Privileges,
        ) -> Result<Self, ProbeError> {
            Nvml::builder()
                .lib_path(library)
                .init()
                .map(|nvml| NvmlBackend { nvml })
                .map_err(|e| init_error(e, library, sys_root, who).into())
        }

        /// Driver and NVML versions, for reports.
        pub(in crate::nvml) fn versions(&self) -> String {
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

    fn init_error(e: NvmlError, library: &OsStr, sys_root: &Path, who: &Privileges) -> Unavailable {
        let lib = library.to_string_lossy();
        match e {
            NvmlError::LibloadingError(e) => super::not_loaded(&lib, &e.to_string(), sys_root),
            NvmlError::FailedToLoadSymbol(s) => Unavailable::new(
                UnavailableCause::Outdated,
                format!("{lib} was loaded but lacks {s}: the NVIDIA driver is too old"),
            )
            .with_fix("update the NVIDIA driver"),
            NvmlError::DriverNotLoaded => super::driver_not_loaded(&lib),
            NvmlError::NoPermission => super::no_permission(who),
            e => Unavailable::new(
                UnavailableCause::Failed,
                format!("NVML initialisation failed: {e}"),
            ),
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

        fn knows_processes(&self) -> bool {
            true
        }

        fn compute_processes(&mut self, index: u32) -> Result<Vec<u32>, String> {
            let d = self
                .nvml
                .device_by_index(index)
                .map_err(|e| e.to_string())?;
            // Drivers without the `_v3` entry points (NVML before 12) fail with
            // `FailedToLoadSymbol`: the share of their GPUs is unknown, with one warning.
            pids(|| d.running_compute_processes())
        }

        fn graphics_processes(&mut self, index: u32) -> Result<Vec<u32>, String> {
            let d = self
                .nvml
                .device_by_index(index)
                .map_err(|e| e.to_string())?;
            pids(|| d.running_graphics_processes())
        }

        fn process_utilization(
            &mut self,
            index: u32,
            since_us: u64,
        ) -> Result<Vec<ProcessUtilization>, String> {
            let d = self
                .nvml
                .device_by_index(index)
                .map_err(|e| e.to_string())?;
            let samples = retry(|| match d.process_utilization_stats(since_us) {
                // NVML's answer when it holds no sample newer than `since_us`.
                Err(NvmlError::NotFound) => Ok(Vec::new()),
                r => r,
            })?;
            Ok(samples
                .into_iter()
                .map(|s| ProcessUtilization {
                    pid: s.pid,
                    timestamp_us: s.timestamp,
                    sm_util: s.sm_util,
                })
                .collect())
        }
    }

    fn pids(
        query: impl Fn() -> Result<Vec<nvml_wrapper::struct_wrappers::device::ProcessInfo>, NvmlError>,
    ) -> Result<Vec<u32>, String> {
        retry(query).map(|ps| ps.into_iter().map(|p| p.pid).collect())
    }

    /// The list queries ask for a count, then for the entries: a process that appears in
    /// between gives `InsufficientSize`, which a second try fixes.
    fn retry<T>(query: impl Fn() -> Result<T, NvmlError>) -> Result<T, String> {
        let mut last = None;
        for _ in 0..3 {
            match query() {
                Err(NvmlError::InsufficientSize(n)) => last = Some(NvmlError::InsufficientSize(n)),
                r => return r.map_err(|e| e.to_string()),
            }
        }
        Err(last.map_or_else(String::new, |e| e.to_string()))
    }
}

/// The library could not be loaded. Installing the driver is the fix only where an NVIDIA GPU
/// is on the PCI bus; elsewhere nothing is missing.
#[cfg_attr(not(feature = "nvml"), allow(dead_code))]
pub(super) fn not_loaded(library: &str, error: &str, sys_root: &Path) -> Unavailable {
    let gpus = crate::model::gpus::nvidia_gpus(sys_root);
    if gpus.is_empty() {
        Unavailable::new(
            UnavailableCause::Absent,
            format!(
                "{library} could not be loaded ({error}): no NVIDIA driver, and no NVIDIA GPU on \
                 the PCI bus ({})",
                sys_root.join("bus/pci/devices").display()
            ),
        )
    } else {
        Unavailable::new(
            UnavailableCause::Absent,
            format!(
                "{library} could not be loaded ({error}): no NVIDIA driver, although the PCI bus \
                 shows {} NVIDIA GPU(s) ({})",
                gpus.len(),
                gpus.iter()
                    .map(|g| g.address.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .with_fix(
            "install the NVIDIA driver, which provides libnvidia-ml.so.1 (inside a container: \
             run it with the GPUs and driver passed in, e.g. `docker run --gpus all`)",
        )
    }
}

/// `NVML_ERROR_DRIVER_NOT_LOADED`: the library is there, the kernel module is not running.
#[cfg_attr(not(feature = "nvml"), allow(dead_code))]
pub(super) fn driver_not_loaded(library: &str) -> Unavailable {
    Unavailable::new(
        UnavailableCause::Absent,
        format!("{library} was loaded but the NVIDIA kernel driver is not running"),
    )
    .with_fix("load it: `sudo modprobe nvidia` (then `nvidia-smi` should list the GPUs)")
}

/// `NVML_ERROR_NO_PERMISSION`: the device files cannot be opened. Root can open any device file
/// on the host, so a root that is refused is in a container the devices were not passed to.
#[cfg_attr(not(feature = "nvml"), allow(dead_code))]
pub(super) fn no_permission(who: &Privileges) -> Unavailable {
    let root = who.root;
    let why = Unavailable::new(
        UnavailableCause::Permission,
        "NVML has no permission to talk to the NVIDIA driver (/dev/nvidiactl, /dev/nvidia<N>)",
    );
    if root {
        why.with_fix(
            "this process is root: pass the GPUs into its container (`docker run --gpus all`, \
             or the device cgroup rules for /dev/nvidia*)",
        )
    } else {
        why.with_fix(
            "give this user read and write access to /dev/nvidiactl and /dev/nvidia<N> (add it \
             to the group that owns them), or run as root",
        )
    }
}
