//! Translation between OpenAI chat (canonical) and Anthropic Messages, both
//! ways, for requests and non-streaming responses (streams: `stream.rs`).
//!
//! Covers system prompts, multi-part content with images, tools and tool
//! calls, stop reasons and usage with cache tokens. Fields of one format that
//! have no counterpart in the other are dropped, never guessed. No I/O here.

use serde_json::{Map, Value, json};

use super::wire::{
    AnthropicUsage, BlockContent, ContentBlock, DEFAULT_MAX_TOKENS, InputMessage, MessagesRequest,
    MessagesResponse, ToolDef,
};
use crate::error::ProviderError;
use crate::types::{
    ChatRequest, ChatResponse, Choice, Content, ContentPart, FunctionCall, FunctionDef, ImageUrl,
    Message, PromptTokensDetails, Stop, Tool, ToolCall, Usage,
};

// ---------- OpenAI request → Anthropic request ----------

/// Translates an OpenAI chat request for an Anthropic upstream.
pub fn openai_request_to_anthropic(req: &ChatRequest) -> Result<MessagesRequest, ProviderError> {
    let mut system: Vec<String> = Vec::new();
    let mut messages: Vec<InputMessage> = Vec::new();
    for msg in &req.messages {
        match msg.role.as_str() {
            "system" | "developer" => {
                if let Some(c) = &msg.content {
                    system.push(c.text());
                }
            }
            "user" => push_turn(&mut messages, "user", user_blocks(msg.content.as_ref())?),
            "assistant" => push_turn(&mut messages, "assistant", assistant_blocks(msg)),
            "tool" => {
                let block = ContentBlock {
                    kind: "tool_result".into(),
                    tool_use_id: Some(msg.tool_call_id.clone().unwrap_or_default()),
                    content: Some(Value::String(
                        msg.content.as_ref().map(Content::text).unwrap_or_default(),
                    )),
                    ..Default::default()
                };
                push_turn(&mut messages, "user", vec![block]);
            }
            other => {
                return Err(ProviderError::InvalidRequest(format!(
                    "message role {other:?} cannot be sent to an Anthropic provider"
                )));
            }
        }
    }
    let mut tool_choice = req.tool_choice.as_ref().and_then(tool_choice_to_anthropic);
    if req.parallel_tool_calls == Some(false) {
        let choice = tool_choice.get_or_insert_with(|| json!({"type": "auto"}));
        if let Some(obj) = choice.as_object_mut() {
            obj.insert("disable_parallel_tool_use".into(), Value::Bool(true));
        }
    }
    let mut extra = Map::new();
    if let Some(top_k) = req.extra.get("top_k") {
        extra.insert("top_k".into(), top_k.clone());
    }
    Ok(MessagesRequest {
        model: req.model.clone(),
        messages,
        max_tokens: Some(req.output_cap().unwrap_or(DEFAULT_MAX_TOKENS)),
        system: (!system.is_empty()).then(|| BlockContent::Text(system.join("\n\n"))),
        stop_sequences: req.stop.clone().map(Stop::into_vec),
        stream: req.stream,
        temperature: req.temperature,
        top_p: req.top_p,
        top_k: None,
        tools: req
            .tools
            .as_ref()
            .map(|ts| ts.iter().map(tool_to_anthropic).collect()),
        tool_choice,
        metadata: req.user.as_ref().map(|u| json!({"user_id": u})),
        extra,
    })
}

/// Anthropic wants alternating turns: consecutive same-role turns are merged.
fn push_turn(messages: &mut Vec<InputMessage>, role: &str, blocks: Vec<ContentBlock>) {
    if let Some(last) = messages.last_mut()
        && last.role == role
    {
        let mut merged =
            std::mem::replace(&mut last.content, BlockContent::Blocks(vec![])).into_blocks();
        merged.extend(blocks);
        last.content = BlockContent::Blocks(merged);
        return;
    }
    messages.push(InputMessage {
        role: role.into(),
        content: BlockContent::Blocks(blocks),
    });
}

fn user_blocks(content: Option<&Content>) -> Result<Vec<ContentBlock>, ProviderError> {
    match content {
        None => Ok(vec![]),
        Some(Content::Text(t)) => Ok(vec![ContentBlock::text(t.clone())]),
        Some(Content::Parts(parts)) => parts.iter().map(part_to_block).collect(),
    }
}

