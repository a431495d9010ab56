//! carina-control's integration tests, linked as one binary (each `tests/*.rs` file would be a
//! binary of its own, linking the whole dependency tree again). One module per behaviour, under
//! `tests/control/`.

mod control {
    mod schedule;
}
