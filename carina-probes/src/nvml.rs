//! NVML GPU energy (in progress).
