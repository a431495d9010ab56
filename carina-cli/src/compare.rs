//! `carina compare`: per-step energy and time per item between two runs, with a noise-aware
//! verdict. Exit status: 0 when nothing regressed beyond the threshold, 1 when something did,
//! 2 on bad input.

use crate::load::load_run;
use crate::summary::{quantile_sorted, step_rows, steps_in_span, table};
use crate::units::sig;
use carina_core::reader::RunFile;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

const LONG_ABOUT: &str = "Compare per-step energy per item and time per item between a \
base run and a candidate run, and say for each step whether it regressed, improved or stayed \
the same.\n\n\
Method. For every step name, each `step` record is one sample (its energy, duration and items). \
The figure compared is the ratio of totals: sum of inclusive energy / sum of items (and sum of \
durations / sum of items), i.e. the J per item a report shows. Its noise is estimated by a \
bootstrap: the instances of each run are resampled with replacement 2000 times (a fixed-seed \
PRNG, so the output is reproducible) and the 2.5th and 97.5th percentiles of the relative change \
give a 95 % confidence interval; with more than 5000 instances in a run a delta-method normal \
interval on the log ratio is used instead. Steps whose items are 0 are compared per instance.\n\n\
A step regressed when its energy per item or its time per item rose by more than the threshold \
AND the 95 % interval of that change lies above zero (the change is distinguishable from the \
run-to-run noise of its instances); improved likewise for a fall. A step with fewer than 5 \
instances in either run, or with summaries only (`steps: \"summary\"`), is judged on its totals \
alone (change beyond the threshold), and the output says \"no instance data: verdict on totals \
only\".\n\n\
A step whose inclusive energy is below --min-share of its run's energy in both runs (default \
1 %) is still compared and shown, but its verdict reads \"minor\" and it cannot fail the gate: \
a 1 ms set-up step that moves by 10 % is noise for a CI gate, not a regression. Use \
--min-share 0 to gate every step.\n\n\
Host share. Each run's share of the host's energy (run_end.energy_j / run_end.host_energy_j; \
n/a when host_energy_j is missing or 0, or the run has no run_end), the host's energy and the \
scope (run_start.scope) are shown. In process scope a run's energy is its share of the \
host's, so the same work gets more joules on a quiet host than on a busy one (114 J at a 0.49 \
share, 172 J at 0.90): when the two shares differ by more than 0.15, or the larger is more \
than 1.5 times the smaller, a warning says that energy differences may come from the \
neighbours, not the code. Different scopes are warned too.\n\n\
Runs of different jobs are compared with a warning. Exit status: 0 when nothing regressed, \
1 when a step regressed, 2 on bad input (unreadable file, a threshold outside 0..1000 % or a \
--min-share outside 0..100 %). Warnings (different jobs, and the run files' own: a missing \
run_end, a truncated last line) are printed on stderr and listed in the Markdown and JSON \
output; Markdown output escapes the step names, run ids, jobs and warnings it quotes.";

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

/// Arguments of `carina compare`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = LONG_ABOUT)]
pub struct Args {
    /// The base run file (before the change).
    pub base: PathBuf,
    /// The candidate run file (after the change).
    pub candidate: PathBuf,
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

/// Per-step comparison.
#[derive(Debug, Clone, serde::Serialize)]
struct StepCmp {
    name: String,
    /// `item` or `instance`: what the per-unit figures are divided by.
    unit: &'static str,
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
    energy_verdict: &'static str,
    time_verdict: &'static str,
    verdict: &'static str,
    note: Option<String>,
}

/// Per-name instance samples and totals of one run.
struct Side {
    samples: BTreeMap<String, Vec<Sample>>,
    totals: BTreeMap<String, (u64, f64, f64, u64)>, // count, energy, wall, items
    /// The run's energy, J (the denominator of a step's share).
    run_energy: f64,
}

fn side(run: &RunFile) -> Side {
    let mut samples: BTreeMap<String, Vec<Sample>> = BTreeMap::new();
    // A crashed run's step records up to its cut, as in its totals (`summary::cut_s`).
    for s in steps_in_span(run) {
        samples.entry(s.name.to_string()).or_default().push(Sample {
            energy: s.energy_j,
            time: (s.end_s - s.start_s).max(0.0),
            units: s.items as f64,
        });
    }
    let totals = step_rows(run)
        .into_iter()
        .map(|r| (r.name, (r.count, r.energy_j, r.wall_s, r.items)))
        .collect();
    Side {
        samples,
        totals,
        run_energy: crate::summary::headline(run).energy_j,
    }
}

fn verdict_of(change: f64, ci: Option<[f64; 2]>, threshold: f64) -> &'static str {
    if !change.is_finite() {
        return if change > 0.0 { "regressed" } else { "same" };
    }
    let (up, down) = match ci {
        Some([l, h]) => (l > 0.0, h < 0.0),
        None => (true, true),
    };
    if change > threshold && up {
        "regressed"
    } else if change < -threshold && down {
        "improved"
    } else {
        "same"
    }
}

