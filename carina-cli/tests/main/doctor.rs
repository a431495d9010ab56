//! `carina doctor`: every source with its reason and the probe's own fix, the CPU family,
//! clocks, environment.

fn doctor(args: &[&str]) -> (Option<i32>, String) {
    let out = crate::common::carina_command()
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
    // An empty powercap root: rapl-powercap is not used, with a fix (the tree to check).
    let empty = tempfile::tempdir().unwrap();
    let (code, out) = doctor_on(empty.path(), &[]);
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
    // Carina's sources first, in a fixed order, whatever was used.
    let names: Vec<&str> = sources
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["rapl-perf", "rapl-powercap", "nvml", "model"]);
    let causes = [
        "absent",
        "permission",
        "not-counting",
        "superseded",
        "disabled",
        "outdated",
        "failed",
    ];
    for s in sources {
        assert!(!s["detail"].as_str().unwrap().is_empty(), "{s}");
        if s["status"] == "not used" {
            // A typed cause; a fix where one exists (a string, never empty), else null.
            assert!(causes.contains(&s["cause"].as_str().unwrap()), "{s}");
            assert!(
                s["fix"].is_null() || !s["fix"].as_str().unwrap().is_empty(),
                "{s}"
            );
        } else {
            assert!(s.get("cause").is_none() && s["fix"].is_null(), "{s}");
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

/// A powercap tree whose counters never move (`CARINA_POWERCAP_ROOT` at a static copy, as an
/// emulated RAPL in a VM looks): doctor shows it as not used, with the liveness reason and a fix
/// that does not send the user after permissions.
fn static_powercap_tree() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let zone = tmp.path().join("intel-rapl:0");
    std::fs::create_dir_all(&zone).unwrap();
    std::fs::write(zone.join("name"), "package-0\n").unwrap();
    std::fs::write(zone.join("energy_uj"), "123456\n").unwrap();
    std::fs::write(zone.join("max_energy_range_uj"), "262143328850\n").unwrap();
    tmp
}

fn doctor_on(root: &std::path::Path, args: &[&str]) -> (Option<i32>, String) {
    let out = crate::common::carina_command()
        .arg("doctor")
        .args(args)
        .env("CARINA_SCOPE", "process")
        .env("CARINA_POWERCAP_ROOT", root)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn a_dead_powercap_source_is_shown_not_used_with_the_reason() {
    let tree = static_powercap_tree();
    let (code, out) = doctor_on(tree.path(), &[]);
    assert_eq!(code, Some(0), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.trim_start().starts_with("rapl-powercap"))
        .unwrap_or_else(|| panic!("no rapl-powercap line: {out}"));
    let line = lines[at];
    assert!(line.contains("not used"), "{line}");
    assert!(
        line.contains(
            "counter package-0 (intel-rapl:0/energy_uj) did not advance over 30 ms while the CPU \
             was running"
        ),
        "{line}"
    );
    // The next line is its fix, and it is not about permissions.
    let fix = lines[at + 1];
    assert!(fix.contains("fix: none on this machine"), "{fix}");
    assert!(!fix.contains("run as root"), "{fix}");
    // Unless perf RAPL measures the CPU here, the model does.
    let perf_used = lines
        .iter()
        .any(|l| l.trim_start().starts_with("rapl-perf") && !l.contains("not used"));
    if !perf_used {
        assert!(line.ends_with("using the estimation model"), "{line}");
        let model = lines
            .iter()
            .find(|l| l.trim_start().starts_with("model"))
            .unwrap();
        assert!(
            model.contains("used") && !model.contains("not used"),
            "{model}"
        );
        assert!(model.contains("estimated"), "{model}");
    }
}

#[test]
fn a_dead_powercap_source_in_json() {
    let tree = static_powercap_tree();
    let (code, out) = doctor_on(tree.path(), &["--format", "json"]);
    assert_eq!(code, Some(0));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let sources = v["sources"].as_array().unwrap();
    let pc = sources
        .iter()
        .find(|s| s["name"] == "rapl-powercap")
        .unwrap();
    assert_eq!(pc["status"], "not used", "{pc}");
    assert_eq!(pc["kind"], "measured", "{pc}");
    assert_eq!(pc["cause"], "not-counting", "{pc}");
    let detail = pc["detail"].as_str().unwrap();
    assert!(detail.contains("did not advance over 30 ms"), "{detail}");
    assert!(
        pc["fix"]
            .as_str()
            .unwrap()
            .starts_with("none on this machine"),
        "{pc}"
    );
}

/// The contradiction doctor once printed: "run as root" to root (CI runs as root) for a machine
/// with no RAPL zone at all. The fix is the probe's, chosen for the cause.
#[test]
fn no_rapl_zones_get_a_fix_for_that_and_no_permission_advice() {
    let empty = tempfile::tempdir().unwrap();
    let (code, out) = doctor_on(empty.path(), &[]);
    assert_eq!(code, Some(0), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.trim_start().starts_with("rapl-powercap"))
        .unwrap_or_else(|| panic!("no rapl-powercap line: {out}"));
    let line = lines[at];
    assert!(line.contains("not used"), "{line}");
    assert!(
        line.contains(&format!("no RAPL zones under {}", empty.path().display())),
        "{line}"
    );
    let fix = lines[at + 1];
    assert!(fix.trim_start().starts_with("fix: "), "{fix}");
    assert!(fix.contains("CARINA_POWERCAP_ROOT"), "{fix}");
    if cfg!(target_arch = "x86_64") {
        assert!(fix.contains("`sudo modprobe intel_rapl_msr`"), "{fix}");
    }
    for word in ["run as root", "chmod", "udev"] {
        assert!(!fix.contains(word), "{word:?} in {fix}");
    }

    let (_, json) = doctor_on(empty.path(), &["--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let pc = v["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "rapl-powercap")
        .unwrap();
    assert_eq!(pc["cause"], "absent", "{pc}");
    assert_eq!(
        pc["fix"].as_str(),
        Some(fix.trim_start().trim_start_matches("fix: "))
    );
}
