//! HTTP calls of the `openai` kind over one pooled client.
//!
//! Bodies go out as the canonical types serialize them (unknown fields
//! included) and come back decoded the same way. It must not choose keys or
//! retry: `upstream` does that around it.

use futures::stream::StreamExt;
use http::HeaderMap;

use super::convert::{
    answer_as_chunks, decode_chunk, read_answer_head, read_stream_fallback, stream_request,
};
use super::wire::ModelList;
use crate::config::{ProviderConfig, ProviderKind};
use crate::error::ProviderError;
use crate::http_client::{HttpClient, RequestBuilder};
use crate::provider::{BoxFut, Call, ChatBytes, ChatStream, Provider};
use crate::sse;
use crate::transport::{
    Endpoints, build_client, header_map, is_json_answer, read_body, read_json, send,
};
use crate::types::{ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse, ModelInfo};

/// An OpenAI-kind upstream.
#[derive(Debug, Clone)]
pub struct OpenAiProvider {
    client: HttpClient,
    endpoints: Endpoints,
    extra_headers: HeaderMap,
}

impl OpenAiProvider {
    /// Builds the provider and its pooled client.
    pub fn new(config: &ProviderConfig) -> Result<Self, ProviderError> {
        Ok(Self {
            client: build_client(&config.network)?,
            endpoints: Endpoints::new(
                config.network.effective_base_url(ProviderKind::OpenAi),
                &["/v1/chat/completions", "/v1/embeddings", "/v1/models"],
            ),
            extra_headers: header_map(&config.network.extra_headers)?,
        })
    }

    fn request(&self, method: http::Method, path: &str, call: &Call) -> RequestBuilder {
        let mut headers = call.headers.clone();
        for (k, v) in &self.extra_headers {
            headers.insert(k.clone(), v.clone());
        }
        let mut req = self
            .endpoints
            .request(&self.client, method, path)
            .headers(headers);
        if let Some(key) = &call.key {
            req = req.bearer_auth(key);
        }
        req
    }
}

impl Provider for OpenAiProvider {
    fn chat<'a>(&'a self, call: Call, req: &'a ChatRequest) -> BoxFut<'a, ChatResponse> {
        Box::pin(async move {
            let resp = send(
                self.request(http::Method::POST, "/v1/chat/completions", &call)
                    .json(req),
            )
            .await?;
            read_json(resp).await
        })
    }

    fn chat_bytes<'a>(&'a self, call: Call, req: &'a ChatRequest) -> BoxFut<'a, ChatBytes> {
        Box::pin(async move {
            let resp = send(
                self.request(http::Method::POST, "/v1/chat/completions", &call)
                    .json(req),
            )
            .await?;
            let body = read_body(resp).await?;
            let head = read_answer_head(&body)?;
            Ok(ChatBytes {
                body,
                usage: head.usage,
                has_extra_fields: head.extra_fields.is_some(),
            })
        })
    }

    fn chat_stream<'a>(&'a self, call: Call, req: &'a ChatRequest) -> BoxFut<'a, ChatStream> {
        Box::pin(async move {
            let body = stream_request(req);
            let resp = send(
                self.request(http::Method::POST, "/v1/chat/completions", &call)
                    .json(&body),
            )
            .await?;
            if is_json_answer(&resp) {
                // the server ignored `stream: true`: stream its whole answer
                let answer = read_stream_fallback(&read_body(resp).await?)?;
                let chunks = answer_as_chunks(answer);
                return Ok(futures::stream::iter(chunks.into_iter().map(Ok)).boxed() as ChatStream);
            }
            let stream = sse::events(resp.bytes_stream())
                .scan(false, |finished, ev| {
                    // after [DONE] or an error nothing more is read
                    if *finished {
                        return futures::future::ready(None);
                    }
                    let item = match ev {
                        Ok(ev) => match decode_chunk(&ev.data) {
                            Ok(Some(chunk)) => Some(Ok(chunk)),
                            Ok(None) => None,
                            Err(e) => {
                                *finished = true;
                                Some(Err(e))
                            }
                        },
                        Err(e) => {
                            *finished = true;
                            Some(Err(e))
                        }
                    };
                    futures::future::ready(item)
                })
                .boxed();
            Ok(stream as ChatStream)
        })
    }

    fn embeddings<'a>(
        &'a self,
        call: Call,
        req: &'a EmbeddingRequest,
    ) -> BoxFut<'a, EmbeddingResponse> {
        Box::pin(async move {
            let resp = send(
                self.request(http::Method::POST, "/v1/embeddings", &call)
                    .json(req),
            )
            .await?;
            read_json(resp).await
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
}
