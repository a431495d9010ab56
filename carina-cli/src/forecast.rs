//! `carina forecast`: projected runtime, energy and CO2e of a cycle of N items, from a partial
//! or complete run. Exit status: 0 on success, 2 on bad input.

use crate::load::load_run;
use crate::out;
use crate::view::RunView;
use carina_runtime::format::{
    co2e_as, duration, duration_as, energy, energy_as, energy_fine_as, escape_control, percent,
    sig3,
};
use carina_runtime::reader::RunFile;
use std::path::PathBuf;
use std::process::ExitCode;

const LONG_ABOUT: &str = "Project the runtime, energy and CO2e of N items from a run that \
is still going (or crashed), or of a full new cycle of N items from a complete run, with an \
interval and the finish time.\n\n\
Method. Items done are `run_end.items`; for a run without `run_end`, the item total of the \
progress step: the step name with the most instances that have items (ties: the larger item \
total), or, when no name has more than one such instance, the name with the largest item total, \
so that a set-up step declaring every item in one record does not count as done. A run \
without `run_end` is read up to one moment, the end of its last `power` record (else of its \
last step record): its items done, energy so far and elapsed time all stop there, and step \
records that ended later are left out. The point \
forecast uses the run's average rates so far: items per second (items done / elapsed wall time) \
and energy per item (energy so far / items done). A partial run's projection is what it has \
spent plus the remaining items (N - done) at those rates; a complete run is a full cycle of N \
items at those rates. The finish time is run_start.started_at + projected runtime for a partial \
run, and now + projected runtime for a complete one.\n\n\
Interval. The elapsed time is split into up to 20 equal buckets (about 3 step records per \
bucket at least; the progress step's records count the items, and every step record's \
self energy counts toward its bucket's energy, by end time). For each bucket, items/s and J per \
item are computed; the interval of each rate is the point rate x (1 +/- 1.96 x the relative \
standard error of the bucket mean), i.e. an approximate 95 % interval of the average rate, and \
the remaining items are projected at the interval's ends. With fewer than 4 buckets of data \
(e.g. summaries only) the interval is the point. CO2e uses the run's own CO2e per joule (else \
its emission factor).";

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Lines for the terminal.
    Text,
    /// One JSON object.
    Json,
}

/// Arguments of `carina forecast`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = LONG_ABOUT)]
pub struct Args {
    /// The run file (`.jsonl`), partial or complete.
    pub path: PathBuf,
    /// Items of the full cycle to project (a positive integer).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub total_items: u64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// A figure with its interval.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub(crate) struct Range {
    pub(crate) point: f64,
    pub(crate) low: f64,
    pub(crate) high: f64,
}

impl Range {
    /// `point` +/- `rel` x `point`, the low end at least 0.
    fn around(point: f64, rel: f64) -> Range {
        let (low, high) = ((point * (1.0 - rel)).max(0.0), point * (1.0 + rel));
        Range { point, low, high }
    }

    fn map(self, f: impl Fn(f64) -> f64) -> Range {
        let (point, low, high) = (f(self.point), f(self.low), f(self.high));
        Range { point, low, high }
    }
}

#[derive(Debug, serde::Serialize)]
pub(crate) struct Forecast {
    pub(crate) path: String,
    pub(crate) job: String,
    pub(crate) run_id: String,
    pub(crate) complete: bool,
    /// `measured` or `estimated`: the kind of every energy and CO2e figure here.
    pub(crate) energy_kind: carina_runtime::record::EnergyKind,
    /// The kind with how the run's energy was obtained: `measured (counter x cpu-time share)`
    /// (`run_end.method`, else derived from the sources and scope).
    pub(crate) energy_method: String,
    pub(crate) items_done: u64,
    pub(crate) total_items: u64,
    pub(crate) remaining_items: u64,
    pub(crate) elapsed_s: f64,
    pub(crate) energy_so_far_j: f64,
    pub(crate) items_per_s: Range,
    pub(crate) j_per_item: Range,
    pub(crate) runtime_s: Range,
    pub(crate) energy_j: Range,
    pub(crate) co2e_g: Range,
    /// Finish time, RFC 3339 UTC (partial run: start + runtime; complete run: now + runtime).
    pub(crate) finish_at: Option<String>,
    pub(crate) finish_low_at: Option<String>,
    pub(crate) finish_high_at: Option<String>,
    pub(crate) buckets: usize,
    pub(crate) notes: Vec<String>,
}

