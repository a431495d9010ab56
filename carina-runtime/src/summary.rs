//! What a finished run measured ([`RunSummary`], which prints itself for terminals), and what
//! comes from outside a session to be folded into its end ([`Additions`]).

use crate::carbon::CarbonFactor;
use crate::record::{
    CarbonInfo, EnergyKind, EnergySource, Method, OwnCost, Record, RunEnd, StepSummary,
};
use carina_core::units::{GramsCo2e, Joules, Seconds};
use std::path::PathBuf;

/// What a finished run measured. Every energy figure is of kind [`RunSummary::energy_kind`].
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Run id.
    pub run_id: String,
    /// Job name.
    pub job: String,
    /// The JSON-lines run file, if one was written.
    pub run_file: Option<PathBuf>,
    /// Duration.
    pub wall: Seconds,
    /// Energy in the run's scope.
    pub energy: Joules,
    /// Part of `energy` attributed to no step.
    pub unattributed: Joules,
    /// Whole-machine energy from the sources.
    pub host_energy: Joules,
    /// Emissions of `energy`, grams CO2e.
    pub co2e: GramsCo2e,
    /// Items (largest per-name total, or the value set explicitly).
    pub items: u64,
    /// Step instances recorded.
    pub steps: u64,
    /// Step instances lost to full thread buffers.
    pub dropped: u64,
    /// Step instances counted in totals only, because their thread's buffer was full.
    pub folded: u64,
    /// Step instances in summaries without their own record.
    pub records_not_written: u64,
    /// Measured or estimated.
    pub energy_kind: EnergyKind,
    /// The sources used.
    pub energy_sources: Vec<EnergySource>,
    /// Emission factor or series used (as written in `run_start.carbon`).
    pub carbon: CarbonInfo,
    /// Per-name summaries.
    pub summaries: Vec<StepSummary>,
    /// Records that a sink failed to write.
    pub sink_errors: u64,
    /// Failed energy reads.
    pub probe_errors: u64,
    /// Problems worth telling the user (also printed to stderr once).
    pub warnings: Vec<String>,
    /// True when the run was disabled (`CARINA_DISABLE=1`) and recorded nothing.
    pub disabled: bool,
    /// The `run_end` record as written (absent for a disabled run).
    pub run_end: Option<RunEnd>,
    /// How [`energy`](Self::energy) was obtained, by source (`run_end.method`); `None` for a
    /// disabled run.
    pub method: Option<Method>,
    /// The effective grid intensity, emissions over energy, g/kWh (energy-weighted with a
    /// time-varying series); `None` when the run used no energy.
    pub carbon_g_per_kwh: Option<f64>,
    /// What Carina itself cost the run (`run_end.own_cost`); `None` for a disabled run.
    pub own_cost: Option<OwnCost>,
}

