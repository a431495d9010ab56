//! The data examples of the docs are read out of the .md files and parsed by the real code, so a
//! doc edit (or a code change) that breaks an example fails the suite. An example is the fenced
//! block right after an `<!-- example: NAME -->` line. The Rust snippets are doctests (the
//! facade's `src/lib.rs` and this package's `doc_snippets.rs`); the checks here also keep their
//! fences honest: every block says its language, and every `no_run` says why.

use carina::control::schedule::Schedule;
use carina_runtime::IntensitySeries;
use carina_runtime::reader::{parse_records, parse_run_file};
use carina_runtime::record::Record;
use jiff::Timestamp;
use jiff::civil::date;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The repository root (this package lives in `tests/`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(doc: &str) -> String {
    let path = root().join(doc);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// README.md and every docs/*.md, as (repository-relative path, text).
fn documents() -> Vec<(String, String)> {
    let mut names = vec!["README.md".to_owned()];
    let mut docs: Vec<String> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".md"))
        .map(|n| format!("docs/{n}"))
        .collect();
    docs.sort();
    names.extend(docs);
    names.into_iter().map(|n| (n.clone(), read(&n))).collect()
}

/// The text of the fenced block that follows `<!-- example: NAME -->` in `doc`.
fn example(doc: &str, name: &str) -> String {
    let text = read(doc);
    let marker = format!("<!-- example: {name} -->");
    let mut lines = text.lines().skip_while(|l| l.trim() != marker);
    assert!(lines.next().is_some(), "{doc} has no `{marker}` line");
    let fence = lines.next().unwrap_or_default();
    assert!(
        fence.trim_start().starts_with("```"),
        "{doc}: `{marker}` must be followed by a fenced block, found {fence:?}"
    );
    let mut body = String::new();
    for line in lines {
        if line.trim() == "```" {
            return body;
        }
        body.push_str(line);
        body.push('\n');
    }
    panic!("{doc}: the block after `{marker}` is not closed");
}

