//! The per-period aggregate of one series: SampleCount, Sum, Minimum, Maximum (exact) plus a [`Sketch`] for
//! percentiles and the trimmed statistics. Aggregates merge (a roll-up into a coarser period is a merge), and encode
//! to a compact byte string (what the store keeps; its length is what "bytes per series" counts).
//!
//! A statistic set can feed percentiles only when SampleCount = 1 with Min = Max = Sum, or Min = Max with
//! Sum = Min × SampleCount (reference §1.3); any other statistic set makes the aggregate percentile-less
//! (`sketch: None`) for good, as CloudWatch does.

use crate::metric::{Datum, StatisticSet};
use crate::sketch::Sketch;

#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    pub sample_count: f64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    /// `None` once a statistic set that cannot give percentiles was merged in.
    pub sketch: Option<Sketch>,
}

impl Aggregate {
    /// An aggregate of one datum.
    pub fn of(datum: &Datum) -> Aggregate {
        match datum {
            Datum::Value(v) => Aggregate::of_values(&[(*v, 1.0)]),
            Datum::Values(pairs) => Aggregate::of_values(pairs),
            Datum::Statistics(s) => Aggregate::of_statistics(s),
        }
    }

    /// An aggregate of (value, count) pairs (counts > 0; empty input gives an empty aggregate).
    pub fn of_values(pairs: &[(f64, f64)]) -> Aggregate {
        let mut sketch = Sketch::new();
        let (mut n, mut sum, mut min, mut max) = (0.0, 0.0, f64::INFINITY, f64::NEG_INFINITY);
        for (v, c) in pairs {
            n += c;
            sum += v * c;
            min = min.min(*v);
            max = max.max(*v);
            sketch.add(*v, *c);
        }
        Aggregate { sample_count: n, sum, min, max, sketch: Some(sketch) }
    }

    pub fn of_statistics(s: &StatisticSet) -> Aggregate {
        let single = s.sample_count == 1.0 && s.minimum == s.maximum && s.sum == s.minimum;
        let constant = s.minimum == s.maximum && (s.sum - s.minimum * s.sample_count).abs() <= 1e-9 * s.sum.abs();
        let sketch = (single || constant).then(|| {
            let mut k = Sketch::new();
            k.add(s.minimum, s.sample_count);
            k
        });
        Aggregate { sample_count: s.sample_count, sum: s.sum, min: s.minimum, max: s.maximum, sketch }
    }

    pub fn merge(&mut self, other: &Aggregate) {
        self.sample_count += other.sample_count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        match (&mut self.sketch, &other.sketch) {
            (Some(a), Some(b)) => a.merge(b),
            _ => self.sketch = None,
        }
    }

    pub fn average(&self) -> f64 {
        self.sum / self.sample_count
    }

    /// Whether percentiles can be read (a sketch is kept and no value was negative).
    pub fn has_percentiles(&self) -> bool {
        self.sketch.as_ref().is_some_and(|s| !s.has_negative())
    }

