//! The verdicts of `carina compare`: what a row's change and interval mean under the gate, the
//! threshold and --min-share, and when two runs' host shares differ too much to compare their
//! energy.

/// What can fail the gate: energy per item, time per item, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gate {
    /// Energy per item gates.
    pub energy: bool,
    /// Time per item gates.
    pub time: bool,
}

impl Gate {
    /// The gated figures, as the outputs name them.
    pub(super) fn names(self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.energy {
            v.push("energy");
        }
        if self.time {
            v.push("time");
        }
        v
    }
}

/// Parses `energy`, `time` or `energy,time` (in any order, case-insensitive).
pub fn parse_gate(s: &str) -> Result<Gate, String> {
    let mut g = Gate {
        energy: false,
        time: false,
    };
    for part in s.split(',') {
        match part.trim().to_ascii_lowercase().as_str() {
            "energy" => g.energy = true,
            "time" => g.time = true,
            other => {
                return Err(format!(
                    "`{other}`: --gate takes `energy`, `time` or `energy,time`"
                ));
            }
        }
    }
    Ok(g)
}

/// The judgement of a row (energy, time, or both as gated) or of the whole comparison, written
/// as its word in every output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Verdict {
    /// Above the threshold, with its interval above zero.
    Regressed,
    /// Below minus the threshold, with its interval below zero.
    Improved,
    /// Neither.
    #[default]
    Same,
    /// A step in the candidate only.
    New,
    /// A step in the base only.
    Gone,
    /// Would be regressed or improved, but the step is below --min-share: not gated.
    Minor,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            Verdict::Regressed => "regressed",
            Verdict::Improved => "improved",
            Verdict::Same => "same",
            Verdict::New => "new",
            Verdict::Gone => "gone",
            Verdict::Minor => "minor",
        })
    }
}

/// Judgement settings.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rules {
    /// --threshold, %.
    pub(super) threshold: f64,
    /// --min-share, %.
    pub(super) min_share: f64,
    pub(super) gate: Gate,
    /// --run-noise, %: the relative standard deviation of a whole run's figures between
    /// identical runs, assumed where a side has one run only.
    pub(super) run_noise: f64,
    /// The probability that this row's interval misses (two-sided): the gated intervals share
    /// 5 % ([`super::build`] sets it per row).
    pub(super) alpha: f64,
}

/// One figure's verdict from its change (in %) and its 95 % interval; without an interval the
/// change alone decides.
pub(super) fn verdict_of(change: f64, ci: Option<[f64; 2]>, threshold: f64) -> Verdict {
    if !change.is_finite() {
        return if change > 0.0 {
            Verdict::Regressed
        } else {
            Verdict::Same
        };
    }
    let (up, down) = match ci {
        Some([l, h]) => (l > 0.0, h < 0.0),
        None => (true, true),
    };
    if change > threshold && up {
        Verdict::Regressed
    } else if change < -threshold && down {
        Verdict::Improved
    } else {
        Verdict::Same
    }
}

/// The verdicts of one row, and the notes that say why a verdict is not what the change alone
/// would suggest (a moved figure that is not gated, a step below --min-share).
#[derive(Debug, Clone, Default)]
pub(super) struct Judgement {
    /// The verdict of energy per item alone.
    pub(super) energy: Verdict,
    /// The verdict of time per item alone.
    pub(super) time: Verdict,
    /// The row's verdict: what the gate makes of the two.
    pub(super) verdict: Verdict,
    /// Why the verdict is not the change's alone, one note each.
    pub(super) notes: Vec<String>,
}

/// Judges a row from its energy and time changes (`None`: no figures, both `same`) and their
/// intervals, the gate and --min-share (`largest`: the step's largest share of its run's energy;
/// `None` for the `(run)` row).
pub(super) fn judge(
    changes: Option<(f64, f64)>,
    (eci, tci): (Option<[f64; 2]>, Option<[f64; 2]>),
    rules: Rules,
    largest: Option<f64>,
) -> Judgement {
    let (threshold, min_share, gate) = (rules.threshold, rules.min_share, rules.gate);
    let mut out = Judgement::default();
    if let Some((de, dt)) = changes {
        out.energy = verdict_of(de, eci, threshold);
        out.time = verdict_of(dt, tci, threshold);
    }
    let rows = [
        (gate.energy, "energy", out.energy),
        (gate.time, "time", out.time),
    ];
    let gated = |x: Verdict| rows.iter().any(|&(gates, _, v)| gates && v == x);
    out.verdict = if gated(Verdict::Regressed) {
        Verdict::Regressed
    } else if gated(Verdict::Improved) {
        Verdict::Improved
    } else {
        Verdict::Same
    };
    for (gates, what, v) in rows {
        // Worded "rose"/"fell", not "regressed"/"improved": a CI log searched for
        // "regressed" finds the gated rows only.
        let moved = match v {
            Verdict::Regressed => Some("rose"),
            Verdict::Improved => Some("fell"),
            _ => None,
        };
        if let (false, Some(m)) = (gates, moved) {
            out.notes.push(format!(
                "{what} per item {m} beyond the threshold (not gated; --gate {what} gates it)"
            ));
        }
    }
    if let Some(largest) = largest
        && matches!(out.verdict, Verdict::Regressed | Verdict::Improved)
        && largest * 100.0 < min_share
    {
        out.verdict = Verdict::Minor;
        out.notes.push(format!(
            "{:.2}% of run energy, below --min-share {min_share}%: not gated",
            largest * 100.0
        ));
    }
    out
}

/// Host shares differ "a lot" when they are this far apart (absolute, 0..1)...
pub const SHARE_MAX_DIFF: f64 = 0.15;
/// ...or when the larger is more than this many times the smaller.
pub const SHARE_MAX_RATIO: f64 = 1.5;

/// Whether two runs' host shares differ enough that an energy difference may come from the
/// other processes on the host (neighbours) rather than from the code: absolute difference above
/// [`SHARE_MAX_DIFF`] or ratio above [`SHARE_MAX_RATIO`]. `false` when either is unknown.
pub fn shares_differ(base: Option<f64>, cand: Option<f64>) -> bool {
    let (Some(b), Some(c)) = (base, cand) else {
        return false;
    };
    let (lo, hi) = (b.min(c), b.max(c));
    hi - lo > SHARE_MAX_DIFF || (lo > 0.0 && hi / lo > SHARE_MAX_RATIO) || (lo <= 0.0 && hi > 0.0)
}
