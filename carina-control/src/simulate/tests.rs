//! The simulator as a whole: the published case, conservation of items and energy, deadlines,
//! inputs, and the sensitivity table of `docs/CONTROL.md`.

use super::weekday_peak::weekday;
use super::*;
use crate::policy::Policy;
use crate::{Calendar, Slot};
use jiff::Timestamp;

#[test]
fn a_horizon_beyond_ten_years_is_refused_at_once() {
    let e = Profile::new(10, 1e9, 5.0).unwrap_err().to_string();
    assert!(e.contains("baseline_hours") && e.contains("87600"), "{e}");
    assert!(Profile::new(10, 87_600.0, 5.0).is_ok());
}

/// The published case: the first workflow, 1.48 million items, 180.30 h and 48.67 kWh at
/// baseline (mean 270 W).
fn published() -> Profile {
    Profile::new(1_480_000, 180.30, 48.67).unwrap()
}

fn compare_default(profile: &Profile, g: f64) -> Vec<Report> {
    let cal = WeekdayPeak::default();
    let int = ConstantIntensity(g);
    let s = Scenario::new(profile, &cal, &int);
    s.compare(&Policy::STANDARD.map(Into::into)).unwrap()
}

fn find<'r>(reports: &'r [Report], name: &str) -> &'r Report {
    reports.iter().find(|r| r.outcome.name() == name).unwrap()
}

#[test]
fn published_case_baseline() {
    let p = published();
    let r = compare_default(&p, 448.0);
    let b = &find(&r, "baseline").outcome;
    assert!(
        (b.energy_kwh / 48.67 - 1.0).abs() < 0.005,
        "{}",
        b.energy_kwh
    );
    assert!(
        (b.makespan_h / 180.30 - 1.0).abs() < 0.005,
        "{}",
        b.makespan_h
    );
    assert!((b.co2e_kg - 21.8).abs() <= 0.1, "{}", b.co2e_kg);
    assert_eq!(b.changes, 0);
    assert_eq!(b.paused_h, 0.0);
    assert!((b.mean_w() - 269.94).abs() < 0.1, "{}", b.mean_w());
}

#[test]
fn published_case_policies() {
    let p = published();
    let r = compare_default(&p, 448.0);
    let boost = find(&r, "offpeak-boost");
    assert!(
        (-15.0..=-5.0).contains(&boost.energy_delta_pct),
        "boost energy {:+.2} %",
        boost.energy_delta_pct
    );
    assert!(
        (3.0..=12.0).contains(&boost.makespan_delta_pct),
        "boost makespan {:+.2} %",
        boost.makespan_delta_pct
    );
    let throttle = find(&r, "throttle");
    assert!(
        throttle.energy_delta_pct > 0.0,
        "throttle energy {:+.2} %",
        throttle.energy_delta_pct
    );
    assert!(throttle.makespan_delta_pct > 0.0);
    // With a constant intensity, CO2e follows energy.
    assert!((boost.co2e_delta_pct - boost.energy_delta_pct).abs() < 1e-9);
    // Moving energy out of peak windows makes it cheaper per kWh.
    let b = &find(&r, "baseline").outcome;
    assert!(boost.outcome.cost / boost.outcome.energy_kwh < b.cost / b.energy_kwh);
    assert!(boost.outcome.peak_kwh < b.peak_kwh);
    let defer = find(&r, "defer");
    assert_eq!(defer.outcome.peak_kwh - defer.outcome.sleep_kwh, 0.0);
    assert!(defer.makespan_delta_pct > boost.makespan_delta_pct);
}

