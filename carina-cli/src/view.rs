//! One view of a run: the figures every command reads from a run file, derived in one place.
//!
//! `summary`, `report`, `compare`, `forecast` and `export` all print a run's energy, time,
//! items, kind, host share and per-step rows. [`RunView::new`] derives them once from a
//! [`RunFile`], so the commands cannot disagree on them: a complete run's figures are its
//! `run_end`'s; a run without `run_end` is read up to one moment, its cut
//! ([`RunFile::partial_cut_s`]), and its energy, items, wall time and step rows all stop there.
//!
//! Figures are typed ([`Joules`], [`Seconds`], [`GramsCo2e`]) and turn into plain numbers only
//! where they are formatted or enter statistics.
//!
//! # How a figure was obtained
//!
//! Every command that prints a run's or a step's energy kind says its method too
//! ([`RunView::method`]): `run_end.method` when the file has one, else a method derived from
//! `run_start.energy_sources` and `run_start.scope` ([`derived_method`]: files of earlier
//! versions, and crashed runs without `run_end`). `measured` alone is kept for a plain
//! hardware counter read in host scope ([`Method::is_plain_counter`]); where a column header or
//! a badge has no room for the method, [`kind_tag`] says in two words what was done to the
//! counter (`measured x share`).

use carina_runtime::reader::{Progress, RunFile};
use carina_runtime::record::{
    Attribution, EnergyKind, EnergySource, Method, OwnCost, RunScope, StepRecord,
};
use carina_runtime::units::{GramsCo2e, Joules, Seconds};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

/// How far a run's figures go.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Extent {
    /// The run finished: its figures are `run_end`'s, and every record counts.
    Complete,
    /// No `run_end`: the figures stop at the end of the last `power` record (this moment),
    /// and the energy is the `power` records' sum.
    Power(Seconds),
    /// No `run_end` and no `power` record: the figures stop at the end of the last `step`
    /// record, and the energy is the steps' own.
    Steps(Seconds),
    /// No `run_end`, `power` or `step` record (summaries only): nothing to cut at.
    Summaries,
}

impl Extent {
    /// The end of the span, seconds since the run's start: infinite when every record counts.
    pub fn cut(self) -> Seconds {
        match self {
            Extent::Power(cut) | Extent::Steps(cut) => cut,
            Extent::Complete | Extent::Summaries => Seconds(f64::INFINITY),
        }
    }
}

/// Per-step figures, from a `step_summary` or rebuilt from the `step` records in the run's
/// span.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct StepRow {
    pub name: String,
    pub count: u64,
    pub wall: Seconds,
    pub self_wall: Seconds,
    pub items: u64,
    pub energy: Joules,
    pub self_energy: Joules,
    pub co2e: GramsCo2e,
    pub p50: Seconds,
    pub p95: Seconds,
    /// Some instance was a GPU step (`step_summary.gpu`, `step.gpu`).
    pub gpu: bool,
    /// `step_summary.method`: the run's method and how it was split to this step; `None` in
    /// files of earlier versions and for rows rebuilt from `step` records.
    pub method: Option<String>,
}

