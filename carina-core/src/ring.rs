//! A bounded single-producer, single-consumer ring of step events.
//!
//! Each application thread owns one `Producer` (private to the recorder); the aggregator thread owns the matching
//! [`Consumer`]. The producer never blocks and never allocates: when the ring is full the event
//! is refused and counted. Space for a step's exit event is *reserved* when its enter event is
//! accepted, so an accepted step can always be closed and the aggregator never sees an enter
//! without its exit (which would corrupt the thread's step stack).
//!
//! Why not `crossbeam-channel` batches: a batch that sits in a thread-local buffer is invisible
//! to the aggregator until it fills, so open steps could not be attributed energy at each tick,
//! and each hand-off would allocate. A ring that the aggregator drains directly has neither
//! problem and costs one release store per event.

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// Pads a value to its own cache line so producer and consumer indices do not false-share.
#[repr(align(128))]
struct Padded<T>(T);

pub(crate) struct Ring<T> {
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
    mask: usize,
    /// Next index to read; written only by the consumer.
    head: Padded<AtomicUsize>,
    /// Next index to write; written only by the producer.
    tail: Padded<AtomicUsize>,
    /// Events refused because the ring was full.
    pub(crate) dropped: AtomicU64,
    /// Set when the producing thread has exited; the consumer may retire the ring once drained.
    pub(crate) closed: AtomicBool,
    /// Slots promised to final pairs ([`Producer::push_open_with_final`]) that another thread
    /// gave back (the span closed there); the producer takes them back at its next refresh.
    pub(crate) finals_released: AtomicUsize,
}

// SAFETY: slots are accessed by exactly one producer (which owns `Producer`, not `Clone`) and one
// consumer (which owns `Consumer`, not `Clone`). A slot is written by the producer only while it
// lies outside `head..tail` as last published, and read by the consumer only while inside it; the
// release store of `tail` after a write and the acquire load before a read order those accesses,
// and likewise for `head` in the other direction. `T: Copy` so no destructor ever runs on a slot.
unsafe impl<T: Copy + Send> Sync for Ring<T> {}
// SAFETY: see above; moving the ring between threads moves only plain `Copy` data.
unsafe impl<T: Copy + Send> Send for Ring<T> {}

/// Creates a ring with room for `capacity` events (rounded up to a power of two, at least 4).
pub(crate) fn ring<T: Copy + Send>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    let cap = capacity.max(4).next_power_of_two();
    let slots = (0..cap)
        .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
        .collect::<Vec<_>>()
        .into_boxed_slice();
    let ring = Arc::new(Ring {
        slots,
        mask: cap - 1,
        head: Padded(AtomicUsize::new(0)),
        tail: Padded(AtomicUsize::new(0)),
        dropped: AtomicU64::new(0),
        closed: AtomicBool::new(false),
        finals_released: AtomicUsize::new(0),
    });
    (
        Producer {
            ring: ring.clone(),
            tail: 0,
            spare: cap,
            reserved: 0,
            finals: 0,
        },
        Consumer { ring },
    )
}

/// The writing end. Lives in a thread-local; not `Clone`.
///
/// Its bookkeeping is two counters rather than a head index: `spare` (slots neither written nor
/// promised, as of the last look at `head`) is what an open checks, and `reserved` is what a
/// close checks, so each event pays one compare. Invariant: `spare + reserved` never exceeds
/// the free slots (it equals them as of the last look at `head`), so a close with
/// `reserved > 0` always has a slot.
pub(crate) struct Producer<T: Copy + Send> {
    ring: Arc<Ring<T>>,
    /// Local copy of `ring.tail` (we are its only writer).
    tail: usize,
    /// Free slots not promised to a close, as of the last look at `ring.head`; refreshed only
    /// when it looks too small.
    spare: usize,
    /// Slots promised to exit events of accepted, still-open steps.
    reserved: usize,
    /// Slots promised to final pairs ([`push_open_with_final`](Self::push_open_with_final)),
    /// two each; kept apart from `reserved`, which counts open steps.
    finals: usize,
}

