//! The live section of `carina serve`'s page: one block per running run (items of total,
//! energy and CO2e so far, current power, the governor's state, the forecast to completion),
//! and whether the run's writer is still alive.

use super::watch::Watcher;
use crate::forecast::{Forecast, fmt_range, forecast_with};
use crate::report::kind_badge;
use crate::view::RunView;
use carina_runtime::format::{co2e, co2e_as, duration_as, energy, energy_as, percent, power};
use carina_runtime::reader::RunFile;
use maud::{Markup, html};

/// What the command line adds to the live section.
#[derive(Debug, Default)]
pub(super) struct Options {
    /// `--total-items`: the items of a full cycle.
    pub total_items: Option<u64>,
    /// `--schedule`: the peak schedule the next peak window is computed from.
    pub schedule: Option<carina_control::schedule::Schedule>,
}

/// The live section: one block per running run (no `run_end` yet).
pub(super) fn banner(w: &Watcher, runs: &[RunFile], opts: &Options) -> Markup {
    let running: Vec<&RunFile> = runs.iter().filter(|r| r.end.is_none()).collect();
    html! {
        section #live {
            h2 { "Live" }
            p.meta {
                "Read from the run files once a second; this page updates when they change ("
                span #live-status { "connecting" } "). "
                (running.len()) " run(s) without run_end, " (runs.len() - running.len()) " finished."
            }
            (fleets(w, runs))
            @for r in &running {
                (live_run(w, r, runs, opts))
            }
        }
    }
}

/// Per cycle of one job with runs on several hosts, at least one of them running: one row
/// per host and the total (items, energy and CO2e summed as `carina summary`'s fleet view does,
/// the cycle rule its own), with the current power of the host's running runs.
fn fleets(w: &Watcher, runs: &[RunFile]) -> Markup {
    use crate::summary::fleet::{Figures, cycles};
    let views: Vec<RunView> = runs.iter().map(RunView::new).collect();
    let cycles = cycles(&views);
    let live: Vec<_> = cycles
        .iter()
        .filter(|c| c.hosts.len() > 1 && c.total.incomplete > 0)
        .collect();
    // The latest window's power of each running run, summed per host: runs that finished draw
    // nothing now.
    let power_of = |host: Option<&str>, c: &crate::summary::fleet::Cycle| -> Option<f64> {
        let ps: Vec<f64> = c
            .runs
            .iter()
            .filter(|v| !v.is_complete() && host.is_none_or(|h| v.host == h))
            .filter_map(|v| w.fold(&v.file.path)?.current_power().map(|p| p.0))
            .collect();
        (!ps.is_empty()).then(|| ps.iter().sum())
    };
    let row = |f: &Figures, p: Option<f64>, total: bool| {
        html! {
            tr.total[total] {
                td.l { @if total { b { (f.host) } } @else { (f.host) } }
                td { (f.runs) }
                td { (f.incomplete) }
                td.items { (f.items) }
                td.energy { (energy(f.energy.0 + 0.0)) }
                td.co2e { (co2e(f.co2e.0 + 0.0)) }
                td.power { @match p { Some(p) => (power(p)), None => "–" } }
            }
        }
    };
    html! {
        @for c in &live {
            div.fleet-live {
                h3 { "Job " (c.job) ": " (c.hosts.len()) " hosts, cycle started " (c.started_at) }
                table.live.hosts {
                    thead { tr {
                        th.l { "host" } th { "runs" } th { "running" } th { "items" }
                        th { "energy so far" } th { "CO2e so far" } th { "power now" }
                    } }
                    tbody {
                        @for h in &c.hosts {
                            @let name = if h.host == "(unknown)" { "" } else { h.host.as_str() };
                            (row(h, power_of(Some(name), c), false))
                        }
                        (row(&c.total, power_of(None, c), true))
                    }
                }
                p.note {
                    "total: items, energy and CO2e summed over the hosts, power now summed over \
                    the running runs' latest power windows; a cycle is the runs of one job whose \
                    spans overlap or that share a run id (as "
                    code { "carina summary" } "'s fleet view). A running run counts up to its \
                    last power record."
                }
            }
        }
    }
}

/// Rows of the live step tree drawn at most.
const MAX_TREE_ROWS: usize = 200;

