//! Energy per iteration in [Criterion.rs](https://docs.rs/criterion) benchmarks, from the same
//! sources a Carina run uses: RAPL and NVML where readable, else Carina's estimation model.
//!
//! - [`Energy`]: a [`criterion::measurement::Measurement`] whose value is joules (`f64`) per
//!   iteration; its formatter prints `µJ (estimated)` or `µJ (measured)`, and with a
//!   throughput joules per element, byte or bit.
//! - [`EnergyMeter`]: the reading behind it, usable on its own: cumulative energy of this
//!   process (its share of host energy by CPU time, the default) or of the host.
//! - [`energy_and_time_group!`]: runs the same benchmark functions once with wall time and once
//!   with energy; [`group`] names the energy group `<name>-energy` so both are told apart.
//! - [`Energy::configure`]: the way to hand the measurement to criterion. Energy results are
//!   saved under [`energy_output_directory`] (`target/criterion/carina-energy/`), never where
//!   time results are, whatever the group and benchmark names; a bare `with_measurement` is
//!   refused with this fix.
//!
//! ```no_run
//! use carina_criterion::{EnergyAware, energy_and_time_group, group};
//! use criterion::{Criterion, criterion_main};
//!
//! fn sort<M: EnergyAware>(c: &mut Criterion<M>) {
//!     let data: Vec<u32> = (0..10_000u32).map(|i| i.wrapping_mul(2_654_435_761)).collect();
//!     let mut g = group(c, "sort-10k");
//!     g.bench_function("sort_unstable", |b| {
//!         b.iter(|| {
//!             let mut v = data.clone();
//!             v.sort_unstable();
//!             v
//!         })
//!     });
//!     g.finish();
//! }
//!
//! energy_and_time_group!(benches, sort);
//! criterion_main!(benches);
//! ```
//!
//! # Public API
//! [`Energy`] (with [`Energy::configure`]), [`CriterionConfig`], [`criterion_home`], [`energy_output_directory`],
//! [`ENERGY_SUBDIRECTORY`], [`EnergyAware`], [`group`], [`energy_and_time_group!`], [`EnergyMeter`] (with
//! [`DEFAULT_MIN_INTERVAL`], [`SCOPE_ENV`], [`scope_from_env`]), [`EnergyFormatter`]; re-exports
//! [`EnergyKind`], [`Scope`] and `criterion`.
//!
//! See `docs/CRITERION.md` for what a value means, its resolution and its overhead.

#![deny(missing_docs)]

mod format;
mod meter;
#[cfg(feature = "criterion-0_5")]
mod v05;

pub use carina_runtime::{EnergyKind, Scope};
pub use format::EnergyFormatter;
pub use meter::{DEFAULT_MIN_INTERVAL, EnergyMeter, SCOPE_ENV, scope_from_env};

/// The criterion crate this one is built against (0.8), for [`energy_and_time_group!`].
pub use criterion;
/// criterion 0.5, for benches that have not moved to 0.8 (feature `criterion-0_5`): see
/// [`Energy::configure_v05`].
#[cfg(feature = "criterion-0_5")]
pub use criterion05;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{BenchmarkGroup, Criterion};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, OnceLock};

/// Joules per iteration, as a criterion [`Measurement`] (`Value = f64`, joules).
///
/// `start` reads the [`EnergyMeter`]'s cumulative energy, `end` reads it again and returns the
/// difference; criterion divides by the iterations of the sample. Values are joules (criterion's
/// `estimates.json` holds them in J); the printed unit says whether they are measured or
/// estimated.
///
/// ```no_run
/// use carina_criterion::Energy;
/// use criterion::Criterion;
///
/// let mut c = Energy::new().configure(Criterion::default());
/// c.bench_function("sum", |b| b.iter(|| (0..1000u64).sum::<u64>()));
/// ```
///
/// Hand it to criterion with [`Energy::configure`], not `Criterion::with_measurement`: criterion
/// saves results by group and benchmark name only, so energy results must go to a directory of
/// their own ([`energy_output_directory`]) or they overwrite the time results of the same names.
/// A bare `with_measurement` is refused at the first measurement, with this fix in the message.
pub struct Energy {
    meter: Mutex<EnergyMeter>,
    formatter: EnergyFormatter,
    /// Set by [`Energy::configure`] or [`Energy::assume_separate_output`]: the results of this
    /// measurement go to a directory of their own. Unset, [`Measurement::start`] refuses.
    separate_output: bool,
}