fn utc(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn berlin(y: i16, m: i8, d: i8, h: i8, min: i8) -> Timestamp {
    date(y, m, d)
        .at(h, min, 0, 0)
        .in_tz("Europe/Berlin")
        .unwrap()
        .timestamp()
}

#[test]
fn every_example_marker_has_a_test() {
    let tested: BTreeSet<&str> = [
        "carbon-csv",
        "criterion-manifest",
        "run-file-jsonl",
        "schedule-toml",
    ]
    .into();
    let mut found = BTreeSet::new();
    for (doc, text) in documents() {
        for line in text.lines() {
            if let Some(rest) = line.trim().strip_prefix("<!-- example: ") {
                let name = rest.trim_end_matches("-->").trim().to_owned();
                assert!(
                    tested.contains(name.as_str()),
                    "{doc}: example `{name}` is read by no test of this module"
                );
                found.insert(name);
            }
        }
    }
    let missing: Vec<_> = tested.iter().filter(|n| !found.contains(**n)).collect();
    assert!(
        missing.is_empty(),
        "markers gone from the docs: {missing:?}"
    );
}

#[test]
fn the_intensity_csv_of_carbon_md_loads_and_holds_each_value_until_the_next() {
    let csv = example("docs/CARBON.md", "carbon-csv");
    let s = IntensitySeries::parse(&csv, Path::new("docs/CARBON.md")).unwrap();
    assert_eq!(
        s.range(),
        (utc("2026-11-28T00:00:00Z"), utc("2026-11-28T02:00:00Z"))
    );
    assert_eq!(s.at(utc("2026-11-28T00:30:00Z")), (310.0, true));
    assert_eq!(s.at(utc("2026-11-28T01:59:59Z")), (295.5, true));
    // The row written with a +01:00 offset is 02:00 UTC.
    assert_eq!(s.at(utc("2026-11-28T02:00:00Z")).0, 301.0);
    // "The header is optional": the same rows without it give the same series.
    let bare: String = csv
        .lines()
        .filter(|l| !l.starts_with("timestamp"))
        .map(|l| format!("{l}\n"))
        .collect();
    let b = IntensitySeries::parse(&bare, Path::new("docs/CARBON.md")).unwrap();
    assert_eq!(b.range(), s.range());
    assert_eq!(
        b.at(utc("2026-11-28T01:00:00Z")),
        s.at(utc("2026-11-28T01:00:00Z"))
    );
}

#[test]
fn timestamps_naming_the_same_instant_are_rejected_as_carbon_md_says() {
    // The example once ended with `02:00:00+01:00`, the instant of the row before it.
    let csv = example("docs/CARBON.md", "carbon-csv")
        .replace("2026-11-28T03:00:00+01:00", "2026-11-28T02:00:00+01:00");
    let e = IntensitySeries::parse(&csv, Path::new("grid.csv"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("grid.csv:5"), "{e}");
    assert!(e.contains("timestamp"), "{e}");
    assert!(e.contains("is not after the previous row"), "{e}");
}

#[test]
fn the_schedule_toml_of_control_md_loads_with_the_meaning_the_doc_gives() {
    let toml = example("docs/CONTROL.md", "schedule-toml");
    let s = Schedule::parse(&toml, "docs/CONTROL.md").unwrap();
    assert_eq!(s.time_zone_name(), "Europe/Berlin");
    assert_eq!(
        s.holidays(),
        &[
            date(2026, 12, 24),
            date(2026, 12, 25),
            date(2026, 12, 26),
            date(2026, 12, 31)
        ],
        "quoted and bare TOML dates are both holidays"
    );
    assert_eq!(s.offpeak_tariff(), Some(0.21));
    assert_eq!(s.windows().len(), 3);
    assert!(s.windows()[2].crosses_midnight());

    let tariff_at = |t| s.window_at(t).and_then(|w| w.tariff());
    let peak = |t| s.window_at(t).is_some();
    // Mon 2026-11-30 09:00: weekdays 08:00-20:00 at 0.38.
    assert_eq!(tariff_at(berlin(2026, 11, 30, 9, 0)), Some(0.38));
    assert!(!peak(berlin(2026, 11, 30, 20, 0)), "the end is excluded");
    // Sat 2026-11-28 18:00: Saturday's 17:00-21:00 at 0.31.
    assert_eq!(tariff_at(berlin(2026, 11, 28, 18, 0)), Some(0.31));
    // Sun 2026-11-29 noon: off-peak.
    assert!(!peak(berlin(2026, 11, 29, 12, 0)));
    // The overnight window starts Monday 22:00 and ends Tuesday 06:00, tariff-less.
    assert!(peak(berlin(2026, 11, 30, 23, 0)));
    assert!(peak(berlin(2026, 12, 1, 5, 59)));
    assert_eq!(tariff_at(berlin(2026, 12, 1, 5, 59)), None);
    // Thursday is not in "Mon-Wed,Fri": no window Thursday night.
    assert!(!peak(berlin(2026, 12, 3, 23, 0)));
    // A holiday has no window, and Wednesday 23 December's overnight window is cut at the
    // midnight that starts the holiday.
    assert!(!peak(berlin(2026, 12, 24, 10, 0)));
    assert!(peak(berlin(2026, 12, 23, 23, 0)));
    assert!(!peak(berlin(2026, 12, 24, 1, 0)));
}

#[test]
fn the_run_file_of_format_md_reads_and_its_figures_agree() {
    let text = example("docs/FORMAT.md", "run-file-jsonl");
    let path = Path::new("docs/FORMAT.md");
    let f = parse_run_file(&text, path).unwrap();
    assert!(f.is_complete());
    assert!(f.warnings.is_empty(), "{:?}", f.warnings);
    let end = f.end.as_ref().unwrap();

    // Generated run ids are `<UTC stamp>-<pid>-<8 hex>`.
    let parts: Vec<&str> = f.start.run_id.split('-').collect();
    assert_eq!(parts.len(), 3, "{}", f.start.run_id);
    let stamp = jiff::fmt::strtime::parse("%Y%m%dT%H%M%SZ", parts[0])
        .and_then(|p| p.to_datetime())
        .and_then(|d| d.in_tz("UTC"))
        .unwrap_or_else(|e| panic!("{}: {e}", parts[0]));
    assert_eq!(
        stamp.timestamp().as_second(),
        f.start.started_at.as_second(),
        "the stamp is the start, to the second"
    );
    assert_eq!(parts[1], f.start.pid.to_string());
    assert!(
        parts[2].len() == 8 && parts[2].chars().all(|c| c.is_ascii_hexdigit()),
        "{}",
        parts[2]
    );

    // Every step's thread is named by a `thread` record.
    let threads: BTreeSet<u32> = parse_records(&text, path)
        .records
        .iter()
        .filter_map(|r| match r {
            Record::Thread(t) => Some(t.index),
            _ => None,
        })
        .collect();
    for s in &f.steps {
        assert!(
            threads.contains(&s.thread),
            "step {} on thread {}",
            s.id,
            s.thread
        );
    }

    // Counts, items and conservation, as the run_end table says.
    let counted: u64 = f.summaries.iter().map(|s| s.count).sum();
    assert_eq!(end.steps, counted + end.dropped);
    let most_items = f.summaries.iter().map(|s| s.items).max().unwrap();
    assert_eq!(end.items, most_items);
    let self_sum: f64 = f.summaries.iter().map(|s| s.self_energy_j.0).sum();
    assert!(
        (self_sum + end.unattributed_j.0 - end.energy_j.0).abs() <= 1e-9 * end.energy_j.0,
        "{self_sum} + {} != {}",
        end.unattributed_j.0,
        end.energy_j.0
    );
    assert!(end.host_energy_j.0 >= end.energy_j.0);

    // Each co2e_g is its energy at the run's factor (the example rounds to 3 digits).
    let g_per_kwh = f.start.carbon.g_per_kwh;
    let check = |what: &str, energy_j: f64, co2e_g: f64| {
        let expect = energy_j / 3.6e6 * g_per_kwh;
        assert!(
            (co2e_g - expect).abs() <= 5e-3 * expect,
            "{what}: {co2e_g} g for {energy_j} J at {g_per_kwh} g/kWh (expected {expect})"
        );
    };
    check("run_end", end.energy_j.0, end.co2e_g.0);
    for s in &f.summaries {
        check(&s.name, s.energy_j.0, s.co2e_g.0);
        assert!(
            s.p50_s <= s.p95_s && s.p95_s <= s.max_s.0 * 1.016,
            "{}",
            s.name
        );
        assert!(s.self_wall_s.0 <= s.wall_s.0, "{}", s.name);
    }
    for s in &f.steps {
        check(&s.name, s.energy_j.0, s.co2e_g.0);
        let summary = f.summaries.iter().find(|x| x.name == s.name).unwrap();
        assert!(s.end_s.0 - s.start_s.0 <= summary.max_s.0, "step {}", s.id);
    }

    // wall_s is the time between started_at and ended_at.
    let wall = end
        .ended_at
        .duration_since(f.start.started_at)
        .as_secs_f64();
    assert!(
        (wall - end.wall_s.0).abs() < 0.05,
        "{wall} vs {}",
        end.wall_s.0
    );
}

#[test]
fn the_criterion_manifest_of_criterion_md_asks_for_the_criterion_carina_criterion_uses() {
    let manifest = example("docs/CRITERION.md", "criterion-manifest");
    let ours = read("carina-criterion/Cargo.toml");
    let dep = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("criterion = "))
            .map(str::to_owned)
    };
    let doc_dep = dep(&manifest).expect("the example names criterion");
    assert_eq!(
        Some(doc_dep),
        dep(&ours),
        "docs/CRITERION.md and carina-criterion/Cargo.toml ask for different criterion builds"
    );
    assert!(manifest.contains("carina-criterion = "));
    assert!(manifest.contains("[[bench]]") && manifest.contains("harness = false"));
}

