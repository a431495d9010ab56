//! Records [`tracing`] spans as Carina steps, so code already instrumented with `tracing` gets
//! per-span energy without changes.
//!
//! ```
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! let subscriber = tracing_subscriber::registry().with(carina_tracing::CarinaLayer::new());
//! tracing::subscriber::with_default(subscriber, || {
//!     // With a `carina::Run` started, this span becomes a step named "load" with 3 items.
//!     let span = tracing::info_span!("load", items = 3);
//!     let _entered = span.enter();
//! });
//! ```
//!
//! Applications install it once, next to their other layers, with
//! `tracing_subscriber::registry().with(carina_tracing::CarinaLayer::new()).init()` (from
//! `tracing_subscriber::prelude::*`), then start a `carina::Run` as usual.
//!
//! # Mapping
//! - A span is one step named `metadata.name()` (or `target::name`, with
//!   [`CarinaLayer::qualified_names`]), from its first enter to its close. Every enter
//!   and exit is pushed as a *segment* of that step ([`carina_core::enter_segment`]), so energy is
//!   credited only while the span is entered, and a span entered many times (an instrumented
//!   future polled across `.await`s) is still one step. Step records carry `async: true`.
//! - Parent: tracing's parent span (contextual or explicit), or the nearest ancestor recorded as a
//!   step; when that parent is entered on the thread of the span's first enter, the step open
//!   there (it, or a `carina::step` inside it). Inclusive energy counts every descendant on any
//!   thread (`docs/TRACING.md`).
//! - Items: the field named `items` (configurable), a `u64` or non-negative `i64`, recorded at
//!   creation or later with `span.record("items", n)`; the last value wins.
//! - GPU steps: the field `gpu = true` (configurable) at creation makes the span a GPU step
//!   (`carina::gpu_step`): a GPU's energy follows the GPU steps open, not the CPU time.
//! - Status: `error` when the field named `error` is `true` (or holds any non-boolean value, as in
//!   `error = %e`), or when an ERROR-level event occurs inside the span (configurable);
//!   `panicked` when the span is closed while its thread is panicking; `ok` otherwise.
//! - Attributes: the fields named with [`CarinaLayer::attributes`] are kept as the step's
//!   `attrs` in its record (`"attrs": {"dataset": "imagenet"}`; numbers and booleans as text),
//!   and the name's `step_summary` counts its instances per combination (`by_attrs`, at most 64
//!   per name). Other fields are not kept.
//! - Out-of-order exits: see [`CarinaLayer`] and `docs/TRACING.md`.
//!
//! With no run installed, an enter or exit costs one atomic load and one thread-local access.
//!
//! # Public API
//! One type: [`CarinaLayer`] (a `tracing_subscriber::Layer`), with its settings (the items and
//! error field names, whether ERROR events mark a step as failed, `target::name` step names,
//! the fields kept as attributes) as builder methods.

#![deny(missing_docs)]

use carina_core::{
    FinalSegment, FirstSegment, SegmentToken, Status, enter_first_segment, enter_next_segment,
    exit_segment, finish_segments, fold_step, is_recording,
};
use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tracing::callsite::{Callsite, Identifier};
use tracing::field::{Field, FieldSet, Visit};
use tracing::metadata::Kind;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Dispatch, Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// Distinguishes layer instances in the thread-local stack (span ids are per subscriber).
static NEXT_LAYER_TAG: AtomicU64 = AtomicU64::new(1);

type SpanFilter = Arc<dyn Fn(&Metadata<'_>) -> bool + Send + Sync>;

/// The callsite of a span that is never created: the layer asks the whole subscriber whether it
/// would enable it, to find a global filter that hides spans from this layer.
struct Probe(fn() -> &'static Metadata<'static>);

impl Callsite for Probe {
    fn set_interest(&self, _: Interest) {}
    fn metadata(&self) -> &Metadata<'_> {
        (self.0)()
    }
}

