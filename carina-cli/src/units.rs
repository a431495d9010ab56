//! Formerly the CLI's own figure formatting; now [`carina_core::format`], re-exported here only
//! for the modules that still name `crate::units` (`report`, `runcmd`). New code uses
//! `carina_core::format` directly; this module goes once they do.

pub use carina_core::format::*;

/// [`carina_core::format::sig3`] under its former name.
pub use carina_core::format::sig3 as sig;
