//! `carina export`: run files as CSV, one row per run, or with `--steps` one row per (run, step
//! name), per combination of attributes for a step that has them. The figures are those `carina
//! summary` prints, including for a crashed run (no `run_end`): its energy, items, wall time and
//! steps stop at the one cut summary uses.

use crate::load::load_runs_skipping;
use crate::out;
use crate::view::RunView;
use carina_runtime::reader::RunFile;
use carina_runtime::record::{DomainEnergy, is_gpu_domain};
use std::path::PathBuf;
use std::process::ExitCode;

const LONG_ABOUT: &str = "Write runs as CSV (RFC 4180: comma-separated, a header line, fields \
with a comma, a double quote or a line break quoted, quotes doubled, CRLF-free `\\n` line \
ends). One row per run, oldest first; with --steps, one row per (run, step name), or per (run, \
step name, attributes) for a step whose instances carry attributes (below).\n\n\
Run columns: run_id, job, host, started_at (RFC 3339), complete (true/false), wall_s (s), \
energy_j (J), energy_kind (measured/estimated), energy_low_j, energy_high_j (J, empty when \
not an estimate band), host_energy_j (J, empty when unknown), host_share (0..1, empty when \
unknown), co2e_g (g CO2e), g_per_kwh (g CO2e/kWh), zone, items, j_per_item (J, empty when \
items is 0), steps (step instances), dropped (instances lost; empty for a crashed run), scope, path \
(the run file), method (how energy_j was obtained: run_end.method.label, e.g. `counter x \
cpu-time share`; derived from the sources and scope in files without it), lower_bound \
(true/false: some interval was counted low; empty when the file does not say), \
carbon_g_per_kwh (g CO2e/kWh, the effective factor: energy-weighted with an intensity series, \
while g_per_kwh is the series' plain mean), own_cost_cpu_share (0..1, Carina's share of the \
process's CPU time) and own_cost_j (J, Carina's own energy; both empty in files without \
run_end.own_cost), then energy_kwh (energy_j in kWh) and co2e_kg (co2e_g in kg), the \
units of CodeCarbon's emissions.csv, then cpu_j, dram_j, gpu_j and other_j (J: \
run_end.energy_by_domain summed by kind of domain: package-N, cpu and psys are cpu; dram-N and \
memory are dram; gpu-N is gpu; any other name is other. A run of one domain writes no \
energy_by_domain: all of its energy is in that domain's column. Empty when unknown: a crashed \
run of several domains) and cpu_method, dram_method, gpu_method (how that column's figure was \
obtained: the method of each used source with such a domain, with the source's name, e.g. \
`counter x cpu-time share (rapl-powercap)`; empty when no source has one).\n\n\
Step columns: run_id, job, host, step, count (instances), items, wall_s, self_wall_s (s), \
energy_j, self_energy_j (J), co2e_g (g), p50_s, p95_s (s), j_per_item (J, empty without \
items), share (the step's inclusive energy / the run's energy, 0..1), gpu (true for a GPU \
step), method (how the step's figures were obtained: step_summary.method, else the run's \
method and how it was split to steps), energy_kind and started_at (the run's, so that a \
step row stands alone), energy_low_j and energy_high_j (J, the step's band: its \
step_summary's, else the sum of its step records'; empty when not an estimate band), \
energy_kwh, co2e_kg, cpu_j, dram_j, gpu_j, other_j (the step's energy_by_domain, as for runs), \
cpu_method, dram_method, gpu_method (the run's), then attrs (the step's attributes as a JSON \
object, e.g. {\"dataset\":\"imagenet\"}; empty for instances without attributes).\n\n\
Attributes (steps whose instances carry `attrs`, e.g. the span fields listed with \
carina_tracing's CarinaLayer::attributes): such a step name gets one row per combination of \
attributes (its step_summary's by_attrs, else its step records grouped), and one row with \
an empty attrs for its other instances (without attributes, folded, or beyond the 64 \
combinations a summary keeps), when there are any; so the rows of a name still add up to its \
totals. On those rows self_wall_s, p50_s, p95_s, the band and, in runs of several domains, the \
domain columns are empty (not kept per combination). A name without attributes has its one \
row, as before.\n\n\
New columns are added at the end, so scripts that read columns by position keep working.\n\n\
A crashed run (no run_end) is cut where `carina summary` cuts it: at the end of its last \
`power` record, else of its last step; its energy, items, wall time and steps stop there, and \
`complete` is false. Numbers are written in full precision (Rust's shortest round-trip form). \
Exit status: 0, 2 on bad input (a missing path, a directory without run files, an unreadable \
run file), 1 when the output cannot be written.";

