//! What the machine is, for the estimation model: CPU identification from `/proc/cpuinfo`
//! (mapped to a coefficient row and, where the model name matches, a TDP) and memory size from
//! `/proc/meminfo`. These are this crate's `/proc` parsers; CPU *time* (host and process) is
//! read by `carina_runtime::procfs`, which the core's attribution uses too.

use crate::coefficients::{self, CpuCoefficients, CpuTdp};
use carina_runtime::ProbeError;
use std::path::Path;

/// What `/proc/cpuinfo` says about the first processor.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CpuIdentity {
    /// `vendor_id`, e.g. `GenuineIntel`, `AuthenticAMD`.
    pub vendor: String,
    /// `cpu family` (decimal).
    pub family: u32,
    /// `model` (decimal).
    pub model: u32,
    /// `model name`.
    pub model_name: String,
    /// Number of `processor` entries (logical CPUs).
    pub logical_cpus: u32,
    /// `siblings` of the first processor: logical CPUs per package (0 when absent).
    pub siblings: u32,
    /// `cpu cores` of the first processor: physical cores per package (0 when absent).
    pub cpu_cores: u32,
}

impl CpuIdentity {
    /// Hardware threads per core, from `siblings / cpu cores` when both are present and give
    /// 1..=8; `None` otherwise (e.g. ARM, which reports neither).
    pub fn threads_per_core(&self) -> Option<u32> {
        (self.siblings > 0 && self.cpu_cores > 0 && self.siblings.is_multiple_of(self.cpu_cores))
            .then(|| self.siblings / self.cpu_cores)
            .filter(|t| (1..=8).contains(t))
    }

    /// The vendor as the CCF table names it: `Intel`, `AMD`, or `unknown`.
    pub fn ccf_vendor(&self) -> &'static str {
        match self.vendor.as_str() {
            "GenuineIntel" => "Intel",
            "AuthenticAMD" => "AMD",
            _ => "unknown",
        }
    }
}

/// Reads `<proc_root>/<name>` and parses it with `parse`, errors naming the file.
fn read_with<T>(
    proc_root: &Path,
    name: &str,
    parse: fn(&str, &Path) -> Result<T, ProbeError>,
) -> Result<T, ProbeError> {
    let path = proc_root.join(name);
    let text = std::fs::read_to_string(&path).map_err(|source| ProbeError::Io {
        path: path.clone(),
        source,
    })?;
    parse(&text, &path)
}

/// Reads `<proc_root>/cpuinfo`.
pub fn read_cpuinfo(proc_root: &Path) -> Result<CpuIdentity, ProbeError> {
    read_with(proc_root, "cpuinfo", parse_cpuinfo)
}

/// Parses `/proc/cpuinfo` text; `path` is used in errors.
pub fn parse_cpuinfo(text: &str, path: &Path) -> Result<CpuIdentity, ProbeError> {
    let mut id = CpuIdentity::default();
    let mut seen_first = false;
    for (i, line) in text.lines().enumerate() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        if key == "processor" {
            id.logical_cpus += 1;
            if id.logical_cpus > 1 {
                seen_first = true;
            }
            continue;
        }
        if seen_first {
            continue;
        }
        let num = |field: &str| -> Result<u32, ProbeError> {
            value.parse().map_err(|_| ProbeError::Parse {
                path: path.to_path_buf(),
                line: i + 1,
                field: field.to_owned(),
                message: format!("expected a decimal number, got {value:?}"),
            })
        };
        match key {
            "vendor_id" => id.vendor = value.to_owned(),
            "cpu family" => id.family = num("cpu family")?,
            "model" => id.model = num("model")?,
            "model name" => id.model_name = value.to_owned(),
            // Informational: a malformed value only loses the TDP-per-thread refinement.
            "siblings" => id.siblings = value.parse().unwrap_or(0),
            "cpu cores" => id.cpu_cores = value.parse().unwrap_or(0),
            _ => {}
        }
    }
    id.logical_cpus = id.logical_cpus.max(1);
    Ok(id)
}

/// The coefficient row chosen for a CPU, and how sure we are.
#[derive(Debug, Clone, PartialEq)]
pub struct Classification {
    /// The row used.
    pub coefficients: CpuCoefficients,
    /// Microarchitecture Carina recognised, if any (e.g. `Zen 5`).
    pub microarchitecture: Option<&'static str>,
    /// True when the row is the CPU's own; false for a nearest-generation or average fallback.
    pub exact: bool,
    /// One sentence for the run file: what was detected and which row stands in for it.
    pub note: String,
}

