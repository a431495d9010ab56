//! Per-vCPU power coefficients for the estimation model.
//!
//! Watts per vCPU at 0 % (`min`) and 100 % (`max`) utilisation, per CPU microarchitecture, as
//! published by Cloud Carbon Footprint (derived from the SPECpower database). Values from
//! cloud-carbon-footprint/cloud-carbon-footprint@b7a049c (2024-03),
//! `packages/{aws,gcp,azure}/src/domain/*FootprintEstimationConstants.ts`; they are identical
//! across providers where an architecture appears.

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
    row("AWS Graviton2", "AWS", 0.47, 1.69),
];

/// CCF's fallback for an unknown CPU: the AWS average, 0.74 W / 3.5 W per vCPU
/// (`MIN_WATTS_AVG`, `MAX_WATTS_AVG` in AwsFootprintEstimationConstants.ts@b7a049c).
pub const CCF_FALLBACK: CpuCoefficients = row("unknown (CCF AWS average)", "unknown", 0.74, 3.5);

/// Looks a family up by its exact name in [`CCF_CPU`].
pub fn lookup(family: &str) -> Option<&'static CpuCoefficients> {
    CCF_CPU.iter().find(|c| c.family == family)
}

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
}
