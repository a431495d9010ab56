//! Carina's NVML binding for real: a fake `libnvidia-ml.so.1` is compiled from C
//! (`fake_nvml.c`, the prototypes and layouts of nvml.h, scripted answers) with the system C
//! compiler into a temp dir, and loaded by path through the real backend, [`NvmlLibrary`].
//! Names, UUIDs, energy, power, process lists, utilisation samples and error codes must come
//! back as the C side wrote them; the probe must read the fake like a GPU.
//!
//! Needs a C compiler (`cc`, or `$CC`): without one these tests fail and say so.

use super::common::{ROOT, USER, unavailable};
use carina_probes::nvml::{GpuBackend, GpuInfo, NvmlLibrary, NvmlProbe, verify_library};
use carina_runtime::energy::UnavailableCause;
use carina_runtime::record::Basis;
use carina_runtime::{EnergyProbe, Joules, Reading, UsageShare};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use tempfile::TempDir;

const LONG_NAME: &str =
    "Fake GPU One, whose product name is longer than the 64 bytes of old buffers";
const UUID_0: &str = "GPU-00000000-1111-2222-3333-444444444444";
const UUID_1: &str = "GPU-55555555-6666-7777-8888-999999999999";

/// Compiles `fake_nvml.c` with `defines` into a fresh temp dir: the dir (keep it alive) and
/// the library's path. Each test gets its own file, so the fakes' state is not shared.
fn fake_library(defines: &[String]) -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("fake_nvml.c");
    std::fs::write(&source, include_str!("fake_nvml.c")).unwrap();
    let library = dir.path().join("libnvidia-ml.so.1");
    let cc = std::env::var_os("CC").unwrap_or_else(|| "cc".into());
    let output = Command::new(&cc)
        .args(["-shared", "-fPIC", "-std=c11", "-D_POSIX_C_SOURCE=199309L"])
        .args(["-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&library)
        .arg(&source)
        .args(defines.iter().map(|d| format!("-D{d}")))
        .output();
    let cc = cc.to_string_lossy();
    match output {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "these tests compile a fake libnvidia-ml.so with the system C compiler, and `{cc}` \
             is not installed ({e}): install one (Debian/Ubuntu: `apt-get install gcc`) or point \
             CC at one"
        ),
        Err(e) => panic!("cannot run the C compiler `{cc}`: {e}"),
        Ok(o) if !o.status.success() => panic!(
            "`{cc}` could not compile {}:\n{}",
            source.display(),
            String::from_utf8_lossy(&o.stderr)
        ),
        Ok(_) => (dir, library),
    }
}

/// A sysfs tree with no PCI device, for the explanations.
fn no_pci() -> TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn names_energy_power_and_error_codes_round_trip() {
    let (_dir, lib) = fake_library(&[]);
    let mut nvml = NvmlLibrary::load(&lib).unwrap();
    assert_eq!(
        nvml.devices().unwrap(),
        [
            GpuInfo {
                index: 0,
                name: "Fake GPU Zero".into(),
                uuid: UUID_0.into(),
            },
            // Longer than the 64-byte buffers of old drivers: the binding passes 96.
            GpuInfo {
                index: 1,
                name: LONG_NAME.into(),
                uuid: UUID_1.into(),
            },
        ]
    );
    assert_eq!(
        nvml.versions(),
        "driver 999.99.99, NVML 13.999.99.99",
        "the system strings"
    );
    // The counter moves at 250 W: 64 bits of millijoules, unchanged by the trip.
    let first = nvml.total_energy_mj(0).unwrap().unwrap();
    std::thread::sleep(Duration::from_millis(10));
    let second = nvml.total_energy_mj(0).unwrap().unwrap();
    assert!(first > 1_000_000, "{first}");
    assert!(
        second >= first + 2_500,
        "{first} then {second}: 10 ms at 250 W"
    );
    // No counter (NOT_SUPPORTED) is not an error.
    assert_eq!(nvml.total_energy_mj(1), Ok(None));
    assert_eq!(nvml.power_mw(0), Ok(250_000));
    assert_eq!(nvml.power_mw(1), Ok(75_000));
    // Error codes come back with NVML's text for them and the function that failed.
    assert_eq!(
        nvml.power_mw(7).unwrap_err(),
        "nvmlDeviceGetHandleByIndex_v2: Invalid Argument (NVML error 2)"
    );
    assert_eq!(
        nvml.devices().unwrap().len(),
        2,
        "a failed call leaves NVML usable"
    );
}

