//! `carina compare`: per-step energy and time per item between base runs and candidate runs,
//! with a noise-aware verdict. Exit status: 0 when nothing gated regressed beyond the threshold,
//! 1 when something did, 2 on bad input.

use crate::load::load_runs;
use crate::out;
use crate::summary::table;
use crate::view::{RunView, StepRow, quantile_sorted, wall_of};
use carina_runtime::format::{duration_fine, energy_fine, escape_control, signed};
use carina_runtime::reader::RunFile;
use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

const LONG_ABOUT: &str = "Compare per-step energy per item and time per item between base \
runs and candidate runs, and say for each step, and for the run as a whole, whether it \
regressed, improved or stayed the same.\n\n\
Runs. `carina compare BASE CAND` compares two run files. `carina compare BASE... --candidate \
CAND...` and `carina compare --base BASE... --candidate CAND...` compare several runs per side; \
each path is a run file or a directory (every `*.jsonl` under it, recursively, as `carina \
report` reads them; a file named twice counts once). `--candidate` takes every path after it up \
to the next flag.\n\n\
Rows. One row per step name, and a `(run)` row for the run as a whole: the run's energy \
(run_end.energy_j, or up to the cut of a crashed run) per item when every run has items, else \
per run, and its wall time likewise. The `(run)` row is judged and gated like a step, so a run \
without steps (a `carina run` file) is compared too.\n\n\
Method with several runs on a side (the unit of replication is the run). For each row, every \
run gives one figure: its J per item (sum of the step's inclusive energy / sum of its items; \
per instance for steps without items) and its s per item. The change is the ratio of the \
geometric means of the two sides' figures, and its 95 % interval a Welch t-interval on the \
difference of the means of their logarithms (Welch-Satterthwaite degrees of freedom), so it \
covers run-to-run noise: a neighbour that slows a run down moves that run's figure, and the \
interval widens accordingly. When one side has a single run, the other side's variance is used \
for both (degrees of freedom: its runs - 1). A step found in one run per side only is judged \
as with one run per side, below.\n\n\
Method with one run per side. For a step, each `step` record is one sample: the instances of \
each run are resampled with replacement 2000 times (a fixed-seed PRNG, so the output is \
reproducible) and the 2.5th and 97.5th percentiles of the relative change of the ratio of \
totals give a 95 % interval; above 5000 instances a delta-method normal interval on the log \
ratio is used instead. For the `(run)` row, the variance of the run's energy is that of its \
steps' self energy with each name's instances resampled (a normal interval on the log ratio), \
and its wall time's that of its top-level steps' durations. Limitation: such intervals cover \
the noise between the instances of one run, not between runs (a busier host slows every \
instance of a run at once): for a gate that holds on a shared machine, give 3 or more runs per \
side. A step with fewer than 5 instances in either run, a file with summaries only (`steps: \
\"summary\"`) and a `(run)` row of runs without step records are judged on their totals alone \
(change beyond the threshold), and the note says so.\n\n\
Verdicts. Energy (or time) regressed when the change is above the threshold AND its 95 % \
interval lies above zero; improved likewise below; same otherwise; new / gone for a step on one \
side only. The gate (--gate, default `energy`) names what can make a row `regressed` or \
`improved` and fail the command: `energy`, `time` or `energy,time`. Time per item is always \
computed and shown (time change, interval, `time_verdict` in JSON; a note when it moved but is \
not gated): on a shared machine time per item moves by 20-30 % with the neighbours' load while \
energy per item barely moves, so time is not gated by default.\n\n\
A step whose inclusive energy is below --min-share of its run's energy on both sides (default \
1 %) is still compared and shown, but its verdict reads \"minor\" and it cannot fail the gate: \
a 1 ms set-up step that moves by 10 % is noise for a CI gate, not a regression. Use \
--min-share 0 to gate every step. The `(run)` row is never minor.\n\n\
Host share. Each side's share of the host's energy (run_end.energy_j / run_end.host_energy_j, \
the mean over a side's runs; n/a when host_energy_j is missing or 0, or the run has no \
run_end), the host's energy and the scope (run_start.scope) are shown. In process scope a run's \
energy is its share of the host's, so the same work gets more joules on a quiet host than on a \
busy one (114 J at a 0.49 share, 172 J at 0.90): when the two shares differ by more than 0.15, \
or the larger is more than 1.5 times the smaller, a warning says that energy differences may \
come from the neighbours, not the code. Different scopes are warned too.\n\n\
Runs of different jobs are compared with a warning. Exit status: 0 when nothing gated \
regressed, 1 when a row regressed, 2 on bad input (unreadable file, a directory without run \
files, a threshold outside 0..1000 %, a --min-share outside 0..100 %, an unknown --gate). \
Warnings (different jobs, and the run files' own: a missing run_end, a truncated last line) \
are printed on stderr and listed in the Markdown and JSON output; Markdown output escapes the \
step names, run ids, jobs and warnings it quotes.";

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned table for the terminal.
    Text,
    /// A headline and a table, ready to post on a pull request.
    Markdown,
    /// One JSON object.
    Json,
}

/// What can fail the gate: energy per item, time per item, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gate {
    /// Energy per item gates.
    pub energy: bool,
    /// Time per item gates.
    pub time: bool,
}

impl Gate {
    fn names(self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.energy {
            v.push("energy");
        }
        if self.time {
            v.push("time");
        }
        v
    }
}

/// Parses `energy`, `time` or `energy,time` (in any order, case-insensitive).
pub fn parse_gate(s: &str) -> Result<Gate, String> {
    let mut g = Gate {
        energy: false,
        time: false,
    };
    for part in s.split(',') {
        match part.trim().to_ascii_lowercase().as_str() {
            "energy" => g.energy = true,
            "time" => g.time = true,
            other => {
                return Err(format!(
                    "`{other}`: --gate takes `energy`, `time` or `energy,time`"
                ));
            }
        }
    }
    Ok(g)
}