/// Problems the meter met and nobody took ([`EnergyMeter::take_warnings`]: a probe that failed
/// mid-benchmark, whose intervals then count as zero) go to stderr when the measurement is
/// dropped, at the end of the benchmark group, so low figures do not go unexplained.
impl Drop for Energy {
    fn drop(&mut self) {
        for w in self.meter().take_warnings() {
            eprintln!("carina-criterion: warning: {w}");
        }
    }
}

impl std::fmt::Debug for Energy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Energy")
            .field("meter", &*self.meter())
            .finish()
    }
}

impl Default for Energy {
    fn default() -> Self {
        Self::new()
    }
}

impl Energy {
    /// Over [`EnergyMeter::new`]: the sources a Carina run would use, in the scope
    /// `CARINA_SCOPE` says (process by default).
    pub fn new() -> Self {
        Self::from_meter(EnergyMeter::new())
    }

    /// Over [`EnergyMeter::detect`] in `scope`, whatever `CARINA_SCOPE` says.
    pub fn with_scope(scope: Scope) -> Self {
        Self::from_meter(EnergyMeter::detect(scope))
    }

    /// Over a meter built by hand (explicit probes, another proc root, another interval).
    pub fn from_meter(meter: EnergyMeter) -> Self {
        Energy {
            formatter: EnergyFormatter::new(meter.kind()),
            meter: Mutex::new(meter),
            separate_output: false,
        }
    }

    /// `criterion.with_measurement(self)`, saving into [`energy_output_directory`]
    /// (`target/criterion/carina-energy/` by default) instead of criterion's own directory.
    ///
    /// Criterion saves a benchmark's results, and its baselines, under
    /// `<output directory>/<group>/<bench>/` whatever the measurement; a measurement cannot
    /// change the ids. With the same directory, an energy run under the user's own group and
    /// benchmark names would replace the time baselines with joules (and report a -100 % change
    /// against them). A directory of its own keeps them apart whatever the names, and
    /// `--save-baseline`/`--baseline` then work per measurement. The settings of `criterion`
    /// (times, sample size, filters) are kept; the command line (`configure_from_args`, which
    /// `criterion_group!` applies after the config) does not change the directory.
    ///
    /// ```no_run
    /// use carina_criterion::Energy;
    /// use criterion::Criterion;
    ///
    /// let mut c = Energy::new().configure(Criterion::default());
    /// c.bench_function("sum", |b| b.iter(|| (0..1000u64).sum::<u64>()));
    /// ```
    ///
    /// `criterion` must be criterion 0.8's `Criterion` ([`CriterionConfig`]); one from another
    /// criterion version is refused at compile time with an error that says so.
    pub fn configure<C: CriterionConfig>(mut self, criterion: C) -> Criterion<Energy> {
        let criterion = criterion.into_criterion();
        self.separate_output = true;
        if std::env::var_os("CARGO_CRITERION_PORT").is_some() {
            eprintln!(
                "carina-criterion: warning: under cargo-criterion, results are saved by \
                 cargo-criterion by benchmark id, not in {}: name the energy groups apart \
                 (carina_criterion::group adds `-energy`)",
                energy_output_directory().display()
            );
        }
        criterion
            .with_measurement(self)
            .output_directory(&energy_output_directory())
    }

    /// Declares that the caller keeps this measurement's results apart from time results
    /// itself: it calls `Criterion::output_directory` with a directory of its own after
    /// `with_measurement`, or uses the measurement outside criterion's saving (calling
    /// `start`/`end` itself). Without it or [`configure`](Self::configure), the first
    /// [`Measurement::start`] refuses (see there).
    pub fn assume_separate_output(mut self) -> Self {
        self.separate_output = true;
        self
    }

    /// The reading a measurement starts from (refusing a shared output directory: see
    /// [`Measurement::start`]); shared by the implementations for each criterion version.
    fn reading_at_start(&self) -> f64 {
        if !self.separate_output {
            refuse_shared_output();
        }
        self.meter().read()
    }

