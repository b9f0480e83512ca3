//! The mock's Anthropic route: `POST /v1/messages`, JSON and SSE.
//!
//! Answers look like Anthropic's: content blocks, `stop_reason`, usage with
//! cache fields, the full event sequence when streaming (`message_start` …
//! `message_stop`, with `ping`), and `tool_use` when tools are offered.
//! Errors use Anthropic's error body.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::MockState;
use super::behaviour::{Plan, first_param, split, sse_body};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

#[derive(Deserialize)]
struct MessagesBody {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    tools: Option<Vec<Value>>,
    #[serde(default)]
    messages: Vec<Value>,
}

fn error(status: u16, message: &str) -> Response {
    let kind = match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        axum::Json(json!({"type": "error", "error": {"type": kind, "message": message}})),
    )
        .into_response()
}

/// The first tool, unless the last user turn carries a tool result.
fn tool_to_call(body: &MessagesBody) -> Option<(String, Value)> {
    let tools = body.tools.as_ref()?;
    let answered = body
        .messages
        .last()
        .and_then(|m| m.get("content"))
        .and_then(Value::as_array)
        .is_some_and(|blocks| {
            blocks
                .iter()
                .any(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
        });
    if answered {
        return None;
    }
    let t = tools.first()?;
    let name = t.get("name")?.as_str()?.to_owned();
    Some((name, json!({ first_param(t.get("input_schema")): "Paris" })))
}

fn usage(plan: &Plan, output: u64) -> Value {
    json!({"input_tokens": plan.prompt_tokens, "output_tokens": output,
        "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0})
}

pub(crate) async fn messages(
    State(state): State<Arc<MockState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.record(&method, uri.path(), &headers, &body);
    let plan = Plan::new(&state, &headers, body.len());
    plan.wait().await;
    if let Some(status) = plan.fail_status {
        return error(status, &format!("mock provider forced status {status}"));
    }
    let req: MessagesBody = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(400, &format!("invalid JSON body: {e}")),
    };
    let Some(model) = req.model.clone() else {
        return error(400, "model: Field required");
    };
    if req.max_tokens.is_none() {
        return error(400, "max_tokens: Field required");
    }
    let id = format!("msg_mock{}", NEXT_ID.fetch_add(1, Ordering::Relaxed));
    let tool = tool_to_call(&req);
    if req.stream && !plan.ignore_stream {
        let events = stream_events(&plan, &id, &model, tool);
        let body = Body::from_stream(sse_body(state.clone(), &plan, events));
        return (
            [
                ("content-type", "text/event-stream"),
                ("cache-control", "no-cache"),
            ],
            body,
        )
            .into_response();
    }
    let (content, stop) = match tool {
        Some((name, input)) => (
            json!([{"type": "text", "text": "Let me check."},
                   {"type": "tool_use", "id": "toolu_mock_1", "name": name, "input": input}]),
            "tool_use",
        ),
        None => (json!([{"type": "text", "text": plan.text()}]), "end_turn"),
    };
    axum::Json(json!({
        "id": id, "type": "message", "role": "assistant", "model": model, "content": content,
        "stop_reason": stop, "stop_sequence": null, "usage": usage(&plan, plan.completion_tokens)
    }))
    .into_response()
}

fn event(name: &str, data: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

fn stream_events(plan: &Plan, id: &str, model: &str, tool: Option<(String, Value)>) -> Vec<Bytes> {
    let mut out = vec![
        event(
            "message_start",
            &json!({"type": "message_start", "message": {
            "id": id, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": null, "stop_sequence": null, "usage": usage(plan, 1)}}),
        ),
        event("ping", &json!({"type": "ping"})),
    ];
    let stop = match tool {
        Some((name, input)) => {
            out.push(event("content_block_start", &json!({"type": "content_block_start", "index": 0,
                "content_block": {"type": "tool_use", "id": "toolu_mock_1", "name": name, "input": {}}})));
            let args = input.to_string();
            let pieces: Vec<String> = args.chars().map(String::from).collect();
            let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
            for part in split(&refs, plan.chunks as usize) {
                out.push(event(
                    "content_block_delta",
                    &json!({"type": "content_block_delta", "index": 0,
                    "delta": {"type": "input_json_delta", "partial_json": part}}),
                ));
            }
            "tool_use"
        }
        None => {
            out.push(event(
                "content_block_start",
                &json!({"type": "content_block_start", "index": 0,
                "content_block": {"type": "text", "text": ""}}),
            ));
            for piece in plan.text_chunks() {
                out.push(event(
                    "content_block_delta",
                    &json!({"type": "content_block_delta", "index": 0,
                    "delta": {"type": "text_delta", "text": piece}}),
                ));
            }
            "end_turn"
        }
    };
    out.push(event(
        "content_block_stop",
        &json!({"type": "content_block_stop", "index": 0}),
    ));
    out.push(event(
        "message_delta",
        &json!({"type": "message_delta",
        "delta": {"stop_reason": stop, "stop_sequence": null},
        "usage": {"output_tokens": plan.completion_tokens}}),
    ));
    out.push(event("message_stop", &json!({"type": "message_stop"})));
    out
}
