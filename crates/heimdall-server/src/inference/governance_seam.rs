//! The one place where governance plugs into the inference path
//! (governance.md §1–§4): identify the caller by virtual key, admit each
//! attempt (access, price, limits, with a reservation), and settle the
//! reservation with the real usage. Handlers call these at fixed points and
//! hold no governance logic of their own. Nothing here touches the store.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use heimdall_core::clock::Clock;
use heimdall_core::policy::{self, Demand, Denial, Grant, Settlement, key_hash};
use heimdall_core::pricing::{Price, TokenUse};
use heimdall_providers::types::Usage;

use super::routing::Target;
use crate::config::UnpricedModels;
use crate::error::ApiError;
use crate::state::AppState;

/// Who is calling.
#[derive(Debug, Clone)]
pub struct Caller {
    /// For logs: the user id, or `anonymous` when ungoverned.
    pub user: policy::CompactId,
    /// The identified caller; `None` for an ungoverned request (no key and
    /// `governance.require_virtual_key: false`).
    pub governed: Option<policy::Caller>,
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
pub struct Admission {
    inner: Option<policy::Admission>,
    price: Option<Price>,
    target: Target,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("governed", &self.inner.is_some())
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// Tokens and price split of a provider's usage.
fn token_use(u: &Usage) -> TokenUse {
    TokenUse {
        prompt: u.prompt_tokens,
        cached: u
            .prompt_tokens_details
            .as_ref()
            .and_then(|d| d.cached_tokens)
            .unwrap_or(0),
        completion: u.completion_tokens,
    }
}

impl Admission {
    /// Settles the reservation: `usage` is what the provider reported (if
    /// anything), `succeeded` whether the upstream call succeeded (only then
    /// is the request counted). Returns the cost charged, in nano-dollars
    /// (the request's record counts it in the metrics).
    pub fn settle(self, usage: Option<&Usage>, succeeded: bool) -> i64 {
        let tu = usage.map(token_use).unwrap_or_default();
        let cost = self.price.map_or(0, |p| p.cost(&tu));
        if let Some(a) = self.inner {
            let tokens = i64::try_from(tu.prompt.saturating_add(tu.completion)).unwrap_or(i64::MAX);
            a.reservation.settle(
                Settlement {
                    success: succeeded,
                    tokens,
                    cost,
                },
                self.clock.now(),
            );
        }
        cost
    }

    /// `x-ratelimit-*` and `x-heimdall-budget-remaining` for a governed answer.
    pub fn response_headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        let Some(a) = &self.inner else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(7);
        // numbers straight into header values: no text to allocate or check
        let mut put = |name: &'static str, value: HeaderValue| {
            out.push((HeaderName::from_static(name), value));
        };
        let text = |t: String| HeaderValue::from_str(&t).ok();
        let h = a.headrooms;
        if let Some(r) = h.requests {
            put("x-ratelimit-limit-requests", HeaderValue::from(r.limit));
            put(
                "x-ratelimit-remaining-requests",
                HeaderValue::from(r.remaining),
            );
            if let Some(v) = text(reset_text(r.reset_secs)) {
                put("x-ratelimit-reset-requests", v);
            }
        }
        if let Some(t) = h.tokens {
            put("x-ratelimit-limit-tokens", HeaderValue::from(t.limit));
            put(
                "x-ratelimit-remaining-tokens",
                HeaderValue::from(t.remaining),
            );
            if let Some(v) = text(reset_text(t.reset_secs)) {
                put("x-ratelimit-reset-tokens", v);
            }
        }
        if let Some(v) = h
            .budget_remaining
            .and_then(|b| text(format!("{:.6}", b as f64 / 1e9)))
        {
            put("x-heimdall-budget-remaining", v);
        }
        out
    }
}

/// A reset time as OpenAI writes it: `1s`, `6m0s`, `1h2m3s`.
pub fn reset_text(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
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
    let is_vk = |v: &&str| heimdall_core::keys::looks_like_virtual_key(v);
    bearer
        .filter(is_vk)
        .or_else(|| text("x-api-key").filter(is_vk))
        .or_else(|| text("x-goog-api-key").filter(is_vk))
        .or_else(|| text("api-key").filter(is_vk))
        .map(str::to_owned)
}

/// A governance denial in the error envelope (with `Retry-After` on 429).
pub fn denial_error(d: &Denial) -> ApiError {
    metrics::counter!("heimdall_governance_denials_total", "type" => d.kind()).increment(1);
    let status = StatusCode::from_u16(d.status()).unwrap_or(StatusCode::FORBIDDEN);
    let mut e = ApiError::new(status, d.kind(), d.message());
    if let Some(secs) = d.retry_after()
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        e = e.with_header(header::RETRY_AFTER, v);
    }
    e
}

