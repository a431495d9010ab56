//! Helpers shared by the CLI tests: run the binary, and write hand-made run files
//! (docs/FORMAT.md).

use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `carina` binary without the variables a user's shell or an enclosing `carina run` may have
/// set: each would change what a test sees (`CARINA_DIR` where runs are read and written,
/// `CARINA_PARENT_PID` a run into a child run, `CARINA_SCOPE` what is measured). A test sets the
/// ones it needs.
pub fn carina_command() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_carina"));
    for var in [
        "CARINA_DIR",
        "CARINA_DISABLE",
        "CARINA_SCOPE",
        "CARINA_RUN_ID",
        "CARINA_JOB",
        "CARINA_PARENT_PID",
        "CARINA_POWERCAP_ROOT",
    ] {
        c.env_remove(var);
    }
    c
}

/// A shell loop that keeps a core busy until the test creates a file, two minutes at most: a
/// command for `carina run` that lasts as long as the test needs, however slow the machine.
pub struct Busy {
    stop: PathBuf,
}

impl Busy {
    /// The loop stops when `dir/stop` exists.
    pub fn new(dir: &Path) -> Busy {
        Busy {
            stop: dir.join("stop"),
        }
    }

    /// The `sh -c` script.
    pub fn script(&self) -> String {
        format!(
            "end=$(($(date +%s)+120)); while [ ! -e '{}' ] && [ $(date +%s) -lt $end ]; do :; done",
            self.stop.display()
        )
    }
}

impl Drop for Busy {
    /// Stops the loop, on a failed assertion too, so that no shell is left spinning.
    fn drop(&mut self) {
        let _ = std::fs::write(&self.stop, "");
    }
}

/// Runs `carina ARGS` ([`carina_command`]) to the end.
pub fn carina(args: &[&str]) -> Output {
    carina_command()
        .args(args)
        .output()
        .expect("run the carina binary")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

pub fn run_start(job: &str, run_id: &str) -> String {
    json!({
        "type": "run_start", "schema": 1, "run_id": run_id, "job": job, "host": "node7",
        "pid": 4242, "started_at": "2026-11-28T05:12:00Z",
        "energy_sources": [{"name": "model", "kind": "estimated", "source": "CCF coefficients",
            "domains": ["cpu"], "scope": "host", "idle_w": 0.9, "max_w": 4.04}],
        "carbon": {"g_per_kwh": 400.0, "zone": "WORLD", "source": "test"},
        "steps": "all", "sample_interval_s": 0.1, "scope": "process", "carina_version": "0.1.0"
    })
    .to_string()
}

/// One `step` record.
pub fn step(name: &str, id: u64, start_s: f64, end_s: f64, items: u64, energy_j: f64) -> String {
    json!({
        "type": "step", "name": name, "id": id, "parent": null, "thread": 0,
        "start_s": start_s, "end_s": end_s, "items": items, "status": "ok",
        "energy_j": energy_j, "self_energy_j": energy_j, "co2e_g": energy_j / 3.6e6 * 400.0
    })
    .to_string()
}

/// A step instance to generate: duration, items and energy.
#[derive(Clone, Copy)]
pub struct Inst {
    pub dur: f64,
    pub items: u64,
    pub energy: f64,
}

/// Builds a run file's lines: `step` records back to back for every (name, instances) in
/// `groups` (interleaved by instance index), then summaries and, if `complete`, a `run_end`.
pub fn run_lines(
    job: &str,
    run_id: &str,
    groups: &[(&str, Vec<Inst>)],
    complete: bool,
) -> Vec<String> {
    let mut lines = vec![run_start(job, run_id)];
    let mut t = 0.0;
    let mut id = 0;
    let longest = groups.iter().map(|g| g.1.len()).max().unwrap_or(0);
    for i in 0..longest {
        for (name, insts) in groups {
            if let Some(x) = insts.get(i) {
                id += 1;
                lines.push(step(name, id, t, t + x.dur, x.items, x.energy));
                t += x.dur;
            }
        }
    }
    if complete {
        let mut total_e = 0.0;
        let mut max_items = 0;
        for (name, insts) in groups {
            let e: f64 = insts.iter().map(|x| x.energy).sum();
            let w: f64 = insts.iter().map(|x| x.dur).sum();
            let items: u64 = insts.iter().map(|x| x.items).sum();
            let mut d: Vec<f64> = insts.iter().map(|x| x.dur).collect();
            d.sort_by(f64::total_cmp);
            total_e += e;
            max_items = max_items.max(items);
            lines.push(
                json!({
                    "type": "step_summary", "name": name, "count": insts.len(), "wall_s": w,
                    "self_wall_s": w, "items": items, "energy_j": e, "self_energy_j": e,
                    "co2e_g": e / 3.6e6 * 400.0, "p50_s": d[d.len() / 2],
                    "p95_s": d[d.len() * 95 / 100], "max_s": d[d.len() - 1], "errors": 0, "panics": 0
                })
                .to_string(),
            );
        }
        let unattributed = 0.01 * total_e;
        lines.push(
            json!({
                "type": "run_end", "ended_at": "2026-11-28T05:20:00Z", "wall_s": t,
                "energy_j": total_e + unattributed, "unattributed_j": unattributed,
                "co2e_g": (total_e + unattributed) / 3.6e6 * 400.0, "items": max_items,
                "steps": id, "dropped": 0, "records_not_written": 0,
                "host_energy_j": 2.0 * total_e, "energy_kind": "estimated", "probe_errors": 0,
                "sink_errors": 0
            })
            .to_string(),
        );
    }
    lines
}

pub fn write_run(dir: &Path, file: &str, lines: &[String]) -> PathBuf {
    let p = dir.join(file);
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    p
}

/// Writes `lines` like [`write_run`], but the last one cut in the middle of its JSON and without
/// a trailing newline: what a writer killed mid-line leaves behind.
pub fn write_truncated(dir: &Path, file: &str, lines: &[String]) -> PathBuf {
    let (last, head) = lines.split_last().expect("at least one line");
    let cut = &last[..last.len() / 2];
    let p = dir.join(file);
    std::fs::write(&p, head.join("\n") + "\n" + cut).unwrap();
    p
}

/// `n` identical instances.
pub fn steady(n: usize, dur: f64, items: u64, energy: f64) -> Vec<Inst> {
    vec![Inst { dur, items, energy }; n]
}

/// `n` instances whose energy is `mean` x (1 + `spread` x a deterministic pseudo-random value in
/// -1..1), seeded by `seed`.
pub fn noisy(n: usize, items: u64, mean: f64, spread: f64, seed: u64) -> Vec<Inst> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = ((s >> 33) as f64 / (1u64 << 31) as f64) * 2.0 - 1.0;
            Inst {
                dur: 0.5,
                items,
                energy: mean * (1.0 + spread * u),
            }
        })
        .collect()
}

