//! RAPL through perf_event's `power` PMU (in progress).
