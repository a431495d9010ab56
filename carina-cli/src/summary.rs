//! `carina summary`: a run's headline figures and per-step table, in the terminal.
//!
//! A run that crashed (no `run_end`) is shown as INCOMPLETE, with its figures rebuilt from the
//! `step_summary` records if any, else from the `step` records. Exit status: 0 on success, 2 on
//! bad input (missing, empty or malformed file; the message names the file and line).

use crate::load::load_run;
use crate::units::{co2e, duration, energy, sig};
use carina_core::reader::RunFile;
use carina_core::record::{EnergyKind, StepRecord};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `carina summary`.
#[derive(Debug, clap::Args)]
#[command(
    after_long_help = "Print a run's headline figures (job, run id, start, wall time, energy and \
whether it is measured or estimated, its source and band, CO2e, scope, the run's share of the \
host's energy and the host's energy, items, Wh per item, the unattributed share, dropped steps) and a per-step table (instances, wall and self time, energy \
and self energy, share of the run's energy, Wh per item, p50/p95 instance duration).\n\n\
A run without `run_end` (crashed or still running) is marked INCOMPLETE; its figures then stop \
at one moment, the cut: the end of its last `power` record (energy: the sum of the `power` \
records), else of its last step record (energy: the steps' own). Items, wall time and the step \
table stop there too (step records that ended later are left out and counted), so no step \
takes more than the run. Its host share is n/a (the host's energy is in `run_end` only). Its items are those of the \
progress step: the step name with the most instances that have items (ties: the larger item \
total), or, when no name has more than one, the name with the largest item total; a set-up step \
that declares every item in one record does not count as progress."
)]
pub struct Args {
    /// The run file (`.jsonl`).
    pub path: PathBuf,
}

/// Per-step figures, from a `step_summary` or rebuilt from `step` records.
#[derive(Debug, Clone, Default)]
pub(crate) struct StepRow {
    pub name: String,
    pub count: u64,
    pub wall_s: f64,
    pub self_wall_s: f64,
    pub items: u64,
    pub energy_j: f64,
    pub self_energy_j: f64,
    pub co2e_g: f64,
    pub p50_s: f64,
    pub p95_s: f64,
}

/// Headline figures of a run, complete or not.
#[derive(Debug, Clone)]
pub(crate) struct Headline {
    pub complete: bool,
    pub wall_s: f64,
    pub energy_j: f64,
    pub energy_low_j: Option<f64>,
    pub energy_high_j: Option<f64>,
    pub kind: EnergyKind,
    pub co2e_g: f64,
    pub items: u64,
    pub unattributed_j: Option<f64>,
    pub dropped: u64,
    pub not_written: u64,
    /// `run_end.host_energy_j` when it is there and above 0: the whole machine's energy over
    /// the run, of which the run's energy is a share.
    pub host_energy_j: Option<f64>,
    /// For a run without `run_end`: step records left out because they ended after the cut
    /// ([`RunFile::partial_cut_s`]).
    pub steps_after_cut: usize,
}

impl Headline {
    /// The run's share of the host's energy, `energy_j / host_energy_j`; `None` ("n/a") when
    /// the host's energy is missing or 0.
    pub fn host_share(&self) -> Option<f64> {
        self.host_energy_j
            .filter(|h| *h > 0.0 && h.is_finite())
            .map(|h| self.energy_j / h)
    }
}

/// The end of the span a run's figures cover, seconds since its start: infinite for a complete
/// run (everything counts); for a run without `run_end`, [`RunFile::partial_cut_s`] (the end of
/// its last `power` record, else of its last step), so that its energy, items, wall time and
/// per-step figures all stop at the same moment.
pub(crate) fn cut_s(run: &RunFile) -> f64 {
    if run.end.is_some() {
        return f64::INFINITY;
    }
    run.partial_cut_s().unwrap_or(f64::INFINITY)
}

/// The `step` records inside the run's span ([`cut_s`]): all of them for a complete run.
pub(crate) fn steps_in_span(run: &RunFile) -> impl Iterator<Item = &StepRecord> + Clone {
    let cut = cut_s(run);
    run.steps.iter().filter(move |s| s.end_s <= cut)
}

/// The run's share of the host, as printed: `0.49 (49.0 %)`, or `n/a` with the reason.
pub(crate) fn share_text(h: &Headline) -> String {
    match h.host_share() {
        Some(s) => format!("{s:.2} ({:.1} %)", s * 100.0),
        None if h.complete => "n/a (run_end.host_energy_j is missing or 0)".into(),
        None => "n/a (no run_end: the host's energy is not recorded)".into(),
    }
}