#[test]
fn every_item_is_done_and_energy_adds_up() {
    let p = published();
    for r in compare_default(&p, 448.0) {
        let o = &r.outcome;
        assert!(
            (o.items_done / p.items as f64 - 1.0).abs() < 1e-9,
            "{}",
            o.name()
        );
        let parts = o.idle_kwh + o.active_kwh + o.sleep_kwh;
        assert!((parts - o.energy_kwh).abs() < 1e-9, "{}", o.name());
        assert!((o.running_h + o.paused_h - o.makespan_h).abs() < 1e-9);
        assert!(o.ramp_kwh <= o.idle_kwh + o.active_kwh);
    }
    // Counting items independently, without warm-ups: the hours spent at each worker count
    // times that count's throughput add up to the profile's items, for every policy.
    let cal = WeekdayPeak::default();
    let int = ConstantIntensity(448.0);
    let machine = MachineModel {
        ramp_s: 0.0,
        ..Default::default()
    };
    let s = Scenario {
        machine,
        ..Scenario::new(&p, &cal, &int)
    };
    let rates = machine.calibrate(&p).unwrap();
    for policy in Policy::STANDARD {
        let o = s.run(policy).unwrap();
        let items: f64 = o
            .hours_at
            .iter()
            .map(|(w, h)| rates.items_per_s(*w) * h * 3600.0)
            .sum();
        assert!(
            (items / p.items as f64 - 1.0).abs() < 1e-9,
            "{policy}: {items}"
        );
        let hours: f64 = o.hours_at.iter().map(|(_, h)| h).sum();
        assert!((hours - o.makespan_h).abs() < 1e-9);
    }
}

#[test]
fn calibration_reproduces_the_profile() {
    let p = published();
    let m = MachineModel::default();
    let c = m.calibrate(&p).unwrap();
    let mean = p.mean_w();
    assert!((c.power_w(8) - mean).abs() < 1e-9);
    assert!((c.idle_w - 0.4 * mean).abs() < 1e-9);
    assert!((c.sleep_w - 0.2 * c.idle_w).abs() < 1e-9);
    // More workers amortize idle power: less energy per item at 12 than at 8, more at 4.
    assert!(c.joules_per_item(12) < c.joules_per_item(8));
    assert!(c.joules_per_item(4) > c.joules_per_item(8));
}

#[test]
fn defer_respects_its_deadline() {
    let p = published();
    let cal = WeekdayPeak::default();
    let int = ConstantIntensity(448.0);
    let s = Scenario::new(&p, &cal, &int);
    let free = s.run(Policy::Defer).unwrap();
    assert!(free.makespan_h > 250.0, "{}", free.makespan_h);
    assert_eq!(free.deadline_met, None);
    for deadline_h in [190.0, 200.0, 230.0] {
        let o = s
            .run(SimSpec::with_deadline_hours(Policy::Defer, deadline_h))
            .unwrap();
        // Rescue starts when the remaining work at nominal concurrency just fits: the
        // last item is done at the deadline (to floating-point rounding).
        assert!(
            (o.makespan_h - deadline_h).abs() < 1e-9,
            "{deadline_h}: {}",
            o.makespan_h
        );
        assert_eq!(o.deadline_met, Some(true));
        assert!(o.rescued_at_h.is_some());
        assert!(o.makespan_h > 180.30);
        assert!((o.items_done / p.items as f64 - 1.0).abs() < 1e-9);
    }
    for bad in [0.0, -1.0, f64::NAN] {
        let e = s
            .run(SimSpec::with_deadline_hours(Policy::Defer, bad))
            .unwrap_err();
        assert!(
            matches!(
                e,
                SimError::Invalid {
                    field: "deadline",
                    ..
                }
            ),
            "{e}"
        );
    }
    let o = s
        .run(SimSpec::with_deadline_hours(Policy::Defer, f64::INFINITY))
        .unwrap();
    assert_eq!(o.deadline_met, Some(true));
    // Stepped by the minute (a deadline) or crossed window by window (none): equal to rounding.
    assert!((o.makespan_h - free.makespan_h).abs() < 1e-9 * free.makespan_h);
    // A deadline shorter than the baseline cannot be met: as for the governor, rescue is
    // due from the start (the work at nominal concurrency already ends after the
    // deadline), so the policy never pauses, and the outcome says the deadline is missed.
    let o = s
        .run(SimSpec::with_deadline_hours(Policy::Defer, 100.0))
        .unwrap();
    assert_eq!(o.deadline_met, Some(false));
    assert_eq!(o.rescued_at_h, Some(0.0));
    assert_eq!(o.paused_h, 0.0);
    assert!((o.makespan_h - 180.30).abs() < 0.01, "{}", o.makespan_h);
    // Boost with a deadline between its free makespan and the baseline's.
    let o = s
        .run(SimSpec::with_deadline_hours(Policy::OFFPEAK_BOOST, 185.0))
        .unwrap();
    assert_eq!(o.deadline_met, Some(true), "{}", o.makespan_h);
    // The governor's rule judges the remaining work at nominal concurrency, so a deadline
    // after boost's own makespan still rescues it; it then runs 8 workers in peak (12
    // off-peak) and finishes early.
    let free = s.run(Policy::OFFPEAK_BOOST).unwrap();
    assert!(free.makespan_h < 200.0, "{}", free.makespan_h);
    let o = s
        .run(SimSpec::with_deadline_hours(Policy::OFFPEAK_BOOST, 200.0))
        .unwrap();
    assert!(o.rescued_at_h.is_some());
    assert!(o.makespan_h < free.makespan_h, "{}", o.makespan_h);
    let counts: Vec<u32> = o.hours_at.iter().map(|(w, _)| *w).collect();
    assert_eq!(counts, [0, 8, 12]);
    // Rescue is sticky: after it, nothing pauses again.
    let rescued = o.rescued_at_h.unwrap();
    assert!(o.paused_h <= rescued, "{} > {rescued}", o.paused_h);
    // A policy that keeps running below nominal (throttle) is rescued on the estimate of
    // the step's start, slightly early: it meets the deadline.
    let o = s
        .run(SimSpec::with_deadline_hours(Policy::THROTTLE, 200.0))
        .unwrap();
    assert!(o.rescued_at_h.is_some());
    assert!(
        o.makespan_h <= 200.0 && o.makespan_h > 199.9,
        "{}",
        o.makespan_h
    );
}

