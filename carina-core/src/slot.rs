//! The 16-byte form of an [`Event`] in a thread's ring.
//!
//! A step writes two events into its thread's ring, and the aggregator reads them from another
//! core: every slot's cache line moves between the two cores once per pass round the ring. With
//! 32-byte events that was one line per step; with 16-byte slots it is half a line. The model in
//! `benches/README.md` ("Event size") measured the difference on the producer's side.
//!
//! A slot is two words. The second holds the event's time modulo 2^56 in its top 56 bits and a
//! kind byte below them (a shift and an or of an immediate when written: no mask, no 64-bit
//! constant); the first depends on the kind:
//!
//! | kind | first word | what it decodes to |
//! |---|---|---|
//! | `ENTER`, `ENTER_GPU` | the name's address, with its length in the top 16 bits | `Event::Enter` |
//! | `EXIT + status * 2 + done` | items | `Event::Exit` |
//! | `GPU_MARK` | 0 | [`Event::gpu_mark`] |
//! | `PARENT_MARK` | the parent's segment id | [`Event::parent_mark`] |
//! | `EXT_ID` | an async (segment) id | nothing: it applies to the enter after it |
//! | `EXT_NAME` | the name's address (its length in the time bits) | nothing: likewise |
//!
//! A plain step's enter is one slot. A segment's enter is an `EXT_ID` slot and the enter; a
//! name whose address does not fit in 48 bits or whose length does not fit in 16 (neither
//! happens to a string literal on today's 64-bit targets, where user addresses stop below
//! 2^47 unless a program asks for more) adds an `EXT_NAME` slot. The ring publishes the slots of
//! one event together, so a drain never ends between them.
//!
//! The time is unwrapped when the slot is read: the drain reads its clock right after the
//! ring's published end, so every event it drains happened before that reading, and its full
//! time is the latest one at or before the reading (plus a margin for the TSCs of two cores,
//! which may differ by a few ticks, and an `rdtsc` executed a little early) whose low 56 bits
//! match. That is
//! exact for any event less than 2^56 ticks old at its drain (over 160 days at 5 GHz; the
//! aggregator drains every sampling interval).

use crate::event::{Event, PARENT_MARK, Status};

/// Bits of the second word that hold the time (its top bits; the kind is the low byte).
const TIME_BITS: u32 = 56;
const TIME_MASK: u64 = (1 << TIME_BITS) - 1;
const KIND_BITS: u32 = 64 - TIME_BITS;
/// Ticks (or nanoseconds) an event's time may lie after the drain's clock reading: the TSCs of
/// two cores may differ by a few ticks; 2^32 is about a second at 4 GHz, and far below 2^56.
const SKEW: u64 = 1 << 32;

const ENTER: u64 = 1;
const ENTER_GPU: u64 = 2;
const GPU_MARK: u64 = 3;
const PARENT_MARK_KIND: u64 = 4;
const EXT_ID: u64 = 5;
const EXT_NAME: u64 = 6;
/// `EXIT + status * 2 + done`: 0x10 to 0x17.
const EXIT: u64 = 0x10;

/// One ring slot. Built only by this module's constructors, so every slot a consumer reads was
/// encoded from a real event (the name-decoding `unsafe` relies on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    a: u64,
    b: u64,
}

const _: () = assert!(std::mem::size_of::<Slot>() == 16);

#[inline(always)]
const fn word(kind: u64, t: u64) -> u64 {
    t << KIND_BITS | kind
}

/// The name packed in one word (address, and the length in the top 16 bits), or `None` when
/// it does not fit: the enter then needs an `EXT_NAME` slot.
#[inline(always)]
pub(crate) fn packed_name(name: &'static str) -> Option<u64> {
    let (addr, len) = (name.as_ptr() as u64, name.len() as u64);
    if (addr >> 48) | (len >> 16) == 0 {
        Some(addr | len << 48)
    } else {
        None
    }
}

fn status_code(s: Status) -> u64 {
    match s {
        Status::Ok => 0,
        Status::Error => 1,
        Status::Panicked => 2,
        Status::Cancelled => 3,
    }
}

fn status_of(code: u64) -> Status {
    match code & 3 {
        0 => Status::Ok,
        1 => Status::Error,
        2 => Status::Panicked,
        _ => Status::Cancelled,
    }
}

impl Slot {
    /// A plain step's enter (no async id), its name packed by [`packed_name`].
    #[inline(always)]
    pub(crate) fn enter(name: u64, t: u64, gpu: bool) -> Slot {
        Slot {
            a: name,
            b: word(if gpu { ENTER_GPU } else { ENTER }, t),
        }
    }

