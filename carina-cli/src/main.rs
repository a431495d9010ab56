//! The `carina` command line.
//!
//! `carina simulate`: what one cycle of a recurrent batch job would cost in time, energy, CO2e
//! and money under each execution policy (see `docs/CONTROL.md`).
//!
//! Exit status: 0 on success, 2 on bad input (a flag out of range, an unreadable file; the
//! message names it), 1 when the output cannot be written.

mod simulate;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Energy- and carbon-aware execution of recurrent batch jobs.
#[derive(Debug, Parser)]
#[command(name = "carina", version, propagate_version = true)]
#[command(
    after_help = "Docs: docs/CONTROL.md (policies, schedules, the simulator's model), docs/FORMAT.md (run files)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// What one cycle of a job costs under each policy: makespan, kWh, CO2e and cost for
    /// baseline, throttle, offpeak-boost and defer.
    #[command(long_about = simulate::LONG_ABOUT, after_help = simulate::EXAMPLES)]
    #[command(allow_negative_numbers = true)]
    Simulate(Box<simulate::Args>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Simulate(args) => simulate::run(&args),
    }
}
