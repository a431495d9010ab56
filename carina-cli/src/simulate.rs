//! `carina simulate`: one row per policy, as an aligned table or a JSON array.

use crate::out;
use carina_control::Calendar;
use carina_control::policy::{Policy, PolicyError};
use carina_control::schedule::Schedule;
use carina_control::simulate::{
    self as sim, ConstantIntensity, Intensity, MachineModel, Profile, Report, Scenario, SimError,
    SimSpec, Tariffs, WeekdayPeak,
};
use carina_runtime::carbon::{IntensitySeries, WORLD_G_PER_KWH};
use carina_runtime::format::{
    HOUR_COLUMN, KG_COLUMN, KWH_COLUMN, Scale, duration, energy, escape_control, signed,
};
use clap::ValueEnum;
use jiff::Timestamp;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The long help of `carina simulate` (`--help`): the model and the policies in words.
pub const LONG_ABOUT: &str = "\
What one cycle of a recurrent batch job would cost under each policy.

The workload is given as items, hours and kWh of one cycle at baseline (--items/--hours/--kwh),
or taken from a run file (--from). A machine model (--workers, --idle-share, --sleep-share,
--contention, --ramp-s) is calibrated so that the baseline reproduces those hours and kWh
exactly; each policy then runs from the start instant (--start, default Monday 2024-01-08
00:00 UTC) until every item is done, under a schedule of peak windows (--schedule; default
Mon-Fri 08:00-20:00 UTC) with tariffs and a carbon intensity (--factor or --intensity).

Policies: baseline (nominal workers always), throttle (fewer workers in peak windows),
offpeak-boost (more workers off-peak, fewer or none in peak), defer (paused in peak windows).
They are the governor's policies, written as for `scenario_db --policy` (e.g.
`throttle:peak_fraction=0.25`), and the simulator uses the governor's arithmetic: workers per
slot rounded up as the governor allows them, and deadline rescue (at least the nominal workers)
from the instant the governor's rule says. The model, its defaults and their reasoning are in
docs/CONTROL.md.";

/// The examples printed after the help of `carina simulate`.
pub const EXAMPLES: &str = "\
Examples:
  carina simulate --items 1480000 --hours 180.3 --kwh 48.67 --factor 448
  carina simulate --from carina-runs/scenario-db/20240108T000000Z-1-ab12.jsonl --format json
  carina simulate --items 1e6 --hours 24 --kwh 6 --deadline-h 36 --policy baseline,defer
  carina simulate --items 1e6 --hours 24 --kwh 6 --policy baseline,offpeak-boost:offpeak_factor=1.75,peak_fraction=0";

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// An aligned table with units in the headers.
    Text,
    /// A JSON array with one object per policy.
    Json,
}