#[test]
fn time_varying_intensity_is_integrated() {
    // 24 h at a constant 1 kW, from Monday 00:00 UTC: 24 kWh; 100 g/kWh for 00-12 UTC and
    // 500 for 12-24 gives 12 * 100 + 12 * 500 = 7200 g.
    let p = Profile::new(1000, 24.0, 24.0).unwrap();
    let cal = WeekdayPeak::default();
    let mut hours = [100.0; 24];
    hours[12..].fill(500.0);
    let int = HourlyIntensity { g_per_kwh: hours };
    let s = Scenario::new(&p, &cal, &int);
    let o = s.run(Policy::Baseline).unwrap();
    assert!((o.energy_kwh - 24.0).abs() < 1e-9);
    assert!((o.co2e_kg - 7.2).abs() < 1e-9, "{}", o.co2e_kg);
    // A closure works too; a linear ramp in time integrates to its midpoint value.
    let start = default_start().as_second();
    let ramp = move |t: Timestamp| (t.as_second() - start) as f64 / 3600.0 * 10.0;
    let s = Scenario::new(&p, &cal, &ramp);
    let o = s.run(Policy::Baseline).unwrap();
    assert!(
        (o.co2e_kg - 24.0 * 120.0 / 1000.0).abs() < 1e-3,
        "{}",
        o.co2e_kg
    );
    // Leaving peak hours also leaves dirty hours where they coincide (the example in
    // docs/CONTROL.md): 600 g/kWh 08-20 UTC, 200 otherwise.
    let p = published();
    let mut day = [200.0; 24];
    day[8..20].fill(600.0);
    let int = HourlyIntensity { g_per_kwh: day };
    let s = Scenario::new(&p, &cal, &int);
    let r = s.compare(&Policy::STANDARD.map(Into::into)).unwrap();
    let round1 = |x: f64| (x * 10.0).round() / 10.0;
    assert_eq!((r[0].outcome.co2e_kg * 100.0).round() / 100.0, 19.27);
    let co2: Vec<f64> = r.iter().map(|x| round1(x.co2e_delta_pct)).collect();
    assert_eq!(co2, [0.0, 1.4, -33.0, -25.3]);
    assert!(r[3].co2e_delta_pct < r[3].energy_delta_pct - 10.0);
}

