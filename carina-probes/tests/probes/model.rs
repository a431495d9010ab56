//! The estimation model on fake `/proc` and `/sys` trees, with injected time.

use carina_probes::coefficients::{
    CCF_MEMORY_W_PER_GB, GREEN_ALGORITHMS_MEMORY_W_PER_GB, MEMORY_SPREAD,
};
use carina_probes::model::ModelProbe;
use carina_probes::model::{ModelOptions, estimation_model_with, gpus};
use carina_runtime::record::Basis;
use carina_runtime::{EnergyKind, EnergyProbe, Joules, ProbeScope};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tempfile::TempDir;

const SKYLAKE: (&str, u32, u32, &str) = (
    "GenuineIntel",
    6,
    85,
    "Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz",
);
const EPYC_7763: (&str, u32, u32, &str) =
    ("AuthenticAMD", 25, 1, "AMD EPYC 7763 64-Core Processor");
const EPYC_9654: (&str, u32, u32, &str) =
    ("AuthenticAMD", 25, 0x11, "AMD EPYC 9654 96-Core Processor");
const UNKNOWN: (&str, u32, u32, &str) = ("HygonGenuine", 24, 1, "Hygon C86 7185 32-core Processor");

struct Machine {
    proc: TempDir,
    sys: TempDir,
    vcpus: u32,
}

impl Machine {
    /// `vcpus` logical CPUs of the given kind, `mem_kib` of RAM (none: no meminfo), no GPUs.
    fn new(cpu: (&str, u32, u32, &str), vcpus: u32, mem_kib: Option<u64>) -> Self {
        let proc = tempfile::tempdir().unwrap();
        let mut cpuinfo = String::new();
        for i in 0..vcpus {
            cpuinfo.push_str(&format!(
                "processor\t: {i}\nvendor_id\t: {}\ncpu family\t: {}\nmodel\t\t: {}\n\
                 model name\t: {}\nsiblings\t: {vcpus}\ncpu cores\t: {}\n\n",
                cpu.0,
                cpu.1,
                cpu.2,
                cpu.3,
                (vcpus / 2).max(1)
            ));
        }
        std::fs::write(proc.path().join("cpuinfo"), cpuinfo).unwrap();
        if let Some(kib) = mem_kib {
            std::fs::write(
                proc.path().join("meminfo"),
                format!("MemTotal:       {kib} kB\nMemFree:        1000 kB\n"),
            )
            .unwrap();
        }
        let m = Machine {
            proc,
            sys: tempfile::tempdir().unwrap(),
            vcpus,
        };
        m.set_ticks(0, 0);
        m
    }

    /// Writes `/proc/stat` with these cumulative busy and idle ticks.
    fn set_ticks(&self, busy: u64, idle: u64) {
        let mut s = format!("cpu  {busy} 0 0 {idle} 0 0 0 0\n");
        for i in 0..self.vcpus {
            s.push_str(&format!("cpu{i} 0 0 0 0 0 0 0 0\n"));
        }
        s.push_str("intr 0\nctxt 0\n");
        std::fs::write(self.proc.path().join("stat"), s).unwrap();
    }

    fn add_pci(&self, addr: &str, vendor: u16, device: u16, class: u32) {
        let d = self.sys.path().join("bus/pci/devices").join(addr);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("vendor"), format!("0x{vendor:04x}\n")).unwrap();
        std::fs::write(d.join("device"), format!("0x{device:04x}\n")).unwrap();
        std::fs::write(d.join("class"), format!("0x{class:06x}\n")).unwrap();
    }

    fn probe(&self, opts: &ModelOptions) -> ModelProbe {
        estimation_model_with(self.proc.path(), self.sys.path(), opts)
    }

    /// Reads at t = 0, then `busy_fraction` utilisation for `secs` seconds; returns the domains.
    fn run(&self, p: &mut ModelProbe, busy_fraction: f64, secs: u64) -> Vec<Joules> {
        let mut out = vec![Joules::ZERO; p.domains().len()];
        self.set_ticks(0, 0);
        p.read_at(Duration::ZERO, &mut out).unwrap();
        let busy = (busy_fraction * 1000.0).round() as u64;
        self.set_ticks(busy, 1000 - busy);
        p.read_at(Duration::from_secs(secs), &mut out).unwrap();
        out
    }
}

