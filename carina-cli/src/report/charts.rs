//! The SVG charts of `carina report`, drawn with maud like the rest of the page: energy per
//! cycle of a job, and a run's power and cumulative energy over time; their axes and the number
//! formats they share with the tables.

use super::analysis::{Analysis, BINS, Timeline, run_wh_per_item};
use carina_runtime::format::{JOULES, SECONDS, Unit, duration, energy, power, sig3};
use carina_runtime::units::Joules;
use maud::{Markup, html};
use std::fmt::{self, Write as _};

/// A number with a fixed count of decimals, written straight into the page (no `String`).
#[derive(Clone, Copy)]
pub(super) struct Fixed(pub(super) f64, pub(super) usize);

impl fmt::Display for Fixed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.*}", self.1, self.0)
    }
}

/// Wh, mWh, µWh or nWh, so per-item figures read without exponents.
pub(super) fn wh_unit(max_wh: f64) -> (&'static str, f64) {
    let a = max_wh.abs();
    if a >= 1.0 || a == 0.0 || !a.is_finite() {
        ("Wh", 1.0)
    } else if a >= 1e-3 {
        ("mWh", 1e-3)
    } else if a >= 1e-6 {
        ("µWh", 1e-6)
    } else {
        ("nWh", 1e-9)
    }
}

/// Bar chart of energy per cycle with the Wh-per-item line.
pub(super) fn cycle_chart(an: &[Analysis]) -> Markup {
    let (w, hgt, l, r, t, b) = (900.0, 220.0, 70.0, 80.0, 24.0, 40.0);
    let pw = w - l - r;
    let ph = hgt - t - b;
    let emax = an.iter().map(|a| a.v.energy.0).fold(0.0, f64::max);
    let (eunit, ediv) = axis_unit(&JOULES, emax);
    let etop = nice_ceil(emax / ediv);
    let whis: Vec<f64> = an.iter().map(run_wh_per_item).collect();
    let wmax = whis
        .iter()
        .copied()
        .filter(|x| x.is_finite())
        .fold(0.0, f64::max);
    let (wunit, wdiv) = wh_unit(wmax);
    let wtop = nice_ceil(wmax / wdiv);
    let slot = pw / an.len() as f64;
    let label_every = (an.len() / 20).max(1);
    // Bars: x, y, height, fill.
    let bars: Vec<(f64, f64, f64, &str)> = an
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let bh = if etop > 0.0 {
                a.v.energy.0 / ediv / etop * ph
            } else {
                0.0
            };
            let fill = if a.v.is_complete() {
                "#63b3ed"
            } else {
                "#feb2b2"
            };
            (l + slot * i as f64, t + ph - bh, bh, fill)
        })
        .collect();
    // The Wh-per-item line, rounded as drawn.
    let points: Vec<(Fixed, Fixed)> = whis
        .iter()
        .enumerate()
        .filter(|(_, w)| w.is_finite() && wtop > 0.0)
        .map(|(i, w)| {
            (
                Fixed(l + slot * i as f64 + slot / 2.0, 1),
                Fixed(t + ph - w / wdiv / wtop * ph, 1),
            )
        })
        .collect();
    let mut polyline = String::new();
    for (x, y) in &points {
        let _ = write!(polyline, "{x},{y} ");
    }
    html! {
        svg class="chart cycles-chart" viewBox={ "0 0 " (w) " " (hgt) } width=(w) height=(hgt)
            role="img" aria-label="energy per cycle" font-size="11" {
            (axes(l, t, pw, ph, etop, &format!("energy ({eunit})"), true))
            @if wtop > 0.0 {
                (right_axis(l + pw, t, ph, wtop, &format!("{wunit} per item")))
            }
            @for (i, (a, &(x, y, bh, fill))) in an.iter().zip(&bars).enumerate() {
                rect x=(Fixed(x + slot * 0.15, 1)) y=(Fixed(y, 1)) width=(Fixed(slot * 0.7, 1))
                    height=(Fixed(bh, 1)) fill=(fill) {
                    title { "cycle " (i + 1) ": " (energy(a.v.energy.0)) " " (a.v.kind_and_method()) }
                }
                @if an.len() <= 40 || i % label_every == 0 {
                    text x=(Fixed(x + slot / 2.0, 1)) y=(Fixed(t + ph + 14.0, 1))
                        text-anchor="middle" fill="#5b6574" { (i + 1) }
                }
            }
            @if !points.is_empty() {
                polyline points=(polyline) fill="none" stroke="#c05621" stroke-width="2" {}
                @for (x, y) in &points {
                    circle cx=(x) cy=(y) r="3" fill="#c05621" {}
                }
            }
            text x=(Fixed(l + pw / 2.0, 1)) y=(Fixed(hgt - 6.0, 1)) text-anchor="middle"
                fill="#1d2430" { "cycle (run, oldest first)" }
        }
        div.legend {
            span { i.sw style="background:#63b3ed" {} "energy per run" }
            span { i.sw style="background:#feb2b2" {} "incomplete run" }
            span { i.sw style="background:#c05621" {} "Wh per item (right axis)" }
        }
    }
}

