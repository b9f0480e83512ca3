//! The inference edge: OpenAI- and Anthropic-dialect routes. Registered by
//! `router::build` with one merge.
//!
//! A request, in order: body (413) → key (`governance_seam::identify`, 401)
//! → JSON and `model` (400, `request`) → targets (`routing`) → per attempt:
//! admit (`governance_seam::admit`), call the provider (retries and key choice
//! inside `heimdall_providers::Upstream`), fall back on transient failure
//! (`attempts`) → answer (`sse` for streams) → settle and log (`telemetry`,
//! on drop). The request path never touches the store.

mod attempts;
mod chat;
mod endpoints;
pub mod governance_seam;
mod messages;
mod request;
pub mod routing;
mod sse;
mod telemetry;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use heimdall_providers::ChatBytes;
use serde::Serialize;
use serde_json::{Value, json};

use self::routing::{RouteKind, Target};
use crate::error::anthropic_errors;
use crate::state::AppState;

/// Inference routes (`/v1/*`, `/openai/v1/*`, `/anthropic/v1/*`).
pub fn routes() -> Router<AppState> {
    let anthropic = Router::new()
        .route(
            "/anthropic/v1/messages",
            post(|State(s): State<AppState>, r: Request| messages::handle(s, r)),
        )
        .layer(middleware::from_fn(anthropic_errors));
    Router::new()
        .merge(openai_routes("/v1", RouteKind::V1))
        .merge(openai_routes("/openai/v1", RouteKind::OpenAi))
        .merge(anthropic)
}

fn openai_routes(prefix: &str, route: RouteKind) -> Router<AppState> {
    Router::new()
        .route(
            &format!("{prefix}/chat/completions"),
            post(move |State(s): State<AppState>, r: Request| chat::handle(s, route, r)),
        )
        .route(
            &format!("{prefix}/embeddings"),
            post(move |State(s): State<AppState>, r: Request| endpoints::embeddings(s, route, r)),
        )
        .route(
            &format!("{prefix}/models"),
            get(|State(s): State<AppState>, h: HeaderMap| endpoints::models(s, h)),
        )
}

/// `extra_fields` of a non-stream answer.
#[derive(Serialize)]
struct ExtraFields<'a> {
    provider: &'a str,
    model_requested: &'a str,
    model_used: &'a str,
}

/// A non-stream chat answer passed on as bytes: `extra_fields` is spliced
/// in before the closing brace, so the upstream's body is neither parsed
/// into a tree nor re-encoded (its field order is kept too). A body that
/// already has `extra_fields`, or that does not end in `}`, takes the
/// slower path through a JSON tree.
fn json_bytes_answer(answer: ChatBytes, target: &Target, requested: &str) -> Response {
    let extra = ExtraFields {
        provider: &target.provider,
        model_requested: requested,
        model_used: &target.model,
    };
    let body = match splice_extra_fields(&answer.body, &extra) {
        Some(b) if !answer.has_extra_fields => b,
        _ => {
            let value: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
            return json_answer(&value, target, requested);
        }
    };
    let mut resp = Response::new(axum::body::Body::from(body));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(&target.label()) {
        h.insert("x-heimdall-provider", v);
    }
    resp
}

/// `{…}` → `{…,"extra_fields":{…}}`; `None` if `body` is not an object's text.
fn splice_extra_fields(body: &[u8], extra: &ExtraFields<'_>) -> Option<Vec<u8>> {
    let end = body.iter().rposition(|b| !b.is_ascii_whitespace())?;
    let start = body.iter().position(|b| !b.is_ascii_whitespace())?;
    if body[start] != b'{' || body[end] != b'}' || start >= end {
        return None;
    }
    let empty = body[start + 1..end].iter().all(u8::is_ascii_whitespace);
    let mut out = Vec::with_capacity(end + 128);
    out.extend_from_slice(&body[..end]);
    if !empty {
        out.push(b',');
    }
    out.extend_from_slice(b"\"extra_fields\":");
    serde_json::to_writer(&mut out, extra).ok()?;
    out.push(b'}');
    Some(out)
}

/// A non-stream JSON answer with `extra_fields` and `x-heimdall-provider`.
fn json_answer<T: Serialize>(body: &T, target: &Target, requested: &str) -> Response {
    let mut value = serde_json::to_value(body).unwrap_or(Value::Null);
    if let Some(obj) = value.as_object_mut() {
        obj.insert(
            "extra_fields".into(),
            json!({"provider": target.provider, "model_requested": requested, "model_used": target.model}),
        );
    }
    let mut resp = axum::Json(value).into_response();
    if let Ok(v) = HeaderValue::from_str(&target.label()) {
        resp.headers_mut().insert("x-heimdall-provider", v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extra() -> ExtraFields<'static> {
        ExtraFields {
            provider: "openai",
            model_requested: "openai/m\"x",
            model_used: "m\"x",
        }
    }

    fn spliced(body: &str) -> Option<Value> {
        splice_extra_fields(body.as_bytes(), &extra())
            .map(|b| serde_json::from_slice(&b).expect("valid JSON"))
    }

    #[test]
    fn extra_fields_are_spliced_into_the_object_keeping_its_fields() {
        let v = spliced("{\"id\":\"a\",\"choices\":[]}\n").unwrap();
        assert_eq!(v["id"], "a");
        assert_eq!(v["extra_fields"]["provider"], "openai");
        assert_eq!(v["extra_fields"]["model_requested"], "openai/m\"x");
        assert_eq!(v["extra_fields"]["model_used"], "m\"x");
        let empty = spliced(" { } ").unwrap();
        assert_eq!(empty.as_object().map(|o| o.len()), Some(1));
    }

    async fn answer_of(body: &'static str, has_extra_fields: bool) -> (Response, Value) {
        let target = Target {
            provider: "openai".into(),
            model: "m".into(),
        };
        let answer = ChatBytes {
            body: axum::body::Bytes::from_static(body.as_bytes()),
            usage: None,
            has_extra_fields,
        };
        let resp = json_bytes_answer(answer, &target, "openai/m");
        let (parts, body) = resp.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 20).await.expect("a body");
        let value = serde_json::from_slice(&bytes).expect("JSON");
        (
            Response::from_parts(parts, axum::body::Body::empty()),
            value,
        )
    }

    #[tokio::test]
    async fn bytes_answers_carry_extra_fields_and_ours_win_over_the_upstreams() {
        let (resp, v) = answer_of(r#"{"id":"a","choices":[]}"#, false).await;
        assert_eq!(resp.headers()["content-type"], "application/json");
        assert_eq!(resp.headers()["x-heimdall-provider"], "openai/m");
        assert_eq!(v["id"], "a");
        assert_eq!(v["extra_fields"]["model_used"], "m");
        // an upstream that sent its own extra_fields: one key, ours
        let (_, v) = answer_of(r#"{"id":"b","extra_fields":{"x":1}}"#, true).await;
        assert_eq!(v["id"], "b");
        assert_eq!(
            v["extra_fields"],
            json!({"provider": "openai", "model_requested": "openai/m", "model_used": "m"})
        );
    }

    #[test]
    fn what_is_not_an_object_is_not_spliced() {
        assert!(spliced("[1]").is_none());
        assert!(spliced("").is_none());
        assert!(spliced("{").is_none());
        assert!(spliced("\"{}\"").is_none());
    }
}
