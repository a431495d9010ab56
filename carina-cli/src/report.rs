//! `carina report`: one self-contained HTML dashboard of one or more runs.
//!
//! The page has no external asset and makes no network request: styles, the charts (inline
//! SVG) and the small table-sorting script are inline, and a Content-Security-Policy meta tag
//! (`default-src 'none'`) forbids any fetch.
//!
//! The HTML, SVG charts included, is written with the [`maud`] template macros, checked at
//! compile time, with no template file read at run time. Everything spliced into the page is
//! escaped by maud (`&`, `<`, `>`, `"`; every attribute is double-quoted), so job, step, host and
//! file names, run ids and error messages cannot inject markup. Only the page's own `STYLE` and
//! `SCRIPT` constants go in as [`PreEscaped`].
//!
//! Per job: the fleet view of each cycle that ran on several hosts (per-host and total energy,
//! CO2e, items and wall time; the cycle rule is `crate::summary::fleet`'s), the recurring view
//! (one row per run, with the change against the previous cycle), then per run: headline cards,
//! the power and cumulative energy timeline with peak/paused windows shaded, the per-step table
//! (sortable by clicking a header; complete without JavaScript) and the step tree (inclusive vs
//! self energy per name path).
//!
//! Cost: one pass over the step records per run (no allocation per record); the tables and the
//! tree are per step name or name path, the timeline has [`BINS`] bins.
//!
//! A run file that cannot be read is skipped, with a warning on stderr and a note at the top of
//! the page, so one bad file does not hide every other run.
//!
//! Exit status: 0 when the report is written (at least one run loaded), 2 on bad input (a
//! missing path, a directory without run files, or no readable run at all; each message names
//! the file and line), 1 when the output cannot be written.

use crate::load::{LoadError, load_runs_lenient};
use crate::out;
use crate::summary::fleet::{Cycle, Figures, cycles, kind_text, method_text, status_text};
use crate::summary::{NO_STEPS, factor_words, wh_per_item as wh_per_item_fleet};
use crate::view::{Extent, RunView, StepRow, wall_of};
use carina_runtime::format::{
    JOULES, SECONDS, Unit, co2e, counters_not_used, duration, energy, own_cost_line, percent,
    power, sig3,
};
use carina_runtime::reader::RunFile;
use carina_runtime::record::{EnergyKind, StepRecord};
use carina_runtime::units::{Joules, Seconds};
use maud::{DOCTYPE, Markup, PreEscaped, Render, html};
use std::collections::{BTreeMap, HashMap};
use std::fmt::{self, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `carina report`.
#[derive(Debug, clap::Args)]
#[command(
    after_long_help = "Write one self-contained HTML page (no network, no external assets) with, \
per job, the recurring view (energy, CO2e, runtime and Wh per item per run, with the change \
against the previous cycle) and, per run, headline cards (energy with its method and band, a \
lower-bound flag, CO2e at the effective factor, runtime, the run's share of the host's energy \
with the host's energy and the scope, items, Carina's own cost, ...), the method's notes, a \
power and cumulative energy timeline with peak/paused windows shaded, a sortable per-step table \
(GPU steps marked) and the step tree. Badges read `measured` only for a counter read for the \
whole machine (`measured x share` for a counter times the run's share); hover one for the \
method. \
A job whose cycle ran on several hosts gets a Fleet table per such cycle (one row per host and \
the total; see `carina summary --help` for the cycle rule). \
Runs without `run_end` are shown with an \"incomplete\" badge; their figures stop at \
the end of their last `power` record, else of their last step record."
)]
pub struct Args {
    /// Run files or directories of run files (searched recursively for `*.jsonl`).
    /// Default: $CARINA_DIR, else ./carina-runs.
    pub paths: Vec<PathBuf>,
    /// Output HTML file.
    #[arg(short, long, default_value = "report.html")]
    pub output: PathBuf,
}

/// Runs the command.
pub fn run(args: &Args) -> ExitCode {
    let paths = if args.paths.is_empty() {
        vec![
            std::env::var_os("CARINA_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("carina-runs")),
        ]
    } else {
        args.paths.clone()
    };
    let (runs, skipped) = match load_runs_lenient(&paths) {
        Ok(r) => r,
        Err(e) => {
            out::message("report", format_args!("error: {e}"));
            return ExitCode::from(2);
        }
    };
    if runs.is_empty() {
        // Nothing to show: every file is an error, and no page is written.
        for e in &skipped {
            out::message("report", format_args!("error: {e}"));
        }
        return ExitCode::from(2);
    }
    for e in &skipped {
        out::warning("report", format_args!("skipped {e}"));
    }
    out::reader_warnings("report", &runs);
    let html = render_with_skipped(&runs, &skipped);
    if let Err(e) = std::fs::write(&args.output, html) {
        out::message(
            "report",
            format_args!(
                "error: cannot write {}: {e} (check that its directory exists and is writable, or choose another with -o)",
                args.output.display()
            ),
        );
        return ExitCode::from(1);
    }
    out::print_text(
        "report",
        &format!("{}\n", args.output.display()),
        ExitCode::SUCCESS,
    )
}

/// Number of timeline bins.
pub const BINS: usize = 200;

/// A number for a `data-v` sort key (finite, plain).
fn num(x: f64) -> String {
    if x.is_finite() {
        format!("{x}")
    } else {
        "0".into()
    }
}

fn wh_per_item(j: Joules, items: u64) -> String {
    if items == 0 {
        return "–".into();
    }
    let wh = j.wh() / items as f64;
    let (unit, div) = wh_unit(wh);
    format!("{} {unit}/item", sig3(wh / div))
}

/// Wh, mWh, µWh or nWh, so per-item figures read without exponents.
fn wh_unit(max_wh: f64) -> (&'static str, f64) {
    let a = max_wh.abs();
    if a >= 1.0 || a == 0.0 || !a.is_finite() {
        ("Wh", 1.0)
    } else if a >= 1e-3 {
        ("mWh", 1e-3)
    } else if a >= 1e-6 {
        ("µWh", 1e-6)
    } else {
        ("nWh", 1e-9)
    }
}

// ---------------------------------------------------------------------------------------------
// Per-run analysis
// ---------------------------------------------------------------------------------------------

/// One node of the step tree (a name path).
#[derive(Debug, Clone)]
struct Node<'a> {
    name: &'a str,
    children: Vec<usize>,
    count: u64,
    energy: Joules,
    self_energy: Joules,
    wall: Seconds,
}

