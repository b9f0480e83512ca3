//! Stream translation between Anthropic SSE events and OpenAI chunks, both ways.
//!
//! Each direction is a small state machine fed one event (or chunk) at a time
//! that returns what to emit now, so nothing is buffered beyond one event.
//! Tool calls are streamed as they arrive. No I/O here.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::convert::{
    finish_reason_from_anthropic, stop_reason_from_openai, usage_from_anthropic, usage_to_anthropic,
};
use super::wire::{AnthropicUsage, MessagesResponse};
use crate::error::ProviderError;
use crate::provider::MessagesEvent;
use crate::types::{ChatChunk, ChunkChoice, Delta, FunctionDelta, ToolCallDelta, Usage};

/// Anthropic events → OpenAI chunks.
#[derive(Debug)]
pub struct AnthropicToOpenAi {
    id: String,
    model: String,
    created: u64,
    usage: AnthropicUsage,
    /// Anthropic block index → OpenAI tool call index.
    tool_index: HashMap<u64, u32>,
    finish: Option<String>,
}

impl AnthropicToOpenAi {
    /// A converter; `created` stamps every chunk.
    pub fn new(model: String, created: u64) -> Self {
        Self {
            id: String::new(),
            model,
            created,
            usage: AnthropicUsage::default(),
            tool_index: HashMap::new(),
            finish: None,
        }
    }

    fn chunk(&self, delta: Delta, finish: Option<String>) -> ChatChunk {
        ChatChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".into(),
            created: self.created,
            model: self.model.clone(),
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason: finish,
                extra: Map::new(),
            }],
            usage: None,
            extra: Map::new(),
        }
    }

    /// Feeds one Anthropic event; returns the chunks to emit. An `error` event
    /// becomes an error; `message_stop` yields the usage chunk.
    pub fn push(&mut self, name: &str, data: &Value) -> Result<Vec<ChatChunk>, ProviderError> {
        let kind = data.get("type").and_then(Value::as_str).unwrap_or(name);
        let out = match kind {
            "message_start" => {
                let msg = data.get("message").cloned().unwrap_or_default();
                self.id = msg
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                if let Some(m) = msg.get("model").and_then(Value::as_str) {
                    self.model = m.to_owned();
                }
                if let Some(u) = msg.get("usage") {
                    merge_usage(&mut self.usage, u);
                }
                let delta = Delta {
                    role: Some("assistant".into()),
                    content: Some(String::new()),
                    ..Default::default()
                };
                vec![self.chunk(delta, None)]
            }
            "content_block_start" => self.block_start(data),
            "content_block_delta" => self.block_delta(data),
            "message_delta" => {
                if let Some(u) = data.get("usage") {
                    merge_usage(&mut self.usage, u);
                }
                let stop = data
                    .get("delta")
                    .and_then(|d| d.get("stop_reason"))
                    .and_then(Value::as_str);
                match stop {
                    Some(stop) => {
                        let finish = finish_reason_from_anthropic(stop).to_owned();
                        self.finish = Some(finish.clone());
                        vec![self.chunk(Delta::default(), Some(finish))]
                    }
                    None => vec![],
                }
            }
            "message_stop" => {
                let mut c = self.chunk(Delta::default(), None);
                c.choices.clear();
                c.usage = Some(self.usage());
                vec![c]
            }
            "error" => return Err(stream_error(data)),
            _ => vec![], // ping, content_block_stop, unknown future events
        };
        Ok(out)
    }

    /// Usage seen so far, in OpenAI's shape.
    pub fn usage(&self) -> Usage {
        usage_from_anthropic(&self.usage)
    }

    fn block_start(&mut self, data: &Value) -> Vec<ChatChunk> {
        let index = data.get("index").and_then(Value::as_u64).unwrap_or(0);
        let block = data.get("content_block").cloned().unwrap_or_default();
        match block.get("type").and_then(Value::as_str) {
            Some("tool_use") => {
                let tool_idx = self.tool_index.len() as u32;
                self.tool_index.insert(index, tool_idx);
                let call = ToolCallDelta {
                    index: tool_idx,
                    id: block.get("id").and_then(Value::as_str).map(str::to_owned),
                    kind: Some("function".into()),
                    function: Some(FunctionDelta {
                        name: block.get("name").and_then(Value::as_str).map(str::to_owned),
                        arguments: Some(String::new()),
                    }),
                };
                vec![self.chunk(
                    Delta {
                        tool_calls: Some(vec![call]),
                        ..Default::default()
                    },
                    None,
                )]
            }
            Some("text") => match block
                .get("text")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
            {
                Some(t) => vec![self.chunk(
                    Delta {
                        content: Some(t.to_owned()),
                        ..Default::default()
                    },
                    None,
                )],
                None => vec![],
            },
            _ => vec![],
        }
    }

    fn block_delta(&mut self, data: &Value) -> Vec<ChatChunk> {
        let index = data.get("index").and_then(Value::as_u64).unwrap_or(0);
        let delta = data.get("delta").cloned().unwrap_or_default();
        match delta.get("type").and_then(Value::as_str) {
            Some("text_delta") => {
                let text = delta
                    .get("text")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                vec![self.chunk(
                    Delta {
                        content: Some(text),
                        ..Default::default()
                    },
                    None,
                )]
            }
            Some("input_json_delta") => {
                let Some(&tool_idx) = self.tool_index.get(&index) else {
                    return vec![];
                };
                let part = delta
                    .get("partial_json")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let call = ToolCallDelta {
                    index: tool_idx,
                    function: Some(FunctionDelta {
                        name: None,
                        arguments: Some(part),
                    }),
                    ..Default::default()
                };
                vec![self.chunk(
                    Delta {
                        tool_calls: Some(vec![call]),
                        ..Default::default()
                    },
                    None,
                )]
            }
            _ => vec![], // thinking and signature deltas have no OpenAI counterpart
        }
    }
}