/// A run's figures, complete or cut.
#[derive(Debug, Clone)]
pub(crate) struct RunView<'a> {
    /// The run file, for what only one command reads (sources, carbon, controls, power).
    pub file: &'a RunFile,
    pub job: &'a str,
    pub run_id: &'a str,
    pub host: &'a str,
    pub extent: Extent,
    /// `run_end.wall_s`, else the cut (a summaries-only file: its longest step).
    pub wall: Seconds,
    pub energy: Joules,
    /// Low and high ends of an estimate's band.
    pub band: Option<(Joules, Joules)>,
    pub co2e: GramsCo2e,
    /// `run_end.energy_kind`, else measured only when every used source is.
    pub kind: EnergyKind,
    /// `run_end.items`, else the progress step's items ([`Self::progress`]).
    pub items: u64,
    /// Energy no step holds; `None` when unknown (no `run_end` and no `power` record).
    pub unattributed: Option<Joules>,
    /// `run_end.host_energy_j` when above 0: the whole machine's energy over the run.
    pub host_energy: Option<Joules>,
    /// `run_start.scope`.
    pub scope: Option<RunScope>,
    /// The step whose items measure how far the run got, counted up to the cut
    /// ([`RunFile::progress_until`] states the rule); `None` when no step has items.
    pub progress: Option<Progress>,
    /// One row per step name, in file order (summaries) or by name (rebuilt).
    pub rows: Vec<StepRow>,
    /// Step records left out because they ended after the cut.
    pub steps_after_cut: usize,
    /// `run_end.dropped`; `None` without `run_end`.
    pub dropped: Option<u64>,
    /// `run_end.records_not_written` (0 without `run_end`).
    pub not_written: u64,
    /// How the energy was obtained: `run_end.method`, else [`derived_method`].
    pub method: Cow<'a, Method>,
    /// Whether [`Self::method`] is the file's own `run_end.method` (false: derived, and then
    /// nothing is known about a lower bound).
    pub method_recorded: bool,
    /// The effective grid intensity, g CO2e/kWh: `run_end.carbon_g_per_kwh`, else the run's
    /// CO2e over its energy, else `run_start.carbon.g_per_kwh`. With a time-varying series
    /// this is the energy-weighted mean, not the series' plain mean that `run_start` states.
    pub g_per_kwh: f64,
    /// `run_end.own_cost`: what Carina itself cost the run; `None` in files of earlier versions
    /// and without `run_end`.
    pub own_cost: Option<&'a OwnCost>,
}

impl<'a> RunView<'a> {
    /// Derives the view of `file`.
    pub fn new(file: &'a RunFile) -> RunView<'a> {
        let extent = match (&file.end, file.partial_cut_s()) {
            (Some(_), _) => Extent::Complete,
            (None, Some(cut)) if !file.power.is_empty() => Extent::Power(cut),
            (None, Some(cut)) => Extent::Steps(cut),
            (None, None) => Extent::Summaries,
        };
        let cut = extent.cut();
        let rows = if file.summaries.is_empty() {
            rows_from_steps(file.steps.iter().filter(|s| s.end_s <= cut))
        } else {
            file.summaries.iter().map(StepRow::from).collect()
        };
        let progress = file.progress_until(cut);
        let start = &file.start;
        let mut v = RunView {
            file,
            job: &start.job,
            run_id: &start.run_id,
            host: &start.host,
            extent,
            wall: Seconds::ZERO,
            energy: Joules::ZERO,
            band: None,
            co2e: GramsCo2e::ZERO,
            kind: EnergyKind::Estimated,
            items: 0,
            unattributed: None,
            host_energy: None,
            scope: start.scope,
            progress,
            rows,
            steps_after_cut: file.steps.iter().filter(|s| s.end_s > cut).count(),
            dropped: None,
            not_written: 0,
            method: match file.end.as_ref().and_then(|e| e.method.as_ref()) {
                Some(m) => Cow::Borrowed(m),
                None => Cow::Owned(derived_method(&start.energy_sources, start.scope)),
            },
            method_recorded: file.end.as_ref().is_some_and(|e| e.method.is_some()),
            g_per_kwh: start.carbon.g_per_kwh,
            own_cost: file.end.as_ref().and_then(|e| e.own_cost.as_ref()),
        };
        if let Some(e) = &file.end {
            v.wall = e.wall_s;
            v.energy = e.energy_j;
            v.band = e.energy_low_j.zip(e.energy_high_j);
            v.co2e = e.co2e_g;
            v.kind = e.energy_kind;
            v.items = e.items;
            v.unattributed = Some(e.unattributed_j);
            v.host_energy = Some(e.host_energy_j).filter(|h| *h > Joules::ZERO);
            v.dropped = Some(e.dropped);
            v.not_written = e.records_not_written;
            v.g_per_kwh = e
                .carbon_g_per_kwh
                .unwrap_or_else(|| v.effective_g_per_kwh());
            return v;
        }
        v.kind = EnergyKind::of_sources(&start.energy_sources);
        // The items done are the progress step's, not the largest total: a set-up step that
        // declares every item in one record does not make the run look finished.
        v.items = v.progress.as_ref().map_or(0, |p| p.items);
        v.wall = if cut.is_finite() {
            cut
        } else {
            v.rows
                .iter()
                .map(|r| r.wall)
                .fold(Seconds::ZERO, Seconds::max)
        };
        let attributed: Joules = v.rows.iter().map(|r| r.self_energy).sum();
        if let Extent::Power(_) = extent {
            // All of the run's energy up to the last closed window, steps or not.
            let p = &file.power;
            v.energy = p.iter().map(|p| p.energy_j).sum();
            v.co2e = p.iter().map(|p| p.co2e_g).sum();
            let low: Option<Joules> = p.iter().map(|p| p.energy_low_j).sum();
            v.band = low.zip(p.iter().map(|p| p.energy_high_j).sum());
            v.unattributed = Some((v.energy - attributed).max(Joules::ZERO));
            v.g_per_kwh = v.effective_g_per_kwh();
            return v;
        }
        v.energy = attributed;
        v.co2e = GramsCo2e(v.energy.kwh() * start.carbon.g_per_kwh);
        // The inclusive band of the top-level steps, scaled to their self energy: close enough
        // for a partial run, and only shown as a band.
        let (mut low, mut high, mut top, mut any_band) = (0.0, 0.0, 0.0, false);
        for s in v.steps().filter(|s| s.parent.is_none()) {
            if let (Some(l), Some(h)) = (s.energy_low_j, s.energy_high_j) {
                low += l.0;
                high += h.0;
                any_band = true;
            }
            top += s.energy_j.0;
        }
        if any_band && top > 0.0 {
            let e = v.energy.0;
            v.band = Some((Joules(low * e / top), Joules(high * e / top)));
        }
        v
    }

    /// Whether the run has a `run_end`.
    pub fn is_complete(&self) -> bool {
        self.extent == Extent::Complete
    }

    /// The end of the run's span ([`Extent::cut`]).
    pub fn cut(&self) -> Seconds {
        self.extent.cut()
    }

    /// The `step` records inside the run's span: all of them for a complete run.
    pub fn steps(&self) -> impl Iterator<Item = &'a StepRecord> + Clone + use<'a> {
        let cut = self.cut();
        self.file.steps.iter().filter(move |s| s.end_s <= cut)
    }

    /// The run's share of the host's energy; `None` ("n/a") when the host's energy is unknown.
    pub fn host_share(&self) -> Option<f64> {
        self.host_energy
            .filter(|h| h.is_finite())
            .map(|h| self.energy / h)
    }

    /// `part` as a fraction of the run's energy; `None` when the run has none.
    pub fn share(&self, part: Joules) -> Option<f64> {
        (self.energy > Joules::ZERO).then(|| part / self.energy)
    }

    /// Energy per item; `None` without items.
    pub fn per_item(&self) -> Option<Joules> {
        (self.items > 0).then(|| self.energy / self.items as f64)
    }

    /// `run_start.scope` in words, `-` when the file does not say.
    pub fn scope_str(&self) -> &'static str {
        self.scope.map_or("-", RunScope::as_str)
    }

