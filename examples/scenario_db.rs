//! A parametric scenario database for a 2-DOF quarter-car model, recorded with Carina.
//!
//! The job sweeps a full-factorial grid of quarter-car parameters (sprung and unsprung mass,
//! suspension stiffness and damping, tyre stiffness), road profiles (ISO 8608 classes A-D plus
//! an optional bump or pothole) and vehicle speeds. Each scenario is integrated with classic
//! RK4 at a fixed 1 ms step, then evaluated for ride comfort (peak, RMS and ISO 2631-1
//! Wk-weighted body acceleration), suspension travel and road holding (dynamic tyre load,
//! loss of contact). One CSV row per scenario.
//!
//! ```text
//! cargo run --release --example scenario_db -- --scenarios 20000 --out scenario_db.csv
//! ```
//!
//! Carina steps: `scenario_db` (whole job, main thread) > `generate_grid`; then, on each worker
//! thread and per batch: `simulate`, `evaluate`, `store`.
//!
//! Peak-aware execution: each worker takes a permit from a Carina governor per batch, so
//! `--policy` (baseline, throttle, offpeak-boost, defer) and `--schedule` (a TOML peak
//! schedule, docs/CONTROL.md) decide how many batches run at once; the governor's mode changes
//! go into the run file as `control` records.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use carina::control::governor::Governor;
use carina::control::policy::Policy;
use carina::control::schedule::Schedule;

// ---------------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------------

/// Default scenario count: the base grid with three road-profile seeds (202 500 scenarios).
/// Measured at about 14 s for a release build on 2 idle cores of an AMD EPYC VM (about 7 000
/// scenarios per second per core).
const DEFAULT_SCENARIOS: u64 = 3 * BASE_GRID_SIZE;
const MAX_SCENARIOS: u64 = 5_000_000;
const DEFAULT_BATCH: usize = 64;
const DEFAULT_SECONDS: f64 = 3.0;
const MAX_SECONDS: f64 = 60.0;

const HELP: &str = "\
scenario_db: quarter-car scenario database (full-factorial sweep), recorded with Carina

USAGE:
    cargo run --release --example scenario_db -- [OPTIONS]

OPTIONS:
    --scenarios N   scenarios to simulate (default 202500: the 67500-point base grid on 3
                    road-profile seeds; N <= 67500 takes an evenly strided subset of the base
                    grid, more adds seeds; at most 5000000)
    --threads T     worker threads (default: available parallelism)
    --batch B       scenarios per batch (default 64)
    --seconds S     simulated seconds per scenario (default 3, at most 60)
    --out PATH      CSV output file (default scenario_db.csv)
    --policy P      peak policy: baseline (default), throttle, offpeak-boost or defer, with
                    optional parameters, e.g. throttle:peak_fraction=0.25 or
                    offpeak-boost:offpeak_factor=2,peak_fraction=0 (docs/CONTROL.md);
                    --threads is the nominal concurrency the policy scales
    --schedule FILE peak schedule, TOML (docs/CONTROL.md; default: Mon-Fri 08:00-20:00 UTC)
    -h, --help      print this help

Run files go to $CARINA_DIR or ./carina-runs.";

struct Args {
    scenarios: u64,
    threads: usize,
    batch: usize,
    seconds: f64,
    out: PathBuf,
    policy: Policy,
    schedule: Schedule,
}

impl Args {
    /// Worker threads to spawn: the most the policy ever allows (more than --threads
    /// off-peak under offpeak-boost); the governor limits how many run at once.
    fn workers(&self) -> usize {
        self.policy.max_allowed(self.threads as u32) as usize
    }
}

/// A command-line or output problem: printed as `error: ...`, exit code 2.
struct UsageError(String);

/// Whether a failure is the user's (bad flag, unwritable --out: exit 2) or the environment's.
enum Failure {
    Usage(UsageError),
    Other(String),
}

impl From<UsageError> for Failure {
    fn from(e: UsageError) -> Failure {
        Failure::Usage(e)
    }
}

