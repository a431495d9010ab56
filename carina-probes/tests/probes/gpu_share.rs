//! The run's share of each GPU (`EnergyProbe::usage_share` of the NVML probe), with fake GPUs
//! whose process lists and utilisation samples are scripted.

use carina_probes::nvml::{GpuBackend, GpuInfo, NvmlProbe, ProcessUtilization};
use carina_runtime::{EnergyProbe, Joules, UsageShare};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One fake GPU: the processes listed now, and every utilisation sample the driver holds.
#[derive(Default)]
struct Dev {
    index: u32,
    compute: Vec<u32>,
    graphics: Vec<u32>,
    samples: Vec<ProcessUtilization>,
    compute_error: Option<String>,
    util_error: Option<String>,
    /// `since_us` of each utilisation query, in order.
    since: Vec<u64>,
    /// Process-list queries made.
    list_calls: usize,
}

#[derive(Default)]
struct State {
    devs: Vec<Dev>,
    /// Whether the backend implements the process queries at all.
    unsupported: bool,
}

/// Shared, so a test changes the script while the probe holds the backend.
#[derive(Clone, Default)]
struct Fake(Arc<Mutex<State>>);

impl Fake {
    fn with_gpus(n: u32) -> Fake {
        let f = Fake::default();
        f.0.lock().unwrap().devs = (0..n)
            .map(|index| Dev {
                index,
                ..Dev::default()
            })
            .collect();
        f
    }

    fn dev<R>(&self, index: u32, f: impl FnOnce(&mut Dev) -> R) -> R {
        let mut s = self.0.lock().unwrap();
        f(s.devs.iter_mut().find(|d| d.index == index).unwrap())
    }

    fn compute(&self, index: u32, pids: &[u32]) {
        self.dev(index, |d| d.compute = pids.to_vec());
    }

    fn graphics(&self, index: u32, pids: &[u32]) {
        self.dev(index, |d| d.graphics = pids.to_vec());
    }

    /// A sample of `pid` at `base + at_ms` milliseconds.
    fn sample(&self, index: u32, base: u64, at_ms: u64, pid: u32, sm_util: u32) {
        self.dev(index, |d| {
            d.samples.push(ProcessUtilization {
                pid,
                timestamp_us: base + at_ms * 1000,
                sm_util,
            })
        });
    }

    fn probe(&self, proc_root: &Path) -> NvmlProbe {
        NvmlProbe::with_backend(Box::new(self.clone()))
            .expect("fake probe opens")
            .with_proc_root(proc_root)
    }
}

impl GpuBackend for Fake {
    fn devices(&self) -> Result<Vec<GpuInfo>, String> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .devs
            .iter()
            .map(|d| GpuInfo {
                index: d.index,
                name: "NVIDIA H200".into(),
                uuid: format!("GPU-{}", d.index),
            })
            .collect())
    }
    fn total_energy_mj(&mut self, _: u32) -> Result<Option<u64>, String> {
        Ok(Some(0))
    }
    fn power_mw(&mut self, _: u32) -> Result<u32, String> {
        Ok(0)
    }
    fn knows_processes(&self) -> bool {
        !self.0.lock().unwrap().unsupported
    }
    fn compute_processes(&mut self, index: u32) -> Result<Vec<u32>, String> {
        self.dev(index, |d| {
            d.list_calls += 1;
            match &d.compute_error {
                Some(e) => Err(e.clone()),
                None => Ok(d.compute.clone()),
            }
        })
    }
    fn graphics_processes(&mut self, index: u32) -> Result<Vec<u32>, String> {
        self.dev(index, |d| Ok(d.graphics.clone()))
    }
    fn process_utilization(
        &mut self,
        index: u32,
        since_us: u64,
    ) -> Result<Vec<ProcessUtilization>, String> {
        self.dev(index, |d| {
            d.since.push(since_us);
            match &d.util_error {
                Some(e) => Err(e.clone()),
                None => Ok(d
                    .samples
                    .iter()
                    .filter(|s| s.timestamp_us > since_us)
                    .copied()
                    .collect()),
            }
        })
    }
}

/// A fake `/proc` in which the given pids exist.
fn proc_root(pids: &[u32]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for p in pids {
        std::fs::create_dir(dir.path().join(p.to_string())).unwrap();
    }
    dir
}

/// NVML's clock for samples, a little after the probe opened.
fn base_us() -> u64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    u64::try_from(now.as_micros()).unwrap() + 1_000
}

