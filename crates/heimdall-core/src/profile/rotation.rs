//! `auto_rotation_interval`: parsing of the forms clients send (integer
//! nanoseconds, or text such as `"30d"`, `"12h"`, `"1h30m"`) and the schedule
//! of the next rotation.

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

use super::input::ValidationError;

const NS_PER_SEC: i64 = 1_000_000_000;
/// The shortest interval accepted: one hour.
pub const MIN_ROTATION: i64 = 3600 * NS_PER_SEC;
/// The longest interval accepted: 365 days.
pub const MAX_ROTATION: i64 = 365 * 86_400 * NS_PER_SEC;

/// What a request may carry as `auto_rotation_interval`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum RotationInput {
    Nanos(i64),
    Text(String),
}

/// Parses an interval to nanoseconds; 0 means off. Out-of-range → error.
pub fn parse_rotation_interval(input: &RotationInput) -> Result<i64, ValidationError> {
    let ns = match input {
        RotationInput::Nanos(n) => *n,
        RotationInput::Text(t) => parse_text(t.trim())?,
    };
    if ns == 0 {
        return Ok(0);
    }
    if !(MIN_ROTATION..=MAX_ROTATION).contains(&ns) {
        return Err(ValidationError(
            "auto_rotation_interval must be between 1h and 365d (or 0 / \"\" to turn rotation off)"
                .to_string(),
        ));
    }
    Ok(ns)
}

fn parse_text(t: &str) -> Result<i64, ValidationError> {
    if t.is_empty() {
        return Ok(0);
    }
    if let Ok(n) = t.parse::<i64>() {
        return Ok(n);
    }
    parse_duration_ns(t).ok_or_else(|| {
        ValidationError(format!(
            "auto_rotation_interval \"{}\" is not a duration; use e.g. \"30d\", \"12h\", \"90m\" or integer nanoseconds",
            t.chars().take(40).collect::<String>()
        ))
    })
}

/// Parses a Go-style duration such as `"1s"`, `"500ms"`, `"1h30m"`, `"30d"`
/// to nanoseconds. `None` when it is not one (or overflows).
pub fn parse_duration_ns(t: &str) -> Option<i64> {
    let bad = || None::<i64>;
    if t.is_empty() {
        return None;
    }
    let mut total: i64 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 12 {
            return bad();
        }
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let per: i64 = match &rest[..unit_len] {
            "ns" => 1,
            "us" => 1_000,
            "ms" => 1_000_000,
            "s" => NS_PER_SEC,
            "m" => 60 * NS_PER_SEC,
            "h" => 3600 * NS_PER_SEC,
            "d" => 86_400 * NS_PER_SEC,
            "w" => 7 * 86_400 * NS_PER_SEC,
            _ => return bad(),
        };
        rest = &rest[unit_len..];
        total = n.checked_mul(per).and_then(|v| total.checked_add(v))?;
    }
    Some(total)
}

/// The `next_rotation_at` to store: none when rotation is off; the requested
/// instant when given (it must lie in the future); else now + interval.
pub fn next_rotation(
    interval_ns: i64,
    requested: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, ValidationError> {
    if interval_ns == 0 {
        return Ok(None);
    }
    match requested {
        Some(at) if at <= now => Err(ValidationError(
            "next_rotation_at must be in the future".to_string(),
        )),
        Some(at) => Ok(Some(at)),
        None => Ok(Some(now + Duration::nanoseconds(interval_ns))),
    }
}
