//! Query-string helpers shared by list routes: `limit` and `offset` must be
//! non-negative integers; values outside a route's range are clamped.

use std::collections::HashMap;

use crate::error::ApiError;
use crate::extract::parse_non_negative;

/// The page a list route serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: i64,
    pub offset: i64,
}

/// Reads `limit` (default `default`, clamped into `min..=max`) and `offset`.
pub fn page(
    q: &HashMap<String, String>,
    default: i64,
    min: i64,
    max: i64,
) -> Result<Page, ApiError> {
    let limit = parse_non_negative(q.get("limit").map(String::as_str), "limit")?
        .unwrap_or(default)
        .clamp(min, max);
    let offset = parse_non_negative(q.get("offset").map(String::as_str), "offset")?.unwrap_or(0);
    Ok(Page { limit, offset })
}

/// Reads an optional boolean (`true` / `false`).
pub fn flag(q: &HashMap<String, String>, name: &str) -> Result<Option<bool>, ApiError> {
    match q.get(name).map(String::as_str) {
        None | Some("") => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(other) => Err(ApiError::invalid_request(format!(
            "{name} must be true or false (got \"{}\")",
            other.chars().take(40).collect::<String>()
        ))),
    }
}
