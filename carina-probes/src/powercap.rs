//! RAPL energy counters read through the Linux powercap sysfs tree.
//!
//! The `intel_rapl` driver (also used on AMD since Zen) publishes one directory per RAPL zone
//! under `/sys/class/powercap`: `intel-rapl:N` for a socket's package (or for `psys`, the
//! platform), and `intel-rapl:N:M` for the parts inside it (`core`, `uncore`, `dram`). Each
//! holds `name`, `energy_uj` (a wrapping microjoule counter) and `max_energy_range_uj` (where
//! it wraps). [`PowercapProbe`] turns those counters into cumulative, never-decreasing joules.
//!
//! # Which zones count
//!
//! The reported domains add up to the machine's RAPL energy without counting anything twice:
//!
//! * every package (`package-0`, `package-1`, …) and every DRAM zone (`dram-<socket>`);
//! * not `core` and `uncore`: they are parts of their package, already in its counter;
//! * not `psys` when packages exist, because the platform counter includes them; `psys` is the
//!   single domain only when the machine exposes nothing else.
//!
//! What was left out is written in the [`describe`](EnergyProbe::describe) source string so a run
//! file says what the numbers cover. `intel-rapl-mmio:*` zones are ignored: they are a second
//! path to the package counter that the `intel-rapl:*` zones already cover.
//!
//! # Counter wraparound
//!
//! Counters wrap at `max_energy_range_uj` (about 262 kJ on many Intel parts, which a 300 W
//! package goes through in about 15 minutes). One wrap between two reads is plain modular
//! arithmetic, and the default: the smallest non-negative delta is taken. Several wraps (the
//! sampler was stalled) cannot be seen in the counter at all, so the probe infers them from time,
//! and only where the elapsed time calls for them: see [`PowercapProbe::read_at`] for the rule
//! and [`MaxPlausiblePower`] for the bounds it relies on.

use carina_core::{EnergyKind, EnergyProbe, EnergySource, Joules, ProbeError, ProbeScope, Watts};
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where the kernel publishes powercap zones.
pub const DEFAULT_ROOT: &str = "/sys/class/powercap";

/// Environment variable that overrides [`DEFAULT_ROOT`] in [`PowercapProbe::open_default`]
/// (fake trees in tests, containers that mount sysfs elsewhere).
pub const ROOT_ENV: &str = "CARINA_POWERCAP_ROOT";

/// Name of the source in run files.
const SOURCE_NAME: &str = "rapl-powercap";

/// Directory-name prefix of RAPL zones; `intel-rapl` alone is the control type, not a zone.
const ZONE_PREFIX: &str = "intel-rapl:";

/// Sub-zones nest one level in practice; the bound only guards against odd trees.
const MAX_ZONE_DEPTH: usize = 4;

/// The reference power that decides extra wraps is averaged over about this much time.
const REFERENCE_SPAN: Duration = Duration::from_secs(2);

/// Below this much counted time the reference power is not trusted: a counter that updates in
/// steps (every millisecond in hardware, less often in some emulations) makes the power of a
/// short interval meaningless (one step in 1 ms reads as 150 W on a 30 W package).
const REFERENCE_MIN: Duration = Duration::from_millis(50);

/// At most this many intervals make up the reference window, however short they are.
const REFERENCE_MAX_INTERVALS: usize = 64;

/// File access used by [`PowercapProbe`].
///
/// The probe reads sysfs through this trait so that tests can produce failures a real file
/// system will not give them (permission errors while running as root, say), and so that other
/// sources of the same tree can be plugged in. [`RealSysFs`] is the normal implementation.
pub trait SysFs {
    /// The whole content of the file at `path`.
    fn read_to_string(&self, path: &Path) -> io::Result<String>;

    /// The directories in `dir`, symbolic links to directories included (sysfs publishes zones
    /// as links), sorted by path.
    ///
    /// The provided implementation lists the real file system.
    fn subdirs(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let mut dirs = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            // `Path::is_dir` follows links, which is what makes `/sys/class/powercap/intel-rapl:0`
            // (a link into /sys/devices) count as a directory.
            if path.is_dir() {
                dirs.push(path);
            }
        }
        dirs.sort();
        Ok(dirs)
    }
}

/// [`SysFs`] over the real file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealSysFs;

impl SysFs for RealSysFs {
    fn read_to_string(&self, path: &Path) -> io::Result<String> {
        std::fs::read_to_string(path)
    }
}

