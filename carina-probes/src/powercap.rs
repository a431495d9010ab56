//! RAPL energy counters read through the Linux powercap sysfs tree.
//!
//! The `intel_rapl` driver (also used on AMD since Zen) publishes one directory per RAPL zone
//! under `/sys/class/powercap`: `intel-rapl:N` for a socket's package (or for `psys`, the
//! platform), and `intel-rapl:N:M` for the parts inside it (`core`, `uncore`, `dram`). Each
//! holds `name`, `energy_uj` (a wrapping microjoule counter), `max_energy_range_uj` (where
//! it wraps) and its power limits (`constraint_<n>_power_limit_uw`,
//! `constraint_<n>_max_power_uw`). [`PowercapProbe`] turns those counters into cumulative,
//! never-decreasing joules.
//!
//! # Which zones count
//!
//! The reported domains add up to the machine's RAPL energy without counting anything twice
//! (the rule is shared with [`crate::perf_rapl`]):
//!
//! * every package (`package-0`, `package-1`, …) and every DRAM zone (`dram-<socket>`);
//! * not `core` and `uncore`: they are parts of their package, already in its counter;
//! * not `psys` when packages exist, because the platform counter includes them; `psys` is the
//!   single domain only when the machine exposes no package (its DRAM is then in it too).
//!
//! What was left out is written in the [`describe`](EnergyProbe::describe) source string so a run
//! file says what the numbers cover. `intel-rapl-mmio:*` zones are ignored: they are a second
//! path to the package counter that the `intel-rapl:*` zones already cover.
//!
//! # Counter wraparound, resets, gaps and stalls
//!
//! Each counter goes through the rule of [`crate::counter`]: one wrap is plain modular
//! arithmetic; a drop that no plausible wrap explains is a reset; extra whole wraps are taken only
//! when the elapsed time allows them under the domain's power bound *and* the recent power of
//! intervals that could not have wrapped singles out one count; anything else is flagged as a
//! lower bound with a warning. A counter that keeps its value for more than 250 ms is stalled
//! (RAPL updates about every millisecond).
//!
//! # Power bounds
//!
//! The bound of each domain is the smaller of its kind's default ([`MaxPlausiblePower`]) and
//! twice the largest power limit the zone publishes (`constraint_*_power_limit_uw` and
//! `constraint_*_max_power_uw`, values under 1 W ignored). RAPL enforces those limits as
//! averages over windows of milliseconds (PL2) to seconds (PL1), and the largest of them (PL2,
//! or PL4 on client parts) is what the package may draw at all; twice that leaves room for
//! overshoot and firmware slack while still being far below the 2000 W default on most parts.
//! It matters where intervals approach the range: at the default bound a 20 J counter read at
//! 10 Hz could have wrapped ten times in every interval, so nothing is certain; at twice a
//! 45 W limit every such interval is. Boards that publish "unlimited" limits (4095 W) keep the
//! default. A limit raised after the probe opened makes the bound too low, which can only turn a
//! genuine wrap into a flagged reset (a lower bound), never add energy.
//! [`PowercapProbe::with_max_plausible_power`] replaces the bounds outright.

use crate::counter::Counter;
use crate::privileges::Privileges;
use crate::rapl::{self, Kind};
use carina_runtime::energy::{ProbeReport, Reading, Unavailable, UnavailableCause};
use carina_runtime::record::{Basis, SourceId};
use carina_runtime::{
    EnergyKind, EnergyProbe, EnergySource, Joules, ProbeError, ProbeScope, Watts,
};
use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use crate::rapl::MaxPlausiblePower;

/// Where the kernel publishes powercap zones.
pub const DEFAULT_ROOT: &str = "/sys/class/powercap";

/// Environment variable that overrides [`DEFAULT_ROOT`] in [`PowercapProbe::open_default`]
/// (fake trees in tests, containers that mount sysfs elsewhere).
pub const ROOT_ENV: &str = "CARINA_POWERCAP_ROOT";

/// Directory-name prefix of RAPL zones; `intel-rapl` alone is the control type, not a zone.
const ZONE_PREFIX: &str = "intel-rapl:";

/// Sub-zones nest one level in practice; the bound only guards against odd trees.
const MAX_ZONE_DEPTH: usize = 4;