/// The step's inclusive energy as a fraction of its run's energy (0 when the run has none).
fn share(side: &Side, t: Option<(u64, f64, f64, u64)>) -> f64 {
    match t {
        Some(t) if side.run_energy > 0.0 => t.1 / side.run_energy,
        _ => 0.0,
    }
}

fn compare_step(name: &str, b: &Side, c: &Side, threshold: f64, min_share: f64) -> StepCmp {
    let bt = b.totals.get(name).copied();
    let ct = c.totals.get(name).copied();
    let mut out = StepCmp {
        name: name.to_owned(),
        unit: "item",
        base_j_per_item: None,
        cand_j_per_item: None,
        change_pct: None,
        ci_low_pct: None,
        ci_high_pct: None,
        base_s_per_item: None,
        cand_s_per_item: None,
        time_change_pct: None,
        time_ci_low_pct: None,
        time_ci_high_pct: None,
        base_instances: bt.map_or(0, |t| t.0),
        cand_instances: ct.map_or(0, |t| t.0),
        energy_verdict: "same",
        time_verdict: "same",
        verdict: "same",
        note: None,
    };
    let (Some(bt), Some(ct)) = (bt, ct) else {
        let (verdict, note) = if bt.is_none() {
            ("new", "only in the candidate")
        } else {
            ("gone", "only in the base")
        };
        out.verdict = verdict;
        out.energy_verdict = verdict;
        out.time_verdict = verdict;
        out.note = Some(note.into());
        let per = |t: (u64, f64, f64, u64)| {
            let u = if t.3 > 0 { t.3 } else { t.0.max(1) } as f64;
            (t.1 / u, t.2 / u)
        };
        if let Some(t) = bt {
            out.base_j_per_item = Some(per(t).0);
            out.base_s_per_item = Some(per(t).1);
        }
        if let Some(t) = ct {
            out.cand_j_per_item = Some(per(t).0);
            out.cand_s_per_item = Some(per(t).1);
        }
        if bt.map_or(ct.is_some_and(|t| t.3 == 0), |t| t.3 == 0) {
            out.unit = "instance";
        }
        return out;
    };
    let per_item = bt.3 > 0 && ct.3 > 0;
    if !per_item {
        out.unit = "instance";
    }
    let unit_of = |t: (u64, f64, f64, u64)| if per_item { t.3 as f64 } else { t.0 as f64 };
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
    let bs = to_samples(b.samples.get(name));
    let cs = to_samples(c.samples.get(name));
    // Point figures: totals from the summaries (or step records), per item or per instance.
    let (be, bw) = (bt.1 / unit_of(bt), bt.2 / unit_of(bt));
    let (ce, cw) = (ct.1 / unit_of(ct), ct.2 / unit_of(ct));
    out.base_j_per_item = Some(be);
    out.cand_j_per_item = Some(ce);
    out.base_s_per_item = Some(bw);
    out.cand_s_per_item = Some(cw);
    let de = rel(be, ce);
    let dt = rel(bw, cw);
    out.change_pct = Some(de);
    out.time_change_pct = Some(dt);
    let (eci, tci) = if bs.len() >= MIN_INSTANCES && cs.len() >= MIN_INSTANCES {
        let (e, t) = interval(&bs, &cs, fnv1a(name));
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
    out.energy_verdict = verdict_of(de, eci, threshold);
    out.time_verdict = verdict_of(dt, tci, threshold);
    out.verdict = match (out.energy_verdict, out.time_verdict) {
        ("regressed", _) | (_, "regressed") => "regressed",
        ("improved", _) | (_, "improved") => "improved",
        _ => "same",
    };
    let largest = share(b, Some(bt)).max(share(c, Some(ct)));
    if matches!(out.verdict, "regressed" | "improved") && largest * 100.0 < min_share {
        out.verdict = "minor";
        let why = format!(
            "{:.2}% of run energy, below --min-share {min_share}%: not gated",
            largest * 100.0
        );
        out.note = Some(match out.note.take() {
            Some(n) => format!("{n}; {why}"),
            None => why,
        });
    }
    out
}

#[derive(Debug, serde::Serialize)]
struct Report {
    verdict: &'static str,
    threshold_pct: f64,
    min_share_pct: f64,
    headline: String,
    base: RunInfo,
    candidate: RunInfo,
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

#[derive(Debug, serde::Serialize)]
struct RunInfo {
    path: String,
    job: String,
    run_id: String,
    complete: bool,
    j_per_item: Option<f64>,
    /// `measured` or `estimated`: every energy figure of this run is of this kind.
    energy_kind: &'static str,
    /// `run_start.scope`: `process`, `process-tree` or `host`.
    scope: String,
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
        format!("host {}", fmt_energy(j))
    });
    format!("{} ({host}, scope {})", fmt_share(r.host_share), r.scope)
}