impl<T: Copy + Send> Producer<T> {
    /// Recomputes `spare` from the consumer's `head`; returns it.
    #[inline]
    fn refresh(&mut self) -> usize {
        if self.ring.finals_released.load(Ordering::Relaxed) != 0 {
            let back = self.ring.finals_released.swap(0, Ordering::Relaxed);
            self.finals = self.finals.saturating_sub(back);
        }
        let head = self.ring.head.0.load(Ordering::Acquire);
        let free = self.ring.slots.len() - self.tail.wrapping_sub(head);
        self.spare = free.saturating_sub(self.reserved + self.finals);
        self.spare
    }

    /// Closes promised and not yet pushed: the steps (and segments) accepted and still open.
    #[inline]
    pub(crate) fn open_closes(&self) -> usize {
        self.reserved
    }

    /// Pushes an opening event and reserves a slot for its closing event.
    ///
    /// Returns `false` (and counts a drop) when there is no room for both.
    #[inline]
    pub(crate) fn push_open(&mut self, ev: T) -> bool {
        if self.push_open_quiet(ev) {
            true
        } else {
            self.count_drop();
            false
        }
    }

    /// Pushes the closing event of a step accepted by [`push_open`](Self::push_open).
    ///
    /// Never fails for an accepted open: its slot was reserved.
    #[inline]
    pub(crate) fn push_close(&mut self, ev: T) {
        // A close without an open (a caller that broke the pairing, e.g. one segment token
        // closed twice) is refused rather than allowed to overwrite unread events.
        if self.reserved == 0 {
            self.count_drop();
            return;
        }
        self.write(ev);
        self.reserved -= 1;
    }

    /// Like [`push_open`](Self::push_open), but a refusal is not counted: the caller counts the
    /// step another way (folded totals) or calls [`count_drop`](Self::count_drop).
    #[inline]
    pub(crate) fn push_open_quiet(&mut self, ev: T) -> bool {
        if self.spare < 2 && self.refresh() < 2 {
            return false;
        }
        self.write(ev);
        self.spare -= 2;
        self.reserved += 1;
        true
    }

    /// Like [`push_open_quiet`](Self::push_open_quiet), and also promises two slots to a *final
    /// pair* (a zero-length open and close, [`push_final_pair`](Self::push_final_pair)) that
    /// will come later, after this open's close: the last segment of a `tracing` span, pushed
    /// at its close. Refused, counting nothing, unless all four slots are free.
    #[inline]
    pub(crate) fn push_open_with_final(&mut self, ev: T) -> bool {
        if self.spare < 4 && self.refresh() < 4 {
            return false;
        }
        self.write(ev);
        self.spare -= 4;
        self.reserved += 1;
        self.finals += 2;
        true
    }

    /// Whether `n` unpromised slots are free.
    #[inline]
    pub(crate) fn has_room(&mut self, n: usize) -> bool {
        self.spare >= n || self.refresh() >= n
    }

    /// Pushes a final pair promised by [`push_open_with_final`](Self::push_open_with_final).
    /// Returns `false`, pushing nothing, when no promise is left (a caller that broke the
    /// pairing, or a promise given back with [`Releaser::release_final`]).
    #[inline]
    pub(crate) fn push_final_pair(&mut self, open: T, close: T) -> bool {
        if self.finals < 2 {
            return false;
        }
        self.finals -= 2;
        self.write(open);
        self.write(close);
        true
    }

    /// Pushes an open and its close at once (a zero-length step), without a promise: refused,
    /// counting nothing, unless two unpromised slots are free.
    #[inline]
    pub(crate) fn push_pair_quiet(&mut self, open: T, close: T) -> bool {
        if self.spare < 2 && self.refresh() < 2 {
            return false;
        }
        self.spare -= 2;
        self.write(open);
        self.write(close);
        true
    }

    /// A handle that other threads can use to give back promised final pairs.
    pub(crate) fn releaser(&self) -> Releaser<T> {
        Releaser {
            ring: self.ring.clone(),
        }
    }