/// Arguments of `carina compare`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = LONG_ABOUT)]
pub struct Args {
    /// Runs: `BASE CANDIDATE` (two run files or directories), or the base runs when
    /// --candidate is given.
    #[arg(value_name = "RUN")]
    pub runs: Vec<PathBuf>,
    /// Base runs (before the change): run files or directories (every run file in them).
    /// Three or more per side make a CI gate that holds on a shared machine.
    #[arg(long = "base", num_args = 1.., value_name = "BASE")]
    pub base: Vec<PathBuf>,
    /// Candidate runs (after the change): run files or directories; every path after it up to
    /// the next flag.
    #[arg(long = "candidate", num_args = 1.., value_name = "CANDIDATE")]
    pub candidate: Vec<PathBuf>,
    /// What can fail the gate: `energy` (default), `time`, or `energy,time`. Changes of the
    /// other figure are still shown.
    #[arg(long, default_value = "energy", value_parser = parse_gate)]
    pub gate: Gate,
    /// Smallest relative change that counts, in percent: `5%` and `5` both mean 5 %.
    #[arg(long, default_value = "5%", value_parser = parse_threshold)]
    pub threshold: f64,
    /// Steps below this share of the run's energy in both runs cannot fail the gate (their
    /// verdict reads `minor`): `1%` and `1` both mean 1 %; from 0 to 100; `0` gates every step.
    #[arg(long, default_value = "1%", value_parser = parse_min_share)]
    pub min_share: f64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Parses `5%` or `5` (both 5 %) into percent.
pub fn parse_threshold(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let num = t.strip_suffix('%').unwrap_or(t).trim();
    match num.parse::<f64>() {
        Ok(v) if (0.0..1000.0).contains(&v) => Ok(v),
        Ok(_) => Err(format!(
            "`{s}`: the threshold must be a percentage from 0 to 1000, e.g. `5%` or `5`"
        )),
        Err(_) => Err(format!(
            "`{s}` is not a percentage; write e.g. `5%` or `5` (both mean 5 %)"
        )),
    }
}

/// Parses `1%` or `1` (both 1 %) into percent, from 0 to 100: a share of the run's energy above
/// 100 % would make every step `minor` and silently turn the gate off.
pub fn parse_min_share(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let num = t.strip_suffix('%').unwrap_or(t).trim();
    match num.parse::<f64>() {
        Ok(v) if (0.0..=100.0).contains(&v) => Ok(v),
        Ok(_) => Err(format!(
            "`{s}`: the minimum share must be a percentage from 0 to 100, e.g. `1%` or `1`"
        )),
        Err(_) => Err(format!(
            "`{s}` is not a percentage; write e.g. `1%` or `1` (both mean 1 %)"
        )),
    }
}

/// Minimum instances per run for a statistical verdict.
const MIN_INSTANCES: usize = 5;
/// Bootstrap resamples.
const RESAMPLES: usize = 2000;
/// Above this many instances, a delta-method interval replaces the bootstrap.
const BOOTSTRAP_MAX: usize = 5_000;

/// SplitMix64: a small, deterministic PRNG for the bootstrap.
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform index below `n` (n > 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }
}

fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// One step instance: energy, duration, and the unit it is divided by (items, or 1).
#[derive(Debug, Clone, Copy)]
struct Sample {
    energy: f64,
    time: f64,
    units: f64,
}

/// 95 % interval of the relative change (in %) of energy/unit and time/unit.
fn interval(base: &[Sample], cand: &[Sample], seed: u64) -> ([f64; 2], [f64; 2]) {
    if base.len() > BOOTSTRAP_MAX || cand.len() > BOOTSTRAP_MAX {
        return delta_interval(base, cand);
    }
    let mut rng = SplitMix64::new(seed);
    let mut de = Vec::with_capacity(RESAMPLES);
    let mut dt = Vec::with_capacity(RESAMPLES);
    let resample = |xs: &[Sample], rng: &mut SplitMix64| {
        let (mut e, mut t, mut u) = (0.0, 0.0, 0.0);
        for _ in 0..xs.len() {
            let s = xs[rng.below(xs.len())];
            e += s.energy;
            t += s.time;
            u += s.units;
        }
        (e / u, t / u)
    };
    for _ in 0..RESAMPLES {
        let (be, bt) = resample(base, &mut rng);
        let (ce, ct) = resample(cand, &mut rng);
        de.push(rel(be, ce));
        dt.push(rel(bt, ct));
    }
    let ci = |mut v: Vec<f64>| {
        v.retain(|x| x.is_finite());
        v.sort_by(f64::total_cmp);
        [quantile_sorted(&v, 0.025), quantile_sorted(&v, 0.975)]
    };
    (ci(de), ci(dt))
}

/// Delta-method interval on log(ratio of sums), for large samples.
fn delta_interval(base: &[Sample], cand: &[Sample]) -> ([f64; 2], [f64; 2]) {
    // Variance of log(sum x / sum u) ~ var(x - r u) / (n * mean(u)^2 * r^2).
    let var_log = |xs: &[Sample], pick: fn(&Sample) -> f64| {
        let n = xs.len() as f64;
        let sx: f64 = xs.iter().map(pick).sum();
        let su: f64 = xs.iter().map(|s| s.units).sum();
        let r = sx / su;
        let mu = su / n;
        let v = xs
            .iter()
            .map(|s| (pick(s) - r * s.units).powi(2))
            .sum::<f64>()
            / (n - 1.0).max(1.0);
        v / (n * mu * mu * r * r)
    };
    let ratio_of = |xs: &[Sample], pick: fn(&Sample) -> f64| {
        xs.iter().map(pick).sum::<f64>() / xs.iter().map(|s| s.units).sum::<f64>()
    };
    let ci = |pick: fn(&Sample) -> f64| {
        let (rb, rc) = (ratio_of(base, pick), ratio_of(cand, pick));
        let se = (var_log(base, pick) + var_log(cand, pick)).sqrt();
        let l = (rc / rb).ln();
        [
            100.0 * ((l - 1.96 * se).exp() - 1.0),
            100.0 * ((l + 1.96 * se).exp() - 1.0),
        ]
    };
    (ci(|s| s.energy), ci(|s| s.time))
}

/// Relative change in percent.
fn rel(base: f64, cand: f64) -> f64 {
    if base == 0.0 {
        if cand == 0.0 { 0.0 } else { f64::INFINITY }
    } else {
        100.0 * (cand / base - 1.0)
    }
}

/// 97.5th percentile of Student's t distribution with `df` degrees of freedom (a table to 30,
/// then 40, 60, 120 and the normal's 1.96, interpolated linearly in 1/df; below 1, df 1's).
pub(crate) fn t975(df: f64) -> f64 {
    const T: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    if !df.is_finite() || df > 1e9 {
        return 1.96;
    }
    if df <= 1.0 {
        return T[0];
    }
    // (df, t) knots; interpolation in 1/df between neighbours.
    let knots: Vec<(f64, f64)> = (1..=30)
        .map(|i| (i as f64, T[i - 1]))
        .chain([(40.0, 2.021), (60.0, 2.000), (120.0, 1.980)])
        .collect();
    for w in knots.windows(2) {
        let ((d0, t0), (d1, t1)) = (w[0], w[1]);
        if df <= d1 {
            let f = (1.0 / d0 - 1.0 / df) / (1.0 / d0 - 1.0 / d1);
            return t0 + f * (t1 - t0);
        }
    }
    // Beyond 120: towards 1.96 at infinity.
    let f = 120.0 / df;
    1.96 + f * (1.980 - 1.96)
}

fn mean_var(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let m = xs.iter().sum::<f64>() / n;
    let v = if xs.len() > 1 {
        xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        f64::NAN
    };
    (m, v)
}

/// A change between two sides of runs: the point (in %), its 95 % interval and each side's
/// centre (geometric mean of positive figures, else arithmetic mean).
#[derive(Debug, Clone, Copy)]
struct RunsChange {
    change: f64,
    ci: [f64; 2],
    base: f64,
    cand: f64,
}