    /// CO2e over energy in kWh when the run has energy, else `run_start`'s factor.
    fn effective_g_per_kwh(&self) -> f64 {
        let kwh = self.energy.kwh();
        if kwh > 0.0 && self.co2e.0.is_finite() {
            self.co2e.0 / kwh
        } else {
            self.file.start.carbon.g_per_kwh
        }
    }

    /// The kind in two words, for headers and badges ([`kind_tag`]).
    pub fn kind_tag(&self) -> String {
        kind_tag(self.kind, &self.method)
    }

    /// The kind with the method, for text with room: `measured (counter x cpu-time share)`
    /// ([`kind_and_method`]).
    pub fn kind_and_method(&self) -> String {
        kind_and_method(self.kind, &self.method)
    }

    /// Whether the figure is a lower bound: `Some(true)` when `run_end.method` says so, `None`
    /// when the file has no method to say it (earlier versions, no `run_end`).
    pub fn lower_bound(&self) -> Option<bool> {
        self.method_recorded.then_some(self.method.lower_bound)
    }

    /// Whether `run_start.carbon` names a time-varying series (then [`Self::g_per_kwh`] is
    /// energy-weighted).
    pub fn carbon_series(&self) -> bool {
        self.file.start.carbon.series.is_some()
    }

    /// How the step figures were obtained, one entry per distinct method with whether it is
    /// the GPU steps': each row's `step_summary.method`, else (files of earlier versions, rows
    /// rebuilt from `step` records) the run's method and `run_end.attribution`. Empty without
    /// step rows.
    pub fn step_methods(&self) -> Vec<(bool, String)> {
        let fallback = || {
            let split = match self.file.end.as_ref().and_then(|e| e.attribution) {
                Some(Attribution::CpuTime) => "; to steps by thread CPU time",
                Some(Attribution::WallTime) => "; to steps by wall time (no CPU clocks)",
                _ => "; how it was split to steps is not recorded",
            };
            format!("{}{split}", self.method.label)
        };
        let mut out: Vec<(bool, String)> = Vec::new();
        for r in &self.rows {
            let m = r.method.clone().unwrap_or_else(fallback);
            if !out.iter().any(|(g, x)| *g == r.gpu && *x == m) {
                out.push((r.gpu, m));
            }
        }
        // The CPU steps' method first: it is what most rows follow.
        out.sort_by_key(|(gpu, _)| *gpu);
        out
    }
}

