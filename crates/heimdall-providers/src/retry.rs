//! Backoff between retries of the same provider: pure arithmetic.
//!
//! Exponential from `retry_backoff_initial`, capped at `retry_backoff_max`,
//! with jitter so that many clients do not retry in lockstep, and never shorter
//! than an upstream `Retry-After` (still capped). No sleeping happens here.

use std::time::Duration;

/// Delay before retry number `attempt` (0 = first retry). `jitter` is uniform
/// in [0, 1) and scales the delay into [50 %, 100 %] of the exponential value.
pub fn backoff(
    attempt: u32,
    initial_ms: u64,
    max_ms: u64,
    retry_after: Option<Duration>,
    jitter: f64,
) -> Duration {
    let max_ms = max_ms.min(crate::config::MAX_BACKOFF_MS);
    let exp = initial_ms
        .saturating_mul(1u64 << attempt.min(20))
        .min(max_ms);
    let jittered = (exp as f64 * (0.5 + 0.5 * jitter.clamp(0.0, 1.0))) as u64;
    let floor = retry_after.map_or(0, |d| d.as_millis() as u64).min(max_ms);
    Duration::from_millis(jittered.max(floor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_and_caps() {
        assert_eq!(backoff(0, 500, 5000, None, 1.0), Duration::from_millis(500));
        assert_eq!(
            backoff(1, 500, 5000, None, 1.0),
            Duration::from_millis(1000)
        );
        assert_eq!(
            backoff(5, 500, 5000, None, 1.0),
            Duration::from_millis(5000)
        );
        assert_eq!(
            backoff(40, 500, 5000, None, 1.0),
            Duration::from_millis(5000)
        );
    }

    #[test]
    fn never_longer_than_the_cap_whatever_the_input() {
        let cap = Duration::from_millis(crate::config::MAX_BACKOFF_MS);
        assert_eq!(backoff(u32::MAX, u64::MAX, u64::MAX, None, 1.0), cap);
        let d = backoff(0, 0, u64::MAX, Some(Duration::MAX), 0.0);
        assert_eq!(d, cap);
    }

    #[test]
    fn jitter_stays_in_upper_half() {
        assert_eq!(backoff(0, 500, 5000, None, 0.0), Duration::from_millis(250));
    }

    #[test]
    fn honours_retry_after_within_cap() {
        let d = backoff(0, 10, 5000, Some(Duration::from_secs(2)), 0.0);
        assert_eq!(d, Duration::from_millis(2000));
        let d = backoff(0, 10, 1000, Some(Duration::from_secs(60)), 0.0);
        assert_eq!(d, Duration::from_millis(1000));
    }
}
