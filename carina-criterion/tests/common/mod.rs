//! Fake probes and a fake /proc for the tests.

use carina_runtime::{
    EnergyKind, EnergyProbe, EnergySource, Joules, ProbeError, ProbeScope, Reading,
};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// A clock the test moves, nanoseconds.
#[derive(Clone, Default)]
pub struct FakeClock(Arc<AtomicU64>);

impl FakeClock {
    pub fn set_ms(&self, ms: u64) {
        self.0.store(ms * 1_000_000, Ordering::SeqCst);
    }
    pub fn secs(&self) -> f64 {
        self.0.load(Ordering::SeqCst) as f64 / 1e9
    }
}

/// Where a fake probe's time comes from.
pub enum Time {
    Fake(FakeClock),
    Real(Instant),
}

/// Constant watts, cumulative since creation.
pub struct ConstantProbe {
    pub watts: f64,
    pub scope: ProbeScope,
    pub kind: EnergyKind,
    pub time: Time,
}

impl ConstantProbe {
    pub fn host(watts: f64, clock: &FakeClock) -> Self {
        ConstantProbe {
            watts,
            scope: ProbeScope::Host,
            kind: EnergyKind::Measured,
            time: Time::Fake(clock.clone()),
        }
    }
}

impl EnergyProbe for ConstantProbe {
    fn describe(&self) -> EnergySource {
        let mut s = EnergySource::new("fake", self.kind, format!("{} W", self.watts));
        s.domains = vec!["package-0".to_owned()];
        s.scope = self.scope;
        s
    }
    fn read(&mut self, r: &mut Reading) -> Result<(), ProbeError> {
        let t = match &self.time {
            Time::Fake(c) => c.secs(),
            Time::Real(t0) => t0.elapsed().as_secs_f64(),
        };
        r.energy[0] = Joules(self.watts * t);
        Ok(())
    }
}

/// Writes `<root>/stat` (host busy ticks `busy`, and as many idle) and `<root>/self/stat`
/// (this process's utime = `own` ticks).
pub fn write_proc(root: &Path, busy: u64, own: u64) {
    std::fs::create_dir_all(root.join("self")).unwrap();
    std::fs::write(
        root.join("stat"),
        format!("cpu  {busy} 0 0 {busy} 0 0 0 0\ncpu0 {busy} 0 0 {busy} 0 0 0 0\n"),
    )
    .unwrap();
    std::fs::write(
        root.join("self/stat"),
        format!("100 (bench) R 1 1 1 0 -1 0 0 0 0 0 {own} 0 0 0 20 0 1 0 5"),
    )
    .unwrap();
}
