//! Published coefficients for the estimation model, each with its source.
//!
//! - CPU: watts per vCPU at 0 % (`min`) and 100 % (`max`) utilisation, per microarchitecture, as
//!   published by Cloud Carbon Footprint (CCF, derived from the SPECpower database), and CPU
//!   TDP / cores / threads per model ([`CPU_TDP`]).
//! - Memory: watts per GB of RAM (CCF and Green Algorithms).
//! - GPUs: CCF idle/max watts per GPU, board power (TDP) and PCI device ids of common NVIDIA GPUs.
//! - PUE: data-centre overheads published by CCF and Green Algorithms.
//!
//! CCF values are from cloud-carbon-footprint/cloud-carbon-footprint@b7a049c (2024-03),
//! `packages/{aws,gcp,azure}/src/domain/*FootprintEstimationConstants.ts` and
//! `microsite/docs/HowItWorks/Methodology.md`; they are identical across providers where an
//! architecture appears. Green Algorithms values are from
//! GreenAlgorithms/green-algorithms-tool@30df2fe `data/latest/`.
//!
//! Carina's own choices (not published figures) are named as such: [`USER_OVERRIDE_SPREAD`],
//! [`MEMORY_SPREAD`], and how the tables are combined (see `carina-probes`' `model` module).

/// Watts per vCPU for one CPU family.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuCoefficients {
    /// Microarchitecture or product family, e.g. `Cascade Lake`, `AMD EPYC 2nd Gen`.
    pub family: &'static str,
    /// Vendor name.
    pub vendor: &'static str,
    /// Watts per vCPU at 0 % utilisation.
    pub min_w_per_vcpu: f64,
    /// Watts per vCPU at 100 % utilisation.
    pub max_w_per_vcpu: f64,
}

impl CpuCoefficients {
    /// `min / max`: the share of full-load power drawn at idle.
    pub fn idle_ratio(&self) -> f64 {
        self.min_w_per_vcpu / self.max_w_per_vcpu
    }
}

/// Where the coefficients in [`CCF_CPU`] come from.
pub const CCF_SOURCE: &str = "Cloud Carbon Footprint coefficients \
(cloud-carbon-footprint@b7a049c *FootprintEstimationConstants.ts, SPECpower-derived)";

const fn row(family: &'static str, vendor: &'static str, min: f64, max: f64) -> CpuCoefficients {
    CpuCoefficients {
        family,
        vendor,
        min_w_per_vcpu: min,
        max_w_per_vcpu: max,
    }
}

/// The Cloud Carbon Footprint table.
pub const CCF_CPU: &[CpuCoefficients] = &[
    row("Cascade Lake", "Intel", 0.64, 3.97),
    row("Skylake", "Intel", 0.65, 4.26),
    row("Broadwell", "Intel", 0.71, 3.69),
    row("Haswell", "Intel", 1.0, 4.74),
    row("Coffee Lake", "Intel", 1.14, 5.42),
    row("Sandy Bridge", "Intel", 2.17, 8.58),
    row("Ivy Bridge", "Intel", 3.04, 8.25),
    row("AMD EPYC 1st Gen", "AMD", 0.82, 2.55),
    row("AMD EPYC 2nd Gen", "AMD", 0.47, 1.69),
    row("AMD EPYC 3rd Gen", "AMD", 0.45, 2.02),
    // CCF's placeholder: equal to AMD EPYC 2nd Gen (Methodology.md Appendix II).
    row("AWS Graviton2", "AWS", 0.47, 1.69),
];

/// CCF's fallback for an unknown CPU: the AWS average, 0.74 W / 3.5 W per vCPU
/// (`MIN_WATTS_AVG`, `MAX_WATTS_AVG` in AwsFootprintEstimationConstants.ts@b7a049c).
pub const CCF_FALLBACK: CpuCoefficients = row("unknown (CCF AWS average)", "unknown", 0.74, 3.5);

/// Looks a family up by its exact name in [`CCF_CPU`].
pub fn lookup(family: &str) -> Option<&'static CpuCoefficients> {
    CCF_CPU.iter().find(|c| c.family == family)
}

/// The CCF rows a CPU of `vendor` (`Intel`, `AMD`, as in [`CpuCoefficients::vendor`]) could
/// plausibly have: that vendor's rows, or every row (and [`CCF_FALLBACK`]) for any other vendor.
/// The estimation model's band spans these rows.
pub fn vendor_rows(vendor: &str) -> Vec<&'static CpuCoefficients> {
    let own: Vec<_> = CCF_CPU.iter().filter(|c| c.vendor == vendor).collect();
    if own.is_empty() || !matches!(vendor, "Intel" | "AMD") {
        CCF_CPU
            .iter()
            .chain(std::iter::once(&CCF_FALLBACK))
            .collect()
    } else {
        own
    }
}

// ---------------------------------------------------------------------------------------------
// Memory

/// CCF memory coefficient, 0.000392 kWh per GB-hour = **0.392 W per GB** of RAM
/// (`MEMORY_COEFFICIENT` in AwsFootprintEstimationConstants.ts@b7a049c, same for all providers;
/// Methodology.md "Memory"). Carina's default.
pub const CCF_MEMORY_W_PER_GB: f64 = 0.000392 * 1000.0;

/// Green Algorithms' memory power, **0.3725 W per GB** (green-algorithms-tool@30df2fe
/// `data/latest/referenceValues.csv`, `memoryPower`). Used for the band.
pub const GREEN_ALGORITHMS_MEMORY_W_PER_GB: f64 = 0.3725;

/// Carina's own allowance (not a published figure) for how far a machine's memory power may be
/// from the two published averages above (DIMM generation, density, how much is populated):
/// the memory band is `[min(0.3725, 0.392) x (1 - 0.25), max(0.3725, 0.392) x (1 + 0.25)]`
/// = 0.279..0.49 W per GB.
pub const MEMORY_SPREAD: f64 = 0.25;

/// Carina's own allowance (not a published figure) for user-given powers (constant watts,
/// machine idle/max watts, CPU TDP, W per GB): their band is `value x (1 -+ 0.10)`.
pub const USER_OVERRIDE_SPREAD: f64 = 0.10;

// ---------------------------------------------------------------------------------------------
// PUE

/// PUE of on-premise data centres, 1.58: CCF `PUE_AVG` in
/// OnPremiseFootprintEstimationConstants.ts@b7a049c.
pub const PUE_CCF_ON_PREMISE: f64 = 1.58;
/// PUE of AWS, 1.135: CCF `PUE_AVG` in AwsFootprintEstimationConstants.ts@b7a049c.
pub const PUE_CCF_AWS: f64 = 1.135;
/// PUE of Google Cloud, 1.1: CCF `PUE_AVG` in GcpFootprintEstimationConstants.ts@b7a049c
/// (regional trailing-twelve-month values there range 1.07..1.13).
pub const PUE_CCF_GCP: f64 = 1.1;
/// PUE of Azure, 1.185: CCF `PUE_AVG` in AzureFootprintEstimationConstants.ts@b7a049c
/// (CCF's Methodology.md Appendix I says 1.125).
pub const PUE_CCF_AZURE: f64 = 1.185;
/// PUE of Alibaba Cloud, 1.3: CCF `PUE_AVG` in AliFootprintEstimationConstants.ts@b7a049c.
pub const PUE_CCF_ALIBABA: f64 = 1.3;
/// PUE when the data centre is unknown, 1.56: Green Algorithms
/// (green-algorithms-tool@30df2fe `data/latest/defaults_PUE.csv`, citing the Uptime Institute
/// 2024 Global Data Center Survey).
pub const PUE_GREEN_ALGORITHMS_UNKNOWN: f64 = 1.56;

// ---------------------------------------------------------------------------------------------
// GPUs

/// CCF watts per GPU at idle (`min_w`) and full load (`max_w`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GpuCoefficients {
    /// Model as CCF names it.
    pub model: &'static str,
    /// Vendor.
    pub vendor: &'static str,
    /// Watts at idle.
    pub min_w: f64,
    /// Watts at 100 %.
    pub max_w: f64,
}

const fn gpu(model: &'static str, vendor: &'static str, min_w: f64, max_w: f64) -> GpuCoefficients {
    GpuCoefficients {
        model,
        vendor,
        min_w,
        max_w,
    }
}

/// CCF's GPU table (Methodology.md Appendix III @b7a049c, Teads/TechPowerUp-derived).
pub const CCF_GPU: &[GpuCoefficients] = &[
    gpu("Tesla M60", "NVIDIA", 35.0, 306.0),
    gpu("T4", "NVIDIA", 8.0, 71.0),
    gpu("Tesla K80", "NVIDIA", 35.0, 306.0),
    gpu("Tesla V100", "NVIDIA", 35.0, 306.0),
    gpu("Tesla A100", "NVIDIA", 46.0, 407.0),
    gpu("K520", "NVIDIA", 26.0, 229.0),
    gpu("A10G", "NVIDIA", 18.0, 153.0),
    gpu("Tesla P4", "NVIDIA", 9.0, 76.5),
    gpu("Tesla P100", "NVIDIA", 36.0, 306.0),
    gpu("Tesla P40", "NVIDIA", 30.0, 255.0),
    gpu("Radeon Pro V520", "AMD", 26.0, 229.0),
    gpu("Alveo U250", "Xilinx", 27.0, 229.5),
];

