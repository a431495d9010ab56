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
//! The tables are CSV files in `carina-probes/data/` (each with its sources in `#` header lines),
//! compiled in with `include_str!` and parsed once, on first use: editing a coefficient is a
//! data change, reviewed as one. Single published figures (memory watts per GB, PUEs, the CCF
//! fallback row) stay constants here, each with its source.
//!
//! Carina's own choices (not published figures) are named as such: [`USER_OVERRIDE_SPREAD`],
//! [`MEMORY_SPREAD`], and how the tables are combined (see `carina-probes`' `model` module).

use std::sync::LazyLock;

/// `data/cpu_coefficients.csv`: CCF watts per vCPU per CPU family.
pub const CPU_COEFFICIENTS_CSV: &str = include_str!("../data/cpu_coefficients.csv");
/// `data/gpu_coefficients.csv`: CCF idle and full-load watts per GPU model.
pub const GPU_COEFFICIENTS_CSV: &str = include_str!("../data/gpu_coefficients.csv");
/// `data/nvidia_gpus.csv`: NVIDIA PCI device ids, names, board power and CCF row.
pub const NVIDIA_GPUS_CSV: &str = include_str!("../data/nvidia_gpus.csv");
/// `data/cpu_tdp.csv`: CPU models' TDP, cores and threads.
pub const CPU_TDP_CSV: &str = include_str!("../data/cpu_tdp.csv");

/// The data rows of one of this crate's CSV tables: `#` lines and the column header skipped,
/// fields split on commas (the tables hold no quoted field). A row that does not parse is
/// dropped by the table's reader; `every_csv_row_is_in_its_table` holds each file to zero
/// dropped rows, so a bad edit fails the tests rather than panicking in an application.
fn rows(csv: &'static str) -> impl Iterator<Item = Vec<&'static str>> {
    csv.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .skip(1)
        .map(|l| l.split(',').map(str::trim).collect())
}

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

/// The Cloud Carbon Footprint table (`data/cpu_coefficients.csv`).
pub static CCF_CPU: LazyLock<Vec<CpuCoefficients>> = LazyLock::new(|| {
    rows(CPU_COEFFICIENTS_CSV)
        .filter_map(|f| {
            Some(CpuCoefficients {
                family: f.first()?,
                vendor: f.get(1)?,
                min_w_per_vcpu: f.get(2)?.parse().ok()?,
                max_w_per_vcpu: f.get(3)?.parse().ok()?,
            })
        })
        .collect()
});

/// CCF's fallback for an unknown CPU: the AWS average, 0.74 W / 3.5 W per vCPU
/// (`MIN_WATTS_AVG`, `MAX_WATTS_AVG` in AwsFootprintEstimationConstants.ts@b7a049c).
pub const CCF_FALLBACK: CpuCoefficients = CpuCoefficients {
    family: "unknown (CCF AWS average)",
    vendor: "unknown",
    min_w_per_vcpu: 0.74,
    max_w_per_vcpu: 3.5,
};

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

/// CCF's GPU table (`data/gpu_coefficients.csv`: Methodology.md Appendix III @b7a049c,
/// Teads/TechPowerUp-derived).
pub static CCF_GPU: LazyLock<Vec<GpuCoefficients>> = LazyLock::new(|| {
    rows(GPU_COEFFICIENTS_CSV)
        .filter_map(|f| {
            Some(GpuCoefficients {
                model: f.first()?,
                vendor: f.get(1)?,
                min_w: f.get(2)?.parse().ok()?,
                max_w: f.get(3)?.parse().ok()?,
            })
        })
        .collect()
});

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

/// Common data-centre and workstation NVIDIA GPUs by PCI device id (`data/nvidia_gpus.csv`;
/// its header cites the PCI ID Repository for ids and names, and NVIDIA datasheets, mlco2/impact
/// and Green Algorithms for board power). `ccf_model` names the [`CCF_GPU`] row of the same
/// product, whose idle watts are used.
pub static NVIDIA_GPUS: LazyLock<Vec<GpuSpec>> = LazyLock::new(|| {
    rows(NVIDIA_GPUS_CSV)
        .filter_map(|f| {
            let id = f.first()?.strip_prefix("0x")?;
            let tdp = f.get(2)?;
            let ccf = f.get(3)?;
            Some(GpuSpec {
                pci_device: u16::from_str_radix(id, 16).ok()?,
                name: f.get(1)?,
                tdp_w: if tdp.is_empty() {
                    None
                } else {
                    Some(tdp.parse().ok()?)
                },
                ccf_model: (!ccf.is_empty()).then_some(*ccf),
            })
        })
        .collect()
});

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
    // The rows' normalised names, computed once (the table has 685 rows).
    static KEYS: LazyLock<Vec<String>> = LazyLock::new(|| {
        CPU_TDP
            .iter()
            .map(|r| normalize_cpu_model(r.model))
            .collect()
    });
    let key = normalize_cpu_model(model_name);
    if key.is_empty() {
        return None;
    }
    let i = KEYS.iter().position(|k| *k == key)?;
    CPU_TDP.get(i)
}

