//! `carina summary`: a run's headline figures and per-step table, in the terminal; or, given
//! several run files or a directory, the fleet view: per job and cycle, one row per host and
//! the total (`fleet`).
//!
//! A run that crashed (no `run_end`) is shown as INCOMPLETE, with its figures rebuilt from the
//! `step_summary` records if any, else from the `step` records. Exit status: 0 on success, 2 on
//! bad input (missing, empty or malformed file; the message names the file and line).

use crate::load::{load_run, load_runs_skipping};
use crate::out;
use crate::view::{Extent, RunView, StepRow};
use carina_runtime::format::{
    co2e, counters_not_used, duration, energy, escape_control, own_cost_line, percent, sig3,
};
use carina_runtime::reader::RunFile;
use carina_runtime::record::EnergyKind;
use carina_runtime::units::Joules;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `carina summary`.
#[derive(Debug, clap::Args)]
#[command(
    after_long_help = "Print a run's headline figures (job, run id, start, wall time, energy with \
its kind and method, e.g. `measured (counter x cpu-time share)`, and band, a plain `LOWER BOUND` \
when some interval was counted low, what limits the method, its source, why the counters were \
not used for an estimate, CO2e at the effective factor (energy-weighted with an intensity \
series), scope, the run's share of the host's energy and the host's energy, items, Wh per item, \
the unattributed share, dropped steps, Carina's own cost) and a per-step table (instances, wall \
and self time, energy and self energy, share of the run's energy, Wh per item, p50/p95 instance \
duration; GPU steps marked [GPU]) with a line saying how the step figures were split.\n\n\
`measured` alone is kept for a hardware counter read for the whole machine (host scope); a \
counter times the run's share is `measured x share`. Files without run_end.method (earlier \
versions, crashed runs) get a method derived from their sources and scope.\n\n\
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

/// The run's share of the host, as printed: `0.49 (49.0 %)`, or `n/a` with the reason.
fn share_text(v: &RunView) -> String {
    match v.host_share() {
        Some(s) => format!("{s:.2} ({})", percent(s, 1)),
        None if v.is_complete() => "n/a (run_end.host_energy_j is missing or 0)".into(),
        None => "n/a (no run_end: the host's energy is not recorded)".into(),
    }
}

