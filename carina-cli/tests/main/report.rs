//! `carina report`: the HTML dashboard, from hand-written run files (docs/FORMAT.md).

use crate::common;
use carina_cli::load::{load_runs, load_runs_lenient};
use carina_cli::report::render;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

const XSS: &str = "<script>alert(1)</script>";

fn run_start(run_id: &str, job: &str, started_at: &str, steps: &str) -> String {
    format!(
        r#"{{"type":"run_start","schema":1,"run_id":"{run_id}","job":"{job}","host":"node<7>","pid":42,"started_at":"{started_at}","energy_sources":[{{"name":"model","kind":"estimated","source":"coefficients & <table>","domains":["cpu"],"scope":"host","idle_w":1.0,"max_w":4.0}},{{"name":"rapl-perf","kind":"measured","source":"","used":false,"reason":"no PMU"}}],"carbon":{{"g_per_kwh":400.0,"zone":"WORLD","source":"Ember"}},"steps":"{steps}","sample_interval_s":0.1,"scope":"process","carina_version":"0.1.0"}}"#
    )
}

#[allow(clippy::too_many_arguments)]
fn step(
    name: &str,
    id: u64,
    parent: Option<u64>,
    start: f64,
    end: f64,
    items: u64,
    e: f64,
    self_e: f64,
) -> String {
    let parent = parent.map_or("null".to_string(), |p| p.to_string());
    let name = serde_json::to_string(name).unwrap();
    format!(
        r#"{{"type":"step","name":{name},"id":{id},"parent":{parent},"thread":0,"start_s":{start},"end_s":{end},"items":{items},"status":"ok","energy_j":{e},"self_energy_j":{self_e},"co2e_g":{}}}"#,
        e * 400.0 / 3.6e6
    )
}

fn summary(name: &str, count: u64, wall: f64, items: u64, e: f64, self_e: f64) -> String {
    let name = serde_json::to_string(name).unwrap();
    format!(
        r#"{{"type":"step_summary","name":{name},"count":{count},"wall_s":{wall},"self_wall_s":{wall},"items":{items},"energy_j":{e},"self_energy_j":{self_e},"co2e_g":{},"p50_s":0.5,"p95_s":0.9,"max_s":1.0,"errors":0,"panics":0,"energy_low_j":{},"energy_high_j":{}}}"#,
        e * 400.0 / 3.6e6,
        e * 0.8,
        e * 1.2
    )
}

fn run_end(wall: f64, e: f64, items: u64) -> String {
    format!(
        r#"{{"type":"run_end","ended_at":"2026-11-28T05:12:14.3Z","wall_s":{wall},"energy_j":{e},"unattributed_j":1.0,"co2e_g":{},"items":{items},"steps":4,"dropped":0,"records_not_written":0,"host_energy_j":{e},"energy_kind":"estimated","probe_errors":0,"sink_errors":0,"energy_low_j":{},"energy_high_j":{}}}"#,
        e * 400.0 / 3.6e6,
        e * 0.8,
        e * 1.2
    )
}

