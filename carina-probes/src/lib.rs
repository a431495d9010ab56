//! Energy probes for Carina, and the detection that picks them.
//!
//! This version ships the estimation model, configured from the CPU found in `/proc/cpuinfo`.
//! [`detect`] returns the chosen probes and, for each source it did not choose, the reason.

#![deny(missing_docs)]

pub mod cpuinfo;
pub mod model;
pub mod nvml;
pub mod perf_rapl;
pub mod powercap;

pub use model::estimation_model;

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

/// Where detection looks; every root can point at a fake tree.
#[derive(Debug, Clone)]
pub struct Roots {
    /// `/proc`.
    pub proc: PathBuf,
    /// `/sys/class/powercap`, or `CARINA_POWERCAP_ROOT`.
    pub powercap: PathBuf,
}

impl Default for Roots {
    fn default() -> Self {
        Roots {
            proc: procfs::default_root(),
            powercap: std::env::var_os("CARINA_POWERCAP_ROOT")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/sys/class/powercap")),
        }
    }
}

/// Detects energy sources on this machine.
pub fn detect() -> Detection {
    detect_in(&Roots::default())
}

/// Detects energy sources under the given roots.
pub fn detect_in(roots: &Roots) -> Detection {
    let mut not_chosen = Vec::new();
    let rapl = roots.powercap.join("intel-rapl:0");
    not_chosen.push(NotChosen {
        name: "rapl-powercap".into(),
        reason: if rapl.exists() {
            format!(
                "{} exists, but this Carina version has no RAPL reader yet; energy is estimated",
                rapl.display()
            )
        } else {
            format!(
                "{} not found: no RAPL counters exposed (VM or non-x86 machine)",
                rapl.display()
            )
        },
    });
    Detection {
        probes: vec![Box::new(estimation_model(&roots.proc))],
        not_chosen,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use carina_core::EnergyKind;

    #[test]
    fn detection_on_a_fake_vm_chooses_the_model_and_says_why_not_rapl() {
        let proc = tempfile::tempdir().unwrap();
        std::fs::write(
            proc.path().join("cpuinfo"),
            "processor : 0\nvendor_id : GenuineIntel\ncpu family : 6\nmodel : 85\nmodel name : Intel Xeon\nprocessor : 1\n",
        )
        .unwrap();
        std::fs::write(
            proc.path().join("stat"),
            "cpu 1 0 1 10 0 0 0 0\ncpu0 1 0 1 5\ncpu1 0 0 0 5\n",
        )
        .unwrap();
        let d = detect_in(&Roots {
            proc: proc.path().into(),
            powercap: proc.path().join("no-powercap"),
        });
        assert_eq!(d.probes.len(), 1);
        let src = d.probes[0].describe();
        assert_eq!(src.kind, EnergyKind::Estimated);
        assert!(src.source.contains("Skylake"), "{}", src.source);
        // 2 vCPUs x 0.65 / 4.26 W.
        assert_eq!(src.idle_w, Some(1.3));
        assert_eq!(src.max_w, Some(8.52));
        assert!(d.not_chosen[0].reason.contains("not found"));
    }
}
