//! Span fields listed with `CarinaLayer::attributes` become the step's `attrs` in its record and
//! the `by_attrs` breakdown of its name's summary (bounded per name); fields not listed never
//! appear.

use crate::common::{only, serial};
use carina::StepDetail;
use carina::record::StepRecord;
use carina::sink::MemorySink;
use carina_tracing::CarinaLayer;
use tracing_subscriber::layer::SubscriberExt;

fn run_with(
    detail: StepDetail,
    layer: CarinaLayer,
    f: impl FnOnce(),
) -> carina::sink::MemoryRecords {
    let (sink, recs) = MemorySink::new();
    let run = carina::Run::builder("attrs")
        .run_file(false)
        .sink(sink)
        .constant_watts(100.0)
        .sample_interval(std::time::Duration::from_millis(10))
        .steps(detail)
        .start()
        .expect("start");
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), f);
    let summary = run.finish().expect("finish");
    assert_eq!(summary.dropped(), 0);
    recs
}

fn attrs_of(s: &StepRecord) -> Vec<(&str, &str)> {
    s.attrs
        .iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

#[test]
fn listed_fields_are_kept_as_attributes_and_others_are_not() {
    let _s = serial();
    let layer = CarinaLayer::new().attributes(["dataset", "epoch", "shuffle", "lr", "model"]);
    let recs = run_with(StepDetail::All, layer, || {
        let span = tracing::info_span!(
            "train",
            dataset = "imagenet",
            epoch = 3u64,
            shuffle = true,
            lr = 0.5f64,
            secret = "not listed",
            items = 7u64,
            model = tracing::field::Empty,
        );
        span.in_scope(|| {});
        // Recorded after the first enter: the last value is the one written.
        span.record("model", "resnet");
        span.in_scope(|| {});
        drop(span);
        tracing::info_span!("plain", other = 1u64).in_scope(|| {});
        tracing::info_span!("shown", model = %"vit-b").in_scope(|| {});
    });
    let steps = recs.steps();
    let train = only(&steps, "train");
    assert_eq!(
        attrs_of(train),
        vec![
            ("dataset", "imagenet"),
            ("epoch", "3"),
            ("lr", "0.5"),
            ("model", "resnet"),
            ("shuffle", "true"),
        ]
    );
    assert_eq!(train.items, 7, "the items field still counts");
    // No listed field: no attrs at all.
    assert_eq!(only(&steps, "plain").attrs, None);
    assert_eq!(attrs_of(only(&steps, "shown")), vec![("model", "vit-b")]);
    // The unlisted field is nowhere in the run's records.
    let all = format!("{:?}", recs.all());
    assert!(
        !all.contains("not listed") && !all.contains("secret"),
        "{all}"
    );
    // The summary of `train` has one combination, that of its record.
    let sums = recs.summaries();
    let s = sums.iter().find(|s| s.name == "train").unwrap();
    let by = s.by_attrs.as_ref().expect("by_attrs");
    assert_eq!(by.len(), 1);
    assert_eq!(Some(&by[0].attrs), train.attrs.as_ref());
    assert_eq!((by[0].count, by[0].items), (1, 7));
    assert!(
        sums.iter()
            .find(|s| s.name == "plain")
            .unwrap()
            .by_attrs
            .is_none()
    );
}

/// Summaries only: the instances are counted per combination of attributes, at most
/// `MAX_ATTR_GROUPS` per name; the rest are in the name's totals, in `attrs_folded`, and in a
/// `run_end` warning. Energy and counts add up: the combinations plus the rest make the totals.
#[test]
fn summaries_group_by_attributes_within_a_bound() {
    use carina::record::MAX_ATTR_GROUPS;
    let _s = serial();
    let layer = CarinaLayer::new().attributes(["shard"]);
    let extra = 5;
    let recs = run_with(StepDetail::Summary, layer, || {
        for round in 0..2 {
            for shard in 0..MAX_ATTR_GROUPS + extra {
                let span = tracing::info_span!("load", shard = shard as u64, items = 1u64);
                span.in_scope(|| crate::common::spin(if round == 0 { 20 } else { 1 }));
            }
        }
        // Instances without the attribute.
        for _ in 0..3 {
            tracing::info_span!("load", items = 1u64).in_scope(|| {});
        }
    });
    assert!(recs.steps().is_empty(), "summaries only");
    let sums = recs.summaries();
    let s = sums.iter().find(|s| s.name == "load").unwrap();
    let total = 2 * (MAX_ATTR_GROUPS + extra) as u64 + 3;
    assert_eq!(s.count, total);
    let by = s.by_attrs.as_ref().expect("by_attrs");
    assert_eq!(by.len(), MAX_ATTR_GROUPS);
    // Each kept combination has both of its instances.
    assert!(by.iter().all(|g| g.count == 2 && g.items == 2), "{by:?}");
    assert!(
        by.iter()
            .all(|g| g.attrs.len() == 1 && g.attrs.contains_key("shard"))
    );
    // The combinations past the bound: counted, not lost.
    assert_eq!(s.attrs_folded, 2 * extra as u64);
    let kept: u64 = by.iter().map(|g| g.count).sum();
    assert_eq!(kept + s.attrs_folded + 3, s.count);
    let kept_j: f64 = by.iter().map(|g| g.energy_j.0).sum();
    assert!(
        kept_j > 0.0 && kept_j <= s.energy_j.0 * (1.0 + 1e-9),
        "{kept_j} {s:?}"
    );
    let end = recs.run_end().unwrap();
    let w: Vec<&String> = end
        .warnings
        .iter()
        .filter(|w| w.contains("combinations of attributes"))
        .collect();
    assert_eq!(w.len(), 1, "{:?}", end.warnings);
    assert!(w[0].contains("load (10)"), "{}", w[0]);
}
