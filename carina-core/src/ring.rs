//! A bounded single-producer, single-consumer ring of step events.
//!
//! Each application thread writes one ring through a `Writer` in a thread-local (private to the
//! recorder; it took the ring's `Producer`); the aggregator thread owns the matching
//! [`Consumer`]. The producer never blocks and never allocates: when the ring is full the event
//! is refused and counted. Space for a step's exit event is *reserved* when its enter event is
//! accepted, so an accepted step can always be closed and the aggregator never sees an enter
//! without its exit (which would corrupt the thread's step stack).
//!
//! Why not `crossbeam-channel` batches: a batch that sits in a thread-local buffer is invisible
//! to the aggregator until it fills, so open steps could not be attributed energy at each tick,
//! and each hand-off would allocate. A ring that the aggregator drains directly has neither
//! problem and costs one release store per event.

use std::cell::{Cell, UnsafeCell};
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
    /// Slots promised to final pairs ([`Writer::push_open_with_final`]) that another thread
    /// gave back (the span closed there); the producer takes them back at its next refresh.
    pub(crate) finals_released: AtomicUsize,
}

// SAFETY: slots are accessed by exactly one writer (the `Writer` that consumed the ring's only
// `Producer`, which is not `Clone`; a `Writer` is neither `Send` nor `Sync`) and one
// consumer (which owns `Consumer`, not `Clone`). A slot is written by the producer only while it
// lies outside `head..tail` as last published, and read by the consumer only while inside it; the
// release store of `tail` after a write and the acquire load before a read order those accesses,
// and likewise for `head` in the other direction. `T: Copy` so no destructor ever runs on a slot.
unsafe impl<T: Copy + Send> Sync for Ring<T> {}
// SAFETY: see above; moving the ring between threads moves only plain `Copy` data.
unsafe impl<T: Copy + Send> Send for Ring<T> {}

/// Most slots a ring has: 2^22. The recorder's guards keep the open count modulo 2^23 and rely on
/// it never wrapping to 0 (`Writer::push_close_reserved`): the count of reserved closes stays
/// below the ring's capacity, so below 2^23.
pub const MAX_SLOTS: usize = 1 << 22;

/// Creates a ring with room for `capacity` events (rounded up to a power of two, at least 4, at
/// most [`MAX_SLOTS`]).
pub(crate) fn ring<T: Copy + Send>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    let cap = capacity.clamp(4, MAX_SLOTS).next_power_of_two();
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
            ring: Some(ring.clone()),
        },
        Consumer { ring },
    )
}

/// The writing end, before it is handed to a [`Writer`] ([`Writer::attach`] consumes it, so a
/// ring has one writer). Dropped unattached, it marks the ring closed. Not `Clone`.
pub(crate) struct Producer<T: Copy + Send> {
    /// `None` once attached.
    ring: Option<Arc<Ring<T>>>,
}

impl<T: Copy + Send> Drop for Producer<T> {
    fn drop(&mut self) {
        if let Some(r) = &self.ring {
            r.closed.store(true, Ordering::Release);
        }
    }
}