fn parse_args() -> Result<Option<Args>, UsageError> {
    let mut args = Args {
        scenarios: DEFAULT_SCENARIOS,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        batch: DEFAULT_BATCH,
        seconds: DEFAULT_SECONDS,
        out: PathBuf::from("scenario_db.csv"),
        policy: Policy::Baseline,
        schedule: Schedule::default_weekday_peak(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(None);
        }
        // Accept both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let known = [
            "--scenarios",
            "--threads",
            "--batch",
            "--seconds",
            "--out",
            "--policy",
            "--schedule",
        ];
        if !known.contains(&flag.as_str()) {
            return Err(UsageError(format!("unknown argument `{arg}` (try --help)")));
        }
        let value = match inline.or_else(|| it.next()) {
            Some(v) => v,
            None => return Err(UsageError(format!("{flag} needs a value (try --help)"))),
        };
        match flag.as_str() {
            "--scenarios" => {
                args.scenarios = parse_int(&flag, &value, 1, MAX_SCENARIOS)?;
            }
            "--threads" => args.threads = parse_int(&flag, &value, 1, 1024)? as usize,
            "--batch" => args.batch = parse_int(&flag, &value, 1, 1_000_000)? as usize,
            "--seconds" => {
                let s: f64 = value.trim().parse().map_err(|_| {
                    UsageError(format!("{flag} expects a number of seconds, got `{value}`"))
                })?;
                if !(0.1..=MAX_SECONDS).contains(&s) {
                    return Err(UsageError(format!(
                        "{flag} must be between 0.1 and {MAX_SECONDS} seconds, got `{value}`"
                    )));
                }
                args.seconds = s;
            }
            "--out" => {
                if value.is_empty() {
                    return Err(UsageError(format!("{flag} expects a file path, got ``")));
                }
                args.out = PathBuf::from(value);
            }
            "--policy" => {
                args.policy = value
                    .parse()
                    .map_err(|e| UsageError(format!("{flag}: {e}")))?;
            }
            "--schedule" => {
                if value.is_empty() {
                    return Err(UsageError(format!("{flag} expects a file path, got ``")));
                }
                args.schedule =
                    Schedule::load(&value).map_err(|e| UsageError(format!("{flag}: {e}")))?;
            }
            _ => unreachable!("checked against `known` above"),
        }
    }
    // Each worker holds a batch's time histories: 12 bytes per scenario per simulated ms.
    let bytes = args.batch as f64 * (args.seconds / DT) * 12.0 * args.workers() as f64;
    if bytes > MAX_TRAJECTORY_BYTES {
        let workers = if args.workers() == args.threads {
            String::new()
        } else {
            format!(
                " ({} workers under --policy {})",
                args.workers(),
                args.policy
            )
        };
        return Err(UsageError(format!(
            "--batch {} x --seconds {} x --threads {}{workers} needs {:.1} GiB for time \
             histories (limit {:.0} GiB); lower one of them",
            args.batch,
            args.seconds,
            args.threads,
            bytes / GIB,
            MAX_TRAJECTORY_BYTES / GIB
        )));
    }
    Ok(Some(args))
}

const GIB: f64 = (1u64 << 30) as f64;
const MAX_TRAJECTORY_BYTES: f64 = 2.0 * GIB;

fn parse_int(flag: &str, value: &str, min: u64, max: u64) -> Result<u64, UsageError> {
    match value.trim().replace('_', "").parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(UsageError(format!(
            "{flag} expects a whole number from {min} to {max}, got `{value}`"
        ))),
    }
}

// ---------------------------------------------------------------------------------------------
// The parameter grid
// ---------------------------------------------------------------------------------------------

/// Sprung (body) mass per corner, kg.
const SPRUNG_KG: [f64; 5] = [250.0, 300.0, 350.0, 400.0, 450.0];
/// Unsprung mass (wheel, tyre, brake, part of the links), kg.
const UNSPRUNG_KG: [f64; 3] = [30.0, 40.0, 50.0];
/// Suspension spring rate at the wheel, N/m.
const SPRING_N_M: [f64; 5] = [15e3, 20e3, 25e3, 30e3, 40e3];
/// Linear damper coefficient at the wheel, N s/m.
const DAMPER_NS_M: [f64; 5] = [1000.0, 1500.0, 2000.0, 3000.0, 4000.0];
/// Vertical tyre stiffness, N/m.
const TYRE_N_M: [f64; 3] = [150e3, 200e3, 250e3];
/// ISO 8608 road classes.
const ROADS: [RoadClass; 4] = [RoadClass::A, RoadClass::B, RoadClass::C, RoadClass::D];
/// Discrete road event one second into the run.
const EVENTS: [RoadEvent; 3] = [RoadEvent::None, RoadEvent::Bump, RoadEvent::Pothole];
/// Vehicle speed, km/h.
const SPEEDS_KMH: [f64; 5] = [30.0, 50.0, 70.0, 90.0, 120.0];