/// Usage fields in Anthropic events are cumulative: later values replace earlier ones.
pub fn merge_usage(into: &mut AnthropicUsage, u: &Value) {
    if let Some(n) = u.get("input_tokens").and_then(Value::as_u64) {
        into.input_tokens = n;
    }
    if let Some(n) = u.get("output_tokens").and_then(Value::as_u64) {
        into.output_tokens = n;
    }
    if let Some(n) = u.get("cache_creation_input_tokens").and_then(Value::as_u64) {
        into.cache_creation_input_tokens = Some(n);
    }
    if let Some(n) = u.get("cache_read_input_tokens").and_then(Value::as_u64) {
        into.cache_read_input_tokens = Some(n);
    }
}

/// A whole Messages answer sent where a stream was asked for (a server that
/// ignores `stream: true`), decoded. An error body is the upstream's error;
/// anything that is not a message is unreadable.
pub fn read_stream_fallback(body: &[u8]) -> Result<MessagesResponse, ProviderError> {
    let not_an_answer = |why: &str| {
        ProviderError::BadResponse(format!(
            "the upstream answered a stream request with JSON that is not a message ({why})"
        ))
    };
    if !crate::types::starts_as_json_object(body) {
        return Err(not_an_answer("not a JSON object"));
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| not_an_answer(&e.to_string()))?;
    match v.get("type").and_then(Value::as_str) {
        Some("message") => {}
        Some("error") => return Err(stream_error(&v)),
        _ => return Err(not_an_answer("no \"type\": \"message\"")),
    }
    serde_json::from_value(v).map_err(|e| not_an_answer(&e.to_string()))
}

/// A whole Messages answer as the events a stream of it would have sent.
pub fn answer_as_events(resp: MessagesResponse) -> Vec<MessagesEvent> {
    let ev = |name: &str, data: Value| MessagesEvent {
        name: name.to_owned(),
        data,
    };
    let u = &resp.usage;
    let mut out = Vec::with_capacity(resp.content.len() * 3 + 3);
    out.push(ev(
        "message_start",
        json!({"type": "message_start", "message": {
            "id": resp.id, "type": "message", "role": resp.role, "content": [],
            "model": resp.model, "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": u.input_tokens, "output_tokens": 0,
                      "cache_creation_input_tokens": u.cache_creation_input_tokens,
                      "cache_read_input_tokens": u.cache_read_input_tokens}}}),
    ));
    for (index, block) in resp.content.into_iter().enumerate() {
        let (start, delta) = match block.kind.as_str() {
            "text" => (
                json!({"type": "text", "text": ""}),
                Some(json!({"type": "text_delta", "text": block.text.unwrap_or_default()})),
            ),
            "tool_use" => (
                json!({"type": "tool_use", "id": block.id, "name": block.name, "input": {}}),
                Some(json!({"type": "input_json_delta",
                    "partial_json": block.input.unwrap_or_else(|| json!({})).to_string()})),
            ),
            // other blocks (thinking, server tools…) are sent whole
            _ => (serde_json::to_value(&block).unwrap_or_default(), None),
        };
        out.push(ev(
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block": start}),
        ));
        if let Some(delta) = delta {
            out.push(ev(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": index, "delta": delta}),
            ));
        }
        out.push(ev(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        ));
    }
    out.push(ev(
        "message_delta",
        json!({"type": "message_delta",
            "delta": {"stop_reason": resp.stop_reason.unwrap_or_else(|| "end_turn".into()),
                      "stop_sequence": resp.stop_sequence},
            "usage": {"output_tokens": resp.usage.output_tokens}}),
    ));
    out.push(ev("message_stop", json!({"type": "message_stop"})));
    out
}