/// A complete run of `job` whose energy scales with `scale`.
fn complete_run(run_id: &str, job: &str, started_at: &str, scale: f64) -> String {
    let mut s = String::new();
    for line in [
        run_start(run_id, job, started_at, "all"),
        r#"{"type":"thread","index":0,"name":"main"}"#.to_string(),
        r#"{"type":"control","t_s":0.0,"at":"2026-11-28T05:12:00Z","policy":"throttle","mode":"off-peak","allowed":4,"nominal":4}"#.to_string(),
        r#"{"type":"control","t_s":4.0,"at":"2026-11-28T05:12:04Z","policy":"throttle","mode":"peak","allowed":1,"nominal":4,"reason":"peak window <Mon-Fri>"}"#.to_string(),
        r#"{"type":"control","t_s":7.0,"at":"2026-11-28T05:12:07Z","policy":"defer","mode":"paused","allowed":0,"nominal":4}"#.to_string(),
        step("load", 2, Some(1), 0.0, 2.0, 100, 20.0 * scale, 20.0 * scale),
        step(XSS, 3, Some(1), 2.0, 6.0, 100, 40.0 * scale, 30.0 * scale),
        step("store", 4, Some(3), 5.0, 6.0, 100, 10.0 * scale, 10.0 * scale),
        step("job", 1, None, 0.0, 10.0, 0, 71.0 * scale, 1.0 * scale),
        summary("load", 1, 2.0, 100, 20.0 * scale, 20.0 * scale),
        summary(XSS, 1, 4.0, 100, 40.0 * scale, 30.0 * scale),
        summary("store", 1, 1.0, 100, 10.0 * scale, 10.0 * scale),
        summary("job", 1, 10.0, 0, 71.0 * scale, 1.0 * scale),
        run_end(10.0, 72.0 * scale, 100),
    ] {
        s.push_str(&line);
        s.push('\n');
    }
    s
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn fixture() -> (tempfile::TempDir, Vec<PathBuf>) {
    let dir = tempfile::tempdir().unwrap();
    let mut paths = vec![
        write(
            dir.path(),
            "a1.jsonl",
            &complete_run("r1", "nightly", "2026-11-26T05:00:00Z", 1.0),
        ),
        write(
            dir.path(),
            "a2.jsonl",
            &complete_run("r2", "nightly", "2026-11-27T05:00:00Z", 1.5),
        ),
        write(
            dir.path(),
            "a3.jsonl",
            &complete_run("r3", "nightly", "2026-11-28T05:00:00Z", 0.75),
        ),
    ];
    // A crashed run of another job: no summaries, no run_end.
    let crashed = [
        run_start("c1", "other & job", "2026-11-28T06:00:00Z", "all"),
        step("fetch", 1, None, 0.0, 3.0, 10, 9.0, 9.0),
        step("fetch", 2, None, 3.0, 5.0, 10, 6.0, 6.0),
    ]
    .join("\n")
        + "\n";
    paths.push(write(dir.path(), "c1.jsonl", &crashed));
    (dir, paths)
}

#[test]
fn renders_every_section_and_escapes_user_strings() {
    let (_dir, paths) = fixture();
    let runs = load_runs(&paths).unwrap();
    let html = render(&runs);

    // Escaping.
    assert!(!html.contains("<script>alert(1)"), "raw step name leaked");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("node&lt;7&gt;"));
    assert!(html.contains("other &amp; job"));
    assert!(!html.contains("<table>"), "source string leaked");

    // Self-contained.
    assert!(!html.contains("http://"));
    assert!(!html.contains("https://"));
    assert!(!html.contains("<link"));
    assert!(!html.contains("<script src"));
    assert!(!html.contains(" src="));
    assert!(html.contains("Content-Security-Policy"));
    assert!(html.contains("default-src 'none'"));
    assert!(html.contains("@media print"));

    // Sections.
    assert!(html.contains("class=\"cards headline\""));
    for k in [
        "Energy",
        "CO2e",
        "Runtime",
        "Items",
        "Energy per item",
        "Measured vs estimated",
    ] {
        assert!(html.contains(&format!("<div class=\"k\">{k}</div>")), "{k}");
    }
    assert!(html.contains("band 57.6 J – 86.4 J"), "band of run 1");
    assert!(html.contains("class=\"sortable steps\""));
    assert!(html.contains("<th>p95 (s)</th>"));
    assert!(html.contains("<svg class=\"chart timeline\""));
    assert!(html.contains("power (W)"));
    assert!(html.contains("time since run start (s)"));
    assert!(html.contains("cumulative energy (J)"));
    assert!(html.contains("class=\"ctl\""), "peak/paused spans shaded");
    assert!(html.contains("#a0aec0"), "paused span");
    assert!(html.contains("<table class=\"tree\">"));
    assert!(html.contains("estimated"));

    // Step tree: store nested under the XSS step under job.
    let job = html.find("padding-left:9px\">job<").expect("root row");
    let x = html[job..]
        .find("padding-left:27px\">└ &lt;script&gt;")
        .expect("child row");
    assert!(html[job + x..].contains("padding-left:45px\">└ store<"));

    // Recurring view with % changes (+50 %, then -50 %).
    assert_eq!(html.matches("Recurring view: 3 cycles").count(), 1);
    assert!(html.contains("+50.0 %"));
    assert!(html.contains("-50.0 %"));
    assert!(html.contains("cycles-chart"));
    // One section per job.
    assert!(html.contains("<h2>Job: nightly</h2>"));
    assert!(html.contains("<h2>Job: other &amp; job</h2>"));

    // The crashed run is shown, badged, with figures rebuilt from its steps.
    assert!(html.contains("incomplete"));
    assert!(html.contains("Run c1"));
    assert!(html.contains("<td class=\"l\">fetch</td><td data-v=\"2\">2</td>"));
    assert!(html.contains("15.0 J"));
}

