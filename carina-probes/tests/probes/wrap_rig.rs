//! The powercap wrap inference on the rig of issue 9, simulated deterministically through
//! `PowercapProbe::read_at`: two 30 W packages and a 4 W DRAM zone whose counters wrap at 20 J
//! and advance in 5 ms steps, read at 10 Hz. The rule that took the previous interval's power as
//! the expectation reported the packages at hundreds of watts once one short interval had read
//! high; the packages must come out at 30 W and the DRAM at 4 W.
//!
//! The rig's zones publish power limits, as real zones do (packages: 45 W long term, 55 W short
//! term; DRAM: a 10 W maximum). They give the counter rule bounds of 110 W and 20 W, under which
//! a 100 ms interval (at most 11 J, or 2 J) cannot hide a second wrap of a 20 J counter: the 10 Hz
//! intervals are certain and feed the reference that resolves the gaps. With the default bounds
//! (2000 W, 1000 W) ten wraps would fit in every interval, and each would be flagged ambiguous.

use carina_probes::powercap::PowercapProbe;
use carina_runtime::{Joules, Watts};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `max_energy_range_uj` of the rig: 20 J.
const RANGE: u64 = 20_000_000;
/// The counters move every 5 ms.
const STEP_S: f64 = 0.005;

fn zone(dir: &Path, name: &str, energy_uj: u64) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join("name"), format!("{name}\n")).unwrap();
    fs::write(dir.join("energy_uj"), format!("{energy_uj}\n")).unwrap();
    fs::write(dir.join("max_energy_range_uj"), format!("{RANGE}\n")).unwrap();
    let limits: &[(&str, u64)] = if name == "dram" {
        &[("constraint_0_max_power_uw", 10_000_000)]
    } else {
        &[
            ("constraint_0_power_limit_uw", 45_000_000),
            ("constraint_1_power_limit_uw", 55_000_000),
        ]
    };
    for (file, uw) in limits {
        fs::write(dir.join(file), format!("{uw}\n")).unwrap();
    }
    dir.to_owned()
}

/// A simulated zone: its power, its counter at time 0, and its file.
struct Sim {
    watts: f64,
    offset_uj: u64,
    dir: PathBuf,
}

impl Sim {
    /// The true energy since time 0 at absolute time `t`, µJ: whole 5 ms steps only.
    fn truth_uj(&self, t: f64) -> u64 {
        let steps = (t / STEP_S + 1e-9).floor() as u64;
        steps * (self.watts * STEP_S * 1e6).round() as u64
    }
    /// Writes the counter as the hardware shows it at `t`: wrapped at the range.
    fn publish(&self, t: f64) {
        let raw = (self.offset_uj + self.truth_uj(t)) % RANGE;
        fs::write(self.dir.join("energy_uj"), format!("{raw}\n")).unwrap();
    }
}

/// The rig: package-0, package-1 (30 W), dram-0 (4 W), in the probe's domain order.
fn rig(root: &Path) -> Vec<Sim> {
    let p0 = zone(&root.join("intel-rapl:0"), "package-0", 0);
    let dram = zone(&p0.join("intel-rapl:0:0"), "dram", 0);
    let p1 = zone(&root.join("intel-rapl:1"), "package-1", 0);
    vec![
        Sim {
            watts: 30.0,
            offset_uj: 19_000_000,
            dir: p0,
        },
        Sim {
            watts: 30.0,
            offset_uj: 7_654_321,
            dir: p1,
        },
        Sim {
            watts: 4.0,
            offset_uj: 123,
            dir: dram,
        },
    ]
}

/// Deterministic jitter in [-3, 3] ms.
fn jitter(seed: &mut u64) -> f64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    ((*seed % 6001) as f64 - 3000.0) / 1e6
}

/// Sets every counter to time `t` (absolute, s) and reads the probe at `t - opened_at`.
fn read_at(p: &mut PowercapProbe, sims: &[Sim], opened_at: f64, t: f64) -> Vec<f64> {
    for s in sims {
        s.publish(t);
    }
    let mut out = vec![Joules(-1.0); sims.len()];
    p.read_at(Duration::from_secs_f64(t - opened_at), &mut out)
        .unwrap();
    out.iter().map(|j| j.0).collect()
}

