//! The `carina` command line's commands as a library, so they are tested directly and the
//! binary stays a thin dispatcher. Each command module has an `Args` (clap) and a `run`.
//!
//! # Public API
//! One module per command: [`runcmd`] (`carina run`), [`report`], `serve` (feature `serve`, on by
//! default: the report served live, with an incremental run-file watcher), [`summary`] (with the fleet
//! view), [`compare`], [`forecast`], [`export`], [`simulate`], [`doctor`], and `prometheus`
//! (feature `prometheus`). Shared: [`input`] (input paths: regular files only, checked
//! without blocking, with a size bound), [`load`] (run files from files or directories, errors naming
//! the file and line) and [`out`] (writing to stdout/stderr without panicking: quiet on a broken
//! pipe, exit 1 on other write errors). Every analysis command reads a run through one internal
//! view (`view::RunView`: headline, cut, kind, scope, share, progress, per-step rows); figures are
//! formatted by `carina_runtime::format`.

pub mod compare;
pub mod doctor;
pub mod export;
pub mod forecast;
#[cfg(test)]
mod import_graph;
pub mod input;
pub mod load;
pub mod out;
#[cfg(feature = "prometheus")]
pub mod prometheus;
pub mod report;
pub mod runcmd;
#[cfg(feature = "serve")]
pub mod serve;
pub mod simulate;
pub mod summary;
pub(crate) mod view;
