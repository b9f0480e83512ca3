//! The narrow trait every provider kind implements, and what flows through it.
//!
//! A kind implements four calls on the canonical (OpenAI-shaped) types. The two
//! Anthropic-dialect calls have default bodies that translate through the
//! canonical types, so a new kind is one module; the Anthropic kind overrides
//! them to pass requests through untouched. Nothing here chooses keys or
//! retries: that is `upstream`.

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::{BoxStream, StreamExt};
use http::HeaderMap;

use crate::anthropic::convert;
use crate::anthropic::stream::OpenAiToAnthropic;
use crate::anthropic::wire::{MessagesRequest, MessagesResponse};
use crate::error::ProviderError;
use crate::types::{
    ChatChunk, ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse, ModelInfo,
};

/// A boxed future of a provider call.
pub type BoxFut<'a, T> = BoxFuture<'a, Result<T, ProviderError>>;

/// A stream of canonical chunks.
pub type ChatStream = BoxStream<'static, Result<ChunkEvent, ProviderError>>;

/// A stream of Anthropic events.
pub type MessagesStream = BoxStream<'static, Result<MessagesEvent, ProviderError>>;

/// One canonical chunk, with the upstream's bytes when it already spoke
/// OpenAI's format (so the edge can forward them without re-encoding).
#[derive(Debug, Clone)]
pub struct ChunkEvent {
    /// Parsed chunk.
    pub chunk: ChatChunk,
    /// The `data:` payload exactly as received, when the upstream is OpenAI-kind.
    pub raw: Option<Bytes>,
}

/// A non-streaming chat answer as the JSON bytes to answer with, and the
/// usage read from them.
#[derive(Debug, Clone)]
pub struct ChatBytes {
    /// A JSON object: the upstream's body as received when it spoke
    /// OpenAI's format, else the canonical answer serialized.
    pub body: Bytes,
    /// The answer's `usage`, if it had one.
    pub usage: Option<crate::types::Usage>,
    /// The body already has a top-level `extra_fields` (so the edge must
    /// merge into it rather than append one).
    pub has_extra_fields: bool,
}

/// One Anthropic SSE event.
#[derive(Debug, Clone, PartialEq)]
pub struct MessagesEvent {
    /// `event:` name (`message_start`, `content_block_delta`, …).
    pub name: String,
    /// The JSON `data:` payload.
    pub data: serde_json::Value,
}

/// What one attempt needs besides the request: the chosen credential and the
/// client headers that may be forwarded.
#[derive(Debug, Clone, Default)]
pub struct Call {
    /// Provider key for this attempt; `None` for keyless providers.
    pub key: Option<String>,
    /// Client headers allowed upstream (credentials already removed).
    pub headers: HeaderMap,
}

/// One provider kind.
pub trait Provider: Send + Sync + 'static {
    /// OpenAI chat completion, non-streaming.
    fn chat<'a>(&'a self, call: Call, req: &'a ChatRequest) -> BoxFut<'a, ChatResponse>;

    /// OpenAI chat completion, non-streaming, as bytes to answer with.
    /// Default: [`Provider::chat`]'s answer serialized. The OpenAI kind
    /// overrides it to pass the upstream's body on untouched, reading only
    /// its usage (re-encoding the answer cost a tenth of a request's CPU).
    fn chat_bytes<'a>(&'a self, call: Call, req: &'a ChatRequest) -> BoxFut<'a, ChatBytes> {
        Box::pin(async move {
            let resp = self.chat(call, req).await?;
            let body = serde_json::to_vec(&resp).map_err(|e| {
                ProviderError::BadResponse(format!("cannot encode the answer: {e}"))
            })?;
            Ok(ChatBytes {
                body: Bytes::from(body),
                has_extra_fields: resp.extra.contains_key("extra_fields"),
                usage: resp.usage,
            })
        })
    }

    /// OpenAI chat completion as a stream of chunks. The stream must end after
    /// the upstream's final chunk; the usage chunk, if any, is included.
    fn chat_stream<'a>(&'a self, call: Call, req: &'a ChatRequest) -> BoxFut<'a, ChatStream>;

    /// Embeddings.
    fn embeddings<'a>(
        &'a self,
        call: Call,
        req: &'a EmbeddingRequest,
    ) -> BoxFut<'a, EmbeddingResponse>;

    /// Models the upstream offers.
    fn list_models<'a>(&'a self, call: Call) -> BoxFut<'a, Vec<ModelInfo>>;

    /// Anthropic Messages, non-streaming. Default: translate through the canonical types.
    fn messages<'a>(
        &'a self,
        call: Call,
        req: &'a MessagesRequest,
    ) -> BoxFut<'a, MessagesResponse> {
        Box::pin(async move {
            let chat = convert::anthropic_request_to_openai(req)?;
            let resp = self.chat(call, &chat).await?;
            Ok(convert::openai_response_to_anthropic(resp))
        })
    }

    /// Anthropic Messages as events. Default: translate a canonical stream.
    fn messages_stream<'a>(
        &'a self,
        call: Call,
        req: &'a MessagesRequest,
    ) -> BoxFut<'a, MessagesStream> {
        Box::pin(async move {
            let mut chat = convert::anthropic_request_to_openai(req)?;
            chat.stream = Some(true);
            let upstream = self.chat_stream(call, &chat).await?;
            Ok(translate_stream(upstream, req.model.clone()))
        })
    }
}

/// Canonical chunks → Anthropic events, closing the message when the upstream ends.
fn translate_stream(upstream: ChatStream, model: String) -> MessagesStream {
    let state = (
        upstream,
        OpenAiToAnthropic::new(model),
        std::collections::VecDeque::new(),
        false,
    );
    futures::stream::unfold(
        state,
        |(mut up, mut conv, mut queue, mut done)| async move {
            loop {
                if let Some(ev) = queue.pop_front() {
                    return Some((Ok(ev), (up, conv, queue, done)));
                }
                if done {
                    return None;
                }
                match up.next().await {
                    Some(Ok(ev)) => queue.extend(conv.push(&ev.chunk)),
                    Some(Err(e)) => {
                        done = true;
                        return Some((Err(e), (up, conv, queue, done)));
                    }
                    None => {
                        done = true;
                        queue.extend(conv.finish());
                    }
                }
            }
        },
    )
    .boxed()
}