const GIB: u64 = 1024 * 1024; // kB per GiB

fn close(a: impl Into<f64>, b: impl Into<f64>) -> bool {
    let (a, b): (f64, f64) = (a.into(), b.into());
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

fn assert_close(a: f64, b: f64) {
    assert!(close(a, b), "{a} != {b}");
}

fn total(v: &[Joules]) -> f64 {
    v.iter().map(|j| j.0).sum()
}

/// Band contains the estimate, and the domains add up to the probe's total.
fn assert_consistent(p: &ModelProbe, out: &[Joules]) {
    assert_close(total(out), p.total().0);
    let (lo, hi) = p.band().expect("estimates carry a band");
    assert!(
        lo.0 <= p.total().0 && p.total().0 <= hi.0,
        "{lo} <= {} <= {hi}",
        p.total()
    );
}

#[test]
fn cpu_and_memory_domains_give_known_joules() {
    let m = Machine::new(SKYLAKE, 4, Some(16 * GIB));
    let mut p = m.probe(&ModelOptions::default());
    assert_eq!(p.domains(), ["cpu", "memory"]);
    assert_eq!(p.scope(), ProbeScope::Host);
    let out = m.run(&mut p, 0.5, 10);
    // CCF Skylake: 4 vCPU x (0.65 + (4.26 - 0.65) x 0.5) W x 10 s.
    assert_close(out[0].0, 4.0 * (0.65 + 3.61 * 0.5) * 10.0);
    // 16 GB x 0.392 W/GB x 10 s.
    assert_close(out[1].0, 16.0 * 0.392 * 10.0);
    assert_consistent(&p, &out);
    let src = p.describe();
    assert_eq!(src.kind, EnergyKind::Estimated);
    assert_eq!(src.domains, ["cpu", "memory"]);
    assert_close(src.idle_w.unwrap().into(), 4.0 * 0.65 + 16.0 * 0.392);
    assert_close(src.max_w.unwrap().into(), 4.0 * 4.26 + 16.0 * 0.392);
}

#[test]
fn describe_says_everything() {
    let m = Machine::new(SKYLAKE, 4, Some(16 * GIB));
    m.add_pci("0000:00:04.0", 0x10de, 0x1eb8, 0x030200);
    let s = m.probe(&ModelOptions::default()).describe();
    for want in [
        "4 vCPU",
        "CCF row `Skylake` (exact)",
        "TDP table: Intel Xeon Gold 6148 150 W",
        "16 GB",
        "0.392 W per GB",
        "0.3725",
        "NVIDIA Tesla T4",
        "PUE 1 (IT power only)",
        "idle power included",
        "band (",
        "vendor `Intel`",
        "0.2794..0.49 W per GB",
        "gpu 8..70 W",
    ] {
        assert!(s.source.contains(want), "missing {want:?} in {}", s.source);
    }
    assert!(s.reason.as_deref().unwrap().contains("lower bound"));
    assert_eq!(s.devices.len(), 1);
    assert!(
        s.devices[0].name.contains("0000:00:04.0"),
        "{:?}",
        s.devices
    );
}

#[test]
fn memory_is_gb_times_w_per_gb_times_t() {
    let m = Machine::new(UNKNOWN, 1, Some(64 * GIB));
    let mut p = m.probe(&ModelOptions {
        memory_w_per_gb: Some(0.5),
        ..Default::default()
    });
    let out = m.run(&mut p, 0.0, 100);
    assert_close(out[1].0, 64.0 * 0.5 * 100.0);
    // Memory off: CPU only.
    let p = m.probe(&ModelOptions {
        memory: false,
        ..Default::default()
    });
    assert_eq!(p.domains(), ["cpu"]);
    // No meminfo: no memory domain, and the reason says why.
    let m = Machine::new(UNKNOWN, 1, None);
    let p = m.probe(&ModelOptions::default());
    assert_eq!(p.domains(), ["cpu"]);
    assert!(p.describe().reason.unwrap().contains("meminfo"));
}

#[test]
fn memory_band_follows_the_published_spread() {
    let m = Machine::new(SKYLAKE, 1, Some(10 * GIB));
    let opts = ModelOptions::default();
    let mut with = m.probe(&opts);
    m.run(&mut with, 0.0, 1);
    let mut without = m.probe(&ModelOptions {
        memory: false,
        ..opts
    });
    m.run(&mut without, 0.0, 1);
    let (lo1, hi1) = with.band().unwrap();
    let (lo0, hi0) = without.band().unwrap();
    let s = MEMORY_SPREAD;
    assert_close(
        lo1.0 - lo0.0,
        10.0 * GREEN_ALGORITHMS_MEMORY_W_PER_GB * (1.0 - s),
    );
    assert_close(hi1.0 - hi0.0, 10.0 * CCF_MEMORY_W_PER_GB * (1.0 + s));
}

#[test]
fn pue_scales_every_domain_and_the_band() {
    let m = Machine::new(EPYC_7763, 8, Some(32 * GIB));
    m.add_pci("0000:3b:00.0", 0x10de, 0x20b0, 0x030200);
    let mut base = m.probe(&ModelOptions::default());
    let b = m.run(&mut base, 0.3, 60);
    let mut scaled = m.probe(&ModelOptions {
        pue: 1.58,
        ..Default::default()
    });
    let s = m.run(&mut scaled, 0.3, 60);
    assert_eq!(b.len(), 3);
    for (x, y) in b.iter().zip(&s) {
        assert_close(y.0, x.0 * 1.58);
    }
    let (bl, bh) = base.band().unwrap();
    let (sl, sh) = scaled.band().unwrap();
    assert_close(sl.0, bl.0 * 1.58);
    assert_close(sh.0, bh.0 * 1.58);
    assert_consistent(&scaled, &s);
    assert!(scaled.describe().source.contains("PUE 1.58"));
    assert_close(
        scaled.describe().idle_w.unwrap().into(),
        (base.describe().idle_w.unwrap() * 1.58).into(),
    );
}

#[test]
fn include_idle_false_counts_only_dynamic_power() {
    let m = Machine::new(SKYLAKE, 4, Some(16 * GIB));
    m.add_pci("0000:00:1e.0", 0x10de, 0x1eb8, 0x030200);
    let opts = ModelOptions {
        include_idle: false,
        ..Default::default()
    };
    let mut p = m.probe(&opts);
    // Memory is all idle: left out. The GPU stays, at 0 W with a band up to TDP - idle.
    assert_eq!(p.domains(), ["cpu", "gpu"]);
    let out = m.run(&mut p, 0.5, 10);
    assert_close(out[0].0, 4.0 * (4.26 - 0.65) * 0.5 * 10.0);
    assert_eq!(out[1], Joules::ZERO);
    assert_consistent(&p, &out);
    let (_, hi) = p.band().unwrap();
    assert!(hi.0 >= (70.0 - 8.0) * 10.0);
    // Idle machine: nothing at all.
    let mut p = m.probe(&opts);
    let out = m.run(&mut p, 0.0, 10);
    assert_eq!(total(&out), 0.0);
    assert_eq!(p.describe().idle_w, Some(carina_runtime::Watts::ZERO));
    assert!(p.describe().source.contains("marginal energy"));
}

#[test]
fn gpus_seen_count_idle_power_with_the_band_up_to_tdp() {
    let m = Machine::new(SKYLAKE, 2, Some(8 * GIB));
    m.add_pci("0000:00:04.0", 0x10de, 0x20b0, 0x030200); // A100 SXM4 40GB: CCF idle 46, TDP 400
    m.add_pci("0000:00:04.1", 0x10de, 0x10f0, 0x040300); // its audio function: not a GPU
    m.add_pci("0000:00:02.0", 0x8086, 0x3e98, 0x030000); // Intel iGPU: not NVIDIA
    m.add_pci("0000:00:05.0", 0x10de, 0x9999, 0x030000); // unknown NVIDIA: CCF average
    let seen = gpus::nvidia_gpus(m.sys.path());
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].address, "0000:00:04.0");
    assert_eq!(seen[0].name(), "NVIDIA A100 SXM4 40GB");

    let mut with = m.probe(&ModelOptions::default());
    assert_eq!(with.domains(), ["cpu", "memory", "gpu"]);
    let out = m.run(&mut with, 0.7, 10);
    assert_close(out[2].0, (46.0 + 27.8) * 10.0);
    assert_consistent(&with, &out);
    assert_eq!(with.describe().devices.len(), 2);

    let mut without = m.probe(&ModelOptions {
        gpu_tdp: false,
        ..Default::default()
    });
    assert_eq!(without.domains(), ["cpu", "memory"]);
    assert!(
        without
            .describe()
            .source
            .contains("not counted (gpu_tdp=false)")
    );
    m.run(&mut without, 0.7, 10);
    // The GPU's share of the band: low = idle, high = TDP (CCF average max when unknown).
    let (l1, h1) = with.band().unwrap();
    let (l0, h0) = without.band().unwrap();
    assert_close(l1.0 - l0.0, (46.0 + 27.8) * 10.0);
    assert_close(h1.0 - h0.0, (400.0 + 241.55) * 10.0);
}