/// Sets the `run_end`'s `host_energy_j` so that the run's share of the host
/// (`energy_j / host_energy_j`) is `share`; `share` 0 writes `host_energy_j: 0` ("n/a").
pub fn set_host_share(lines: &mut [String], share: f64) {
    let end = lines
        .iter_mut()
        .find(|l| l.contains("\"run_end\""))
        .expect("a run_end line");
    let mut v: serde_json::Value = serde_json::from_str(end).unwrap();
    let e = v["energy_j"].as_f64().unwrap();
    v["host_energy_j"] = json!(if share > 0.0 { e / share } else { 0.0 });
    *end = v.to_string();
}

/// One `power` record: the run's energy over `start_s..end_s`.
pub fn power(start_s: f64, end_s: f64, energy_j: f64) -> String {
    json!({
        "type": "power", "start_s": start_s, "end_s": end_s, "energy_j": energy_j,
        "co2e_g": energy_j / 3.6e6 * 400.0
    })
    .to_string()
}

/// A deterministic PRNG (SplitMix64) for generating runs: uniform values in -1..1.
pub struct Prng(u64);

impl Prng {
    pub fn new(seed: u64) -> Self {
        Prng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }
    /// Uniform in -1..1.
    pub fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}

/// The instances of one step name in a run as a shared machine makes them: every instance's
/// energy is `energy` x `e_mult` x (1 +- 2 %) and its duration `dur` x `t_mult` x (1 +- 5 %);
/// `e_mult` and `t_mult` are the run's own (its neighbours' load).
pub fn loaded(
    n: usize,
    items: u64,
    energy: f64,
    dur: f64,
    (e_mult, t_mult): (f64, f64),
    rng: &mut Prng,
) -> Vec<Inst> {
    (0..n)
        .map(|_| Inst {
            dur: dur * t_mult * (1.0 + 0.05 * rng.uniform()),
            items,
            energy: energy * e_mult * (1.0 + 0.02 * rng.uniform()),
        })
        .collect()
}

