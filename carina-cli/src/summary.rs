//! `carina summary`: a run's headline figures and per-step table, in the terminal; or, given
//! several run files or a directory, the fleet view: per job and cycle, one row per host and
//! the total (`fleet`).
//!
//! A run that crashed (no `run_end`) is shown as INCOMPLETE, with its figures rebuilt from the
//! `step_summary` records if any, else from the `step` records. Exit status: 0 on success, 2 on
//! bad input (missing, empty or malformed file; the message names the file and line).

use crate::load::{load_run, load_runs};
use crate::out;
use carina_core::format::{co2e, duration, energy, escape_control, percent, sig3};
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
that declares every item in one record does not count as progress.\n\n\
Several run files, or a directory (searched recursively), print the fleet view instead: the \
runs grouped by job and cycle, one row per host (runs, status, energy, CO2e, items, wall) and \
the total (energy, CO2e and items summed over the hosts; wall from the first start to the last \
end). A cycle: runs of one job whose spans [started_at, started_at + wall] overlap (directly or \
through other runs), or that share a run id (set CARINA_RUN_ID to the same value on every \
host). A directory that holds a single run prints that run as a single file does."
)]
pub struct Args {
    /// The run file (`.jsonl`); or several run files or directories for the fleet view.
    #[arg(required = true, value_name = "RUN")]
    pub paths: Vec<PathBuf>,
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
    run.partial_cut_s()
        .unwrap_or(carina_core::Seconds(f64::INFINITY))
        .into()
}

/// The `step` records inside the run's span ([`cut_s`]): all of them for a complete run.
pub(crate) fn steps_in_span(run: &RunFile) -> impl Iterator<Item = &StepRecord> + Clone {
    let cut = cut_s(run);
    run.steps
        .iter()
        .filter(move |s| s.end_s <= carina_core::Seconds(cut))
}

/// The run's share of the host, as printed: `0.49 (49.0 %)`, or `n/a` with the reason.
pub(crate) fn share_text(h: &Headline) -> String {
    match h.host_share() {
        Some(s) => format!("{s:.2} ({})", percent(s, 1)),
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
                wall_s: s.wall_s.into(),
                self_wall_s: s.self_wall_s.into(),
                items: s.items,
                energy_j: s.energy_j.into(),
                self_energy_j: s.self_energy_j.into(),
                co2e_g: s.co2e_g.into(),
                p50_s: s.p50_s,
                p95_s: s.p95_s,
            })
            .collect();
    }
    rows_from_steps(steps_in_span(run))
}

fn dur(s: &StepRecord) -> f64 {
    (s.end_s - s.start_s).max(carina_core::Seconds::ZERO).into()
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
        row.energy_j += s.energy_j.0;
        row.self_energy_j += s.self_energy_j.0;
        row.co2e_g += s.co2e_g.0;
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
    let p = run.progress_until(carina_core::Seconds(cut_s(run)))?;
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
            wall_s: e.wall_s.into(),
            energy_j: e.energy_j.into(),
            energy_low_j: e.energy_low_j.map(f64::from),
            energy_high_j: e.energy_high_j.map(f64::from),
            kind: e.energy_kind,
            co2e_g: e.co2e_g.into(),
            items: e.items,
            unattributed_j: Some(e.unattributed_j.into()),
            dropped: e.dropped,
            not_written: e.records_not_written,
            host_energy_j: Some(e.host_energy_j.0).filter(|h| *h > 0.0),
            steps_after_cut: 0,
        };
    }
    let cut = cut_s(run);
    let steps_after_cut = run
        .steps
        .iter()
        .filter(|s| s.end_s > carina_core::Seconds(cut))
        .count();
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
        let energy_j: f64 = run.power.iter().map(|p| p.energy_j.0).sum();
        let band = |f: fn(&carina_core::record::PowerRecord) -> Option<f64>| {
            run.power.iter().map(f).sum::<Option<f64>>()
        };
        return Headline {
            complete: false,
            wall_s,
            energy_j,
            energy_low_j: band(|p| p.energy_low_j.map(f64::from)),
            energy_high_j: band(|p| p.energy_high_j.map(f64::from)),
            kind: energy_kind(run),
            co2e_g: run.power.iter().map(|p| p.co2e_g.0).sum(),
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
            low += l.0;
            high += h.0;
            any_band = true;
        }
    }
    let top: f64 = top_level().map(|s| s.energy_j.0).sum();
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
        format!("{} Wh", sig3(j / 3600.0 / items as f64))
    }
}

