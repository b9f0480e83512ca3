//! Edits made to OpenAI-format bodies on their way upstream and back.
//!
//! Heimdall always asks for usage in streams (to charge tokens); the edge later
//! hides the extra usage chunk from clients that did not ask. This module must
//! not drop or rewrite fields it does not own.

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

use crate::error::ProviderError;
use crate::provider::ChunkEvent;
use crate::types::{
    ChatChunk, ChatRequest, ChatResponse, ChunkChoice, Delta, FunctionDelta, StreamOptions,
    ToolCallDelta, Usage,
};

/// The request as sent upstream for a stream: `stream: true` and
/// `stream_options.include_usage: true`, everything else untouched.
pub fn stream_request(req: &ChatRequest) -> ChatRequest {
    let mut up = req.clone();
    up.stream = Some(true);
    up.stream_options
        .get_or_insert_with(StreamOptions::default)
        .include_usage = Some(true);
    up
}

/// What the edge needs from a non-streaming answer it passes on as bytes.
#[derive(Debug, Deserialize)]
pub struct AnswerHead {
    /// Token usage, for settlement.
    #[serde(default)]
    pub usage: Option<Usage>,
    /// Present when the upstream already sent an `extra_fields`.
    #[serde(default)]
    pub extra_fields: Option<IgnoredAny>,
}

/// Reads the usage of a non-streaming answer without building the rest of
/// it (the rest is still checked to be well-formed JSON). The body must be
/// a JSON object, as `ChatResponse` requires.
pub fn read_answer_head(body: &[u8]) -> Result<AnswerHead, ProviderError> {
    if !crate::types::starts_as_json_object(body) {
        return Err(ProviderError::BadResponse(
            "the answer is not a JSON object".into(),
        ));
    }
    serde_json::from_slice(body).map_err(|e| ProviderError::BadResponse(e.to_string()))
}

/// A whole chat completion sent where a stream was asked for (a compatible
/// server that ignores `stream: true`), decoded. An in-band `error` object
/// is the upstream's error; an answer without choices is unreadable.
pub fn read_stream_fallback(body: &[u8]) -> Result<ChatResponse, ProviderError> {
    let not_an_answer = |why: &str| {
        ProviderError::BadResponse(format!(
            "the upstream answered a stream request with JSON that is not a chat completion ({why})"
        ))
    };
    if !crate::types::starts_as_json_object(body) {
        return Err(not_an_answer("not a JSON object"));
    }
    let resp: ChatResponse =
        serde_json::from_slice(body).map_err(|e| not_an_answer(&e.to_string()))?;
    if let Some(err) = resp.extra.get("error").filter(|e| e.is_object()) {
        let message = err
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("upstream error")
            .to_owned();
        return Err(ProviderError::Upstream {
            status: 502,
            message,
            retry_after: None,
        });
    }
    if resp.choices.is_empty() {
        return Err(not_an_answer("no choices"));
    }
    Ok(resp)
}

/// A whole chat completion as the chunks a stream of it would have sent:
/// per choice one delta with the role, text and tool calls and one with the
/// finish reason, then the usage chunk when the answer has usage.
pub fn answer_as_chunks(resp: ChatResponse) -> Vec<ChunkEvent> {
    let chunk = |choices: Vec<ChunkChoice>, usage: Option<Usage>| ChunkEvent {
        chunk: ChatChunk {
            id: resp.id.clone(),
            object: "chat.completion.chunk".to_owned(),
            created: resp.created,
            model: resp.model.clone(),
            choices,
            usage,
            extra: Default::default(),
        },
        raw: None,
    };
    let mut out = Vec::with_capacity(resp.choices.len() * 2 + 1);
    for c in &resp.choices {
        let tool_calls = c.message.tool_calls.as_ref().map(|calls| {
            calls
                .iter()
                .enumerate()
                .map(|(i, t)| ToolCallDelta {
                    index: u32::try_from(i).unwrap_or(u32::MAX),
                    id: Some(t.id.clone()),
                    kind: Some(t.kind.clone()),
                    function: Some(FunctionDelta {
                        name: Some(t.function.name.clone()),
                        arguments: Some(t.function.arguments.clone()),
                    }),
                })
                .collect()
        });
        let delta = Delta {
            role: Some(c.message.role.clone()),
            content: c.message.content.as_ref().map(|t| t.text()),
            tool_calls,
            extra: Default::default(),
        };
        out.push(chunk(
            vec![ChunkChoice {
                index: c.index,
                delta,
                finish_reason: None,
                extra: Default::default(),
            }],
            None,
        ));
        out.push(chunk(
            vec![ChunkChoice {
                index: c.index,
                delta: Delta::default(),
                finish_reason: Some(c.finish_reason.clone().unwrap_or_else(|| "stop".into())),
                extra: Default::default(),
            }],
            None,
        ));
    }
    if let Some(u) = resp.usage.clone() {
        out.push(chunk(Vec::new(), Some(u)));
    }
    out
}