macro_rules! probe {
    ($callsite:ident, $meta:ident, $level:expr) => {
        static $callsite: Probe = Probe(|| &$meta);
        static $meta: Metadata<'static> = Metadata::new(
            "carina_tracing_probe",
            "carina_tracing",
            $level,
            None,
            None,
            None,
            FieldSet::new(&[], Identifier(&$callsite)),
            Kind::SPAN,
        );
    };
}
probe!(PROBE_INFO, PROBE_INFO_META, Level::INFO);
probe!(PROBE_WARN, PROBE_WARN_META, Level::WARN);
probe!(PROBE_ERROR, PROBE_ERROR_META, Level::ERROR);

/// The warning for a subscriber whose global filter hides spans from the layer.
fn hidden_warning(level: Level) -> String {
    format!(
        "carina-tracing: the subscriber disables {level} spans for every layer (a global filter, \
         e.g. `.with(EnvFilter::from_default_env())` with RUST_LOG unset): Carina records no span \
         that filter disables, and their energy stays unattributed. Give the filter to the other \
         layer instead (a per-layer filter: `fmt::layer().with_filter(EnvFilter::from_default_env())`); \
         see docs/TRACING.md"
    )
}

/// A [`Layer`] that turns `tracing` spans into Carina steps.
///
/// ```
/// use tracing_subscriber::layer::SubscriberExt;
///
/// let layer = carina_tracing::CarinaLayer::new()
///     .with_max_level(tracing::Level::DEBUG) // no TRACE spans
///     .with_target("my_app") // only spans whose target starts with "my_app"
///     .items_field("rows");
/// let _subscriber = tracing_subscriber::registry().with(layer);
/// ```
///
/// Spans are recorded only while a Carina run is installed; the layer never starts a run.
///
/// **Exits out of order.** `tracing` lets a span be exited while spans entered after it are still
/// entered (guards dropped in another order). Carina's ring closes the innermost open segment of
/// the thread, so the layer keeps a per-thread stack of the spans it entered: when a span that is
/// not the innermost one exits, the segments above it are closed, its own is closed, and the ones
/// above are opened again (as further segments of the same steps). Every span is credited
/// exactly while it is entered, and the ring's pairing stays intact. Interleaving a `tracing`
/// guard with a `carina::step` guard out of order cannot be seen by the layer: keep those nested.
pub struct CarinaLayer {
    tag: u64,
    items_field: &'static str,
    error_field: &'static str,
    gpu_field: &'static str,
    /// Fields kept as step attributes ([`CarinaLayer::attributes`]).
    attr_fields: Vec<&'static str>,
    error_events: bool,
    max_level: Level,
    targets: Vec<&'static str>,
    filter: Option<SpanFilter>,
    /// Step names `target::name` ([`CarinaLayer::qualified_names`]), one per callsite, made
    /// once: step names are `&'static str`, so each is leaked (a program has finitely many
    /// callsites).
    qualified: Option<std::sync::RwLock<std::collections::HashMap<usize, &'static str>>>,
    /// Keys of the run warnings this layer added ([`carina_core::recorder::add_run_warning`]),
    /// removed when the layer (its subscriber) is dropped.
    warnings: Mutex<Vec<u64>>,
}

impl Drop for CarinaLayer {
    fn drop(&mut self) {
        let keys = std::mem::take(self.warnings.get_mut().unwrap_or_else(|e| e.into_inner()));
        for k in keys {
            carina_core::recorder::remove_run_warning(k);
        }
    }
}

impl Default for CarinaLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for CarinaLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CarinaLayer")
            .field("items_field", &self.items_field)
            .field("error_field", &self.error_field)
            .field("gpu_field", &self.gpu_field)
            .field("attributes", &self.attr_fields)
            .field("error_events", &self.error_events)
            .field("max_level", &self.max_level)
            .field("targets", &self.targets)
            .field("filter", &self.filter.as_ref().map(|_| "fn"))
            .field("qualified_names", &self.qualified.is_some())
            .finish()
    }
}

