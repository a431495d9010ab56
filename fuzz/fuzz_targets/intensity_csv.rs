//! Fuzz target `intensity_csv`: see `carina_fuzz::intensity_csv`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = carina_fuzz::intensity_csv(data);
});
