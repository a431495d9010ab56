//! The fuzz targets' bodies (issue 18, item 15), shared by the libFuzzer binaries in
//! `fuzz_targets/` and by the regression replay of the tests package
//! (`tests/fuzz_regressions.rs` includes this file), so a saved input is replayed through
//! exactly the code that failed.
//!
//! Each function takes the fuzzer's bytes and returns `Ok` or `Err` with the error's text: a
//! clean refusal is as good as a success. What must never happen is a panic, a hang or an
//! unbounded allocation. Inputs go through files where the command reads files, so the readers'
//! own byte handling (invalid UTF-8, partial last lines) is what is fuzzed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// A target's body: the fuzzer's bytes in, `Ok` or a clean refusal out.
pub type Target = fn(&[u8]) -> Result<(), String>;

/// Every target, by the name of its binary and of its `fuzz/regressions/<name>/` directory.
pub const TARGETS: &[(&str, Target)] = &[
    ("run_file", run_file),
    ("merge", merge),
    ("schedule_toml", schedule_toml),
    ("intensity_csv", intensity_csv),
    ("cli_summary", cli_summary),
    ("cli_export", cli_export),
    ("cli_report", cli_report),
    ("cli_compare", cli_compare),
    ("cli_forecast", cli_forecast),
];

/// A scratch directory holding `data` as `run.jsonl`; both live until the guard is dropped.
fn with_file(data: &[u8], name: &str) -> Result<(tempfile::TempDir, PathBuf), String> {
    let dir = tempfile::tempdir().map_err(|e| format!("scratch directory: {e}"))?;
    let path = dir.path().join(name);
    std::fs::write(&path, data).map_err(|e| format!("scratch file: {e}"))?;
    Ok((dir, path))
}

fn exit_ok(code: ExitCode) -> Result<(), String> {
    if code == ExitCode::SUCCESS {
        Ok(())
    } else {
        Err(format!("{code:?}"))
    }
}

/// Parses a `clap::Args` struct of the CLI from words, as the `carina` binary would.
fn parse_args<A: clap::Args>(words: &[&str]) -> Result<A, String> {
    #[derive(clap::Parser)]
    struct Wrap<A: clap::Args> {
        #[command(flatten)]
        args: A,
    }
    let mut argv = vec!["carina"];
    argv.extend_from_slice(words);
    <Wrap<A> as clap::Parser>::try_parse_from(argv)
        .map(|w| w.args)
        .map_err(|e| e.to_string())
}

fn path_str(p: &Path) -> Result<&str, String> {
    p.to_str()
        .ok_or_else(|| "scratch path is not UTF-8".to_owned())
}

/// The run-file reader: the whole-file reader (what every command uses) and the record reader
/// (what the merge and `carina run` use), then the accessors the commands call.
pub fn run_file(data: &[u8]) -> Result<(), String> {
    let (_dir, path) = with_file(data, "run.jsonl")?;
    let records = carina_runtime::reader::read_records(&path).map_err(|e| e.to_string());
    if let Ok(r) = &records {
        let rf = r.run_file();
        let _ = (rf.is_complete(), rf.progress(), rf.power_totals());
        let _ = rf.partial_cut_s();
    }
    let run = carina_runtime::read_run_file(&path).map_err(|e| e.to_string())?;
    let _ = (run.is_complete(), run.progress(), run.power_totals());
    let _ = run.partial_cut_s();
    if let Some(cut) = run.partial_cut_s() {
        let _ = run.progress_until(cut);
    }
    records.map(|_| ())
}

/// The merge of child run files: the input is split at its first NUL byte into two children of
/// one run (`<run_id>.child-1.jsonl`, `.child-2.jsonl`), then merged as `carina run` does.
pub fn merge(data: &[u8]) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| format!("scratch directory: {e}"))?;
    let (a, b) = match data.iter().position(|&c| c == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let write = |name: &str, bytes: &[u8]| {
        std::fs::write(dir.path().join(name), bytes).map_err(|e| format!("scratch file: {e}"))
    };
    write("fuzz-run.child-1.jsonl", a)?;
    if let Some(b) = b {
        write("fuzz-run.child-2.jsonl", b)?;
    }
    let merged = carina_runtime::merge::collect(dir.path(), "fuzz-run", None);
    let _ = (
        merged.merged(),
        merged.steps(),
        merged.items(),
        merged.notes(),
    );
    let _ = merged.additions();
    if merged.problems.is_empty() {
        Ok(())
    } else {
        Err(merged.problems.join("; "))
    }
}

/// A peak schedule (`--schedule FILE`, TOML).
pub fn schedule_toml(data: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(data).map_err(|e| e.to_string())?;
    carina_control::schedule::Schedule::parse(text, "fuzz.toml")
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// A carbon-intensity series (`--carbon-intensity FILE`, CSV), through the file loader.
pub fn intensity_csv(data: &[u8]) -> Result<(), String> {
    let (_dir, path) = with_file(data, "intensity.csv")?;
    let series = carina_runtime::IntensitySeries::load(&path).map_err(|e| e.to_string())?;
    let (from, to) = series.range();
    let _ = series.at(from);
    let _ = series.at(to);
    Ok(())
}

/// `carina summary FILE`.
pub fn cli_summary(data: &[u8]) -> Result<(), String> {
    let (_dir, path) = with_file(data, "run.jsonl")?;
    let args: carina_cli::summary::Args = parse_args(&[path_str(&path)?])?;
    exit_ok(carina_cli::summary::run(&args))
}

/// `carina export FILE --steps -o OUT` (CSV).
pub fn cli_export(data: &[u8]) -> Result<(), String> {
    let (dir, path) = with_file(data, "run.jsonl")?;
    let out = dir.path().join("out.csv");
    let args: carina_cli::export::Args =
        parse_args(&[path_str(&path)?, "--steps", "-o", path_str(&out)?])?;
    exit_ok(carina_cli::export::run(&args))
}

/// `carina report FILE -o OUT.html`.
pub fn cli_report(data: &[u8]) -> Result<(), String> {
    let (dir, path) = with_file(data, "run.jsonl")?;
    let out = dir.path().join("report.html");
    let args: carina_cli::report::Args = parse_args(&[path_str(&path)?, "-o", path_str(&out)?])?;
    exit_ok(carina_cli::report::run(&args))
}

/// `carina compare FILE FILE --format json` (the file against itself: every figure's ratio is
/// computed, including those of zero and huge values).
pub fn cli_compare(data: &[u8]) -> Result<(), String> {
    let (_dir, path) = with_file(data, "run.jsonl")?;
    let p = path_str(&path)?;
    let args: carina_cli::compare::Args = parse_args(&[p, p, "--format", "json"])?;
    exit_ok(carina_cli::compare::run(&args))
}

/// `carina forecast FILE --total-items N`, N taken from the input's first byte.
pub fn cli_forecast(data: &[u8]) -> Result<(), String> {
    let (_dir, path) = with_file(data, "run.jsonl")?;
    let total = match data.first() {
        Some(&b) => (u64::from(b) + 1) * 1000,
        None => 1000,
    };
    let total = total.to_string();
    let args: carina_cli::forecast::Args =
        parse_args(&[path_str(&path)?, "--total-items", &total])?;
    exit_ok(carina_cli::forecast::run(&args))
}
