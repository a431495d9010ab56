//! The seam between the probe and NVML: the [`GpuBackend`] trait (fakes implement it in tests)
//! and the real backend, loaded at run time (feature `nvml`), with the explanations of why it
//! could not be opened.

use crate::Privileges;
#[cfg(feature = "nvml")]
use carina_runtime::ProbeError;
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
/// The real implementation is `NvmlLibrary` (feature `nvml`); tests implement it with
/// scripted values.
/// Errors are plain strings because the probe only reports them, it never branches on them.
///
/// The process queries have defaults that answer [`NOT_SUPPORTED`], so a backend that only
/// reads energy implements the first three methods; its probe then does not know its users
/// ([`EnergyProbe::knows_users`](carina_runtime::EnergyProbe::knows_users) is false) and the
/// run's CPU share applies to its GPUs.
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

/// The real backend: NVML loaded at run time through Carina's own binding (feature `nvml`).
///
/// Resolves only the functions the probe uses (see the binding's list); a library without a
/// required one is refused as too old, one without an optional one (the energy counter, the
/// `_v3` process lists, per-process utilisation) answers as a GPU without that feature would.
/// NVML is shut down and the library unloaded when this is dropped.
#[cfg(feature = "nvml")]
pub struct NvmlLibrary {
    nvml: super::ffi::Nvml,
}

#[cfg(feature = "nvml")]
impl std::fmt::Debug for NvmlLibrary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Function pointers and a library handle: nothing a reader can use.
        f.debug_struct("NvmlLibrary").finish_non_exhaustive()
    }
}

#[cfg(feature = "nvml")]
impl NvmlLibrary {
    /// Loads `library` (a file name the dynamic loader searches for, such as
    /// [`DEFAULT_LIBRARY`](super::DEFAULT_LIBRARY), or a path) and initialises NVML; failures
    /// are explained for this process, with `/sys` for the PCI bus. See
    /// [`load_as`](Self::load_as).
    pub fn load(library: impl AsRef<std::ffi::OsStr>) -> Result<Self, ProbeError> {
        Self::load_as(library, Path::new("/sys"), &Privileges::of_this_process())
    }

    /// Loads `library` and initialises NVML.
    ///
    /// # Errors
    ///
    /// [`ProbeError::Unavailable`], with the cause and the fix that fits: the file cannot be
    /// loaded ([`UnavailableCause::Absent`]; installing the driver is the fix only where
    /// `<sys_root>/bus/pci/devices` shows an NVIDIA GPU), a required function is missing
    /// ([`UnavailableCause::Outdated`]), or `nvmlInit_v2` fails: the kernel driver is not
    /// running (`Absent`), the device files are refused (`Permission`, a fix for root or not
    /// from `privileges`), the library and the kernel module differ (`Outdated`), anything else
    /// (`Failed`).
    pub fn load_as(
        library: impl AsRef<std::ffi::OsStr>,
        sys_root: &Path,
        privileges: &Privileges,
    ) -> Result<Self, ProbeError> {
        use super::ffi::{LoadError, Nvml, code};
        let library = library.as_ref();
        let name = library.to_string_lossy();
        let why = match Nvml::load(library) {
            Ok(nvml) => return Ok(NvmlLibrary { nvml }),
            Err(LoadError::Library(e)) => not_loaded(&name, &e, sys_root),
            Err(LoadError::Missing(f)) => Unavailable::new(
                UnavailableCause::Outdated,
                format!("{name} was loaded but lacks {f}: the NVIDIA driver is too old"),
            )
            .with_fix("update the NVIDIA driver (R525 or later provides every function used)"),
            Err(LoadError::Init(e)) => match e.code {
                code::DRIVER_NOT_LOADED => driver_not_loaded(&name),
                code::NO_PERMISSION => no_permission(privileges),
                code::LIB_RM_VERSION_MISMATCH => Unavailable::new(
                    UnavailableCause::Outdated,
                    format!(
                        "NVML initialisation failed: {e}: the running NVIDIA kernel module is not \
                         the version of the installed {name} (a driver update without a reboot)"
                    ),
                )
                .with_fix(
                    "reboot, or reload the kernel module (`sudo rmmod nvidia_uvm nvidia_drm \
                     nvidia_modeset nvidia && sudo modprobe nvidia`) while no process uses the GPU",
                ),
                _ => Unavailable::new(
                    UnavailableCause::Failed,
                    format!("NVML initialisation failed: {e}"),
                ),
            },
        };
        Err(why.into())
    }