impl<'a> Node<'a> {
    fn new(name: &'a str) -> Node<'a> {
        Node {
            name,
            children: Vec::new(),
            count: 0,
            energy: Joules::ZERO,
            self_energy: Joules::ZERO,
            wall: Seconds::ZERO,
        }
    }
}

/// Everything drawn for one run: its view, and what only the report draws.
struct Analysis<'a> {
    v: &'a RunView<'a>,
    /// The view's step rows, largest energy first.
    rows: Vec<&'a StepRow>,
    /// The time the runtime card and the timeline cover, s: the run's wall time (else the end
    /// of its last step), stretched to the end of its last `power` record.
    span: f64,
    /// Tree nodes; node 0 is the root (the run).
    tree: Vec<Node<'a>>,
    /// Energy per timeline bin, J.
    bins: Vec<f64>,
    /// Where `bins` come from.
    timeline: Timeline,
}

/// The source of a run's timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timeline {
    /// `power` records (this many windows): all of the run's energy.
    Power(usize),
    /// Steps' self energy spread over their spans (files without `power` records).
    Steps,
    /// Neither: a flat line at the run's mean power.
    Flat,
}

/// Index of a step id in `steps`: a dense table when ids are compact, else a hash map.
enum IdIndex {
    Dense(Vec<u32>),
    Sparse(HashMap<u64, u32>),
}

impl IdIndex {
    fn new(steps: &[StepRecord]) -> IdIndex {
        let max = steps.iter().map(|s| s.id).max().unwrap_or(0);
        if max <= (steps.len() as u64).saturating_mul(4) + 1024 {
            let mut v = vec![u32::MAX; max as usize + 1];
            for (i, s) in steps.iter().enumerate() {
                v[s.id as usize] = i as u32;
            }
            IdIndex::Dense(v)
        } else {
            IdIndex::Sparse(
                steps
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (s.id, i as u32))
                    .collect(),
            )
        }
    }

    fn get(&self, id: u64) -> Option<usize> {
        match self {
            IdIndex::Dense(v) => v
                .get(id as usize)
                .filter(|&&i| i != u32::MAX)
                .map(|&i| i as usize),
            IdIndex::Sparse(m) => m.get(&id).map(|&i| i as usize),
        }
    }
}

fn analyse<'a>(v: &'a RunView<'a>) -> Analysis<'a> {
    let run = v.file;
    let steps = &run.steps;
    let index = IdIndex::new(steps);

    // Step tree by name path: node of each step, resolved through its parent (memoised).
    let mut tree: Vec<Node> = vec![Node::new("")];
    let mut child_of: HashMap<(usize, &str), usize> = HashMap::new();
    let mut node_of: Vec<u32> = vec![u32::MAX; steps.len()];
    let mut stack: Vec<usize> = Vec::new();
    let mut max_end = Seconds::ZERO;

    for i in 0..steps.len() {
        let s = &steps[i];
        max_end = max_end.max(s.end_s);
        if node_of[i] != u32::MAX {
            continue;
        }
        // Walk up to the first ancestor whose node is known (or the root).
        stack.clear();
        let mut j = i;
        let mut base = 0usize;
        loop {
            stack.push(j);
            match steps[j].parent.and_then(|p| index.get(p)) {
                Some(p) if p != j && stack.len() <= steps.len() => {
                    if node_of[p] != u32::MAX {
                        base = node_of[p] as usize;
                        break;
                    }
                    j = p;
                }
                _ => break,
            }
        }
        while let Some(j) = stack.pop() {
            let name: &str = &steps[j].name;
            let n = *child_of.entry((base, name)).or_insert_with(|| {
                tree.push(Node::new(name));
                let n = tree.len() - 1;
                tree[base].children.push(n);
                n
            });
            node_of[j] = n as u32;
            base = n;
        }
    }
    // A crashed run's figures stop at its cut: later step records are in no figure, so that
    // no step takes more than the run's energy or time.
    for (i, s) in steps.iter().enumerate() {
        if s.end_s > v.cut() {
            continue;
        }
        let n = &mut tree[node_of[i] as usize];
        n.count += 1;
        n.energy += s.energy_j;
        n.self_energy += s.self_energy_j;
        n.wall += wall_of(s);
    }
    let mut rows: Vec<&StepRow> = v.rows.iter().collect();
    rows.sort_by(|a, b| b.energy.total_cmp(&a.energy));
    let max_end = max_end.min(v.cut()).0;

    // Timeline. Preferred: the run's `power` records (all the run's energy, steps or not),
    // when there are enough of them to draw a shape (a 3 s run has 3 one-second windows, its
    // steps show more); else each step's attributed (self) energy spread evenly over its span;
    // else a flat line.
    let span = if v.wall.0 > 0.0 { v.wall.0 } else { max_end };
    let span = run.power.last().map_or(span, |p| span.max(p.end_s.0));
    let mut bins = vec![0.0f64; BINS];
    let mut timeline = Timeline::Flat;
    if span > 0.0 && !run.power.is_empty() && (steps.is_empty() || run.power.len() >= 20) {
        timeline = Timeline::Power(run.power.len());
        let windows = run.power.iter();
        spread(
            &mut bins,
            span,
            windows.map(|p| (p.start_s, p.end_s, p.energy_j)),
        );
    } else if span > 0.0 && !steps.is_empty() {
        timeline = Timeline::Steps;
        let steps = v.steps().map(|s| (s.start_s, s.end_s, s.self_energy_j));
        spread(&mut bins, span, steps);
    } else if span > 0.0 && v.energy.0 > 0.0 {
        bins.fill(v.energy.0 / BINS as f64);
    }
    Analysis {
        v,
        rows,
        span,
        tree,
        bins,
        timeline,
    }
}

/// Adds each `(start_s, end_s, energy_j)` to `bins` (covering `0..span`), spread evenly over
/// its span: O(1) per interval with a difference array of power for the fully covered bins.
fn spread(
    bins: &mut [f64],
    span: f64,
    intervals: impl Iterator<Item = (Seconds, Seconds, Joules)>,
) {
    let n = bins.len();
    let w = span / n as f64;
    let mut rate = vec![0.0f64; n + 1];
    let bin_of = |t: f64| ((t / w).floor().max(0.0) as usize).min(n - 1);
    for (a, b, e) in intervals.map(|(a, b, e)| (a.0, b.0, e.0)) {
        if e == 0.0 || !e.is_finite() {
            continue;
        }
        let (a, b) = (a.max(0.0), b.max(a).min(span));
        let (ba, bb) = (bin_of(a), bin_of(b));
        if b <= a || ba == bb {
            bins[ba] += e;
            continue;
        }
        let p = e / (b - a);
        bins[ba] += p * ((ba + 1) as f64 * w - a);
        bins[bb] += p * (b - bb as f64 * w);
        if bb > ba + 1 {
            rate[ba + 1] += p;
            rate[bb] -= p;
        }
    }
    let mut r = 0.0;
    for (k, bin) in bins.iter_mut().enumerate() {
        r += rate[k];
        *bin += r * w;
    }
}

// ---------------------------------------------------------------------------------------------
// HTML
// ---------------------------------------------------------------------------------------------

const CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:";