/// The unit of `ladder` that [`carina_runtime::format`] writes `max` in, and its size: an axis's.
fn axis_unit(ladder: &[Unit], max: f64) -> (&'static str, f64) {
    let u = Unit::pick(ladder, max);
    (u.name, u.size)
}

/// The smallest 1/2/2.5/5 x 10^k at or above `x`.
fn nice_ceil(x: f64) -> f64 {
    if x <= 0.0 || !x.is_finite() {
        return 0.0;
    }
    let p = 10f64.powf(x.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * p >= x * 0.999_999 {
            return m * p;
        }
    }
    10.0 * p
}

/// Frame, grid and left axis from 0 to `top` with 5 ticks.
#[allow(clippy::too_many_arguments)]
fn axes(l: f64, t: f64, pw: f64, ph: f64, top: f64, label: &str, grid: bool) -> Markup {
    html! {
        rect x=(l) y=(t) width=(pw) height=(ph) fill="none" stroke="#d8dde5" {}
        @for k in 0..=4 {
            @let v = top * k as f64 / 4.0;
            @let y = t + ph - ph * k as f64 / 4.0;
            @if grid && k > 0 {
                line x1=(l) x2=(l + pw) y1=(Fixed(y, 1)) y2=(Fixed(y, 1)) stroke="#edf2f7" {}
            }
            text x=(l - 5.0) y=(Fixed(y + 4.0, 1)) text-anchor="end" fill="#5b6574" { (sig3(v)) }
        }
        text transform={ "translate(14 " (Fixed(t + ph / 2.0, 1)) ") rotate(-90)" }
            text-anchor="middle" fill="#1d2430" { (label) }
    }
}

fn right_axis(x: f64, t: f64, ph: f64, top: f64, label: &str) -> Markup {
    html! {
        @for k in 0..=4 {
            @let v = top * k as f64 / 4.0;
            @let y = t + ph - ph * k as f64 / 4.0;
            text x=(x + 5.0) y=(Fixed(y + 4.0, 1)) fill="#5b6574" { (sig3(v)) }
        }
        @let (lx, ly) = (Fixed(x + 64.0, 1), Fixed(t + ph / 2.0, 1));
        text transform={ "translate(" (lx) " " (ly) ") rotate(90)" } text-anchor="middle"
            fill="#1d2430" { (label) }
    }
}

