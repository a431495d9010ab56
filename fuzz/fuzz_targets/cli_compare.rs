//! Fuzz target `cli_compare`: see `carina_fuzz::cli_compare`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = carina_fuzz::cli_compare(data);
});
