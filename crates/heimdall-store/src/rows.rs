//! Conversions between column values and domain values, shared by the
//! per-concern modules.

use chrono::{DateTime, TimeZone, Utc};

use crate::error::StoreError;

pub(crate) fn ts(dt: DateTime<Utc>) -> i64 {
    dt.timestamp_millis()
}

pub(crate) fn opt_ts(dt: Option<DateTime<Utc>>) -> Option<i64> {
    dt.map(ts)
}

pub(crate) fn from_ts(ms: i64) -> Result<DateTime<Utc>, StoreError> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .ok_or_else(|| StoreError::Corrupt(format!("timestamp {ms} out of range")))
}

pub(crate) fn from_opt_ts(ms: Option<i64>) -> Result<Option<DateTime<Utc>>, StoreError> {
    ms.map(from_ts).transpose()
}

pub(crate) fn flag(b: bool) -> i64 {
    i64::from(b)
}
