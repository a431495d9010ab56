//! The `carina` command line.
//!
//! `carina run` measures any command; `report` writes the HTML dashboard and `serve` serves it
//! live; `summary`, `compare`, `forecast` and `export` read run files; `simulate` plays a cycle
//! under each execution policy (`docs/CONTROL.md`); `doctor` explains what this machine can
//! measure.
//!
//! Exit status: 0 on success, 2 on bad input (a flag out of range, an unreadable file; the
//! message names it), 1 when the output cannot be written; a reader that closes the pipe early
//! (`| head`) is not an error (`carina_cli::out`).

#[cfg(feature = "serve")]
use carina_cli::serve;
use carina_cli::{compare, doctor, export, forecast, report, runcmd, simulate, summary};
use clap::{Parser, Subcommand};
use std::io::Write;
use std::process::ExitCode;

/// Energy- and carbon-aware execution of recurrent batch jobs.
#[derive(Debug, Parser)]
#[command(name = "carina", version, propagate_version = true)]
#[command(
    after_help = "Docs: docs/CLI.md (every command, its method and exit codes), docs/FORMAT.md (run files), docs/CONTROL.md (policies, schedules, the simulator)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a command and measure its energy and CO2e (the whole process tree).
    Run(runcmd::Args),
    /// Write a self-contained HTML dashboard of one or more runs.
    Report(report::Args),
    /// Serve the report's dashboard and keep it current as run files grow.
    #[cfg(feature = "serve")]
    Serve(serve::Args),
    /// Print a run's headline figures and per-step table.
    Summary(summary::Args),
    /// Compare energy and time per item between base and candidate runs; exit 1 on a regression.
    Compare(compare::Args),
    /// Project runtime, energy and CO2e of a full cycle from a partial run.
    Forecast(forecast::Args),
    /// Write runs as CSV: one row per run, or per (run, step) with --steps.
    Export(export::Args),
    /// Show every energy source, available or not, with the reason and the fix.
    Doctor(doctor::Args),
    /// What one cycle of a job costs under each policy: makespan, kWh, CO2e and cost for
    /// baseline, throttle, offpeak-boost and defer.
    #[command(long_about = simulate::LONG_ABOUT, after_help = simulate::EXAMPLES)]
    #[command(allow_negative_numbers = true)]
    Simulate(Box<simulate::Args>),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_exit(&e),
    };
    match cli.command {
        Command::Run(args) => runcmd::run(&args),
        Command::Report(args) => report::run(&args),
        #[cfg(feature = "serve")]
        Command::Serve(args) => serve::run(&args),
        Command::Summary(args) => summary::run(&args),
        Command::Compare(args) => compare::run(&args),
        Command::Forecast(args) => forecast::run(&args),
        Command::Export(args) => export::run(&args),
        Command::Doctor(args) => doctor::run(&args),
        Command::Simulate(args) => simulate::run(&args),
    }
}

/// What clap's own `Error::exit` does (help and version on stdout with status 0, usage errors on
/// stderr with status 2), except that a stdout that cannot be written (`carina --help >
/// /dev/full`) is an error, status 1, as for every command's output (`carina_cli::out`).
fn clap_exit(e: &clap::Error) -> ExitCode {
    let status = ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
    if e.use_stderr() {
        // Nowhere left to report a stderr that cannot be written.
        let _ = e.print();
        return status;
    }
    match e.print().and_then(|()| std::io::stdout().flush()) {
        Ok(()) => status,
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => status,
        Err(err) => {
            carina_cli::out::line(format_args!("carina: error: cannot write output: {err}"));
            ExitCode::from(1)
        }
    }
}