/// Welch t-interval over runs, one figure per run: on the logarithms when every figure is above
/// 0, else on the figures themselves (relative to the base's mean). Needs 3 runs in all, with at
/// least one per side; a side of one run borrows the other side's variance.
fn runs_interval(b: &[f64], c: &[f64]) -> Option<RunsChange> {
    if b.is_empty() || c.is_empty() || b.len() + c.len() < 3 {
        return None;
    }
    let log = b.iter().chain(c).all(|x| *x > 0.0 && x.is_finite());
    let tr = |xs: &[f64]| -> Vec<f64> {
        if log {
            xs.iter().map(|x| x.ln()).collect()
        } else {
            xs.to_vec()
        }
    };
    let (lb, lc) = (tr(b), tr(c));
    let (mb, vb) = mean_var(&lb);
    let (mc, vc) = mean_var(&lc);
    let (nb, nc) = (b.len() as f64, c.len() as f64);
    let (se, df) = match (b.len() > 1, c.len() > 1) {
        (true, true) => {
            let (qb, qc) = (vb / nb, vc / nc);
            let se2 = qb + qc;
            let den = qb * qb / (nb - 1.0) + qc * qc / (nc - 1.0);
            let df = if den > 0.0 {
                se2 * se2 / den
            } else {
                nb + nc - 2.0
            };
            (se2.sqrt(), df)
        }
        (true, false) => ((vb * (1.0 / nb + 1.0 / nc)).sqrt(), nb - 1.0),
        (false, true) => ((vc * (1.0 / nb + 1.0 / nc)).sqrt(), nc - 1.0),
        (false, false) => return None,
    };
    let half = t975(df) * se;
    let d = mc - mb;
    if log {
        Some(RunsChange {
            change: 100.0 * (d.exp() - 1.0),
            ci: [
                100.0 * ((d - half).exp() - 1.0),
                100.0 * ((d + half).exp() - 1.0),
            ],
            base: mb.exp(),
            cand: mc.exp(),
        })
    } else if mb != 0.0 {
        Some(RunsChange {
            change: 100.0 * d / mb,
            ci: [100.0 * (d - half) / mb.abs(), 100.0 * (d + half) / mb.abs()],
            base: mb,
            cand: mc,
        })
    } else {
        None
    }
}

/// The judgement of a row (energy, time, or both as gated) or of the whole comparison, written
/// as its word in every output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
enum Verdict {
    /// Above the threshold, with its interval above zero.
    Regressed,
    /// Below minus the threshold, with its interval below zero.
    Improved,
    /// Neither.
    #[default]
    Same,
    /// A step in the candidate only.
    New,
    /// A step in the base only.
    Gone,
    /// Would be regressed or improved, but the step is below --min-share: not gated.
    Minor,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            Verdict::Regressed => "regressed",
            Verdict::Improved => "improved",
            Verdict::Same => "same",
            Verdict::New => "new",
            Verdict::Gone => "gone",
            Verdict::Minor => "minor",
        })
    }
}

/// Per-step comparison (a step name, or the `(run)` row).
#[derive(Debug, Clone, Default, serde::Serialize)]
struct StepCmp {
    name: String,
    /// `item`, `instance` or `run`: what the per-unit figures are divided by.
    unit: &'static str,
    /// `runs` (Welch t over runs), `instances` (one run per side: step instances), or `totals`
    /// (no noise estimate: the change alone decides).
    method: &'static str,
    /// Runs of each side that hold this step.
    base_runs: usize,
    cand_runs: usize,
    base_j_per_item: Option<f64>,
    cand_j_per_item: Option<f64>,
    change_pct: Option<f64>,
    ci_low_pct: Option<f64>,
    ci_high_pct: Option<f64>,
    base_s_per_item: Option<f64>,
    cand_s_per_item: Option<f64>,
    time_change_pct: Option<f64>,
    time_ci_low_pct: Option<f64>,
    time_ci_high_pct: Option<f64>,
    base_instances: u64,
    cand_instances: u64,
    energy_verdict: Verdict,
    time_verdict: Verdict,
    verdict: Verdict,
    note: Option<String>,
}

impl StepCmp {
    fn new(name: &str, unit: &'static str) -> Self {
        StepCmp {
            name: name.to_owned(),
            unit,
            method: "totals",
            ..StepCmp::default()
        }
    }

    /// Sets the per-unit energy and time of each side, and their changes.
    fn points(&mut self, (be, bw): (f64, f64), (ce, cw): (f64, f64)) {
        (self.base_j_per_item, self.cand_j_per_item) = (Some(be), Some(ce));
        (self.base_s_per_item, self.cand_s_per_item) = (Some(bw), Some(cw));
        self.change_pct = Some(rel(be, ce));
        self.time_change_pct = Some(rel(bw, cw));
    }

    fn add_note(&mut self, n: String) {
        self.note = Some(match self.note.take() {
            Some(old) => format!("{old}; {n}"),
            None => n,
        });
    }
}

/// A step's totals in one run: count, inclusive energy (J), wall (s), items.
type Tot = (u64, f64, f64, u64);

fn tot(r: &StepRow) -> Tot {
    (r.count, r.energy.0, r.wall.0, r.items)
}

/// One loaded run with what the comparison reads from it.
struct RunData<'a> {
    view: RunView<'a>,
    /// Per step name: totals up to the run's cut.
    totals: BTreeMap<String, Tot>,
    /// The run as a whole: (1, energy, wall, items).
    whole: Tot,
    /// Per step name, the instances up to the run's cut: built when a step is compared one
    /// run against one.
    samples: OnceCell<BTreeMap<String, Vec<Sample>>>,
}

impl<'a> RunData<'a> {
    fn new(run: &'a RunFile) -> Self {
        let view = RunView::new(run);
        RunData {
            totals: view.rows.iter().map(|r| (r.name.clone(), tot(r))).collect(),
            whole: (1, view.energy.0, view.wall.0, view.items),
            samples: OnceCell::new(),
            view,
        }
    }

    fn samples(&self, name: &str) -> Option<&Vec<Sample>> {
        let all = self.samples.get_or_init(|| {
            let mut by: BTreeMap<String, Vec<Sample>> = BTreeMap::new();
            for s in self.view.steps() {
                by.entry(s.name.to_string()).or_default().push(Sample {
                    energy: s.energy_j.0,
                    time: wall_of(s).0,
                    units: s.items as f64,
                });
            }
            by
        });
        all.get(name)
    }

    /// The share of the run's energy in `t`, inclusive (0 when the run has none).
    fn share(&self, t: Tot) -> f64 {
        if self.whole.1 > 0.0 {
            t.1 / self.whole.1
        } else {
            0.0
        }
    }
}

fn verdict_of(change: f64, ci: Option<[f64; 2]>, threshold: f64) -> Verdict {
    if !change.is_finite() {
        return if change > 0.0 {
            Verdict::Regressed
        } else {
            Verdict::Same
        };
    }
    let (up, down) = match ci {
        Some([l, h]) => (l > 0.0, h < 0.0),
        None => (true, true),
    };
    if change > threshold && up {
        Verdict::Regressed
    } else if change < -threshold && down {
        Verdict::Improved
    } else {
        Verdict::Same
    }
}

