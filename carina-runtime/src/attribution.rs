//! Turns step events into step records and attributes energy to them.
//!
//! This is pure bookkeeping with no clock and no I/O: the session loop feeds it events (times in
//! nanoseconds since the run's start) and closes sampling intervals with the interval's energy.
//! Tests drive it directly with synthetic events and known energies.
//!
//! # Attribution (see `docs/ENERGY.md`)
//! Each thread has a *cursor*: the time up to which its wall time has been credited. Every event
//! advances the cursor, crediting the elapsed time to the innermost open step (its *self* time)
//! and to the thread's *busy* time. When an interval of length `L` closes with energy `E`, each
//! thread gets an allotment: `E x cpu_thread / cpu_process` when CPU times are known
//! ([`Weights::Cpu`]), and the steps open on it get `allotment x busy / L` (wall-time overlap
//! within the thread); the rest of the allotment, and the CPU time of threads that never step,
//! is `unattributed`. Without CPU times ([`Weights::Wall`]) the energy is spread evenly over all
//! busy thread-time. A child's inclusive energy flows into its parent when the child ends, so
//! `energy_j` is inclusive and `self_energy_j` is exclusive, and `sum(self) + unattributed =
//! total` holds by construction.
//!
//! Energy travels as a small fixed array of channels ([`Energy`]): the total, the low and high
//! bounds of an estimate's band, and one channel per energy domain.

use crate::histogram::Histogram;
use crate::record::{
    AttrsSummary, DomainEnergy, MAX_ATTR_GROUPS, StepAttrs, StepRecord, StepStatus, StepSummary,
};
use carina_core::recorder::{Event, Status};
use carina_core::units::{GramsCo2e, Joules, Seconds};
use std::collections::HashMap;

pub use crate::record::StepDetail;

type NameId = usize;

/// Number of energy channels carried per step.
pub const CHANNELS: usize = 12;
const TOTAL: usize = 0;
const LOW: usize = 1;
const HIGH: usize = 2;
const CO2: usize = 3;
/// Index of the first per-domain channel; domains beyond the last channel share it (`other`).
pub const FIRST_DOMAIN: usize = 4;
/// Number of per-domain channels.
pub const DOMAIN_CHANNELS: usize = CHANNELS - FIRST_DOMAIN;

/// The energy and emissions of an interval or a step, one value per channel: the total, the low
/// and high bounds of an estimate's band, the emissions (each interval's energy times that
/// interval's grid intensity, so a time-varying intensity is applied per interval) and one value
/// per energy domain. Values go in and out typed; inside, the channels are one flat array so
/// that settling an interval is a few multiply-adds per open step.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Energy([f64; CHANNELS]);

impl Energy {
    /// No energy, no emissions.
    pub const ZERO: Energy = Energy([0.0; CHANNELS]);

    /// Energy with only a total (no band, no domains, no emissions).
    pub fn total_only(total: Joules) -> Energy {
        let mut e = Energy::ZERO;
        e.0[TOTAL] = total.0;
        e
    }
    /// The total energy.
    pub fn total(&self) -> Joules {
        Joules(self.0[TOTAL])
    }
    /// The low bound of an estimate's band (equal to the total for a measured source).
    pub fn low(&self) -> Joules {
        Joules(self.0[LOW])
    }
    /// The high bound of an estimate's band.
    pub fn high(&self) -> Joules {
        Joules(self.0[HIGH])
    }
    /// The emissions.
    pub fn co2e(&self) -> GramsCo2e {
        GramsCo2e(self.0[CO2])
    }
    /// Energy of domain channel `i` (`0..DOMAIN_CHANNELS`).
    pub fn domain(&self, i: usize) -> Joules {
        Joules(self.0[FIRST_DOMAIN + i.min(DOMAIN_CHANNELS - 1)])
    }
    /// Adds to the total.
    pub fn add_total(&mut self, e: Joules) {
        self.0[TOTAL] += e.0;
    }
    /// Adds to the band.
    pub fn add_band(&mut self, low: Joules, high: Joules) {
        self.0[LOW] += low.0;
        self.0[HIGH] += high.0;
    }
    /// Adds to domain channel `i`; a domain past the last channel adds into the last one.
    pub fn add_domain(&mut self, i: usize, e: Joules) {
        self.0[FIRST_DOMAIN + i.min(DOMAIN_CHANNELS - 1)] += e.0;
    }
    /// Sets the emissions.
    pub fn set_co2e(&mut self, g: GramsCo2e) {
        self.0[CO2] = g.0;
    }
    /// Adds every channel of `x`.
    pub fn add(&mut self, x: &Energy) {
        for (a, b) in self.0.iter_mut().zip(&x.0) {
            *a += b;
        }
    }
    /// Adds `density x ns`: a thread's or step's share of an interval.
    fn add_scaled(&mut self, d: &Density, ns: u64) {
        let t = ns as f64;
        for (a, x) in self.0.iter_mut().zip(d) {
            *a += x * t;
        }
    }
}

/// Per-channel energy per busy nanosecond of one thread in one interval (J/ns, g/ns): internal
/// to settling, never stored.
type Density = [f64; CHANNELS];

/// An interval's energy in the run's scope, in two parts that are split across steps by
/// different rules: the CPU part (CPU, DRAM, memory, psys, machine domains) by thread CPU time
/// and wall time; the GPU part (`gpu-N`, the model's `gpu`) by wall-time overlap with the GPU
/// steps open in the interval ([`Attributor::close_interval`]). Each part carries its own total,
/// band, emissions and domain channels; their sum is the interval's energy.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct IntervalEnergy {
    /// Energy of the CPU-side domains.
    pub cpu: Energy,
    /// Energy of the GPU domains.
    pub gpu: Energy,
}

impl IntervalEnergy {
    /// No energy.
    pub const ZERO: IntervalEnergy = IntervalEnergy {
        cpu: Energy::ZERO,
        gpu: Energy::ZERO,
    };

    /// Both parts added channel by channel.
    pub fn sum(&self) -> Energy {
        let mut e = self.cpu;
        e.add(&self.gpu);
        e
    }
}

impl From<Energy> for IntervalEnergy {
    /// All of it on the CPU side.
    fn from(cpu: Energy) -> Self {
        IntervalEnergy {
            cpu,
            gpu: Energy::ZERO,
        }
    }
}

/// How an interval's GPU energy is split: over the GPU steps' overlap when some GPU step was
/// open, else over every open step's wall time.
#[derive(Clone, Copy)]
struct GpuSplit {
    density: Density,
    /// True: weights are the GPU-busy nanoseconds; false: all busy nanoseconds.
    by_gpu_steps: bool,
}

impl GpuSplit {
    /// The weights of a frame (self, inclusive) under this split.
    #[inline]
    fn weights(&self, f: &Frame) -> (u64, u64) {
        if self.by_gpu_steps {
            (f.self_gns, f.incl_gns)
        } else {
            (f.self_ns, f.incl_ns)
        }
    }
}

const _: () = assert!(DOMAIN_CHANNELS == crate::record::MAX_DOMAINS);

/// How an interval's energy is split across threads.
#[derive(Debug, Clone, PartialEq)]
pub enum Weights {
    /// Evenly over all busy thread-time (no CPU clocks available).
    Wall,
    /// By CPU time consumed in the interval, nanoseconds.
    Cpu {
        /// CPU time of the whole process (every thread, registered or not).
        process_ns: u64,
        /// CPU time of each registered thread, by thread index.
        threads: Vec<(u32, u64)>,
        /// CPU time of the process's threads that never marked a step, Carina's own
        /// aggregator excluded (its cost is reported apart).
        unmarked_ns: u64,
    },
}

#[derive(Debug, Clone)]
struct Frame {
    id: u64,
    parent: Option<u64>,
    name: NameId,
    start: u64,
    async_id: u64,
    /// A GPU step (from its enter event or a later mark).
    gpu: bool,
    /// Settled energy, joules.
    self_j: f64,
    incl: Energy,
    /// Time in the current (unsettled) interval, nanoseconds.
    self_ns: u64,
    incl_ns: u64,
    /// Of `self_ns` and `incl_ns`, the time a GPU step was open on the thread (this frame or an
    /// enclosing one): the weights of the GPU energy.
    self_gns: u64,
    incl_gns: u64,
    child_wall: u64,
    /// A segment of a step whose parent is not on this thread's stack (a parent mark): its
    /// energy goes to that parent's step, not to the frame below it.
    remote: bool,
}

impl Frame {
    /// A frame with no identity and no time, to fill with struct update syntax.
    const EMPTY: Frame = Frame {
        id: 0,
        parent: None,
        name: 0,
        start: 0,
        async_id: 0,
        gpu: false,
        self_j: 0.0,
        incl: Energy::ZERO,
        self_ns: 0,
        incl_ns: 0,
        self_gns: 0,
        incl_gns: 0,
        child_wall: 0,
        remote: false,
    };

