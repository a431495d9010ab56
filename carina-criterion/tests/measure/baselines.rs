//! Energy results never share a directory with time results (issue 19, item 6): a benchmark run
//! with time, then with `Energy` under the same group and benchmark names, leaves the time
//! files as they were.
//!
//! Criterion finds its output directory once per process from `CRITERION_HOME`, which a test
//! cannot set for itself without racing the other tests; so the parent test runs the child below
//! in a process of its own, with `CRITERION_HOME` pointing into a temporary directory.

use crate::common::{ConstantProbe, Time, write_proc};
use carina_criterion::{ENERGY_SUBDIRECTORY, Energy, EnergyMeter, energy_output_directory};
use carina_runtime::{EnergyKind, ProbeScope, Scope};
use criterion::Criterion;
use criterion::measurement::Measurement;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "CARINA_CRITERION_BASELINE_CHILD";

/// Short runs: the test is about where files go, not about the figures.
fn quick<M: Measurement>(c: Criterion<M>) -> Criterion<M> {
    c.warm_up_time(Duration::from_millis(20))
        .measurement_time(Duration::from_millis(100))
        .sample_size(10)
        .nresamples(1000)
        .without_plots()
}

fn bench<M: Measurement>(c: &mut Criterion<M>) {
    let mut g = c.benchmark_group("itoa");
    g.bench_function("u64", |b| {
        b.iter(|| std::hint::black_box(1_234_567_890u64).to_string())
    });
    g.finish();
}

/// 50 W on a fake host, so that a joule figure is far from a time figure in seconds.
fn fifty_watts(proc_root: &Path) -> Energy {
    write_proc(proc_root, 0, 0);
    let p = ConstantProbe {
        watts: 50.0,
        scope: ProbeScope::Host,
        kind: EnergyKind::Measured,
        time: Time::Real(Instant::now()),
    };
    Energy::from_meter(
        EnergyMeter::with_probes(vec![Box::new(p)], proc_root, Scope::Host)
            .with_min_interval(Duration::ZERO),
    )
}

/// Every file under `dir`, with its bytes.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn slope(estimates: &Path) -> f64 {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(estimates).unwrap()).unwrap();
    v["slope"]["point_estimate"]
        .as_f64()
        .or_else(|| v["mean"]["point_estimate"].as_f64())
        .unwrap()
}

#[test]
fn energy_under_the_time_names_leaves_the_time_baselines_alone() {
    let home = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "measure::baselines::child_time_then_energy",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("CRITERION_HOME", home.path())
        .env(CHILD_ENV, "1")
        .env_remove("CARGO_CRITERION_PORT")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("1 passed"),
        "the child did not run:\n{stdout}"
    );
    // The child asserted the details; here, the layout it left.
    let time = home.path().join("itoa/u64/base/estimates.json");
    let energy = home
        .path()
        .join(ENERGY_SUBDIRECTORY)
        .join("itoa/u64/base/estimates.json");
    assert!(time.is_file() && energy.is_file(), "{stdout}");
    // Time in nanoseconds; energy in joules at 50 W: about 50e-9 of the time figure.
    let (t_ns, e_j) = (slope(&time), slope(&energy));
    assert!(t_ns > 1.0, "time slope {t_ns} ns");
    assert!(e_j < 1e-3 && e_j > 0.0, "energy slope {e_j} J");
}

#[test]
#[ignore = "the child process of energy_under_the_time_names_leaves_the_time_baselines_alone"]
fn child_time_then_energy() {
    assert_eq!(
        std::env::var(CHILD_ENV).as_deref(),
        Ok("1"),
        "run by energy_under_the_time_names_leaves_the_time_baselines_alone, with CRITERION_HOME set"
    );
    let home = PathBuf::from(std::env::var_os("CRITERION_HOME").unwrap());
    assert_eq!(energy_output_directory(), home.join(ENERGY_SUBDIRECTORY));
    let proc_root = tempfile::tempdir().unwrap();

    // 1. Time, under the user's names.
    let mut c = quick(Criterion::default());
    bench(&mut c);
    let time_dir = home.join("itoa");
    let time_files = snapshot(&time_dir);
    let names: Vec<_> = time_files.iter().map(|(p, _)| p.clone()).collect();
    assert!(
        names.contains(&time_dir.join("u64/base/estimates.json")),
        "{names:?}"
    );

    // 2. A bare `with_measurement` is refused before anything is measured or saved.
    let mut c = quick(Criterion::default()).with_measurement(fifty_watts(proc_root.path()));
    let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| bench(&mut c)))
        .expect_err("a bare with_measurement must be refused");
    let msg = refused
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        msg.contains("Energy::new().configure(Criterion::default())")
            && msg.contains("overwrite the time baselines"),
        "{msg}"
    );
    assert!(
        snapshot(&time_dir) == time_files,
        "the refusal touched the time files"
    );

    // 3. `configure`, same names: energy goes to its own directory, the time files stay.
    let mut c = fifty_watts(proc_root.path()).configure(quick(Criterion::default()));
    bench(&mut c);
    assert!(
        snapshot(&time_dir) == time_files,
        "the energy run changed the time files"
    );
    let energy = home
        .join(ENERGY_SUBDIRECTORY)
        .join("itoa/u64/base/estimates.json");
    assert!(energy.is_file());

    // 4. Again, with a baseline to compare: still apart, energy compared with energy.
    let mut c = fifty_watts(proc_root.path()).configure(quick(Criterion::default()));
    bench(&mut c);
    assert!(snapshot(&time_dir) == time_files);
    assert!(
        home.join(ENERGY_SUBDIRECTORY)
            .join("itoa/u64/change/estimates.json")
            .is_file()
    );

    // 5. criterion 0.5 benches (feature `criterion-0_5`): the same meter, into the energy
    // directory, never into the time results.
    #[cfg(feature = "criterion-0_5")]
    {
        use carina_criterion::criterion05;
        let c = criterion05::Criterion::default()
            .warm_up_time(Duration::from_millis(20))
            .measurement_time(Duration::from_millis(100))
            .sample_size(10)
            .nresamples(1000)
            .without_plots();
        let mut c = fifty_watts(proc_root.path()).configure_v05(c);
        let mut g = c.benchmark_group("itoa-v05");
        g.throughput(criterion05::Throughput::Elements(10));
        g.bench_function("u64", |b| {
            b.iter(|| std::hint::black_box(1_234_567_890u64).to_string())
        });
        g.finish();
        assert!(snapshot(&time_dir) == time_files);
        assert!(
            !home.join("itoa-v05").exists(),
            "0.5 energy saved beside time"
        );
        let e = home
            .join(ENERGY_SUBDIRECTORY)
            .join("itoa-v05/u64/new/estimates.json");
        let j = slope(&e);
        assert!(j > 0.0 && j < 1e-3, "energy slope {j} J");
    }
}