/// The step tree so far, folded by name path from every step record read (the run's step
/// table is the report's, below, from the same fold).
fn step_tree(f: &super::watch::Fold) -> Markup {
    let (rows, left_out) = f.tree(MAX_TREE_ROWS);
    if rows.is_empty() {
        return html! {};
    }
    html! {
        details.live-tree open {
            summary { "Step tree so far (" (rows.len()) " name path(s))" }
            table.live.tree {
                thead { tr {
                    th.l { "step path" } th { "count" } th { "wall" } th { "inclusive energy" } th { "self energy" }
                } }
                tbody {
                    @for t in &rows {
                        tr {
                            td.l style={ "padding-left:" (9 + t.depth * 18) "px" } {
                                @if t.depth > 0 { "└ " } (t.name)
                            }
                            td { (t.acc.count) }
                            td { (duration_as(t.acc.wall, t.acc.wall)) }
                            td { (energy(t.acc.energy + 0.0)) }
                            td { (energy(t.acc.self_energy + 0.0)) }
                        }
                    }
                }
            }
            p.note {
                "Every step record read so far, also those after the last power record (the \
                figures above stop there). Steps whose parent has not ended are under “"
                (super::watch::OPEN_PARENT) "”: a parent's name arrives with its record, when it ends."
                @if left_out > 0 { " " (left_out) " more path(s) not shown." }
                @if f.tree_skipped > 0 {
                    " " (f.tree_skipped) " step record(s) left out of the tree: an id repeated,                     a step its own parent, or nested deeper than 32 (a malformed file); they                     count in the step table."
                }
            }
        }
    }
}

/// The governor's state as the run's last `control` record left it: mode, policy, workers
/// allowed of nominal, since when, and why (the reason names the peak window when a schedule
/// caused it).
fn governor_now(r: &RunFile) -> String {
    match r.controls.last() {
        Some(c) => format!(
            "{} ({}): {} of {} workers since {}{}",
            c.mode,
            c.policy,
            c.allowed,
            c.nominal,
            c.at,
            c.reason
                .as_deref()
                .map(|why| format!("; {why}"))
                .unwrap_or_default()
        ),
        None => "no governor in this run (no control record)".to_owned(),
    }
}

/// The next peak window relative to `now`: the window, and whether it is ahead, current or past.
/// From `--schedule` when given (computed now, so never stale), else as the run's last
/// `control` record gave it (`control.next_peak`, from the governor's calendar when it wrote
/// the record).
fn next_peak(
    r: &RunFile,
    now: jiff::Timestamp,
    schedule: Option<&carina_control::schedule::Schedule>,
) -> String {
    if let Some(s) = schedule {
        return match carina_control::governor::next_peak(s, now) {
            Some((start, end)) => format!(
                "{} (from --schedule)",
                peak_relative(now, start, end)
            ),
            None => "none found in --schedule: no peak window starts, or the current one does not end, within its look-ahead".to_owned(),
        };
    }
    let Some(c) = r.controls.last() else {
        return "unknown: no governor in this run".to_owned();
    };
    let Some(w) = c.next_peak else {
        return "unknown: the last control record names none (no peak window ahead in the \
                governor's calendar, or a file of an earlier version)"
            .to_owned();
    };
    if now < w.end {
        peak_relative(now, w.start, w.end)
    } else {
        format!(
            "{} .. {} has passed, and the governor wrote no control record since (it writes one \
             when its mode or concurrency changes): the next one is not known (give --schedule)",
            w.start, w.end
        )
    }
}

/// A peak window `start .. end` that has not ended at `now`, in words.
fn peak_relative(now: jiff::Timestamp, start: jiff::Timestamp, end: jiff::Timestamp) -> String {
    let secs = |a: jiff::Timestamp, b: jiff::Timestamp| {
        let s = b.duration_since(a).as_secs_f64();
        duration_as(s, s)
    };
    if now < start {
        format!(
            "{start} .. {end}: starts in {}, lasts {}",
            secs(now, start),
            secs(start, end)
        )
    } else {
        // Inside a window the calendar gives the window's start as "now" (the governor's
        // `next_peak`), so only the end is meaningful.
        format!("now, until {end}: ends in {}", secs(now, end))
    }
}

