//! `nvml_check`: NVML read for real, for checking the probe on a GPU machine.

use super::{DEFAULT_LIBRARY, Mode, NvmlLibrary, NvmlProbe};
use carina_runtime::Joules;
use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::time::{Duration, Instant};

/// Opens NVML, reads every GPU twice 200 ms apart, and describes what it saw: device count,
/// names, UUIDs, whether each has an energy counter, the joules measured and the watts they
/// imply, next to NVML's instantaneous power.
///
/// The first line is `NVML check: ok`, `NVML check: WARN` (readings implausible: no energy in
/// 200 ms, or over 2 kW) or `NVML check: FAILED` (NVML unusable or a read failed), so that a
/// script can act on it. Meant for checking the probe on a real GPU machine.
pub fn verify_report() -> String {
    verify_library(DEFAULT_LIBRARY)
}

/// [`verify_report`] on the NVML library `library` (a file name the dynamic loader searches
/// for, or a path).
pub fn verify_library(library: impl AsRef<OsStr>) -> String {
    use std::fmt::Write as _;

    const INTERVAL: Duration = Duration::from_millis(200);
    let t = Instant::now();
    let backend = match NvmlLibrary::load(library) {
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
        let counter = match gpu.mode {
            Mode::Counter => "yes",
            Mode::Power { .. } => "no",
            Mode::Pending => "unknown",
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
    // The queries behind the run's share of each GPU; informative only, they do not change
    // the status (the energy is right without them).
    for gpu in &probe.gpus {
        let index = gpu.info.index;
        let list = |r: Result<Vec<u32>, String>| match r {
            Ok(p) => format!("{p:?}"),
            Err(e) => format!("unavailable ({e})"),
        };
        let compute = list(probe.backend.compute_processes(index));
        let graphics = list(probe.backend.graphics_processes(index));
        let util = match probe.backend.process_utilization(index, 0) {
            Ok(s) => {
                let busy: BTreeSet<u32> =
                    s.iter().filter(|s| s.sm_util > 0).map(|s| s.pid).collect();
                format!(
                    "{} sample(s) held by the driver, busy pid(s) {busy:?}",
                    s.len()
                )
            }
            Err(e) => format!("unavailable ({e})"),
        };
        let _ = writeln!(
            body,
            "{} processes: compute {compute}, graphics {graphics}; per-process utilisation: {util}",
            gpu.domain()
        );
    }
    let warnings = probe.take_report().warnings;
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

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
