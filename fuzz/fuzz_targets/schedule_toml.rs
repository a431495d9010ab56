//! Fuzz target `schedule_toml`: see `carina_fuzz::schedule_toml`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = carina_fuzz::schedule_toml(data);
});