#[test]
fn summary_only_run_without_steps_draws_a_flat_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = [
        run_start("s1", "sum", "2026-11-28T06:00:00Z", "summary"),
        summary("work", 10, 8.0, 50, 30.0, 30.0),
        run_end(8.0, 31.0, 50),
    ]
    .join("\n")
        + "\n";
    let p = write(dir.path(), "s.jsonl", &text);
    let html = render(&load_runs(&[p]).unwrap());
    assert!(html.contains("flat line"));
    assert!(html.contains("<svg class=\"chart timeline\""));
    assert!(html.contains("summaries only"));
    assert!(!html.contains("Recurring view"));
}

#[test]
fn power_records_draw_the_timeline_with_all_of_the_runs_energy() {
    let dir = tempfile::tempdir().unwrap();
    // 30 one-second windows: 10 W, then 50 W from t = 10 s, then 10 W from t = 20 s. One
    // short step, so without the power records the timeline would show the step only.
    let mut lines = vec![
        run_start("p1", "pw", "2026-11-28T06:00:00Z", "all"),
        step("tiny", 1, None, 0.0, 0.5, 1, 5.0, 5.0),
    ];
    let mut total = 0.0;
    for k in 0..30 {
        let w = if (10..20).contains(&k) { 50.0 } else { 10.0 };
        total += w;
        lines.push(format!(
            r#"{{"type":"power","start_s":{k}.0,"end_s":{}.0,"energy_j":{w},"co2e_g":0.001}}"#,
            k + 1
        ));
    }
    lines.push(run_end(30.0, total, 1));
    let p = write(dir.path(), "p.jsonl", &(lines.join("\n") + "\n"));
    let html = render(&load_runs(&[p]).unwrap());
    assert!(html.contains("from the run's 30 power record(s)"), "note");
    assert!(
        html.contains("peak bin 50.0 W"),
        "the 50 W plateau is the peak"
    );
    assert_eq!(total, 700.0);
    assert!(
        html.contains("700 J plotted"),
        "all of the run's energy is plotted"
    );
}