/// Sets the row's verdicts from its changes and intervals, the gate and --min-share
/// (`largest`: the step's largest share of its run's energy; `None` for the `(run)` row).
fn finish(
    out: &mut StepCmp,
    (eci, tci): (Option<[f64; 2]>, Option<[f64; 2]>),
    rules: Rules,
    largest: Option<f64>,
) {
    let (threshold, min_share, gate) = (rules.threshold, rules.min_share, rules.gate);
    if let (Some(de), Some(dt)) = (out.change_pct, out.time_change_pct) {
        out.energy_verdict = verdict_of(de, eci, threshold);
        out.time_verdict = verdict_of(dt, tci, threshold);
    }
    let rows = [
        (gate.energy, "energy", out.energy_verdict),
        (gate.time, "time", out.time_verdict),
    ];
    let gated = |x: Verdict| rows.iter().any(|&(gates, _, v)| gates && v == x);
    out.verdict = if gated(Verdict::Regressed) {
        Verdict::Regressed
    } else if gated(Verdict::Improved) {
        Verdict::Improved
    } else {
        Verdict::Same
    };
    for (gates, what, v) in rows {
        // Worded "rose"/"fell", not "regressed"/"improved": a CI log searched for
        // "regressed" finds the gated rows only.
        let moved = match v {
            Verdict::Regressed => Some("rose"),
            Verdict::Improved => Some("fell"),
            _ => None,
        };
        if let (false, Some(m)) = (gates, moved) {
            out.add_note(format!(
                "{what} per item {m} beyond the threshold (not gated; --gate {what} gates it)"
            ));
        }
    }
    if let Some(largest) = largest
        && matches!(out.verdict, Verdict::Regressed | Verdict::Improved)
        && largest * 100.0 < min_share
    {
        out.verdict = Verdict::Minor;
        out.add_note(format!(
            "{:.2}% of run energy, below --min-share {min_share}%: not gated",
            largest * 100.0
        ));
    }
}

/// Judgement settings.
#[derive(Debug, Clone, Copy)]
struct Rules {
    threshold: f64,
    min_share: f64,
    gate: Gate,
}

/// What a row's figures are divided by: `item` when every run has items, else `run` for the
/// `(run)` row and `instance` for a step.
fn unit_word(per_item: bool, unit_run: bool) -> &'static str {
    match (per_item, unit_run) {
        (true, _) => "item",
        (false, true) => "run",
        (false, false) => "instance",
    }
}

/// A step (or the `(run)` row: `name` "(run)") on one side only.
fn one_sided(name: &str, b: &[Tot], c: &[Tot], unit_run: bool) -> StepCmp {
    let pool = |ts: &[Tot]| -> Option<Tot> {
        ts.iter()
            .copied()
            .reduce(|a, x| (a.0 + x.0, a.1 + x.1, a.2 + x.2, a.3 + x.3))
    };
    let (bt, ct) = (pool(b), pool(c));
    let per_item = [bt, ct].iter().flatten().all(|t| t.3 > 0);
    let mut out = StepCmp::new(name, unit_word(per_item, unit_run));
    out.base_runs = b.len();
    out.cand_runs = c.len();
    out.base_instances = bt.map_or(0, |t| t.0);
    out.cand_instances = ct.map_or(0, |t| t.0);
    let (verdict, note) = if bt.is_none() {
        (Verdict::New, "only in the candidate")
    } else {
        (Verdict::Gone, "only in the base")
    };
    out.verdict = verdict;
    out.energy_verdict = verdict;
    out.time_verdict = verdict;
    out.note = Some(note.into());
    let per = |t: Tot| {
        let u = if per_item { t.3 } else { t.0.max(1) } as f64;
        (t.1 / u, t.2 / u)
    };
    if let Some(t) = bt {
        (out.base_j_per_item, out.base_s_per_item) = (Some(per(t).0), Some(per(t).1));
    }
    if let Some(t) = ct {
        (out.cand_j_per_item, out.cand_s_per_item) = (Some(per(t).0), Some(per(t).1));
    }
    out
}

/// A step compared one run against one, from its instances (the method of a single pair).
fn compare_step(name: &str, b: &RunData, c: &RunData, rules: Rules) -> StepCmp {
    let bt = b.totals.get(name).copied();
    let ct = c.totals.get(name).copied();
    let (Some(bt), Some(ct)) = (bt, ct) else {
        let mut out = one_sided(name, bt.as_slice(), ct.as_slice(), false);
        out.base_runs = usize::from(bt.is_some());
        out.cand_runs = usize::from(ct.is_some());
        return out;
    };
    let per_item = bt.3 > 0 && ct.3 > 0;
    let mut out = StepCmp::new(name, if per_item { "item" } else { "instance" });
    out.base_runs = 1;
    out.cand_runs = 1;
    out.base_instances = bt.0;
    out.cand_instances = ct.0;
    let unit_of = |t: Tot| if per_item { t.3 as f64 } else { t.0 as f64 };
    let to_samples = |xs: Option<&Vec<Sample>>| -> Vec<Sample> {
        xs.map(|v| {
            v.iter()
                .filter(|s| !per_item || s.units > 0.0)
                .map(|s| Sample {
                    units: if per_item { s.units } else { 1.0 },
                    ..*s
                })
                .collect()
        })
        .unwrap_or_default()
    };
    let bs = to_samples(b.samples(name));
    let cs = to_samples(c.samples(name));
    // Point figures: totals from the summaries (or step records), per item or per instance.
    let (be, bw) = (bt.1 / unit_of(bt), bt.2 / unit_of(bt));
    let (ce, cw) = (ct.1 / unit_of(ct), ct.2 / unit_of(ct));
    out.points((be, bw), (ce, cw));
    let (eci, tci) = if bs.len() >= MIN_INSTANCES && cs.len() >= MIN_INSTANCES {
        let (e, t) = interval(&bs, &cs, fnv1a(name));
        out.method = "instances";
        out.ci_low_pct = Some(e[0]);
        out.ci_high_pct = Some(e[1]);
        out.time_ci_low_pct = Some(t[0]);
        out.time_ci_high_pct = Some(t[1]);
        (Some(e), Some(t))
    } else {
        out.note = Some(if bs.is_empty() || cs.is_empty() {
            "no instance data: verdict on totals only".into()
        } else {
            format!("fewer than {MIN_INSTANCES} instances: verdict on totals only")
        });
        (None, None)
    };
    let largest = b.share(bt).max(c.share(ct));
    finish(&mut out, (eci, tci), rules, Some(largest));
    out
}

/// A row compared over runs: each run that holds it gives one figure per unit.
#[allow(clippy::too_many_arguments)]
fn compare_runs(
    name: &str,
    b: &[Tot],
    c: &[Tot],
    unit_run: bool,
    (nb_all, nc_all): (usize, usize),
    rules: Rules,
    largest: Option<f64>,
) -> StepCmp {
    let per_item = b.iter().chain(c).all(|t| t.3 > 0);
    let mut out = StepCmp::new(name, unit_word(per_item, unit_run));
    out.base_runs = b.len();
    out.cand_runs = c.len();
    out.base_instances = b.iter().map(|t| t.0).sum();
    out.cand_instances = c.iter().map(|t| t.0).sum();
    let units = |t: &Tot| {
        if per_item {
            t.3 as f64
        } else if unit_run {
            1.0
        } else {
            t.0.max(1) as f64
        }
    };
    let figs = |ts: &[Tot], pick: fn(&Tot) -> f64| -> Vec<f64> {
        ts.iter().map(|t| pick(t) / units(t)).collect()
    };
    let (be, ce) = (figs(b, |t| t.1), figs(c, |t| t.1));
    let (bw, cw) = (figs(b, |t| t.2), figs(c, |t| t.2));
    // Each figure: the runs' interval when there is one, else the plain change of the means.
    let judged = |b: &[f64], c: &[f64]| match runs_interval(b, c) {
        Some(r) => (r.base, r.cand, r.change, Some(r.ci)),
        None => {
            let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len() as f64;
            (mean(b), mean(c), rel(mean(b), mean(c)), None)
        }
    };
    let (eb, ec, echange, eci) = judged(&be, &ce);
    out.base_j_per_item = Some(eb);
    out.cand_j_per_item = Some(ec);
    out.change_pct = Some(echange);
    out.ci_low_pct = eci.map(|ci| ci[0]);
    out.ci_high_pct = eci.map(|ci| ci[1]);
    let (tb, tc, tchange, tci) = judged(&bw, &cw);
    out.base_s_per_item = Some(tb);
    out.cand_s_per_item = Some(tc);
    out.time_change_pct = Some(tchange);
    out.time_ci_low_pct = tci.map(|ci| ci[0]);
    out.time_ci_high_pct = tci.map(|ci| ci[1]);
    out.method = if eci.is_some() { "runs" } else { "totals" };
    if eci.is_none() {
        out.add_note("no spread between runs (a 0 figure): verdict on totals only".into());
    }
    if b.len() < nb_all || c.len() < nc_all {
        out.add_note(format!(
            "in {} of {nb_all} base and {} of {nc_all} candidate runs",
            b.len(),
            c.len()
        ));
    }
    finish(&mut out, (eci, tci), rules, largest);
    out
}

