//! The aggregator thread of a run: at every tick it drains the threads' rings, samples the
//! energy sources ([`crate::sampler`]), closes the interval in the [`Attributor`], and writes
//! step, power and control records; at the end, the summaries and `run_end`. Also what Carina
//! itself costs the run (`run_end.own_cost`).

use crate::attribution::{Attributor, Energy, IntervalEnergy, Weights};
use crate::config::{SessionConfig, StartError};
use crate::record::{
    Attribution, EnergyKind, EnergySource, OwnCost, Record, RunEnd, RunStart, SCHEMA, Scope,
    StepSummary, UnmarkedThreads,
};
use crate::sampler::Sampler;
use crate::share::{CpuShare, ShareTarget};
use crate::sink::SinkError;
use crate::summary::{Additions, RunSummary};
use carina_core::recorder::{Event, Registry, ThreadHandle};
use carina_core::units::{GramsCo2e, Joules, Seconds};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// `Control::items_override` when no item count was set.
pub(crate) const NO_OVERRIDE: u64 = u64::MAX;

/// What the session and its aggregator thread share.
pub(crate) struct Control {
    pub(crate) stop: Mutex<bool>,
    pub(crate) wake: Condvar,
    pub(crate) items_override: AtomicU64,
    /// Handed over by [`Session::finish_with`](crate::Session::finish_with); taken when
    /// `run_end` is written.
    pub(crate) additions: Mutex<Option<Additions>>,
}

/// A registered thread and the CPU time it had at the last tick.
struct Tracked {
    handle: ThreadHandle,
    last_cpu: Option<u64>,
}

/// The aggregator thread's state: drains the rings, samples the sources, attributes, writes.
pub(crate) struct Aggregator {
    cfg: SessionConfig,
    registry: Arc<Registry>,
    origin: u64,
    started: Instant,
    started_at: jiff::Timestamp,
    attributor: Attributor,
    threads: Vec<Tracked>,
    sampler: Sampler,
    last_process_cpu: u64,
    /// This (the aggregator's) thread's CPU clock at the previous tick: its time is not an
    /// unmarked thread's work for the steps.
    last_own_cpu: u64,
    cpu_weighted: bool,
    scratch: Vec<Event>,
    sink_errors: u64,
    retired_dropped: u64,
    sources: Vec<EnergySource>,
    /// Events drained at a tick that are newer than the tick; applied after it closes.
    pending_carry: Vec<(u32, Vec<Event>)>,
    /// Wall-clock time of the last energy sample (start of the open interval).
    last_sample_at: jiff::Timestamp,
    /// The open `power` window: its start (ns since the origin) and its energy so far.
    power_from_ns: u64,
    power_acc: Energy,
    /// Whether a used source is an estimate (then figures carry a low/high band).
    estimated: bool,
    /// Folded step totals of threads already retired, per name.
    folded: Vec<carina_core::recorder::Fold>,
    /// Carina's own cost so far.
    own: OwnAccounts,
    /// `Step::gpu` marks lost by threads already retired.
    marks_lost: u64,
    /// Steps left open by threads already retired (leaked guards), and guards they dropped out
    /// of order (issue 18).
    leaked: u64,
    out_of_order: u64,
    /// Of exited threads: lost segments of recorded steps (`ThreadExit::segments_lost`) and
    /// steps dropped because the fold table was full (`ThreadExit::fold_names_full`).
    segments_lost: u64,
    fold_names_full: u64,
}

/// What Carina itself costs the run, accumulated at every tick on the aggregator thread.
#[derive(Debug, Default)]
struct OwnAccounts {
    /// The aggregator thread's CPU clock at the previous tick.
    last_thread_ns: Option<u64>,
    aggregator_cpu_ns: u64,
    aggregator_energy_j: f64,
    /// The run's CPU time (its share target's: this process, or a process tree) and the
    /// CPU-side energy that stands for it, over the run.
    target_cpu_ns: u64,
    target_energy_j: f64,
    /// CPU time of the aggregator outside the target (`carina run` measures its command's
    /// tree, not itself).
    outside_cpu_ns: u64,
    /// One step's cost, calibrated at start.
    step_cost_ns: f64,
}

impl OwnAccounts {
    /// Adds an interval in which the run's share target used `target_ns` of CPU time, which
    /// the run's CPU-side energy `target_energy_j` stands for. The aggregator's energy is its
    /// CPU time at that rate: part of the run's energy when the aggregator is inside the target
    /// (a library run), on top of it when it is not (`outside`: `carina run`). Must run on the
    /// aggregator thread.
    fn account(&mut self, target_energy_j: f64, target_ns: u64, outside: bool) {
        let Some(now) = carina_core::cpuclock::this_thread_ns() else {
            return;
        };
        let d = self
            .last_thread_ns
            .replace(now)
            .map_or(0, |last| now.saturating_sub(last));
        self.aggregator_cpu_ns += d;
        self.target_cpu_ns += target_ns;
        self.target_energy_j += target_energy_j;
        if outside {
            self.outside_cpu_ns += d;
        }
        if target_ns > 0 {
            // Inside the target its CPU time is part of `target_ns`: never more than all of it.
            let part = d as f64 / target_ns as f64;
            let part = if outside { part } else { part.min(1.0) };
            self.aggregator_energy_j += target_energy_j * part;
        }
    }

