//! `carina compare`, run as the built binary on hand-written run files.

use crate::common::*;
use std::path::Path;

fn pair(dir: &Path, base: &[(&str, Vec<Inst>)], cand: &[(&str, Vec<Inst>)]) -> (String, String) {
    let b = write_run(
        dir,
        "base.jsonl",
        &run_lines("scenario-db", "base-run", base, true),
    );
    let c = write_run(
        dir,
        "cand.jsonl",
        &run_lines("scenario-db", "cand-run", cand, true),
    );
    (
        b.to_str().unwrap().to_owned(),
        c.to_str().unwrap().to_owned(),
    )
}

fn json_of(args: &[&str]) -> (Option<i32>, serde_json::Value) {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    let o = carina(&all);
    let v = serde_json::from_str(&stdout(&o))
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", stdout(&o), stderr(&o)));
    (o.status.code(), v)
}

fn step_of<'a>(v: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    v["steps"]
        .as_array()
        .expect("steps array")
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {v}"))
}

/// Two steps with mild noise; `factor` scales the energy of `simulate` in the candidate.
fn scenario(dir: &Path, factor: f64) -> (String, String) {
    pair(
        dir,
        &[
            ("load", noisy(30, 10, 2.0, 0.02, 1)),
            ("simulate", noisy(60, 25, 36.0, 0.02, 2)),
        ],
        &[
            ("load", noisy(30, 10, 2.0, 0.02, 3)),
            ("simulate", noisy(60, 25, 36.0 * factor, 0.02, 4)),
        ],
    )
}

#[test]
fn no_change_is_same_and_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let (b, c) = scenario(dir.path(), 1.0);
    let o = carina(&["compare", &b, &c]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("same"), "{out}");
    assert!(out.lines().last().unwrap().starts_with("same:"), "{out}");
    let (code, v) = json_of(&["compare", &b, &c]);
    assert_eq!(code, Some(0));
    assert_eq!(v["verdict"], "same");
    assert_eq!(step_of(&v, "simulate")["verdict"], "same");
}

#[test]
fn identical_runs_compare_same() {
    let dir = tempfile::tempdir().unwrap();
    let groups = [("simulate", steady(20, 1.0, 25, 36.0))];
    let (b, c) = pair(dir.path(), &groups, &groups);
    let (code, v) = json_of(&["compare", &b, &c]);
    assert_eq!(code, Some(0));
    let s = step_of(&v, "simulate");
    assert_eq!(s["verdict"], "same");
    assert_eq!(s["change_pct"].as_f64(), Some(0.0));
}

#[test]
fn clear_regression_in_one_step_exits_1_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let (b, c) = scenario(dir.path(), 1.30);
    let o = carina(&["compare", &b, &c, "--threshold", "5%"]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    let last = out.lines().last().unwrap();
    assert!(
        last.contains("regressed") && last.contains("simulate"),
        "{out}"
    );
    let (code, v) = json_of(&["compare", &b, &c]);
    assert_eq!(code, Some(1));
    assert_eq!(v["verdict"], "regressed");
    let s = step_of(&v, "simulate");
    assert_eq!(s["verdict"], "regressed");
    let change = s["change_pct"].as_f64().unwrap();
    assert!((change - 30.0).abs() < 3.0, "{s}");
    assert!(s["ci_low_pct"].as_f64().unwrap() > 5.0, "{s}");
    assert!(s["ci_high_pct"].as_f64().unwrap() > change, "{s}");
    assert_eq!(step_of(&v, "load")["verdict"], "same");
}

#[test]
fn small_change_under_threshold_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let (b, c) = scenario(dir.path(), 1.03);
    let (code, v) = json_of(&["compare", &b, &c, "--threshold", "5"]);
    assert_eq!(code, Some(0), "{v}");
    let s = step_of(&v, "simulate");
    assert_eq!(s["verdict"], "same", "{s}");
    let change = s["change_pct"].as_f64().unwrap();
    assert!(change > 1.0 && change < 5.0, "{s}");
    // The same change with a 1 % threshold is a regression when the instances are trusted
    // alone (--run-noise 0): the data is not noisy. With the default run-to-run noise assumed
    // for one run per side (5 %), 3 % is inside it.
    let (code, v) = json_of(&["compare", &b, &c, "--threshold", "1%", "--run-noise", "0"]);
    assert_eq!(code, Some(1), "{v}");
    let (code, v) = json_of(&["compare", &b, &c, "--threshold", "1%"]);
    assert_eq!(code, Some(0), "{v}");
}