impl CarinaLayer {
    /// A layer recording every span, items from the field `items`, errors from the field `error`
    /// and from ERROR-level events.
    pub fn new() -> Self {
        CarinaLayer {
            tag: NEXT_LAYER_TAG.fetch_add(1, Ordering::Relaxed),
            items_field: "items",
            error_field: "error",
            gpu_field: "gpu",
            attr_fields: Vec::new(),
            error_events: true,
            max_level: Level::TRACE,
            targets: Vec::new(),
            filter: None,
            warnings: Mutex::new(Vec::new()),
            qualified: None,
        }
    }

    /// Names steps `target::name` instead of `name` (default: off), so that spans of one name
    /// in different modules (two `parse` functions under `#[instrument]`) are different steps:
    /// `my_app::db::parse` and `my_app::csv::parse`. The target is the module path unless the
    /// span sets `target:`.
    pub fn qualified_names(mut self, on: bool) -> Self {
        self.qualified = on.then(Default::default);
        self
    }

    /// Fields kept as the step's attributes (default: none): for a span with any of these
    /// fields, the step record in the run file carries them as `"attrs": {"dataset":
    /// "imagenet"}`, strings as they are, numbers and booleans as text, other values as their
    /// `Debug` (or, with `%`, `Display`) text, each cut at 256 bytes. A value recorded later
    /// (`span.record("model", "b")`) replaces the earlier one; the last value wins. The name's
    /// `step_summary` also gives its instances per combination of attributes (`by_attrs`, at
    /// most 64 combinations per name; further ones are counted in `attrs_folded` and in a
    /// warning). Fields not listed are never kept; spans without them cost nothing more. Keep
    /// the values few (a dataset, a model, a tenant), not one per request: see
    /// `docs/TRACING.md`.
    ///
    /// ```
    /// let layer = carina_tracing::CarinaLayer::new().attributes(["dataset", "model"]);
    /// # let _ = layer;
    /// ```
    pub fn attributes(mut self, fields: impl IntoIterator<Item = &'static str>) -> Self {
        for f in fields {
            if !self.attr_fields.contains(&f) {
                self.attr_fields.push(f);
            }
        }
        self
    }

    /// Name of the field that holds a span's items (default `items`).
    pub fn items_field(mut self, name: &'static str) -> Self {
        self.items_field = name;
        self
    }

    /// Name of the field that marks a span as failed (default `error`).
    pub fn error_field(mut self, name: &'static str) -> Self {
        self.error_field = name;
        self
    }

    /// Name of the boolean field that marks a span as a GPU step (default `gpu`): with
    /// `gpu = true` at the span's creation, the span's GPU energy follows GPU-step overlap
    /// (`docs/ENERGY.md`). A value recorded after the first enter applies from the next enter.
    pub fn gpu_field(mut self, name: &'static str) -> Self {
        self.gpu_field = name;
        self
    }

    /// Whether an ERROR-level event inside a span marks that span's step `error` (default
    /// `true`). The event marks the innermost recorded span it belongs to, not its ancestors.
    pub fn error_events(mut self, on: bool) -> Self {
        self.error_events = on;
        self
    }

    /// Records only spans at `level` or more severe: `Level::INFO` skips DEBUG and TRACE spans
    /// (default: every level).
    pub fn with_max_level(mut self, level: Level) -> Self {
        self.max_level = level;
        self
    }

    /// Records only spans whose target starts with `prefix`; with several calls, any of them
    /// (default: every target).
    pub fn with_target(mut self, prefix: &'static str) -> Self {
        self.targets.push(prefix);
        self
    }

