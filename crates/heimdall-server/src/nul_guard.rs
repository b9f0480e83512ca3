//! Text the store cannot keep: PostgreSQL refuses a NUL character in text
//! (`invalid byte sequence for encoding "UTF8": 0x00`), which would surface
//! as a 500, while SQLite would store it, so the two backends would
//! disagree. The management API therefore refuses NUL before any handler
//! runs, with a 400 naming the field: in a path id or a query value
//! (`%00`), by a middleware on the management routers, and in a JSON body
//! (`\u0000`), by [`crate::extract::JsonBody`].
//!
//! Access profiles are the exception: their free text is stored encoded
//! (`heimdall_store`'s `encode_text`), so a NUL in a profile's name or
//! description survives on both backends, and their bodies are read with
//! [`crate::extract::JsonBodyKeepingNul`].
//!
//! Inference bodies are not checked: prompts are forwarded, never stored.

use axum::extract::{FromRequestParts, RawPathParams, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// Route middleware: 400 for a NUL in a path parameter or a query value, and
/// for a path parameter that is not UTF-8 once percent-decoded (which the
/// handlers' own extractors would refuse outside the error envelope).
pub async fn refuse_nul_in_path_and_query(req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    match RawPathParams::from_request_parts(&mut parts, &()).await {
        Ok(params) => {
            if let Some((name, _)) = params.iter().find(|(_, value)| value.contains('\0')) {
                return nul_error(name).into_response();
            }
        }
        Err(e) => {
            return ApiError::invalid_request(format!("the path is not valid: {}", e.body_text()))
                .into_response();
        }
    }
    if let Some(name) = parts.uri.query().and_then(nul_query_param) {
        return nul_error(&name).into_response();
    }
    next.run(Request::from_parts(parts, body)).await
}

/// The name of the first query parameter whose name or value holds `%00`.
fn nul_query_param(query: &str) -> Option<String> {
    query
        .split('&')
        .find(|pair| pair.contains("%00"))
        .map(|pair| {
            pair.split('=')
                .next()
                .unwrap_or(pair)
                .replace("%00", "\\u0000")
        })
}

/// 400 for a field holding NUL.
pub fn nul_error(field: &str) -> ApiError {
    ApiError::invalid_request(format!(
        "{field} must not contain a NUL character (\\u0000 or %00)"
    ))
    .with_param(field)
}

/// Byte offset of the first `\u0000` escape in valid JSON text. Raw NUL
/// bytes cannot occur (JSON strings must escape control characters), and
/// outside strings there are no backslashes, so a plain scan that skips
/// every escape pair finds exactly the escapes that decode to NUL.
pub fn find_nul_escape(json: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < json.len() {
        if json[i] == b'\\' {
            if json.get(i + 1..i + 6) == Some(b"u0000") {
                return Some(i);
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{find_nul_escape, nul_query_param};

    #[test]
    fn finds_only_escapes_that_decode_to_nul() {
        assert_eq!(find_nul_escape(br#"{"a": "x\u0000"}"#), Some(8));
        assert_eq!(find_nul_escape(br#"{"a": "x\\u0000"}"#), None);
        assert_eq!(find_nul_escape(br#"{"a": "x\\\u0000"}"#), Some(10));
        assert_eq!(find_nul_escape(br#"{"a": "\u00001"}"#), Some(7));
        assert_eq!(find_nul_escape(br#"{"a": "\u0001"}"#), None);
        assert_eq!(find_nul_escape(br#"{"a": "x\"}"#), None);
        assert_eq!(find_nul_escape(b"\\"), None);
    }

    #[test]
    fn names_the_query_parameter() {
        assert_eq!(
            nul_query_param("limit=1&search=a%00b").as_deref(),
            Some("search")
        );
        assert_eq!(nul_query_param("x%00=1").as_deref(), Some("x\\u0000"));
        assert_eq!(nul_query_param("search=abc"), None);
    }
}
