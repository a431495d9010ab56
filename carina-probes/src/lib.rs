//! Energy probes for Carina, and the detection that picks them.
//!
//! - [`powercap`]: RAPL through `/sys/class/powercap` (root-only since Linux 5.10).
//! - [`perf_rapl`]: RAPL through perf_event's `power` PMU (`CAP_PERFMON` suffices).
//! - [`nvml`]: NVIDIA GPUs through NVML, loaded at run time (feature `nvml`).
//! - [`model`]: the estimation model for machines without counters, labelled `estimated`.
//!
//! [`detect`] returns the chosen probes and, for each source it did not choose, the reason.

#![deny(missing_docs)]

pub mod cpuinfo;
pub mod model;
pub mod nvml;
pub mod perf_rapl;
pub mod powercap;

pub use model::{ModelOptions, estimation_model, estimation_model_with};

use carina_core::{EnergyProbe, procfs};
use std::path::PathBuf;

/// The outcome of [`detect`].
pub struct Detection {
    /// Probes to use, best first.
    pub probes: Vec<Box<dyn EnergyProbe>>,
    /// Sources considered and not used, with the reason.
    pub not_chosen: Vec<NotChosen>,
}

/// A source that was not used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotChosen {
    /// Source name, e.g. `rapl-powercap`.
    pub name: String,
    /// Why, and what would make it usable.
    pub reason: String,
}

impl NotChosen {
    /// The `run_start.energy_sources` entry that lists it as unused, with its reason: the model
    /// is an estimate, every other source a measurement.
    pub fn into_source(self) -> carina_core::EnergySource {
        let kind = if self.name == "model" {
            carina_core::EnergyKind::Estimated
        } else {
            carina_core::EnergyKind::Measured
        };
        carina_core::EnergySource::not_used(self.name, kind, self.reason)
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
    fn describe(&self) -> carina_core::EnergySource {
        let mut d = self.inner.describe();
        d.source = format!("{} x PUE {}", d.source, self.pue);
        d
    }
    fn scope(&self) -> carina_core::ProbeScope {
        self.inner.scope()
    }
    fn domains(&self) -> Vec<String> {
        self.inner.domains()
    }
    fn read(&mut self, out: &mut [carina_core::Joules]) -> Result<(), carina_core::ProbeError> {
        self.inner.read(out)?;
        for o in out.iter_mut() {
            *o = *o * self.pue;
        }
        Ok(())
    }
    fn band(&self) -> Option<(carina_core::Joules, carina_core::Joules)> {
        self.inner
            .band()
            .map(|(lo, hi)| (lo * self.pue, hi * self.pue))
    }
    fn knows_users(&self) -> bool {
        self.inner.knows_users()
    }
    fn usage_share(&mut self, pids: &[u32], out: &mut [Option<f64>]) {
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
/// - GPU: NVML when a driver is present.
/// - Otherwise the estimation model (CPU, memory, and GPUs seen on the PCI bus that NVML does not
///   measure), labelled `estimated`.
///
/// Every source not used is listed in [`Detection::not_chosen`] with the reason. `model.pue`
/// applies to measured sources too.
pub fn detect_with(roots: &Roots, model: &ModelOptions) -> Detection {
    let pue = if model.pue.is_finite() && model.pue >= 1.0 {
        model.pue
    } else {
        1.0
    };
    let mut probes: Vec<Box<dyn EnergyProbe>> = Vec::new();
    let mut not_chosen = Vec::new();
    let mut reject = |name: &str, reason: String| {
        not_chosen.push(NotChosen {
            name: name.to_owned(),
            reason,
        })
    };

    let perf = perf_rapl::PerfRaplProbe::open(&roots.perf_pmu);
    let powercap = powercap::PowercapProbe::open(&roots.powercap);
    let cpu_measured = match (perf, powercap) {
        (Ok(perf), Ok(pc)) => {
            let note = match perf_rapl::cross_check(&perf.domains(), &pc.domains()) {
                Ok(()) => "same domains as rapl-perf, which is preferred".to_owned(),
                Err(diff) => format!("rapl-perf is preferred; the two disagree: {diff}"),
            };
            reject("rapl-powercap", note);
            probes.push(boxed(perf, pue));
            true
        }
        (Ok(perf), Err(e)) => {
            reject("rapl-powercap", e.to_string());
            probes.push(boxed(perf, pue));
            true
        }
        (Err(e), Ok(pc)) => {
            reject("rapl-perf", e.to_string());
            probes.push(boxed(pc, pue));
            true
        }
        (Err(pe), Err(ce)) => {
            reject("rapl-perf", pe.to_string());
            reject("rapl-powercap", ce.to_string());
            false
        }
    };

    let gpu_measured = if roots.nvml {
        match nvml::NvmlProbe::open() {
            Ok(p) => {
                probes.push(boxed(p, pue));
                true
            }
            Err(e) => {
                reject("nvml", e.to_string());
                false
            }
        }
    } else {
        reject("nvml", "not tried (disabled by the caller)".to_owned());
        false
    };

    if cpu_measured {
        reject(
            "model",
            "not needed: RAPL measures the CPU (GPUs without NVML are not estimated alongside \
             measurements)"
                .to_owned(),
        );
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