/// Idle power as a share of full-load power for a GPU CCF has no row for: **35 / 306 = 0.1144**,
/// the median of `min_w / max_w` over CCF's ten NVIDIA rows (which range 0.113..0.118).
pub const GPU_IDLE_FRACTION: f64 = 35.0 / 306.0;

/// The mean of CCF's NVIDIA rows, **27.8 W idle / 241.55 W max**: stands in for an NVIDIA GPU
/// whose PCI device id is not in [`NVIDIA_GPUS`].
pub fn ccf_gpu_average() -> GpuCoefficients {
    let rows: Vec<_> = CCF_GPU.iter().filter(|g| g.vendor == "NVIDIA").collect();
    let n = rows.len() as f64;
    GpuCoefficients {
        model: "unknown NVIDIA GPU (CCF NVIDIA average)",
        vendor: "NVIDIA",
        min_w: rows.iter().map(|g| g.min_w).sum::<f64>() / n,
        max_w: rows.iter().map(|g| g.max_w).sum::<f64>() / n,
    }
}

/// PCI vendor id of NVIDIA.
pub const NVIDIA_PCI_VENDOR: u16 = 0x10de;

/// An NVIDIA GPU known by its PCI device id.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GpuSpec {
    /// PCI device id (vendor 0x10de).
    pub pci_device: u16,
    /// Product name.
    pub name: &'static str,
    /// Board power (TDP / TGP / max board power), watts, when a source gives it.
    pub tdp_w: Option<f64>,
    /// The [`CCF_GPU`] row for this product, if CCF has one.
    pub ccf_model: Option<&'static str>,
}

impl GpuSpec {
    /// The CCF row, if any.
    pub fn ccf(&self) -> Option<&'static GpuCoefficients> {
        self.ccf_model
            .and_then(|m| CCF_GPU.iter().find(|g| g.model == m))
    }

    /// Idle watts: CCF's `min_w` where CCF has the product, else `TDP x` [`GPU_IDLE_FRACTION`].
    pub fn idle_w(&self) -> f64 {
        match (self.ccf(), self.tdp_w) {
            (Some(c), _) => c.min_w,
            (None, Some(t)) => t * GPU_IDLE_FRACTION,
            (None, None) => ccf_gpu_average().min_w,
        }
    }

    /// Full-load watts: the TDP where known, else CCF's `max_w`.
    pub fn max_w(&self) -> f64 {
        match (self.tdp_w, self.ccf()) {
            (Some(t), _) => t,
            (None, Some(c)) => c.max_w,
            (None, None) => ccf_gpu_average().max_w,
        }
    }
}

const fn nv(
    pci_device: u16,
    name: &'static str,
    tdp_w: Option<f64>,
    ccf_model: Option<&'static str>,
) -> GpuSpec {
    GpuSpec {
        pci_device,
        name,
        tdp_w,
        ccf_model,
    }
}

/// Common data-centre and workstation NVIDIA GPUs by PCI device id.
///
/// - Device ids and names: the PCI ID Repository, `pci.ids` version 2023.04.10 (Debian package
///   `pci.ids` 0.0~2023.04.11-1), NVIDIA section; H200 (0x2335, 0x233b) and L40S (0x26b9), which
///   that version lacks, from NVIDIA/gpu-admin-tools@21de2fb `gpu/devid_names.py`.
/// - TDP: mlco2/impact@d0d3ee5 `data/gpus.csv` (citing NVIDIA datasheets / TechPowerUp) and
///   GreenAlgorithms/green-algorithms-tool@30df2fe `data/latest/TDP_gpu.csv`; H100 PCIe: NVIDIA
///   product brief PB-11133-001_v02 (350 W); H200 SXM: MLCommons inference_results_v4.1 NVIDIA
///   system description (TGP 700 W). The two H200 ids are not told apart by the sources read
///   (SXM 700 W, NVL 600 W): both get 700 W, the larger. V100 ids other than V100S use Green
///   Algorithms' 300 W for "Tesla V100" (form factor unspecified; PCIe boards are rated lower),
///   so their high end is generous.
/// - `ccf_model`: the CCF row of the same product, whose idle watts are used.
pub const NVIDIA_GPUS: &[GpuSpec] = &[
    nv(0x2330, "NVIDIA H100 SXM5 80GB", Some(700.0), None),
    nv(0x2331, "NVIDIA H100 PCIe", Some(350.0), None),
    nv(0x2335, "NVIDIA H200", Some(700.0), None),
    nv(0x233b, "NVIDIA H200", Some(700.0), None),
    nv(
        0x20b0,
        "NVIDIA A100 SXM4 40GB",
        Some(400.0),
        Some("Tesla A100"),
    ),
    nv(
        0x20b2,
        "NVIDIA A100 SXM4 80GB",
        Some(400.0),
        Some("Tesla A100"),
    ),
    nv(
        0x20b1,
        "NVIDIA A100 PCIe 40GB",
        Some(250.0),
        Some("Tesla A100"),
    ),
    nv(
        0x20f1,
        "NVIDIA A100 PCIe 40GB",
        Some(250.0),
        Some("Tesla A100"),
    ),
    nv(
        0x20b5,
        "NVIDIA A100 PCIe 80GB",
        Some(300.0),
        Some("Tesla A100"),
    ),
    nv(0x26b9, "NVIDIA L40S", Some(350.0), None),
    nv(0x27b8, "NVIDIA L4", Some(72.0), None),
    nv(0x2237, "NVIDIA A10G", Some(150.0), Some("A10G")),
    nv(0x1eb8, "NVIDIA Tesla T4", Some(70.0), Some("T4")),
    nv(
        0x1db1,
        "NVIDIA Tesla V100 SXM2 16GB",
        Some(300.0),
        Some("Tesla V100"),
    ),
    nv(
        0x1df5,
        "NVIDIA Tesla V100 SXM2 16GB",
        Some(300.0),
        Some("Tesla V100"),
    ),
    nv(
        0x1db5,
        "NVIDIA Tesla V100 SXM2 32GB",
        Some(300.0),
        Some("Tesla V100"),
    ),
    nv(
        0x1db4,
        "NVIDIA Tesla V100 PCIe 16GB",
        Some(300.0),
        Some("Tesla V100"),
    ),
    nv(
        0x1db6,
        "NVIDIA Tesla V100 PCIe 32GB",
        Some(300.0),
        Some("Tesla V100"),
    ),
    nv(
        0x1df6,
        "NVIDIA Tesla V100S PCIe 32GB",
        Some(250.0),
        Some("Tesla V100"),
    ),
    nv(
        0x15f7,
        "NVIDIA Tesla P100 PCIe 12GB",
        Some(250.0),
        Some("Tesla P100"),
    ),
    nv(
        0x15f8,
        "NVIDIA Tesla P100 PCIe 16GB",
        Some(250.0),
        Some("Tesla P100"),
    ),
    nv(0x1b38, "NVIDIA Tesla P40", Some(250.0), Some("Tesla P40")),
    nv(0x1bb3, "NVIDIA Tesla P4", Some(75.0), Some("Tesla P4")),
    nv(0x102d, "NVIDIA Tesla K80", Some(300.0), Some("Tesla K80")),
    nv(0x13f2, "NVIDIA Tesla M60", None, Some("Tesla M60")),
    nv(0x2230, "NVIDIA RTX A6000", Some(300.0), None),
    nv(0x2231, "NVIDIA RTX A5000", Some(230.0), None),
    nv(0x2684, "NVIDIA GeForce RTX 4090", Some(450.0), None),
    nv(0x2704, "NVIDIA GeForce RTX 4080", Some(320.0), None),
    nv(0x2204, "NVIDIA GeForce RTX 3090", Some(350.0), None),
    nv(0x2203, "NVIDIA GeForce RTX 3090 Ti", Some(450.0), None),
    nv(0x1e04, "NVIDIA GeForce RTX 2080 Ti", Some(250.0), None),
    nv(0x1e07, "NVIDIA GeForce RTX 2080 Ti", Some(250.0), None),
    nv(0x1d81, "NVIDIA TITAN V", Some(250.0), None),
];

/// Looks an NVIDIA GPU up by PCI device id.
pub fn nvidia_gpu(pci_device: u16) -> Option<&'static GpuSpec> {
    NVIDIA_GPUS.iter().find(|g| g.pci_device == pci_device)
}

// ---------------------------------------------------------------------------------------------
// CPU TDP

/// A CPU model's thermal design power and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuTdp {
    /// Model as the vendor names it, e.g. `AMD EPYC 7763`, `Intel Xeon Platinum 8380`.
    pub model: &'static str,
    /// TDP in watts (Intel 12th/13th-gen Core: Processor Base Power, not max turbo power).
    pub tdp_w: u16,
    /// Physical cores per package.
    pub cores: u16,
    /// Hardware threads per package; 0 where the source gives none.
    pub threads: u16,
}