/// One sampling interval: a read, then the share of each GPU for `pids`, with its rule.
fn tick_rules(p: &mut NvmlProbe, at: f64, pids: &[u32]) -> Vec<Option<UsageShare>> {
    let n = p.domains().len();
    let mut energy = vec![Joules::ZERO; n];
    p.read_at(Duration::from_secs_f64(at), &mut energy).unwrap();
    let mut out = vec![None; n];
    p.usage_share(pids, &mut out);
    out
}

/// [`tick_rules`], the shares only.
fn tick(p: &mut NvmlProbe, at: f64, pids: &[u32]) -> Vec<Option<f64>> {
    shares(&tick_rules(p, at, pids))
}

fn shares(out: &[Option<UsageShare>]) -> Vec<Option<f64>> {
    out.iter().map(|u| u.map(|u| u.share)).collect()
}

const OURS: u32 = 100;
const OTHER: u32 = 200;

#[test]
fn the_only_user_is_ours_gets_all_of_it() {
    let fake = Fake::with_gpus(1);
    fake.compute(0, &[OURS]);
    let root = proc_root(&[OURS]);
    let mut p = fake.probe(root.path());
    assert!(p.knows_users());
    assert_eq!(tick(&mut p, 0.1, &[OURS]), [Some(1.0)]);
    assert_eq!(tick(&mut p, 0.2, &[50, OURS, 300]), [Some(1.0)]);
    assert!(p.take_report().warnings.is_empty());
}

#[test]
fn a_shared_gpu_is_split_by_sm_utilisation() {
    let fake = Fake::with_gpus(1);
    fake.compute(0, &[OURS, OTHER]);
    let root = proc_root(&[OURS, OTHER]);
    let mut p = fake.probe(root.path());
    let base = base_us();
    fake.sample(0, base, 10, OURS, 30);
    fake.sample(0, base, 10, OTHER, 10);
    assert_eq!(
        tick_rules(&mut p, 0.1, &[OURS]),
        [Some(UsageShare::by_use(0.75))]
    );
    // Samples are summed over the interval: 20 + 40 against 60 + 0.
    fake.sample(0, base, 110, OURS, 20);
    fake.sample(0, base, 120, OURS, 40);
    fake.sample(0, base, 130, OTHER, 60);
    assert_eq!(tick(&mut p, 0.2, &[OURS]), [Some(0.5)]);
    assert!(p.take_report().warnings.is_empty());

    // The other side of the same shares, seen by another run.
    let fake = Fake::with_gpus(1);
    fake.compute(0, &[OURS, OTHER]);
    let mut q = fake.probe(root.path());
    let base = base_us();
    fake.sample(0, base, 10, OURS, 30);
    fake.sample(0, base, 10, OTHER, 10);
    assert_eq!(tick(&mut q, 0.1, &[OTHER]), [Some(0.25)]);
}

#[test]
fn a_process_of_the_run_that_exited_stays_the_runs() {
    // `carina run -- python3 train.py`: python is listed at the last read, then exits before
    // the share is asked for, and the run's tree no longer has it.
    let fake = Fake::with_gpus(1);
    fake.compute(0, &[OURS]);
    let root = proc_root(&[OURS, OTHER]);
    let mut p = fake.probe(root.path());
    assert_eq!(tick(&mut p, 0.1, &[1, OURS]), [Some(1.0)]);
    let mut energy = [Joules::ZERO];
    p.read_at(Duration::from_secs_f64(0.2), &mut energy)
        .unwrap();
    std::fs::remove_dir(root.path().join(OURS.to_string())).unwrap();
    let mut out = [None];
    p.usage_share(&[1], &mut out);
    assert_eq!(shares(&out), [Some(1.0)]);
    // No pid-namespace warning for a process that merely exited.
    assert!(p.take_report().warnings.is_empty());
    // Another process takes the GPU afterwards: not the run's.
    fake.compute(0, &[OTHER]);
    assert_eq!(tick(&mut p, 0.3, &[1]), [Some(0.0)]);
}

#[test]
fn each_utilisation_query_starts_after_the_newest_sample_seen() {
    let fake = Fake::with_gpus(1);
    fake.compute(0, &[OURS, OTHER]);
    let root = proc_root(&[OURS, OTHER]);
    let mut p = fake.probe(root.path());
    let base = base_us();
    fake.sample(0, base, 10, OURS, 30);
    fake.sample(0, base, 20, OTHER, 10);
    tick(&mut p, 0.1, &[OURS]);
    tick(&mut p, 0.2, &[OURS]);
    let since = fake.dev(0, |d| d.since.clone());
    assert_eq!(since.len(), 2);
    // The first asks from about when the probe opened, not for everything the driver holds.
    assert!(since[0] > 0 && since[0] < base, "{since:?}");
    assert_eq!(since[1], base + 20_000);
}