/// `carina simulate` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Items one cycle processes.
    #[arg(long, value_name = "N", help_heading = "Workload (give these three, or --from)",
          required_unless_present_any = ["from", "run"], conflicts_with_all = ["from", "run"], value_parser = parse_items)]
    items: Option<u64>,
    /// Hours one cycle takes at baseline.
    #[arg(
        long,
        value_name = "H",
        help_heading = "Workload (give these three, or --from)",
        required_unless_present_any = ["from", "run"],
        conflicts_with_all = ["from", "run"]
    )]
    hours: Option<f64>,
    /// Energy of one cycle at baseline, kWh.
    #[arg(
        long,
        value_name = "E",
        help_heading = "Workload (give these three, or --from)",
        required_unless_present_any = ["from", "run"],
        conflicts_with_all = ["from", "run"]
    )]
    kwh: Option<f64>,
    /// Take items, hours and kWh from a run file (run_end; a run that did not finish gives a
    /// partial profile, and a note says so).
    #[arg(
        long,
        value_name = "RUNFILE",
        help_heading = "Workload (give these three, or --from)"
    )]
    from: Option<PathBuf>,
    /// The same as --from: `carina simulate RUNFILE`.
    #[arg(
        value_name = "RUNFILE",
        conflicts_with = "from",
        help_heading = "Workload (give these three, or --from)"
    )]
    run: Option<PathBuf>,

    /// Schedule file with peak windows and tariffs [default: Mon-Fri 08:00-20:00 UTC peak].
    #[arg(
        long,
        value_name = "FILE",
        help_heading = "Schedule, carbon and prices"
    )]
    schedule: Option<PathBuf>,
    /// Grid carbon intensity, g CO2e/kWh [default: the run file's factor with --from, else the
    /// 2024 world average, 472.94].
    #[arg(
        long,
        value_name = "G_PER_KWH",
        help_heading = "Schedule, carbon and prices"
    )]
    factor: Option<f64>,
    /// Time-varying intensity: a CSV with a `timestamp,g_per_kwh` header (docs/CARBON.md).
    #[arg(
        long,
        value_name = "CSV",
        conflicts_with = "factor",
        help_heading = "Schedule, carbon and prices"
    )]
    intensity: Option<PathBuf>,
    /// Price per kWh in peak windows where the schedule gives none.
    #[arg(long, value_name = "PRICE", default_value_t = sim::DEFAULT_PEAK_TARIFF,
          help_heading = "Schedule, carbon and prices")]
    peak_tariff: f64,
    /// Price per kWh off-peak where the schedule gives none.
    #[arg(long, value_name = "PRICE", default_value_t = sim::DEFAULT_OFFPEAK_TARIFF,
          help_heading = "Schedule, carbon and prices")]
    offpeak_tariff: f64,
    /// When the cycle starts, RFC 3339 [default: 2024-01-08T00:00:00Z, a Monday].
    #[arg(
        long,
        value_name = "TIME",
        help_heading = "Schedule, carbon and prices"
    )]
    start: Option<Timestamp>,

    /// Workers the baseline runs (the unit policies scale).
    #[arg(long, value_name = "N", default_value_t = sim::DEFAULT_NOMINAL_WORKERS,
          help_heading = "Machine model")]
    workers: u32,
    /// Most workers the machine can run [default: twice --workers].
    #[arg(long, value_name = "N", help_heading = "Machine model")]
    max_workers: Option<u32>,
    /// Share of the baseline's mean power paid whatever the worker count (0 to below 1).
    #[arg(long, value_name = "SHARE", default_value_t = sim::DEFAULT_IDLE_SHARE,
          help_heading = "Machine model")]
    idle_share: f64,
    /// Power while paused, as a share of the idle power (1: pausing saves nothing).
    #[arg(long, value_name = "SHARE", default_value_t = sim::DEFAULT_SLEEP_SHARE,
          help_heading = "Machine model")]
    sleep_share: f64,
    /// Throughput lost per extra worker: efficiency 1 / (1 + c (workers - 1)).
    #[arg(long, value_name = "C", default_value_t = sim::DEFAULT_CONTENTION,
          help_heading = "Machine model")]
    contention: f64,
    /// Seconds each started worker warms up before producing items.
    #[arg(long, value_name = "S", default_value_t = sim::DEFAULT_RAMP_S,
          help_heading = "Machine model")]
    ramp_s: f64,

    /// Policies to show, comma-separated [default: baseline,throttle,offpeak-boost,defer].
    /// Each is a policy as the governor reads it: a bare name takes its parameters from the
    /// flags below; `throttle:peak_fraction=F` and
    /// `offpeak-boost:offpeak_factor=F,peak_fraction=F` give them. Deltas are always against
    /// baseline.
    #[arg(long, value_name = "LIST", help_heading = "Policies")]
    policy: Vec<String>,
    /// Share of workers `throttle` keeps in peak windows, in (0, 1] (rounded up, at least 1).
    #[arg(long, value_name = "SHARE", default_value_t = Policy::DEFAULT_THROTTLE_PEAK_FRACTION,
          help_heading = "Policies")]
    throttle_fraction: f64,
    /// Multiple of workers `offpeak-boost` runs off-peak, 1 to 1000 (rounded up, capped at
    /// --max-workers).
    #[arg(long, value_name = "X", default_value_t = Policy::DEFAULT_BOOST_OFFPEAK_FACTOR,
          help_heading = "Policies")]
    boost_factor: f64,
    /// Share of workers `offpeak-boost` keeps in peak windows, in [0, 1] (rounded up; 0:
    /// paused).
    #[arg(long, value_name = "SHARE", default_value_t = Policy::DEFAULT_BOOST_PEAK_FRACTION,
          help_heading = "Policies")]
    boost_peak_fraction: f64,
    /// Deadline for the policies other than baseline, hours after the start: as with the
    /// governor, they run at least the nominal workers from the instant the remaining work at
    /// nominal concurrency would no longer fit (deadline rescue).
    #[arg(long, value_name = "H", help_heading = "Policies")]
    deadline_h: Option<f64>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text, help_heading = "Output")]
    format: Format,
}

