//! `RunSummary`'s `Display`: what the examples print.

mod common;

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
    assert!(text.contains("g CO2e at 472.9 g/kWh (WORLD)"), "{text}");
    assert!(text.contains("40 items"), "{text}");
    let step_line = text
        .lines()
        .find(|l| l.contains("solve"))
        .expect("a step line");
    assert!(step_line.contains("1 x"), "{step_line}");
    assert!(text.ends_with("run file: none\n"), "{text}");
    let off = carina::RunSummary::disabled("j", "r").to_string();
    assert!(off.contains("not recorded"), "{off}");
}