/// The writing state of one ring: indices and counters in plain `Cell`s, with no destructor,
/// so that the recorder can keep it in a thread-local that needs no lazy initialisation or
/// destructor registration (each access is then one `%fs`-relative load; a thread-local with a
/// destructor checks its state on every access). [`attach`](Self::attach) takes a [`Producer`]
/// and keeps its strong count of the ring as a raw pointer; [`detach`](Self::detach) marks the
/// ring closed and gives the count back. A writer dropped while attached leaks its ring and
/// never closes it (no destructor, by design): detach it first.
///
/// Its bookkeeping is two counters rather than a head index: `spare` (slots neither written nor
/// promised, as of the last look at `head`) is what an open checks, and `reserved` is what a
/// close checks, so each event pays one compare. Invariants: `spare + reserved + finals` never
/// exceeds the free slots (it equals them as of the last look at `head`), so a close with
/// `reserved > 0` always has a slot; and all three are 0 while detached, so no write reaches a
/// ring that is not attached (every write path needs one of them non-zero, and `refresh` of a
/// detached writer finds nothing).
pub(crate) struct Writer<T: Copy + Send> {
    /// The attached ring, from `Arc::into_raw` (a strong count this writer owns); null while
    /// detached.
    ring: Cell<*const Ring<T>>,
    /// The attached ring's slots and their index mask, copied here so that a write's address
    /// depends on one load of this thread's state, not on a load through `ring` first.
    slots: Cell<*const UnsafeCell<MaybeUninit<T>>>,
    mask: Cell<usize>,
    /// Local copy of `ring.tail` (we are its only writer).
    tail: Cell<usize>,
    /// Free slots not promised to a close, as of the last look at `ring.head`; refreshed only
    /// when it looks too small.
    spare: Cell<usize>,
    /// Slots promised to exit events of accepted, still-open steps.
    reserved: Cell<usize>,
    /// Slots promised to final pairs ([`push_open_with_final`](Self::push_open_with_final)),
    /// two each; kept apart from `reserved`, which counts open steps.
    finals: Cell<usize>,
}

impl<T: Copy + Send> Default for Writer<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Copy + Send> Writer<T> {
    /// A detached writer: every push is refused until [`attach`](Self::attach).
    pub(crate) const fn new() -> Self {
        Writer {
            ring: Cell::new(std::ptr::null()),
            slots: Cell::new(std::ptr::null()),
            mask: Cell::new(0),
            tail: Cell::new(0),
            spare: Cell::new(0),
            reserved: Cell::new(0),
            finals: Cell::new(0),
        }
    }

    /// Makes this writer the one writing end of `p`'s ring (detaching, and so closing, any
    /// ring it had first).
    pub(crate) fn attach(&self, mut p: Producer<T>) {
        self.detach();
        let Some(ring) = p.ring.take() else {
            return;
        };
        let tail = ring.tail.0.load(Ordering::Relaxed);
        self.slots.set(ring.slots.as_ptr());
        self.mask.set(ring.mask);
        self.ring.set(Arc::into_raw(ring));
        self.tail.set(tail);
        self.refresh();
    }

    /// Whether a ring is attached.
    #[cfg(test)]
    pub(crate) fn is_attached(&self) -> bool {
        !self.ring.get().is_null()
    }

    /// Marks the attached ring closed (its producer is gone: the consumer retires it once
    /// drained) and gives back the strong count; pushes are refused from now on.
    pub(crate) fn detach(&self) {
        let ring = self.ring.replace(std::ptr::null());
        self.slots.set(std::ptr::null());
        self.mask.set(0);
        self.spare.set(0);
        self.reserved.set(0);
        self.finals.set(0);
        if !ring.is_null() {
            // SAFETY: a non-null `ring` came from `Arc::into_raw` in `attach`, and this is the
            // only place that gives that strong count back (the field is null from here on).
            let ring = unsafe { Arc::from_raw(ring) };
            ring.closed.store(true, Ordering::Release);
        }
    }

    /// The attached ring, while attached.
    #[inline(always)]
    fn ring(&self) -> Option<&Ring<T>> {
        // SAFETY: non-null only between `attach` and `detach`, during which this writer owns a
        // strong count of the ring, so it is alive for as long as `&self` is borrowed here
        // (`detach` needs `&self` too, but runs on this thread only, never during a borrow
        // returned here: every user of this reference finishes before returning).
        unsafe { self.ring.get().as_ref() }
    }

    /// Recomputes `spare` from the consumer's `head`; returns it. Out of line: it runs once
    /// per half a ring of events, not per event.
    #[cold]
    #[inline(never)]
    fn refresh(&self) -> usize {
        let Some(ring) = self.ring() else {
            return 0;
        };
        if ring.finals_released.load(Ordering::Relaxed) != 0 {
            let back = ring.finals_released.swap(0, Ordering::Relaxed);
            self.finals.set(self.finals.get().saturating_sub(back));
        }
        let head = ring.head.0.load(Ordering::Acquire);
        let free = ring.slots.len() - self.tail.get().wrapping_sub(head);
        let spare = free.saturating_sub(self.reserved.get() + self.finals.get());
        self.spare.set(spare);
        spare
    }

