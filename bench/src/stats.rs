//! The arithmetic of the report: percentiles out of an HDR histogram,
//! overhead (a target minus the baseline, percentile by percentile), ratios
//! to the floor, and CPU time per request. Pure functions only: no clock, no
//! I/O, so that every figure the report shows can be checked by a unit test.

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latencies are recorded in nanoseconds, from 1 ns to 60 s, at three
/// significant digits (0.1 % resolution).
pub const MAX_RECORDABLE_NS: u64 = 60_000_000_000;

/// A fresh latency histogram with the bounds every recorder uses.
pub fn new_histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, MAX_RECORDABLE_NS, 3)?)
}

/// The percentiles the report shows, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct Percentiles {
    pub count: u64,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

fn ns_to_us(ns: u64) -> f64 {
    ns as f64 / 1_000.0
}

/// Summarises a histogram of nanoseconds; an empty one gives all zeros.
pub fn summarize(h: &Histogram<u64>) -> Percentiles {
    if h.is_empty() {
        return Percentiles::default();
    }
    Percentiles {
        count: h.len(),
        mean_us: h.mean() / 1_000.0,
        p50_us: ns_to_us(h.value_at_quantile(0.50)),
        p90_us: ns_to_us(h.value_at_quantile(0.90)),
        p99_us: ns_to_us(h.value_at_quantile(0.99)),
        p999_us: ns_to_us(h.value_at_quantile(0.999)),
        max_us: ns_to_us(h.max()),
    }
}

/// What a target adds over the baseline at each percentile, in microseconds.
/// Percentiles are subtracted one by one (a difference of distributions'
/// quantiles, not a distribution of differences): that is how a gateway's
/// overhead is quoted, and it can be negative when the noise is larger than
/// the overhead.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct Overhead {
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
}

/// `target - baseline`, percentile by percentile.
pub fn overhead(target: &Percentiles, baseline: &Percentiles) -> Overhead {
    Overhead {
        p50_us: target.p50_us - baseline.p50_us,
        p90_us: target.p90_us - baseline.p90_us,
        p99_us: target.p99_us - baseline.p99_us,
        p999_us: target.p999_us - baseline.p999_us,
    }
}

/// `value / reference`, or `None` when the reference is not positive (a
/// floor overhead at or below zero means the run was too noisy to compare).
pub fn ratio(value: f64, reference: f64) -> Option<f64> {
    (reference > 0.0 && value.is_finite()).then(|| value / reference)
}

/// CPU microseconds per request from a delta of clock ticks
/// (`utime + stime` of `/proc/<pid>/stat`).
pub fn cpu_us_per_request(ticks: u64, ticks_per_second: u64, requests: u64) -> Option<f64> {
    if requests == 0 || ticks_per_second == 0 {
        return None;
    }
    Some(ticks as f64 * 1_000_000.0 / ticks_per_second as f64 / requests as f64)
}

/// Whether a measured ratio meets a "≤ limit" target (`None` when unknown).
pub fn at_most(measured: Option<f64>, limit: f64) -> Option<bool> {
    measured.map(|m| m <= limit)
}

/// Whether a measured ratio meets a "≥ limit" target (`None` when unknown).
pub fn at_least(measured: Option<f64>, limit: f64) -> Option<bool> {
    measured.map(|m| m >= limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(values_us: &[u64]) -> Histogram<u64> {
        let mut h = new_histogram().unwrap();
        for v in values_us {
            h.record(v * 1_000).unwrap();
        }
        h
    }

    #[test]
    fn percentiles_of_a_uniform_distribution() {
        let values: Vec<u64> = (1..=1000).collect();
        let p = summarize(&hist(&values));
        assert_eq!(p.count, 1000);
        // three significant digits: within 0.1 %
        assert!((p.p50_us - 500.0).abs() <= 0.5, "{p:?}");
        assert!((p.p90_us - 900.0).abs() <= 0.9, "{p:?}");
        assert!((p.p99_us - 990.0).abs() <= 1.0, "{p:?}");
        assert!((p.p999_us - 999.0).abs() <= 1.0, "{p:?}");
        assert!((p.max_us - 1000.0).abs() <= 1.0, "{p:?}");
        assert!((p.mean_us - 500.5).abs() <= 0.6, "{p:?}");
    }

    #[test]
    fn an_empty_histogram_summarises_to_zeros() {
        assert_eq!(summarize(&new_histogram().unwrap()), Percentiles::default());
    }

    #[test]
    fn overhead_subtracts_percentile_by_percentile() {
        let base = Percentiles {
            p50_us: 100.0,
            p90_us: 150.0,
            p99_us: 300.0,
            p999_us: 900.0,
            ..Percentiles::default()
        };
        let target = Percentiles {
            p50_us: 220.0,
            p90_us: 260.0,
            p99_us: 280.0,
            p999_us: 1500.0,
            ..Percentiles::default()
        };
        let o = overhead(&target, &base);
        assert_eq!(o.p50_us, 120.0);
        assert_eq!(o.p90_us, 110.0);
        // noisier baseline: a negative overhead is reported as it is
        assert_eq!(o.p99_us, -20.0);
        assert_eq!(o.p999_us, 600.0);
    }

    #[test]
    fn ratios_need_a_positive_reference() {
        assert_eq!(ratio(150.0, 100.0), Some(1.5));
        assert_eq!(ratio(150.0, 0.0), None);
        assert_eq!(ratio(150.0, -3.0), None);
        assert_eq!(ratio(f64::NAN, 1.0), None);
    }

    #[test]
    fn cpu_per_request_from_ticks() {
        // 50 ticks at 100 Hz = 0.5 s over 10,000 requests = 50 µs each
        assert_eq!(cpu_us_per_request(50, 100, 10_000), Some(50.0));
        assert_eq!(cpu_us_per_request(50, 100, 0), None);
        assert_eq!(cpu_us_per_request(50, 0, 10), None);
    }

    #[test]
    fn target_checks() {
        assert_eq!(at_most(Some(1.2), 1.2), Some(true));
        assert_eq!(at_most(Some(1.21), 1.2), Some(false));
        assert_eq!(at_least(Some(0.69), 0.7), Some(false));
        assert_eq!(at_least(None, 0.7), None);
    }
}