/// The power and cumulative energy chart of one run, its legend and where its figures come from
/// (the section's heading is the page's).
pub(super) fn timeline(a: &Analysis) -> Markup {
    let kind = a.v.kind_tag();
    if a.span <= 0.0 || a.bins.iter().all(|&e| e == 0.0) {
        return html! {
            p.note { "No energy over time to plot." }
        };
    }
    let (w, hgt, l, r, t, b) = (900.0, 280.0, 70.0, 80.0, 16.0, 44.0);
    let pw = w - l - r;
    let ph = hgt - t - b;
    let bw = a.span / BINS as f64;
    let watts: Vec<f64> = a.bins.iter().map(|e| e / bw).collect();
    let pmax = watts.iter().copied().fold(0.0, f64::max);
    let ptop = nice_ceil(pmax);
    let total: f64 = a.bins.iter().sum();
    let (eunit, ediv) = axis_unit(&JOULES, total);
    let etop = nice_ceil(total / ediv);
    let (tunit, tdiv) = axis_unit(&SECONDS, a.span);
    let xs = |sec: f64| l + (sec / a.span).clamp(0.0, 1.0) * pw;
    // Control spans: each mode from its change to the next one (or the end of the run).
    let mut ctl: Vec<_> = a.v.file.controls.iter().collect();
    ctl.sort_by(|x, y| x.t_s.total_cmp(&y.t_s));
    let spans: Vec<_> = ctl
        .iter()
        .enumerate()
        .map(|(k, c)| {
            let end = ctl.get(k + 1).map_or(a.span, |n| n.t_s.into());
            let color = match c.mode.as_str() {
                "peak" => Some("#f6ad55"),
                "paused" => Some("#a0aec0"),
                _ => None,
            };
            (c, xs(c.t_s.into()), xs(end), color)
        })
        .collect();
    let has_mode = |m: &str| ctl.iter().any(|c| c.mode.as_str() == m);
    // The power area and the cumulative energy line: SVG path data, numbers only.
    let mut area = format!("M{l:.1},{:.1}", t + ph);
    let mut cum = format!("M{l:.1},{:.1}", t + ph);
    let mut acc = 0.0;
    for (k, &p) in watts.iter().enumerate() {
        let x0 = l + pw * k as f64 / BINS as f64;
        let x1 = l + pw * (k + 1) as f64 / BINS as f64;
        let y = if ptop > 0.0 {
            t + ph - p / ptop * ph
        } else {
            t + ph
        };
        let _ = write!(area, " L{x0:.1},{y:.1} L{x1:.1},{y:.1}");
        acc += a.bins[k];
        let cy = if etop > 0.0 {
            t + ph - acc / ediv / etop * ph
        } else {
            t + ph
        };
        let _ = write!(cum, " L{x1:.1},{cy:.1}");
    }
    let _ = write!(area, " L{:.1},{:.1} Z", l + pw, t + ph);
    let note = match a.timeline {
        Timeline::Flat => {
            "No power or step records: a flat line at the run's mean power (run totals)."
                .to_string()
        }
        Timeline::Power(n) => format!(
            "{} bins of {}, from the run's {} power record(s): all of the run's energy in its \
             scope, inside steps or not.",
            BINS,
            duration(bw),
            n
        ),
        Timeline::Steps => format!(
            "{} bins of {}; each step's self energy is spread evenly over its span{}.",
            BINS,
            duration(bw),
            match a.v.unattributed {
                Some(u) if u > Joules::ZERO =>
                    format!("; {} unattributed to any step is not plotted", energy(u.0)),
                _ => String::new(),
            }
        ),
    };
    let ttop = a.span / tdiv;
    html! {
        svg class="chart timeline" viewBox={ "0 0 " (w) " " (hgt) } width=(w) height=(hgt)
            role="img" aria-label="power and cumulative energy over time" font-size="11" {
            // Shaded control spans, and a dashed line at each mode change.
            @for &(c, x0, x1, color) in &spans {
                @if let (Some(col), true) = (color, x1 > x0) {
                    rect.ctl x=(Fixed(x0, 1)) y=(t) width=(Fixed(x1 - x0, 1)) height=(ph)
                        fill=(col) fill-opacity="0.28" {
                        title {
                            (c.mode) " from " (sig3(c.t_s.into())) " s: " (c.allowed) " allowed"
                            @if let Some(r) = &c.reason {
                                " (" (r) ")"
                            }
                        }
                    }
                }
                line x1=(Fixed(x0, 1)) x2=(Fixed(x0, 1)) y1=(t) y2=(t + ph) stroke="#dd6b20"
                    stroke-dasharray="3 3" {
                    title { (c.policy) " → " (c.mode) " (allowed " (c.allowed) ")" }
                }
            }
            (axes(l, t, pw, ph, ptop, "power (W)", true))
            (right_axis(l + pw, t, ph, etop, &format!("cumulative energy ({eunit})")))
            @for k in 0..=5 {
                text x=(Fixed(l + pw * k as f64 / 5.0, 1)) y=(Fixed(t + ph + 14.0, 1))
                    text-anchor="middle" fill="#5b6574" { (sig3(ttop * k as f64 / 5.0)) }
            }
            text x=(Fixed(l + pw / 2.0, 1)) y=(Fixed(hgt - 8.0, 1)) text-anchor="middle"
                fill="#1d2430" { "time since run start (" (tunit) ")" }
            path.power d=(area) fill="#63b3ed" fill-opacity="0.55" stroke="#2b6cb0"
                stroke-width="1" {}
            path.cumulative d=(cum) fill="none" stroke="#2f855a" stroke-width="2" {}
        }
        div.legend {
            span {
                i.sw style="background:#63b3ed" {}
                "power, W (" (kind) "; peak bin " (power(pmax)) ")"
            }
            span {
                i.sw style="background:#2f855a" {}
                "cumulative energy, " (eunit) " (" (kind) "; " (energy(total)) " plotted)"
            }
            @if has_mode("peak") {
                span { i.sw style="background:#f6ad55" {} "peak window" }
            }
            @if has_mode("paused") {
                span { i.sw style="background:#a0aec0" {} "paused" }
            }
            @if !ctl.is_empty() {
                span { "dashed: " (ctl.len()) " mode change(s)" }
            }
        }
        p.note { (note) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_ceil_rounds_up() {
        assert_eq!(nice_ceil(0.0), 0.0);
        assert_eq!(nice_ceil(7.3), 10.0);
        assert_eq!(nice_ceil(180.0), 200.0);
        assert_eq!(nice_ceil(2.2), 2.5);
    }
}