/// Writes `n` runs of job `scenario-db` into `dir` (`{prefix}-{i}.jsonl`) drawn from one
/// distribution: per run, energy per item x (1 +- `e_noise`) and time per item x (1 + `t_noise`
/// x a value in 0..1, a neighbour's load only slows a run down), then `factor` on the energy of
/// every step. Two steps: `load` (10 % of the energy) and `simulate`.
pub fn noisy_runs(
    dir: &Path,
    prefix: &str,
    n: usize,
    seed: u64,
    (e_noise, t_noise): (f64, f64),
    factor: f64,
) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    let mut rng = Prng::new(seed);
    (0..n)
        .map(|i| {
            let e = factor * (1.0 + e_noise * rng.uniform());
            let t = 1.0 + t_noise * (rng.uniform() + 1.0) / 2.0;
            let groups = [
                ("load", loaded(10, 10, 2.0, 0.5, (e, t), &mut rng)),
                ("simulate", loaded(40, 25, 36.0, 1.0, (e, t), &mut rng)),
            ];
            let id = format!("{prefix}-{i}");
            write_run(
                dir,
                &format!("{id}.jsonl"),
                &run_lines("scenario-db", &id, &groups, true),
            )
        })
        .collect()
}

/// A run without steps, as `carina run` writes it: `run_start` and a `run_end` with the run's
/// wall time, energy and items.
pub fn bare_run(job: &str, run_id: &str, wall_s: f64, energy_j: f64, items: u64) -> Vec<String> {
    vec![
        run_start(job, run_id),
        json!({
            "type": "run_end", "ended_at": "2026-11-28T05:20:00Z", "wall_s": wall_s,
            "energy_j": energy_j, "unattributed_j": energy_j,
            "co2e_g": energy_j / 3.6e6 * 400.0, "items": items, "steps": 0, "dropped": 0,
            "records_not_written": 0, "host_energy_j": 2.0 * energy_j,
            "energy_kind": "estimated", "probe_errors": 0, "sink_errors": 0
        })
        .to_string(),
    ]
}

/// A complete run of `job` on `host` that started at `started_at` (RFC 3339) and took `wall_s`:
/// one `solve` step over the whole run with `items` and 99 % of `energy_j`, and a `run_end`
/// with `energy_j` (1 % unattributed). For the fleet view: several hosts of one cycle.
pub fn host_run(
    job: &str,
    run_id: &str,
    host: &str,
    started_at: &str,
    wall_s: f64,
    energy_j: f64,
    items: u64,
) -> Vec<String> {
    let mut start: serde_json::Value = serde_json::from_str(&run_start(job, run_id)).unwrap();
    start["host"] = json!(host);
    start["started_at"] = json!(started_at);
    let total = energy_j;
    let t0: jiff::Timestamp = started_at.parse().unwrap();
    let ended_at = t0
        .checked_add(jiff::SignedDuration::from_secs_f64(wall_s))
        .unwrap()
        .to_string();
    vec![
        start.to_string(),
        step("solve", 1, 0.0, wall_s, items, 0.99 * energy_j),
        json!({
            "type": "run_end", "ended_at": ended_at, "wall_s": wall_s,
            "energy_j": total, "unattributed_j": 0.01 * total,
            "co2e_g": total / 3.6e6 * 400.0, "items": items, "steps": 1, "dropped": 0,
            "records_not_written": 0, "host_energy_j": 2.0 * total,
            "energy_kind": "estimated", "probe_errors": 0, "sink_errors": 0
        })
        .to_string(),
    ]
}

/// Applies `f` to the JSON of every line whose `type` is `kind` (to give hand-made runs the
/// fields a newer Carina writes).
pub fn patch(lines: &mut [String], kind: &str, f: impl Fn(&mut serde_json::Value)) {
    for l in lines.iter_mut() {
        let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
        if v["type"] == kind {
            f(&mut v);
            *l = v.to_string();
        }
    }
}

/// Carina's own cost in the new-format fixtures: 0.18 % of the CPU time, 0.5 + 0.02 J,
/// 61 100 bytes written. `format::own_cost_line` writes it as [`OWN_COST_LINE`].
pub fn own_cost() -> serde_json::Value {
    json!({
        "aggregator_cpu_s": 0.012, "aggregator_energy_j": 0.5, "step_cost_ns": 20.3,
        "steps_cpu_s": 0.0004, "steps_energy_j": 0.02, "bytes_written": 61100,
        "cpu_share": 0.0018
    })
}

/// [`own_cost`] as the terminal shows it.
pub const OWN_COST_LINE: &str = "0.18 % of CPU time, 0.520 J (aggregator 0.0120 s CPU; steps \
     0.000400 s CPU at 20.3 ns each; 61.1 kB written)";

