//! `carina doctor`: what this machine can measure, and how to measure more.
//!
//! Sections: energy sources (every probe, used or not, with the reason and the fix as the probe
//! itself gave them: the fix fits the cause and who runs doctor, and is absent where nothing on
//! this machine would help; a RAPL source whose counters did not advance during detection's
//! liveness check is shown as not used, with the counters and the wait, and its fix says that no
//! permission will help), the
//! estimation model (CPU family, coefficient row, the watts it would use), clocks (the step
//! clock's source and `CLOCK_THREAD_CPUTIME_ID`), the process-share inputs (`/proc/stat`,
//! `/proc/self/stat`) and the `CARINA_*` environment. Exits 0: it reports, it does not judge
//! (1 only when its output cannot be written).

use crate::out;
use carina_runtime::EnergyProbe;
use carina_runtime::format::escape_control;
use carina_runtime::record::SourceId;
use serde::Serialize;
use std::path::Path;
use std::process::ExitCode;

/// Output format of `carina doctor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Aligned text sections.
    #[default]
    Text,
    /// One JSON object.
    Json,
}

/// Arguments of `carina doctor`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// `text` (default) or `json`.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Serialize)]
struct Report {
    sources: Vec<SourceLine>,
    model: ModelLine,
    clocks: Vec<Item>,
    process_share: Vec<Item>,
    environment: Vec<Item>,
}

#[derive(Debug, Serialize)]
struct SourceLine {
    name: String,
    #[serde(skip)]
    id: SourceId,
    status: &'static str,
    kind: &'static str,
    /// Why a source is not used, as a word (`absent`, `permission`, `not-counting`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    cause: Option<&'static str>,
    detail: String,
    fix: Option<String>,
}

#[derive(Debug, Serialize)]
struct ModelLine {
    cpu_vendor: String,
    cpu_family: u32,
    cpu_model: u32,
    cpu_model_name: String,
    logical_cpus: u32,
    microarchitecture: Option<String>,
    coefficient_row: String,
    exact: bool,
    note: String,
    idle_w: Option<f64>,
    max_w: Option<f64>,
    source: String,
    reason: Option<String>,
}

#[derive(Debug, Serialize)]
struct Item {
    name: String,
    value: String,
}

fn item(name: impl Into<String>, value: impl Into<String>) -> Item {
    Item {
        name: name.into(),
        value: value.into(),
    }
}

fn build() -> Report {
    let roots = carina_probes::Roots::default();
    let opts = carina_probes::ModelOptions::default();
    let detection = carina_probes::detect_with(&roots, &opts);
    let mut sources = Vec::new();
    for p in &detection.probes {
        let d = p.describe();
        let mut detail = d.source.clone();
        if !d.domains.is_empty() {
            detail = format!("domains {}; {detail}", d.domains.join(", "));
        }
        if let Some(r) = &d.reason {
            detail.push_str(&format!("; note: {r}"));
        }
        sources.push(SourceLine {
            name: d.name.clone(),
            id: d.id(),
            status: "used",
            kind: d.kind.as_str(),
            cause: None,
            detail,
            fix: None,
        });
    }
    // The probe's own words: the fix was chosen where the cause was met, never looked up here.
    for n in detection.not_chosen {
        sources.push(SourceLine {
            name: n.id.to_string(),
            id: n.id,
            status: "not used",
            kind: n.kind.as_str(),
            cause: Some(n.cause.as_str()),
            detail: n.reason,
            fix: n.fix,
        });
    }
    // Detection lists each source once; keep a stable order, Carina's sources first.
    sources.sort_by_key(|s| s.id.known_index().unwrap_or(SourceId::KNOWN.len()));

    // The estimation model this machine would use, whether or not it is chosen.
    let cpu = carina_probes::machine::read_cpuinfo(&roots.proc);
    let (identity, cpu_err) = match cpu {
        Ok(c) => (c, None),
        Err(e) => (Default::default(), Some(e.to_string())),
    };
    let class = carina_probes::machine::classify(&identity);
    let probe = carina_probes::estimation_model_with(&roots.proc, &roots.sys, &opts);
    let d = probe.describe();
    let mut reason = d.reason.clone();
    if let Some(e) = cpu_err {
        reason = Some(match reason {
            Some(r) => format!("{e}; {r}"),
            None => e,
        });
    }
    let model = ModelLine {
        cpu_vendor: identity.vendor.clone(),
        cpu_family: identity.family,
        cpu_model: identity.model,
        cpu_model_name: identity.model_name.clone(),
        logical_cpus: identity.logical_cpus,
        microarchitecture: class.microarchitecture.map(str::to_owned),
        coefficient_row: format!(
            "{} `{}`: {} W per vCPU idle .. {} W per vCPU at full load",
            class.coefficients.vendor,
            class.coefficients.family,
            class.coefficients.min_w_per_vcpu,
            class.coefficients.max_w_per_vcpu
        ),
        exact: class.exact,
        note: class.note.clone(),
        idle_w: d.idle_w.map(f64::from),
        max_w: d.max_w.map(f64::from),
        source: d.source.clone(),
        reason,
    };

    Report {
        sources,
        model,
        clocks: clocks(),
        process_share: process_share(&roots.proc),
        environment: environment(),
    }
}

