//! Reading run files: crashed runs load, a truncated last line is tolerated, anything else
//! malformed is an error naming the file and the line.

use carina::ReadError;
use std::path::Path;

const START: &str = r#"{"type":"run_start","schema":1,"run_id":"r1","job":"j","host":"h","pid":1,"started_at":"2026-11-28T00:00:00Z","energy_sources":[{"name":"model","kind":"estimated","source":"test"}],"carbon":{"g_per_kwh":472.94,"zone":"WORLD","source":"x"}}"#;
const STEP: &str = r#"{"type":"step","name":"a","id":1,"parent":null,"thread":0,"start_s":0.0,"end_s":1.0,"items":3,"status":"ok","energy_j":2.0,"self_energy_j":2.0,"co2e_g":0.0003}"#;
const END: &str = r#"{"type":"run_end","ended_at":"2026-11-28T00:00:01Z","wall_s":1.0,"energy_j":2.0,"unattributed_j":0.0,"co2e_g":0.0003,"items":3,"steps":1,"dropped":0}"#;

fn write(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("run.jsonl");
    std::fs::write(&p, text).unwrap();
    (dir, p)
}

#[test]
fn complete_file_reads() {
    let _s = crate::common::serial();
    let (_d, p) = write(&format!("{START}\n{STEP}\n{END}\n"));
    let f = carina::read_run_file(&p).unwrap();
    assert!(f.is_complete());
    assert_eq!(f.steps[0].items, 3);
    assert!(f.warnings.is_empty());
}

#[test]
fn crashed_run_without_run_end_loads_as_incomplete() {
    let _s = crate::common::serial();
    let (_d, p) = write(&format!("{START}\n{STEP}\n"));
    let f = carina::read_run_file(&p).unwrap();
    assert!(!f.is_complete());
    assert_eq!(f.steps.len(), 1);
    assert!(f.warnings.iter().any(|w| w.contains("did not finish")));
}

#[test]
fn truncated_last_line_is_tolerated_with_a_warning() {
    let _s = crate::common::serial();
    let (_d, p) = write(&format!("{START}\n{STEP}\n{}", &STEP[..40]));
    let f = carina::read_run_file(&p).unwrap();
    assert_eq!(f.steps.len(), 1);
    assert!(
        f.warnings
            .iter()
            .any(|w| w.contains(":3:") && w.contains("truncated")),
        "{:?}",
        f.warnings
    );
}

#[test]
fn malformed_middle_line_names_file_and_line() {
    let _s = crate::common::serial();
    let (_d, p) = write(&format!("{START}\n{{not json\n{END}\n"));
    let e = carina::read_run_file(&p).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, ReadError::Line { line: 2, .. }), "{msg}");
    assert!(
        msg.contains(&p.display().to_string()) && msg.contains(":2:"),
        "{msg}"
    );
}