#[test]
fn process_lists_and_utilisation_round_trip() {
    let (_dir, lib) = fake_library(&[]);
    let mut nvml = NvmlLibrary::load(&lib).unwrap();
    assert!(nvml.knows_processes());
    // Three entries of 24 bytes: a layout that differs from nvml.h would garble the later pids.
    assert_eq!(nvml.compute_processes(0), Ok(vec![101, 202, 303]));
    // A process appears between the size query and the fill: the binding asks again.
    assert_eq!(nvml.graphics_processes(0), Ok(vec![7, 8, 9]));
    assert_eq!(
        nvml.compute_processes(1).unwrap_err(),
        "nvmlDeviceGetComputeRunningProcesses_v3: Insufficient Permissions (NVML error 4)"
    );
    assert_eq!(
        nvml.graphics_processes(1).unwrap_err(),
        "nvmlDeviceGetGraphicsRunningProcesses_v3: GPU is lost (NVML error 15)"
    );

    let all = nvml.process_utilization(0, 0).unwrap();
    let got: Vec<(u32, u32)> = all.iter().map(|s| (s.pid, s.sm_util)).collect();
    assert_eq!(got, [(101, 40), (202, 60), (303, 0)]);
    let base = all[0].timestamp_us;
    assert!(
        base > 1_600_000_000_000_000,
        "{base}: microseconds since 1970"
    );
    let stamps: Vec<u64> = all.iter().map(|s| s.timestamp_us).collect();
    assert_eq!(stamps, [base, base + 1, base + 2]);
    // Only what is newer than asked; nothing newer is no sample, not an error (NOT_FOUND).
    let newer = nvml.process_utilization(0, base).unwrap();
    assert_eq!(newer.iter().map(|s| s.pid).collect::<Vec<_>>(), [202, 303]);
    assert_eq!(nvml.process_utilization(0, base + 2), Ok(vec![]));
    assert_eq!(
        nvml.process_utilization(1, 0).unwrap_err(),
        "nvmlDeviceGetProcessUtilization: Not Supported (NVML error 3)"
    );
}

/// The whole probe over the real backend: domains, devices, energy by counter and by power,
/// and the run's share of a GPU from the processes and samples the fake lists.
#[test]
fn the_probe_reads_the_fake_like_a_gpu() {
    let (_dir, lib) = fake_library(&[]);
    let sys = no_pci();
    // The pid-namespace check looks for the listed pids here: 101 and 202 exist.
    let proc = tempfile::tempdir().unwrap();
    for pid in ["101", "202"] {
        std::fs::create_dir(proc.path().join(pid)).unwrap();
    }
    let mut probe = NvmlProbe::open_as(&lib, sys.path(), &USER)
        .unwrap()
        .with_proc_root(proc.path());
    let src = probe.describe();
    assert_eq!(src.domains, ["gpu-0", "gpu-1"]);
    assert_eq!(src.basis, Some(Basis::Counter));
    let devices: Vec<(u32, &str, Option<&str>)> = src
        .devices
        .iter()
        .map(|d| (d.index, d.name.as_str(), d.uuid.as_deref()))
        .collect();
    assert_eq!(
        devices,
        [
            (0, "Fake GPU Zero", Some(UUID_0)),
            (1, LONG_NAME, Some(UUID_1))
        ]
    );
    assert!(
        src.source
            .contains("gpu-0 Fake GPU Zero (measured by energy counter)")
    );
    assert!(src.source.contains("(integrated from power samples"));

    let start = Instant::now();
    let mut first = Reading::new(2);
    probe.read(&mut first).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let mut second = Reading::new(2);
    probe.read(&mut second).unwrap();
    let wall = start.elapsed().as_secs_f64();
    let gained = |i: usize| second.energy[i].0 - first.energy[i].0;
    // At least 50 ms passed between the reads, and at most `wall`: 250 W by counter and 75 W
    // by power samples, within those bounds whatever the scheduler did.
    assert!(
        gained(0) >= 250.0 * 0.050 - 0.001 && gained(0) <= 250.0 * wall + 0.001,
        "gpu-0: {} J in at most {wall} s",
        gained(0)
    );
    assert!(
        gained(1) >= 75.0 * 0.050 - 1e-6 && gained(1) <= 75.0 * wall + 1e-6,
        "gpu-1: {} J in at most {wall} s",
        gained(1)
    );
    assert!(second.energy.iter().all(|e| *e >= Joules::ZERO));
    assert_eq!(second.report.read_errors, 0, "{:?}", second.report);

    // Process scope: pid 202 is the run's. On gpu-0 it shares with 101 (and the graphics
    // processes, idle): 60 % of the SM use sampled. gpu-1's list is refused: unknown, the CPU
    // share applies, with a warning.
    assert!(probe.knows_users());
    let mut out = [None, None];
    probe.usage_share(&[202], &mut out);
    assert_eq!(out, [Some(UsageShare::by_use(0.6)), None]);
    let mut third = Reading::new(2);
    probe.read(&mut third).unwrap();
    let warnings = third.report.warnings.join("\n");
    assert!(
        warnings.contains("Insufficient Permissions (NVML error 4)"),
        "{warnings}"
    );
}