#[test]
fn no_sys_tree_means_no_gpu() {
    let m = Machine::new(SKYLAKE, 2, Some(8 * GIB));
    let p = estimation_model_with(
        m.proc.path(),
        Path::new("/nonexistent/sys"),
        &ModelOptions::default(),
    );
    assert_eq!(p.domains(), ["cpu", "memory"]);
}

#[test]
fn band_contains_the_estimate_at_every_read() {
    let cpus = [SKYLAKE, EPYC_7763, EPYC_9654, UNKNOWN];
    let options = [
        ModelOptions::default(),
        ModelOptions {
            include_idle: false,
            ..Default::default()
        },
        ModelOptions {
            pue: 1.3,
            tdp_w: Some(120.0),
            ..Default::default()
        },
        ModelOptions {
            idle_w: Some(80.0),
            max_w: Some(240.0),
            ..Default::default()
        },
        ModelOptions {
            constant_w: Some(55.0),
            ..Default::default()
        },
    ];
    for cpu in cpus {
        let m = Machine::new(cpu, 6, Some(24 * GIB));
        m.add_pci("0000:01:00.0", 0x10de, 0x2330, 0x030200);
        for opts in &options {
            let mut p = m.probe(opts);
            let mut out = vec![Joules::ZERO; p.domains().len()];
            let (mut busy, mut idle) = (0u64, 0u64);
            let mut prev = 0.0;
            for step in 0..50u64 {
                // Utilisation cycles through 0 %, 10 %, ..., 100 %.
                let b = (step * 37) % 11;
                busy += b * 10;
                idle += 100 - b * 10;
                m.set_ticks(busy, idle);
                p.read_at(Duration::from_millis(step * 137), &mut out)
                    .unwrap();
                assert_consistent(&p, &out);
                assert!(p.total().0 >= prev, "energy decreased");
                prev = p.total().0;
            }
            assert!(prev > 0.0 || !opts.include_idle, "{cpu:?} {opts:?}");
        }
    }
}