#[test]
fn missing_field_is_named() {
    let _s = crate::common::serial();
    let bad = STEP.replace(r#""energy_j":2.0,"#, "");
    let (_d, p) = write(&format!("{START}\n{bad}\n{END}\n"));
    let msg = carina::read_run_file(&p).unwrap_err().to_string();
    assert!(msg.contains(":2:") && msg.contains("energy_j"), "{msg}");
}

#[test]
fn a_malformed_last_line_with_newline_is_an_error() {
    let _s = crate::common::serial();
    let (_d, p) = write(&format!("{START}\n{STEP}\n{{\"type\":\n"));
    let e = carina::read_run_file(&p).unwrap_err();
    assert!(matches!(e, ReadError::Line { line: 3, .. }), "{e}");
}

#[test]
fn unknown_types_and_fields_are_ignored() {
    let _s = crate::common::serial();
    let extra = STEP.replace(r#""name":"a","#, r#""name":"a","future_field":[1,2],"#);
    let (_d, p) = write(&format!(
        "{START}\n{{\"type\":\"annotation\",\"text\":\"from a newer writer\"}}\n{extra}\n{END}\n"
    ));
    let f = carina::read_run_file(&p).unwrap();
    assert_eq!(f.steps.len(), 1);
}

#[test]
fn not_a_run_file_and_missing_file_are_clear() {
    let _s = crate::common::serial();
    let (_d, p) = write(&format!("{STEP}\n"));
    assert!(matches!(
        carina::read_run_file(&p),
        Err(ReadError::NoRunStart { .. })
    ));
    let e = carina::read_run_file(Path::new("/nonexistent/run.jsonl")).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/run.jsonl"));
    let newer = START.replace(r#""schema":1"#, r#""schema":2"#);
    let (_d2, p2) = write(&format!("{newer}\n"));
    let msg = carina::read_run_file(&p2).unwrap_err().to_string();
    assert!(msg.contains("schema 2") && msg.contains("Upgrade"), "{msg}");
}

#[test]
fn a_wrongly_typed_value_names_its_field() {
    let _s = crate::common::serial();
    for (field, bad) in [
        ("name", STEP.replace(r#""name":"a""#, r#""name":1"#)),
        ("items", STEP.replace(r#""items":3"#, r#""items":"three""#)),
        (
            "energy_j",
            STEP.replace(r#""energy_j":2.0"#, r#""energy_j":[2]"#),
        ),
    ] {
        let (_d, p) = write(&format!("{START}\n{bad}\n{END}\n"));
        let msg = carina::read_run_file(&p).unwrap_err().to_string();
        assert!(
            msg.contains(":2:") && msg.contains(&format!("field `{field}`")),
            "{field}: {msg}"
        );
    }
}

#[test]
fn an_empty_file_says_it_is_empty() {
    let _s = crate::common::serial();
    for text in ["", "\n\n  \n"] {
        let (_d, p) = write(text);
        let e = carina::read_run_file(&p).unwrap_err();
        assert!(matches!(e, ReadError::Empty { .. }), "{e}");
        assert!(e.to_string().contains("empty"), "{e}");
    }
}

#[test]
fn a_byte_order_mark_is_ignored() {
    let _s = crate::common::serial();
    let (_d, p) = write(&format!("\u{feff}{START}\n{STEP}\n{END}\n"));
    let f = carina::read_run_file(&p).unwrap();
    assert!(f.is_complete());
    assert_eq!(f.steps.len(), 1);
}

#[test]
fn progress_is_the_repeating_step_not_a_set_up_step_declaring_the_cycle() {
    let _s = crate::common::serial();
    let step = |name: &str, id: u64, items: u64| {
        format!(
            r#"{{"type":"step","name":"{name}","id":{id},"parent":null,"thread":0,"start_s":{id}.0,"end_s":{id}.5,"items":{items},"status":"ok","energy_j":1.0,"self_energy_j":1.0,"co2e_g":0.0}}"#
        )
    };
    let mut lines = vec![START.to_owned(), step("generate_grid", 1, 400_000)];
    for id in 2..52 {
        lines.push(step("simulate", id, 64));
    }
    let power = r#"{"type":"power","start_s":0.0,"end_s":60.0,"energy_j":500.0,"co2e_g":0.06}"#;
    lines.push(power.to_owned());
    let (_d, p) = write(&(lines.join("\n") + "\n"));
    let f = carina::read_run_file(&p).unwrap();
    let pr = f.progress().unwrap();
    assert_eq!(
        (pr.name.as_str(), pr.items, pr.instances),
        ("simulate", 3200, 50)
    );
    assert_eq!(
        f.power_totals(),
        Some((carina::Joules(500.0), carina::Seconds(60.0)))
    );
    // One instance each: the one that ended last, whatever its total (early in a run, the
    // loop's first instance after the set-up step); no items at all: none.
    let (_d2, p2) = write(&format!(
        "{START}\n{}\n{}\n",
        step("a", 1, 10),
        step("b", 2, 30)
    ));
    let f2 = carina::read_run_file(&p2).unwrap();
    assert_eq!(f2.progress().unwrap().name, "b");
    assert_eq!(f2.power_totals(), None);
    let (_d4, p4) = write(&format!(
        "{START}\n{}\n{}\n",
        step("generate_grid", 1, 400_000),
        step("simulate", 2, 64)
    ));
    let pr = carina::read_run_file(&p4).unwrap().progress().unwrap();
    assert_eq!((pr.name.as_str(), pr.items), ("simulate", 64));
    let (_d3, p3) = write(&format!("{START}\n{}\n", step("a", 1, 0)));
    assert_eq!(carina::read_run_file(&p3).unwrap().progress(), None);
}

#[test]
fn a_torn_middle_line_glued_to_a_record_is_skipped_with_a_warning() {
    let _s = crate::common::serial();
    // What a full disk used to leave: part of a step, then the next record on the same line.
    let torn = &STEP[..STEP.find("\"energy_j\"").unwrap() + "\"energy_j\"".len()];
    let (_d, p) = write(&format!("{START}\n{torn}{STEP}\n{STEP}\n{END}\n"));
    let f = carina::read_run_file(&p).unwrap();
    assert_eq!(f.steps.len(), 2, "the glued record is kept");
    assert!(f.is_complete());
    assert!(
        f.warnings
            .iter()
            .any(|w| w.contains(":2:") && w.contains("torn write")),
        "{:?}",
        f.warnings
    );
}

#[test]
fn a_torn_middle_fragment_on_its_own_line_is_skipped() {
    let _s = crate::common::serial();
    let (_d, p) = write(&format!("{START}\n{}\n{STEP}\n{END}\n", &STEP[..50]));
    let f = carina::read_run_file(&p).unwrap();
    assert_eq!(f.steps.len(), 1);
    assert!(f.warnings.iter().any(|w| w.contains("torn write")));
}

#[test]
fn a_malformed_middle_record_is_still_an_error() {
    let _s = crate::common::serial();
    let bad = STEP.replace("\"items\":3", "\"items\":\"three\"");
    let (_d, p) = write(&format!("{START}\n{bad}\n{END}\n"));
    let e = carina::read_run_file(&p).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains(":2:") && msg.contains("items"), "{msg}");
}

#[test]
fn a_bad_field_among_twenty_thousand_keys_is_named_in_one_pass() {
    let _s = crate::common::serial();
    // Used to re-parse the line once per key (90 s for this line); now one parse.
    let mut extra = String::new();
    for i in 0..20_000 {
        extra.push_str(&format!("\"k{i}\":{i},"));
    }
    let bad =
        STEP.replace("\"items\":3", "\"items\":\"three\"")
            .replacen('{', &format!("{{{extra}"), 1);
    let (_d, p) = write(&format!("{START}\n{bad}\n{END}\n"));
    let msg = carina::read_run_file(&p).unwrap_err().to_string();
    assert!(
        msg.contains(":2:") && msg.contains("field `items`"),
        "{msg}"
    );
}

/// A step whose name is non-ASCII: a cut inside it leaves bytes that are not UTF-8.
fn step_named(name: &str) -> String {
    STEP.replace(r#""name":"a""#, &format!(r#""name":"{name}""#))
}

#[test]
fn a_last_line_cut_inside_a_multibyte_character_is_skipped_with_a_warning() {
    let _s = crate::common::serial();
    let wide = step_named("schritt-größe-計算");
    let cut = wide.find('計').unwrap() + 1; // inside the three bytes of '計'
    let mut bytes = format!("{START}\n{}\n", step_named("größe")).into_bytes();
    bytes.extend_from_slice(&wide.as_bytes()[..cut]);
    assert!(
        std::str::from_utf8(&bytes).is_err(),
        "the test cuts a character"
    );
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("run.jsonl");
    std::fs::write(&p, &bytes).unwrap();
    let f = carina::read_run_file(&p).unwrap();
    assert_eq!(f.steps.len(), 1);
    assert_eq!(f.steps[0].name, "größe");
    assert!(
        f.warnings
            .iter()
            .any(|w| w.contains(":3:") && w.contains("truncated")),
        "{:?}",
        f.warnings
    );
}

#[test]
fn invalid_utf8_in_a_middle_line_is_that_lines_error() {
    let _s = crate::common::serial();
    let mut bytes = format!("{START}\n{STEP}\n").into_bytes();
    // A whole line whose name holds a byte that starts no UTF-8 character.
    let mut bad = step_named("a~b").into_bytes();
    let tilde = bad.iter().position(|&b| b == b'~').unwrap();
    bad[tilde] = 0xff;
    bytes.extend_from_slice(&bad);
    bytes.extend_from_slice(format!("\n{STEP}\n{END}\n").as_bytes());
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("run.jsonl");
    std::fs::write(&p, &bytes).unwrap();
    let e = carina::read_run_file(&p).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, ReadError::Line { line: 3, .. }), "{msg}");
    assert!(
        msg.contains(&format!("{}:3:", p.display())) && msg.contains("UTF-8"),
        "{msg}"
    );
}

#[test]
fn a_torn_middle_write_cut_inside_a_character_is_skipped() {
    let _s = crate::common::serial();
    // A full disk cut the write inside a character; the writer started the next record on a
    // new line.
    let wide = step_named("größe");
    let cut = wide.find('ö').unwrap() + 1;
    let mut bytes = format!("{START}\n").into_bytes();
    bytes.extend_from_slice(&wide.as_bytes()[..cut]);
    bytes.extend_from_slice(format!("\n{STEP}\n{END}\n").as_bytes());
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("run.jsonl");
    std::fs::write(&p, &bytes).unwrap();
    let f = carina::read_run_file(&p).unwrap();
    assert_eq!(f.steps.len(), 1);
    assert!(f.is_complete());
    assert!(
        f.warnings
            .iter()
            .any(|w| w.contains(":2:") && w.contains("torn write")),
        "{:?}",
        f.warnings
    );
}

/// Runs `f` on a helper thread and waits for it generously: a reader that blocks fails the test
/// instead of hanging it.
fn without_blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(60))
        .expect("the reader blocked")
}

#[test]
fn a_fifo_is_refused_without_blocking() {
    let _s = crate::common::serial();
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("evil.jsonl");
    let ok = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(ok.success());
    let p = fifo.clone();
    let e = without_blocking(move || carina::read_run_file(&p).map(|_| ()))
        .expect_err("a FIFO is not a run file");
    let msg = e.to_string();
    assert!(
        msg.contains(&fifo.display().to_string()) && msg.contains("FIFO"),
        "{msg}"
    );
    // The merge's reader and the helper for other inputs refuse it the same way.
    let p = fifo.clone();
    assert!(without_blocking(move || carina_runtime::reader::read_records(&p)).is_err());
    let p = fifo.clone();
    let e = without_blocking(move || carina_runtime::input::open_regular(&p, Some(1 << 20)))
        .expect_err("FIFO");
    assert!(
        matches!(
            e,
            carina_runtime::input::InputError::NotRegular { kind: "a FIFO", .. }
        ),
        "{e}"
    );
}

#[test]
fn dev_zero_a_directory_and_a_link_to_dev_zero_are_refused() {
    let _s = crate::common::serial();
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("zero.jsonl");
    std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
    for (p, kind) in [
        (Path::new("/dev/zero").to_path_buf(), "character device"),
        (link, "character device"),
        (dir.path().to_path_buf(), "directory"),
    ] {
        let q = p.clone();
        let msg = without_blocking(move || carina::read_run_file(&q).map(|_| ()))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains(&p.display().to_string()) && msg.contains(kind),
            "{msg}"
        );
    }
}

#[test]
fn an_over_long_line_is_a_clear_error_not_an_allocation_without_limit() {
    let _s = crate::common::serial();
    let max = carina_runtime::input::MAX_LINE_BYTES;
    let long = format!(r#"{{"type":"annotation","text":"{}"}}"#, "x".repeat(max));
    let (_d, p) = write(&format!("{START}\n{long}\n{END}\n"));
    let e = carina::read_run_file(&p).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, ReadError::Line { line: 2, .. }), "{msg}");
    assert!(
        msg.contains(&format!("line 2 longer than {max} bytes")),
        "{msg}"
    );
    // A line just under the bound is read.
    let fits = format!(
        r#"{{"type":"annotation","text":"{}"}}"#,
        "x".repeat(max - 40)
    );
    let (_d2, p2) = write(&format!("{START}\n{fits}\n{END}\n"));
    assert!(carina::read_run_file(&p2).unwrap().is_complete());
}

#[test]
fn item_sums_saturate_with_a_warning_instead_of_overflowing() {
    let _s = crate::common::serial();
    let big = |id: u64, items: u64| {
        STEP.replace(r#""id":1"#, &format!(r#""id":{id}"#))
            .replace(r#""items":3"#, &format!(r#""items":{items}"#))
    };
    let (_d, p) = write(&format!(
        "{START}\n{}\n{}\n{}\n",
        big(1, u64::MAX),
        big(2, u64::MAX),
        big(3, 1)
    ));
    let f = carina::read_run_file(&p).unwrap();
    let pr = f.progress().unwrap();
    assert_eq!((pr.items, pr.instances), (u64::MAX, 3));
    assert!(
        f.warnings
            .iter()
            .any(|w| w.contains("items_saturated") && w.contains("step `a`")),
        "{:?}",
        f.warnings
    );
}

#[test]
fn impossible_values_are_rejected_naming_file_line_and_field() {
    let _s = crate::common::serial();
    let power = r#"{"type":"power","start_s":0.0,"end_s":1.0,"energy_j":2.0,"co2e_g":0.0003}"#;
    for (line, field, why) in [
        (
            STEP.replace(r#""energy_j":2.0"#, r#""energy_j":-5.0"#),
            "energy_j",
            "negative",
        ),
        (
            STEP.replace(r#""self_energy_j":2.0"#, r#""self_energy_j":1e308"#),
            "self_energy_j",
            "above 1e15 J",
        ),
        (
            STEP.replace(r#""co2e_g":0.0003"#, r#""co2e_g":-1"#),
            "co2e_g",
            "negative",
        ),
        (
            STEP.replace(r#""start_s":0.0"#, r#""start_s":5.0"#),
            "end_s",
            "negative duration",
        ),
        (
            END.replace(r#""wall_s":1.0"#, r#""wall_s":-1.0"#),
            "wall_s",
            "negative",
        ),
        (
            END.replace(r#""unattributed_j":0.0"#, r#""unattributed_j":-3.0"#),
            "unattributed_j",
            "negative",
        ),
        (
            power.replace(r#""energy_j":2.0"#, r#""energy_j":2e15"#),
            "energy_j",
            "above 1e15 J",
        ),
    ] {
        let (_d, p) = write(&format!("{START}\n{line}\n"));
        let e = carina::read_run_file(&p).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, ReadError::Line { line: 2, .. }), "{msg}");
        assert!(
            msg.contains(&format!("{}:2: field `{field}`", p.display())) && msg.contains(why),
            "{field}: {msg}"
        );
    }
    // Beyond f64 altogether: still that line's error.
    let huge = STEP.replace(r#""energy_j":2.0"#, r#""energy_j":1e400"#);
    let (_d, p) = write(&format!("{START}\n{huge}\n"));
    let msg = carina::read_run_file(&p).unwrap_err().to_string();
    assert!(msg.contains(":2:") && msg.contains("energy_j"), "{msg}");
    // Rounding below zero is not an impossible value.
    let rounding = STEP.replace(r#""self_energy_j":2.0"#, r#""self_energy_j":-1e-12"#);
    let (_d, p) = write(&format!("{START}\n{rounding}\n{END}\n"));
    assert!(carina::read_run_file(&p).unwrap().is_complete());
}