    /// Driver and NVML versions, for reports.
    pub fn versions(&self) -> String {
        let text = |v: Option<Result<String, super::ffi::NvmlError>>| match v {
            Some(Ok(s)) => s,
            Some(Err(e)) => format!("unknown ({e})"),
            None => "unknown (not exported by this library)".to_owned(),
        };
        format!(
            "driver {}, NVML {}",
            text(self.nvml.driver_version()),
            text(self.nvml.nvml_version())
        )
    }
}

#[cfg(feature = "nvml")]
impl GpuBackend for NvmlLibrary {
    fn devices(&self) -> Result<Vec<GpuInfo>, String> {
        let count = self.nvml.device_count().map_err(|e| e.to_string())?;
        (0..count)
            .map(|index| {
                let info = self.nvml.device(index).and_then(|d| {
                    Ok(GpuInfo {
                        index,
                        name: d.name()?,
                        uuid: d.uuid()?,
                    })
                });
                info.map_err(|e| format!("GPU {index}: {e}"))
            })
            .collect()
    }

    // Handles are looked up per call rather than kept: a lookup is a table access in the
    // driver, and a handle kept in the backend would have to outlive the borrow of the library.
    fn total_energy_mj(&mut self, index: u32) -> Result<Option<u64>, String> {
        let d = self.nvml.device(index).map_err(|e| e.to_string())?;
        d.total_energy_mj().map_err(|e| e.to_string())
    }

    fn power_mw(&mut self, index: u32) -> Result<u32, String> {
        let d = self.nvml.device(index).map_err(|e| e.to_string())?;
        d.power_usage_mw().map_err(|e| e.to_string())
    }

    fn knows_processes(&self) -> bool {
        true
    }

    fn compute_processes(&mut self, index: u32) -> Result<Vec<u32>, String> {
        let d = self.nvml.device(index).map_err(|e| e.to_string())?;
        d.compute_processes().map_err(|e| e.to_string())
    }

    fn graphics_processes(&mut self, index: u32) -> Result<Vec<u32>, String> {
        let d = self.nvml.device(index).map_err(|e| e.to_string())?;
        d.graphics_processes().map_err(|e| e.to_string())
    }

    fn process_utilization(
        &mut self,
        index: u32,
        since_us: u64,
    ) -> Result<Vec<ProcessUtilization>, String> {
        let d = self.nvml.device(index).map_err(|e| e.to_string())?;
        let samples = d.process_utilization(since_us).map_err(|e| e.to_string())?;
        Ok(samples
            .into_iter()
            .map(|s| ProcessUtilization {
                pid: s.pid,
                timestamp_us: s.time_stamp,
                sm_util: s.sm_util,
            })
            .collect())
    }
}

/// The library could not be loaded. Installing the driver is the fix only where an NVIDIA GPU
/// is on the PCI bus; elsewhere nothing is missing.
#[cfg_attr(not(feature = "nvml"), allow(dead_code))]
fn not_loaded(library: &str, error: &str, sys_root: &Path) -> Unavailable {
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
fn driver_not_loaded(library: &str) -> Unavailable {
    Unavailable::new(
        UnavailableCause::Absent,
        format!("{library} was loaded but the NVIDIA kernel driver is not running"),
    )
    .with_fix("load it: `sudo modprobe nvidia` (then `nvidia-smi` should list the GPUs)")
}

/// `NVML_ERROR_NO_PERMISSION`: the device files cannot be opened. Root can open any device file
/// on the host, so a root that is refused is in a container the devices were not passed to.
#[cfg_attr(not(feature = "nvml"), allow(dead_code))]
fn no_permission(who: &Privileges) -> Unavailable {
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
