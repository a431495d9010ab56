//! The estimation model as an [`EnergyProbe`]: power per part (CPU, memory, GPU) as a linear
//! function of host CPU utilisation from `/proc/stat`, integrated over time, with a low/high band.
//! Which figures a machine gets is decided in [`super`] (`estimation_model`).

use crate::coefficients::USER_OVERRIDE_SPREAD;
use carina_runtime::energy::{EnergyProbe, ProbeError, ProbeScope, Reading};
use carina_runtime::procfs::{self, HostCpu};
use carina_runtime::record::{Basis, DeviceInfo, EnergyKind, EnergySource, SourceId};
use carina_runtime::units::{Joules, Seconds, Watts};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How the estimation model turns utilisation into power, for user-given whole-machine figures.
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

/// Power of one model part as a function of host CPU utilisation `u` in `[0, 1]`:
/// `idle + dynamic x u`. A constant part has `dynamic == 0`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PartPower {
    /// Watts at 0 % utilisation.
    pub idle: Watts,
    /// Watts added between 0 % and 100 % utilisation (`max - idle`).
    pub dynamic: Watts,
}

impl PartPower {
    /// `idle` watts at 0 %, `max` watts at 100 %.
    pub fn linear(idle: Watts, max: Watts) -> Self {
        PartPower {
            idle,
            dynamic: Watts(max.0 - idle.0),
        }
    }

    /// The same watts at every utilisation.
    pub fn constant(w: Watts) -> Self {
        PartPower {
            idle: w,
            dynamic: Watts::ZERO,
        }
    }

    /// Watts at 100 % utilisation.
    pub fn max(&self) -> Watts {
        self.idle + self.dynamic
    }

    /// Watts at utilisation `u`, clamped to `[0, 1]`.
    pub fn at(&self, u: f64) -> Watts {
        Watts(self.idle.0 + self.dynamic.0 * u.clamp(0.0, 1.0))
    }

    /// Both terms times `k`.
    pub fn scaled(self, k: f64) -> Self {
        PartPower {
            idle: self.idle * k,
            dynamic: self.dynamic * k,
        }
    }

    /// Without the idle term: the "marginal energy" view, which counts only the power added by
    /// utilisation.
    pub fn dynamic_only(self) -> Self {
        PartPower {
            idle: Watts::ZERO,
            dynamic: self.dynamic,
        }
    }

    fn lower(self, o: Self) -> Self {
        PartPower {
            idle: Watts(self.idle.0.min(o.idle.0)),
            dynamic: Watts(self.dynamic.0.min(o.dynamic.0)),
        }
    }

    fn upper(self, o: Self) -> Self {
        PartPower {
            idle: Watts(self.idle.0.max(o.idle.0)),
            dynamic: Watts(self.dynamic.0.max(o.dynamic.0)),
        }
    }
}

/// One part of the estimation model (CPU, memory, GPUs, or a user-given whole-machine figure):
/// its domain name, the central estimate, and the low and high bounds of the band.
///
/// Invariant, enforced by the constructors: `low <= estimate <= high` term by term (idle and
/// dynamic), so at every utilisation `low.at(u) <= estimate.at(u) <= high.at(u)`, also after
/// [`dynamic_only`](Self::dynamic_only).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelPart {
    domain: String,
    estimate: PartPower,
    low: PartPower,
    high: PartPower,
}

impl ModelPart {
    /// A part with a band; the band is widened where needed to contain the estimate.
    pub fn new(
        domain: impl Into<String>,
        estimate: PartPower,
        low: PartPower,
        high: PartPower,
    ) -> Self {
        ModelPart {
            domain: domain.into(),
            estimate,
            low: low.lower(estimate),
            high: high.upper(estimate),
        }
    }

    /// A part whose band is `estimate x (1 -+ spread)`.
    pub fn with_spread(domain: impl Into<String>, estimate: PartPower, spread: f64) -> Self {
        let s = spread.abs();
        Self::new(
            domain,
            estimate,
            estimate.scaled(1.0 - s),
            estimate.scaled(1.0 + s),
        )
    }

    /// The same part without idle power (estimate and band): the marginal energy view.
    pub fn dynamic_only(&self) -> Self {
        ModelPart {
            domain: self.domain.clone(),
            estimate: self.estimate.dynamic_only(),
            low: self.low.dynamic_only(),
            high: self.high.dynamic_only(),
        }
    }

