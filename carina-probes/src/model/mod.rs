//! The estimation model for machines without energy counters (VMs, containers, laptops without
//! RAPL access): CPU, memory and GPUs that are seen but not measured, each its own domain.
//!
//! # The model
//!
//! Power is summed over parts, each reported as a domain, and multiplied by the PUE:
//!
//! ```text
//! P = PUE x (P_cpu(u) + P_memory + P_gpu)
//! P_cpu(u)  = N_vcpu x (W_min + (W_max - W_min) x u)
//! P_memory  = GB x W_per_GB
//! P_gpu     = sum over GPUs seen of their idle watts
//! ```
//!
//! - `u`: host CPU utilisation over each sampling interval, from `/proc/stat`.
//! - `N_vcpu`: `cpuN` lines of `/proc/stat` (else `processor` entries of `/proc/cpuinfo`, else 1).
//! - `W_min`, `W_max` (watts per vCPU) are chosen in this order:
//!   1. `tdp_w` given by the user (whole machine, all vCPUs): `W_max = tdp_w / N_vcpu`,
//!      `W_min = W_max x min/max` of the CCF row for this CPU (see 3.), e.g. 0.22 for
//!      `AMD EPYC 3rd Gen`, 0.16 for `Cascade Lake`.
//!   2. The CPU's own Cloud Carbon Footprint (CCF) row when `/proc/cpuinfo`'s vendor, family and
//!      model map to one ([`machine::classify`], "exact").
//!   3. Otherwise, if `model name` matches a row of the TDP table exactly
//!      ([`coefficients::CPU_TDP`], from `cpu_tdp.csv`: AMD/Intel spec sheets via codecarbon,
//!      TechPowerUp via Boavizta): `W_max = TDP / threads per package` (one vCPU = one hardware
//!      thread), `W_min = W_max x min/max` of the stand-in CCF row (nearest older generation of
//!      the same vendor, or CCF's AWS average for an unknown CPU).
//!   4. Otherwise the stand-in CCF row itself ("nearest" or "average").
//!
//!   When the CPU has its own CCF row and also a TDP row, the TDP is a cross-check: it only
//!   enters the band (below).
//! - Memory: `GB` = `MemTotal` of `/proc/meminfo` in GiB (2^30 bytes, as cloud providers size
//!   instance memory; slightly below the installed RAM, which the kernel partly reserves; in a
//!   container without lxcfs this is the host's memory). `W_per_GB` = 0.392 by default: CCF's
//!   0.000392 kWh per GB-hour ([`coefficients::CCF_MEMORY_W_PER_GB`]); Green Algorithms uses
//!   0.3725 W per GB ([`coefficients::GREEN_ALGORITHMS_MEMORY_W_PER_GB`]). Memory power does
//!   not depend on utilisation in this model.
//! - GPUs: NVIDIA display/3D controllers in `<sys>/bus/pci/devices` (vendor 0x10de, class
//!   0x0300xx or 0x0302xx; audio functions and NVSwitches are other classes). They are counted
//!   at their idle watts because their utilisation is unknown here, so the `gpu` domain is a
//!   **lower bound**; the band's high end puts them at their TDP. Idle watts: CCF's `min_w` for
//!   products CCF lists, else `TDP x 0.1144` (the median CCF idle/max ratio); TDP: the board
//!   power in [`coefficients::NVIDIA_GPUS`]; an NVIDIA GPU not in that table gets CCF's NVIDIA
//!   average, 27.8 W idle / 241.55 W max. Turn this off (`gpu_tdp: false`) where another probe
//!   (NVML) measures the GPUs.
//! - PUE: 1.0 by default (IT power only). Published values to choose from: on-premise 1.58,
//!   AWS 1.135, Google Cloud 1.1, Azure 1.185, Alibaba 1.3 (CCF @b7a049c `PUE_AVG` constants);
//!   unknown data centre 1.56 (Green Algorithms, from the Uptime Institute 2024 survey). See
//!   the `PUE_*` constants in [`coefficients`].
//! - `include_idle: false` gives the **marginal energy** view: only the power that utilisation
//!   adds. The idle term of the CPU (`N_vcpu x W_min`) and of the GPUs is dropped, and memory,
//!   all idle in this model, is left out. A user-given constant power has no idle/dynamic split
//!   and is not affected.
//!
//! Whole-machine overrides replace all of the above (no memory or GPU parts are added, as the
//! figure already covers the machine), in one domain named `machine`: `constant_w` (drawn on
//! behalf of the job whatever the utilisation: process scope, like
//! [`PowerModel::Constant`]), else `idle_w` / `max_w` (the
//! linear model for the whole machine; a missing one is derived with the CPU row's min/max
//! ratio: `idle = max x ratio` or `max = idle / ratio`). PUE and `include_idle` apply to them.
//! Invalid option values (negative, not finite, idle above max, PUE below 1) are ignored and
//! the run file's `reason` says so.
//!
//! # The band
//!
//! Every estimate carries cumulative low and high bounds of the total energy (`Reading::band`
//! of [`EnergyProbe::read`](carina_runtime::EnergyProbe::read)): each part has a low and a high
//! power law integrated exactly like its estimate, and the bounds are their sums. Per part:
//!
//! - CPU, coefficients from tables: the idle term (`W_min`) and the dynamic term
//!   (`W_max - W_min`) per vCPU each range from the smallest to the largest value among the CCF
//!   rows of the CPU's vendor (all rows and the AWS average for a vendor CCF does not cover),
//!   the coefficients in use, and the TDP-derived coefficients when the TDP table has the CPU.
//!   Example, an AMD CPU without a TDP row: idle 0.45..0.82 W, dynamic 1.22..1.73 W per vCPU.
//! - Memory: `GB x [0.3725 x 0.75, 0.392 x 1.25]` = 0.279..0.49 W per GB: the two published
//!   coefficients, widened by Carina's own 25 % allowance ([`coefficients::MEMORY_SPREAD`]).
//! - GPU: from idle watts (low, as the estimate) to TDP (high).
//! - User-given values (`tdp_w`, `memory_w_per_gb`, `idle_w`/`max_w`, `constant_w`): the value
//!   `x (1 -+ 0.10)` ([`coefficients::USER_OVERRIDE_SPREAD`], Carina's own allowance).
//! - All bounds are multiplied by the PUE; with `include_idle: false` they lose their idle
//!   terms like the estimate (GPU: 0..TDP - idle).
//!
//! Low <= estimate <= high holds term by term, hence at every utilisation and cumulatively.