    /// Whether `r` is this ring's releaser.
    pub(crate) fn owns(&self, r: &Releaser<T>) -> bool {
        Arc::ptr_eq(&self.ring, &r.ring)
    }

    /// Pushes an event that neither opens nor closes a step (a mark on the open step), without
    /// touching the reservations. Returns `false`, counting nothing, when only reserved slots
    /// are left: the caller decides what a lost mark means.
    #[inline]
    pub(crate) fn push_extra(&mut self, ev: T) -> bool {
        if self.spare < 1 && self.refresh() < 1 {
            return false;
        }
        self.write(ev);
        self.spare -= 1;
        true
    }

    /// Counts an event that could not be recorded at all.
    #[cold]
    pub(crate) fn count_drop(&self) {
        self.ring.dropped.fetch_add(1, Ordering::Relaxed);
    }

    #[inline]
    fn write(&mut self, ev: T) {
        // SAFETY: the index is in bounds: `mask` is `slots.len() - 1` and the length a power of
        // two (`ring()`), so `tail & mask < len`; unchecked saves a compare and a branch on
        // every event. Callers write only with `spare > 0` or `reserved > 0`, so a slot is free
        // (the invariant on `Producer`) and the one at `tail` is not in the consumer's readable
        // range `head..tail`; only this producer writes slots, and `T: Copy` needs no drop of
        // the old value. Exercised by every test of this module (`fifo_order_and_wraparound`
        // wraps the index several times).
        unsafe {
            let slot = self.ring.slots.get_unchecked(self.tail & self.ring.mask);
            (*slot.get()).write(ev)
        };
        self.tail = self.tail.wrapping_add(1);
        self.ring.tail.0.store(self.tail, Ordering::Release);
    }
}

/// Gives back a final pair promised by [`Producer::push_open_with_final`] from any thread: the
/// producer adds the two slots to its free ones at its next refresh.
pub(crate) struct Releaser<T: Copy + Send> {
    ring: Arc<Ring<T>>,
}

impl<T: Copy + Send> Releaser<T> {
    /// Gives back one final pair (two slots).
    pub(crate) fn release_final(&self) {
        self.ring.finals_released.fetch_add(2, Ordering::Relaxed);
    }
}

impl<T: Copy + Send> Drop for Producer<T> {
    fn drop(&mut self) {
        self.ring.closed.store(true, Ordering::Release);
    }
}

/// The reading end, owned by the aggregator. Not `Clone`.
pub struct Consumer<T: Copy + Send> {
    ring: Arc<Ring<T>>,
}

impl<T: Copy + Send> Consumer<T> {
    /// Moves every published event into `out`, oldest first; returns how many.
    pub fn drain_into(&mut self, out: &mut Vec<T>) -> usize {
        let head = self.ring.head.0.load(Ordering::Relaxed);
        let tail = self.ring.tail.0.load(Ordering::Acquire);
        let n = tail.wrapping_sub(head);
        out.reserve(n);
        for i in 0..n {
            let slot = &self.ring.slots[head.wrapping_add(i) & self.ring.mask];
            // SAFETY: indices in `head..tail` were fully written before the producer's release
            // store of `tail`, which our acquire load observed; the producer will not write them
            // again until we publish a `head` past them.
            out.push(unsafe { (*slot.get()).assume_init_read() });
        }
        self.ring.head.0.store(tail, Ordering::Release);
        n
    }

    /// Number of events waiting (a snapshot).
    pub fn pending(&self) -> usize {
        let head = self.ring.head.0.load(Ordering::Relaxed);
        self.ring.tail.0.load(Ordering::Acquire).wrapping_sub(head)
    }

    /// Ring capacity in events.
    pub fn capacity(&self) -> usize {
        self.ring.slots.len()
    }

    /// Events refused so far.
    pub fn dropped(&self) -> u64 {
        self.ring.dropped.load(Ordering::Relaxed)
    }

