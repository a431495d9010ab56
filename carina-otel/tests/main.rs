//! carina-otel's integration tests, linked as one binary (each `tests/*.rs` file would be a binary
//! of its own, linking the whole dependency tree again). One module per behaviour, under
//! `tests/otel/`; the in-process OTLP receiver they share is `common`.

mod common;

mod otel {
    mod env;
    mod run;
    mod sink;
}
