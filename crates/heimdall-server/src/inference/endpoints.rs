//! `POST /v1/embeddings` and `GET /v1/models` (and their `/openai/v1` aliases).
//!
//! The model list is served from the registry's background-fetched lists,
//! never by calling an upstream on the request path.

use axum::extract::Request;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use heimdall_providers::forwardable_headers;
use heimdall_providers::types::EmbeddingRequest;
use serde_json::{Value, json};

use super::attempts::{self, AttemptCtx};
use super::governance_seam;
use super::json_answer;
use super::request;
use super::routing::RouteKind;
use super::telemetry::RequestRecord;
use crate::state::AppState;

/// Serves one embeddings request.
pub async fn embeddings(state: AppState, route: RouteKind, req: Request) -> Response {
    let mut rec = RequestRecord::start(route, "embedding");
    let d = match request::decode::<EmbeddingRequest>(&state, route, req).await {
        Ok(d) => d,
        Err(e) => return rec.fail(e).into_response(),
    };
    rec.user = d.caller.user.clone();
    let fwd = forwardable_headers(&d.headers);
    let mut body = d.body;
    body.model = d.targets[0].model.clone();
    let ctx = AttemptCtx {
        state: &state,
        caller: &d.caller,
        targets: &d.targets,
        body_bytes: d.body_bytes,
        output_cap: Some(0),
        model_requested: &d.model_requested,
    };
    let (body, fwd) = (&body, &fwd);
    let result = attempts::run(ctx, &mut rec, |up, t| async move {
        let mut b = body.clone();
        b.model = t.model;
        up.embeddings(&b, fwd).await
    })
    .await;
    match result {
        Ok((resp, target)) => {
            rec.usage = resp.usage.clone();
            rec.finish_ok();
            json_answer(&resp, &target, &d.model_requested)
        }
        Err(e) => rec.fail(e).into_response(),
    }
}

/// `GET /v1/models`: `provider/model` ids the caller may use.
pub async fn models(state: AppState, headers: HeaderMap) -> Response {
    let caller = match governance_seam::identify(&state, &headers) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let snapshot = state.providers.snapshot();
    let lists = state.providers.models();
    let mut data: Vec<Value> = Vec::new();
    for provider in snapshot.names() {
        for model in lists.get(&provider).into_iter().flatten() {
            if governance_seam::may_list(&caller, &provider, model) {
                data.push(json!({"id": format!("{provider}/{model}"), "object": "model", "created": 0, "owned_by": provider}));
            }
        }
    }
    axum::Json(json!({"object": "list", "data": data})).into_response()
}