#[test]
fn constant_override_is_the_jobs_power_with_a_ten_percent_band() {
    // No /proc/stat needed: the constant model reads no utilisation.
    let proc = tempfile::tempdir().unwrap();
    let mut p = estimation_model_with(
        proc.path(),
        Path::new("/nonexistent"),
        &ModelOptions {
            constant_w: Some(200.0),
            pue: 1.2,
            ..Default::default()
        },
    );
    assert_eq!(p.scope(), ProbeScope::Process);
    assert_eq!(p.domains(), ["machine"]);
    let mut out = [Joules::ZERO];
    p.read_at(Duration::from_secs(1), &mut out).unwrap();
    p.read_at(Duration::from_secs(11), &mut out).unwrap();
    assert_close(out[0].0, 200.0 * 1.2 * 10.0);
    let (lo, hi) = p.band().unwrap();
    assert_close(lo.0, 0.9 * 2400.0);
    assert_close(hi.0, 1.1 * 2400.0);
    let src = p.describe();
    assert_eq!(src.name, "constant");
    assert_eq!(src.scope, ProbeScope::Process);
    assert_close(src.idle_w.unwrap().into(), 240.0);
    // The user's watts, not a model of utilisation; the PUE it already includes is said.
    assert_eq!(src.basis, Some(Basis::UserConstant));
    assert_eq!(src.pue, Some(1.2));
}

