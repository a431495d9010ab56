//! What `carina report` draws for one run beyond its view: the step tree by name path and the
//! timeline's energy per bin, in one pass over the run's step records.

use crate::view::{RunView, StepRow, wall_of};
use carina_runtime::record::StepRecord;
use carina_runtime::units::{Joules, Seconds};
use std::collections::HashMap;

/// Number of timeline bins.
pub const BINS: usize = 200;

/// One node of the step tree (a name path).
#[derive(Debug, Clone)]
pub(super) struct Node<'a> {
    pub(super) name: &'a str,
    pub(super) children: Vec<usize>,
    pub(super) count: u64,
    pub(super) energy: Joules,
    pub(super) self_energy: Joules,
    pub(super) wall: Seconds,
}

impl<'a> Node<'a> {
    fn new(name: &'a str) -> Node<'a> {
        Node {
            name,
            children: Vec::new(),
            count: 0,
            energy: Joules::ZERO,
            self_energy: Joules::ZERO,
            wall: Seconds::ZERO,
        }
    }
}

/// Everything drawn for one run: its view, and what only the report draws.
pub(super) struct Analysis<'a> {
    pub(super) v: &'a RunView<'a>,
    /// The view's step rows, largest energy first.
    pub(super) rows: Vec<&'a StepRow>,
    /// The time the runtime card and the timeline cover, s: the run's wall time (else the end
    /// of its last step), stretched to the end of its last `power` record.
    pub(super) span: f64,
    /// Tree nodes; node 0 is the root (the run).
    pub(super) tree: Vec<Node<'a>>,
    /// Energy per timeline bin, J.
    pub(super) bins: Vec<f64>,
    /// Where `bins` come from.
    pub(super) timeline: Timeline,
}

/// The source of a run's timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Timeline {
    /// `power` records (this many windows): all of the run's energy.
    Power(usize),
    /// Steps' self energy spread over their spans (files without `power` records).
    Steps,
    /// Neither: a flat line at the run's mean power.
    Flat,
}

/// Index of a step id in `steps`: a dense table when ids are compact, else a hash map.
enum IdIndex {
    Dense(Vec<u32>),
    Sparse(HashMap<u64, u32>),
}

impl IdIndex {
    fn new(steps: &[StepRecord]) -> IdIndex {
        let max = steps.iter().map(|s| s.id).max().unwrap_or(0);
        if max <= (steps.len() as u64).saturating_mul(4) + 1024 {
            let mut v = vec![u32::MAX; max as usize + 1];
            for (i, s) in steps.iter().enumerate() {
                v[s.id as usize] = i as u32;
            }
            IdIndex::Dense(v)
        } else {
            IdIndex::Sparse(
                steps
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (s.id, i as u32))
                    .collect(),
            )
        }
    }

    fn get(&self, id: u64) -> Option<usize> {
        match self {
            IdIndex::Dense(v) => v
                .get(id as usize)
                .filter(|&&i| i != u32::MAX)
                .map(|&i| i as usize),
            IdIndex::Sparse(m) => m.get(&id).map(|&i| i as usize),
        }
    }
}

