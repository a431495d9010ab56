//! Sorting 10 000 integers, with time and with energy (joules per sort, and per element).
//!
//! ```sh
//! cargo bench -p carina-criterion --bench energy_example
//! cargo bench -p carina-criterion --bench energy_example -- --warm-up-time 1 --measurement-time 2
//! ```
//!
//! Groups `sort-10k` (wall time) and `sort-10k-energy` (joules), saved under
//! `target/criterion/sort-10k/` and `target/criterion/sort-10k-energy/`.

use carina_criterion::{EnergyAware, energy_and_time_group, group};
use criterion::{BatchSize, Criterion, Throughput, criterion_main};
use std::hint::black_box;

const N: usize = 10_000;

/// The same pseudo-random integers every run.
fn data() -> Vec<u32> {
    let mut x = 0x2545_f491_u32;
    (0..N)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        })
        .collect()
}

/// Generic over the measurement: `energy_and_time_group!` runs it with wall time, then energy.
fn sort<M: EnergyAware>(c: &mut Criterion<M>) {
    let input = data();
    let mut g = group(c, "sort-10k");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("sort_unstable", |b| {
        b.iter_batched_ref(
            || input.clone(),
            |v| v.sort_unstable(),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("sort", |b| {
        b.iter_batched_ref(|| input.clone(), |v| v.sort(), BatchSize::SmallInput)
    });
    g.finish();
    // Not in a group: the same naming helper keeps the two measurements apart.
    let mut g = group(c, "sum-10k");
    g.bench_function("iter_sum", |b| {
        b.iter(|| black_box(&input).iter().map(|&x| u64::from(x)).sum::<u64>())
    });
    g.finish();
}

energy_and_time_group!(benches, sort);
criterion_main!(benches);
