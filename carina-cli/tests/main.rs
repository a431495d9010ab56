//! The integration tests of the `carina` command line, as one test binary: one module per
//! behaviour, under `tests/main/`, and the helpers they share in `common`. One binary links the
//! CLI once; a binary per file linked it once per file (14 times).
//!
//! Run one behaviour with a filter, e.g. `cargo test -p carina-cli --test main compare::`. The
//! browser test is ignored by default (it needs `chromium` on PATH):
//! `cargo test -p carina-cli --test main -- --ignored report_browser`.
//!
//! `autotests` is off in Cargo.toml, so a file under `tests/` runs only when it is declared here;
//! `every_test_file_is_declared` fails on one that is not.

#[path = "main/common.rs"]
mod common;

#[path = "main/compare.rs"]
mod compare;
#[path = "main/doctor.rs"]
mod doctor;
#[path = "main/edges.rs"]
mod edges;
#[path = "main/export.rs"]
mod export;
#[path = "main/fleet.rs"]
mod fleet;
#[path = "main/forecast.rs"]
mod forecast;
#[path = "main/output_errors.rs"]
mod output_errors;
#[path = "main/prometheus.rs"]
mod prometheus;
#[path = "main/report.rs"]
mod report;
#[path = "main/report_browser.rs"]
mod report_browser;
#[path = "main/run.rs"]
mod run;
#[path = "main/run_killed.rs"]
mod run_killed;
#[path = "main/run_signals.rs"]
mod run_signals;
#[path = "main/serve.rs"]
mod serve;
#[path = "main/serve_live.rs"]
mod serve_live;
#[path = "main/simulate.rs"]
mod simulate;
#[path = "main/summary.rs"]
mod summary;
#[path = "main/terminal_escapes.rs"]
mod terminal_escapes;

/// With `autotests` off, a test file that is not declared above would silently never run.
#[test]
fn every_test_file_is_declared() {
    let tests = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let me = std::fs::read_to_string(tests.join("main.rs")).unwrap();
    let mut files = Vec::new();
    for dir in [tests.clone(), tests.join("main")] {
        for e in std::fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            if path.extension().is_some_and(|x| x == "rs") {
                let rel = path
                    .strip_prefix(&tests)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_owned();
                if rel != "main.rs" {
                    files.push(rel);
                }
            }
        }
    }
    assert!(files.len() > 10, "{files:?}");
    for rel in files {
        let stem = rel
            .trim_end_matches(".rs")
            .rsplit('/')
            .next()
            .unwrap()
            .to_owned();
        let declared = if rel.contains('/') {
            me.contains(&format!("#[path = \"{rel}\"]\nmod {stem};"))
        } else {
            me.contains(&format!("\nmod {stem};"))
        };
        assert!(
            declared,
            "tests/{rel} is not a module of tests/main.rs: it never runs"
        );
    }
}