    /// Settles the unsettled time of the interval: CPU energy by `cpu` density over all busy
    /// time, GPU energy by `gpu`'s weights.
    #[inline]
    fn settle(&mut self, cpu: &Density, gpu: Option<&GpuSplit>) {
        self.self_j += cpu[TOTAL] * self.self_ns as f64;
        self.incl.add_scaled(cpu, self.incl_ns);
        if let Some(g) = gpu {
            let (s, i) = g.weights(self);
            self.self_j += g.density[TOTAL] * s as f64;
            self.incl.add_scaled(&g.density, i);
        }
        self.self_ns = 0;
        self.incl_ns = 0;
        self.self_gns = 0;
        self.incl_gns = 0;
    }
}

#[derive(Debug)]
struct Finished {
    frame: Frame,
    end: u64,
    items: u64,
    status: Status,
    unfinished: bool,
}

#[derive(Debug, Default)]
struct ThreadState {
    stack: Vec<Frame>,
    cursor: u64,
    busy: u64,
    /// Of `busy`, the time a GPU step was open on the thread.
    gpu_busy: u64,
    /// GPU steps on the stack.
    gpu_depth: u32,
    finished: Vec<Finished>,
    /// Unsettled time of ended steps kept only in summaries, indexed by name: a frame holding
    /// only the four time fields.
    folded: Vec<Frame>,
    closed: bool,
}

struct NameAgg {
    count: u64,
    wall: u64,
    self_wall: u64,
    items: u64,
    self_j: f64,
    incl: Energy,
    errors: u64,
    panics: u64,
    hist: Histogram,
    gpu: bool,
    /// Per combination of attributes: its instances (at most [`MAX_ATTR_GROUPS`]).
    by_attrs: std::collections::BTreeMap<StepAttrs, AttrAgg>,
    /// Instances with attributes beyond [`MAX_ATTR_GROUPS`] combinations.
    attrs_folded: u64,
}

/// The instances of one name with one combination of attributes.
#[derive(Default)]
struct AttrAgg {
    count: u64,
    wall: u64,
    items: u64,
    self_j: f64,
    incl: Energy,
    errors: u64,
}

impl NameAgg {
    fn new() -> Self {
        NameAgg {
            gpu: false,
            count: 0,
            wall: 0,
            self_wall: 0,
            items: 0,
            self_j: 0.0,
            incl: Energy::ZERO,
            errors: 0,
            panics: 0,
            hist: Histogram::new(),
            by_attrs: std::collections::BTreeMap::new(),
            attrs_folded: 0,
        }
    }
}

/// Where an async step's inclusive energy goes beyond its own segments' frames.
#[derive(Debug, Clone, Copy)]
enum Link {
    /// A root step.
    None,
    /// The async step with this segment id.
    Async(u64),
    /// A plain step, by thread and step id (found while it is open on that thread's stack).
    Frame(u32, u64),
}

/// An async step assembled from its poll segments.
struct AsyncAcc {
    id: u64,
    parent: Option<u64>,
    /// The parent step, to pass on energy that reached this step through no frame (from
    /// descendants on other threads).
    link: Link,
    /// Made by a child's parent mark before this step's first segment was seen.
    placeholder: bool,
    /// Value of `Attributor::closes` when `done` was set.
    done_close: u64,
    /// A segment of it was still open when the run ended.
    unfinished: bool,
    /// In `Attributor::ready` (a flag, not a search of that list: it holds every async step
    /// completed in an interval, thousands for a loop of spans).
    queued: bool,
    name: NameId,
    thread: u32,
    start: u64,
    self_j: f64,
    incl: Energy,
    child_wall: u64,
    gpu: bool,
    /// Segments ended but not yet settled.
    unsettled_segments: u32,
    done: Option<(u64, u64, Status)>,
}

impl AsyncAcc {
    fn new(
        id: u64,
        name: NameId,
        thread: u32,
        start: u64,
        parent: Option<u64>,
        link: Link,
    ) -> Self {
        AsyncAcc {
            id,
            parent,
            link,
            placeholder: false,
            done_close: 0,
            unfinished: false,
            queued: false,
            name,
            thread,
            start,
            self_j: 0.0,
            incl: Energy::ZERO,
            child_wall: 0,
            gpu: false,
            unsettled_segments: 0,
            done: None,
        }
    }
}

/// Totals of a run's energy accounting.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EnergyTotals {
    /// Part of the energy attributed to no step.
    pub unattributed: Joules,
    /// All channels of all closed intervals.
    pub channels: Energy,
}

impl EnergyTotals {
    /// Energy of all closed intervals.
    pub fn total(&self) -> Joules {
        self.channels.total()
    }
}

impl Default for EnergyTotals {
    fn default() -> Self {
        EnergyTotals {
            unattributed: Joules::ZERO,
            channels: Energy::ZERO,
        }
    }
}

/// Step bookkeeping and energy attribution for one run.
pub struct Attributor {
    detail: StepDetail,
    tick_ns: u64,
    domain_names: Option<std::sync::Arc<[String]>>,
    band: bool,
    unmarked_to_steps: bool,
    last_close: u64,
    max_pending: usize,
    pending: usize,
    next_id: u64,
    names: Vec<&'static str>,
    last_name: ((usize, usize), NameId),
    by_ptr: HashMap<(usize, usize), NameId>,
    by_str: HashMap<&'static str, NameId>,
    aggs: Vec<NameAgg>,
    threads: HashMap<u32, ThreadState>,
    asyncs: HashMap<u64, AsyncAcc>,
    /// Wait one more interval before writing a completed async step (see
    /// [`with_cross_thread_wait`](Self::with_cross_thread_wait)).
    wait_cross_thread: bool,
    /// Intervals closed so far.
    closes: u64,
    /// Async steps complete and settled, waiting for `wait_cross_thread`.
    ready: Vec<u64>,
    totals: EnergyTotals,
    steps: u64,
    records_not_written: u64,
    orphan_exits: u64,
    out: Vec<StepRecord>,
}

fn wall_status(s: Status) -> (StepStatus, bool) {
    match s {
        Status::Ok => (StepStatus::Ok, false),
        Status::Error => (StepStatus::Error, false),
        Status::Panicked => (StepStatus::Panicked, false),
        Status::Cancelled => (StepStatus::Error, true),
    }
}

impl Attributor {
    /// `max_pending` bounds the step records held between two interval closes; beyond it, ended
    /// steps are counted in summaries only (`records_not_written`).
    pub fn new(detail: StepDetail, max_pending: usize) -> Self {
        Attributor {
            detail,
            tick_ns: 0,
            domain_names: None,
            band: false,
            unmarked_to_steps: false,
            last_close: 0,
            max_pending,
            pending: 0,
            next_id: 1,
            names: Vec::new(),
            last_name: ((0, 0), 0),
            by_ptr: HashMap::new(),
            by_str: HashMap::new(),
            aggs: Vec::new(),
            threads: HashMap::new(),
            asyncs: HashMap::new(),
            wait_cross_thread: false,
            closes: 0,
            ready: Vec::new(),
            totals: EnergyTotals::default(),
            steps: 0,
            records_not_written: 0,
            orphan_exits: 0,
            out: Vec::new(),
        }
    }

    /// Steps shorter than `tick_ns` are flagged `short` (their energy is interpolated).
    pub fn with_tick(mut self, tick_ns: u64) -> Self {
        self.tick_ns = tick_ns;
        self
    }

    /// Names of the per-domain channels, in channel order from [`FIRST_DOMAIN`]. Per-domain
    /// energy is reported only when there is more than one domain.
    pub fn with_domains(mut self, domains: Vec<String>) -> Self {
        const SLOTS: usize = CHANNELS - FIRST_DOMAIN;
        self.domain_names = (domains.len() > 1).then(|| {
            let mut names: Vec<String> = domains.iter().take(SLOTS).cloned().collect();
            if domains.len() > SLOTS {
                // The session adds every domain past the last channel into it.
                names[SLOTS - 1] = "other".to_owned();
            }
            names.into()
        });
        self
    }

    /// Whether a completed async step waits one more interval close before it is written: its
    /// last segment or its children's may sit in a ring drained later than the one that held
    /// its completion (threads are drained one after the other), and would otherwise become a
    /// second step, or miss their parent's inclusive energy. The aggregator drains every ring
    /// before each close, so one more close has seen everything that happened before the
    /// completion.
    pub fn with_cross_thread_wait(mut self, wait: bool) -> Self {
        self.wait_cross_thread = wait;
        self
    }

    /// Whether the energy is an estimate with a low/high band to report.
    pub fn with_band(mut self, band: bool) -> Self {
        self.band = band;
        self
    }

    /// Whether the CPU energy of unmarked threads ([`Weights::Cpu`]'s `unmarked_ns`) goes to
    /// the steps open in the interval, by wall-time overlap (`true`), or is unattributed.
    pub fn with_unmarked_to_steps(mut self, to_steps: bool) -> Self {
        self.unmarked_to_steps = to_steps;
        self
    }

    fn intern(&mut self, name: &'static str) -> NameId {
        let key = (name.as_ptr() as usize, name.len());
        // Loops repeat the same few names: a one-entry cache skips the hash most of the time.
        if self.last_name.0 == key {
            return self.last_name.1;
        }
        if let Some(&id) = self.by_ptr.get(&key) {
            self.last_name = (key, id);
            return id;
        }
        let id = *self.by_str.entry(name).or_insert_with(|| {
            self.names.push(name);
            self.aggs.push(NameAgg::new());
            self.names.len() - 1
        });
        self.by_ptr.insert(key, id);
        self.last_name = (key, id);
        id
    }

