//! `carina serve`: the dashboard of `carina report`, served and kept current as run files grow.

pub mod watch;
