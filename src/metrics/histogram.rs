//! Histograms with fixed buckets, counted with atomics and written into `/metrics` by the
//! gateway itself. The exporter's own histograms keep every sample until the next scrape:
//! on the delivery path (a sample per event per subscriber) that is an allocation per
//! sample and memory that grows without bound when nobody scrapes.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Upper bounds of the buckets, in microseconds (`+Inf` follows them).
const BOUNDS_US: [u64; 14] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000,
];

/// One histogram of durations.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Samples per bucket (not cumulative: made so when written), `+Inf` last.
    counts: [AtomicU64; BOUNDS_US.len() + 1],
    sum_us: AtomicU64,
}

impl Histogram {
    /// Counts one duration.
    pub fn record_us(&self, us: u64) {
        let mut tally = Tally::default();
        tally.add(us);
        self.add(&tally);
    }

    /// Counts what `tally` gathered: an atomic add per bucket it used.
    pub fn add(&self, tally: &Tally) {
        for (count, &n) in self.counts.iter().zip(&tally.counts) {
            if n > 0 {
                count.fetch_add(u64::from(n), Ordering::Relaxed);
            }
        }
        if tally.sum_us > 0 {
            self.sum_us.fetch_add(tally.sum_us, Ordering::Relaxed);
        }
    }

    /// Writes its series, `labels` (`name="value",` pairs or nothing) in each.
    fn write(&self, name: &str, labels: &str, out: &mut String) {
        let mut cumulative = 0;
        for (i, count) in self.counts.iter().enumerate() {
            cumulative += count.load(Ordering::Relaxed);
            let le = match BOUNDS_US.get(i) {
                Some(&us) => format!("{}", us as f64 / 1e6),
                None => "+Inf".to_owned(),
            };
            let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{le}\"}} {cumulative}");
        }
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let labels = match labels.trim_end_matches(',') {
            "" => String::new(),
            labels => format!("{{{labels}}}"),
        };
        let _ = writeln!(out, "{name}_sum{labels} {sum}");
        let _ = writeln!(out, "{name}_count{labels} {cumulative}");
    }
}

/// Durations gathered over one batch, added to a histogram at once.
#[derive(Debug, Default)]
pub struct Tally {
    counts: [u32; BOUNDS_US.len() + 1],
    sum_us: u64,
}

impl Tally {
    pub fn add(&mut self, us: u64) {
        let bucket = BOUNDS_US.partition_point(|&bound| bound < us);
        self.counts[bucket] += 1;
        self.sum_us += us;
    }

    pub fn is_empty(&self) -> bool {
        self.counts.iter().all(|&n| n == 0)
    }
}

/// Histograms of one name, one per value of its label (a configured name: few values).
#[derive(Debug)]
pub struct Family {
    name: &'static str,
    help: &'static str,
    label: &'static str,
    members: Mutex<BTreeMap<String, Arc<Histogram>>>,
}

impl Family {
    pub const fn new(name: &'static str, help: &'static str, label: &'static str) -> Self {
        Family {
            name,
            help,
            label,
            members: Mutex::new(BTreeMap::new()),
        }
    }

    /// The histogram of `value`.
    pub fn of(&self, value: &str) -> Arc<Histogram> {
        let mut members = self.members.lock().unwrap();
        if let Some(histogram) = members.get(value) {
            return Arc::clone(histogram);
        }
        let histogram = Arc::new(Histogram::default());
        members.insert(value.to_owned(), Arc::clone(&histogram));
        histogram
    }

    /// Writes the family in Prometheus's text format.
    pub fn write(&self, out: &mut String) {
        let members = self.members.lock().unwrap();
        if members.is_empty() {
            return;
        }
        write_head(self.name, self.help, out);
        for (value, histogram) in members.iter() {
            let value = value
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            let labels = format!("{}=\"{value}\",", self.label);
            histogram.write(self.name, &labels, out);
        }
    }
}

/// Writes one unlabelled histogram in Prometheus's text format.
pub fn write(name: &str, help: &str, histogram: &Histogram, out: &mut String) {
    write_head(name, help, out);
    histogram.write(name, "", out);
}

fn write_head(name: &str, help: &str, out: &mut String) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} histogram");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_bounds_inclusive() {
        let histogram = Histogram::default();
        let mut tally = Tally::default();
        for us in [100, 500, 501, 20_000_000] {
            tally.add(us);
        }
        histogram.add(&tally);
        let mut out = String::new();
        write("d", "durations", &histogram, &mut out);
        assert!(out.contains("d_bucket{le=\"0.0005\"} 2\n"), "{out}");
        assert!(out.contains("d_bucket{le=\"0.001\"} 3\n"), "{out}");
        assert!(out.contains("d_bucket{le=\"10\"} 3\n"), "{out}");
        assert!(out.contains("d_bucket{le=\"+Inf\"} 4\n"), "{out}");
        assert!(out.contains("d_sum 20.001101\n"), "{out}");
        assert!(out.contains("d_count 4\n"), "{out}");
    }

    #[test]
    fn a_family_writes_one_histogram_per_label_value() {
        let family = Family::new("p", "polls", "api");
        family.of("b\"\n").record_us(2_000);
        family.of("a").record_us(2_000);
        let mut out = String::new();
        family.write(&mut out);
        let a = out.find("p_count{api=\"a\"} 1").expect(&out);
        let b = out.find("p_count{api=\"b\\\"\\n\"} 1").expect(&out);
        assert!(a < b, "{out}");
        assert_eq!(out.matches("# TYPE p histogram").count(), 1);
    }
}
