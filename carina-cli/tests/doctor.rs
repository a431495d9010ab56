//! `carina doctor`: every source with its reason, the CPU family, clocks, environment.

use std::process::Command;

fn doctor(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_carina"))
        .arg("doctor")
        .args(args)
        .env("CARINA_SCOPE", "process")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn text_lists_every_source_with_a_reason_and_the_cpu() {
    let (code, out) = doctor(&[]);
    assert_eq!(code, Some(0), "{out}");
    for section in [
        "Energy sources",
        "Estimation model",
        "Clocks",
        "Process share",
        "Environment",
    ] {
        assert!(out.contains(section), "{section}: {out}");
    }
    for name in ["rapl-powercap", "rapl-perf", "nvml", "model"] {
        let line = out
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("{name} missing: {out}"));
        // Name, status, kind and a reason or description.
        assert!(line.contains("used"), "{line}");
        assert!(line.split_whitespace().count() > 4, "{line}");
    }
    assert!(out.contains("fix:"), "{out}");
    assert!(out.contains("family"), "{out}");
    assert!(out.contains("coefficient row"), "{out}");
    assert!(out.contains("CLOCK_THREAD_CPUTIME_ID"), "{out}");
    assert!(out.contains("/proc/stat"), "{out}");
    assert!(out.contains("CARINA_SCOPE"), "{out}");
}

#[test]
fn json_has_the_same_facts() {
    let (code, out) = doctor(&["--format", "json"]);
    assert_eq!(code, Some(0));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let sources = v["sources"].as_array().unwrap();
    for name in ["rapl-powercap", "rapl-perf", "nvml", "model"] {
        let s = sources
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("{name}: {sources:?}"));
        assert!(!s["detail"].as_str().unwrap().is_empty(), "{s}");
        if s["status"] == "not used" {
            assert!(s["fix"].is_string(), "{s}");
        }
    }
    assert!(v["model"]["cpu_family"].is_u64());
    assert!(v["model"]["coefficient_row"].is_string());
    assert!(
        v["environment"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["name"] == "CARINA_SCOPE" && i["value"] == "process")
    );
}
