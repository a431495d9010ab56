//! `CARINA_DISABLE=1` turns every step into a no-op and writes nothing.

#[test]
fn carina_disable_makes_steps_no_ops() {
    let _l = carina::testing::serial();
    // SAFETY: every test of this binary that reads or writes the environment (all that start
    // a run) holds `serial()`, so no other thread touches it meanwhile.
    unsafe { std::env::set_var("CARINA_DISABLE", "1") };
    let dir = tempfile::tempdir().unwrap();
    let run = carina::Run::builder("off")
        .output_dir(dir.path())
        .start()
        .unwrap();
    assert!(!run.is_recording());
    assert!(!carina::is_recording());
    {
        let g = carina::step("ignored");
        assert!(!g.is_recording());
    }
    let s = run.finish().unwrap();
    unsafe { std::env::remove_var("CARINA_DISABLE") };
    assert!(s.is_disabled());
    assert_eq!(s.steps(), 0);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no file written"
    );
}

#[test]
fn carina_disable_accepts_only_clear_values() {
    // Runs after (or before) the test above in this binary; both set the variable they need
    // under the lock below.
    let _l = carina::testing::serial();
    for (value, disabled) in [("true", true), ("YES", true), ("0", false), ("no", false)] {
        // SAFETY: every test of this binary that reads or writes the environment (all that start
        // a run) holds `serial()`, so no other thread touches it meanwhile.
        unsafe { std::env::set_var("CARINA_DISABLE", value) };
        let dir = tempfile::tempdir().unwrap();
        let run = carina::Run::builder("flag")
            .output_dir(dir.path())
            .constant_watts(1.0)
            .start()
            .unwrap();
        assert_eq!(run.is_recording(), !disabled, "CARINA_DISABLE={value}");
        run.finish().unwrap();
    }
    unsafe { std::env::set_var("CARINA_DISABLE", "off-please") };
    let err = carina::Run::builder("flag").start().unwrap_err();
    unsafe { std::env::remove_var("CARINA_DISABLE") };
    let msg = err.to_string();
    assert!(
        msg.contains("CARINA_DISABLE") && msg.contains("off-please"),
        "{msg}"
    );
}