/// Lower-cases a CPU model name and drops what `/proc/cpuinfo` adds around the vendor's name:
/// `(R)`, `(TM)`, `CPU`, `Processor`, `@ 2.30GHz`, `64-Core`, `12th Gen`, `with Radeon Graphics`.
/// `"AMD EPYC 7763 64-Core Processor"` and `"AMD EPYC 7763"` both give `"amd epyc 7763"`.
pub fn normalize_cpu_model(name: &str) -> String {
    let lower = name
        .to_ascii_lowercase()
        .replace("(r)", " ")
        .replace("(tm)", " ");
    let lower = lower.split('@').next().unwrap_or("");
    let lower = lower.split(" with ").next().unwrap_or("");
    let drop = |t: &&str| {
        let core_count = t
            .strip_suffix("-cores")
            .or_else(|| t.strip_suffix("-core"))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        let ordinal = ["st", "nd", "rd", "th"].iter().any(|s| {
            t.strip_suffix(s)
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        });
        !(core_count || ordinal || matches!(*t, "cpu" | "processor" | "gen"))
    };
    lower
        .split_ascii_whitespace()
        .filter(drop)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The [`CPU_TDP`] row whose model equals `model_name` once both are normalised by
/// [`normalize_cpu_model`]; `None` when no row matches exactly.
pub fn cpu_tdp(model_name: &str) -> Option<&'static CpuTdp> {
    let key = normalize_cpu_model(model_name);
    if key.is_empty() {
        return None;
    }
    CPU_TDP.iter().find(|r| normalize_cpu_model(r.model) == key)
}

const fn t(model: &'static str, tdp_w: u16, cores: u16, threads: u16) -> CpuTdp {
    CpuTdp {
        model,
        tdp_w,
        cores,
        threads,
    }
}

