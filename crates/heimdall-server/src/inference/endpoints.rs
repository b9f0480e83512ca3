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
    rec.identify(&d.caller);
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
            let mut answer = json_answer(&resp, &target, &d.model_requested);
            rec.decorate(&mut answer);
            answer
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
    let prices = state.governance.prices();
    let price_rows = prices.rows();
    let mut data: Vec<Value> = Vec::new();
    for provider in snapshot.names() {
        // Candidates: the provider's own list; for a governed caller also its
        // exact allowed entries and the price table's models of this provider
        // (by name or kind), filtered by what the caller's rules grant.
        let mut candidates: Vec<String> = lists.get(&provider).cloned().unwrap_or_default();
        if caller.governed.is_some() {
            let kind = snapshot
                .get(&provider)
                .map_or("", |u| u.config().kind.as_str());
            candidates.extend(governance_seam::listed_models(&state, &caller, &provider));
            candidates.extend(
                price_rows
                    .iter()
                    .filter(|r| r.provider == provider || r.provider == kind)
                    .map(|r| r.model.clone()),
            );
        }
        let mut seen = std::collections::HashSet::new();
        for model in candidates {
            if seen.insert(model.clone())
                && governance_seam::may_list(&state, &caller, &provider, &model)
            {
                data.push(json!({"id": format!("{provider}/{model}"), "object": "model", "created": 0, "owned_by": provider}));
            }
        }
    }
    axum::Json(json!({"object": "list", "data": data})).into_response()
}