use crate::coefficients::{self, CpuCoefficients};
use crate::machine::{self, Classification, CpuIdentity, memory_gb};
use carina_runtime::record::{DeviceInfo, SourceId};
use carina_runtime::{ProbeScope, Watts, procfs};

mod probe;
pub use probe::{ModelPart, ModelProbe, PartPower, PowerModel};
use std::path::Path;

/// Options of the estimation model; see the [module documentation](self) for the rules.
#[derive(Debug, Clone)]
pub struct ModelOptions {
    /// CPU power at full load for the whole machine (all its vCPUs), watts; replaces the table
    /// coefficients. Idle = this x the CCF min/max ratio of the CPU's family.
    pub tdp_w: Option<f64>,
    /// Whole-machine watts at 0 % CPU (with `max_w`): replaces the CPU, memory and GPU parts.
    pub idle_w: Option<f64>,
    /// Whole-machine watts at 100 % CPU (with `idle_w`).
    pub max_w: Option<f64>,
    /// Constant watts drawn on behalf of the job (process scope); replaces everything else.
    pub constant_w: Option<f64>,
    /// Power usage effectiveness, >= 1 (default 1.0: IT power only). Applied to every domain.
    pub pue: f64,
    /// Count idle power (default true). False: the marginal energy view.
    pub include_idle: bool,
    /// Add the `memory` domain (default true).
    pub memory: bool,
    /// Add the `gpu` domain for NVIDIA GPUs seen on the PCI bus (default true). Set false where
    /// another probe measures them.
    pub gpu_tdp: bool,
    /// Memory watts per GB (default 0.392, CCF).
    pub memory_w_per_gb: Option<f64>,
}

impl Default for ModelOptions {
    fn default() -> Self {
        ModelOptions {
            tdp_w: None,
            idle_w: None,
            max_w: None,
            constant_w: None,
            pue: 1.0,
            include_idle: true,
            memory: true,
            gpu_tdp: true,
            memory_w_per_gb: None,
        }
    }
}

