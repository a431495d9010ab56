//! Carina's integration tests, one binary: each module is one behaviour of the facade, checked
//! through real runs (memory sinks, fake powercap trees, fake GPUs) and real run files.
//!
//! One run may be installed per process, and the tests of this binary run on parallel threads,
//! so every test holds `carina::testing::serial()`: those that start a run (or touch the
//! environment) because only one run may be installed, the others because the CPU they burn on
//! another thread would be part of the process's CPU time, which splits a run's energy across
//! its threads. The one exception is `ui`, whose work happens in child `cargo` processes.

mod common;

mod architecture;
mod carbon;
mod conservation;
mod cpu_attribution;
mod crash_durability;
mod device_share;
mod disabled;
mod doc_examples;
mod finish_with;
mod folded_counts;
mod full_disk;
mod fuzz_regressions;
mod governor;
mod macro_step;
mod power_timeline;
mod rapl_end_to_end;
mod reader;
mod run_file;
mod run_file_start;
mod second_start;
mod settings;
mod short_run;
mod soak;
mod step_exit_hook;
mod step_misuse;
mod step_records;
mod summary_display;
mod ui;