#[test]
fn tariffs_come_from_the_calendar_or_the_defaults() {
    struct Flat;
    impl Calendar for Flat {
        fn slot(&self, _t: Timestamp) -> Slot {
            Slot {
                peak: true,
                tariff_per_kwh: Some(0.5),
            }
        }
        fn next_change(&self, _t: Timestamp) -> Option<Timestamp> {
            None
        }
    }
    let p = Profile::new(100, 10.0, 2.0).unwrap();
    let int = ConstantIntensity(0.0);
    let s = Scenario::new(&p, &Flat, &int);
    let o = s.run(Policy::Baseline).unwrap();
    assert!((o.cost - 1.0).abs() < 1e-9);
    assert_eq!(o.peak_kwh, o.energy_kwh);
    // Defer under an always-peak calendar never runs.
    let e = s.run(Policy::Defer).unwrap_err();
    assert!(
        matches!(
            e,
            SimError::NoProgress {
                policy: "defer",
                ..
            }
        ),
        "{e}"
    );
    // ... unless a deadline rescues it.
    let o = s
        .run(SimSpec::with_deadline_hours(Policy::Defer, 48.0))
        .unwrap();
    assert_eq!(o.deadline_met, Some(true));
    // Baseline under the default calendar pays the default tariffs: 60 of the week's 168 h
    // are peak.
    let p = Profile::new(100, 168.0, 168.0).unwrap();
    let cal = WeekdayPeak::default();
    let o = Scenario::new(&p, &cal, &int).run(Policy::Baseline).unwrap();
    assert!(
        (o.cost - (60.0 * 0.30 + 108.0 * 0.18)).abs() < 1e-6,
        "{}",
        o.cost
    );
    assert!((o.peak_kwh - 60.0).abs() < 1e-9);
}

#[test]
fn weekday_peak_calendar() {
    let cal = WeekdayPeak::default();
    let at = |s: &str| s.parse::<Timestamp>().unwrap();
    let peak = |s: &str| cal.slot(at(s)).peak;
    assert!(!peak("2024-01-08T07:59:59Z")); // Monday
    assert!(peak("2024-01-08T08:00:00Z"));
    assert!(peak("2024-01-12T19:59:59Z")); // Friday
    assert!(!peak("2024-01-12T20:00:00Z"));
    assert!(!peak("2024-01-13T12:00:00Z")); // Saturday
    assert!(!peak("2024-01-14T12:00:00Z")); // Sunday
    assert_eq!(cal.slot(at("2024-01-08T09:00:00Z")).tariff_per_kwh, None);
    let next = |s: &str| cal.next_change(at(s)).unwrap();
    assert_eq!(next("2024-01-08T00:00:00Z"), at("2024-01-08T08:00:00Z"));
    assert_eq!(next("2024-01-08T08:00:00Z"), at("2024-01-08T20:00:00Z"));
    assert_eq!(next("2024-01-12T20:00:00Z"), at("2024-01-15T08:00:00Z"));
    assert_eq!(next("2024-01-13T05:00:00Z"), at("2024-01-15T08:00:00Z"));
    assert_eq!(cal.describe(), "Mon-Fri 08:00-20:00 UTC");
    assert_eq!(weekday(default_start().as_second() / 86_400), 0);
}

