//! The `carina` command line's commands as a library, so they are tested directly and the
//! binary stays a thin dispatcher. Each command module has an `Args` (clap) and a `run`.

pub mod compare;
pub mod doctor;
pub mod export;
pub mod forecast;
pub mod load;
pub mod out;
#[cfg(feature = "prometheus")]
pub mod prometheus;
pub mod report;
pub mod runcmd;
pub mod summary;
pub mod units;