    /// The run's `own_cost` once `steps` steps were counted and `bytes` written.
    fn cost(&self, steps: u64, bytes: u64) -> OwnCost {
        let steps_cpu_s = steps as f64 * self.step_cost_ns / 1e9;
        let target_s = self.target_cpu_ns as f64 / 1e9;
        let per_cpu_s = if target_s > 0.0 {
            self.target_energy_j / target_s
        } else {
            0.0
        };
        let agg_s = self.aggregator_cpu_ns as f64 / 1e9;
        let all_s = target_s + self.outside_cpu_ns as f64 / 1e9;
        OwnCost {
            aggregator_cpu_s: Seconds(agg_s),
            aggregator_energy_j: Joules(self.aggregator_energy_j),
            step_cost_ns: self.step_cost_ns,
            steps_cpu_s: Seconds(steps_cpu_s),
            steps_energy_j: Joules(steps_cpu_s * per_cpu_s),
            bytes_written: bytes,
            cpu_share: if all_s > 0.0 {
                ((agg_s + steps_cpu_s) / all_s).min(1.0)
            } else {
                0.0
            },
        }
    }
}

/// Shortest `power` window: ticks are coalesced until this much time has passed, so a run at a
/// 100 ms sampling interval writes one power record a second (3 600 an hour), not ten.
const POWER_WINDOW_NS: u64 = 1_000_000_000;

impl Aggregator {
    pub(crate) fn new(mut cfg: SessionConfig, registry: Arc<Registry>, origin: u64) -> Self {
        let sampler = Sampler::new(
            std::mem::take(&mut cfg.probes),
            cfg.scope,
            CpuShare::with_target(cfg.proc_root.clone(), cfg.share_target),
        );
        let mut sources = sampler.sources();
        let band = sampler.estimated();
        sources.extend(std::mem::take(&mut cfg.unused_sources));
        let tick_ns = cfg.sample_interval.as_nanos().min(u128::from(u64::MAX)) as u64;
        Aggregator {
            attributor: Attributor::new(cfg.detail, cfg.max_pending_records)
                .with_cross_thread_wait(true)
                .with_tick(tick_ns)
                .with_domains(sampler.domains().to_vec())
                .with_band(band)
                .with_unmarked_to_steps(cfg.unmarked_threads == UnmarkedThreads::OpenSteps),
            estimated: band,
            last_process_cpu: carina_core::cpuclock::process_ns().unwrap_or(0),
            last_own_cpu: 0,
            cpu_weighted: false,
            cfg,
            registry,
            origin,
            started: Instant::now(),
            started_at: jiff::Timestamp::now(),
            threads: Vec::new(),
            sampler,
            scratch: Vec::new(),
            sink_errors: 0,
            retired_dropped: 0,
            sources,
            pending_carry: Vec::new(),
            last_sample_at: jiff::Timestamp::now(),
            power_from_ns: 0,
            power_acc: Energy::ZERO,
            folded: Vec::new(),
            own: OwnAccounts::default(),
            marks_lost: 0,
            leaked: 0,
            out_of_order: 0,
            segments_lost: 0,
            fold_names_full: 0,
        }
    }

    /// Reads the sources once at the run's t = 0 and forgets their delta (energy from before
    /// the run, since each probe opened); calibrates the cost of a step.
    pub(crate) fn baseline(&mut self, step_cost_ns: f64) {
        self.own.step_cost_ns = step_cost_ns;
        self.sampler.sample(0);
        self.sampler.reset();
        for w in self.sampler.take_warnings() {
            self.warn_once(w);
        }
    }

