//! Fuzz target `run_file`: see `carina_fuzz::run_file`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = carina_fuzz::run_file(data);
});
