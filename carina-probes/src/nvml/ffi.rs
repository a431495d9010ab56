//! Carina's own binding to NVML: the few functions the probe calls, looked up at run time in
//! `libnvidia-ml.so.1` with `libloading`, so that a build needs neither the driver nor its
//! headers.
//!
//! Signatures, struct layouts and return codes follow `nvml.h` of NVML API version 12 (CUDA 12,
//! driver branch R525 and later), where the `_v2` init, count and handle functions and the
//! `_v3` process lists are current; NVML 13.0 (CUDA 13) keeps every one used here unchanged.
//! The layouts below are written from that header's documented types, not copied from it:
//!
//! - `nvmlReturn_t` (an enum, `int`-sized): [`Return`];
//! - `nvmlDevice_t` (a pointer to an opaque struct): `*mut c_void`;
//! - `nvmlProcessInfo_t` (what the `_v3` lists fill: pid, used memory, GPU and compute
//!   instance): [`ProcessInfo`];
//! - `nvmlProcessUtilizationSample_t` (pid, time stamp, SM, memory, encoder, decoder):
//!   [`UtilizationSample`].
//!
//! Required functions (a library without one is too old): `nvmlInit_v2`, `nvmlShutdown`,
//! `nvmlErrorString`, `nvmlDeviceGetCount_v2`, `nvmlDeviceGetHandleByIndex_v2`,
//! `nvmlDeviceGetName`, `nvmlDeviceGetUUID`, `nvmlDeviceGetPowerUsage`. Optional ones (absent in
//! older drivers; the probe does without): `nvmlDeviceGetTotalEnergyConsumption`,
//! `nvmlDeviceGetComputeRunningProcesses_v3`, `nvmlDeviceGetGraphicsRunningProcesses_v3`,
//! `nvmlDeviceGetProcessUtilization`, and for `nvml_check` `nvmlSystemGetDriverVersion` and
//! `nvmlSystemGetNVMLVersion`.
//!
//! Every `unsafe` block says why it is sound; the tests compile a fake `libnvidia-ml.so` from C
//! with the same prototypes and load it through this binding (`tests/probes/nvml_ffi.rs`).

use libloading::Library;
use std::ffi::{CStr, OsStr, c_char, c_uint, c_ulonglong, c_void};
use std::fmt;
use std::ptr;

/// `nvmlReturn_t`. A C enum whose values are all small and non-negative: passed and returned
/// as an `unsigned int` by the C ABIs Carina runs on.
pub(crate) type Return = c_uint;

/// The return codes the binding or the probe tells apart (values of `nvmlReturn_t`).
pub(crate) mod code {
    use super::Return;

    /// `NVML_SUCCESS`.
    pub const SUCCESS: Return = 0;
    /// `NVML_ERROR_NOT_SUPPORTED`: the device lacks the feature (an energy counter before Volta).
    pub const NOT_SUPPORTED: Return = 3;
    /// `NVML_ERROR_NO_PERMISSION`.
    pub const NO_PERMISSION: Return = 4;
    /// `NVML_ERROR_NOT_FOUND`: for the utilisation query, no sample newer than asked.
    pub const NOT_FOUND: Return = 6;
    /// `NVML_ERROR_INSUFFICIENT_SIZE`: the buffer is too small; the count says how many.
    pub const INSUFFICIENT_SIZE: Return = 7;
    /// `NVML_ERROR_DRIVER_NOT_LOADED`: the kernel module is not running.
    pub const DRIVER_NOT_LOADED: Return = 9;
    /// `NVML_ERROR_FUNCTION_NOT_FOUND`: also what this binding answers for an optional function
    /// the library does not export.
    pub const FUNCTION_NOT_FOUND: Return = 13;
    /// `NVML_ERROR_LIB_RM_VERSION_MISMATCH`: the library and the running kernel module differ.
    pub const LIB_RM_VERSION_MISMATCH: Return = 18;
}