#[test]
fn machine_watts_override_replaces_cpu_memory_and_gpu() {
    let m = Machine::new(SKYLAKE, 4, Some(16 * GIB));
    m.add_pci("0000:00:04.0", 0x10de, 0x20b0, 0x030200);
    let mut p = m.probe(&ModelOptions {
        idle_w: Some(100.0),
        max_w: Some(300.0),
        ..Default::default()
    });
    assert_eq!(p.domains(), ["machine"]);
    // User-given coefficients of a utilisation model are still a model.
    assert_eq!(p.describe().basis, Some(Basis::Model));
    let out = m.run(&mut p, 0.5, 10);
    assert_close(out[0].0, 200.0 * 10.0);
    let (lo, hi) = p.band().unwrap();
    assert_close(lo.0, 1800.0);
    assert_close(hi.0, 2200.0);
    // Only max given: idle from the CPU row's min/max ratio (Skylake 0.65 / 4.26).
    let p = m.probe(&ModelOptions {
        max_w: Some(300.0),
        ..Default::default()
    });
    assert_close(p.describe().idle_w.unwrap().into(), 300.0 * 0.65 / 4.26);
    // Marginal view of the override.
    let mut p = m.probe(&ModelOptions {
        idle_w: Some(100.0),
        max_w: Some(300.0),
        include_idle: false,
        ..Default::default()
    });
    let out = m.run(&mut p, 0.5, 10);
    assert_close(out[0].0, 100.0 * 10.0);
}

#[test]
fn user_tdp_sets_the_cpu_max() {
    let m = Machine::new(SKYLAKE, 4, None);
    let mut p = m.probe(&ModelOptions {
        tdp_w: Some(200.0),
        ..Default::default()
    });
    let src = p.describe();
    assert_close(src.max_w.unwrap().into(), 200.0);
    assert_close(src.idle_w.unwrap().into(), 200.0 * 0.65 / 4.26);
    assert!(
        src.source.contains("user-given TDP 200 W"),
        "{}",
        src.source
    );
    let out = m.run(&mut p, 1.0, 3);
    assert_close(out[0].0, 600.0);
    let (lo, hi) = p.band().unwrap();
    assert_close(lo.0, 540.0);
    assert_close(hi.0, 660.0);
}

