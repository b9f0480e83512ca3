//! `POST /v1/chat/completions` (and `/openai/v1/…`): OpenAI chat, streaming
//! and not, served by any provider kind.
//!
//! Thin: decode, run the attempt loop, encode. Translation lives in the
//! providers crate; governance in `governance_seam`.

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use heimdall_providers::forwardable_headers;
use heimdall_providers::types::ChatRequest;

use super::attempts::{self, AttemptCtx};
use super::request;
use super::routing::RouteKind;
use super::telemetry::{RequestRecord, apply_headers};
use super::{json_bytes_answer, sse};
use crate::state::AppState;

/// Serves one chat completion request.
pub async fn handle(state: AppState, route: RouteKind, req: Request) -> Response {
    let mut rec = RequestRecord::start(route, "chat_completion");
    let d = match request::decode::<ChatRequest>(&state, route, req).await {
        Ok(d) => d,
        Err(e) => return rec.fail(e).into_response(),
    };
    rec.identify(&d.caller);
    let fwd = forwardable_headers(&d.headers);
    let mut body = d.body;
    body.model = d.targets[0].model.clone();
    let stream = body.is_stream();
    let wants_usage = body.wants_usage_chunk();
    let ctx = AttemptCtx {
        state: &state,
        caller: &d.caller,
        targets: &d.targets,
        body_bytes: d.body_bytes,
        output_cap: body.output_cap(),
        model_requested: &d.model_requested,
    };
    let (body, fwd) = (&body, &fwd);
    if stream {
        let result = attempts::run(ctx, &mut rec, |up, t| async move {
            if t.model == body.model {
                up.chat_stream(body, fwd).await
            } else {
                let mut b = body.clone();
                b.model = t.model;
                up.chat_stream(&b, fwd).await
            }
        })
        .await;
        return match result {
            Ok((s, target)) => {
                let headers = rec.response_headers();
                let mut resp = sse::openai(s, wants_usage, target, d.model_requested.clone(), rec);
                apply_headers(&mut resp, headers);
                resp
            }
            Err(e) => rec.fail(e).into_response(),
        };
    }
    let result = attempts::run(ctx, &mut rec, |up, t| async move {
        if t.model == body.model {
            up.chat_bytes(body, fwd).await
        } else {
            let mut b = body.clone();
            b.model = t.model;
            up.chat_bytes(&b, fwd).await
        }
    })
    .await;
    match result {
        Ok((answer, target)) => {
            rec.usage = answer.usage.clone();
            rec.finish_ok();
            let mut resp = json_bytes_answer(answer, &target, &d.model_requested);
            rec.decorate(&mut resp);
            resp
        }
        Err(e) => rec.fail(e).into_response(),
    }
}