#[test]
fn workers_are_what_the_governor_allows() {
    for (name, policy) in Policy::NAMES.iter().zip(Policy::STANDARD) {
        assert_eq!(name.parse::<Policy>().unwrap(), policy);
    }
    assert!("fast".parse::<Policy>().is_err());
    let m = MachineModel::default();
    let peak = Slot {
        peak: true,
        tariff_per_kwh: None,
    };
    let off = Slot {
        peak: false,
        tariff_per_kwh: None,
    };
    let w = |p: Policy, slot, rescue| m.workers(&p, slot, rescue);
    assert_eq!(w(Policy::THROTTLE, peak, false), 4);
    assert_eq!(w(Policy::THROTTLE, off, false), 8);
    assert_eq!(w(Policy::OFFPEAK_BOOST, off, false), 12);
    assert_eq!(w(Policy::OFFPEAK_BOOST, peak, false), 0);
    assert_eq!(w(Policy::Defer, peak, false), 0);
    // Rounding is the governor's: up, and a throttle keeps at least one worker.
    let tiny = Policy::throttle(0.01).unwrap();
    assert_eq!(w(tiny, peak, false), 1);
    let third = Policy::throttle(1.0 / 3.0).unwrap();
    assert_eq!(w(third, peak, false), 3, "8 / 3 rounds up");
    let boost = Policy::offpeak_boost(1.3, 0.2).unwrap();
    assert_eq!(w(boost, off, false), 11, "10.4 rounds up");
    assert_eq!(w(boost, peak, false), 2, "1.6 rounds up");
    // Capped at the machine's max workers.
    let huge = Policy::offpeak_boost(5.0, 0.0).unwrap();
    assert_eq!(w(huge, off, false), 16);
    assert_eq!(w(huge, off, true), 16);
    // Rescue: at least nominal, never less than the policy allows.
    assert_eq!(w(huge, peak, true), 8);
    assert_eq!(w(Policy::Defer, peak, true), 8);
    assert_eq!(w(Policy::OFFPEAK_BOOST, off, true), 12);
    for p in Policy::STANDARD
        .into_iter()
        .chain([tiny, third, boost, huge])
    {
        for slot in [peak, off] {
            for rescue in [false, true] {
                assert_eq!(
                    w(p, slot, rescue),
                    p.allowed(slot, 8, rescue).min(16),
                    "{p} {slot:?} {rescue}"
                );
            }
        }
    }
    // Parameters out of range are named.
    let p = published();
    let cal = WeekdayPeak::default();
    let int = ConstantIntensity(448.0);
    let e = Scenario::new(&p, &cal, &int)
        .run(Policy::Throttle { peak_fraction: 1.5 })
        .unwrap_err();
    assert!(
        matches!(
            e,
            SimError::Invalid {
                field: "peak_fraction",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn bad_inputs_are_named() {
    let e = Profile::new(0, 1.0, 1.0).unwrap_err();
    assert!(matches!(e, SimError::Invalid { field: "items", .. }));
    let e = Profile::new(1, f64::NAN, 1.0).unwrap_err();
    assert!(matches!(
        e,
        SimError::Invalid {
            field: "baseline_hours",
            ..
        }
    ));
    let e = Profile::new(1, 1.0, -1.0).unwrap_err();
    assert!(matches!(
        e,
        SimError::Invalid {
            field: "baseline_kwh",
            ..
        }
    ));
    let p = published();
    for (m, field) in [
        (
            MachineModel {
                idle_share: 1.0,
                ..Default::default()
            },
            "idle_share",
        ),
        (
            MachineModel {
                max_workers: 4,
                ..Default::default()
            },
            "max_workers",
        ),
        (
            MachineModel {
                nominal_workers: 0,
                ..Default::default()
            },
            "nominal_workers",
        ),
    ] {
        match m.calibrate(&p).unwrap_err() {
            SimError::Invalid { field: f, .. } => assert_eq!(f, field),
            other => panic!("{other}"),
        }
    }
}

#[test]
fn profile_from_run_files() {
    use carina_runtime::reader::parse_run_file;
    use std::path::Path;
    let start = r#"{"type":"run_start","schema":1,"run_id":"r1","job":"scenario-db","host":"h","pid":1,"started_at":"2024-01-08T00:00:00Z","energy_sources":[],"carbon":{"g_per_kwh":448.0,"zone":null,"source":"test"},"steps":"all","sample_interval_s":0.1,"scope":"process","carina_version":"0.1.0"}"#;
    let step = |id: u32, name: &str, end: f64, items: u32, e: f64| {
        format!(
            r#"{{"type":"step","name":"{name}","id":{id},"parent":null,"thread":0,"start_s":0.0,"end_s":{end},"items":{items},"status":"ok","energy_j":{e},"self_energy_j":{e},"co2e_g":0.0}}"#
        )
    };
    let end = r#"{"type":"run_end","ended_at":"2024-01-08T02:00:00Z","wall_s":7200.0,"energy_j":1800000.0,"unattributed_j":0.0,"co2e_g":0.0,"items":4000,"steps":2,"dropped":0}"#;
    let text = format!(
        "{start}\n{}\n{}\n{end}\n",
        step(1, "solve", 3600.0, 4000, 1e6),
        step(2, "load", 3700.0, 10, 1e5)
    );
    let run = parse_run_file(&text, Path::new("r1.jsonl")).unwrap();
    let p = Profile::from_run(&run).unwrap();
    assert_eq!(p.items, 4000);
    assert_eq!(p.baseline_hours, 2.0);
    assert_eq!(p.baseline_kwh, 0.5);
    assert!(p.complete);
    assert!((p.seconds_per_item() - 1.8).abs() < 1e-12);

    // No run_end: items from the progress step (`solve` repeats), time from the last
    // step's end, energy from the steps (no power records here).
    let text = format!(
        "{start}\n{}\n{}\n{}\n",
        step(1, "solve", 1800.0, 1000, 1e6),
        step(2, "solve", 3600.0, 1000, 1e6),
        step(3, "load", 3700.0, 10, 1e5)
    );
    let run = parse_run_file(&text, Path::new("r2.jsonl")).unwrap();
    let p = Profile::from_run(&run).unwrap();
    assert_eq!(p.items, 2000);
    assert!((p.baseline_hours - 3700.0 / 3600.0).abs() < 1e-12);
    assert!((p.baseline_kwh - 2.1e6 / 3.6e6).abs() < 1e-12);
    assert!(!p.complete);
    assert!(p.notes.iter().any(|n| n.contains("did not finish")));

    // Nothing to simulate.
    let run = parse_run_file(&format!("{start}\n"), Path::new("r3.jsonl")).unwrap();
    let e = Profile::from_run(&run).unwrap_err();
    assert!(e.to_string().contains("r3.jsonl"), "{e}");
}

// -----------------------------------------------------------------------------------------
// The sensitivity table in docs/CONTROL.md
// -----------------------------------------------------------------------------------------

struct Variant {
    label: &'static str,
    machine: MachineModel,
    boost: Policy,
    throttle: Policy,
    start: Timestamp,
}

fn variants() -> Vec<Variant> {
    let d = MachineModel::default();
    let base = Variant {
        label: "defaults",
        machine: d,
        boost: Policy::OFFPEAK_BOOST,
        throttle: Policy::THROTTLE,
        start: default_start(),
    };
    let m = |label, machine| Variant {
        label,
        machine,
        ..base
    };
    let boost = |label, offpeak_factor, peak_fraction| Variant {
        label,
        boost: Policy::OffPeakBoost {
            offpeak_factor,
            peak_fraction,
        },
        ..base
    };
    let day = 86_400;
    let start = |label, secs: i64| Variant {
        label,
        start: Timestamp::constant(DEFAULT_START_UNIX_S + secs, 0),
        ..base
    };
    vec![
        m("defaults", d),
        m(
            "idle share 0.30",
            MachineModel {
                idle_share: 0.30,
                ..d
            },
        ),
        m(
            "idle share 0.50",
            MachineModel {
                idle_share: 0.50,
                ..d
            },
        ),
        m(
            "sleep share 0 (paused = off)",
            MachineModel {
                sleep_share: 0.0,
                ..d
            },
        ),
        m(
            "sleep share 0.5",
            MachineModel {
                sleep_share: 0.5,
                ..d
            },
        ),
        m(
            "sleep share 1 (paused = idle)",
            MachineModel {
                sleep_share: 1.0,
                ..d
            },
        ),
        m(
            "contention 0",
            MachineModel {
                contention: 0.0,
                ..d
            },
        ),
        m(
            "contention 0.01",
            MachineModel {
                contention: 0.01,
                ..d
            },
        ),
        m(
            "contention 0.02",
            MachineModel {
                contention: 0.02,
                ..d
            },
        ),
        m("ramp 0 s", MachineModel { ramp_s: 0.0, ..d }),
        m("ramp 900 s", MachineModel { ramp_s: 900.0, ..d }),
        m(
            "4 nominal workers (max 8)",
            MachineModel {
                nominal_workers: 4,
                max_workers: 8,
                ..d
            },
        ),
        m(
            "16 nominal workers (max 32)",
            MachineModel {
                nominal_workers: 16,
                max_workers: 32,
                ..d
            },
        ),
        boost("boost x1.25 off-peak (10 workers)", 1.25, 0.0),
        boost("boost x1.75 off-peak (14 workers)", 1.75, 0.0),
        boost("boost keeps 1/8 in peak (1 worker)", 1.5, 0.125),
        boost("boost keeps 1/2 in peak (4 workers)", 1.5, 0.5),
        Variant {
            label: "throttle keeps 1/4 in peak (2 workers)",
            throttle: Policy::Throttle {
                peak_fraction: 0.25,
            },
            ..base
        },
        start("start Wednesday 00:00 UTC", 2 * day),
        start("start Friday 20:00 UTC", 4 * day + 20 * 3600),
    ]
}

fn sensitivity_table() -> String {
    let p = published();
    let cal = WeekdayPeak::default();
    let int = ConstantIntensity(448.0);
    let mut out = String::from(
        "| assumption changed | offpeak-boost energy | offpeak-boost makespan | throttle energy | throttle makespan | defer energy | defer makespan |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    for v in variants() {
        let s = Scenario {
            machine: v.machine,
            start: v.start,
            ..Scenario::new(&p, &cal, &int)
        };
        let r = s
            .compare(&[
                Policy::Baseline.into(),
                v.boost.into(),
                v.throttle.into(),
                Policy::Defer.into(),
            ])
            .unwrap();
        out.push_str(&format!(
            "| {} | {:+.1} % | {:+.1} % | {:+.1} % | {:+.1} % | {:+.1} % | {:+.1} % |\n",
            v.label,
            r[1].energy_delta_pct,
            r[1].makespan_delta_pct,
            r[2].energy_delta_pct,
            r[2].makespan_delta_pct,
            r[3].energy_delta_pct,
            r[3].makespan_delta_pct,
        ));
    }
    out
}

/// The numbers in docs/CONTROL.md's sensitivity table are this simulator's. Regenerate
/// with `cargo test -p carina-control simulate::tests::sensitivity -- --nocapture`
/// and paste the printed table.
#[test]
fn sensitivity_table_matches_the_docs() {
    let table = sensitivity_table();
    println!("{table}");
    let doc_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/CONTROL.md");
    let doc = std::fs::read_to_string(doc_path).unwrap_or_default();
    let norm = |s: &str| {
        s.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        norm(&doc).contains(&norm(&table)),
        "docs/CONTROL.md's sensitivity table is out of date; replace it with:\n{table}"
    );
}

/// `run` (event-driven) gives what `run_stepwise` (the first simulator, one step a minute, the
/// calendar asked at every step) gives, to rounding: every policy, with and without deadlines,
/// under the default calendar, a schedule with tariffs, overnight windows and a holiday in
/// Berlin (DST on 2026-03-29), a schedule of many short windows, and constant, hourly and
/// per-instant intensities.
#[test]
fn event_driven_run_matches_the_stepwise_one() {
    use crate::schedule::Schedule;
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0);
    let berlin = Schedule::builder("Europe/Berlin")
        .peak_with_tariff("Mon-Fri 07:30-12:00", 0.31)
        .peak("Sat 22:00-02:15")
        .peak("daily 17:00-19:45")
        .holiday("2026-03-27")
        .offpeak_tariff(0.12)
        .build()
        .unwrap();
    let mut many = Schedule::builder("UTC");
    for k in 0..90u16 {
        let (a, b) = (k * 16, k * 16 + 7);
        many = many.peak(&format!(
            "daily {:02}:{:02}-{:02}:{:02}",
            a / 60,
            a % 60,
            b / 60,
            b % 60
        ));
    }
    let many = many.build().unwrap();
    let weekday = WeekdayPeak::default();
    let calendars: [(&str, &dyn Calendar); 3] =
        [("weekday", &weekday), ("berlin", &berlin), ("many", &many)];
    let mut day = [200.0; 24];
    day[8..20].fill(600.0);
    let hourly = HourlyIntensity { g_per_kwh: day };
    let constant = ConstantIntensity(448.0);
    let start_s = Timestamp::constant(1_774_224_000, 0).as_second(); // 2026-03-23, a Monday
    let wavy = move |t: Timestamp| 300.0 + ((t.as_second() - start_s) % 5400) as f64 / 60.0;
    let intensities: [(&str, &dyn Intensity); 3] = [
        ("constant", &constant),
        ("hourly", &hourly),
        ("wavy", &wavy),
    ];
    let p = Profile::new(50_000, 60.0, 16.0).unwrap();
    let mut specs: Vec<SimSpec> = Policy::STANDARD.map(Into::into).to_vec();
    for pol in Policy::STANDARD {
        specs.push(SimSpec::with_deadline_hours(pol, 90.0));
        specs.push(SimSpec::with_deadline_hours(pol, 64.5));
    }
    let mut compared = 0;
    for (cn, cal) in calendars {
        for (iname, int) in intensities {
            let s = Scenario {
                start: Timestamp::constant(1_774_224_000, 0),
                ..Scenario::new(&p, cal, int)
            };
            for spec in &specs {
                let (new, old) = (s.run(*spec).unwrap(), s.run_stepwise(*spec).unwrap());
                let what = format!("{cn}/{iname}/{spec:?}");
                for (field, a, b) in [
                    ("makespan_h", new.makespan_h, old.makespan_h),
                    ("energy_kwh", new.energy_kwh, old.energy_kwh),
                    ("co2e_kg", new.co2e_kg, old.co2e_kg),
                    ("cost", new.cost, old.cost),
                    ("idle_kwh", new.idle_kwh, old.idle_kwh),
                    ("active_kwh", new.active_kwh, old.active_kwh),
                    ("sleep_kwh", new.sleep_kwh, old.sleep_kwh),
                    ("ramp_kwh", new.ramp_kwh, old.ramp_kwh),
                    ("peak_kwh", new.peak_kwh, old.peak_kwh),
                    ("running_h", new.running_h, old.running_h),
                    ("paused_h", new.paused_h, old.paused_h),
                    ("mean_workers", new.mean_workers, old.mean_workers),
                    ("items_done", new.items_done, old.items_done),
                    (
                        "rescued_at_h",
                        new.rescued_at_h.unwrap_or(-1.0),
                        old.rescued_at_h.unwrap_or(-1.0),
                    ),
                ] {
                    assert!(close(a, b), "{what}: {field} {a} vs {b}");
                }
                assert_eq!(new.changes, old.changes, "{what}");
                assert_eq!(new.deadline_met, old.deadline_met, "{what}");
                let workers = |o: &Outcome| o.hours_at.iter().map(|h| h.0).collect::<Vec<_>>();
                assert_eq!(workers(&new), workers(&old), "{what}");
                for (a, b) in new.hours_at.iter().zip(&old.hours_at) {
                    assert!(
                        close(a.1, b.1),
                        "{what}: hours at {}: {} vs {}",
                        a.0,
                        a.1,
                        b.1
                    );
                }
                let ns = new
                    .finished_at
                    .duration_since(old.finished_at)
                    .as_nanos()
                    .abs();
                assert!(ns < 1_000, "{what}: finished {ns} ns apart");
                compared += 1;
            }
        }
    }
    assert_eq!(compared, 9 * 12);
}

/// A simulation that would take more than [`MAX_STEPS`] steps stops with an error that says
/// why and what to change, instead of running for minutes.
#[test]
fn too_many_steps_is_a_clear_error() {
    // A calendar that changes every second, and a bound of 10,000 steps (the real one,
    // 3 million, would make a slow test of a debug build).
    let p = Profile::new(1000, 5000.0, 100.0).unwrap();
    let int = ConstantIntensity(300.0);
    let s = Scenario::new(&p, &Flicker, &int);
    let e = s
        .run_bounded(Policy::Baseline.into(), 10_000, &mut 0)
        .unwrap_err();
    assert!(matches!(e, SimError::TooManySteps { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("baseline") && msg.contains("past 10000 steps"),
        "{msg}"
    );
    assert!(msg.contains("after 3 simulated hours"), "{msg}");
    assert!(msg.contains("fewer hours"), "{msg}");
}

/// The bound is shared by the policies of one comparison: each fits alone, together they do
/// not, so the time of `carina simulate` (every policy) is bounded too.
#[test]
fn a_comparison_shares_one_budget_of_steps() {
    // A half-hour profile: about 1,800 one-second steps per policy.
    let p = Profile::new(1000, 0.5, 100.0).unwrap();
    let int = ConstantIntensity(300.0);
    let s = Scenario::new(&p, &Flicker, &int);
    let specs: Vec<SimSpec> = [Policy::Baseline, Policy::Baseline, Policy::Baseline]
        .into_iter()
        .map(Into::into)
        .collect();
    let mut one = 0;
    s.run_bounded(specs[0], u64::MAX, &mut one).unwrap();
    assert!(one > 100, "{one} steps");
    // Each alone fits in 2x one policy's steps; the three together do not.
    assert!(s.compare_bounded(&specs[..1], 2 * one).is_ok());
    let e = s.compare_bounded(&specs, 2 * one).unwrap_err();
    assert!(matches!(e, SimError::TooManySteps { .. }), "{e}");
}

/// A calendar whose slot changes every second.
struct Flicker;
impl Calendar for Flicker {
    fn slot(&self, t: Timestamp) -> Slot {
        Slot {
            peak: t.as_second() % 2 == 0,
            tariff_per_kwh: None,
        }
    }
    fn next_change(&self, t: Timestamp) -> Option<Timestamp> {
        Timestamp::from_second(t.as_second() + 1).ok()
    }
}