/// Whether the process that writes `r` is alive: `None` when the run was written on another
/// host (its pid means nothing here). A zombie, or a process that started after the run (the pid
/// was reused), is not the writer.
fn writer_alive(r: &RunFile) -> Option<bool> {
    if r.start.host != carina_runtime::naming::hostname() || r.start.pid == 0 {
        return None;
    }
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", r.start.pid)) else {
        return Some(false);
    };
    let boot = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| boot_time_s(&s));
    let ticks = rustix::param::clock_ticks_per_second().max(1) as f64;
    Some(stat_is_writer(
        &stat,
        boot,
        ticks,
        r.start.started_at.as_second() as f64,
    ))
}

/// Whether the process of `/proc/<pid>/stat` text `stat` can be the writer of a run that started
/// at `run_start_s` (Unix seconds): not a zombie (killed, not yet reaped: a container's init may
/// never reap it), and not started after the run did (then the pid was reused). `boot_s`: the
/// host's boot time (`/proc/stat` `btime`); unknown, the start time is not checked.
fn stat_is_writer(stat: &str, boot_s: Option<f64>, ticks_per_s: f64, run_start_s: f64) -> bool {
    // The command name may hold spaces and parentheses: fields count from the last ')'.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return true;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if matches!(fields.first(), Some(&"Z") | Some(&"X") | Some(&"x")) {
        return false;
    }
    // Field 22 of the line (`starttime`, clock ticks after boot) is the 20th after the name.
    let started = fields.get(19).and_then(|t| t.parse::<f64>().ok());
    match (boot_s, started) {
        // Two seconds of slack: btime is whole seconds, and the run starts after its process.
        (Some(b), Some(t)) => b + t / ticks_per_s <= run_start_s + 2.0,
        _ => true,
    }
}