/// Mean and relative standard error of the mean (se / mean).
fn rel_se(xs: &[f64]) -> Option<f64> {
    let n = xs.len();
    if n < 2 {
        return None;
    }
    let m = xs.iter().sum::<f64>() / n as f64;
    if m <= 0.0 {
        return None;
    }
    let var = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1) as f64;
    Some(var.sqrt() / (n as f64).sqrt() / m)
}

/// Where the interval's time buckets come from: a run's step records (`carina forecast`), or
/// a fold that kept them binned by end time as they were read (`carina serve`, which does not
/// keep the records).
pub(crate) trait StepSeries {
    /// Item-bearing records of step `name` in the run's span: they decide the bucket count.
    fn item_records(&self, name: &str) -> usize;
    /// Per bucket of `0 .. k x width` seconds, by each record's end time: the items of step
    /// `name`, and the self energy of every step (J).
    fn bucketed(&self, name: &str, k: usize, width: f64) -> (Vec<f64>, Vec<f64>);
}

/// The step records of a run in its span.
struct Records<'v, 'a>(&'v RunView<'a>);

impl StepSeries for Records<'_, '_> {
    fn item_records(&self, name: &str) -> usize {
        // A crashed run's records up to its cut only, the span of its energy and elapsed time.
        self.0
            .steps()
            .filter(|s| s.name == name && s.items > 0)
            .count()
    }

    fn bucketed(&self, name: &str, k: usize, width: f64) -> (Vec<f64>, Vec<f64>) {
        let bucket = |t: f64| ((t / width).floor().max(0.0) as usize).min(k - 1);
        let mut items = vec![0.0; k];
        let mut joules = vec![0.0; k];
        for s in self.0.steps() {
            if s.name == name && s.items > 0 {
                items[bucket(s.end_s.into())] += s.items as f64;
            }
            joules[bucket(s.end_s.0)] += s.self_energy_j.0;
        }
        (items, joules)
    }
}

/// Relative half-widths of the 95 % intervals of items/s and J/item, and the bucket count.
fn spreads(v: &RunView, series: &dyn StepSeries) -> (Option<f64>, Option<f64>, usize) {
    let (elapsed, total_energy) = (v.wall.0, v.energy.0);
    // The same step as the items done, so the buckets measure the rate of the figure being
    // projected.
    let Some(item_step) = &v.progress else {
        return (None, None, 0);
    };
    let k = (series.item_records(&item_step.name) / 3).min(20);
    if k < 4 || elapsed <= 0.0 {
        return (None, None, 0);
    }
    let width = elapsed / k as f64;
    let (items, joules) = series.bucketed(&item_step.name, k, width);
    let attributed: f64 = joules.iter().sum();
    // Unattributed energy is spread in proportion.
    let scale = if attributed > 0.0 {
        total_energy / attributed
    } else {
        1.0
    };
    let rates: Vec<f64> = items.iter().map(|i| i / width).collect();
    let jpi: Vec<f64> = items
        .iter()
        .zip(&joules)
        .filter(|(i, _)| **i > 0.0)
        .map(|(i, j)| j * scale / i)
        .collect();
    let r = rel_se(&rates).map(|x| 1.96 * x);
    let j = if total_energy > 0.0 {
        rel_se(&jpi).map(|x| 1.96 * x)
    } else {
        None
    };
    (r, j, k)
}

