//! Building the comparison of `carina compare`: the runs of each side read once, then one row
//! per step name and one for the run as a whole, each judged by [`super::verdict`] on the
//! intervals of [`super::stats`]; the sides described; the warnings gathered.

use super::stats::{
    MIN_INSTANCES, PRIOR_DF, Prior, Sample, fnv1a, instance_se, log_interval, mean_var, rel,
    run_noise_var, runs_interval, t_two_sided,
};
use super::verdict::{Rules, SHARE_MAX_DIFF, SHARE_MAX_RATIO, Verdict, judge, shares_differ};
use crate::view::{RunView, StepRow, wall_of};
use carina_runtime::reader::RunFile;
use std::cell::OnceCell;
use std::collections::BTreeMap;

/// Per-step comparison (a step name, or the `(run)` row).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub(super) struct StepCmp {
    pub(super) name: String,
    /// `item`, `instance` or `run`: what the per-unit figures are divided by.
    pub(super) unit: &'static str,
    /// `runs` (a t-interval over runs), `instances` (one run per side: step instances), or `totals`
    /// (no noise estimate: the change alone decides).
    pub(super) method: &'static str,
    /// Runs of each side that hold this step.
    pub(super) base_runs: usize,
    pub(super) cand_runs: usize,
    pub(super) base_j_per_item: Option<f64>,
    pub(super) cand_j_per_item: Option<f64>,
    pub(super) change_pct: Option<f64>,
    pub(super) ci_low_pct: Option<f64>,
    pub(super) ci_high_pct: Option<f64>,
    pub(super) base_s_per_item: Option<f64>,
    pub(super) cand_s_per_item: Option<f64>,
    pub(super) time_change_pct: Option<f64>,
    pub(super) time_ci_low_pct: Option<f64>,
    pub(super) time_ci_high_pct: Option<f64>,
    pub(super) base_instances: u64,
    pub(super) cand_instances: u64,
    pub(super) energy_verdict: Verdict,
    pub(super) time_verdict: Verdict,
    pub(super) verdict: Verdict,
    pub(super) note: Option<String>,
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

