//! Energy sources: the [`EnergyProbe`] trait and the estimation model that runs where no
//! hardware counter exists.

use crate::procfs::{self, HostCpu};
use crate::record::{EnergyKind, EnergySource};
use crate::units::{Joules, Seconds, Watts};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Why an energy source could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file's content is not what the kernel documents.
    #[error("{path}, line {line}, field `{field}`: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// Field name.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The source exists but cannot be used; the message says why and what to do.
    #[error("{0}")]
    Unavailable(String),
}

/// Whether a probe's energy covers the whole machine or only this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeScope {
    /// Whole-machine energy; in `process` scope the run takes its CPU-time share.
    Host,
    /// Already this process's energy (e.g. a user-given constant power for the job).
    Process,
}

/// A source of cumulative energy.
///
/// Implementations report, at each call of [`read`](Self::read), the energy consumed since the
/// probe was created, per domain. They are called from the aggregator thread only, at the
/// sampling interval (default 10 Hz), so they may do I/O.
pub trait EnergyProbe: Send {
    /// Describes the source for the run file (`run_start.energy_sources`).
    fn describe(&self) -> EnergySource;
    /// Whole machine or this process.
    fn scope(&self) -> ProbeScope;
    /// Names of the domains, in the order [`read`](Self::read) fills them.
    fn domains(&self) -> Vec<String>;
    /// Writes each domain's cumulative energy into `out` (same length as `domains()`).
    ///
    /// Values must never decrease: counter wraparound is the probe's business.
    fn read(&mut self, out: &mut [Joules]) -> Result<(), ProbeError>;
    /// For estimates: cumulative low and high bounds of the total energy (all domains) as of the
    /// last [`read`](Self::read), from the spread of the model's coefficients. `None` for
    /// measurements.
    fn band(&self) -> Option<(Joules, Joules)> {
        None
    }
}

impl<P: EnergyProbe + ?Sized> EnergyProbe for Box<P> {
    fn describe(&self) -> EnergySource {
        (**self).describe()
    }
    fn scope(&self) -> ProbeScope {
        (**self).scope()
    }
    fn domains(&self) -> Vec<String> {
        (**self).domains()
    }
    fn read(&mut self, out: &mut [Joules]) -> Result<(), ProbeError> {
        (**self).read(out)
    }
    fn band(&self) -> Option<(Joules, Joules)> {
        (**self).band()
    }
}

/// How the estimation model turns utilisation into power.
#[derive(Debug, Clone, PartialEq)]
pub enum PowerModel {
    /// `P = idle + (max - idle) x u`, with `u` the host CPU utilisation from `/proc/stat`.
    /// Both values are for the whole machine (all vCPUs).
    Linear {
        /// Machine watts at 0 % utilisation.
        idle: Watts,
        /// Machine watts at 100 % utilisation.
        max: Watts,
    },
    /// A constant power drawn on behalf of this job, whatever the utilisation: reproduces
    /// studies that report energy = mean power x runtime.
    Constant(Watts),
}

/// The estimation model as an [`EnergyProbe`]; always `kind: "estimated"`.
#[derive(Debug)]
pub struct ModelProbe {
    model: PowerModel,
    source: String,
    proc_root: PathBuf,
    last: Option<(Instant, HostCpu)>,
    energy: Joules,
}

impl ModelProbe {
    /// A model probe reading `/proc`. `source` says where the watts come from.
    pub fn new(model: PowerModel, source: impl Into<String>) -> Self {
        Self::with_proc_root(model, source, procfs::default_root())
    }

    /// Same as [`new`](Self::new) with another proc root (tests use fake trees).
    pub fn with_proc_root(
        model: PowerModel,
        source: impl Into<String>,
        proc_root: impl Into<PathBuf>,
    ) -> Self {
        ModelProbe {
            model,
            source: source.into(),
            proc_root: proc_root.into(),
            last: None,
            energy: Joules::ZERO,
        }
    }

    /// The model in use.
    pub fn model(&self) -> &PowerModel {
        &self.model
    }

    /// Power at host utilisation `u` in `[0, 1]`.
    pub fn power_at(&self, u: f64) -> Watts {
        match self.model {
            PowerModel::Linear { idle, max } => {
                Watts(idle.0 + (max.0 - idle.0) * u.clamp(0.0, 1.0))
            }
            PowerModel::Constant(w) => w,
        }
    }

    /// Advances the model by `dt` at utilisation `u`; exposed for tests of the arithmetic.
    pub fn advance(&mut self, dt: Seconds, u: f64) -> Joules {
        let e = self.power_at(u) * dt;
        self.energy += e;
        e
    }
}

impl EnergyProbe for ModelProbe {
    fn describe(&self) -> EnergySource {
        let (name, idle, max) = match self.model {
            PowerModel::Linear { idle, max } => ("model", idle.0, max.0),
            PowerModel::Constant(w) => ("constant", w.0, w.0),
        };
        let mut src = EnergySource::new(name, EnergyKind::Estimated, self.source.clone());
        src.domains = self.domains();
        src.scope = match self.scope() {
            ProbeScope::Host => "host",
            ProbeScope::Process => "process",
        }
        .to_owned();
        src.idle_w = Some(idle);
        src.max_w = Some(max);
        src
    }

    fn scope(&self) -> ProbeScope {
        match self.model {
            PowerModel::Linear { .. } => ProbeScope::Host,
            PowerModel::Constant(_) => ProbeScope::Process,
        }
    }