/// Maps vendor, family and model numbers to a Cloud Carbon Footprint row.
///
/// Family/model numbers follow the vendors' published assignments (Intel's family 6 model
/// numbers in the SDM; AMD family 17h = Zen/Zen+/Zen 2, 19h = Zen 3/Zen 4, 1Ah = Zen 5 in AMD's
/// Processor Programming References). Families CCF has no row for use the nearest older
/// generation of the same vendor, and say so.
pub fn classify(cpu: &CpuIdentity) -> Classification {
    let (arch, row, exact): (Option<&'static str>, &str, bool) =
        match (cpu.vendor.as_str(), cpu.family) {
            ("AuthenticAMD", 0x17) if cpu.model < 0x30 => {
                (Some("Zen/Zen+"), "AMD EPYC 1st Gen", true)
            }
            ("AuthenticAMD", 0x17) => (Some("Zen 2"), "AMD EPYC 2nd Gen", true),
            ("AuthenticAMD", 0x19) if cpu.model < 0x10 || (0x20..0x60).contains(&cpu.model) => {
                (Some("Zen 3"), "AMD EPYC 3rd Gen", true)
            }
            ("AuthenticAMD", 0x19) => (Some("Zen 4"), "AMD EPYC 3rd Gen", false),
            ("AuthenticAMD", 0x1A) => (Some("Zen 5"), "AMD EPYC 3rd Gen", false),
            ("GenuineIntel", 6) => match cpu.model {
                42 | 45 => (Some("Sandy Bridge"), "Sandy Bridge", true),
                58 | 62 => (Some("Ivy Bridge"), "Ivy Bridge", true),
                60 | 63 | 69 | 70 => (Some("Haswell"), "Haswell", true),
                61 | 71 | 79 | 86 => (Some("Broadwell"), "Broadwell", true),
                // Model 85 is Skylake-SP and Cascade Lake (steppings 5+); cpuinfo's name tells them
                // apart only loosely, so Skylake's slightly higher max is used: the safer estimate.
                78 | 94 | 85 => (Some("Skylake"), "Skylake", true),
                142 | 158 | 165 | 166 => (Some("Coffee Lake"), "Coffee Lake", true),
                106 | 108 | 143 | 207 => (Some("Ice Lake or later"), "Cascade Lake", false),
                _ => (None, "", false),
            },
            _ => (None, "", false),
        };
    let coefficients = coefficients::lookup(row)
        .copied()
        .unwrap_or(coefficients::CCF_FALLBACK);
    let name = if cpu.model_name.is_empty() {
        format!("{} family {} model {}", cpu.vendor, cpu.family, cpu.model)
    } else {
        cpu.model_name.clone()
    };
    let note = match (arch, exact) {
        (Some(a), true) => format!("{name} ({a}): CCF row `{}`", coefficients.family),
        (Some(a), false) => format!(
            "{name} ({a}): CCF has no row for it; nearest older generation `{}` stands in",
            coefficients.family
        ),
        (None, _) => format!(
            "{name}: not recognised; CCF's average `{}` stands in",
            coefficients.family
        ),
    };
    Classification {
        coefficients,
        microarchitecture: arch,
        exact: exact && arch.is_some(),
        note,
    }
}

/// The CPU's row in the TDP table ([`coefficients::CPU_TDP`]), when its `model name` matches a
/// row exactly once both are normalised ([`coefficients::normalize_cpu_model`]: `(R)`, `(TM)`,
/// `CPU`, `Processor`, `N-Core`, `@ x GHz` dropped, case ignored).
pub fn tdp_match(cpu: &CpuIdentity) -> Option<&'static CpuTdp> {
    coefficients::cpu_tdp(&cpu.model_name)
}

/// Watts per hardware thread at full load from a TDP row: `TDP / threads`. Where the row gives
/// no thread count, threads = cores x this machine's threads per core (`siblings / cpu cores`
/// in `/proc/cpuinfo`), or cores alone when that is unknown (the higher, safer figure).
pub fn tdp_w_per_thread(row: &CpuTdp, cpu: &CpuIdentity) -> f64 {
    let threads = if row.threads > 0 {
        u32::from(row.threads)
    } else {
        u32::from(row.cores) * cpu.threads_per_core().unwrap_or(1)
    };
    f64::from(row.tdp_w) / f64::from(threads.max(1))
}

/// `MemTotal` of `<proc_root>/meminfo`, in GiB.
pub fn memory_gb(proc_root: &Path) -> Result<f64, ProbeError> {
    read_with(proc_root, "meminfo", parse_mem_total_gb)
}