    /// The domain name (`cpu`, `memory`, `gpu`, `machine`).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The central estimate.
    pub fn estimate(&self) -> PartPower {
        self.estimate
    }

    /// The low end of the band.
    pub fn low(&self) -> PartPower {
        self.low
    }

    /// The high end of the band.
    pub fn high(&self) -> PartPower {
        self.high
    }

    fn uses_utilisation(&self) -> bool {
        [self.estimate, self.low, self.high]
            .iter()
            .any(|p| p.dynamic.0 != 0.0)
    }
}

/// The estimation model as an [`EnergyProbe`]; always `kind: "estimated"`.
///
/// It holds one or more [`ModelPart`]s, each reported as its own domain, and a PUE multiplier
/// applied to every part (estimate and band). At each [`read`](EnergyProbe::read) it takes the
/// host CPU utilisation `u` over the interval since the previous read from `/proc/stat` (only if
/// some part depends on it) and adds `P_part(u) x PUE x dt` to each domain. The first read sets
/// the baseline: energies count from it. The reading's `band` holds the same integral
/// of the parts' low and high bounds.
#[derive(Debug)]
pub struct ModelProbe {
    name: SourceId,
    source: String,
    reason: Option<String>,
    devices: Vec<DeviceInfo>,
    scope: ProbeScope,
    parts: Vec<ModelPart>,
    pue: f64,
    summary: PowerModel,
    /// `user-constant` for watts the user gave for the job, `model` otherwise.
    basis: Basis,
    needs_utilisation: bool,
    proc_root: PathBuf,
    origin: Instant,
    last: Option<(Duration, HostCpu)>,
    energy: Vec<Joules>,
    low: Vec<Joules>,
    high: Vec<Joules>,
}

impl ModelProbe {
    /// A model probe for a user-given whole-machine figure, reading `/proc`. `source` says where
    /// the watts come from.
    pub fn new(model: PowerModel, source: impl Into<String>) -> Self {
        Self::with_proc_root(model, source, procfs::default_root())
    }

    /// Same as [`new`](Self::new) with another proc root (tests use fake trees).
    ///
    /// One domain, `cpu` (as in earlier versions). `Linear` is host-scoped, `Constant`
    /// process-scoped (name `constant`). The band is the user's figure `x (1 -+ 0.10)`
    /// ([`USER_OVERRIDE_SPREAD`]); PUE 1.
    pub fn with_proc_root(
        model: PowerModel,
        source: impl Into<String>,
        proc_root: impl Into<PathBuf>,
    ) -> Self {
        let (power, scope, name) = match model {
            PowerModel::Linear { idle, max } => (
                PartPower::linear(idle, max),
                ProbeScope::Host,
                SourceId::Model,
            ),
            PowerModel::Constant(w) => (
                PartPower::constant(w),
                ProbeScope::Process,
                SourceId::Constant,
            ),
        };
        let part = ModelPart::with_spread("cpu", power, USER_OVERRIDE_SPREAD);
        let mut p = Self::from_parts(vec![part], scope, source, proc_root);
        p.name = name;
        p.summary = model;
        if scope == ProbeScope::Process {
            p = p.user_constant();
        }
        p
    }

    /// A model probe made of `parts`, one domain each, in that order. Name `model`, PUE 1.
    pub fn from_parts(
        parts: Vec<ModelPart>,
        scope: ProbeScope,
        source: impl Into<String>,
        proc_root: impl Into<PathBuf>,
    ) -> Self {
        let n = parts.len();
        let mut p = ModelProbe {
            name: SourceId::Model,
            source: source.into(),
            reason: None,
            devices: Vec::new(),
            scope,
            needs_utilisation: parts.iter().any(ModelPart::uses_utilisation),
            parts,
            pue: 1.0,
            summary: PowerModel::Constant(Watts::ZERO),
            basis: Basis::Model,
            proc_root: proc_root.into(),
            origin: Instant::now(),
            last: None,
            energy: vec![Joules::ZERO; n],
            low: vec![Joules::ZERO; n],
            high: vec![Joules::ZERO; n],
        };
        p.summary = p.summarise();
        p
    }

    /// Multiplies every part (estimate and band) by the power usage effectiveness `pue`
    /// (facility power / IT power; 1.0 = IT power only). Values that are not finite or below 1
    /// are ignored (PUE 1).
    pub fn with_pue(mut self, pue: f64) -> Self {
        self.pue = if pue.is_finite() && pue >= 1.0 {
            pue
        } else {
            1.0
        };
        self.summary = self.summarise();
        self
    }