    /// [`Event::gpu_mark`].
    pub(crate) fn gpu_mark(t: u64) -> Slot {
        Slot {
            a: 0,
            b: word(GPU_MARK, t),
        }
    }

    /// [`Event::parent_mark`].
    pub(crate) fn parent_mark(t: u64, parent: u64) -> Slot {
        Slot {
            a: parent & !Event::GPU_STEP,
            b: word(PARENT_MARK_KIND, t),
        }
    }

    /// An exit event.
    #[inline(always)]
    pub(crate) fn exit(t: u64, items: u64, status: Status, done: bool) -> Slot {
        Slot {
            a: items,
            b: word(EXIT + status_code(status) * 2 + u64::from(done), t),
        }
    }
}

/// The slots of one event, in ring order.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slots {
    buf: [Slot; 4],
    len: usize,
}

impl Slots {
    /// These slots followed by `s` (a zero-length step: its open's slots and its close).
    pub(crate) fn then(mut self, s: Slot) -> Slots {
        self.push(s);
        self
    }

    fn push(&mut self, s: Slot) {
        self.buf[self.len] = s;
        self.len += 1;
    }

    /// The slots, to push together.
    pub(crate) fn as_slice(&self) -> &[Slot] {
        &self.buf[..self.len]
    }
}

/// Encodes any event: one slot for a plain enter, an exit or a mark, two or three for an enter
/// with an async id or a name that does not pack.
pub(crate) fn encode(ev: Event) -> Slots {
    let mut out = Slots {
        buf: [Slot { a: 0, b: 0 }; 4],
        len: 0,
    };
    match ev {
        Event::Exit {
            t,
            items,
            status,
            done,
        } => out.push(Slot::exit(t, items, status, done)),
        Event::Enter { name, t, async_id } if async_id == Event::GPU_MARK && name.is_empty() => {
            out.push(Slot::gpu_mark(t))
        }
        Event::Enter { name, t, async_id } if Event::is_parent_mark(name) => {
            out.push(Slot::parent_mark(t, async_id))
        }
        Event::Enter { name, t, async_id } => {
            let id = async_id & !Event::GPU_STEP;
            if id != 0 {
                out.push(Slot {
                    a: id,
                    b: word(EXT_ID, 0),
                });
            }
            let packed = packed_name(name).unwrap_or_else(|| {
                out.push(Slot {
                    a: name.as_ptr() as u64,
                    b: word(EXT_NAME, name.len() as u64),
                });
                0
            });
            out.push(Slot::enter(packed, t, async_id & Event::GPU_STEP != 0));
        }
    }
    out
}

/// Reads slots back into events, for one drain of one ring.
pub(crate) struct Decoder {
    /// The latest time an event of this drain may have (the drain's clock reading plus
    /// [`SKEW`]), raw.
    latest: u64,
    /// An `EXT_ID` slot's id, for the enter after it.
    id: u64,
    /// An `EXT_NAME` slot's name, for the enter after it.
    name: Option<&'static str>,
}

impl Decoder {
    /// A decoder for a drain that began after the raw clock reading `now`.
    pub(crate) fn new(now: u64) -> Decoder {
        Decoder {
            latest: now.wrapping_add(SKEW),
            id: 0,
            name: None,
        }
    }

    /// The full time of a slot: the latest time at or before `latest` with its low 56 bits.
    fn time(&self, b: u64) -> u64 {
        self.latest
            .wrapping_sub(self.latest.wrapping_sub(b >> KIND_BITS) & TIME_MASK)
    }

    /// The event `s` completes, if any (an `EXT_*` slot completes none: it is kept for the
    /// enter after it).
    pub(crate) fn decode(&mut self, s: Slot) -> Option<Event> {
        let kind = s.b & ((1 << KIND_BITS) - 1);
        let t = self.time(s.b);
        match kind {
            ENTER | ENTER_GPU => {
                let name = match self.name.take() {
                    Some(n) => n,
                    None => {
                        let (addr, len) = (s.a & ((1 << 48) - 1), s.a >> 48);
                        // SAFETY: a slot is built only by this module, and an `ENTER` slot's
                        // first word only by `packed_name` (through `encode` or the recorder's
                        // inlined enter) from a `&'static str` of this process: the address
                        // and length are that string's, it lives for the whole program and
                        // is valid UTF-8. Exercised by `slots_round_trip_every_event_kind`.
                        unsafe { str_from(addr, len) }
                    }
                };
                let id = std::mem::take(&mut self.id);
                Some(Event::enter(name, t, id, kind == ENTER_GPU))
            }
            GPU_MARK => Some(Event::gpu_mark(t)),
            PARENT_MARK_KIND => Some(Event::Enter {
                name: PARENT_MARK,
                t,
                async_id: s.a,
            }),
            EXT_ID => {
                self.id = s.a;
                None
            }
            EXT_NAME => {
                // SAFETY: as for `ENTER`: an `EXT_NAME` slot is built only by `encode`, from a
                // `&'static str`'s address and length (the length in the time bits: a string
                // is shorter than 2^56 bytes on any machine this runs on).
                self.name = Some(unsafe { str_from(s.a, s.b >> KIND_BITS) });
                None
            }
            k if k & !7 == EXIT => Some(Event::Exit {
                t,
                items: s.a,
                status: status_of(k >> 1),
                done: k & 1 == 1,
            }),
            _ => None,
        }
    }
}

