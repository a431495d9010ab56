//! Rendering the comparison of `carina compare` for a terminal (an aligned table) and for a pull
//! request (Markdown, with every string from a run file escaped).

use super::build::{Report, RunInfo, fmt_share};
use crate::summary::table;
use carina_runtime::format::{duration_fine, energy_fine, escape_control, signed};

/// The host share line of the text and Markdown outputs.
fn share_line(r: &Report) -> String {
    let mut line = format!(
        "base {} vs candidate {}",
        share_words(&r.base),
        share_words(&r.candidate)
    );
    if r.shares_differ {
        line.push_str(
            " -- WARNING: the shares differ a lot; energy differences may come from neighbours, \
             not the code",
        );
    }
    line
}

/// `0.49 (host 232.7 J, scope process)`, or `n/a (...)`.
fn share_words(r: &RunInfo) -> String {
    let host = r.host_energy_j.map_or("host energy n/a".into(), |j| {
        format!("host {}", energy_fine(j))
    });
    format!("{} ({host}, scope {})", fmt_share(r.host_share), r.scope)
}

/// How the two sides' energy was obtained, in words: `estimated (model x cpu-time share)`
/// when both agree. The method is always said, so a counter times a share never reads as
/// `measured` alone.
fn kinds(r: &Report) -> String {
    if r.base.energy_method == r.candidate.energy_method {
        r.base.energy_method.clone()
    } else {
        format!(
            "{} (base) vs {} (candidate)",
            r.base.energy_method, r.candidate.energy_method
        )
    }
}

/// A percentage to at most two decimals (99.1667 reads 99.17; 97.5 stays 97.5).
fn two(p: f64) -> f64 {
    (p * 100.0).round() / 100.0
}

/// The method in a few words, for the text and Markdown outputs.
fn method_words(r: &Report) -> String {
    let conf = if r.gated_intervals > r.gate.len() {
        format!(
            "intervals at {}% for (run), {}% for each step ({} gated intervals together at 95%)",
            two(r.run_confidence_pct),
            two(r.step_confidence_pct),
            r.gated_intervals
        )
    } else {
        format!("intervals at {}%", two(r.run_confidence_pct))
    };
    if r.method == "instances" {
        format!(
            "one run per side: run-to-run variance is unknown, assumed {}% for the run (--run-noise; \
             a step's: that over the square root of its share), added to the step instances' \
             own; {conf} (give several runs per side, 3 or more, for a CI gate that measures \
             the noise)",
            r.run_noise_pct
        )
    } else {
        format!(
            "{} base vs {} candidate runs: t-intervals over runs (each run's figure per item, \
             on a log scale; the run-to-run noise measured from both sides' runs, with {}% \
             (--run-noise) as a prior of {} degrees of freedom); {conf}",
            r.base_runs.len(),
            r.candidate_runs.len(),
            r.run_noise_pct,
            super::stats::PRIOR_DF
        )
    }
}

fn fmt_pct(p: Option<f64>) -> String {
    match p {
        Some(p) if p.is_finite() => format!("{}%", signed(p, 1)),
        Some(_) => "new".into(),
        None => "-".into(),
    }
}

fn fmt_ci(l: Option<f64>, h: Option<f64>) -> String {
    match (l, h) {
        (Some(l), Some(h)) => format!("[{}, {}]%", signed(l, 1), signed(h, 1)),
        _ => "-".into(),
    }
}

fn opt(x: Option<f64>, f: fn(f64) -> String) -> String {
    x.map_or("-".into(), f)
}

fn rows(report: &Report) -> Vec<Vec<String>> {
    report
        .steps
        .iter()
        .map(|s| {
            let unit = match s.unit {
                "item" => "",
                "run" => " (per run)",
                _ => " (per instance)",
            };
            vec![
                format!("{}{unit}", s.name),
                opt(s.base_j_per_item, energy_fine),
                opt(s.cand_j_per_item, energy_fine),
                fmt_pct(s.change_pct),
                fmt_ci(s.ci_low_pct, s.ci_high_pct),
                opt(s.base_s_per_item, duration_fine),
                opt(s.cand_s_per_item, duration_fine),
                fmt_pct(s.time_change_pct),
                fmt_ci(s.time_ci_low_pct, s.time_ci_high_pct),
                s.verdict.to_string(),
                s.note.clone().unwrap_or_default(),
            ]
        })
        .collect()
}

const HEADERS: [&str; 11] = [
    "step",
    "base energy/item",
    "cand energy/item",
    "energy change",
    "CI",
    "base time/item",
    "cand time/item",
    "time change",
    "time CI",
    "verdict",
    "note",
];

