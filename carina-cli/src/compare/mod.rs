//! `carina compare`: per-step energy and time per item between base runs and candidate runs,
//! with a noise-aware verdict. Exit status: 0 when nothing gated regressed beyond the threshold,
//! 1 when something did, 2 on bad input.
//!
//! Four parts, each using only those before it, so that the statistics can be read (and
//! changed) without the outputs: `stats` (the 95 % intervals: bootstrap, delta method, pooled t
//! over runs), `verdict` (what a change means under the gate, the threshold and --min-share;
//! when host shares differ too much), `build` (the comparison of two sides of runs, row by row,
//! with its warnings) and `render` (text and Markdown; the JSON output is the comparison
//! serialised). This module holds the command line and runs the four.

mod build;
mod render;
mod stats;
mod verdict;

pub use verdict::{Gate, SHARE_MAX_DIFF, SHARE_MAX_RATIO, parse_gate, shares_differ};

use crate::load::load_runs_skipping;
use crate::out;
use build::build;
use render::{render_markdown, render_text};
use std::path::PathBuf;
use std::process::ExitCode;
use verdict::{Rules, Verdict};

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
geometric means of the two sides' figures, and its interval a t-interval on the difference of \
the means of their logarithms, so it covers run-to-run noise: a neighbour that slows a run down \
moves that run's figure, and the interval widens accordingly. The run-to-run variance is \
measured from the runs (each side's squared deviations from its own mean, pooled over both \
sides) and pooled with --run-noise as a weak prior (--run-noise for the (run) row, over \
sqrt(share) for a step) worth 2 degrees of freedom; Student's t with as many degrees of freedom \
as runs in all. Quiet runs narrow the interval below the prior, noisy ones widen it, and three \
runs that happen to agree cannot make it very narrow; --run-noise 0 drops the prior. A step \
found in one run per side only is judged as with one run per side, below.\n\n\
Method with one run per side. The noise between instances of one run is measured: for a step, \
each `step` record is one sample, the instances of each run are resampled with replacement \
2000 times (a fixed-seed PRNG, so the output is reproducible) and the spread of the log ratio \
of totals gives its standard error (above 5000 instances, the delta method); for the `(run)` \
row, the variance of the run's energy is that of its steps' self energy with each name's \
instances resampled, and its wall time's that of its top-level steps' durations. The noise \
between runs cannot be measured from one run (a busier host moves every instance of a run at \
once), so it is assumed: --run-noise (default 5 %) is the relative standard deviation of a \
whole run's energy per item between identical runs, and a step holding a share s of the run's \
energy (the mean of its two runs') gets --run-noise / sqrt(s), since a small step's figure \
varies more (measured on scenario_db: 5.6 % for the run, 6.4 % for a step of 83 %, 13 % for \
13 %, 45 % for 1.6 %). Both variances, for each side, make a normal interval on the log ratio. \
Give 3 or more runs per side for a gate that measures the noise instead of assuming it; \
--run-noise 0 trusts the instances alone (the behaviour before). A step with fewer than 5 \
instances in either run, a file with summaries only (`steps: \"summary\"`) and a `(run)` row \
of runs without step records are judged on their totals alone (change beyond the threshold), \
and the note says so.\n\n\
Intervals that hold together. The gate fails when any gated row regresses, so the gated \
intervals share one 5 % chance of missing (weighted Bonferroni): half for the `(run)` row \
(a 97.5 % interval), half split between the steps on both sides at or above --min-share (3 \
such steps: 99.17 % each); with no such step the `(run)` row has it all (95 %); --gate \
energy,time halves each. The confidences are in the output (`run_confidence_pct`, \
`step_confidence_pct`, `gated_intervals` in JSON). Measured on 30 identical scenario_db runs \
on a loaded 2-vCPU VM (435 pairs, 1000 random 3 v 3 splits): the gate failed 12.4 % of \
pairs and 5.2 % of splits at first, 0.2 % and 0.8 % now (a +10 % change caught in 29 % of \
splits there, 94 % on runs that vary by 1.5 %; docs/CLI.md, \"compare\").\n\n\
Verdicts. Energy (or time) regressed when the change is above the threshold AND its \
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
    /// With one run on a side: the relative standard deviation assumed for a whole run's
    /// energy (and time) per item between identical runs, `5%` or `5`; a step's is this over
    /// the square root of its share of the run's energy. From 0 to 100; `0` trusts the step
    /// instances alone. Several runs per side measure it, with this as a weak prior (worth 2
    /// runs' degrees of freedom; `0`: the runs alone).
    #[arg(long, default_value = "5%", value_parser = parse_run_noise)]
    pub run_noise: f64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Parses `5%` or `5` (both 5 %) into percent.
pub fn parse_threshold(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let num = t.strip_suffix('%').unwrap_or(t).trim();
    match num.parse::<f64>() {
        Ok(v) if (0.0..=1000.0).contains(&v) => Ok(v),
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

/// Parses `5%` or `5` (both 5 %) into percent, from 0 to 100.
pub fn parse_run_noise(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let num = t.strip_suffix('%').unwrap_or(t).trim();
    match num.parse::<f64>() {
        Ok(v) if (0.0..=100.0).contains(&v) => Ok(v),
        Ok(_) => Err(format!(
            "`{s}`: the run noise must be a percentage from 0 to 100, e.g. `5%` or `5`"
        )),
        Err(_) => Err(format!(
            "`{s}` is not a percentage; write e.g. `5%` or `5` (both mean 5 %)"
        )),
    }
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
    let load = |p: &[PathBuf]| match load_runs_skipping(p) {
        Ok((runs, skipped)) => {
            out::skipped_warnings("compare", &skipped);
            Ok(runs)
        }
        Err(e) => {
            out::message("compare", e);
            Err(())
        }
    };
    let (Ok(base), Ok(cand)) = (load(&base_paths), load(&cand_paths)) else {
        return ExitCode::from(2);
    };
    let rules = Rules {
        threshold: args.threshold,
        min_share: args.min_share,
        gate: args.gate,
        run_noise: args.run_noise,
        alpha: 0.05,
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
        // The range the message names, both ends included.
        assert_eq!(parse_threshold("1000%"), Ok(1000.0));
        assert_eq!(parse_threshold("0"), Ok(0.0));
        let e = parse_threshold("1000.1%").unwrap_err();
        assert!(e.contains("from 0 to 1000"), "{e}");
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
        assert_eq!(parse_run_noise("5%"), Ok(5.0));
        assert_eq!(parse_run_noise("0"), Ok(0.0));
        assert!(parse_run_noise("101").unwrap_err().contains("run noise"));
        assert!(parse_run_noise("nan").is_err());
    }
}