fn kind_word(k: carina_core::record::EnergyKind) -> &'static str {
    match k {
        carina_core::record::EnergyKind::Measured => "measured",
        carina_core::record::EnergyKind::Estimated => "estimated",
    }
}

/// How the two runs' energy was obtained, in words: `estimated` when both agree.
fn kinds(r: &Report) -> String {
    if r.base.energy_kind == r.candidate.energy_kind {
        r.base.energy_kind.to_owned()
    } else {
        format!(
            "{} (base) vs {} (candidate)",
            r.base.energy_kind, r.candidate.energy_kind
        )
    }
}

fn run_info(run: &RunFile) -> RunInfo {
    let h = crate::summary::headline(run);
    RunInfo {
        path: run.path.display().to_string(),
        job: run.start.job.clone(),
        run_id: run.start.run_id.clone(),
        complete: h.complete,
        j_per_item: (h.items > 0).then(|| h.energy_j / h.items as f64),
        energy_kind: kind_word(h.kind),
        scope: if run.start.scope.is_empty() {
            "-".into()
        } else {
            run.start.scope.clone()
        },
        host_energy_j: h.host_energy_j,
        host_share: h.host_share(),
    }
}

fn build(base: &RunFile, cand: &RunFile, threshold: f64, min_share: f64) -> Report {
    let b = side(base);
    let c = side(cand);
    let mut names: Vec<String> = b.totals.keys().chain(c.totals.keys()).cloned().collect();
    names.sort();
    names.dedup();
    let steps: Vec<StepCmp> = names
        .iter()
        .map(|n| compare_step(n, &b, &c, threshold, min_share))
        .collect();
    let mut warnings = Vec::new();
    if base.start.job != cand.start.job {
        warnings.push(format!(
            "the runs are of different jobs (`{}` vs `{}`); compared anyway",
            base.start.job, cand.start.job
        ));
    }
    let bi = run_info(base);
    let ci = run_info(cand);
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
    for r in [base, cand] {
        warnings.extend(r.warnings.iter().cloned());
    }
    let regressed: Vec<&str> = steps
        .iter()
        .filter(|s| s.verdict == "regressed")
        .map(|s| s.name.as_str())
        .collect();
    let improved = steps.iter().filter(|s| s.verdict == "improved").count();
    let verdict = if !regressed.is_empty() {
        "regressed"
    } else if improved > 0 {
        "improved"
    } else {
        "same"
    };
    let total = match (bi.j_per_item, ci.j_per_item) {
        (Some(x), Some(y)) => format!(
            "; run energy per item {} -> {} ({})",
            fmt_energy(x),
            fmt_energy(y),
            fmt_pct(Some(rel(x, y)))
        ),
        _ => String::new(),
    };
    let headline = if regressed.is_empty() {
        format!(
            "No step regressed beyond {}% ({} of {} steps improved){total}",
            threshold,
            improved,
            steps.len()
        )
    } else {
        format!(
            "{} of {} steps regressed beyond {}%: {}{total}",
            regressed.len(),
            steps.len(),
            threshold,
            regressed.join(", ")
        )
    };
    Report {
        verdict,
        threshold_pct: threshold,
        min_share_pct: min_share,
        headline,
        base: bi,
        candidate: ci,
        shares_differ,
        warnings,
        steps,
    }
}