    fn domains(&self) -> Vec<String> {
        vec!["cpu".to_owned()]
    }

    fn read(&mut self, out: &mut [Joules]) -> Result<(), ProbeError> {
        let now = Instant::now();
        let u = match self.model {
            // The constant model needs no utilisation; avoid the file read.
            PowerModel::Constant(_) => {
                let dt = self.last.map(|(t, _)| now - t).unwrap_or_default();
                self.last = Some((now, HostCpu::default()));
                self.advance(dt.into(), 1.0);
                if let Some(o) = out.first_mut() {
                    *o = self.energy;
                }
                return Ok(());
            }
            PowerModel::Linear { .. } => {
                let cpu = procfs::host_cpu(&self.proc_root)?;
                let prev = self.last.replace((now, cpu));
                prev.map(|(t, p)| {
                    let total = cpu.total.saturating_sub(p.total);
                    let busy = cpu.busy.saturating_sub(p.busy);
                    let u = if total == 0 {
                        0.0
                    } else {
                        busy as f64 / total as f64
                    };
                    (now - t, u)
                })
            }
        };
        if let Some((dt, u)) = u {
            self.advance(dt.into(), u);
        }
        if let Some(o) = out.first_mut() {
            *o = self.energy;
        }
        Ok(())
    }
}

/// Samples the process's share of host CPU time, for `process` scope.
#[derive(Debug)]
pub struct CpuShare {
    proc_root: PathBuf,
    last: Option<(u64, u64)>,
}

impl CpuShare {
    /// Reads `<proc_root>/stat` and `<proc_root>/self/stat`.
    pub fn new(proc_root: impl Into<PathBuf>) -> Self {
        CpuShare {
            proc_root: proc_root.into(),
            last: None,
        }
    }

    /// Share of host busy CPU time used by this process since the previous call, in `[0, 1]`.
    /// The first call returns `None`.
    pub fn sample(&mut self) -> Result<Option<f64>, ProbeError> {
        let host = procfs::host_cpu(&self.proc_root)?.busy;
        let own = procfs::process_cpu_ticks(&self.proc_root)?;
        let prev = self.last.replace((host, own));
        Ok(prev.map(|(h0, p0)| share(host.saturating_sub(h0), own.saturating_sub(p0))))
    }

    /// The proc root in use.
    pub fn proc_root(&self) -> &Path {
        &self.proc_root
    }
}

/// The process's share of host busy time, from tick deltas. Both counters are sampled by the
/// kernel's tick, so within one interval the process delta can exceed the host delta by a tick;
/// the share is clamped to 1. When the host was idle but the process ran, the process gets it all.
pub fn share(host_busy: u64, own: u64) -> f64 {
    match (host_busy, own) {
        (_, 0) => 0.0,
        (0, _) => 1.0,
        (h, p) => (p as f64 / h as f64).min(1.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linear(idle: f64, max: f64) -> PowerModel {
        PowerModel::Linear {
            idle: Watts(idle),
            max: Watts(max),
        }
    }

    #[test]
    fn linear_model_interpolates() {
        let mut p = ModelProbe::new(linear(10.0, 50.0), "test");
        assert_eq!(p.power_at(0.0), Watts(10.0));
        assert_eq!(p.power_at(0.5), Watts(30.0));
        assert_eq!(p.power_at(2.0), Watts(50.0));
        assert_eq!(p.advance(Seconds(2.0), 0.25), Joules(40.0));
    }

    #[test]
    fn model_reads_fake_proc_stat() {
        let dir = tempfile::tempdir().unwrap();
        let stat = dir.path().join("stat");
        std::fs::write(&stat, "cpu  0 0 0 100 0 0 0 0\ncpu0 0 0 0 100 0 0 0 0\n").unwrap();
        let mut p = ModelProbe::with_proc_root(linear(10.0, 50.0), "test", dir.path());
        let mut out = [Joules::ZERO];
        p.read(&mut out).unwrap();
        assert_eq!(out[0], Joules::ZERO);
        std::thread::sleep(std::time::Duration::from_millis(50));
        // 100 % busy in this interval.
        std::fs::write(
            &stat,
            "cpu  100 0 0 100 0 0 0 0\ncpu0 100 0 0 100 0 0 0 0\n",
        )
        .unwrap();
        p.read(&mut out).unwrap();
        // >= 50 ms at 50 W.
        assert!(out[0].0 >= 2.5 && out[0].0 < 10.0, "{:?}", out[0]);
        assert_eq!(p.describe().kind, EnergyKind::Estimated);
    }

    #[test]
    fn missing_proc_is_a_clear_error() {
        let mut p = ModelProbe::with_proc_root(linear(1.0, 2.0), "t", "/nonexistent/proc");
        let e = p.read(&mut [Joules::ZERO]).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/proc/stat"), "{e}");
    }

    #[test]
    fn share_is_bounded() {
        assert_eq!(share(0, 0), 0.0);
        assert_eq!(share(0, 3), 1.0);
        assert_eq!(share(10, 5), 0.5);
        assert_eq!(share(10, 12), 1.0);
    }

    #[test]
    fn constant_model_is_process_scoped() {
        let p = ModelProbe::new(PowerModel::Constant(Watts(270.0)), "user");
        assert_eq!(p.scope(), ProbeScope::Process);
        assert_eq!(p.describe().name, "constant");
    }
}