/// Sets the row's verdicts from its changes and intervals ([`judge`]), and adds its notes.
fn finish(
    out: &mut StepCmp,
    intervals: (Option<[f64; 2]>, Option<[f64; 2]>),
    rules: Rules,
    largest: Option<f64>,
) {
    let j = judge(
        out.change_pct.zip(out.time_change_pct),
        intervals,
        rules,
        largest,
    );
    (out.energy_verdict, out.time_verdict, out.verdict) = (j.energy, j.time, j.verdict);
    for n in j.notes {
        out.add_note(n);
    }
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
    // The run-to-run noise a row of this size sees, from the mean of its two shares.
    let noise = 2.0 * run_noise_var(rules.run_noise / 100.0, (b.share(bt) + c.share(ct)) / 2.0);
    let z = t_two_sided(rules.alpha, f64::INFINITY);
    let (eci, tci) = if bs.len() >= MIN_INSTANCES && cs.len() >= MIN_INSTANCES {
        let (se_e, se_t) = instance_se(&bs, &cs, fnv1a(name));
        let ci = |base: f64, cand: f64, se: f64| {
            (base > 0.0 && cand > 0.0 && se.is_finite())
                .then(|| log_interval((cand / base).ln(), (se * se + noise).sqrt(), z))
        };
        let (e, t) = (ci(be, ce, se_e), ci(bw, cw, se_t));
        out.method = "instances";
        (out.ci_low_pct, out.ci_high_pct) = (e.map(|e| e[0]), e.map(|e| e[1]));
        (out.time_ci_low_pct, out.time_ci_high_pct) = (t.map(|t| t[0]), t.map(|t| t[1]));
        if e.is_none() {
            // A zero figure has no log ratio: the change alone decides, and the row says so.
            out.note =
                Some("a zero energy figure: no interval, verdict on the change alone".into());
        }
        (e, t)
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

/// A row compared over runs: each run that holds it gives one figure per unit. `share`: the
/// row's share of its side's energy, the mean of the two sides' (1 for the `(run)` row), which
/// sets the prior of its run-to-run noise ([`run_noise_var`]).
#[allow(clippy::too_many_arguments)]
fn compare_runs(
    name: &str,
    b: &[Tot],
    c: &[Tot],
    unit_run: bool,
    (nb_all, nc_all): (usize, usize),
    rules: Rules,
    largest: Option<f64>,
    share: f64,
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
    let prior = Prior {
        sd: run_noise_var(rules.run_noise / 100.0, share).sqrt(),
        df: if rules.run_noise > 0.0 { PRIOR_DF } else { 0.0 },
    };
    let judged = |b: &[f64], c: &[f64]| match runs_interval(b, c, rules.alpha, prior) {
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
            // The instances' variance, and the whole run's assumed noise on each side.
            let noise = 2.0 * run_noise_var(rules.run_noise / 100.0, 1.0);
            let z = t_two_sided(rules.alpha, f64::INFINITY);
            let e = log_interval((ce / be).ln(), (rb + rc + noise).sqrt(), z);
            out.ci_low_pct = Some(e[0]);
            out.ci_high_pct = Some(e[1]);
            eci = Some(e);
            if bw > 0.0 && cw > 0.0 {
                let t = log_interval((cw / bw).ln(), (tb + tc + noise).sqrt(), z);
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

/// A confidence in %, from the chance of missing, to 4 decimals.
fn pct(alpha: f64) -> f64 {
    ((1.0 - alpha) * 1e6).round() / 1e4
}

/// The name of the run-level row.
const RUN_ROW: &str = "(run)";

/// The comparison as a whole: what every output renders, and the JSON document as it is.
#[derive(Debug, serde::Serialize)]
pub(super) struct Report {
    pub(super) verdict: Verdict,
    pub(super) threshold_pct: f64,
    pub(super) min_share_pct: f64,
    /// --run-noise, %: the assumed run-to-run noise of a side with one run.
    pub(super) run_noise_pct: f64,
    /// The intervals that can fail the gate: gated figures x (the run's row + the gated steps).
    pub(super) gated_intervals: usize,
    /// The confidence of the `(run)` row's intervals, % (97.5 with gated steps, else 95, over
    /// the gated figures).
    pub(super) run_confidence_pct: f64,
    /// The confidence of each step's intervals, %: the other 2.5 % shared by the gated steps.
    pub(super) step_confidence_pct: f64,
    /// What can fail the gate: `energy`, `time`.
    pub(super) gate: Vec<&'static str>,
    /// `runs` (several runs on a side: a t-interval over runs) or `instances` (one run per side).
    pub(super) method: &'static str,
    pub(super) headline: String,
    /// One run: that run. Several: the side as a whole (paths and ids joined, the mean host
    /// share); each run is in `base_runs` / `candidate_runs`.
    pub(super) base: RunInfo,
    pub(super) candidate: RunInfo,
    pub(super) base_runs: Vec<RunInfo>,
    pub(super) candidate_runs: Vec<RunInfo>,
    /// The host shares differ a lot ([`shares_differ`]); the warning is in `warnings` too.
    pub(super) shares_differ: bool,
    pub(super) warnings: Vec<String>,
    pub(super) steps: Vec<StepCmp>,
}

/// One run, or one side of runs, as the outputs describe it.
#[derive(Debug, Clone, serde::Serialize)]
pub(super) struct RunInfo {
    pub(super) path: String,
    pub(super) job: String,
    pub(super) run_id: String,
    pub(super) complete: bool,
    pub(super) j_per_item: Option<f64>,
    /// `measured` or `estimated` (`mixed` for a side whose runs differ): every energy figure of
    /// this run is of this kind.
    pub(super) energy_kind: &'static str,
    /// The kind with how the energy was obtained (`measured (counter x cpu-time share)`:
    /// `run_end.method`, else derived from the sources); the distinct ones joined with `; `
    /// for a side whose runs differ.
    pub(super) energy_method: String,
    /// `run_start.scope`: `process`, `process-tree` or `host` (`mixed` for a side whose runs
    /// differ).
    pub(super) scope: &'static str,
    /// `run_end.host_energy_j`, J; `null` when missing or 0 (and for a run without `run_end`).
    pub(super) host_energy_j: Option<f64>,
    /// The run's energy / the host's energy; `null` ("n/a") when the host's is unknown.
    pub(super) host_share: Option<f64>,
}

/// A host share with two decimals, or `n/a`.
pub(super) fn fmt_share(s: Option<f64>) -> String {
    s.map_or("n/a".into(), |s| format!("{s:.2}"))
}

/// What the outputs say about one run.
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

/// Compares the base runs with the candidate runs under `rules`.
pub(super) fn build(base: &[RunFile], cand: &[RunFile], rules: Rules) -> Report {
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
    // Per name: the runs of each side that hold it, their totals, and the step's largest and
    // mean share of its side's energy (one run per side: of its run's).
    struct Holders {
        hb: Vec<usize>,
        hc: Vec<usize>,
        tb: Vec<Tot>,
        tc: Vec<Tot>,
        largest: f64,
        mean: f64,
    }
    let held: Vec<Holders> = names
        .iter()
        .map(|name| {
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
            let (sb, sc) = if hb.len() == 1 && hc.len() == 1 {
                (b[hb[0]].share(tb[0]), c[hc[0]].share(tc[0]))
            } else {
                // Pooled over the side's runs.
                let side_share = |side: &[RunData<'_>], t: &[Tot]| {
                    let e: f64 = side.iter().map(|r| r.whole.1).sum();
                    if e > 0.0 {
                        t.iter().map(|t| t.1).sum::<f64>() / e
                    } else {
                        0.0
                    }
                };
                (side_share(&b, &tb), side_share(&c, &tc))
            };
            Holders {
                hb,
                hc,
                tb,
                tc,
                largest: sb.max(sc),
                mean: (sb + sc) / 2.0,
            }
        })
        .collect();
    // The intervals that can fail the gate share a 5 % chance of missing (weighted Bonferroni):
    // half for the run's row, half split between the steps on both sides at or above
    // --min-share; each gated figure (energy, time) gets its part. No gated step: all of it to
    // the run's row.
    let gated_steps = held
        .iter()
        .filter(|h| !h.hb.is_empty() && !h.hc.is_empty() && h.largest * 100.0 >= rules.min_share)
        .count();
    let figures = rules.gate.names().len().max(1) as f64;
    let (alpha_run, alpha_step) = if gated_steps == 0 {
        (0.05 / figures, 0.05 / figures)
    } else {
        (0.025 / figures, 0.025 / (figures * gated_steps as f64))
    };
    let run_rules = Rules {
        alpha: alpha_run,
        ..rules
    };
    let rules = Rules {
        alpha: alpha_step,
        ..rules
    };
    let mut steps = Vec::with_capacity(names.len() + 1);
    // The run as a whole first.
    let wb: Vec<Tot> = b.iter().map(|r| r.whole).collect();
    let wc: Vec<Tot> = c.iter().map(|r| r.whole).collect();
    steps.push(if pair {
        compare_whole_pair(&b[0], &c[0], run_rules)
    } else {
        compare_runs(
            RUN_ROW,
            &wb,
            &wc,
            true,
            (b.len(), c.len()),
            run_rules,
            None,
            1.0,
        )
    });
    for (name, h) in names.iter().zip(&held) {
        let row = if h.hb.is_empty() || h.hc.is_empty() {
            one_sided(name, &h.tb, &h.tc, false)
        } else if h.hb.len() == 1 && h.hc.len() == 1 {
            let mut row = compare_step(name, &b[h.hb[0]], &c[h.hc[0]], rules);
            if !pair {
                row.add_note(format!(
                    "in one run per side (of {} base and {} candidate): instance-level interval",
                    b.len(),
                    c.len()
                ));
            }
            row
        } else {
            compare_runs(
                name,
                &h.tb,
                &h.tc,
                false,
                (b.len(), c.len()),
                rules,
                Some(h.largest),
                h.mean,
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
        run_noise_pct: rules.run_noise,
        gated_intervals: (1 + gated_steps) * rules.gate.names().len(),
        run_confidence_pct: pct(alpha_run),
        step_confidence_pct: pct(alpha_step),
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