#[test]
fn every_fence_names_its_language_and_every_no_run_says_why() {
    for (doc, text) in documents() {
        let mut open = false;
        let mut previous = "";
        for (i, line) in text.lines().enumerate() {
            let t = line.trim_start();
            if let Some(info) = t.strip_prefix("```") {
                if !open {
                    let info = info.trim();
                    assert!(
                        !info.is_empty(),
                        "{doc}:{}: a block without a language is compiled as Rust by rustdoc; \
                         name it (text, sh, toml, json, ...)",
                        i + 1
                    );
                    let attrs: Vec<&str> = info.split([',', ' ']).collect();
                    if attrs[0] == "rust" {
                        assert!(
                            !attrs.contains(&"ignore"),
                            "{doc}:{}: a Rust snippet is compiled, never ignored",
                            i + 1
                        );
                        if attrs.contains(&"no_run") {
                            assert!(
                                previous.trim().starts_with("<!-- no_run: "),
                                "{doc}:{}: a `no_run` snippet needs `<!-- no_run: why -->` on the \
                                 line above",
                                i + 1
                            );
                        }
                    }
                }
                open = !open;
            }
            previous = line;
        }
        assert!(!open, "{doc}: a fenced block is not closed");
    }
}

#[test]
fn the_costs_in_the_readme_are_the_code_s() {
    let readme = read("README.md");
    let ring_bytes = carina::DEFAULT_BUFFER_CAPACITY * carina_runtime::recorder::RING_SLOT_BYTES;
    assert_eq!(carina_runtime::recorder::RING_SLOT_BYTES, 16);
    assert_eq!(carina::DEFAULT_BUFFER_CAPACITY, 65_536);
    assert_eq!(ring_bytes, 1 << 20);
    assert!(readme.contains("**1 MiB per thread** at the default 65 536"));
    assert!(readme.contains("x 16 bytes"));
    assert_eq!(
        carina_probes::DEFAULT_LIVENESS_WAIT,
        std::time::Duration::from_millis(30)
    );
    assert!(readme.contains("**30 ms** (`carina_probes::DEFAULT_LIVENESS_WAIT`)"));
    assert_eq!(
        carina::DEFAULT_SAMPLE_INTERVAL,
        std::time::Duration::from_millis(100)
    );
    assert!(readme.contains("`.sample_interval(d)` (default 100 ms)"));
    let arch = read("docs/ARCHITECTURE.md");
    assert!(arch.contains("16-byte slots"));
    assert!(arch.contains("1 MiB at the default 65 536 events"));
}