/// §1–§2: who is calling, or 401 / 403.
pub fn identify(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    match find_virtual_key(headers) {
        None if state.config.governance.require_virtual_key => {
            Err(denial_error(&Denial::VirtualKeyRequired))
        }
        None => Ok(Caller {
            user: anonymous(),
            governed: None,
        }),
        Some(value) => {
            let snapshot = state.governance.snapshot();
            let hash = key_hash(&value);
            let now = state.clock.now();
            let caller = match policy::identify(&snapshot, Some(&hash), now) {
                Ok(c) => c,
                // The active copies are step 4 of the order (after the body's
                // 400s): `admit` refuses a caller without one.
                Err(Denial::NoActiveProfile) => match snapshot.key(&hash, now) {
                    Some(k) => policy::Caller {
                        key_id: k.key_id.clone(),
                        key_name: k.name.clone(),
                        user: k.user.clone(),
                    },
                    None => return Err(denial_error(&Denial::VirtualKeyNotFound)),
                },
                Err(d) => return Err(denial_error(&d)),
            };
            Ok(Caller {
                user: caller.user.user_id.clone(),
                governed: Some(caller),
            })
        }
    }
}

/// The user name of ungoverned requests, allocated once.
pub fn anonymous() -> policy::CompactId {
    static ANONYMOUS: OnceLock<policy::CompactId> = OnceLock::new();
    ANONYMOUS
        .get_or_init(|| policy::CompactId::Text(Arc::from("anonymous")))
        .clone()
}

/// The price of a target, by provider name then kind.
pub fn price_of(state: &AppState, target: &Target) -> Option<Price> {
    let kind = state
        .providers
        .snapshot()
        .get(&target.provider)
        .map_or("", |u| u.config().kind.as_str());
    let found = state
        .governance
        .prices()
        .lookup(&target.provider, kind, &target.model)
        .map(|(p, _)| p);
    if found.is_none() {
        note_unpriced(target);
    }
    found
}

/// Counts an unpriced request and logs each model once.
fn note_unpriced(target: &Target) {
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    metrics::counter!("heimdall_unpriced_requests_total",
        "provider" => target.provider.clone(), "model" => target.model.clone())
    .increment(1);
    let label = target.label();
    let seen = SEEN.get_or_init(|| Mutex::new(HashSet::new()));
    let mut set = seen.lock().unwrap_or_else(|e| e.into_inner());
    if set.len() < 10_000 && set.insert(label.clone()) {
        tracing::warn!(model = %label, "model has no price: its requests cost 0 (set one with PUT /api/pricing/{{provider}}/{{model}})");
    }
}

/// §3–§4 for one attempt: access, pricing, limits; reserves on success.
pub fn admit(
    state: &AppState,
    caller: &Caller,
    attempt: AttemptInfo<'_>,
) -> Result<Admission, ApiError> {
    let price = price_of(state, attempt.target);
    let mut admission = Admission {
        inner: None,
        price,
        target: attempt.target.clone(),
        clock: state.clock.clone(),
    };
    let Some(governed) = &caller.governed else {
        return Ok(admission);
    };
    let gov = &state.config.governance;
    let prompt = (attempt.body_bytes as u64).div_ceil(4);
    let output = attempt.output_cap.unwrap_or(gov.default_output_tokens);
    let demand = Demand {
        provider: &attempt.target.provider,
        model: &attempt.target.model,
        tokens: i64::try_from(prompt.saturating_add(output)).unwrap_or(i64::MAX),
        cost: price.map(|p| {
            p.cost(&TokenUse {
                prompt,
                cached: 0,
                completion: output,
            })
        }),
        deny_unpriced: gov.unpriced_models == UnpricedModels::Deny,
    };
    let a = policy::admit(
        governed,
        &demand,
        &state.governance.counters,
        Some(state.governance.dirty_sender()),
        state.clock.now(),
    )
    .map_err(|d| denial_error(&d))?;
    admission.inner = Some(a);
    Ok(admission)
}

/// Whether `GET /v1/models` shows `provider/model` to this caller.
pub fn may_list(state: &AppState, caller: &Caller, provider: &str, model: &str) -> bool {
    let Some(g) = &caller.governed else {
        return true;
    };
    let now = state.clock.now();
    g.user
        .copies
        .iter()
        .filter(|c| c.is_live(now))
        .any(|c| c.rules.grant(provider, model) == Grant::Granted)
}

/// Models a governed caller names exactly in its rules for `provider`.
pub fn listed_models(state: &AppState, caller: &Caller, provider: &str) -> Vec<String> {
    let Some(g) = &caller.governed else {
        return Vec::new();
    };
    let now = state.clock.now();
    g.user
        .copies
        .iter()
        .filter(|c| c.is_live(now))
        .filter_map(|c| c.rules.providers.get(provider))
        .flat_map(|r| r.listed.iter().cloned())
        .collect()
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

#[cfg(test)]
mod reset_tests {
    use super::reset_text;

    #[test]
    fn reset_times_are_written_like_openai() {
        assert_eq!(reset_text(1), "1s");
        assert_eq!(reset_text(360), "6m0s");
        assert_eq!(reset_text(3723), "1h2m3s");
    }
}