fn at(start: Option<jiff::Timestamp>, secs: f64) -> Option<String> {
    let start = start?;
    if !secs.is_finite() {
        return None;
    }
    let d = jiff::SignedDuration::try_from_secs_f64(secs).ok()?;
    let t = start.checked_add(d).ok()?;
    let t = t.round(jiff::Unit::Second).unwrap_or(t);
    Some(t.to_string())
}

/// The forecast of `run` to `total` items, its interval from the run's step records.
pub(crate) fn forecast(run: &RunFile, total: u64) -> Result<Forecast, String> {
    forecast_with(run, total, None)
}

/// The forecast of `run` to `total` items, its interval from `series` when given (`carina
/// serve`: a fold of records no longer kept), else from the run's step records.
pub(crate) fn forecast_with(
    run: &RunFile,
    total: u64,
    series: Option<&dyn StepSeries>,
) -> Result<Forecast, String> {
    let v = RunView::new(run);
    let done = v.items;
    let (wall, energy_so_far) = (v.wall.0, v.energy.0);
    if done == 0 {
        return Err(format!(
            "{}: the run has recorded no items yet, so there is no rate to project from",
            run.path.display()
        ));
    }
    if wall <= 0.0 {
        return Err(format!(
            "{}: the run has no elapsed time yet, so there is no rate to project from",
            run.path.display()
        ));
    }
    let mut notes = Vec::new();
    let rate = done as f64 / wall;
    let jpi = energy_so_far / done as f64;
    let (rs, js, buckets) = match series {
        Some(s) => spreads(&v, s),
        None => spreads(&v, &Records(&v)),
    };
    if buckets == 0 {
        notes.push(
            "too few step records to split into time buckets: the interval is the point".into(),
        );
    }
    let items_per_s = Range::around(rate, rs.unwrap_or(0.0));
    let j_per_item = Range::around(jpi, js.unwrap_or(0.0));
    let (base_t, base_e, remaining) = if v.is_complete() {
        (0.0, 0.0, total)
    } else {
        if total < done {
            notes.push(format!(
                "the run already processed {done} items, more than {total}"
            ));
        }
        (wall, energy_so_far, total.saturating_sub(done))
    };
    let rem = remaining as f64;
    let time_at = |r: f64| {
        if rem == 0.0 {
            base_t
        } else if r > 0.0 {
            base_t + rem / r
        } else {
            f64::INFINITY
        }
    };
    let runtime_s = Range {
        point: time_at(items_per_s.point),
        low: time_at(items_per_s.high),
        high: time_at(items_per_s.low),
    };
    let energy_j = j_per_item.map(|j| base_e + rem * j);
    let g_per_j = if energy_so_far > 0.0 && v.co2e.0 > 0.0 {
        v.co2e.0 / energy_so_far
    } else {
        run.start.carbon.g_per_kwh / 3.6e6
    };
    let co2e_g = energy_j.map(|e| e * g_per_j);
    let origin = if v.is_complete() {
        Some(jiff::Timestamp::now())
    } else {
        // Typed when read: the reader rejected a `started_at` that is not an RFC 3339 time.
        Some(run.start.started_at)
    };
    if v.steps_after_cut > 0 {
        notes.push(format!(
            "the run has no run_end: its figures stop at {wall:.3} s, the end of its last power \
             record; {} step record(s) that ended later are left out",
            v.steps_after_cut
        ));
    }
    if v.is_complete() {
        notes.push(format!(
            "the run is complete ({done} items); this forecasts a full new cycle of {total} items \
             at its rates, finishing at now + runtime"
        ));
    }
    Ok(Forecast {
        path: run.path.display().to_string(),
        job: v.job.to_owned(),
        run_id: v.run_id.to_owned(),
        complete: v.is_complete(),
        energy_kind: v.kind,
        energy_method: v.kind_and_method(),
        items_done: done,
        total_items: total,
        remaining_items: remaining,
        elapsed_s: wall,
        energy_so_far_j: energy_so_far,
        items_per_s,
        j_per_item,
        runtime_s,
        energy_j,
        co2e_g,
        finish_at: at(origin, runtime_s.point),
        finish_low_at: at(origin, runtime_s.low),
        finish_high_at: at(origin, runtime_s.high),
        buckets,
        notes,
    })
}