/// Output format: CSV is the only one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Comma-separated values with a header line.
    Csv,
}

/// Arguments of `carina export`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = LONG_ABOUT)]
pub struct Args {
    /// Run files or directories (every `*.jsonl` under them).
    #[arg(required = true, value_name = "RUNS")]
    pub paths: Vec<PathBuf>,
    /// One row per (run, step name) instead of one per run.
    #[arg(long)]
    pub steps: bool,
    /// Output file [default: stdout].
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Output format (CSV only).
    #[arg(long, value_enum, default_value_t = Format::Csv)]
    pub format: Format,
}

/// Run-row columns. New ones go at the end, so that scripts reading by position keep working.
pub const RUN_COLUMNS: [&str; 35] = [
    "run_id",
    "job",
    "host",
    "started_at",
    "complete",
    "wall_s",
    "energy_j",
    "energy_kind",
    "energy_low_j",
    "energy_high_j",
    "host_energy_j",
    "host_share",
    "co2e_g",
    "g_per_kwh",
    "zone",
    "items",
    "j_per_item",
    "steps",
    "dropped",
    "scope",
    "path",
    "method",
    "lower_bound",
    "carbon_g_per_kwh",
    "own_cost_cpu_share",
    "own_cost_j",
    "energy_kwh",
    "co2e_kg",
    "cpu_j",
    "dram_j",
    "gpu_j",
    "other_j",
    "cpu_method",
    "dram_method",
    "gpu_method",
];

/// Step-row columns. New ones go at the end, as for [`RUN_COLUMNS`].
pub const STEP_COLUMNS: [&str; 31] = [
    "run_id",
    "job",
    "host",
    "step",
    "count",
    "items",
    "wall_s",
    "self_wall_s",
    "energy_j",
    "self_energy_j",
    "co2e_g",
    "p50_s",
    "p95_s",
    "j_per_item",
    "share",
    "gpu",
    "method",
    "energy_kind",
    "started_at",
    "energy_low_j",
    "energy_high_j",
    "energy_kwh",
    "co2e_kg",
    "cpu_j",
    "dram_j",
    "gpu_j",
    "other_j",
    "cpu_method",
    "dram_method",
    "gpu_method",
    "attrs",
];

/// One CSV field: quoted when it holds a comma, a quote, a line break, or starts or ends with a
/// space; quotes doubled.
pub fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) || s.starts_with(' ') || s.ends_with(' ') {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn line(cells: &[String]) -> String {
    let mut out = cells.iter().map(|c| field(c)).collect::<Vec<_>>().join(",");
    out.push('\n');
    out
}

fn num(x: f64) -> String {
    if x.is_finite() {
        format!("{x}")
    } else {
        String::new()
    }
}

fn opt(x: Option<impl Into<f64>>) -> String {
    x.map_or(String::new(), |x| num(x.into()))
}

/// Step instances the run's figures cover: `run_end.steps`, else (a crashed run) the `step`
/// records up to its cut, or the summaries' counts in a summaries-only file.
fn step_count(v: &RunView) -> u64 {
    if let Some(e) = &v.file.end {
        return e.steps;
    }
    let n = v.steps().count() as u64;
    if n == 0 && v.file.steps.is_empty() {
        v.rows.iter().map(|r| r.count).sum()
    } else {
        n
    }
}

/// The columns energy domains are summed into: `cpu` (`package-N`, `cpu`, `psys`), `dram`
/// (`dram-N`, `memory`), `gpu` (`gpu-N`), and `other` (any other name, e.g. the `other` a file
/// with more than 8 domains sums the rest into).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DomainColumn {
    Cpu,
    Dram,
    Gpu,
    Other,
}

impl DomainColumn {
    /// The column a domain's energy is counted in.
    fn of(domain: &str) -> DomainColumn {
        if domain.starts_with("package-") || domain == "cpu" || domain == "psys" {
            DomainColumn::Cpu
        } else if domain.starts_with("dram-") || domain == "memory" {
            DomainColumn::Dram
        } else if is_gpu_domain(domain) {
            DomainColumn::Gpu
        } else {
            DomainColumn::Other
        }
    }

    const ALL: [DomainColumn; 4] = [
        DomainColumn::Cpu,
        DomainColumn::Dram,
        DomainColumn::Gpu,
        DomainColumn::Other,
    ];
}

