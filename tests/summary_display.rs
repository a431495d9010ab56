//! `RunSummary`'s `Display`: what the examples print.

use crate::common;

#[test]
fn display_names_kind_source_share_steps_and_file() {
    let _s = common::serial();
    let (run, _recs) = common::memory_run("display");
    {
        let mut g = carina::step("solve");
        g.add_items(40);
        common::spin(2_000);
    }
    let s = run.finish().unwrap();
    let text = s.to_string();
    assert!(text.contains("Wh estimated"), "{text}");
    assert!(text.contains("% of the whole machine"), "{text}");
    assert!(text.contains("\nCO2e "), "{text}");
    assert!(text.contains(" at 472.9 g/kWh (WORLD)"), "{text}");
    assert!(text.contains("40 items"), "{text}");
    let step_line = text
        .lines()
        .find(|l| l.contains("solve"))
        .expect("a step line");
    assert!(step_line.contains("1 x"), "{step_line}");
    assert!(text.ends_with("run file  none\n"), "{text}");
    // The one rendering, indented as `carina run` prints it.
    let indented = s.render("  ");
    assert!(indented.lines().all(|l| l.starts_with("  ")), "{indented}");
    assert_eq!(indented.lines().count(), text.lines().count());
    let off = carina::RunSummary::disabled("j", "r").to_string();
    assert!(off.contains("not recorded"), "{off}");
}

/// A counter that the test drives at 50 W of whole-machine power.
struct HostCounter(std::time::Instant);

impl carina::EnergyProbe for HostCounter {
    fn describe(&self) -> carina::record::EnergySource {
        let mut s =
            carina::record::EnergySource::new("test-counter", carina::EnergyKind::Measured, "test");
        s.domains = vec!["package-0".into()];
        s
    }
    fn read(&mut self, r: &mut carina::Reading) -> Result<(), carina::ProbeError> {
        r.energy[0] = carina::Joules(50.0 * self.0.elapsed().as_secs_f64());
        Ok(())
    }
}

fn counter_run(scope: carina::Scope) -> carina::RunSummary {
    let (sink, _recs) = carina::sink::MemorySink::new();
    let run = carina::Run::builder("method")
        .run_file(false)
        .sink(sink)
        .scope(scope)
        .energy_probe(HostCounter(std::time::Instant::now()))
        .sample_interval(std::time::Duration::from_millis(20))
        .start()
        .unwrap();
    {
        let _g = carina::step("work");
        common::spin(150_000);
    }
    run.finish().unwrap()
}

#[test]
fn a_counter_is_labelled_by_how_it_reached_the_run() {
    let _s = common::serial();
    // Host scope: the counter as read, the only figure labelled a plain counter.
    let host = counter_run(carina::Scope::Host);
    let m = host.method().unwrap();
    assert_eq!(m.label, "counter");
    assert!(m.is_plain_counter() && !m.lower_bound);
    assert_eq!(m.parts.len(), 1);
    assert!((m.parts[0].energy_j.0 - host.energy().0).abs() < 1e-9);
    assert!(m.parts[0].shares.is_empty());
    // Process scope: the counter times the run's CPU-time share of the host.
    let proc_ = counter_run(carina::Scope::Process);
    let m = proc_.method().unwrap();
    assert_eq!(m.label, "counter x cpu-time share");
    assert!(!m.is_plain_counter());
    let shared = m.parts[0].shares[&carina::record::ShareRule::CpuTime];
    assert!((shared.0 - proc_.energy().0).abs() < 1e-9, "{m:?}");
    assert!(
        m.notes.iter().any(|n| n.contains("cpu-time share")),
        "{m:?}"
    );
    // The file carries the same method, and the steps say how they were split.
    let end = proc_.end.as_ref().unwrap();
    assert_eq!(end.method.as_ref(), Some(m));
    let work = proc_.summaries.iter().find(|s| s.name == "work").unwrap();
    assert_eq!(
        work.method.as_deref(),
        Some("counter x cpu-time share; to steps by thread CPU time and wall time")
    );
    let text = proc_.to_string();
    assert!(
        text.contains("measured (counter x cpu-time share"),
        "{text}"
    );
}

#[test]
fn the_run_reports_its_own_cost() {
    let _s = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let run = carina::Run::builder("own-cost")
        .output_dir(dir.path())
        .sample_interval(std::time::Duration::from_millis(10))
        .start()
        .unwrap();
    for _ in 0..20_000 {
        let _g = carina::step("tiny");
    }
    common::spin(200_000);
    let s = run.finish().unwrap();
    let own = s.own_cost().cloned().unwrap();
    // The aggregator ticked about 20 times, drained 40 000 events and wrote 20 000 records
    // (in this unoptimised test build, serde_json alone takes a good part of the run's CPU).
    assert!(own.aggregator_cpu_s.0 > 0.0, "{own:?}");
    assert!(own.cpu_share > 0.0 && own.cpu_share <= 1.0, "{own:?}");
    assert!(own.aggregator_energy_j.0 > 0.0 && own.aggregator_energy_j.0 < s.energy().0);
    // Steps: their count times the calibrated cost of one.
    assert!(
        own.step_cost_ns > 0.0 && own.step_cost_ns < 10_000.0,
        "{own:?}"
    );
    let expect = 20_000.0 * own.step_cost_ns / 1e9;
    assert!((own.steps_cpu_s.0 - expect).abs() < 1e-12, "{own:?}");
    assert!(own.steps_energy_j.0 > 0.0);
    // Bytes: everything in the file before run_end.
    let file = std::fs::read(s.run_file.as_ref().unwrap()).unwrap();
    let last_line = file[..file.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    assert_eq!(own.bytes_written, last_line as u64);
    assert_eq!(s.end.as_ref().unwrap().own_cost.as_ref(), Some(&own));
    let text = s.to_string();
    assert!(
        text.contains("\nown cost  ") && text.contains("of CPU time"),
        "{text}"
    );
}