fn clocks() -> Vec<Item> {
    let mut out = Vec::new();
    let step_clock = if carina_runtime::clock::Clock::new().is_tsc() {
        "TSC (invariant: CPUID 0x8000_0007 bit 8, the kernel's constant_tsc + nonstop_tsc), \
         calibrated against CLOCK_MONOTONIC"
            .to_owned()
    } else {
        format!(
            "CLOCK_MONOTONIC ({}: no invariant TSC, so steps read the monotonic clock, 20-25 ns)",
            std::env::consts::ARCH
        )
    };
    out.push(item("step clock", step_clock));
    let thread = carina_runtime::cpuclock::this_thread_ns();
    out.push(item(
        "CLOCK_THREAD_CPUTIME_ID",
        match thread {
            Some(ns) => format!(
                "available (this thread: {:.3} ms): energy is split across threads by CPU time",
                ns as f64 / 1e6
            ),
            None => "not available: energy is split across threads by wall time".to_owned(),
        },
    ));
    out.push(item(
        "CLOCK_PROCESS_CPUTIME_ID",
        match carina_runtime::cpuclock::process_ns() {
            Some(ns) => format!("available (this process: {:.3} ms)", ns as f64 / 1e6),
            None => "not available".to_owned(),
        },
    ));
    out
}

fn process_share(proc_root: &Path) -> Vec<Item> {
    let mut out = Vec::new();
    out.push(item(
        format!("{}/stat", proc_root.display()),
        match carina_runtime::procfs::host_cpu(proc_root) {
            Ok(h) => format!(
                "readable: {} CPUs, {} busy of {} total ticks since boot",
                h.cpus, h.busy, h.total
            ),
            Err(e) => format!("NOT readable ({e}): process scope falls back to the whole host"),
        },
    ));
    out.push(item(
        format!("{}/self/stat", proc_root.display()),
        match carina_runtime::procfs::process_cpu_ticks(proc_root) {
            Ok(t) => format!("readable: {t} ticks of CPU time in this process"),
            Err(e) => format!("NOT readable ({e})"),
        },
    ));
    out.push(item(
        "process tree (carina run)",
        match carina_runtime::procfs::tree_cpu_ticks(proc_root, std::process::id()) {
            Ok(t) => format!(
                "readable: /proc/<pid>/stat of the tree (utime+stime+cutime+cstime), {t} ticks \
                 for this process"
            ),
            Err(e) => format!("NOT readable ({e})"),
        },
    ));
    out
}

