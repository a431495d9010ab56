//! What a finished run measured ([`RunSummary`], which prints itself for terminals), and what
//! comes from outside a session to be folded into its end ([`Additions`]).

use crate::carbon::CarbonFactor;
use crate::record::{
    CarbonInfo, EnergyKind, EnergySource, Method, OwnCost, Record, RunEnd, RunScope, StepSummary,
};
use carina_core::units::{GramsCo2e, Joules, Seconds};
use std::path::PathBuf;

/// What a finished run measured: the `run_end` record as written ([`end`](Self::end)), with
/// what a caller needs beside it (the run file, the sources, the per-name summaries, warnings).
/// The figures are read through [`end`](Self::end) or the accessors below, so that a field added
/// to `run_end` is in the summary without being repeated here.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RunSummary {
    /// Run id.
    pub run_id: String,
    /// Job name.
    pub job: String,
    /// The JSON-lines run file, if one was written.
    pub run_file: Option<PathBuf>,
    /// The sources considered (`run_start.energy_sources`: used and not used).
    pub energy_sources: Vec<EnergySource>,
    /// Whose energy the run reports (`run_start.scope`).
    pub scope: Option<RunScope>,
    /// Emission factor or series used (as written in `run_start.carbon`).
    pub carbon: CarbonInfo,
    /// Per-name summaries (the session's and those of the additions).
    pub summaries: Vec<StepSummary>,
    /// Problems worth telling the user: `run_end.warnings`, then any met while flushing the
    /// file after it.
    pub warnings: Vec<String>,
    /// The `run_end` record as written; `None` when the run was disabled (`CARINA_DISABLE`)
    /// and recorded nothing.
    pub end: Option<RunEnd>,
    /// Sink failures after `run_end` was written (the final flush), not counted in it.
    pub(crate) late_sink_errors: u64,
    /// Records the sinks could not write, known after the final flush.
    pub(crate) records_lost: u64,
}

impl RunSummary {
    fn figure<T: Default>(&self, f: impl FnOnce(&RunEnd) -> T) -> T {
        self.end.as_ref().map(f).unwrap_or_default()
    }

    /// Whether the run was disabled (`CARINA_DISABLE`) and recorded nothing.
    pub fn is_disabled(&self) -> bool {
        self.end.is_none()
    }
    /// Energy in the run's scope (`run_end.energy_j`).
    pub fn energy(&self) -> Joules {
        self.figure(|e| e.energy_j)
    }
    /// Duration (`run_end.wall_s`).
    pub fn wall(&self) -> Seconds {
        self.figure(|e| e.wall_s)
    }
    /// Part of the energy attributed to no step.
    pub fn unattributed(&self) -> Joules {
        self.figure(|e| e.unattributed_j)
    }
    /// Whole-machine energy seen by the sources over the run.
    pub fn host_energy(&self) -> Joules {
        self.figure(|e| e.host_energy_j)
    }
    /// Emissions of the energy.
    pub fn co2e(&self) -> GramsCo2e {
        self.figure(|e| e.co2e_g)
    }
    /// Items (the largest per-name total, or the value set explicitly).
    pub fn items(&self) -> u64 {
        self.figure(|e| e.items)
    }
    /// Step instances counted.
    pub fn steps(&self) -> u64 {
        self.figure(|e| e.steps)
    }
    /// Step instances lost to full thread buffers.
    pub fn dropped(&self) -> u64 {
        self.figure(|e| e.dropped)
    }
    /// Step instances counted in summaries only, their thread's buffer being full.
    pub fn folded(&self) -> u64 {
        self.figure(|e| e.folded)
    }
    /// Step instances in summaries without their own record.
    pub fn records_not_written(&self) -> u64 {
        self.figure(|e| e.records_not_written)
    }
    /// Records the run's sinks accepted but could not write, counted after the final flush
    /// ([`Sink::records_lost`](crate::sink::Sink::records_lost)): a disk that stayed full, a
    /// destination that kept refusing. Non-zero: the run file is incomplete (it may lack its
    /// summaries and `run_end`, which were written last), and [`warnings`](Self::warnings)
    /// says so. A brief refusal that the sink recovered from loses nothing and counts 0 here
    /// (it still counts in [`sink_errors`](Self::sink_errors)).
    pub fn records_lost(&self) -> u64 {
        self.records_lost
    }
    /// Whether everything the run recorded reached its sinks: no record lost by a sink
    /// ([`records_lost`](Self::records_lost)), no step instance without its own record
    /// ([`records_not_written`](Self::records_not_written)) and none uncounted
    /// ([`dropped`](Self::dropped)). `finish()` returns `Ok` either way, because the
    /// application's work did not fail: a caller that needs the record, e.g. a job whose run
    /// file is its accounting, checks this and fails itself (the `scenario_db` example exits
    /// with status 3). A disabled run lost nothing: `true`.
    pub fn is_complete(&self) -> bool {
        self.records_lost() == 0 && self.records_not_written() == 0 && self.dropped() == 0
    }
    /// Measured or estimated (`run_end.energy_kind`); estimated for a disabled run.
    pub fn energy_kind(&self) -> EnergyKind {
        self.end
            .as_ref()
            .map_or(EnergyKind::Estimated, |e| e.energy_kind)
    }
    /// Failed energy reads.
    pub fn probe_errors(&self) -> u64 {
        self.figure(|e| e.probe_errors)
    }
    /// Records a sink failed to write, and failures of the final flush.
    pub fn sink_errors(&self) -> u64 {
        self.figure(|e| e.sink_errors) + self.late_sink_errors
    }
    /// How the energy was obtained, by source (`run_end.method`).
    pub fn method(&self) -> Option<&Method> {
        self.end.as_ref().and_then(|e| e.method.as_ref())
    }
    /// The effective grid intensity, emissions over energy, g/kWh (energy-weighted with a
    /// time-varying series); `None` when the run used no energy.
    pub fn carbon_g_per_kwh(&self) -> Option<f64> {
        self.end.as_ref().and_then(|e| e.carbon_g_per_kwh)
    }
    /// What Carina itself cost the run (`run_end.own_cost`).
    pub fn own_cost(&self) -> Option<&OwnCost> {
        self.end.as_ref().and_then(|e| e.own_cost.as_ref())
    }
    /// An estimate's low and high bounds of the energy.
    pub fn band(&self) -> Option<(Joules, Joules)> {
        self.end
            .as_ref()
            .and_then(|e| e.energy_low_j.zip(e.energy_high_j))
    }
}