    /// The compact byte form: a flags byte, the four exact fields, then the sketch as (zigzag delta index, count)
    /// varints. Counts are varints when every count is a whole number (the usual case), else 8-byte doubles.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(48);
        let whole = |c: f64| c >= 0.0 && c.fract() == 0.0 && c < 9.0e15;
        let sk_whole = self.sketch.as_ref().is_none_or(|s| whole(s.zero) && s.buckets.values().all(|c| whole(*c)));
        let count_whole = whole(self.sample_count);
        let mut flags = 0u8;
        if self.sketch.is_some() {
            flags |= 1;
        }
        if self.sketch.as_ref().is_some_and(Sketch::has_negative) {
            flags |= 2;
        }
        if !sk_whole {
            flags |= 4;
        }
        if !count_whole {
            flags |= 8;
        }
        // Min = max (a constant period) is common: store it once.
        if self.min == self.max {
            flags |= 16;
        }
        out.push(flags);
        if count_whole {
            put_varint(&mut out, self.sample_count as u64);
        } else {
            out.extend_from_slice(&self.sample_count.to_le_bytes());
        }
        out.extend_from_slice(&self.sum.to_le_bytes());
        out.extend_from_slice(&self.min.to_le_bytes());
        if self.min != self.max {
            out.extend_from_slice(&self.max.to_le_bytes());
        }
        if let Some(s) = &self.sketch {
            let put_count = |out: &mut Vec<u8>, c: f64| {
                if sk_whole {
                    put_varint(out, c as u64);
                } else {
                    out.extend_from_slice(&c.to_le_bytes());
                }
            };
            put_count(&mut out, s.zero);
            put_varint(&mut out, s.buckets.len() as u64);
            let mut prev = 0i64;
            for (i, c) in &s.buckets {
                let i = i64::from(*i);
                put_varint(&mut out, zigzag(i - prev));
                prev = i;
                put_count(&mut out, *c);
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Aggregate, DecodeError> {
        let mut r = Reader { bytes, at: 0 };
        let flags = r.byte()?;
        let sk_whole = flags & 4 == 0;
        let sample_count = if flags & 8 == 0 { r.varint()? as f64 } else { r.f64()? };
        let sum = r.f64()?;
        let min = r.f64()?;
        let max = if flags & 16 != 0 { min } else { r.f64()? };
        let sketch = if flags & 1 != 0 {
            let mut s = Sketch::new();
            let count = |r: &mut Reader| -> Result<f64, DecodeError> {
                if sk_whole { Ok(r.varint()? as f64) } else { r.f64() }
            };
            s.zero = count(&mut r)?;
            s.negative = flags & 2 != 0;
            let n = r.varint()?;
            if n > crate::sketch::MAX_BUCKETS as u64 {
                return Err(DecodeError);
            }
            let mut prev = 0i64;
            for _ in 0..n {
                prev = prev.checked_add(unzigzag(r.varint()?)).ok_or(DecodeError)?;
                let i = i32::try_from(prev).map_err(|_| DecodeError)?;
                s.buckets.insert(i, count(&mut r)?);
            }
            Some(s)
        } else {
            None
        };
        if r.at != bytes.len() {
            return Err(DecodeError);
        }
        Ok(Aggregate { sample_count, sum, min, max, sketch })
    }
}

/// Bytes that are not an encoded aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not an encoded aggregate")]
pub struct DecodeError;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, DecodeError> {
        let b = *self.bytes.get(self.at).ok_or(DecodeError)?;
        self.at += 1;
        Ok(b)
    }
    fn f64(&mut self) -> Result<f64, DecodeError> {
        let s = self.bytes.get(self.at..self.at + 8).ok_or(DecodeError)?;
        self.at += 8;
        let mut b = [0u8; 8];
        b.copy_from_slice(s);
        Ok(f64::from_le_bytes(b))
    }
    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sketch::tests::Rng;

    #[test]
    fn statistic_sets_keep_percentiles_only_when_exact() {
        let set = |n, sum, min, max| StatisticSet { sample_count: n, sum, minimum: min, maximum: max };
        for (case, s, percentiles) in [
            ("one sample, min = max = sum", set(1.0, 5.0, 5.0, 5.0), true),
            ("constant, sum = min × n", set(4.0, 20.0, 5.0, 5.0), true),
            ("spread", set(4.0, 20.0, 2.0, 8.0), false),
            ("min = max but sum disagrees", set(4.0, 21.0, 5.0, 5.0), false),
        ] {
            assert_eq!(Aggregate::of_statistics(&s).has_percentiles(), percentiles, "{case}");
        }
        let mut a = Aggregate::of(&Datum::Value(1.0));
        a.merge(&Aggregate::of_statistics(&set(4.0, 20.0, 2.0, 8.0)));
        assert!(!a.has_percentiles(), "one inexact set removes percentiles for the period");
        assert_eq!((a.sample_count, a.sum, a.min, a.max), (5.0, 21.0, 1.0, 8.0));
    }

    #[test]
    fn encoding_round_trips() {
        let mut rng = Rng(3);
        let mut samples = vec![
            Aggregate::of(&Datum::Value(42.0)),
            Aggregate::of(&Datum::Value(-3.5)),
            Aggregate::of(&Datum::Values(vec![(0.0, 2.0), (1.5, 0.5), (1e100, 3.0)])),
            Aggregate::of_statistics(&StatisticSet { sample_count: 7.5, sum: 1.0, minimum: -2.0, maximum: 9.0 }),
        ];
        let mut big = Aggregate::of(&Datum::Value(1.0));
        for _ in 0..5000 {
            big.merge(&Aggregate::of(&Datum::Value(rng.unit() * 1e6)));
        }
        samples.push(big);
        for a in samples {
            let bytes = a.encode();
            assert_eq!(Aggregate::decode(&bytes), Ok(a.clone()));
            assert_eq!(Aggregate::decode(&bytes[..bytes.len() - 1]), Err(DecodeError), "truncated");
            let mut longer = bytes.clone();
            longer.push(0);
            assert_eq!(Aggregate::decode(&longer), Err(DecodeError), "trailing bytes");
        }
        assert_eq!(Aggregate::of(&Datum::Value(42.0)).encode().len(), 1 + 1 + 8 + 8 + 1 + 1 + 2 + 1);
    }

    /// Stored bytes come back from a file: decoding any bytes (random, or a valid encoding with one byte changed)
    /// returns an aggregate or an error, never panics, and what it returns survives an encode/decode round trip.
    #[test]
    fn decoding_arbitrary_bytes_never_panics() {
        let mut rng = Rng(17);
        let valid = Aggregate::of(&Datum::Values((1..40).map(|v| (f64::from(v) * 1.7, 2.0)).collect())).encode();
        let mut decoded = 0;
        for round in 0..20_000 {
            let bytes: Vec<u8> = if round % 2 == 0 {
                let len = (rng.next_u64() % 64) as usize;
                (0..len).map(|_| rng.next_u64() as u8).collect()
            } else {
                let mut b = valid.clone();
                let i = (rng.next_u64() as usize) % b.len();
                b[i] = rng.next_u64() as u8;
                b
            };
            if let Ok(a) = Aggregate::decode(&bytes) {
                decoded += 1;
                if a.sum.is_nan() || a.min.is_nan() || a.max.is_nan() || a.sample_count.is_nan() {
                    continue; // NaN != NaN: equality of the re-encoding is not meaningful
                }
                assert_eq!(Aggregate::decode(&a.encode()), Ok(a.clone()), "{bytes:?}");
            }
        }
        assert!(decoded > 0, "some mutations still decode");
    }
}