/// A few lines for a terminal: energy with its kind and source, the host share, carbon, items,
/// one line per step name, the counts of folded and dropped steps, and the run file. Warnings are
/// not included (print [`RunSummary::warnings`] where they belong, e.g. on stderr).
impl std::fmt::Display for RunSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Energy in Wh whatever its size, so that runs read side by side; names and paths
        // escaped, since they come from the program and its environment.
        use crate::format::{counters_not_used, escape_control, own_cost_line, percent, sig3};
        if self.disabled {
            return writeln!(
                f,
                "energy:   not recorded (Carina disabled by CARINA_DISABLE)"
            );
        }
        let kind = self.energy_kind.as_str();
        let source = self
            .energy_sources
            .iter()
            .filter(|s| s.used)
            .map(|s| escape_control(&s.name))
            .collect::<Vec<_>>()
            .join(" + ");
        let share = if self.host_energy.0 > 0.0 {
            format!(
                "; {} of the whole machine's {} Wh",
                percent(self.energy.0 / self.host_energy.0, 0),
                sig3(self.host_energy.wh())
            )
        } else {
            String::new()
        };
        let method = self.method.as_ref().map_or_else(
            || kind.to_owned(),
            |m| escape_control(&m.label).into_owned(),
        );
        let band = match (
            self.run_end.as_ref().and_then(|e| e.energy_low_j),
            self.run_end.as_ref().and_then(|e| e.energy_high_j),
        ) {
            (Some(lo), Some(hi)) => format!("; band {}-{} Wh", sig3(lo.wh()), sig3(hi.wh())),
            _ => String::new(),
        };
        writeln!(
            f,
            "energy:   {} Wh {kind} ({method}{band}; source: {}){share}",
            sig3(self.energy.wh()),
            if source.is_empty() {
                "no source"
            } else {
                &source
            }
        )?;
        if self.energy_kind == EnergyKind::Estimated
            && let Some((name, why)) = counters_not_used(&self.energy_sources)
        {
            writeln!(
                f,
                "          counters not used: {}: {}",
                escape_control(name),
                escape_control(&why)
            )?;
        }
        let g_per_kwh = self.carbon_g_per_kwh.unwrap_or(self.carbon.g_per_kwh);
        writeln!(
            f,
            "carbon:   {} g CO2e at {:.1} g/kWh{} ({}), {kind}",
            sig3(self.co2e.0),
            g_per_kwh,
            if self.carbon.series.is_some() {
                " energy-weighted"
            } else {
                ""
            },
            escape_control(self.carbon.zone.as_deref().unwrap_or(&self.carbon.source))
        )?;
        let per_item = if self.items > 0 {
            format!(
                "; {} Wh per 1000 items",
                sig3(self.energy.wh() / self.items as f64 * 1000.0)
            )
        } else {
            String::new()
        };
        writeln!(
            f,
            "run:      {:.2} s, {} items, {} steps{per_item}",
            self.wall.0, self.items, self.steps
        )?;
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
        for (i, (st, name)) in self.summaries.iter().zip(&names).enumerate() {
            writeln!(
                f,
                "{} {:<width$} {:>8} x {:>9.3} s  {:>9} Wh {kind}  {} g CO2e  ({} items){}",
                if i == 0 { "steps:   " } else { "         " },
                name,
                st.count,
                st.wall_s.0,
                sig3(st.energy_j.wh()),
                sig3(st.co2e_g.0),
                st.items,
                if st.gpu { ", GPU step" } else { "" },
            )?;
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
            writeln!(
                f,
                "          (step figures: the run's figure split {}{gpu})",
                escape_control(split)
            )?;
        }
        if self.folded > 0 {
            writeln!(
                f,
                "          ({} step instances counted in summaries only: thread buffers full)",
                self.folded
            )?;
        }
        if self.dropped > 0 {
            writeln!(
                f,
                "          ({} step instances not counted: thread buffers full)",
                self.dropped
            )?;
        }
        if let Some(own) = &self.own_cost {
            writeln!(f, "own cost: {}", own_cost_line(own))?;
        }
        match &self.run_file {
            Some(p) => writeln!(f, "run file: {}", escape_control(&p.display().to_string())),
            None => writeln!(f, "run file: none"),
        }
    }
}

impl RunSummary {
    /// An empty summary for a disabled run.
    pub fn disabled(job: &str, run_id: &str) -> Self {
        RunSummary {
            run_id: run_id.to_owned(),
            job: job.to_owned(),
            run_file: None,
            wall: Seconds::ZERO,
            energy: Joules::ZERO,
            unattributed: Joules::ZERO,
            host_energy: Joules::ZERO,
            co2e: GramsCo2e::ZERO,
            items: 0,
            steps: 0,
            dropped: 0,
            folded: 0,
            records_not_written: 0,
            energy_kind: EnergyKind::Estimated,
            energy_sources: Vec::new(),
            carbon: CarbonFactor::world().info(),
            summaries: Vec::new(),
            sink_errors: 0,
            probe_errors: 0,
            warnings: Vec::new(),
            disabled: true,
            run_end: None,
            method: None,
            carbon_g_per_kwh: None,
            own_cost: None,
        }
    }
}

/// Records and totals that come from outside the session, written just before its `run_end`
/// and folded into it: see [`Session::finish_with`].
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
