//! Shared helpers for integration tests. One run may be installed per process, and the tests of
//! one file run on parallel threads, so every test that starts a run holds [`serial`].

#![allow(dead_code)]

#[allow(unused_imports)] // each test binary uses its own subset
pub use carina::testing::{memory_run, serial, spin};