    /// Writes `run_start` to every sink and puts it in their files before the run starts, so a
    /// process that exits or aborts at once leaves a readable (incomplete) run file, never an
    /// empty one. A run file (`cfg.run_file`, the first sink) that refuses it: with
    /// `require_run_file`, an error (the caller removes the file); without, the file is
    /// removed, the run goes on without it and says so in its warnings. Other sinks' failures
    /// are counted as any write's.
    pub(crate) fn write_start(&mut self) -> Result<(), StartError> {
        let start = Record::RunStart(RunStart {
            schema: SCHEMA,
            run_id: self.cfg.run_id.clone(),
            job: self.cfg.job.clone(),
            host: crate::naming::hostname(),
            pid: std::process::id(),
            started_at: self.started_at,
            energy_sources: self.sources.clone(),
            carbon: self.cfg.carbon.info(),
            steps: Some(self.cfg.detail),
            sample_interval_s: Seconds(self.cfg.sample_interval.as_secs_f64()),
            scope: Some(self.cfg.share_target.run_scope(self.cfg.scope)),
            carina_version: env!("CARGO_PKG_VERSION").into(),
        });
        if let Some(path) = self.cfg.run_file.clone()
            && let Some(file) = self.cfg.sinks.first_mut()
            && let Err(e) = file.write(&start).and_then(|()| file.checkpoint())
        {
            let source = match e {
                SinkError::Io { source, .. } => source,
                other => std::io::Error::other(other.to_string()),
            };
            // Nothing of the run is in it: no empty or partial file is left behind.
            self.cfg.sinks.remove(0);
            self.cfg.run_file = None;
            let _ = std::fs::remove_file(&path);
            let err = StartError::RunStart { path, source };
            if self.cfg.require_run_file {
                return Err(err);
            }
            let w = format!("{err}; best effort: this run writes no run file (removed)");
            eprintln!("carina: {w}");
            self.cfg.warnings.push(w);
            self.write_rest_from(0, &start);
            return Ok(());
        }
        let skip = usize::from(self.cfg.run_file.is_some());
        self.write_rest_from(skip, &start);
        Ok(())
    }

    /// Writes `rec` to the sinks from index `from` and checkpoints them.
    fn write_rest_from(&mut self, from: usize, rec: &Record) {
        for i in from..self.cfg.sinks.len() {
            let s = &mut self.cfg.sinks[i];
            if let Err(e) = s.write(rec).and_then(|()| s.checkpoint()) {
                self.sink_errors += 1;
                if self.sink_errors == 1 {
                    self.cfg
                        .warnings
                        .push(format!("{e}; later records may be missing"));
                }
            }
        }
    }

    /// The run file, if the run still writes one (see [`Self::write_start`]).
    pub(crate) fn run_file(&self) -> Option<&std::path::Path> {
        self.cfg.run_file.as_deref()
    }

    fn now_ns(&self) -> u64 {
        self.registry
            .clock
            .delta_as_nanos(self.origin, self.registry.clock.raw())
    }

    fn write(&mut self, rec: &Record) {
        for s in self.cfg.sinks.iter_mut() {
            if let Err(e) = s.write(rec) {
                self.sink_errors += 1;
                if self.sink_errors == 1 {
                    self.cfg
                        .warnings
                        .push(format!("{e}; later records may be missing"));
                }
            }
        }
    }

    /// Lets every sink put what it holds into its file as whole lines (crash durability).
    fn checkpoint(&mut self) {
        for s in self.cfg.sinks.iter_mut() {
            if let Err(e) = s.checkpoint() {
                self.sink_errors += 1;
                if self.sink_errors == 1 {
                    // What happens next is the sink's to say: a file keeps its records, an
                    // exporter (carina-otel) says in its own message what becomes of its data.
                    self.cfg.warnings.push(match e {
                        SinkError::Io { .. } => format!(
                            "{e}; the records stay in memory and are written when the file \
                             accepts them"
                        ),
                        SinkError::Other(_) => e.to_string(),
                    });
                }
            }
        }
    }

    pub(crate) fn run(mut self, ctl: &Control) -> RunSummary {
        self.own.last_thread_ns = carina_core::cpuclock::this_thread_ns();

        let tick = self.cfg.sample_interval.max(Duration::from_millis(1));
        let mut next_tick = Instant::now() + tick;
        // Drain more often than we tick while events flow, so bursts do not overflow the rings;
        // back off to the tick when idle.
        let min_wait = Duration::from_millis(1).min(tick);
        let mut drain_wait = min_wait;
        loop {
            let stop = {
                let guard = ctl.stop.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                let wait = next_tick.saturating_duration_since(now).min(drain_wait);
                if *guard || wait.is_zero() {
                    *guard
                } else {
                    let (g, _) = ctl
                        .wake
                        .wait_timeout(guard, wait)
                        .unwrap_or_else(|e| e.into_inner());
                    *g
                }
            };
            if stop {
                break;
            }
            if Instant::now() >= next_tick {
                self.tick(false);
                next_tick += tick;
                let now = Instant::now();
                if next_tick < now {
                    // We fell behind (suspended, overloaded): skip missed ticks, lose nothing.
                    next_tick = now + tick;
                }
            } else {
                let fill = self.drain_all(u64::MAX, false);
                drain_wait = if fill > 0.25 {
                    // Busy: go round again at once.
                    Duration::ZERO
                } else if fill > 0.01 {
                    min_wait
                } else {
                    (drain_wait * 2).clamp(min_wait, tick)
                };
            }
        }
        self.tick(true);
        self.finish(ctl)
    }

