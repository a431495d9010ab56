//! The `carina` command line (in progress).
fn main() {}
