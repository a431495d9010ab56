//! Step names: the span's name, or `target::name` with `qualified_names(true)`, so that spans of
//! one name from different modules are different steps.

use crate::common::{only, record_with, serial};
use carina_tracing::CarinaLayer;

mod db {
    #[tracing::instrument]
    pub fn parse() {}
}

mod csv {
    #[tracing::instrument]
    pub fn parse() {}
}

fn work() {
    db::parse();
    csv::parse();
    csv::parse();
    tracing::info_span!(target: "custom", "parse").in_scope(|| {});
}

#[test]
fn same_name_in_two_modules_is_one_step_by_default() {
    let _s = serial();
    let steps = record_with(CarinaLayer::new(), work);
    assert_eq!(steps.len(), 4);
    assert!(steps.iter().all(|s| s.name == "parse"), "{steps:#?}");
}

#[test]
fn qualified_names_tell_them_apart() {
    let _s = serial();
    let steps = record_with(CarinaLayer::new().qualified_names(true), work);
    let here = module_path!();
    assert_eq!(steps.len(), 4, "{steps:#?}");
    only(&steps, &format!("{here}::db::parse"));
    let csv = format!("{here}::csv::parse");
    assert_eq!(
        steps.iter().filter(|s| s.name == csv).count(),
        2,
        "{steps:#?}"
    );
    only(&steps, "custom::parse");
}