    /// The name in the run file ([`SourceId::Model`], [`SourceId::Constant`]).
    pub fn with_name(mut self, name: impl Into<SourceId>) -> Self {
        self.name = name.into();
        self
    }

    /// Marks the figures as the user's constant watts for the job (basis `user-constant`)
    /// rather than a model of utilisation: what `.constant_watts(w)` builds.
    pub fn user_constant(mut self) -> Self {
        self.basis = Basis::UserConstant;
        self
    }

    /// What limits the estimate, for `energy_sources[].reason`.
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// Devices the model covers (e.g. GPUs seen but not measured).
    pub fn with_devices(mut self, devices: Vec<DeviceInfo>) -> Self {
        self.devices = devices;
        self
    }

    fn summarise(&self) -> PowerModel {
        let idle: f64 = self.parts.iter().map(|p| p.estimate.idle.0).sum();
        let max: f64 = self.parts.iter().map(|p| p.estimate.max().0).sum();
        match self.scope {
            ProbeScope::Process => PowerModel::Constant(Watts(idle * self.pue)),
            ProbeScope::Host => PowerModel::Linear {
                idle: Watts(idle * self.pue),
                max: Watts(max * self.pue),
            },
        }
    }

    /// The whole-machine equivalent of the model: all parts summed, PUE applied (`Constant` for
    /// a process-scoped probe).
    pub fn model(&self) -> &PowerModel {
        &self.summary
    }

    /// The parts, in domain order.
    pub fn parts(&self) -> &[ModelPart] {
        &self.parts
    }

    /// The PUE multiplier in use.
    pub fn pue(&self) -> f64 {
        self.pue
    }

    /// Total power at host utilisation `u` in `[0, 1]`, PUE applied.
    pub fn power_at(&self, u: f64) -> Watts {
        Watts(self.powers_at(u).iter().map(|w| w.0).sum())
    }

    /// Each part's power at utilisation `u`, PUE applied, in domain order.
    pub fn powers_at(&self, u: f64) -> Vec<Watts> {
        self.parts
            .iter()
            .map(|p| Watts(p.estimate.at(u).0 * self.pue))
            .collect()
    }

    /// Advances the model by `dt` at utilisation `u` and returns the energy added (all domains);
    /// exposed for tests of the arithmetic. A negative or NaN `dt` counts as zero.
    pub fn advance(&mut self, dt: Seconds, u: f64) -> Joules {
        let dt = if dt.0 > 0.0 { dt.0 } else { 0.0 };
        let mut added = Joules::ZERO;
        for (i, p) in self.parts.iter().enumerate() {
            let e = Joules(p.estimate.at(u).0 * self.pue * dt);
            self.energy[i] += e;
            self.low[i] += Joules(p.low.at(u).0 * self.pue * dt);
            self.high[i] += Joules(p.high.at(u).0 * self.pue * dt);
            added += e;
        }
        added
    }

    /// Cumulative energy per domain, in domain order.
    pub fn energies(&self) -> &[Joules] {
        &self.energy
    }

    /// Cumulative energy of all domains.
    pub fn total(&self) -> Joules {
        Joules(self.energy.iter().map(|e| e.0).sum())
    }

    /// [`read`](EnergyProbe::read) with the clock given: `elapsed` is the time since an origin
    /// of the caller's choosing (`read` uses the probe's creation), and must not go backwards
    /// (an earlier value counts as no time passing). Tests use it to inject time.
    pub fn read_at(&mut self, elapsed: Duration, out: &mut [Joules]) -> Result<(), ProbeError> {
        let cpu = if self.needs_utilisation {
            procfs::host_cpu(&self.proc_root)?
        } else {
            HostCpu::default()
        };
        let mut now = elapsed;
        if let Some((t, prev)) = self.last {
            now = now.max(t);
            let total = cpu.total.saturating_sub(prev.total);
            let busy = cpu.busy.saturating_sub(prev.busy);
            let u = if total == 0 {
                0.0
            } else {
                busy as f64 / total as f64
            };
            self.advance((now - t).into(), u);
        }
        self.last = Some((now, cpu));
        for (o, e) in out.iter_mut().zip(&self.energy) {
            *o = *e;
        }
        Ok(())
    }
}

impl ModelProbe {
    /// Whole machine or this process (as [`EnergyProbe::describe`] says).
    pub fn scope(&self) -> ProbeScope {
        self.scope
    }