/// Relative variances (variance / value^2) of a run's energy and wall time implied by its step
/// instances: each name's instances resampled with replacement (`n` draws of variance `var` add
/// `n var`), the energy from the steps' self energy (the rest of the run's energy fixed), the
/// wall time scaled by the top-level steps' durations. `None` with fewer than
/// [`MIN_INSTANCES`] step records.
fn run_rel_var(v: &RunView, energy: f64) -> Option<(f64, f64)> {
    let mut by: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
    let mut n = 0;
    for s in v.steps() {
        let top = if s.parent.is_none() {
            wall_of(s)
        } else {
            carina_runtime::Seconds::ZERO
        };
        by.entry(&s.name)
            .or_default()
            .push((s.self_energy_j.0, top.0));
        n += 1;
    }
    if n < MIN_INSTANCES || energy <= 0.0 {
        return None;
    }
    let (mut ve, mut vt, mut top) = (0.0, 0.0, 0.0);
    for v in by.values() {
        top += v.iter().map(|x| x.1).sum::<f64>();
        if v.len() < 2 {
            continue;
        }
        let k = v.len() as f64;
        let (_, var_e) = mean_var(&v.iter().map(|x| x.0).collect::<Vec<_>>());
        let (_, var_t) = mean_var(&v.iter().map(|x| x.1).collect::<Vec<_>>());
        ve += k * var_e;
        vt += k * var_t;
    }
    let rt = if top > 0.0 { vt / (top * top) } else { 0.0 };
    Some((ve / (energy * energy), rt))
}

/// The `(run)` row of one run against one: the run's energy and wall time per item (per run
/// without items), with a normal interval from [`run_rel_var`] when both runs have step
/// records, else on totals alone.
fn compare_whole_pair(b: &RunData<'_>, c: &RunData<'_>, rules: Rules) -> StepCmp {
    let (bt, ct) = (b.whole, c.whole);
    let per_item = bt.3 > 0 && ct.3 > 0;
    let mut out = StepCmp::new(RUN_ROW, if per_item { "item" } else { "run" });
    out.base_runs = 1;
    out.cand_runs = 1;
    out.base_instances = 1;
    out.cand_instances = 1;
    let u = |t: Tot| if per_item { t.3 as f64 } else { 1.0 };
    let (be, bw) = (bt.1 / u(bt), bt.2 / u(bt));
    let (ce, cw) = (ct.1 / u(ct), ct.2 / u(ct));
    out.points((be, bw), (ce, cw));
    let (mut eci, mut tci) = (None, None);
    match (run_rel_var(&b.view, bt.1), run_rel_var(&c.view, ct.1)) {
        (Some((rb, tb)), Some((rc, tc))) if be > 0.0 && ce > 0.0 => {
            let ci = |l: f64, v: f64| {
                let h = 1.96 * v.sqrt();
                [100.0 * ((l - h).exp() - 1.0), 100.0 * ((l + h).exp() - 1.0)]
            };
            let e = ci((ce / be).ln(), rb + rc);
            out.ci_low_pct = Some(e[0]);
            out.ci_high_pct = Some(e[1]);
            eci = Some(e);
            if bw > 0.0 && cw > 0.0 {
                let t = ci((cw / bw).ln(), tb + tc);
                out.time_ci_low_pct = Some(t[0]);
                out.time_ci_high_pct = Some(t[1]);
                tci = Some(t);
            }
            out.method = "instances";
        }
        _ => {
            out.note = Some(
                "one run per side without step records: verdict on totals only (no noise estimate)"
                    .into(),
            )
        }
    }
    finish(&mut out, (eci, tci), rules, None);
    out
}

/// The name of the run-level row.
const RUN_ROW: &str = "(run)";

#[derive(Debug, serde::Serialize)]
struct Report {
    verdict: Verdict,
    threshold_pct: f64,
    min_share_pct: f64,
    /// What can fail the gate: `energy`, `time`.
    gate: Vec<&'static str>,
    /// `runs` (several runs on a side: Welch t over runs) or `instances` (one run per side).
    method: &'static str,
    headline: String,
    /// One run: that run. Several: the side as a whole (paths and ids joined, the mean host
    /// share); each run is in `base_runs` / `candidate_runs`.
    base: RunInfo,
    candidate: RunInfo,
    base_runs: Vec<RunInfo>,
    candidate_runs: Vec<RunInfo>,
    /// The host shares differ a lot ([`shares_differ`]); the warning is in `warnings` too.
    shares_differ: bool,
    warnings: Vec<String>,
    steps: Vec<StepCmp>,
}

/// The host share line of the text and Markdown outputs.
fn share_line(r: &Report) -> String {
    let mut line = format!(
        "base {} vs candidate {}",
        share_words(&r.base),
        share_words(&r.candidate)
    );
    if r.shares_differ {
        line.push_str(
            " -- WARNING: the shares differ a lot; energy differences may come from neighbours, \
             not the code",
        );
    }
    line
}

#[derive(Debug, Clone, serde::Serialize)]
struct RunInfo {
    path: String,
    job: String,
    run_id: String,
    complete: bool,
    j_per_item: Option<f64>,
    /// `measured` or `estimated` (`mixed` for a side whose runs differ): every energy figure of
    /// this run is of this kind.
    energy_kind: &'static str,
    /// The kind with how the energy was obtained (`measured (counter x cpu-time share)`:
    /// `run_end.method`, else derived from the sources); the distinct ones joined with `; `
    /// for a side whose runs differ.
    energy_method: String,
    /// `run_start.scope`: `process`, `process-tree` or `host` (`mixed` for a side whose runs
    /// differ).
    scope: &'static str,
    /// `run_end.host_energy_j`, J; `null` when missing or 0 (and for a run without `run_end`).
    host_energy_j: Option<f64>,
    /// The run's energy / the host's energy; `null` ("n/a") when the host's is unknown.
    host_share: Option<f64>,
}

/// Host shares differ "a lot" when they are this far apart (absolute, 0..1)...
pub const SHARE_MAX_DIFF: f64 = 0.15;
/// ...or when the larger is more than this many times the smaller.
pub const SHARE_MAX_RATIO: f64 = 1.5;