/// `point  (low .. high)`, the ends in the point's unit (`f(value, point)`).
pub(crate) fn fmt_range(r: Range, f: fn(f64, f64) -> String) -> String {
    let g = |x: f64| {
        if x.is_finite() {
            f(x, r.point)
        } else {
            "unbounded".to_owned()
        }
    };
    if r.low == r.point && r.high == r.point {
        g(r.point)
    } else {
        format!("{}  ({} .. {})", g(r.point), g(r.low), g(r.high))
    }
}

fn render_text(f: &Forecast) -> String {
    let mut out = String::new();
    let state = if f.complete {
        "complete".to_owned()
    } else {
        format!(
            "in progress or crashed: {} of {} items done ({})",
            f.items_done,
            f.total_items,
            percent(f.items_done as f64 / f.total_items as f64, 1)
        )
    };
    out.push_str(&format!(
        "Forecast for {} items  (job {}, run {}, {state}; energy and CO2e {})\n",
        f.total_items,
        escape_control(&f.job),
        escape_control(&f.run_id),
        escape_control(&f.energy_method)
    ));
    let mut kv: Vec<(&str, String)> = vec![
        (
            "so far",
            format!(
                "{} items in {}, {} {}",
                f.items_done,
                duration(f.elapsed_s),
                energy(f.energy_so_far_j),
                escape_control(&f.energy_method)
            ),
        ),
        (
            "rate",
            fmt_range(f.items_per_s, |x, _| format!("{} items/s", sig3(x))),
        ),
        ("energy/item", fmt_range(f.j_per_item, energy_fine_as)),
        ("runtime", fmt_range(f.runtime_s, duration_as)),
        ("energy", fmt_range(f.energy_j, energy_as)),
        ("CO2e", fmt_range(f.co2e_g, co2e_as)),
    ];
    if let Some(fin) = &f.finish_at {
        let label = if f.complete {
            "if started now"
        } else {
            "finish at"
        };
        let mut v = fin.clone();
        if let (Some(l), Some(h)) = (&f.finish_low_at, &f.finish_high_at)
            && (l != fin || h != fin)
        {
            v.push_str(&format!("  ({l} .. {h})"));
        } else if f.finish_high_at.is_none() && f.runtime_s.high.is_infinite() {
            v.push_str("  (latest: unbounded)");
        }
        kv.push((label, v));
    }
    let w = kv.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in &kv {
        out.push_str(&format!("  {k:<w$}  {v}\n"));
    }
    // Notes quote the run file (its start time).
    for n in &f.notes {
        out.push_str(&format!("  note: {}\n", escape_control(n)));
    }
    out.push_str(&format!(
        "  interval: ~95 % from the spread of per-bucket rates over {} time buckets (see --help)\n",
        f.buckets
    ));
    out
}

/// Runs the command.
pub fn run(args: &Args) -> ExitCode {
    let run = match load_run(&args.path) {
        Ok(r) => r,
        Err(e) => {
            out::message("forecast", e);
            return ExitCode::from(2);
        }
    };
    // On stderr, so that `--format json` stays one JSON object on stdout.
    out::reader_warnings("forecast", [&run]);
    let f = match forecast(&run, args.total_items) {
        Ok(f) => f,
        Err(e) => {
            out::message("forecast", e);
            return ExitCode::from(2);
        }
    };
    match args.format {
        Format::Text => out::print_text("forecast", &render_text(&f), ExitCode::SUCCESS),
        Format::Json => match serde_json::to_string_pretty(&f) {
            Ok(s) => out::print_json("forecast", &(s + "\n"), ExitCode::SUCCESS),
            Err(e) => {
                out::message("forecast", format_args!("cannot encode JSON: {e}"));
                ExitCode::from(1)
            }
        },
    }
}