/// TDP, cores and threads of 685 CPU models (AMD EPYC 7001-9005/8004/4004/4005, Ryzen
/// 3000-9000 and Threadripper; Intel Xeon Scalable gen 1-5, Xeon Max, Xeon 6; Intel Core
/// i5/i7/i9 10th-13th gen desktop; Apple M1/M2), sources per group below.
///
/// Generated from the reference table `cpu_tdp.csv` (facts with per-row sources, assembled from
/// the sources named in the group comments) by this script; rows keep the CSV's order within
/// each group:
///
/// ```text
/// import csv, sys
/// rows = list(csv.reader(open(sys.argv[1])))[2:]
/// GROUPS = [("amd_cpu_server", "..."), ("amd_cpu_desktop", "..."), ("ark.intel.com", "..."),
///           ("techpowerup", "..."), ("wikipedia", "...")]   # key, group comment
/// def key(src):
///     for k, _ in GROUPS:
///         if k in src.split(" via ")[0] or src.startswith(k) or k in src.split(";")[0]:
///             return k
///     raise SystemExit("unknown source: " + src)
/// NOTES = {"155W / 170W": "AMD lists 155/170 W; 170 used", "95 W disagrees": "TechPowerUp: 95 W"}
/// for k, title in GROUPS:
///     print(f"    // {title}")
///     for model, tdp, cores, threads, src in rows:
///         if key(src) == k:
///             note = "".join(f" // {v}" for n, v in NOTES.items() if n in src)
///             print(f'    t("{model}", {tdp}, {cores}, {threads or 0}),{note}')
/// ```
#[rustfmt::skip]
pub const CPU_TDP: &[CpuTdp] = &[
    // amd.com specs via mlco2/codecarbon@b05965e codecarbon/data/hardware/cpu_dataset_builder/amd_cpu_server_dataset.csv
    t("AMD EPYC 4124P", 65, 4, 8),
    t("AMD EPYC 4244P", 65, 6, 12),
    t("AMD EPYC 4245P", 65, 6, 12),
    t("AMD EPYC 4344P", 65, 8, 16),
    t("AMD EPYC 4345P", 65, 8, 16),
    t("AMD EPYC 4364P", 105, 8, 16),
    t("AMD EPYC 4464P", 65, 12, 24),
    t("AMD EPYC 4465P", 65, 12, 24),
    t("AMD EPYC 4484PX", 120, 12, 24),
    t("AMD EPYC 4545P", 65, 16, 32),
    t("AMD EPYC 4564P", 170, 16, 32),
    t("AMD EPYC 4565P", 170, 16, 32),
    t("AMD EPYC 4584PX", 120, 16, 32),
    t("AMD EPYC 4585PX", 170, 16, 32),
    t("AMD EPYC 7203", 120, 8, 16),
    t("AMD EPYC 7203P", 120, 8, 16),
    t("AMD EPYC 7232P", 120, 8, 16),
    t("AMD EPYC 7251", 120, 8, 16),
    t("AMD EPYC 7252", 120, 8, 16),
    t("AMD EPYC 7261", 170, 8, 16), // AMD lists 155/170 W; 170 used
    t("AMD EPYC 7262", 155, 8, 16),
    t("AMD EPYC 7272", 120, 12, 24),
    t("AMD EPYC 7281", 170, 16, 32), // AMD lists 155/170 W; 170 used
    t("AMD EPYC 7282", 120, 16, 32),
    t("AMD EPYC 72F3", 180, 8, 16),
    t("AMD EPYC 7301", 170, 16, 32), // AMD lists 155/170 W; 170 used
    t("AMD EPYC 7302", 155, 16, 32),
    t("AMD EPYC 7302P", 155, 16, 32),
    t("AMD EPYC 7303", 130, 16, 32),
    t("AMD EPYC 7303P", 130, 16, 32),
    t("AMD EPYC 7313", 155, 16, 32),
    t("AMD EPYC 7313P", 155, 16, 32),
    t("AMD EPYC 7343", 190, 16, 32),
    t("AMD EPYC 7351", 170, 16, 32), // AMD lists 155/170 W; 170 used
    t("AMD EPYC 7351P", 170, 16, 32), // AMD lists 155/170 W; 170 used
    t("AMD EPYC 7352", 155, 24, 48),
    t("AMD EPYC 7371", 200, 16, 32),
    t("AMD EPYC 7373X", 240, 16, 32),
    t("AMD EPYC 73F3", 240, 16, 32),
    t("AMD EPYC 7401", 170, 24, 48), // AMD lists 155/170 W; 170 used
    t("AMD EPYC 7401P", 170, 24, 48), // AMD lists 155/170 W; 170 used
    t("AMD EPYC 7402", 180, 24, 48),
    t("AMD EPYC 7402P", 180, 24, 48),
    t("AMD EPYC 7413", 180, 24, 48),
    t("AMD EPYC 7443", 200, 24, 48),
    t("AMD EPYC 7443P", 200, 24, 48),
    t("AMD EPYC 7451", 180, 24, 48),
    t("AMD EPYC 7452", 155, 32, 64),
    t("AMD EPYC 7453", 225, 28, 56),
    t("AMD EPYC 7473X", 240, 24, 48),
    t("AMD EPYC 74F3", 240, 24, 48),
    t("AMD EPYC 7501", 170, 32, 64), // AMD lists 155/170 W; 170 used
    t("AMD EPYC 7502", 180, 32, 64),
    t("AMD EPYC 7502P", 180, 32, 64),
    t("AMD EPYC 7513", 200, 32, 64),
    t("AMD EPYC 7532", 200, 32, 64),
    t("AMD EPYC 7542", 225, 32, 64),
    t("AMD EPYC 7543", 225, 32, 64),
    t("AMD EPYC 7543P", 225, 32, 64),
    t("AMD EPYC 7551", 180, 32, 64),
    t("AMD EPYC 7551P", 180, 32, 64),
    t("AMD EPYC 7552", 200, 48, 96),
    t("AMD EPYC 7573X", 280, 32, 64),
    t("AMD EPYC 75F3", 280, 32, 64),
    t("AMD EPYC 7601", 180, 32, 64),
    t("AMD EPYC 7642", 225, 48, 96),
    t("AMD EPYC 7643", 225, 48, 96),
    t("AMD EPYC 7643P", 225, 48, 96),
    t("AMD EPYC 7662", 225, 64, 128),
    t("AMD EPYC 7663", 240, 56, 112),
    t("AMD EPYC 7663P", 240, 56, 112),
    t("AMD EPYC 7702", 200, 64, 128),
    t("AMD EPYC 7702P", 200, 64, 128),
    t("AMD EPYC 7713", 225, 64, 128),
    t("AMD EPYC 7713P", 225, 64, 128),
    t("AMD EPYC 7742", 225, 64, 128),
    t("AMD EPYC 7763", 280, 64, 128),
    t("AMD EPYC 7773X", 280, 64, 128),
    t("AMD EPYC 7F32", 180, 8, 16),
    t("AMD EPYC 7F52", 240, 16, 32),
    t("AMD EPYC 7F72", 240, 24, 48),
    t("AMD EPYC 7H12", 280, 64, 128),
    t("AMD EPYC 8024P", 90, 8, 16),
    t("AMD EPYC 8024PN", 80, 8, 16),
    t("AMD EPYC 8124P", 125, 16, 32),
    t("AMD EPYC 8124PN", 100, 16, 32),
    t("AMD EPYC 8224P", 160, 24, 48),
    t("AMD EPYC 8224PN", 120, 24, 48),
    t("AMD EPYC 8324P", 180, 32, 64),
    t("AMD EPYC 8324PN", 130, 32, 64),
    t("AMD EPYC 8434P", 200, 48, 96),
    t("AMD EPYC 8434PN", 155, 48, 96),
    t("AMD EPYC 8534P", 200, 64, 128),
    t("AMD EPYC 8534PN", 175, 64, 128),
    t("AMD EPYC 9015", 125, 8, 16),
    t("AMD EPYC 9115", 125, 16, 32),
    t("AMD EPYC 9124", 200, 16, 32),
    t("AMD EPYC 9135", 200, 16, 32),
    t("AMD EPYC 9174F", 320, 16, 32),
    t("AMD EPYC 9175F", 320, 16, 32),
    t("AMD EPYC 9184X", 320, 16, 32),
    t("AMD EPYC 9224", 200, 24, 48),
    t("AMD EPYC 9254", 200, 24, 48),
    t("AMD EPYC 9255", 200, 24, 48),
    t("AMD EPYC 9274F", 320, 24, 48),
    t("AMD EPYC 9275F", 320, 24, 48),
    t("AMD EPYC 9334", 210, 32, 64),
    t("AMD EPYC 9335", 210, 32, 64),
    t("AMD EPYC 9354", 280, 32, 64),
    t("AMD EPYC 9354P", 280, 32, 64),
    t("AMD EPYC 9355", 280, 32, 64),
    t("AMD EPYC 9355P", 280, 32, 64),
    t("AMD EPYC 9365", 300, 36, 72),
    t("AMD EPYC 9374F", 320, 32, 64),
    t("AMD EPYC 9375F", 320, 32, 64),
    t("AMD EPYC 9384X", 320, 32, 64),
    t("AMD EPYC 9454", 290, 48, 96),
    t("AMD EPYC 9454P", 290, 48, 96),
    t("AMD EPYC 9455", 300, 48, 96),
    t("AMD EPYC 9455P", 300, 48, 96),
    t("AMD EPYC 9474F", 360, 48, 96),
    t("AMD EPYC 9475F", 400, 48, 96),
    t("AMD EPYC 9534", 280, 64, 128),
    t("AMD EPYC 9535", 300, 64, 128),
    t("AMD EPYC 9554", 360, 64, 128),
    t("AMD EPYC 9554P", 360, 64, 128),
    t("AMD EPYC 9555", 360, 64, 128),
    t("AMD EPYC 9555P", 360, 64, 128),
    t("AMD EPYC 9565", 400, 72, 144),
    t("AMD EPYC 9575F", 400, 64, 128),
    t("AMD EPYC 9634", 290, 84, 168),
    t("AMD EPYC 9645", 320, 96, 192),
    t("AMD EPYC 9654", 360, 96, 192),
    t("AMD EPYC 9654P", 360, 96, 192),
    t("AMD EPYC 9655", 400, 96, 192),
    t("AMD EPYC 9655P", 400, 96, 192),
    t("AMD EPYC 9684X", 400, 96, 192),
    t("AMD EPYC 9734", 340, 112, 224),
    t("AMD EPYC 9745", 400, 128, 256),
    t("AMD EPYC 9754", 360, 128, 256),
    t("AMD EPYC 9754S", 360, 128, 128),
    t("AMD EPYC 9755", 500, 128, 256),
    t("AMD EPYC 9825", 390, 144, 288),
    t("AMD EPYC 9845", 390, 160, 320),
    t("AMD EPYC 9965", 500, 192, 384),
    // amd.com specs via mlco2/codecarbon@b05965e codecarbon/data/hardware/cpu_dataset_builder/amd_cpu_desktop_dataset.csv
    t("AMD Ryzen 3 3100", 65, 4, 8),
    t("AMD Ryzen 3 3200G", 65, 4, 4),
    t("AMD Ryzen 3 3200GE", 35, 4, 4),
    t("AMD Ryzen 3 3300X", 65, 4, 8),
    t("AMD Ryzen 3 5300G", 65, 4, 8),
    t("AMD Ryzen 3 5300GE", 35, 4, 8),
    t("AMD Ryzen 3 5305G", 65, 4, 8),
    t("AMD Ryzen 3 5305GE", 35, 4, 8),
    t("AMD Ryzen 5 3400G", 65, 4, 8),
    t("AMD Ryzen 5 3400GE", 35, 4, 8),
    t("AMD Ryzen 5 3500", 65, 6, 6),
    t("AMD Ryzen 5 3600", 65, 6, 12),
    t("AMD Ryzen 5 3600X", 95, 6, 12),
    t("AMD Ryzen 5 3600XT", 95, 6, 12),
    t("AMD Ryzen 5 5500", 65, 6, 12),
    t("AMD Ryzen 5 5500GT", 65, 6, 12),
    t("AMD Ryzen 5 5600", 65, 6, 12),
    t("AMD Ryzen 5 5600G", 65, 6, 12),
    t("AMD Ryzen 5 5600GE", 35, 6, 12),
    t("AMD Ryzen 5 5600GT", 65, 6, 12),
    t("AMD Ryzen 5 5600T", 65, 6, 12),
    t("AMD Ryzen 5 5600X", 65, 6, 12),
    t("AMD Ryzen 5 5600X3D", 105, 6, 12),
    t("AMD Ryzen 5 5600XT", 65, 6, 12),
    t("AMD Ryzen 5 5605G", 65, 6, 12),
    t("AMD Ryzen 5 5605GE", 35, 6, 12),
    t("AMD Ryzen 5 7400F", 65, 6, 12),
    t("AMD Ryzen 5 7500F", 65, 6, 12),
    t("AMD Ryzen 5 7600", 65, 6, 12),
    t("AMD Ryzen 5 7600X", 105, 6, 12),
    t("AMD Ryzen 5 7600X3D", 65, 6, 12),
    t("AMD Ryzen 5 9600", 65, 6, 12),
    t("AMD Ryzen 5 9600X", 65, 6, 12),
    t("AMD Ryzen 7 3700X", 65, 8, 16),
    t("AMD Ryzen 7 3800X", 105, 8, 16),
    t("AMD Ryzen 7 3800XT", 105, 8, 16),
    t("AMD Ryzen 7 5700", 65, 8, 16),
    t("AMD Ryzen 7 5700G", 65, 8, 16),
    t("AMD Ryzen 7 5700GE", 35, 8, 16),
    t("AMD Ryzen 7 5700X", 65, 8, 16),
    t("AMD Ryzen 7 5700X3D", 105, 8, 16),
    t("AMD Ryzen 7 5705G", 65, 8, 16),
    t("AMD Ryzen 7 5705GE", 35, 8, 16),
    t("AMD Ryzen 7 5800", 65, 8, 16),
    t("AMD Ryzen 7 5800X", 105, 8, 16),
    t("AMD Ryzen 7 5800X3D", 105, 8, 16),
    t("AMD Ryzen 7 5800XT", 105, 8, 16),
    t("AMD Ryzen 7 7700", 65, 8, 16),
    t("AMD Ryzen 7 7700X", 105, 8, 16),
    t("AMD Ryzen 7 7800X3D", 120, 8, 16),
    t("AMD Ryzen 7 9700X", 65, 8, 16),
    t("AMD Ryzen 7 9800X3D", 120, 8, 16),
    t("AMD Ryzen 9 3900", 65, 12, 24),
    t("AMD Ryzen 9 3900X", 105, 12, 24),
    t("AMD Ryzen 9 3900XT", 105, 12, 24),
    t("AMD Ryzen 9 3950X", 105, 16, 32),
    t("AMD Ryzen 9 5900", 65, 12, 24),
    t("AMD Ryzen 9 5900X", 105, 12, 24),
    t("AMD Ryzen 9 5900XT", 105, 16, 32),
    t("AMD Ryzen 9 5950X", 105, 16, 32),
    t("AMD Ryzen 9 7900", 65, 12, 24),
    t("AMD Ryzen 9 7900X", 170, 12, 24),
    t("AMD Ryzen 9 7900X3D", 120, 12, 24),
    t("AMD Ryzen 9 7950X", 170, 16, 32),
    t("AMD Ryzen 9 7950X3D", 120, 16, 32),
    t("AMD Ryzen 9 9900X", 120, 12, 24),
    t("AMD Ryzen 9 9900X3D", 120, 12, 24),
    t("AMD Ryzen 9 9950X", 170, 16, 32),
    t("AMD Ryzen 9 9950X3D", 170, 16, 32),
    t("AMD Ryzen Threadripper 3960X", 280, 24, 48),
    t("AMD Ryzen Threadripper 3970X", 280, 32, 64),
    t("AMD Ryzen Threadripper 3990X", 280, 64, 128),
    t("AMD Ryzen Threadripper 7960X", 350, 24, 48),
    t("AMD Ryzen Threadripper 7970X", 350, 32, 64),
    t("AMD Ryzen Threadripper 7980X", 350, 64, 128),
    t("AMD Ryzen Threadripper 9960X", 350, 24, 48),
    t("AMD Ryzen Threadripper 9970X", 350, 32, 64),
    t("AMD Ryzen Threadripper 9980X", 350, 64, 128),
    t("AMD Ryzen Threadripper PRO 3945WX", 280, 12, 24),
    t("AMD Ryzen Threadripper PRO 3955WX", 280, 16, 32),
    t("AMD Ryzen Threadripper PRO 3975WX", 280, 32, 64),
    t("AMD Ryzen Threadripper PRO 3995WX", 280, 64, 128),
    t("AMD Ryzen Threadripper PRO 5945WX", 280, 12, 24),
    t("AMD Ryzen Threadripper PRO 5955WX", 280, 16, 32),
    t("AMD Ryzen Threadripper PRO 5965WX", 280, 24, 48),
    t("AMD Ryzen Threadripper PRO 5975WX", 280, 32, 64),
    t("AMD Ryzen Threadripper PRO 5995WX", 280, 64, 128),
    t("AMD Ryzen Threadripper PRO 7945WX", 350, 12, 24),
    t("AMD Ryzen Threadripper PRO 7955WX", 350, 16, 32),
    t("AMD Ryzen Threadripper PRO 7965WX", 350, 24, 48),
    t("AMD Ryzen Threadripper PRO 7975WX", 350, 32, 64),
    t("AMD Ryzen Threadripper PRO 7985WX", 350, 64, 128),
    t("AMD Ryzen Threadripper PRO 7995WX", 350, 96, 192),
    t("AMD Ryzen Threadripper PRO 9945WX", 350, 12, 24),
    t("AMD Ryzen Threadripper PRO 9955WX", 350, 16, 32),
    t("AMD Ryzen Threadripper PRO 9965WX", 350, 24, 48),
    t("AMD Ryzen Threadripper PRO 9975WX", 350, 32, 64),
    t("AMD Ryzen Threadripper PRO 9985WX", 350, 64, 128),
    t("AMD Ryzen Threadripper PRO 9995WX", 350, 96, 192),
    // TDP, cores: Intel ARK via mlco2/codecarbon@b05965e codecarbon/data/hardware/cpu_dataset_builder/intel_cpu_ark_dataset.csv; threads (0 = not given): Boavizta/boaviztapi@15878f0 boaviztapi/data/crowdsourcing/cpu_specs.csv
    t("Intel Xeon 6315P", 55, 4, 0),
    t("Intel Xeon 6325P", 55, 4, 0),
    t("Intel Xeon 6333P", 65, 6, 0),
    t("Intel Xeon 6337P", 80, 6, 0),
    t("Intel Xeon 6349P", 95, 6, 0),
    t("Intel Xeon 6353P", 65, 8, 0),
    t("Intel Xeon 6357P", 80, 8, 0),
    t("Intel Xeon 6369P", 95, 8, 0),
    t("Intel Xeon 6503P-B", 110, 12, 0),
    t("Intel Xeon 6505P", 150, 12, 0),
    t("Intel Xeon 6507P", 150, 8, 0),
    t("Intel Xeon 6511P", 150, 16, 0),
    t("Intel Xeon 6513P-B", 130, 20, 0),
    t("Intel Xeon 6515P", 150, 16, 0),
    t("Intel Xeon 6516P-B", 145, 20, 0),
    t("Intel Xeon 6517P", 190, 16, 0),
    t("Intel Xeon 6520P", 210, 24, 0),
    t("Intel Xeon 6521P", 225, 24, 0),
    t("Intel Xeon 6523P-B", 175, 24, 0),
    t("Intel Xeon 6527P", 255, 24, 0),
    t("Intel Xeon 6530P", 225, 32, 0),
    t("Intel Xeon 6533P-B", 205, 32, 0),
    t("Intel Xeon 6543P-B", 160, 32, 0),
    t("Intel Xeon 6546P-B", 195, 32, 0),
    t("Intel Xeon 6553P-B", 235, 36, 0),
    t("Intel Xeon 6556P-B", 215, 36, 0),
    t("Intel Xeon 6563P-B", 235, 38, 0),
    t("Intel Xeon 6706P-B", 235, 40, 0),
    t("Intel Xeon 6710E", 205, 64, 0),
    t("Intel Xeon 6714P", 165, 8, 0),
    t("Intel Xeon 6716P-B", 235, 40, 0),
    t("Intel Xeon 6724P", 210, 16, 0),
    t("Intel Xeon 6726P-B", 235, 42, 0),
    t("Intel Xeon 6728P", 210, 24, 0),
    t("Intel Xeon 6730P", 250, 32, 0),
    t("Intel Xeon 6731E", 250, 96, 0),
    t("Intel Xeon 6731P", 245, 32, 0),
    t("Intel Xeon 6732P", 350, 32, 0),
    t("Intel Xeon 6736P", 205, 36, 0),
    t("Intel Xeon 6737P", 270, 32, 0),
    t("Intel Xeon 6738P", 270, 32, 0),
    t("Intel Xeon 6740E", 250, 96, 0),
    t("Intel Xeon 6740P", 270, 48, 0),
    t("Intel Xeon 6741P", 300, 48, 0),
    t("Intel Xeon 6745P", 300, 32, 0),
    t("Intel Xeon 6746E", 250, 112, 0),
    t("Intel Xeon 6747P", 330, 48, 0),
    t("Intel Xeon 6748P", 300, 48, 0),
    t("Intel Xeon 6756E", 225, 128, 0),
    t("Intel Xeon 6760P", 330, 64, 0),
    t("Intel Xeon 6761P", 350, 64, 0),
    t("Intel Xeon 6766E", 250, 144, 0),
    t("Intel Xeon 6767P", 350, 64, 0),
    t("Intel Xeon 6768P", 330, 64, 0),
    t("Intel Xeon 6774P", 350, 64, 0),
    t("Intel Xeon 6776P", 350, 64, 0),
    t("Intel Xeon 6780E", 330, 144, 0),
    t("Intel Xeon 6781P", 350, 80, 0),
    t("Intel Xeon 6787P", 350, 86, 0),
    t("Intel Xeon 6788P", 350, 86, 0),
    t("Intel Xeon 6944P", 350, 72, 0),
    t("Intel Xeon 6952P", 400, 96, 0),
    t("Intel Xeon 6960P", 500, 72, 0),
    t("Intel Xeon 6972P", 500, 96, 0),
    t("Intel Xeon 6979P", 500, 120, 0),
    t("Intel Xeon 6980P", 500, 128, 0),
    t("Intel Xeon Bronze 3104", 85, 6, 0),
    t("Intel Xeon Bronze 3106", 85, 8, 8),
    t("Intel Xeon Bronze 3204", 85, 6, 0),
    t("Intel Xeon Bronze 3206R", 85, 8, 0),
    t("Intel Xeon Bronze 3408U", 125, 8, 8),
    t("Intel Xeon Bronze 3508U", 125, 8, 0),
    t("Intel Xeon Gold 5115", 85, 10, 0),
    t("Intel Xeon Gold 5118", 105, 12, 0),
    t("Intel Xeon Gold 5119T", 85, 14, 0),
    t("Intel Xeon Gold 5120", 105, 14, 0),
    t("Intel Xeon Gold 5120T", 105, 14, 0),
    t("Intel Xeon Gold 5122", 105, 4, 0),
    t("Intel Xeon Gold 5215", 85, 10, 0),
    t("Intel Xeon Gold 5215L", 85, 10, 0),
    t("Intel Xeon Gold 5217", 115, 8, 0),
    t("Intel Xeon Gold 5218", 125, 16, 0),
    t("Intel Xeon Gold 5218B", 125, 16, 0),
    t("Intel Xeon Gold 5218N", 110, 16, 0),
    t("Intel Xeon Gold 5218R", 125, 20, 0),
    t("Intel Xeon Gold 5218T", 105, 16, 0),
    t("Intel Xeon Gold 5220", 125, 18, 0),
    t("Intel Xeon Gold 5220R", 150, 24, 0),
    t("Intel Xeon Gold 5220S", 125, 18, 0),
    t("Intel Xeon Gold 5220T", 105, 18, 0),
    t("Intel Xeon Gold 5222", 105, 4, 0),
    t("Intel Xeon Gold 5315Y", 140, 8, 16),
    t("Intel Xeon Gold 5317", 150, 12, 24),
    t("Intel Xeon Gold 5318H", 150, 18, 36),
    t("Intel Xeon Gold 5318N", 150, 24, 48),
    t("Intel Xeon Gold 5318S", 165, 24, 48),
    t("Intel Xeon Gold 5318Y", 165, 24, 48),
    t("Intel Xeon Gold 5320", 185, 26, 52),
    t("Intel Xeon Gold 5320H", 150, 20, 40),
    t("Intel Xeon Gold 5320T", 150, 20, 40),
    t("Intel Xeon Gold 5403N", 115, 12, 0),
    t("Intel Xeon Gold 5411N", 165, 24, 56),
    t("Intel Xeon Gold 5412U", 185, 24, 48),
    t("Intel Xeon Gold 5415+", 150, 8, 16),
    t("Intel Xeon Gold 5416S", 150, 16, 32),
    t("Intel Xeon Gold 5418N", 165, 24, 48),
    t("Intel Xeon Gold 5418Y", 185, 24, 48),
    t("Intel Xeon Gold 5420+", 205, 28, 56),
    t("Intel Xeon Gold 5423N", 145, 20, 40),
    t("Intel Xeon Gold 5433N", 160, 20, 40),
    t("Intel Xeon Gold 5512U", 185, 28, 0),
    t("Intel Xeon Gold 5515+", 165, 8, 0),
    t("Intel Xeon Gold 5520+", 205, 28, 0),
    t("Intel Xeon Gold 6126", 125, 12, 0),
    t("Intel Xeon Gold 6126F", 135, 12, 0),
    t("Intel Xeon Gold 6126T", 125, 12, 0),
    t("Intel Xeon Gold 6128", 115, 6, 0),
    t("Intel Xeon Gold 6130", 125, 16, 0),
    t("Intel Xeon Gold 6130F", 135, 16, 0),
    t("Intel Xeon Gold 6130T", 125, 16, 0),
    t("Intel Xeon Gold 6132", 140, 14, 0),
    t("Intel Xeon Gold 6134", 130, 8, 0),
    t("Intel Xeon Gold 6136", 150, 12, 0),
    t("Intel Xeon Gold 6138", 125, 20, 0),
    t("Intel Xeon Gold 6138F", 135, 20, 0),
    t("Intel Xeon Gold 6138P", 195, 20, 0),
    t("Intel Xeon Gold 6138T", 125, 20, 0),
    t("Intel Xeon Gold 6140", 140, 18, 0),
    t("Intel Xeon Gold 6142", 150, 16, 0),
    t("Intel Xeon Gold 6142F", 160, 16, 0),
    t("Intel Xeon Gold 6144", 150, 8, 0),
    t("Intel Xeon Gold 6146", 165, 12, 0),
    t("Intel Xeon Gold 6148", 150, 20, 40),
    t("Intel Xeon Gold 6148F", 160, 20, 0),
    t("Intel Xeon Gold 6150", 165, 18, 0),
    t("Intel Xeon Gold 6152", 140, 22, 0),
    t("Intel Xeon Gold 6154", 200, 18, 36),
    t("Intel Xeon Gold 6208U", 150, 16, 0),
    t("Intel Xeon Gold 6209U", 125, 20, 0),
    t("Intel Xeon Gold 6210U", 150, 20, 0),
    t("Intel Xeon Gold 6212U", 165, 24, 0),
    t("Intel Xeon Gold 6222V", 115, 20, 0),
    t("Intel Xeon Gold 6226", 125, 12, 0),
    t("Intel Xeon Gold 6226R", 150, 16, 0),
    t("Intel Xeon Gold 6230", 125, 20, 0),
    t("Intel Xeon Gold 6230N", 125, 20, 0),
    t("Intel Xeon Gold 6230R", 150, 26, 0),
    t("Intel Xeon Gold 6230T", 125, 20, 0),
    t("Intel Xeon Gold 6234", 130, 8, 0),
    t("Intel Xeon Gold 6238", 140, 22, 0),
    t("Intel Xeon Gold 6238L", 140, 22, 0),
    t("Intel Xeon Gold 6238R", 165, 28, 0),
    t("Intel Xeon Gold 6238T", 125, 22, 0),
    t("Intel Xeon Gold 6240", 150, 18, 0),
    t("Intel Xeon Gold 6240L", 150, 18, 0),
    t("Intel Xeon Gold 6240R", 165, 24, 0),
    t("Intel Xeon Gold 6240Y", 150, 18, 0),
    t("Intel Xeon Gold 6242", 150, 16, 0),
    t("Intel Xeon Gold 6242R", 205, 20, 0),
    t("Intel Xeon Gold 6244", 150, 8, 0),
    t("Intel Xeon Gold 6246", 165, 12, 0),
    t("Intel Xeon Gold 6246R", 205, 16, 32),
    t("Intel Xeon Gold 6248", 150, 20, 0),
    t("Intel Xeon Gold 6248R", 205, 24, 0),
    t("Intel Xeon Gold 6250", 185, 8, 0),
    t("Intel Xeon Gold 6250L", 185, 8, 0),
    t("Intel Xeon Gold 6252", 150, 24, 0),
    t("Intel Xeon Gold 6252N", 150, 24, 0),
    t("Intel Xeon Gold 6254", 200, 18, 0),
    t("Intel Xeon Gold 6256", 205, 12, 0),
    t("Intel Xeon Gold 6258R", 205, 28, 0),
    t("Intel Xeon Gold 6262V", 135, 24, 0),
    t("Intel Xeon Gold 6312U", 185, 24, 48),
    t("Intel Xeon Gold 6314U", 205, 32, 64),
    t("Intel Xeon Gold 6326", 185, 16, 32),
    t("Intel Xeon Gold 6328H", 165, 16, 32),
    t("Intel Xeon Gold 6328HL", 165, 16, 32),
    t("Intel Xeon Gold 6330", 205, 28, 56),
    t("Intel Xeon Gold 6330H", 150, 24, 48),
    t("Intel Xeon Gold 6330N", 165, 28, 0),
    t("Intel Xeon Gold 6334", 165, 8, 16),
    t("Intel Xeon Gold 6336Y", 185, 24, 48),
    t("Intel Xeon Gold 6338", 205, 32, 0),
    t("Intel Xeon Gold 6338N", 185, 32, 64),
    t("Intel Xeon Gold 6338T", 165, 24, 48),
    t("Intel Xeon Gold 6342", 230, 24, 48),
    t("Intel Xeon Gold 6346", 205, 16, 32),
    t("Intel Xeon Gold 6348", 235, 28, 56),
    t("Intel Xeon Gold 6348H", 165, 24, 48),
    t("Intel Xeon Gold 6354", 205, 18, 36),
    t("Intel Xeon Gold 6403N", 185, 24, 0),
    t("Intel Xeon Gold 6414U", 250, 32, 64),
    t("Intel Xeon Gold 6416H", 165, 18, 36),
    t("Intel Xeon Gold 6418H", 185, 24, 48),
    t("Intel Xeon Gold 6421N", 185, 32, 64),
    t("Intel Xeon Gold 6423N", 195, 28, 0),
    t("Intel Xeon Gold 6426Y", 185, 16, 32),
    t("Intel Xeon Gold 6428N", 185, 32, 64),
    t("Intel Xeon Gold 6430", 270, 32, 64),
    t("Intel Xeon Gold 6433N", 205, 32, 0),
    t("Intel Xeon Gold 6433NE", 205, 32, 0),
    t("Intel Xeon Gold 6434", 195, 8, 16),
    t("Intel Xeon Gold 6434H", 195, 8, 16),
    t("Intel Xeon Gold 6438M", 205, 32, 64),
    t("Intel Xeon Gold 6438N", 205, 32, 64),
    t("Intel Xeon Gold 6438Y+", 205, 32, 64),
    t("Intel Xeon Gold 6442Y", 225, 24, 48),
    t("Intel Xeon Gold 6443N", 195, 32, 0),
    t("Intel Xeon Gold 6444Y", 270, 16, 32),
    t("Intel Xeon Gold 6448H", 250, 32, 64),
    t("Intel Xeon Gold 6448Y", 225, 32, 64),
    t("Intel Xeon Gold 6454S", 270, 32, 64),
    t("Intel Xeon Gold 6458Q", 350, 32, 64),
    t("Intel Xeon Gold 6526Y", 195, 16, 0),
    t("Intel Xeon Gold 6530", 270, 32, 0),
    t("Intel Xeon Gold 6534", 195, 8, 0),
    t("Intel Xeon Gold 6538N", 205, 32, 0),
    t("Intel Xeon Gold 6538Y+", 225, 32, 0),
    t("Intel Xeon Gold 6542Y", 250, 24, 0),
    t("Intel Xeon Gold 6544Y", 270, 16, 0),
    t("Intel Xeon Gold 6548N", 250, 32, 0),
    t("Intel Xeon Gold 6548Y+", 250, 32, 0),
    t("Intel Xeon Gold 6554S", 270, 36, 0),
    t("Intel Xeon Gold 6558Q", 350, 32, 0),
    t("Intel Xeon Platinum 8153", 125, 16, 0),
    t("Intel Xeon Platinum 8156", 105, 4, 0),
    t("Intel Xeon Platinum 8158", 150, 12, 0),
    t("Intel Xeon Platinum 8160", 150, 24, 0),
    t("Intel Xeon Platinum 8160F", 160, 24, 0),
    t("Intel Xeon Platinum 8160T", 150, 24, 0),
    t("Intel Xeon Platinum 8164", 150, 26, 0),
    t("Intel Xeon Platinum 8168", 205, 24, 48),
    t("Intel Xeon Platinum 8170", 165, 26, 0),
    t("Intel Xeon Platinum 8176", 165, 28, 0),
    t("Intel Xeon Platinum 8176F", 173, 28, 0),
    t("Intel Xeon Platinum 8180", 205, 28, 56),
    t("Intel Xeon Platinum 8253", 125, 16, 32),
    t("Intel Xeon Platinum 8256", 105, 4, 8),
    t("Intel Xeon Platinum 8260", 165, 24, 48),
    t("Intel Xeon Platinum 8260L", 165, 24, 0),
    t("Intel Xeon Platinum 8260Y", 165, 24, 0),
    t("Intel Xeon Platinum 8268", 205, 24, 48),
    t("Intel Xeon Platinum 8270", 205, 26, 52),
    t("Intel Xeon Platinum 8276", 165, 28, 56),
    t("Intel Xeon Platinum 8276L", 165, 28, 0),
    t("Intel Xeon Platinum 8280", 205, 28, 56),
    t("Intel Xeon Platinum 8280L", 205, 28, 56),
    t("Intel Xeon Platinum 8351N", 225, 36, 72),
    t("Intel Xeon Platinum 8352M", 185, 32, 64),
    t("Intel Xeon Platinum 8352S", 205, 32, 64),
    t("Intel Xeon Platinum 8352V", 195, 36, 72),
    t("Intel Xeon Platinum 8352Y", 205, 32, 0),
    t("Intel Xeon Platinum 8353H", 150, 18, 36),
    t("Intel Xeon Platinum 8354H", 205, 18, 36),
    t("Intel Xeon Platinum 8356H", 190, 8, 16),
    t("Intel Xeon Platinum 8358", 250, 32, 64),
    t("Intel Xeon Platinum 8358P", 240, 32, 64),
    t("Intel Xeon Platinum 8360H", 225, 24, 48),
    t("Intel Xeon Platinum 8360HL", 225, 24, 48),
    t("Intel Xeon Platinum 8360Y", 250, 36, 72),
    t("Intel Xeon Platinum 8362", 265, 32, 64),
    t("Intel Xeon Platinum 8368", 270, 38, 76),
    t("Intel Xeon Platinum 8368Q", 270, 38, 76),
    t("Intel Xeon Platinum 8376H", 205, 28, 56),
    t("Intel Xeon Platinum 8376HL", 205, 28, 56),
    t("Intel Xeon Platinum 8380", 270, 40, 80),
    t("Intel Xeon Platinum 8380H", 250, 28, 56),
    t("Intel Xeon Platinum 8380HL", 250, 28, 56),
    t("Intel Xeon Platinum 8444H", 270, 16, 32),
    t("Intel Xeon Platinum 8450H", 250, 28, 56),
    t("Intel Xeon Platinum 8452Y", 300, 36, 72),
    t("Intel Xeon Platinum 8454H", 270, 32, 64),
    t("Intel Xeon Platinum 8458P", 350, 44, 88),
    t("Intel Xeon Platinum 8460H", 330, 40, 80),
    t("Intel Xeon Platinum 8460Y+", 300, 40, 80),
    t("Intel Xeon Platinum 8461V", 300, 48, 96),
    t("Intel Xeon Platinum 8462Y+", 300, 32, 64),
    t("Intel Xeon Platinum 8468", 350, 48, 96),
    t("Intel Xeon Platinum 8468H", 330, 48, 96),
    t("Intel Xeon Platinum 8468V", 330, 48, 96),
    t("Intel Xeon Platinum 8470", 350, 52, 104),
    t("Intel Xeon Platinum 8470N", 300, 52, 104),
    t("Intel Xeon Platinum 8470Q", 350, 52, 104),
    t("Intel Xeon Platinum 8471N", 300, 52, 104),
    t("Intel Xeon Platinum 8480+", 350, 56, 112),
    t("Intel Xeon Platinum 8490H", 350, 60, 120),
    t("Intel Xeon Platinum 8558", 330, 48, 0),
    t("Intel Xeon Platinum 8558P", 350, 48, 0),
    t("Intel Xeon Platinum 8558U", 300, 48, 0),
    t("Intel Xeon Platinum 8562Y+", 300, 32, 0),
    t("Intel Xeon Platinum 8568Y+", 350, 48, 0),
    t("Intel Xeon Platinum 8570", 350, 56, 0),
    t("Intel Xeon Platinum 8571N", 300, 52, 0),
    t("Intel Xeon Platinum 8580", 350, 60, 0),
    t("Intel Xeon Platinum 8581V", 270, 60, 0),
    t("Intel Xeon Platinum 8592+", 350, 64, 0),
    t("Intel Xeon Platinum 8592V", 330, 64, 0),
    t("Intel Xeon Platinum 8593Q", 385, 64, 0),
    t("Intel Xeon Platinum 9221", 250, 32, 64),
    t("Intel Xeon Platinum 9222", 250, 32, 64),
    t("Intel Xeon Platinum 9242", 350, 48, 96),
    t("Intel Xeon Platinum 9282", 400, 56, 112),
    t("Intel Xeon Silver 4108", 85, 8, 0),
    t("Intel Xeon Silver 4109T", 70, 8, 0),
    t("Intel Xeon Silver 4110", 85, 8, 0),
    t("Intel Xeon Silver 4112", 85, 4, 0),
    t("Intel Xeon Silver 4114", 85, 10, 0),
    t("Intel Xeon Silver 4114T", 85, 10, 0),
    t("Intel Xeon Silver 4116", 85, 12, 24),
    t("Intel Xeon Silver 4116T", 85, 12, 0),
    t("Intel Xeon Silver 4208", 85, 8, 0),
    t("Intel Xeon Silver 4209T", 70, 8, 0),
    t("Intel Xeon Silver 4210", 85, 10, 0),
    t("Intel Xeon Silver 4210R", 100, 10, 0),
    t("Intel Xeon Silver 4210T", 95, 10, 0),
    t("Intel Xeon Silver 4214", 85, 12, 0),
    t("Intel Xeon Silver 4214R", 100, 12, 0),
    t("Intel Xeon Silver 4214Y", 85, 12, 0),
    t("Intel Xeon Silver 4215", 85, 8, 0),
    t("Intel Xeon Silver 4215R", 130, 8, 0),
    t("Intel Xeon Silver 4216", 100, 16, 0),
    t("Intel Xeon Silver 4309Y", 105, 8, 16),
    t("Intel Xeon Silver 4310", 120, 12, 24),
    t("Intel Xeon Silver 4310T", 105, 10, 20),
    t("Intel Xeon Silver 4314", 135, 16, 32),
    t("Intel Xeon Silver 4316", 150, 20, 40),
    t("Intel Xeon Silver 4410T", 150, 10, 20),
    t("Intel Xeon Silver 4410Y", 150, 12, 24),
    t("Intel Xeon Silver 4416+", 165, 20, 40),
    t("Intel Xeon Silver 4509Y", 125, 8, 0),
    t("Intel Xeon Silver 4510", 150, 12, 0),
    t("Intel Xeon Silver 4510T", 115, 12, 0),
    t("Intel Xeon Silver 4514Y", 150, 16, 0),
    t("Intel Xeon Silver 4516Y+", 185, 24, 0),
    t("Intel Core i5-10600KF", 125, 6, 12), // TechPowerUp: 95 W
    // TechPowerUp cpu-specs via Boavizta/boaviztapi@15878f0 boaviztapi/data/crowdsourcing/cpu_specs.csv
    t("Intel Xeon Max 9460", 350, 40, 80),
    t("Intel Xeon Max 9462", 350, 32, 64),
    t("Intel Xeon Max 9468", 350, 48, 96),
    t("Intel Xeon Max 9470", 350, 52, 104),
    t("Intel Xeon Max 9480", 350, 56, 112),
    t("Intel Xeon Platinum 8180M", 205, 28, 56),
    t("Intel Xeon Platinum 8260M", 165, 24, 48),
    t("Intel Xeon Platinum 8280M", 205, 28, 56),
    t("Intel Core i5-10400", 65, 6, 12),
    t("Intel Core i5-10400F", 65, 6, 12),
    t("Intel Core i5-10500", 65, 6, 12),
    t("Intel Core i5-10600", 65, 6, 12),
    t("Intel Core i5-10600K", 125, 6, 12),
    t("Intel Core i5-11400", 65, 6, 12),
    t("Intel Core i5-11400F", 65, 6, 12),
    t("Intel Core i5-11400T", 35, 6, 12),
    t("Intel Core i5-11500", 65, 6, 12),
    t("Intel Core i5-11500T", 35, 6, 12),
    t("Intel Core i5-11600", 65, 6, 12),
    t("Intel Core i5-11600K", 125, 6, 12),
    t("Intel Core i5-11600KF", 125, 6, 12),
    t("Intel Core i5-11600T", 35, 6, 12),
    t("Intel Core i5-12400", 65, 6, 12),
    t("Intel Core i5-12400F", 65, 6, 12),
    t("Intel Core i5-12400T", 35, 6, 12),
    t("Intel Core i5-12490F", 65, 6, 12),
    t("Intel Core i5-12500", 65, 6, 12),
    t("Intel Core i5-12500E", 65, 6, 12),
    t("Intel Core i5-12500T", 35, 6, 12),
    t("Intel Core i5-12500TE", 35, 6, 12),
    t("Intel Core i5-12600", 65, 6, 12),
    t("Intel Core i5-12600K", 125, 10, 16),
    t("Intel Core i5-12600KF", 125, 10, 16),
    t("Intel Core i5-12600T", 35, 6, 12),
    t("Intel Core i5-13400", 65, 10, 16),
    t("Intel Core i5-13400E", 65, 10, 16),
    t("Intel Core i5-13400F", 65, 10, 16),
    t("Intel Core i5-13400T", 35, 10, 16),
    t("Intel Core i5-13490F", 65, 10, 16),
    t("Intel Core i5-13500", 65, 14, 20),
    t("Intel Core i5-13500E", 65, 14, 20),
    t("Intel Core i5-13500T", 35, 14, 20),
    t("Intel Core i5-13500TE", 35, 14, 20),
    t("Intel Core i5-13600", 65, 14, 20),
    t("Intel Core i5-13600K", 125, 14, 20),
    t("Intel Core i5-13600KF", 125, 14, 20),
    t("Intel Core i5-13600T", 35, 14, 20),
    t("Intel Core i7-10700", 65, 8, 16),
    t("Intel Core i7-10700F", 65, 8, 16),
    t("Intel Core i7-10700K", 125, 8, 16),
    t("Intel Core i7-10700KF", 125, 8, 16),
    t("Intel Core i7-11700", 65, 8, 16),
    t("Intel Core i7-11700F", 65, 8, 16),
    t("Intel Core i7-11700K", 125, 8, 16),
    t("Intel Core i7-11700KF", 125, 8, 16),
    t("Intel Core i7-11700T", 35, 8, 16),
    t("Intel Core i7-12700", 65, 12, 20),
    t("Intel Core i7-12700E", 65, 12, 20),
    t("Intel Core i7-12700F", 65, 12, 20),
    t("Intel Core i7-12700K", 125, 12, 20),
    t("Intel Core i7-12700KF", 125, 12, 20),
    t("Intel Core i7-12700T", 35, 12, 20),
    t("Intel Core i7-12700TE", 35, 12, 20),
    t("Intel Core i7-13700", 65, 16, 24),
    t("Intel Core i7-13700E", 65, 16, 24),
    t("Intel Core i7-13700F", 65, 16, 24),
    t("Intel Core i7-13700K", 125, 16, 24),
    t("Intel Core i7-13700KF", 125, 16, 24),
    t("Intel Core i7-13700T", 35, 16, 24),
    t("Intel Core i7-13700TE", 35, 16, 24),
    t("Intel Core i7-13790F", 65, 16, 24),
    t("Intel Core i9-10800F", 65, 10, 20),
    t("Intel Core i9-10850K", 125, 10, 20),
    t("Intel Core i9-10900", 65, 10, 20),
    t("Intel Core i9-10900F", 65, 10, 20),
    t("Intel Core i9-10900K", 125, 10, 20),
    t("Intel Core i9-10900KF", 125, 10, 20),
    t("Intel Core i9-11900", 65, 8, 16),
    t("Intel Core i9-11900F", 65, 8, 16),
    t("Intel Core i9-11900K", 125, 8, 16),
    t("Intel Core i9-11900KF", 125, 8, 16),
    t("Intel Core i9-11900T", 35, 8, 16),
    t("Intel Core i9-12900", 65, 16, 24),
    t("Intel Core i9-12900E", 65, 16, 24),
    t("Intel Core i9-12900F", 65, 16, 24),
    t("Intel Core i9-12900K", 125, 16, 24),
    t("Intel Core i9-12900KF", 125, 16, 24),
    t("Intel Core i9-12900KS", 150, 16, 24),
    t("Intel Core i9-12900T", 35, 16, 24),
    t("Intel Core i9-12900TE", 35, 16, 24),
    t("Intel Core i9-13900", 65, 24, 32),
    t("Intel Core i9-13900E", 65, 24, 32),
    t("Intel Core i9-13900F", 65, 24, 32),
    t("Intel Core i9-13900K", 125, 24, 32),
    t("Intel Core i9-13900KF", 125, 24, 32),
    t("Intel Core i9-13900KS", 150, 24, 32),
    t("Intel Core i9-13900T", 35, 24, 32),
    t("Intel Core i9-13900TE", 35, 24, 32),
    // Wikipedia via Boavizta/boaviztapi@15878f0 boaviztapi/data/crowdsourcing/cpu_specs.csv; Apple publishes no TDP: rough
    t("Apple M1", 20, 8, 8),
    t("Apple M1 Max", 90, 10, 10),
    t("Apple M1 Pro", 60, 10, 10),
    t("Apple M1 Ultra", 120, 20, 20),
    t("Apple M2", 20, 8, 8),
    t("Apple M2 Max", 90, 12, 12),
    t("Apple M2 Pro", 50, 10, 10),
    t("Apple M2 Ultra", 120, 24, 24),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sane() {
        for c in CCF_CPU {
            assert!(
                c.min_w_per_vcpu > 0.0 && c.max_w_per_vcpu > c.min_w_per_vcpu,
                "{c:?}"
            );
        }
        assert_eq!(lookup("Skylake").unwrap().max_w_per_vcpu, 4.26);
        assert!(lookup("Zen 9").is_none());
    }

    #[test]
    fn vendor_rows_pick_the_vendor_or_everything() {
        assert!(vendor_rows("Intel").iter().all(|c| c.vendor == "Intel"));
        assert_eq!(vendor_rows("AMD").len(), 3);
        assert_eq!(vendor_rows("unknown").len(), CCF_CPU.len() + 1);
    }

    #[test]
    fn memory_and_pue_constants() {
        assert!((CCF_MEMORY_W_PER_GB - 0.392).abs() < 1e-12);
        const { assert!(GREEN_ALGORITHMS_MEMORY_W_PER_GB < CCF_MEMORY_W_PER_GB) };
        for pue in [
            PUE_CCF_ON_PREMISE,
            PUE_CCF_AWS,
            PUE_CCF_GCP,
            PUE_CCF_AZURE,
            PUE_CCF_ALIBABA,
            PUE_GREEN_ALGORITHMS_UNKNOWN,
        ] {
            assert!((1.0..2.0).contains(&pue));
        }
    }

    #[test]
    fn gpu_idle_fraction_is_the_ccf_median() {
        let mut r: Vec<f64> = CCF_GPU
            .iter()
            .filter(|g| g.vendor == "NVIDIA")
            .map(|g| g.min_w / g.max_w)
            .collect();
        r.sort_by(f64::total_cmp);
        assert_eq!(r.len(), 10);
        let median = (r[4] + r[5]) / 2.0;
        assert!((median - GPU_IDLE_FRACTION).abs() < 1e-12, "{median}");
        let avg = ccf_gpu_average();
        assert!((avg.min_w - 27.8).abs() < 1e-9 && (avg.max_w - 241.55).abs() < 1e-9);
    }

    #[test]
    fn gpu_table_is_consistent() {
        for (i, g) in NVIDIA_GPUS.iter().enumerate() {
            assert!(g.idle_w() > 0.0 && g.idle_w() < g.max_w(), "{g:?}");
            assert!(g.ccf_model.is_none() || g.ccf().is_some(), "{g:?}");
            assert!(
                NVIDIA_GPUS[i + 1..]
                    .iter()
                    .all(|o| o.pci_device != g.pci_device),
                "duplicate {g:?}"
            );
        }
        let a100 = nvidia_gpu(0x20b0).unwrap();
        assert_eq!((a100.idle_w(), a100.max_w()), (46.0, 400.0));
        let h100 = nvidia_gpu(0x2330).unwrap();
        assert_eq!(h100.max_w(), 700.0);
        assert!((h100.idle_w() - 700.0 * 35.0 / 306.0).abs() < 1e-9);
        assert_eq!(nvidia_gpu(0x13f2).unwrap().max_w(), 306.0);
    }

    #[test]
    fn cpu_model_names_normalise_to_the_vendors_name() {
        let cases = [
            ("AMD EPYC 7763 64-Core Processor", "amd epyc 7763"),
            (
                "Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz",
                "intel xeon platinum 8380",
            ),
            (
                "12th Gen Intel(R) Core(TM) i7-12700K",
                "intel core i7-12700k",
            ),
            (
                "AMD Ryzen 7 5700G with Radeon Graphics",
                "amd ryzen 7 5700g",
            ),
            (
                "AMD Ryzen Threadripper PRO 5995WX 64-Cores",
                "amd ryzen threadripper pro 5995wx",
            ),
            (
                "Intel(R) Xeon(R) Platinum 8480+",
                "intel xeon platinum 8480+",
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize_cpu_model(raw), want);
            assert!(cpu_tdp(raw).is_some(), "{raw}");
        }
    }

    #[test]
    fn cpu_tdp_matches_exactly_or_not_at_all() {
        let r = cpu_tdp("AMD EPYC 7763 64-Core Processor").unwrap();
        assert_eq!((r.tdp_w, r.cores, r.threads), (280, 64, 128));
        assert_eq!(
            cpu_tdp("AMD EPYC 9654P 96-Core Processor").unwrap().model,
            "AMD EPYC 9654P"
        );
        assert_eq!(
            cpu_tdp("Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz")
                .unwrap()
                .tdp_w,
            150
        );
        assert!(cpu_tdp("AMD EPYC").is_none());
        assert!(cpu_tdp("AMD EPYC 7R13 Processor").is_none());
        assert!(cpu_tdp("Intel(R) Xeon(R) CPU E5-2686 v4 @ 2.30GHz").is_none());
        assert!(cpu_tdp("").is_none());
    }

    #[test]
    fn cpu_tdp_table_is_sane_and_unambiguous() {
        assert_eq!(CPU_TDP.len(), 685);
        let mut keys: Vec<String> = CPU_TDP
            .iter()
            .map(|r| normalize_cpu_model(r.model))
            .collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), CPU_TDP.len());
        for r in CPU_TDP {
            assert!(r.tdp_w > 0 && r.cores > 0, "{r:?}");
            assert!(r.threads == 0 || r.threads >= r.cores, "{r:?}");
        }
    }
}
