//! `carina summary`, run as the built binary on hand-written run files.

use crate::common::*;
use std::path::{Path, PathBuf};

fn complete_run(dir: &Path) -> PathBuf {
    let lines = run_lines(
        "scenario-db",
        "run-complete",
        &[
            ("load", steady(10, 0.2, 0, 2.0)),
            ("simulate", steady(40, 1.0, 25, 36.0)),
        ],
        true,
    );
    write_run(dir, "complete.jsonl", &lines)
}

#[test]
fn complete_run_has_headline_and_aligned_step_table() {
    let dir = tempfile::tempdir().unwrap();
    let p = complete_run(dir.path());
    let o = carina(&["summary", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    let out = stdout(&o);
    for want in [
        "scenario-db",
        "run-complete",
        "2026-11-28T05:12:00Z",
        "estimated",
        "model",
        "CO2e",
        "1000",
        "unattributed",
        "dropped",
        "simulate",
        "load",
        "p50",
        "p95",
        "self energy",
        "share",
    ] {
        assert!(out.contains(want), "no {want:?} in:\n{out}");
    }
    assert!(!out.contains("INCOMPLETE"), "{out}");
    // Energy: 40 x 36 + 10 x 2 = 1460 J, + 1 % unattributed = 1474.6 J = 0.410 Wh.
    assert!(out.contains("0.410 Wh"), "{out}");
    // Wh per item of simulate: 1440 J / 1000 items / 3600 = 0.0004 Wh.
    assert!(out.contains("0.000400 Wh"), "{out}");
    // Aligned: the header and every row of the table have the same width up to the last column.
    let table: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("step "))
        .take_while(|l| !l.is_empty())
        .collect();
    assert_eq!(table.len(), 4, "header, rule, 2 rows:\n{out}");
    let w = table[1].len();
    assert!(table.iter().all(|l| l.len() == w), "not aligned:\n{out}");
    // Sorted by energy: simulate first.
    assert!(table[2].starts_with("simulate"), "{out}");
}

#[test]
fn crashed_run_is_incomplete_with_figures_from_steps() {
    let dir = tempfile::tempdir().unwrap();
    let lines = run_lines(
        "scenario-db",
        "run-crashed",
        &[("simulate", steady(20, 1.0, 25, 36.0))],
        false,
    );
    let p = write_run(dir.path(), "crashed.jsonl", &lines);
    let o = carina(&["summary", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("INCOMPLETE"), "{out}");
    // 20 x 36 J = 720 J, 500 items, 20 s.
    assert!(out.contains("720 J"), "{out}");
    assert!(out.contains("500"), "{out}");
    assert!(out.contains("20.0 s"), "{out}");
    assert!(out.contains("simulate"), "{out}");
}

#[test]
fn crashed_run_with_power_records_counts_energy_outside_steps() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = run_lines(
        "scenario-db",
        "run-crashed-power",
        &[("simulate", steady(20, 1.0, 25, 36.0))],
        false,
    );
    // 22 one-second windows of 40 J: 880 J in all, 160 J of it outside the steps.
    for k in 0..22 {
        lines.push(format!(
            r#"{{"type":"power","start_s":{k}.0,"end_s":{}.0,"energy_j":40.0,"co2e_g":0.0044}}"#,
            k + 1
        ));
    }
    let p = write_run(dir.path(), "crashed.jsonl", &lines);
    let o = carina(&["summary", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("INCOMPLETE"), "{out}");
    assert!(out.contains("880 J"), "{out}");
    assert!(out.contains("22.0 s"), "{out}");
    assert!(out.contains("160 J"), "unattributed: {out}");
}

#[test]
fn malformed_line_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = run_lines(
        "scenario-db",
        "run-bad",
        &[("simulate", steady(3, 1.0, 25, 36.0))],
        true,
    );
    // A whole line with a wrong value (not a write cut short, which readers may skip as torn).
    lines[2] = "{\"type\":\"step\",\"name\":\"simulate\",\"id\":\"three\"}".into();
    let p = write_run(dir.path(), "bad.jsonl", &lines);
    let o = carina(&["summary", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("bad.jsonl:3"), "{err}");
}

#[test]
fn missing_and_empty_files_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.jsonl");
    let o = carina(&["summary", missing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("nope.jsonl"), "{}", stderr(&o));

    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let o = carina(&["summary", empty.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("empty.jsonl"), "{}", stderr(&o));
}

/// A crashed run whose set-up step declares all 400000 items in one record, while `simulate`
/// has done 50 instances of 64 items.
fn crashed_with_setup_step(dir: &Path) -> PathBuf {
    let lines = run_lines(
        "grid",
        "run-setup",
        &[
            ("generate_grid", steady(1, 0.5, 400_000, 1.0)),
            ("simulate", steady(50, 1.0, 64, 36.0)),
        ],
        false,
    );
    write_run(dir, "crashed.jsonl", &lines)
}

fn headline_value<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.trim_start().strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key:?} line in:\n{out}"))
        .trim()
}

#[test]
fn crashed_run_counts_items_of_the_progress_step_not_a_setup_step() {
    let dir = tempfile::tempdir().unwrap();
    let p = crashed_with_setup_step(dir.path());
    let o = carina(&["summary", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("INCOMPLETE"), "{out}");
    // 50 x 64 items; energy 1 + 50 x 36 = 1801 J, 0.5628 J = 0.000156 Wh per item.
    assert_eq!(headline_value(&out, "items "), "3200", "{out}");
    assert_eq!(headline_value(&out, "per item "), "0.000156 Wh", "{out}");
}

#[test]
fn progress_step_ties_go_to_the_larger_total_and_single_instances_to_the_largest() {
    let dir = tempfile::tempdir().unwrap();
    // Same number of item-bearing instances: the larger item total (5 x 20) wins.
    let tie = run_lines(
        "job",
        "tie",
        &[
            ("small", steady(5, 1.0, 10, 1.0)),
            ("large", steady(5, 1.0, 20, 1.0)),
            ("setup", steady(9, 0.1, 0, 1.0)),
        ],
        false,
    );
    let p = write_run(dir.path(), "tie.jsonl", &tie);
    let out = stdout(&carina(&["summary", p.to_str().unwrap()]));
    assert_eq!(headline_value(&out, "items "), "100", "{out}");
    // No name has more than one item-bearing instance: the largest total.
    let single = run_lines(
        "job",
        "single",
        &[
            ("a", steady(1, 1.0, 10, 1.0)),
            ("b", steady(1, 1.0, 30, 1.0)),
        ],
        false,
    );
    let p = write_run(dir.path(), "single.jsonl", &single);
    let out = stdout(&carina(&["summary", p.to_str().unwrap()]));
    assert_eq!(headline_value(&out, "items "), "30", "{out}");
}

#[test]
fn complete_run_keeps_run_end_items() {
    let dir = tempfile::tempdir().unwrap();
    let lines = run_lines(
        "grid",
        "run-setup-done",
        &[
            ("generate_grid", steady(1, 0.5, 400_000, 1.0)),
            ("simulate", steady(50, 1.0, 64, 36.0)),
        ],
        true,
    );
    let p = write_run(dir.path(), "done.jsonl", &lines);
    let out = stdout(&carina(&["summary", p.to_str().unwrap()]));
    // The test writer's `run_end.items` is the largest per-name total.
    assert_eq!(headline_value(&out, "items "), "400000", "{out}");
}

#[test]
fn truncated_last_line_is_warned_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let lines = run_lines(
        "scenario-db",
        "run-cut",
        &[("simulate", steady(20, 1.0, 25, 36.0))],
        false,
    );
    let p = write_truncated(dir.path(), "cut.jsonl", &lines);
    let o = carina(&["summary", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    let err = stderr(&o);
    let n = lines.len();
    assert!(
        err.lines()
            .any(|l| l.starts_with("carina summary: warning: ")
                && l.contains(&format!("cut.jsonl:{n}:"))
                && l.contains("truncated")),
        "{err}"
    );
    // The 19 whole steps are still counted, and the warning is not in the table.
    let out = stdout(&o);
    assert_eq!(headline_value(&out, "items "), "475", "{out}");
    assert!(!out.contains("truncated"), "{out}");
}

#[test]
fn the_host_share_its_energy_and_the_scope_are_shown() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = run_lines(
        "job",
        "shared",
        &[("work", steady(10, 1.0, 10, 11.4))],
        true,
    );
    // 114 J of steps + 1 % unattributed = 115.14 J, at a 0.49 share of the host.
    set_host_share(&mut lines, 0.49);
    let p = write_run(dir.path(), "shared.jsonl", &lines);
    let out = stdout(&carina(&["summary", p.to_str().unwrap()]));
    assert_eq!(
        headline_value(&out, "host share "),
        "0.49 (49.0 %)",
        "{out}"
    );
    // 115.14 J / 0.49 = 235 J.
    assert_eq!(headline_value(&out, "host energy "), "235 J", "{out}");
    assert_eq!(headline_value(&out, "scope "), "process", "{out}");

    // host_energy_j 0 (a source that does not see the host): n/a, never a division by 0.
    set_host_share(&mut lines, 0.0);
    let p = write_run(dir.path(), "no-host.jsonl", &lines);
    let out = stdout(&carina(&["summary", p.to_str().unwrap()]));
    assert!(
        headline_value(&out, "host share ").starts_with("n/a"),
        "{out}"
    );
    assert_eq!(headline_value(&out, "host energy "), "n/a", "{out}");
    // A crashed run has no run_end, so no host energy: n/a.
    let crashed = run_lines("job", "c", &[("work", steady(3, 1.0, 1, 1.0))], false);
    let p = write_run(dir.path(), "crashed.jsonl", &crashed);
    let out = stdout(&carina(&["summary", p.to_str().unwrap()]));
    assert!(
        headline_value(&out, "host share ").starts_with("n/a"),
        "{out}"
    );
}

/// A crashed run whose steps go on after its last `power` record: power windows cover 0..2 s
/// (20 J); `work` steps end at 0.9, 1.9, 2.6 and 3.2 s, 10 items and 9 J each.
fn crashed_past_the_last_power_record(dir: &Path) -> PathBuf {
    let mut lines = vec![run_start("job", "cut")];
    for (id, (a, b)) in [(0.0, 0.9), (0.9, 1.9), (1.9, 2.6), (2.6, 3.2)]
        .into_iter()
        .enumerate()
    {
        lines.push(step("work", id as u64 + 1, a, b, 10, 9.0));
    }
    lines.push(power(0.0, 1.0, 10.0));
    lines.push(power(1.0, 2.0, 10.0));
    write_run(dir, "cut.jsonl", &lines)
}

#[test]
fn a_crashed_run_stops_energy_items_and_wall_time_at_one_cut() {
    let dir = tempfile::tempdir().unwrap();
    let p = crashed_past_the_last_power_record(dir.path());
    let o = carina(&["summary", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    let out = stdout(&o);
    // The cut is the end of the last power record, 2 s: 20 J, and the two steps that ended
    // by then (20 items, 18 J). Before: 40 items over 3.2 s, the step 36 J of a 20 J run (180 %).
    assert!(
        headline_value(&out, "energy ").starts_with("20.0 J"),
        "{out}"
    );
    assert!(
        headline_value(&out, "wall time ").starts_with("2.00 s"),
        "{out}"
    );
    assert_eq!(headline_value(&out, "items "), "20", "{out}");
    // 20 J / 20 items = 1 J = 0.000278 Wh per item.
    assert_eq!(headline_value(&out, "per item "), "0.000278 Wh", "{out}");
    assert!(
        out.contains("2 step record(s) that ended later are left out"),
        "{out}"
    );
    let row = out
        .lines()
        .find(|l| l.starts_with("work "))
        .unwrap_or_else(|| panic!("no work row: {out}"));
    assert!(row.contains(" 2 "), "two instances: {row}");
    assert!(row.contains("90.0 %"), "18 J of 20 J: {row}");
    for l in out.lines().filter(|l| l.contains(" %")) {
        for cell in l.split("  ").filter(|c| c.trim().ends_with('%')) {
            let v: f64 = cell.trim().trim_end_matches('%').trim().parse().unwrap();
            assert!(v <= 100.0, "a share above 100 %: {l}");
        }
    }
    // The forecast reads the same span: 20 items in 2 s for 20 J.
    let o = carina(&[
        "forecast",
        p.to_str().unwrap(),
        "--total-items",
        "40",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["items_done"], 20, "{v}");
    assert_eq!(v["elapsed_s"], 2.0, "{v}");
    assert_eq!(v["energy_so_far_j"], 20.0, "{v}");
}

#[test]
fn a_run_without_steps_says_its_energy_is_at_run_level() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_run(
        dir.path(),
        "bare.jsonl",
        &bare_run("plain", "bare-1", 10.0, 120.0, 0),
    );
    let o = carina(&["summary", p.to_str().unwrap()]);
    let out = stdout(&o);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        out.contains("a run without steps has its energy at run level (no step markers)"),
        "{out}"
    );
    assert!(!out.contains("unattributed"), "{out}");
    // A run with steps keeps its unattributed row.
    let p = complete_run(dir.path());
    let out = stdout(&carina(&["summary", p.to_str().unwrap()]));
    assert!(out.contains("unattributed"), "{out}");
    assert!(!out.contains("no step markers"), "{out}");
}

// How each figure was obtained (issue 15): the method beside the kind, `measured` alone only
// for a plain counter in host scope, the effective carbon factor, Carina's own cost.

/// The summary of `lines`, written to a file in `dir`.
fn summary_of(dir: &Path, name: &str, lines: &[String]) -> String {
    let p = write_run(dir, name, lines);
    let o = carina(&["summary", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    stdout(&o)
}

/// The table's header line.
fn table_header(out: &str) -> &str {
    out.lines()
        .find(|l| l.starts_with("step "))
        .unwrap_or_else(|| panic!("no table in:\n{out}"))
}

#[test]
fn a_counter_times_a_share_says_so_and_never_reads_measured_alone() {
    let dir = tempfile::tempdir().unwrap();
    let out = summary_of(
        dir.path(),
        "share.jsonl",
        &counter_share_run("train", "r-share", false),
    );
    // 152 J of steps + 1 % = 153.52 J.
    assert_eq!(
        headline_value(&out, "energy "),
        "154 J measured (counter x cpu-time share)",
        "{out}"
    );
    // What limits each part: one note per basis and share rule, as the file lists them.
    let at = out
        .lines()
        .position(|l| l.starts_with("  method "))
        .unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[at].contains("hardware counter: RAPL covers"), "{out}");
    assert!(
        lines[at + 1]
            .trim_start()
            .starts_with("cpu-time share: idle and uncore"),
        "{out}"
    );
    // A measured figure: no "counters not used" line, which explains estimates only.
    assert!(!out.contains("counters "), "{out}");
    assert!(!out.contains("LOWER BOUND"), "{out}");
    // The headers keep the kind in two words, never `measured` alone for a share.
    let header = table_header(&out);
    assert!(header.contains("energy (measured x share)"), "{header}");
    assert!(!header.contains("(measured)"), "{header}");
    // GPU steps are marked, and the lines under the table say how each kind of step was split.
    let train = out.lines().find(|l| l.starts_with("train ")).unwrap();
    assert!(train.starts_with("train [GPU] "), "{train}");
    assert!(
        out.lines().find(|l| l.starts_with("load ")).is_some(),
        "{out}"
    );
    assert!(
        out.contains(
            "\nstep figures: counter x cpu-time share; to steps by thread CPU time and wall time; \
             GPU energy by wall time, in intervals with no GPU step open\n"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "\nGPU steps ([GPU]): counter x cpu-time share; to steps by thread CPU time and wall \
             time; GPU energy by GPU-step overlap\n"
        ),
        "{out}"
    );
    assert!(
        out.contains(&format!("\n  Carina's own cost: {OWN_COST_LINE}\n")),
        "{out}"
    );
    // The file's constant factor.
    assert_eq!(
        headline_value(&out, "CO2e "),
        "0.0171 g  (400 g/kWh, WORLD)",
        "{out}"
    );
}

#[test]
fn a_plain_counter_in_host_scope_is_measured() {
    let dir = tempfile::tempdir().unwrap();
    let out = summary_of(
        dir.path(),
        "host.jsonl",
        &host_counter_run("train", "r-host"),
    );
    assert_eq!(
        headline_value(&out, "energy "),
        "154 J measured (counter)",
        "{out}"
    );
    assert!(table_header(&out).contains("energy (measured) "), "{out}");
}

#[test]
fn a_lower_bound_is_said_plainly() {
    let dir = tempfile::tempdir().unwrap();
    let out = summary_of(
        dir.path(),
        "low.jsonl",
        &counter_share_run("train", "r-low", true),
    );
    let e = headline_value(&out, "energy ");
    assert!(
        e.starts_with("154 J measured (counter x cpu-time share, lower bound); a LOWER BOUND: "),
        "{out}"
    );
    assert!(
        out.contains("  warning: rapl-powercap: package-0 went back"),
        "{out}"
    );
    assert!(
        table_header(&out).contains("energy (measured x share, lower bound)"),
        "{out}"
    );
}

#[test]
fn a_series_shows_its_energy_weighted_factor_not_its_mean() {
    let dir = tempfile::tempdir().unwrap();
    // Written by a Carina that states the factor, and by one that does not: the same line.
    for (name, with_factor) in [("new.jsonl", true), ("old.jsonl", false)] {
        let out = summary_of(
            dir.path(),
            name,
            &series_run("grid", "r-series", with_factor),
        );
        let co2e = headline_value(&out, "CO2e ");
        assert!(
            co2e.ends_with(
                "(495 g/kWh energy-weighted over the intensity series (its plain mean 426), DE)"
            ),
            "{name}: {out}"
        );
    }
}

#[test]
fn files_without_a_method_get_one_from_their_sources_and_scope() {
    let dir = tempfile::tempdir().unwrap();
    // The common fixture: a model source in host scope, a process-scope run, no run_end.method.
    let p = complete_run(dir.path());
    let out = stdout(&carina(&["summary", p.to_str().unwrap()]));
    assert!(
        headline_value(&out, "energy ").starts_with("0.410 Wh estimated (model x cpu-time share)"),
        "{out}"
    );
    assert_eq!(
        headline_value(&out, "method "),
        "derived from run_start's sources and scope (the file has no run_end.method)",
        "{out}"
    );
    // An older file says nothing about Carina's own cost.
    assert!(!out.contains("own cost"), "{out}");
    assert!(
        out.contains(
            "step figures: model x cpu-time share; how it was split to steps is not recorded"
        ),
        "{out}"
    );

    // A crashed run of a newer Carina (no run_end, so no method): a host-scope counter in a
    // process-scope run is a counter times a CPU-time share, not `measured` alone.
    let mut lines = counter_share_run("train", "r-crash", false);
    lines.retain(|l| !l.contains("\"run_end\"") && !l.contains("\"step_summary\""));
    let out = summary_of(dir.path(), "crash.jsonl", &lines);
    assert!(
        headline_value(&out, "energy ").starts_with("152 J measured (counter x cpu-time share)"),
        "{out}"
    );
    assert!(table_header(&out).contains("(measured x share)"), "{out}");
    // Rebuilt from step records, the GPU flag is kept.
    assert!(out.lines().any(|l| l.starts_with("train [GPU] ")), "{out}");
}

#[test]
fn the_fleet_view_says_the_method_of_each_cycle() {
    let dir = tempfile::tempdir().unwrap();
    let a = write_run(
        dir.path(),
        "a.jsonl",
        &counter_share_run("train", "same", false),
    );
    let b = write_run(dir.path(), "b.jsonl", &host_counter_run("train", "same"));
    let o = carina(&["summary", a.to_str().unwrap(), b.to_str().unwrap()]);
    let out = stdout(&o);
    assert!(
        out.contains(
            "2 run(s); energy methods differ between runs: measured (counter x cpu-time share); \
             measured (counter)\n"
        ),
        "{out}"
    );
    // The kinds differ in what was done to the counter: `mixed`, not `measured`.
    assert!(out.contains("energy (mixed)"), "{out}");
}