    /// Starts tracking a thread. Its cursor starts at 0: with no step open, moving it to the
    /// first event credits nothing, and events the thread pushed before the aggregator noticed
    /// it are still counted in full.
    pub fn add_thread(&mut self, index: u32) {
        self.threads.entry(index).or_default();
    }

    /// Marks a thread as exited: it is forgotten once its steps are settled.
    pub fn close_thread(&mut self, index: u32) {
        if let Some(t) = self.threads.get_mut(&index) {
            t.closed = true;
        }
    }

    /// Applies a thread's events, in order. Times are nanoseconds since the run's start.
    pub fn on_events(&mut self, index: u32, events: &[Event]) {
        if events.is_empty() {
            return;
        }
        let mut th = self.threads.remove(&index).unwrap_or_default();
        for ev in events {
            self.apply(index, &mut th, *ev);
        }
        self.threads.insert(index, th);
    }

    fn advance(th: &mut ThreadState, t: u64) {
        // An event published late (its thread was preempted between reading the clock and
        // pushing) can be older than the cursor; count it at the cursor, never backwards.
        let t = t.max(th.cursor);
        let dt = t - th.cursor;
        if let Some(top) = th.stack.last_mut() {
            top.self_ns += dt;
            top.incl_ns += dt;
            th.busy += dt;
            if th.gpu_depth > 0 {
                top.self_gns += dt;
                top.incl_gns += dt;
                th.gpu_busy += dt;
            }
        }
        th.cursor = t;
    }

    fn apply(&mut self, index: u32, th: &mut ThreadState, ev: Event) {
        match ev {
            Event::Enter {
                t,
                async_id: Event::GPU_MARK,
                ..
            } => {
                Self::advance(th, t);
                if let Some(top) = th.stack.last_mut()
                    && !top.gpu
                {
                    top.gpu = true;
                    th.gpu_depth += 1;
                    if top.async_id != 0
                        && let Some(acc) = self.asyncs.get_mut(&top.async_id)
                    {
                        acc.gpu = true;
                    }
                }
            }
            Event::Enter {
                name,
                t,
                async_id: parent,
            } if Event::is_parent_mark(name) => {
                Self::advance(th, t);
                self.parent_mark(th, parent);
            }
            Event::Enter { name, t, async_id } => {
                let gpu = async_id & Event::GPU_STEP != 0;
                let async_id = async_id & !Event::GPU_STEP;
                Self::advance(th, t);
                let name = self.intern(name);
                let top = th.stack.last().map(|f| f.id);
                let mut remote = false;
                let (id, parent) = if async_id == 0 {
                    self.next_id += 1;
                    (self.next_id - 1, top)
                } else {
                    let link = match th.stack.last() {
                        Some(f) if f.async_id != 0 => Link::Async(f.async_id),
                        Some(f) => Link::Frame(index, f.id),
                        None => Link::None,
                    };
                    let next_id = &mut self.next_id;
                    let acc = self.asyncs.entry(async_id).or_insert_with(|| {
                        *next_id += 1;
                        AsyncAcc::new(*next_id - 1, name, index, t, top, link)
                    });
                    if acc.placeholder {
                        // Its first segment, after a child's parent mark made it (and maybe
                        // passed energy up to it already).
                        let incl = acc.incl;
                        *acc = AsyncAcc::new(acc.id, name, index, t, top, link);
                        acc.incl = incl;
                    }
                    acc.gpu |= gpu;
                    // A segment entered where its parent is not open below it (a span polled on
                    // another worker thread): its energy goes to the parent, not the frame below.
                    remote = match acc.link {
                        Link::None => false,
                        Link::Async(p) => !th.stack.iter().any(|f| f.async_id == p),
                        Link::Frame(thread, id) => {
                            thread != index || !th.stack.iter().any(|f| f.id == id)
                        }
                    };
                    (acc.id, acc.parent)
                };
                if gpu {
                    th.gpu_depth += 1;
                }
                th.stack.push(Frame {
                    id,
                    parent,
                    name,
                    start: t,
                    async_id,
                    gpu,
                    remote,
                    ..Frame::EMPTY
                });
            }
            Event::Exit {
                t,
                items,
                status,
                done,
            } => {
                Self::advance(th, t);
                let Some(frame) = th.stack.pop() else {
                    self.orphan_exits += 1;
                    return;
                };
                let end = t.max(frame.start);
                self.end_frame(th, frame, end, items, status, done, false);
            }
        }
    }

    /// A parent mark: the async step whose first segment is on top of `th`'s stack is a child of
    /// the async step `parent`. Unless that parent is open below it on this thread (then the
    /// thread's nesting already says it, more precisely: a step open inside the parent is the
    /// nearer parent), the step's record names that parent and its segments' energy goes to it.
    fn parent_mark(&mut self, th: &mut ThreadState, parent: u64) {
        let n = th.stack.len();
        let Some(child) = th.stack.last().map(|f| f.async_id).filter(|&a| a != 0) else {
            return;
        };
        if parent == 0 || parent == child || th.stack[..n - 1].iter().any(|f| f.async_id == parent)
        {
            return;
        }
        let next_id = &mut self.next_id;
        let parent_id = self
            .asyncs
            .entry(parent)
            .or_insert_with(|| {
                *next_id += 1;
                AsyncAcc {
                    placeholder: true,
                    ..AsyncAcc::new(*next_id - 1, 0, 0, 0, None, Link::None)
                }
            })
            .id;
        if let Some(acc) = self.asyncs.get_mut(&child) {
            acc.parent = Some(parent_id);
            acc.link = Link::Async(parent);
        }
        if let Some(top) = th.stack.last_mut() {
            top.parent = Some(parent_id);
            top.remote = true;
        }
    }

