//! `carina export`, run as the built binary on hand-written run files.

use crate::common::*;
use serde_json::json;
use std::collections::HashMap;
use std::path::Path;

/// A minimal RFC 4180 reader: rows of fields (quoted fields may hold commas, quotes, newlines).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(field.is_empty() && row.is_empty(), "no final newline");
    rows
}

/// The CSV as maps from column to value, checking the shape on the way.
fn records(text: &str) -> Vec<HashMap<String, String>> {
    let rows = parse_csv(text);
    let header = &rows[0];
    for r in &rows[1..] {
        assert_eq!(r.len(), header.len(), "ragged row {r:?} in:\n{text}");
    }
    rows[1..]
        .iter()
        .map(|r| header.iter().cloned().zip(r.iter().cloned()).collect())
        .collect()
}

fn export(args: &[&str]) -> (Option<i32>, String, String) {
    let mut all = vec!["export"];
    all.extend(args);
    let o = carina(&all);
    (o.status.code(), stdout(&o), stderr(&o))
}

fn f(r: &HashMap<String, String>, col: &str) -> f64 {
    r[col]
        .parse()
        .unwrap_or_else(|_| panic!("{col} = {:?} is not a number", r[col]))
}

fn two_runs(dir: &Path) -> (String, String) {
    let a = write_run(
        dir,
        "a.jsonl",
        &run_lines(
            "scenario-db",
            "run-a",
            &[
                ("load", steady(2, 0.5, 10, 2.0)),
                ("simulate", steady(4, 1.0, 25, 36.0)),
            ],
            true,
        ),
    );
    let b = write_run(
        dir,
        "b.jsonl",
        &run_lines(
            "scenario-db",
            "run-b",
            &[("simulate", steady(3, 1.0, 25, 40.0))],
            true,
        ),
    );
    (
        a.to_str().unwrap().to_owned(),
        b.to_str().unwrap().to_owned(),
    )
}

#[test]
fn one_row_per_run_with_the_documented_columns_and_values() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_runs(dir.path());
    let (code, out, err) = export(&[&a, &b, "--format", "csv"]);
    assert_eq!(code, Some(0), "{err}");
    let header = out.lines().next().unwrap();
    let want = "run_id,job,host,started_at,complete,wall_s,energy_j,energy_kind,\
                energy_low_j,energy_high_j,host_energy_j,host_share,co2e_g,\
                g_per_kwh,zone,items,j_per_item,steps,dropped,scope,path,\
                method,lower_bound,carbon_g_per_kwh,own_cost_cpu_share,own_cost_j,\
                energy_kwh,co2e_kg,cpu_j,dram_j,gpu_j,other_j,cpu_method,dram_method,gpu_method";
    assert_eq!(header, want);
    let recs = records(&out);
    assert_eq!(recs.len(), 2, "{out}");
    let r = recs.iter().find(|r| r["run_id"] == "run-a").unwrap();
    // run_lines: steps 2 x 2 J + 4 x 36 J = 148 J, unattributed 1 %, host energy twice the steps.
    assert!((f(r, "energy_j") - 148.0 * 1.01).abs() < 1e-9, "{r:?}");
    assert!((f(r, "host_energy_j") - 296.0).abs() < 1e-9, "{r:?}");
    assert!((f(r, "host_share") - 1.01 / 2.0).abs() < 1e-9, "{r:?}");
    assert!((f(r, "wall_s") - 5.0).abs() < 1e-9, "{r:?}");
    assert_eq!(r["items"], "100");
    assert!(
        (f(r, "j_per_item") - 148.0 * 1.01 / 100.0).abs() < 1e-9,
        "{r:?}"
    );
    assert_eq!(r["steps"], "6");
    assert_eq!(r["dropped"], "0");
    assert_eq!(r["complete"], "true");
    assert_eq!(r["energy_kind"], "estimated");
    assert_eq!(r["job"], "scenario-db");
    assert_eq!(r["host"], "node7");
    assert_eq!(r["zone"], "WORLD");
    assert_eq!(r["g_per_kwh"], "400");
    assert_eq!(r["scope"], "process");
    assert_eq!(r["energy_low_j"], "", "no band: empty, not 0");
    assert!(r["path"].ends_with("a.jsonl"), "{r:?}");
    // A file of an earlier version: the method derived from its host-scope model source in a
    // process-scope run, nothing said about a lower bound or Carina's own cost, and the
    // effective factor computed as CO2e over kWh (the file's constant 400 g/kWh).
    assert_eq!(r["method"], "model x cpu-time share");
    assert_eq!(r["lower_bound"], "");
    assert!((f(r, "carbon_g_per_kwh") - 400.0).abs() < 1e-9, "{r:?}");
    assert_eq!(
        (r["own_cost_cpu_share"].as_str(), r["own_cost_j"].as_str()),
        ("", "")
    );
    // pandas-friendly: header once, no spaces around fields, no trailing spaces, \n endings.
    assert_eq!(out.matches("run_id,").count(), 1, "{out}");
    for l in out.lines() {
        assert_eq!(l, l.trim(), "{l:?}");
        assert!(!l.contains(", ") && !l.contains(" ,"), "{l:?}");
    }
    assert!(out.ends_with('\n') && !out.contains('\r'));
}

