//! The seam between management reads and live usage counters. Management
//! responses show live usage; the governance engine (which owns the counters)
//! implements [`LiveUsage`]. Until it is plugged in, usage reads as zero.

use chrono::{DateTime, Utc};
use heimdall_core::copy::CounterKind;

/// Reads the live usage of one counter.
pub trait LiveUsage: Send + Sync {
    /// Used amount in the window starting at `window_start` (nano-dollars
    /// for budgets, tokens or requests for rate limits).
    fn used(&self, limit_id: &str, kind: CounterKind, window_start: Option<DateTime<Utc>>) -> i64;
}

/// No counters: every usage is zero.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoUsage;

impl LiveUsage for NoUsage {
    fn used(&self, _: &str, _: CounterKind, _: Option<DateTime<Utc>>) -> i64 {
        0
    }
}