/// An `event: error` in an Anthropic stream.
pub fn stream_error(data: &Value) -> ProviderError {
    let err = data.get("error");
    let kind = err
        .and_then(|e| e.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("api_error");
    let message = err
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .unwrap_or("upstream stream error");
    let status = match kind {
        "overloaded_error" => 529,
        "rate_limit_error" => 429,
        "invalid_request_error" => 400,
        _ => 500,
    };
    ProviderError::Upstream {
        status,
        message: message.to_owned(),
        retry_after: None,
    }
}

/// OpenAI chunks → Anthropic events.
#[derive(Debug)]
pub struct OpenAiToAnthropic {
    model: String,
    started: bool,
    /// Index of the open content block and whether it is text.
    open: Option<(u64, bool)>,
    next_index: u64,
    /// OpenAI tool call index → Anthropic block index.
    tool_blocks: HashMap<u32, u64>,
    stop: Option<String>,
    usage: Usage,
}

impl OpenAiToAnthropic {
    /// A converter for a message of `model`.
    pub fn new(model: String) -> Self {
        Self {
            model,
            started: false,
            open: None,
            next_index: 0,
            tool_blocks: HashMap::new(),
            stop: None,
            usage: Usage::default(),
        }
    }

    fn ev(name: &str, data: Value) -> MessagesEvent {
        MessagesEvent {
            name: name.to_owned(),
            data,
        }
    }

    fn start(&mut self, chunk: &ChatChunk, out: &mut Vec<MessagesEvent>) {
        if self.started {
            return;
        }
        self.started = true;
        let model = if chunk.model.is_empty() {
            self.model.clone()
        } else {
            chunk.model.clone()
        };
        out.push(Self::ev(
            "message_start",
            json!({"type": "message_start", "message": {
            "id": chunk.id, "type": "message", "role": "assistant", "content": [], "model": model,
            "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 0, "output_tokens": 0}}}),
        ));
    }

    fn close_block(&mut self, out: &mut Vec<MessagesEvent>) {
        if let Some((index, _)) = self.open.take() {
            out.push(Self::ev(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": index}),
            ));
        }
    }

    fn open_block(&mut self, block: Value, is_text: bool, out: &mut Vec<MessagesEvent>) -> u64 {
        self.close_block(out);
        let index = self.next_index;
        self.next_index += 1;
        self.open = Some((index, is_text));
        out.push(Self::ev(
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block": block}),
        ));
        index
    }

    /// Feeds one chunk; returns the events to emit now.
    pub fn push(&mut self, chunk: &ChatChunk) -> Vec<MessagesEvent> {
        let mut out = Vec::new();
        self.start(chunk, &mut out);
        if let Some(u) = &chunk.usage {
            self.usage = u.clone();
        }
        for choice in chunk.choices.iter().filter(|c| c.index == 0) {
            if let Some(text) = choice.delta.content.as_deref().filter(|t| !t.is_empty()) {
                let index = match self.open {
                    Some((i, true)) => i,
                    _ => self.open_block(json!({"type": "text", "text": ""}), true, &mut out),
                };
                out.push(Self::ev(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": index,
                    "delta": {"type": "text_delta", "text": text}}),
                ));
            }
            for call in choice.delta.tool_calls.iter().flatten() {
                self.tool_delta(call, &mut out);
            }
            if let Some(f) = &choice.finish_reason {
                self.stop = Some(stop_reason_from_openai(f).to_owned());
            }
        }
        out
    }

    fn tool_delta(&mut self, call: &ToolCallDelta, out: &mut Vec<MessagesEvent>) {
        let index = match self.tool_blocks.get(&call.index) {
            Some(&i) => i,
            None => {
                let name = call
                    .function
                    .as_ref()
                    .and_then(|f| f.name.clone())
                    .unwrap_or_default();
                let block = json!({"type": "tool_use", "id": call.id.clone().unwrap_or_default(), "name": name, "input": {}});
                let i = self.open_block(block, false, out);
                self.tool_blocks.insert(call.index, i);
                i
            }
        };
        if let Some(args) = call
            .function
            .as_ref()
            .and_then(|f| f.arguments.as_deref())
            .filter(|a| !a.is_empty())
        {
            out.push(Self::ev(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": index,
                "delta": {"type": "input_json_delta", "partial_json": args}}),
            ));
        }
    }

    /// Closes the message once the upstream stream has ended.
    pub fn finish(&mut self) -> Vec<MessagesEvent> {
        let mut out = Vec::new();
        if !self.started {
            let empty = ChatChunk {
                id: String::new(),
                object: String::new(),
                created: 0,
                model: String::new(),
                choices: vec![],
                usage: None,
                extra: Map::new(),
            };
            self.start(&empty, &mut out);
        }
        self.close_block(&mut out);
        let usage = usage_to_anthropic(&self.usage);
        let stop = self.stop.clone().unwrap_or_else(|| "end_turn".into());
        out.push(Self::ev(
            "message_delta",
            json!({"type": "message_delta",
            "delta": {"stop_reason": stop, "stop_sequence": null},
            "usage": {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
                      "cache_creation_input_tokens": usage.cache_creation_input_tokens,
                      "cache_read_input_tokens": usage.cache_read_input_tokens}}),
        ));
        out.push(Self::ev("message_stop", json!({"type": "message_stop"})));
        out
    }

    /// Usage seen so far.
    pub fn usage(&self) -> &Usage {
        &self.usage
    }
}