fn fmt_energy(j: f64) -> String {
    let a = j.abs();
    if a == 0.0 {
        "0 J".into()
    } else if a < 1e-3 {
        format!("{} uJ", sig(j * 1e6))
    } else if a < 1.0 {
        format!("{} mJ", sig(j * 1e3))
    } else {
        crate::units::energy(j)
    }
}

fn fmt_time(s: f64) -> String {
    let a = s.abs();
    if a == 0.0 {
        "0 s".into()
    } else if a < 1e-3 {
        format!("{} us", sig(s * 1e6))
    } else if a < 1.0 {
        format!("{} ms", sig(s * 1e3))
    } else {
        crate::units::duration(s)
    }
}

fn fmt_pct(p: Option<f64>) -> String {
    match p {
        Some(p) if p.is_finite() => format!("{:+.1}%", p + 0.0).replace("-0.0%", "+0.0%"),
        Some(_) => "new".into(),
        None => "-".into(),
    }
}

fn fmt_ci(l: Option<f64>, h: Option<f64>) -> String {
    match (l, h) {
        (Some(l), Some(h)) => format!("[{l:+.1}, {h:+.1}]%").replace("-0.0", "+0.0"),
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
            let unit = if s.unit == "item" {
                ""
            } else {
                " (per instance)"
            };
            vec![
                format!("{}{unit}", s.name),
                opt(s.base_j_per_item, fmt_energy),
                opt(s.cand_j_per_item, fmt_energy),
                fmt_pct(s.change_pct),
                fmt_ci(s.ci_low_pct, s.ci_high_pct),
                opt(s.base_s_per_item, fmt_time),
                opt(s.cand_s_per_item, fmt_time),
                fmt_pct(s.time_change_pct),
                fmt_ci(s.time_ci_low_pct, s.time_ci_high_pct),
                s.verdict.to_owned(),
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

fn render_text(r: &Report) -> String {
    let mut out = format!(
        "base:      {} (job {}, run {})\ncandidate: {} (job {}, run {})\nthreshold: {}%\n\
         energy:    {}; per item in J (uJ, mJ), time per item in s (us, ms)\n\
         host share: {}\n\n",
        r.base.path,
        r.base.job,
        r.base.run_id,
        r.candidate.path,
        r.candidate.job,
        r.candidate.run_id,
        r.threshold_pct,
        kinds(r),
        share_line(r)
    );
    out.push_str(&table(&HEADERS, &rows(r)));
    out.push('\n');
    out.push_str(&format!("{}: {}\n", r.verdict, r.headline));
    out
}

/// Escapes a string from a run file (a step name, run id, job, warning) for Markdown text, so
/// that it renders as itself on GitHub: HTML is neutralised by entities, and the characters that
/// start emphasis, code, links and images, headings, strikethrough, math or a table cell are
/// backslash-escaped. Line breaks become spaces, since one would end the table row. The result is
/// not meant for a code span, where neither entities nor escapes are decoded.
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
            c if c.is_control() => {}
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
    // No code spans around the ids: an escape inside one is shown, not decoded.
    out.push_str(&format!(
        "Base {} vs candidate {} (job {}), threshold {}%, 95% bootstrap intervals; energy {}.\n\n",
        md_escape(&r.base.run_id),
        md_escape(&r.candidate.run_id),
        md_escape(&r.candidate.job),
        r.threshold_pct,
        kinds(r)
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

/// Runs the command.
pub fn run(args: &Args) -> ExitCode {
    let load = |p: &std::path::Path| {
        load_run(p).map_err(|e| {
            eprintln!("carina compare: {e}");
        })
    };
    let (Ok(base), Ok(cand)) = (load(&args.base), load(&args.candidate)) else {
        return ExitCode::from(2);
    };
    let report = build(&base, &cand, args.threshold, args.min_share);
    for w in &report.warnings {
        eprintln!("carina compare: warning: {w}");
    }
    let text = match args.format {
        Format::Text => render_text(&report),
        Format::Markdown => render_markdown(&report),
        Format::Json => match serde_json::to_string_pretty(&report) {
            Ok(s) => s + "\n",
            Err(e) => {
                eprintln!("carina compare: cannot encode JSON: {e}");
                return ExitCode::from(1);
            }
        },
    };
    print!("{text}");
    if report.verdict == "regressed" {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
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