    /// Joules since the reading `start`.
    fn joules_since(&self, start: f64) -> f64 {
        let now = self.meter().read();
        (now - start).max(0.0)
    }

    /// Measured or estimated.
    pub fn kind(&self) -> EnergyKind {
        self.formatter.kind()
    }

    /// The meter's one-line description ([`EnergyMeter::describe`]).
    pub fn describe(&self) -> String {
        self.meter().describe()
    }

    /// The meter, locked.
    pub fn meter(&self) -> MutexGuard<'_, EnergyMeter> {
        self.meter.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Measurement for Energy {
    /// The meter's cumulative reading at `start`, joules.
    type Intermediate = f64;
    /// Joules.
    type Value = f64;

    /// Refuses (panics with the fix, before criterion has measured or saved anything) when the
    /// measurement was handed to criterion with a bare `with_measurement`: criterion would save
    /// joules where the time results of the same names are, and overwrite their baselines.
    fn start(&self) -> f64 {
        self.reading_at_start()
    }

    fn end(&self, start: f64) -> f64 {
        self.joules_since(start)
    }

    fn add(&self, v1: &f64, v2: &f64) -> f64 {
        v1 + v2
    }

    fn zero(&self) -> f64 {
        0.0
    }

    fn to_f64(&self, value: &f64) -> f64 {
        *value
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        &self.formatter
    }
}

/// The refusal of [`Measurement::start`], out of line: it never returns.
#[cold]
#[inline(never)]
fn refuse_shared_output() -> ! {
    panic!(
        "carina-criterion: refusing to measure: this Criterion got `Energy` through \
         `with_measurement`, so criterion would save joules in the directory of the time \
         results ({}/<group>/<bench>/) and overwrite the time baselines of the same group and \
         benchmark names. Use `Energy::new().configure(Criterion::default())` (or \
         `energy_and_time_group!`), which saves energy under {}; if you already give this \
         Criterion an output directory of its own, say so with \
         `Energy::new().assume_separate_output()`.",
        criterion_home().display(),
        energy_output_directory().display()
    )
}

/// The name of the directory, inside criterion's, that [`Energy::configure`] saves into.
pub const ENERGY_SUBDIRECTORY: &str = "carina-energy";

/// Criterion's output directory, found as criterion finds it: `$CRITERION_HOME`, else
/// `$CARGO_TARGET_DIR/criterion`, else the target directory `cargo metadata` names (under
/// `cargo bench`, `$CARGO` is set) joined with `criterion`, else `target/criterion`. Found once
/// per process, as criterion does.
pub fn criterion_home() -> PathBuf {
    static HOME: OnceLock<PathBuf> = OnceLock::new();
    HOME.get_or_init(|| {
        if let Some(home) = std::env::var_os("CRITERION_HOME") {
            return PathBuf::from(home);
        }
        cargo_target_directory()
            .map(|t| t.join("criterion"))
            .unwrap_or_else(|| PathBuf::from("target/criterion"))
    })
    .clone()
}

fn cargo_target_directory() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return Some(PathBuf::from(dir));
    }
    let cargo = std::env::var_os("CARGO")?;
    let out = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    v.get("target_directory")?.as_str().map(PathBuf::from)
}

/// Where [`Energy::configure`] has criterion save: [`criterion_home`] joined with
/// [`ENERGY_SUBDIRECTORY`], `target/criterion/carina-energy` by default.
pub fn energy_output_directory() -> PathBuf {
    criterion_home().join(ENERGY_SUBDIRECTORY)
}

