//! `carina report` on a run with one million step records: reading and parsing the run file,
//! rendering the dashboard, and the whole command's work, against a baseline that only reads the
//! file's bytes and counts its lines (the floor any report has to pay).
//!
//! ```sh
//! cargo bench -p carina-cli --bench report
//! ```

use carina_cli::load::load_runs;
use carina_cli::report::render;
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

const N: u64 = 1_000_000;

/// Writes a run of `N` step records (three names, four threads, all under one root step) with
/// one `power` record a second, as a 100 s run of 0.1 ms steps would have.
fn write_run(dir: &Path) -> PathBuf {
    let path = dir.join("big.jsonl");
    let f = std::fs::File::create(&path).expect("create the bench run file");
    let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
    writeln!(
        w,
        r#"{{"type":"run_start","schema":1,"run_id":"big","job":"bench","host":"h","pid":1,"started_at":"2026-11-28T05:00:00Z","energy_sources":[{{"name":"model","kind":"estimated","source":"bench","domains":["cpu"],"scope":"host","idle_w":1.0,"max_w":4.0}}],"carbon":{{"g_per_kwh":400.0,"zone":"WORLD","source":"bench"}},"steps":"all","sample_interval_s":0.1,"scope":"process","carina_version":"0.1.0"}}"#
    )
    .unwrap();
    let names = ["simulate", "evaluate", "store"];
    let wall = N as f64 * 1e-4;
    for id in 2..=N {
        let start = (id - 2) as f64 * 1e-4;
        writeln!(
            w,
            r#"{{"type":"step","name":"{}","id":{id},"parent":1,"thread":{},"start_s":{start},"end_s":{},"items":1,"status":"ok","energy_j":0.01,"self_energy_j":0.01,"co2e_g":1.1e-6}}"#,
            names[(id % 3) as usize],
            id % 4,
            start + 1e-4
        )
        .unwrap();
    }
    for k in 0..wall as u64 {
        writeln!(
            w,
            r#"{{"type":"power","start_s":{k}.0,"end_s":{}.0,"energy_j":100.0,"co2e_g":0.011}}"#,
            k + 1
        )
        .unwrap();
    }
    writeln!(
        w,
        r#"{{"type":"step","name":"job","id":1,"parent":null,"thread":0,"start_s":0.0,"end_s":{wall},"items":{N},"status":"ok","energy_j":{},"self_energy_j":0.0,"co2e_g":1.1}}"#,
        0.01 * N as f64
    )
    .unwrap();
    writeln!(
        w,
        r#"{{"type":"run_end","ended_at":"2026-11-28T05:01:40Z","wall_s":{wall},"energy_j":{},"unattributed_j":0.0,"co2e_g":1.1,"items":{N},"steps":{N},"dropped":0,"energy_kind":"estimated"}}"#,
        0.01 * N as f64
    )
    .unwrap();
    w.flush().unwrap();
    path
}

fn report(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write_run(dir.path());
    let paths = [path.clone()];
    let runs = load_runs(&paths).expect("load");
    assert_eq!(runs[0].steps.len(), N as usize);
    let out = dir.path().join("report.html");

    let mut g = c.benchmark_group("report_1m_steps");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(15))
        .warm_up_time(Duration::from_secs(2));
    g.bench_function("baseline_read_and_count_lines", |b| {
        b.iter(|| {
            let bytes = std::fs::read(black_box(&path)).unwrap();
            black_box(bytes.iter().filter(|&&c| c == b'\n').count())
        })
    });
    g.bench_function("load_run_file", |b| {
        b.iter(|| black_box(load_runs(black_box(&paths)).unwrap()))
    });
    g.bench_function("render_html", |b| b.iter(|| black_box(render(&runs))));
    g.bench_function("load_render_write", |b| {
        b.iter(|| {
            let runs = load_runs(black_box(&paths)).unwrap();
            std::fs::write(&out, render(&runs)).unwrap();
        })
    });
    g.finish();
}

criterion_group!(benches, report);
criterion_main!(benches);
