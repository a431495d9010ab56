//! Shared helpers. One Carina run may be installed per process and the tests of this binary run
//! on parallel threads, so every test holds [`serial`] while it records.

use carina::record::StepRecord;
use carina_tracing::CarinaLayer;
use tracing_subscriber::layer::SubscriberExt;

pub use carina::testing::{memory_run, serial, spin};

/// Runs `f` on this thread under `registry().with(layer)` while a run records; returns the
/// run's step records.
pub fn record_with(layer: CarinaLayer, f: impl FnOnce()) -> Vec<StepRecord> {
    let (run, recs) = memory_run("carina-tracing-test");
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, f);
    let summary = run.finish().expect("finish");
    assert_eq!(summary.dropped(), 0);
    assert_eq!(summary.folded(), 0);
    recs.steps()
}

/// The one step named `name`.
pub fn only<'a>(steps: &'a [StepRecord], name: &str) -> &'a StepRecord {
    let found: Vec<&StepRecord> = steps.iter().filter(|s| s.name == name).collect();
    assert_eq!(
        found.len(),
        1,
        "expected one step named {name:?}, found {found:#?}"
    );
    found[0]
}