/// The estimation model for this machine with default options, GPUs looked for under `/sys`.
pub fn estimation_model(proc_root: &Path) -> ModelProbe {
    estimation_model_with(proc_root, Path::new("/sys"), &ModelOptions::default())
}

/// The estimation model from `<proc_root>/{stat,cpuinfo,meminfo}` and
/// `<sys_root>/bus/pci/devices`, with `opts`. Never fails: what cannot be read is left out
/// (memory) or replaced by a documented default (CPU row, 1 vCPU), and the probe's `reason`
/// says so.
pub fn estimation_model_with(proc_root: &Path, sys_root: &Path, opts: &ModelOptions) -> ModelProbe {
    let mut notes = Vec::new();
    let opts = sanitize(opts, &mut notes);
    let pue_text = if opts.pue == 1.0 {
        "PUE 1 (IT power only)".to_owned()
    } else {
        format!(
            "PUE {} (applied to every domain and to the band)",
            num(opts.pue)
        )
    };
    let idle_text = if opts.include_idle {
        "idle power included"
    } else {
        "include_idle=false: marginal energy (idle power excluded)"
    };

    if let Some(w) = opts.constant_w {
        let part = ModelPart::with_spread(
            "machine",
            PartPower::constant(Watts(w)),
            coefficients::USER_OVERRIDE_SPREAD,
        );
        let source = format!(
            "user-given constant power: machine = {} W drawn for the job whatever the \
             utilisation (no memory or GPU parts added); {pue_text}; band: {} W -+10 % \
             (user-given value)",
            num(w),
            num(w)
        );
        return finish(
            ModelProbe::from_parts(vec![part], ProbeScope::Process, source, proc_root)
                .with_name(SourceId::Constant)
                .user_constant(),
            opts.pue,
            notes,
        );
    }

    let cpu = match machine::read_cpuinfo(proc_root) {
        Ok(c) => c,
        Err(e) => {
            notes.push(format!("{e}; the CPU is treated as unknown"));
            CpuIdentity::default()
        }
    };
    let class = machine::classify(&cpu);
    let vcpus = procfs::host_cpu(proc_root)
        .map(|h| h.cpus)
        .ok()
        .or(Some(cpu.logical_cpus).filter(|&n| n > 0))
        .unwrap_or(1);

    if opts.idle_w.is_some() || opts.max_w.is_some() {
        let ratio = class.coefficients.idle_ratio();
        let (idle, max, derived) = match (opts.idle_w, opts.max_w) {
            (Some(i), Some(m)) => (i, m, String::new()),
            (None, Some(m)) => (
                m * ratio,
                m,
                format!(
                    " (idle = max x {}, the min/max ratio of CCF row `{}`)",
                    num(ratio),
                    class.coefficients.family
                ),
            ),
            (Some(i), None) => (
                i,
                i / ratio,
                format!(
                    " (max = idle / {}, the min/max ratio of CCF row `{}`)",
                    num(ratio),
                    class.coefficients.family
                ),
            ),
            (None, None) => unreachable!("checked above"),
        };
        let mut part = ModelPart::with_spread(
            "machine",
            PartPower::linear(Watts(idle), Watts(max)),
            coefficients::USER_OVERRIDE_SPREAD,
        );
        if !opts.include_idle {
            part = part.dynamic_only();
        }
        let source = format!(
            "user-given machine watts: machine = {} + ({} - {}) x u W{derived}, u = host CPU \
             utilisation from /proc/stat (no memory or GPU parts added); {pue_text}; \
             {idle_text}; band: -+10 % (user-given values)",
            num(idle),
            num(max),
            num(idle)
        );
        return finish(
            ModelProbe::from_parts(vec![part], ProbeScope::Host, source, proc_root),
            opts.pue,
            notes,
        );
    }

    let mut parts = Vec::new();
    let mut texts = Vec::new();
    let mut bands = Vec::new();
    let mut devices = Vec::new();

    let (cpu_part, cpu_text, cpu_band) = cpu_part(&cpu, &class, vcpus, &opts);
    parts.push(cpu_part);
    texts.push(cpu_text);
    bands.push(cpu_band);

    if opts.memory && opts.include_idle {
        match memory_gb(proc_root) {
            Ok(gb) => {
                let (part, text, band) = memory_part(gb, opts.memory_w_per_gb);
                parts.push(part);
                texts.push(text);
                bands.push(band);
            }
            Err(e) => notes.push(format!("{e}: no memory domain")),
        }
    } else if opts.memory {
        texts.push(
            "memory: left out (include_idle=false, and memory power is all idle in this model)"
                .to_owned(),
        );
    }

    let seen = gpus::nvidia_gpus(sys_root);
    if !seen.is_empty() && !opts.gpu_tdp {
        texts.push(format!(
            "gpu: {} NVIDIA GPU(s) seen, not counted (gpu_tdp=false)",
            seen.len()
        ));
    } else if !seen.is_empty() {
        let (part, text, band) = gpu_part(&seen, opts.include_idle);
        parts.push(part);
        texts.push(text);
        bands.push(band);
        devices = seen
            .iter()
            .enumerate()
            .map(|(i, g)| {
                DeviceInfo::new(
                    i as u32,
                    format!(
                        "{} [10de:{:04x}] at PCI {}, not measured: {} W idle .. {} W",
                        g.name(),
                        g.device_id,
                        g.address,
                        num(g.idle_w()),
                        num(g.max_w())
                    ),
                    None,
                )
            })
            .collect();
        notes.push(
            "the gpu domain counts idle power only (GPU utilisation unknown without NVML): a \
             lower bound; the band's high end is at TDP"
                .to_owned(),
        );
    }

    let source = format!(
        "estimation model: {}; {pue_text}; {idle_text}; band ({}): {}",
        texts.join("; "),
        "low/high bounds of the total, each part's bounds x PUE",
        bands.join("; ")
    );
    finish(
        ModelProbe::from_parts(parts, ProbeScope::Host, source, proc_root).with_devices(devices),
        opts.pue,
        notes,
    )
}