    /// Records only spans for which `f` returns true (on top of the level and target filters).
    /// Called when a span is created (and at its enters, for a span created before the run
    /// started), so keep it cheap; a name filter is `|m| m.name() != "poll"`.
    pub fn with_span_filter(
        mut self,
        f: impl Fn(&Metadata<'_>) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.filter = Some(Arc::new(f));
        self
    }

    /// Number of spans this thread has entered and not exited, as the layers of this process
    /// track them (diagnostics and tests; 0 outside any span).
    pub fn entered_on_this_thread() -> usize {
        STACK
            .try_with(|s| s.try_borrow().map_or(0, |s| s.len()))
            .unwrap_or(0)
    }

    /// The probe of the most verbose level this layer records, up to INFO (a filter that hides
    /// DEBUG and TRACE spans is common and deliberate; one that hides INFO spans hides most).
    fn probe(&self) -> &'static Metadata<'static> {
        if self.max_level >= Level::INFO {
            &PROBE_INFO_META
        } else if self.max_level == Level::WARN {
            &PROBE_WARN_META
        } else {
            &PROBE_ERROR_META
        }
    }

    fn wants(&self, meta: &Metadata<'_>) -> bool {
        *meta.level() <= self.max_level
            && (self.targets.is_empty()
                || self.targets.iter().any(|t| meta.target().starts_with(t)))
            && self.filter.as_ref().is_none_or(|f| f(meta))
    }

    /// The step name of spans of `meta`'s callsite.
    fn step_name(&self, meta: &'static Metadata<'static>) -> &'static str {
        let Some(cache) = &self.qualified else {
            return meta.name();
        };
        let key = std::ptr::from_ref(meta) as usize;
        if let Some(n) = cache.read().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return n;
        }
        let mut w = cache.write().unwrap_or_else(|e| e.into_inner());
        w.entry(key).or_insert_with(|| {
            let full = format!("{}::{}", meta.target(), meta.name());
            Box::leak(full.into_boxed_str())
        })
    }

    fn has_fields(&self, meta: &Metadata<'_>) -> bool {
        let f = meta.fields();
        f.field(self.items_field).is_some()
            || f.field(self.error_field).is_some()
            || f.field(self.gpu_field).is_some()
            || self.attr_fields.iter().any(|a| f.field(a).is_some())
    }

    fn visitor<'a>(&'a self, state: &'a mut SpanState) -> FieldVisitor<'a> {
        FieldVisitor { layer: self, state }
    }

    /// Exits every entry of span `span` on this thread's stack (a span closed while entered).
    fn exit_all(&self, span: u64) {
        while self.exit(span) {}
    }

    /// Exits the innermost entry of `span` on this thread; returns whether there was one.
    fn exit(&self, span: u64) -> bool {
        STACK
            .try_with(|s| {
                let Ok(mut stack) = s.try_borrow_mut() else {
                    return false;
                };
                let Some(i) = stack
                    .iter()
                    .rposition(|e| e.layer == self.tag && e.span == span)
                else {
                    return false;
                };
                if i + 1 == stack.len() {
                    if let Some(e) = stack.pop()
                        && let Some(t) = e.token
                    {
                        exit_segment(t, 0, Status::Ok, false);
                    }
                    return true;
                }
                // Out of order: close the segments above, then this one, and reopen the ones
                // above, so that the ring's exits still pair with its enters.
                for e in stack[i + 1..].iter().rev() {
                    if let Some(t) = e.token {
                        exit_segment(t, 0, Status::Ok, false);
                    }
                }
                let e = stack.remove(i);
                if let Some(t) = e.token {
                    exit_segment(t, 0, Status::Ok, false);
                }
                for e in stack[i..].iter_mut() {
                    if e.token.is_some() {
                        e.token = enter_next_segment(e.name, e.seg, e.gpu);
                    }
                }
                true
            })
            .unwrap_or(false)
    }
}

/// The segment id of the nearest ancestor of `span` (in tracing's span tree) recorded as a
/// step with segments of its own (not folded, not filtered out), unless `entered_here(span id,
/// segment id)` says an ancestor on the way is entered on this thread (then `None`: the ring's
/// nesting says it). The usual child of a span entered here costs one lookup, no lock.
fn recorded_ancestor<S>(
    span: &tracing_subscriber::registry::SpanRef<'_, S>,
    entered_here: impl Fn(u64, u64) -> bool,
) -> Option<u64>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let mut cur = span.parent();
    while let Some(p) = cur {
        if entered_here(p.id().into_u64(), u64::MAX) {
            return None;
        }
        if let Some(st) = p.extensions().get::<SpanState>()
            && st.recorded
            && st.seg != 0
        {
            return (!entered_here(u64::MAX, st.seg)).then_some(st.seg);
        }
        cur = p.parent();
    }
    None
}