/// Renders an aligned text table: first column left-aligned, the others right-aligned.
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &Vec<String>| {
        let mut out = String::new();
        for (i, (c, w)) in cells.iter().zip(&width).enumerate() {
            let pad = " ".repeat(w.saturating_sub(c.chars().count()));
            if i == 0 {
                out.push_str(&format!("{c}{pad}"));
            } else {
                out.push_str(&format!("  {pad}{c}"));
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let head: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    let dashes: Vec<String> = width.iter().map(|w| "-".repeat(*w)).collect();
    [head, dashes].iter().chain(rows).map(line).collect()
}

/// Wh per item, or `-` without items.
pub(crate) fn wh_per_item(j: Joules, items: u64) -> String {
    if items == 0 {
        "-".into()
    } else {
        format!("{} Wh", sig3(j.wh() / items as f64))
    }
}

/// What `carina summary` and `carina report` say instead of an "unattributed 100 %" row when a
/// run has no steps (a plain `carina run` of a command that does not link Carina).
pub(crate) const NO_STEPS: &str =
    "a run without steps has its energy at run level (no step markers)";

/// A used source in a few words: the model's description runs to several hundred characters,
/// so only its first clause names it; the whole text stays in the run file and `carina doctor`.
fn source_words(e: &carina_runtime::record::EnergySource) -> String {
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
}

/// The text printed by `carina summary`.
pub fn render(run: &RunFile) -> String {
    let v = RunView::new(run);
    let s = &run.start;
    let title = if v.is_complete() {
        ""
    } else {
        "  [INCOMPLETE]"
    };
    let mut out = format!(
        "Run {}  (job {}){title}\n",
        escape_control(v.run_id),
        escape_control(v.job)
    );
    let wall = duration(v.wall.0);
    let wall = match v.extent {
        Extent::Complete => wall,
        Extent::Power(_) => format!(
            "{wall} (up to the end of the last power record: energy, items and steps stop there too)"
        ),
        Extent::Steps(_) | Extent::Summaries => {
            format!("{wall} (up to the end of the last step record)")
        }
    };
    let sources: Vec<String> = s
        .energy_sources
        .iter()
        .filter(|e| e.used)
        .map(source_words)
        .collect();
    let mut e = format!("{} {}", energy(v.energy.0), v.kind_and_method());
    if let Some((lo, hi)) = v.band {
        e.push_str(&format!(", band {} .. {}", energy(lo.0), energy(hi.0)));
    }
    if v.lower_bound() == Some(true) {
        e.push_str(LOWER_BOUND);
    }
    let mut kv: Vec<(&str, String)> = vec![
        ("started", format!("{}  on {}", s.started_at, v.host)),
        ("wall time", wall),
        ("energy", e),
    ];
    kv.extend(method_rows(&v));
    kv.push((
        "source",
        if sources.is_empty() {
            "-".into()
        } else {
            sources.join("; ")
        },
    ));
    if v.kind == EnergyKind::Estimated
        && let Some((name, why)) = counters_not_used(&s.energy_sources)
    {
        kv.push(("counters", format!("not used: {name}: {why}")));
    }
    kv.extend([
        (
            "CO2e",
            format!("{}  ({})", co2e(v.co2e.0), factor_words(&v)),
        ),
        ("scope", v.scope_str().into()),
        ("host share", share_text(&v)),
        (
            "host energy",
            v.host_energy.map_or("n/a".into(), |j| energy(j.0)),
        ),
        ("items", v.items.to_string()),
        ("per item", wh_per_item(v.energy, v.items)),
    ]);
    let pct = |part: Joules| v.share(part).map_or("-".into(), |s| percent(s, 1));
    if v.rows.is_empty() {
        // No step markers: all of the energy is the run's, which is not an error.
        kv.push(("steps", NO_STEPS.into()));
    } else {
        kv.push((
            "unattributed",
            match v.unattributed {
                Some(u) => format!("{} ({})", energy(u.0), pct(u)),
                None => "unknown (no run_end)".into(),
            },
        ));
    }
    kv.push((
        "dropped",
        match v.dropped {
            Some(d) if v.not_written > 0 => format!(
                "{d} step instances; {} counted in summaries without their own record",
                v.not_written
            ),
            Some(d) => format!("{d} step instances"),
            None => "unknown (no run_end)".into(),
        },
    ));
    if !v.is_complete() {
        let mut status = "INCOMPLETE: no run_end (crashed or still running); figures are \
                          partial, up to the wall time above"
            .to_owned();
        if v.steps_after_cut > 0 {
            status.push_str(&format!(
                "; {} step record(s) that ended later are left out",
                v.steps_after_cut
            ));
        }
        kv.push(("status", status));
    }
    let w = kv.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    // The values quote the run file (host, sources, zone, scope): escaped as a whole.
    for (k, val) in &kv {
        out.push_str(&format!("  {k:<w$}  {}\n", escape_control(val)));
    }
    for warning in run.end.iter().flat_map(|e| &e.warnings) {
        out.push_str(&format!("  warning: {}\n", escape_control(warning)));
    }
    if let Some(own) = v.own_cost {
        out.push_str(&format!("  Carina's own cost: {}\n", own_cost_line(own)));
    }
    if v.rows.is_empty() {
        // The headline's `steps` line already says so.
        return out;
    }
    let mut rows: Vec<&StepRow> = v.rows.iter().collect();
    rows.sort_by(|a, b| b.energy.total_cmp(&a.energy).then(a.name.cmp(&b.name)));
    // The step figures are of the run's kind: say so in the headers, as the headline does
    // (in two words: the lines under the table say how they were obtained).
    let kind = v.kind_tag();
    let (e_head, se_head, pi_head) = (
        format!("energy ({kind})"),
        format!("self energy ({kind})"),
        format!("per item ({kind})"),
    );
    let headers = [
        "step",
        "count",
        "wall",
        "self time",
        &e_head,
        &se_head,
        "share",
        &pi_head,
        "p50",
        "p95",
    ];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut name = escape_control(&r.name).into_owned();
            if r.gpu {
                name.push_str(GPU_MARK);
            }
            vec![
                name,
                r.count.to_string(),
                duration(r.wall.0),
                duration(r.self_wall.0),
                energy(r.energy.0),
                energy(r.self_energy.0),
                pct(r.self_energy),
                wh_per_item(r.energy, r.items),
                duration(r.p50.0),
                duration(r.p95.0),
            ]
        })
        .collect();
    out.push('\n');
    out.push_str(&table(&headers, &cells));
    out.push('\n');
    for (gpu, m) in v.step_methods() {
        let who = if gpu {
            format!("GPU steps ({})", GPU_MARK.trim())
        } else {
            "step figures".to_owned()
        };
        out.push_str(&format!("{who}: {}\n", escape_control(&m)));
    }
    out.push_str(
        "share: the step's self energy as a part of the run's energy; per item: inclusive \
         energy / the step's items; p50/p95: instance duration; host share: the run's energy / \
         the whole machine's (run_end.host_energy_j), the part of the host's energy this run's \
         scope was given.\n",
    );
    out
}

