//! The mock's OpenAI routes: chat completions (JSON and SSE), embeddings, models.
//!
//! Answers look like OpenAI's, including `usage` (and the final usage chunk
//! only when `stream_options.include_usage` is set) and tool calls when the
//! request offers tools. Errors use OpenAI's error body.

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
struct ChatBody {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    stream_options: Option<Value>,
    #[serde(default)]
    tools: Option<Vec<Value>>,
    #[serde(default)]
    messages: Vec<Value>,
}

/// OpenAI's error body.
pub(crate) fn error(status: u16, message: &str) -> Response {
    let (kind, code) = match status {
        400 => ("invalid_request_error", "invalid_request"),
        401 => ("invalid_request_error", "invalid_api_key"),
        429 => ("rate_limit_error", "rate_limit_exceeded"),
        _ => ("server_error", "server_error"),
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = json!({"error": {"message": message, "type": kind, "param": null, "code": code}});
    (status, axum::Json(body)).into_response()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn usage(plan: &Plan) -> Value {
    json!({
        "prompt_tokens": plan.prompt_tokens,
        "completion_tokens": plan.completion_tokens,
        "total_tokens": plan.prompt_tokens + plan.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
            "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
    })
}

/// The tool to call: the first one offered, unless the conversation ends with a tool answer.
fn tool_to_call(body: &ChatBody) -> Option<(String, String)> {
    let tools = body.tools.as_ref()?;
    let last_is_tool = body
        .messages
        .last()
        .and_then(|m| m.get("role"))
        .and_then(Value::as_str)
        == Some("tool");
    if last_is_tool {
        return None;
    }
    let f = tools.first()?.get("function")?;
    let name = f.get("name")?.as_str()?.to_owned();
    let args = json!({ first_param(f.get("parameters")): "Paris" }).to_string();
    Some((name, args))
}

pub(crate) async fn chat(
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
    let req: ChatBody = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                400,
                &format!("We could not parse the JSON body of your request: {e}"),
            );
        }
    };
    let Some(model) = req.model.clone() else {
        return error(400, "you must provide a model parameter");
    };
    let id = format!("chatcmpl-mock{}", NEXT_ID.fetch_add(1, Ordering::Relaxed));
    let tool = tool_to_call(&req);
    if req.stream && !plan.ignore_stream {
        let include_usage = req
            .stream_options
            .as_ref()
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            == Some(true);
        let events = stream_events(&plan, &id, &model, tool, include_usage);
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
    let (message, finish) = match tool {
        Some((name, args)) => (
            json!({"role": "assistant", "content": null, "refusal": null, "tool_calls": [
                {"id": "call_mock_1", "type": "function", "function": {"name": name, "arguments": args}}]}),
            "tool_calls",
        ),
        None => (
            json!({"role": "assistant", "content": plan.text(), "refusal": null}),
            "stop",
        ),
    };
    axum::Json(json!({
        "id": id, "object": "chat.completion", "created": now(), "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
        "usage": usage(&plan), "system_fingerprint": "fp_mock"
    }))
    .into_response()
}

fn stream_events(
    plan: &Plan,
    id: &str,
    model: &str,
    tool: Option<(String, String)>,
    include_usage: bool,
) -> Vec<Bytes> {
    let created = now();
    let chunk = |delta: Value, finish: Value| {
        let mut c = json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "system_fingerprint": "fp_mock",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]});
        if include_usage {
            c["usage"] = Value::Null;
        }
        Bytes::from(format!("data: {c}\n\n"))
    };
    let mut out = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    let finish = match tool {
        Some((name, args)) => {
            out.push(chunk(
                json!({"tool_calls": [{"index": 0, "id": "call_mock_1", "type": "function",
                "function": {"name": name, "arguments": ""}}]}),
                Value::Null,
            ));
            let pieces: Vec<String> = args.chars().map(String::from).collect();
            let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
            for part in split(&refs, plan.chunks as usize) {
                out.push(chunk(
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": part}}]}),
                    Value::Null,
                ));
            }
            "tool_calls"
        }
        None => {
            for piece in plan.text_chunks() {
                out.push(chunk(json!({"content": piece}), Value::Null));
            }
            "stop"
        }
    };
    out.push(chunk(json!({}), json!(finish)));
    if include_usage {
        let c = json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "system_fingerprint": "fp_mock", "choices": [], "usage": usage(plan)});
        out.push(Bytes::from(format!("data: {c}\n\n")));
    }
    out.push(Bytes::from_static(b"data: [DONE]\n\n"));
    out
}

pub(crate) async fn embeddings(
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
    let req: Value = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                400,
                &format!("We could not parse the JSON body of your request: {e}"),
            );
        }
    };
    let inputs = match req.get("input") {
        Some(Value::Array(a)) if !a.is_empty() && !a[0].is_number() => a.len(),
        Some(_) => 1,
        None => return error(400, "you must provide an input parameter"),
    };
    let dims = req
        .get("dimensions")
        .and_then(Value::as_u64)
        .unwrap_or(16)
        .min(4096) as usize;
    let data: Vec<Value> = (0..inputs)
        .map(|i| {
            json!({"object": "embedding", "index": i,
            "embedding": (0..dims).map(|d| ((i + d) % 7) as f64 / 7.0).collect::<Vec<_>>()})
        })
        .collect();
    axum::Json(json!({
        "object": "list", "data": data, "model": req.get("model").cloned().unwrap_or_default(),
        "usage": {"prompt_tokens": plan.prompt_tokens, "total_tokens": plan.prompt_tokens}
    }))
    .into_response()
}

pub(crate) async fn models(
    State(state): State<Arc<MockState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    state.record(&method, uri.path(), &headers, &Bytes::new());
    let plan = Plan::new(&state, &headers, 0);
    if let Some(status) = plan.fail_status {
        return error(status, &format!("mock provider forced status {status}"));
    }
    let data: Vec<Value> = [
        "mock-model",
        "gpt-4o-mini",
        "text-embedding-3-small",
        "claude-3-5-haiku-latest",
    ]
    .iter()
    .map(|id| {
        json!({"id": id, "object": "model", "created": 1_700_000_000, "owned_by": "mock",
            "type": "model", "display_name": id, "created_at": "2024-01-01T00:00:00Z"})
    })
    .collect();
    axum::Json(json!({"object": "list", "data": data, "has_more": false})).into_response()
}