/// The method of a file without one, from its sources and scope ([`Method::derived`]).
pub(crate) fn derived_method(sources: &[EnergySource], scope: Option<RunScope>) -> Method {
    Method::derived(sources, scope)
}

/// The kind in two words ([`Method::kind_tag`]).
pub(crate) fn kind_tag(kind: EnergyKind, m: &Method) -> String {
    m.kind_tag(kind)
}

/// The kind and the method's label ([`Method::kind_and_label`]).
pub(crate) fn kind_and_method(kind: EnergyKind, m: &Method) -> String {
    m.kind_and_label(kind)
}

impl From<&carina_runtime::record::StepSummary> for StepRow {
    fn from(s: &carina_runtime::record::StepSummary) -> StepRow {
        StepRow {
            name: s.name.clone(),
            count: s.count,
            wall: s.wall_s,
            self_wall: s.self_wall_s,
            items: s.items,
            energy: s.energy_j,
            self_energy: s.self_energy_j,
            co2e: s.co2e_g,
            p50: Seconds(s.p50_s),
            p95: Seconds(s.p95_s),
            gpu: s.gpu,
            method: s.method.clone(),
        }
    }
}

/// A step record's duration (0 when its clock went backwards).
pub(crate) fn wall_of(s: &StepRecord) -> Seconds {
    (s.end_s - s.start_s).max(Seconds::ZERO)
}

/// Linear-interpolated quantile of sorted values (`q` in 0..=1); NaN when empty.
pub(crate) fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let f = pos - lo as f64;
    sorted[lo] * (1.0 - f) + sorted[hi] * f
}