fn part_to_block(part: &ContentPart) -> Result<ContentBlock, ProviderError> {
    match part.kind.as_str() {
        "text" => Ok(ContentBlock::text(part.text.clone().unwrap_or_default())),
        "image_url" => {
            let url = part
                .image_url
                .as_ref()
                .map(|i| i.url.as_str())
                .unwrap_or_default();
            Ok(ContentBlock {
                kind: "image".into(),
                source: Some(image_source(url)?),
                ..Default::default()
            })
        }
        other => Err(ProviderError::InvalidRequest(format!(
            "content part of type {other:?} cannot be sent to an Anthropic provider"
        ))),
    }
}

/// `data:image/png;base64,AAAA` → base64 source; anything else → url source.
fn image_source(url: &str) -> Result<Value, ProviderError> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) = rest.split_once(',').ok_or_else(|| {
            ProviderError::InvalidRequest("image data URL has no ',' separating the data".into())
        })?;
        let media_type = meta.strip_suffix(";base64").ok_or_else(|| {
            ProviderError::InvalidRequest("image data URL must be base64-encoded".into())
        })?;
        return Ok(json!({"type": "base64", "media_type": media_type, "data": data}));
    }
    Ok(json!({"type": "url", "url": url}))
}

fn assistant_blocks(msg: &Message) -> Vec<ContentBlock> {
    let mut blocks = Vec::new();
    if let Some(text) = msg
        .content
        .as_ref()
        .map(Content::text)
        .filter(|t| !t.is_empty())
    {
        blocks.push(ContentBlock::text(text));
    }
    for call in msg.tool_calls.iter().flatten() {
        let input = serde_json::from_str(&call.function.arguments).unwrap_or_else(|_| json!({}));
        blocks.push(ContentBlock {
            kind: "tool_use".into(),
            id: Some(call.id.clone()),
            name: Some(call.function.name.clone()),
            input: Some(input),
            ..Default::default()
        });
    }
    blocks
}

fn tool_to_anthropic(tool: &Tool) -> ToolDef {
    ToolDef {
        name: tool.function.name.clone(),
        description: tool.function.description.clone(),
        input_schema: Some(
            tool.function
                .parameters
                .clone()
                .unwrap_or_else(|| json!({"type": "object"})),
        ),
        extra: Map::new(),
    }
}

fn tool_choice_to_anthropic(choice: &Value) -> Option<Value> {
    match choice {
        Value::String(s) => match s.as_str() {
            "auto" => Some(json!({"type": "auto"})),
            "required" => Some(json!({"type": "any"})),
            "none" => Some(json!({"type": "none"})),
            _ => None,
        },
        Value::Object(o) => {
            let name = o
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)?;
            Some(json!({"type": "tool", "name": name}))
        }
        _ => None,
    }
}

// ---------- Anthropic response → OpenAI response ----------

/// Anthropic stop reason → OpenAI finish reason.
pub fn finish_reason_from_anthropic(stop: &str) -> &'static str {
    match stop {
        "max_tokens" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop",
    }
}

/// OpenAI finish reason → Anthropic stop reason.
pub fn stop_reason_from_openai(finish: &str) -> &'static str {
    match finish {
        "length" => "max_tokens",
        "tool_calls" | "function_call" => "tool_use",
        "content_filter" => "refusal",
        _ => "end_turn",
    }
}

/// Anthropic usage → OpenAI usage: cached reads and cache writes count as prompt
/// tokens, reads also as `cached_tokens`; the Anthropic fields are kept beside.
pub fn usage_from_anthropic(u: &AnthropicUsage) -> Usage {
    let read = u.cache_read_input_tokens.unwrap_or(0);
    let created = u.cache_creation_input_tokens.unwrap_or(0);
    let prompt = u.input_tokens + read + created;
    let mut extra = Map::new();
    if let Some(c) = u.cache_creation_input_tokens {
        extra.insert("cache_creation_input_tokens".into(), c.into());
    }
    if let Some(r) = u.cache_read_input_tokens {
        extra.insert("cache_read_input_tokens".into(), r.into());
    }
    Usage {
        prompt_tokens: prompt,
        completion_tokens: u.output_tokens,
        total_tokens: prompt + u.output_tokens,
        prompt_tokens_details: Some(PromptTokensDetails {
            cached_tokens: Some(read),
            extra: Map::new(),
        }),
        extra,
    }
}

/// OpenAI usage → Anthropic usage (the inverse of `usage_from_anthropic`).
pub fn usage_to_anthropic(u: &Usage) -> AnthropicUsage {
    let read = u.cached_tokens();
    let created = u.cache_creation_tokens();
    AnthropicUsage {
        input_tokens: u.prompt_tokens.saturating_sub(read + created),
        output_tokens: u.completion_tokens,
        cache_creation_input_tokens: Some(created),
        cache_read_input_tokens: Some(read),
        extra: Map::new(),
    }
}