    /// Closes promised and not yet pushed: the steps (and segments) accepted and still open.
    #[inline(always)]
    pub(crate) fn open_closes(&self) -> usize {
        self.reserved.get()
    }

    /// Pushes an opening event and reserves a slot for its closing event.
    ///
    /// Returns `false` (and counts a drop) when there is no room for both. (The recorder's
    /// opens are quiet and count their own refusals; the tests drive this one.)
    #[cfg(test)]
    pub(crate) fn push_open(&self, ev: T) -> bool {
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
    #[inline(always)]
    pub(crate) fn push_close(&self, ev: T) {
        // A close without an open (a caller that broke the pairing, e.g. one segment token
        // closed twice) is refused rather than allowed to overwrite unread events.
        let reserved = self.reserved.get();
        if reserved == 0 {
            self.count_drop();
            return;
        }
        self.write(ev);
        self.reserved.set(reserved - 1);
    }

    /// [`push_close`](Self::push_close) without its check: for a caller that has just seen
    /// [`open_closes`](Self::open_closes) non-zero.
    ///
    /// # Safety
    /// `self.open_closes() > 0`: a slot is reserved. Otherwise the write could land on an event
    /// the consumer has not read yet, while it reads it.
    #[inline(always)]
    pub(crate) unsafe fn push_close_reserved(&self, ev: T) {
        debug_assert!(self.reserved.get() > 0, "a close with nothing reserved");
        self.write(ev);
        self.reserved.set(self.reserved.get().wrapping_sub(1));
    }

    /// Like [`push_open`](Self::push_open), but a refusal is not counted: the caller counts the
    /// step another way (folded totals) or calls [`count_drop`](Self::count_drop).
    #[inline(always)]
    pub(crate) fn push_open_quiet(&self, ev: T) -> bool {
        let mut spare = self.spare.get();
        if spare < 2 {
            spare = self.refresh();
            if spare < 2 {
                return false;
            }
        }
        self.write_and_prefetch(ev);
        self.spare.set(spare - 2);
        self.reserved.set(self.reserved.get() + 1);
        true
    }

    /// [`push_open_quiet`](Self::push_open_quiet) of an opening event that takes several slots
    /// (`slots`, published together: the consumer never sees a part of them), reserving one
    /// slot for its close.
    #[inline]
    pub(crate) fn push_open_slots(&self, slots: &[T]) -> bool {
        let need = slots.len() + 1;
        if self.spare.get() < need && self.refresh() < need {
            return false;
        }
        self.write_all(slots);
        self.spare.set(self.spare.get() - need);
        self.reserved.set(self.reserved.get() + 1);
        true
    }

    /// Like [`push_open_slots`](Self::push_open_slots), and also promises `final_len` slots to
    /// a *final pair* (a zero-length open and close, [`push_final`](Self::push_final)) that
    /// will come later, after this open's close: the last segment of a `tracing` span, pushed
    /// at its close. Refused, counting nothing, unless all the slots are free.
    #[inline]
    pub(crate) fn push_open_with_final(&self, slots: &[T], final_len: usize) -> bool {
        let need = slots.len() + 1 + final_len;
        if self.spare.get() < need && self.refresh() < need {
            return false;
        }
        self.write_all(slots);
        self.spare.set(self.spare.get() - need);
        self.reserved.set(self.reserved.get() + 1);
        self.finals.set(self.finals.get() + final_len);
        true
    }

    /// Whether `n` unpromised slots are free.
    #[inline]
    pub(crate) fn has_room(&self, n: usize) -> bool {
        self.spare.get() >= n || self.refresh() >= n
    }

    /// Pushes a final pair (its open's slots and its close, `slots`) promised by
    /// [`push_open_with_final`](Self::push_open_with_final) with as many slots. Returns
    /// `false`, pushing nothing, when no such promise is left (a caller that broke the
    /// pairing, or a promise given back with [`Releaser::release_final`]).
    #[inline]
    pub(crate) fn push_final(&self, slots: &[T]) -> bool {
        if self.finals.get() < slots.len() {
            return false;
        }
        self.finals.set(self.finals.get() - slots.len());
        self.write_all(slots);
        true
    }

    /// Pushes an open and its close at once (a zero-length step, `slots`), without a promise:
    /// refused, counting nothing, unless that many unpromised slots are free.
    #[inline]
    pub(crate) fn push_pair_quiet(&self, slots: &[T]) -> bool {
        if self.spare.get() < slots.len() && self.refresh() < slots.len() {
            return false;
        }
        self.spare.set(self.spare.get() - slots.len());
        self.write_all(slots);
        true
    }

    /// A handle that other threads can use to give back promised final pairs; `None` while
    /// detached.
    pub(crate) fn releaser(&self) -> Option<Releaser<T>> {
        let ring = self.ring.get();
        if ring.is_null() {
            return None;
        }
        // SAFETY: non-null, so this writer holds a strong count (see `ring`): the ring is alive,
        // and the count we add here is owned by the new `Arc`.
        let ring = unsafe {
            Arc::increment_strong_count(ring);
            Arc::from_raw(ring)
        };
        Some(Releaser { ring })
    }

    /// Whether `r` is the attached ring's releaser.
    pub(crate) fn owns(&self, r: &Releaser<T>) -> bool {
        std::ptr::eq(self.ring.get(), Arc::as_ptr(&r.ring))
    }

    /// Pushes an event that neither opens nor closes a step (a mark on the open step), without
    /// touching the reservations. Returns `false`, counting nothing, when only reserved slots
    /// are left: the caller decides what a lost mark means.
    #[inline]
    pub(crate) fn push_extra(&self, ev: T) -> bool {
        if self.spare.get() < 1 && self.refresh() < 1 {
            return false;
        }
        self.write(ev);
        self.spare.set(self.spare.get() - 1);
        true
    }

    /// Counts an event that could not be recorded at all (nowhere to count it while detached).
    #[cold]
    #[inline(never)]
    pub(crate) fn count_drop(&self) {
        if let Some(ring) = self.ring() {
            ring.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Writes `slots` from `tail` on and publishes them at once (one release store), so the
    /// consumer sees all of them or none. Same contract as [`write`](Self::write), for each.
    #[inline]
    fn write_all(&self, slots: &[T]) {
        let Some((last, first)) = slots.split_last() else {
            return;
        };
        for ev in first {
            self.write_unpublished(*ev);
        }
        self.write(*last);
    }

    /// Writes `ev` at `tail` and publishes it. Callers write only with `spare`, `reserved` or
    /// `finals` non-zero, which implies an attached ring with a free slot there.
    #[inline(always)]
    fn write(&self, ev: T) {
        let (ring, tail) = self.write_unpublished(ev);
        ring.tail.0.store(tail, Ordering::Release);
    }

    /// [`write`](Self::write), and a [`prefetch_for_write`] of the slot [`PREFETCH_AHEAD`]
    /// further on. Only opens call it: a close follows its open within a step, and with it on
    /// every event the exit grew past what the compiler inlines into a guard's drop.
    #[inline(always)]
    fn write_and_prefetch(&self, ev: T) {
        let (ring, tail) = self.write_unpublished(ev);
        prefetch_for_write(
            self.slots.get(),
            tail.wrapping_add(PREFETCH_AHEAD) & self.mask.get(),
        );
        ring.tail.0.store(tail, Ordering::Release);
    }

    /// [`write`](Self::write) without the release store of `tail`: the slot is not visible to
    /// the consumer until a later `write` publishes it. Returns the ring and the new tail.
    #[inline(always)]
    fn write_unpublished(&self, ev: T) -> (&Ring<T>, usize) {
        debug_assert!(
            !self.ring.get().is_null(),
            "write to a detached ring writer"
        );
        // SAFETY: callers write only with `spare`, `reserved` or `finals` non-zero, and all
        // three are 0 while detached (`detach` zeroes them, `attach` is the only place that makes
        // them non-zero, through `refresh` of the ring it just set), so `ring` is non-null here
        // and this writer holds a strong count of it (see `ring()`). Saves a compare and a branch
        // per event; `closed_flag_follows_producer_drop_or_writer_detach` pushes to a detached
        // writer through every entry point.
        let ring = unsafe { &*self.ring.get() };
        let tail = self.tail.get();
        // SAFETY: the index is in bounds: `self.slots` and `self.mask` are the attached ring's
        // slice start and `slots.len() - 1` (set together with `ring` in `attach`, and the ring
        // is alive, above), the length a power of two (`ring()`), so `tail & mask < len`;
        // unchecked saves a compare and a branch on every event. Callers write only with `spare > 0`, `reserved > 0` or `finals > 0`, so
        // a slot is free (the invariant on `Writer`) and the one at `tail` is not in the
        // consumer's readable range `head..tail`; only this writer writes slots of this ring
        // (one writer per ring: the recorder attaches a ring to one thread's writer only), and
        // `T: Copy` needs no drop of the old value. Exercised by every test of this module
        // (`fifo_order_and_wraparound` wraps the index several times).
        unsafe {
            let slot = &*self.slots.get().add(tail & self.mask.get());
            (*slot.get()).write(ev)
        };
        let tail = tail.wrapping_add(1);
        self.tail.set(tail);
        (ring, tail)
    }
}

/// Slots ahead of the tail that a write asks the CPU to fetch for writing: 32 is 8 cache lines
/// of 16-byte slots, several hundred nanoseconds ahead at a step every 20-30 ns. The line a
/// writer reaches was last read by the aggregator on another core; fetched only at the store,
/// it stalls the writer for the transfer. A stand-alone model of the ring (`benches/README.md`,
/// "Prefetch") measured the writer's cost over two TSC reads 1.07x -> 1.01-1.03x with it.
const PREFETCH_AHEAD: usize = 32;

/// Asks the CPU to bring slot `index` of `slots` into this core's cache for writing
/// (`prefetchw`; a no-op elsewhere than x86-64). A hint: it never faults and changes no value.
#[inline(always)]
// `nomem`: a prefetch reads and writes no memory as far as the program can tell, and claiming
// less would make the compiler write back and reload the writer's state around it.
#[allow(clippy::pointers_in_nomem_asm_block)]
fn prefetch_for_write<T>(slots: *const UnsafeCell<MaybeUninit<T>>, index: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetchw` only hints the cache: it reads no value, writes none, never faults
    // (not even on an unmapped address) and touches no register but its address operand, and
    // the address is in bounds anyway (`index` is masked by the caller). On x86-64 CPUs
    // without the PRFCHW feature the opcode executes as a no-op. Exercised by every write
    // (every test of this module, and every recorded step).
    unsafe {
        std::arch::asm!(
            "prefetchw [{0}]",
            in(reg) slots.wrapping_add(index),
            options(nostack, preserves_flags, nomem)
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (slots, index);
}

/// Gives back a final pair promised by [`Writer::push_open_with_final`] from any thread: the
/// writer adds its slots to its free ones at its next refresh.
pub(crate) struct Releaser<T: Copy + Send> {
    ring: Arc<Ring<T>>,
}

impl<T: Copy + Send> Releaser<T> {
    /// Gives back one final pair of `slots` slots (as many as it was promised).
    pub(crate) fn release_final(&self, slots: usize) {
        self.ring
            .finals_released
            .fetch_add(slots, Ordering::Relaxed);
    }
}

/// The reading end, owned by the aggregator. Not `Clone`.
pub struct Consumer<T: Copy + Send> {
    ring: Arc<Ring<T>>,
}

impl<T: Copy + Send> Consumer<T> {
    /// Moves every published event into `out`, oldest first; returns how many.
    pub fn drain_into(&mut self, out: &mut Vec<T>) -> usize {
        out.reserve(self.pending());
        self.drain_with(|| (), |(), ev| out.push(ev))
    }

    /// Hands every published event to `f`, oldest first, and frees their slots; returns how
    /// many. `start` runs once, right after the published end is read and before any event is
    /// handed over; what it returns is `f`'s state (the recorder reads the clock there, so that
    /// every event drained is older than that reading).
    pub fn drain_with<S>(
        &mut self,
        start: impl FnOnce() -> S,
        mut f: impl FnMut(&mut S, T),
    ) -> usize {
        let head = self.ring.head.0.load(Ordering::Relaxed);
        let tail = self.ring.tail.0.load(Ordering::Acquire);
        let mut state = start();
        let n = tail.wrapping_sub(head);
        for i in 0..n {
            let slot = &self.ring.slots[head.wrapping_add(i) & self.ring.mask];
            // SAFETY: indices in `head..tail` were fully written before the producer's release
            // store of `tail`, which our acquire load observed; the producer will not write them
            // again until we publish a `head` past them.
            f(&mut state, unsafe { (*slot.get()).assume_init_read() });
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

    /// A writer attached to a new ring of `cap` slots, and its consumer.
    fn attached<T: Copy + Send>(cap: usize) -> (Writer<T>, Consumer<T>) {
        let (p, c) = ring::<T>(cap);
        let w = Writer::new();
        w.attach(p);
        (w, c)
    }

    #[test]
    fn fifo_order_and_wraparound() {
        let (p, mut c) = attached::<u64>(8);
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
        p.detach();
    }

    #[test]
    fn full_ring_refuses_opens_but_never_closes() {
        let (p, mut c) = attached::<u32>(8);
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
        p.detach();
    }

    #[test]
    fn drain_with_starts_once_after_reading_the_end_and_threads_its_state() {
        let (p, mut c) = attached::<u32>(8);
        assert!(p.push_open(1));
        p.push_close(2);
        let mut starts = 0;
        let mut seen = Vec::new();
        let n = c.drain_with(
            || {
                starts += 1;
                // Written after the end was read: not part of this drain.
                assert!(p.push_open(3));
                10
            },
            |base, ev| {
                seen.push(*base + ev);
                *base += 100;
            },
        );
        assert_eq!((n, starts), (2, 1));
        assert_eq!(seen, [11, 112]);
        p.push_close(4);
        let mut out = Vec::new();
        assert_eq!(c.drain_into(&mut out), 2);
        assert_eq!(out, [3, 4]);
        p.detach();
    }

    #[test]
    fn a_ring_never_exceeds_max_slots() {
        let (_p, c) = ring::<u8>(usize::MAX / 2);
        assert_eq!(c.capacity(), MAX_SLOTS);
        let (_p, c) = ring::<u8>(0);
        assert_eq!(c.capacity(), 4);
    }

    #[test]
    fn multi_slot_opens_reserve_one_close_and_are_seen_whole() {
        let (p, mut c) = attached::<u32>(8);
        assert!(p.push_open_slots(&[1, 2]));
        assert!(p.push_open_slots(&[3, 4, 5]));
        // 3 + 4 of 8 slots taken: a one-slot open needs two.
        assert!(!p.push_open_slots(&[6]));
        p.push_close(50);
        p.push_close(20);
        let mut out = Vec::new();
        assert_eq!(c.drain_into(&mut out), 7);
        assert_eq!(out, [1, 2, 3, 4, 5, 50, 20]);
        assert!(p.push_open_slots(&[6]));
        p.detach();
    }

    #[test]
    fn a_multi_slot_open_is_never_seen_in_part_across_threads() {
        // Opens of two slots (3i, 3i + 1) and their close (3i + 2): a drain may end after an
        // open or a close, never between the open's two slots.
        let (prod, mut c) = ring::<u64>(32);
        const N: u64 = 100_000;
        let writer = std::thread::spawn(move || {
            let p = Writer::new();
            p.attach(prod);
            let mut accepted = 0u64;
            for i in 0..N {
                if p.push_open_slots(&[3 * i, 3 * i + 1]) {
                    p.push_close(3 * i + 2);
                    accepted += 1;
                }
            }
            p.detach();
            accepted
        });
        let mut buf = Vec::new();
        let mut seen = 0u64;
        loop {
            buf.clear();
            let n = c.drain_into(&mut buf);
            if let Some(last) = buf.last() {
                assert_ne!(last % 3, 0, "a drain ended inside an open");
            }
            seen += n as u64;
            if n == 0 && c.is_closed() && c.pending() == 0 {
                break;
            }
        }
        let accepted = writer.join().unwrap();
        assert!(accepted > 0);
        assert_eq!(seen, 3 * accepted);
    }

    #[test]
    fn final_pairs_are_kept_for_their_owner_and_given_back() {
        let (p, mut c) = attached::<u32>(8);
        // Open with a final pair: 4 of 8 slots; a second one fits, a third does not.
        assert!(p.push_open_with_final(&[1], 2));
        assert!(p.push_open_with_final(&[2], 2));
        assert!(!p.push_open_with_final(&[3], 2));
        // Nothing else may take the promised slots, not even a plain open.
        p.push_close(20);
        p.push_close(10);
        assert!(!p.push_open_quiet(4));
        assert!(!p.push_pair_quiet(&[5, 6]));
        assert!(p.push_final(&[21, 22]));
        let mut out = Vec::new();
        c.drain_into(&mut out);
        assert_eq!(out, [1, 2, 20, 10, 21, 22]);
        // The second promise, given back from elsewhere, is free space again at the next
        // refresh: two opens with their closes fill all 8 slots.
        let r = p.releaser().expect("attached");
        assert!(p.owns(&r));
        r.release_final(2);
        for i in 0..4 {
            assert!(p.push_open_quiet(i), "open {i}");
        }
        assert!(!p.push_final(&[0, 0]), "no promise left");
        assert_eq!(c.dropped(), 0);
        p.detach();
    }

    #[test]
    fn closed_flag_follows_producer_drop_or_writer_detach() {
        let (p, c) = ring::<u8>(4);
        assert!(!c.is_closed());
        drop(p);
        assert!(c.is_closed());

        // Attached, the producer's drop is the writer's detach; the ring's strong count goes
        // back with it (the consumer is then its only owner).
        let (p, mut c) = ring::<u8>(4);
        let w = Writer::new();
        w.attach(p);
        assert!(w.is_attached() && !c.is_closed());
        assert_eq!(Arc::strong_count(&c.ring), 2);
        assert!(w.push_open(1));
        w.push_close(2);
        w.detach();
        assert!(c.is_closed() && !w.is_attached());
        assert_eq!(Arc::strong_count(&c.ring), 1);
        let mut out = Vec::new();
        assert_eq!(
            c.drain_into(&mut out),
            2,
            "events written before detach are kept"
        );
        // Detached: nothing is written, nothing is counted, nothing breaks.
        assert!(!w.push_open(3));
        w.push_close(4);
        assert!(!w.push_extra(5));
        assert!(!w.push_pair_quiet(&[6, 7]));
        assert!(!w.push_open_slots(&[6, 7]));
        assert!(!w.push_open_with_final(&[6, 7], 3));
        assert!(w.releaser().is_none());
        assert_eq!(c.drain_into(&mut out), 0);
        assert_eq!(c.dropped(), 0);
        // Re-attached to a new ring, a writer starts afresh; the old one stays closed.
        let (p2, mut c2) = ring::<u8>(4);
        w.attach(p2);
        assert!(w.push_open(8));
        w.push_close(9);
        w.detach();
        out.clear();
        assert_eq!(c2.drain_into(&mut out), 2);
        assert_eq!(out, [8, 9]);
    }

    #[test]
    fn concurrent_producer_and_consumer_lose_nothing() {
        // Exercises the unsafe slot accesses across threads: every value that was accepted must
        // arrive exactly once and in order.
        let (prod, mut c) = ring::<u64>(64);
        const N: u64 = 200_000;
        let writer = std::thread::spawn(move || {
            let p = Writer::new();
            p.attach(prod);
            let mut accepted = Vec::with_capacity(N as usize);
            for i in 0..N {
                if p.push_open(i * 2) {
                    p.push_close(i * 2 + 1);
                    accepted.push(i);
                }
            }
            p.detach();
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