    /// Writes control events emitted since the last look.
    fn write_controls(&mut self) {
        let events = std::mem::take(
            &mut *self
                .registry
                .controls
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        let now_ns = self.now_ns();
        let now = jiff::Timestamp::now();
        for (t, ev) in events {
            let t_ns = self.registry.clock.delta_as_nanos(self.origin, t);
            let age = jiff::SignedDuration::from_nanos(now_ns.saturating_sub(t_ns) as i64);
            let at = now.checked_sub(age).unwrap_or(now);
            let rec = Record::Control(crate::record::ControlRecord {
                t_s: Seconds(t_ns as f64 / 1e9),
                at,
                policy: ev.policy,
                mode: ev.mode,
                allowed: ev.allowed,
                nominal: ev.nominal,
                reason: ev.reason,
                next_peak: ev.next_peak_ms.and_then(|(a, b)| {
                    Some(crate::record::PeakWindowAt {
                        start: jiff::Timestamp::from_millisecond(a).ok()?,
                        end: jiff::Timestamp::from_millisecond(b).ok()?,
                    })
                }),
            });
            self.write(&rec);
        }
    }

    /// Takes threads registered since the last look into the aggregator's list.
    fn adopt_new_threads(&mut self) {
        let mut fresh = Vec::new();
        self.registry.take_new_threads(&mut fresh);
        for th in fresh {
            self.attributor.add_thread(th.handle_index());
            let rec = Record::Thread(crate::record::ThreadInfo {
                index: th.index,
                name: th.name.clone(),
            });
            self.write(&rec);
            self.threads.push(Tracked {
                last_cpu: th.cpu_at_start,
                handle: th,
            });
        }
    }

    /// Drains every ring; applies events up to `limit_ns` and keeps later ones in `carry`.
    /// With `retire`, forgets threads that exited and are fully drained (only at ticks, after
    /// their final CPU time was sampled). Returns the highest ring fill ratio seen.
    fn drain_all(&mut self, limit_ns: u64, retire: bool) -> f64 {
        self.adopt_new_threads();
        self.write_controls();
        let mut max_fill: f64 = 0.0;
        let mut carry: Vec<(u32, Vec<Event>)> = Vec::new();
        for tr in self.threads.iter_mut() {
            let th = &mut tr.handle;
            max_fill = max_fill.max(th.consumer.pending() as f64 / th.consumer.capacity() as f64);
            self.scratch.clear();
            th.consumer.drain_into(&mut self.scratch);
            for ev in self.scratch.iter_mut() {
                let t = ev.time_mut();
                *t = self.registry.clock.delta_as_nanos(self.origin, *t);
            }
            let split = self.scratch.partition_point(|ev| ev.time() <= limit_ns);
            self.attributor.on_events(th.index, &self.scratch[..split]);
            if split < self.scratch.len() {
                carry.push((th.index, self.scratch[split..].to_vec()));
            }
        }
        if retire {
            let attributor = &mut self.attributor;
            let retired_dropped = &mut self.retired_dropped;
            let marks_lost = &mut self.marks_lost;
            let leaked = &mut self.leaked;
            let out_of_order = &mut self.out_of_order;
            let segments_lost = &mut self.segments_lost;
            let fold_names_full = &mut self.fold_names_full;
            let folded = &mut self.folded;
            self.threads.retain(|tr| {
                let th = &tr.handle;
                let gone = th.consumer.is_closed() && th.consumer.pending() == 0;
                if gone {
                    *retired_dropped += th.consumer.dropped();
                    *marks_lost += th.exit.marks_lost.load(Ordering::Relaxed);
                    *leaked += th.exit.leaked.load(Ordering::Relaxed);
                    *out_of_order += th.exit.out_of_order.load(Ordering::Relaxed);
                    *segments_lost += th.exit.segments_lost.load(Ordering::Relaxed);
                    *fold_names_full += th.exit.fold_names_full.load(Ordering::Relaxed);
                    merge_folds(folded, &th.folds.snapshot());
                    attributor.close_thread(th.index);
                }
                !gone
            });
        }
        self.pending_carry = carry;
        max_fill
    }

    /// CPU time of every registered thread and of the process since the last tick.
    fn sample_cpu(&mut self) -> Weights {
        let process = carina_core::cpuclock::process_ns();
        let mut threads = Vec::with_capacity(self.threads.len());
        let mut complete = process.is_some();
        for tr in self.threads.iter_mut() {
            let th = &tr.handle;
            // A closed ring means the thread stored its final CPU time before closing it.
            let now = if th.consumer.is_closed() {
                Some(th.exit.final_cpu_ns.load(Ordering::Acquire)).filter(|&v| v != u64::MAX)
            } else {
                th.cpu_clock.and_then(|c| c.read_ns()).or_else(|| {
                    Some(th.exit.final_cpu_ns.load(Ordering::Acquire)).filter(|&v| v != u64::MAX)
                })
            };
            match (now, tr.last_cpu) {
                (Some(now), Some(last)) => {
                    threads.push((th.index, now.saturating_sub(last)));
                    tr.last_cpu = Some(now);
                }
                (Some(now), None) => tr.last_cpu = Some(now),
                (None, _) => {
                    if th.cpu_clock.is_none() {
                        complete = false;
                    }
                }
            }
        }
        let process = process.unwrap_or(0);
        let delta = process.saturating_sub(self.last_process_cpu);
        self.last_process_cpu = process;
        let own = carina_core::cpuclock::this_thread_ns().unwrap_or(self.last_own_cpu);
        let own_delta = own.saturating_sub(self.last_own_cpu);
        self.last_own_cpu = own;
        let marked: u64 = threads.iter().map(|(_, c)| c).sum();
        if complete {
            Weights::Cpu {
                process_ns: delta,
                threads,
                unmarked_ns: delta.saturating_sub(marked).saturating_sub(own_delta),
            }
        } else {
            Weights::Wall
        }
    }

    /// Samples the sources for the interval ending at `now_ns` and applies the interval's grid
    /// intensity.
    fn sample_energy(&mut self, now_ns: u64) -> IntervalEnergy {
        let mut energy = self.sampler.sample(now_ns).energy;
        for w in self.sampler.take_warnings() {
            self.warn_once(w);
        }
        let now = jiff::Timestamp::now();
        let (g, covered) = self.cfg.carbon.g_per_kwh(self.last_sample_at, now);
        if !covered {
            self.warn_once(format!(
                "the carbon intensity series does not cover {} .. {}: the nearest value was used",
                self.last_sample_at
                    .round(jiff::Unit::Second)
                    .unwrap_or(self.last_sample_at),
                now.round(jiff::Unit::Second).unwrap_or(now)
            ));
        }
        self.last_sample_at = now;
        for part in [&mut energy.cpu, &mut energy.gpu] {
            part.set_co2e(GramsCo2e(part.total().kwh() * g));
        }
        energy
    }

    fn warn_once(&mut self, w: String) {
        // Messages that differ only in their times count as one (e.g. series coverage).
        let key: String = w.chars().take(40).collect();
        if !self.cfg.warnings.iter().any(|x| x.starts_with(&key)) && self.cfg.warnings.len() < 32 {
            self.cfg.warnings.push(w);
        }
    }

    fn tick(&mut self, last: bool) {
        self.adopt_new_threads();
        let end = self.now_ns();
        let energy = self.sample_energy(end);
        let window_closed = self.power_window(end, &energy.sum(), last);
        let weights = self.sample_cpu();
        let host_part = match self.cfg.scope {
            Scope::Host => self.sampler.last_share(),
            Scope::Process => 1.0,
        };
        let outside = self.cfg.share_target != ShareTarget::SelfProcess;
        self.own.account(
            energy.cpu.total().0 * host_part,
            self.sampler.last_target_ns(),
            outside,
        );
        self.cpu_weighted |= matches!(weights, Weights::Cpu { .. });
        self.drain_all(end, true);
        if last {
            self.warn_open_steps();
            self.attributor.finish(end, &energy, &weights);
        } else {
            self.attributor.close_interval(end, &energy, &weights);
        }
        for (index, evs) in std::mem::take(&mut self.pending_carry) {
            self.attributor.on_events(index, &evs);
        }
        let recs: Vec<_> = self.attributor.take_records().collect();
        for r in recs {
            self.write(&Record::Step(r));
        }
        // About once a second the file gets the power window and the steps so far as whole
        // lines, so a run killed with SIGKILL loses at most that much (finish fsyncs).
        if window_closed && !last {
            self.checkpoint();
        }
    }

    /// Adds a tick's energy to the open power window; writes the window once it spans
    /// [`POWER_WINDOW_NS`] or the run ends.
    fn power_window(&mut self, end_ns: u64, energy: &Energy, last: bool) -> bool {
        self.power_acc.add(energy);
        if !last && end_ns.saturating_sub(self.power_from_ns) < POWER_WINDOW_NS {
            return false;
        }
        let estimated = self.estimated;
        let acc = std::mem::replace(&mut self.power_acc, Energy::ZERO);
        let rec = Record::Power(crate::record::PowerRecord {
            start_s: Seconds(self.power_from_ns as f64 / 1e9),
            end_s: Seconds(end_ns as f64 / 1e9),
            energy_j: acc.total(),
            co2e_g: acc.co2e(),
            energy_low_j: estimated.then_some(acc.low()),
            energy_high_j: estimated.then_some(acc.high()),
        });
        self.power_from_ns = end_ns;
        self.write(&rec);
        true
    }

    /// Warns about the steps still open as the run ends (they are recorded as `unfinished`),
    /// naming them: a guard leaked with `mem::forget` never closes, and every later step of its
    /// thread becomes its child. Also counts leaked steps of threads that have exited (their
    /// folded ones included, which have no record).
    fn warn_open_steps(&mut self) {
        let leaked = self.leaked
            + self
                .threads
                .iter()
                .map(|t| t.handle.exit.leaked.load(Ordering::Relaxed))
                .sum::<u64>();
        if leaked > 0 {
            self.cfg.warnings.push(format!(
                "{leaked} steps were never closed on threads that have exited (their guards \
                 were leaked, e.g. with `mem::forget`): counted, and recorded as `unfinished` \
                 where they had a record"
            ));
        }
        let open = self.attributor.open_steps();
        if open.is_empty() {
            return;
        }
        let mut names: Vec<String> = open
            .iter()
            .take(5)
            .map(|(thread, name)| format!("`{name}` (thread {thread})"))
            .collect();
        if open.len() > 5 {
            names.push(format!("and {} more", open.len() - 5));
        }
        self.cfg.warnings.push(format!(
            "{} steps were never closed before the run ended: {}; recorded as `unfinished` (a \
             guard leaked with `mem::forget` stays open, and every later step of its thread \
             becomes its child)",
            open.len(),
            names.join(", ")
        ));
    }

    /// How the run's energy was split across steps, in words.
    fn step_split(&self) -> &'static str {
        match (self.cpu_weighted, self.cfg.unmarked_threads) {
            (true, UnmarkedThreads::OpenSteps) => {
                "thread CPU time and wall time, unmarked threads' CPU to open steps by wall time"
            }
            (true, _) => "thread CPU time and wall time",
            (false, _) => "wall time",
        }
    }

