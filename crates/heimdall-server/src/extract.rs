//! Request extractors whose failures are API errors: a body over the limit is
//! a 413, malformed JSON or a wrong type a 400 naming the problem, a bad query
//! string a 400, an id that is not a number a 400. Nothing here panics on
//! hostile input.

use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;

/// A JSON body decoded into `T`.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// The raw body, with the size limit enforced as a 413.
pub async fn read_body(req: Request, state: &AppState) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state)
        .await
        .map_err(|e| body_error(e, state.config.server.max_body_bytes))
}

/// Maps a body rejection: over the limit → 413, anything else → 400.
pub fn body_error(e: BytesRejection, limit: usize) -> ApiError {
    let text = format!("{e:?}");
    if text.contains("LengthLimit") || e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::too_large(limit)
    } else {
        ApiError::invalid_request(format!("could not read the request body: {e}"))
    }
}

/// Decodes JSON with a message that says what is wrong and where.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid_request(
            "the request body is empty; send a JSON object",
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                "the request body is not valid JSON"
            }
            _ => "the request body does not match the expected shape",
        };
        ApiError::invalid_request(format!("{what}: {}", shorten(&e.to_string())))
    })
}

/// Keeps error messages readable when they quote a hostile value.
fn shorten(s: &str) -> String {
    const MAX: usize = 300;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head}…")
    }
}

/// A query string decoded into `T`.
#[derive(Debug)]
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| QueryParams(v))
            .map_err(|e: QueryRejection| {
                ApiError::invalid_request(format!(
                    "malformed query string: {}",
                    shorten(&e.body_text())
                ))
            })
    }
}

/// Parses a numeric path id (`what` names it in the message).
pub fn parse_id(raw: &str, what: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>().ok().filter(|v| *v > 0).ok_or_else(|| {
        ApiError::invalid_request(format!(
            "{what} must be a positive integer (got \"{}\")",
            shorten(raw)
        ))
    })
}

/// Parses an optional non-negative integer query value (`limit`, `offset`).
pub fn parse_non_negative(raw: Option<&str>, what: &str) -> Result<Option<i64>, ApiError> {
    match raw {
        None | Some("") => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .or_else(|| {
                // A non-negative integer too large for 64 bits is still one:
                // it is clamped into the route's range like any other.
                let digits = v.strip_prefix('+').unwrap_or(v);
                (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
                    .then_some(i64::MAX)
            })
            .filter(|n| *n >= 0)
            .map(Some)
            .ok_or_else(|| {
                ApiError::invalid_request(format!(
                    "{what} must be a non-negative integer (got \"{}\")",
                    shorten(v)
                ))
            }),
    }
}
