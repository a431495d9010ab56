//! `CARINA_DISABLE=1` turns every step into a no-op and writes nothing.

#[test]
fn carina_disable_makes_steps_no_ops() {
    // This binary has one test, so changing the environment cannot race another test.
    // SAFETY: no other thread of this test binary reads the environment concurrently.
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
    assert!(s.disabled);
    assert_eq!(s.steps, 0);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no file written"
    );
}
