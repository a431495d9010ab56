//! The step events a thread's ring carries and the aggregator reads: what a step's enter and
//! exit record, and how a step ended. The recorder writes them (in the ring's 16-byte form,
//! `slot`); the runtime's attributor consumes them.

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Returned normally.
    Ok,
    /// Returned an `Err`, or was marked with [`Step::mark_error`](crate::recorder::Step::mark_error).
    Error,
    /// Its guard was dropped while the thread was panicking.
    Panicked,
    /// An async step whose future was dropped before completion.
    Cancelled,
}

/// One record in a thread's ring, as the aggregator consumes it.
///
/// Public for the runtime (`carina-runtime`'s `Attributor`), benchmarks and tools that drive an
/// attributor directly; applications never build events.
#[derive(Debug, Clone, Copy)]
pub enum Event {
    /// A step (or one poll of an async step, when `async_id != 0`) starts.
    Enter {
        /// Step name; its address is the call site's key.
        name: &'static str,
        /// Time: raw TSC in a ring, nanoseconds since the run's start in the aggregator.
        t: u64,
        /// Low 63 bits: non-zero for a poll of an async step, equal across its polls. Bit 63
        /// ([`Event::GPU_STEP`]): a GPU step. [`Event::GPU_MARK`]: not a step but a mark (see
        /// [`Event::gpu_mark`]). Packed so that an event stays 32 bytes (the ring itself holds
        /// a 16-byte form, see `recorder::EventConsumer`).
        async_id: u64,
    },
    /// The innermost open step on this thread ends.
    Exit {
        /// Time, as for `Enter`.
        t: u64,
        /// Items processed.
        items: u64,
        /// How it ended.
        status: Status,
        /// False only for an async step's poll that returned `Pending`.
        done: bool,
    },
}

const _: () = assert!(std::mem::size_of::<Event>() == 32);

/// Name of a parent mark ([`Event::parent_mark`]), compared by address and length: a `static`,
/// so that every crate sees one address (a `const` string may be duplicated per crate).
pub static PARENT_MARK: &str = "\0carina:parent-mark";

impl Event {
    /// Bit of `Enter::async_id` that makes the step a GPU step: a GPU domain's energy follows
    /// the GPU steps open in an interval. Async ids stay below it.
    pub const GPU_STEP: u64 = 1 << 63;
    /// `Enter::async_id` of a GPU mark ([`Event::gpu_mark`]).
    pub const GPU_MARK: u64 = u64::MAX;

    /// A step (or, with `async_id != 0`, one segment of an async step) starts.
    #[inline]
    pub fn enter(name: &'static str, t: u64, async_id: u64, gpu: bool) -> Event {
        Event::Enter {
            name,
            t,
            async_id: (async_id & !Self::GPU_STEP) | if gpu { Self::GPU_STEP } else { 0 },
        }
    }

    /// The innermost open step on this thread is a GPU step from `t` on ([`Step::gpu`](crate::recorder::Step::gpu)). It
    /// neither opens nor closes a step.
    #[inline]
    pub fn gpu_mark(t: u64) -> Event {
        Event::Enter {
            name: "",
            t,
            async_id: Self::GPU_MARK,
        }
    }

    /// The segmented step whose first segment was just entered on this thread (the innermost
    /// open one) is a child of the segmented step `parent` (a [`new_segment_id`](crate::recorder::new_segment_id) id), not of
    /// the step open below it on this thread: a `tracing` span whose parent span is entered
    /// elsewhere (or not at all right now). It neither opens nor closes a step.
    #[inline]
    pub fn parent_mark(t: u64, parent: u64) -> Event {
        Event::Enter {
            name: PARENT_MARK,
            t,
            async_id: parent & !Self::GPU_STEP,
        }
    }

    /// Whether an `Enter` event's name is that of a parent mark.
    #[inline]
    pub fn is_parent_mark(name: &'static str) -> bool {
        std::ptr::eq(name, PARENT_MARK)
    }

    /// The event's time (raw TSC in a ring, nanoseconds since the run's start after draining).
    #[inline]
    pub fn time(&self) -> u64 {
        match self {
            Event::Enter { t, .. } | Event::Exit { t, .. } => *t,
        }
    }

    /// The event's time, to rewrite it from raw TSC to nanoseconds.
    #[inline]
    pub fn time_mut(&mut self) -> &mut u64 {
        match self {
            Event::Enter { t, .. } | Event::Exit { t, .. } => t,
        }
    }
}