/// The run for a terminal: [`RunSummary::render`] without indent.
impl std::fmt::Display for RunSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render(""))
    }
}

impl RunSummary {
    /// The one rendering of a finished run, each line prefixed with `indent` (`carina run`
    /// indents it under its own line): energy with its kind, method, sources and scope, the
    /// host share, an estimate's band, a lower bound said plainly, why counters were not used,
    /// CO2e at the effective factor, the run's counts, one line per step name and how step
    /// figures were split, Carina's own cost and the run file. Energy is in Wh whatever its
    /// size, so that runs read side by side. Names and paths are escaped: they come from the
    /// program and its environment. Warnings are not included (print [`Self::warnings`] where
    /// they belong, e.g. on stderr).
    pub fn render(&self, indent: &str) -> String {
        use crate::format::{counters_not_used, escape_control, own_cost_line, percent, sig3};
        use std::fmt::Write as _;
        let mut out = String::new();
        // Writing into a String cannot fail.
        let mut line = |label: &str, text: String| {
            let _ = writeln!(out, "{indent}{label:<9} {text}");
        };
        if self.is_disabled() {
            line(
                "energy",
                "not recorded (Carina disabled by CARINA_DISABLE)".into(),
            );
            return out;
        }
        let kind = self.energy_kind();
        let method = self
            .method()
            .cloned()
            .unwrap_or_else(|| Method::derived(&self.energy_sources, self.scope));
        let sources: Vec<_> = self
            .energy_sources
            .iter()
            .filter(|s| s.used)
            .map(|s| escape_control(&s.name).into_owned())
            .collect();
        let scope = self.scope.map_or(String::new(), |s| format!(", {s} scope"));
        let share = if self.host_energy().0 > 0.0 {
            format!(
                "; {} of the whole machine's {} Wh",
                percent(self.energy().0 / self.host_energy().0, 0),
                sig3(self.host_energy().wh())
            )
        } else {
            String::new()
        };
        line(
            "energy",
            format!(
                "{} Wh {} from {}{scope}{share}",
                sig3(self.energy().wh()),
                escape_control(&method.kind_and_label(kind)),
                if sources.is_empty() {
                    "no source".to_owned()
                } else {
                    sources.join(" + ")
                }
            ),
        );
        if let Some((lo, hi)) = self.band() {
            line(
                "band",
                format!(
                    "{} .. {} Wh (the estimate's low and high ends)",
                    sig3(lo.wh()),
                    sig3(hi.wh())
                ),
            );
        }
        if method.lower_bound {
            line(
                "",
                "LOWER BOUND: some intervals were counted low (a counter wrap that could not be \
                 resolved, a reset, a counter that stopped); see the warnings"
                    .into(),
            );
        }
        if kind == EnergyKind::Estimated
            && let Some((name, why)) = counters_not_used(&self.energy_sources)
        {
            line(
                "counters",
                format!(
                    "not used: {}: {}",
                    escape_control(name),
                    escape_control(&why)
                ),
            );
        }
        let g_per_kwh = self.carbon_g_per_kwh().unwrap_or(self.carbon.g_per_kwh);
        let weighted = if self.carbon.series.is_some() {
            format!(
                " energy-weighted, the series' plain mean {:.1}",
                self.carbon.g_per_kwh
            )
        } else {
            String::new()
        };
        line(
            "CO2e",
            format!(
                "{} g, {} at {:.1} g/kWh{weighted} ({})",
                sig3(self.co2e().0),
                escape_control(&method.kind_tag(kind)),
                g_per_kwh,
                escape_control(self.carbon.zone.as_deref().unwrap_or(&self.carbon.source))
            ),
        );
        let per_item = if self.items() > 0 {
            format!(
                "; {} Wh per 1000 items",
                sig3(self.energy().wh() / self.items() as f64 * 1000.0)
            )
        } else {
            String::new()
        };
        line(
            "run",
            format!(
                "{:.2} s, {} items, {} steps{per_item}",
                self.wall().0,
                self.items(),
                self.steps()
            ),
        );
        let names: Vec<_> = self
            .summaries
            .iter()
            .map(|s| escape_control(&s.name))
            .collect();
        let width = names
            .iter()
            .map(|n| n.chars().count())
            .max()
            .unwrap_or(0)
            .clamp(8, 40);
        let tag = method.kind_tag(kind);
        for (i, (st, name)) in self.summaries.iter().zip(&names).enumerate() {
            line(
                if i == 0 { "steps" } else { "" },
                format!(
                    "{:<width$} {:>8} x {:>9.3} s  {:>9} Wh {tag}  {} g CO2e  ({} items){}",
                    name,
                    st.count,
                    st.wall_s.0,
                    sig3(st.energy_j.wh()),
                    sig3(st.co2e_g.0),
                    st.items,
                    if st.gpu { ", GPU step" } else { "" },
                ),
            );
        }
        if let Some(split) = self.summaries.iter().find_map(|s| {
            let m = s.method.as_deref()?;
            let rest = &m[m.find("; to steps by ")? + 2..];
            Some(rest.split(';').next().unwrap_or(rest))
        }) {
            let gpu = if self.summaries.iter().any(|s| s.gpu) {
                "; GPU energy to the GPU steps open, by wall-time overlap"
            } else {
                ""
            };
            line(
                "",
                format!(
                    "(step figures: the run's figure split {}{gpu})",
                    escape_control(split)
                ),
            );
        }
        if self.folded() > 0 {
            line(
                "",
                format!(
                    "({} step instances counted in summaries only: thread buffers full)",
                    self.folded()
                ),
            );
        }
        if self.dropped() > 0 {
            line(
                "",
                format!(
                    "({} step instances not counted: thread buffers full)",
                    self.dropped()
                ),
            );
        }
        if let Some(own) = self.own_cost() {
            line("own cost", own_cost_line(own));
        }
        line(
            "run file",
            match &self.run_file {
                Some(p) => escape_control(&p.display().to_string()).into_owned(),
                None => "none".into(),
            },
        );
        out
    }
}