    fn finish(mut self, ctl: &Control) -> RunSummary {
        let host_j = self.sampler.host_energy().0;
        let probe_errors = self.sampler.probe_errors();
        let mut folds = std::mem::take(&mut self.folded);
        for t in &self.threads {
            merge_folds(&mut folds, &t.handle.folds.snapshot());
        }
        let folded: u64 = folds.iter().map(|f| f.count).sum();
        let mut summaries = self.attributor.summaries();
        apply_folds(&mut summaries, &folds);
        let method = self.sampler.method();
        let split = self.step_split();
        for s in &mut summaries {
            let gpu_note = if s.gpu {
                "; GPU energy by GPU-step overlap"
            } else if self.sampler.has_gpu() {
                "; GPU energy by wall time, in intervals with no GPU step open"
            } else {
                ""
            };
            s.method = Some(format!("{}; to steps by {split}{gpu_note}", method.label));
        }
        for s in &summaries {
            self.write(&Record::StepSummary(s.clone()));
        }
        let added = ctl
            .additions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_default();
        for r in &added.records {
            self.write(r);
        }
        let totals = self.attributor.totals();
        let band = if self.estimated {
            (Some(totals.channels.low()), Some(totals.channels.high()))
        } else {
            (None, None)
        };
        let dropped = self.retired_dropped
            + self
                .threads
                .iter()
                .map(|t| t.handle.consumer.dropped())
                .sum::<u64>();
        let items = match ctl.items_override.load(Ordering::Relaxed) {
            NO_OVERRIDE => summaries.iter().map(|s| s.items).max().unwrap_or(0),
            n => n,
        }
        .max(added.items);
        // Saturating: the additions come from files other processes wrote.
        let steps = self
            .attributor
            .steps()
            .saturating_add(folded)
            .saturating_add(added.steps);
        let energy_kind = EnergyKind::of_sources(&self.sources);
        let marks_lost = self.marks_lost
            + self
                .threads
                .iter()
                .map(|t| t.handle.exit.marks_lost.load(Ordering::Relaxed))
                .sum::<u64>();
        if marks_lost > 0 {
            self.cfg.warnings.push(format!(
                "{marks_lost} `Step::gpu` marks found their thread's buffer full: those steps \
                 were counted as CPU steps (use `carina::gpu_step`, which needs no extra event, \
                 or raise `buffer_capacity`)"
            ));
        }
        let out_of_order = self.out_of_order
            + self
                .threads
                .iter()
                .map(|t| t.handle.exit.out_of_order.load(Ordering::Relaxed))
                .sum::<u64>();
        if out_of_order > 0 {
            self.cfg.warnings.push(format!(
                "{out_of_order} steps ended out of order (a guard dropped while a step opened \
                 after it was still open on its thread): each exit closes the innermost open \
                 step, so those steps' names and end times may be swapped"
            ));
        }
        // Step attributes: what the bounds kept out, said once; what no record took (steps
        // folded or never closed) forgotten with the run.
        let attrs_folded: Vec<String> = summaries
            .iter()
            .filter(|s| s.attrs_folded > 0)
            .map(|s| format!("{} ({})", s.name, s.attrs_folded))
            .collect();
        if !attrs_folded.is_empty() {
            self.cfg.warnings.push(format!(
                "steps with more than {} combinations of attributes: the instances of further \
                 combinations are in their name's totals but in no `by_attrs` entry of its \
                 step_summary (their step records keep their attributes): {}",
                crate::record::MAX_ATTR_GROUPS,
                attrs_folded.join(", ")
            ));
        }
        let attrs_dropped = carina_core::attrs::take_dropped();
        if attrs_dropped > 0 {
            self.cfg.warnings.push(format!(
                "{attrs_dropped} steps were recorded without their attributes: more than {} \
                 steps with attributes were open at once",
                carina_core::attrs::MAX_PENDING
            ));
        }
        carina_core::attrs::clear();
        if folded > 0 {
            self.cfg.warnings.push(format!(
                "{folded} steps found their thread's buffer full and were counted in the step \
                 summaries only (exact counts, items and wall time; no record or energy split of \
                 their own; raise `buffer_capacity` to record them)"
            ));
        }
        let segments_lost = self.segments_lost
            + self
                .threads
                .iter()
                .map(|t| t.handle.exit.segments_lost.load(Ordering::Relaxed))
                .sum::<u64>();
        if segments_lost > 0 {
            self.cfg.warnings.push(format!(
                "{segments_lost} segments of recorded `tracing` spans found their thread's \
                 buffer full: those spans are still counted once, but that segment's time went \
                 to the enclosing step (a lost final segment leaves its step `unfinished`); \
                 raise `buffer_capacity`"
            ));
        }
        if dropped > 0 {
            let fold_names_full = self.fold_names_full
                + self
                    .threads
                    .iter()
                    .map(|t| t.handle.exit.fold_names_full.load(Ordering::Relaxed))
                    .sum::<u64>();
            let why = if fold_names_full >= dropped {
                format!(
                    "their thread's buffer was full and its fold table already held {} other \
                     step names",
                    carina_core::recorder::MAX_FOLD_NAMES
                )
            } else if fold_names_full > 0 {
                format!(
                    "their thread's buffer was full ({fold_names_full} of them also found the \
                     thread's fold table full, at {} step names)",
                    carina_core::recorder::MAX_FOLD_NAMES
                )
            } else {
                "their thread's buffer was full (polls of async steps, Python coroutines and \
                 other `carina_core::enter_segment` users are not folded)"
                    .to_owned()
            };
            self.cfg.warnings.push(format!(
                "{dropped} steps were not counted: {why}; raise `buffer_capacity`"
            ));
        }
        // What the additions bring: their steps are the session's own energy at work, so their
        // energy leaves the unattributed part and the total stays as measured.
        let dropped = dropped.saturating_add(added.dropped);
        let records_not_written = self
            .attributor
            .records_not_written()
            .saturating_add(added.records_not_written);
        if records_not_written > 0 {
            self.cfg.warnings.push(format!(
                "records_not_written: {records_not_written} step instances have no `step` record \
                 of their own (more ended between two samples than `max_pending_records`, or \
                 in a child run); they are counted in the step summaries"
            ));
        }
        let unattributed = (totals.unattributed - added.attributed).max(Joules::ZERO);
        summaries.extend(added.records.iter().filter_map(|r| match r {
            Record::StepSummary(s) => Some(s.clone()),
            _ => None,
        }));
        self.cfg.warnings.extend(added.warnings);
        // Integrations' warnings (`carina_core::recorder::add_run_warning`).
        let integration = std::mem::take(
            &mut *self
                .registry
                .warnings
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        for w in integration {
            if !self.cfg.warnings.contains(&w) {
                self.cfg.warnings.push(w);
            }
        }
        for s in summaries.iter().filter(|s| s.items == u64::MAX) {
            self.cfg.warnings.push(items_capped(&s.name));
        }
        // The run ends at its last energy sample: the span its energy covers (the summaries
        // and records written since are bookkeeping, not the job).
        let wall = if self.power_from_ns > 0 {
            self.power_from_ns as f64 / 1e9
        } else {
            self.started.elapsed().as_secs_f64()
        };
        let bytes: u64 = self.cfg.sinks.iter().map(|s| s.bytes_written()).sum();
        let own_cost = self.own.cost(self.attributor.steps() + folded, bytes);
        let energy_j = totals.total();
        let carbon_g_per_kwh = (energy_j.0 > 0.0)
            .then(|| totals.channels.co2e().0 / energy_j.kwh())
            .filter(|g| g.is_finite());
        let end = RunEnd {
            ended_at: jiff::Timestamp::now(),
            wall_s: Seconds(wall),
            energy_j: totals.total(),
            unattributed_j: unattributed,
            co2e_g: totals.channels.co2e(),
            items,
            steps,
            dropped,
            folded,
            records_not_written,
            host_energy_j: Joules(host_j),
            energy_kind,
            probe_errors,
            sink_errors: self.sink_errors,
            energy_low_j: band.0,
            energy_high_j: band.1,
            energy_by_domain: self.attributor.by_domain(&totals.channels),
            attribution: Some(if self.cpu_weighted {
                Attribution::CpuTime
            } else {
                Attribution::WallTime
            }),
            unmarked_threads: Some(self.cfg.unmarked_threads),
            warnings: self.cfg.warnings.clone(),
            method: Some(method.clone()),
            carbon_g_per_kwh,
            own_cost: Some(own_cost.clone()),
        };
        self.write(&Record::RunEnd(end.clone()));
        let mut late_sink_errors = 0;
        for s in self.cfg.sinks.iter_mut() {
            if let Err(e) = s.flush() {
                late_sink_errors += 1;
                self.cfg.warnings.push(format!("{e}"));
            }
        }
        let records_lost: u64 = self.cfg.sinks.iter().map(|s| s.records_lost()).sum();
        if records_lost > 0 {
            let file = self
                .cfg
                .run_file
                .as_ref()
                .map_or(String::new(), |p| format!(" (run file {})", p.display()));
            self.cfg.warnings.push(format!(
                "records_lost: {records_lost} records could not be written{file}: the \
                 destination kept refusing writes (a full disk?); the file is incomplete and \
                 may lack its summaries and run_end"
            ));
        }
        RunSummary {
            run_id: self.cfg.run_id.clone(),
            job: self.cfg.job.clone(),
            run_file: self.cfg.run_file.clone(),
            energy_sources: self.sources.clone(),
            scope: Some(self.cfg.share_target.run_scope(self.cfg.scope)),
            carbon: self.cfg.carbon.info(),
            summaries,
            warnings: std::mem::take(&mut self.cfg.warnings),
            end: Some(end),
            late_sink_errors,
            records_lost,
        }
    }
}

/// The warning for a step name whose item total reached `u64::MAX`: sums saturate there
/// instead of wrapping to a small number.
pub(crate) fn items_capped(name: &str) -> String {
    format!(
        "items_saturated: the item total of step `{}` reached {} (u64::MAX), where item sums \
         stop: the true total may be higher",
        name,
        u64::MAX
    )
}

/// Adds `more` into `into`, by step name.
fn merge_folds(into: &mut Vec<carina_core::recorder::Fold>, more: &[carina_core::recorder::Fold]) {
    for f in more {
        match into.iter_mut().find(|g| g.name == f.name) {
            Some(g) => {
                g.count += f.count;
                g.items = g.items.saturating_add(f.items);
                g.wall_ns = g.wall_ns.saturating_add(f.wall_ns);
                g.errors += f.errors;
                g.panics += f.panics;
            }
            None => into.push(*f),
        }
    }
}

/// Puts folded instances into the per-name summaries: counts, items, errors and wall time are
/// exact; their wall time counts as self time (their children are unknown) and their energy
/// stayed with whatever recorded step was open, or in `unattributed_j`.
fn apply_folds(summaries: &mut Vec<StepSummary>, folds: &[carina_core::recorder::Fold]) {
    for f in folds.iter().filter(|f| f.count > 0) {
        let wall = f.wall_ns as f64 / 1e9;
        match summaries.iter_mut().find(|s| s.name == f.name) {
            Some(s) => {
                s.count += f.count;
                s.items = s.items.saturating_add(f.items);
                s.wall_s += Seconds(wall);
                s.self_wall_s += Seconds(wall);
                s.errors += f.errors;
                s.panics += f.panics;
                s.max_s = s.max_s.max(Seconds(wall / f.count as f64));
            }
            None => summaries.push(StepSummary {
                name: f.name.to_owned(),
                count: f.count,
                wall_s: Seconds(wall),
                self_wall_s: Seconds(wall),
                items: f.items,
                energy_j: Joules::ZERO,
                self_energy_j: Joules::ZERO,
                co2e_g: GramsCo2e::ZERO,
                p50_s: wall / f.count as f64,
                p95_s: wall / f.count as f64,
                max_s: Seconds(wall / f.count as f64),
                errors: f.errors,
                panics: f.panics,
                energy_low_j: None,
                energy_high_j: None,
                energy_by_domain: None,
                gpu: false,
                method: None,
                by_attrs: None,
                attrs_folded: 0,
            }),
        }
    }
}