/// Per-name rows rebuilt from step records: self time is the wall time less the direct
/// children's, p50/p95 are quantiles of the instance durations.
fn rows_from_steps<'a>(steps: impl Iterator<Item = &'a StepRecord> + Clone) -> Vec<StepRow> {
    let mut child_time: HashMap<u64, Seconds> = HashMap::new();
    for s in steps.clone() {
        if let Some(p) = s.parent {
            *child_time.entry(p).or_default() += wall_of(s);
        }
    }
    let mut by_name: BTreeMap<&str, (StepRow, Vec<f64>)> = BTreeMap::new();
    for s in steps {
        let (row, durs) = by_name.entry(&s.name).or_insert_with(|| {
            let name = s.name.to_string();
            (
                StepRow {
                    name,
                    ..StepRow::default()
                },
                Vec::new(),
            )
        });
        let d = wall_of(s);
        row.count += 1;
        row.wall += d;
        row.self_wall +=
            (d - child_time.get(&s.id).copied().unwrap_or_default()).max(Seconds::ZERO);
        row.items = row.items.saturating_add(s.items);
        row.energy += s.energy_j;
        row.self_energy += s.self_energy_j;
        row.co2e += s.co2e_g;
        row.gpu |= s.gpu;
        durs.push(d.0);
    }
    by_name
        .into_values()
        .map(|(mut row, mut durs)| {
            durs.sort_by(f64::total_cmp);
            row.p50 = Seconds(quantile_sorted(&durs, 0.5));
            row.p95 = Seconds(quantile_sorted(&durs, 0.95));
            row
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use carina_runtime::reader::parse_run_file;
    use carina_runtime::record::{Basis, MethodPart, ProbeScope, ShareRule};
    use std::path::Path;

    const START: &str = r#"{"type":"run_start","schema":1,"run_id":"r1","job":"nightly","host":"node7","pid":1,"started_at":"2026-11-28T05:12:00Z","energy_sources":[{"name":"rapl-perf","kind":"measured","source":"perf"}],"carbon":{"g_per_kwh":400.0,"zone":"WORLD","source":"test"},"scope":"process"}"#;

    fn step(name: &str, id: u64, parent: Option<u64>, t: (f64, f64), items: u64, e: f64) -> String {
        format!(
            r#"{{"type":"step","name":"{name}","id":{id},"parent":{},"thread":0,"start_s":{},"end_s":{},"items":{items},"status":"ok","energy_j":{e},"self_energy_j":{},"co2e_g":0.0,"energy_low_j":{},"energy_high_j":{}}}"#,
            parent.map_or("null".into(), |p| p.to_string()),
            t.0,
            t.1,
            if parent.is_none() { e / 2.0 } else { e },
            e * 0.8,
            e * 1.2
        )
    }

    fn power(a: f64, b: f64, e: f64) -> String {
        format!(
            r#"{{"type":"power","start_s":{a},"end_s":{b},"energy_j":{e},"co2e_g":{}}}"#,
            e / 1024.0
        )
    }

    /// A set-up step declaring 1000 items once, then `work` (10 items, 20 J inclusive, of which
    /// a child `parse` holds half) every second from 1 s to 6 s.
    fn lines() -> Vec<String> {
        let mut l = vec![
            START.to_owned(),
            step("setup", 1, None, (0.0, 1.0), 1000, 2.0),
        ];
        for k in 0..5 {
            let (t, id) = (1.0 + k as f64, 2 + 2 * k as u64);
            l.push(step("parse", id + 1, Some(id), (t, t + 0.5), 0, 10.0));
            l.push(step("work", id, None, (t, t + 1.0), 10, 20.0));
        }
        l
    }

    fn parse(lines: &[String]) -> RunFile {
        parse_run_file(&(lines.join("\n") + "\n"), Path::new("r1.jsonl")).unwrap()
    }

    #[test]
    fn a_complete_run_reads_run_end() {
        let mut l = lines();
        l.push(r#"{"type":"run_end","ended_at":"2026-11-28T05:20:00Z","wall_s":6.5,"energy_j":120.0,"unattributed_j":19.0,"co2e_g":0.5,"items":1000,"steps":11,"dropped":2,"records_not_written":3,"host_energy_j":240.0,"energy_kind":"measured"}"#.into());
        let file = parse(&l);
        let v = RunView::new(&file);
        assert_eq!((v.job, v.run_id, v.host), ("nightly", "r1", "node7"));
        assert!(v.is_complete());
        assert_eq!(
            (v.wall, v.energy, v.band),
            (Seconds(6.5), Joules(120.0), None)
        );
        assert_eq!(
            (v.kind, v.items, v.steps().count()),
            (EnergyKind::Measured, 1000, 11)
        );
        assert_eq!(
            (v.unattributed, v.dropped, v.not_written),
            (Some(Joules(19.0)), Some(2), 3)
        );
        assert_eq!((v.host_share(), v.scope_str()), (Some(0.5), "process"));
        assert_eq!(v.per_item(), Some(Joules(0.12)));
        // Progress is the repeated step, not the set-up step's single large total.
        assert_eq!(v.progress.as_ref().map(|p| p.name.as_str()), Some("work"));
        let names: Vec<&str> = v.rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["parse", "setup", "work"]);
        let work = &v.rows[2];
        assert_eq!((work.count, work.items), (5, 50));
        assert_eq!(
            (work.energy, work.self_energy),
            (Joules(100.0), Joules(50.0))
        );
        assert_eq!((work.wall, work.self_wall), (Seconds(5.0), Seconds(2.5)));
        assert_eq!((work.p50, work.p95), (Seconds(1.0), Seconds(1.0)));
        assert_eq!(v.share(work.self_energy), Some(50.0 / 120.0));
    }

    #[test]
    fn a_run_cut_at_its_last_power_record() {
        let mut l = lines();
        l.extend((0..4).map(|k| power(k as f64, k as f64 + 1.0, 30.0)));
        let file = parse(&l);
        let v = RunView::new(&file);
        // The power records end at 4 s: the steps that end later are left out.
        assert_eq!(
            (v.extent, v.wall),
            (Extent::Power(Seconds(4.0)), Seconds(4.0))
        );
        assert_eq!(
            (v.energy, v.co2e),
            (Joules(120.0), GramsCo2e(120.0 / 1024.0))
        );
        assert_eq!((v.steps_after_cut, v.steps().count(), v.items), (4, 7, 30));
        assert_eq!(v.kind, EnergyKind::Measured);
        // The steps up to the cut hold 1 + 3 x (10 + 10) J of self energy.
        assert_eq!(v.unattributed, Some(Joules(59.0)));
        assert_eq!(
            (v.host_energy, v.host_share(), v.dropped),
            (None, None, None)
        );
        let p = v.progress.as_ref().unwrap();
        assert_eq!((p.name.as_str(), p.instances, p.items), ("work", 3, 30));
    }

    #[test]
    fn a_run_cut_at_its_last_step_record() {
        let file = parse(&lines());
        let v = RunView::new(&file);
        assert_eq!(
            (v.extent, v.wall),
            (Extent::Steps(Seconds(6.0)), Seconds(6.0))
        );
        // The steps' self energy: 1 + 5 x (10 + 10) J, and its CO2e at 400 g/kWh.
        assert_eq!(v.energy, Joules(101.0));
        assert_eq!(v.co2e, GramsCo2e(101.0 / 3.6e6 * 400.0));
        assert_eq!((v.items, v.steps_after_cut, v.unattributed), (50, 0, None));
        // The top-level band (0.8 .. 1.2 of 102 J inclusive), scaled to the self energy.
        let (lo, hi) = v.band.unwrap();
        assert!(
            (lo.0 - 80.8).abs() < 1e-9 && (hi.0 - 121.2).abs() < 1e-9,
            "{lo} {hi}"
        );
    }

    fn source(name: &str, kind: EnergyKind, domains: &[&str]) -> EnergySource {
        let mut s = EnergySource::new(name, kind, "test");
        s.domains = domains.iter().map(|d| d.to_string()).collect();
        s
    }

    #[test]
    fn a_method_is_derived_from_the_sources_and_the_scope() {
        let rapl = source("rapl-powercap", EnergyKind::Measured, &["package-0"]);
        let label = |sources: &[EnergySource], scope| derived_method(sources, scope).label;
        // Host scope: the counter taken whole, the one method read as `measured` alone.
        let m = derived_method(std::slice::from_ref(&rapl), Some(RunScope::Host));
        assert_eq!(m.label, "counter");
        assert!(m.is_plain_counter() && !m.lower_bound);
        assert_eq!(kind_tag(EnergyKind::Measured, &m), "measured");
        assert_eq!(
            kind_and_method(EnergyKind::Measured, &m),
            "measured (counter)"
        );
        // A process tree takes a CPU-time share of it; so does a file too old to state its
        // scope (the default then was `process`).
        for scope in [Some(RunScope::ProcessTree), None] {
            let m = derived_method(std::slice::from_ref(&rapl), scope);
            assert_eq!(m.label, "counter x cpu-time share", "{scope:?}");
            assert_eq!(kind_tag(EnergyKind::Measured, &m), "measured x share");
            assert_eq!(
                m.notes.len(),
                2,
                "a note for the counter and one for the share"
            );
        }
        // A GPU source: the file does not say which share rule, so all three are named.
        let nvml = source("nvml", EnergyKind::Measured, &["gpu-0", "gpu-1"]);
        assert_eq!(
            label(&[rapl.clone(), nvml], Some(RunScope::Process)),
            "counter x cpu-time share (rapl-powercap) + counter x cpu-time/gpu-use/count share (nvml)"
        );
        // A process-scope source (a constant for the job) takes no share; its basis is read
        // as written, else from its kind.
        let mut constant = source("constant", EnergyKind::Estimated, &["job"]);
        constant.scope = ProbeScope::Process;
        constant.basis = Some(Basis::UserConstant);
        assert_eq!(label(&[constant], Some(RunScope::Process)), "user constant");
        let mut old = source("model", EnergyKind::Estimated, &["cpu"]);
        old.basis = None;
        assert_eq!(
            label(&[old], Some(RunScope::Process)),
            "model x cpu-time share"
        );
        // Sources not used are no part of it.
        let unused = EnergySource::not_used("rapl-perf", EnergyKind::Measured, "no PMU");
        assert_eq!(label(&[unused], Some(RunScope::Host)), "no source");
    }

    #[test]
    fn kind_tags_say_what_was_done_to_a_counter() {
        let part = |basis, share: bool, pue| {
            let p = MethodPart::new("s", basis, Joules(10.0)).with_pue(pue);
            if share {
                p.with_share(ShareRule::GpuUse, Joules(10.0))
            } else {
                p
            }
        };
        let tag = |parts, lower| kind_tag(EnergyKind::Measured, &Method::from_parts(parts, lower));
        assert_eq!(
            tag(vec![part(Basis::Counter, false, None)], false),
            "measured"
        );
        assert_eq!(
            tag(vec![part(Basis::Counter, false, None)], true),
            "measured, lower bound"
        );
        assert_eq!(
            tag(vec![part(Basis::IntegratedPower, true, None)], false),
            "measured x share, integrated"
        );
        assert_eq!(
            tag(vec![part(Basis::Counter, false, Some(1.2))], false),
            "measured x PUE"
        );
        let model = Method::from_parts(vec![part(Basis::Model, true, None)], false);
        assert_eq!(kind_tag(EnergyKind::Estimated, &model), "estimated");
        assert_eq!(
            kind_and_method(EnergyKind::Estimated, &model),
            "estimated (model x gpu-use share)"
        );
    }

    #[test]
    fn a_recorded_method_and_the_effective_factor_are_read_from_run_end() {
        let mut l = lines();
        l[0] = l[0].replace(
            r#""source":"test"}"#,
            r#""source":"test","series":"de.csv"}"#,
        );
        l.push(r#"{"type":"run_end","ended_at":"2026-11-28T05:13:00Z","wall_s":6.5,"energy_j":3600000.0,"unattributed_j":0.0,"co2e_g":495.3,"items":1,"steps":11,"dropped":0,"energy_kind":"measured","method":{"label":"counter, lower bound","parts":[{"source":"rapl-perf","basis":"counter","energy_j":3600000.0}],"lower_bound":true},"own_cost":{"aggregator_cpu_s":0.1,"aggregator_energy_j":1.0,"step_cost_ns":20.0,"steps_cpu_s":0.0,"steps_energy_j":0.5,"bytes_written":10,"cpu_share":0.01}}"#.into());
        let file = parse(&l);
        let v = RunView::new(&file);
        assert!(v.method_recorded);
        assert_eq!(v.lower_bound(), Some(true));
        assert_eq!(v.kind_tag(), "measured, lower bound");
        // No `carbon_g_per_kwh` in this file: CO2e over kWh, not the series' mean of 400.
        assert!((v.g_per_kwh - 495.3).abs() < 1e-9, "{}", v.g_per_kwh);
        assert!(v.carbon_series());
        assert_eq!(v.own_cost.map(|o| o.energy_j()), Some(Joules(1.5)));
        // Without run_end: derived, and nothing known about a lower bound or the own cost.
        let file = parse(&lines());
        let v = RunView::new(&file);
        assert!(!v.method_recorded);
        assert_eq!(v.lower_bound(), None);
        assert_eq!(v.method.label, "counter x cpu-time share");
        assert!(v.own_cost.is_none());
        assert_eq!(
            v.step_methods(),
            [(
                false,
                "counter x cpu-time share; how it was split to steps is not recorded".to_owned()
            )]
        );
    }

    #[test]
    fn a_summaries_only_file_has_no_cut() {
        let l = [
            START.to_owned(),
            r#"{"type":"step_summary","name":"work","count":4,"wall_s":8.0,"self_wall_s":8.0,"items":40,"energy_j":80.0,"self_energy_j":80.0,"co2e_g":0.0,"p50_s":2.0,"p95_s":2.0,"max_s":2.0}"#.to_owned(),
        ];
        let file = parse(&l);
        let v = RunView::new(&file);
        assert!(v.extent == Extent::Summaries && v.cut().0.is_infinite());
        assert_eq!(
            (v.wall, v.energy, v.items),
            (Seconds(8.0), Joules(80.0), 40)
        );
        assert_eq!(v.progress.map(|p| p.instances), Some(4));
    }
}