/// `nvmlProcessInfo_t` as the `_v3` process lists fill it. Only the pid is read; the other
/// fields are there because NVML writes them (the layout must be whole).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
#[allow(dead_code)]
pub(crate) struct ProcessInfo {
    /// `pid`: in the host's pid namespace.
    pub pid: c_uint,
    /// `usedGpuMemory`, bytes.
    pub used_gpu_memory: c_ulonglong,
    /// `gpuInstanceId` (MIG), or all ones.
    pub gpu_instance_id: c_uint,
    /// `computeInstanceId` (MIG), or all ones.
    pub compute_instance_id: c_uint,
}

/// `nvmlProcessUtilizationSample_t`. The memory, encoder and decoder figures are there because
/// NVML writes them (the layout must be whole); the probe reads pid, time stamp and SM.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
#[allow(dead_code)]
pub(crate) struct UtilizationSample {
    /// `pid`.
    pub pid: c_uint,
    /// `timeStamp`: microseconds since the Unix epoch.
    pub time_stamp: c_ulonglong,
    /// `smUtil`, percent.
    pub sm_util: c_uint,
    /// `memUtil`, percent.
    pub mem_util: c_uint,
    /// `encUtil`, percent.
    pub enc_util: c_uint,
    /// `decUtil`, percent.
    pub dec_util: c_uint,
}

// The 64-bit layouts nvml.h gives (the u64 field aligned to 8): a mismatch would make every
// list entry after the first read garbage.
#[cfg(target_pointer_width = "64")]
const _: () = {
    assert!(std::mem::size_of::<ProcessInfo>() == 24);
    assert!(std::mem::size_of::<UtilizationSample>() == 32);
};

/// `nvmlDevice_t`.
type RawDevice = *mut c_void;

type VoidFn = unsafe extern "C" fn() -> Return;
type ErrorStringFn = unsafe extern "C" fn(Return) -> *const c_char;
type CountFn = unsafe extern "C" fn(*mut c_uint) -> Return;
type HandleFn = unsafe extern "C" fn(c_uint, *mut RawDevice) -> Return;
type DeviceStringFn = unsafe extern "C" fn(RawDevice, *mut c_char, c_uint) -> Return;
type SystemStringFn = unsafe extern "C" fn(*mut c_char, c_uint) -> Return;
type PowerFn = unsafe extern "C" fn(RawDevice, *mut c_uint) -> Return;
type EnergyFn = unsafe extern "C" fn(RawDevice, *mut c_ulonglong) -> Return;
type ProcessesFn = unsafe extern "C" fn(RawDevice, *mut c_uint, *mut ProcessInfo) -> Return;
type UtilizationFn =
    unsafe extern "C" fn(RawDevice, *mut UtilizationSample, *mut c_uint, c_ulonglong) -> Return;

/// `NVML_DEVICE_NAME_V2_BUFFER_SIZE` and `NVML_DEVICE_UUID_V2_BUFFER_SIZE`: 96 bytes, enough
/// for every name and UUID (older drivers ask for 64 and 80).
const DEVICE_STRING_BYTES: usize = 96;
/// `NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE` and `NVML_SYSTEM_NVML_VERSION_BUFFER_SIZE`.
const SYSTEM_STRING_BYTES: usize = 80;
/// Tries of a list query: a process can appear between the size query and the fill.
const LIST_TRIES: usize = 4;
/// Entries a list may claim; a count beyond it is a broken answer, not a GPU's processes.
const MAX_LIST_ENTRIES: c_uint = 1 << 16;

/// The resolved functions. Plain function pointers: valid while the [`Library`] they came from
/// is loaded, which [`Nvml`] guarantees by owning both.
struct Api {
    shutdown: VoidFn,
    error_string: ErrorStringFn,
    device_count: CountFn,
    handle_by_index: HandleFn,
    name: DeviceStringFn,
    uuid: DeviceStringFn,
    power_usage: PowerFn,
    total_energy: Option<EnergyFn>,
    compute_processes: Option<ProcessesFn>,
    graphics_processes: Option<ProcessesFn>,
    process_utilization: Option<UtilizationFn>,
    driver_version: Option<SystemStringFn>,
    nvml_version: Option<SystemStringFn>,
}

