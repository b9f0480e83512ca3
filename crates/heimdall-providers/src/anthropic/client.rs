//! HTTP calls of the `anthropic` kind over one pooled client.
//!
//! Native Messages requests pass through; OpenAI-shaped ones are translated by
//! `convert` and `stream`. It must not choose keys or retry.

use std::collections::VecDeque;

use futures::stream::{BoxStream, StreamExt};
use http::{HeaderMap, HeaderValue};
use serde_json::Value;

use super::convert::{anthropic_response_to_openai, openai_request_to_anthropic};
use super::stream::{AnthropicToOpenAi, answer_as_events, read_stream_fallback, stream_error};
use super::wire::{ANTHROPIC_VERSION, MessagesRequest, MessagesResponse};
use crate::config::{ProviderConfig, ProviderKind};
use crate::error::ProviderError;
use crate::http_client::{HttpClient, RequestBuilder, Response};
use crate::openai::wire::ModelList;
use crate::provider::{
    BoxFut, Call, ChatStream, ChunkEvent, MessagesEvent, MessagesStream, Provider,
};
use crate::sse::{self, SseEvent};
use crate::transport::{
    Endpoints, build_client, header_map, is_json_answer, read_body, read_json, send, unix_now,
};
use crate::types::{ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse, ModelInfo};

/// An Anthropic-kind upstream.
#[derive(Debug, Clone)]
pub struct AnthropicProvider {
    client: HttpClient,
    endpoints: Endpoints,
    extra_headers: HeaderMap,
}

impl AnthropicProvider {
    /// Builds the provider and its pooled client.
    pub fn new(config: &ProviderConfig) -> Result<Self, ProviderError> {
        Ok(Self {
            client: build_client(&config.network)?,
            endpoints: Endpoints::new(
                config.network.effective_base_url(ProviderKind::Anthropic),
                &["/v1/messages", "/v1/models"],
            ),
            extra_headers: header_map(&config.network.extra_headers)?,
        })
    }

    fn request(&self, method: http::Method, path: &str, call: &Call) -> RequestBuilder {
        let mut headers = call.headers.clone();
        for (k, v) in &self.extra_headers {
            headers.insert(k.clone(), v.clone());
        }
        // the client's anthropic-version wins (it knows which API it speaks)
        if !headers.contains_key("anthropic-version") {
            headers.insert(
                "anthropic-version",
                HeaderValue::from_static(ANTHROPIC_VERSION),
            );
        }
        if let Some(key) = call
            .key
            .as_deref()
            .and_then(|k| HeaderValue::from_str(k).ok())
        {
            headers.insert("x-api-key", key);
        }
        self.endpoints
            .request(&self.client, method, path)
            .headers(headers)
    }

    /// The answer to a stream request as events: the upstream's event
    /// stream, or its whole JSON answer turned into events when it ignored
    /// `stream: true` (an answer that is not a message is a 502).
    async fn stream_events(
        &self,
        call: &Call,
        body: &MessagesRequest,
    ) -> Result<MessagesStream, ProviderError> {
        let resp = self.post_messages(call, body).await?;
        if is_json_answer(&resp) {
            let answer = read_stream_fallback(&read_body(resp).await?)?;
            let events = answer_as_events(answer);
            return Ok(futures::stream::iter(events.into_iter().map(Ok)).boxed());
        }
        Ok(decode_events(sse::events(resp.bytes_stream())))
    }

    async fn post_messages(
        &self,
        call: &Call,
        body: &MessagesRequest,
    ) -> Result<Response, ProviderError> {
        send(
            self.request(http::Method::POST, "/v1/messages", call)
                .json(body),
        )
        .await
    }
}