/// Linear-interpolated quantile of sorted values (`q` in 0..=1); NaN when empty.
pub(crate) fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let f = pos - lo as f64;
    sorted[lo] * (1.0 - f) + sorted[hi] * f
}

/// Per-step rows: the summaries when the file has them, else rebuilt from the step records
/// inside the run's span ([`steps_in_span`]).
pub(crate) fn step_rows(run: &RunFile) -> Vec<StepRow> {
    if !run.summaries.is_empty() {
        return run
            .summaries
            .iter()
            .map(|s| StepRow {
                name: s.name.clone(),
                count: s.count,
                wall_s: s.wall_s,
                self_wall_s: s.self_wall_s,
                items: s.items,
                energy_j: s.energy_j,
                self_energy_j: s.self_energy_j,
                co2e_g: s.co2e_g,
                p50_s: s.p50_s,
                p95_s: s.p95_s,
            })
            .collect();
    }
    rows_from_steps(steps_in_span(run))
}

fn dur(s: &StepRecord) -> f64 {
    (s.end_s - s.start_s).max(0.0)
}

fn rows_from_steps<'a>(steps: impl Iterator<Item = &'a StepRecord> + Clone) -> Vec<StepRow> {
    // Time spent in direct children, by parent id, to get self time.
    let mut child_time: HashMap<u64, f64> = HashMap::new();
    for s in steps.clone() {
        if let Some(p) = s.parent {
            *child_time.entry(p).or_default() += dur(s);
        }
    }
    let mut by_name: BTreeMap<&str, (StepRow, Vec<f64>)> = BTreeMap::new();
    for s in steps {
        let (row, durs) = by_name.entry(&s.name).or_insert_with(|| {
            (
                StepRow {
                    name: s.name.to_string(),
                    ..StepRow::default()
                },
                Vec::new(),
            )
        });
        let d = dur(s);
        row.count += 1;
        row.wall_s += d;
        row.self_wall_s += (d - child_time.get(&s.id).copied().unwrap_or(0.0)).max(0.0);
        row.items += s.items;
        row.energy_j += s.energy_j;
        row.self_energy_j += s.self_energy_j;
        row.co2e_g += s.co2e_g;
        durs.push(d);
    }
    by_name
        .into_values()
        .map(|(mut row, mut durs)| {
            durs.sort_by(f64::total_cmp);
            row.p50_s = quantile_sorted(&durs, 0.5);
            row.p95_s = quantile_sorted(&durs, 0.95);
            row
        })
        .collect()
}

/// The row of the run's progress step ([`carina_core::reader::RunFile::progress`], which
/// states the rule, counted up to the run's cut: [`cut_s`]), `None` when no step has items.
pub(crate) fn progress_step<'a>(run: &RunFile, rows: &'a [StepRow]) -> Option<&'a StepRow> {
    let p = run.progress_until(cut_s(run))?;
    rows.iter().find(|r| r.name == p.name)
}

/// Kind of the run's energy: `run_end.energy_kind`, else measured only when every used source is.
fn energy_kind(run: &RunFile) -> EnergyKind {
    if let Some(e) = &run.end {
        return e.energy_kind;
    }
    let used: Vec<_> = run.start.energy_sources.iter().filter(|s| s.used).collect();
    if !used.is_empty() && used.iter().all(|s| s.kind == EnergyKind::Measured) {
        EnergyKind::Measured
    } else {
        EnergyKind::Estimated
    }
}

