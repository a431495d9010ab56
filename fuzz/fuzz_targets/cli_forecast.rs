//! Fuzz target `cli_forecast`: see `carina_fuzz::cli_forecast`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = carina_fuzz::cli_forecast(data);
});