/// Zones publish at most three constraints today (long term, short term, peak); a few more are
/// looked at in case a driver adds one.
const MAX_CONSTRAINTS: usize = 6;

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

/// One reported domain and its counter.
#[derive(Debug)]
struct Domain {
    kind: Kind,
    energy_path: PathBuf,
    counter: Counter,
    /// The bound taken from the zone's power limits, and the limit it came from, W; `None`
    /// when the kind's default applies.
    from_limits: Option<(f64, f64)>,
}

impl Domain {
    fn name(&self) -> &str {
        self.counter.domain()
    }
}

/// RAPL energy from `/sys/class/powercap` (or another root), as an [`EnergyProbe`].
///
/// [`read`](EnergyProbe::read) reports, per domain, the joules consumed since
/// [`open`](Self::open). The counters cover the whole machine, so the scope is
/// [`ProbeScope::Host`]. What the counters could not say exactly (resets, ambiguous gaps, stalls,
/// failed reads) is in [`take_report`](Self::take_report).
///
/// # A zone that stops being readable
///
/// If a domain's `energy_uj` cannot be read or parsed during a run (a permission change, its
/// directory disappearing while the last CPU of a socket is offline, the driver unloaded), `read`
/// does not fail for that: the domain keeps its last cumulative value and its baseline, the other
/// domains keep advancing, and every failed read counts in the report's `read_errors` (one
/// warning per streak). When the file is readable again, the interval since the last good read
/// is counted by the same rule as any other, over the whole gap: the counter kept counting
/// meanwhile. A zone re-created with a lower counter is a reset. Only when no domain at all
/// could be read does `read` return the error (after still filling `out` with the frozen
/// values), so that the caller learns the source is gone.
pub struct PowercapProbe {
    root: PathBuf,
    fs: Box<dyn SysFs + Send>,
    /// Who reads the files, for the explanation of a permission error met during a run.
    privileges: Privileges,
    domains: Vec<Domain>,
    /// What was found and not added, for the source string.
    notes: Vec<String>,
    opened: Instant,
    report: ProbeReport,
}

