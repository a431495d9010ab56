//! Fuzz target `cli_report`: see `carina_fuzz::cli_report`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = carina_fuzz::cli_report(data);
});
