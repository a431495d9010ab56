//! Step attributes: a few `key = value` strings that an integration attaches to one step
//! instance (the `tracing` layer: the span fields the user listed), carried to the runtime beside
//! the rings, never through them.
//!
//! The step's events stay what they are (the hot path of [`crate::step`] and of the segment API
//! does not change); an integration that has attributes for a step registers them here under the
//! step's segment id ([`crate::new_segment_id`]) once, when it first enters the step, and the
//! runtime takes them when it writes that step's record. Cold path: a lock per call, for steps
//! that have attributes only.
//!
//! Bounded: at most [`MAX_PENDING`] steps' attributes wait here at once, at most
//! [`MAX_VALUE_BYTES`] bytes per value. A step whose attributes find the table full keeps none
//! and is counted ([`take_dropped`]); the runtime says so in `run_end.warnings`. Entries left
//! when a run ends (steps never written: folded, or still open) are removed by the runtime
//! ([`clear`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One step's attributes: `(key, value)` pairs in the order the integration gives them.
pub type Attrs = Vec<(&'static str, String)>;

/// Most steps whose attributes can wait for their record at once.
pub const MAX_PENDING: usize = 65_536;

/// Longest value kept, in bytes; a longer one is cut at a character boundary and ends with `…`.
pub const MAX_VALUE_BYTES: usize = 256;

struct Table {
    pending: HashMap<u64, Attrs>,
    /// Steps whose attributes were not kept because the table was full.
    dropped: u64,
}

static TABLE: Mutex<Option<Table>> = Mutex::new(None);

/// Entries in the table, kept under its lock: [`take`] skips the lock when it is 0 (the runtime
/// asks for every async step; most have no attributes).
static PENDING: AtomicUsize = AtomicUsize::new(0);

fn with<R>(f: impl FnOnce(&mut Table) -> R) -> R {
    let mut t = TABLE.lock().unwrap_or_else(|e| e.into_inner());
    let t = t.get_or_insert_with(|| Table {
        pending: HashMap::new(),
        dropped: 0,
    });
    let r = f(t);
    PENDING.store(t.pending.len(), Ordering::Release);
    r
}

/// `value`, cut to [`MAX_VALUE_BYTES`] at a character boundary (with `…` when cut).
pub fn bounded(mut value: String) -> String {
    if value.len() > MAX_VALUE_BYTES {
        let mut end = MAX_VALUE_BYTES - '…'.len_utf8();
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        value.truncate(end);
        value.push('…');
    }
    value
}

/// Attaches `attrs` to the step of segment id `seg` (replacing what it had). Returns `false`,
/// and counts the step in [`take_dropped`], when [`MAX_PENDING`] other steps' attributes are
/// waiting: the step is recorded without attributes. Values are cut by [`bounded`].
pub fn set(seg: u64, attrs: Attrs) -> bool {
    let attrs: Attrs = attrs.into_iter().map(|(k, v)| (k, bounded(v))).collect();
    with(|t| {
        if let Some(a) = t.pending.get_mut(&seg) {
            *a = attrs;
            return true;
        }
        if t.pending.len() >= MAX_PENDING {
            t.dropped += 1;
            return false;
        }
        t.pending.insert(seg, attrs);
        true
    })
}

/// Removes and returns the attributes of the step of segment id `seg`, if any: for the runtime,
/// when it writes that step.
pub fn take(seg: u64) -> Option<Attrs> {
    // An entry set before the step's first event is visible here: the ring's push and drain
    // order them after the store above.
    if PENDING.load(Ordering::Acquire) == 0 {
        return None;
    }
    with(|t| t.pending.remove(&seg))
}

/// Forgets the attributes of `seg` without writing them: for an integration whose step turns
/// out not to be recorded on its own (folded into its name's count).
pub fn discard(seg: u64) {
    with(|t| {
        t.pending.remove(&seg);
    });
}

/// Steps whose attributes were not kept (full table) since the last call; resets the count.
pub fn take_dropped() -> u64 {
    with(|t| std::mem::take(&mut t.dropped))
}

/// Removes every waiting entry (the run ended) and returns how many there were.
pub fn clear() -> usize {
    with(|t| {
        let n = t.pending.len();
        t.pending = HashMap::new();
        n
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test: the table is process-wide, and tests run in parallel threads.
    #[test]
    fn set_take_bound_and_clear() {
        clear();
        take_dropped();
        let base = 1u64 << 60;
        assert!(set(base, vec![("dataset", "imagenet".into())]));
        // Set again: replaced, not added.
        assert!(set(base, vec![("dataset", "coco".into())]));
        assert_eq!(take(base), Some(vec![("dataset", "coco".to_owned())]));
        assert_eq!(take(base), None);
        // A long value is cut at a character boundary.
        let long = "é".repeat(MAX_VALUE_BYTES);
        let cut = bounded(long);
        assert!(
            cut.len() <= MAX_VALUE_BYTES && cut.ends_with('…'),
            "{}",
            cut.len()
        );
        assert_eq!(bounded("short".into()), "short");
        // The bound: the table holds MAX_PENDING steps, the next is counted, not kept.
        for i in 0..MAX_PENDING as u64 {
            assert!(set(base + 1 + i, vec![("k", String::new())]));
        }
        assert!(!set(
            base + 1 + MAX_PENDING as u64,
            vec![("k", String::new())]
        ));
        assert_eq!(take(base + 1 + MAX_PENDING as u64), None);
        assert_eq!(take_dropped(), 1);
        assert_eq!(take_dropped(), 0);
        discard(base + 1);
        assert_eq!(take(base + 1), None);
        assert_eq!(clear(), MAX_PENDING - 1);
        assert_eq!(take(base + 2), None);
    }
}