/// One span entered on this thread.
struct Entry {
    layer: u64,
    span: u64,
    seg: u64,
    name: &'static str,
    gpu: bool,
    /// `None` when the enter was not recorded (a re-entry of a span already entered on this
    /// thread, or a full buffer): its exit pushes nothing.
    token: Option<SegmentToken>,
}

thread_local! {
    static STACK: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
}

/// What the layer keeps in a recorded span's extensions.
#[derive(Debug)]
struct SpanState {
    /// Segment id, 0 until the span is first entered under a run.
    seg: u64,
    items: u64,
    error: bool,
    gpu: bool,
    /// Whether the first segment was recorded (then the close pushes the final one).
    recorded: bool,
    /// Room for the final segment, promised with the first segment.
    fin: Option<FinalSegment>,
    /// When the first enter found the thread's buffer full: the span is then counted in its
    /// name's fold at close (exact count, items, wall time from here), with no segment at all.
    folded_at: Option<std::time::Instant>,
    /// Values of the listed attribute fields, in the order first seen.
    attrs: Vec<(&'static str, String)>,
    /// An attribute changed since they were last registered ([`carina_core::attrs::set`]).
    attrs_changed: bool,
}

impl SpanState {
    fn new() -> Self {
        SpanState {
            seg: 0,
            items: 0,
            error: false,
            gpu: false,
            recorded: false,
            fin: None,
            folded_at: None,
            attrs: Vec::new(),
            attrs_changed: false,
        }
    }

    /// Registers the attributes for the span's segment id, if it has any that changed.
    fn register_attrs(&mut self) {
        if self.attrs_changed && self.seg != 0 {
            self.attrs_changed = false;
            carina_core::attrs::set(self.seg, self.attrs.clone());
        }
    }
}

/// Formats a value with `f`, stopping a few bytes past [`carina_core::attrs::MAX_VALUE_BYTES`]
/// (the attribute is cut there anyway): a large `?field` value is not formatted whole on every
/// span it is recorded on.
fn format_capped(f: impl FnOnce(&mut dyn fmt::Write) -> fmt::Result) -> String {
    struct Capped(String);
    impl fmt::Write for Capped {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            // A little past the bound, so that `attrs::bounded` sees the value was longer.
            let cap = carina_core::attrs::MAX_VALUE_BYTES + 4;
            let room = cap.saturating_sub(self.0.len());
            if s.len() <= room {
                self.0.push_str(s);
                return Ok(());
            }
            let mut end = room;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            self.0.push_str(&s[..end]);
            // Stops the formatting: what follows would be cut.
            Err(fmt::Error)
        }
    }
    let mut out = Capped(String::new());
    let _ = f(&mut out);
    out.0
}

struct FieldVisitor<'a> {
    layer: &'a CarinaLayer,
    state: &'a mut SpanState,
}

impl FieldVisitor<'_> {
    /// Keeps `field`'s value as an attribute when the layer lists it (the value is formatted
    /// only then).
    fn attr(&mut self, field: &Field, value: impl FnOnce() -> String) {
        let name = field.name();
        if !self.layer.attr_fields.contains(&name) {
            return;
        }
        let v = carina_core::attrs::bounded(value());
        match self.state.attrs.iter_mut().find(|(k, _)| *k == name) {
            Some((_, old)) if *old == v => return,
            Some((_, old)) => *old = v,
            None => self.state.attrs.push((name, v)),
        }
        self.state.attrs_changed = true;
    }
}