#[test]
fn noisy_six_percent_shift_is_not_a_regression() {
    let dir = tempfile::tempdir().unwrap();
    // +-60 % noise on 20 instances: a 6 % shift of the mean is well inside the noise.
    let base = noisy(20, 25, 36.0, 0.6, 11);
    // The candidate is another draw of the same noise, scaled so that its total is exactly
    // 6 % above the base's.
    let bsum: f64 = base.iter().map(|x| x.energy).sum();
    let draw = noisy(20, 25, 36.0, 0.6, 12);
    let k = 1.06 * bsum / draw.iter().map(|x| x.energy).sum::<f64>();
    let cand: Vec<Inst> = draw
        .into_iter()
        .map(|x| Inst {
            energy: x.energy * k,
            ..x
        })
        .collect();
    let (b, c) = pair(dir.path(), &[("simulate", base)], &[("simulate", cand)]);
    let (code, v) = json_of(&["compare", &b, &c, "--threshold", "5%"]);
    let s = step_of(&v, "simulate");
    let change = s["change_pct"].as_f64().unwrap();
    assert!((change - 6.0).abs() < 0.5, "{s}");
    assert!(s["ci_low_pct"].as_f64().unwrap() < 0.0, "{s}");
    assert_ne!(s["verdict"], "regressed", "{s}");
    assert_eq!(code, Some(0), "{v}");
}