/// Upper bounds on the average power of each kind of RAPL domain.
///
/// They decide how many whole counter wraps may have happened between two reads (see
/// [`PowercapProbe::read_at`]): an interval is never credited with more energy than its bound
/// times its duration, unless the counter itself shows more. They only need to be above any real
/// draw; they are not used for anything else. The defaults are loose on purpose, since a bound
/// below a real draw would make the probe treat a genuine wrap as a counter reset:
///
/// * package: 2000 W, four times the highest package TDP on sale (500 W, 2024 server parts);
/// * DRAM: 1000 W, several times what a fully populated socket's DIMMs draw (a few W each);
/// * psys: 3000 W, the package and DRAM bounds together, since the platform counter includes
///   both.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MaxPlausiblePower {
    /// Bound for each `package-N` domain.
    pub package: Watts,
    /// Bound for each `dram-N` domain.
    pub dram: Watts,
    /// Bound for the `psys` domain.
    pub psys: Watts,
}

impl Default for MaxPlausiblePower {
    fn default() -> Self {
        MaxPlausiblePower {
            package: Watts(2000.0),
            dram: Watts(1000.0),
            psys: Watts(3000.0),
        }
    }
}

/// The kind of a reported domain; picks its [`MaxPlausiblePower`] bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Package,
    Dram,
    Psys,
}

impl Kind {
    fn bound(self, p: &MaxPlausiblePower) -> f64 {
        match self {
            Kind::Package => p.package.0,
            Kind::Dram => p.dram.0,
            Kind::Psys => p.psys.0,
        }
    }
}

/// One reported domain and its counter state.
#[derive(Debug)]
struct Domain {
    name: String,
    kind: Kind,
    energy_path: PathBuf,
    /// Where the counter wraps, µJ.
    range_uj: u64,
    /// Bound used by the wrap inference, W.
    max_w: f64,
    /// Counter value and time of the last good read; `None` after the zone could not be read,
    /// so that the next good read starts afresh rather than trusting an old baseline.
    last: Option<(u64, Duration)>,
    /// Energy counted since the probe opened, µJ; integers keep the sum exact over long runs.
    total_uj: u128,
    /// The recent intervals counted with the smallest delta (no extra wrap), whose mean power
    /// is the expectation that decides extra wraps; see [`PowercapProbe::read_at`].
    reference: Reference,
    /// Whether the last read failed, so that a vanished zone warns once, not at every tick.
    failing: bool,
}

/// RAPL energy from `/sys/class/powercap` (or another root), as an [`EnergyProbe`].
///
/// [`read`](EnergyProbe::read) reports, per domain, the joules consumed since
/// [`open`](Self::open). The counters cover the whole machine, so the scope is
/// [`ProbeScope::Host`].
///
/// # A zone that stops being readable
///
/// If a domain's `energy_uj` cannot be read or parsed during a run (its directory disappears when
/// the last CPU of a socket goes offline, or the driver is unloaded), `read` does not fail for
/// that: the domain keeps its last cumulative value, the other domains keep advancing, and a
/// warning is queued for [`take_warnings`](Self::take_warnings). If the zone comes back, counting
/// resumes from its new counter value; the energy of the gap is not counted, because a
/// re-created zone's counter cannot be trusted to continue the old one. Only when no domain at
/// all could be read does `read` return the error (after still filling `out` with the frozen
/// values), so that the caller learns the source is gone.
pub struct PowercapProbe {
    root: PathBuf,
    fs: Box<dyn SysFs + Send>,
    domains: Vec<Domain>,
    /// What was found and not added, for the source string.
    notes: Vec<String>,
    opened: Instant,
    warnings: Vec<String>,
}

impl fmt::Debug for PowercapProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PowercapProbe")
            .field("root", &self.root)
            .field("domains", &self.domains)
            .field("notes", &self.notes)
            .field("warnings", &self.warnings)
            .finish_non_exhaustive()
    }
}

impl PowercapProbe {
    /// Opens the RAPL zones under `root` (normally [`DEFAULT_ROOT`]) and takes the first
    /// reading of every counter, so that a counter that cannot be read fails here rather than in
    /// the middle of a run.
    ///
    /// # Errors
    ///
    /// * [`ProbeError::Unavailable`] when `root` has no RAPL zone, or when `energy_uj` is
    ///   readable by root only (the message says how to grant access);
    /// * [`ProbeError::Parse`] when a counter file does not hold a number;
    /// * [`ProbeError::Io`] for other read failures.
    pub fn open(root: impl Into<PathBuf>) -> Result<PowercapProbe, ProbeError> {
        Self::open_with(root, Box::new(RealSysFs))
    }

