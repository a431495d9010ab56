//! Many hosts of one job: `carina summary` and `carina report` over the run files of several
//! hosts group them by job and cycle, with per-host and total figures.

use crate::common::*;
use std::path::Path;

/// One cycle of `scenario-db` on three hosts, started on `day` (`2026-11-28`): node-a 10 Wh,
/// 1000 items, 10 min from 05:00:00; node-b 20 Wh, 2000 items, 15 min from 05:00:30; node-c
/// 5 Wh, 500 items, 5 min from 05:01:00. Total: 35 Wh, 3500 items, 05:00:00 to 05:15:30.
fn three_hosts(dir: &Path, day: &str) {
    let hosts = [
        ("node-a", "05:00:00", 600.0, 36_000.0, 1000),
        ("node-b", "05:00:30", 900.0, 72_000.0, 2000),
        ("node-c", "05:01:00", 300.0, 18_000.0, 500),
    ];
    for (host, t, wall, e, items) in hosts {
        let sub = dir.join(host).join("scenario-db");
        std::fs::create_dir_all(&sub).unwrap();
        let id = format!("{day}-{host}");
        let lines = host_run(
            "scenario-db",
            &id,
            host,
            &format!("{day}T{t}Z"),
            wall,
            e,
            items,
        );
        write_run(&sub, &format!("{id}.jsonl"), &lines);
    }
}

/// The table lines of the cycle whose header contains `title`, up to the blank line.
fn cycle_table<'a>(out: &'a str, title: &str) -> Vec<&'a str> {
    out.lines()
        .skip_while(|l| !l.contains(title))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect()
}

fn cells(line: &str) -> Vec<&str> {
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect()
}