/// Whether two runs' host shares differ enough that an energy difference may come from the
/// other processes on the host (neighbours) rather than from the code: absolute difference above
/// [`SHARE_MAX_DIFF`] or ratio above [`SHARE_MAX_RATIO`]. `false` when either is unknown.
pub fn shares_differ(base: Option<f64>, cand: Option<f64>) -> bool {
    let (Some(b), Some(c)) = (base, cand) else {
        return false;
    };
    let (lo, hi) = (b.min(c), b.max(c));
    hi - lo > SHARE_MAX_DIFF || (lo > 0.0 && hi / lo > SHARE_MAX_RATIO) || (lo <= 0.0 && hi > 0.0)
}

fn fmt_share(s: Option<f64>) -> String {
    s.map_or("n/a".into(), |s| format!("{s:.2}"))
}

/// `0.49 (host 232.7 J, scope process)`, or `n/a (...)`.
fn share_words(r: &RunInfo) -> String {
    let host = r.host_energy_j.map_or("host energy n/a".into(), |j| {
        format!("host {}", energy_fine(j))
    });
    format!("{} ({host}, scope {})", fmt_share(r.host_share), r.scope)
}

/// How the two sides' energy was obtained, in words: `estimated (model x cpu-time share)`
/// when both agree. The method is always said, so a counter times a share never reads as
/// `measured` alone.
fn kinds(r: &Report) -> String {
    if r.base.energy_method == r.candidate.energy_method {
        r.base.energy_method.clone()
    } else {
        format!(
            "{} (base) vs {} (candidate)",
            r.base.energy_method, r.candidate.energy_method
        )
    }
}

fn run_info(v: &RunView) -> RunInfo {
    RunInfo {
        path: v.file.path.display().to_string(),
        job: v.job.to_owned(),
        run_id: v.run_id.to_owned(),
        complete: v.is_complete(),
        j_per_item: v.per_item().map(f64::from),
        energy_kind: v.kind.as_str(),
        energy_method: v.kind_and_method(),
        scope: v.scope_str(),
        host_energy_j: v.host_energy.map(f64::from),
        host_share: v.host_share(),
    }
}