fn carina(args: &[&str], cwd: &Path) -> std::process::Output {
    common::carina_command()
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

#[test]
fn cli_writes_the_report_and_prints_its_path() {
    let (dir, _) = fixture();
    let out = carina(&["report", "."], dir.path());
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "report.html");
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains("Recurring view: 3 cycles"));

    let out = carina(&["report", "a1.jsonl", "-o", "one.html"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(dir.path().join("one.html").exists());
}

#[test]
fn cli_bad_inputs_exit_2_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();

    let out = carina(&["report", "missing.jsonl"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("missing.jsonl"), "{}", stderr(&out));

    std::fs::create_dir(dir.path().join("empty")).unwrap();
    let out = carina(&["report", "empty"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("empty"), "{}", stderr(&out));
    assert!(stderr(&out).contains("no run files"), "{}", stderr(&out));

    write(dir.path(), "blank.jsonl", "");
    let out = carina(&["report", "blank.jsonl"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("blank.jsonl: the file is empty"),
        "{}",
        stderr(&out)
    );

    let bad = complete_run("b", "j", "2026-11-28T05:00:00Z", 1.0).replacen(
        "{\"type\":\"thread\"",
        "{not json",
        1,
    );
    write(dir.path(), "bad.jsonl", &bad);
    let out = carina(&["report", "bad.jsonl"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("bad.jsonl:2"), "{}", stderr(&out));

    let newer = complete_run("n", "j", "2026-11-28T05:00:00Z", 1.0).replacen(
        "\"schema\":1",
        "\"schema\":99",
        1,
    );
    write(dir.path(), "newer.jsonl", &newer);
    let out = carina(&["report", "newer.jsonl"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("newer.jsonl:1"), "{}", stderr(&out));
    assert!(stderr(&out).contains("schema"), "{}", stderr(&out));
    assert!(!dir.path().join("report.html").exists());
}

/// One million step records load and render completely (every record read, the names in the
/// page). The speed goal (under 5 s) is shown by `carina-cli/benches/report.rs`, not here.
#[test]
fn one_million_steps() {
    const N: u64 = 1_000_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.jsonl");
    {
        let f = std::fs::File::create(&path).unwrap();
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        writeln!(
            w,
            "{}",
            run_start("big", "big-job", "2026-11-28T05:00:00Z", "all")
        )
        .unwrap();
        let names = ["simulate", "evaluate", "store"];
        let mut line = String::with_capacity(512);
        let wall = N as f64 * 1e-4;
        for id in 2..=N {
            line.clear();
            let start = (id - 2) as f64 * 1e-4;
            let _ = writeln!(
                line,
                r#"{{"type":"step","name":"{}","id":{id},"parent":1,"thread":{},"start_s":{start},"end_s":{},"items":1,"status":"ok","energy_j":0.01,"self_energy_j":0.01,"co2e_g":1.1e-6}}"#,
                names[(id % 3) as usize],
                id % 4,
                start + 1e-4
            );
            w.write_all(line.as_bytes()).unwrap();
        }
        writeln!(
            w,
            "{}",
            step("job", 1, None, 0.0, wall, N, 0.01 * N as f64, 0.0)
        )
        .unwrap();
        writeln!(w, "{}", run_end(wall, 0.01 * N as f64 + 1.0, N)).unwrap();
    }
    let runs = load_runs(std::slice::from_ref(&path)).unwrap();
    let html = render(&runs);
    assert_eq!(runs[0].steps.len(), N as usize);
    // Every record counted: ids 2..=N cycle through the three names.
    let per_name = |r: u64| (2..=N).filter(|id| id % 3 == r).count();
    for (name, r) in [("simulate", 0), ("evaluate", 1), ("store", 2)] {
        let cell = format!(
            "<td class=\"l\">{name}</td><td data-v=\"{0}\">{0}</td>",
            per_name(r)
        );
        assert!(html.contains(&cell), "{name}: {cell}");
    }
    assert!(
        html.len() < 200_000,
        "the page does not grow with the records: {}",
        html.len()
    );
}

#[test]
fn cli_skips_unreadable_files_with_a_warning_and_a_note() {
    let (dir, _) = fixture();
    let stderr = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();
    write(dir.path(), "blank.jsonl", "");
    let bad = complete_run("b", "j", "2026-11-28T05:00:00Z", 1.0).replacen(
        "{\"type\":\"thread\"",
        "{not json",
        1,
    );
    write(dir.path(), "bad.jsonl", &bad);
    // A file name is user input too: it is escaped in the note.
    write(dir.path(), "x<b>.jsonl", "");

    let out = carina(&["report", "."], dir.path());
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let err = stderr(&out);
    assert!(
        err.contains("carina report: warning: skipped ./bad.jsonl:2: "),
        "{err}"
    );
    assert!(
        err.contains("carina report: warning: skipped ./blank.jsonl: the file is empty"),
        "{err}"
    );
    assert!(err.contains("x<b>.jsonl: the file is empty"), "{err}");
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains("3 run file(s) skipped"), "note near the top");
    assert!(html.find("run file(s) skipped") < html.find("<h2>Job:"));
    assert!(html.contains("<li>./bad.jsonl:2: "));
    assert!(html.contains("<li>./blank.jsonl: the file is empty"));
    assert!(html.contains("<li>./x&lt;b&gt;.jsonl: the file is empty"));
    assert!(!html.contains("x<b>"), "file name leaked unescaped");
    assert!(html.contains("4 run(s) of 2 job(s)"));
    assert!(html.contains("Recurring view: 3 cycles"));

    // The strict loader still stops at the first bad file; the lenient one returns the good
    // runs and one error per bad file.
    assert!(load_runs(&[dir.path().to_path_buf()]).is_err());
    let (runs, skipped) = load_runs_lenient(&[dir.path().to_path_buf()]).unwrap();
    assert_eq!((runs.len(), skipped.len()), (4, 3));

    // No readable run at all: exit 2, every error printed, no page.
    let only_bad = tempfile::tempdir().unwrap();
    write(only_bad.path(), "blank.jsonl", "");
    write(only_bad.path(), "bad.jsonl", &bad);
    let out = carina(&["report", "."], only_bad.path());
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = stderr(&out);
    assert!(
        err.contains("carina report: error: ./bad.jsonl:2: "),
        "{err}"
    );
    assert!(
        err.contains("carina report: error: ./blank.jsonl: the file is empty"),
        "{err}"
    );
    assert!(!only_bad.path().join("report.html").exists());

    // Wrong paths stay errors even beside good runs.
    let out = carina(&["report", ".", "missing.jsonl"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(stderr(&out).contains("missing.jsonl"), "{}", stderr(&out));
}

#[test]
fn a_file_named_twice_loads_once() {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("d").join("job");
    std::fs::create_dir_all(&job).unwrap();
    let one = write(
        &job,
        "one.jsonl",
        &complete_run("r1", "nightly", "2026-11-26T05:00:00Z", 1.0),
    );
    let d = dir.path().join("d");
    let runs = load_runs(&[d.clone(), one.clone(), job.join("../job/one.jsonl")]).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].path, one, "the first occurrence is kept");

    let out = carina(&["report", "d", "d/job/one.jsonl", "d"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains("1 run(s) of 1 job(s)"));
    assert!(!html.contains("Recurring view"), "one run is not a series");
}

#[cfg(unix)]
#[test]
fn directory_scan_does_not_follow_symlinked_directories_but_includes_symlinked_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("d");
    let j = d.join("j");
    std::fs::create_dir_all(&j).unwrap();
    write(
        &j,
        "one.jsonl",
        &complete_run("r1", "nightly", "2026-11-26T05:00:00Z", 1.0),
    );
    // A loop back up the tree, and a link to a run kept elsewhere.
    std::os::unix::fs::symlink("..", j.join("loop")).unwrap();
    let elsewhere = write(
        dir.path(),
        "two.jsonl",
        &complete_run("r2", "nightly", "2026-11-27T05:00:00Z", 1.5),
    );
    std::os::unix::fs::symlink(&elsewhere, j.join("two.jsonl")).unwrap();

    let runs = load_runs(std::slice::from_ref(&d)).unwrap();
    let ids: Vec<&str> = runs.iter().map(|r| r.start.run_id.as_str()).collect();
    assert_eq!(ids, ["r1", "r2"]);
    assert_eq!(runs[1].path, j.join("two.jsonl"));

    let out = carina(&["report", "d"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains("2 run(s) of 1 job(s)"));
    assert!(html.contains("Recurring view: 2 cycles"));
}

/// The cells of the recurring-view table (`table.sortable.cycles`), row by row.
fn cycle_rows(html: &str) -> Vec<Vec<&str>> {
    let start = html
        .find("<table class=\"sortable cycles\">")
        .expect("cycles table");
    let table = &html[start..];
    let table = &table[..table.find("</table>").unwrap()];
    let body = &table[table.find("<tbody>").unwrap()..];
    body.split("<tr>")
        .skip(1)
        .map(|row| row.split("<td").skip(1).collect())
        .collect()
}

/// The `data-v` sort key of a cell (`<td` already stripped), if it has one.
fn data_v(cell: &str) -> Option<&str> {
    let open = &cell[..cell.find('>').unwrap()];
    let i = open.find("data-v=\"")? + "data-v=\"".len();
    Some(&open[i..i + open[i..].find('"').unwrap()])
}

#[test]
fn recurring_delta_cells_carry_numeric_sort_keys() {
    let (_dir, paths) = fixture();
    let html = render(&load_runs(&paths).unwrap());
    let rows = cycle_rows(&html);
    assert_eq!(rows.len(), 3);
    // Columns: #, started, run, status, energy, Δ energy, CO2e, Δ CO2e, runtime, Δ runtime,
    // items, Wh per item, Δ Wh/item.
    const DELTAS: [usize; 4] = [5, 7, 9, 12];
    for (r, row) in rows.iter().enumerate() {
        assert_eq!(row.len(), 13, "{row:?}");
        for c in DELTAS {
            let v = data_v(row[c]).unwrap_or_else(|| panic!("row {r} col {c}: {}", row[c]));
            if r == 0 {
                // No previous cycle: "–", sorted below every change.
                assert_eq!(v, "-Infinity", "{}", row[c]);
                assert!(row[c].contains(">–<"));
            } else {
                assert!(v.parse::<f64>().unwrap().is_finite(), "{v}");
            }
        }
    }
    // +50 % then -50 % energy: the key is the percentage itself.
    let pct = |r: usize, c: usize| data_v(rows[r][c]).unwrap().parse::<f64>().unwrap();
    assert!((pct(1, 5) - 50.0).abs() < 1e-9);
    assert!((pct(2, 5) + 50.0).abs() < 1e-9);
    assert!((pct(1, 12) - 50.0).abs() < 1e-9, "Wh per item");
    assert_eq!(pct(1, 9), 0.0, "same runtime");
    assert!(rows[1][5].contains("+50.0 %"));
}

#[test]
fn recurring_table_is_narrow_enough_for_a_laptop_screen() {
    let (_dir, paths) = fixture();
    let html = render(&load_runs(&paths).unwrap());
    let rows = cycle_rows(&html);
    // Started: date and minute, full value in the title, sorted by start order.
    assert_eq!(
        rows[0][1],
        " class=\"l\" data-v=\"0\" title=\"2026-11-26T05:00:00Z\">2026-11-26 05:00</td>"
    );
    // The run id may wrap anywhere.
    assert!(
        rows[0][2].starts_with(" class=\"l id\">r1<"),
        "{}",
        rows[0][2]
    );
    assert!(html.contains("td.id{white-space:normal;word-break:break-all;"));
}

/// Every `NN.N %</td>` cell of the page (the step table's shares), as numbers.
fn percent_cells(html: &str) -> Vec<f64> {
    html.split(" %</td>")
        .filter_map(|part| part.rsplit('>').next()?.trim().parse().ok())
        .collect()
}

#[test]
fn headline_cards_show_the_host_share_host_energy_and_scope() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = common::run_lines(
        "nightly",
        "shared",
        &[("work", common::steady(10, 1.0, 10, 11.4))],
        true,
    );
    common::set_host_share(&mut lines, 0.49);
    let p = common::write_run(dir.path(), "shared.jsonl", &lines);
    let html = render(&load_runs(&[p]).unwrap());
    assert!(
        html.contains(
            "<div class=\"k\">Host share</div><div class=\"v\">0.49 (49.0 %)</div>\
             <div class=\"s\">of host energy 235 J · scope process</div>"
        ),
        "host share card"
    );
    common::set_host_share(&mut lines, 0.0);
    let p = common::write_run(dir.path(), "no-host.jsonl", &lines);
    let html = render(&load_runs(&[p]).unwrap());
    assert!(
        html.contains("<div class=\"k\">Host share</div><div class=\"v\">n/a</div>"),
        "n/a card"
    );
}

#[test]
fn a_crashed_run_is_drawn_up_to_its_cut_and_no_step_exceeds_it() {
    let dir = tempfile::tempdir().unwrap();
    // Power windows cover 0..2 s (20 J); `work` steps end at 0.9, 1.9, 2.6 and 3.2 s, 9 J each.
    let mut lines = vec![common::run_start("job", "cut")];
    for (id, (a, b)) in [(0.0, 0.9), (0.9, 1.9), (1.9, 2.6), (2.6, 3.2)]
        .into_iter()
        .enumerate()
    {
        lines.push(common::step("work", id as u64 + 1, a, b, 10, 9.0));
    }
    lines.push(common::power(0.0, 1.0, 10.0));
    lines.push(common::power(1.0, 2.0, 10.0));
    let p = common::write_run(dir.path(), "cut.jsonl", &lines);
    let html = render(&load_runs(&[p]).unwrap());
    let shares = percent_cells(&html);
    assert!(!shares.is_empty(), "no share cells");
    assert!(shares.iter().all(|&s| s <= 100.0), "{shares:?}");
    assert!(shares.contains(&90.0), "18 J of 20 J: {shares:?}");
    assert!(
        html.contains("<div class=\"k\">Items</div><div class=\"v\">20</div>"),
        "items up to the cut"
    );
    assert!(
        html.contains("<div class=\"k\">Runtime</div><div class=\"v\">2.00 s</div>"),
        "runtime up to the cut"
    );
    assert!(html.contains("2 step record(s) that ended later are left out"));
}

#[test]
fn a_run_without_steps_says_its_energy_is_at_run_level() {
    let dir = tempfile::tempdir().unwrap();
    let text = [
        run_start("bare-1", "plain", "2026-11-28T05:12:00Z", "all"),
        run_end(10.0, 120.0, 0),
    ]
    .join("\n")
        + "\n";
    let p = write(dir.path(), "bare.jsonl", &text);
    let html = render(&load_runs(&[p]).unwrap());
    assert!(
        html.contains("a run without steps has its energy at run level (no step markers)"),
        "{html}"
    );
    assert!(!html.contains("unattributed 120"), "{html}");
}

/// Job and step names (and run ids) holding markup and quotes reach the page as text: maud
/// escapes `&`, `<`, `>` and `"` in everything spliced into it. It leaves `'` as is, which is
/// safe because every attribute value it writes is double-quoted.
#[test]
fn hostile_job_and_step_names_are_escaped() {
    const NAME: &str = r#"<script>alert(1)</script> "dq" 'sq' & amp"#;
    const ESCAPED: &str = "&lt;script&gt;alert(1)&lt;/script&gt; &quot;dq&quot; 'sq' &amp; amp";
    let dir = tempfile::tempdir().unwrap();
    let job = format!("job {NAME}");
    let paths: Vec<PathBuf> = ["r1", "r2"]
        .iter()
        .map(|id| {
            let lines = common::run_lines(
                &job,
                &format!("{id} {NAME}"),
                &[
                    (NAME, common::steady(3, 1.0, 10, 5.0)),
                    ("plain", common::steady(2, 0.5, 0, 1.0)),
                ],
                true,
            );
            common::write_run(dir.path(), &format!("{id}.jsonl"), &lines)
        })
        .collect();
    let html = render(&load_runs(&paths).unwrap());

    // No raw form anywhere: the only script element is the page's own sorting script.
    assert!(!html.contains(NAME), "raw name leaked");
    assert!(!html.contains("<script>alert(1)"), "raw markup leaked");
    assert!(!html.contains("\"dq\""), "raw double quotes leaked");
    assert!(!html.contains("& amp"), "raw ampersand leaked");
    assert_eq!(html.matches("<script").count(), 1, "one script element");

    // The escaped form wherever a name is shown: job heading, run summary, recurring table
    // (run id), step table and step tree.
    for cell in [
        format!("<h2>Job: job {ESCAPED}</h2>"),
        format!("<summary>Run r2 {ESCAPED} <span"),
        format!("class=\"l id\">r1 {ESCAPED}</td>"),
        format!("<td class=\"l\">{ESCAPED}</td><td data-v=\"3\">3</td>"),
        format!("padding-left:9px\">{ESCAPED}</td>"),
    ] {
        assert!(html.contains(&cell), "missing: {cell}");
    }
}

#[test]
fn the_headline_says_how_the_energy_was_obtained_and_what_carina_cost() {
    use carina_runtime::record::{Basis, Method, MethodPart, ShareRule};
    use carina_runtime::units::Joules;
    let dir = tempfile::tempdir().unwrap();
    let mut lines = common::counter_share_run("train", "r-share", true);
    // Two sources, one whose name needs escaping: the label names each.
    let part = |source: &str, basis, rule| {
        MethodPart::new(source, basis, Joules(70.0)).with_share(rule, Joules(70.0))
    };
    let method = Method::from_parts(
        vec![
            part("rapl-powercap", Basis::Counter, ShareRule::CpuTime),
            part("nvml<0>", Basis::IntegratedPower, ShareRule::GpuUse),
        ],
        true,
    );
    common::patch(&mut lines, "run_end", |v| {
        v["method"] = serde_json::to_value(&method).unwrap();
    });
    let p = common::write_run(dir.path(), "share.jsonl", &lines);
    let html = render(&load_runs(&[p]).unwrap());
    let label = "counter x cpu-time share (rapl-powercap) + integrated power x gpu-use share \
                 (nvml&lt;0&gt;), lower bound";
    assert!(!html.contains("nvml<0>"), "the label is escaped");
    assert!(
        html.contains(&format!(
            "<div class=\"s\"><span class=\"method\">{label}</span> · measured, no band · \
             <b class=\"lower\">lower bound</b>"
        )),
        "energy card"
    );
    // The badge: what was done to the counters, the method on hover.
    assert!(
        html.contains(&format!(
            "<span class=\"badge b-measured\" title=\"measured ({label})\">measured x share, \
             integrated, lower bound</span>"
        )),
        "badge"
    );
    // The notes, one per basis and share rule, folded under the cards.
    let notes = html
        .split("<details class=\"method\">")
        .nth(1)
        .expect("method details");
    let notes = &notes[..notes.find("</details>").unwrap()];
    for n in &method.notes {
        assert!(notes.contains(n.as_str()), "{n} not in {notes}");
    }
    assert!(
        notes.contains("power samples integrated by the trapezoid rule"),
        "{notes}"
    );
    assert!(
        html.contains(&format!(
            "<div class=\"k\">Carina's own cost</div><div class=\"v\">0.18 % of CPU time</div>\
             <div class=\"s\">{}</div>",
            common::OWN_COST_LINE
                .strip_prefix("0.18 % of CPU time, ")
                .unwrap()
        )),
        "own cost card"
    );
    // GPU steps are marked in the step table, and the split is said above it.
    assert!(
        html.contains("<td class=\"l\">train <span class=\"badge b-gpu\""),
        "GPU mark"
    );
    assert!(
        !html.contains("<td class=\"l\">load <span"),
        "load is no GPU step"
    );
    assert!(html.contains("<p class=\"note step-method\">GPU steps <span class=\"badge b-gpu\""));
    assert!(html.contains(
        "; to steps by thread CPU time and wall time; GPU energy by GPU-step overlap</p>"
    ));
}

#[test]
fn the_co2e_card_shows_the_effective_factor_and_older_files_their_derived_method() {
    let dir = tempfile::tempdir().unwrap();
    let series = common::write_run(
        dir.path(),
        "series.jsonl",
        &common::series_run("grid", "r-series", true),
    );
    let html = render(&load_runs(&[series]).unwrap());
    assert!(
        html.contains(
            "<div class=\"s\">495 g/kWh energy-weighted over the intensity series (its plain \
             mean 426), DE</div>"
        ),
        "CO2e card"
    );
    // An older file (no run_end.method, no own_cost): the method derived from its sources, no
    // own-cost card, and the estimate's badge as before.
    assert!(html.contains(
        "(derived from the run's sources and scope: the file has no <code>run_end.method</code>)"
    ));
    assert!(!html.contains("Carina's own cost"));
    assert!(html.contains(
        "<span class=\"badge b-estimated\" title=\"estimated (model x cpu-time share)\">estimated</span>"
    ));
}