#[test]
fn steps_give_one_row_per_run_and_step_name() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_runs(dir.path());
    let (code, out, err) = export(&[&a, &b, "--steps"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out.lines().next().unwrap(),
        "run_id,job,host,step,count,items,wall_s,self_wall_s,energy_j,\
         self_energy_j,co2e_g,p50_s,p95_s,j_per_item,share,gpu,method,energy_kind,\
         started_at,energy_low_j,energy_high_j,energy_kwh,co2e_kg,cpu_j,dram_j,gpu_j,other_j,\
         cpu_method,dram_method,gpu_method,attrs"
    );
    let recs = records(&out);
    assert_eq!(recs.len(), 3, "a: load, simulate; b: simulate\n{out}");
    let sim = recs
        .iter()
        .find(|r| r["run_id"] == "run-a" && r["step"] == "simulate")
        .unwrap();
    assert_eq!(sim["count"], "4");
    assert_eq!(sim["items"], "100");
    assert!((f(sim, "energy_j") - 144.0).abs() < 1e-9);
    assert!((f(sim, "self_energy_j") - 144.0).abs() < 1e-9);
    assert!((f(sim, "wall_s") - 4.0).abs() < 1e-9);
    assert!((f(sim, "j_per_item") - 1.44).abs() < 1e-9);
    assert!((f(sim, "p50_s") - 1.0).abs() < 1e-9);
    assert!((f(sim, "share") - 144.0 / (148.0 * 1.01)).abs() < 1e-9);
    assert!((f(sim, "co2e_g") - 144.0 / 3.6e6 * 400.0).abs() < 1e-12);
    // No step_summary.method nor run_end.attribution in this file: the run's derived method,
    // and the split said to be unknown.
    assert_eq!(sim["gpu"], "false");
    assert_eq!(
        sim["method"],
        "model x cpu-time share; how it was split to steps is not recorded"
    );
    // -o writes the same text to a file and nothing to stdout.
    let file = dir.path().join("steps.csv");
    let (code, o2, _) = export(&[&a, &b, "--steps", "-o", file.to_str().unwrap()]);
    assert_eq!(code, Some(0));
    assert_eq!(o2, "");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), out);
}