#[test]
fn cpuinfo_tdp_match_sets_the_max_when_ccf_has_no_row() {
    // Zen 4 EPYC 9654: CCF has no row (EPYC 3rd Gen stands in); the TDP table has 360 W,
    // 96 cores / 192 threads.
    let m = Machine::new(EPYC_9654, 8, None);
    let p = m.probe(&ModelOptions::default());
    let src = p.describe();
    let per_thread = 360.0 / 192.0;
    assert_close(src.max_w.unwrap().into(), 8.0 * per_thread);
    assert_close(src.idle_w.unwrap().into(), 8.0 * per_thread * 0.45 / 2.02);
    assert!(src.source.contains("from the TDP"), "{}", src.source);
    assert!(src.source.contains("AMD EPYC 9654 360 W"), "{}", src.source);

    // Zen 3 EPYC 7763 has its own CCF row: the TDP is a cross-check only.
    let m = Machine::new(EPYC_7763, 8, None);
    let src = m.probe(&ModelOptions::default()).describe();
    assert_close(src.max_w.unwrap().into(), 8.0 * 2.02);
    assert!(
        src.source.contains("CCF row `AMD EPYC 3rd Gen` (exact)"),
        "{}",
        src.source
    );
    assert!(
        src.source.contains("TDP table: AMD EPYC 7763 280 W"),
        "{}",
        src.source
    );

    // No match: CCF's average stands in and the band spans every CCF row.
    let m = Machine::new(UNKNOWN, 2, None);
    let src = m.probe(&ModelOptions::default()).describe();
    assert_close(src.max_w.unwrap().into(), 2.0 * 3.5);
    assert!(src.source.contains("no exact match"), "{}", src.source);
    assert!(src.source.contains("(average)"), "{}", src.source);
}

#[test]
fn cpu_band_spans_the_vendors_rows() {
    // Xeon Gold 6148 (Skylake); its TDP per thread is 150 W / 40 threads = 3.75 W. High at
    // full load: the largest Intel idle term
    // (Ivy Bridge 3.04) + the largest dynamic term (Sandy Bridge 8.58 - 2.17).
    let m = Machine::new(SKYLAKE, 1, None);
    let mut p = m.probe(&ModelOptions::default());
    m.run(&mut p, 1.0, 1);
    let (lo, hi) = p.band().unwrap();
    assert_close(hi.0, 3.04 + (8.58 - 2.17));
    // Low: the smallest idle term is the TDP-derived one, 3.75 x 0.65 / 4.26 = 0.572 (below
    // Cascade Lake's 0.64), plus the smallest dynamic term (Broadwell 3.69 - 0.71).
    assert_close(lo.0, 3.75 * 0.65 / 4.26 + (3.69 - 0.71));
}

#[test]
fn invalid_options_are_reported() {
    let m = Machine::new(SKYLAKE, 1, None);
    let p = m.probe(&ModelOptions {
        pue: f64::NAN,
        constant_w: Some(-3.0),
        ..Default::default()
    });
    assert_eq!(p.pue(), 1.0);
    assert_eq!(p.domains(), ["cpu"]);
    let reason = p.describe().reason.unwrap();
    assert!(
        reason.contains("pue") && reason.contains("constant_w"),
        "{reason}"
    );
}

#[test]
fn with_proc_root_keeps_working() {
    let m = Machine::new(SKYLAKE, 1, None);
    let mut p = ModelProbe::with_proc_root(
        carina_probes::model::PowerModel::Linear {
            idle: carina_runtime::Watts(10.0),
            max: carina_runtime::Watts(50.0),
        },
        "user",
        PathBuf::from(m.proc.path()),
    );
    assert_eq!(p.domains(), ["cpu"]);
    let out = m.run(&mut p, 0.25, 2);
    assert_close(out[0].0, 40.0);
}

#[test]
fn this_machine() {
    // Whatever this machine is, the default model describes itself and stays consistent.
    let mut p = carina_probes::estimation_model(Path::new("/proc"));
    let src = p.describe();
    println!(
        "{}\nreason: {:?}\ndevices: {:?}",
        src.source, src.reason, src.devices
    );
    assert_eq!(src.kind, EnergyKind::Estimated);
    assert!(src.domains.starts_with(&["cpu".to_owned()]));
    let mut out = vec![Joules::ZERO; p.domains().len()];
    p.read_at(Duration::ZERO, &mut out).unwrap();
    p.read_at(Duration::from_secs(1), &mut out).unwrap();
    assert_consistent(&p, &out);
}