impl fmt::Debug for PowercapProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PowercapProbe")
            .field("root", &self.root)
            .field("domains", &self.domains)
            .field("notes", &self.notes)
            .field("report", &self.report)
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
    /// * [`ProbeError::Unavailable`] when `root` has no RAPL zone ([`UnavailableCause::Absent`],
    ///   with the driver to load on x86), or when `energy_uj` cannot be read
    ///   ([`UnavailableCause::Permission`], with how to grant access: a fix that fits whether
    ///   the process is root or not);
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
        Self::open_as(root, fs, &Privileges::of_this_process())
    }

    /// Same as [`open_with`](Self::open_with), explaining permission errors for a process with
    /// `privileges` (detection passes [`Roots::privileges`](crate::Roots::privileges); tests
    /// state them).
    pub fn open_as(
        root: impl Into<PathBuf>,
        fs: Box<dyn SysFs + Send>,
        privileges: &Privileges,
    ) -> Result<PowercapProbe, ProbeError> {
        let root = root.into();
        let who = privileges;
        let zones = discover(fs.as_ref(), &root)?;
        let (picked, notes) = choose_domains(fs.as_ref(), &root, zones, who)?;
        let bounds = MaxPlausiblePower::default();
        let mut domains = Vec::with_capacity(picked.len());
        for p in picked {
            let range_path = p.dir.join("max_energy_range_uj");
            let range_uj =
                read_counter(fs.as_ref(), &root, &range_path, "max_energy_range_uj", who)?;
            if range_uj == 0 {
                return Err(ProbeError::Parse {
                    path: range_path,
                    line: 1,
                    field: "max_energy_range_uj".into(),
                    message: "the counter range is 0, so wraparound cannot be undone".into(),
                });
            }
            let energy_path = p.dir.join("energy_uj");
            let first = read_counter(fs.as_ref(), &root, &energy_path, "energy_uj", who)?;
            // The single-wrap arithmetic treats the counter as wrapping at the range exactly;
            // the hardware wraps one energy unit (tens of µJ) later, far below anything measured.
            let mut limits = p.kind.limits(&bounds, u128::from(range_uj), 1e6, "µJ");
            let from_limits = largest_limit_w(fs.as_ref(), &p.dir)
                .map(|w| (rapl::LIMIT_FACTOR * w, w))
                .filter(|(b, _)| *b < limits.max_power.0);
            if let Some((b, _)) = from_limits {
                limits.max_power = Watts(b);
            }
            let what = format!("{}/energy_uj", zone_label(&p.dir));
            domains.push(Domain {
                kind: p.kind,
                energy_path,
                counter: Counter::new(p.name, what, limits).with_first(first, Duration::ZERO),
                from_limits,
            });
        }
        Ok(PowercapProbe {
            root,
            fs,
            privileges: *who,
            domains,
            notes,
            opened: Instant::now(),
            report: ProbeReport::default(),
        })
    }

    /// Replaces the power bounds of the counter rule, including those taken from the zones'
    /// power limits (defaults: [`MaxPlausiblePower::default`], tightened per zone; see the
    /// [module documentation](self)).
    pub fn with_max_plausible_power(mut self, bounds: MaxPlausiblePower) -> Self {
        for d in &mut self.domains {
            d.counter.set_max_power(d.kind.bound(&bounds));
            d.from_limits = None;
        }
        self
    }

    /// The bound each domain's counter rule uses, in domain order.
    pub fn max_plausible_power(&self) -> Vec<Watts> {
        self.domains
            .iter()
            .map(|d| d.counter.limits().max_power)
            .collect()
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
                format!("{} ({zone}/energy_uj)", d.name())
            })
            .collect()
    }

    /// Stops reporting the domains named in `names` (a counter found not to advance, say): they
    /// leave [`domains`](Self::domains), and the source string says
    /// `<domain> (<zone>) dropped: <why>`. Unknown names are ignored. Call it before the first
    /// [`read`](EnergyProbe::read) of a run: the domain list must not change during one.
    pub fn drop_domains(&mut self, names: &[String], why: &str) {
        let mut kept = Vec::with_capacity(self.domains.len());
        for d in self.domains.drain(..) {
            if names.iter().any(|n| n == d.name()) {
                let zone = d.energy_path.parent().map(zone_label).unwrap_or_default();
                self.notes
                    .push(format!("{} ({zone}) dropped: {why}", d.name()));
            } else {
                kept.push(d);
            }
        }
        self.domains = kept;
    }

    /// [`read`](EnergyProbe::read) as if called `since_open` after [`open`](Self::open); `read`
    /// itself passes the time measured by a monotonic clock. Exposed so that tests and replays
    /// can control time; a time earlier than the previous one counts as no time elapsed.
    ///
    /// Each counter goes through the rule of [`crate::counter`]: what it counts exactly is
    /// added, and what it cannot (resets, ambiguous gaps, stalls, failed reads) is added as far
    /// as the counter proves and reported in [`take_report`](Self::take_report).
    ///
    /// # Errors
    ///
    /// Only when no domain could be read; see the type's documentation.
    pub fn read_at(&mut self, since_open: Duration, out: &mut [Joules]) -> Result<(), ProbeError> {
        let mut first_error = None;
        let mut any_ok = false;
        for (i, d) in self.domains.iter_mut().enumerate() {
            let read = read_counter(
                self.fs.as_ref(),
                &self.root,
                &d.energy_path,
                "energy_uj",
                &self.privileges,
            );
            match read {
                Ok(now) => {
                    any_ok = true;
                    d.counter.update(now, since_open, &mut self.report);
                }
                Err(e) => {
                    d.counter
                        .failed(since_open, &e.to_string(), &mut self.report);
                    first_error.get_or_insert(e);
                }
            }
            if let Some(o) = out.get_mut(i) {
                *o = d.counter.joules();
            }
        }
        match first_error {
            Some(e) if !any_ok => Err(e),
            _ => Ok(()),
        }
    }
}

impl PowercapProbe {
    /// Whole machine or this process (as [`EnergyProbe::describe`] says).
    pub fn scope(&self) -> ProbeScope {
        ProbeScope::Host
    }