    /// Whether the producer is gone (its thread exited or its run ended).
    pub fn is_closed(&self) -> bool {
        self.ring.closed.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_order_and_wraparound() {
        let (mut p, mut c) = ring::<u64>(8);
        let mut out = Vec::new();
        let mut next = 0u64;
        let mut expect = 0u64;
        for _ in 0..100 {
            for _ in 0..3 {
                assert!(p.push_open(next));
                next += 1;
                p.push_close(next);
                next += 1;
            }
            out.clear();
            c.drain_into(&mut out);
            for v in &out {
                assert_eq!(*v, expect);
                expect += 1;
            }
        }
        assert_eq!(expect, 600);
        assert_eq!(c.dropped(), 0);
    }

    #[test]
    fn full_ring_refuses_opens_but_never_closes() {
        let (mut p, mut c) = ring::<u32>(8);
        // Nest as deep as possible: every accepted open keeps a slot for its close.
        let mut opened = 0;
        while p.push_open(opened) {
            opened += 1;
        }
        // 8 slots: k opens need k + k slots, so 4 opens fit.
        assert_eq!(opened, 4);
        assert_eq!(c.dropped(), 1);
        for i in 0..opened {
            p.push_close(100 + i);
        }
        let mut out = Vec::new();
        assert_eq!(c.drain_into(&mut out), 8);
        assert_eq!(&out[..4], &[0, 1, 2, 3]);
        assert_eq!(c.dropped(), 1, "closes must never be dropped");
        // After draining there is room again.
        assert!(p.push_open(7));
    }

    #[test]
    fn final_pairs_are_kept_for_their_owner_and_given_back() {
        let (mut p, mut c) = ring::<u32>(8);
        // Open with a final pair: 4 of 8 slots; a second one fits, a third does not.
        assert!(p.push_open_with_final(1));
        assert!(p.push_open_with_final(2));
        assert!(!p.push_open_with_final(3));
        // Nothing else may take the promised slots, not even a plain open.
        p.push_close(20);
        p.push_close(10);
        assert!(!p.push_open_quiet(4));
        assert!(!p.push_pair_quiet(5, 6));
        assert!(p.push_final_pair(21, 22));
        let mut out = Vec::new();
        c.drain_into(&mut out);
        assert_eq!(out, [1, 2, 20, 10, 21, 22]);
        // The second promise, given back from elsewhere, is free space again at the next
        // refresh: two opens with their closes fill all 8 slots.
        let r = p.releaser();
        assert!(p.owns(&r));
        r.release_final();
        for i in 0..4 {
            assert!(p.push_open_quiet(i), "open {i}");
        }
        assert!(!p.push_final_pair(0, 0), "no promise left");
        assert_eq!(c.dropped(), 0);
    }

    #[test]
    fn closed_flag_follows_producer_drop() {
        let (p, c) = ring::<u8>(4);
        assert!(!c.is_closed());
        drop(p);
        assert!(c.is_closed());
    }

    #[test]
    fn concurrent_producer_and_consumer_lose_nothing() {
        // Exercises the unsafe slot accesses across threads: every value that was accepted must
        // arrive exactly once and in order.
        let (mut p, mut c) = ring::<u64>(64);
        const N: u64 = 200_000;
        let writer = std::thread::spawn(move || {
            let mut accepted = Vec::with_capacity(N as usize);
            for i in 0..N {
                if p.push_open(i * 2) {
                    p.push_close(i * 2 + 1);
                    accepted.push(i);
                }
            }
            accepted
        });
        let mut got = Vec::new();
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let n = c.drain_into(&mut buf);
            got.extend_from_slice(&buf);
            if n == 0 && c.is_closed() && c.pending() == 0 {
                break;
            }
        }
        let accepted = writer.join().unwrap();
        assert_eq!(got.len(), accepted.len() * 2);
        for (k, i) in accepted.iter().enumerate() {
            assert_eq!(got[2 * k], i * 2);
            assert_eq!(got[2 * k + 1], i * 2 + 1);
        }
        assert_eq!(c.dropped() as usize + accepted.len(), N as usize);
    }
}