/// A side of several runs as one [`RunInfo`]: paths, ids and distinct jobs joined; complete
/// when every run is; means of the known per-item energy, host energy and host share; a kind or
/// scope the runs do not share is `mixed`.
fn side_info(infos: &[RunInfo]) -> RunInfo {
    if infos.len() == 1 {
        return infos[0].clone();
    }
    let join = |f: fn(&RunInfo) -> &str, dedup: bool| {
        let mut v: Vec<&str> = infos.iter().map(f).collect();
        if dedup {
            v.sort();
            v.dedup();
        }
        v.join(", ")
    };
    let mean = |f: fn(&RunInfo) -> Option<f64>| {
        let v: Vec<f64> = infos.iter().filter_map(f).collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    let same_kind = infos.iter().all(|i| i.energy_kind == infos[0].energy_kind);
    let mut methods: Vec<&str> = Vec::new();
    for i in infos {
        if !methods.contains(&i.energy_method.as_str()) {
            methods.push(&i.energy_method);
        }
    }
    let same_scope = infos.iter().all(|i| i.scope == infos[0].scope);
    RunInfo {
        path: join(|i| &i.path, false),
        job: join(|i| &i.job, true),
        run_id: join(|i| &i.run_id, false),
        complete: infos.iter().all(|i| i.complete),
        j_per_item: mean(|i| i.j_per_item),
        energy_kind: if same_kind {
            infos[0].energy_kind
        } else {
            "mixed"
        },
        energy_method: methods.join("; "),
        scope: if same_scope { infos[0].scope } else { "mixed" },
        host_energy_j: mean(|i| i.host_energy_j),
        host_share: mean(|i| i.host_share),
    }
}

fn build(base: &[RunFile], cand: &[RunFile], rules: Rules) -> Report {
    let b: Vec<RunData<'_>> = base.iter().map(RunData::new).collect();
    let c: Vec<RunData<'_>> = cand.iter().map(RunData::new).collect();
    let pair = b.len() == 1 && c.len() == 1;
    let mut names: Vec<String> = b
        .iter()
        .chain(&c)
        .flat_map(|r| r.totals.keys().cloned())
        .collect();
    names.sort();
    names.dedup();
    let mut steps = Vec::with_capacity(names.len() + 1);
    // The run as a whole first.
    let wb: Vec<Tot> = b.iter().map(|r| r.whole).collect();
    let wc: Vec<Tot> = c.iter().map(|r| r.whole).collect();
    steps.push(if pair {
        compare_whole_pair(&b[0], &c[0], rules)
    } else {
        compare_runs(RUN_ROW, &wb, &wc, true, (b.len(), c.len()), rules, None)
    });
    for name in &names {
        let holders = |side: &[RunData<'_>]| -> Vec<usize> {
            (0..side.len())
                .filter(|&i| side[i].totals.contains_key(name))
                .collect()
        };
        let (hb, hc) = (holders(&b), holders(&c));
        let tots = |side: &[RunData<'_>], h: &[usize]| -> Vec<Tot> {
            h.iter().map(|&i| side[i].totals[name]).collect()
        };
        let (tb, tc) = (tots(&b, &hb), tots(&c, &hc));
        let row = if hb.is_empty() || hc.is_empty() {
            one_sided(name, &tb, &tc, false)
        } else if hb.len() == 1 && hc.len() == 1 {
            let mut row = compare_step(name, &b[hb[0]], &c[hc[0]], rules);
            if !pair {
                row.add_note(format!(
                    "in one run per side (of {} base and {} candidate): instance-level interval",
                    b.len(),
                    c.len()
                ));
            }
            row
        } else {
            // The step's largest share of its side's energy (pooled over the side's runs).
            let side_share = |side: &[RunData<'_>], t: &[Tot]| {
                let e: f64 = side.iter().map(|r| r.whole.1).sum();
                if e > 0.0 {
                    t.iter().map(|t| t.1).sum::<f64>() / e
                } else {
                    0.0
                }
            };
            let largest = side_share(&b, &tb).max(side_share(&c, &tc));
            compare_runs(
                name,
                &tb,
                &tc,
                false,
                (b.len(), c.len()),
                rules,
                Some(largest),
            )
        };
        steps.push(row);
    }
    let mut warnings = Vec::new();
    let bis: Vec<RunInfo> = b.iter().map(|r| run_info(&r.view)).collect();
    let cis: Vec<RunInfo> = c.iter().map(|r| run_info(&r.view)).collect();
    let mut jobs: Vec<&str> = base
        .iter()
        .chain(cand)
        .map(|r| r.start.job.as_str())
        .collect();
    jobs.sort();
    jobs.dedup();
    if pair && base[0].start.job != cand[0].start.job {
        warnings.push(format!(
            "the runs are of different jobs (`{}` vs `{}`); compared anyway",
            base[0].start.job, cand[0].start.job
        ));
    } else if jobs.len() > 1 {
        let quoted: Vec<String> = jobs.iter().map(|j| format!("`{j}`")).collect();
        warnings.push(format!(
            "the runs are of different jobs ({}); compared anyway",
            quoted.join(", ")
        ));
    }
    // The same file on both sides compares a run with itself.
    let canon = |r: &RunFile| std::fs::canonicalize(&r.path).unwrap_or_else(|_| r.path.clone());
    for r in base {
        if cand.iter().any(|x| canon(x) == canon(r)) {
            warnings.push(format!(
                "{} is both a base and a candidate run",
                r.path.display()
            ));
        }
    }
    let bi = side_info(&bis);
    let ci = side_info(&cis);
    let (bk, ck) = (bi.energy_kind, ci.energy_kind);
    if bk != ck {
        warnings.push(format!(
            "the base run's energy is {bk} and the candidate's {ck}: an energy change mixes the \
             two methods; compare runs measured the same way (carina doctor shows the sources)"
        ));
    }
    let shares_differ = shares_differ(bi.host_share, ci.host_share);
    if shares_differ {
        warnings.push(format!(
            "the runs' shares of the host's energy differ a lot (base {}, candidate {}; the rule: \
             a difference above {SHARE_MAX_DIFF} or a ratio above {SHARE_MAX_RATIO}): a run's \
             energy is its share of the host's, so the energy change may come from the other \
             processes on the host (neighbours), not from the code; compare runs made on an \
             equally loaded host",
            fmt_share(bi.host_share),
            fmt_share(ci.host_share)
        ));
    }
    if bi.scope != ci.scope {
        warnings.push(format!(
            "the runs were measured in different scopes (base {}, candidate {}): their energy \
             covers different things",
            bi.scope, ci.scope
        ));
    }
    // The reader's warnings (a truncated last line, a missing `run_end`: docs of
    // `RunFile::warnings`) name the file; they go wherever the report's warnings go: stderr,
    // and the warnings of the Markdown and JSON documents, never loose lines on stdout.
    for r in base.iter().chain(cand) {
        warnings.extend(r.warnings.iter().cloned());
    }
    let regressed: Vec<&str> = steps
        .iter()
        .filter(|s| s.verdict == Verdict::Regressed)
        .map(|s| s.name.as_str())
        .collect();
    let improved = steps
        .iter()
        .filter(|s| s.verdict == Verdict::Improved)
        .count();
    let verdict = if !regressed.is_empty() {
        Verdict::Regressed
    } else if improved > 0 {
        Verdict::Improved
    } else {
        Verdict::Same
    };
    let gate = rules.gate.names();
    let gate_words = gate.join(" and ");
    let n = steps.len();
    let headline = if regressed.is_empty() {
        format!(
            "No row regressed beyond {}% in {gate_words} per item ({improved} of {n} rows \
             improved)",
            rules.threshold
        )
    } else {
        format!(
            "{} of {n} rows regressed beyond {}% in {gate_words} per item: {}",
            regressed.len(),
            rules.threshold,
            regressed.join(", ")
        )
    };
    Report {
        verdict,
        threshold_pct: rules.threshold,
        min_share_pct: rules.min_share,
        gate,
        method: if pair { "instances" } else { "runs" },
        headline,
        base: bi,
        candidate: ci,
        base_runs: bis,
        candidate_runs: cis,
        shares_differ,
        warnings,
        steps,
    }
}

/// The method in a few words, for the text and Markdown outputs.
fn method_words(r: &Report) -> String {
    if r.method == "instances" {
        "one run per side: run-to-run variance is unknown; the 95% intervals come from the \
         step instances of each run, which do not cover run-to-run noise (give several runs \
         per side, 3 or more, for a CI gate that holds)"
            .into()
    } else {
        format!(
            "{} base vs {} candidate runs: 95% Welch t-intervals over runs (each run's figure \
             per item, on a log scale)",
            r.base_runs.len(),
            r.candidate_runs.len()
        )
    }
}

fn fmt_pct(p: Option<f64>) -> String {
    match p {
        Some(p) if p.is_finite() => format!("{}%", signed(p, 1)),
        Some(_) => "new".into(),
        None => "-".into(),
    }
}

fn fmt_ci(l: Option<f64>, h: Option<f64>) -> String {
    match (l, h) {
        (Some(l), Some(h)) => format!("[{}, {}]%", signed(l, 1), signed(h, 1)),
        _ => "-".into(),
    }
}

fn opt(x: Option<f64>, f: fn(f64) -> String) -> String {
    x.map_or("-".into(), f)
}

fn rows(report: &Report) -> Vec<Vec<String>> {
    report
        .steps
        .iter()
        .map(|s| {
            let unit = match s.unit {
                "item" => "",
                "run" => " (per run)",
                _ => " (per instance)",
            };
            vec![
                format!("{}{unit}", s.name),
                opt(s.base_j_per_item, energy_fine),
                opt(s.cand_j_per_item, energy_fine),
                fmt_pct(s.change_pct),
                fmt_ci(s.ci_low_pct, s.ci_high_pct),
                opt(s.base_s_per_item, duration_fine),
                opt(s.cand_s_per_item, duration_fine),
                fmt_pct(s.time_change_pct),
                fmt_ci(s.time_ci_low_pct, s.time_ci_high_pct),
                s.verdict.to_string(),
                s.note.clone().unwrap_or_default(),
            ]
        })
        .collect()
}

const HEADERS: [&str; 11] = [
    "step",
    "base energy/item",
    "cand energy/item",
    "energy change",
    "95% CI",
    "base time/item",
    "cand time/item",
    "time change",
    "time 95% CI",
    "verdict",
    "note",
];

/// `PATH (job J, run R)` for one run, `N runs (job J): PATH, PATH...` for several.
fn side_words(one: &RunInfo, all: &[RunInfo]) -> String {
    if all.len() == 1 {
        format!("{} (job {}, run {})", one.path, one.job, one.run_id)
    } else {
        format!("{} runs (job {}): {}", all.len(), one.job, one.path)
    }
}

fn render_text(r: &Report) -> String {
    let mut out = format!(
        "base:      {}\ncandidate: {}\nthreshold: {}%\ngate:      {} per item (time per item \
         shown either way)\nmethod:    {}\n\
         energy:    {}; per item in J (uJ, mJ), time per item in s (us, ms)\n\
         host share: {}\n\n",
        escape_control(&side_words(&r.base, &r.base_runs)),
        escape_control(&side_words(&r.candidate, &r.candidate_runs)),
        r.threshold_pct,
        r.gate.join(" and "),
        method_words(r),
        escape_control(&kinds(r)),
        escape_control(&share_line(r))
    );
    // Step names and notes come from the run files: escaped before the widths are measured.
    let cells: Vec<Vec<String>> = rows(r)
        .into_iter()
        .map(|row| {
            row.into_iter()
                .map(|c| escape_control(&c).into_owned())
                .collect()
        })
        .collect();
    out.push_str(&table(&HEADERS, &cells));
    out.push('\n');
    out.push_str(&format!("{}: {}\n", r.verdict, escape_control(&r.headline)));
    out
}

/// Escapes a string from a run file (a step name, run id, job, warning) for Markdown text, so
/// that it renders as itself on GitHub: HTML is neutralised by entities, and the characters that
/// start emphasis, code, links and images, headings, strikethrough, math or a table cell are
/// backslash-escaped. Line breaks become spaces, since one would end the table row; other
/// control characters render as their visible escape (`\x1b`, as on the terminal). The result
/// is not meant for a code span, where neither entities nor escapes are decoded.
fn md_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '#' | '~' | '$' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' | '\t' => out.push(' '),
            // `\x1b` with its backslash escaped, so that it renders as written.
            c if c.is_control() => {
                out.push('\\');
                out.push_str(&escape_control(c.encode_utf8(&mut [0; 4])));
            }
            c => out.push(c),
        }
    }
    out
}

