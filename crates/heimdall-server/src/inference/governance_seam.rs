//! The one place where governance (issue 5) plugs into the inference path.
//!
//! Today: finds the virtual key in the request headers (governance.md §1),
//! refuses a request without one when `governance.require_virtual_key` is
//! true, and lets everything else through ungoverned. Issue 5 replaces the
//! bodies of `identify`, `admit`, `may_list` and `Admission::settle`; the
//! handlers already call them at the right points and must not grow their own
//! governance logic.

use axum::http::{HeaderMap, StatusCode};
use heimdall_providers::types::Usage;

use super::routing::Target;
use crate::error::ApiError;
use crate::state::AppState;

/// Who is calling.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The virtual key as sent, when there was one.
    pub virtual_key: Option<String>,
    /// For logs: the user, or `anonymous` when ungoverned.
    pub user: String,
}

/// What admission needs to know about one attempt.
#[derive(Debug, Clone, Copy)]
pub struct AttemptInfo<'a> {
    /// Provider and model about to be tried.
    pub target: &'a Target,
    /// Request body size (prompt estimate = ceil(bytes / 4)).
    pub body_bytes: usize,
    /// `max_tokens` / `max_completion_tokens`, if set (0 output for embeddings).
    pub output_cap: Option<u64>,
}

/// A reservation held while an attempt runs; settled with the real usage.
#[derive(Debug)]
pub struct Admission {
    _private: (),
}

impl Admission {
    /// Settles the reservation with what was used (`None`: nothing reported).
    pub fn settle(self, _usage: Option<&Usage>) {}
}

/// Finds the virtual key: `x-bf-vk` (always a key), then `Authorization:
/// Bearer`, `x-api-key`, `x-goog-api-key`, `api-key`, which count only when
/// the value starts with `sk-bf-` (any case).
pub fn find_virtual_key(headers: &HeaderMap) -> Option<String> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(v) = text("x-bf-vk").filter(|v| !v.is_empty()) {
        return Some(v.to_owned());
    }
    let bearer = text("authorization").and_then(|v| {
        let (scheme, rest) = v.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
    });
    let is_vk = |v: &&str| v.len() >= 6 && v.as_bytes()[..6].eq_ignore_ascii_case(b"sk-bf-");
    bearer
        .filter(is_vk)
        .or_else(|| text("x-api-key").filter(is_vk))
        .or_else(|| text("x-goog-api-key").filter(is_vk))
        .or_else(|| text("api-key").filter(is_vk))
        .map(str::to_owned)
}

/// Step 2 of governance.md: who is calling, or 401.
pub fn identify(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    match find_virtual_key(headers) {
        None if state.config.governance.require_virtual_key => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "virtual_key_required",
            "this gateway requires a virtual key: send it as \"Authorization: Bearer sk-bf-…\" or in the x-bf-vk header",
        )),
        None => Ok(Caller {
            virtual_key: None,
            user: "anonymous".to_owned(),
        }),
        // Virtual keys arrive with governance (issue 5); until then none exists.
        Some(_) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "virtual_key_not_found",
            "the virtual key sent with this request does not exist",
        )),
    }
}

/// Steps 4–6 for one attempt: access, pricing, limits; reserves on success.
pub fn admit(
    _state: &AppState,
    _caller: &Caller,
    _attempt: AttemptInfo<'_>,
) -> Result<Admission, ApiError> {
    Ok(Admission { _private: () })
}

/// Whether `GET /v1/models` shows `provider/model` to this caller.
pub fn may_list(_caller: &Caller, _provider: &str, _model: &str) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn x_bf_vk_always_counts_and_wins() {
        let h = headers(&[
            ("x-bf-vk", "anything"),
            ("authorization", "Bearer sk-bf-other"),
        ]);
        assert_eq!(find_virtual_key(&h).as_deref(), Some("anything"));
    }

    #[test]
    fn other_headers_need_the_prefix() {
        assert_eq!(
            find_virtual_key(&headers(&[("authorization", "bearer SK-BF-abc")])).as_deref(),
            Some("SK-BF-abc")
        );
        assert_eq!(
            find_virtual_key(&headers(&[("authorization", "Bearer sk-openai")])),
            None
        );
        let h = headers(&[("authorization", "Bearer sk-x"), ("api-key", "sk-bf-z")]);
        assert_eq!(find_virtual_key(&h).as_deref(), Some("sk-bf-z"));
        assert_eq!(
            find_virtual_key(&headers(&[("x-api-key", "sk-ant-1")])),
            None
        );
    }
}
