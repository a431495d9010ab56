//! carina-tracing's integration tests, linked as one binary (each `tests/*.rs` file would be a
//! binary of its own, linking the whole dependency tree again). One module per behaviour of the
//! layer, under `tests/layer/`; the helpers they share are `common`.

mod common;

mod layer {
    mod attributes;
    mod cross_thread;
    mod entered_many_times;
    mod error_status;
    mod filters;
    mod full_buffer;
    mod global_filter;
    mod names;
    mod nested_spans;
    mod no_run;
    mod out_of_order;
    mod record_items;
}