/// What [`Energy::configure`] and the `config` of [`energy_and_time_group!`] accept: a
/// `Criterion` of criterion **0.8**, the version this crate is built on, with any measurement.
///
/// Criterion's types from two versions do not mix, and with `criterion = "0.5"` in a user's
/// `[dev-dependencies]` beside this crate both are in the graph; rustc's own error for that is a
/// type mismatch deep in a macro. This trait makes the first error name the cause and the fix:
/// "`criterion::Criterion` is not a `Criterion` of criterion 0.8, the version carina-criterion
/// is built on", with a note to depend on `criterion = "0.8"` or use the re-export
/// [`carina_criterion::criterion`](crate::criterion).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a `Criterion` of criterion 0.8, the version carina-criterion is built on",
    label = "a `Criterion` of another criterion version, or not a `Criterion`",
    note = "carina-criterion works with criterion 0.8, and with 0.5 through its feature `criterion-0_5` and `Energy::configure_v05`: set `criterion = \"0.8\"` in your [dev-dependencies] (or use the re-export `carina_criterion::criterion`); two criterion versions in one graph have types that do not mix"
)]
pub trait CriterionConfig {
    /// The measurement of the `Criterion`.
    type Measurement: Measurement;
    /// The `Criterion` itself.
    fn into_criterion(self) -> Criterion<Self::Measurement>;
}

impl<M: Measurement> CriterionConfig for Criterion<M> {
    type Measurement = M;
    fn into_criterion(self) -> Criterion<M> {
        self
    }
}

/// A measurement whose benchmark groups [`group`] can name, so that the same benchmark
/// functions, run under several measurements, keep their results apart
/// (`target/criterion/<group>/...`): a wall-time group keeps its name, an [`Energy`] group gets
/// `-energy` appended. Implement it for other measurements to use them with
/// [`energy_and_time_group!`] targets.
pub trait EnergyAware: Measurement + Sized {
    /// The group name for `base` under this measurement.
    fn group_name(base: &str) -> String {
        base.to_owned()
    }
}

impl EnergyAware for WallTime {}

impl EnergyAware for Energy {
    fn group_name(base: &str) -> String {
        format!("{base}-energy")
    }
}

/// `c.benchmark_group(M::group_name(name))`: `name` under wall time, `name-energy` under
/// [`Energy`].
pub fn group<'a, M: EnergyAware>(c: &'a mut Criterion<M>, name: &str) -> BenchmarkGroup<'a, M> {
    c.benchmark_group(M::group_name(name))
}

/// Defines a benchmark group function, like `criterion::criterion_group!`, that runs its targets
/// twice: with wall time, then with [`Energy`] (so `cargo bench` prints and saves both). The
/// targets are functions generic over the measurement, `fn f<M: EnergyAware>(c: &mut
/// Criterion<M>)`, that make their groups with [`group`]. The config is an expression of type
/// `Criterion` (wall time), evaluated once for each run; the energy run prints the meter's
/// description on stderr first.
///
/// ```no_run
/// # use carina_criterion::{EnergyAware, energy_and_time_group, group};
/// # use criterion::Criterion;
/// # use std::time::Duration;
/// fn bench<M: EnergyAware>(c: &mut Criterion<M>) {
///     let mut g = group(c, "sum");
///     g.bench_function("1k", |b| b.iter(|| (0..1000u64).sum::<u64>()));
///     g.finish();
/// }
/// energy_and_time_group! {
///     name = benches;
///     config = Criterion::default().measurement_time(Duration::from_secs(3));
///     targets = bench
/// }
/// # fn main() { benches() }
/// ```
#[macro_export]
macro_rules! energy_and_time_group {
    (name = $name:ident; config = $config:expr; targets = $( $target:path ),+ $(,)*) => {
        /// Runs the benchmarks with wall time, then with energy.
        pub fn $name() {
            {
                let mut criterion: $crate::criterion::Criterion<
                    $crate::criterion::measurement::WallTime,
                > = $crate::CriterionConfig::into_criterion($config).configure_from_args();
                $( $target(&mut criterion); )+
            }
            {
                let energy = $crate::Energy::new();
                ::std::eprintln!("carina-criterion: {}", energy.describe());
                for w in energy.meter().take_warnings() {
                    ::std::eprintln!("carina-criterion: warning: {w}");
                }
                let mut criterion: $crate::criterion::Criterion<$crate::Energy> =
                    energy.configure($config).configure_from_args();
                $( $target(&mut criterion); )+
            }
        }
    };
    ($name:ident, $( $target:path ),+ $(,)*) => {
        $crate::energy_and_time_group! {
            name = $name;
            config = $crate::criterion::Criterion::default();
            targets = $( $target ),+
        }
    };
}