fn pct(part: f64, whole: f64) -> String {
    if whole > 0.0 {
        percent(part / whole, 1)
    } else {
        "-".into()
    }
}

/// What `carina summary` and `carina report` say instead of an "unattributed 100 %" row when a
/// run has no steps (a plain `carina run` of a command that does not link Carina).
pub(crate) const NO_STEPS: &str =
    "a run without steps has its energy at run level (no step markers)";

/// The text printed by `carina summary`.
pub fn render(run: &RunFile) -> String {
    let h = headline(run);
    let s = &run.start;
    let mut out = String::new();
    let title = if h.complete { "" } else { "  [INCOMPLETE]" };
    out.push_str(&format!(
        "Run {}  (job {}){title}\n",
        escape_control(&s.run_id),
        escape_control(&s.job)
    ));
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
            sig3(s.carbon.g_per_kwh)
        ),
    ));
    kv.push(("scope".into(), s.scope.map_or("-", |s| s.as_str()).into()));
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
    if step_rows(run).is_empty() {
        // No step markers: all of the energy is the run's, which is not an error.
        kv.push(("steps".into(), NO_STEPS.into()));
    } else {
        kv.push((
            "unattributed".into(),
            match h.unattributed_j {
                Some(u) => format!("{} ({})", energy(u), pct(u, h.energy_j)),
                None => "unknown (no run_end)".into(),
            },
        ));
    }
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
    // The values quote the run file (host, sources, zone, scope): escaped as a whole.
    for (k, v) in &kv {
        out.push_str(&format!("  {k:<w$}  {}\n", escape_control(v)));
    }
    if let Some(end) = &run.end {
        for warning in &end.warnings {
            out.push_str(&format!("  warning: {}\n", escape_control(warning)));
        }
    }

    let mut rows = step_rows(run);
    rows.sort_by(|a, b| b.energy_j.total_cmp(&a.energy_j).then(a.name.cmp(&b.name)));
    out.push('\n');
    if rows.is_empty() {
        // The headline's `steps` line already says so.
        out.pop();
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
                escape_control(&r.name).into_owned(),
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
    // One file: that run. Several paths, or a directory: the fleet view (unless a single run
    // is found, shown as a single file is).
    let loaded = if let [path] = args.paths.as_slice()
        && !path.is_dir()
    {
        load_run(path)
    } else {
        match load_runs(&args.paths) {
            Ok(mut runs) if runs.len() == 1 => Ok(runs.remove(0)),
            Ok(runs) => {
                for r in &runs {
                    for w in &r.warnings {
                        out::warning("summary", format_args!("{}: {w}", r.path.display()));
                    }
                }
                return out::print_text("summary", &fleet::render(&runs), ExitCode::SUCCESS);
            }
            Err(e) => Err(e),
        }
    };
    let run = match loaded {
        Ok(r) => r,
        Err(e) => {
            out::message("summary", e);
            return ExitCode::from(2);
        }
    };
    // Reader warnings (a truncated last line, a missing `run_end`) go to stderr, as in
    // `carina report`, so that the figures below are read knowing what was left out.
    for w in &run.warnings {
        out::warning("summary", w);
    }
    out::print_text("summary", &render(&run), ExitCode::SUCCESS)
}

/// Many hosts of one job: runs grouped by job and cycle, with per-host and total figures
/// (`carina summary` over several files, the "Fleet" section of `carina report`).
///
/// **A cycle** is a group of runs of one job that either share a run id (a scheduler that sets
/// `CARINA_RUN_ID` to the same value on every host says so explicitly), or whose spans
/// `[started_at, started_at + wall]` overlap, directly or through other runs of the group
/// (connected components of the overlap graph). The hosts of one cycle are started together and
/// run side by side, so their spans overlap; the next cycle starts after the last host of this
/// one has finished. A run whose `started_at` cannot be read is a cycle of its own unless its
/// run id joins it to others. A run's wall time is its headline's ([`headline`]:
/// `run_end.wall_s`, or a crashed run's cut).
///
/// Per host (a host may run several runs in one cycle): energy, CO2e and items summed, wall
/// from its first start to its last end. Total: energy, CO2e and items summed over the hosts
/// (each host does its own share of the items), wall from the cycle's first start to its last
/// end (the time the whole cycle took).
pub(crate) mod fleet {
    use super::{Headline, headline, table};
    use carina_core::format::{co2e, duration, energy, escape_control, sig3};
    use carina_core::reader::RunFile;
    use carina_core::record::EnergyKind;
    use std::collections::{BTreeMap, BTreeSet, HashMap};

