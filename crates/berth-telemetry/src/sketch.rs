//! A mergeable log-bucket quantile sketch (the DDSketch idea): a positive value `x` is counted in bucket
//! `ceil(log_γ x)` with `γ = (1 + α) / (1 − α)`, and a bucket is read back as `2γ^i / (γ + 1)`, so any quantile is
//! within relative error `α` of a value of the right rank. Zero has its own counter. Merging two sketches adds
//! bucket counts, so per-period sketches roll up into coarser periods exactly as the data would have.
//!
//! CloudWatch offers no percentiles when any value is negative (reference §1.3); a negative value only sets
//! `negative`, and readers then report no percentile.
//!
//! Bounded: at most [`MAX_BUCKETS`] buckets. When exceeded, the lowest buckets collapse into one (their values
//! become the lowest kept bucket), which only degrades the lowest quantiles of extremely wide distributions.

use std::collections::BTreeMap;

/// Relative accuracy of every quantile read from a sketch.
pub const RELATIVE_ACCURACY: f64 = 0.01;
/// Most buckets one sketch keeps (covers 1e-9..1e9 at 1% accuracy with room to spare).
pub const MAX_BUCKETS: usize = 2048;
/// Values below this count as zero (they would need indices far below any real metric).
pub const MIN_POSITIVE: f64 = 1e-12;

fn gamma() -> f64 {
    (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY)
}

/// The bucket of a positive value.
pub fn bucket_of(x: f64) -> i32 {
    (x.ln() / gamma().ln()).ceil() as i32
}