impl RunSummary {
    /// An empty summary for a disabled run.
    pub fn disabled(job: &str, run_id: &str) -> Self {
        RunSummary {
            run_id: run_id.to_owned(),
            job: job.to_owned(),
            run_file: None,
            energy_sources: Vec::new(),
            scope: None,
            carbon: CarbonFactor::world().info(),
            summaries: Vec::new(),
            warnings: Vec::new(),
            end: None,
            late_sink_errors: 0,
            records_lost: 0,
        }
    }
}

/// Records and totals that come from outside the session, written just before its `run_end`
/// and folded into it: see [`Session::finish_with`](crate::Session::finish_with).
///
/// `carina run` fills it from its children's run files (`carina_runtime::merge`), so the run file
/// holds their steps and `run_end` is written once, with the figures of the [`RunSummary`]
/// that `finish_with` returns.
#[derive(Debug, Clone, Default)]
pub struct Additions {
    /// Written after the session's own step summaries, before `run_end`, in this order
    /// (`thread`, `step`, `step_summary`, `control`...). Their `step_summary` records are also
    /// appended to [`RunSummary::summaries`]. Thread indices and step ids are written as given:
    /// they must not clash with the session's own.
    pub records: Vec<Record>,
    /// Step instances they add to `run_end.steps`.
    pub steps: u64,
    /// Items done outside the session: `run_end.items` becomes the larger of the session's own
    /// and this.
    pub items: u64,
    /// Step instances lost outside the session, added to `run_end.dropped`.
    pub dropped: u64,
    /// Step instances without their own record, added to `run_end.records_not_written`.
    pub records_not_written: u64,
    /// Energy the added steps account for: it is part of the session's energy (the session
    /// measured the process tree that did the work), so it leaves `run_end.unattributed_j`
    /// (never below zero); the run's total does not change.
    pub attributed: Joules,
    /// Lines for `run_end.warnings` (and [`RunSummary::warnings`]).
    pub warnings: Vec<String>,
}
