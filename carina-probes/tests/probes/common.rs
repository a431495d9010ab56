//! What several behaviours share: who runs the probes (stated, so that no test depends on the
//! user running it) and the unwrapping of a source that cannot be used.

use carina_probes::Privileges;
use carina_runtime::ProbeError;
use carina_runtime::energy::Unavailable;

/// A user without privileges on a default kernel (`perf_event_paranoid` 2).
pub const USER: Privileges = Privileges {
    root: false,
    perf_event_paranoid: Some(2),
};

/// Root, and still refused where the tests fake a refusal: root in a container.
pub const ROOT: Privileges = Privileges {
    root: true,
    perf_event_paranoid: Some(2),
};

/// The reason, cause and fix of an error that must be [`ProbeError::Unavailable`].
pub fn unavailable(e: ProbeError) -> Unavailable {
    match e {
        ProbeError::Unavailable(u) => u,
        other => panic!("expected Unavailable, got {other:?}"),
    }
}