/// The value a bucket stands for: within `RELATIVE_ACCURACY` of every value it holds.
pub fn bucket_value(i: i32) -> f64 {
    let g = gamma();
    2.0 * g.powi(i) / (g + 1.0)
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sketch {
    /// bucket index → count (counts are doubles: PutMetricData's `Counts` are).
    pub(crate) buckets: BTreeMap<i32, f64>,
    pub(crate) zero: f64,
    pub(crate) negative: bool,
}

impl Sketch {
    pub fn new() -> Self {
        Sketch::default()
    }

    /// Counts `value` `count` times.
    pub fn add(&mut self, value: f64, count: f64) {
        if count <= 0.0 {
            return;
        }
        if value < 0.0 {
            self.negative = true;
        } else if value < MIN_POSITIVE {
            self.zero += count;
        } else {
            *self.buckets.entry(bucket_of(value)).or_insert(0.0) += count;
            self.collapse();
        }
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Sketch) {
        for (i, c) in &other.buckets {
            *self.buckets.entry(*i).or_insert(0.0) += c;
        }
        self.zero += other.zero;
        self.negative |= other.negative;
        self.collapse();
    }

    fn collapse(&mut self) {
        while self.buckets.len() > MAX_BUCKETS {
            let Some((_, c)) = self.buckets.pop_first() else { return };
            if let Some(mut next) = self.buckets.first_entry() {
                *next.get_mut() += c;
            }
        }
    }

    /// Whether any negative value was seen (then CloudWatch reports no percentile).
    pub fn has_negative(&self) -> bool {
        self.negative
    }

    /// Total count of non-negative values.
    pub fn count(&self) -> f64 {
        self.zero + self.buckets.values().sum::<f64>()
    }

    /// Number of buckets in use.
    pub fn bucket_count(&self) -> usize {
        self.buckets.len()
    }

    /// (value, count) in increasing value order, zero first; values clamped to `[min, max]`.
    pub fn points(&self, min: f64, max: f64) -> Vec<(f64, f64)> {
        let mut out = Vec::with_capacity(self.buckets.len() + 1);
        if self.zero > 0.0 {
            out.push((0.0_f64.clamp(min, max.max(min)), self.zero));
        }
        for (i, c) in &self.buckets {
            out.push((bucket_value(*i).clamp(min, max.max(min)), *c));
        }
        out
    }

    /// The `q`-quantile (0 ≤ q ≤ 1) by nearest rank: the smallest value with at least `q·n` values at or below
    /// it (the lowest value for q = 0), clamped to `[min, max]`. `None` without data or with a negative value.
    pub fn quantile(&self, q: f64, min: f64, max: f64) -> Option<f64> {
        if self.negative {
            return None;
        }
        let n = self.count();
        if n <= 0.0 {
            return None;
        }
        let rank = (q * n).max(f64::MIN_POSITIVE);
        let mut seen = 0.0;
        let pts = self.points(min, max);
        for (v, c) in &pts {
            seen += c;
            if seen >= rank * (1.0 - 1e-12) {
                return Some(*v);
            }
        }
        pts.last().map(|(v, _)| *v)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small deterministic generator (splitmix64) so the measured errors are reproducible.
    pub(crate) struct Rng(pub u64);
    impl Rng {
        pub(crate) fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        /// Uniform in (0, 1).
        pub(crate) fn unit(&mut self) -> f64 {
            ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        }
        pub(crate) fn normal(&mut self) -> f64 {
            let (u, v) = (self.unit(), self.unit());
            (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
        }
    }

    /// Exact nearest-rank percentile of sorted data.
    pub(crate) fn exact(sorted: &[f64], q: f64) -> f64 {
        let n = sorted.len();
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        sorted[rank - 1]
    }

    #[test]
    fn bucket_value_is_within_the_accuracy_of_its_members() {
        let mut rng = Rng(7);
        for _ in 0..100_000 {
            let x = (rng.unit() * 40.0 - 20.0).exp();
            let v = bucket_value(bucket_of(x));
            assert!((v - x).abs() / x <= RELATIVE_ACCURACY + 1e-12, "x={x} v={v}");
        }
    }

    /// Measures the worst relative error of p1..p99.9 against exact percentiles of random data, for four
    /// distributions; the sketch is built from per-period sketches merged together (as a roll-up does).
    #[test]
    fn percentile_error_is_within_one_percent_measured() {
        type Gen = fn(&mut Rng) -> f64;
        let dists: [(&str, Gen); 4] = [
            ("lognormal latency (median 50 ms)", |r| (50e-3_f64).ln().exp() * (0.8 * r.normal()).exp()),
            ("uniform 0..100 percent", |r| r.unit() * 100.0),
            ("exponential mean 200", |r| -200.0 * r.unit().ln()),
            ("pareto bytes", |r| 1000.0 / r.unit().powf(1.0 / 1.5)),
        ];
        let qs = [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999];
        let mut worst_overall: f64 = 0.0;
        for (name, gen_value) in dists {
            let mut rng = Rng(42);
            let mut data = Vec::new();
            let mut merged = Sketch::new();
            for _period in 0..60 {
                let mut part = Sketch::new();
                for _ in 0..1000 {
                    let x = gen_value(&mut rng);
                    data.push(x);
                    part.add(x, 1.0);
                }
                merged.merge(&part);
            }
            data.sort_by(f64::total_cmp);
            let (min, max) = (data[0], data[data.len() - 1]);
            let mut worst: f64 = 0.0;
            for q in qs {
                let want = exact(&data, q);
                let got = merged.quantile(q, min, max).expect("quantile");
                worst = worst.max((got - want).abs() / want);
            }
            println!("{name}: worst relative error of p1..p99.9 over 60,000 values = {:.4}%", worst * 100.0);
            assert!(worst <= RELATIVE_ACCURACY + 1e-9, "{name}: {worst}");
            worst_overall = worst_overall.max(worst);
        }
        println!("worst overall: {:.4}% (bound {}%)", worst_overall * 100.0, RELATIVE_ACCURACY * 100.0);
    }

    #[test]
    fn zeros_negatives_and_extremes() {
        let mut s = Sketch::new();
        s.add(0.0, 3.0);
        s.add(10.0, 1.0);
        assert_eq!(s.quantile(0.5, 0.0, 10.0), Some(0.0));
        assert_eq!(s.quantile(1.0, 0.0, 10.0), Some(10.0), "clamped to the exact maximum");
        assert_eq!(s.quantile(0.0, 0.0, 10.0), Some(0.0));
        s.add(-1.0, 1.0);
        assert_eq!(s.quantile(0.5, -1.0, 10.0), None, "any negative value: no percentile");
        assert!(Sketch::new().quantile(0.5, 0.0, 0.0).is_none());
    }

    #[test]
    fn collapse_keeps_the_count_and_the_bound() {
        let mut s = Sketch::new();
        // 1e-12..1e12 at 1%: ~2700 buckets wanted, 2048 kept.
        let mut x = 1e-11;
        let mut n = 0.0;
        while x < 1e12 {
            s.add(x, 1.0);
            n += 1.0;
            x *= 1.01;
        }
        assert_eq!(s.bucket_count(), MAX_BUCKETS);
        assert_eq!(s.count(), n);
        let hi = s.quantile(0.99, 1e-11, 1e12).expect("q");
        assert!(hi > 1e11, "the high quantiles are untouched by collapsing: {hi}");
    }
}