/// Why the library could not be used at all.
#[derive(Debug)]
pub(crate) enum LoadError {
    /// The dynamic loader could not load the file: its message.
    Library(String),
    /// A function the probe needs is not exported: the driver is too old.
    Missing(&'static str),
    /// `nvmlInit_v2` failed.
    Init(NvmlError),
}

/// A failed NVML call: which function, its return code and NVML's text for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NvmlError {
    /// The C function's name.
    pub function: &'static str,
    /// Its `nvmlReturn_t`.
    pub code: Return,
    /// `nvmlErrorString` of the code (or why there is none).
    pub text: String,
}

/// `nvmlDeviceGetPowerUsage: GPU is lost (NVML error 15)`.
impl fmt::Display for NvmlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} (NVML error {})",
            self.function, self.text, self.code
        )
    }
}

/// NVML, loaded and initialised; shut down and unloaded on drop.
pub(crate) struct Nvml {
    api: Api,
    /// Keeps the functions of `api` mapped; dropped (unloaded) after `Drop::drop` has called
    /// `nvmlShutdown`.
    _library: Library,
}

/// Looks `name` (NUL-terminated) up in `library` as a function of type `F`.
///
/// # Safety
///
/// `F` must be the function-pointer type that nvml.h declares for `name`.
unsafe fn symbol<F: Copy>(library: &Library, name: &'static [u8]) -> Option<F> {
    // SAFETY: the caller guarantees that `F` is the symbol's C prototype; the pointer is
    // copied out of the `Symbol` and stays valid as long as `library` is loaded, which `Nvml`
    // guarantees by owning the library next to the pointers.
    unsafe { library.get::<F>(name).ok().map(|s| *s) }
}

/// A required function: looked up, or the load fails naming it.
macro_rules! required {
    ($library:expr, $name:literal) => {
        // SAFETY: the type annotation at each use is nvml.h's prototype for `$name`.
        unsafe { symbol($library, concat!($name, "\0").as_bytes()) }
            .ok_or(LoadError::Missing($name))?
    };
}

/// An optional function: `None` when the library does not export it.
macro_rules! optional {
    ($library:expr, $name:literal) => {
        // SAFETY: the type annotation at each use is nvml.h's prototype for `$name`.
        unsafe { symbol($library, concat!($name, "\0").as_bytes()) }
    };
}

impl Nvml {
    /// Loads `library` (a file name the dynamic loader searches for, or a path), resolves the
    /// functions and initialises NVML.
    pub(crate) fn load(library: &OsStr) -> Result<Nvml, LoadError> {
        // SAFETY: loading runs the library's initialisers. The file is the NVIDIA management
        // library (or the stand-in a caller named for it), whose initialisers only set up its
        // own state and ask nothing of the loading program; loading it at run time is NVML's
        // documented use.
        let lib =
            unsafe { Library::new(library) }.map_err(|e| LoadError::Library(e.to_string()))?;
        let init: VoidFn = required!(&lib, "nvmlInit_v2");
        let api = Api {
            shutdown: required!(&lib, "nvmlShutdown"),
            error_string: required!(&lib, "nvmlErrorString"),
            device_count: required!(&lib, "nvmlDeviceGetCount_v2"),
            handle_by_index: required!(&lib, "nvmlDeviceGetHandleByIndex_v2"),
            name: required!(&lib, "nvmlDeviceGetName"),
            uuid: required!(&lib, "nvmlDeviceGetUUID"),
            power_usage: required!(&lib, "nvmlDeviceGetPowerUsage"),
            total_energy: optional!(&lib, "nvmlDeviceGetTotalEnergyConsumption"),
            compute_processes: optional!(&lib, "nvmlDeviceGetComputeRunningProcesses_v3"),
            graphics_processes: optional!(&lib, "nvmlDeviceGetGraphicsRunningProcesses_v3"),
            process_utilization: optional!(&lib, "nvmlDeviceGetProcessUtilization"),
            driver_version: optional!(&lib, "nvmlSystemGetDriverVersion"),
            nvml_version: optional!(&lib, "nvmlSystemGetNVMLVersion"),
        };
        // SAFETY: `nvmlInit_v2` takes no argument; it may be called from any thread, and
        // before any other NVML function, which is the case here.
        let rc = unsafe { init() };
        if rc != code::SUCCESS {
            // Not initialised, so no shutdown: dropping `lib` unloads it.
            let text = error_text(api.error_string, rc);
            return Err(LoadError::Init(NvmlError {
                function: "nvmlInit_v2",
                code: rc,
                text,
            }));
        }
        Ok(Nvml { api, _library: lib })
    }

