//! Fuzz target `cli_export`: see `carina_fuzz::cli_export`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = carina_fuzz::cli_export(data);
});