/// What the energy line adds when `run_end.method.lower_bound` is set.
pub(crate) const LOWER_BOUND: &str = "; a LOWER BOUND: some intervals were counted low (a \
     counter wrap that could not be resolved, a reset, a counter that stopped), see the warnings";

/// The mark after a GPU step's name in the step table.
pub(crate) const GPU_MARK: &str = " [GPU]";

/// The `method` rows of the headline: what limits each part of the figure
/// (`run_end.method.notes`), one note a row; said to be derived when the file has no method.
fn method_rows(v: &RunView) -> Vec<(&'static str, String)> {
    let mut notes: Vec<String> = v.method.notes.clone();
    if !v.method_recorded {
        notes.insert(
            0,
            "derived from run_start's sources and scope (the file has no run_end.method)".into(),
        );
    }
    notes
        .into_iter()
        .enumerate()
        .map(|(i, n)| (if i == 0 { "method" } else { "" }, n))
        .collect()
}

/// The emission factor in words: `400 g/kWh, WORLD`; with a time-varying series, the
/// energy-weighted factor and the series' plain mean (`run_start.carbon.g_per_kwh`), which
/// differ when the run's power and the grid's intensity move together.
pub(crate) fn factor_words(v: &RunView) -> String {
    let c = &v.file.start.carbon;
    let zone = c.zone.as_deref().unwrap_or("user factor");
    if v.carbon_series() {
        // A series without a zone is the user's own: the series says it all.
        let zone = c
            .zone
            .as_deref()
            .map_or(String::new(), |z| format!(", {z}"));
        format!(
            "{} g/kWh energy-weighted over the intensity series (its plain mean {}){zone}",
            sig3(v.g_per_kwh),
            sig3(c.g_per_kwh)
        )
    } else {
        format!("{} g/kWh, {zone}", sig3(v.g_per_kwh))
    }
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
        match load_runs_skipping(&args.paths) {
            Ok((mut runs, skipped)) if runs.len() == 1 => {
                out::skipped_warnings("summary", &skipped);
                Ok(runs.remove(0))
            }
            Ok((runs, skipped)) => {
                out::skipped_warnings("summary", &skipped);
                out::reader_warnings("summary", &runs);
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
    out::reader_warnings("summary", [&run]);
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
    use super::{table, wh_per_item};
    use crate::view::RunView;
    use carina_runtime::format::{co2e, duration, energy, escape_control};
    use carina_runtime::reader::RunFile;
    use carina_runtime::record::EnergyKind;
    use carina_runtime::units::{GramsCo2e, Joules, Seconds};
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
        /// The kind in two words ([`RunView::kind_tag`]) of every run; `None` when they differ.
        pub tag: Option<String>,
        /// The distinct methods of the runs ([`RunView::kind_and_method`]), in run order.
        pub methods: Vec<String>,
        pub energy: Joules,
        pub co2e: GramsCo2e,
        pub items: u64,
        /// From the first start to the last end; the longest run's wall time when a start
        /// time cannot be read.
        pub wall: Seconds,
    }

    /// One cycle of one job.
    #[derive(Debug, Clone)]
    pub(crate) struct Cycle<'a> {
        pub job: String,
        /// The runs, oldest first.
        pub runs: Vec<&'a RunView<'a>>,
        /// `started_at` of the first run.
        pub started_at: jiff::Timestamp,
        /// Per host, by host name.
        pub hosts: Vec<Figures>,
        pub total: Figures,
    }

    /// A run and its start in Unix seconds.
    type Member<'a> = (&'a RunView<'a>, Option<f64>);

    /// Unix seconds of an RFC 3339 time.
    fn unix_s(t: jiff::Timestamp) -> Option<f64> {
        Some(t.as_nanosecond() as f64 / 1e9)
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

    /// The span of a run that started at `s` (Unix seconds): from `s` to `s` + its wall time.
    fn span(v: &RunView, s: f64) -> (f64, f64) {
        (s, s + v.wall.max(Seconds::ZERO).0)
    }

    fn figures(host: String, members: &[Member]) -> Figures {
        let first_kind = members.first().map(|m| m.0.kind);
        let kind = first_kind.filter(|k| members.iter().all(|m| m.0.kind == *k));
        let tags: Vec<String> = members.iter().map(|m| m.0.kind_tag()).collect();
        let tag = tags
            .first()
            .filter(|t| tags.iter().all(|x| x == *t))
            .cloned();
        let mut methods: Vec<String> = Vec::new();
        for m in members {
            let km = m.0.kind_and_method();
            if !methods.contains(&km) {
                methods.push(km);
            }
        }
        let spans: Vec<(f64, f64)> = members
            .iter()
            .filter_map(|(v, s)| s.map(|s| span(v, s)))
            .collect();
        let wall = if !spans.is_empty() && spans.len() == members.len() {
            let first = spans.iter().map(|s| s.0).fold(f64::INFINITY, f64::min);
            let last = spans.iter().map(|s| s.1).fold(f64::NEG_INFINITY, f64::max);
            Seconds(last - first)
        } else {
            members
                .iter()
                .map(|m| m.0.wall)
                .fold(Seconds::ZERO, Seconds::max)
        };
        Figures {
            host,
            runs: members.len(),
            incomplete: members.iter().filter(|m| !m.0.is_complete()).count(),
            kind,
            tag,
            methods,
            energy: members.iter().map(|m| m.0.energy).sum(),
            co2e: members.iter().map(|m| m.0.co2e).sum(),
            items: members.iter().map(|m| m.0.items).sum(),
            wall,
        }
    }

    /// The runs grouped by job and cycle (the rule above): jobs by name, each job's cycles
    /// oldest first.
    pub(crate) fn cycles<'a>(runs: &'a [RunView<'a>]) -> Vec<Cycle<'a>> {
        let mut jobs: BTreeMap<&str, Vec<&RunView>> = BTreeMap::new();
        for r in runs {
            jobs.entry(r.job).or_default().push(r);
        }
        let mut out = Vec::new();
        for (job, list) in jobs {
            let info: Vec<Member> = list
                .iter()
                .map(|v| (*v, unix_s(v.file.start.started_at)))
                .collect();
            let mut parent: Vec<usize> = (0..info.len()).collect();
            // Shared run ids.
            let mut by_id: HashMap<&str, usize> = HashMap::new();
            for (i, (v, _)) in info.iter().enumerate() {
                match by_id.get(v.run_id) {
                    Some(&j) => union(&mut parent, i, j),
                    None => {
                        by_id.insert(v.run_id, i);
                    }
                }
            }
            // Overlapping spans: a sweep by start time, keeping the open group's latest end.
            let mut timed: Vec<(f64, f64, usize)> = info
                .iter()
                .enumerate()
                .filter_map(|(i, (v, s))| s.map(|s| (span(v, s), i)))
                .map(|((s, e), i)| (s, e, i))
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
                    let mut members: Vec<Member> = idx.iter().map(|&i| info[i]).collect();
                    let started_at = |m: &Member<'a>| m.0.file.start.started_at;
                    members.sort_by(|a, b| {
                        started_at(a)
                            .cmp(&started_at(b))
                            .then(a.0.host.cmp(b.0.host))
                    });
                    let mut by_host: BTreeMap<&str, Vec<Member>> = BTreeMap::new();
                    for m in &members {
                        by_host.entry(m.0.host).or_default().push(*m);
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
                        started_at: started_at(&members[0]),
                        runs: members.iter().map(|m| m.0).collect(),
                        hosts,
                        total: figures("total".to_owned(), &members),
                    }
                })
                .collect();
            job_cycles.sort_by_key(|c| c.started_at);
            out.extend(job_cycles);
        }
        out
    }

    /// The runs' kind in two words ([`RunView::kind_tag`]: `measured` only for plain counters),
    /// or `mixed`.
    pub(crate) fn kind_text(f: &Figures) -> &str {
        f.tag.as_deref().unwrap_or("mixed")
    }

    /// `energy estimated (model x cpu-time share)`, or every method when the runs differ.
    pub(crate) fn method_text(f: &Figures) -> String {
        match f.methods.as_slice() {
            [one] => format!("energy {one}"),
            many => format!("energy methods differ between runs: {}", many.join("; ")),
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

    /// The text of `carina summary` over several runs.
    pub(crate) fn render(runs: &[RunFile]) -> String {
        let views: Vec<RunView> = runs.iter().map(RunView::new).collect();
        let cycles = cycles(&views);
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
                "\nJob {}, cycle {k}: started {}, {} host(s), {} run(s); {}\n",
                escape_control(&c.job),
                c.started_at,
                c.hosts.len(),
                c.runs.len(),
                escape_control(&method_text(&c.total))
            ));
            let head_e = format!("energy ({})", kind_text(&c.total));
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
                    energy(f.energy.0),
                    co2e(f.co2e.0),
                    f.items.to_string(),
                    duration(f.wall.0),
                    wh_per_item(f.energy, f.items),
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