/// Accepts `1480000`, `1_480_000` and `1.48e6` (a whole number).
fn parse_items(s: &str) -> Result<u64, String> {
    let t = s.trim().replace('_', "");
    if let Ok(n) = t.parse::<u64>() {
        return Ok(n);
    }
    match t.parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 && x.fract() == 0.0 && x < 1.8e19 => Ok(x as u64),
        _ => Err(format!("expected a whole number of items, got {s:?}")),
    }
}

/// Bad input: printed as `carina simulate: <message>`, exit status 2.
struct Bad(String);

impl From<String> for Bad {
    fn from(s: String) -> Self {
        Bad(s)
    }
}

/// Runs the command.
pub fn run(args: &Args) -> ExitCode {
    match simulate(args) {
        // A table is terminal text; JSON is data, printed as serialised.
        Ok(text) if args.format == Format::Text => {
            out::print_text("simulate", &text, ExitCode::SUCCESS)
        }
        Ok(json) => out::print_json("simulate", &json, ExitCode::SUCCESS),
        Err(Bad(message)) => {
            out::message("simulate", message);
            ExitCode::from(2)
        }
    }
}

/// The flag behind a simulator field, for messages.
fn flag_of(field: &str, policy: Option<&str>) -> &'static str {
    match (field, policy) {
        ("items", _) => "--items",
        ("baseline_hours", _) => "--hours",
        ("baseline_kwh", _) => "--kwh",
        ("nominal_workers", _) => "--workers",
        ("max_workers", _) => "--max-workers",
        ("idle_share", _) => "--idle-share",
        ("sleep_share", _) => "--sleep-share",
        ("contention", _) => "--contention",
        ("ramp_s", _) => "--ramp-s",
        ("peak_fraction", Some("throttle")) => "--throttle-fraction",
        ("peak_fraction", _) => "--boost-peak-fraction",
        ("offpeak_factor", _) => "--boost-factor",
        ("deadline", _) => "--deadline-h",
        ("peak_per_kwh", _) => "--peak-tariff",
        ("offpeak_per_kwh", _) => "--offpeak-tariff",
        _ => "input",
    }
}

fn explain(e: SimError, policy: Option<&str>) -> Bad {
    match e {
        SimError::Invalid { field, message } => {
            Bad(format!("{} {message}", flag_of(field, policy)))
        }
        other => Bad(other.to_string()),
    }
}

/// A policy parameter from a flag out of range: names the flag.
fn explain_policy(e: PolicyError) -> Bad {
    match e {
        PolicyError::BadParameter {
            policy,
            key,
            value,
            reason,
        } => Bad(format!(
            "{} {reason}, got {value}",
            flag_of(key, Some(policy))
        )),
        other => Bad(other.to_string()),
    }
}

/// Splits a `--policy` list at the commas that start a policy: a piece with `=` and no `:`
/// continues the parameters of the one before, so
/// `baseline,offpeak-boost:offpeak_factor=2,peak_fraction=0` is two policies.
fn split_policies(list: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for piece in list.split(',') {
        match out.last_mut() {
            Some(last) if piece.contains('=') && !piece.contains(':') && last.contains(':') => {
                last.push(',');
                last.push_str(piece);
            }
            _ => out.push(piece.to_owned()),
        }
    }
    out
}

/// The policies of `--policy` (default: the four names), as the governor reads them; a bare
/// name takes its parameters from `--throttle-fraction` and `--boost-*`.
fn policies(args: &Args) -> Result<Vec<Policy>, Bad> {
    let given: Vec<String> = if args.policy.is_empty() {
        Policy::NAMES.iter().map(|n| (*n).to_owned()).collect()
    } else {
        args.policy.iter().flat_map(|l| split_policies(l)).collect()
    };
    let mut out = Vec::new();
    for text in given {
        let parsed: Policy = text
            .parse()
            .map_err(|e: PolicyError| Bad(format!("--policy: {e}")))?;
        let policy = if text.contains(':') {
            parsed
        } else {
            match parsed {
                Policy::Throttle { .. } => {
                    Policy::throttle(args.throttle_fraction).map_err(explain_policy)?
                }
                Policy::OffPeakBoost { .. } => {
                    Policy::offpeak_boost(args.boost_factor, args.boost_peak_fraction)
                        .map_err(explain_policy)?
                }
                other => other,
            }
        };
        out.push(policy);
    }
    Ok(out)
}

/// What the table's header lines say about where the inputs came from.
struct Context {
    profile: Profile,
    schedule: String,
    carbon: String,
    series: Option<IntensitySeries>,
}