/// Energy per domain column (cpu, dram, gpu, other), J: the sum of `by_domain` when the
/// records have it; else, when the run's used sources name a single domain, all of `energy` in that domain's
/// column (a one-domain run writes no `energy_by_domain`); else unknown (empty cells). A column
/// no domain of the run falls in is 0 once anything is known.
fn domain_cells(v: &RunView, by_domain: &[&DomainEnergy], energy: f64) -> Vec<String> {
    let mut sums = [0.0; 4];
    if !by_domain.is_empty() {
        for (name, j) in by_domain.iter().flat_map(|d| d.iter()) {
            let i = DomainColumn::ALL
                .iter()
                .position(|c| *c == DomainColumn::of(name))
                .unwrap_or(3);
            sums[i] += j.0;
        }
    } else {
        let mut names: Vec<&str> = v
            .file
            .start
            .energy_sources
            .iter()
            .filter(|s| s.used)
            .flat_map(|s| s.domains.iter().map(String::as_str))
            .collect();
        names.sort();
        names.dedup();
        match names.as_slice() {
            [one] => {
                let i = DomainColumn::ALL
                    .iter()
                    .position(|c| *c == DomainColumn::of(one))
                    .unwrap_or(3);
                sums[i] = energy;
            }
            _ => return vec![String::new(); 4],
        }
    }
    sums.iter().map(|j| num(*j)).collect()
}

/// How each of the cpu, dram and gpu figures was obtained: the method label of every used
/// source with a domain in that column (`run_end.method.parts`, else derived from the sources),
/// joined with `; `; empty when no source has such a domain.
fn domain_methods(v: &RunView) -> Vec<String> {
    let sources = &v.file.start.energy_sources;
    DomainColumn::ALL[..3]
        .iter()
        .map(|col| {
            let mut labels: Vec<String> = Vec::new();
            for s in sources.iter().filter(|s| s.used) {
                if !s.domains.iter().any(|d| DomainColumn::of(d) == *col) {
                    continue;
                }
                let label = v
                    .method
                    .parts
                    .iter()
                    .find(|p| p.source == s.name)
                    .map(|p| p.label())
                    .unwrap_or_else(|| v.method.label.clone());
                let label = format!("{label} ({})", s.name);
                if !labels.contains(&label) {
                    labels.push(label);
                }
            }
            labels.join("; ")
        })
        .collect()
}

/// J as kWh.
fn kwh(j: f64) -> String {
    num(j / 3.6e6)
}

/// g as kg.
fn kg(g: f64) -> String {
    num(g / 1000.0)
}

/// The run row's cells, in [`RUN_COLUMNS`] order.
fn run_row(v: &RunView) -> Vec<String> {
    let s = &v.file.start;
    let mut cells = vec![
        v.run_id.to_owned(),
        v.job.to_owned(),
        v.host.to_owned(),
        s.started_at.to_string(),
        v.is_complete().to_string(),
        num(v.wall.0),
        num(v.energy.0),
        v.kind.to_string(),
        opt(v.band.map(|b| b.0)),
        opt(v.band.map(|b| b.1)),
        opt(v.host_energy),
        opt(v.host_share()),
        num(v.co2e.0),
        num(s.carbon.g_per_kwh),
        s.carbon.zone.clone().unwrap_or_default(),
        v.items.to_string(),
        opt(v.per_item()),
        step_count(v).to_string(),
        // A crashed run's lost instances are not known (no `run_end`): empty, not 0.
        v.dropped.map_or(String::new(), |d| d.to_string()),
        v.scope.map_or("", |s| s.as_str()).to_owned(),
        v.file.path.display().to_string(),
        v.method.label.clone(),
        v.lower_bound().map_or(String::new(), |b| b.to_string()),
        num(v.g_per_kwh),
        opt(v.own_cost.map(|o| o.cpu_share)),
        opt(v.own_cost.map(|o| o.energy_j())),
        kwh(v.energy.0),
        kg(v.co2e.0),
    ];
    // Domains: `run_end.energy_by_domain`. A crashed run has none: its figures stop at its cut,
    // which no per-domain record covers, so they are known for a one-domain run only.
    let by_domain = v
        .file
        .end
        .as_ref()
        .and_then(|e| e.energy_by_domain.as_ref());
    cells.extend(domain_cells(v, by_domain.as_slice(), v.energy.0));
    cells.extend(domain_methods(v));
    cells
}

