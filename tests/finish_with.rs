//! `Run::finish_with`: records from outside the run are written before its one `run_end`, and
//! that `run_end` is the one the returned summary holds.

use crate::common;
use carina::record::{Record, StepRecord, ThreadInfo};
use common::{serial, spin};

#[test]
fn additions_land_before_run_end_and_the_summary_matches_the_file() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let run = carina::Run::builder("finish with")
        .output_dir(dir.path())
        .constant_watts(50.0)
        .sample_interval(std::time::Duration::from_millis(10))
        .start()
        .unwrap();
    spin(30_000);
    let step: StepRecord = serde_json::from_str(
        r#"{"name":"outside","id":1000,"parent":null,"thread":1000,"start_s":0.001,"end_s":0.002,"items":7,"status":"ok","energy_j":0.001,"self_energy_j":0.001,"co2e_g":0.0}"#,
    )
    .unwrap();
    let additions = carina::Additions {
        records: vec![
            Record::Thread(ThreadInfo::new(1000, Some("child".into()))),
            Record::Step(step),
        ],
        steps: 1,
        items: 7,
        dropped: 2,
        attributed: carina::Joules(0.001),
        warnings: vec!["one step from outside".into()],
        ..Default::default()
    };
    let summary = run.finish_with(additions).unwrap();
    let file = carina::read_run_file(summary.run_file.as_ref().unwrap()).unwrap();
    let end = file.end.clone().unwrap();
    // One run_end, the summary's (floats as the file writes them: to about 1e-12).
    let mine = summary.end.clone().unwrap();
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(1.0);
    assert_eq!(
        (
            mine.steps,
            mine.items,
            mine.dropped,
            &mine.warnings,
            &mine.ended_at
        ),
        (
            end.steps,
            end.items,
            end.dropped,
            &end.warnings,
            &end.ended_at
        )
    );
    for (a, b) in [
        (mine.energy_j.0, end.energy_j.0),
        (mine.unattributed_j.0, end.unattributed_j.0),
        (mine.co2e_g.0, end.co2e_g.0),
        (mine.wall_s.0, end.wall_s.0),
    ] {
        assert!(close(a, b), "{mine:?}\n{end:?}");
    }
    assert_eq!((end.steps, end.items, end.dropped), (1, 7, 2));
    assert_eq!(
        (summary.steps(), summary.items(), summary.dropped()),
        (1, 7, 2)
    );
    assert!(close(summary.energy().0, end.energy_j.0));
    assert!(close(summary.unattributed().0, end.unattributed_j.0));
    assert!((end.unattributed_j.0 - (end.energy_j.0 - 0.001).max(0.0)).abs() < 1e-12);
    assert!(end.warnings.iter().any(|w| w == "one step from outside"));
    assert_eq!(file.steps.len(), 1);
    assert_eq!(file.steps[0].name, "outside");
}
