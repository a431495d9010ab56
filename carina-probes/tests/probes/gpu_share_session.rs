//! The NVML probe's GPU share inside a real `carina_runtime::Session` in process scope: a GPU the
//! run alone uses is all the run's, even though the run barely uses the CPU; a GPU used only by
//! another process is none of it; host scope keeps everything.

use carina_probes::nvml::{GpuBackend, GpuInfo, NvmlProbe};
use carina_runtime::share::ShareTarget;
use carina_runtime::{
    Carbon, CarbonFactor, EnergyProbe, RunSummary, Scope, Session, SessionConfig, StepDetail,
};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// One GPU drawing 1 J per read, used by the processes `users`.
struct Gpu {
    mj: Arc<AtomicU64>,
    users: Vec<u32>,
}

impl GpuBackend for Gpu {
    fn devices(&self) -> Result<Vec<GpuInfo>, String> {
        Ok(vec![GpuInfo {
            index: 0,
            name: "NVIDIA H200".into(),
            uuid: "GPU-0".into(),
        }])
    }
    fn total_energy_mj(&mut self, _: u32) -> Result<Option<u64>, String> {
        Ok(Some(self.mj.fetch_add(1_000, Ordering::Relaxed)))
    }
    fn power_mw(&mut self, _: u32) -> Result<u32, String> {
        Ok(0)
    }
    fn knows_processes(&self) -> bool {
        true
    }
    fn compute_processes(&mut self, _: u32) -> Result<Vec<u32>, String> {
        Ok(self.users.clone())
    }
    fn graphics_processes(&mut self, _: u32) -> Result<Vec<u32>, String> {
        Ok(Vec::new())
    }
    fn process_utilization(
        &mut self,
        _: u32,
        _: u64,
    ) -> Result<Vec<carina_probes::nvml::ProcessUtilization>, String> {
        Ok(Vec::new())
    }
}

/// A run of about 300 ms that only sleeps, measured by the fake GPU alone.
fn run(users: Vec<u32>, scope: Scope) -> RunSummary {
    let probe = NvmlProbe::with_backend(Box::new(Gpu {
        mj: Arc::new(AtomicU64::new(0)),
        users,
    }))
    .unwrap();
    assert!(probe.knows_users());
    let session = Session::start(SessionConfig {
        job: "gpu-share".into(),
        run_id: "gpu-share-test".into(),
        sample_interval: Duration::from_millis(20),
        carbon: Carbon::Fixed(CarbonFactor::world()),
        detail: StepDetail::All,
        probes: vec![Box::new(probe)],
        sinks: Vec::new(),
        run_file: None,
        require_run_file: true,
        scope,
        ring_capacity: 1024,
        max_pending_records: 1024,
        proc_root: PathBuf::from("/proc"),
        warnings: Vec::new(),
        unused_sources: Vec::new(),
        share_target: ShareTarget::SelfProcess,
        step_exit_hook: None,
        unmarked_threads: Default::default(),
    })
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    session.finish().unwrap()
}

// One test: a process runs one session at a time.
#[test]
fn a_sessions_gpu_energy_follows_the_gpus_users_not_the_cpu_share() {
    let me = std::process::id();

    let alone = run(vec![me], Scope::Process);
    assert!(alone.host_energy().0 >= 5.0, "{alone:?}");
    // All of it but the baseline read at the session's start (1 J here, between the probe
    // opening and the run's t = 0), which `host_energy` counts and the run does not.
    let missing = alone.host_energy().0 - alone.energy().0;
    assert!(
        (-1e-9..=1.0 + 1e-9).contains(&missing),
        "only user: {} J of {} J",
        alone.energy().0,
        alone.host_energy().0
    );

    // Used by the run alone: the counter taken whole, labelled a plain counter.
    assert_eq!(alone.method().unwrap().label, "counter", "{alone:?}");

    // Pid 1 exists in this pid namespace and is not this test.
    if me != 1 {
        // Shared with pid 1 and no utilisation samples: half of it, by count, and said so.
        let shared = run(vec![me, 1], Scope::Process);
        let m = shared.method().unwrap();
        assert_eq!(m.label, "counter x count share", "{m:?}");
        let half = shared.energy().0 / shared.host_energy().0;
        assert!((0.4..=0.5 + 1e-9).contains(&half), "{half}");
        assert!(
            m.notes.iter().any(|n| n.starts_with("count share")),
            "{m:?}"
        );
        let other = run(vec![1], Scope::Process);
        assert!(other.host_energy().0 >= 5.0, "{other:?}");
        assert_eq!(other.energy().0, 0.0, "other user only: {other:?}");
    }

    let idle = run(Vec::new(), Scope::Process);
    assert!(idle.host_energy().0 >= 5.0, "{idle:?}");
    assert_eq!(idle.energy().0, 0.0, "idle GPU: {idle:?}");

    let host = run(vec![1], Scope::Host);
    let missing = host.host_energy().0 - host.energy().0;
    assert!(
        (-1e-9..=1.0 + 1e-9).contains(&missing),
        "host scope: {host:?}"
    );
}