    /// The domains, in the order reads fill them (as [`EnergyProbe::describe`] lists them).
    pub fn domains(&self) -> Vec<String> {
        self.domains.iter().map(|d| d.name().to_owned()).collect()
    }

    /// What the probe met since the last call (also delivered with every [`EnergyProbe::read`]).
    pub fn take_report(&mut self) -> ProbeReport {
        std::mem::take(&mut self.report)
    }
}

impl EnergyProbe for PowercapProbe {
    fn describe(&self) -> EnergySource {
        let mut source = format!(
            "powercap RAPL at {}: {}",
            self.root.display(),
            self.domains
                .iter()
                .map(Domain::name)
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut notes = self.notes.clone();
        let bounds: Vec<String> = self
            .domains
            .iter()
            .filter_map(|d| {
                d.from_limits.map(|(b, w)| {
                    format!(
                        "{} <= {} W ({} x its largest power limit, {} W)",
                        d.name(),
                        b,
                        rapl::LIMIT_FACTOR,
                        w
                    )
                })
            })
            .collect();
        if !bounds.is_empty() {
            notes.push(format!("wrap bounds: {}", bounds.join(", ")));
        }
        if !notes.is_empty() {
            source.push_str(&format!(" ({})", notes.join("; ")));
        }
        let mut src = EnergySource::new(SourceId::RaplPowercap, EnergyKind::Measured, source)
            .with_basis(Basis::Counter);
        src.domains = self.domains();
        src.scope = ProbeScope::Host;
        src
    }

    fn read(&mut self, reading: &mut Reading) -> Result<(), ProbeError> {
        let since_open = self.opened.elapsed();
        let result = self.read_at(since_open, &mut reading.energy);
        reading.report.merge(self.take_report());
        result
    }
}

/// The largest power limit a zone publishes, W; `None` when it publishes none worth taking
/// (missing, unreadable, or below [`rapl::MIN_LIMIT_W`]). The bound is an optional tightening,
/// so a file that cannot be read leaves the default rather than failing the probe.
fn largest_limit_w(fs: &dyn SysFs, dir: &Path) -> Option<f64> {
    let mut largest: Option<f64> = None;
    for n in 0..MAX_CONSTRAINTS {
        for field in ["power_limit_uw", "max_power_uw"] {
            let path = dir.join(format!("constraint_{n}_{field}"));
            let Ok(text) = fs.read_to_string(&path) else {
                continue;
            };
            let Ok(uw) = text.trim().parse::<u64>() else {
                continue;
            };
            let w = uw as f64 / 1e6;
            if w >= rapl::MIN_LIMIT_W {
                largest = Some(largest.map_or(w, |l| l.max(w)));
            }
        }
    }
    largest
}

/// Reads a one-line microjoule counter.
fn read_counter(
    fs: &dyn SysFs,
    root: &Path,
    path: &Path,
    field: &str,
    who: &Privileges,
) -> Result<u64, ProbeError> {
    let text = fs
        .read_to_string(path)
        .map_err(|e| io_error(root, path, e, who))?;
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

/// The udev rule that makes every RAPL zone's counter readable at boot.
const UDEV_RULE: &str = "ACTION==\"add\", SUBSYSTEM==\"powercap\", KERNEL==\"intel-rapl:*\", \
     RUN+=\"/bin/chmod o+r /sys%p/energy_uj\"";

/// Maps a read failure to the error the caller can act on: a permission problem gets the fix
/// that fits who is refused.
fn io_error(root: &Path, path: &Path, e: io::Error, who: &Privileges) -> ProbeError {
    if e.kind() != io::ErrorKind::PermissionDenied {
        return ProbeError::Io {
            path: path.to_owned(),
            source: e,
        };
    }
    let files = format!("{}/intel-rapl:*/energy_uj", root.display());
    let udev = format!("a udev rule in /etc/udev/rules.d/99-rapl.rules: {UDEV_RULE}");
    let why = if who.root {
        // Root reads root-only files; a root that is refused is confined, and running as root
        // again changes nothing.
        Unavailable::new(
            UnavailableCause::Permission,
            format!(
                "cannot read {}: {e}, although this process runs as root: root inside a \
                 container or user namespace is not root to the host's sysfs, or a security \
                 module (SELinux, AppArmor) denies it",
                path.display()
            ),
        )
        .with_fix(format!(
            "make the counters readable on the host, outside the container: \
             `sudo chmod o+r {files}` (until reboot) or {udev}"
        ))
    } else {
        Unavailable::new(
            UnavailableCause::Permission,
            format!(
                "cannot read {}: {e}. Since Linux 5.10 and the stable kernels that took the \
                 CVE-2020-8694 fix (the Platypus power side channel), RAPL energy_uj files are \
                 readable by root only",
                path.display()
            ),
        )
        .with_fix(format!(
            "`sudo chmod o+r {files}` (until reboot), or {udev}, or run as root"
        ))
    };
    why.into()
}

/// No RAPL zone under `root`. Loading the driver is the one fix there can be, on x86; a root
/// other than the kernel's may also simply be the wrong tree.
fn no_zones(root: &Path) -> ProbeError {
    let mut why = Unavailable::new(
        UnavailableCause::Absent,
        format!(
            "no RAPL zones under {}: not exposed on this machine (VM, non-x86, or the intel_rapl \
             driver is not loaded)",
            root.display()
        ),
    );
    let elsewhere = (root != Path::new(DEFAULT_ROOT)).then(|| {
        format!(
            "check that {ROOT_ENV} ({}) points at a powercap tree, or unset it to read \
             {DEFAULT_ROOT}",
            root.display()
        )
    });
    let driver = cfg!(any(target_arch = "x86", target_arch = "x86_64")).then_some(
        "on bare-metal x86, load the driver: `sudo modprobe intel_rapl_msr` (a VM that does not \
         pass RAPL through has no zone to load)",
    );
    let fix = match (driver, elsewhere) {
        (Some(d), Some(e)) => Some(format!("{d}; {e}")),
        (Some(d), None) => Some(d.to_owned()),
        (None, e) => e,
    };
    why.fix = fix;
    why.into()
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
/// the source string. Which kinds count is the rule shared with the perf route (`rapl::choose`).
fn choose_domains(
    fs: &dyn SysFs,
    root: &Path,
    zones: BTreeMap<Vec<u32>, PathBuf>,
    who: &Privileges,
) -> Result<(Vec<Picked>, Vec<String>), ProbeError> {
    let mut named = BTreeMap::new();
    for (id, dir) in zones {
        let path = dir.join("name");
        let text = fs
            .read_to_string(&path)
            .map_err(|e| io_error(root, &path, e, who))?;
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
    let (choice, left_out) =
        rapl::choose(!packages.is_empty(), !drams.is_empty(), !psys.is_empty());
    for l in left_out {
        notes.push(
            match l {
                rapl::LeftOut::PsysIncludesPackages => {
                    "psys present, not added: it includes the packages"
                }
                rapl::LeftOut::DramInPsys => "dram not added: psys includes it",
            }
            .to_owned(),
        );
    }
    let mut picked = Vec::new();
    if choice.packages {
        picked.append(&mut packages);
    }
    if choice.drams {
        picked.append(&mut drams);
    }
    if choice.psys {
        picked.append(&mut psys);
    }
    notes.extend(unknown);
    if picked.is_empty() {
        return Err(ProbeError::unavailable(
            UnavailableCause::Absent,
            format!(
                "RAPL zones under {} ({}), but none is a package, dram or psys zone: nothing to \
                 measure",
                root.display(),
                named
                    .values()
                    .map(|(_, n)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
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
    fn the_largest_published_limit_is_taken() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        assert_eq!(largest_limit_w(&RealSysFs, d), None);
        std::fs::write(d.join("constraint_0_power_limit_uw"), "45000000\n").unwrap();
        std::fs::write(d.join("constraint_0_max_power_uw"), "0\n").unwrap();
        std::fs::write(d.join("constraint_1_power_limit_uw"), "55000000\n").unwrap();
        std::fs::write(d.join("constraint_2_power_limit_uw"), "garbage\n").unwrap();
        // Under a watt is a placeholder, not a limit.
        std::fs::write(d.join("constraint_2_max_power_uw"), "500\n").unwrap();
        assert_eq!(largest_limit_w(&RealSysFs, d), Some(55.0));
    }
}
