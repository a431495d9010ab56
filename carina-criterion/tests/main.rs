//! carina-criterion's integration tests, linked as one binary (each `tests/*.rs` file would be a
//! binary of its own, linking the whole dependency tree again). One module per behaviour, under
//! `tests/measure/`; the fake probes and the fake /proc they share are `common`.

mod common;

mod measure {
    mod baselines;
    mod measurement;
    mod meter;
}