    /// Figures of one host in a cycle, or of the whole cycle.
    #[derive(Debug, Clone)]
    pub(crate) struct Figures {
        /// Host name, or `total`.
        pub host: String,
        pub runs: usize,
        /// Runs without `run_end`.
        pub incomplete: usize,
        /// The kind of every run's energy; `None` when they differ.
        pub kind: Option<EnergyKind>,
        pub energy_j: f64,
        pub co2e_g: f64,
        pub items: u64,
        /// From the first start to the last end, s; the longest run's wall time when a start
        /// time cannot be read.
        pub wall_s: f64,
    }

    /// One cycle of one job.
    #[derive(Debug, Clone)]
    pub(crate) struct Cycle<'a> {
        pub job: String,
        /// The runs, oldest first.
        pub runs: Vec<&'a RunFile>,
        /// `started_at` of the first run.
        pub started_at: String,
        /// Per host, by host name.
        pub hosts: Vec<Figures>,
        pub total: Figures,
    }

    type Member<'a> = (&'a RunFile, Headline, Option<f64>);

    /// Unix seconds of an RFC 3339 time.
    fn unix_s(t: &str) -> Option<f64> {
        let ts: jiff::Timestamp = t.parse().ok()?;
        Some(ts.as_nanosecond() as f64 / 1e9)
    }

    fn find(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }

    fn union(parent: &mut [usize], a: usize, b: usize) {
        let (a, b) = (find(parent, a), find(parent, b));
        if a != b {
            parent[a.max(b)] = a.min(b);
        }
    }

    fn figures(host: String, members: &[Member]) -> Figures {
        let first_kind = members.first().map(|m| m.1.kind);
        let kind = first_kind.filter(|k| members.iter().all(|m| m.1.kind == *k));
        let spans: Vec<(f64, f64)> = members
            .iter()
            .filter_map(|(_, h, s)| s.map(|s| (s, s + h.wall_s.max(0.0))))
            .collect();
        let wall_s = if !spans.is_empty() && spans.len() == members.len() {
            let first = spans.iter().map(|s| s.0).fold(f64::INFINITY, f64::min);
            let last = spans.iter().map(|s| s.1).fold(f64::NEG_INFINITY, f64::max);
            last - first
        } else {
            members.iter().map(|m| m.1.wall_s).fold(0.0, f64::max)
        };
        Figures {
            host,
            runs: members.len(),
            incomplete: members.iter().filter(|m| !m.1.complete).count(),
            kind,
            energy_j: members.iter().map(|m| m.1.energy_j).sum(),
            co2e_g: members.iter().map(|m| m.1.co2e_g).sum(),
            items: members.iter().map(|m| m.1.items).sum(),
            wall_s,
        }
    }

    /// The runs grouped by job and cycle (the rule above): jobs by name, each job's cycles
    /// oldest first.
    pub(crate) fn cycles(runs: &[RunFile]) -> Vec<Cycle<'_>> {
        let mut jobs: BTreeMap<&str, Vec<&RunFile>> = BTreeMap::new();
        for r in runs {
            jobs.entry(r.start.job.as_str()).or_default().push(r);
        }
        let mut out = Vec::new();
        for (job, list) in jobs {
            let info: Vec<Member> = list
                .iter()
                .map(|r| (*r, headline(r), unix_s(&r.start.started_at)))
                .collect();
            let mut parent: Vec<usize> = (0..info.len()).collect();
            // Shared run ids.
            let mut by_id: HashMap<&str, usize> = HashMap::new();
            for (i, (r, _, _)) in info.iter().enumerate() {
                match by_id.get(r.start.run_id.as_str()) {
                    Some(&j) => union(&mut parent, i, j),
                    None => {
                        by_id.insert(&r.start.run_id, i);
                    }
                }
            }
            // Overlapping spans: a sweep by start time, keeping the open group's latest end.
            let mut timed: Vec<(f64, f64, usize)> = info
                .iter()
                .enumerate()
                .filter_map(|(i, (_, h, s))| s.map(|s| (s, s + h.wall_s.max(0.0), i)))
                .collect();
            timed.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut open: Option<(f64, usize)> = None;
            for (s, e, i) in timed {
                open = match open {
                    Some((end, j)) if s <= end => {
                        union(&mut parent, i, j);
                        Some((end.max(e), j))
                    }
                    _ => Some((e, i)),
                };
            }
            let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
            for i in 0..info.len() {
                let root = find(&mut parent, i);
                groups.entry(root).or_default().push(i);
            }
            let mut job_cycles: Vec<Cycle> = groups
                .into_values()
                .map(|idx| {
                    let mut members: Vec<Member> = idx.iter().map(|&i| info[i].clone()).collect();
                    members.sort_by(|a, b| {
                        a.0.start
                            .started_at
                            .cmp(&b.0.start.started_at)
                            .then(a.0.start.host.cmp(&b.0.start.host))
                    });
                    let mut by_host: BTreeMap<&str, Vec<Member>> = BTreeMap::new();
                    for m in &members {
                        by_host
                            .entry(m.0.start.host.as_str())
                            .or_default()
                            .push(m.clone());
                    }
                    let hosts = by_host
                        .into_iter()
                        .map(|(h, ms)| {
                            let name = if h.is_empty() { "(unknown)" } else { h };
                            figures(name.to_owned(), &ms)
                        })
                        .collect();
                    Cycle {
                        job: job.to_owned(),
                        started_at: members[0].0.start.started_at.clone(),
                        runs: members.iter().map(|m| m.0).collect(),
                        hosts,
                        total: figures("total".to_owned(), &members),
                    }
                })
                .collect();
            job_cycles.sort_by(|a, b| a.started_at.cmp(&b.started_at));
            out.extend(job_cycles);
        }
        out
    }

    /// `measured`, `estimated` or `mixed`.
    pub(crate) fn kind_text(k: Option<EnergyKind>) -> &'static str {
        match k {
            Some(EnergyKind::Measured) => "measured",
            Some(EnergyKind::Estimated) => "estimated",
            None => "mixed",
        }
    }

    /// `complete`, or how many runs have no `run_end`.
    pub(crate) fn status_text(f: &Figures) -> String {
        if f.incomplete == 0 {
            "complete".into()
        } else {
            format!("INCOMPLETE ({} of {})", f.incomplete, f.runs)
        }
    }

    /// Wh per item, or `-`.
    pub(crate) fn per_item(f: &Figures) -> String {
        if f.items == 0 {
            "-".into()
        } else {
            format!("{} Wh", sig3(f.energy_j / 3600.0 / f.items as f64))
        }
    }

    /// The text of `carina summary` over several runs.
    pub(crate) fn render(runs: &[RunFile]) -> String {
        let cycles = cycles(runs);
        let hosts: BTreeSet<&str> = runs.iter().map(|r| r.start.host.as_str()).collect();
        let jobs: BTreeSet<&str> = runs.iter().map(|r| r.start.job.as_str()).collect();
        let mut out = format!(
            "{} run(s) of {} job(s) on {} host(s), in {} cycle(s)\n",
            runs.len(),
            jobs.len(),
            hosts.len(),
            cycles.len()
        );
        let mut per_job: HashMap<&str, usize> = HashMap::new();
        for c in &cycles {
            let k = per_job.entry(c.job.as_str()).or_default();
            *k += 1;
            out.push_str(&format!(
                "\nJob {}, cycle {k}: started {}, {} host(s), {} run(s)\n",
                escape_control(&c.job),
                escape_control(&c.started_at),
                c.hosts.len(),
                c.runs.len()
            ));
            let head_e = format!("energy ({})", kind_text(c.total.kind));
            let headers = [
                "host",
                "runs",
                "status",
                head_e.as_str(),
                "CO2e",
                "items",
                "wall",
                "per item",
            ];
            let row = |f: &Figures| {
                vec![
                    escape_control(&f.host).into_owned(),
                    f.runs.to_string(),
                    status_text(f),
                    energy(f.energy_j),
                    co2e(f.co2e_g),
                    f.items.to_string(),
                    duration(f.wall_s),
                    per_item(f),
                ]
            };
            let mut cells: Vec<Vec<String>> = c.hosts.iter().map(row).collect();
            cells.push(row(&c.total));
            out.push_str(&table(&headers, &cells));
        }
        out.push_str(
            "\ntotal: energy, CO2e and items summed over the hosts; wall from the cycle's first \
             start to its last end.\ncycle: runs of one job whose spans [started_at, started_at \
             + wall] overlap, or that share a run id (CARINA_RUN_ID).\n`carina summary RUN` \
             shows one run's steps.\n",
        );
        out
    }
}