/// What nvmlInit_v2's codes mean to the user: the cause and a fix that fits it and them.
#[test]
fn init_errors_become_causes_with_fixes() {
    let sys = no_pci();
    let (_d, not_loaded) = fake_library(&["FAKE_INIT_RESULT=9".into()]);
    let u = unavailable(NvmlProbe::open_as(&not_loaded, sys.path(), &USER).unwrap_err());
    assert_eq!(u.cause, UnavailableCause::Absent);
    assert!(
        u.reason.contains("kernel driver is not running"),
        "{}",
        u.reason
    );
    assert!(u.fix.unwrap().contains("`sudo modprobe nvidia`"));

    let (_d, refused) = fake_library(&["FAKE_INIT_RESULT=4".into()]);
    let u = unavailable(NvmlProbe::open_as(&refused, sys.path(), &USER).unwrap_err());
    assert_eq!(u.cause, UnavailableCause::Permission);
    let fix = u.fix.unwrap();
    assert!(
        fix.contains("/dev/nvidiactl") && fix.contains("run as root"),
        "{fix}"
    );
    // Root is refused only in a container the GPUs were not passed to.
    let u = unavailable(NvmlProbe::open_as(&refused, sys.path(), &ROOT).unwrap_err());
    assert_eq!(u.cause, UnavailableCause::Permission);
    let fix = u.fix.unwrap();
    assert!(
        fix.contains("--gpus all") && !fix.contains("run as root"),
        "{fix}"
    );

    let (_d, mismatch) = fake_library(&["FAKE_INIT_RESULT=18".into()]);
    let u = unavailable(NvmlProbe::open_as(&mismatch, sys.path(), &USER).unwrap_err());
    assert_eq!(u.cause, UnavailableCause::Outdated);
    assert!(
        u.reason
            .contains("nvmlInit_v2: RM has detected an NVML/RM version mismatch. (NVML error 18)"),
        "{}",
        u.reason
    );
    assert!(u.fix.unwrap().starts_with("reboot"));
}

#[test]
fn a_library_without_a_required_function_is_too_old() {
    let (_d, lib) = fake_library(&["FAKE_NO_HANDLE".into()]);
    let u = unavailable(NvmlProbe::open_as(&lib, no_pci().path(), &USER).unwrap_err());
    assert_eq!(u.cause, UnavailableCause::Outdated);
    assert!(
        u.reason.contains("lacks nvmlDeviceGetHandleByIndex_v2"),
        "{}",
        u.reason
    );
    assert!(u.fix.unwrap().starts_with("update the NVIDIA driver"));
}

/// A driver without the optional functions: energy from power samples, process queries that
/// say why they cannot answer, versions unknown.
#[test]
fn an_old_driver_measures_by_power_and_says_what_it_lacks() {
    let (_d, lib) = fake_library(&["FAKE_OLD_DRIVER".into()]);
    let mut nvml = NvmlLibrary::load(&lib).unwrap();
    assert_eq!(nvml.total_energy_mj(0), Ok(None));
    assert_eq!(
        nvml.compute_processes(0).unwrap_err(),
        "nvmlDeviceGetComputeRunningProcesses_v3: not exported by this libnvidia-ml (an older \
         driver) (NVML error 13)"
    );
    assert!(nvml.process_utilization(0, 0).is_err());
    assert!(
        nvml.versions().contains("not exported"),
        "{}",
        nvml.versions()
    );
    let probe = NvmlProbe::with_backend(Box::new(nvml)).unwrap();
    assert_eq!(probe.describe().basis, Some(Basis::IntegratedPower));
}

#[test]
fn nvml_is_shut_down_when_the_backend_is_dropped() {
    let marker_dir = tempfile::tempdir().unwrap();
    let marker = marker_dir.path().join("shut-down");
    let (_d, lib) = fake_library(&[format!(
        "FAKE_SHUTDOWN_MARKER={:?}",
        marker.display().to_string()
    )]);
    let probe = NvmlProbe::open_as(&lib, no_pci().path(), &USER).unwrap();
    assert!(!marker.exists());
    drop(probe);
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap(),
        "nvmlShutdown\n",
        "dropping the probe shuts NVML down"
    );
}

/// `cargo run --example nvml_check` prints this for the default library; on the fake, every
/// reading is plausible.
#[test]
fn the_check_passes_on_a_working_fake() {
    let (_d, lib) = fake_library(&[]);
    let report = verify_library(&lib);
    assert!(report.starts_with("NVML check: ok\n"), "{report}");
    for needle in [
        "driver 999.99.99, NVML 13.999.99.99",
        "2 GPU(s)",
        "gpu-0: Fake GPU Zero",
        UUID_0,
        "energy counter: yes",
        "energy counter: no",
        "gpu-0 instantaneous power (NVML): 250.0 W",
        "gpu-0 processes: compute [101, 202, 303]",
    ] {
        assert!(report.contains(needle), "{needle:?} not in\n{report}");
    }
}

/// The library path is the caller's: a name the loader cannot find fails at once, with the
/// loader's words.
#[test]
fn a_library_that_is_not_there_is_absent() {
    let dir = tempfile::tempdir().unwrap();
    let missing: &Path = &dir.path().join("libnvidia-ml.so.1");
    let u = unavailable(NvmlLibrary::load_as(missing, no_pci().path(), &USER).unwrap_err());
    assert_eq!(u.cause, UnavailableCause::Absent);
    assert!(
        u.reason.contains("cannot open shared object file"),
        "{}",
        u.reason
    );
}