/// Translates an Anthropic answer into an OpenAI chat completion.
pub fn anthropic_response_to_openai(resp: MessagesResponse, created: u64) -> ChatResponse {
    let mut text = String::new();
    let mut calls = Vec::new();
    for block in &resp.content {
        match block.kind.as_str() {
            "text" => text.push_str(block.text.as_deref().unwrap_or_default()),
            "tool_use" => calls.push(ToolCall {
                id: block.id.clone().unwrap_or_default(),
                kind: "function".into(),
                function: FunctionCall {
                    name: block.name.clone().unwrap_or_default(),
                    arguments: block
                        .input
                        .as_ref()
                        .map_or_else(|| "{}".to_owned(), Value::to_string),
                },
            }),
            _ => {} // thinking and server-tool blocks have no OpenAI counterpart
        }
    }
    let message = Message {
        role: "assistant".into(),
        content: (!text.is_empty() || calls.is_empty()).then_some(Content::Text(text)),
        tool_calls: (!calls.is_empty()).then_some(calls),
        ..Default::default()
    };
    ChatResponse {
        id: resp.id,
        object: "chat.completion".into(),
        created,
        model: resp.model,
        choices: vec![Choice {
            index: 0,
            message,
            finish_reason: Some(
                finish_reason_from_anthropic(resp.stop_reason.as_deref().unwrap_or("end_turn"))
                    .into(),
            ),
            extra: Map::new(),
        }],
        usage: Some(usage_from_anthropic(&resp.usage)),
        extra: Map::new(),
    }
}

// ---------- Anthropic request → OpenAI request ----------