/// The rig as a run sees it: the probe opens (detection), its liveness check reads it 30 ms
/// later, the run takes its baseline right after (here 0.4 ms later, across a 5 ms step of the
/// counters: one 0.15 J step in 0.4 ms, "375 W"), then the aggregator reads at 10 Hz with a few
/// ms of jitter for 4 s. Every package must be at 30 W within 2 % over the run and over every
/// second of it, the DRAM at 4 W.
#[test]
fn the_rig_reads_30_w_per_package_and_4_w_dram() {
    let t = tempfile::tempdir().unwrap();
    let sims = rig(t.path());
    let opened_at = 0.0043;
    for s in &sims {
        s.publish(opened_at);
    }
    let mut p = PowercapProbe::open(t.path()).unwrap();
    assert_eq!(p.domains(), ["package-0", "package-1", "dram-0"]);
    assert_eq!(
        p.max_plausible_power(),
        [Watts(110.0), Watts(110.0), Watts(20.0)]
    );
    read_at(&mut p, &sims, opened_at, opened_at + 0.0305);
    let base_t = opened_at + 0.0309;
    let base = read_at(&mut p, &sims, opened_at, base_t);

    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut samples = vec![(base_t, base.clone())];
    for n in 1..=40 {
        let t = base_t + f64::from(n) * 0.1 + jitter(&mut seed);
        samples.push((t, read_at(&mut p, &sims, opened_at, t)));
    }
    let (end_t, end) = samples.last().unwrap().clone();
    let span = end_t - base_t;
    for (i, s) in sims.iter().enumerate() {
        let w = (end[i] - base[i]) / span;
        eprintln!("{}: {w:.3} W over {span:.3} s", p.domains()[i]);
        assert!(
            (w / s.watts - 1.0).abs() < 0.02,
            "{}: {w:.3} W, expected {} W",
            p.domains()[i],
            s.watts
        );
        // Exactly the energy the counter moved by: no wrap added, none lost.
        let truth = (s.truth_uj(end_t) - s.truth_uj(base_t)) as f64 / 1e6;
        assert!(
            (end[i] - base[i] - truth).abs() < 1e-9,
            "{}",
            p.domains()[i]
        );
        // Every second of the run, not only the whole.
        for k in (0..samples.len() - 10).step_by(10) {
            let (t0, e0) = &samples[k];
            let (t1, e1) = &samples[k + 10];
            let w = (e1[i] - e0[i]) / (t1 - t0);
            assert!(
                (w / s.watts - 1.0).abs() < 0.02,
                "{} from {t0:.3} s: {w:.3} W",
                p.domains()[i]
            );
        }
    }
    let r = p.take_report();
    assert!(r.is_empty(), "{r:?}");
}

/// The rig read at 10 Hz for 2 s, then nothing for 3 s (a stalled sampler), then 10 Hz again:
/// at 30 W the packages went through 90 J, 4.5 ranges of 20 J, and the counter alone only shows
/// the half. The elapsed time (3 s, far longer than the 10 ms a 20 J counter needs to wrap at
/// the 2000 W maximum plausible package power) lets extra wraps in, and the reference power of
/// the previous seconds (30 W: 90 J expected, +-10 %) holds only one candidate, with four extra
/// wraps. The DRAM (12 J in the gap, no wrap) gets none.
#[test]
fn a_three_second_gap_is_resolved_from_elapsed_time_and_recent_power() {
    let t = tempfile::tempdir().unwrap();
    let sims = rig(t.path());
    for s in &sims {
        s.publish(0.0);
    }
    let mut p = PowercapProbe::open(t.path()).unwrap();
    let mut times: Vec<f64> = (1..=20).map(|n| f64::from(n) * 0.1 + 0.0021).collect();
    times.extend((0..=10).map(|n| 5.0021 + f64::from(n) * 0.1));
    let mut last = Vec::new();
    for &t in &times {
        last = read_at(&mut p, &sims, 0.0, t);
        for (i, s) in sims.iter().enumerate() {
            let truth = s.truth_uj(t) as f64 / 1e6;
            assert!(
                (last[i] - truth).abs() < 1e-9,
                "{} at {t:.4} s: {} J, truth {truth} J",
                p.domains()[i],
                last[i]
            );
        }
    }
    assert!((last[0] - 30.0 * 6.0).abs() < 0.2, "{last:?}");
    assert!(p.take_report().is_empty());
}

/// With no history at all (the first read after open comes 3 s late), nothing says how many
/// times the counter went round: the smallest delta is counted, never a guess, and flagged as
/// a lower bound with the possible range.
#[test]
fn a_late_first_read_counts_the_smallest_delta_and_says_so() {
    let t = tempfile::tempdir().unwrap();
    let pkg = zone(&t.path().join("intel-rapl:0"), "package-0", 0);
    let mut p = PowercapProbe::open(t.path()).unwrap();
    fs::write(pkg.join("energy_uj"), "10000000\n").unwrap();
    let mut out = [Joules::ZERO];
    p.read_at(Duration::from_secs(3), &mut out).unwrap();
    assert_eq!(out, [Joules(10.0)]);
    let r = p.take_report();
    assert!(r.lower_bound);
    assert_eq!(r.warnings.len(), 1, "{r:?}");
    let w = &r.warnings[0];
    assert!(
        w.starts_with("package-0: interval ambiguous, 0.000 s-3.000 s"),
        "{w}"
    );
    // 10 J plus up to 16 ranges under 110 W x 3 s = 330 J.
    assert!(
        w.contains("10.000 J plus any whole number of ranges up to 330.000 J"),
        "{w}"
    );
    assert!(w.contains("no reference power"), "{w}");
}
