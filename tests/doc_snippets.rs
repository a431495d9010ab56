//! Nothing to use: this library exists for its doctests. README.md and the guides to the
//! integrations (docs/TRACING.md, docs/CRITERION.md, docs/FLEET.md) show code that uses
//! `carina-tracing`, `carina-criterion`, `carina-otel`, `tracing-subscriber` and `criterion`;
//! the facade cannot compile them (it must not depend on those crates, not even for its tests),
//! so this package, which has them as dev-dependencies, does. `cargo test -p carina-tests --doc`
//! compiles every Rust snippet of these documents and runs those not marked `no_run` (each
//! `no_run` has its reason in an HTML comment above it). The other documents are doctests of
//! the facade (`src/lib.rs`).

/// The README's snippets.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct Readme;

/// docs/TRACING.md's snippets.
#[cfg(doctest)]
#[doc = include_str!("../docs/TRACING.md")]
pub struct Tracing;

/// docs/CRITERION.md's snippets.
#[cfg(doctest)]
#[doc = include_str!("../docs/CRITERION.md")]
pub struct Criterion;

/// docs/FLEET.md's snippets.
#[cfg(doctest)]
#[doc = include_str!("../docs/FLEET.md")]
pub struct Fleet;
