//! Instruction counts of the hot path, for `valgrind --tool=callgrind` (`benches/callgrind.sh`).
//!
//! Wall-clock timings of a 20 ns step move by 30 % between runs on a shared VM, so they cannot
//! guard CI; instructions executed can. Each case is one `#[inline(never)]` function that runs
//! the same loop `ITERS` times; the script collects only inside that function
//! (`--toggle-collect`) and divides callgrind's total by `ITERS`. Run without valgrind, the
//! binary does the same work and prints nothing but a line per case, so `cargo bench` builds and
//! runs it harmlessly.
//!
//! Cases:
//! - `two_tsc`: two raw reads of the step clock (the baseline a recorded step is held to);
//! - `step_no_run`: `carina::step` + `add_items` + drop with no run installed;
//! - `step_guard`: the same with a run installed, every step accepted into the thread's ring.

use std::hint::black_box;

/// Steps per case: fits a 65 536-event ring (two events per step) with room to spare, so every
/// measured step takes the accepted path, never the fold path.
const ITERS: u64 = 10_000;

#[inline(never)]
fn case_two_tsc(clock: &carina_core::clock::Clock) {
    for _ in 0..ITERS {
        let a = clock.raw();
        let z = clock.raw();
        black_box((a, z));
    }
}

#[inline(never)]
fn case_step_no_run() {
    for i in 0..ITERS {
        let mut s = carina::step("idle");
        s.add_items(black_box(i));
        black_box(&s);
    }
}

#[inline(never)]
fn case_step_guard() {
    for i in 0..ITERS {
        let mut s = carina::step("work");
        s.add_items(black_box(i));
        black_box(&s);
    }
}

fn main() {
    // `cargo bench` passes `--bench`; the script passes the case name.
    let case = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_else(|| "all".to_owned());
    let clock = carina_core::clock::Clock::new();
    if case == "two_tsc" || case == "all" {
        case_two_tsc(&clock);
        println!("two_tsc: {ITERS} iterations (tsc: {})", clock.is_tsc());
    }
    if case == "step_no_run" || case == "all" {
        assert!(!carina_core::is_recording(), "no run may be installed here");
        case_step_no_run();
        println!("step_no_run: {ITERS} iterations");
    }
    if case == "step_guard" || case == "all" {
        let run = carina::Run::builder("callgrind")
            .run_file(false)
            .steps(carina::StepDetail::Summary)
            .constant_watts(1.0)
            .buffer_capacity(1 << 16)
            // A long tick: the aggregator sleeps through the measured loop (its instructions
            // are not collected anyway: collection is toggled on this thread's case function).
            .sample_interval(std::time::Duration::from_secs(10))
            .start()
            .expect("start run");
        // The thread's first step registers its ring (the cold path): not part of the count.
        drop(carina::step("warm-up"));
        case_step_guard();
        let s = run.finish().expect("finish");
        assert_eq!(s.dropped(), 0, "a measured step was dropped");
        println!(
            "step_guard: {ITERS} iterations, {} steps recorded, {} dropped",
            s.steps(),
            s.dropped()
        );
    }
}