/// Translates an Anthropic request for an OpenAI-kind upstream.
pub fn anthropic_request_to_openai(req: &MessagesRequest) -> Result<ChatRequest, ProviderError> {
    let mut messages = Vec::new();
    if let Some(system) = &req.system {
        messages.push(Message {
            role: "system".into(),
            content: Some(Content::Text(system.text("\n\n"))),
            ..Default::default()
        });
    }
    for turn in &req.messages {
        match turn.role.as_str() {
            "user" => user_turn_to_openai(&turn.content, &mut messages)?,
            "assistant" => messages.push(assistant_turn_to_openai(&turn.content)),
            other => {
                return Err(ProviderError::InvalidRequest(format!(
                    "message role {other:?} is not user or assistant"
                )));
            }
        }
    }
    let user = req
        .metadata
        .as_ref()
        .and_then(|m| m.get("user_id"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let parallel = req
        .tool_choice
        .as_ref()
        .and_then(|c| c.get("disable_parallel_tool_use"))
        .and_then(Value::as_bool)
        .map(|disabled| !disabled);
    Ok(ChatRequest {
        model: req.model.clone(),
        messages,
        stream: req.stream,
        stream_options: None,
        max_tokens: req.max_tokens,
        max_completion_tokens: None,
        temperature: req.temperature,
        top_p: req.top_p,
        stop: req.stop_sequences.clone().map(Stop::Many),
        tools: req
            .tools
            .as_ref()
            .map(|ts| ts.iter().map(tool_to_openai).collect()),
        tool_choice: req.tool_choice.as_ref().and_then(tool_choice_to_openai),
        parallel_tool_calls: parallel,
        user,
        extra: Map::new(),
    })
}

/// A user turn becomes `tool` messages for its tool results, then one user
/// message for the rest (OpenAI wants tool answers right after the call).
fn user_turn_to_openai(
    content: &BlockContent,
    out: &mut Vec<Message>,
) -> Result<(), ProviderError> {
    let blocks = match content {
        BlockContent::Text(t) => {
            out.push(Message {
                role: "user".into(),
                content: Some(Content::Text(t.clone())),
                ..Default::default()
            });
            return Ok(());
        }
        BlockContent::Blocks(b) => b,
    };
    let mut parts = Vec::new();
    for block in blocks {
        match block.kind.as_str() {
            "tool_result" => out.push(Message {
                role: "tool".into(),
                tool_call_id: block.tool_use_id.clone(),
                content: Some(Content::Text(tool_result_text(block.content.as_ref()))),
                ..Default::default()
            }),
            "text" => parts.push(ContentPart {
                kind: "text".into(),
                text: block.text.clone(),
                ..Default::default()
            }),
            "image" => parts.push(ContentPart {
                kind: "image_url".into(),
                image_url: Some(ImageUrl {
                    url: image_url_from_source(block.source.as_ref())?,
                    detail: None,
                }),
                ..Default::default()
            }),
            other => {
                return Err(ProviderError::InvalidRequest(format!(
                    "content block of type {other:?} cannot be sent to an OpenAI-kind provider"
                )));
            }
        }
    }
    if !parts.is_empty() {
        let content = if parts.iter().all(|p| p.kind == "text") {
            Content::Text(
                parts
                    .iter()
                    .filter_map(|p| p.text.as_deref())
                    .collect::<Vec<_>>()
                    .join("\n"),
            )
        } else {
            Content::Parts(parts)
        };
        out.push(Message {
            role: "user".into(),
            content: Some(content),
            ..Default::default()
        });
    }
    Ok(())
}

fn tool_result_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn image_url_from_source(source: Option<&Value>) -> Result<String, ProviderError> {
    let src =
        source.ok_or_else(|| ProviderError::InvalidRequest("image block without source".into()))?;
    match src.get("type").and_then(Value::as_str) {
        Some("base64") => {
            let media = src
                .get("media_type")
                .and_then(Value::as_str)
                .unwrap_or("image/png");
            let data = src.get("data").and_then(Value::as_str).unwrap_or_default();
            Ok(format!("data:{media};base64,{data}"))
        }
        Some("url") => Ok(src
            .get("url")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()),
        other => Err(ProviderError::InvalidRequest(format!(
            "image source type {other:?} is not supported"
        ))),
    }
}

fn assistant_turn_to_openai(content: &BlockContent) -> Message {
    let blocks = content.clone().into_blocks();
    let text: String = blocks
        .iter()
        .filter(|b| b.kind == "text")
        .filter_map(|b| b.text.as_deref())
        .collect();
    let calls: Vec<ToolCall> = blocks
        .iter()
        .filter(|b| b.kind == "tool_use")
        .map(|b| ToolCall {
            id: b.id.clone().unwrap_or_default(),
            kind: "function".into(),
            function: FunctionCall {
                name: b.name.clone().unwrap_or_default(),
                arguments: b
                    .input
                    .as_ref()
                    .map_or_else(|| "{}".to_owned(), Value::to_string),
            },
        })
        .collect();
    Message {
        role: "assistant".into(),
        content: (!text.is_empty()).then_some(Content::Text(text)),
        tool_calls: (!calls.is_empty()).then_some(calls),
        ..Default::default()
    }
}

fn tool_to_openai(tool: &ToolDef) -> Tool {
    Tool {
        kind: "function".into(),
        function: FunctionDef {
            name: tool.name.clone(),
            description: tool.description.clone(),
            parameters: tool.input_schema.clone(),
            extra: Map::new(),
        },
    }
}

fn tool_choice_to_openai(choice: &Value) -> Option<Value> {
    match choice.get("type").and_then(Value::as_str)? {
        "auto" => Some(json!("auto")),
        "any" => Some(json!("required")),
        "none" => Some(json!("none")),
        "tool" => {
            let name = choice.get("name").and_then(Value::as_str)?;
            Some(json!({"type": "function", "function": {"name": name}}))
        }
        _ => None,
    }
}

// ---------- OpenAI response → Anthropic response ----------

/// Translates an OpenAI chat completion into an Anthropic answer.
pub fn openai_response_to_anthropic(resp: ChatResponse) -> MessagesResponse {
    let choice = resp.choices.into_iter().next();
    let mut content = Vec::new();
    let mut finish = None;
    if let Some(choice) = choice {
        finish = choice.finish_reason;
        if let Some(text) = choice
            .message
            .content
            .as_ref()
            .map(Content::text)
            .filter(|t| !t.is_empty())
        {
            content.push(ContentBlock::text(text));
        }
        for call in choice.message.tool_calls.into_iter().flatten() {
            let input =
                serde_json::from_str(&call.function.arguments).unwrap_or_else(|_| json!({}));
            content.push(ContentBlock {
                kind: "tool_use".into(),
                id: Some(call.id),
                name: Some(call.function.name),
                input: Some(input),
                ..Default::default()
            });
        }
    }
    MessagesResponse {
        id: resp.id,
        kind: "message".into(),
        role: "assistant".into(),
        content,
        model: resp.model,
        stop_reason: Some(stop_reason_from_openai(finish.as_deref().unwrap_or("stop")).into()),
        stop_sequence: None,
        usage: resp
            .usage
            .as_ref()
            .map(usage_to_anthropic)
            .unwrap_or_default(),
        extra: Map::new(),
    }
}

#[cfg(test)]
#[path = "convert_tests.rs"]
mod tests;