    /// Adds energy that reached an async step through no frame (a `remote` segment of a child)
    /// to its ancestors: every async one's total, up to the first plain step (whose frame, if
    /// still open, passes it on as any frame does).
    fn pass_up(&mut self, mut link: Link, e: &Energy) {
        // Parents come from span ancestry, which has no cycles; the bound is a guard all the same.
        for _ in 0..4096 {
            match link {
                Link::None => return,
                Link::Async(id) => {
                    let Some(acc) = self.asyncs.get_mut(&id) else {
                        return;
                    };
                    acc.incl.add(e);
                    link = acc.link;
                }
                Link::Frame(thread, id) => {
                    if let Some(f) = self
                        .threads
                        .get_mut(&thread)
                        .and_then(|th| th.stack.iter_mut().find(|f| f.id == id))
                    {
                        f.incl.add(e);
                    }
                    return;
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn end_frame(
        &mut self,
        th: &mut ThreadState,
        frame: Frame,
        end: u64,
        items: u64,
        status: Status,
        done: bool,
        unfinished: bool,
    ) {
        let wall = end - frame.start;
        if frame.gpu {
            th.gpu_depth = th.gpu_depth.saturating_sub(1);
        }
        // A remote segment's energy goes to its own parent (`pass_up`), not to the frame below.
        if !frame.remote
            && let Some(parent) = th.stack.last_mut()
        {
            parent.incl.add(&frame.incl);
            parent.incl_ns += frame.incl_ns;
            parent.incl_gns += frame.incl_gns;
            parent.child_wall += wall;
        }
        if frame.async_id != 0 {
            if let Some(acc) = self.asyncs.get_mut(&frame.async_id) {
                acc.unsettled_segments += 1;
                acc.child_wall += frame.child_wall;
                if done {
                    acc.done = Some((end, items, status));
                    acc.done_close = self.closes;
                }
            }
            self.pending += 1;
            th.finished.push(Finished {
                frame,
                end,
                items,
                status,
                unfinished,
            });
            return;
        }
        self.fold_stats(
            frame.name,
            wall,
            wall - frame.child_wall.min(wall),
            items,
            status,
        );
        self.aggs[frame.name].gpu |= frame.gpu;
        if self.detail == StepDetail::All && self.pending < self.max_pending {
            self.pending += 1;
            th.finished.push(Finished {
                frame,
                end,
                items,
                status,
                unfinished,
            });
        } else {
            if self.detail == StepDetail::All {
                self.records_not_written += 1;
            }
            let agg = &mut self.aggs[frame.name];
            agg.self_j += frame.self_j;
            agg.incl.add(&frame.incl);
            if th.folded.len() <= frame.name {
                th.folded.resize(frame.name + 1, Frame::EMPTY);
            }
            let f = &mut th.folded[frame.name];
            f.self_ns += frame.self_ns;
            f.incl_ns += frame.incl_ns;
            f.self_gns += frame.self_gns;
            f.incl_gns += frame.incl_gns;
        }
    }

    fn fold_stats(&mut self, name: NameId, wall: u64, self_wall: u64, items: u64, status: Status) {
        self.steps += 1;
        let agg = &mut self.aggs[name];
        agg.count += 1;
        agg.wall += wall;
        agg.self_wall += self_wall;
        // Capped, not wrapped: a total of u64::MAX is reported as reached (run_end warnings).
        agg.items = agg.items.saturating_add(items);
        agg.hist.record(wall);
        match status {
            Status::Ok => {}
            Status::Error | Status::Cancelled => agg.errors += 1,
            Status::Panicked => agg.panics += 1,
        }
    }

    /// Closes the interval ending at `end_ns` whose energy per channel was `energy`, settling
    /// every step time credited since the previous close. Ended steps become records (see
    /// [`take_records`](Self::take_records)).
    ///
    /// The CPU part is split across threads by `weights`, and inside a thread over its open
    /// steps by wall time. The GPU part goes to the GPU steps open in the interval, by wall-time
    /// overlap on any thread, whatever their CPU time; when no GPU step was open, to every open
    /// step by wall time; when no step was open, it is unattributed.
    pub fn close_interval(&mut self, end_ns: u64, energy: &IntervalEnergy, weights: &Weights) {
        let len = end_ns.saturating_sub(self.last_close);
        self.last_close = self.last_close.max(end_ns);
        let (mut busy, mut gpu_busy) = (0u64, 0u64);
        for th in self.threads.values_mut() {
            Self::advance(th, end_ns);
            busy += th.busy;
            gpu_busy += th.gpu_busy;
        }
        let cpu_e = &energy.cpu;
        self.totals.channels.add(cpu_e);
        self.totals.channels.add(&energy.gpu);
        // Per-thread joules per busy nanosecond, for every channel.
        let zero: Density = [0.0; CHANNELS];
        let uniform = match weights {
            Weights::Wall if busy > 0 => cpu_e.0.map(|e| e / busy as f64),
            _ => zero,
        };
        let (cpu_total, cpu_of, unmarked) = match weights {
            Weights::Cpu {
                process_ns,
                threads,
                unmarked_ns,
            } => {
                let sum: u64 = threads.iter().map(|(_, c)| c).sum();
                // Sampling skew can make the threads' sum exceed the process's: normalise by
                // the larger so no more than the interval's energy is handed out.
                let total = (*process_ns).max(sum);
                (total, Some(threads), (*unmarked_ns).min(total - sum))
            }
            Weights::Wall => (0, None, 0),
        };
        // Unmarked threads' share, when it goes to open steps: one density per busy nanosecond
        // of any thread, added to every thread's own (work done on behalf of the open steps).
        let helpers = if self.unmarked_to_steps && unmarked > 0 && busy > 0 {
            let k = unmarked as f64 / cpu_total as f64 / busy as f64;
            cpu_e.0.map(|e| e * k)
        } else {
            zero
        };
        // Most runs have no GPU energy: skip its arithmetic entirely then.
        let gpu = if energy.gpu == Energy::ZERO {
            None
        } else if gpu_busy > 0 {
            Some(GpuSplit {
                density: energy.gpu.0.map(|e| e / gpu_busy as f64),
                by_gpu_steps: true,
            })
        } else if busy > 0 {
            Some(GpuSplit {
                density: energy.gpu.0.map(|e| e / busy as f64),
                by_gpu_steps: false,
            })
        } else {
            None
        };
        let mut attributed = 0.0;
        let mut remote: Vec<(Link, Energy)> = Vec::new();
        let mut threads = std::mem::take(&mut self.threads);
        for (&index, th) in threads.iter_mut() {
            let density = match cpu_of {
                None => uniform,
                Some(list) => {
                    let cpu = list
                        .iter()
                        .find(|(i, _)| *i == index)
                        .map_or(0, |(_, c)| *c);
                    let own = if cpu == 0 || cpu_total == 0 || len == 0 {
                        zero
                    } else {
                        let k = cpu as f64 / cpu_total as f64 / len as f64;
                        cpu_e.0.map(|e| e * k)
                    };
                    std::array::from_fn(|c| own[c] + helpers[c])
                }
            };
            attributed += density[TOTAL] * th.busy as f64;
            if let Some(g) = &gpu {
                let w = if g.by_gpu_steps { th.gpu_busy } else { th.busy };
                attributed += g.density[TOTAL] * w as f64;
            }
            th.busy = 0;
            th.gpu_busy = 0;
            for f in th.stack.iter_mut() {
                f.settle(&density, gpu.as_ref());
            }
            for (name, f) in th.folded.iter_mut().enumerate() {
                // Folded frames hold time only: their energy goes straight to the summary.
                f.settle(&density, gpu.as_ref());
                let agg = &mut self.aggs[name];
                agg.self_j += f.self_j;
                agg.incl.add(&f.incl);
                f.self_j = 0.0;
                f.incl = Energy::ZERO;
            }
            for mut fin in th.finished.drain(..) {
                self.pending -= 1;
                fin.frame.settle(&density, gpu.as_ref());
                if fin.frame.async_id != 0 {
                    if let Some(up) = self.settle_segment(fin) {
                        remote.push(up);
                    }
                } else {
                    self.emit(index, &fin);
                }
            }
        }
        self.totals.unattributed += energy.sum().total() - Joules(attributed);
        threads.retain(|_, th| !(th.closed && th.stack.is_empty()));
        self.threads = threads;
        for (link, e) in remote {
            self.pass_up(link, &e);
        }
        self.closes += 1;
        self.emit_ready();
    }

    /// Writes the completed async steps that have waited one close (`wait_cross_thread`).
    fn emit_ready(&mut self) {
        if self.ready.is_empty() {
            return;
        }
        let closes = self.closes;
        let mut waiting = Vec::new();
        for id in std::mem::take(&mut self.ready) {
            let Some(acc) = self.asyncs.get_mut(&id) else {
                continue;
            };
            let (Some(_), 0) = (acc.done, acc.unsettled_segments) else {
                // A later segment arrived: its settling puts it back here.
                acc.queued = false;
                continue;
            };
            if closes < acc.done_close + 2 {
                waiting.push(id);
                continue;
            }
            if let Some(acc) = self.asyncs.remove(&id)
                && let Some((end, items, status)) = acc.done
            {
                let unfinished = acc.unfinished;
                self.emit_async(id, acc, end, items, status, unfinished);
            }
        }
        self.ready = waiting;
    }

    /// Adds a settled segment to its step; writes the step once complete (or queues it, with
    /// `wait_cross_thread`). Returns what a remote segment's energy must still reach.
    fn settle_segment(&mut self, fin: Finished) -> Option<(Link, Energy)> {
        let id = fin.frame.async_id;
        let acc = self.asyncs.get_mut(&id)?;
        acc.self_j += fin.frame.self_j;
        acc.incl.add(&fin.frame.incl);
        acc.unsettled_segments -= 1;
        if fin.unfinished {
            acc.unfinished = true;
            if acc.done.is_none() {
                acc.done = Some((fin.end, fin.items, fin.status));
            }
        }
        let up = fin.frame.remote.then_some((acc.link, fin.frame.incl));
        if acc.unsettled_segments == 0 && acc.done.is_some() {
            if self.wait_cross_thread {
                if !acc.queued {
                    acc.queued = true;
                    self.ready.push(id);
                }
            } else if let Some(acc) = self.asyncs.remove(&id)
                && let Some((end, items, status)) = acc.done
            {
                let unfinished = acc.unfinished;
                self.emit_async(id, acc, end, items, status, unfinished);
            }
        }
        up
    }

    /// Writes a completed async step (`seg`: its segment id), with the attributes its
    /// integration registered for it ([`carina_core::attrs`]), and counts them per combination.
    fn emit_async(
        &mut self,
        seg: u64,
        acc: AsyncAcc,
        end: u64,
        items: u64,
        status: Status,
        unfinished: bool,
    ) {
        let wall = end.saturating_sub(acc.start);
        self.fold_stats(
            acc.name,
            wall,
            wall - acc.child_wall.min(wall),
            items,
            status,
        );
        let agg = &mut self.aggs[acc.name];
        agg.self_j += acc.self_j;
        agg.incl.add(&acc.incl);
        agg.gpu |= acc.gpu;
        let attrs: Option<StepAttrs> = carina_core::attrs::take(seg)
            .filter(|a| !a.is_empty())
            .map(|a| a.into_iter().map(|(k, v)| (k.to_owned(), v)).collect());
        if let Some(attrs) = &attrs {
            let full = agg.by_attrs.len() >= MAX_ATTR_GROUPS;
            let group = match agg.by_attrs.get_mut(attrs) {
                Some(g) => Some(g),
                None if full => None,
                None => Some(agg.by_attrs.entry(attrs.clone()).or_default()),
            };
            match group {
                Some(g) => {
                    g.count += 1;
                    g.wall += end.saturating_sub(acc.start);
                    g.items = g.items.saturating_add(items);
                    g.self_j += acc.self_j;
                    g.incl.add(&acc.incl);
                    g.errors += u64::from(status != Status::Ok);
                }
                None => agg.attrs_folded += 1,
            }
        }
        if self.detail == StepDetail::All {
            let (status, cancelled) = wall_status(status);
            let mut rec = self.record(acc.name, acc.start, end, acc.self_j, &acc.incl);
            rec.id = acc.id;
            rec.parent = acc.parent;
            rec.thread = acc.thread;
            rec.items = items;
            rec.status = status;
            rec.unfinished = unfinished;
            rec.cancelled = cancelled;
            rec.r#async = true;
            rec.gpu = acc.gpu;
            rec.attrs = attrs;
            self.out.push(rec);
        }
    }

    fn emit(&mut self, thread: u32, fin: &Finished) {
        let agg = &mut self.aggs[fin.frame.name];
        agg.self_j += fin.frame.self_j;
        agg.incl.add(&fin.frame.incl);
        let (status, cancelled) = wall_status(fin.status);
        let mut rec = self.record(
            fin.frame.name,
            fin.frame.start,
            fin.end,
            fin.frame.self_j,
            &fin.frame.incl,
        );
        rec.id = fin.frame.id;
        rec.parent = fin.frame.parent;
        rec.thread = thread;
        rec.items = fin.items;
        rec.status = status;
        rec.unfinished = fin.unfinished;
        rec.cancelled = cancelled;
        rec.gpu = fin.frame.gpu;
        self.out.push(rec);
    }

    /// Per-domain energy of a channel array, when there is more than one domain.
    pub fn by_domain(&self, e: &Energy) -> Option<DomainEnergy> {
        let names = self.domain_names.as_ref()?;
        Some(DomainEnergy::new(
            names.clone(),
            &e.0[FIRST_DOMAIN..FIRST_DOMAIN + names.len()],
        ))
    }

    fn band_of(&self, e: &Energy) -> (Option<Joules>, Option<Joules>) {
        if self.band {
            (Some(e.low()), Some(e.high()))
        } else {
            (None, None)
        }
    }

    fn record(&self, name: NameId, start: u64, end: u64, self_j: f64, incl: &Energy) -> StepRecord {
        let (low, high) = self.band_of(incl);
        StepRecord {
            name: std::borrow::Cow::Borrowed(self.names[name]),
            id: 0,
            parent: None,
            thread: 0,
            start_s: Seconds(start as f64 / 1e9),
            end_s: Seconds(end as f64 / 1e9),
            items: 0,
            status: StepStatus::Ok,
            energy_j: incl.total(),
            self_energy_j: Joules(self_j),
            co2e_g: incl.co2e(),
            unfinished: false,
            cancelled: false,
            r#async: false,
            short: end.saturating_sub(start) < self.tick_ns,
            energy_low_j: low,
            energy_high_j: high,
            energy_by_domain: self.by_domain(incl),
            gpu: false,
            attrs: None,
        }
    }

    /// The steps still open (not async steps), as `(thread, name)`, outermost first per
    /// thread: what [`finish`](Self::finish) will record as `unfinished`.
    pub fn open_steps(&self) -> Vec<(u32, &'static str)> {
        let mut threads: Vec<(&u32, &ThreadState)> = self.threads.iter().collect();
        threads.sort_by_key(|(i, _)| **i);
        threads
            .into_iter()
            .flat_map(|(i, th)| {
                th.stack
                    .iter()
                    .filter(|f| f.async_id == 0)
                    .map(|f| (*i, self.names[f.name]))
            })
            .collect()
    }

    /// Ends the run at `end_ns`: closes the last interval with `energy`, then ends every step
    /// still open as `unfinished` (with the energy it had by then).
    pub fn finish(&mut self, end_ns: u64, energy: &IntervalEnergy, weights: &Weights) {
        self.close_interval(end_ns, energy, weights);
        let mut threads = std::mem::take(&mut self.threads);
        for th in threads.values_mut() {
            while let Some(frame) = th.stack.pop() {
                let done = frame.async_id == 0;
                self.end_frame(th, frame, end_ns, 0, Status::Ok, done, true);
            }
        }
        self.threads = threads;
        // Everything is settled already; this emits the frames ended above.
        self.close_interval(end_ns, &IntervalEnergy::ZERO, &Weights::Wall);
        self.ready.clear();
        let mut leftover: Vec<u64> = self.asyncs.keys().copied().collect();
        leftover.sort_unstable();
        for k in leftover {
            if let Some(acc) = self.asyncs.remove(&k) {
                if acc.placeholder {
                    continue;
                }
                // Complete ones were only waiting (`wait_cross_thread`).
                let unfinished = acc.unfinished || acc.done.is_none();
                let (end, items, status) = acc.done.unwrap_or((end_ns, 0, Status::Ok));
                self.emit_async(k, acc, end, items, status, unfinished);
            }
        }
    }

    /// Step records produced since the last call.
    pub fn take_records(&mut self) -> std::vec::Drain<'_, StepRecord> {
        self.out.drain(..)
    }

    /// Per-name summaries, sorted by name.
    pub fn summaries(&self) -> Vec<StepSummary> {
        let mut v: Vec<StepSummary> = self
            .aggs
            .iter()
            .enumerate()
            .filter(|(_, a)| a.count > 0)
            .map(|(i, a)| StepSummary {
                name: self.names[i].to_owned(),
                count: a.count,
                wall_s: Seconds(a.wall as f64 / 1e9),
                self_wall_s: Seconds(a.self_wall as f64 / 1e9),
                items: a.items,
                energy_j: a.incl.total(),
                self_energy_j: Joules(a.self_j),
                co2e_g: a.incl.co2e(),
                energy_low_j: self.band_of(&a.incl).0,
                energy_high_j: self.band_of(&a.incl).1,
                energy_by_domain: self.by_domain(&a.incl),
                p50_s: a.hist.quantile(0.5) as f64 / 1e9,
                p95_s: a.hist.quantile(0.95) as f64 / 1e9,
                max_s: Seconds(a.hist.max() as f64 / 1e9),
                errors: a.errors,
                panics: a.panics,
                gpu: a.gpu,
                method: None,
                by_attrs: (!a.by_attrs.is_empty()).then(|| {
                    a.by_attrs
                        .iter()
                        .map(|(k, g)| {
                            let mut s = AttrsSummary::new(k.clone());
                            s.count = g.count;
                            s.wall_s = Seconds(g.wall as f64 / 1e9);
                            s.items = g.items;
                            s.energy_j = g.incl.total();
                            s.self_energy_j = Joules(g.self_j);
                            s.co2e_g = g.incl.co2e();
                            s.errors = g.errors;
                            s
                        })
                        .collect()
                }),
                attrs_folded: a.attrs_folded,
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Energy totals so far.
    pub fn totals(&self) -> EnergyTotals {
        self.totals
    }

    /// Step instances counted so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Ended steps that went to summaries only because the record queue was full.
    pub fn records_not_written(&self) -> u64 {
        self.records_not_written
    }

    /// Exit events that matched no open step (should stay 0; a non-zero value is a bug report).
    pub fn orphan_exits(&self) -> u64 {
        self.orphan_exits
    }

    /// Largest per-name item total.
    pub fn max_items(&self) -> u64 {
        self.aggs.iter().map(|a| a.items).max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enter(name: &'static str, t: u64) -> Event {
        Event::enter(name, t, 0, false)
    }
    fn exit(t: u64, items: u64) -> Event {
        Event::Exit {
            t,
            items,
            status: Status::Ok,
            done: true,
        }
    }
    fn attr() -> Attributor {
        let mut a = Attributor::new(StepDetail::All, 1 << 20);
        a.add_thread(0);
        a.add_thread(1);
        a
    }
    trait Wall {
        fn close_wall(&mut self, t: u64, e: f64);
        fn finish_wall(&mut self, t: u64, e: f64);
    }
    impl Wall for Attributor {
        fn close_wall(&mut self, t: u64, e: f64) {
            self.close_interval(t, &Energy::total_only(Joules(e)).into(), &Weights::Wall);
        }
        fn finish_wall(&mut self, t: u64, e: f64) {
            self.finish(t, &Energy::total_only(Joules(e)).into(), &Weights::Wall);
        }
    }
    fn records(a: &mut Attributor) -> Vec<StepRecord> {
        let mut v: Vec<_> = a.take_records().collect();
        v.sort_by_key(|r| r.id);
        v
    }
    fn close(a: impl Into<f64>, b: impl Into<f64>) -> bool {
        let (a, b) = (a.into(), b.into());
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
    }

    #[test]
    fn sequential_steps_share_by_wall_time() {
        let mut a = attr();
        a.on_events(
            0,
            &[enter("a", 0), exit(100, 1), enter("b", 100), exit(300, 2)],
        );
        a.close_wall(400, 400.0);
        let r = records(&mut a);
        assert_eq!(r.len(), 2);
        assert!(close(r[0].energy_j, 400.0 / 3.0), "{r:?}");
        assert!(close(r[1].energy_j, 800.0 / 3.0));
        assert_eq!(r[0].self_energy_j, r[0].energy_j);
        assert_eq!(a.totals().unattributed, Joules::ZERO);
        assert_eq!((r[0].items, r[1].items), (1, 2));
    }

    #[test]
    fn nested_steps_are_inclusive_and_exclusive() {
        let mut a = attr();
        a.on_events(
            0,
            &[
                enter("outer", 0),
                enter("inner", 100),
                exit(200, 0),
                exit(300, 0),
            ],
        );
        a.close_wall(300, 300.0);
        let r = records(&mut a);
        let (outer, inner) = (&r[0], &r[1]);
        assert_eq!(outer.name, "outer");
        assert_eq!(inner.parent, Some(outer.id));
        assert_eq!(outer.parent, None);
        assert!(close(inner.energy_j, 100.0));
        assert!(close(outer.self_energy_j, 200.0));
        assert!(close(outer.energy_j, 300.0));
        let s = a.summaries();
        let o = s.iter().find(|s| s.name == "outer").unwrap();
        assert!(close(o.self_wall_s, 200e-9) && close(o.wall_s, 300e-9));
    }

    #[test]
    fn recursion_links_each_level_to_its_caller() {
        let mut a = attr();
        a.on_events(
            0,
            &[
                enter("f", 0),
                enter("f", 10),
                enter("f", 20),
                exit(30, 0),
                exit(40, 0),
                exit(50, 0),
            ],
        );
        a.close_wall(50, 50.0);
        let r = records(&mut a);
        assert_eq!(r.len(), 3);
        assert_eq!(r[1].parent, Some(r[0].id));
        assert_eq!(r[2].parent, Some(r[1].id));
        assert!(close(r[0].energy_j, 50.0));
        assert!(close(r[1].energy_j, 30.0));
        assert!(close(r[2].energy_j, 10.0));
    }

    #[test]
    fn two_threads_split_by_busy_time() {
        let mut a = attr();
        a.on_events(0, &[enter("t0", 0), exit(100, 0)]);
        a.on_events(1, &[enter("t1", 0), exit(50, 0)]);
        a.close_wall(100, 150.0);
        let r = records(&mut a);
        let e = |n: &str| r.iter().find(|s| s.name == n).unwrap().energy_j;
        assert!(close(e("t0"), 100.0));
        assert!(close(e("t1"), 50.0));
        assert_eq!(r.iter().find(|s| s.name == "t1").unwrap().thread, 1);
    }

    #[test]
    fn a_step_over_several_intervals_gets_each_intervals_energy() {
        let mut a = attr();
        a.on_events(0, &[enter("long", 0)]);
        a.close_wall(100, 10.0);
        a.close_wall(200, 20.0);
        a.on_events(0, &[exit(250, 0)]);
        a.close_wall(300, 30.0);
        let r = records(&mut a);
        assert_eq!(r.len(), 1);
        assert!(close(r[0].energy_j, 60.0), "{r:?}");
        assert!(close(r[0].end_s, 250e-9));
    }

    #[test]
    fn idle_gaps_are_unattributed() {
        let mut a = attr();
        a.close_wall(100, 7.0);
        a.on_events(0, &[enter("x", 150), exit(160, 0)]);
        a.close_wall(200, 5.0);
        a.close_wall(300, 3.0);
        let r = records(&mut a);
        assert!(close(r[0].energy_j, 5.0));
        let t = a.totals();
        assert!(close(t.total(), 15.0));
        assert!(close(t.unattributed.0, 10.0));
    }

    #[test]
    fn steps_shorter_than_a_tick_get_their_share() {
        let mut a = attr();
        // Thousands of 10 ns steps inside one 100 us interval, with 10 ns gaps.
        let mut evs = Vec::new();
        for k in 0..5000u64 {
            evs.push(enter("tiny", k * 20));
            evs.push(exit(k * 20 + 10, 1));
        }
        a.on_events(0, &evs);
        a.close_wall(100_000, 1.0);
        let r = records(&mut a);
        assert_eq!(r.len(), 5000);
        let sum: f64 = r.iter().map(|s| s.self_energy_j.0).sum();
        assert!(close(sum, 1.0));
        assert!(close(r[17].energy_j, 1.0 / 5000.0));
    }

    #[test]
    fn open_steps_at_finish_are_unfinished_and_keep_their_energy() {
        let mut a = attr();
        a.on_events(0, &[enter("main", 0), enter("work", 10)]);
        a.finish_wall(100, 50.0);
        let r = records(&mut a);
        assert_eq!(r.len(), 2);
        assert!(r.iter().all(|s| s.unfinished));
        assert!(close(r[0].energy_j, 50.0));
        assert!(close(r[1].energy_j, 45.0));
        assert_eq!(r[1].parent, Some(r[0].id));
    }

    #[test]
    fn async_segments_merge_into_one_step() {
        let mut a = attr();
        let seg = |t, id| Event::enter("fetch", t, id, false);
        let pending = |t| Event::Exit {
            t,
            items: 0,
            status: Status::Ok,
            done: false,
        };
        let done = |t| Event::Exit {
            t,
            items: 7,
            status: Status::Error,
            done: true,
        };
        // Polled first on thread 0 inside `caller`, then resumed on thread 1.
        a.on_events(0, &[enter("caller", 0), seg(10, 99), pending(20)]);
        a.on_events(1, &[seg(50, 99), done(80)]);
        a.on_events(0, &[exit(100, 0)]);
        a.close_wall(100, 130.0); // busy: t0 100, t1 30 -> 1 J/ns
        let r = records(&mut a);
        let f = r.iter().find(|s| s.name == "fetch").unwrap();
        let c = r.iter().find(|s| s.name == "caller").unwrap();
        assert!(f.r#async);
        assert_eq!(f.parent, Some(c.id));
        assert_eq!((f.items, f.status), (7, StepStatus::Error));
        assert!(close(f.start_s, 10e-9) && close(f.end_s, 80e-9));
        assert!(close(f.energy_j, 40.0), "{f:?}");
        assert!(close(c.self_energy_j, 90.0));
        assert!(close(c.energy_j, 100.0));
        assert_eq!(
            a.summaries()
                .iter()
                .find(|s| s.name == "fetch")
                .unwrap()
                .count,
            1
        );
    }

    #[test]
    fn a_segment_drained_after_the_completion_joins_its_step() {
        // Thread 1's ring is drained after thread 0's: the completion (thread 0) is seen one
        // interval before a segment that happened before it (thread 1).
        let seg = |t| Event::enter("task", t, 42, false);
        let pending = |t| Event::Exit {
            t,
            items: 0,
            status: Status::Ok,
            done: false,
        };
        let done = |t| Event::Exit {
            t,
            items: 5,
            status: Status::Ok,
            done: true,
        };
        for wait in [false, true] {
            let mut a = attr().with_cross_thread_wait(wait);
            a.on_events(0, &[seg(0), pending(10), seg(200), done(200)]);
            a.close_wall(300, 300.0);
            a.on_events(1, &[seg(100), pending(150)]);
            a.close_wall(400, 400.0);
            a.finish_wall(500, 0.0);
            let r = records(&mut a);
            let tasks: Vec<_> = r.iter().filter(|s| s.name == "task").collect();
            if wait {
                assert_eq!(tasks.len(), 1, "{r:#?}");
                assert_eq!(tasks[0].items, 5);
                assert!(!tasks[0].unfinished);
                // Interval 1's energy (its only busy thread-time was the task's); the late
                // segment's events are older than the cursor, so they add no time.
                assert!(close(tasks[0].self_energy_j, 300.0), "{r:#?}");
                assert!(close(tasks[0].end_s, 200e-9));
            } else {
                // What the aggregator did before it waited: the step split in two.
                assert_eq!(tasks.len(), 2, "{r:#?}");
            }
        }
    }

    #[test]
    fn a_parent_mark_names_the_parent_and_passes_energy_up() {
        let mut a = attr().with_cross_thread_wait(true);
        let seg = |name, t, id| Event::enter(name, t, id, false);
        let done = |t| Event::Exit {
            t,
            items: 0,
            status: Status::Ok,
            done: true,
        };
        let pending = |t| Event::Exit {
            t,
            items: 0,
            status: Status::Ok,
            done: false,
        };
        // `fetch_all` (segments of id 1) on thread 0; on thread 1, inside the unrelated span
        // `worker` (id 2), `fetch` (id 3) is first entered with a mark naming id 1, then
        // entered again on thread 0 (migrated) outside `fetch_all`.
        a.on_events(0, &[seg("fetch_all", 0, 1), pending(100)]);
        a.on_events(
            1,
            &[
                seg("worker", 0, 2),
                seg("fetch", 10, 3),
                Event::parent_mark(10, 1),
                pending(90),
                pending(100),
            ],
        );
        a.on_events(0, &[seg("fetch", 100, 3), pending(150)]);
        a.close_wall(200, 300.0); // busy: t0 150, t1 100 -> 1.2 J/ns
        a.on_events(
            1,
            &[
                seg("fetch", 200, 3),
                done(200),
                seg("worker", 200, 2),
                done(200),
            ],
        );
        a.on_events(0, &[seg("fetch_all", 200, 1), done(200)]);
        a.close_wall(300, 0.0);
        a.close_wall(400, 0.0);
        let r = records(&mut a);
        assert_eq!(r.len(), 3, "{r:#?}");
        let all = r.iter().find(|s| s.name == "fetch_all").unwrap();
        let fetch = r.iter().find(|s| s.name == "fetch").unwrap();
        let worker = r.iter().find(|s| s.name == "worker").unwrap();
        assert_eq!(fetch.parent, Some(all.id));
        assert_eq!((all.parent, worker.parent), (None, None));
        // fetch: 80 ns on thread 1 and 50 ns on thread 0, all its own.
        assert!(close(fetch.self_energy_j, 130.0 * 1.2), "{fetch:#?}");
        assert!(close(fetch.energy_j, fetch.self_energy_j));
        // worker keeps its own 20 ns only; fetch_all its own 100 ns plus all of fetch.
        assert!(close(worker.energy_j, 20.0 * 1.2), "{worker:#?}");
        assert!(close(all.self_energy_j, 100.0 * 1.2), "{all:#?}");
        assert!(close(all.energy_j, 230.0 * 1.2), "{all:#?}");
    }

    #[test]
    fn summary_mode_and_overflow_keep_energy_in_summaries() {
        for (detail, cap) in [(StepDetail::Summary, 1 << 20), (StepDetail::All, 3)] {
            let mut a = Attributor::new(detail, cap);
            a.add_thread(0);
            let mut evs = Vec::new();
            for k in 0..10u64 {
                evs.push(enter("s", k * 10));
                evs.push(exit(k * 10 + 10, 2));
            }
            a.on_events(0, &evs);
            a.close_wall(100, 10.0);
            let written = records(&mut a).len() as u64;
            let s = &a.summaries()[0];
            assert_eq!(s.count, 10);
            assert_eq!(s.items, 20);
            assert!(close(s.self_energy_j, 10.0), "{detail:?}");
            if detail == StepDetail::All {
                assert_eq!(written, 3);
                assert_eq!(a.records_not_written(), 7);
            } else {
                assert_eq!(written, 0);
            }
        }
    }

    #[test]
    fn conservation_holds_for_random_workloads() {
        // Small deterministic PRNG so the test is reproducible.
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut rnd = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut a = attr();
        let mut t = [0u64; 2];
        let mut depth = [0usize; 2];
        let mut energy = 0.0;
        let mut now = 0;
        for interval in 1..=200u64 {
            let end = interval * 1000;
            for th in 0..2usize {
                let mut evs = Vec::new();
                while t[th] + 50 < end {
                    t[th] += 1 + rnd(40);
                    if depth[th] > 0 && rnd(2) == 0 {
                        evs.push(exit(t[th], 1));
                        depth[th] -= 1;
                    } else if depth[th] < 6 {
                        evs.push(enter(["a", "b", "c"][rnd(3) as usize], t[th]));
                        depth[th] += 1;
                    }
                }
                a.on_events(th as u32, &evs);
            }
            let e = rnd(1000) as f64 / 7.0;
            energy += e;
            now = end;
            a.close_wall(end, e);
        }
        a.finish_wall(now + 10, 1.0);
        energy += 1.0;
        let r = records(&mut a);
        let self_sum: f64 = r.iter().map(|s| s.self_energy_j.0).sum();
        let t = a.totals();
        assert!(close(t.total(), energy));
        let rel = ((self_sum + t.unattributed.0) - energy).abs() / energy;
        assert!(rel < 1e-9, "relative error {rel}");
        // Inclusive energy of roots equals the sum of self energy of the whole tree.
        let roots: f64 = r
            .iter()
            .filter(|s| s.parent.is_none())
            .map(|s| s.energy_j.0)
            .sum();
        assert!(((roots - self_sum) / self_sum).abs() < 1e-9);
        assert_eq!(a.orphan_exits(), 0);
    }

    fn energy(total: f64, domains: &[f64]) -> Energy {
        let mut e = Energy::total_only(Joules(total));
        e.add_band(Joules(total * 0.5), Joules(total * 2.0));
        for (i, d) in domains.iter().enumerate() {
            e.add_domain(i, Joules(*d));
        }
        e
    }

    #[test]
    fn threads_get_energy_by_cpu_share_and_idle_steps_get_none() {
        let mut a = attr();
        // Both threads have a step open for the whole interval; thread 0 burned 3x the CPU of
        // thread 1; a third, unregistered thread (the rest of the process) burned the rest.
        a.on_events(0, &[enter("busy", 0), exit(1000, 0)]);
        a.on_events(1, &[enter("waiting", 0), exit(1000, 0)]);
        let w = Weights::Cpu {
            process_ns: 1000,
            threads: vec![(0, 600), (1, 200)],
            unmarked_ns: 0,
        };
        a.close_interval(1000, &energy(100.0, &[]).into(), &w);
        let r = records(&mut a);
        let e = |n: &str| r.iter().find(|s| s.name == n).unwrap().energy_j;
        assert!(close(e("busy"), 60.0), "{}", e("busy"));
        assert!(close(e("waiting"), 20.0));
        assert!(close(a.totals().unattributed.0, 20.0));
    }

    #[test]
    fn unmarked_threads_cpu_goes_to_open_steps_by_wall_time_when_asked() {
        // Thread 0 waits in "batch" for the whole interval (it burned 100 of 1000 ns of CPU);
        // thread 1 has "log" open for half of it (100 ns of CPU); a pool of threads that never
        // mark a step (BLAS, a PyTorch intra-op pool) burned 700 ns; the last 100 ns is the
        // aggregator's, which is neither.
        let run = |to_steps: bool| {
            let mut a = attr().with_unmarked_to_steps(to_steps);
            a.on_events(0, &[enter("batch", 0), exit(1000, 0)]);
            a.on_events(1, &[enter("log", 0), exit(500, 0)]);
            let w = Weights::Cpu {
                process_ns: 1000,
                threads: vec![(0, 100), (1, 100)],
                unmarked_ns: 700,
            };
            a.close_interval(1000, &energy(100.0, &[]).into(), &w);
            let r = records(&mut a);
            let e = |n: &str| r.iter().find(|s| s.name == n).unwrap().energy_j;
            (e("batch").0, e("log").0, a.totals().unattributed.0)
        };
        let (batch, log, un) = run(false);
        assert!(close(batch, 10.0) && close(log, 5.0), "{batch} {log}");
        assert!(close(un, 85.0), "{un}");
        // 70 J over 1500 busy ns: batch 1000 ns of them, log 500 ns.
        let (batch, log, un) = run(true);
        assert!(close(batch, 10.0 + 70.0 * 2.0 / 3.0), "{batch}");
        assert!(close(log, 5.0 + 70.0 / 3.0), "{log}");
        assert!(
            close(un, 15.0),
            "the idle half of log's thread and the aggregator: {un}"
        );
        assert!(close(batch + log + un, 100.0), "conservation");
    }

    #[test]
    fn unmarked_threads_cpu_with_no_step_open_stays_unattributed() {
        let mut a = attr().with_unmarked_to_steps(true);
        let w = Weights::Cpu {
            process_ns: 1000,
            threads: vec![(0, 0)],
            unmarked_ns: 1000,
        };
        a.close_interval(1000, &energy(50.0, &[]).into(), &w);
        assert!(close(a.totals().unattributed.0, 50.0));
    }

    #[test]
    fn a_threads_share_is_split_across_its_steps_by_wall_time() {
        let mut a = attr();
        // Thread 0: step a for 250 ns, step b for 500 ns, no step for 250 ns of the interval.
        a.on_events(
            0,
            &[enter("a", 0), exit(250, 0), enter("b", 250), exit(750, 0)],
        );
        let w = Weights::Cpu {
            process_ns: 800,
            threads: vec![(0, 800)],
            unmarked_ns: 0,
        };
        a.close_interval(1000, &energy(40.0, &[]).into(), &w);
        let r = records(&mut a);
        assert!(close(r[0].energy_j, 10.0));
        assert!(close(r[1].energy_j, 20.0));
        assert!(close(a.totals().unattributed.0, 10.0));
    }

    #[test]
    fn domains_band_and_short_flags_travel_with_the_energy() {
        let mut a = Attributor::new(StepDetail::All, 1 << 20)
            .with_tick(100)
            .with_domains(vec!["package-0".into(), "dram-0".into()])
            .with_band(true);
        a.add_thread(0);
        a.on_events(
            0,
            &[
                enter("long", 0),
                enter("blip", 10),
                exit(20, 0),
                exit(300, 0),
            ],
        );
        a.close_interval(300, &energy(30.0, &[24.0, 6.0]).into(), &Weights::Wall);
        let r = records(&mut a);
        let long = r.iter().find(|s| s.name == "long").unwrap();
        let blip = r.iter().find(|s| s.name == "blip").unwrap();
        assert!(blip.short && !long.short);
        let d = long.energy_by_domain.as_ref().unwrap();
        assert!(close(d["package-0"], 24.0) && close(d["dram-0"], 6.0));
        assert!(close(long.energy_low_j.unwrap(), 15.0));
        assert!(close(long.energy_high_j.unwrap(), 60.0));
        let bd = blip.energy_by_domain.as_ref().unwrap();
        assert!(close(bd["package-0"] + bd["dram-0"], blip.energy_j));
        let sum = a.summaries();
        let ls = sum.iter().find(|s| s.name == "long").unwrap();
        assert!(close(ls.energy_high_j.unwrap(), 60.0));
    }

    #[test]
    fn cpu_weighted_conservation_with_random_workloads() {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut rnd = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut a = attr();
        let mut t = [0u64; 2];
        let mut depth = [0usize; 2];
        let mut total = 0.0;
        for interval in 1..=300u64 {
            let end = interval * 1000;
            for th in 0..2usize {
                let mut evs = Vec::new();
                while t[th] + 60 < end {
                    t[th] += 1 + rnd(60);
                    if depth[th] > 0 && rnd(2) == 0 {
                        evs.push(exit(t[th], 0));
                        depth[th] -= 1;
                    } else if depth[th] < 5 {
                        evs.push(enter(["x", "y"][rnd(2) as usize], t[th]));
                        depth[th] += 1;
                    }
                }
                a.on_events(th as u32, &evs);
            }
            let e = rnd(500) as f64 / 3.0;
            total += e;
            let w = Weights::Cpu {
                process_ns: 1000 + rnd(1000),
                threads: vec![(0, rnd(1000)), (1, rnd(1000))],
                unmarked_ns: 0,
            };
            a.close_interval(end, &energy(e, &[]).into(), &w);
        }
        a.finish(300_010, &energy(0.0, &[]).into(), &Weights::Wall);
        let r = records(&mut a);
        let self_sum: f64 = r.iter().map(|s| s.self_energy_j.0).sum();
        let un = a.totals().unattributed.0;
        let rel = ((self_sum + un) - total).abs() / total;
        assert!(rel < 1e-9, "relative error {rel}");
        assert!(un >= -1e-9 && un <= total);
    }

    fn gpu_enter(name: &'static str, t: u64) -> Event {
        Event::enter(name, t, 0, true)
    }

    /// 100 J of CPU-side energy and 200 J of GPU energy (domain channel 1, `gpu-0`).
    fn cpu_and_gpu(cpu: f64, gpu: f64) -> IntervalEnergy {
        let mut c = Energy::total_only(Joules(cpu));
        c.add_domain(0, Joules(cpu));
        let mut g = Energy::total_only(Joules(gpu));
        g.add_domain(1, Joules(gpu));
        IntervalEnergy { cpu: c, gpu: g }
    }

    fn three_threads() -> Attributor {
        let mut a = Attributor::new(StepDetail::All, 1 << 20)
            .with_domains(vec!["package-0".into(), "gpu-0".into()]);
        for t in 0..3 {
            a.add_thread(t);
        }
        a
    }

    #[test]
    fn gpu_energy_goes_to_the_gpu_step_whatever_the_cpu_does() {
        let mut a = three_threads();
        // Thread 0 waits on the GPU in `train` (almost no CPU); thread 1 logs, burning CPU in
        // a short step; thread 2 loads data in a step open the whole interval.
        a.on_events(0, &[gpu_enter("train", 0), exit(1000, 0)]);
        a.on_events(1, &[enter("log", 0), exit(100, 0)]);
        a.on_events(2, &[enter("load", 0), exit(1000, 0)]);
        let w = Weights::Cpu {
            process_ns: 1000,
            threads: vec![(0, 10), (1, 90), (2, 900)],
            unmarked_ns: 0,
        };
        a.close_interval(1000, &cpu_and_gpu(100.0, 200.0), &w);
        let r = records(&mut a);
        let get = |n: &str| r.iter().find(|s| s.name == n).unwrap();
        let (train, log, load) = (get("train"), get("log"), get("load"));
        assert!(train.gpu && !log.gpu && !load.gpu);
        let gpu = |s: &StepRecord| s.energy_by_domain.as_ref().unwrap()["gpu-0"];
        assert!(close(gpu(train), 200.0), "{train:?}");
        assert_eq!((gpu(log), gpu(load)), (0.0, 0.0));
        // CPU energy still follows CPU time: 1 %, 9 % (of which the step covered a tenth), 90 %.
        assert!(close(train.energy_j, 201.0), "{}", train.energy_j);
        assert!(close(log.energy_j, 0.9), "{}", log.energy_j);
        assert!(close(load.energy_j, 90.0));
        let self_sum: f64 = r.iter().map(|s| s.self_energy_j.0).sum();
        assert!(close(self_sum + a.totals().unattributed.0, 300.0));
        assert!(
            a.summaries()
                .iter()
                .find(|s| s.name == "train")
                .unwrap()
                .gpu
        );
    }

    #[test]
    fn several_gpu_steps_share_by_wall_time_overlap() {
        let mut a = three_threads();
        a.on_events(0, &[gpu_enter("a", 0), exit(1000, 0)]);
        a.on_events(1, &[gpu_enter("b", 500), exit(1000, 0)]);
        a.on_events(2, &[enter("cpu_only", 0), exit(1000, 0)]);
        let w = Weights::Cpu {
            process_ns: 300,
            threads: vec![(0, 100), (1, 100), (2, 100)],
            unmarked_ns: 0,
        };
        a.close_interval(1000, &cpu_and_gpu(0.0, 150.0), &w);
        let r = records(&mut a);
        let e = |n: &str| r.iter().find(|s| s.name == n).unwrap().energy_j.0;
        assert!(close(e("a"), 100.0) && close(e("b"), 50.0), "{r:?}");
        assert_eq!(e("cpu_only"), 0.0);
        assert!(close(a.totals().unattributed.0, 0.0));
    }

    #[test]
    fn without_a_gpu_step_gpu_energy_follows_open_steps_by_wall_time_else_unattributed() {
        let mut a = three_threads();
        a.on_events(0, &[enter("a", 0), exit(750, 0)]);
        a.on_events(1, &[enter("b", 0), exit(250, 0)]);
        // Thread 1 used all the CPU: by CPU time it would take everything.
        let w = Weights::Cpu {
            process_ns: 100,
            threads: vec![(0, 0), (1, 100)],
            unmarked_ns: 0,
        };
        a.close_interval(1000, &cpu_and_gpu(0.0, 100.0), &w);
        let r = records(&mut a);
        let e = |n: &str| r.iter().find(|s| s.name == n).unwrap().energy_j.0;
        assert!(close(e("a"), 75.0) && close(e("b"), 25.0), "{r:?}");
        // No step open at all: the GPU energy is unattributed.
        a.close_interval(2000, &cpu_and_gpu(0.0, 40.0), &w);
        assert!(close(a.totals().unattributed.0, 40.0));
        assert!(close(a.totals().total(), 140.0));
    }

    #[test]
    fn a_mark_makes_the_open_step_a_gpu_step_from_then_on_and_children_share_it() {
        let mut a = three_threads();
        // `outer` becomes a GPU step at 200; `inner` (not marked) runs inside it 400..600;
        // thread 1's plain step is open throughout.
        a.on_events(
            0,
            &[
                enter("outer", 0),
                Event::gpu_mark(200),
                enter("inner", 400),
                exit(600, 0),
                exit(1000, 0),
            ],
        );
        a.on_events(1, &[enter("plain", 0), exit(1000, 0)]);
        a.close_interval(1000, &cpu_and_gpu(0.0, 80.0), &Weights::Wall);
        let r = records(&mut a);
        let get = |n: &str| r.iter().find(|s| s.name == n).unwrap();
        // GPU-busy time: 800 ns on thread 0 (200 of them in `inner`).
        assert!(close(get("inner").energy_j, 20.0), "{r:?}");
        assert!(close(get("outer").self_energy_j, 60.0));
        assert!(close(get("outer").energy_j, 80.0));
        assert!(get("outer").gpu && !get("inner").gpu);
        assert_eq!(get("plain").energy_j.0, 0.0);
    }

    #[test]
    fn gpu_split_conserves_energy_over_random_workloads() {
        let mut seed = 0x1234_5678_9ABC_DEF1u64;
        let mut rnd = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut a = three_threads();
        let mut t = [0u64; 3];
        let mut depth = [0usize; 3];
        let mut total = 0.0;
        for interval in 1..=200u64 {
            let end = interval * 1000;
            for th in 0..3usize {
                let mut evs = Vec::new();
                while t[th] + 60 < end {
                    t[th] += 1 + rnd(60);
                    if depth[th] > 0 && rnd(2) == 0 {
                        evs.push(exit(t[th], 0));
                        depth[th] -= 1;
                    } else if depth[th] < 4 {
                        evs.push(if rnd(3) == 0 {
                            gpu_enter("g", t[th])
                        } else {
                            enter("c", t[th])
                        });
                        depth[th] += 1;
                    }
                }
                a.on_events(th as u32, &evs);
            }
            let (c, g) = (rnd(300) as f64 / 7.0, rnd(300) as f64 / 3.0);
            total += c + g;
            let w = Weights::Cpu {
                process_ns: 1000,
                threads: vec![(0, rnd(300)), (1, rnd(300)), (2, rnd(300))],
                unmarked_ns: 0,
            };
            a.close_interval(end, &cpu_and_gpu(c, g), &w);
        }
        a.finish(200_010, &IntervalEnergy::ZERO, &Weights::Wall);
        let r = records(&mut a);
        let self_sum: f64 = r.iter().map(|s| s.self_energy_j.0).sum();
        let un = a.totals().unattributed.0;
        assert!(((self_sum + un) - total).abs() / total < 1e-9);
        assert!(un >= -1e-9);
        for s in &r {
            assert!(s.energy_j.0 + 1e-9 >= s.self_energy_j.0, "{s:?}");
        }
    }
}