/// A run as a Carina with issue 15's fields writes it: `rapl-powercap`, a host-scope counter,
/// in a `process`-scope run, so the run's energy is the counter times its CPU-time share
/// (`run_end.method`, built by the core's own `Method::from_parts`); `rapl-perf` considered and
/// not used; a GPU step `train` (4 x 36 J) and a CPU step `load` (4 x 2 J), each summary
/// with its `gpu` flag and `method`; `run_end.own_cost`, `carbon_g_per_kwh` and `attribution`.
/// `lower_bound` marks the method a lower bound (with a warning saying why).
pub fn counter_share_run(job: &str, run_id: &str, lower_bound: bool) -> Vec<String> {
    use carina_runtime::record::{Basis, Method, MethodPart, ShareRule};
    use carina_runtime::units::Joules;
    let groups = [
        ("load", steady(4, 0.5, 10, 2.0)),
        ("train", steady(4, 1.0, 25, 36.0)),
    ];
    let mut lines = run_lines(job, run_id, &groups, true);
    // (4 x 2 + 4 x 36) J, and 1 % unattributed (`run_lines`).
    let e = 152.0 * 1.01;
    let method = Method::from_parts(
        vec![
            MethodPart::new("rapl-powercap", Basis::Counter, Joules(e))
                .with_share(ShareRule::CpuTime, Joules(e)),
        ],
        lower_bound,
    );
    let label = method.label.clone();
    patch(&mut lines, "run_start", |v| {
        v["energy_sources"] = json!([
            {"name": "rapl-powercap", "kind": "measured", "source": "/sys/class/powercap",
             "domains": ["package-0"], "scope": "host", "basis": "counter"},
            {"name": "rapl-perf", "kind": "measured", "source": "", "used": false,
             "reason": "no `power` PMU; RAPL not exposed through perf_event", "basis": "counter"}
        ]);
    });
    patch(&mut lines, "step", |v| {
        if v["name"] == "train" {
            v["gpu"] = json!(true);
        }
    });
    patch(&mut lines, "step_summary", |v| {
        let split = "to steps by thread CPU time and wall time";
        if v["name"] == "train" {
            v["gpu"] = json!(true);
            v["method"] = json!(format!("{label}; {split}; GPU energy by GPU-step overlap"));
        } else {
            v["method"] = json!(format!(
                "{label}; {split}; GPU energy by wall time, in intervals with no GPU step open"
            ));
        }
    });
    patch(&mut lines, "run_end", |v| {
        v["energy_kind"] = json!("measured");
        v["method"] = serde_json::to_value(&method).unwrap();
        v["carbon_g_per_kwh"] = json!(400.0);
        v["attribution"] = json!("cpu-time");
        v["own_cost"] = own_cost();
        if lower_bound {
            v["warnings"] = json!([
                "rapl-powercap: package-0 went back from 9.1 J to 0.2 J with no wrap to explain it: a reset; the interval counts from 0 (a lower bound)"
            ]);
        }
    });
    lines
}

/// [`counter_share_run`] in `host` scope: the counter taken whole, `run_end.method` a plain
/// `counter` (the one method shown as `measured` alone).
pub fn host_counter_run(job: &str, run_id: &str) -> Vec<String> {
    use carina_runtime::record::{Basis, Method, MethodPart};
    use carina_runtime::units::Joules;
    let mut lines = counter_share_run(job, run_id, false);
    let method = Method::from_parts(
        vec![MethodPart::new(
            "rapl-powercap",
            Basis::Counter,
            Joules(152.0 * 1.01),
        )],
        false,
    );
    patch(&mut lines, "run_start", |v| v["scope"] = json!("host"));
    patch(&mut lines, "run_end", |v| {
        v["method"] = serde_json::to_value(&method).unwrap();
    });
    lines
}

/// A run under a time-varying intensity series (`run_start.carbon.series`) whose plain mean is
/// 426 g/kWh while the run's energy fell mostly in dirtier hours: its CO2e is that of an
/// effective 495.3 g/kWh. `with_factor` writes `run_end.carbon_g_per_kwh` (files of earlier
/// versions lack it; readers then divide CO2e by kWh).
pub fn series_run(job: &str, run_id: &str, with_factor: bool) -> Vec<String> {
    let mut lines = run_lines(job, run_id, &[("simulate", steady(4, 1.0, 25, 36.0))], true);
    patch(&mut lines, "run_start", |v| {
        v["carbon"] = json!({"g_per_kwh": 426.0, "zone": "DE", "source": "intensity series",
                             "series": "/data/de-2026-11.csv"});
    });
    patch(&mut lines, "run_end", |v| {
        let kwh = v["energy_j"].as_f64().unwrap() / 3.6e6;
        v["co2e_g"] = json!(kwh * 495.3);
        if with_factor {
            v["carbon_g_per_kwh"] = json!(495.3);
        }
    });
    lines
}