fn simulate(args: &Args) -> Result<String, Bad> {
    // Workload.
    let (profile, run_factor) = match args.from.as_ref().or(args.run.as_ref()) {
        Some(path) => {
            let run = crate::load::load_run(path).map_err(|e| Bad(format!("--from: {e}")))?;
            let profile = Profile::from_run(&run).map_err(|e| explain(e, None))?;
            (profile, Some(run.start.carbon.g_per_kwh))
        }
        None => {
            let (Some(items), Some(hours), Some(kwh)) = (args.items, args.hours, args.kwh) else {
                return Err(Bad(
                    "give --items, --hours and --kwh, or --from RUNFILE".to_owned()
                ));
            };
            (
                Profile::new(items, hours, kwh).map_err(|e| explain(e, None))?,
                None,
            )
        }
    };

    // Machine and policies.
    let machine = MachineModel {
        nominal_workers: args.workers,
        max_workers: args
            .max_workers
            .unwrap_or_else(|| args.workers.saturating_mul(2)),
        idle_share: args.idle_share,
        sleep_share: args.sleep_share,
        contention: args.contention,
        ramp_s: args.ramp_s,
    };
    machine.validate().map_err(|e| explain(e, None))?;
    let policies = policies(args)?;
    let deadline_h = match args.deadline_h {
        Some(h) if !(h.is_finite() && h > 0.0 && h < 1e6) => {
            return Err(Bad(format!(
                "--deadline-h must be a positive number of hours, got {h}"
            )));
        }
        other => other,
    };
    let mut specs = Vec::new();
    for policy in policies {
        let spec = match (policy, deadline_h) {
            (Policy::Baseline, _) | (_, None) => SimSpec::from(policy),
            (_, Some(h)) => SimSpec::with_deadline_hours(policy, h),
        };
        if !specs.contains(&spec) {
            specs.push(spec);
        }
    }

    // Schedule, carbon, prices.
    let default_calendar = WeekdayPeak::default();
    let loaded_calendar;
    let (calendar, schedule): (&dyn Calendar, String) = match &args.schedule {
        Some(path) => {
            let described;
            (loaded_calendar, described) = load_schedule(path)?;
            (loaded_calendar.as_ref(), described)
        }
        None => (
            &default_calendar,
            format!("{} peak (default)", default_calendar.describe()),
        ),
    };
    let tariffs = Tariffs {
        peak_per_kwh: args.peak_tariff,
        offpeak_per_kwh: args.offpeak_tariff,
    };
    for (flag, v) in [
        ("--peak-tariff", tariffs.peak_per_kwh),
        ("--offpeak-tariff", tariffs.offpeak_per_kwh),
    ] {
        if !(v.is_finite() && v >= 0.0) {
            return Err(Bad(format!("{flag} must be a price of 0 or more, got {v}")));
        }
    }
    let mut ctx = Context {
        profile,
        schedule,
        carbon: String::new(),
        series: None,
    };
    let constant;
    let from_series;
    let intensity: &dyn Intensity = match (&args.intensity, args.factor, run_factor) {
        (Some(path), _, _) => {
            let series =
                IntensitySeries::load(path).map_err(|e| Bad(format!("--intensity: {e}")))?;
            ctx.carbon = format!(
                "time series {} (mean {:.1} g CO2e/kWh)",
                path.display(),
                series.mean()
            );
            ctx.series = Some(series.clone());
            from_series = move |t: Timestamp| series.at(t).0;
            &from_series
        }
        (None, Some(g), _) => {
            if !(g.is_finite() && g >= 0.0) {
                return Err(Bad(format!(
                    "--factor must be 0 or more g CO2e/kWh, got {g}"
                )));
            }
            ctx.carbon = format!("{g} g CO2e/kWh (--factor)");
            constant = ConstantIntensity(g);
            &constant
        }
        (None, None, Some(g)) => {
            ctx.carbon = format!("{g} g CO2e/kWh (the run file's factor)");
            constant = ConstantIntensity(g);
            &constant
        }
        (None, None, None) => {
            ctx.carbon = format!("{WORLD_G_PER_KWH} g CO2e/kWh (2024 world average, default)");
            constant = ConstantIntensity(WORLD_G_PER_KWH);
            &constant
        }
    };

    let scenario = Scenario {
        machine,
        tariffs,
        start: args.start.unwrap_or_else(sim::default_start),
        ..Scenario::new(&ctx.profile, calendar, intensity)
    };
    let reports = scenario.compare(&specs).map_err(|e| explain(e, None))?;

    // Notes go to stderr so that stdout stays a table or valid JSON.
    for note in &ctx.profile.notes {
        if !ctx.profile.complete || args.format == Format::Text {
            out::line(format_args!("note: {note}"));
        }
    }
    if let Some(series) = &ctx.series {
        let (first, last) = series.range();
        let end = reports
            .iter()
            .map(|r| r.outcome.finished_at)
            .max()
            .unwrap_or(scenario.start);
        if scenario.start < first || end > last {
            out::line(format_args!(
                "warning: the intensity series covers {first} to {last}; the simulation runs from {} to {end}: outside it the nearest value is used",
                scenario.start
            ));
        }
    }

    Ok(match args.format {
        Format::Json => json(&reports, &ctx.profile),
        Format::Text => text(&reports, &scenario, &ctx),
    })
}