/// A step's band and energy by domain: its `step_summary`'s, else (a file without summaries,
/// a crashed run) summed over its `step` records up to the run's cut; the band only when every
/// record has one.
fn step_extras<'a>(v: &RunView<'a>, name: &str) -> (Option<(f64, f64)>, Vec<&'a DomainEnergy>) {
    if !v.file.summaries.is_empty() {
        return match v.file.summaries.iter().find(|s| s.name == name) {
            Some(s) => (
                s.energy_low_j.zip(s.energy_high_j).map(|(l, h)| (l.0, h.0)),
                s.energy_by_domain.iter().collect(),
            ),
            None => (None, Vec::new()),
        };
    }
    let recs: Vec<_> = v.steps().filter(|s| s.name == name).collect();
    let band = recs
        .iter()
        .map(|s| s.energy_low_j.zip(s.energy_high_j))
        .try_fold((0.0, 0.0), |(l, h), b| {
            b.map(|(bl, bh)| (l + bl.0, h + bh.0))
        });
    let domains: Vec<&DomainEnergy> = recs
        .iter()
        .filter_map(|s| s.energy_by_domain.as_ref())
        .collect();
    // Part of the records without domains: the sum would be short, so unknown.
    let domains = if domains.len() == recs.len() {
        domains
    } else {
        Vec::new()
    };
    (band.filter(|_| !recs.is_empty()), domains)
}

/// One combination of attributes of a step name: its attributes as a JSON object, and its
/// instances' count, items, wall (s), energy and self energy (J) and CO2e (g).
struct AttrGroup {
    attrs: String,
    count: u64,
    items: u64,
    wall: f64,
    energy: f64,
    self_energy: f64,
    co2e: f64,
}

/// The combinations of attributes of step `name`: its summary's `by_attrs` when the file has
/// summaries, else its step records (up to the run's cut) grouped by `attrs`. Empty when no
/// instance has attributes.
fn attr_groups(v: &RunView, name: &str) -> Vec<AttrGroup> {
    let json = |a: &carina_runtime::record::StepAttrs| serde_json::to_string(a).unwrap_or_default();
    if !v.file.summaries.is_empty() {
        return v
            .file
            .summaries
            .iter()
            .filter(|s| s.name == name)
            .flat_map(|s| s.by_attrs.iter().flatten())
            .map(|g| AttrGroup {
                attrs: json(&g.attrs),
                count: g.count,
                items: g.items,
                wall: g.wall_s.0,
                energy: g.energy_j.0,
                self_energy: g.self_energy_j.0,
                co2e: g.co2e_g.0,
            })
            .collect();
    }
    let mut by: std::collections::BTreeMap<String, AttrGroup> = std::collections::BTreeMap::new();
    for s in v.steps().filter(|s| s.name == name) {
        let Some(a) = s.attrs.as_ref().filter(|a| !a.is_empty()) else {
            continue;
        };
        let key = json(a);
        let g = by.entry(key.clone()).or_insert(AttrGroup {
            attrs: key,
            count: 0,
            items: 0,
            wall: 0.0,
            energy: 0.0,
            self_energy: 0.0,
            co2e: 0.0,
        });
        g.count += 1;
        g.items = g.items.saturating_add(s.items);
        g.wall += (s.end_s.0 - s.start_s.0).max(0.0);
        g.energy += s.energy_j.0;
        g.self_energy += s.self_energy_j.0;
        g.co2e += s.co2e_g.0;
    }
    by.into_values().collect()
}

/// The step rows of a run, in [`STEP_COLUMNS`] order, one per step name (sorted by name), or,
/// for a name whose instances have attributes, one per combination and one for the rest
/// ([`attr_groups`]).
fn step_rows_of(v: &RunView) -> Vec<Vec<String>> {
    let mut rows: Vec<_> = v.rows.iter().collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    // Rows without their own method (older files, rows rebuilt from step records) take the
    // run's, as `carina summary` words it.
    let methods = v.step_methods();
    let domain_methods = domain_methods(v);
    rows.into_iter()
        .map(|r| {
            let method = r.method.clone().unwrap_or_else(|| {
                methods
                    .iter()
                    .find(|(gpu, _)| *gpu == r.gpu)
                    .map(|(_, m)| m.clone())
                    .unwrap_or_default()
            });
            let (band, domains) = step_extras(v, &r.name);
            let groups = attr_groups(v, &r.name);
            if !groups.is_empty() {
                return attr_rows(v, r, &groups, &method, &domain_methods);
            }
            let mut cells = vec![
                v.run_id.to_owned(),
                v.job.to_owned(),
                v.host.to_owned(),
                r.name.clone(),
                r.count.to_string(),
                r.items.to_string(),
                num(r.wall.0),
                num(r.self_wall.0),
                num(r.energy.0),
                num(r.self_energy.0),
                num(r.co2e.0),
                num(r.p50.0),
                num(r.p95.0),
                opt((r.items > 0).then(|| r.energy / r.items as f64)),
                opt(v.share(r.energy)),
                r.gpu.to_string(),
                method,
                v.kind.to_string(),
                v.file.start.started_at.to_string(),
                opt(band.map(|b| b.0)),
                opt(band.map(|b| b.1)),
                kwh(r.energy.0),
                kg(r.co2e.0),
            ];
            cells.extend(domain_cells(v, &domains, r.energy.0));
            cells.extend(domain_methods.iter().cloned());
            cells.push(String::new());
            vec![cells]
        })
        .collect::<Vec<_>>()
        .concat()
}

