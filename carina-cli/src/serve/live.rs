//! The live section of `carina serve`'s page: one block per running run (items of total,
//! energy and CO2e so far, current power, the governor's state, the forecast to completion),
//! and whether the run's writer is still alive.

use super::watch::Watcher;
use crate::forecast::{fmt_range, forecast};
use crate::report::kind_badge;
use crate::view::RunView;
use carina_runtime::format::{co2e, co2e_as, duration_as, energy, energy_as, percent, power};
use carina_runtime::reader::RunFile;
use maud::{Markup, html};

/// The live section: one block per running run (no `run_end` yet).
pub(super) fn banner(w: &Watcher, runs: &[RunFile], total_items: Option<u64>) -> Markup {
    let running: Vec<&RunFile> = runs.iter().filter(|r| r.end.is_none()).collect();
    html! {
        section #live {
            h2 { "Live" }
            p.meta {
                "Read from the run files once a second; this page updates when they change ("
                span #live-status { "connecting" } "). "
                (running.len()) " run(s) without run_end, " (runs.len() - running.len()) " finished."
            }
            @for r in &running {
                (live_run(w, r, runs, total_items))
            }
        }
    }
}

/// The governor's state as the run's last `control` record left it: mode, policy, workers
/// allowed of nominal, since when, and why (the reason names the peak window when a schedule
/// caused it). The next peak window itself is not in the run file.
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

fn live_run(w: &Watcher, r: &RunFile, runs: &[RunFile], total_items: Option<u64>) -> Markup {
    let v = RunView::new(r);
    let total = total_items.or_else(|| previous_total(r, runs));
    let items = match total {
        Some(t) => format!(
            "{} of {} ({})",
            v.items,
            t,
            percent(v.items as f64 / t as f64, 1)
        ),
        None => format!("{} (total unknown: give --total-items)", v.items),
    };
    let band = v.band.map(|(l, h)| {
        format!(
            " ({} .. {})",
            energy_as(l.0, v.energy.0),
            energy_as(h.0, v.energy.0)
        )
    });
    let now_w = w.fold(&r.path).and_then(|f| f.current_power());
    let fc = total.map(|t| forecast(r, t));
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
                    @match &fc {
                        Some(Ok(f)) => {
                            tr { td.l { "forecast: runtime" } td.l { (fmt_range(f.runtime_s, duration_as)) } }
                            tr { td.l { "forecast: finish" } td.l { (f.finish_at.as_deref().unwrap_or("–")) } }
                            tr { td.l { "forecast: energy" } td.l { (fmt_range(f.energy_j, energy_as)) } }
                            tr { td.l { "forecast: CO2e" } td.l { (fmt_range(f.co2e_g, co2e_as)) } }
                        }
                        Some(Err(e)) => { tr { td.l { "forecast" } td.l { (e) } } }
                        None => { tr { td.l { "forecast" } td.l { "needs the cycle's total items (--total-items)" } } }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