/// `PATH (job J, run R)` for one run, `N runs (job J): PATH, PATH...` for several.
fn side_words(one: &RunInfo, all: &[RunInfo]) -> String {
    if all.len() == 1 {
        format!("{} (job {}, run {})", one.path, one.job, one.run_id)
    } else {
        format!("{} runs (job {}): {}", all.len(), one.job, one.path)
    }
}

pub(super) fn render_text(r: &Report) -> String {
    let mut out = format!(
        "base:      {}\ncandidate: {}\nthreshold: {}%\ngate:      {} per item (time per item \
         shown either way)\nmethod:    {}\n\
         energy:    {}; per item in J (uJ, mJ), time per item in s (us, ms)\n\
         host share: {}\n\n",
        escape_control(&side_words(&r.base, &r.base_runs)),
        escape_control(&side_words(&r.candidate, &r.candidate_runs)),
        r.threshold_pct,
        r.gate.join(" and "),
        method_words(r),
        escape_control(&kinds(r)),
        escape_control(&share_line(r))
    );
    // Step names and notes come from the run files: escaped before the widths are measured.
    let cells: Vec<Vec<String>> = rows(r)
        .into_iter()
        .map(|row| {
            row.into_iter()
                .map(|c| escape_control(&c).into_owned())
                .collect()
        })
        .collect();
    out.push_str(&table(&HEADERS, &cells));
    out.push('\n');
    out.push_str(&format!("{}: {}\n", r.verdict, escape_control(&r.headline)));
    out
}

/// Escapes a string from a run file (a step name, run id, job, warning) for Markdown text, so
/// that it renders as itself on GitHub: HTML is neutralised by entities, and the characters that
/// start emphasis, code, links and images, headings, strikethrough, math or a table cell are
/// backslash-escaped. Line breaks become spaces, since one would end the table row; other
/// control characters render as their visible escape (`\x1b`, as on the terminal). The result
/// is not meant for a code span, where neither entities nor escapes are decoded.
fn md_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '#' | '~' | '$' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' | '\t' => out.push(' '),
            // `\x1b` with its backslash escaped, so that it renders as written.
            c if c.is_control() => {
                out.push('\\');
                out.push_str(&escape_control(c.encode_utf8(&mut [0; 4])));
            }
            c => out.push(c),
        }
    }
    out
}

pub(super) fn render_markdown(r: &Report) -> String {
    // The headline names the regressed steps, so it is escaped as a whole; its own text
    // (figures, `->`) renders the same escaped.
    let mut out = format!(
        "**carina compare: {}.** {}\n\n",
        r.verdict,
        md_escape(&r.headline)
    );
    let ids = |one: &RunInfo, all: &[RunInfo]| {
        if all.len() == 1 {
            md_escape(&one.run_id)
        } else {
            format!("{} runs ({})", all.len(), md_escape(&one.run_id))
        }
    };
    // No code spans around the ids: an escape inside one is shown, not decoded.
    out.push_str(&format!(
        "Base {} vs candidate {} (job {}), threshold {}%, gate {}; {}; energy {}.\n\n",
        ids(&r.base, &r.base_runs),
        ids(&r.candidate, &r.candidate_runs),
        md_escape(&r.candidate.job),
        r.threshold_pct,
        r.gate.join(" and "),
        method_words(r),
        md_escape(&kinds(r))
    ));
    // The scopes come from the run files: escaped like the other quoted strings.
    out.push_str(&format!("Host share: {}.\n\n", md_escape(&share_line(r))));
    out.push_str(&format!("| {} |\n", HEADERS.join(" | ")));
    out.push('|');
    for (i, _) in HEADERS.iter().enumerate() {
        out.push_str(if i == 0 || i >= 9 {
            " --- |"
        } else {
            " ---: |"
        });
    }
    out.push('\n');
    for row in rows(r) {
        // The step name and the note carry text from the run files; the other cells are figures
        // and verdicts written here, left as they are so the raw table stays readable.
        let last = row.len() - 1;
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == 0 || i == last {
                    md_escape(c)
                } else {
                    c.clone()
                }
            })
            .collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    for w in &r.warnings {
        out.push_str(&format!("\nWarning: {}\n", md_escape(w)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_escape_neutralises_html_and_formatting() {
        assert_eq!(
            md_escape("<script>alert(1)</script>"),
            "&lt;script&gt;alert(1)&lt;/script&gt;"
        );
        assert_eq!(
            md_escape("a|b `c` *d* _e_ [f] #g & \\"),
            "a\\|b \\`c\\` \\*d\\* \\_e\\_ \\[f\\] \\#g &amp; \\\\"
        );
        assert_eq!(md_escape("two\nlines"), "two lines");
        assert_eq!(md_escape("a\x1b[2Jb\x07"), "a\\\\x1b\\[2Jb\\\\x07");
        assert_eq!(md_escape("plain-name 1.5 mJ"), "plain-name 1.5 mJ");
    }
}