/// Parses `MemTotal: <n> kB` from `/proc/meminfo` text into GiB; `path` is used in errors.
pub fn parse_mem_total_gb(text: &str, path: &Path) -> Result<f64, ProbeError> {
    for (i, line) in text.lines().enumerate() {
        let Some(rest) = line.strip_prefix("MemTotal:") else {
            continue;
        };
        let mut it = rest.split_ascii_whitespace();
        let value = it.next().unwrap_or("");
        let err = |message: String| ProbeError::Parse {
            path: path.to_path_buf(),
            line: i + 1,
            field: "MemTotal".to_owned(),
            message,
        };
        let kib: u64 = value
            .parse()
            .map_err(|_| err(format!("expected an integer, got {value:?}")))?;
        return match it.next() {
            Some("kB") => Ok(kib as f64 / (1024.0 * 1024.0)),
            unit => Err(err(format!("expected unit `kB`, got {unit:?}"))),
        };
    }
    Err(ProbeError::Parse {
        path: path.to_path_buf(),
        line: 1,
        field: "MemTotal".to_owned(),
        message: "no `MemTotal` line".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPYC_ZEN5: &str = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 26\nmodel\t\t: 2\nmodel name\t: AMD EPYC\n\nprocessor\t: 1\nvendor_id\t: AuthenticAMD\ncpu family\t: 26\nmodel\t\t: 2\n";

    #[test]
    fn parses_this_machines_kind_of_cpuinfo() {
        let id = parse_cpuinfo(EPYC_ZEN5, Path::new("/proc/cpuinfo")).unwrap();
        assert_eq!(id.vendor, "AuthenticAMD");
        assert_eq!((id.family, id.model, id.logical_cpus), (26, 2, 2));
        let c = classify(&id);
        assert_eq!(c.microarchitecture, Some("Zen 5"));
        assert!(!c.exact);
        assert_eq!(c.coefficients.family, "AMD EPYC 3rd Gen");
        assert!(c.note.contains("nearest older generation"), "{}", c.note);
    }

    #[test]
    fn known_intel_and_amd_rows() {
        let cpu = |vendor: &str, family, model| CpuIdentity {
            vendor: vendor.into(),
            family,
            model,
            ..Default::default()
        };
        assert_eq!(
            classify(&cpu("GenuineIntel", 6, 79)).coefficients.family,
            "Broadwell"
        );
        assert_eq!(
            classify(&cpu("GenuineIntel", 6, 63)).coefficients.family,
            "Haswell"
        );
        assert_eq!(
            classify(&cpu("AuthenticAMD", 23, 49)).coefficients.family,
            "AMD EPYC 2nd Gen"
        );
        assert_eq!(
            classify(&cpu("AuthenticAMD", 25, 1)).coefficients.family,
            "AMD EPYC 3rd Gen"
        );
        assert!(classify(&cpu("AuthenticAMD", 25, 1)).exact);
        let unknown = classify(&cpu("HygonGenuine", 24, 1));
        assert!(!unknown.exact);
        assert_eq!(unknown.coefficients, crate::coefficients::CCF_FALLBACK);
    }

    #[test]
    fn topology_and_tdp_match() {
        let text = "processor : 0\nvendor_id : AuthenticAMD\ncpu family : 25\nmodel : 1\nmodel name : AMD EPYC 7763 64-Core Processor\nsiblings : 8\ncpu cores : 4\nprocessor : 1\nsiblings : 8\n";
        let id = parse_cpuinfo(text, Path::new("/proc/cpuinfo")).unwrap();
        assert_eq!(
            (id.siblings, id.cpu_cores, id.threads_per_core()),
            (8, 4, Some(2))
        );
        assert_eq!(id.ccf_vendor(), "AMD");
        let row = tdp_match(&id).unwrap();
        assert_eq!(row.model, "AMD EPYC 7763");
        assert_eq!(tdp_w_per_thread(row, &id), 280.0 / 128.0);
        // No thread count in the row: cores x this machine's threads per core.
        let xeon = CpuTdp {
            model: "x",
            tdp_w: 150,
            cores: 20,
            threads: 0,
        };
        assert_eq!(tdp_w_per_thread(&xeon, &id), 150.0 / 40.0);
        assert_eq!(
            tdp_w_per_thread(&xeon, &CpuIdentity::default()),
            150.0 / 20.0
        );
    }

    #[test]
    fn garbage_names_file_line_and_field() {
        let e = parse_cpuinfo("processor : 0\ncpu family : six\n", Path::new("/x/cpuinfo"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/x/cpuinfo") && e.contains("line 2") && e.contains("cpu family"),
            "{e}"
        );
    }

    #[test]
    fn meminfo_parses_and_names_errors() {
        let p = Path::new("/proc/meminfo");
        let gb = parse_mem_total_gb("MemTotal:       16777216 kB\nMemFree: 1 kB\n", p).unwrap();
        assert_eq!(gb, 16.0);
        let e = parse_mem_total_gb("MemFree: 1 kB\nMemTotal: lots kB\n", p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("MemTotal"), "{e}");
        assert!(parse_mem_total_gb("", p).is_err());
    }
}