    /// Opens the tree named by `CARINA_POWERCAP_ROOT` when it is set and not empty, else
    /// [`DEFAULT_ROOT`]. Errors as for [`open`](Self::open).
    pub fn open_default() -> Result<PowercapProbe, ProbeError> {
        let root = std::env::var_os(ROOT_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT));
        Self::open(root)
    }

    /// Same as [`open`](Self::open), reading files through `fs`: for tests that need failures
    /// the real file system will not produce, and for trees that are not on a local file system.
    pub fn open_with(
        root: impl Into<PathBuf>,
        fs: Box<dyn SysFs + Send>,
    ) -> Result<PowercapProbe, ProbeError> {
        let root = root.into();
        let zones = discover(fs.as_ref(), &root)?;
        let (picked, notes) = choose_domains(fs.as_ref(), &root, zones)?;
        let bounds = MaxPlausiblePower::default();
        let mut domains = Vec::with_capacity(picked.len());
        for p in picked {
            let range_path = p.dir.join("max_energy_range_uj");
            let range_uj = read_counter(fs.as_ref(), &root, &range_path, "max_energy_range_uj")?;
            if range_uj == 0 {
                return Err(ProbeError::Parse {
                    path: range_path,
                    line: 1,
                    field: "max_energy_range_uj".into(),
                    message: "the counter range is 0, so wraparound cannot be undone".into(),
                });
            }
            let energy_path = p.dir.join("energy_uj");
            let first = read_counter(fs.as_ref(), &root, &energy_path, "energy_uj")?;
            domains.push(Domain {
                name: p.name,
                kind: p.kind,
                energy_path,
                range_uj,
                max_w: p.kind.bound(&bounds),
                last: Some((first, Duration::ZERO)),
                total_uj: 0,
                reference: Reference::default(),
                failing: false,
            });
        }
        Ok(PowercapProbe {
            root,
            fs,
            domains,
            notes,
            opened: Instant::now(),
            warnings: Vec::new(),
        })
    }

    /// Replaces the power bounds used to infer multiple wraps (defaults:
    /// [`MaxPlausiblePower::default`]).
    pub fn with_max_plausible_power(mut self, bounds: MaxPlausiblePower) -> Self {
        for d in &mut self.domains {
            d.max_w = d.kind.bound(&bounds);
        }
        self
    }

    /// The powercap root this probe reads.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// What each domain's counter is, in domain order, for messages:
    /// `package-0 (intel-rapl:0/energy_uj)`.
    pub fn counter_labels(&self) -> Vec<String> {
        self.domains
            .iter()
            .map(|d| {
                let zone = d.energy_path.parent().map(zone_label).unwrap_or_default();
                format!("{} ({zone}/energy_uj)", d.name)
            })
            .collect()
    }

    /// Stops reporting the domains named in `names` (a counter found not to advance, say): they
    /// leave [`domains`](EnergyProbe::domains), and the source string says
    /// `<domain> (<zone>) dropped: <why>`. Unknown names are ignored. Call it before the first
    /// [`read`](EnergyProbe::read) of a run: the domain list must not change during one.
    pub fn drop_domains(&mut self, names: &[String], why: &str) {
        let mut kept = Vec::with_capacity(self.domains.len());
        for d in self.domains.drain(..) {
            if names.contains(&d.name) {
                let zone = d.energy_path.parent().map(zone_label).unwrap_or_default();
                self.notes
                    .push(format!("{} ({zone}) dropped: {why}", d.name));
            } else {
                kept.push(d);
            }
        }
        self.domains = kept;
    }

    /// Warnings queued since the last call (zones that stopped or resumed being readable,
    /// counter resets), oldest first; the queue is emptied.
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    /// [`read`](EnergyProbe::read) as if called `since_open` after [`open`](Self::open); `read`
    /// itself passes the time measured by a monotonic clock. Exposed so that tests and replays
    /// can control time; a time earlier than the previous one counts as no time elapsed.
    ///
    /// # How wraps are counted
    ///
    /// With `L` the previous counter value, `N` the new one and `R` the range, the energy is at
    /// least `d = N - L`, or `d = R - L + N` when `N < L` (one wrap). Any number `k` of further
    /// whole wraps gives the same counter value, so the candidates are `d + k·R`, and nothing in
    /// the counter tells them apart. The smallest, `k = 0`, is the default; more is taken only
    /// when the elapsed time `t` calls for it:
    ///
    /// 1. the interval cannot exceed the domain's [`MaxPlausiblePower`] bound `P_max`, so
    ///    `k ≤ (P_max·t − d) / R`: an interval shorter than `(d + R) / P_max`, the time the
    ///    counter needs to go round once more at the maximum plausible power, gets `k = 0`
    ///    whatever else is known;
    /// 2. within that room, `k` is the count whose energy is nearest to `P_ref·t` (the smaller
    ///    on a tie), so an extra wrap is taken only when `P_ref·t` exceeds `d` by more than half
    ///    a range: the interval was long enough for the counter to go round again at the power
    ///    it has been drawing. `P_ref` is the mean power (total energy over total time) of the
    ///    domain's recent intervals that were counted with `k = 0`, over about the last 2 s and
    ///    at least 50 ms of them; with less history than that, `k = 0`.
    ///
    /// Intervals counted with extra wraps never feed `P_ref`, and short intervals weigh only
    /// their duration in it. Both matter: a rule that took the previous interval's power as the
    /// expectation fed on itself once one interval was wrong. On a counter that moves in 5 ms
    /// steps and wraps at 20 J, one read 1 ms after another sees a 0.15 J step, "150 W"; the next
    /// 100 ms interval of a 30 W package (3 J) then looked closer to 23 J than to 3 J, which made
    /// the expectation 230 W, and every later interval was counted with an extra wrap: 229 W
    /// reported for 30 W.
    ///
    /// When `N < L` and even the one-wrap energy `d` exceeds `P_max·t`, no wrap can explain the
    /// reading: the counter was reset (a zone re-created by the kernel), so the interval counts
    /// as zero, the new value becomes the baseline, and a warning is queued.
    ///
    /// The single-wrap arithmetic treats the counter as wrapping at `R` exactly; the hardware
    /// wraps one energy unit (tens of µJ) later, an error far below anything measured.
    ///
    /// # Errors
    ///
    /// Only when no domain could be read; see the type's documentation.
    pub fn read_at(&mut self, since_open: Duration, out: &mut [Joules]) -> Result<(), ProbeError> {
        let mut first_error = None;
        let mut any_ok = false;
        for (i, d) in self.domains.iter_mut().enumerate() {
            match read_counter(self.fs.as_ref(), &self.root, &d.energy_path, "energy_uj") {
                Ok(now) => {
                    any_ok = true;
                    if d.failing {
                        d.failing = false;
                        self.warnings.push(format!(
                            "{SOURCE_NAME}: {} is readable again; counting resumes from its \
                             current value (the energy while it was unreadable is not counted)",
                            d.name
                        ));
                    }
                    match d.last {
                        None => d.last = Some((now, since_open)),
                        Some((prev, prev_t)) => {
                            let dt = since_open.saturating_sub(prev_t);
                            let reference_w = d.reference.power_w();
                            match interval_uj(prev, now, d.range_uj, dt, d.max_w, reference_w) {
                                Some((e, extra_wraps)) => {
                                    d.total_uj += e;
                                    if extra_wraps == 0 {
                                        d.reference.push(e, dt);
                                    }
                                }
                                None => {
                                    self.warnings.push(format!(
                                        "{SOURCE_NAME}: {} went from {prev} to {now} µJ in {:.3} s, \
                                         which no wrap at {} µJ explains below {} W: counter \
                                         reset, interval counted as zero",
                                        d.name,
                                        dt.as_secs_f64(),
                                        d.range_uj,
                                        d.max_w
                                    ));
                                }
                            }
                            d.last = Some((now, since_open.max(prev_t)));
                        }
                    }
                }
                Err(e) => {
                    d.last = None;
                    d.reference = Reference::default();
                    if !d.failing {
                        d.failing = true;
                        self.warnings.push(format!(
                            "{SOURCE_NAME}: {} can no longer be read ({e}); it stays at {:.6} J \
                             until it comes back (socket taken offline or driver unloaded?)",
                            d.name,
                            d.total_uj as f64 / 1e6
                        ));
                    }
                    first_error.get_or_insert(e);
                }
            }
            if let Some(o) = out.get_mut(i) {
                *o = Joules(d.total_uj as f64 / 1e6);
            }
        }
        match first_error {
            Some(e) if !any_ok => Err(e),
            _ => Ok(()),
        }
    }
}