/// The rows of a step name whose instances have attributes: one per combination, then one with
/// an empty `attrs` for the rest of the name's totals (when any instance is left), so that the
/// rows add up to the name's totals.
fn attr_rows(
    v: &RunView,
    r: &crate::view::StepRow,
    groups: &[AttrGroup],
    method: &str,
    domain_methods: &[String],
) -> Vec<Vec<String>> {
    let row = |g: &AttrGroup| {
        let mut cells = vec![
            v.run_id.to_owned(),
            v.job.to_owned(),
            v.host.to_owned(),
            r.name.clone(),
            g.count.to_string(),
            g.items.to_string(),
            num(g.wall),
            String::new(),
            num(g.energy),
            num(g.self_energy),
            num(g.co2e),
            String::new(),
            String::new(),
            opt((g.items > 0).then(|| g.energy / g.items as f64)),
            opt(v.share(carina_runtime::Joules(g.energy))),
            r.gpu.to_string(),
            method.to_owned(),
            v.kind.to_string(),
            v.file.start.started_at.to_string(),
            String::new(),
            String::new(),
            kwh(g.energy),
            kg(g.co2e),
        ];
        cells.extend(domain_cells(v, &[], g.energy));
        cells.extend(domain_methods.iter().cloned());
        cells.push(g.attrs.clone());
        cells
    };
    let mut rows: Vec<Vec<String>> = groups.iter().map(row).collect();
    let count: u64 = groups.iter().map(|g| g.count).sum();
    if r.count > count {
        let sum = |f: fn(&AttrGroup) -> f64| groups.iter().map(f).sum::<f64>();
        rows.push(row(&AttrGroup {
            attrs: String::new(),
            count: r.count - count,
            items: r.items.saturating_sub(groups.iter().map(|g| g.items).sum()),
            wall: (r.wall.0 - sum(|g| g.wall)).max(0.0),
            energy: (r.energy.0 - sum(|g| g.energy)).max(0.0),
            self_energy: (r.self_energy.0 - sum(|g| g.self_energy)).max(0.0),
            co2e: (r.co2e.0 - sum(|g| g.co2e)).max(0.0),
        }));
    }
    rows
}

/// The CSV document for `runs`: runs, or (run, step) with `steps`.
pub fn render(runs: &[RunFile], steps: bool) -> String {
    let mut out = if steps {
        line(&STEP_COLUMNS.map(String::from))
    } else {
        line(&RUN_COLUMNS.map(String::from))
    };
    for run in runs {
        let v = RunView::new(run);
        if steps {
            for r in step_rows_of(&v) {
                out.push_str(&line(&r));
            }
        } else {
            out.push_str(&line(&run_row(&v)));
        }
    }
    out
}

/// Runs the command.
pub fn run(args: &Args) -> ExitCode {
    let runs = match load_runs_skipping(&args.paths) {
        Ok((runs, skipped)) => {
            out::skipped_warnings("export", &skipped);
            runs
        }
        Err(e) => {
            out::message("export", e);
            return ExitCode::from(2);
        }
    };
    out::reader_warnings("export", &runs);
    // CSV is data: names are written as they are (RFC 4180 quoting only), for the program
    // that reads it; only the messages on stderr escape them.
    let csv = render(&runs, args.steps);
    match &args.output {
        Some(p) => match out::write_file_atomic(p, csv.as_bytes()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                out::message(
                    "export",
                    format_args!(
                        "error: cannot write {}: {e} (the previous file, if any, is unchanged)",
                        p.display()
                    ),
                );
                ExitCode::from(1)
            }
        },
        None => out::print_data("export", &csv, ExitCode::SUCCESS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_when_needed() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
        assert_eq!(field(""), "");
    }
}
