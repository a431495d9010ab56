//! The run file lands at `<dir>/<job>/<run_id>.jsonl`, in schema 1, and reads back.

use crate::common;
use carina::record::Record;
use common::{serial, spin};

#[test]
fn run_file_round_trips_through_the_reader() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let run = carina::Run::builder("round trip")
        .output_dir(dir.path())
        .carbon_factor_g_per_kwh(448.0)
        .start()
        .unwrap();
    let path = run.run_file().unwrap().to_path_buf();
    assert_eq!(path.parent().unwrap(), dir.path().join("round_trip"));
    assert!(
        path.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with(run.run_id())
    );
    for _ in 0..20 {
        let mut g = carina::step("load");
        g.add_items(5);
        spin(200);
    }
    let summary = run.finish().unwrap();
    assert_eq!(summary.run_file.as_deref(), Some(path.as_path()));

    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let first = &lines[0];
    assert_eq!(first["type"], "run_start");
    assert_eq!(first["schema"], 1);
    for k in [
        "run_id",
        "job",
        "host",
        "pid",
        "started_at",
        "energy_sources",
        "carbon",
    ] {
        assert!(!first[k].is_null(), "run_start.{k} missing");
    }
    assert_eq!(first["energy_sources"][0]["kind"], "estimated");
    assert_eq!(first["carbon"]["g_per_kwh"], 448.0);
    let last = lines.last().unwrap();
    assert_eq!(last["type"], "run_end");
    for k in [
        "ended_at",
        "wall_s",
        "energy_j",
        "unattributed_j",
        "co2e_g",
        "items",
        "steps",
        "dropped",
    ] {
        assert!(!last[k].is_null(), "run_end.{k} missing");
    }
    let step = lines.iter().find(|l| l["type"] == "step").unwrap();
    for k in [
        "name",
        "id",
        "parent",
        "thread",
        "start_s",
        "end_s",
        "items",
        "status",
        "energy_j",
        "self_energy_j",
        "co2e_g",
    ] {
        assert!(step.get(k).is_some(), "step.{k} missing");
    }
    let summ = lines.iter().find(|l| l["type"] == "step_summary").unwrap();
    for k in [
        "count",
        "wall_s",
        "self_wall_s",
        "p50_s",
        "p95_s",
        "max_s",
        "self_energy_j",
    ] {
        assert!(!summ[k].is_null(), "step_summary.{k} missing");
    }

    let file = carina::read_run_file(&path).unwrap();
    assert!(file.is_complete());
    assert!(file.warnings.is_empty(), "{:?}", file.warnings);
    assert_eq!(file.steps.len(), 20);
    assert_eq!(file.summaries[0].items, 100);
    assert_eq!(file.end.as_ref().unwrap().steps, 20);
    assert_eq!(file.start.job, "round trip");
    // The file ends with a newline and every record parses as a typed record.
    assert!(text.ends_with('\n'));
    for l in text.lines() {
        let _: Record = serde_json::from_str(l).unwrap();
    }
}

#[test]
fn unwritable_output_dir_degrades_to_no_file_in_best_effort_mode() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"x").unwrap();
    // Without best effort, start fails (tests/run_file_start.rs).
    let run = carina::Run::builder("job")
        .output_dir(&blocker)
        .best_effort(true)
        .start()
        .unwrap();
    assert!(run.run_file().is_none());
    {
        let _g = carina::step("still recorded");
    }
    let s = run.finish().unwrap();
    assert_eq!(s.steps(), 1);
    assert!(
        s.warnings.iter().any(|w| w.contains("not-a-dir")),
        "{:?}",
        s.warnings
    );
}