const STYLE: &str = r#"
:root{--fg:#1d2430;--mut:#5b6574;--bd:#d8dde5;--bg:#f5f7fa;--card:#fff;--acc:#2b6cb0;--peak:#f6ad55;--paused:#a0aec0}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg);margin:0;padding:20px 28px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:19px;margin:28px 0 8px;border-bottom:2px solid var(--acc);padding-bottom:4px}
h3{font-size:16px;margin:18px 0 8px}h4{font-size:14px;margin:14px 0 6px;color:var(--mut)}
.meta{color:var(--mut);font-size:12.5px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:10px;margin:10px 0}
.card{background:var(--card);border:1px solid var(--bd);border-radius:8px;padding:10px 12px}
.card .k{font-size:12px;color:var(--mut);text-transform:uppercase;letter-spacing:.03em}
.card .v{font-size:19px;font-weight:600;margin:2px 0}
.card .s{font-size:12px;color:var(--mut)}
.badge{display:inline-block;font-size:11px;font-weight:600;border-radius:10px;padding:1px 8px;vertical-align:middle}
.b-estimated{background:#fefcbf;color:#744210}.b-measured{background:#c6f6d5;color:#22543d}
.b-incomplete{background:#fed7d7;color:#822727}.b-complete{background:#e2e8f0;color:#2d3748}
.b-gpu{background:#e9d8fd;color:#44337a}.lower{color:#c53030}
table{border-collapse:collapse;background:var(--card);border:1px solid var(--bd);font-size:13px;margin:6px 0}
th,td{padding:4px 9px;border-bottom:1px solid var(--bd);text-align:right;white-space:nowrap}
th{background:#edf2f7;font-weight:600;position:relative;white-space:normal;vertical-align:bottom;min-width:4.5em}
th.sortable{cursor:pointer}th.sortable:after{content:" \2195";color:var(--mut);font-size:11px}
td.l,th.l{text-align:left}
tfoot td{font-weight:600;background:#edf2f7}
td.id{white-space:normal;word-break:break-all;font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:11.5px;min-width:9em}
.tw{overflow-x:auto;max-width:100%}
.delta.up{color:#c53030}.delta.down{color:#2f855a}.delta{color:var(--mut)}
.run{background:var(--card);border:1px solid var(--bd);border-radius:10px;padding:4px 16px 14px;margin:14px 0}
.run>summary{cursor:pointer;font-weight:600;font-size:15px;padding:10px 0}
.chart{background:var(--card);border:1px solid var(--bd);border-radius:8px;max-width:100%;height:auto}
.bar{display:inline-block;height:9px;background:var(--acc);vertical-align:middle;border-radius:2px}
.bar.self{background:#90cdf4}
.tree td.l{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12.5px}
.note{color:var(--mut);font-size:12px;margin:4px 0}
.skipped{background:#fffaf0;border:1px solid #f6ad55;border-radius:8px;padding:6px 14px;margin:10px 0;font-size:13px}
.skipped p{margin:4px 0}.skipped ul{margin:4px 0;padding-left:20px}.skipped li{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px;overflow-wrap:anywhere}
.legend span{display:inline-block;margin-right:14px;font-size:12px;color:var(--mut)}
.sw{display:inline-block;width:12px;height:10px;margin-right:4px;vertical-align:middle;border-radius:2px}
@media print{body{background:#fff;padding:0;font-size:11px}.run{border:none;padding:0;page-break-inside:auto}
.card,table,.chart{break-inside:avoid}.tw{overflow:visible}table{font-size:9.5px}th,td{padding:2px 4px}details.run:not([open])>*:not(summary){display:block}th.sortable:after{content:""}h2{page-break-before:auto}a{color:inherit}}
"#;

const SCRIPT: &str = r#"
(function(){
function key(td){var v=td.getAttribute('data-v');return v===null?td.textContent.trim().toLowerCase():parseFloat(v);}
document.querySelectorAll('table.sortable').forEach(function(t){
 t.querySelectorAll('th').forEach(function(th,i){
  th.classList.add('sortable');
  th.addEventListener('click',function(){
   var tb=t.tBodies[0],rows=Array.prototype.slice.call(tb.rows),asc=th.getAttribute('data-dir')!=='asc';
   t.querySelectorAll('th').forEach(function(h){h.removeAttribute('data-dir');});
   th.setAttribute('data-dir',asc?'asc':'desc');
   rows.sort(function(a,b){var x=key(a.cells[i]),y=key(b.cells[i]);return (x<y?-1:x>y?1:0)*(asc?1:-1);});
   rows.forEach(function(r){tb.appendChild(r);});
  });
 });
});
window.addEventListener('beforeprint',function(){document.querySelectorAll('details').forEach(function(d){d.open=true;});});
})();
"#;

/// Renders the dashboard of `runs` (any jobs, any order) as one HTML page.
pub fn render(runs: &[RunFile]) -> String {
    render_with_skipped(runs, &[])
}

/// Like [`render`], and lists the run files that could not be loaded (`skipped`, each with
/// its reason) in a note at the top of the page, so a missing run is not mistaken for a run
/// that never happened.
pub fn render_with_skipped(runs: &[RunFile], skipped: &[LoadError]) -> String {
    let views: Vec<RunView> = runs.iter().map(RunView::new).collect();
    let mut jobs: BTreeMap<&str, Vec<&RunView>> = BTreeMap::new();
    for v in &views {
        jobs.entry(v.job).or_default().push(v);
    }
    for list in jobs.values_mut() {
        list.sort_by(|a, b| a.file.start.started_at.cmp(&b.file.start.started_at));
    }
    let cycles = cycles(&views);
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="Content-Security-Policy" content=(CSP);
                meta name="viewport" content="width=device-width,initial-scale=1";
                title { "Carina report" }
                // A constant of this file, not user input: inserted as is.
                style { (PreEscaped(STYLE)) }
            }
            body {
                h1 { "Carina energy & carbon report" }
                p.meta {
                    (runs.len()) " run(s) of " (jobs.len()) " job(s). Energy in J / Wh / kWh, \
                    emissions in g / kg CO2e, times in s / min / h. Each energy figure is marked "
                    (kind_badge(EnergyKind::Measured, "measured", "a hardware counter read for the whole machine"))
                    " (a hardware counter read for the whole machine), "
                    (kind_badge(EnergyKind::Measured, "measured x share", "a counter times the run's share"))
                    " (a counter times the run's share of the machine; also "
                    i { "integrated" } " for power samples integrated over time, " i { "x PUE" } ") or "
                    (kind_badge(EnergyKind::Estimated, "estimated", "a power model"))
                    " (a power model); hover a badge for the method."
                }
                @if !skipped.is_empty() {
                    div.skipped {
                        p {
                            b { (skipped.len()) " run file(s) skipped" }
                            ": they could not be read, so their runs are missing from this report."
                        }
                        ul {
                            @for e in skipped {
                                li { (e) }
                            }
                        }
                    }
                }
                @if runs.is_empty() {
                    p { "No runs." }
                }
                @for (ji, (job, list)) in jobs.iter().enumerate() {
                    (job_section(ji, job, list, &cycles))
                }
                // A constant of this file, not user input: inserted as is.
                script { (PreEscaped(SCRIPT)) }
            }
        }
    };
    let mut h = page.into_string();
    h.push('\n');
    h
}

/// One job: its fleet tables, its recurring view, then its runs, newest first.
fn job_section(ji: usize, job: &str, list: &[&RunView], cycles: &[Cycle]) -> Markup {
    let analyses: Vec<Analysis> = list.iter().map(|v| analyse(v)).collect();
    let job_cycles: Vec<_> = cycles.iter().filter(|c| c.job == job).collect();
    let last = list.len() - 1;
    html! {
        section.job id={ "job-" (ji) } {
            h2 { "Job: " (job) }
            @for (ci, c) in job_cycles.iter().enumerate() {
                @if c.hosts.len() > 1 {
                    (fleet(c, ci + 1, job_cycles.len()))
                }
            }
            @if list.len() > 1 {
                (recurring(&analyses))
            }
            @for (i, a) in analyses.iter().enumerate().rev() {
                (run_section(ji, i, a, i == last))
            }
        }
    }
}

/// A number with a fixed count of decimals, written straight into the page (no `String`).
#[derive(Clone, Copy)]
struct Fixed(f64, usize);

impl fmt::Display for Fixed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.*}", self.1, self.0)
    }
}

/// The "Fleet" section of one cycle that ran on several hosts: one row per host and the total.
fn fleet(c: &Cycle, number: usize, of: usize) -> Markup {
    let kind = kind_text(&c.total);
    let kind_class = c.total.kind.map_or("mixed", EnergyKind::as_str);
    let row = |f: &Figures| {
        let share = if c.total.energy > Joules::ZERO {
            f.energy / c.total.energy * 100.0
        } else {
            0.0
        };
        html! {
            tr {
                td.l { (f.host) }
                td data-v=(f.runs) { (f.runs) }
                td.l { (status_text(f)) }
                td data-v=(num(f.energy.0)) { (energy(f.energy.0)) " " (fleet_badge(f)) }
                td data-v=(num(share)) { (Fixed(share, 1)) " %" }
                td data-v=(num(f.co2e.0)) { (co2e(f.co2e.0)) }
                td data-v=(f.items) { (f.items) }
                td data-v=(num(f.wall.0)) { (duration(f.wall.0)) }
                td { (wh_per_item_fleet(f.energy, f.items)) }
            }
        }
    };
    html! {
        div.fleet {
            h3 {
                "Fleet: cycle " (number) " of " (of) ", " (c.hosts.len()) " hosts "
                span class={ "badge b-" (kind_class) } title=(method_text(&c.total)) { (kind) }
            }
            p.note { (method_text(&c.total)) }
            p.note {
                "Started " (c.started_at) "; " (c.runs.len()) " run(s). Total: energy, CO2e and \
                items summed over the hosts; wall from the cycle's first start to its last end. A \
                cycle: runs of one job whose spans [started_at, started_at + wall] overlap, or \
                that share a run id (" code { "CARINA_RUN_ID" } ")."
            }
            div.tw {
                table.sortable.fleet {
                    thead {
                        tr {
                            th.l { "host" }
                            th { "runs" }
                            th.l { "status" }
                            th { "energy" }
                            th { "share of the cycle's energy (%)" }
                            th { "CO2e" }
                            th { "items" }
                            th { "wall" }
                            th { "Wh per item" }
                        }
                    }
                    tbody {
                        @for f in &c.hosts {
                            (row(f))
                        }
                    }
                    // The total is in `tfoot` with `td` cells: the sorting script binds every
                    // `th`, and moves only the body's rows.
                    tfoot { (row(&c.total)) }
                }
            }
        }
    }
}

/// The badge of a fleet row: its runs' kind in two words, or "mixed" when they differ; the
/// methods in its title.
fn fleet_badge(f: &Figures) -> Markup {
    match (f.kind, &f.tag) {
        (Some(k), Some(tag)) => kind_badge(k, tag, &method_text(f)),
        _ => html! { span.badge title=(method_text(f)) { "mixed" } },
    }
}

/// A badge coloured by `kind` that reads `text` (the kind in two words: `measured x share`)
/// and has the method in its title (shown on hover).
fn kind_badge(kind: EnergyKind, text: &str, title: &str) -> Markup {
    html! { span class={ "badge b-" (kind.as_str()) } title=(title) { (text) } }
}

/// A run's kind badge: `measured` only for a plain counter in host scope, its method on hover.
fn run_badge(v: &RunView) -> Markup {
    kind_badge(v.kind, &v.kind_tag(), &v.kind_and_method())
}

fn status_badge(complete: bool) -> Markup {
    let (cls, text) = if complete {
        ("b-complete", "complete")
    } else {
        ("b-incomplete", "incomplete")
    };
    html! { span class={ "badge " (cls) } { (text) } }
}

/// The table cell of the change from `prev` to `cur`, in percent, with its sort key. Without a
/// change (first cycle, zero or missing previous value) the cell shows "–" and sorts below
/// every percentage (`-Infinity`, which the sorting script's `parseFloat` reads), as missing
/// values do in the other tables, rather than among the real changes as text or as 0 %.
fn pct_change_cell(cur: f64, prev: Option<f64>) -> Markup {
    match prev {
        Some(p) if p != 0.0 && p.is_finite() && cur.is_finite() => {
            let d = (cur - p) / p * 100.0;
            let cls = if d > 0.5 {
                "up"
            } else if d < -0.5 {
                "down"
            } else {
                "flat"
            };
            html! {
                td data-v=(num(d)) {
                    span class={ "delta " (cls) } { (format_args!("{d:+.1}")) " %" }
                }
            }
        }
        _ => html! { td data-v="-Infinity" { span.delta { "–" } } },
    }
}

fn recurring(an: &[Analysis]) -> Markup {
    let mixed = an
        .windows(2)
        .any(|w| w[0].v.kind_and_method() != w[1].v.kind_and_method());
    html! {
        div.recurring {
            h3 { "Recurring view: " (an.len()) " cycles" }
            p.note {
                "One row per run, oldest first; Δ is the change against the previous cycle"
                @if mixed {
                    " (energy kinds or methods differ between runs: compare with care)"
                }
                "."
            }
            (cycle_chart(an))
            div.tw {
                table.sortable.cycles {
                    thead {
                        tr {
                            th { "#" }
                            th.l { "started (UTC)" }
                            th.l { "run" }
                            th.l { "status" }
                            th { "energy" }
                            th { "Δ energy" }
                            th { "CO2e" }
                            th { "Δ CO2e" }
                            th { "runtime" }
                            th { "Δ runtime" }
                            th { "items" }
                            th { "Wh per item" }
                            th { "Δ Wh/item" }
                        }
                    }
                    tbody {
                        @for (i, a) in an.iter().enumerate() {
                            (cycle_row(i, a, i.checked_sub(1).map(|p| &an[p])))
                        }
                    }
                }
            }
        }
    }
}

/// Wh per item of a run; NaN without items.
fn run_wh_per_item(a: &Analysis) -> f64 {
    a.v.per_item().map_or(f64::NAN, Joules::wh)
}

/// Row `i` of the recurring table, with the changes against `prev` (the previous cycle).
fn cycle_row(i: usize, a: &Analysis, prev: Option<&Analysis>) -> Markup {
    let (v, r) = (a.v, a.v.file);
    let whi = run_wh_per_item(a);
    let pwhi = prev.map(run_wh_per_item).filter(|x| x.is_finite());
    // The start cell sorts by `i` (the rows are in start order), as its shortened text would
    // not; the run id wraps anywhere, so long ids do not widen the table.
    html! {
        tr {
            td data-v=(i) { (i + 1) }
            td.l data-v=(i) title=(r.start.started_at) { (short_time(&r.start.started_at)) }
            td.l.id { (v.run_id) }
            td.l { (status_badge(v.is_complete())) }
            td data-v=(num(v.energy.0)) { (energy(v.energy.0)) " " (run_badge(v)) }
            (pct_change_cell(v.energy.0, prev.map(|p| p.v.energy.0)))
            td data-v=(num(v.co2e.0)) { (co2e(v.co2e.0)) }
            (pct_change_cell(v.co2e.0, prev.map(|p| p.v.co2e.0)))
            td data-v=(num(a.span)) { (duration(a.span)) }
            (pct_change_cell(a.span, prev.map(|p| p.span)))
            td data-v=(v.items) { (v.items) }
            // No items: -1 sorts below every real figure, as in the steps table.
            td data-v=(num(if whi.is_finite() { whi } else { -1.0 })) {
                (wh_per_item(v.energy, v.items))
            }
            (pct_change_cell(whi, pwhi))
        }
    }
}

/// Bar chart of energy per cycle with the Wh-per-item line.
fn cycle_chart(an: &[Analysis]) -> Markup {
    let (w, hgt, l, r, t, b) = (900.0, 220.0, 70.0, 80.0, 24.0, 40.0);
    let pw = w - l - r;
    let ph = hgt - t - b;
    let emax = an.iter().map(|a| a.v.energy.0).fold(0.0, f64::max);
    let (eunit, ediv) = axis_unit(&JOULES, emax);
    let etop = nice_ceil(emax / ediv);
    let whis: Vec<f64> = an.iter().map(run_wh_per_item).collect();
    let wmax = whis
        .iter()
        .copied()
        .filter(|x| x.is_finite())
        .fold(0.0, f64::max);
    let (wunit, wdiv) = wh_unit(wmax);
    let wtop = nice_ceil(wmax / wdiv);
    let slot = pw / an.len() as f64;
    let label_every = (an.len() / 20).max(1);
    // Bars: x, y, height, fill.
    let bars: Vec<(f64, f64, f64, &str)> = an
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let bh = if etop > 0.0 {
                a.v.energy.0 / ediv / etop * ph
            } else {
                0.0
            };
            let fill = if a.v.is_complete() {
                "#63b3ed"
            } else {
                "#feb2b2"
            };
            (l + slot * i as f64, t + ph - bh, bh, fill)
        })
        .collect();
    // The Wh-per-item line, rounded as drawn.
    let points: Vec<(Fixed, Fixed)> = whis
        .iter()
        .enumerate()
        .filter(|(_, w)| w.is_finite() && wtop > 0.0)
        .map(|(i, w)| {
            (
                Fixed(l + slot * i as f64 + slot / 2.0, 1),
                Fixed(t + ph - w / wdiv / wtop * ph, 1),
            )
        })
        .collect();
    let mut polyline = String::new();
    for (x, y) in &points {
        let _ = write!(polyline, "{x},{y} ");
    }
    html! {
        svg class="chart cycles-chart" viewBox={ "0 0 " (w) " " (hgt) } width=(w) height=(hgt)
            role="img" aria-label="energy per cycle" font-size="11" {
            (axes(l, t, pw, ph, etop, &format!("energy ({eunit})"), true))
            @if wtop > 0.0 {
                (right_axis(l + pw, t, ph, wtop, &format!("{wunit} per item")))
            }
            @for (i, (a, &(x, y, bh, fill))) in an.iter().zip(&bars).enumerate() {
                rect x=(Fixed(x + slot * 0.15, 1)) y=(Fixed(y, 1)) width=(Fixed(slot * 0.7, 1))
                    height=(Fixed(bh, 1)) fill=(fill) {
                    title { "cycle " (i + 1) ": " (energy(a.v.energy.0)) " " (a.v.kind_and_method()) }
                }
                @if an.len() <= 40 || i % label_every == 0 {
                    text x=(Fixed(x + slot / 2.0, 1)) y=(Fixed(t + ph + 14.0, 1))
                        text-anchor="middle" fill="#5b6574" { (i + 1) }
                }
            }
            @if !points.is_empty() {
                polyline points=(polyline) fill="none" stroke="#c05621" stroke-width="2" {}
                @for (x, y) in &points {
                    circle cx=(x) cy=(y) r="3" fill="#c05621" {}
                }
            }
            text x=(Fixed(l + pw / 2.0, 1)) y=(Fixed(hgt - 6.0, 1)) text-anchor="middle"
                fill="#1d2430" { "cycle (run, oldest first)" }
        }
        div.legend {
            span { i.sw style="background:#63b3ed" {} "energy per run" }
            span { i.sw style="background:#feb2b2" {} "incomplete run" }
            span { i.sw style="background:#c05621" {} "Wh per item (right axis)" }
        }
    }
}

/// An RFC 3339 time as date and minute (`2026-11-28 06:46`), else as is: short enough for the
/// recurring table to fit a 1280 px window (the cell's title has the full value).
fn short_time(t: &str) -> String {
    match (t.get(..10), t.get(10..11), t.get(11..16)) {
        (Some(date), Some("T"), Some(hm)) => format!("{date} {hm}"),
        _ => t.to_string(),
    }
}

/// The unit of `ladder` that [`carina_runtime::format`] writes `max` in, and its size: an axis's.
fn axis_unit(ladder: &[Unit], max: f64) -> (&'static str, f64) {
    let u = Unit::pick(ladder, max);
    (u.name, u.size)
}

/// The smallest 1/2/2.5/5 x 10^k at or above `x`.
fn nice_ceil(x: f64) -> f64 {
    if x <= 0.0 || !x.is_finite() {
        return 0.0;
    }
    let p = 10f64.powf(x.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * p >= x * 0.999_999 {
            return m * p;
        }
    }
    10.0 * p
}

/// Frame, grid and left axis from 0 to `top` with 5 ticks.
#[allow(clippy::too_many_arguments)]
fn axes(l: f64, t: f64, pw: f64, ph: f64, top: f64, label: &str, grid: bool) -> Markup {
    html! {
        rect x=(l) y=(t) width=(pw) height=(ph) fill="none" stroke="#d8dde5" {}
        @for k in 0..=4 {
            @let v = top * k as f64 / 4.0;
            @let y = t + ph - ph * k as f64 / 4.0;
            @if grid && k > 0 {
                line x1=(l) x2=(l + pw) y1=(Fixed(y, 1)) y2=(Fixed(y, 1)) stroke="#edf2f7" {}
            }
            text x=(l - 5.0) y=(Fixed(y + 4.0, 1)) text-anchor="end" fill="#5b6574" { (sig3(v)) }
        }
        text transform={ "translate(14 " (Fixed(t + ph / 2.0, 1)) ") rotate(-90)" }
            text-anchor="middle" fill="#1d2430" { (label) }
    }
}

fn right_axis(x: f64, t: f64, ph: f64, top: f64, label: &str) -> Markup {
    html! {
        @for k in 0..=4 {
            @let v = top * k as f64 / 4.0;
            @let y = t + ph - ph * k as f64 / 4.0;
            text x=(x + 5.0) y=(Fixed(y + 4.0, 1)) fill="#5b6574" { (sig3(v)) }
        }
        @let (lx, ly) = (Fixed(x + 64.0, 1), Fixed(t + ph / 2.0, 1));
        text transform={ "translate(" (lx) " " (ly) ") rotate(90)" } text-anchor="middle"
            fill="#1d2430" { (label) }
    }
}

fn run_section(ji: usize, i: usize, a: &Analysis, open: bool) -> Markup {
    let (v, run) = (a.v, a.v.file);
    let st = &run.start;
    let warnings = run
        .warnings
        .iter()
        .chain(run.end.iter().flat_map(|e| &e.warnings));
    html! {
        details.run id={ "run-" (ji) "-" (i) } open[open] {
            summary {
                "Run " (v.run_id) " " (status_badge(v.is_complete())) " " (run_badge(v)) " "
                span.meta { "started " (st.started_at) " on " (v.host) }
            }
            p.meta {
                "file " (run.path.display()) " · pid " (st.pid) " · scope " (v.scope_str())
                " · steps recorded: " (st.steps.map_or("-", |s| s.as_str())) " · sampling " (duration(st.sample_interval_s.into()))
                " · Carina " (st.carina_version)
            }
            @if !v.is_complete() {
                p.note {
                    (status_badge(false)) " this run has no " code { "run_end" } " (crashed or \
                    still running): its figures are partial and stop at one moment, the end of \
                    its last " code { "power" } " record, else of its last step record: energy, \
                    items, runtime and steps alike"
                    @if v.steps_after_cut > 0 {
                        " (" (v.steps_after_cut) " step record(s) that ended later are left out)"
                    }
                    "."
                }
            }
            @for w in warnings {
                p.note { "warning: " (w) }
            }
            (cards(a))
            (timeline(a))
            (step_table(a))
            (step_tree(a))
        }
    }
}

/// One headline card: key, value, subtitle (each escaped unless already `Markup`).
fn card(k: &str, v: impl Render, sub: impl Render) -> Markup {
    html! {
        div.card {
            div.k { (k) }
            div.v { (v) }
            div.s { (sub) }
        }
    }
}

fn cards(a: &Analysis) -> Markup {
    let v = a.v;
    let kind = run_badge(v);
    let band = match v.band {
        Some((lo, hi)) => format!("band {} – {}", energy(lo.0), energy(hi.0)),
        _ if v.kind == EnergyKind::Measured => "measured, no band".into(),
        _ => "band not recorded".into(),
    };
    let lower_bound = v.lower_bound() == Some(true);
    let energy_sub = html! {
        span.method { (v.method.label) } " · " (band)
        @if lower_bound {
            " · " b.lower { "lower bound" } ": some intervals were counted low (see the warnings)"
        }
    };
    let c = &v.file.start.carbon;
    let counters = if v.kind == EnergyKind::Estimated {
        counters_not_used(&v.file.start.energy_sources)
    } else {
        None
    };
    let runtime_sub = match v.extent {
        Extent::Complete => "wall clock",
        Extent::Power(_) => "up to the end of the last power record",
        Extent::Steps(_) | Extent::Summaries => "up to the end of the last step record",
    };
    let scope = v.scope_str();
    let host_share = match v.host_share() {
        Some(s) => format!("{s:.2} ({:.1} %)", s * 100.0),
        None => "n/a".into(),
    };
    let host_sub = match v.host_energy {
        Some(j) => format!("of host energy {} · scope {scope}", energy(j.0)),
        None if v.is_complete() => {
            format!("host energy not recorded (run_end.host_energy_j) · scope {scope}")
        }
        None => format!("host energy not recorded before run_end · scope {scope}"),
    };
    let per_item_sub = match v.per_item() {
        Some(j) => format!("{} J/item", sig3(j.0)),
        None => "no items".into(),
    };
    let mean_w = if a.span > 0.0 {
        v.energy.0 / a.span
    } else {
        0.0
    };
    let power_sub = match v.unattributed {
        _ if a.rows.is_empty() => NO_STEPS.into(),
        Some(u) if v.energy > Joules::ZERO => format!(
            "unattributed {} ({:.1} %)",
            energy(u.0),
            u / v.energy * 100.0
        ),
        _ => "over the runtime".into(),
    };
    let sources = &v.file.start.energy_sources;
    let used: Vec<String> = sources
        .iter()
        .filter(|s| s.used)
        .map(|s| format!("{} ({}, {})", s.name, s.kind, s.basis().words()))
        .collect();
    let count = |k: EnergyKind| sources.iter().filter(|s| s.used && s.kind == k).count();
    let sources_sub = if used.is_empty() {
        "sources measured / estimated: none recorded".into()
    } else {
        format!("sources measured / estimated: {}", used.join(", "))
    };
    html! {
        div.cards.headline {
            (card("Energy", html! { (energy(v.energy.0)) " " (kind) }, energy_sub))
            (card("CO2e", html! { (co2e(v.co2e.0)) " " (kind) }, factor_words(v)))
            (card("Runtime", duration(a.span), runtime_sub))
            (card("Host share", host_share, host_sub))
            (card("Items", v.items, "items processed"))
            (card(
                "Energy per item",
                html! { (wh_per_item(v.energy, v.items)) " " (kind) },
                per_item_sub,
            ))
            (card("Mean power", html! { (power(mean_w)) " " (kind) }, power_sub))
            @if let Some(own) = v.own_cost {
                @let share = format!("{} of CPU time", percent(own.cpu_share, 2));
                @let line = own_cost_line(own);
                // The card's value is the line's opening; the rest is its subtitle.
                @let rest = line.strip_prefix(&format!("{share}, ")).unwrap_or(&line);
                (card("Carina's own cost", &share, rest))
            }
            (card(
                "Measured vs estimated",
                format_args!(
                    "{} / {}",
                    count(EnergyKind::Measured),
                    count(EnergyKind::Estimated)
                ),
                sources_sub,
            ))
        }
        details.method {
            summary.note {
                "how the energy was obtained: " (v.kind_and_method())
                @if !v.method_recorded {
                    " (derived from the run's sources and scope: the file has no "
                    code { "run_end.method" } ")"
                }
            }
            ul.note {
                @for n in &v.method.notes {
                    li { (n) }
                }
                @if let Some((name, why)) = &counters {
                    li { "counters not used: " (name) ": " (why) }
                }
            }
        }
        @if !sources.is_empty() {
            details.sources {
                summary.note { "energy sources (" (sources.len()) ")" }
                ul.note {
                    @for s in sources {
                        li {
                            b { (s.name) } " " (kind_badge(s.kind, s.kind.as_str(), s.basis().words())) " "
                            (s.basis().words()) ", "
                            (if s.used { "used" } else { "not used" }) ": " (s.source)
                            @if let Some(r) = &s.reason {
                                " — " (r)
                            }
                        }
                    }
                }
                p.note { "emission factor: " (c.source) }
            }
        }
    }
}

fn timeline(a: &Analysis) -> Markup {
    let kind = a.v.kind_tag();
    let heading = html! { h3 { "Power and cumulative energy " (run_badge(a.v)) } };
    if a.span <= 0.0 || a.bins.iter().all(|&e| e == 0.0) {
        return html! {
            (heading)
            p.note { "No energy over time to plot." }
        };
    }
    let (w, hgt, l, r, t, b) = (900.0, 280.0, 70.0, 80.0, 16.0, 44.0);
    let pw = w - l - r;
    let ph = hgt - t - b;
    let bw = a.span / BINS as f64;
    let watts: Vec<f64> = a.bins.iter().map(|e| e / bw).collect();
    let pmax = watts.iter().copied().fold(0.0, f64::max);
    let ptop = nice_ceil(pmax);
    let total: f64 = a.bins.iter().sum();
    let (eunit, ediv) = axis_unit(&JOULES, total);
    let etop = nice_ceil(total / ediv);
    let (tunit, tdiv) = axis_unit(&SECONDS, a.span);
    let xs = |sec: f64| l + (sec / a.span).clamp(0.0, 1.0) * pw;
    // Control spans: each mode from its change to the next one (or the end of the run).
    let mut ctl: Vec<_> = a.v.file.controls.iter().collect();
    ctl.sort_by(|x, y| x.t_s.total_cmp(&y.t_s));
    let spans: Vec<_> = ctl
        .iter()
        .enumerate()
        .map(|(k, c)| {
            let end = ctl.get(k + 1).map_or(a.span, |n| n.t_s.into());
            let color = match c.mode.as_str() {
                "peak" => Some("#f6ad55"),
                "paused" => Some("#a0aec0"),
                _ => None,
            };
            (c, xs(c.t_s.into()), xs(end), color)
        })
        .collect();
    let has_mode = |m: &str| ctl.iter().any(|c| c.mode.as_str() == m);
    // The power area and the cumulative energy line: SVG path data, numbers only.
    let mut area = format!("M{l:.1},{:.1}", t + ph);
    let mut cum = format!("M{l:.1},{:.1}", t + ph);
    let mut acc = 0.0;
    for (k, &p) in watts.iter().enumerate() {
        let x0 = l + pw * k as f64 / BINS as f64;
        let x1 = l + pw * (k + 1) as f64 / BINS as f64;
        let y = if ptop > 0.0 {
            t + ph - p / ptop * ph
        } else {
            t + ph
        };
        let _ = write!(area, " L{x0:.1},{y:.1} L{x1:.1},{y:.1}");
        acc += a.bins[k];
        let cy = if etop > 0.0 {
            t + ph - acc / ediv / etop * ph
        } else {
            t + ph
        };
        let _ = write!(cum, " L{x1:.1},{cy:.1}");
    }
    let _ = write!(area, " L{:.1},{:.1} Z", l + pw, t + ph);
    let note = match a.timeline {
        Timeline::Flat => {
            "No power or step records: a flat line at the run's mean power (run totals)."
                .to_string()
        }
        Timeline::Power(n) => format!(
            "{} bins of {}, from the run's {} power record(s): all of the run's energy in its \
             scope, inside steps or not.",
            BINS,
            duration(bw),
            n
        ),
        Timeline::Steps => format!(
            "{} bins of {}; each step's self energy is spread evenly over its span{}.",
            BINS,
            duration(bw),
            match a.v.unattributed {
                Some(u) if u > Joules::ZERO =>
                    format!("; {} unattributed to any step is not plotted", energy(u.0)),
                _ => String::new(),
            }
        ),
    };
    let ttop = a.span / tdiv;
    html! {
        (heading)
        svg class="chart timeline" viewBox={ "0 0 " (w) " " (hgt) } width=(w) height=(hgt)
            role="img" aria-label="power and cumulative energy over time" font-size="11" {
            // Shaded control spans, and a dashed line at each mode change.
            @for &(c, x0, x1, color) in &spans {
                @if let (Some(col), true) = (color, x1 > x0) {
                    rect.ctl x=(Fixed(x0, 1)) y=(t) width=(Fixed(x1 - x0, 1)) height=(ph)
                        fill=(col) fill-opacity="0.28" {
                        title {
                            (c.mode) " from " (sig3(c.t_s.into())) " s: " (c.allowed) " allowed"
                            @if let Some(r) = &c.reason {
                                " (" (r) ")"
                            }
                        }
                    }
                }
                line x1=(Fixed(x0, 1)) x2=(Fixed(x0, 1)) y1=(t) y2=(t + ph) stroke="#dd6b20"
                    stroke-dasharray="3 3" {
                    title { (c.policy) " → " (c.mode) " (allowed " (c.allowed) ")" }
                }
            }
            (axes(l, t, pw, ph, ptop, "power (W)", true))
            (right_axis(l + pw, t, ph, etop, &format!("cumulative energy ({eunit})")))
            @for k in 0..=5 {
                text x=(Fixed(l + pw * k as f64 / 5.0, 1)) y=(Fixed(t + ph + 14.0, 1))
                    text-anchor="middle" fill="#5b6574" { (sig3(ttop * k as f64 / 5.0)) }
            }
            text x=(Fixed(l + pw / 2.0, 1)) y=(Fixed(hgt - 8.0, 1)) text-anchor="middle"
                fill="#1d2430" { "time since run start (" (tunit) ")" }
            path.power d=(area) fill="#63b3ed" fill-opacity="0.55" stroke="#2b6cb0"
                stroke-width="1" {}
            path.cumulative d=(cum) fill="none" stroke="#2f855a" stroke-width="2" {}
        }
        div.legend {
            span {
                i.sw style="background:#63b3ed" {}
                "power, W (" (kind) "; peak bin " (power(pmax)) ")"
            }
            span {
                i.sw style="background:#2f855a" {}
                "cumulative energy, " (eunit) " (" (kind) "; " (energy(total)) " plotted)"
            }
            @if has_mode("peak") {
                span { i.sw style="background:#f6ad55" {} "peak window" }
            }
            @if has_mode("paused") {
                span { i.sw style="background:#a0aec0" {} "paused" }
            }
            @if !ctl.is_empty() {
                span { "dashed: " (ctl.len()) " mode change(s)" }
            }
        }
        p.note { (note) }
    }
}

fn step_table(a: &Analysis) -> Markup {
    let kind = a.v.kind_tag();
    html! {
        h3 { "Steps " (run_badge(a.v)) }
        p.note {
            "Click a header to sort. Share: the step's self energy as a part of the run's energy; \
            Wh per item: inclusive energy over the step's items."
        }
        @for (gpu, m) in a.v.step_methods() {
            p.note.step-method {
                @if gpu { "GPU steps " (gpu_badge()) ": " } @else { "Step figures: " }
                (m)
            }
        }
        div.tw {
            table.sortable.steps {
                thead {
                    tr {
                        th.l { "step" }
                        th { "count" }
                        th { "wall (s)" }
                        th { "self time (s)" }
                        th { "energy (" (kind) ")" }
                        th { "self energy (" (kind) ")" }
                        th { "share of run energy (%)" }
                        th { "Wh per item (" (kind) ")" }
                        th { "p50 (s)" }
                        th { "p95 (s)" }
                    }
                }
                tbody {
                    @if a.rows.is_empty() {
                        tr { td.l colspan="10" { (NO_STEPS) } }
                    }
                    @for r in &a.rows {
                        (step_row(a, r))
                    }
                }
            }
        }
    }
}

fn step_row(a: &Analysis, r: &StepRow) -> Markup {
    let share = a.v.share(r.self_energy).map_or(0.0, |s| s * 100.0);
    let whi = if r.items > 0 {
        r.energy.wh() / r.items as f64
    } else {
        -1.0
    };
    let secs = |s: Seconds| html! { td data-v=(num(s.0)) { (sig3(s.0)) " s" } };
    html! {
        tr {
            td.l {
                (r.name)
                @if r.gpu {
                    " " (gpu_badge())
                }
            }
            td data-v=(r.count) { (r.count) }
            (secs(r.wall))
            (secs(r.self_wall))
            td data-v=(num(r.energy.0)) { (energy(r.energy.0)) }
            td data-v=(num(r.self_energy.0)) { (energy(r.self_energy.0)) }
            td data-v=(num(share)) { (Fixed(share, 1)) " %" }
            td data-v=(num(whi)) { (wh_per_item(r.energy, r.items)) }
            (secs(r.p50))
            (secs(r.p95))
        }
    }
}

/// The mark of a GPU step (`step_summary.gpu`): its GPU energy follows the GPU work.
fn gpu_badge() -> Markup {
    html! {
        span.badge.b-gpu title="GPU step: GPU energy goes to the GPU steps open in each interval, by wall-time overlap" { "GPU" }
    }
}

/// Most tree rows drawn; deeper or smaller paths beyond it are summed in a note.
const MAX_TREE_ROWS: usize = 400;

fn step_tree(a: &Analysis) -> Markup {
    let heading = html! {
        h3 { "Step tree " (run_badge(a.v)) }
        p.note {
            "Per name path (steps nested by parent id), largest inclusive energy first. Dark \
            bar: inclusive energy; light bar: self energy; both as a part of the run's energy."
        }
    };
    if a.tree.len() <= 1 {
        let msg = if a.v.file.summaries.is_empty() {
            "No step records."
        } else {
            "Steps were recorded as summaries only (no parent ids): see the table above."
        };
        return html! {
            (heading)
            p.note { (msg) }
        };
    }
    let total = if a.v.energy > Joules::ZERO {
        a.v.energy
    } else {
        let nodes: Joules = a.tree.iter().map(|n| n.self_energy).sum();
        nodes.max(Joules(1e-300))
    };
    // Depth-first, children by inclusive energy: (node, depth) of each row drawn.
    let sorted = |n: &Node| {
        let mut c = n.children.clone();
        c.sort_by(|&x, &y| a.tree[y].energy.total_cmp(&a.tree[x].energy));
        c
    };
    let mut rows: Vec<(usize, usize)> = Vec::new();
    let mut stack: Vec<(usize, usize)> = sorted(&a.tree[0])
        .into_iter()
        .rev()
        .map(|c| (c, 0))
        .collect();
    let mut hidden = 0usize;
    while let Some((n, depth)) = stack.pop() {
        if rows.len() >= MAX_TREE_ROWS {
            hidden += 1;
            continue;
        }
        rows.push((n, depth));
        for c in sorted(&a.tree[n]).into_iter().rev() {
            stack.push((c, depth + 1));
        }
    }
    html! {
        (heading)
        div.tw {
            table.tree {
                thead {
                    tr {
                        th.l { "step path" }
                        th { "count" }
                        th { "wall (s)" }
                        th { "inclusive energy" }
                        th { "self energy" }
                        th.l { "share of run energy" }
                    }
                }
                tbody {
                    @for &(n, depth) in &rows {
                        @let node = &a.tree[n];
                        @let inc = (node.energy / total * 100.0).clamp(0.0, 100.0);
                        @let slf = (node.self_energy / total * 100.0).clamp(0.0, 100.0);
                        tr {
                            td.l style={ "padding-left:" (9 + depth * 18) "px" } {
                                @if depth > 0 {
                                    "└ "
                                }
                                (node.name)
                            }
                            td { (node.count) }
                            td { (sig3(node.wall.0)) " s" }
                            td { (energy(node.energy.0)) }
                            td { (energy(node.self_energy.0)) }
                            td.l {
                                span.bar style={ "width:" (Fixed(inc * 1.2, 0)) "px" } {}
                                " "
                                span.bar.self style={ "width:" (Fixed(slf * 1.2, 0)) "px" } {}
                                " " (Fixed(inc, 1)) " % / " (Fixed(slf, 1)) " %"
                            }
                        }
                    }
                }
            }
        }
        @if hidden > 0 {
            p.note {
                (hidden) " more path(s) not shown (tree limited to " (MAX_TREE_ROWS) " rows)."
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_ceil_rounds_up() {
        assert_eq!(nice_ceil(0.0), 0.0);
        assert_eq!(nice_ceil(7.3), 10.0);
        assert_eq!(nice_ceil(180.0), 200.0);
        assert_eq!(nice_ceil(2.2), 2.5);
    }
}
