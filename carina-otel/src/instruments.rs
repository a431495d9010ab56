//! The metric instruments the sink updates, and the attribute sets of one step name.

use crate::attributes::{ATTR_ENERGY_KIND, ATTR_STATUS, ATTR_STEP};
use carina_runtime::record::StepStatus;
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter};

/// Bucket bounds of `carina.step.duration`, seconds.
const DURATION_BUCKETS_S: [f64; 17] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
    3600.0,
];

pub(crate) fn status_index(s: StepStatus) -> usize {
    match s {
        StepStatus::Ok => 0,
        StepStatus::Error => 1,
        StepStatus::Panicked => 2,
    }
}

pub(crate) struct StepAttrs {
    pub(crate) name: [KeyValue; 1],
    pub(crate) energy: [KeyValue; 2],
    pub(crate) status: [[KeyValue; 2]; 3],
}

impl StepAttrs {
    /// The attribute sets of step `name` whose energy is of `kind`, built once per name.
    pub(crate) fn new(name: &str, kind: &'static str) -> Self {
        let step = KeyValue::new(ATTR_STEP, name.to_owned());
        let st = |s: &'static str| [step.clone(), KeyValue::new(ATTR_STATUS, s)];
        StepAttrs {
            name: [step.clone()],
            energy: [step.clone(), KeyValue::new(ATTR_ENERGY_KIND, kind)],
            status: [st("ok"), st("error"), st("panicked")],
        }
    }
}

pub(crate) struct Instruments {
    pub(crate) step_energy: Counter<f64>,
    pub(crate) step_co2e: Counter<f64>,
    pub(crate) step_count: Counter<u64>,
    pub(crate) step_items: Counter<u64>,
    pub(crate) step_wall: Counter<f64>,
    pub(crate) step_duration: Histogram<f64>,
    pub(crate) run_energy: Counter<f64>,
    pub(crate) run_co2e: Counter<f64>,
    pub(crate) run_wall: Counter<f64>,
    pub(crate) run_items: Counter<u64>,
    pub(crate) run_count: Counter<u64>,
}

impl Instruments {
    pub(crate) fn new(m: &Meter) -> Self {
        let f = |name: &'static str, unit: &'static str, desc: &'static str| {
            m.f64_counter(name)
                .with_unit(unit)
                .with_description(desc)
                .build()
        };
        let u = |name: &'static str, unit: &'static str, desc: &'static str| {
            m.u64_counter(name)
                .with_unit(unit)
                .with_description(desc)
                .build()
        };
        Instruments {
            step_energy: f(
                "carina.step.energy",
                "J",
                "Energy attributed to the step, children included",
            ),
            step_co2e: f(
                "carina.step.co2e",
                "g",
                "Emissions of the step's energy, CO2e",
            ),
            step_count: u("carina.step.count", "{step}", "Step instances that ended"),
            step_items: u("carina.step.items", "{item}", "Items the step processed"),
            step_wall: f(
                "carina.step.wall_time",
                "s",
                "Wall time of the step instances, summed",
            ),
            step_duration: m
                .f64_histogram("carina.step.duration")
                .with_unit("s")
                .with_description("Duration of one step instance")
                .with_boundaries(DURATION_BUCKETS_S.to_vec())
                .build(),
            run_energy: f("carina.run.energy", "J", "Energy of the run in its scope"),
            run_co2e: f(
                "carina.run.co2e",
                "g",
                "Emissions of the run's energy, CO2e",
            ),
            run_wall: f("carina.run.wall_time", "s", "Wall time of the run"),
            run_items: u(
                "carina.run.items",
                "{item}",
                "Items of the run (at its end)",
            ),
            run_count: u("carina.run.count", "{run}", "Runs finished"),
        }
    }
}