/// The `&'static str` at `addr` of `len` bytes.
///
/// # Safety
/// `addr` and `len` must be those of a `&'static str` of this process.
unsafe fn str_from(addr: u64, len: u64) -> &'static str {
    // SAFETY: the caller passes a live `&'static str`'s parts.
    unsafe {
        std::str::from_utf8_unchecked(std::slice::from_raw_parts(
            addr as usize as *const u8,
            len as usize,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(ev: Event, now: u64) -> Event {
        let slots = encode(ev);
        let mut d = Decoder::new(now);
        let mut out: Vec<Event> = slots
            .as_slice()
            .iter()
            .filter_map(|s| d.decode(*s))
            .collect();
        assert_eq!(out.len(), 1, "{ev:?} -> {slots:?}");
        out.pop().unwrap()
    }

    fn same(a: &Event, b: &Event) -> bool {
        match (a, b) {
            (
                Event::Enter { name, t, async_id },
                Event::Enter {
                    name: n2,
                    t: t2,
                    async_id: a2,
                },
            ) => std::ptr::eq(*name, *n2) && t == t2 && async_id == a2,
            (
                Event::Exit {
                    t,
                    items,
                    status,
                    done,
                },
                Event::Exit {
                    t: t2,
                    items: i2,
                    status: s2,
                    done: d2,
                },
            ) => t == t2 && items == i2 && status == s2 && done == d2,
            _ => false,
        }
    }

    #[test]
    fn slots_round_trip_every_event_kind() {
        static LONG: std::sync::LazyLock<&'static str> =
            std::sync::LazyLock::new(|| "n".repeat(70_000).leak());
        let t = 0x00ab_cdef_0123_4567u64 | 1 << 60;
        let events = [
            Event::enter("load", t, 0, false),
            Event::enter("train_step", t, 0, true),
            Event::enter("", t, 0, false),
            Event::enter("segment", t, 42, false),
            Event::enter("segment", t, (1 << 62) + 7, true),
            Event::enter(*LONG, t, 0, false),
            Event::enter(*LONG, t, 9, true),
            Event::gpu_mark(t),
            Event::parent_mark(t, 1234),
        ];
        for ev in events {
            let back = round_trip(ev, t + 1000);
            assert!(same(&ev, &back), "{ev:?} came back as {back:?}");
        }
        for status in [
            Status::Ok,
            Status::Error,
            Status::Panicked,
            Status::Cancelled,
        ] {
            for done in [true, false] {
                for items in [0, 1, u64::MAX] {
                    let ev = Event::Exit {
                        t,
                        items,
                        status,
                        done,
                    };
                    let back = round_trip(ev, t);
                    assert!(same(&ev, &back), "{ev:?} came back as {back:?}");
                }
            }
        }
        assert_eq!(encode(Event::enter(*LONG, t, 9, true)).as_slice().len(), 3);
        assert_eq!(encode(Event::enter("x", t, 9, true)).as_slice().len(), 2);
        assert_eq!(encode(Event::enter("x", t, 0, true)).as_slice().len(), 1);
    }

    #[test]
    fn times_unwrap_against_the_drain_clock() {
        let ev = |t| Event::Exit {
            t,
            items: 0,
            status: Status::Ok,
            done: true,
        };
        let cases = [
            // (event time, drain clock)
            (0, 0),
            (5, 1 << 40),
            (TIME_MASK, TIME_MASK + 10),
            // Across a 2^56 boundary: the low bits wrapped between the event and the drain.
            ((3 << 56) - 100, (3 << 56) + 100),
            // An event a little after the drain's reading (another core's TSC runs ahead).
            ((7 << 56) + 1000, (7 << 56) + 10),
            (u64::MAX - 5, u64::MAX),
            // Old events: up to 2^56 - 2^32 ticks before the drain.
            (1 << 60, (1 << 60) + TIME_MASK - SKEW),
        ];
        for (t, now) in cases {
            assert_eq!(
                round_trip(ev(t), now).time(),
                t,
                "t {t:#x} drained at {now:#x}"
            );
        }
    }
}
