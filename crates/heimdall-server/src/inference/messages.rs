//! `POST /anthropic/v1/messages`: Anthropic Messages, streaming and not,
//! served by any provider kind (an Anthropic-kind provider gets the request
//! untouched; others get it translated).
//!
//! Thin: decode, run the attempt loop, encode. Errors are rendered in
//! Anthropic's shape by the route's layer.

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use heimdall_providers::anthropic::convert::usage_from_anthropic;
use heimdall_providers::anthropic::wire::MessagesRequest;
use heimdall_providers::forwardable_headers;

use super::attempts::{self, AttemptCtx};
use super::request;
use super::routing::RouteKind;
use super::telemetry::{RequestRecord, apply_headers};
use super::{json_answer, sse};
use crate::state::AppState;

/// Serves one Messages request.
pub async fn handle(state: AppState, req: Request) -> Response {
    let route = RouteKind::Anthropic;
    let mut rec = RequestRecord::start(route, "messages");
    let d = match request::decode::<MessagesRequest>(&state, route, req).await {
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
        output_cap: body.max_tokens,
        model_requested: &d.model_requested,
    };
    let stream = body.is_stream();
    let (body, fwd) = (&body, &fwd);
    if stream {
        let result = attempts::run(ctx, &mut rec, |up, t| async move {
            if t.model == body.model {
                up.messages_stream(body, fwd).await
            } else {
                let mut b = body.clone();
                b.model = t.model;
                up.messages_stream(&b, fwd).await
            }
        })
        .await;
        return match result {
            Ok((s, target)) => {
                let headers = rec.response_headers();
                let mut resp = sse::anthropic(s, target, d.model_requested.clone(), rec);
                apply_headers(&mut resp, headers);
                resp
            }
            Err(e) => rec.fail(e).into_response(),
        };
    }
    let result = attempts::run(ctx, &mut rec, |up, t| async move {
        if t.model == body.model {
            up.messages(body, fwd).await
        } else {
            let mut b = body.clone();
            b.model = t.model;
            up.messages(&b, fwd).await
        }
    })
    .await;
    match result {
        Ok((resp, target)) => {
            rec.usage = Some(usage_from_anthropic(&resp.usage));
            rec.finish_ok();
            let mut answer = json_answer(&resp, &target, &d.model_requested);
            rec.decorate(&mut answer);
            answer
        }
        Err(e) => rec.fail(e).into_response(),
    }
}