/// Decodes the raw SSE of an Anthropic stream into events; `event: error`
/// becomes an error and ends the stream.
fn decode_events(raw: BoxStream<'static, Result<SseEvent, ProviderError>>) -> MessagesStream {
    raw.scan(false, |finished, ev| {
        if *finished {
            return futures::future::ready(None);
        }
        let item = ev.and_then(|ev| {
            let data: Value = serde_json::from_str(&ev.data).map_err(|e| {
                ProviderError::BadResponse(format!("stream event is not JSON: {e}"))
            })?;
            let name = ev.event.unwrap_or_else(|| {
                data.get("type")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            });
            if name == "error" {
                return Err(stream_error(&data));
            }
            Ok(MessagesEvent { name, data })
        });
        if item.is_err() {
            *finished = true;
        }
        futures::future::ready(Some(item))
    })
    .boxed()
}

/// Anthropic events → canonical chunks.
fn to_chunks(events: MessagesStream, model: String) -> ChatStream {
    let state = (
        events,
        AnthropicToOpenAi::new(model, unix_now()),
        VecDeque::new(),
        false,
    );
    futures::stream::unfold(
        state,
        |(mut events, mut conv, mut queue, mut done)| async move {
            loop {
                if let Some(chunk) = queue.pop_front() {
                    return Some((
                        Ok(ChunkEvent { chunk, raw: None }),
                        (events, conv, queue, done),
                    ));
                }
                if done {
                    return None;
                }
                match events.next().await {
                    Some(Ok(ev)) => match conv.push(&ev.name, &ev.data) {
                        Ok(chunks) => queue.extend(chunks),
                        Err(e) => {
                            done = true;
                            return Some((Err(e), (events, conv, queue, done)));
                        }
                    },
                    Some(Err(e)) => {
                        done = true;
                        return Some((Err(e), (events, conv, queue, done)));
                    }
                    None => done = true,
                }
            }
        },
    )
    .boxed()
}

impl Provider for AnthropicProvider {
    fn chat<'a>(&'a self, call: Call, req: &'a ChatRequest) -> BoxFut<'a, ChatResponse> {
        Box::pin(async move {
            let mut body = openai_request_to_anthropic(req)?;
            body.stream = None;
            let resp: MessagesResponse = read_json(self.post_messages(&call, &body).await?).await?;
            Ok(anthropic_response_to_openai(resp, unix_now()))
        })
    }

    fn chat_stream<'a>(&'a self, call: Call, req: &'a ChatRequest) -> BoxFut<'a, ChatStream> {
        Box::pin(async move {
            let mut body = openai_request_to_anthropic(req)?;
            body.stream = Some(true);
            let events = self.stream_events(&call, &body).await?;
            Ok(to_chunks(events, req.model.clone()))
        })
    }

    fn embeddings<'a>(
        &'a self,
        _call: Call,
        _req: &'a EmbeddingRequest,
    ) -> BoxFut<'a, EmbeddingResponse> {
        Box::pin(async move {
            Err(ProviderError::InvalidRequest(
                "providers of kind anthropic do not offer embeddings".into(),
            ))
        })
    }

    fn list_models<'a>(&'a self, call: Call) -> BoxFut<'a, Vec<ModelInfo>> {
        Box::pin(async move {
            let resp = send(self.request(http::Method::GET, "/v1/models", &call)).await?;
            let list: ModelList = read_json(resp).await?;
            Ok(list
                .data
                .into_iter()
                .map(|m| ModelInfo {
                    id: m.id,
                    owned_by: m.owned_by,
                })
                .collect())
        })
    }

    fn messages<'a>(
        &'a self,
        call: Call,
        req: &'a MessagesRequest,
    ) -> BoxFut<'a, MessagesResponse> {
        Box::pin(async move {
            let resp = if req.stream == Some(true) {
                let mut body = req.clone();
                body.stream = None;
                self.post_messages(&call, &body).await?
            } else {
                self.post_messages(&call, req).await?
            };
            read_json(resp).await
        })
    }

    fn messages_stream<'a>(
        &'a self,
        call: Call,
        req: &'a MessagesRequest,
    ) -> BoxFut<'a, MessagesStream> {
        Box::pin(async move {
            if req.is_stream() {
                self.stream_events(&call, req).await
            } else {
                let mut body = req.clone();
                body.stream = Some(true);
                self.stream_events(&call, &body).await
            }
        })
    }
}