/// Headline figures, from `run_end` or (incomplete run) rebuilt from the records up to the
/// run's cut ([`cut_s`]): energy, items and wall time over one span.
pub(crate) fn headline(run: &RunFile) -> Headline {
    if let Some(e) = &run.end {
        return Headline {
            complete: true,
            wall_s: e.wall_s,
            energy_j: e.energy_j,
            energy_low_j: e.energy_low_j,
            energy_high_j: e.energy_high_j,
            kind: e.energy_kind,
            co2e_g: e.co2e_g,
            items: e.items,
            unattributed_j: Some(e.unattributed_j),
            dropped: e.dropped,
            not_written: e.records_not_written,
            host_energy_j: Some(e.host_energy_j).filter(|h| *h > 0.0),
            steps_after_cut: 0,
        };
    }
    let cut = cut_s(run);
    let steps_after_cut = run.steps.iter().filter(|s| s.end_s > cut).count();
    let rows = step_rows(run);
    // Without `run_end` the items done are those of the step that tracks progress, not the
    // largest total: see `progress_step`.
    let items = progress_step(run, &rows).map_or(0, |r| r.items);
    let attributed: f64 = rows.iter().map(|r| r.self_energy_j).sum();
    // The wall time is the cut itself: the end of the last `power` record, else of the last
    // step. Only a file with neither (summaries alone) falls back to its longest step.
    let wall_s = if cut.is_finite() {
        cut
    } else {
        rows.iter().map(|r| r.wall_s).fold(0.0, f64::max)
    };
    if !run.power.is_empty() {
        // `power` records hold all of the run's energy up to the last closed window, steps or
        // not: the best partial figure, and the cut for items and wall time too.
        let energy_j: f64 = run.power.iter().map(|p| p.energy_j).sum();
        let band = |f: fn(&carina_core::record::PowerRecord) -> Option<f64>| {
            run.power.iter().map(f).sum::<Option<f64>>()
        };
        return Headline {
            complete: false,
            wall_s,
            energy_j,
            energy_low_j: band(|p| p.energy_low_j),
            energy_high_j: band(|p| p.energy_high_j),
            kind: energy_kind(run),
            co2e_g: run.power.iter().map(|p| p.co2e_g).sum(),
            items,
            unattributed_j: Some((energy_j - attributed).max(0.0)),
            dropped: 0,
            not_written: 0,
            host_energy_j: None,
            steps_after_cut,
        };
    }
    let energy_j = attributed;
    let (mut low, mut high, mut any_band) = (0.0, 0.0, false);
    let top_level = || steps_in_span(run).filter(|s| s.parent.is_none());
    for s in top_level() {
        if let (Some(l), Some(h)) = (s.energy_low_j, s.energy_high_j) {
            // Scale the inclusive band of top-level steps to self energy: close enough for a
            // partial run, and only shown as a band.
            low += l;
            high += h;
            any_band = true;
        }
    }
    let top: f64 = top_level().map(|s| s.energy_j).sum();
    let (energy_low_j, energy_high_j) = if any_band && top > 0.0 {
        (Some(low * energy_j / top), Some(high * energy_j / top))
    } else {
        (None, None)
    };
    Headline {
        complete: false,
        wall_s,
        energy_j,
        energy_low_j,
        energy_high_j,
        kind: energy_kind(run),
        co2e_g: energy_j / 3.6e6 * run.start.carbon.g_per_kwh,
        items,
        unattributed_j: None,
        dropped: 0,
        not_written: 0,
        host_energy_j: None,
        steps_after_cut,
    }
}