#[test]
fn markdown_is_a_table_with_a_headline() {
    let dir = tempfile::tempdir().unwrap();
    let (b, c) = scenario(dir.path(), 1.30);
    let o = carina(&["compare", &b, &c, "--format", "markdown"]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    let first = out.lines().next().unwrap();
    assert!(first.starts_with("**carina compare: regressed.**"), "{out}");
    assert!(first.contains("simulate"), "{out}");
    let rows: Vec<&str> = out.lines().filter(|l| l.starts_with('|')).collect();
    assert_eq!(rows.len(), 5, "header, separator, (run), 2 steps:\n{out}");
    let cols = rows[0].matches('|').count();
    assert!(rows.iter().all(|r| r.matches('|').count() == cols), "{out}");
    assert!(rows[1].contains("---"), "{out}");
    assert!(
        rows.iter()
            .any(|r| r.starts_with("| simulate ") && r.contains("| regressed |")),
        "{out}"
    );
    assert!(
        rows.iter()
            .any(|r| r.starts_with("| load ") && r.contains("| same |")),
        "{out}"
    );
    assert!(out.is_ascii(), "no emoji: {out}");
}

#[test]
fn json_has_the_documented_fields() {
    let dir = tempfile::tempdir().unwrap();
    let (b, c) = scenario(dir.path(), 1.0);
    let (_, v) = json_of(&["compare", &b, &c, "--threshold", "7.5%"]);
    assert_eq!(v["threshold_pct"].as_f64(), Some(7.5));
    assert!(v["verdict"].is_string());
    for s in v["steps"].as_array().unwrap() {
        for f in [
            "base_j_per_item",
            "cand_j_per_item",
            "change_pct",
            "ci_low_pct",
            "ci_high_pct",
            "time_change_pct",
        ] {
            assert!(s[f].is_number(), "{f} in {s}");
        }
        assert!(s["name"].is_string() && s["verdict"].is_string(), "{s}");
    }
    // Reproducible: the bootstrap is seeded.
    let (_, again) = json_of(&["compare", &b, &c, "--threshold", "7.5%"]);
    assert_eq!(v, again);
}

#[test]
fn summaries_only_fall_back_to_totals() {
    let dir = tempfile::tempdir().unwrap();
    let strip = |lines: Vec<String>| -> Vec<String> {
        lines
            .into_iter()
            .filter(|l| !l.contains("\"type\":\"step\""))
            .collect()
    };
    let b = strip(run_lines(
        "job",
        "b",
        &[("simulate", steady(10, 1.0, 25, 36.0))],
        true,
    ));
    let c = strip(run_lines(
        "job",
        "c",
        &[("simulate", steady(10, 1.0, 25, 50.0))],
        true,
    ));
    let b = write_run(dir.path(), "b.jsonl", &b);
    let c = write_run(dir.path(), "c.jsonl", &c);
    let o = carina(&["compare", b.to_str().unwrap(), c.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("no instance data: verdict on totals only"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn different_jobs_warn_but_compare() {
    let dir = tempfile::tempdir().unwrap();
    let g = [("simulate", steady(10, 1.0, 25, 36.0))];
    let b = write_run(dir.path(), "b.jsonl", &run_lines("job-a", "b", &g, true));
    let c = write_run(dir.path(), "c.jsonl", &run_lines("job-b", "c", &g, true));
    let o = carina(&["compare", b.to_str().unwrap(), c.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("different jobs"), "{}", stderr(&o));
}

#[test]
fn bad_input_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let (b, c) = scenario(dir.path(), 1.0);
    let o = carina(&["compare", &b, &c, "--threshold", "abc"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("abc"), "{}", stderr(&o));
    let missing = dir.path().join("missing.jsonl");
    let o = carina(&["compare", &b, missing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("missing.jsonl"), "{}", stderr(&o));
}

#[test]
fn a_negligible_step_is_minor_and_does_not_fail_the_gate() {
    let dir = tempfile::tempdir().unwrap();
    // `setup` doubles, but it is ~0.01 % of the run's energy.
    let (b, c) = pair(
        dir.path(),
        &[
            ("setup", steady(1, 0.001, 0, 0.01)),
            ("simulate", noisy(60, 25, 36.0, 0.02, 2)),
        ],
        &[
            ("setup", steady(1, 0.002, 0, 0.02)),
            ("simulate", noisy(60, 25, 36.0, 0.02, 4)),
        ],
    );
    let (code, v) = json_of(&["compare", &b, &c]);
    assert_eq!(code, Some(0), "{v}");
    let setup = step_of(&v, "setup");
    assert_eq!(setup["verdict"], "minor");
    assert_eq!(setup["energy_verdict"], "regressed");
    assert!(setup["note"].as_str().unwrap().contains("--min-share"));
    assert_eq!(v["min_share_pct"], 1.0);

    // With --min-share 0 every step gates.
    let (code, v) = json_of(&["compare", &b, &c, "--min-share", "0"]);
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(step_of(&v, "setup")["verdict"], "regressed");

    let o = carina(&["compare", &b, &c, "--min-share", "lots"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("lots"), "{}", stderr(&o));
}

#[test]
fn truncated_last_line_is_warned_on_stderr_and_in_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let g = [("simulate", steady(10, 1.0, 25, 36.0))];
    let b = write_run(dir.path(), "b.jsonl", &run_lines("job", "b", &g, true));
    let c = write_truncated(dir.path(), "c.jsonl", &run_lines("job", "c", &g, false));
    let (b, c) = (b.to_str().unwrap(), c.to_str().unwrap());
    let o = carina(&["compare", b, c, "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.lines()
            .any(|l| l.starts_with("carina compare: warning: ")
                && l.contains("c.jsonl:")
                && l.contains("truncated")),
        "{err}"
    );
    // Stdout is the JSON document alone; the warning is in its list.
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("stdout is JSON alone");
    assert_eq!(v["candidate"]["complete"], false, "{v}");
    let listed = v["warnings"].as_array().unwrap();
    assert!(
        listed
            .iter()
            .any(|w| w.as_str().unwrap().contains("truncated")),
        "{v}"
    );
    // The missing run_end is said once, not once by the reader and again by compare.
    let no_end = err.lines().filter(|l| l.contains("run_end")).count();
    assert_eq!(no_end, 1, "{err}");
    let o = carina(&["compare", b, c, "--format", "markdown"]);
    assert!(stderr(&o).contains("truncated"), "{}", stderr(&o));
    let md = stdout(&o);
    assert!(
        md.lines()
            .any(|l| l.starts_with("Warning: ") && l.contains("truncated")),
        "{md}"
    );
}

#[test]
fn markdown_escapes_names_ids_jobs_and_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let script = "<script>alert(1)</script>";
    let fancy = "`tick` *bold* _it_ [link](x) a|b #1 \\ & ~~s~~";
    let base = [
        (script, noisy(20, 10, 2.0, 0.02, 1)),
        (fancy, noisy(20, 10, 36.0, 0.02, 2)),
    ];
    let cand = [
        (script, noisy(20, 10, 2.0, 0.02, 3)),
        (fancy, noisy(20, 10, 36.0 * 1.3, 0.02, 4)),
    ];
    let b = write_run(
        dir.path(),
        "b.jsonl",
        &run_lines("job<i>a</i>", "run_*b*", &base, true),
    );
    let c = write_run(
        dir.path(),
        "c.jsonl",
        &run_lines("job_[c]", "run<img src=x>", &cand, true),
    );
    let o = carina(&[
        "compare",
        b.to_str().unwrap(),
        c.to_str().unwrap(),
        "--format",
        "markdown",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    // No raw HTML anywhere.
    for raw in ["<script", "</script", "<img", "<i>", "</i>"] {
        assert!(!out.contains(raw), "raw {raw:?} in:\n{out}");
    }
    let script_md = "&lt;script&gt;alert(1)&lt;/script&gt;";
    let fancy_md =
        "\\`tick\\` \\*bold\\* \\_it\\_ \\[link\\](x) a\\|b \\#1 \\\\ &amp; \\~\\~s\\~\\~";
    // Headline (the regressed step), run ids, job, warning.
    let first = out.lines().next().unwrap();
    assert!(first.contains(fancy_md), "{out}");
    assert!(
        out.contains("Base run\\_\\*b\\* vs candidate run&lt;img src=x&gt; (job job\\_\\[c\\])"),
        "{out}"
    );
    assert!(
        out.contains("different jobs (\\`job&lt;i&gt;a&lt;/i&gt;\\` vs \\`job\\_\\[c\\]\\`)"),
        "{out}"
    );
    // Table rows: escaped names, and every row has the header's number of unescaped pipes.
    let rows: Vec<&str> = out.lines().filter(|l| l.starts_with('|')).collect();
    assert_eq!(rows.len(), 5, "header, separator, (run), 2 steps:\n{out}");
    let cells = |r: &str| {
        r.replace("\\\\", "")
            .replace("\\|", "")
            .matches('|')
            .count()
    };
    assert!(rows.iter().all(|r| cells(r) == cells(rows[0])), "{out}");
    assert!(
        rows.iter()
            .any(|r| r.starts_with(&format!("| {script_md} |"))),
        "{out}"
    );
    assert!(
        rows.iter()
            .any(|r| r.starts_with(&format!("| {fancy_md} |")) && r.contains("| regressed |")),
        "{out}"
    );
}

#[test]
fn min_share_must_be_0_to_100() {
    let dir = tempfile::tempdir().unwrap();
    let (b, c) = scenario(dir.path(), 1.0);
    for bad in ["150%", "100.5", "-1%"] {
        // `=`: clap would take a separate `-1%` for a flag.
        let o = carina(&["compare", &b, &c, &format!("--min-share={bad}")]);
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", stdout(&o));
        let err = stderr(&o);
        assert!(err.contains(bad) && err.contains("from 0 to 100"), "{err}");
    }
    let (code, v) = json_of(&["compare", &b, &c, "--min-share", "100%"]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["min_share_pct"], 100.0);
    // --threshold keeps its range, 0 to 1000 % as its message says: 150 % and 1000 % are
    // accepted, 1000.5 % is not.
    let (code, v) = json_of(&["compare", &b, &c, "--threshold", "150%"]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["threshold_pct"], 150.0);
    let (code, v) = json_of(&["compare", &b, &c, "--threshold", "1000%"]);
    assert_eq!(code, Some(0), "{v}");
    let o = carina(&["compare", &b, &c, "--threshold", "1000.5%"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn the_energy_kind_is_stated_and_a_mix_is_warned() {
    let dir = tempfile::tempdir().unwrap();
    let (b, c) = scenario(dir.path(), 1.0);
    let o = carina(&["compare", &b, &c]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // The kind with its method: these files have none, so it is derived from their sources.
    assert!(
        stdout(&o).contains("energy:    estimated (model x cpu-time share);"),
        "{}",
        stdout(&o)
    );
    let md = carina(&["compare", &b, &c, "--format", "markdown"]);
    assert!(
        stdout(&md).contains("energy estimated (model x cpu-time share)."),
        "{}",
        stdout(&md)
    );
    // The base measured by a counter, the candidate estimated: said, not silently compared.
    let text = std::fs::read_to_string(&b).unwrap();
    let measured = text.replace(r#""estimated""#, r#""measured""#);
    assert_ne!(measured, text, "the fixture names its source kind");
    std::fs::write(&b, measured).unwrap();
    let (_, v) = json_of(&["compare", &b, &c]);
    assert_eq!(v["base"]["energy_kind"], "measured");
    assert_eq!(v["candidate"]["energy_kind"], "estimated");
    // A host-scope counter in a process-scope run is a share of it, never `measured` alone.
    assert_eq!(
        v["base"]["energy_method"],
        "measured (counter x cpu-time share)"
    );
    let text = stdout(&carina(&["compare", &b, &c]));
    assert!(
        text.contains(
            "energy:    measured (counter x cpu-time share) (base) vs estimated (model x \
             cpu-time share) (candidate);"
        ),
        "{text}"
    );
    assert!(
        v["warnings"].as_array().unwrap().iter().any(|w| w
            .as_str()
            .unwrap()
            .contains("measured and the candidate's estimated")),
        "{v}"
    );
}

/// The same workload, base at host share `base_share`, candidate at `cand_share`, each run's
/// energy in proportion to its share's idle-power part: 114 J and 172 J of steps for 0.49 and
/// 0.90 (the figures of issue 9).
fn shared_pair(dir: &Path, base: (f64, f64), cand: (f64, f64)) -> (String, String) {
    let mk = |file: &str, id: &str, (steps_j, share): (f64, f64)| {
        let mut lines = run_lines(
            "scenario-db",
            id,
            &[("work", steady(20, 1.0, 10, steps_j / 20.0))],
            true,
        );
        set_host_share(&mut lines, share);
        write_run(dir, file, &lines).to_str().unwrap().to_owned()
    };
    (
        mk("base.jsonl", "base-run", base),
        mk("cand.jsonl", "cand-run", cand),
    )
}

const SHARE_WARNING: &str = "shares of the host's energy differ a lot";

#[test]
fn host_shares_far_apart_are_warned_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let (b, c) = shared_pair(dir.path(), (114.0, 0.49), (172.0, 0.90));

    let o = carina(&["compare", &b, &c]);
    let (out, err) = (stdout(&o), stderr(&o));
    assert!(
        out.contains("host share: base 0.49 (host 235 J, scope process) vs candidate 0.90 (host 193 J, scope process)"),
        "{out}"
    );
    assert!(out.contains("WARNING: the shares differ a lot"), "{out}");
    assert!(out.contains("neighbours"), "{out}");
    assert!(
        err.contains(&format!(
            "carina compare: warning: the runs' {SHARE_WARNING}"
        )),
        "{err}"
    );

    let o = carina(&["compare", &b, &c, "--format", "markdown"]);
    let md = stdout(&o);
    assert!(md.contains("Host share: base 0.49"), "{md}");
    assert!(
        md.contains(&format!("Warning: the runs' {SHARE_WARNING}")),
        "{md}"
    );

    let (_, v) = json_of(&["compare", &b, &c]);
    assert_eq!(v["shares_differ"], true, "{v}");
    assert!(
        (v["base"]["host_share"].as_f64().unwrap() - 0.49).abs() < 1e-9,
        "{v}"
    );
    assert!(
        (v["candidate"]["host_share"].as_f64().unwrap() - 0.90).abs() < 1e-9,
        "{v}"
    );
    assert!(v["base"]["host_energy_j"].as_f64().unwrap() > 0.0, "{v}");
    assert_eq!(v["base"]["scope"], "process", "{v}");
    assert!(
        v["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains(SHARE_WARNING)),
        "{v}"
    );
}

#[test]
fn close_host_shares_are_not_warned_and_a_missing_host_energy_is_n_a() {
    let dir = tempfile::tempdir().unwrap();
    // 0.49 vs 0.60: 0.11 apart, ratio 1.22: within the rule (0.15, 1.5).
    let (b, c) = shared_pair(dir.path(), (114.0, 0.49), (114.0, 0.60));
    let o = carina(&["compare", &b, &c]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stdout(&o).contains("WARNING"), "{}", stdout(&o));
    assert!(!stderr(&o).contains(SHARE_WARNING), "{}", stderr(&o));
    let (_, v) = json_of(&["compare", &b, &c]);
    assert_eq!(v["shares_differ"], false, "{v}");
    let md = stdout(&carina(&["compare", &b, &c, "--format", "markdown"]));
    assert!(!md.contains(SHARE_WARNING), "{md}");

    // Small shares far apart in ratio: 0.05 vs 0.09 (0.04 apart, ratio 1.8) are warned.
    let (b, c) = shared_pair(dir.path(), (114.0, 0.05), (114.0, 0.09));
    let (_, v) = json_of(&["compare", &b, &c]);
    assert_eq!(v["shares_differ"], true, "{v}");

    // host_energy_j 0: n/a, and nothing to warn about.
    let (b, c) = shared_pair(dir.path(), (114.0, 0.0), (114.0, 0.9));
    let o = carina(&["compare", &b, &c]);
    assert!(
        stdout(&o).contains("base n/a (host energy n/a, scope process)"),
        "{}",
        stdout(&o)
    );
    let (_, v) = json_of(&["compare", &b, &c]);
    assert_eq!(v["base"]["host_share"], serde_json::Value::Null, "{v}");
    assert_eq!(v["base"]["host_energy_j"], serde_json::Value::Null, "{v}");
    assert_eq!(v["shares_differ"], false, "{v}");
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Identical jobs on a shared machine: energy per item +-4 % and time per item up to +30 % per
/// run. Five runs per side from the same distribution, for several seeds: never a regression,
/// whatever the time did, and the exit status is 0.
#[test]
fn five_runs_per_side_from_one_distribution_never_regress() {
    let mut time_moved = 0;
    for seed in 1..=8u64 {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("base");
        let cand = dir.path().join("cand");
        noisy_runs(&base, "b", 5, seed * 2, (0.04, 0.30), 1.0);
        noisy_runs(&cand, "c", 5, seed * 2 + 1, (0.04, 0.30), 1.0);
        let o = carina(&["compare", "--base", s(&base), "--candidate", s(&cand)]);
        let out = stdout(&o);
        assert_eq!(
            o.status.code(),
            Some(0),
            "seed {seed}:\n{out}{}",
            stderr(&o)
        );
        // "regressed" only in the headline's "No row regressed".
        assert!(
            out.lines()
                .filter(|l| l.contains("regressed"))
                .all(|l| l.contains("No row regressed")),
            "seed {seed}:\n{out}"
        );
        let (code, v) = json_of(&["compare", "--base", s(&base), "--candidate", s(&cand)]);
        assert_eq!(code, Some(0));
        for st in v["steps"].as_array().unwrap() {
            assert_eq!(st["base_runs"], 5, "{st}");
            assert_eq!(st["method"], "runs", "{st}");
            assert_ne!(st["verdict"], "regressed", "seed {seed}: {st}");
            if st["time_change_pct"].as_f64().unwrap().abs() > 5.0 {
                time_moved += 1;
            }
        }
    }
    // The time noise is real: time per item moved beyond the threshold somewhere.
    assert!(time_moved > 0);
}

#[test]
fn a_real_ten_percent_energy_increase_over_five_runs_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    for seed in [3u64, 7, 11] {
        let b = noisy_runs(
            &dir.path().join(format!("b{seed}")),
            "b",
            5,
            seed,
            (0.04, 0.30),
            1.0,
        );
        let c = noisy_runs(
            &dir.path().join(format!("c{seed}")),
            "c",
            5,
            seed + 100,
            (0.04, 0.30),
            1.10,
        );
        let mut args = vec!["compare", "--base"];
        args.extend(b.iter().map(|p| s(p)));
        args.push("--candidate");
        args.extend(c.iter().map(|p| s(p)));
        let (code, v) = json_of(&args);
        assert_eq!(code, Some(1), "seed {seed}: {v}");
        assert_eq!(v["verdict"], "regressed");
        for name in ["simulate", "(run)"] {
            let st = step_of(&v, name);
            assert_eq!(st["verdict"], "regressed", "seed {seed}: {st}");
            let change = st["change_pct"].as_f64().unwrap();
            assert!((change - 10.0).abs() < 4.0, "{st}");
            assert!(st["ci_low_pct"].as_f64().unwrap() > 0.0, "{st}");
        }
        // The positional form with --candidate takes the base runs before it.
        let mut args = vec!["compare"];
        args.extend(b.iter().map(|p| s(p)));
        args.push("--candidate");
        args.extend(c.iter().map(|p| s(p)));
        assert_eq!(carina(&args).status.code(), Some(1));
    }
}

#[test]
fn time_is_shown_but_gated_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base");
    let cand = dir.path().join("cand");
    noisy_runs(&base, "b", 4, 1, (0.01, 0.0), 1.0);
    // Same energy, every run 50 % slower: time regressed, not gated by default.
    let mut rng = Prng::new(9);
    std::fs::create_dir_all(&cand).unwrap();
    for i in 0..4 {
        let t = 1.5 * (1.0 + 0.01 * rng.uniform());
        let groups = [
            ("load", loaded(10, 10, 2.0, 0.5, (1.0, t), &mut rng)),
            ("simulate", loaded(40, 25, 36.0, 1.0, (1.0, t), &mut rng)),
        ];
        let id = format!("c-{i}");
        write_run(
            &cand,
            &format!("{id}.jsonl"),
            &run_lines("scenario-db", &id, &groups, true),
        );
    }
    let (code, v) = json_of(&["compare", "--base", s(&base), "--candidate", s(&cand)]);
    assert_eq!(code, Some(0), "{v}");
    let st = step_of(&v, "simulate");
    assert_eq!(st["time_verdict"], "regressed", "{st}");
    assert_eq!(st["verdict"], "same", "{st}");
    assert!(st["note"].as_str().unwrap().contains("not gated"), "{st}");
    for gate in ["energy,time", "time"] {
        let (code, v) = json_of(&[
            "compare",
            "--base",
            s(&base),
            "--candidate",
            s(&cand),
            "--gate",
            gate,
        ]);
        assert_eq!(code, Some(1), "{gate}: {v}");
        assert_eq!(step_of(&v, "simulate")["verdict"], "regressed");
    }
    let o = carina(&["compare", s(&base), s(&cand), "--gate", "power"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn one_run_per_side_says_run_to_run_variance_is_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let (b, c) = scenario(dir.path(), 1.0);
    let o = carina(&["compare", &b, &c]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert!(out.contains("run-to-run variance is unknown"), "{out}");
    assert!(out.contains("3 or more"), "{out}");
}

#[test]
fn step_less_runs_compare_their_energy_and_fail_the_gate() {
    let dir = tempfile::tempdir().unwrap();
    let b = write_run(
        dir.path(),
        "b.jsonl",
        &bare_run("nightly", "b", 600.0, 100_000.0, 0),
    );
    let c = write_run(
        dir.path(),
        "c.jsonl",
        &bare_run("nightly", "c", 610.0, 150_000.0, 0),
    );
    let o = carina(&["compare", s(&b), s(&c)]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(
        out.lines()
            .any(|l| l.starts_with("(run)") && l.contains("regressed") && l.contains("+50.0%")),
        "{out}"
    );
    let (code, v) = json_of(&["compare", s(&b), s(&c)]);
    assert_eq!(code, Some(1));
    let st = step_of(&v, "(run)");
    assert_eq!(st["verdict"], "regressed", "{st}");
    assert_eq!(st["unit"], "run", "{st}");
    // With items, per item; the same energy over twice the items is an improvement.
    let b = write_run(
        dir.path(),
        "bi.jsonl",
        &bare_run("nightly", "b", 600.0, 100_000.0, 1000),
    );
    let c = write_run(
        dir.path(),
        "ci.jsonl",
        &bare_run("nightly", "c", 600.0, 100_000.0, 2000),
    );
    let (code, v) = json_of(&["compare", s(&b), s(&c)]);
    assert_eq!(code, Some(0), "{v}");
    let st = step_of(&v, "(run)");
    assert_eq!(st["unit"], "item", "{st}");
    assert_eq!(st["verdict"], "improved", "{st}");
}

/// Runs as `scenario_db` makes them (issue 19): `simulate` (83 % of the energy), `evaluate`
/// (13 %), `store` (1.6 %), 47 instances each, and a one-instance `generate_grid`. Between
/// identical runs each step's energy per item moves by `rho` / sqrt(its share) (relative
/// standard deviation; the run's own by about `rho`), as measured on 30 real runs (docs/CLI.md,
/// "compare"); each instance by +-2 % more; each run's time by up to +30 %. `factor` scales
/// every energy figure.
fn scenario_db_like(
    dir: &Path,
    prefix: &str,
    n: usize,
    seed: u64,
    rho: f64,
    factor: f64,
) -> Vec<String> {
    std::fs::create_dir_all(dir).unwrap();
    let mut rng = Prng::new(seed);
    (0..n)
        .map(|i| {
            let t = 1.0 + 0.3 * (rng.uniform() + 1.0) / 2.0;
            // A uniform value in -1..1 has standard deviation 1/sqrt(3).
            let mut mult =
                |share: f64| factor * (1.0 + rho / share.sqrt() * 3f64.sqrt() * rng.uniform());
            let (ms, me, mst) = (mult(0.83), mult(0.13), mult(0.016));
            let groups = [
                (
                    "generate_grid",
                    loaded(1, 3008, 1e-5, 0.001, (factor, t), &mut rng),
                ),
                ("simulate", loaded(47, 64, 0.27, 0.19, (ms, t), &mut rng)),
                ("evaluate", loaded(47, 64, 0.042, 0.014, (me, t), &mut rng)),
                ("store", loaded(47, 64, 0.0052, 0.002, (mst, t), &mut rng)),
            ];
            let id = format!("{prefix}-{i}");
            let p = write_run(
                dir,
                &format!("{id}.jsonl"),
                &run_lines("scenario-db", &id, &groups, true),
            );
            p.to_str().unwrap().to_owned()
        })
        .collect()
}

/// Compares `base` with `cand` (one or several runs per side) with `extra` flags: the exit
/// status and the rows that regressed.
fn gate(base: &[String], cand: &[String], extra: &[&str]) -> (Option<i32>, Vec<String>) {
    let mut args = vec!["compare", "--base"];
    args.extend(base.iter().map(String::as_str));
    args.push("--candidate");
    args.extend(cand.iter().map(String::as_str));
    args.extend(extra);
    let (code, v) = json_of(&args);
    let regressed = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["verdict"] == "regressed")
        .map(|s| {
            format!(
                "{} {} {} {}",
                s["name"], s["change_pct"], s["ci_low_pct"], s["ci_high_pct"]
            )
        })
        .collect();
    (code, regressed)
}

/// Issue 19: identical runs replayed pair by pair (1 v 1) and in 3 v 3 splits never fail the
/// default gate, although their steps move by several % between runs; the rule before (no
/// run-to-run noise at 1 v 1: `--run-noise 0`) fails some of the same pairs, so the noise here
/// is the kind that made false alarms.
#[test]
fn identical_runs_replayed_never_fail_the_gate() {
    let dir = tempfile::tempdir().unwrap();
    let runs = scenario_db_like(dir.path(), "r", 10, 19, 0.015, 1.0);
    let mut old_rule_failed = 0;
    for i in 0..runs.len() {
        for j in (i + 1)..runs.len() {
            let (code, regressed) = gate(&runs[i..=i], &runs[j..=j], &[]);
            assert_eq!(code, Some(0), "runs {i} v {j}: {regressed:?}");
            assert!(regressed.is_empty(), "runs {i} v {j}: {regressed:?}");
            if gate(&runs[i..=i], &runs[j..=j], &["--run-noise", "0"]).0 == Some(1) {
                old_rule_failed += 1;
            }
        }
    }
    assert!(
        old_rule_failed > 0,
        "the noise is too mild to test the rule"
    );
    // 3 v 3: every split of runs k..k+6 into its first three and last three.
    for k in 0..=runs.len() - 6 {
        let (b, c) = (&runs[k..k + 3], &runs[k + 3..k + 6]);
        let (code, regressed) = gate(b, c, &[]);
        assert_eq!(code, Some(0), "split at {k}: {regressed:?}");
        let (code, regressed) = gate(c, b, &[]);
        assert_eq!(code, Some(0), "split at {k}, reversed: {regressed:?}");
    }
}

/// Issue 19: a real +10 % energy change at 3 v 3 still fails the gate, with the simultaneous
/// intervals and the same noise as above, for every seed.
#[test]
fn a_ten_percent_change_at_three_v_three_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    for seed in 1..=8u64 {
        let b = scenario_db_like(
            &dir.path().join(format!("b{seed}")),
            "b",
            3,
            seed,
            0.015,
            1.0,
        );
        let c = scenario_db_like(
            &dir.path().join(format!("c{seed}")),
            "c",
            3,
            seed + 50,
            0.015,
            1.10,
        );
        let (code, regressed) = gate(&b, &c, &[]);
        let (_, all) = gate(&b, &c, &["--min-share", "100"]);
        assert_eq!(code, Some(1), "seed {seed}: {regressed:?} {all:?}");
        assert!(
            regressed
                .iter()
                .any(|r| r.starts_with("\"(run)\"") || r.starts_with("\"simulate\"")),
            "seed {seed}: {regressed:?}"
        );
    }
}

/// The gated intervals hold together at 95 %: the JSON and the text say how many and at what
/// confidence; --run-noise is echoed, widens a small step's interval most, and is refused
/// outside 0..100 %.
#[test]
fn simultaneous_intervals_and_run_noise_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let runs = scenario_db_like(dir.path(), "r", 2, 5, 0.015, 1.0);
    let (code, v) = json_of(&["compare", &runs[0], &runs[1]]);
    assert_eq!(code, Some(0), "{v}");
    // (run), simulate, evaluate, store; generate_grid is below --min-share.
    // Half of the 5 % for the run's row, the other half shared by the three steps.
    assert_eq!(v["gated_intervals"], 4, "{v}");
    assert_eq!(v["run_confidence_pct"].as_f64(), Some(97.5));
    assert_eq!(v["step_confidence_pct"].as_f64(), Some(99.1667));
    assert_eq!(v["run_noise_pct"].as_f64(), Some(5.0));
    // The assumed noise widens a small step's interval more than the run's.
    let width = |name: &str| {
        let s = step_of(&v, name);
        s["ci_high_pct"].as_f64().unwrap() - s["ci_low_pct"].as_f64().unwrap()
    };
    assert!(width("store") > 2.0 * width("(run)"), "{v}");
    let (_, v) = json_of(&["compare", &runs[0], &runs[1], "--gate", "energy,time"]);
    assert_eq!(v["gated_intervals"], 8, "{v}");
    assert_eq!(v["run_confidence_pct"].as_f64(), Some(98.75));
    let (_, v0) = json_of(&["compare", &runs[0], &runs[1], "--run-noise", "0"]);
    assert_eq!(v0["run_noise_pct"].as_f64(), Some(0.0));
    let s0 = step_of(&v0, "(run)");
    assert!(
        s0["ci_high_pct"].as_f64().unwrap() - s0["ci_low_pct"].as_f64().unwrap() < width("(run)"),
        "{v0}"
    );
    let o = carina(&["compare", &runs[0], &runs[1], "--run-noise", "120%"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("run noise"), "{}", stderr(&o));
    let text = stdout(&carina(&["compare", &runs[0], &runs[1]]));
    assert!(
        text.contains(
            "intervals at 97.5% for (run), 99.17% for each step (4 gated intervals together at 95%)"
        ),
        "{text}"
    );
}

/// A step whose base energy is 0 has no log ratio: no interval, the change alone decides
/// (from nothing to something is a regression), and the note says why.
#[test]
fn a_zero_base_figure_is_judged_on_the_change_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (b, c) = pair(
        dir.path(),
        &[
            ("simulate", noisy(20, 25, 36.0, 0.02, 1)),
            ("flush", steady(6, 0.5, 10, 0.0)),
        ],
        &[
            ("simulate", noisy(20, 25, 36.0, 0.02, 2)),
            ("flush", steady(6, 0.5, 10, 20.0)),
        ],
    );
    let (code, v) = json_of(&["compare", &b, &c]);
    assert_eq!(code, Some(1), "{v}");
    let s = step_of(&v, "flush");
    assert_eq!(s["verdict"], "regressed", "{s}");
    assert!(s["ci_low_pct"].is_null(), "{s}");
    assert!(s["note"].as_str().unwrap().contains("no interval"), "{s}");
}