impl Visit for FieldVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.attr(field, || format_capped(|w| w.write_str(value)));
        if field.name() == self.layer.error_field {
            self.state.error = true;
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.attr(field, || value.to_string());
        if field.name() == self.layer.error_field {
            self.state.error = true;
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.attr(field, || value.to_string());
        if field.name() == self.layer.items_field {
            self.state.items = value;
        } else if field.name() == self.layer.error_field {
            self.state.error = value != 0;
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.attr(field, || value.to_string());
        if field.name() == self.layer.items_field {
            if let Ok(v) = u64::try_from(value) {
                self.state.items = v;
            }
        } else if field.name() == self.layer.error_field {
            self.state.error = value != 0;
        }
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.attr(field, || value.to_string());
        let v = u64::try_from(value).unwrap_or(u64::MAX);
        if field.name() == self.layer.items_field {
            self.state.items = v;
        } else if field.name() == self.layer.error_field {
            self.state.error = v != 0;
        }
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.attr(field, || value.to_string());
        if let Ok(v) = u64::try_from(value) {
            self.record_u64(field, v);
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.attr(field, || value.to_string());
        if field.name() == self.layer.error_field {
            self.state.error = value;
        } else if field.name() == self.layer.gpu_field {
            self.state.gpu = value;
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.attr(field, || format_capped(|w| write!(w, "{value}")));
        if field.name() == self.layer.error_field {
            self.state.error = true;
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.attr(field, || format_capped(|w| write!(w, "{value:?}")));
        // Strings, `%e` and `?e` values: a non-boolean `error` field means a failure.
        if field.name() == self.layer.error_field {
            self.state.error = true;
        }
    }
}

impl<S> Layer<S> for CarinaLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_register_dispatch(&self, dispatch: &Dispatch) {
        // A filter added with `.with(filter)` is global: the subscriber asks it before any
        // layer sees a span, so a span it disables never reaches this layer and nothing here
        // could record it. Say so once, on stderr and in the run file, naming the fix.
        let probe = self.probe();
        if dispatch.enabled(probe) {
            return;
        }
        let msg = hidden_warning(*probe.level());
        eprintln!("{msg}");
        let key = carina_core::recorder::add_run_warning(msg);
        self.warnings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(key);
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let meta = attrs.metadata();
        // No run: keep nothing unless the span carries fields we would lose (its enters under a
        // later run create the state then).
        if !is_recording() && !self.has_fields(meta) {
            return;
        }
        if !self.wants(meta) {
            return;
        }
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut state = SpanState::new();
        attrs.record(&mut self.visitor(&mut state));
        span.extensions_mut().insert(state);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut ext = span.extensions_mut();
        if let Some(state) = ext.get_mut::<SpanState>() {
            values.record(&mut self.visitor(state));
            // A recorded span's attributes wait for its record: a later value replaces them.
            if state.recorded {
                state.register_attrs();
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if !self.error_events || *event.metadata().level() != Level::ERROR {
            return;
        }
        let Some(span) = ctx.event_span(event) else {
            return;
        };
        for s in span.scope() {
            if let Some(state) = s.extensions_mut().get_mut::<SpanState>() {
                state.error = true;
                return;
            }
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if !is_recording() {
            return;
        }
        let Some(span) = ctx.span(id) else {
            return;
        };
        let name = self.step_name(span.metadata());
        let key = id.into_u64();
        let _ = STACK.try_with(|s| {
            let Ok(mut stack) = s.try_borrow_mut() else {
                return;
            };
            let mut ext = span.extensions_mut();
            let state = match ext.get_mut::<SpanState>() {
                Some(state) => state,
                None => {
                    // Created before the run started (or not kept): decide now.
                    if !self.wants(span.metadata()) {
                        return;
                    }
                    ext.insert(SpanState::new());
                    match ext.get_mut::<SpanState>() {
                        Some(state) => state,
                        None => return,
                    }
                }
            };
            if state.seg == 0 {
                state.seg = carina_core::new_segment_id();
            }
            // A span entered again on a thread where it is already entered adds no segment:
            // nested segments of one step would count its time twice.
            let reentry = stack.iter().any(|e| e.layer == self.tag && e.span == key);
            let token = if reentry || state.folded_at.is_some() {
                None
            } else if state.recorded {
                enter_next_segment(name, state.seg, state.gpu)
            } else {
                // The first enter decides, once, how the span is counted: recorded (with room
                // kept for its final segment) or, when the buffer is full, folded, as a
                // `carina::step` is; never lost.
                // Tracing's parent (contextual or explicit), or the nearest ancestor recorded as
                // a step; named only when it is not entered on this thread, where the ring's
                // nesting already says it (more precisely: a `carina::step` open inside it).
                let parent = recorded_ancestor(&span, |span, seg| {
                    stack.iter().any(|e| {
                        e.token.is_some()
                            && ((e.layer == self.tag && e.span == span) || e.seg == seg)
                    })
                })
                .unwrap_or(0);
                // Registered before the step's first event, so that they wait for its record
                // whichever thread's ring is drained first.
                state.register_attrs();
                let first = enter_first_segment(name, state.seg, state.gpu, parent);
                if !matches!(first, FirstSegment::Recorded(..)) && !state.attrs.is_empty() {
                    // No record of its own will take them.
                    carina_core::attrs::discard(state.seg);
                    state.attrs_changed = true;
                }
                match first {
                    FirstSegment::Recorded(token, fin) => {
                        state.recorded = true;
                        state.fin = Some(fin);
                        Some(token)
                    }
                    FirstSegment::Full => {
                        state.folded_at = Some(std::time::Instant::now());
                        None
                    }
                    FirstSegment::Off => None,
                }
            };
            stack.push(Entry {
                layer: self.tag,
                span: key,
                seg: state.seg,
                name,
                gpu: state.gpu,
                token,
            });
        });
    }

    fn on_exit(&self, id: &Id, _ctx: Context<'_, S>) {
        self.exit(id.into_u64());
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        // A span closed while still entered here (a leaked guard): close its segments first.
        self.exit_all(id.into_u64());
        if !is_recording() {
            return;
        }
        let Some(span) = ctx.span(&id) else {
            return;
        };
        let (seg, items, error, gpu, fin, folded_at) =
            match span.extensions_mut().get_mut::<SpanState>() {
                Some(s) if s.recorded || s.folded_at.is_some() => {
                    (s.seg, s.items, s.error, s.gpu, s.fin.take(), s.folded_at)
                }
                _ => return,
            };
        let status = if std::thread::panicking() {
            Status::Panicked
        } else if error {
            Status::Error
        } else {
            Status::Ok
        };
        let name = self.step_name(span.metadata());
        if let Some(t0) = folded_at {
            let wall = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
            fold_step(name, items, wall, status);
            return;
        }
        // A zero-length final segment completes the step once, however often it was entered.
        finish_segments(fin, name, seg, gpu, items, status);
    }
}

#[cfg(test)]
mod capped_tests {
    use super::*;

    #[test]
    fn a_large_value_is_formatted_only_up_to_the_bound() {
        use std::cell::Cell;
        // A Debug value that counts how much of it was asked for.
        struct Big<'a>(&'a Cell<usize>);
        impl fmt::Debug for Big<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                for _ in 0..100_000 {
                    self.0.set(self.0.get() + 1);
                    f.write_str("0123456789")?;
                }
                Ok(())
            }
        }
        let calls = Cell::new(0);
        let v = format_capped(|w| write!(w, "{:?}", Big(&calls)));
        assert!(calls.get() < 40, "formatted {} chunks", calls.get());
        let cut = carina_core::attrs::bounded(v);
        assert!(cut.len() <= carina_core::attrs::MAX_VALUE_BYTES && cut.ends_with('…'));
        // Short values whole; a multi-byte character at the cap is not split.
        assert_eq!(format_capped(|w| write!(w, "{}", 42)), "42");
        let wide = "é".repeat(400);
        let v = format_capped(|w| w.write_str(&wide));
        assert!(v.len() <= carina_core::attrs::MAX_VALUE_BYTES + 4 && v.chars().all(|c| c == 'é'));
    }
}
