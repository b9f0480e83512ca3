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

/// A JSON body decoded into `T`; a NUL character in any of its strings is
/// a 400 naming the field (`crate::nul_guard`), unless `KEEP_NUL`.
#[derive(Debug)]
pub struct JsonBody<T, const KEEP_NUL: bool = false>(pub T);

/// A JSON body with NUL characters allowed: for access profiles, whose free
/// text the store encodes so that NUL survives on both backends
/// (`heimdall_store`'s `encode_text`).
pub type JsonBodyKeepingNul<T> = JsonBody<T, true>;

impl<T: DeserializeOwned, const KEEP_NUL: bool> FromRequest<AppState> for JsonBody<T, KEEP_NUL> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req, state).await?;
        if KEEP_NUL {
            parse_json(&bytes).map(JsonBody)
        } else {
            parse_stored_json(&bytes).map(JsonBody)
        }
    }
}

/// Decodes a management body as [`parse_json`] does, and refuses a NUL
/// character in any of its strings with a 400 naming the field
/// (`crate::nul_guard` says why).
pub fn parse_stored_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value = parse_json(bytes)?;
    match crate::nul_guard::find_nul_escape(bytes) {
        None => Ok(value),
        Some(at) => Err(crate::nul_guard::nul_error(
            &json_path_at(bytes, 1, at).unwrap_or_else(|| "the request body".to_string()),
        )),
    }
}

/// How much of a body beyond the limit is read and thrown away before the
/// 413 is sent. Answering while the client is still sending makes the server
/// close a connection with unread data, and the client's TCP stack may then
/// drop the answer in favour of a reset; reading a bounded excess lets an
/// ordinary client see its 413.
const DRAIN_BEYOND_LIMIT: usize = 8 * 1024 * 1024;

/// The raw body, with the size limit enforced as a 413 (and the body read
/// timeout, enforced by the connection layer, as a 408).
pub async fn read_body(req: Request, state: &AppState) -> Result<Bytes, ApiError> {
    use http_body_util::BodyExt;

    let limit = state.config.server.max_body_bytes;
    let announced = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let drain_cap = limit.saturating_add(DRAIN_BEYOND_LIMIT);
    if announced.is_some_and(|n| n > drain_cap as u64) {
        return Err(ApiError::too_large(limit));
    }
    let mut body = req.into_body();
    let expected = announced.and_then(|n| usize::try_from(n).ok()).unwrap_or(0);
    let mut buf = bytes::BytesMut::with_capacity(expected.min(limit));
    let mut seen: usize = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(body_read_error)?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen = seen.saturating_add(data.len());
        if seen > drain_cap {
            break;
        }
        if seen <= limit {
            buf.extend_from_slice(&data);
        }
    }
    if seen > limit {
        return Err(ApiError::too_large(limit));
    }
    Ok(buf.freeze())
}

/// A body that broke off: past `server.body_read_timeout` (set on the body
/// by the connection layer) → 408 `request_timeout`, anything else → 400.
fn body_read_error(e: axum::Error) -> ApiError {
    let inner = e.into_inner();
    match crate::conn::BodyTimeout::find(inner.as_ref()) {
        Some(t) => ApiError::new(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!(
                "the request body did not arrive within {} (server.body_read_timeout)",
                crate::conn::human(&t.0)
            ),
        ),
        None => ApiError::invalid_request(format!("could not read the request body: {inner}")),
    }
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
        match e.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                ApiError::invalid_request(format!(
                    "the request body is not valid JSON: {}",
                    shorten(&e.to_string())
                ))
            }
            _ => {
                // Name the field: serde reports only a line and column.
                match json_path_at(bytes, e.line(), e.column()) {
                    Some(path) => ApiError::invalid_request(format!(
                        "the request body does not match the expected shape at {path}: {}",
                        shorten(&e.to_string())
                    ))
                    .with_param(path),
                    None => ApiError::invalid_request(format!(
                        "the request body does not match the expected shape: {}",
                        shorten(&e.to_string())
                    )),
                }
            }
        }
    })
}

/// One level of nesting while scanning JSON text.
enum Level {
    Object { key: Option<String> },
    Array { index: usize },
}

/// The path (`budgets[0].max_limit`) of the value at `line`:`column` (as
/// serde_json reports them: 1-based line, byte column) of syntactically
/// valid JSON text. `None` at the top level or when the text cannot be
/// followed.
fn json_path_at(bytes: &[u8], line: usize, column: usize) -> Option<String> {
    let mut offset = 0usize;
    for _ in 1..line {
        offset += bytes.get(offset..)?.iter().position(|b| *b == b'\n')? + 1;
    }
    let end = (offset + column).min(bytes.len());
    let mut stack: Vec<Level> = Vec::new();
    let mut i = 0usize;
    while i < end {
        match bytes[i] {
            b'"' => {
                let start = i;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                if let Some(Level::Object { key }) = stack.last_mut()
                    && key.is_none()
                {
                    *key = serde_json::from_slice::<String>(bytes.get(start..=i)?).ok();
                }
            }
            b'{' => stack.push(Level::Object { key: None }),
            b'[' => stack.push(Level::Array { index: 0 }),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Level::Object { key }) => *key = None,
                Some(Level::Array { index }) => *index += 1,
                None => {}
            },
            _ => {}
        }
        i += 1;
    }
    let mut path = String::new();
    for level in &stack {
        match level {
            Level::Object { key: Some(k) } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&shorten(k));
            }
            Level::Object { key: None } => {}
            Level::Array { index } => path.push_str(&format!("[{index}]")),
        }
    }
    (!path.is_empty()).then_some(path)
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

#[cfg(test)]
mod tests {
    use super::json_path_at;

    fn path_of_error<T: serde::de::DeserializeOwned + std::fmt::Debug>(
        text: &str,
    ) -> Option<String> {
        let e = serde_json::from_str::<T>(text).expect_err("must fail");
        json_path_at(text.as_bytes(), e.line(), e.column())
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        max_limit: f64,
        reset_duration: String,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        name: Option<String>,
        tags: Option<Vec<String>>,
        budgets: Option<Vec<Inner>>,
    }

    #[test]
    fn names_the_field_of_a_shape_error() {
        assert_eq!(
            path_of_error::<Outer>(r#"{"name": 5}"#).as_deref(),
            Some("name")
        );
        assert_eq!(
            path_of_error::<Outer>(r#"{"name": "a", "tags": ["x", 2]}"#).as_deref(),
            Some("tags[1]")
        );
        assert_eq!(
            path_of_error::<Outer>(
                "{\"budgets\": [{\"max_limit\": 1, \"reset_duration\": \"1d\"},\n {\"max_limit\": \"5\", \"reset_duration\": \"1w\"}]}"
            )
            .as_deref(),
            Some("budgets[1].max_limit")
        );
        assert_eq!(
            path_of_error::<Outer>(r#"{"budgets": [{"max_limit": 1}]}"#).as_deref(),
            Some("budgets[0]")
        );
        assert_eq!(
            path_of_error::<Outer>(r#"{"na\"me,[{": 1}"#).as_deref(),
            Some("na\"me,[{")
        );
        assert_eq!(path_of_error::<Outer>("[1]").as_deref(), Some("[0]"));
        assert_eq!(path_of_error::<Outer>("5"), None);
    }
}
