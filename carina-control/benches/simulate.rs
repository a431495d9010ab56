//! The simulator on the schedule that made it slow (issue 18): 720 one-minute peak windows a
//! day, every other minute, so the slot changes every minute, day and night. Each standard
//! policy, one after the other, over a ten-year cycle (87,600 h, the longest a profile may
//! have), event-driven; and, in the same run, the baseline: the first, step-by-step simulator
//! (`run_stepwise`, one step a minute) against the event-driven one on a cycle a hundred times
//! shorter (876 h), which the baseline still finishes in reasonable time.
//!
//! Under the default machine model `offpeak-boost` never finishes on this schedule (every
//! minute it starts workers whose two-minute warm-up the next minute's peak cuts short), so its
//! answer is an error: after the give-up horizon, or at the bound on steps (`MAX_STEPS`) for the
//! ten-year cycle. The time measured is the time to each policy's answer, error or not, which
//! is what `carina simulate` makes the user wait for.
//!
//! ```sh
//! cargo bench -p carina-control --bench simulate
//! ```

use carina_control::policy::Policy;
use carina_control::schedule::Schedule;
use carina_control::simulate::{ConstantIntensity, Profile, Scenario, SimSpec};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;

/// Peak `daily HH:MM-HH:MM+1` for every even minute of the day.
fn minute_windows() -> Schedule {
    let mut b = Schedule::builder("Europe/Berlin");
    for k in 0..720u16 {
        let (a, z) = (2 * k, 2 * k + 1);
        b = b.peak(&format!(
            "daily {:02}:{:02}-{:02}:{:02}",
            a / 60,
            a % 60,
            z / 60,
            z % 60
        ));
    }
    b.build().expect("a valid schedule")
}

fn simulate(c: &mut Criterion) {
    let schedule = minute_windows();
    let intensity = ConstantIntensity(448.0);
    let specs: Vec<SimSpec> = Policy::STANDARD.map(Into::into).to_vec();
    let mut g = c.benchmark_group("simulate_720_windows");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    for hours in [876.0, 87_600.0] {
        let profile = Profile::new(1_000_000, hours, hours * 0.3).expect("a valid profile");
        let scenario = Scenario::new(&profile, &schedule, &intensity);
        g.bench_function(format!("event_driven_all_policies_{hours}h"), |b| {
            b.iter(|| {
                for s in &specs {
                    let _ = black_box(scenario.run(black_box(*s)));
                }
            })
        });
        if hours < 1000.0 {
            g.bench_function(format!("baseline_stepwise_all_policies_{hours}h"), |b| {
                b.iter(|| {
                    for s in &specs {
                        let _ = black_box(scenario.run_stepwise(black_box(*s)));
                    }
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, simulate);
criterion_main!(benches);
