//! `carina forecast` (being written).

use std::process::ExitCode;

/// Arguments of `carina forecast`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs the command.
pub fn run(_args: &Args) -> ExitCode {
    eprintln!("carina: this command is not available in this build yet");
    ExitCode::from(2)
}