/// Reads a schedule file (TOML, docs/CONTROL.md "Schedule file format") and describes it.
fn load_schedule(path: &Path) -> Result<(Box<dyn Calendar>, String), Bad> {
    let schedule = Schedule::load(path).map_err(|e| Bad(format!("--schedule: {e}")))?;
    let described = format!("{} peak ({})", schedule.describe(), path.display());
    Ok((Box::new(schedule), described))
}

/// One JSON object per policy.
#[derive(Debug, Serialize)]
struct Row<'a> {
    policy: &'a str,
    policy_spec: String,
    makespan_h: f64,
    energy_kwh: f64,
    co2e_kg: f64,
    cost: f64,
    energy_delta_pct: f64,
    makespan_delta_pct: f64,
    co2e_delta_pct: f64,
    cost_delta_pct: f64,
    peak_energy_kwh: f64,
    paused_h: f64,
    concurrency_changes: u32,
    deadline_h: Option<f64>,
    deadline_met: Option<bool>,
    rescued_at_h: Option<f64>,
    profile_complete: bool,
}

/// Six decimals: enough for every figure, without float noise.
fn r6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

fn json(reports: &[Report], profile: &Profile) -> String {
    let rows: Vec<Row<'_>> = reports
        .iter()
        .map(|r| {
            let o = &r.outcome;
            Row {
                policy: o.name(),
                policy_spec: o.policy.to_string(),
                makespan_h: r6(o.makespan_h),
                energy_kwh: r6(o.energy_kwh),
                co2e_kg: r6(o.co2e_kg),
                cost: r6(o.cost),
                energy_delta_pct: r6(r.energy_delta_pct),
                makespan_delta_pct: r6(r.makespan_delta_pct),
                co2e_delta_pct: r6(r.co2e_delta_pct),
                cost_delta_pct: r6(r.cost_delta_pct),
                peak_energy_kwh: r6(o.peak_kwh),
                paused_h: r6(o.paused_h),
                concurrency_changes: o.changes,
                deadline_h: o.deadline.map(|d| r6(d.as_secs_f64() / 3600.0)),
                deadline_met: o.deadline_met,
                rescued_at_h: o.rescued_at_h.map(r6),
                profile_complete: profile.complete,
            }
        })
        .collect();
    let mut s = serde_json::to_string_pretty(&rows).expect("rows serialize");
    s.push('\n');
    s
}

