//! The workload of one cycle at baseline ([`Profile`]): given, or read from a run file.

use super::error::{SimError, check_positive, invalid};
use carina_runtime::reader::RunFile;
use carina_runtime::units::Seconds;
use std::collections::BTreeMap;

/// Longest cycle the simulator accepts, hours (10 years).
pub const MAX_BASELINE_HOURS: f64 = 87_600.0;

/// What one cycle of the job does at baseline: how many items, in how long, for how much energy.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Items the cycle processes.
    pub items: u64,
    /// Hours the cycle takes at baseline (nominal workers all the time).
    pub baseline_hours: f64,
    /// Energy of the cycle at baseline, kWh.
    pub baseline_kwh: f64,
    /// False when taken from a run that did not finish (no `run_end`): the figures cover only
    /// what the run recorded.
    pub complete: bool,
    /// Where the figures come from and what limits them, in words.
    pub notes: Vec<String>,
}

impl Profile {
    /// A profile given directly. All three figures must be positive.
    pub fn new(items: u64, baseline_hours: f64, baseline_kwh: f64) -> Result<Self, SimError> {
        let p = Profile {
            items,
            baseline_hours,
            baseline_kwh,
            complete: true,
            notes: Vec::new(),
        };
        p.validate()?;
        Ok(p)
    }

    /// The profile of a recorded run: items are `run_end.items` (else, for a run that did not
    /// finish, the items of its progress step up to the run's cut, [`RunFile::progress_until`]
    /// and [`RunFile::partial_cut_s`]), hours are `run_end.wall_s` (else the cut: the end of the
    /// last `power` window, or of the last step without them) and energy is
    /// `run_end.energy_j` (else the sum of the `power` records, or without them the steps' own
    /// energy, which leaves out unattributed energy). A run without `run_end` gives a profile
    /// with `complete: false` and a note saying so.
    pub fn from_run(run: &RunFile) -> Result<Self, SimError> {
        let err = |message: String| SimError::Run {
            path: run.path.clone(),
            message,
        };
        let mut notes = Vec::new();
        let largest_total = || -> (u64, &'static str) {
            if let Some(m) = run.summaries.iter().map(|s| s.items).max() {
                return (m, "step summaries");
            }
            let mut per_name: BTreeMap<&str, u64> = BTreeMap::new();
            for s in &run.steps {
                *per_name.entry(&s.name).or_default() += s.items;
            }
            (
                per_name.values().copied().max().unwrap_or(0),
                "step records",
            )
        };
        let (items, wall_s, energy_j) = match &run.end {
            Some(end) => {
                let items = if end.items > 0 {
                    end.items
                } else {
                    let (n, from) = largest_total();
                    if n > 0 {
                        notes.push(format!(
                            "run_end.items is 0; items taken from the largest per-step total in the {from}"
                        ));
                    }
                    n
                };
                (items, end.wall_s, end.energy_j)
            }
            None => {
                // One cut for every figure (docs/CLI.md): the end of the last power window, else
                // the last step's end; items, time and energy all stop there.
                let cut = run.partial_cut_s().unwrap_or(Seconds::ZERO);
                let progress = run.progress_until(cut);
                let items = progress.as_ref().map_or(0, |p| p.items);
                let (wall_s, energy_j, energy_from) = match run.power_totals() {
                    Some((e, end)) => (end, e, "power records: all of it"),
                    None => (
                        cut,
                        if run.summaries.is_empty() {
                            run.steps
                                .iter()
                                .filter(|s| s.end_s <= cut)
                                .map(|s| s.self_energy_j)
                                .sum()
                        } else {
                            run.summaries.iter().map(|s| s.self_energy_j).sum()
                        },
                        "steps' own energy; unattributed energy unknown",
                    ),
                };
                notes.push(format!(
                    "the run did not finish (no run_end): the profile covers what it recorded: \
                     {items} items (progress step `{}`) in {:.2} h for {:.3} kWh ({energy_from})",
                    progress.as_ref().map_or("-", |p| p.name.as_str()),
                    wall_s.0 / 3600.0,
                    energy_j.kwh()
                ));
                (items, wall_s, energy_j)
            }
        };
        if items == 0 {
            return Err(err(
                "no items recorded (run_end.items is 0 and no step counted items); give --items"
                    .into(),
            ));
        }
        if !(wall_s.0.is_finite() && wall_s.0 > 0.0) {
            return Err(err(format!("no duration recorded (wall time {wall_s})")));
        }
        if !(energy_j.0.is_finite() && energy_j.0 > 0.0) {
            return Err(err(format!("no energy recorded ({energy_j})")));
        }
        let mut p = Profile::new(items, wall_s.0 / 3600.0, energy_j.kwh())?;
        p.complete = run.end.is_some();
        notes.insert(
            0,
            format!(
                "profile from run `{}` of job `{}` ({})",
                run.start.run_id,
                run.start.job,
                run.path.display()
            ),
        );
        p.notes = notes;
        Ok(p)
    }

    /// Mean power at baseline, watts.
    pub fn mean_w(&self) -> f64 {
        self.baseline_kwh * 1000.0 / self.baseline_hours
    }

    /// Wall time per item at baseline, seconds (the whole machine's throughput, not a worker's).
    pub fn seconds_per_item(&self) -> f64 {
        self.baseline_hours * 3600.0 / self.items as f64
    }

    pub(super) fn validate(&self) -> Result<(), SimError> {
        if self.items == 0 {
            return Err(invalid("items", "must be at least 1"));
        }
        check_positive("baseline_hours", self.baseline_hours)?;
        if self.baseline_hours > MAX_BASELINE_HOURS {
            // The simulation walks the schedule window by window: a horizon of 1e9 hours would
            // run for hours. Ten years covers any recurrent cycle.
            return Err(invalid(
                "baseline_hours",
                format!(
                    "{} h is beyond the {MAX_BASELINE_HOURS} h (10 years) the simulator covers; \
                     simulate one cycle, or a part of it and scale",
                    self.baseline_hours
                ),
            ));
        }
        check_positive("baseline_kwh", self.baseline_kwh)
    }
}
