//! A log-linear histogram of durations for the p50/p95 in step summaries.
//!
//! Values (nanoseconds) below 64 get a bucket each; above, each power of two is split into 64
//! buckets, so a reported quantile is within 1/64 (1.6 %) of the true value. Memory is fixed
//! (about 28 KiB per step name) whatever the number of instances.

const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;
const BUCKETS: usize = ((64 - SUB_BITS as usize) + 1) * SUB as usize;

/// Histogram of nanosecond durations.
#[derive(Clone)]
pub(crate) struct Histogram {
    counts: Box<[u64]>,
    total: u64,
    max: u64,
}

fn bucket(v: u64) -> usize {
    if v < SUB {
        v as usize
    } else {
        let exp = 63 - v.leading_zeros(); // >= SUB_BITS
        let shift = exp - SUB_BITS;
        let sub = (v >> shift) - SUB; // in 0..SUB
        ((shift as u64 + 1) * SUB + sub) as usize
    }
}

/// Upper bound (inclusive) of a bucket's values.
fn bucket_high(b: usize) -> u64 {
    let b = b as u64;
    if b < SUB {
        b
    } else {
        let shift = b / SUB - 1;
        let sub = b % SUB;
        // In u128: the top bucket's bound is 2^64 - 1 exactly.
        let hi = ((u128::from(SUB + sub + 1)) << shift) - 1;
        hi.min(u128::from(u64::MAX)) as u64
    }
}

impl Histogram {
    pub(crate) fn new() -> Self {
        Histogram {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            total: 0,
            max: 0,
        }
    }

    pub(crate) fn record(&mut self, v: u64) {
        self.counts[bucket(v)] += 1;
        self.total += 1;
        self.max = self.max.max(v);
    }

    /// The smallest recorded-bucket bound at or above quantile `q` (0..=1); 0 when empty.
    pub(crate) fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (b, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return bucket_high(b).min(self.max);
            }
        }
        self.max
    }

    pub(crate) fn max(&self) -> u64 {
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut prev = 0;
        for v in (0..200_000u64).chain([u64::MAX / 2, u64::MAX]) {
            let b = bucket(v);
            assert!(b >= prev);
            assert!(b < BUCKETS);
            prev = b;
            let hi = bucket_high(b);
            assert!(hi >= v, "v={v} hi={hi}");
            assert!((hi - v) as f64 <= v as f64 / 64.0 + 1.0, "v={v} hi={hi}");
        }
    }

    #[test]
    fn quantiles_of_uniform_values() {
        let mut h = Histogram::new();
        for v in 1..=10_000u64 {
            h.record(v * 1000);
        }
        let p50 = h.quantile(0.5) as f64;
        let p95 = h.quantile(0.95) as f64;
        assert!((p50 / 5_000_000.0 - 1.0).abs() < 0.017, "{p50}");
        assert!((p95 / 9_500_000.0 - 1.0).abs() < 0.017, "{p95}");
        assert_eq!(h.max(), 10_000_000);
        assert_eq!(h.quantile(1.0), 10_000_000);
    }
}