fn text(reports: &[Report], scenario: &Scenario<'_>, ctx: &Context) -> String {
    let p = &ctx.profile;
    let m = &scenario.machine;
    let mut out = String::new();
    let cal = m
        .calibrate(p)
        .expect("the model was validated before the simulation");
    // Adaptive units: a short run reads `20.0 s and 0.500 Wh`, not `0.01 h and 0.00 kWh`.
    out.push_str(&format!(
        "Workload: {} items; at baseline {} and {} (mean {:.1} W){}\n",
        p.items,
        duration(p.baseline_hours * 3600.0),
        energy(p.baseline_kwh * 3.6e6),
        p.mean_w(),
        if p.complete {
            ""
        } else {
            " [partial: the run did not finish]"
        }
    ));
    out.push_str(&format!(
        "Machine:  {} workers nominal (max {}); {:.1} W idle + {:.1} W per worker, {:.1} W paused; contention {} per worker; warm-up {} s per started worker\n",
        m.nominal_workers, m.max_workers, cal.idle_w, cal.active_w, cal.sleep_w, m.contention, m.ramp_s
    ));
    out.push_str(&format!(
        "Schedule: {}; prices per kWh where it gives none: {} peak, {} off-peak\n",
        escape_control(&ctx.schedule),
        scenario.tariffs.peak_per_kwh,
        scenario.tariffs.offpeak_per_kwh
    ));
    out.push_str(&format!("Carbon:   {}\n", escape_control(&ctx.carbon)));
    let mut shown: Vec<String> = Vec::new();
    for r in reports {
        let spec = r.outcome.policy.to_string();
        if !shown.contains(&spec) {
            shown.push(spec);
        }
    }
    out.push_str(&format!(
        "Policies: {} (played as the governor allows them)\n",
        escape_control(&shown.join("; "))
    ));
    out.push_str(&format!(
        "Start:    {} ({})\n\n",
        scenario.start,
        scenario.start.strftime("%A")
    ));

    let with_deadline = reports.iter().any(|r| r.outcome.deadline.is_some());
    // One unit per column, chosen from its largest value (format::Scale): a cycle of days reads
    // in h, kWh and kg as always; a 20 s run in s, Wh and g, with meaningful digits.
    let max =
        |f: &dyn Fn(&Report) -> f64| reports.iter().map(f).fold(0.0, |a: f64, x| a.max(x.abs()));
    let time = Scale::pick(
        max(&|r| {
            r.outcome
                .makespan_h
                .max(r.outcome.deadline.map_or(0.0, |d| d.as_secs_f64() / 3600.0))
        }),
        &HOUR_COLUMN,
        2,
    );
    let kwh = Scale::pick(max(&|r| r.outcome.energy_kwh), &KWH_COLUMN, 2);
    let kg = Scale::pick(max(&|r| r.outcome.co2e_kg), &KG_COLUMN, 2);
    let money = Scale::with("", 1.0, max(&|r| r.outcome.cost), 2);
    // Paused time and deadlines: the makespan's unit, one decimal less.
    let coarse = Scale {
        decimals: time.decimals - 1,
        ..time
    };
    let (tu, eu, cu) = (
        format!("({})", time.unit),
        format!("({})", kwh.unit),
        format!("({})", kg.unit),
    );
    let mut header: Vec<(&str, &str)> = vec![
        ("policy", ""),
        ("makespan", &tu),
        ("vs base", "(%)"),
        ("energy", &eu),
        ("vs base", "(%)"),
        ("CO2e", &cu),
        ("vs base", "(%)"),
        ("cost", "(currency)"),
        ("vs base", "(%)"),
        ("in peak", &eu),
        ("paused", &tu),
    ];
    if with_deadline {
        header.push(("deadline", &tu));
    }
    let mut rows: Vec<Vec<String>> = Vec::new();
    for r in reports {
        let o = &r.outcome;
        // The name, or the whole policy where two rows share a name.
        let shared = reports
            .iter()
            .filter(|x| x.outcome.name() == o.name())
            .any(|x| x.outcome.policy != o.policy);
        let mut row = vec![
            if shared {
                escape_control(&o.policy.to_string()).into_owned()
            } else {
                o.name().to_owned()
            },
            time.fmt(o.makespan_h),
            signed(r.makespan_delta_pct, 1),
            kwh.fmt(o.energy_kwh),
            signed(r.energy_delta_pct, 1),
            kg.fmt(o.co2e_kg),
            signed(r.co2e_delta_pct, 1),
            money.fmt(o.cost),
            signed(r.cost_delta_pct, 1),
            kwh.fmt(o.peak_kwh),
            coarse.fmt(o.paused_h),
        ];
        if with_deadline {
            row.push(match (o.deadline, o.deadline_met) {
                (Some(d), Some(true)) => format!("{} met", coarse.fmt(d.as_secs_f64() / 3600.0)),
                (Some(d), _) => format!("{} MISSED", coarse.fmt(d.as_secs_f64() / 3600.0)),
                (None, _) => "-".to_owned(),
            });
        }
        rows.push(row);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].0.len(), header[i].1.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[&str]| -> String {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i == 0 {
                s.push_str(&format!("{c:<w$}", w = widths[0]));
            } else {
                s.push_str(&format!("  {c:>w$}", w = widths[i]));
            }
        }
        s.truncate(s.trim_end().len());
        s.push('\n');
        s
    };
    out.push_str(&line(&header.iter().map(|h| h.0).collect::<Vec<_>>()));
    out.push_str(&line(&header.iter().map(|h| h.1).collect::<Vec<_>>()));
    for r in &rows {
        out.push_str(&line(&r.iter().map(String::as_str).collect::<Vec<_>>()));
    }
    out
}