#[test]
fn a_gpu_used_only_by_others_is_not_ours() {
    let fake = Fake::with_gpus(1);
    fake.compute(0, &[OTHER]);
    let root = proc_root(&[OURS, OTHER]);
    let mut p = fake.probe(root.path());
    fake.sample(0, base_us(), 10, OTHER, 90);
    assert_eq!(tick(&mut p, 0.1, &[OURS]), [Some(0.0)]);
    assert!(p.take_report().warnings.is_empty());
}

#[test]
fn an_idle_gpu_is_nobodys() {
    let fake = Fake::with_gpus(1);
    let root = proc_root(&[OURS]);
    let mut p = fake.probe(root.path());
    assert_eq!(tick(&mut p, 0.1, &[OURS]), [Some(0.0)]);
    assert_eq!(tick(&mut p, 0.2, &[OURS]), [Some(0.0)]);
    assert!(p.take_report().warnings.is_empty());
}

#[test]
fn without_utilisation_samples_processes_count_equally() {
    let fake = Fake::with_gpus(1);
    fake.compute(0, &[OURS, OTHER, 300]);
    let root = proc_root(&[OURS, OTHER, 300]);
    let mut p = fake.probe(root.path());
    // No sample in the interval: by count, two of three, and said so.
    assert_eq!(
        tick_rules(&mut p, 0.1, &[OURS, 300]),
        [Some(UsageShare::by_count(2.0 / 3.0))]
    );
    assert!(p.take_report().warnings.is_empty());
    // The query fails: by count too, with one warning.
    fake.dev(0, |d| d.util_error = Some("Not Supported".into()));
    fake.compute(0, &[OURS, OTHER]);
    assert_eq!(tick(&mut p, 0.2, &[OURS]), [Some(0.5)]);
    assert_eq!(tick(&mut p, 0.3, &[OURS]), [Some(0.5)]);
    let w = p.take_report().warnings;
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("gpu-0") && w[0].contains("Not Supported") && w[0].contains("by count"),
        "{w:?}"
    );
}

#[test]
fn unsupported_process_queries_leave_the_share_unknown() {
    // A backend without process queries: the probe does not know its users.
    let fake = Fake::with_gpus(1);
    fake.0.lock().unwrap().unsupported = true;
    let root = proc_root(&[OURS]);
    let mut p = fake.probe(root.path());
    assert!(!p.knows_users());
    assert_eq!(tick(&mut p, 0.1, &[OURS]), [None]);
    assert_eq!(fake.dev(0, |d| d.list_calls), 0);

    // A backend that has them, on a device that refuses them: unknown, one warning.
    let fake = Fake::with_gpus(2);
    fake.dev(0, |d| {
        d.compute_error = Some("Insufficient Permissions".into())
    });
    fake.compute(1, &[OURS]);
    let mut p = fake.probe(root.path());
    assert!(p.knows_users());
    assert_eq!(tick(&mut p, 0.1, &[OURS]), [None, Some(1.0)]);
    assert_eq!(tick(&mut p, 0.2, &[OURS]), [None, Some(1.0)]);
    let w = p.take_report().warnings;
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("gpu-0") && w[0].contains("Insufficient Permissions"),
        "{w:?}"
    );
    // It answers again: known again.
    fake.dev(0, |d| d.compute_error = None);
    fake.compute(0, &[OURS]);
    assert_eq!(tick(&mut p, 0.3, &[OURS]), [Some(1.0), Some(1.0)]);
}

#[test]
fn users_from_another_pid_namespace_leave_the_share_unknown() {
    // Inside a container: NVML lists host pids that are no process here.
    let fake = Fake::with_gpus(1);
    fake.compute(0, &[48_213]);
    let root = proc_root(&[1, 7]);
    let mut p = fake.probe(root.path());
    assert_eq!(tick(&mut p, 0.1, &[1, 7]), [None]);
    assert_eq!(tick(&mut p, 0.2, &[1, 7]), [None]);
    let w = p.take_report().warnings;
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("48213") && w[0].contains("pid namespace"),
        "{w:?}"
    );
    // A listed pid that exists here but is not ours: the namespace is ours, the GPU is not.
    fake.compute(0, &[48_213, 7]);
    assert_eq!(tick(&mut p, 0.3, &[1]), [Some(0.0)]);
}