fn finish(probe: ModelProbe, pue: f64, notes: Vec<String>) -> ModelProbe {
    let probe = probe.with_pue(pue);
    if notes.is_empty() {
        probe
    } else {
        probe.with_reason(notes.join("; "))
    }
}

/// Drops invalid option values, with a note for each.
fn sanitize(opts: &ModelOptions, notes: &mut Vec<String>) -> ModelOptions {
    let mut o = opts.clone();
    let mut check = |name: &str, v: &mut Option<f64>, positive: bool| {
        if let Some(x) = *v
            && !(x.is_finite() && (x > 0.0 || (!positive && x == 0.0)))
        {
            notes.push(format!(
                "{name} = {x} ignored: must be a finite number {}",
                if positive { "> 0" } else { ">= 0" }
            ));
            *v = None;
        }
    };
    check("tdp_w", &mut o.tdp_w, true);
    check("idle_w", &mut o.idle_w, false);
    check("max_w", &mut o.max_w, true);
    check("constant_w", &mut o.constant_w, false);
    check("memory_w_per_gb", &mut o.memory_w_per_gb, false);
    if let (Some(i), Some(m)) = (o.idle_w, o.max_w)
        && i > m
    {
        notes.push(format!(
            "idle_w = {i} and max_w = {m} ignored: idle must not exceed max"
        ));
        o.idle_w = None;
        o.max_w = None;
    }
    if !(o.pue.is_finite() && o.pue >= 1.0) {
        notes.push(format!(
            "pue = {} ignored: must be a finite number >= 1; PUE 1 used",
            o.pue
        ));
        o.pue = 1.0;
    }
    o
}

/// Per-vCPU idle and dynamic watts from a `(min, max)` pair.
fn per_vcpu(min: f64, max: f64) -> PartPower {
    PartPower::linear(Watts(min), Watts(max))
}