/// Decodes one `data:` payload of an OpenAI stream. `Ok(None)` is `[DONE]`.
/// A payload with an `error` object (some compatible servers send errors
/// in-band) becomes an error.
pub fn decode_chunk(data: &str) -> Result<Option<ChunkEvent>, ProviderError> {
    let data = data.trim();
    if data == "[DONE]" {
        return Ok(None);
    }
    let chunk: ChatChunk = match serde_json::from_str(data) {
        Ok(c) => c,
        Err(e) => {
            return Err(ProviderError::BadResponse(format!(
                "stream chunk is not a chat chunk: {e}"
            )));
        }
    };
    if let Some(err) = chunk.extra.get("error").filter(|e| e.is_object()) {
        let message = err
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("upstream stream error")
            .to_owned();
        let status = err
            .get("code")
            .and_then(Value::as_u64)
            .filter(|c| (400..600).contains(c))
            .unwrap_or(500) as u16;
        return Err(ProviderError::Upstream {
            status,
            message,
            retry_after: None,
        });
    }
    Ok(Some(ChunkEvent {
        chunk,
        raw: Some(bytes::Bytes::copy_from_slice(data.as_bytes())),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_request_asks_for_usage_and_keeps_other_fields() {
        let req: ChatRequest = serde_json::from_value(serde_json::json!({
            "model": "m", "messages": [], "seed": 3, "stream_options": {"x": 1}
        }))
        .unwrap();
        let up = serde_json::to_value(stream_request(&req)).unwrap();
        assert_eq!(up["stream"], true);
        assert_eq!(up["stream_options"]["include_usage"], true);
        assert_eq!(up["stream_options"]["x"], 1);
        assert_eq!(up["seed"], 3);
    }

    #[test]
    fn answer_head_reads_usage_and_refuses_what_is_not_an_object() {
        let head = read_answer_head(
            br#" {"id":"x","choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#,
        )
        .unwrap();
        assert_eq!(head.usage.unwrap().completion_tokens, 2);
        assert!(head.extra_fields.is_none());
        assert!(
            read_answer_head(br#"{"extra_fields":{"a":1}}"#)
                .unwrap()
                .extra_fields
                .is_some()
        );
        assert!(read_answer_head(b"[1, null]").is_err());
        assert!(read_answer_head(br#"{"usage": "#).is_err());
        assert!(read_answer_head(b"").is_err());
    }

    #[test]
    fn a_whole_answer_becomes_chunks_and_usage() {
        let resp = read_stream_fallback(
            br#"{"id":"c1","model":"m","created":7,"choices":[{"index":0,"message":{"role":"assistant","content":"hi there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#,
        )
        .unwrap();
        let chunks = answer_as_chunks(resp);
        assert_eq!(chunks.len(), 3);
        assert_eq!(
            chunks[0].chunk.choices[0].delta.content.as_deref(),
            Some("hi there")
        );
        assert_eq!(
            chunks[1].chunk.choices[0].finish_reason.as_deref(),
            Some("stop")
        );
        assert!(chunks[2].chunk.is_usage_only());
        assert!(read_stream_fallback(b"{}").is_err());
        assert!(read_stream_fallback(b"[]").is_err());
        assert!(read_stream_fallback(b"nope").is_err());
        let err = read_stream_fallback(br#"{"error":{"message":"boom"}}"#).unwrap_err();
        assert_eq!(err.to_string(), "boom");
    }

    #[test]
    fn done_ends_and_errors_surface() {
        assert!(decode_chunk("[DONE]").unwrap().is_none());
        let err = decode_chunk(r#"{"error":{"message":"boom"}}"#).unwrap_err();
        assert_eq!(err.to_string(), "boom");
        let ev = decode_chunk(r#"{"id":"a","choices":[{"index":0,"delta":{"content":"hi"}}]}"#)
            .unwrap()
            .unwrap();
        assert_eq!(ev.chunk.choices[0].delta.content.as_deref(), Some("hi"));
        assert!(ev.raw.is_some());
    }
}