/// `btime` of `/proc/stat`: the boot time, Unix seconds.
fn boot_time_s(proc_stat: &str) -> Option<f64> {
    proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// Items of the job's last complete run, the default total of a running one.
fn previous_total(r: &RunFile, runs: &[RunFile]) -> Option<u64> {
    runs.iter()
        .filter(|o| o.start.job == r.start.job && o.start.started_at < r.start.started_at)
        .filter_map(|o| o.end.as_ref().map(|e| e.items))
        .rfind(|&n| n > 0)
}

/// How each forecast row was computed, in words (the method of `carina forecast`).
#[derive(Debug, Clone, Default)]
struct Methods {
    runtime: String,
    finish: String,
    energy: String,
    co2e: String,
}

fn methods(f: &Forecast) -> Methods {
    let interval = if f.buckets > 0 {
        format!(
            "~95 % interval from the spread of the rate over {} equal time buckets of the run so far",
            f.buckets
        )
    } else {
        "no interval: too few step records of the progress step for 4 time buckets (12 needed)"
            .to_owned()
    };
    let so_far = format!(
        "{} items in {}",
        f.items_done,
        duration_as(f.elapsed_s, f.elapsed_s)
    );
    Methods {
        runtime: format!(
            "items-rate extrapolation: elapsed + remaining {} items at the average items/s so far ({so_far}); {interval}",
            f.remaining_items
        ),
        finish: "run start + the forecast runtime (its interval's ends likewise)".to_owned(),
        energy: format!(
            "energy so far + remaining {} items at the average J per item so far; {}",
            f.remaining_items,
            interval.replace("the rate", "J per item")
        ),
        co2e:
            "the forecast energy at the run's CO2e per joule so far (its interval's ends likewise)"
                .to_owned(),
    }
}

/// The finish time with its interval: `point (early .. late)`; `late` unbounded when the
/// low end of the rate is 0.
fn finish(f: &Forecast) -> String {
    let Some(point) = &f.finish_at else {
        return "–".to_owned();
    };
    let late = f.finish_high_at.as_deref().unwrap_or("unbounded");
    match f.finish_low_at.as_deref() {
        Some(early) if early != point || late != point => format!("{point}  ({early} .. {late})"),
        _ => point.clone(),
    }
}

fn live_run(w: &Watcher, r: &RunFile, runs: &[RunFile], opts: &Options) -> Markup {
    let v = RunView::new(r);
    let total = opts.total_items.or_else(|| previous_total(r, runs));
    // Past its total, the total is not this cycle's (a larger cycle than the last one, or a
    // wrong --total-items): no percentage above 100 %, no forecast of a finished run.
    let past = total.filter(|&t| v.items > t);
    let total = total.filter(|&t| v.items <= t);
    let items = match (total, past) {
        (_, Some(t)) => format!(
            "{} (more than the total of {t} ({}): this cycle is larger; give --total-items)",
            v.items,
            if opts.total_items.is_some() {
                "--total-items"
            } else {
                "the job's last complete run"
            }
        ),
        (Some(t), None) => format!(
            "{} of {} ({})",
            v.items,
            t,
            percent(v.items as f64 / t as f64, 1)
        ),
        (None, None) => format!("{} (total unknown: give --total-items)", v.items),
    };
    let band = v.band.map(|(l, h)| {
        format!(
            " ({} .. {})",
            energy_as(l.0, v.energy.0),
            energy_as(h.0, v.energy.0)
        )
    });
    let now_w = w.fold(&r.path).and_then(|f| f.current_power());
    let series = w
        .fold(&r.path)
        .map(|f| f.series() as &dyn crate::forecast::StepSeries);
    let fc = total.map(|t| forecast_with(r, t, series));
    let how = fc.as_ref().and_then(|f| f.as_ref().ok()).map(methods);
    let quiet = w.quiet_for(&r.path).map(|d| {
        format!(
            "last record read {} ago",
            duration_as(d.as_secs_f64(), 60.0)
        )
    });
    let (badge, state) = match writer_alive(r) {
        Some(false) => (
            "stopped",
            format!(
                "incomplete: no run_end, and its writer (pid {} on this host) is gone: killed or crashed",
                r.start.pid
            ),
        ),
        Some(true) => ("running", format!("writer pid {} alive", r.start.pid)),
        None => (
            "running?",
            "written on another host: liveness unknown".to_owned(),
        ),
    };
    html! {
        div.run {
            h3 { "Job " (v.job) ", run " (v.run_id) " on " (v.host) " " span.badge.b-incomplete.state { (badge) } }
            p.note { (state) @if let Some(q) = &quiet { "; " (q) } }
            table.live {
                tbody {
                    tr { td.l { "items done" } td.l.items { (items) } }
                    tr { td.l { "energy so far" } td.l.energy {
                        (energy(v.energy.0 + 0.0)) (band.unwrap_or_default()) " "
                        (kind_badge(v.kind, &v.kind_tag(), &v.kind_and_method()))
                    } }
                    tr { td.l { "CO2e so far" } td.l { (co2e(v.co2e.0 + 0.0)) } }
                    tr { td.l { "elapsed" } td.l { (duration_as(v.wall.0, v.wall.0)) } }
                    tr { td.l { "current power" } td.l.power {
                        @match now_w {
                            Some((p, _)) => (power(p)),
                            None => "– (no power record yet)",
                        }
                    } }
                    tr { td.l { "governor" } td.l.governor { (governor_now(r)) } }
                    tr { td.l { "next peak window" } td.l.next-peak { (next_peak(r, jiff::Timestamp::now(), opts.schedule.as_ref())) } }
                    @match &fc {
                        Some(Ok(f)) => {
                            @let how = how.clone().unwrap_or_default();
                            tr { td.l { "forecast: runtime" } td.l.fc-runtime { (fmt_range(f.runtime_s, duration_as)) } td.l.method { (how.runtime) } }
                            tr { td.l { "forecast: finish" } td.l.fc-finish { (finish(f)) } td.l.method { (how.finish) } }
                            tr { td.l { "forecast: energy" } td.l.fc-energy { (fmt_range(f.energy_j, energy_as)) } td.l.method { (how.energy) } }
                            tr { td.l { "forecast: CO2e" } td.l.fc-co2e { (fmt_range(f.co2e_g, co2e_as)) } td.l.method { (how.co2e) } }
                        }
                        Some(Err(e)) => { tr { td.l { "forecast" } td.l { (e) } } }
                        None => { tr { td.l { "forecast" } td.l { "needs the cycle's total items (--total-items)" @if past.is_some() { ", more than the items done so far" } } } }
                    }
                }
            }
            @if let Some(f) = w.fold(&r.path) {
                (step_tree(f))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    const START: &str = r#"{"type":"run_start","schema":1,"run_id":"r1","job":"j","host":"elsewhere","pid":1,"started_at":"2026-01-01T00:00:00Z","energy_sources":[],"carbon":{"source":"test","zone":"WORLD","g_per_kwh":400.0},"sample_interval_s":1.0,"carina_version":"0"}"#;

    /// A running run of 60 `work` steps a second apart whose items alternate 1 and 3 (the rate
    /// varies, so its interval has a width), with a power window per second.
    fn running_run(dir: &Path) -> PathBuf {
        let mut text = format!("{START}\n");
        for i in 1..=60u64 {
            // Steps end mid-second, away from the 3 s buckets' edges, where the fine buckets
            // (0.128 s here) cannot move a record to the next bucket.
            let (a, b) = ((i - 1) as f64, i as f64);
            let (sa, sb) = ((a - 0.5).max(0.0), b - 0.5);
            let items = if i % 2 == 0 { 3 } else { 1 };
            let e = 10.0 + (i % 3) as f64;
            text.push_str(&format!(
                r#"{{"type":"step","name":"work","id":{i},"parent":null,"thread":0,"start_s":{sa},"end_s":{sb},"items":{items},"status":"ok","energy_j":{e},"self_energy_j":{e},"co2e_g":0.001}}"#
            ));
            text.push('\n');
            text.push_str(&format!(
                r#"{{"type":"power","start_s":{a},"end_s":{b},"energy_j":{},"co2e_g":0.001}}"#,
                e + 1.0
            ));
            text.push('\n');
        }
        let p = dir.join("run.jsonl");
        std::fs::write(&p, text).unwrap();
        p
    }

    fn watched(dir: &Path) -> (Watcher, Vec<RunFile>) {
        let mut w = Watcher::new(vec![dir.to_path_buf()]);
        w.poll();
        let runs = w.runs().0;
        (w, runs)
    }

    #[test]
    fn the_live_forecast_has_the_interval_of_carina_forecast() {
        let dir = tempfile::tempdir().unwrap();
        let p = running_run(dir.path());
        let (w, runs) = watched(dir.path());
        let fold = w.fold(&p).unwrap();
        let live = forecast_with(&runs[0], 1000, Some(fold.series())).unwrap();
        // `carina forecast` on the whole file, its step records kept.
        let file = carina_runtime::reader::read_run_file(&p).unwrap();
        let whole = crate::forecast::forecast(&file, 1000).unwrap();
        assert_eq!((live.buckets, whole.buckets), (20, 20));
        assert!(
            whole.runtime_s.high > whole.runtime_s.low * 1.05,
            "{whole:?}"
        );
        for (a, b) in [
            (live.runtime_s, whole.runtime_s),
            (live.energy_j, whole.energy_j),
            (live.co2e_g, whole.co2e_g),
        ] {
            for (x, y) in [(a.low, b.low), (a.point, b.point), (a.high, b.high)] {
                assert!((x - y).abs() <= 1e-9 * y.abs(), "{a:?} vs {b:?}");
            }
        }
        assert_eq!(live.finish_high_at, whole.finish_high_at);
        // The page shows the interval and names the method of each row.
        let page = banner(
            &w,
            &runs,
            &Options {
                total_items: Some(1000),
                schedule: None,
            },
        )
        .into_string();
        let low = duration_as(whole.runtime_s.low, whole.runtime_s.point);
        assert!(page.contains(&low), "{low} not in {page}");
        assert!(
            page.contains(whole.finish_high_at.as_deref().unwrap()),
            "{page}"
        );
        assert!(
            page.contains("items-rate extrapolation: elapsed + remaining 880 items at the average items/s so far (120 items in 60.0 s)"),
            "{page}"
        );
        assert!(
            page.contains(
                "~95 % interval from the spread of J per item over 20 equal time buckets"
            ),
            "{page}"
        );
    }

    #[test]
    fn a_run_past_its_total_says_so_and_forecasts_nothing() {
        // 120 items done; a total of 100 (from --total-items here; the job's last cycle alike).
        let dir = tempfile::tempdir().unwrap();
        running_run(dir.path());
        let (w, runs) = watched(dir.path());
        let page = banner(
            &w,
            &runs,
            &Options {
                total_items: Some(100),
                schedule: None,
            },
        )
        .into_string();
        assert!(
            page.contains("120 (more than the total of 100 (--total-items): this cycle is larger; give --total-items)"),
            "{page}"
        );
        assert!(!page.contains("120.0 %"), "{page}");
        assert!(!page.contains("forecast: runtime"), "{page}");
        assert!(
            page.contains(
                "needs the cycle&#39;s total items (--total-items), more than the items done so far"
            ) || page.contains(
                "needs the cycle's total items (--total-items), more than the items done so far"
            ),
            "{page}"
        );
    }

    fn with_control(extra: &str) -> RunFile {
        let text = format!(
            "{START}\n{{\"type\":\"control\",\"t_s\":0.0,\"at\":\"2026-03-16T07:00:00Z\",\"policy\":\"throttle\",\"mode\":\"off-peak\",\"allowed\":7,\"nominal\":7{extra}}}\n"
        );
        carina_runtime::reader::parse_run_file(&text, Path::new("r.jsonl")).unwrap()
    }

    #[test]
    fn a_schedule_given_to_serve_gives_the_next_peak_window_whatever_the_run_file_says() {
        let t = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
        let weekdays = carina_control::schedule::Schedule::default_weekday_peak();
        // A run whose last record names a window that has passed, and one with no governor.
        let stale = with_control(
            r#","next_peak":{"start":"2026-03-13T08:00:00Z","end":"2026-03-13T20:00:00Z"}"#,
        );
        let none = with_control("");
        for r in [&stale, &none] {
            // Saturday: the next window is Monday's.
            assert_eq!(
                next_peak(r, t("2026-03-14T12:00:00Z"), Some(&weekdays)),
                "2026-03-16T08:00:00Z .. 2026-03-16T20:00:00Z: starts in 44.0 h, lasts 12.0 h (from --schedule)"
            );
            assert_eq!(
                next_peak(r, t("2026-03-16T19:00:00Z"), Some(&weekdays)),
                "now, until 2026-03-16T20:00:00Z: ends in 60.0 min (from --schedule)"
            );
        }
        // Without it, the stale record says it has passed and points at --schedule.
        assert!(
            next_peak(&stale, t("2026-03-14T12:00:00Z"), None).contains("give --schedule"),
            "{}",
            next_peak(&stale, t("2026-03-14T12:00:00Z"), None)
        );
        let never = carina_control::schedule::Schedule::builder("UTC")
            .build()
            .unwrap();
        assert_eq!(
            next_peak(&none, t("2026-03-14T12:00:00Z"), Some(&never)),
            "none found in --schedule: no peak window starts, or the current one does not end, within its look-ahead"
        );
    }

    #[test]
    fn the_next_peak_window_is_read_from_the_last_control_record() {
        let r = with_control(
            r#","next_peak":{"start":"2026-03-16T08:00:00Z","end":"2026-03-16T20:00:00Z"}"#,
        );
        let t = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
        assert_eq!(
            next_peak(&r, t("2026-03-16T07:30:00Z"), None),
            "2026-03-16T08:00:00Z .. 2026-03-16T20:00:00Z: starts in 30.0 min, lasts 12.0 h"
        );
        assert_eq!(
            next_peak(&r, t("2026-03-16T19:00:00Z"), None),
            "now, until 2026-03-16T20:00:00Z: ends in 60.0 min"
        );
        assert!(next_peak(&r, t("2026-03-17T00:00:00Z"), None).contains("has passed"));
        // A file of an earlier version: no field, said so.
        let old = with_control("");
        assert!(
            next_peak(&old, t("2026-03-16T07:30:00Z"), None)
                .starts_with("unknown: the last control record names none")
        );
        // And the page shows it.
        let dir = tempfile::tempdir().unwrap();
        let (w, _) = watched(dir.path());
        let page = banner(&w, std::slice::from_ref(&r), &Options::default()).into_string();
        assert!(page.contains("next peak window"), "{page}");
        assert!(
            page.contains("2026-03-16T08:00:00Z .. 2026-03-16T20:00:00Z"),
            "{page}"
        );
    }

    /// A running run of job `j` on `host`: `items` items in one step and 10 s of power at
    /// `watts`, with `g` g CO2e.
    fn host_run(dir: &Path, host: &str, items: u64, watts: f64, g: f64) {
        let start = START.replace("\"host\":\"elsewhere\"", &format!("\"host\":\"{host}\""));
        let text = format!(
            "{start}\n{}\n{}\n",
            format_args!(
                r#"{{"type":"step","name":"work","id":1,"parent":null,"thread":0,"start_s":0.0,"end_s":9.0,"items":{items},"status":"ok","energy_j":5.0,"self_energy_j":5.0,"co2e_g":0.0}}"#
            ),
            format_args!(
                r#"{{"type":"power","start_s":0.0,"end_s":10.0,"energy_j":{},"co2e_g":{g}}}"#,
                watts * 10.0
            )
        );
        std::fs::write(dir.join(format!("{host}.jsonl")), text).unwrap();
    }

    #[test]
    fn hosts_running_one_job_get_a_row_each_and_a_total() {
        let dir = tempfile::tempdir().unwrap();
        host_run(dir.path(), "node-a", 30, 100.0, 2.0);
        host_run(dir.path(), "node-b", 12, 50.0, 1.0);
        let (w, runs) = watched(dir.path());
        assert_eq!(runs.len(), 2);
        let page = banner(&w, &runs, &Options::default()).into_string();
        assert!(page.contains("Job j: 2 hosts"), "{page}");
        let row = |host: &str, rest: &str| {
            format!("{host}</td><td>1</td><td>1</td><td class=\"items\">{rest}")
        };
        // 1000 J and 500 J; 100 W and 50 W now.
        for (host, items, e, p) in [
            ("node-a", "30", "0.278 Wh", "100 W"),
            ("node-b", "12", "500 J", "50.0 W"),
        ] {
            let want = row(host, items);
            assert!(page.contains(&want), "{want} not in {page}");
            assert!(page.contains(e) && page.contains(p), "{page}");
        }
        assert!(
            page.contains("<b>total</b></td><td>2</td><td>2</td><td class=\"items\">42</td>"),
            "{page}"
        );
        assert!(
            page.contains("0.417 Wh") && page.contains("150 W"),
            "{page}"
        );
        // One host alone: no fleet table.
        std::fs::remove_file(dir.path().join("node-b.jsonl")).unwrap();
        let (w, runs) = watched(dir.path());
        assert!(
            !banner(&w, &runs, &Options::default())
                .into_string()
                .contains("hosts, cycle started")
        );
    }

    #[test]
    fn a_running_run_has_its_step_table_and_its_step_tree_so_far() {
        let dir = tempfile::tempdir().unwrap();
        let p = running_run(dir.path());
        let (_w, runs) = watched(dir.path());
        // The report's step table, from the fold: the same columns as a finished run.
        let page = crate::report::render_page(&runs, &[], None);
        let table = &page[page.find("<table class=\"sortable steps\">").unwrap()..];
        assert!(
            table.contains(
                "<td class=\"l\">work</td><td data-v=\"60\">60</td><td data-v=\"59.5\">59.5 s</td>"
            ),
            "{table}"
        );
        // A nested run: `cycle` (id 100) still open, two `batch`es each with a `parse`.
        let mut text = String::new();
        let rec = |id: u64, parent: Option<u64>, name: &str, a: f64, b: f64, e: f64, own: f64| {
            format!(
                r#"{{"type":"step","name":"{name}","id":{id},"parent":{},"thread":0,"start_s":{a},"end_s":{b},"items":0,"status":"ok","energy_j":{e},"self_energy_j":{own},"co2e_g":0.0}}"#,
                parent.map_or("null".to_owned(), |p| p.to_string())
            ) + "\n"
        };
        for k in 0..2u64 {
            let t = 60.0 + k as f64;
            text += &rec(
                201 + 2 * k,
                Some(200 + 2 * k),
                "parse",
                t,
                t + 0.5,
                2.0,
                2.0,
            );
            text += &rec(200 + 2 * k, Some(100), "batch", t, t + 1.0, 5.0, 3.0);
        }
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
        let (w, runs) = watched(dir.path());
        let tree = |w: &Watcher| {
            let (rows, _) = w.fold(&p).unwrap().tree(50);
            rows.iter()
                .map(|r| {
                    format!(
                        "{}{} x{} {}/{} J",
                        "  ".repeat(r.depth),
                        r.name,
                        r.acc.count,
                        r.acc.energy,
                        r.acc.self_energy
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            tree(&w),
            [
                "work x60 660/660 J",
                "(inside steps still open) x1 10/0 J",
                "  batch x2 10/6 J",
                "    parse x2 4/4 J",
            ]
        );
        let html = banner(&w, &runs, &Options::default()).into_string();
        assert!(html.contains("Step tree so far (4 name path(s))"), "{html}");
        assert!(html.contains("└ parse</td><td>2</td>"), "{html}");
        // The parent ends: the subtree moves under its name.
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        std::io::Write::write_all(
            &mut f,
            rec(100, None, "cycle", 59.0, 62.0, 12.0, 2.0).as_bytes(),
        )
        .unwrap();
        let (w, _) = watched(dir.path());
        assert_eq!(
            tree(&w),
            [
                "work x60 660/660 J",
                "cycle x1 12/2 J",
                "  batch x2 10/6 J",
                "    parse x2 4/4 J",
            ]
        );
    }

    #[test]
    fn fine_buckets_double_and_keep_their_sums() {
        use crate::forecast::StepSeries as _;
        let mut s = super::super::watch::StepSeries::default();
        let first = s.width();
        // Ends from 0.5 s to 10,000 s: the width doubles many times.
        for i in 0..20_000u64 {
            s.add_for_test("work", 0.5 * (i + 1) as f64, 2, 1.0);
        }
        assert!(s.width() > first * 1000.0);
        // Four buckets of 2,600 s, past the last record: every item is in one.
        let (items, joules) = s.bucketed("work", 4, 2_600.0);
        assert_eq!(items.iter().sum::<f64>(), 40_000.0);
        assert_eq!(joules.iter().sum::<f64>(), 20_000.0);
        // 4 items a second: each bucket's count is off by at most a fine bucket's worth at
        // each edge.
        let exact = [10_400.0, 10_400.0, 10_400.0, 8_800.0];
        for (q, e) in items.iter().zip(exact) {
            assert!((q - e).abs() <= 2.0 * 4.0 * s.width(), "{items:?}");
        }
        // A span that ends before the last records (a crashed run's cut) leaves them out.
        let (cut, _) = s.bucketed("work", 4, 2_000.0);
        assert!(cut.iter().sum::<f64>() < 33_000.0, "{cut:?}");
        assert_eq!(s.item_records("work"), 20_000);
    }

    /// A `/proc/<pid>/stat` line with `state` and `starttime` (ticks), the name with a space and
    /// a parenthesis as real names may have.
    fn stat(state: &str, start_ticks: u64) -> String {
        format!(
            "4242 (my (odd) job) {state} 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 {start_ticks} 1000 10 18446744073709551615"
        )
    }

    #[test]
    fn a_live_process_older_than_the_run_is_its_writer() {
        // Booted at 1000 s, started 50 s after boot (100 ticks/s), run started at 1060 s.
        assert!(stat_is_writer(
            &stat("S", 5_000),
            Some(1000.0),
            100.0,
            1060.0
        ));
        assert!(stat_is_writer(&stat("R", 5_000), None, 100.0, 1060.0));
    }

    #[test]
    fn a_zombie_or_a_reused_pid_is_not() {
        assert!(!stat_is_writer(
            &stat("Z", 5_000),
            Some(1000.0),
            100.0,
            1060.0
        ));
        // Started at 1000 + 90 s, after the run's 1060 s: another process got the pid.
        assert!(!stat_is_writer(
            &stat("S", 9_000),
            Some(1000.0),
            100.0,
            1060.0
        ));
    }

    #[test]
    fn boot_time_is_read_from_proc_stat() {
        let s = "cpu  1 2 3 4\nbtime 1765000000\nprocesses 42\n";
        assert_eq!(boot_time_s(s), Some(1_765_000_000.0));
        assert_eq!(boot_time_s("cpu 1 2\n"), None);
        // On this machine: a real line parses, and this process is older than now.
        let real = std::fs::read_to_string("/proc/stat").unwrap();
        let boot = boot_time_s(&real).expect("btime");
        let me = std::fs::read_to_string("/proc/self/stat").unwrap();
        let ticks = rustix::param::clock_ticks_per_second() as f64;
        let now = jiff::Timestamp::now().as_second() as f64;
        assert!(stat_is_writer(&me, Some(boot), ticks, now));
        assert!(!stat_is_writer(&me, Some(boot), ticks, boot - 10.0));
    }
}