pub(super) fn analyse<'a>(v: &'a RunView<'a>) -> Analysis<'a> {
    let run = v.file;
    let steps = &run.steps;
    let index = IdIndex::new(steps);

    // Step tree by name path: node of each step, resolved through its parent (memoised).
    let mut tree: Vec<Node> = vec![Node::new("")];
    let mut child_of: HashMap<(usize, &str), usize> = HashMap::new();
    let mut node_of: Vec<u32> = vec![u32::MAX; steps.len()];
    let mut stack: Vec<usize> = Vec::new();
    let mut max_end = Seconds::ZERO;

    for i in 0..steps.len() {
        let s = &steps[i];
        max_end = max_end.max(s.end_s);
        if node_of[i] != u32::MAX {
            continue;
        }
        // Walk up to the first ancestor whose node is known (or the root).
        stack.clear();
        let mut j = i;
        let mut base = 0usize;
        loop {
            stack.push(j);
            match steps[j].parent.and_then(|p| index.get(p)) {
                Some(p) if p != j && stack.len() <= steps.len() => {
                    if node_of[p] != u32::MAX {
                        base = node_of[p] as usize;
                        break;
                    }
                    j = p;
                }
                _ => break,
            }
        }
        while let Some(j) = stack.pop() {
            let name: &str = &steps[j].name;
            let n = *child_of.entry((base, name)).or_insert_with(|| {
                tree.push(Node::new(name));
                let n = tree.len() - 1;
                tree[base].children.push(n);
                n
            });
            node_of[j] = n as u32;
            base = n;
        }
    }
    // A crashed run's figures stop at its cut: later step records are in no figure, so that
    // no step takes more than the run's energy or time.
    for (i, s) in steps.iter().enumerate() {
        if s.end_s > v.cut() {
            continue;
        }
        let n = &mut tree[node_of[i] as usize];
        n.count += 1;
        n.energy += s.energy_j;
        n.self_energy += s.self_energy_j;
        n.wall += wall_of(s);
    }
    let mut rows: Vec<&StepRow> = v.rows.iter().collect();
    rows.sort_by(|a, b| b.energy.total_cmp(&a.energy));
    let max_end = max_end.min(v.cut()).0;

    // Timeline. Preferred: the run's `power` records (all the run's energy, steps or not),
    // when there are enough of them to draw a shape (a 3 s run has 3 one-second windows, its
    // steps show more); else each step's attributed (self) energy spread evenly over its span;
    // else a flat line.
    let span = if v.wall.0 > 0.0 { v.wall.0 } else { max_end };
    let span = run.power.last().map_or(span, |p| span.max(p.end_s.0));
    let mut bins = vec![0.0f64; BINS];
    let mut timeline = Timeline::Flat;
    if span > 0.0 && !run.power.is_empty() && (steps.is_empty() || run.power.len() >= 20) {
        timeline = Timeline::Power(run.power.len());
        let windows = run.power.iter();
        spread(
            &mut bins,
            span,
            windows.map(|p| (p.start_s, p.end_s, p.energy_j)),
        );
    } else if span > 0.0 && !steps.is_empty() {
        timeline = Timeline::Steps;
        let steps = v.steps().map(|s| (s.start_s, s.end_s, s.self_energy_j));
        spread(&mut bins, span, steps);
    } else if span > 0.0 && v.energy.0 > 0.0 {
        bins.fill(v.energy.0 / BINS as f64);
    }
    Analysis {
        v,
        rows,
        span,
        tree,
        bins,
        timeline,
    }
}

/// Adds each `(start_s, end_s, energy_j)` to `bins` (covering `0..span`), spread evenly over
/// its span: O(1) per interval with a difference array of power for the fully covered bins.
fn spread(
    bins: &mut [f64],
    span: f64,
    intervals: impl Iterator<Item = (Seconds, Seconds, Joules)>,
) {
    let n = bins.len();
    let w = span / n as f64;
    let mut rate = vec![0.0f64; n + 1];
    let bin_of = |t: f64| ((t / w).floor().max(0.0) as usize).min(n - 1);
    for (a, b, e) in intervals.map(|(a, b, e)| (a.0, b.0, e.0)) {
        if e == 0.0 || !e.is_finite() {
            continue;
        }
        let (a, b) = (a.max(0.0), b.max(a).min(span));
        let (ba, bb) = (bin_of(a), bin_of(b));
        if b <= a || ba == bb {
            bins[ba] += e;
            continue;
        }
        let p = e / (b - a);
        bins[ba] += p * ((ba + 1) as f64 * w - a);
        bins[bb] += p * (b - bb as f64 * w);
        if bb > ba + 1 {
            rate[ba + 1] += p;
            rate[bb] -= p;
        }
    }
    let mut r = 0.0;
    for (k, bin) in bins.iter_mut().enumerate() {
        r += rate[k];
        *bin += r * w;
    }
}

/// Wh per item of a run; NaN without items.
pub(super) fn run_wh_per_item(a: &Analysis) -> f64 {
    a.v.per_item().map_or(f64::NAN, Joules::wh)
}