fn cpu_part(
    cpu: &CpuIdentity,
    class: &Classification,
    vcpus: u32,
    opts: &ModelOptions,
) -> (ModelPart, String, String) {
    let n = f64::from(vcpus);
    let row: CpuCoefficients = class.coefficients;
    let ratio = row.idle_ratio();
    let tdp_row = machine::tdp_match(cpu);
    let tdp_thread = tdp_row.map(|r| machine::tdp_w_per_thread(r, cpu));
    let tdp_text = match (tdp_row, tdp_thread) {
        (Some(r), Some(w)) => format!(
            "TDP table: {} {} W, {} cores/{} threads = {} W per thread",
            r.model,
            r.tdp_w,
            r.cores,
            if r.threads > 0 {
                r.threads.to_string()
            } else {
                "? (cores x siblings/cpu cores)".to_owned()
            },
            num(w)
        ),
        _ => format!(
            "TDP table: no exact match for `{}`",
            if cpu.model_name.is_empty() {
                "(no model name)"
            } else {
                &cpu.model_name
            }
        ),
    };
    let tdp_candidate = tdp_thread.map(|w| per_vcpu(w * ratio, w));

    if let Some(t) = opts.tdp_w {
        let v = per_vcpu(t / n * ratio, t / n);
        let part = ModelPart::with_spread("cpu", v.scaled(n), coefficients::USER_OVERRIDE_SPREAD);
        let part = if opts.include_idle {
            part
        } else {
            part.dynamic_only()
        };
        let text = format!(
            "cpu: {vcpus} vCPU, user-given TDP {} W for the machine: {} + ({} - {}) x u W per \
             vCPU (idle = {} x TDP, the min/max ratio of CCF row `{}`; {}); {}",
            num(t),
            num(v.idle.0),
            num(v.max().0),
            num(v.idle.0),
            num(ratio),
            row.family,
            class.note,
            tdp_text
        );
        return (part, text, "cpu -+10 % (user-given TDP)".to_owned());
    }

    let (estimate, basis) = match tdp_candidate {
        Some(c) if !class.exact => (
            c,
            format!(
                "from the TDP: max = TDP per thread, idle = max x {} (min/max of CCF row `{}`, \
                 which stands in: {})",
                num(ratio),
                row.family,
                class.note
            ),
        ),
        _ => (
            per_vcpu(row.min_w_per_vcpu, row.max_w_per_vcpu),
            format!(
                "CCF row `{}` ({}): {}",
                row.family,
                if class.exact {
                    "exact"
                } else if class.microarchitecture.is_some() {
                    "nearest"
                } else {
                    "average"
                },
                class.note
            ),
        ),
    };
    let group = coefficients::vendor_rows(cpu.ccf_vendor());
    let candidates = group
        .iter()
        .map(|c| per_vcpu(c.min_w_per_vcpu, c.max_w_per_vcpu))
        .chain(tdp_candidate)
        .chain(std::iter::once(estimate));
    let (low, high) = envelope(candidates);
    let mut part = ModelPart::new("cpu", estimate.scaled(n), low.scaled(n), high.scaled(n));
    if !opts.include_idle {
        part = part.dynamic_only();
    }
    let text = format!(
        "cpu: {vcpus} vCPU (/proc/stat) x ({} + ({} - {}) x u) W per vCPU, {basis}; {}",
        num(estimate.idle.0),
        num(estimate.max().0),
        num(estimate.idle.0),
        tdp_text
    );
    let band = format!(
        "cpu per vCPU idle {}..{} W, dynamic {}..{} W (CCF rows for vendor `{}`{})",
        num(low.idle.0),
        num(high.idle.0),
        num(low.dynamic.0),
        num(high.dynamic.0),
        cpu.ccf_vendor(),
        if tdp_candidate.is_some() {
            ", the TDP and the coefficients in use"
        } else {
            " and the coefficients in use"
        }
    );
    (part, text, band)
}

/// Term-by-term minimum and maximum.
fn envelope(mut it: impl Iterator<Item = PartPower>) -> (PartPower, PartPower) {
    let first = it.next().unwrap_or_default();
    it.fold((first, first), |(lo, hi), p| {
        (
            PartPower {
                idle: Watts(lo.idle.0.min(p.idle.0)),
                dynamic: Watts(lo.dynamic.0.min(p.dynamic.0)),
            },
            PartPower {
                idle: Watts(hi.idle.0.max(p.idle.0)),
                dynamic: Watts(hi.dynamic.0.max(p.dynamic.0)),
            },
        )
    })
}

