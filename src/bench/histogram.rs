//! A log-linear latency histogram in microseconds, shared by every connection of a process.
//!
//! Values below 2^SUB_BITS get a bucket each; above that, every power of two is split into
//! 2^SUB_BITS equal buckets, so any recorded value is known to within 1/128 of itself. That
//! keeps p99 exact enough at millions of samples in a fixed 58 KiB, without storing samples,
//! and recording is one relaxed atomic add, so thousands of connection tasks can share it.

use std::sync::atomic::{AtomicU64, Ordering};

const SUB_BITS: u32 = 7;
const SUB_COUNT: usize = 1 << SUB_BITS;
/// Enough buckets for any u64.
const BUCKETS: usize = (64 - SUB_BITS as usize + 1) * SUB_COUNT;

fn bucket_of(value: u64) -> usize {
    if value < SUB_COUNT as u64 {
        return value as usize;
    }
    let exponent = 63 - value.leading_zeros();
    let mantissa = (value >> (exponent - SUB_BITS)) as usize;
    (exponent - SUB_BITS + 1) as usize * SUB_COUNT + (mantissa - SUB_COUNT)
}

/// The largest value that falls into `bucket`: percentiles err on the high side.
fn upper_bound_of(bucket: usize) -> u64 {
    if bucket < SUB_COUNT {
        return bucket as u64;
    }
    let octave = (bucket / SUB_COUNT) as u32;
    let shift = octave - 1;
    let mantissa = (SUB_COUNT + bucket % SUB_COUNT) as u64;
    let low = mantissa << shift;
    low.saturating_add((1u64 << shift) - 1)
}

/// The live, concurrently written histogram.
pub struct Histogram {
    buckets: Box<[AtomicU64]>,
    max: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            max: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    pub fn record(&self, micros: u64) {
        self.buckets[bucket_of(micros)].fetch_add(1, Ordering::Relaxed);
        self.max.fetch_max(micros, Ordering::Relaxed);
    }

    /// The non-empty buckets, small enough to send between processes.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            buckets: self
                .buckets
                .iter()
                .enumerate()
                .filter_map(|(i, count)| {
                    let count = count.load(Ordering::Relaxed);
                    (count > 0).then_some((i, count))
                })
                .collect(),
            max: self.max.load(Ordering::Relaxed),
        }
    }
}

/// A histogram at one moment: sorted `(bucket, count)` pairs and the exact maximum.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    buckets: Vec<(usize, u64)>,
    max: u64,
}

impl Snapshot {
    /// Adds another process's histogram into this one.
    pub fn merge(&mut self, other: &Snapshot) {
        let mut dense = vec![0u64; BUCKETS];
        for &(bucket, count) in self.buckets.iter().chain(&other.buckets) {
            // A bucket out of range can only come from a garbled report: skip it.
            if let Some(slot) = dense.get_mut(bucket) {
                *slot += count;
            }
        }
        self.buckets = dense
            .into_iter()
            .enumerate()
            .filter(|&(_, count)| count > 0)
            .collect();
        self.max = self.max.max(other.max);
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|&(_, n)| n).sum()
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` (0..=1), never above the recorded maximum; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for &(bucket, count) in &self.buckets {
            seen += count;
            if seen >= rank {
                return Some(upper_bound_of(bucket).min(self.max));
            }
        }
        Some(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_tight() {
        let mut previous = 0;
        for value in (0..100_000u64).chain([u64::MAX / 3, u64::MAX]) {
            let bucket = bucket_of(value);
            assert!(bucket < BUCKETS);
            assert!(bucket == previous || bucket == previous + 1 || value > 100_000);
            previous = bucket;
            let upper = upper_bound_of(bucket);
            assert!(upper >= value, "{value} above its bucket's bound {upper}");
            assert!((upper - value) as f64 <= value as f64 / 128.0 + 1.0);
        }
    }

    #[test]
    fn quantiles_of_a_uniform_range() {
        let histogram = Histogram::default();
        for value in 1..=10_000 {
            histogram.record(value);
        }
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.count(), 10_000);
        let p50 = snapshot.quantile(0.5).unwrap();
        let p99 = snapshot.quantile(0.99).unwrap();
        assert!((5000..=5040).contains(&p50), "{p50}");
        assert!((9900..=9980).contains(&p99), "{p99}");
        assert_eq!(snapshot.quantile(1.0), Some(10_000));
    }

    #[test]
    fn merging_adds_counts() {
        let (a, b) = (Histogram::default(), Histogram::default());
        a.record(10);
        a.record(1000);
        b.record(10);
        b.record(5);
        let mut merged = a.snapshot();
        merged.merge(&b.snapshot());
        assert_eq!(merged.count(), 4);
        assert_eq!(merged.max(), 1000);
        assert_eq!(merged.quantile(0.5), Some(10));
        assert_eq!(Snapshot::default().quantile(0.5), None);
    }
}