#[test]
fn summary_of_three_hosts_shows_each_host_and_the_total_per_cycle() {
    let dir = tempfile::tempdir().unwrap();
    three_hosts(dir.path(), "2026-11-28");
    three_hosts(dir.path(), "2026-11-29");
    let o = carina(&["summary", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with("6 run(s) of 1 job(s) on 3 host(s), in 2 cycle(s)\n"),
        "{out}"
    );
    for (n, day) in [(1, "2026-11-28"), (2, "2026-11-29")] {
        let title =
            format!("Job scenario-db, cycle {n}: started {day}T05:00:00Z, 3 host(s), 3 run(s)");
        let t = cycle_table(&out, &title);
        assert_eq!(t.len(), 6, "header, rule, 3 hosts, total:\n{out}");
        assert_eq!(
            cells(t[0]),
            [
                "host",
                "runs",
                "status",
                "energy (estimated)",
                "CO2e",
                "items",
                "wall",
                "per item"
            ],
            "{out}"
        );
        assert_eq!(
            cells(t[2]),
            [
                "node-a",
                "1",
                "complete",
                "10.0 Wh",
                "4.00 g",
                "1000",
                "10.0 min",
                "0.0100 Wh"
            ]
        );
        assert_eq!(
            cells(t[3])[..7],
            [
                "node-b", "1", "complete", "20.0 Wh", "8.00 g", "2000", "15.0 min"
            ]
        );
        assert_eq!(
            cells(t[4])[..7],
            [
                "node-c", "1", "complete", "5.00 Wh", "2.00 g", "500", "5.00 min"
            ]
        );
        // Energy, CO2e and items summed; wall from 05:00:00 to node-b's end at 05:15:30.
        assert_eq!(
            cells(t[5]),
            [
                "total",
                "3",
                "complete",
                "35.0 Wh",
                "14.0 g",
                "3500",
                "15.5 min",
                "0.0100 Wh"
            ],
            "{out}"
        );
    }
    assert!(out.contains("share a run id (CARINA_RUN_ID)"), "{out}");
}

#[test]
fn a_shared_run_id_makes_one_cycle_of_runs_that_do_not_overlap() {
    let dir = tempfile::tempdir().unwrap();
    // Staggered: each host starts after the previous one has finished.
    for (i, host) in ["node-a", "node-b", "node-c"].iter().enumerate() {
        let lines = host_run(
            "etl",
            "nightly-2026-11-28",
            host,
            &format!("2026-11-28T0{}:00:00Z", i + 1),
            600.0,
            3600.0,
            10,
        );
        write_run(dir.path(), &format!("{host}.jsonl"), &lines);
    }
    // The same hosts with distinct run ids: three cycles.
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    for (i, host) in ["node-a", "node-b", "node-c"].iter().enumerate() {
        let lines = host_run(
            "etl2",
            &format!("r{i}"),
            host,
            &format!("2026-11-28T0{}:00:00Z", i + 1),
            600.0,
            3600.0,
            10,
        );
        write_run(&other, &format!("{host}.jsonl"), &lines);
    }
    let out = stdout(&carina(&["summary", dir.path().to_str().unwrap()]));
    assert!(out.contains("in 4 cycle(s)"), "{out}");
    let t = cycle_table(
        &out,
        "Job etl, cycle 1: started 2026-11-28T01:00:00Z, 3 host(s)",
    );
    // 3 Wh summed; wall from 01:00 to 03:10 = 130 min.
    assert_eq!(
        cells(t[5]),
        [
            "total", "3", "complete", "3.00 Wh", "1.20 g", "30", "2.17 h", "0.100 Wh"
        ],
        "{out}"
    );
    for n in 1..=3 {
        assert!(
            out.contains(&format!(
                "Job etl2, cycle {n}: started 2026-11-28T0{n}:00:00Z, 1 host(s), 1 run(s)"
            )),
            "{out}"
        );
    }
}

#[test]
fn a_host_with_two_runs_and_a_crashed_run_in_one_cycle() {
    let dir = tempfile::tempdir().unwrap();
    let a1 = host_run(
        "db",
        "a1",
        "node-a",
        "2026-11-28T05:00:00Z",
        300.0,
        3600.0,
        100,
    );
    let a2 = host_run(
        "db",
        "a2",
        "node-a",
        "2026-11-28T05:05:00Z",
        300.0,
        3600.0,
        100,
    );
    let mut b = host_run(
        "db",
        "b1",
        "node-b",
        "2026-11-28T05:01:00Z",
        500.0,
        7200.0,
        200,
    );
    b.pop(); // no run_end: crashed
    write_run(dir.path(), "a1.jsonl", &a1);
    write_run(dir.path(), "a2.jsonl", &a2);
    write_run(dir.path(), "b1.jsonl", &b);
    let o = carina(&["summary", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("in 1 cycle(s)"), "{out}");
    let t = cycle_table(&out, "Job db, cycle 1");
    // node-a: two runs back to back (05:00 to 05:10), summed.
    assert_eq!(
        cells(t[2])[..7],
        [
            "node-a", "2", "complete", "2.00 Wh", "0.800 g", "200", "10.0 min"
        ]
    );
    // node-b: its steps up to the cut (99 % of 7200 J), marked incomplete.
    assert_eq!(
        cells(t[3])[..3],
        ["node-b", "1", "INCOMPLETE (1 of 1)"],
        "{out}"
    );
    assert_eq!(
        cells(t[4])[..3],
        ["total", "3", "INCOMPLETE (1 of 3)"],
        "{out}"
    );
}

#[test]
fn one_file_or_a_directory_with_one_run_keeps_the_single_run_view() {
    let dir = tempfile::tempdir().unwrap();
    let lines = host_run(
        "db",
        "only",
        "node-a",
        "2026-11-28T05:00:00Z",
        60.0,
        360.0,
        10,
    );
    let p = write_run(dir.path(), "only.jsonl", &lines);
    for arg in [p.to_str().unwrap(), dir.path().to_str().unwrap()] {
        let out = stdout(&carina(&["summary", arg]));
        assert!(out.starts_with("Run only  (job db)"), "{out}");
        assert!(!out.contains("cycle"), "{out}");
    }
    // A missing path among several is bad input.
    let o = carina(&["summary", p.to_str().unwrap(), "/nonexistent/x.jsonl"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("/nonexistent/x.jsonl"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn the_report_has_a_fleet_section_per_multi_host_cycle() {
    let dir = tempfile::tempdir().unwrap();
    three_hosts(dir.path(), "2026-11-28");
    three_hosts(dir.path(), "2026-11-29");
    // A single-host job: no fleet section.
    let solo = dir.path().join("solo");
    std::fs::create_dir(&solo).unwrap();
    let lines = host_run(
        "solo",
        "s1",
        "node-z",
        "2026-11-28T05:00:00Z",
        60.0,
        360.0,
        10,
    );
    write_run(&solo, "s1.jsonl", &lines);
    let html_path = dir.path().join("report.html");
    let o = carina(&[
        "report",
        dir.path().to_str().unwrap(),
        "-o",
        html_path.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert_eq!(
        html.matches("<div class=\"fleet\">").count(),
        2,
        "one per cycle"
    );
    assert!(html.contains("Fleet: cycle 1 of 2, 3 hosts"), "fleet title");
    assert!(html.contains("Fleet: cycle 2 of 2, 3 hosts"), "fleet title");
    let first = &html[html.find("Fleet: cycle 1 of 2").unwrap()..];
    let first = &first[..first.find("</table>").unwrap()];
    for host in ["node-a", "node-b", "node-c"] {
        assert!(
            first.contains(&format!("<td class=\"l\">{host}</td>")),
            "{first}"
        );
    }
    let total = &first[first.find("<tfoot>").expect("a total row")..];
    assert!(total.contains("<td class=\"l\">total</td>"), "{total}");
    assert!(total.contains("35.0 Wh"), "{total}");
    assert!(total.contains("3500"), "{total}");
    assert!(total.contains("15.5 min"), "{total}");
    // The solo job's section has no fleet view.
    let solo_section = &html[html.find("Job: solo").unwrap()..];
    let solo_section = &solo_section[..solo_section.find("</section>").unwrap()];
    assert!(!solo_section.contains("class=\"fleet\""));
}
