//! Fuzz target `cli_summary`: see `carina_fuzz::cli_summary`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = carina_fuzz::cli_summary(data);
});