#[test]
fn a_job_name_with_a_comma_and_a_quote_is_quoted() {
    let dir = tempfile::tempdir().unwrap();
    let job = "db, \"nightly\"";
    let p = write_run(
        dir.path(),
        "q.jsonl",
        &run_lines(
            job,
            "run-q",
            &[("step, \"one\"", steady(2, 1.0, 5, 3.0))],
            true,
        ),
    );
    let (code, out, err) = export(&[p.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(",\"db, \"\"nightly\"\"\","), "{out}");
    assert_eq!(records(&out)[0]["job"], job);
    let (_, out, _) = export(&[p.to_str().unwrap(), "--steps"]);
    let r = &records(&out)[0];
    assert_eq!(r["job"], job);
    assert_eq!(r["step"], "step, \"one\"");
}

#[test]
fn a_crashed_run_stops_at_its_cut() {
    let dir = tempfile::tempdir().unwrap();
    // Steps until 4 s, but power records only until 3 s: the cut is 3 s.
    let mut lines = vec![run_start("scenario-db", "crashed")];
    for i in 0..4 {
        let t = i as f64;
        lines.push(step("simulate", i + 1, t, t + 1.0, 10, 5.0));
        if i < 3 {
            lines.push(power(t, t + 1.0, 6.0));
        }
    }
    let p = write_run(dir.path(), "crashed.jsonl", &lines);
    let (code, out, err) = export(&[p.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("run_end"), "the reader's warning: {err}");
    let r = &records(&out)[0];
    assert_eq!(r["complete"], "false");
    assert!((f(r, "wall_s") - 3.0).abs() < 1e-9, "{r:?}");
    assert!((f(r, "energy_j") - 18.0).abs() < 1e-9, "{r:?}");
    assert_eq!(r["items"], "30", "three steps ended by the cut");
    assert_eq!(r["steps"], "3");
    assert!((f(r, "j_per_item") - 0.6).abs() < 1e-9);
    for unknown in ["dropped", "host_energy_j", "host_share"] {
        assert_eq!(r[unknown], "", "{unknown}: {r:?}");
    }
    let (_, out, _) = export(&[p.to_str().unwrap(), "--steps"]);
    let s = &records(&out)[0];
    assert_eq!(s["count"], "3");
    assert!((f(s, "share") - 15.0 / 18.0).abs() < 1e-9, "{s:?}");
}

#[test]
fn a_directory_of_runs_oldest_first_and_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("job");
    std::fs::create_dir(&sub).unwrap();
    let mut late = run_lines("job", "late", &[("s", steady(2, 1.0, 1, 1.0))], true);
    late[0] = late[0].replace("2026-11-28T05:12:00Z", "2026-11-29T05:12:00Z");
    write_run(&sub, "a-late.jsonl", &late);
    write_run(
        &sub,
        "b-early.jsonl",
        &run_lines("job", "early", &[("s", steady(2, 1.0, 1, 1.0))], true),
    );
    std::fs::write(sub.join("notes.txt"), "not a run").unwrap();
    let (code, out, err) = export(&[dir.path().to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    let ids: Vec<String> = records(&out).iter().map(|r| r["run_id"].clone()).collect();
    assert_eq!(ids, ["early", "late"]);

    let missing = dir.path().join("missing.jsonl");
    let (code, _, err) = export(&[missing.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(err.contains("missing.jsonl"), "{err}");
    let (code, _, _) = export(&[dir.path().to_str().unwrap(), "--format", "xlsx"]);
    assert_eq!(code, Some(2));
    let (code, _, _) = export(&[]);
    assert_eq!(code, Some(2));
}

#[test]
fn new_columns_say_the_method_the_effective_factor_and_carinas_own_cost() {
    let dir = tempfile::tempdir().unwrap();
    let share = write_run(
        dir.path(),
        "share.jsonl",
        &counter_share_run("train", "r-share", false),
    );
    let low = write_run(
        dir.path(),
        "low.jsonl",
        &counter_share_run("train", "r-low", true),
    );
    let series = write_run(
        dir.path(),
        "series.jsonl",
        &series_run("grid", "r-series", true),
    );
    let paths = [&share, &low, &series].map(|p| p.to_str().unwrap().to_owned());
    let args: Vec<&str> = paths.iter().map(String::as_str).collect();
    let (code, out, err) = export(&args);
    assert_eq!(code, Some(0), "{err}");
    let recs = records(&out);
    let run = |id: &str| recs.iter().find(|r| r["run_id"] == id).unwrap();
    let r = run("r-share");
    // The kind column is unchanged for scripts; the method says it is a share.
    assert_eq!(r["energy_kind"], "measured");
    assert_eq!(r["method"], "counter x cpu-time share");
    assert_eq!(r["lower_bound"], "false");
    assert_eq!(r["carbon_g_per_kwh"], "400");
    assert_eq!(r["own_cost_cpu_share"], "0.0018");
    assert!((f(r, "own_cost_j") - 0.52).abs() < 1e-12, "{r:?}");
    let r = run("r-low");
    assert_eq!(r["method"], "counter x cpu-time share, lower bound");
    assert_eq!(r["lower_bound"], "true");
    // The effective factor, while g_per_kwh stays run_start's series mean.
    let r = run("r-series");
    assert_eq!(
        (r["g_per_kwh"].as_str(), r["carbon_g_per_kwh"].as_str()),
        ("426", "495.3")
    );
    assert_eq!(
        (r["own_cost_cpu_share"].as_str(), r["own_cost_j"].as_str()),
        ("", "")
    );

    let (code, out, err) = export(&[&paths[0], "--steps"]);
    assert_eq!(code, Some(0), "{err}");
    let recs = records(&out);
    let step = |name: &str| recs.iter().find(|r| r["step"] == name).unwrap();
    assert_eq!(step("train")["gpu"], "true");
    assert_eq!(
        step("train")["method"],
        "counter x cpu-time share; to steps by thread CPU time and wall time; GPU energy by \
         GPU-step overlap"
    );
    assert_eq!(step("load")["gpu"], "false");
    assert!(
        step("load")["method"]
            .ends_with("GPU energy by wall time, in intervals with no GPU step open"),
        "{out}"
    );
}

/// Issue 19 item 12: a run measured on three domains (RAPL package and DRAM shared by CPU time,
/// an NVIDIA GPU by GPU use) as a run row and step rows: each domain in its column with the
/// method of its figure, kWh and kg beside J and g, and step rows that stand alone (the run's
/// kind, start and each step's band). Parsed back and checked value by value.
#[test]
fn domains_methods_units_and_a_standalone_step_row() {
    use carina_runtime::record::{Basis, Method, MethodPart, ShareRule};
    use carina_runtime::units::Joules;
    let dir = tempfile::tempdir().unwrap();
    let groups = [
        ("load", steady(2, 0.5, 10, 2.0)),
        ("train", steady(4, 1.0, 25, 36.0)),
    ];
    // Steps 148 J, run 148 x 1.01 J: package 60 %, dram 10 %, gpu 30 % of each figure.
    let split = |e: f64| json!({"package-0": 0.6 * e, "dram-0": 0.1 * e, "gpu-0": 0.3 * e});
    let e_run = 148.0 * 1.01;
    let method = Method::from_parts(
        vec![
            MethodPart::new("rapl-powercap", Basis::Counter, Joules(0.7 * e_run))
                .with_share(ShareRule::CpuTime, Joules(0.7 * e_run)),
            MethodPart::new("nvml", Basis::IntegratedPower, Joules(0.3 * e_run))
                .with_share(ShareRule::GpuUse, Joules(0.3 * e_run)),
        ],
        false,
    );
    let with_domains = |lines: &mut Vec<String>| {
        patch(lines, "run_start", |v| {
            v["energy_sources"] = json!([
                {"name": "rapl-powercap", "kind": "measured", "source": "/sys/class/powercap",
                 "domains": ["package-0", "dram-0"], "scope": "host", "basis": "counter"},
                {"name": "nvml", "kind": "measured", "source": "NVML", "domains": ["gpu-0"],
                 "scope": "host", "basis": "integrated-power"}
            ]);
        });
        patch(lines, "step", |v| {
            let e = v["energy_j"].as_f64().unwrap();
            v["energy_by_domain"] = split(e);
            v["energy_low_j"] = json!(0.8 * e);
            v["energy_high_j"] = json!(1.25 * e);
        });
    };
    let mut lines = run_lines("train-job", "r-dom", &groups, true);
    with_domains(&mut lines);
    patch(&mut lines, "step_summary", |v| {
        let e = v["energy_j"].as_f64().unwrap();
        v["energy_by_domain"] = split(e);
        v["energy_low_j"] = json!(0.8 * e);
        v["energy_high_j"] = json!(1.25 * e);
    });
    patch(&mut lines, "run_end", |v| {
        v["energy_kind"] = json!("measured");
        v["energy_by_domain"] = split(e_run);
        v["method"] = serde_json::to_value(&method).unwrap();
    });
    let p = write_run(dir.path(), "dom.jsonl", &lines);
    let (code, out, err) = export(&[p.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    let r = &records(&out)[0];
    let close = |col: &str, want: f64| {
        let got = f(r, col);
        assert!(
            (got - want).abs() <= 1e-12 * want.abs().max(1e-300),
            "{col}: {got} vs {want}"
        );
    };
    close("cpu_j", 0.6 * e_run);
    close("dram_j", 0.1 * e_run);
    close("gpu_j", 0.3 * e_run);
    assert_eq!(r["other_j"], "0");
    close("energy_kwh", f(r, "energy_j") / 3.6e6);
    close("co2e_kg", f(r, "co2e_g") / 1000.0);
    assert_eq!(r["cpu_method"], "counter x cpu-time share (rapl-powercap)");
    assert_eq!(r["dram_method"], "counter x cpu-time share (rapl-powercap)");
    assert_eq!(r["gpu_method"], "integrated power x gpu-use share (nvml)");

    let (code, out, err) = export(&[p.to_str().unwrap(), "--steps"]);
    assert_eq!(code, Some(0), "{err}");
    let recs = records(&out);
    let train = recs.iter().find(|r| r["step"] == "train").unwrap();
    assert_eq!(train["energy_kind"], "measured");
    assert_eq!(train["started_at"], "2026-11-28T05:12:00Z");
    assert!(
        (f(train, "energy_low_j") - 0.8 * 144.0).abs() < 1e-9,
        "{train:?}"
    );
    assert!(
        (f(train, "energy_high_j") - 1.25 * 144.0).abs() < 1e-9,
        "{train:?}"
    );
    assert!((f(train, "cpu_j") - 0.6 * 144.0).abs() < 1e-9, "{train:?}");
    assert!((f(train, "dram_j") - 0.1 * 144.0).abs() < 1e-9, "{train:?}");
    assert!((f(train, "gpu_j") - 0.3 * 144.0).abs() < 1e-9, "{train:?}");
    assert!(
        (f(train, "energy_kwh") - 144.0 / 3.6e6).abs() < 1e-18,
        "{train:?}"
    );
    assert!((f(train, "co2e_kg") - f(train, "co2e_g") / 1000.0).abs() < 1e-18);
    assert_eq!(
        train["gpu_method"],
        "integrated power x gpu-use share (nvml)"
    );

    // Without summaries (a crashed run's records only), the band and the domains are the
    // records' sums up to the cut; the run row's domains are unknown (no run_end), not 0.
    let mut lines = run_lines("train-job", "r-crash", &groups, false);
    with_domains(&mut lines);
    let p = write_run(dir.path(), "crash.jsonl", &lines);
    let (_, out, _) = export(&[p.to_str().unwrap(), "--steps"]);
    let recs = records(&out);
    let train = recs.iter().find(|r| r["step"] == "train").unwrap();
    assert!(
        (f(train, "energy_low_j") - 0.8 * 144.0).abs() < 1e-9,
        "{train:?}"
    );
    assert!((f(train, "gpu_j") - 0.3 * 144.0).abs() < 1e-9, "{train:?}");
    let (_, out, _) = export(&[p.to_str().unwrap()]);
    let r = &records(&out)[0];
    assert_eq!(
        (r["cpu_j"].as_str(), r["gpu_j"].as_str()),
        ("", ""),
        "{r:?}"
    );
    // No run_end.method: derived from the source, every share rule a GPU may have used.
    assert_eq!(
        r["gpu_method"],
        "integrated power x cpu-time/gpu-use/count share (nvml)"
    );
}

/// A run of one domain writes no `energy_by_domain`: its whole energy is that domain's (the
/// model's `cpu`), in the run and the step rows; a step without a band has empty band cells.
#[test]
fn one_domain_holds_all_the_energy() {
    let dir = tempfile::tempdir().unwrap();
    let (a, _) = two_runs(dir.path());
    let (_, out, _) = export(&[&a]);
    let r = &records(&out)[0];
    assert_eq!(r["cpu_j"], r["energy_j"]);
    assert_eq!((r["dram_j"].as_str(), r["gpu_j"].as_str()), ("0", "0"));
    assert_eq!(r["cpu_method"], "model x cpu-time share (model)");
    assert_eq!(
        (r["dram_method"].as_str(), r["gpu_method"].as_str()),
        ("", "")
    );
    let (_, out, _) = export(&[&a, "--steps"]);
    let s = records(&out)
        .into_iter()
        .find(|r| r["step"] == "simulate")
        .unwrap();
    assert_eq!(s["cpu_j"], s["energy_j"]);
    assert_eq!(s["energy_kind"], "estimated");
    assert_eq!(
        (s["energy_low_j"].as_str(), s["energy_high_j"].as_str()),
        ("", "")
    );
}

/// `attrs` (issue 19): a step name whose instances carry attributes gets one row per
/// combination and one for the rest, adding up to the name's totals; the combinations come from
/// the summary's `by_attrs`, or from the step records in a crashed run; a name without
/// attributes keeps its one row with an empty `attrs`.
#[test]
fn step_attributes_split_a_name_into_rows_that_add_up() {
    let dir = tempfile::tempdir().unwrap();
    let with_attrs = |complete: bool| -> Vec<String> {
        let lines = run_lines(
            "train-job",
            "run-t",
            &[
                ("load", steady(2, 0.5, 10, 2.0)),
                ("train", steady(4, 1.0, 25, 10.0)),
            ],
            complete,
        );
        // Instances of `train` (ids 2, 4, 6, 8): a, a, b, none.
        let by_id = [(2, "a"), (4, "a"), (6, "b")];
        lines
            .into_iter()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(&l).unwrap();
                if v["type"] == "step"
                    && let Some((_, d)) = by_id.iter().find(|(id, _)| v["id"] == *id)
                {
                    v["attrs"] = json!({ "dataset": d, "epoch": "1" });
                }
                if v["type"] == "step_summary" && v["name"] == "train" {
                    let g = |d: &str, n: u64| {
                        json!({
                            "attrs": { "dataset": d, "epoch": "1" }, "count": n, "wall_s": n as f64,
                            "items": 25 * n, "energy_j": 10.0 * n as f64,
                            "self_energy_j": 10.0 * n as f64,
                            "co2e_g": 10.0 * n as f64 / 3.6e6 * 400.0, "errors": 0
                        })
                    };
                    v["by_attrs"] = json!([g("a", 2), g("b", 1)]);
                }
                v.to_string()
            })
            .collect()
    };
    for complete in [true, false] {
        let p = write_run(
            dir.path(),
            &format!("t{complete}.jsonl"),
            &with_attrs(complete),
        );
        let (code, out, err) = export(&[p.to_str().unwrap(), "--steps"]);
        assert_eq!(code, Some(0), "{err}");
        assert!(out.lines().next().unwrap().ends_with(",gpu_method,attrs"));
        let recs = records(&out);
        let load: Vec<_> = recs.iter().filter(|r| r["step"] == "load").collect();
        assert_eq!(load.len(), 1, "{out}");
        assert_eq!(load[0]["attrs"], "");
        let train: Vec<_> = recs.iter().filter(|r| r["step"] == "train").collect();
        let rows: Vec<(&str, &str, f64)> = train
            .iter()
            .map(|r| (r["attrs"].as_str(), r["count"].as_str(), f(r, "energy_j")))
            .collect();
        assert_eq!(
            rows,
            vec![
                (r#"{"dataset":"a","epoch":"1"}"#, "2", 20.0),
                (r#"{"dataset":"b","epoch":"1"}"#, "1", 10.0),
                ("", "1", 10.0),
            ],
            "complete {complete}\n{out}"
        );
        // The rows add up to the name's totals; per-item figures are each row's own.
        let items: u64 = train
            .iter()
            .map(|r| r["items"].parse::<u64>().unwrap())
            .sum();
        assert_eq!(items, 100);
        assert!((f(train[0], "j_per_item") - 0.4).abs() < 1e-12);
        assert_eq!(train[0]["p50_s"], "", "not kept per combination");
    }
}
