//! The Prometheus text exposition format (0.0.4) and a lock-free histogram, shared by the server's and the
//! proxy's `/metrics`: `# HELP` and `# TYPE` once per family, label values escaped, histograms as cumulative
//! `_bucket{le=...}` plus `_sum` and `_count`. Names follow Prometheus' conventions: `berth_` prefix, base units
//! (`_seconds`, `_bytes`), `_total` for counters.

use std::fmt::{Display, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The content type of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds (seconds) for request-like latencies: 1 ms to 10 s.
pub const LATENCY_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// A histogram of durations over fixed bounds; observing is three relaxed atomic adds.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Non-cumulative counts per bound; the last one is +Inf.
    buckets: Box<[AtomicU64]>,
    sum_ns: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_ns: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = self.bounds.iter().position(|b| secs <= *b).unwrap_or(self.bounds.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Sum of the observations, in seconds.
    pub fn sum_seconds(&self) -> f64 {
        self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new(LATENCY_BUCKETS)
    }
}

/// An exposition being written.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    pub fn new() -> Self {
        Exposition::default()
    }

    /// Starts a family: its `# HELP` and `# TYPE` (`counter`, `gauge`, `histogram`).
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    /// One sample line.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.out.push_str(name);
        write_labels(&mut self.out, labels);
        let _ = writeln!(self.out, " {value}");
    }

    /// A float sample (`NaN`, `+Inf` and `-Inf` spelled as Prometheus reads them).
    pub fn sample_f64(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        if value.is_nan() {
            self.sample(name, labels, "NaN");
        } else if value.is_infinite() {
            self.sample(name, labels, if value > 0.0 { "+Inf" } else { "-Inf" });
        } else {
            self.sample(name, labels, value);
        }
    }

    /// A histogram's samples (the family must have been started as `histogram`).
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &Histogram) {
        let mut cumulative = 0;
        let bucket = format!("{name}_bucket");
        for (i, count) in h.buckets.iter().enumerate() {
            cumulative += count.load(Ordering::Relaxed);
            let le = h.bounds.get(i).map_or_else(|| "+Inf".to_string(), |b| b.to_string());
            let mut with_le = labels.to_vec();
            with_le.push(("le", &le));
            self.sample(&bucket, &with_le, cumulative);
        }
        self.sample_f64(&format!("{name}_sum"), labels, h.sum_seconds());
        // The count is the +Inf bucket's, so a scrape between the adds never shows count < +Inf.
        self.sample(&format!("{name}_count"), labels, cumulative);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

fn write_labels(out: &mut String, labels: &[(&str, &str)]) {
    if labels.is_empty() {
        return;
    }
    out.push('{');
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{k}=\"{}\"", escape(v));
    }
    out.push('}');
}

/// A label value escaped: `\` `"` and newline.
pub fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_families_samples_and_histograms() {
        let h = Histogram::new(&[0.01, 0.1]);
        h.observe(Duration::from_millis(5));
        h.observe(Duration::from_millis(50));
        h.observe(Duration::from_secs(2));
        let mut e = Exposition::new();
        e.family("berth_x_seconds", "histogram", "X.");
        e.histogram("berth_x_seconds", &[("op", "a\"b")], &h);
        e.family("berth_y_total", "counter", "Y.");
        e.sample("berth_y_total", &[], 3);
        e.family("berth_z", "gauge", "Z.");
        e.sample_f64("berth_z", &[], f64::NAN);
        let want = "# HELP berth_x_seconds X.\n# TYPE berth_x_seconds histogram\n\
            berth_x_seconds_bucket{op=\"a\\\"b\",le=\"0.01\"} 1\n\
            berth_x_seconds_bucket{op=\"a\\\"b\",le=\"0.1\"} 2\n\
            berth_x_seconds_bucket{op=\"a\\\"b\",le=\"+Inf\"} 3\n\
            berth_x_seconds_sum{op=\"a\\\"b\"} 2.055\n\
            berth_x_seconds_count{op=\"a\\\"b\"} 3\n\
            # HELP berth_y_total Y.\n# TYPE berth_y_total counter\nberth_y_total 3\n\
            # HELP berth_z Z.\n# TYPE berth_z gauge\nberth_z NaN\n";
        assert_eq!(e.finish(), want);
    }
}