/// Axis sizes, outermost first (the road-seed axis is prepended at run time).
const AXES: [u64; 8] = [
    SPRUNG_KG.len() as u64,
    UNSPRUNG_KG.len() as u64,
    SPRING_N_M.len() as u64,
    DAMPER_NS_M.len() as u64,
    TYRE_N_M.len() as u64,
    ROADS.len() as u64,
    EVENTS.len() as u64,
    SPEEDS_KMH.len() as u64,
];
const BASE_GRID_SIZE: u64 = {
    let mut n = 1;
    let mut i = 0;
    while i < AXES.len() {
        n *= AXES[i];
        i += 1;
    }
    n
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RoadClass {
    A,
    B,
    C,
    D,
}

impl RoadClass {
    /// ISO 8608 displacement PSD at n0 = 0.1 cycles/m (geometric mean of the class), m^3.
    fn gd_n0(self) -> f64 {
        match self {
            RoadClass::A => 16e-6,
            RoadClass::B => 64e-6,
            RoadClass::C => 256e-6,
            RoadClass::D => 1024e-6,
        }
    }
    fn label(self) -> &'static str {
        match self {
            RoadClass::A => "A",
            RoadClass::B => "B",
            RoadClass::C => "C",
            RoadClass::D => "D",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RoadEvent {
    None,
    /// Raised half-cosine cleat, 40 mm high and 0.6 m long.
    Bump,
    /// Half-cosine dip, 50 mm deep and 0.5 m long.
    Pothole,
}

impl RoadEvent {
    fn label(self) -> &'static str {
        match self {
            RoadEvent::None => "none",
            RoadEvent::Bump => "bump",
            RoadEvent::Pothole => "pothole",
        }
    }
    /// (height, length) in metres; negative height is a dip.
    fn shape(self) -> Option<(f64, f64)> {
        match self {
            RoadEvent::None => None,
            RoadEvent::Bump => Some((0.040, 0.6)),
            RoadEvent::Pothole => Some((-0.050, 0.5)),
        }
    }
}

/// One point of the grid.
#[derive(Clone, Copy, Debug)]
struct Scenario {
    id: u64,
    seed: u32,
    m_s: f64,
    m_u: f64,
    k_s: f64,
    c_s: f64,
    k_t: f64,
    road: RoadClass,
    event: RoadEvent,
    speed_kmh: f64,
}

/// Builds the scenario list.
///
/// Choice of subset / refinement: the grid is the base full-factorial grid times `seeds`
/// road-profile realisations (random phases of the ISO 8608 sum of sines), with
/// `seeds = ceil(n / base)`. So for `n <= base` there is one road realisation and the job takes
/// `n` evenly strided points of the base grid; for `n > base` the grid is refined with more
/// road seeds and again `n` evenly strided points are taken (exactly all of it when `n` is a
/// multiple of the base size). Strided indices are decoded in mixed radix and then sheared
/// (each axis index is offset by the sum of the digits outside it, modulo its size, a bijection
/// of the grid), so that a stride which happens to be a multiple of the inner axis sizes still
/// visits every value of every parameter instead of pinning, say, the speed to 30 km/h.
#[carina::step(name = "generate_grid", items = n)]
fn generate_grid(n: u64) -> Vec<Scenario> {
    let seeds = n.div_ceil(BASE_GRID_SIZE);
    let total = seeds * BASE_GRID_SIZE;
    let mut radices = vec![seeds];
    radices.extend_from_slice(&AXES);
    let mut digits = vec![0u64; radices.len()];
    (0..n)
        .map(|i| {
            // Evenly strided: the i-th of n points of [0, total), u128 to avoid overflow.
            let j = ((u128::from(i) * u128::from(total)) / u128::from(n)) as u64;
            let mut rest = j;
            for (d, &r) in digits.iter_mut().zip(&radices).rev() {
                *d = rest % r;
                rest /= r;
            }
            let mut outer_sum = 0;
            let mut idx = [0usize; 9];
            for ((slot, &d), &r) in idx.iter_mut().zip(&digits).zip(&radices) {
                *slot = ((d + outer_sum) % r) as usize;
                outer_sum += d;
            }
            Scenario {
                id: i,
                seed: idx[0] as u32,
                m_s: SPRUNG_KG[idx[1]],
                m_u: UNSPRUNG_KG[idx[2]],
                k_s: SPRING_N_M[idx[3]],
                c_s: DAMPER_NS_M[idx[4]],
                k_t: TYRE_N_M[idx[5]],
                road: ROADS[idx[6]],
                event: EVENTS[idx[7]],
                speed_kmh: SPEEDS_KMH[idx[8]],
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Road profiles
// ---------------------------------------------------------------------------------------------

/// SplitMix64: a small, fast, seedable PRNG (Steele, Lea & Flood 2014).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// Spatial resolution of the tabulated road, m (the shortest wavelength is 0.35 m).
const ROAD_DX: f64 = 0.005;
/// ISO 8608 spatial frequency band used, cycles/m (wavelengths 91 m to 0.35 m).
const N_MIN: f64 = 0.011;
const N_MAX: f64 = 2.83;
const N0: f64 = 0.1;
/// Sines in the synthesized profile, log-spaced over [N_MIN, N_MAX].
const N_SINES: usize = 120;
/// Reference PSD of the tabulated unit profile; a class is this profile scaled by
/// sqrt(Gd(n0) / GD_REF) (all classes share the waviness w = 2, so only the level differs).
const GD_REF: f64 = 1e-6;
/// The random profile fades in over this time, so the run starts at rest without a step.
const FADE_S: f64 = 0.3;

/// One road realisation with Gd(n0) = GD_REF, tabulated every ROAD_DX metres.
struct UnitProfile {
    seed: u32,
    z: Vec<f64>,
}

impl UnitProfile {
    /// Sum of sines: z(x) = sum_i sqrt(2 Gd(n_i) dn_i) cos(2 pi n_i x + phi_i), with
    /// Gd(n) = GD_REF (n / n0)^-2 and phases phi_i uniform from the seeded PRNG.
    fn new(seed: u32, length_m: f64) -> UnitProfile {
        let mut rng = SplitMix64(0xCA81_4A00_0000_0000 ^ u64::from(seed).wrapping_mul(0x9E37));
        let log_step = (N_MAX / N_MIN).ln() / (N_SINES - 1) as f64;
        let comps: Vec<(f64, f64, f64)> = (0..N_SINES)
            .map(|i| {
                let n = N_MIN * (log_step * i as f64).exp();
                let dn = n * log_step;
                let gd = GD_REF * (n / N0).powi(-2);
                let amp = (2.0 * gd * dn).sqrt();
                let phase = 2.0 * std::f64::consts::PI * rng.next_f64();
                (2.0 * std::f64::consts::PI * n, amp, phase)
            })
            .collect();
        let samples = (length_m / ROAD_DX).ceil() as usize + 2;
        let z = (0..samples)
            .map(|k| {
                let x = k as f64 * ROAD_DX;
                comps.iter().map(|&(w, a, p)| a * (w * x + p).cos()).sum()
            })
            .collect();
        UnitProfile { seed, z }
    }

    /// Linear interpolation at `x` metres (clamped to the table).
    #[inline]
    fn at(&self, x: f64) -> f64 {
        let f = x / ROAD_DX;
        let k = (f as usize).min(self.z.len() - 2);
        let t = (f - k as f64).min(1.0);
        self.z[k] + (self.z[k + 1] - self.z[k]) * t
    }
}

/// The road under the tyre as a function of time, for one scenario.
struct Road<'a> {
    unit: &'a UnitProfile,
    scale: f64,
    speed: f64,
    event: Option<(f64, f64)>,
    event_x: f64,
}

impl Road<'_> {
    #[inline]
    fn z(&self, t: f64) -> f64 {
        let x = self.speed * t;
        let fade = if t < FADE_S {
            let u = t / FADE_S;
            u * u * (3.0 - 2.0 * u)
        } else {
            1.0
        };
        let mut z = fade * self.scale * self.unit.at(x);
        if let Some((h, len)) = self.event {
            let s = x - self.event_x;
            if (0.0..len).contains(&s) {
                z += 0.5 * h * (1.0 - (2.0 * std::f64::consts::PI * s / len).cos());
            }
        }
        z
    }
}

// ---------------------------------------------------------------------------------------------
// Simulation
// ---------------------------------------------------------------------------------------------

const GRAVITY: f64 = 9.81;
/// Fixed integration step, s.
const DT: f64 = 1e-3;

/// Time histories of a batch: `samples` values per scenario, scenario after scenario. Stored
/// as f32 (plenty for the metrics) to keep a batch at 12 bytes per sample.
#[derive(Default)]
struct Trajectories {
    samples: usize,
    /// Body (sprung mass) vertical acceleration, m/s^2.
    body_acc: Vec<f32>,
    /// Suspension deflection z_s - z_u (positive = extension), m.
    travel: Vec<f32>,
    /// Dynamic tyre load over static load, (F_tyre - F_static) / F_static; -1 = no contact.
    tyre_ratio: Vec<f32>,
}

/// Per-worker state reused between batches.
struct Worker {
    road: Option<UnitProfile>,
    road_length_m: f64,
    traj: Trajectories,
}

/// The quarter-car ODE in static-equilibrium coordinates (upward positive):
///
/// ```text
/// m_s z_s'' = -k_s (z_s - z_u) - c_s (z_s' - z_u')
/// m_u z_u'' =  k_s (z_s - z_u) + c_s (z_s' - z_u') + F_t - F_static
/// F_t       = max(0, F_static + k_t (z_r - z_u))      (a tyre can push, never pull)
/// ```
///
/// Point-contact tyre without enveloping or damping, linear spring and damper, no bump stops
/// (the travel metric tells where a real suspension would hit them). Returns the state
/// derivative and the tyre load F_t.
#[inline]
fn quarter_car(s: &Scenario, f_static: f64, y: [f64; 4], z_r: f64) -> ([f64; 4], f64) {
    let [z_s, v_s, z_u, v_u] = y;
    let f_susp = s.k_s * (z_s - z_u) + s.c_s * (v_s - v_u);
    let f_tyre = (f_static + s.k_t * (z_r - z_u)).max(0.0);
    let a_s = -f_susp / s.m_s;
    let a_u = (f_susp + f_tyre - f_static) / s.m_u;
    ([v_s, a_s, v_u, a_u], f_tyre)
}

#[inline]
fn axpy(y: [f64; 4], h: f64, k: [f64; 4]) -> [f64; 4] {
    [
        y[0] + h * k[0],
        y[1] + h * k[1],
        y[2] + h * k[2],
        y[3] + h * k[3],
    ]
}

/// Integrates every scenario of the batch with RK4 and fills `w.traj`.
#[carina::step(name = "simulate", items = batch.len())]
fn simulate(batch: &[Scenario], seconds: f64, w: &mut Worker) {
    let steps = (seconds / DT).round() as usize;
    let traj = &mut w.traj;
    traj.samples = steps;
    traj.body_acc.clear();
    traj.travel.clear();
    traj.tyre_ratio.clear();
    // The event is one second into the run (earlier for very short runs).
    let event_t = (seconds / 3.0).min(1.0);
    for s in batch {
        if w.road.as_ref().is_none_or(|r| r.seed != s.seed) {
            w.road = Some(UnitProfile::new(s.seed, w.road_length_m));
        }
        let speed = s.speed_kmh / 3.6;
        let road = Road {
            unit: w.road.as_ref().expect("set above"),
            scale: (s.road.gd_n0() / GD_REF).sqrt(),
            speed,
            event: s.event.shape(),
            event_x: speed * event_t,
        };
        let f_static = (s.m_s + s.m_u) * GRAVITY;
        let mut y = [0.0; 4];
        let mut z_r0 = road.z(0.0);
        for k in 0..steps {
            let t = k as f64 * DT;
            let z_rh = road.z(t + 0.5 * DT);
            let z_r1 = road.z(t + DT);
            let (k1, f_tyre) = quarter_car(s, f_static, y, z_r0);
            traj.body_acc.push(k1[1] as f32);
            traj.travel.push((y[0] - y[2]) as f32);
            traj.tyre_ratio
                .push(((f_tyre - f_static) / f_static) as f32);
            let (k2, _) = quarter_car(s, f_static, axpy(y, 0.5 * DT, k1), z_rh);
            let (k3, _) = quarter_car(s, f_static, axpy(y, 0.5 * DT, k2), z_rh);
            let (k4, _) = quarter_car(s, f_static, axpy(y, DT, k3), z_r1);
            for i in 0..4 {
                y[i] += DT / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]);
            }
            z_r0 = z_r1;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------------------------

/// A digital biquad (transposed direct form II).
#[derive(Clone, Copy)]
struct Biquad {
    b: [f64; 3],
    a: [f64; 2],
}

impl Biquad {
    /// Bilinear transform (no pre-warping) of (b0 s^2 + b1 s + b2) / (a0 s^2 + a1 s + a2).
    fn bilinear(b: [f64; 3], a: [f64; 3], fs: f64) -> Biquad {
        let k = 2.0 * fs;
        let k2 = k * k;
        let a0 = a[0] * k2 + a[1] * k + a[2];
        Biquad {
            b: [
                (b[0] * k2 + b[1] * k + b[2]) / a0,
                2.0 * (b[2] - b[0] * k2) / a0,
                (b[0] * k2 - b[1] * k + b[2]) / a0,
            ],
            a: [
                2.0 * (a[2] - a[0] * k2) / a0,
                (a[0] * k2 - a[1] * k + a[2]) / a0,
            ],
        }
    }
}

/// ISO 2631-1 frequency weighting Wk (vertical, seated), as four analog sections: band
/// limiting (2nd-order Butterworth high-pass 0.4 Hz and low-pass 100 Hz),
/// acceleration-velocity transition (f3 = f4 = 12.5 Hz, Q4 = 0.63) and upward step
/// (f5 = 2.37 Hz, Q5 = 0.91, f6 = 3.35 Hz, Q6 = 0.91; gain (f5/f6)^2 = 0.5 below, 1 above).
/// The result is within a few percent of the standard's Wk table (0.48 at 1 Hz, 1.05 at
/// 5 Hz, 0.64 at 20 Hz).
///
/// Simplifications: the sections are discretised by the bilinear transform without
/// pre-warping (at 1 kHz this bends the 100 Hz corner by a few percent, the comfort band
/// 0.5-80 Hz hardly at all); it weights the acceleration of the sprung mass above the wheel,
/// not at a seat (there is no seat or cabin model); and a_w is taken over the whole run.
fn wk_filter(fs: f64) -> [Biquad; 4] {
    use std::f64::consts::{FRAC_1_SQRT_2, PI};
    let w = |f: f64| 2.0 * PI * f;
    let (w1, w2, w3, w4, w5, w6) = (w(0.4), w(100.0), w(12.5), w(12.5), w(2.37), w(3.35));
    let (q1, q4, q5, q6) = (FRAC_1_SQRT_2, 0.63, 0.91, 0.91);
    [
        Biquad::bilinear([1.0, 0.0, 0.0], [1.0, w1 / q1, w1 * w1], fs),
        Biquad::bilinear([0.0, 0.0, w2 * w2], [1.0, w2 / q1, w2 * w2], fs),
        Biquad::bilinear(
            [0.0, 1.0 / w3, 1.0],
            [1.0 / (w4 * w4), 1.0 / (q4 * w4), 1.0],
            fs,
        ),
        Biquad::bilinear(
            [1.0 / (w6 * w6), w5 / (q5 * w6 * w6), (w5 * w5) / (w6 * w6)],
            [1.0 / (w6 * w6), 1.0 / (q6 * w6), 1.0],
            fs,
        ),
    ]
}

/// ISO 2631-1 Annex C comfort reaction to a_w (public transport). The standard's bands
/// overlap; this takes each band's upper end as the boundary.
fn comfort_label(aw: f64) -> &'static str {
    match aw {
        x if x < 0.315 => "not_uncomfortable",
        x if x < 0.63 => "a_little_uncomfortable",
        x if x < 1.0 => "fairly_uncomfortable",
        x if x < 1.6 => "uncomfortable",
        x if x < 2.5 => "very_uncomfortable",
        _ => "extremely_uncomfortable",
    }
}

#[derive(Clone, Copy, Debug)]
struct Metrics {
    peak_acc: f64,
    rms_acc: f64,
    aw_rms: f64,
    max_travel_m: f64,
    max_tyre_ratio: f64,
    rms_tyre_ratio: f64,
    contact_loss_s: f64,
}

/// Computes the metrics of every scenario of the batch from its time histories.
#[carina::step(name = "evaluate", items = batch.len())]
fn evaluate(batch: &[Scenario], traj: &Trajectories, wk: &[Biquad; 4]) -> Vec<Metrics> {
    let n = traj.samples;
    (0..batch.len())
        .map(|i| {
            let range = i * n..(i + 1) * n;
            let (mut peak, mut sq, mut wsq) = (0.0f64, 0.0f64, 0.0f64);
            let mut state = [[0.0f64; 2]; 4];
            for &a in &traj.body_acc[range.clone()] {
                let a = f64::from(a);
                peak = peak.max(a.abs());
                sq += a * a;
                let mut x = a;
                for (f, st) in wk.iter().zip(state.iter_mut()) {
                    let y = f.b[0] * x + st[0];
                    st[0] = f.b[1] * x - f.a[0] * y + st[1];
                    st[1] = f.b[2] * x - f.a[1] * y;
                    x = y;
                }
                wsq += x * x;
            }
            let max_travel = traj.travel[range.clone()]
                .iter()
                .fold(0.0f64, |m, &d| m.max(f64::from(d).abs()));
            let (mut max_ratio, mut ratio_sq, mut lost) = (0.0f64, 0.0f64, 0usize);
            for &r in &traj.tyre_ratio[range] {
                let r = f64::from(r);
                max_ratio = max_ratio.max(r.abs());
                ratio_sq += r * r;
                if r <= -1.0 {
                    lost += 1;
                }
            }
            let nf = n.max(1) as f64;
            Metrics {
                peak_acc: peak,
                rms_acc: (sq / nf).sqrt(),
                aw_rms: (wsq / nf).sqrt(),
                max_travel_m: max_travel,
                max_tyre_ratio: max_ratio,
                rms_tyre_ratio: (ratio_sq / nf).sqrt(),
                contact_loss_s: lost as f64 * DT,
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------------

const CSV_HEADER: &str = "scenario_id,road_seed,sprung_kg,unsprung_kg,spring_n_per_m,\
damper_ns_per_m,tyre_n_per_m,road_class,road_event,speed_kmh,body_freq_hz,wheel_hop_hz,\
damping_ratio,peak_body_acc_m_s2,rms_body_acc_m_s2,aw_rms_m_s2,comfort,max_susp_travel_mm,\
max_dyn_tyre_load_ratio,rms_dyn_tyre_load_ratio,lost_contact,contact_loss_ms";

/// The CSV file, written in scenario order: batches that finish early wait in `pending`.
struct CsvOut {
    path: PathBuf,
    out: BufWriter<File>,
    next_batch: usize,
    pending: BTreeMap<usize, String>,
    rows: u64,
}

fn io_error(path: &Path, what: &str, e: &io::Error) -> UsageError {
    UsageError(format!(
        "cannot {what} --out file `{}`: {e}",
        path.display()
    ))
}

impl CsvOut {
    fn create(path: &Path) -> Result<CsvOut, UsageError> {
        let file = File::create(path).map_err(|e| io_error(path, "create", &e))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        writeln!(out, "{CSV_HEADER}").map_err(|e| io_error(path, "write", &e))?;
        Ok(CsvOut {
            path: path.to_owned(),
            out,
            next_batch: 0,
            pending: BTreeMap::new(),
            rows: 0,
        })
    }

    fn push(&mut self, batch_index: usize, rows: String, n: u64) -> io::Result<()> {
        self.pending.insert(batch_index, rows);
        self.rows += n;
        while let Some(text) = self.pending.remove(&self.next_batch) {
            self.out.write_all(text.as_bytes())?;
            self.next_batch += 1;
        }
        Ok(())
    }
}

fn format_rows(batch: &[Scenario], metrics: &[Metrics]) -> String {
    let mut text = String::with_capacity(batch.len() * 200);
    for (s, m) in batch.iter().zip(metrics) {
        let k_eff = s.k_s * s.k_t / (s.k_s + s.k_t);
        let body_hz = (k_eff / s.m_s).sqrt() / (2.0 * std::f64::consts::PI);
        let hop_hz = ((s.k_s + s.k_t) / s.m_u).sqrt() / (2.0 * std::f64::consts::PI);
        let zeta = s.c_s / (2.0 * (s.k_s * s.m_s).sqrt());
        let _ = writeln!(
            text,
            "{},{},{},{},{},{},{},{},{},{},{:.3},{:.2},{:.3},{:.4},{:.4},{:.4},{},{:.2},{:.4},{:.4},{},{:.0}",
            s.id,
            s.seed,
            s.m_s,
            s.m_u,
            s.k_s,
            s.c_s,
            s.k_t,
            s.road.label(),
            s.event.label(),
            s.speed_kmh,
            body_hz,
            hop_hz,
            zeta,
            m.peak_acc,
            m.rms_acc,
            m.aw_rms,
            comfort_label(m.aw_rms),
            m.max_travel_m * 1e3,
            m.max_tyre_ratio,
            m.rms_tyre_ratio,
            m.contact_loss_s > 0.0,
            m.contact_loss_s * 1e3,
        );
    }
    text
}

fn csv_path(csv: &Mutex<CsvOut>) -> PathBuf {
    csv.lock().unwrap_or_else(|p| p.into_inner()).path.clone()
}

/// Appends a batch's rows (formatting included) to the shared CSV writer.
fn store(
    csv: &Mutex<CsvOut>,
    batch_index: usize,
    batch: &[Scenario],
    metrics: &[Metrics],
) -> io::Result<()> {
    let mut g = carina::step("store");
    g.add_items(batch.len() as u64);
    let text = format_rows(batch, metrics);
    let mut out = csv.lock().unwrap_or_else(|p| p.into_inner());
    let r = out.push(batch_index, text, batch.len() as u64);
    if r.is_err() {
        g.mark_error();
    }
    r
}

// ---------------------------------------------------------------------------------------------
// Driver
// ---------------------------------------------------------------------------------------------

struct Shared<'a> {
    scenarios: &'a [Scenario],
    batch: usize,
    seconds: f64,
    next: AtomicUsize,
    failed: AtomicBool,
    csv: &'a Mutex<CsvOut>,
    wk: [Biquad; 4],
    governor: &'a Governor,
}

fn worker(sh: &Shared<'_>) -> io::Result<()> {
    let road_length_m = SPEEDS_KMH.iter().fold(0.0f64, |m, &v| m.max(v)) / 3.6 * sh.seconds + 1.0;
    let mut w = Worker {
        road: None,
        road_length_m,
        traj: Trajectories::default(),
    };
    let batches = sh.scenarios.len().div_ceil(sh.batch);
    loop {
        // One permit per batch: blocks while the policy's allowed concurrency is in use (or
        // paused); released at the end of the iteration.
        let _permit = sh.governor.acquire();
        let b = sh.next.fetch_add(1, Ordering::Relaxed);
        if b >= batches || sh.failed.load(Ordering::Relaxed) {
            return Ok(());
        }
        let batch = &sh.scenarios[b * sh.batch..((b + 1) * sh.batch).min(sh.scenarios.len())];
        simulate(batch, sh.seconds, &mut w);
        let metrics = evaluate(batch, &w.traj, &sh.wk);
        if let Err(e) = store(sh.csv, b, batch, &metrics) {
            sh.failed.store(true, Ordering::Relaxed);
            return Err(e);
        }
    }
}

/// Generates and simulates all scenarios; returns the rows written.
fn scenario_db(args: &Args, csv: &Mutex<CsvOut>, governor: &Governor) -> Result<u64, Failure> {
    // No step wraps the whole job on this thread: it only waits for the workers, and this
    // version of Carina splits energy by the wall time of open steps, so a waiting step would be
    // credited as if it worked (docs/ENERGY.md). The workers' steps carry the energy.
    let scenarios = generate_grid(args.scenarios);
    let sh = Shared {
        scenarios: &scenarios,
        batch: args.batch,
        seconds: args.seconds,
        next: AtomicUsize::new(0),
        failed: AtomicBool::new(false),
        csv,
        wk: wk_filter(1.0 / DT),
        governor,
    };
    let results: Vec<Result<(), Failure>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..args.workers())
            .map(|i| {
                std::thread::Builder::new()
                    .name(format!("worker-{i}"))
                    .spawn_scoped(s, || worker(&sh))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h {
                Ok(h) => h
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p))
                    .map_err(|e| io_error(&csv_path(csv), "write", &e).into()),
                Err(e) => {
                    sh.failed.store(true, Ordering::Relaxed);
                    Err(Failure::Other(format!("cannot spawn a worker thread: {e}")))
                }
            })
            .collect()
    });
    if let Some(Err(e)) = results.into_iter().find(|r| r.is_err()) {
        return Err(e);
    }
    let mut out = csv.lock().unwrap_or_else(|p| p.into_inner());
    if let Err(e) = out.out.flush().and_then(|()| out.out.get_ref().sync_all()) {
        return Err(io_error(&out.path, "write", &e).into());
    }
    Ok(out.rows)
}

fn print_summary(
    args: &Args,
    rows: u64,
    elapsed_s: f64,
    summary: &carina::RunSummary,
    governor: &Governor,
) {
    let detail = summary
        .energy_sources
        .first()
        .map_or_else(String::new, |s| s.source.clone());
    println!(
        "scenario_db: {} scenarios in {:.1} s on {} thread{}",
        args.scenarios,
        elapsed_s,
        args.threads,
        if args.threads == 1 { "" } else { "s" }
    );
    let changes = governor.changes();
    println!(
        "policy: {} on {}{}; {changes} control change{}",
        args.policy,
        args.schedule.describe(),
        if args.workers() == args.threads {
            String::new()
        } else {
            format!(" (up to {} workers)", args.workers())
        },
        if changes == 1 { "" } else { "s" },
    );
    // Energy (kind, source, host share), carbon, items, per-step lines and the run file.
    print!("{summary}");
    if !summary.is_disabled() && !detail.is_empty() {
        println!("source:   {detail}");
    }
    println!("output:   {} ({rows} rows)", args.out.display());
    for w in &summary.warnings {
        eprintln!("warning: {w}");
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(UsageError(msg)) => {
            eprintln!("scenario_db: error: {msg}");
            return ExitCode::from(2);
        }
    };
    // Create the CSV before starting the run, so a bad --out fails fast.
    let csv = match CsvOut::create(&args.out) {
        Ok(c) => Mutex::new(c),
        Err(UsageError(msg)) => {
            eprintln!("scenario_db: error: {msg}");
            return ExitCode::from(2);
        }
    };
    let run = match carina::Run::builder("scenario-db").start() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("scenario_db: error: cannot start the Carina run: {e}");
            return ExitCode::FAILURE;
        }
    };
    run.set_items(args.scenarios);
    // Created after the run started, so its initial mode is recorded too.
    let governor = Governor::new(args.schedule.clone(), args.policy, args.threads as u32);
    let status = governor.status();
    if status.allowed == 0 {
        eprintln!(
            "scenario_db: --policy {} is paused now ({}); waiting until {}",
            args.policy,
            if status.slot.peak {
                "peak time"
            } else {
                "off-peak"
            },
            status
                .next_change
                .map_or_else(|| "the schedule changes".to_owned(), |t| t.to_string()),
        );
    }
    let t0 = Instant::now();
    let result = scenario_db(&args, &csv, &governor);
    let elapsed = t0.elapsed().as_secs_f64();
    // Finish the run even when the job failed, so its run file is complete.
    let summary = run.finish();
    let rows = match result {
        Ok(rows) => rows,
        Err(Failure::Usage(UsageError(msg))) => {
            eprintln!("scenario_db: error: {msg} (the file is incomplete)");
            return ExitCode::from(2);
        }
        Err(Failure::Other(msg)) => {
            eprintln!("scenario_db: error: {msg}");
            return ExitCode::FAILURE;
        }
    };
    match summary {
        Ok(s) => {
            print_summary(&args, rows, elapsed, &s, &governor);
            // The run file is this job's energy account: one that lost records is a failure
            // the scheduler should see, though the scenarios themselves were computed.
            if !s.is_complete() {
                eprintln!(
                    "scenario_db: error: the run file is incomplete ({} records lost, {} step \
                     records not written, {} steps not counted); see the warnings",
                    s.records_lost(),
                    s.records_not_written(),
                    s.dropped()
                );
                return ExitCode::from(3);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("scenario_db: error: cannot finish the Carina run: {e}");
            ExitCode::FAILURE
        }
    }
}
