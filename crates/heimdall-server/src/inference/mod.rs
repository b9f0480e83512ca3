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
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
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