fn render_markdown(r: &Report) -> String {
    // The headline names the regressed steps, so it is escaped as a whole; its own text
    // (figures, `->`) renders the same escaped.
    let mut out = format!(
        "**carina compare: {}.** {}\n\n",
        r.verdict,
        md_escape(&r.headline)
    );
    let ids = |one: &RunInfo, all: &[RunInfo]| {
        if all.len() == 1 {
            md_escape(&one.run_id)
        } else {
            format!("{} runs ({})", all.len(), md_escape(&one.run_id))
        }
    };
    // No code spans around the ids: an escape inside one is shown, not decoded.
    out.push_str(&format!(
        "Base {} vs candidate {} (job {}), threshold {}%, gate {}; {}; energy {}.\n\n",
        ids(&r.base, &r.base_runs),
        ids(&r.candidate, &r.candidate_runs),
        md_escape(&r.candidate.job),
        r.threshold_pct,
        r.gate.join(" and "),
        method_words(r),
        md_escape(&kinds(r))
    ));
    // The scopes come from the run files: escaped like the other quoted strings.
    out.push_str(&format!("Host share: {}.\n\n", md_escape(&share_line(r))));
    out.push_str(&format!("| {} |\n", HEADERS.join(" | ")));
    out.push('|');
    for (i, _) in HEADERS.iter().enumerate() {
        out.push_str(if i == 0 || i >= 9 {
            " --- |"
        } else {
            " ---: |"
        });
    }
    out.push('\n');
    for row in rows(r) {
        // The step name and the note carry text from the run files; the other cells are figures
        // and verdicts written here, left as they are so the raw table stays readable.
        let last = row.len() - 1;
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == 0 || i == last {
                    md_escape(c)
                } else {
                    c.clone()
                }
            })
            .collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    for w in &r.warnings {
        out.push_str(&format!("\nWarning: {}\n", md_escape(w)));
    }
    out
}

/// The base and candidate paths of the command line (see the long help's "Runs").
fn sides(args: &Args) -> Result<(Vec<PathBuf>, Vec<PathBuf>), String> {
    match (args.base.is_empty(), args.candidate.is_empty()) {
        (true, true) if args.runs.len() == 2 => {
            Ok((vec![args.runs[0].clone()], vec![args.runs[1].clone()]))
        }
        (true, true) => Err(format!(
            "give two runs (BASE CANDIDATE), or BASE... --candidate CANDIDATE..., or --base \
             BASE... --candidate CANDIDATE...; got {} path(s) and no --candidate",
            args.runs.len()
        )),
        (false, true) => Err("--base needs --candidate CANDIDATE...".into()),
        (_, false) => {
            let base: Vec<PathBuf> = args.base.iter().chain(&args.runs).cloned().collect();
            if base.is_empty() {
                Err("no base runs: give them before --candidate or after --base".into())
            } else {
                Ok((base, args.candidate.clone()))
            }
        }
    }
}

/// Runs the command.
pub fn run(args: &Args) -> ExitCode {
    let (base_paths, cand_paths) = match sides(args) {
        Ok(s) => s,
        Err(e) => {
            out::message("compare", e);
            return ExitCode::from(2);
        }
    };
    let load = |p: &[PathBuf]| {
        load_runs(p).map_err(|e| {
            out::message("compare", e);
        })
    };
    let (Ok(base), Ok(cand)) = (load(&base_paths), load(&cand_paths)) else {
        return ExitCode::from(2);
    };
    let rules = Rules {
        threshold: args.threshold,
        min_share: args.min_share,
        gate: args.gate,
    };
    let report = build(&base, &cand, rules);
    for w in &report.warnings {
        out::warning("compare", w);
    }
    // The verdict's status stands when the reader closes the pipe early: a gate piped into
    // `head` still fails on a regression.
    let status = if report.verdict == Verdict::Regressed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    };
    match args.format {
        Format::Text => out::print_text("compare", &render_text(&report), status),
        Format::Markdown => out::print_text("compare", &render_markdown(&report), status),
        Format::Json => match serde_json::to_string_pretty(&report) {
            Ok(s) => out::print_json("compare", &(s + "\n"), status),
            Err(e) => {
                out::message("compare", format_args!("cannot encode JSON: {e}"));
                ExitCode::from(1)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds() {
        assert_eq!(parse_threshold("5%"), Ok(5.0));
        assert_eq!(parse_threshold("5"), Ok(5.0));
        assert_eq!(parse_threshold(" 2.5 % "), Ok(2.5));
        assert!(parse_threshold("abc").is_err());
        assert!(parse_threshold("-3").is_err());
        assert!(parse_threshold("nan").is_err());
    }

    #[test]
    fn min_shares() {
        assert_eq!(parse_min_share("1%"), Ok(1.0));
        assert_eq!(parse_min_share("0"), Ok(0.0));
        assert_eq!(parse_min_share("100%"), Ok(100.0));
        assert!(parse_min_share("150%").is_err());
        assert!(parse_min_share("-1").is_err());
        assert!(parse_min_share("nan").is_err());
        assert!(parse_min_share("lots").is_err());
    }

    #[test]
    fn markdown_escape_neutralises_html_and_formatting() {
        assert_eq!(
            md_escape("<script>alert(1)</script>"),
            "&lt;script&gt;alert(1)&lt;/script&gt;"
        );
        assert_eq!(
            md_escape("a|b `c` *d* _e_ [f] #g & \\"),
            "a\\|b \\`c\\` \\*d\\* \\_e\\_ \\[f\\] \\#g &amp; \\\\"
        );
        assert_eq!(md_escape("two\nlines"), "two lines");
        assert_eq!(md_escape("a\x1b[2Jb\x07"), "a\\\\x1b\\[2Jb\\\\x07");
        assert_eq!(md_escape("plain-name 1.5 mJ"), "plain-name 1.5 mJ");
    }

    #[test]
    fn prng_is_deterministic_and_in_range() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        for _ in 0..1000 {
            let x = a.below(13);
            assert_eq!(x, b.below(13));
            assert!(x < 13);
        }
    }

    #[test]
    fn delta_and_bootstrap_agree_roughly() {
        let mk = |scale: f64, n: usize| -> Vec<Sample> {
            let mut r = SplitMix64::new(1);
            (0..n)
                .map(|_| {
                    let noise = (r.next_u64() % 1000) as f64 / 1000.0 - 0.5;
                    Sample {
                        energy: scale * (1.0 + 0.2 * noise) * 10.0,
                        time: 1.0,
                        units: 10.0,
                    }
                })
                .collect()
        };
        let b = mk(1.0, 400);
        let c = mk(1.1, 400);
        let (e1, _) = interval(&b, &c, 3);
        let (e2, _) = delta_interval(&b, &c);
        assert!((e1[0] - e2[0]).abs() < 1.5, "{e1:?} {e2:?}");
        assert!((e1[1] - e2[1]).abs() < 1.5, "{e1:?} {e2:?}");
    }
}