impl EnergyProbe for PowercapProbe {
    fn describe(&self) -> EnergySource {
        let mut source = format!(
            "powercap RAPL at {}: {}",
            self.root.display(),
            self.domains
                .iter()
                .map(|d| d.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        if !self.notes.is_empty() {
            source.push_str(&format!(" ({})", self.notes.join("; ")));
        }
        let mut src = EnergySource::new(SOURCE_NAME, EnergyKind::Measured, source);
        src.domains = self.domains();
        src.scope = carina_core::ProbeScope::Host;
        src
    }

    fn scope(&self) -> ProbeScope {
        ProbeScope::Host
    }

    fn domains(&self) -> Vec<String> {
        self.domains.iter().map(|d| d.name.clone()).collect()
    }

    fn read(&mut self, out: &mut [Joules]) -> Result<(), ProbeError> {
        let since_open = self.opened.elapsed();
        self.read_at(since_open, out)
    }
}

/// The recent intervals counted without extra wraps: their summed energy and time give the
/// reference power for the wrap inference.
#[derive(Debug, Default)]
struct Reference {
    intervals: VecDeque<(u128, Duration)>,
    energy_uj: u128,
    time: Duration,
}

impl Reference {
    fn push(&mut self, energy_uj: u128, dt: Duration) {
        if dt.is_zero() {
            return;
        }
        self.intervals.push_back((energy_uj, dt));
        self.energy_uj += energy_uj;
        self.time += dt;
        // Keep at least REFERENCE_SPAN of history (the newest interval always stays).
        while let Some(&(e, t)) = self.intervals.front() {
            let enough = self.time.saturating_sub(t) >= REFERENCE_SPAN;
            if !(enough || self.intervals.len() > REFERENCE_MAX_INTERVALS) {
                break;
            }
            self.intervals.pop_front();
            self.energy_uj -= e;
            self.time -= t;
        }
    }

    /// Mean power of the window, W; `None` until it holds [`REFERENCE_MIN`] of time.
    fn power_w(&self) -> Option<f64> {
        (self.time >= REFERENCE_MIN).then(|| self.energy_uj as f64 / 1e6 / self.time.as_secs_f64())
    }
}

/// Energy of one interval in µJ and the number of extra whole wraps counted in it, or `None`
/// for a counter reset; the rule is documented on [`PowercapProbe::read_at`]. `reference_w` is
/// the power expected over the interval (`None`: no extra wrap is ever taken).
fn interval_uj(
    prev: u64,
    now: u64,
    range: u64,
    dt: Duration,
    max_w: f64,
    reference_w: Option<f64>,
) -> Option<(u128, u128)> {
    let wrapped = now < prev;
    let d = if wrapped {
        u128::from(range.saturating_sub(prev)) + u128::from(now)
    } else {
        u128::from(now - prev)
    };
    let secs = dt.as_secs_f64();
    let cap_uj = max_w * secs * 1e6;
    let d_f = d as f64;
    if wrapped && d_f > cap_uj {
        return None;
    }
    let r = range as f64;
    // `as` saturates on overflow and maps NaN to 0, which is the safe side in both cases.
    let k_max = if cap_uj > d_f {
        ((cap_uj - d_f) / r).floor() as u128
    } else {
        0
    };
    let k = match reference_w {
        Some(w) if k_max > 0 => {
            let expected_uj = w * secs * 1e6;
            // Nearest k to the expectation, the smaller one on a tie.
            let nearest = ((expected_uj - d_f) / r - 0.5).ceil();
            if nearest <= 0.0 {
                0
            } else {
                (nearest as u128).min(k_max)
            }
        }
        _ => 0,
    };
    Some((d.saturating_add(k.saturating_mul(u128::from(range))), k))
}

/// Reads a one-line microjoule counter.
fn read_counter(fs: &dyn SysFs, root: &Path, path: &Path, field: &str) -> Result<u64, ProbeError> {
    let text = fs
        .read_to_string(path)
        .map_err(|e| io_error(root, path, e))?;
    let line = text.lines().next().unwrap_or("").trim();
    line.parse().map_err(|_| ProbeError::Parse {
        path: path.to_owned(),
        line: 1,
        field: field.to_owned(),
        message: if line.is_empty() {
            "empty, expected a whole number of microjoules".to_owned()
        } else {
            format!("expected a whole number of microjoules, found {line:?}")
        },
    })
}

/// Maps a read failure to the error the caller can act on: permission problems get the fixes.
fn io_error(root: &Path, path: &Path, e: io::Error) -> ProbeError {
    if e.kind() == io::ErrorKind::PermissionDenied {
        let root = root.display();
        ProbeError::Unavailable(format!(
            "cannot read {}: {e}. Since Linux 5.10 and the stable kernels that took the \
             CVE-2020-8694 fix (the Platypus power side channel), RAPL energy_uj files are \
             readable by root only. To measure: run as root; or \
             `sudo chmod o+r {root}/intel-rapl:*/energy_uj` (lost at reboot); or a udev rule, \
             e.g. in /etc/udev/rules.d/99-rapl.rules: ACTION==\"add\", SUBSYSTEM==\"powercap\", \
             KERNEL==\"intel-rapl:*\", RUN+=\"/bin/chmod o+r /sys%p/energy_uj\"; or use the \
             perf_event RAPL source (the `power` PMU), which needs CAP_PERFMON \
             (`sudo setcap cap_perfmon+ep <program>`) or `sudo sysctl kernel.perf_event_paranoid=0`",
            path.display()
        ))
    } else {
        ProbeError::Io {
            path: path.to_owned(),
            source: e,
        }
    }
}

fn no_zones(root: &Path) -> ProbeError {
    ProbeError::Unavailable(format!(
        "no RAPL zones under {}: not exposed on this machine (VM, non-x86, or the intel_rapl \
         driver is not loaded)",
        root.display()
    ))
}

/// The numeric id of a zone directory: `intel-rapl:0:1` is `[0, 1]`. Anything else (the
/// `intel-rapl` control type, `intel-rapl-mmio:0`, other powercap drivers) is `None`.
fn zone_id(path: &Path) -> Option<Vec<u32>> {
    let rest = path.file_name()?.to_str()?.strip_prefix(ZONE_PREFIX)?;
    rest.split(':').map(|s| s.parse().ok()).collect()
}

/// Finds every zone under `root`, keyed by id so that a sub-zone seen both inside its parent
/// and as a top-level link (as sysfs shows it) is counted once.
fn discover(fs: &dyn SysFs, root: &Path) -> Result<BTreeMap<Vec<u32>, PathBuf>, ProbeError> {
    let entries = match fs.subdirs(root) {
        Ok(v) => v,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(no_zones(root)),
        Err(e) => {
            return Err(ProbeError::Io {
                path: root.to_owned(),
                source: e,
            });
        }
    };
    let mut zones = BTreeMap::new();
    let mut flat = Vec::new();
    for path in entries {
        match zone_id(&path) {
            Some(id) if id.len() == 1 => walk(fs, path, id, &mut zones, MAX_ZONE_DEPTH)?,
            Some(id) if !id.is_empty() => flat.push((id, path)),
            _ => {}
        }
    }
    // Top-level links to sub-zones come last: the nested copy, found through its parent, wins.
    for (id, path) in flat {
        zones.entry(id).or_insert(path);
    }
    if zones.is_empty() {
        return Err(no_zones(root));
    }
    Ok(zones)
}

fn walk(
    fs: &dyn SysFs,
    dir: PathBuf,
    id: Vec<u32>,
    zones: &mut BTreeMap<Vec<u32>, PathBuf>,
    depth: usize,
) -> Result<(), ProbeError> {
    if zones.contains_key(&id) {
        return Ok(());
    }
    let children = if depth > 0 {
        fs.subdirs(&dir).map_err(|e| ProbeError::Io {
            path: dir.clone(),
            source: e,
        })?
    } else {
        Vec::new()
    };
    zones.insert(id.clone(), dir);
    for child in children {
        // Only direct children by id: zone directories also hold links such as `subsystem`
        // that lead back up the tree.
        if let Some(cid) = zone_id(&child)
            && cid.len() == id.len() + 1
            && cid.starts_with(&id)
        {
            walk(fs, child, cid, zones, depth - 1)?;
        }
    }
    Ok(())
}

/// A zone chosen as a domain.
struct Picked {
    name: String,
    kind: Kind,
    dir: PathBuf,
    /// Sort key within its kind: socket, then zone id.
    order: (u32, Vec<u32>),
}

/// Reads each zone's `name` and picks the additive set of domains; the rest become notes for
/// the source string.
fn choose_domains(
    fs: &dyn SysFs,
    root: &Path,
    zones: BTreeMap<Vec<u32>, PathBuf>,
) -> Result<(Vec<Picked>, Vec<String>), ProbeError> {
    let mut named = BTreeMap::new();
    for (id, dir) in zones {
        let path = dir.join("name");
        let text = fs
            .read_to_string(&path)
            .map_err(|e| io_error(root, &path, e))?;
        named.insert(id, (dir, text.trim().to_owned()));
    }
    let mut packages = Vec::new();
    let mut drams = Vec::new();
    let mut psys = Vec::new();
    let mut parts: Vec<&str> = Vec::new();
    let mut unknown = Vec::new();
    // Top-level DRAM zones carry no socket; number them in zone order.
    let mut top_level_drams = 0;
    for (id, (dir, name)) in &named {
        let sub = id.len() > 1;
        if name == "psys" && !sub {
            psys.push(Picked {
                name: "psys".to_owned(),
                kind: Kind::Psys,
                dir: dir.clone(),
                order: (0, id.clone()),
            });
        } else if name == "dram" {
            let socket = if sub {
                named
                    .get(&id[..id.len() - 1])
                    .and_then(|(_, parent)| package_socket(parent))
                    .unwrap_or(id[0])
            } else {
                top_level_drams += 1;
                top_level_drams - 1
            };
            drams.push(Picked {
                name: format!("dram-{socket}"),
                kind: Kind::Dram,
                dir: dir.clone(),
                order: (socket, id.clone()),
            });
        } else if let (false, Some(socket)) = (sub, package_socket(name)) {
            packages.push(Picked {
                name: format!("package-{socket}"),
                kind: Kind::Package,
                dir: dir.clone(),
                order: (socket, id.clone()),
            });
        } else if sub {
            if !parts.contains(&name.as_str()) {
                parts.push(name);
            }
        } else {
            unknown.push(format!(
                "{name} ({}) not added: unknown zone",
                zone_label(dir)
            ));
        }
    }
    packages.sort_by(|a, b| a.order.cmp(&b.order));
    drams.sort_by(|a, b| a.order.cmp(&b.order));

    let mut notes = Vec::new();
    if !parts.is_empty() {
        notes.push(format!(
            "{} sub-zones not added: parts of the package",
            parts.join(", ")
        ));
    }
    let picked = if !packages.is_empty() || (psys.is_empty() && !drams.is_empty()) {
        if !psys.is_empty() {
            notes.push("psys present, not added: it includes the packages".to_owned());
        }
        packages.append(&mut drams);
        packages
    } else {
        if !psys.is_empty() && !drams.is_empty() {
            notes.push("dram not added: psys includes it".to_owned());
        }
        psys
    };
    notes.extend(unknown);
    if picked.is_empty() {
        return Err(ProbeError::Unavailable(format!(
            "RAPL zones under {} ({}), but none is a package, dram or psys zone: nothing to \
             measure",
            root.display(),
            named
                .values()
                .map(|(_, n)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok((unique_names(picked), notes))
}

/// The socket of a `package-N` zone name.
fn package_socket(name: &str) -> Option<u32> {
    name.strip_prefix("package-")?.parse().ok()
}

fn zone_label(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string())
}

/// Domain names must be unique for the run file; a clash (two zones claiming the same socket)
/// is resolved by naming the later one after its zone directory.
fn unique_names(mut picked: Vec<Picked>) -> Vec<Picked> {
    let mut seen: Vec<String> = Vec::new();
    for p in &mut picked {
        if seen.contains(&p.name) {
            p.name = format!("{}@{}", p.name, zone_label(&p.dir));
        }
        seen.push(p.name.clone());
    }
    picked
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: u64 = 10_000_000;

    /// The energy of an interval, without the count of extra wraps.
    fn energy(
        prev: u64,
        now: u64,
        range: u64,
        dt: Duration,
        max_w: f64,
        reference_w: Option<f64>,
    ) -> Option<u128> {
        interval_uj(prev, now, range, dt, max_w, reference_w).map(|(e, _)| e)
    }

    #[test]
    fn zone_ids_come_from_directory_names() {
        assert_eq!(zone_id(Path::new("/x/intel-rapl:0")), Some(vec![0]));
        assert_eq!(zone_id(Path::new("/x/intel-rapl:1:2")), Some(vec![1, 2]));
        assert_eq!(zone_id(Path::new("/x/intel-rapl")), None);
        assert_eq!(zone_id(Path::new("/x/intel-rapl-mmio:0")), None);
        assert_eq!(zone_id(Path::new("/x/intel-rapl:a")), None);
        assert_eq!(zone_id(Path::new("/x/intel-rapl:")), None);
    }

    #[test]
    fn plain_and_single_wrap_deltas() {
        let s = Duration::from_secs(1);
        assert_eq!(energy(5, 9, R, s, 2000.0, None), Some(4));
        assert_eq!(energy(R - 1, 1, R, s, 2000.0, None), Some(2));
        assert_eq!(energy(7, 7, R, s, 2000.0, Some(0.0)), Some(0));
    }

    #[test]
    fn ties_between_wrap_counts_take_the_fewer_wraps() {
        // 5 J expected, candidates 0 J and 10 J: equally far.
        let e = energy(3, 3, R, Duration::from_secs(1), 2000.0, Some(5.0));
        assert_eq!(e, Some(0));
        let e = energy(3, 3, R, Duration::from_secs(1), 2000.0, Some(5.1));
        assert_eq!(e, Some(R as u128));
    }

    #[test]
    fn a_wrap_beyond_the_bound_is_a_reset() {
        let ms = Duration::from_millis(1);
        // 5 J in 1 ms is 5 kW.
        assert_eq!(energy(R - 4_000_000, 1_000_000, R, ms, 2000.0, None), None);
        // Forward movement is the hardware's word, whatever the bound.
        assert_eq!(energy(0, 5_000_000, R, ms, 2000.0, None), Some(5_000_000));
        // No time at all: a backwards step cannot be a wrap.
        assert_eq!(energy(9, 1, R, Duration::ZERO, 2000.0, Some(1.0)), None);
    }

    #[test]
    fn extreme_inputs_do_not_overflow() {
        let e = energy(0, 1, u64::MAX, Duration::MAX, f64::MAX, Some(f64::MAX));
        assert!(e.is_some());
        let e = energy(u64::MAX, 0, u64::MAX, Duration::MAX, 2000.0, Some(1e300));
        assert!(e.is_some());
        let e = energy(5, 1, 3, Duration::from_secs(1), 2000.0, None);
        assert_eq!(e, Some(1));
    }

    #[test]
    fn extra_wraps_are_reported() {
        let s = Duration::from_secs(1);
        assert_eq!(
            interval_uj(3, 3, R, s, 2000.0, Some(25.0)),
            Some((2 * R as u128, 2))
        );
        assert_eq!(interval_uj(3, 5, R, s, 2000.0, Some(2.0)), Some((2, 0)));
    }

    #[test]
    fn the_reference_weighs_intervals_by_their_duration() {
        let mut r = Reference::default();
        // One 0.15 J step seen 1 ms after the last read: not a power to trust.
        r.push(150_000, Duration::from_millis(1));
        assert_eq!(r.power_w(), None);
        r.push(3_000_000, Duration::from_millis(100));
        let w = r.power_w().unwrap();
        assert!((w - 3.15 / 0.101).abs() < 1e-9, "{w}");
        // Zero-length intervals carry nothing.
        r.push(5, Duration::ZERO);
        assert_eq!(r.intervals.len(), 2);
    }

    #[test]
    fn the_reference_keeps_about_two_seconds() {
        let mut r = Reference::default();
        for _ in 0..30 {
            r.push(1_000_000, Duration::from_millis(100));
        }
        assert_eq!(r.time, Duration::from_secs(2));
        assert_eq!(r.energy_uj, 20_000_000);
        // A newer level replaces the old one as it fills the window.
        for _ in 0..20 {
            r.push(3_000_000, Duration::from_millis(100));
        }
        assert!((r.power_w().unwrap() - 30.0).abs() < 1e-9);
        // Very short intervals are capped by count.
        for _ in 0..1000 {
            r.push(1, Duration::from_micros(10));
        }
        assert_eq!(r.intervals.len(), REFERENCE_MAX_INTERVALS);
        // One long interval is kept alone.
        r.push(10_000_000, Duration::from_secs(10));
        assert_eq!(r.intervals.len(), 1);
        assert!((r.power_w().unwrap() - 1.0).abs() < 1e-9);
    }
}