    fn check(&self, function: &'static str, rc: Return) -> Result<(), NvmlError> {
        if rc == code::SUCCESS {
            Ok(())
        } else {
            Err(NvmlError {
                function,
                code: rc,
                text: error_text(self.api.error_string, rc),
            })
        }
    }

    /// `nvmlDeviceGetCount_v2`.
    pub(crate) fn device_count(&self) -> Result<u32, NvmlError> {
        let mut count: c_uint = 0;
        // SAFETY: NVML is initialised; the pointer is to a live, writable `unsigned int`.
        let rc = unsafe { (self.api.device_count)(&mut count) };
        self.check("nvmlDeviceGetCount_v2", rc)?;
        Ok(count)
    }

    /// `nvmlDeviceGetHandleByIndex_v2`: the device, borrowed from this `Nvml` so that it cannot
    /// outlive the shutdown that invalidates it.
    pub(crate) fn device(&self, index: u32) -> Result<Device<'_>, NvmlError> {
        let mut raw: RawDevice = ptr::null_mut();
        // SAFETY: NVML is initialised; the pointer is to a live, writable handle.
        let rc = unsafe { (self.api.handle_by_index)(index, &mut raw) };
        self.check("nvmlDeviceGetHandleByIndex_v2", rc)?;
        Ok(Device { raw, nvml: self })
    }

    /// `nvmlSystemGetDriverVersion`, or `None` where the library lacks it.
    pub(crate) fn driver_version(&self) -> Option<Result<String, NvmlError>> {
        let f = self.api.driver_version?;
        Some(self.system_string("nvmlSystemGetDriverVersion", f))
    }

    /// `nvmlSystemGetNVMLVersion`, or `None` where the library lacks it.
    pub(crate) fn nvml_version(&self) -> Option<Result<String, NvmlError>> {
        let f = self.api.nvml_version?;
        Some(self.system_string("nvmlSystemGetNVMLVersion", f))
    }

    fn system_string(
        &self,
        function: &'static str,
        f: SystemStringFn,
    ) -> Result<String, NvmlError> {
        let mut buf = [0 as c_char; SYSTEM_STRING_BYTES];
        // SAFETY: NVML is initialised; `buf` is writable for the length passed, and NVML writes
        // at most that many bytes.
        let rc = unsafe { f(buf.as_mut_ptr(), buf.len() as c_uint) };
        self.check(function, rc)?;
        Ok(c_string(&buf))
    }
}

impl Drop for Nvml {
    fn drop(&mut self) {
        // SAFETY: NVML was initialised by `load` and is shut down once, here; every `Device`
        // borrowed from `self` is gone, so no handle is used after it.
        let _ = unsafe { (self.api.shutdown)() };
    }
}

/// One GPU's handle, valid while the [`Nvml`] it came from lives. Looked up per call and used
/// on that thread only (the raw pointer keeps it from being sent elsewhere).
pub(crate) struct Device<'a> {
    raw: RawDevice,
    nvml: &'a Nvml,
}

