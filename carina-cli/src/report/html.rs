//! The page of `carina report`: its styles and sorting script, the job and run sections, the
//! headline cards, the per-step table and the step tree, with the charts of `charts` in place.

use super::analysis::{Analysis, Node, analyse, run_wh_per_item};
use super::charts::{Fixed, cycle_chart, timeline, wh_unit};
use crate::load::LoadError;
use crate::summary::fleet::{Cycle, Figures, cycles, kind_text, method_text, status_text};
use crate::summary::{NO_STEPS, factor_words, wh_per_item as wh_per_item_fleet};
use crate::view::{Extent, RunView, StepRow};
use carina_runtime::format::{
    co2e, counters_not_used, duration, energy, own_cost_line, percent, power, sig3,
};
use carina_runtime::reader::RunFile;
use carina_runtime::record::EnergyKind;
use carina_runtime::units::{Joules, Seconds};
use maud::{DOCTYPE, Markup, PreEscaped, Render, html};
use std::collections::BTreeMap;

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
table.live td.method,table.live td.governor,table.live td.next-peak{white-space:normal}table.live td.method{color:var(--mut);font-size:12px;min-width:16em}
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
    let skipped: Vec<&LoadError> = skipped.iter().collect();
    render_page(runs, &skipped, None)
}

/// What `carina serve` adds to the report's page: a section of live figures at the top and a
/// script that reloads the page when the server's data changed. The page's CSP then also
/// allows `connect-src 'self'` (the script's requests to the server that served it), nothing
/// else.
pub(crate) struct Live<'a> {
    /// Shown above the jobs.
    pub banner: Markup,
    /// A constant of the server (never user input), inserted as is.
    pub script: &'a str,
    /// Per run: how it is shown, and its revision (`data-rev` of its section, which changes
    /// whenever the section's content may have). Lets the server page the runs and send only
    /// the sections that changed.
    pub show: &'a ShowFn<'a>,
}

/// Per run: how `carina serve` shows it, and its revision.
pub(crate) type ShowFn<'a> = dyn Fn(&RunFile) -> (Show, String) + 'a;

/// How `carina serve` shows one run's section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Show {
    /// The whole section.
    Full,
    /// An empty `data-same` element with the section's id and revision: an update that leaves
    /// the browser's copy as it is (the page reloads if its copy has another revision).
    Stub,
    /// Nothing: the run is on another page (it still counts in the recurring view).
    Hidden,
}

/// The page's Content-Security-Policy: the report's, plus `connect-src 'self'` for a live page.
pub(crate) fn csp(live: bool) -> String {
    if live {
        format!("{CSP}; connect-src 'self'")
    } else {
        CSP.to_owned()
    }
}

/// The report's page, with the live parts of `carina serve` when `live` is given.
pub(crate) fn render_page(runs: &[RunFile], skipped: &[&LoadError], live: Option<&Live>) -> String {
    let csp = csp(live.is_some());
    let views: Vec<RunView> = runs.iter().map(RunView::new).collect();
    let mut jobs: BTreeMap<&str, Vec<&RunView>> = BTreeMap::new();
    for v in &views {
        jobs.entry(v.job).or_default().push(v);
    }
    for list in jobs.values_mut() {
        list.sort_by_key(|v| v.file.start.started_at);
    }
    let cycles = cycles(&views);
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="Content-Security-Policy" content=(csp);
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
                @if let Some(l) = live {
                    (l.banner)
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
                    (job_section(ji, job, list, &cycles, live.map(|l| l.show)))
                }
                // A constant of this file, not user input: inserted as is.
                script { (PreEscaped(SCRIPT)) }
                @if let Some(l) = live {
                    script { (PreEscaped(l.script)) }
                }
            }
        }
    };
    let mut h = page.into_string();
    h.push('\n');
    h
}

/// One job: its fleet tables, its recurring view, then its runs, newest first. `show`
/// (`carina serve`) picks the runs drawn, and stubs a job whose runs are all stubbed or hidden.
fn job_section(
    ji: usize,
    job: &str,
    list: &[&RunView],
    cycles: &[Cycle],
    show: Option<&ShowFn>,
) -> Markup {
    let shows: Vec<(Show, Option<String>)> = list
        .iter()
        .map(|v| {
            show.map_or((Show::Full, None), |f| {
                let (s, rev) = f(v.file);
                (s, Some(rev))
            })
        })
        .collect();
    // The job's revision changes with any of its runs' (the recurring view covers them all).
    let rev = show.map(|_| {
        use std::hash::{Hash, Hasher};
        let mut h = std::hash::DefaultHasher::new();
        shows.iter().for_each(|(_, r)| r.hash(&mut h));
        format!("{:x}", h.finish())
    });
    if show.is_some() && shows.iter().all(|(s, _)| *s != Show::Full) {
        return html! { section.job id={ "job-" (ji) } data-rev=[rev] data-same {} };
    }
    let hidden = shows.iter().filter(|(s, _)| *s == Show::Hidden).count();
    let analyses: Vec<Analysis> = list.iter().map(|v| analyse(v)).collect();
    let job_cycles: Vec<_> = cycles.iter().filter(|c| c.job == job).collect();
    let last = list.len() - 1;
    html! {
        section.job id={ "job-" (ji) } data-rev=[rev] {
            h2 { "Job: " (job) }
            @for (ci, c) in job_cycles.iter().enumerate() {
                @if c.hosts.len() > 1 {
                    (fleet(c, ci + 1, job_cycles.len()))
                }
            }
            @if list.len() > 1 {
                (recurring(&analyses))
            }
            @if hidden > 0 {
                p.note.paged { (hidden) " run(s) of this job are on other pages (the recurring view above has them all)." }
            }
            @for (i, a) in analyses.iter().enumerate().rev() {
                @match &shows[i] {
                    (Show::Full, rev) => (run_section(ji, i, a, i == last, rev.as_deref())),
                    (Show::Stub, rev) => details.run id={ "run-" (ji) "-" (i) } data-rev=[rev] data-same {},
                    (Show::Hidden, _) => {},
                }
            }
        }
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
pub(crate) fn kind_badge(kind: EnergyKind, text: &str, title: &str) -> Markup {
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
            td.l data-v=(i) title=(r.start.started_at) { (short_time(r.start.started_at)) }
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

/// An RFC 3339 time as date and minute (`2026-11-28 06:46`), else as is: short enough for the
/// recurring table to fit a 1280 px window (the cell's title has the full value).
/// `2026-11-28 05:12` (UTC) for a table cell; the full time is the cell's title.
fn short_time(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M").to_string()
}

fn run_section(ji: usize, i: usize, a: &Analysis, open: bool, rev: Option<&str>) -> Markup {
    let (v, run) = (a.v, a.v.file);
    let st = &run.start;
    let warnings = run
        .warnings
        .iter()
        .chain(run.end.iter().flat_map(|e| &e.warnings));
    html! {
        details.run id={ "run-" (ji) "-" (i) } open[open] data-rev=[rev] {
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
            h3 { "Power and cumulative energy " (run_badge(v)) }
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
        } else if !a.v.is_complete() {
            // `carina serve` folds a running run's steps: its tree is drawn in the live section.
            "No step tree here: the steps are summaries only (no parent ids), or the run is \
             still being written (`carina serve` draws its tree so far in the Live section \
             above). See the table above."
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