fn memory_part(gb: f64, user_w_per_gb: Option<f64>) -> (ModelPart, String, String) {
    use coefficients::{CCF_MEMORY_W_PER_GB as CCF, GREEN_ALGORITHMS_MEMORY_W_PER_GB as GA};
    let w = user_w_per_gb.unwrap_or(CCF);
    let estimate = PartPower::constant(Watts(gb * w));
    let (part, band) = match user_w_per_gb {
        Some(_) => (
            ModelPart::with_spread("memory", estimate, coefficients::USER_OVERRIDE_SPREAD),
            "memory -+10 % (user-given W per GB)".to_owned(),
        ),
        None => {
            let s = coefficients::MEMORY_SPREAD;
            let (lo, hi) = (CCF.min(GA) * (1.0 - s), CCF.max(GA) * (1.0 + s));
            (
                ModelPart::new(
                    "memory",
                    estimate,
                    PartPower::constant(Watts(gb * lo)),
                    PartPower::constant(Watts(gb * hi)),
                ),
                format!(
                    "memory {}..{} W per GB (Green Algorithms 0.3725 and CCF 0.392, -+25 %)",
                    num(lo),
                    num(hi)
                ),
            )
        }
    };
    let text = format!(
        "memory: {} GB (MemTotal, /proc/meminfo) x {} W per GB = {} W, whatever the \
         utilisation ({})",
        num(gb),
        num(w),
        num(gb * w),
        if user_w_per_gb.is_some() {
            "user-given W per GB"
        } else {
            "CCF 0.000392 kWh per GB-hour; Green Algorithms uses 0.3725 W per GB"
        }
    );
    (part, text, band)
}

fn gpu_part(seen: &[gpus::SeenGpu], include_idle: bool) -> (ModelPart, String, String) {
    let idle: f64 = seen.iter().map(|g| g.idle_w()).sum();
    let max: f64 = seen.iter().map(|g| g.max_w()).sum();
    let part = if include_idle {
        ModelPart::new(
            "gpu",
            PartPower::constant(Watts(idle)),
            PartPower::constant(Watts(idle)),
            PartPower::constant(Watts(max)),
        )
    } else {
        // Utilisation unknown: the marginal power is anywhere between 0 and TDP - idle.
        ModelPart::new(
            "gpu",
            PartPower::default(),
            PartPower::default(),
            PartPower::constant(Watts(max - idle)),
        )
    };
    let list: Vec<String> = seen
        .iter()
        .map(|g| {
            format!(
                "{} [10de:{:04x}] at {}: idle {} W ({}), TDP {} W",
                g.name(),
                g.device_id,
                g.address,
                num(g.idle_w()),
                g.idle_basis(),
                num(g.max_w())
            )
        })
        .collect();
    let text = format!(
        "gpu: {} NVIDIA GPU(s) seen on the PCI bus, not measured (utilisation unknown), \
         counted at {} W{}: {}",
        seen.len(),
        if include_idle {
            num(idle)
        } else {
            "0".to_owned()
        },
        if include_idle {
            " idle, a lower bound"
        } else {
            " (marginal view: idle excluded)"
        },
        list.join(", ")
    );
    let band = if include_idle {
        format!("gpu {}..{} W (idle to TDP)", num(idle), num(max))
    } else {
        format!("gpu 0..{} W (TDP - idle)", num(max - idle))
    };
    (part, text, band)
}