impl Device<'_> {
    fn string(&self, function: &'static str, f: DeviceStringFn) -> Result<String, NvmlError> {
        let mut buf = [0 as c_char; DEVICE_STRING_BYTES];
        // SAFETY: the handle is live (borrowed from an initialised `Nvml`); `buf` is writable
        // for the length passed, and NVML writes at most that many bytes.
        let rc = unsafe { f(self.raw, buf.as_mut_ptr(), buf.len() as c_uint) };
        self.nvml.check(function, rc)?;
        Ok(c_string(&buf))
    }

    /// `nvmlDeviceGetName`.
    pub(crate) fn name(&self) -> Result<String, NvmlError> {
        self.string("nvmlDeviceGetName", self.nvml.api.name)
    }

    /// `nvmlDeviceGetUUID`.
    pub(crate) fn uuid(&self) -> Result<String, NvmlError> {
        self.string("nvmlDeviceGetUUID", self.nvml.api.uuid)
    }

    /// `nvmlDeviceGetPowerUsage`, milliwatts.
    pub(crate) fn power_usage_mw(&self) -> Result<u32, NvmlError> {
        let mut mw: c_uint = 0;
        // SAFETY: the handle is live; the pointer is to a live, writable `unsigned int`.
        let rc = unsafe { (self.nvml.api.power_usage)(self.raw, &mut mw) };
        self.nvml.check("nvmlDeviceGetPowerUsage", rc)?;
        Ok(mw)
    }

    /// `nvmlDeviceGetTotalEnergyConsumption`, millijoules since the driver loaded; `None` when
    /// the device has no counter (`NVML_ERROR_NOT_SUPPORTED`, GPUs before Volta) or the library
    /// lacks the function.
    pub(crate) fn total_energy_mj(&self) -> Result<Option<u64>, NvmlError> {
        let Some(f) = self.nvml.api.total_energy else {
            return Ok(None);
        };
        let mut mj: c_ulonglong = 0;
        // SAFETY: the handle is live; the pointer is to a live, writable `unsigned long long`.
        let rc = unsafe { f(self.raw, &mut mj) };
        if rc == code::NOT_SUPPORTED {
            return Ok(None);
        }
        self.nvml.check("nvmlDeviceGetTotalEnergyConsumption", rc)?;
        Ok(Some(mj))
    }

    /// `nvmlDeviceGetComputeRunningProcesses_v3`: the pids.
    pub(crate) fn compute_processes(&self) -> Result<Vec<u32>, NvmlError> {
        let name = "nvmlDeviceGetComputeRunningProcesses_v3";
        self.processes(name, self.nvml.api.compute_processes)
    }

    /// `nvmlDeviceGetGraphicsRunningProcesses_v3`: the pids.
    pub(crate) fn graphics_processes(&self) -> Result<Vec<u32>, NvmlError> {
        let name = "nvmlDeviceGetGraphicsRunningProcesses_v3";
        self.processes(name, self.nvml.api.graphics_processes)
    }

    fn processes(
        &self,
        function: &'static str,
        f: Option<ProcessesFn>,
    ) -> Result<Vec<u32>, NvmlError> {
        let f = f.ok_or_else(|| not_exported(function))?;
        let infos = self.list(function, |count, buf| {
            // SAFETY: the handle is live; `count` points at the capacity of `buf`, which is
            // null with a capacity of 0 (a size query) or writable for that many entries laid
            // out as nvmlProcessInfo_t; NVML writes at most that many and sets `count`.
            unsafe { f(self.raw, count, buf) }
        })?;
        Ok(infos.into_iter().map(|p: ProcessInfo| p.pid).collect())
    }

    /// `nvmlDeviceGetProcessUtilization`: the samples newer than `since_us`; none is `Ok` and
    /// empty (`NVML_ERROR_NOT_FOUND`).
    pub(crate) fn process_utilization(
        &self,
        since_us: u64,
    ) -> Result<Vec<UtilizationSample>, NvmlError> {
        let function = "nvmlDeviceGetProcessUtilization";
        let f = self
            .nvml
            .api
            .process_utilization
            .ok_or_else(|| not_exported(function))?;
        let listed = self.list(function, |count, buf| {
            // SAFETY: as for the process lists: `buf` is null with a capacity of 0, or writable
            // for `*count` entries laid out as nvmlProcessUtilizationSample_t.
            unsafe { f(self.raw, buf, count, since_us) }
        });
        match listed {
            Err(e) if e.code == code::NOT_FOUND => Ok(Vec::new()),
            r => r,
        }
    }

    /// NVML's list protocol: ask with a capacity (0 and no buffer at first); on
    /// `NVML_ERROR_INSUFFICIENT_SIZE` the count says how many entries are needed, so allocate
    /// them and ask again (a process may have appeared meanwhile, hence a few tries).
    fn list<T: Default + Clone>(
        &self,
        function: &'static str,
        mut call: impl FnMut(*mut c_uint, *mut T) -> Return,
    ) -> Result<Vec<T>, NvmlError> {
        let mut capacity: c_uint = 0;
        for _ in 0..LIST_TRIES {
            let mut buf = vec![T::default(); capacity as usize];
            let mut count = capacity;
            let ptr = if buf.is_empty() {
                ptr::null_mut()
            } else {
                buf.as_mut_ptr()
            };
            let rc = call(&mut count, ptr);
            // At least one more than asked for, so that every try makes progress.
            let grown = count.max(capacity + 1).min(MAX_LIST_ENTRIES);
            match rc {
                // A size query that says there is something to fetch.
                code::SUCCESS if capacity == 0 && count > 0 => capacity = grown,
                code::SUCCESS => {
                    buf.truncate(count.min(capacity) as usize);
                    return Ok(buf);
                }
                code::INSUFFICIENT_SIZE if capacity < MAX_LIST_ENTRIES => capacity = grown,
                rc => return Err(self.nvml.check(function, rc).unwrap_err()),
            }
        }
        Err(NvmlError {
            function,
            code: code::INSUFFICIENT_SIZE,
            text: format!("the list kept growing over {LIST_TRIES} tries"),
        })
    }
}