fn environment() -> Vec<Item> {
    let mut vars: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("CARINA_"))
        .collect();
    vars.sort();
    if vars.is_empty() {
        return vec![item(
            "(none set)",
            "CARINA_DIR, CARINA_DISABLE, CARINA_SCOPE, CARINA_POWERCAP_ROOT, CARINA_RUN_ID, \
             CARINA_JOB are recognised",
        )];
    }
    vars.into_iter().map(|(k, v)| item(k, v)).collect()
}

fn text(r: &Report) -> String {
    let mut s = String::new();
    s.push_str("Energy sources\n");
    let w = r.sources.iter().map(|x| x.name.len()).max().unwrap_or(0);
    for x in &r.sources {
        s.push_str(&format!(
            "  {:<w$}  {:<8}  {:<9}  {}\n",
            x.name,
            x.status,
            x.kind,
            escape_control(&x.detail)
        ));
        if let Some(f) = &x.fix {
            s.push_str(&format!("  {:<w$}  fix: {}\n", "", escape_control(f)));
        }
    }
    let m = &r.model;
    s.push_str("\nEstimation model\n");
    let rows = [
        (
            "cpu",
            format!(
                "{} family {} (0x{:x}) model {} (0x{:x}): {}",
                if m.cpu_vendor.is_empty() {
                    "unknown vendor"
                } else {
                    &m.cpu_vendor
                },
                m.cpu_family,
                m.cpu_family,
                m.cpu_model,
                m.cpu_model,
                m.cpu_model_name
            ),
        ),
        ("logical cpus", m.logical_cpus.to_string()),
        (
            "microarchitecture",
            m.microarchitecture
                .clone()
                .unwrap_or_else(|| "not recognised".into()),
        ),
        (
            "coefficient row",
            format!(
                "{} ({})",
                m.coefficient_row,
                if m.exact { "exact" } else { "nearest" }
            ),
        ),
        ("classification", m.note.clone()),
        (
            "machine watts",
            match (m.idle_w, m.max_w) {
                (Some(i), Some(x)) => format!("{i:.2} W idle .. {x:.2} W at full load"),
                _ => "n/a".into(),
            },
        ),
        ("coefficients", m.source.clone()),
    ];
    push_items(
        &mut s,
        rows.iter()
            .map(|(a, b)| (a.to_string(), b.clone()))
            .chain(m.reason.iter().map(|r| ("note".to_owned(), r.clone()))),
    );
    s.push_str("\nClocks\n");
    push_items(
        &mut s,
        r.clocks.iter().map(|i| (i.name.clone(), i.value.clone())),
    );
    s.push_str("\nProcess share (scope `process`)\n");
    push_items(
        &mut s,
        r.process_share
            .iter()
            .map(|i| (i.name.clone(), i.value.clone())),
    );
    s.push_str("\nEnvironment\n");
    push_items(
        &mut s,
        r.environment
            .iter()
            .map(|i| (i.name.clone(), i.value.clone())),
    );
    s
}

/// Aligned `name  value` lines. Both may quote the machine or the environment (a CPU's model
/// name, a `CARINA_*` variable): escaped.
fn push_items(s: &mut String, items: impl Iterator<Item = (String, String)>) {
    let items: Vec<(String, String)> = items
        .map(|(a, b)| {
            (
                escape_control(&a).into_owned(),
                escape_control(&b).into_owned(),
            )
        })
        .collect();
    let w = items
        .iter()
        .map(|(a, _)| a.chars().count())
        .max()
        .unwrap_or(0);
    for (a, b) in items {
        s.push_str(&format!("  {a:<w$}  {b}\n"));
    }
}

/// Runs the command.
pub fn run(args: &Args) -> ExitCode {
    let report = build();
    match args.format {
        Format::Text => out::print_text("doctor", &text(&report), ExitCode::SUCCESS),
        Format::Json => match serde_json::to_string_pretty(&report) {
            Ok(j) => out::print_json("doctor", &(j + "\n"), ExitCode::SUCCESS),
            Err(e) => {
                out::message("doctor", format_args!("cannot serialise the report: {e}"));
                ExitCode::from(1)
            }
        },
    }
}
