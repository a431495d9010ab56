//! Fuzz target `merge`: see `carina_fuzz::merge`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = carina_fuzz::merge(data);
});
