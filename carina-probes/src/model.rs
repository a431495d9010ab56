//! The estimation model for machines without energy counters.

use crate::cpuinfo;
use carina_core::{ModelProbe, PowerModel, Watts, coefficients::CCF_SOURCE, procfs};
use std::path::Path;

/// The estimation model for this machine's CPU: CCF watts per vCPU times the vCPUs online.
pub fn estimation_model(proc_root: &Path) -> ModelProbe {
    let cpu = cpuinfo::read_cpuinfo(proc_root).unwrap_or_default();
    let vcpus = procfs::host_cpu(proc_root)
        .map(|h| h.cpus)
        .ok()
        .or(Some(cpu.logical_cpus).filter(|&n| n > 0))
        .unwrap_or(1);
    let class = cpuinfo::classify(&cpu);
    let c = class.coefficients;
    let model = PowerModel::Linear {
        idle: Watts(c.min_w_per_vcpu * f64::from(vcpus)),
        max: Watts(c.max_w_per_vcpu * f64::from(vcpus)),
    };
    let source = format!(
        "{CCF_SOURCE}: {vcpus} vCPU x {}..{} W; {}",
        c.min_w_per_vcpu, c.max_w_per_vcpu, class.note
    );
    ModelProbe::with_proc_root(model, source, proc_root)
}

