//! Compile-time checks of `#[carina::step]`: what must compile, and the errors for misuse.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("ui/pass/*.rs");
    t.compile_fail("ui/fail/*.rs");
}