/// A number for the run file: up to 4 decimals, trailing zeros dropped.
fn num(x: f64) -> String {
    let s = format!("{x:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

/// NVIDIA GPUs on the PCI bus, from sysfs.
pub mod gpus {
    use crate::coefficients::{self, GpuSpec, NVIDIA_PCI_VENDOR};
    use std::path::Path;

    /// An NVIDIA GPU seen in `<sys>/bus/pci/devices`.
    #[derive(Debug, Clone, PartialEq)]
    pub struct SeenGpu {
        /// PCI address, e.g. `0000:00:04.0` (the directory name).
        pub address: String,
        /// PCI device id.
        pub device_id: u16,
        /// Carina's table row for the device id, if any.
        pub spec: Option<&'static GpuSpec>,
    }

    impl SeenGpu {
        /// Product name, or a description of the unknown device.
        pub fn name(&self) -> String {
            match self.spec {
                Some(s) => s.name.to_owned(),
                None => "NVIDIA GPU not in Carina's table".to_owned(),
            }
        }

        /// Idle watts ([`GpuSpec::idle_w`]; CCF's NVIDIA average when unknown).
        pub fn idle_w(&self) -> f64 {
            self.spec
                .map_or(coefficients::ccf_gpu_average().min_w, GpuSpec::idle_w)
        }

        /// Full-load watts, the TDP ([`GpuSpec::max_w`]; CCF's NVIDIA average when unknown).
        pub fn max_w(&self) -> f64 {
            self.spec
                .map_or(coefficients::ccf_gpu_average().max_w, GpuSpec::max_w)
        }

        /// Where the idle watts come from.
        pub fn idle_basis(&self) -> &'static str {
            match self.spec {
                Some(s) if s.ccf().is_some() => "CCF min",
                Some(s) if s.tdp_w.is_some() => "TDP x 0.1144, the median CCF idle/max ratio",
                _ => "CCF NVIDIA average",
            }
        }
    }

    /// Whether a PCI class code (`0xCCSSPP`) is a VGA (0x0300xx) or 3D (0x0302xx) controller.
    pub fn is_gpu_class(class: u32) -> bool {
        matches!(class >> 8, 0x0300 | 0x0302)
    }

    fn read_hex(dir: &Path, file: &str) -> Option<u32> {
        let text = std::fs::read_to_string(dir.join(file)).ok()?;
        let t = text.trim();
        u32::from_str_radix(t.strip_prefix("0x").unwrap_or(t), 16).ok()
    }

    /// NVIDIA GPUs (vendor 0x10de, VGA or 3D controller class) under
    /// `<sys_root>/bus/pci/devices`, sorted by PCI address. An unreadable tree gives none.
    pub fn nvidia_gpus(sys_root: &Path) -> Vec<SeenGpu> {
        let Ok(entries) = std::fs::read_dir(sys_root.join("bus/pci/devices")) else {
            return Vec::new();
        };
        let mut seen: Vec<SeenGpu> = entries
            .flatten()
            .filter_map(|e| {
                let dir = e.path();
                if read_hex(&dir, "vendor")? != u32::from(NVIDIA_PCI_VENDOR)
                    || !is_gpu_class(read_hex(&dir, "class")?)
                {
                    return None;
                }
                let device_id = u16::try_from(read_hex(&dir, "device")?).ok()?;
                Some(SeenGpu {
                    address: e.file_name().to_string_lossy().into_owned(),
                    device_id,
                    spec: coefficients::nvidia_gpu(device_id),
                })
            })
            .collect();
        seen.sort_by(|a, b| a.address.cmp(&b.address));
        seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(num(0.45), "0.45");
        assert_eq!(num(7.0), "7");
        assert_eq!(num(2.1875), "2.1875");
        assert_eq!(num(1.0 / 3.0), "0.3333");
        assert_eq!(num(-0.0), "0");
    }

    #[test]
    fn gpu_classes() {
        assert!(gpus::is_gpu_class(0x030000));
        assert!(gpus::is_gpu_class(0x030200));
        assert!(!gpus::is_gpu_class(0x040300)); // HD audio function of a graphics card
        assert!(!gpus::is_gpu_class(0x068000)); // NVSwitch bridge
    }

    #[test]
    fn envelope_is_term_by_term() {
        let (lo, hi) = envelope([per_vcpu(1.0, 5.0), per_vcpu(2.0, 4.0)].into_iter());
        assert_eq!((lo.idle, lo.dynamic), (Watts(1.0), Watts(2.0)));
        assert_eq!((hi.idle, hi.dynamic), (Watts(2.0), Watts(4.0)));
    }

    #[test]
    fn invalid_options_are_dropped_with_a_note() {
        let mut notes = Vec::new();
        let o = sanitize(
            &ModelOptions {
                tdp_w: Some(-1.0),
                idle_w: Some(200.0),
                max_w: Some(100.0),
                pue: 0.5,
                memory_w_per_gb: Some(f64::NAN),
                ..Default::default()
            },
            &mut notes,
        );
        assert_eq!(
            (o.tdp_w, o.idle_w, o.max_w, o.pue, o.memory_w_per_gb),
            (None, None, None, 1.0, None)
        );
        assert_eq!(notes.len(), 4, "{notes:?}");
    }
}