/// Renders an aligned text table: first column left-aligned, the others right-aligned.
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let n = headers.len();
    let mut width: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(n) {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = width[i].saturating_sub(c.chars().count());
            if i > 0 {
                out.push_str("  ");
            }
            if i == 0 {
                out.push_str(c);
                if n > 1 {
                    out.push_str(&" ".repeat(pad));
                }
            } else {
                out.push_str(&" ".repeat(pad));
                out.push_str(c);
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(headers.to_vec());
    out.push_str(&line(
        width
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect(),
    ));
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

fn wh_per_item(j: f64, items: u64) -> String {
    if items == 0 {
        "-".into()
    } else {
        format!("{} Wh", sig(j / 3600.0 / items as f64))
    }
}

fn pct(part: f64, whole: f64) -> String {
    if whole > 0.0 {
        format!("{:.1} %", 100.0 * part / whole)
    } else {
        "-".into()
    }
}

/// The text printed by `carina summary`.
pub fn render(run: &RunFile) -> String {
    let h = headline(run);
    let s = &run.start;
    let mut out = String::new();
    let title = if h.complete { "" } else { "  [INCOMPLETE]" };
    out.push_str(&format!("Run {}  (job {}){title}\n", s.run_id, s.job));
    let mut kv: Vec<(String, String)> = Vec::new();
    kv.push(("started".into(), format!("{}  on {}", s.started_at, s.host)));
    let wall = if h.complete {
        duration(h.wall_s)
    } else if !run.power.is_empty() {
        format!(
            "{} (up to the end of the last power record: energy, items and steps stop there too)",
            duration(h.wall_s)
        )
    } else {
        format!(
            "{} (up to the end of the last step record)",
            duration(h.wall_s)
        )
    };
    kv.push(("wall time".into(), wall));
    let kind = match h.kind {
        EnergyKind::Measured => "measured",
        EnergyKind::Estimated => "estimated",
    };
    let sources: Vec<String> = s
        .energy_sources
        .iter()
        .filter(|e| e.used)
        .map(|e| {
            // The model's description runs to several hundred characters: its first clause
            // names it; the whole text stays in the run file and in `carina doctor`.
            const MAX: usize = 90;
            let text = e.source.trim();
            if text.is_empty() {
                e.name.clone()
            } else if text.chars().count() > MAX {
                let cut: String = text.chars().take(MAX).collect();
                format!(
                    "{} ({cut}...; full text: carina doctor or run_start)",
                    e.name
                )
            } else {
                format!("{} ({text})", e.name)
            }
        })
        .collect();
    let mut e = format!("{} {kind}", energy(h.energy_j));
    if let (Some(l), Some(hi)) = (h.energy_low_j, h.energy_high_j) {
        e.push_str(&format!(", band {} .. {}", energy(l), energy(hi)));
    }
    kv.push(("energy".into(), e));
    kv.push((
        "source".into(),
        if sources.is_empty() {
            "-".into()
        } else {
            sources.join("; ")
        },
    ));
    let zone = s.carbon.zone.as_deref().unwrap_or("user factor");
    kv.push((
        "CO2e".into(),
        format!(
            "{}  ({} g/kWh, {zone})",
            co2e(h.co2e_g),
            sig(s.carbon.g_per_kwh)
        ),
    ));
    kv.push((
        "scope".into(),
        if s.scope.is_empty() {
            "-".into()
        } else {
            s.scope.clone()
        },
    ));
    kv.push(("host share".into(), share_text(&h)));
    kv.push((
        "host energy".into(),
        match h.host_energy_j {
            Some(j) => energy(j),
            None => "n/a".into(),
        },
    ));
    kv.push(("items".into(), h.items.to_string()));
    kv.push(("per item".into(), wh_per_item(h.energy_j, h.items)));
    kv.push((
        "unattributed".into(),
        match h.unattributed_j {
            Some(u) => format!("{} ({})", energy(u), pct(u, h.energy_j)),
            None => "unknown (no run_end)".into(),
        },
    ));
    let dropped = if h.complete {
        let mut d = format!("{} step instances", h.dropped);
        if h.not_written > 0 {
            d.push_str(&format!(
                "; {} counted in summaries without their own record",
                h.not_written
            ));
        }
        d
    } else {
        "unknown (no run_end)".into()
    };
    kv.push(("dropped".into(), dropped));
    if !h.complete {
        let mut status = "INCOMPLETE: no run_end (crashed or still running); figures are \
                          partial, up to the wall time above"
            .to_owned();
        if h.steps_after_cut > 0 {
            status.push_str(&format!(
                "; {} step record(s) that ended later are left out",
                h.steps_after_cut
            ));
        }
        kv.push(("status".into(), status));
    }
    let w = kv.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in &kv {
        out.push_str(&format!("  {k:<w$}  {v}\n"));
    }
    if let Some(end) = &run.end {
        for warning in &end.warnings {
            out.push_str(&format!("  warning: {warning}\n"));
        }
    }

    let mut rows = step_rows(run);
    rows.sort_by(|a, b| b.energy_j.total_cmp(&a.energy_j).then(a.name.cmp(&b.name)));
    out.push('\n');
    if rows.is_empty() {
        out.push_str("No steps recorded.\n");
        return out;
    }
    // The step figures are of the run's kind: say so in the headers, as the headline does.
    let (e_head, se_head, pi_head) = match h.kind {
        EnergyKind::Measured => (
            "energy (measured)",
            "self energy (measured)",
            "per item (measured)",
        ),
        EnergyKind::Estimated => (
            "energy (estimated)",
            "self energy (estimated)",
            "per item (estimated)",
        ),
    };
    let headers = [
        "step",
        "count",
        "wall",
        "self time",
        e_head,
        se_head,
        "share",
        pi_head,
        "p50",
        "p95",
    ];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.name.clone(),
                r.count.to_string(),
                duration(r.wall_s),
                duration(r.self_wall_s),
                energy(r.energy_j),
                energy(r.self_energy_j),
                pct(r.self_energy_j, h.energy_j),
                wh_per_item(r.energy_j, r.items),
                duration(r.p50_s),
                duration(r.p95_s),
            ]
        })
        .collect();
    out.push_str(&table(&headers, &cells));
    out.push_str(
        "\nshare: the step's self energy as a part of the run's energy; per item: inclusive \
         energy / the step's items; p50/p95: instance duration; host share: the run's energy / \
         the whole machine's (run_end.host_energy_j), the part of the host's energy this run's \
         scope was given.\n",
    );
    out
}

/// Runs the command.
pub fn run(args: &Args) -> ExitCode {
    let run = match load_run(&args.path) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("carina summary: {e}");
            return ExitCode::from(2);
        }
    };
    // Reader warnings (a truncated last line, a missing `run_end`) go to stderr, as in
    // `carina report`, so that the figures below are read knowing what was left out.
    for w in &run.warnings {
        eprintln!("carina summary: warning: {w}");
    }
    print!("{}", render(&run));
    ExitCode::SUCCESS
}
