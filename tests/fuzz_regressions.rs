//! Every input a fuzz target ever failed on (`fuzz/regressions/<target>/`) replays through the
//! same function the libFuzzer binary calls (`fuzz/src/lib.rs`, included here), under plain
//! `cargo test`: no panic, and a clean `Ok` or `Err`. The seed corpus of each target replays
//! too, so a target whose function rejects every real run file shows up here.

#[allow(dead_code)]
#[path = "../fuzz/src/lib.rs"]
mod targets;

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `dir` (none when it does not exist), sorted.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Runs `f` on each input, collecting the ones that panicked.
fn replay(target: &str, f: fn(&[u8]) -> Result<(), String>, files: &[PathBuf]) -> Vec<String> {
    let mut failed = Vec::new();
    for path in files {
        let data = std::fs::read(path).unwrap();
        match std::panic::catch_unwind(|| f(&data)) {
            Ok(Ok(())) | Ok(Err(_)) => {}
            Err(_) => failed.push(format!("{target}: {} panicked", path.display())),
        }
    }
    failed
}

#[test]
fn every_saved_failing_input_is_handled_cleanly() {
    let _s = crate::common::serial();
    let mut failed = Vec::new();
    let mut replayed = 0;
    for (name, f) in targets::TARGETS {
        let files = inputs(&fuzz_dir().join("regressions").join(name));
        replayed += files.len();
        failed.extend(replay(name, *f, &files));
    }
    assert!(failed.is_empty(), "{failed:#?}");
    // The directory exists and holds cases: an empty replay would pass for a wrong path.
    assert!(
        replayed > 0,
        "no regression input found under {}",
        fuzz_dir().display()
    );
}

#[test]
fn seed_run_files_are_read_and_analysed() {
    let _s = crate::common::serial();
    let seeds = inputs(&fuzz_dir().join("seeds").join("run_file"));
    assert!(
        !seeds.is_empty(),
        "no seed run file under fuzz/seeds/run_file"
    );
    for seed in &seeds {
        let data = std::fs::read(seed).unwrap();
        // A real run file is read and every analysis command succeeds on it: a target that
        // rejected everything would fuzz nothing but its error path.
        for (name, f) in targets::TARGETS {
            if [
                "run_file",
                "cli_summary",
                "cli_export",
                "cli_report",
                "cli_compare",
            ]
            .contains(name)
            {
                assert_eq!(f(&data), Ok(()), "{name} on {}", seed.display());
            }
        }
    }
}

#[test]
fn a_torn_last_line_is_skipped_and_the_rest_is_read() {
    let _s = crate::common::serial();
    // Issue 18 item 1: kill -9 cut a multi-byte character in the last line; the file was
    // rejected whole. Every command reads it now (the torn line skipped with a warning).
    let dir = fuzz_dir().join("regressions");
    for (name, f) in targets::TARGETS {
        let path = dir.join(name).join("item01_cut_multibyte_last_line.jsonl");
        if path.exists() {
            let data = std::fs::read(&path).unwrap();
            assert_eq!(f(&data), Ok(()), "{name} on {}", path.display());
        }
    }
}

#[test]
fn impossible_values_are_refused_by_file_and_line() {
    let _s = crate::common::serial();
    // Issue 18 item 11: negative and 1e308 energies were accepted ([NaN, NaN]% in compare,
    // 309-digit CSV numbers); they are refused, naming the file, the line and the field.
    let dir = fuzz_dir().join("regressions").join("run_file");
    for case in ["item11_negative_energy.jsonl", "item11_energy_1e308.jsonl"] {
        let data = std::fs::read(dir.join(case)).unwrap();
        let err = targets::run_file(&data).expect_err(case);
        assert!(
            err.contains("run.jsonl:") && err.contains("energy_j"),
            "{case}: {err}"
        );
        // A number a person can read: 1e308 as `1e308`, not 309 digits.
        assert!(err.len() < 200, "{case}: {err}");
        assert_ne!(targets::cli_compare(&data), Ok(()), "{case}");
    }
}

#[test]
fn a_child_file_of_the_run_is_merged() {
    let _s = crate::common::serial();
    let seeds = inputs(&fuzz_dir().join("seeds").join("merge"));
    assert!(!seeds.is_empty(), "no seed under fuzz/seeds/merge");
    for seed in &seeds {
        let data = std::fs::read(seed).unwrap();
        // The merge target's seed is a child of its run: merged, not refused, so that fuzzing
        // reaches the merge itself rather than only the ownership check.
        assert_eq!(targets::merge(&data), Ok(()), "merge on {}", seed.display());
    }
}

#[test]
fn seed_schedules_and_intensity_series_parse() {
    let _s = crate::common::serial();
    for (name, f) in targets::TARGETS {
        if !["schedule_toml", "intensity_csv"].contains(name) {
            continue;
        }
        let seeds = inputs(&fuzz_dir().join("seeds").join(name));
        assert!(!seeds.is_empty(), "no seed for {name}");
        for seed in &seeds {
            let data = std::fs::read(seed).unwrap();
            assert_eq!(f(&data), Ok(()), "{name} on {}", seed.display());
        }
    }
}
