//! carina-probes' integration tests, linked as one binary (each `tests/*.rs` file would be a
//! binary of its own, each linking the whole dependency tree again). One module per behaviour,
//! under `tests/probes/`.

mod probes {
    mod common;
    mod detect;
    mod gpu_share;
    mod gpu_share_session;
    mod model;
    mod nvml;
    // Compiles a fake libnvidia-ml.so with the system C compiler and loads it through the
    // real backend, which exists with the `nvml` feature only.
    #[cfg(feature = "nvml")]
    mod nvml_ffi;
    mod perf_rapl;
    mod powercap;
    mod wrap_rig;
}
