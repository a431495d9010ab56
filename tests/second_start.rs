//! Only one run is installed per process at a time.

#[test]
fn a_second_start_fails_until_the_first_finishes() {
    let _s = carina::testing::serial();
    let dir = tempfile::tempdir().unwrap();
    let first = carina::Run::builder("one")
        .output_dir(dir.path())
        .start()
        .unwrap();
    let err = carina::Run::builder("two")
        .output_dir(dir.path())
        .start()
        .unwrap_err();
    assert!(matches!(err, carina::StartError::AlreadyRunning));
    assert!(err.to_string().contains("already active"), "{err}");
    first.finish().unwrap();
    let again = carina::Run::builder("three")
        .output_dir(dir.path())
        .start()
        .unwrap();
    {
        let _g = carina::step("x");
    }
    let s = again.finish().unwrap();
    assert_eq!(s.steps(), 1);
}
