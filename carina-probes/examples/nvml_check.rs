//! Prints what Carina's NVML probe sees on this machine: GPUs, UUIDs, energy-counter support,
//! and the joules and watts measured over 200 ms.
//!
//! Run with `cargo run -p carina-probes --example nvml_check`. The exit status is 1 when the
//! check failed (no driver, no GPU, a read failed), so that a device-check script can rely on it;
//! 2 when built without the `nvml` feature.

fn main() {
    #[cfg(feature = "nvml")]
    {
        let report = carina_probes::nvml::verify_report();
        print!("{report}");
        if report.starts_with("NVML check: FAILED") {
            std::process::exit(1);
        }
    }
    #[cfg(not(feature = "nvml"))]
    {
        eprintln!("built without the `nvml` feature; rebuild with `--features nvml`");
        std::process::exit(2);
    }
}