/// What an optional function the library does not export answers.
fn not_exported(function: &'static str) -> NvmlError {
    NvmlError {
        function,
        code: code::FUNCTION_NOT_FOUND,
        text: "not exported by this libnvidia-ml (an older driver)".to_owned(),
    }
}

/// `nvmlErrorString(rc)`.
fn error_text(error_string: ErrorStringFn, rc: Return) -> String {
    // SAFETY: `nvmlErrorString` accepts any code, needs no initialisation, and returns null or
    // a pointer to a static NUL-terminated string.
    let text = unsafe { error_string(rc) };
    if text.is_null() {
        return "no description".to_owned();
    }
    // SAFETY: non-null, so a static NUL-terminated string (above), never freed.
    unsafe { CStr::from_ptr(text) }
        .to_string_lossy()
        .into_owned()
}

/// The NUL-terminated text in `buf`; all of it if a broken library left no NUL.
fn c_string(buf: &[c_char]) -> String {
    let bytes: Vec<u8> = buf.iter().map(|&c| c as u8).collect();
    match CStr::from_bytes_until_nul(&bytes) {
        Ok(s) => s.to_string_lossy().into_owned(),
        Err(_) => String::from_utf8_lossy(&bytes).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_strings_stop_at_the_nul_and_survive_its_absence() {
        let mut buf = [0 as c_char; 8];
        for (b, c) in buf.iter_mut().zip(b"GPU-1\0xy") {
            *b = *c as c_char;
        }
        assert_eq!(c_string(&buf), "GPU-1");
        let full = [b'a' as c_char; 4];
        assert_eq!(c_string(&full), "aaaa");
    }

    #[test]
    fn a_library_that_is_not_there_fails_to_load_with_the_loaders_words() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("libnvidia-ml.so.1");
        match Nvml::load(path.as_os_str()) {
            Err(LoadError::Library(m)) => assert!(m.contains("libnvidia-ml.so.1"), "{m}"),
            Err(other) => panic!("{other:?}"),
            Ok(_) => panic!("loaded a file that does not exist"),
        }
    }
}