    /// The domains, in the order reads fill them (as [`EnergyProbe::describe`] lists them).
    pub fn domains(&self) -> Vec<String> {
        self.parts.iter().map(|p| p.domain.clone()).collect()
    }

    /// Cumulative low and high bounds of the total energy as of the last read, from the spread of the coefficients.
    pub fn band(&self) -> Option<(Joules, Joules)> {
        let sum = |v: &[Joules]| Joules(v.iter().map(|e| e.0).sum());
        Some((sum(&self.low), sum(&self.high)))
    }
}

impl EnergyProbe for ModelProbe {
    fn describe(&self) -> EnergySource {
        let mut src = EnergySource::new(
            self.name.clone(),
            EnergyKind::Estimated,
            self.source.clone(),
        )
        .with_basis(self.basis);
        // The PUE is already in every figure; the field says by how much.
        src.pue = (self.pue != 1.0).then_some(self.pue);
        src.domains = self.domains();
        src.scope = self.scope;
        let (idle, max) = match self.summary {
            PowerModel::Linear { idle, max } => (idle.0, max.0),
            PowerModel::Constant(w) => (w.0, w.0),
        };
        src.idle_w = Some(carina_runtime::Watts(idle));
        src.max_w = Some(carina_runtime::Watts(max));
        src.reason = self.reason.clone();
        src.devices = self.devices.clone();
        src
    }

    fn read(&mut self, reading: &mut Reading) -> Result<(), ProbeError> {
        let elapsed = self.origin.elapsed();
        let result = self.read_at(elapsed, &mut reading.energy);
        reading.band = self.band();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use carina_runtime::EnergyProbeExt;

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
        p.read_energy(&mut out).unwrap();
        assert_eq!(out[0], Joules::ZERO);
        std::thread::sleep(std::time::Duration::from_millis(50));
        // 100 % busy in this interval.
        std::fs::write(
            &stat,
            "cpu  100 0 0 100 0 0 0 0\ncpu0 100 0 0 100 0 0 0 0\n",
        )
        .unwrap();
        p.read_energy(&mut out).unwrap();
        // >= 50 ms at 50 W.
        assert!(out[0].0 >= 2.5 && out[0].0 < 10.0, "{:?}", out[0]);
        assert_eq!(p.describe().kind, EnergyKind::Estimated);
    }

    #[test]
    fn missing_proc_is_a_clear_error() {
        let mut p = ModelProbe::with_proc_root(linear(1.0, 2.0), "t", "/nonexistent/proc");
        let e = p.read_energy(&mut [Joules::ZERO]).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/proc/stat"), "{e}");
    }

    #[test]
    fn user_override_band_is_ten_percent() {
        let mut p = ModelProbe::new(PowerModel::Constant(Watts(100.0)), "user");
        assert_eq!(p.advance(Seconds(10.0), 0.3), Joules(1000.0));
        let (lo, hi) = p.band().unwrap();
        assert!((lo.0 - 900.0).abs() < 1e-9 && (hi.0 - 1100.0).abs() < 1e-9);
        assert_eq!(p.domains(), vec!["cpu".to_owned()]);
        assert_eq!(p.model(), &PowerModel::Constant(Watts(100.0)));
    }

    #[test]
    fn parts_are_domains_and_pue_scales_everything() {
        let cpu = ModelPart::new(
            "cpu",
            PartPower::linear(Watts(10.0), Watts(50.0)),
            PartPower::linear(Watts(5.0), Watts(30.0)),
            PartPower::linear(Watts(20.0), Watts(80.0)),
        );
        let mem = ModelPart::with_spread("memory", PartPower::constant(Watts(4.0)), 0.25);
        let mut p = ModelProbe::from_parts(vec![cpu, mem], ProbeScope::Host, "t", "/nonexistent")
            .with_pue(1.5);
        assert_eq!(p.domains(), vec!["cpu".to_owned(), "memory".to_owned()]);
        assert_eq!(p.powers_at(0.5), vec![Watts(45.0), Watts(6.0)]);
        assert_eq!(p.power_at(0.5), Watts(51.0));
        assert_eq!(
            p.model(),
            &PowerModel::Linear {
                idle: Watts(21.0),
                max: Watts(81.0)
            }
        );
        let src = p.describe();
        assert_eq!(
            (src.idle_w, src.max_w),
            (Some(Watts(21.0)), Some(Watts(81.0)))
        );
        assert_eq!(src.kind, EnergyKind::Estimated);
        p.advance(Seconds(2.0), 0.5);
        assert_eq!(p.energies(), &[Joules(90.0), Joules(12.0)]);
        assert_eq!(p.total(), Joules(102.0));
        let (lo, hi) = p.band().unwrap();
        // low: cpu (5 + 25 x 0.5) x 1.5 x 2 = 52.5, memory 3 x 1.5 x 2 = 9.
        // high: cpu (20 + 60 x 0.5) x 1.5 x 2 = 150, memory 5 x 1.5 x 2 = 15.
        assert_eq!((lo, hi), (Joules(61.5), Joules(165.0)));
        // A PUE below 1 is ignored.
        assert_eq!(p.with_pue(0.5).pue(), 1.0);
    }