#[test]
fn a_process_seen_at_any_read_of_the_interval_counts() {
    let fake = Fake::with_gpus(1);
    let root = proc_root(&[OURS, OTHER]);
    let mut p = fake.probe(root.path());
    // The first share starts the listing at each read.
    assert_eq!(tick(&mut p, 0.1, &[OURS]), [Some(0.0)]);
    let mut energy = [Joules::ZERO];
    // Two reads in one interval: ours at the first only, the other at the second only.
    fake.compute(0, &[OURS]);
    p.read_at(Duration::from_secs_f64(0.15), &mut energy)
        .unwrap();
    fake.compute(0, &[OTHER]);
    p.read_at(Duration::from_secs_f64(0.2), &mut energy)
        .unwrap();
    let mut out = [None];
    p.usage_share(&[OURS], &mut out);
    assert_eq!(shares(&out), [Some(0.5)]);
    // The next interval starts afresh: only the other is there now.
    assert_eq!(tick(&mut p, 0.3, &[OURS]), [Some(0.0)]);
}

#[test]
fn a_process_only_in_the_utilisation_samples_counts() {
    // A short kernel that ran and ended between two lists, but that the driver sampled.
    let fake = Fake::with_gpus(1);
    let root = proc_root(&[OURS, OTHER]);
    let mut p = fake.probe(root.path());
    fake.sample(0, base_us(), 10, OURS, 80);
    assert_eq!(tick(&mut p, 0.1, &[OURS]), [Some(1.0)]);
    fake.compute(0, &[OTHER]);
    fake.sample(0, base_us(), 100, OURS, 60);
    fake.sample(0, base_us(), 110, OTHER, 20);
    assert_eq!(tick(&mut p, 0.2, &[OURS]), [Some(0.75)]);
}

#[test]
fn graphics_processes_are_users_too() {
    let fake = Fake::with_gpus(1);
    fake.compute(0, &[OURS]);
    fake.graphics(0, &[OTHER]);
    let root = proc_root(&[OURS, OTHER]);
    let mut p = fake.probe(root.path());
    assert_eq!(tick(&mut p, 0.1, &[OURS]), [Some(0.5)]);
}

#[test]
fn each_gpu_has_its_own_share() {
    let fake = Fake::with_gpus(3);
    fake.compute(0, &[OURS]);
    fake.compute(1, &[OTHER]);
    let root = proc_root(&[OURS, OTHER]);
    let mut p = fake.probe(root.path());
    assert_eq!(
        tick(&mut p, 0.1, &[OURS]),
        [Some(1.0), Some(0.0), Some(0.0)]
    );
    // A short output slice is filled as far as it goes.
    let mut out = [None];
    p.usage_share(&[OURS], &mut out);
    assert_eq!(shares(&out), [Some(1.0)]);
}

#[test]
fn reads_list_processes_only_once_shares_are_asked_for() {
    // Host scope never asks for shares, and pays no process queries.
    let fake = Fake::with_gpus(1);
    fake.compute(0, &[OURS]);
    let root = proc_root(&[OURS]);
    let mut p = fake.probe(root.path());
    let mut energy = [Joules::ZERO];
    for k in 1..=5 {
        p.read_at(Duration::from_millis(100 * k), &mut energy)
            .unwrap();
    }
    assert_eq!(fake.dev(0, |d| d.list_calls), 0);
    // The first share lists the processes itself; after it, every read does.
    assert_eq!(tick(&mut p, 0.6, &[OURS]), [Some(1.0)]);
    assert_eq!(fake.dev(0, |d| d.list_calls), 1);
    assert_eq!(tick(&mut p, 0.7, &[OURS]), [Some(1.0)]);
    assert_eq!(fake.dev(0, |d| d.list_calls), 2);
    // A share with no read since the previous one lists them again.
    let mut out = [None];
    p.usage_share(&[OURS], &mut out);
    assert_eq!(shares(&out), [Some(1.0)]);
    assert_eq!(fake.dev(0, |d| d.list_calls), 3);
}

#[test]
fn the_share_is_reported_in_the_source_description() {
    let fake = Fake::with_gpus(1);
    let root = proc_root(&[]);
    let p = fake.probe(root.path());
    let src = p.describe();
    assert!(src.source.contains("whole-GPU"), "{}", src.source);
    assert!(src.source.contains("GPU use"), "{}", src.source);
}
