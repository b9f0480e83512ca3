//! Streaming answers: upstream events re-framed as SSE for the client, chunk
//! by chunk, with usage captured for settlement and the extra usage chunk
//! hidden from OpenAI clients that did not ask for it.
//!
//! An upstream failure after the stream started becomes one error event
//! (`data: <envelope>` + `[DONE]`, or Anthropic's `event: error`). Dropping
//! the body (client gone) drops the upstream stream, which cancels it.

use std::convert::Infallible;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use heimdall_providers::anthropic::convert::usage_from_anthropic;
use heimdall_providers::anthropic::stream::merge_usage;
use heimdall_providers::anthropic::wire::AnthropicUsage;
use heimdall_providers::{ChatStream, MessagesStream, ProviderError};

use super::request::provider_error;
use super::routing::Target;
use super::telemetry::RequestRecord;

/// Per-stream state carried through the body.
struct Relay<S> {
    upstream: S,
    rec: RequestRecord,
    target: Target,
    requested: String,
    done: bool,
}

impl<S> Relay<S> {
    fn error(&mut self, e: &ProviderError) -> crate::error::ApiError {
        self.done = true;
        let err = provider_error(e, &self.target, &self.requested, self.rec.request_type());
        tracing::warn!(event_id = %self.rec.event_id, error = %e, "upstream stream failed after it started");
        self.rec.fail_mid_stream(err)
    }
}

fn sse_response(body: Body, target: &Target) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&target.label()) {
        h.insert("x-heimdall-provider", v);
    }
    resp
}

/// An OpenAI-format SSE answer.
pub fn openai(
    upstream: ChatStream,
    wants_usage: bool,
    target: Target,
    requested: String,
    rec: RequestRecord,
) -> Response {
    let relay = Relay {
        upstream,
        rec,
        target: target.clone(),
        requested,
        done: false,
    };
    let body = futures::stream::unfold(relay, move |mut r| async move {
        loop {
            if r.done {
                return None;
            }
            let t0 = Instant::now();
            let next = r.upstream.next().await;
            r.rec.add_upstream(t0.elapsed());
            let frame = match next {
                Some(Ok(ev)) => {
                    for c in &ev.chunk.choices {
                        let text = c.delta.content.as_ref().map_or(0, String::len);
                        let args: usize = c
                            .delta
                            .tool_calls
                            .iter()
                            .flatten()
                            .filter_map(|t| t.function.as_ref()?.arguments.as_ref())
                            .map(String::len)
                            .sum();
                        r.rec.streamed_chars += (text + args) as u64;
                    }
                    if let Some(u) = &ev.chunk.usage {
                        r.rec.usage = Some(u.clone());
                        r.rec.settle_now();
                    }
                    if ev.chunk.is_usage_only() && !wants_usage {
                        continue;
                    }
                    match ev.raw {
                        Some(raw) => [b"data: ".as_slice(), &raw, b"\n\n"].concat(),
                        None => format!(
                            "data: {}\n\n",
                            serde_json::to_string(&ev.chunk).unwrap_or_default()
                        )
                        .into_bytes(),
                    }
                }
                Some(Err(e)) => {
                    let err = r.error(&e);
                    let id = r.rec.event_id.clone();
                    format!("data: {}\n\ndata: [DONE]\n\n", err.envelope(&id)).into_bytes()
                }
                None => {
                    r.done = true;
                    r.rec.finish_ok();
                    b"data: [DONE]\n\n".to_vec()
                }
            };
            return Some((Ok::<Bytes, Infallible>(Bytes::from(frame)), r));
        }
    });
    sse_response(Body::from_stream(body), &target)
}

/// An Anthropic-format SSE answer.
pub fn anthropic(
    upstream: MessagesStream,
    target: Target,
    requested: String,
    rec: RequestRecord,
) -> Response {
    let relay = Relay {
        upstream,
        rec,
        target: target.clone(),
        requested,
        done: false,
    };
    let body = futures::stream::unfold(
        (relay, AnthropicUsage::default()),
        |(mut r, mut usage)| async move {
            if r.done {
                return None;
            }
            let t0 = Instant::now();
            let next = r.upstream.next().await;
            r.rec.add_upstream(t0.elapsed());
            let frame = match next {
                Some(Ok(ev)) => {
                    let u = match ev.name.as_str() {
                        "message_start" => ev.data.get("message").and_then(|m| m.get("usage")),
                        "message_delta" => ev.data.get("usage"),
                        _ => None,
                    };
                    if let Some(u) = u {
                        merge_usage(&mut usage, u);
                        r.rec.usage = Some(usage_from_anthropic(&usage));
                        // message_delta carries the final output count.
                        if ev.name == "message_delta" {
                            r.rec.settle_now();
                        }
                    }
                    if ev.name == "content_block_delta" {
                        // Text and tool-call arguments both are generated output.
                        let delta = ev.data.get("delta");
                        let piece = |k: &str| {
                            delta
                                .and_then(|d| d.get(k))
                                .and_then(|t| t.as_str())
                                .map_or(0, str::len)
                        };
                        r.rec.streamed_chars += (piece("text") + piece("partial_json")) as u64;
                    }
                    format!("event: {}\ndata: {}\n\n", ev.name, ev.data)
                }
                Some(Err(e)) => {
                    let err = r.error(&e);
                    let id = r.rec.event_id.clone();
                    let mut body = err.anthropic_envelope(&id);
                    if let Some(obj) = body.as_object_mut() {
                        obj.remove("status_code");
                        obj.remove("event_id");
                    }
                    format!("event: error\ndata: {body}\n\n")
                }
                None => {
                    r.done = true;
                    r.rec.finish_ok();
                    return None;
                }
            };
            Some((Ok::<Bytes, Infallible>(Bytes::from(frame)), (r, usage)))
        },
    );
    sse_response(Body::from_stream(body), &target)
}
