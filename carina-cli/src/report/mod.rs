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
//! `SCRIPT` constants go in as [`PreEscaped`](maud::PreEscaped).
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
//!
//! Three parts, each using only those before it: `analysis` (what is drawn for a run: the step
//! tree, the timeline's bins), `charts` (the SVG charts and their axes) and `html` (the page:
//! styles, script, sections, cards and tables). This module holds the command line.

mod analysis;
mod charts;
mod html;

pub use analysis::BINS;
#[cfg(feature = "serve")]
pub(crate) use html::{Live, Show, csp, kind_badge, render_page};
pub use html::{render, render_with_skipped};

use crate::load::load_runs_lenient;
use crate::out;
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
    let paths = crate::load::paths_or_default(&args.paths);
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
    if let Err(e) = out::write_file_atomic(&args.output, html.as_bytes()) {
        out::message(
            "report",
            format_args!(
                "error: cannot write {}: {e} (the previous file, if any, is unchanged; check that its directory exists and is writable, or choose another with -o)",
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