/// TDP, cores and threads of 685 CPU models (AMD EPYC 7001-9005/8004/4004/4005, Ryzen
/// 3000-9000 and Threadripper; Intel Xeon Scalable gen 1-5, Xeon Max, Xeon 6; Intel Core
/// i5/i7/i9 10th-13th gen desktop; Apple M1/M2), from `data/cpu_tdp.csv`, whose header names
/// the source of each row's `source` key (vendor spec sheets via CodeCarbon, Intel ARK,
/// TechPowerUp and Wikipedia via Boavizta).
pub static CPU_TDP: LazyLock<Vec<CpuTdp>> = LazyLock::new(|| {
    rows(CPU_TDP_CSV)
        .filter_map(|f| {
            Some(CpuTdp {
                model: f.first()?,
                tdp_w: f.get(1)?.parse().ok()?,
                cores: f.get(2)?.parse().ok()?,
                threads: f.get(3)?.parse().ok()?,
            })
        })
        .collect()
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_csv_row_is_in_its_table() {
        let data_rows = |csv: &str| {
            csv.lines()
                .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
                .count()
                - 1
        };
        assert_eq!(CCF_CPU.len(), data_rows(CPU_COEFFICIENTS_CSV));
        assert_eq!(CCF_GPU.len(), data_rows(GPU_COEFFICIENTS_CSV));
        assert_eq!(NVIDIA_GPUS.len(), data_rows(NVIDIA_GPUS_CSV));
        assert_eq!(CPU_TDP.len(), data_rows(CPU_TDP_CSV));
        // The sizes the docs quote, and a few rows read back exactly.
        assert_eq!((CCF_CPU.len(), CCF_GPU.len(), CPU_TDP.len()), (11, 12, 685));
        assert_eq!(
            CCF_CPU[0],
            CpuCoefficients {
                family: "Cascade Lake",
                vendor: "Intel",
                min_w_per_vcpu: 0.64,
                max_w_per_vcpu: 3.97
            }
        );
        let h200 = nvidia_gpu(0x2335).unwrap();
        assert_eq!(
            (h200.name, h200.tdp_w, h200.ccf_model),
            ("NVIDIA H200", Some(700.0), None)
        );
        let m60 = nvidia_gpu(0x13f2).unwrap();
        assert_eq!((m60.tdp_w, m60.ccf_model), (None, Some("Tesla M60")));
        assert_eq!(cpu_tdp("Apple M2 Ultra").map(|r| r.tdp_w), Some(120));
        // Each CSV header names its source.
        for csv in [
            CPU_COEFFICIENTS_CSV,
            GPU_COEFFICIENTS_CSV,
            NVIDIA_GPUS_CSV,
            CPU_TDP_CSV,
        ] {
            assert!(csv.starts_with('#') && csv.contains("@"), "{}", &csv[..80]);
        }
    }

    #[test]
    fn table_is_sane() {
        for c in CCF_CPU.iter() {
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
        for r in CPU_TDP.iter() {
            assert!(r.tdp_w > 0 && r.cores > 0, "{r:?}");
            assert!(r.threads == 0 || r.threads >= r.cores, "{r:?}");
        }
    }
}