    #[test]
    fn band_is_widened_to_contain_the_estimate() {
        let part = ModelPart::new(
            "cpu",
            PartPower::linear(Watts(10.0), Watts(50.0)),
            PartPower::linear(Watts(12.0), Watts(60.0)),
            PartPower::linear(Watts(8.0), Watts(40.0)),
        );
        // The given low lies above the estimate and the given high below it: both collapse onto
        // the estimate.
        let est = PartPower::linear(Watts(10.0), Watts(50.0));
        assert_eq!((part.low(), part.high()), (est, est));
        let part = ModelPart::new(
            "cpu",
            est,
            PartPower::linear(Watts(12.0), Watts(40.0)),
            PartPower::linear(Watts(8.0), Watts(60.0)),
        );
        // Term by term: low idle 10 (not 12), low dynamic 28; high idle 10, high dynamic 52.
        assert_eq!(
            part.low(),
            PartPower {
                idle: Watts(10.0),
                dynamic: Watts(28.0)
            }
        );
        assert_eq!(
            part.high(),
            PartPower {
                idle: Watts(10.0),
                dynamic: Watts(52.0)
            }
        );
        let m = part.dynamic_only();
        assert_eq!(
            m.estimate(),
            PartPower {
                idle: Watts::ZERO,
                dynamic: Watts(40.0)
            }
        );
        assert!(
            m.low().at(1.0) <= m.estimate().at(1.0) && m.estimate().at(1.0) <= m.high().at(1.0)
        );
    }

    #[test]
    fn read_at_injects_time() {
        let dir = tempfile::tempdir().unwrap();
        let stat = dir.path().join("stat");
        std::fs::write(&stat, "cpu  0 0 0 100 0 0 0 0\ncpu0 0 0 0 100 0 0 0 0\n").unwrap();
        let mut p = ModelProbe::with_proc_root(linear(10.0, 50.0), "t", dir.path());
        let mut out = [Joules::ZERO];
        p.read_at(Duration::from_secs(5), &mut out).unwrap();
        assert_eq!(out[0], Joules::ZERO);
        // 25 % busy over 4 s: (10 + 40 x 0.25) x 4 = 80 J.
        std::fs::write(&stat, "cpu  25 0 0 175 0 0 0 0\ncpu0 25 0 0 175 0 0 0 0\n").unwrap();
        p.read_at(Duration::from_secs(9), &mut out).unwrap();
        assert_eq!(out[0], Joules(80.0));
        // Time going backwards adds nothing.
        p.read_at(Duration::from_secs(1), &mut out).unwrap();
        assert_eq!(out[0], Joules(80.0));
        let (lo, hi) = p.band().unwrap();
        assert!(
            (lo.0 - 72.0).abs() < 1e-9 && (hi.0 - 88.0).abs() < 1e-9,
            "{lo} {hi}"
        );
    }
    #[test]
    fn constant_model_is_process_scoped() {
        let p = ModelProbe::new(PowerModel::Constant(Watts(270.0)), "user");
        assert_eq!(p.scope(), ProbeScope::Process);
        assert_eq!(p.describe().name, "constant");
        assert_eq!(p.describe().basis, Some(Basis::UserConstant));
    }

    #[test]
    fn a_model_says_model_and_its_pue() {
        let p = ModelProbe::new(linear(10.0, 50.0), "t");
        assert_eq!(p.describe().basis, Some(Basis::Model));
        assert_eq!(p.describe().pue, None);
        let src = p.with_pue(1.5).describe();
        assert_eq!((src.basis, src.pue), (Some(Basis::Model), Some(1.5)));
    }
}
