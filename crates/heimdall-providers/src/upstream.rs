//! One configured provider ready to call: its kind's client, its keys, and the
//! retry loop (key choice per attempt, backoff between attempts).
//!
//! Retries happen only before a response starts: a stream that broke after
//! its first event is never replayed. This module must not know about
//! governance, fallbacks or the HTTP edge.

use std::sync::Arc;

use http::HeaderMap;

use crate::anthropic::AnthropicProvider;
use crate::anthropic::wire::{MessagesRequest, MessagesResponse};
use crate::config::{ProviderConfig, ProviderKind};
use crate::error::ProviderError;
use crate::keys::{self, KeyChoice};
use crate::openai::OpenAiProvider;
use crate::provider::{BoxFut, Call, ChatBytes, ChatStream, MessagesStream, Provider};
use crate::retry::backoff;
use crate::types::{ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse, ModelInfo};

/// A provider with its configuration, ready for requests.
#[derive(Clone)]
pub struct Upstream {
    config: Arc<ProviderConfig>,
    provider: Arc<dyn Provider>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("name", &self.config.name)
            .field("kind", &self.config.kind)
            .finish()
    }
}

impl Upstream {
    /// Builds the client of the configured kind.
    pub fn new(config: ProviderConfig) -> Result<Self, ProviderError> {
        let provider: Arc<dyn Provider> = match config.kind {
            ProviderKind::OpenAi => Arc::new(OpenAiProvider::new(&config)?),
            ProviderKind::Anthropic => Arc::new(AnthropicProvider::new(&config)?),
        };
        Ok(Self {
            config: Arc::new(config),
            provider,
        })
    }

    /// Uses a custom implementation (tests, future kinds).
    pub fn with_provider(config: ProviderConfig, provider: Arc<dyn Provider>) -> Self {
        Self {
            config: Arc::new(config),
            provider,
        }
    }

    /// True when both are the same built instance (clones of one
    /// `Upstream`), not merely equal configurations.
    pub fn same_instance(&self, other: &Upstream) -> bool {
        Arc::ptr_eq(&self.config, &other.config)
    }

    /// The configuration.
    pub fn config(&self) -> &ProviderConfig {
        &self.config
    }

    /// Non-streaming chat.
    pub async fn chat(
        &self,
        req: &ChatRequest,
        headers: &HeaderMap,
    ) -> Result<ChatResponse, ProviderError> {
        self.run(&req.model, headers, |call| self.provider.chat(call, req))
            .await
    }

    /// Non-streaming chat as the bytes to answer with (see
    /// [`Provider::chat_bytes`]).
    pub async fn chat_bytes(
        &self,
        req: &ChatRequest,
        headers: &HeaderMap,
    ) -> Result<ChatBytes, ProviderError> {
        self.run(&req.model, headers, |call| {
            self.provider.chat_bytes(call, req)
        })
        .await
    }

    /// Streaming chat; retries cover only the start of the stream.
    pub async fn chat_stream(
        &self,
        req: &ChatRequest,
        headers: &HeaderMap,
    ) -> Result<ChatStream, ProviderError> {
        self.run(&req.model, headers, |call| {
            self.provider.chat_stream(call, req)
        })
        .await
    }

    /// Embeddings.
    pub async fn embeddings(
        &self,
        req: &EmbeddingRequest,
        headers: &HeaderMap,
    ) -> Result<EmbeddingResponse, ProviderError> {
        self.run(&req.model, headers, |call| {
            self.provider.embeddings(call, req)
        })
        .await
    }

    /// Anthropic Messages, non-streaming.
    pub async fn messages(
        &self,
        req: &MessagesRequest,
        headers: &HeaderMap,
    ) -> Result<MessagesResponse, ProviderError> {
        self.run(&req.model, headers, |call| {
            self.provider.messages(call, req)
        })
        .await
    }

    /// Anthropic Messages, streaming.
    pub async fn messages_stream(
        &self,
        req: &MessagesRequest,
        headers: &HeaderMap,
    ) -> Result<MessagesStream, ProviderError> {
        self.run(&req.model, headers, |call| {
            self.provider.messages_stream(call, req)
        })
        .await
    }

    /// The upstream's model list (any key will do: `models` filters are per request model).
    pub async fn list_models(&self) -> Result<Vec<ModelInfo>, ProviderError> {
        self.run("", &HeaderMap::new(), |call| {
            self.provider.list_models(call)
        })
        .await
    }

    /// Attempts `op` up to `1 + max_retries` times on transient errors, with a
    /// fresh key choice each time (preferring keys not tried yet).
    async fn run<'a, T, F>(
        &'a self,
        model: &str,
        headers: &HeaderMap,
        mut op: F,
    ) -> Result<T, ProviderError>
    where
        F: FnMut(Call) -> BoxFut<'a, T>,
    {
        let net = &self.config.network;
        let mut tried: Vec<String> = Vec::new();
        let mut attempt: u32 = 0;
        loop {
            let key = match keys::choose(
                &self.config.name,
                &self.config.keys,
                model,
                &tried,
                rand::random::<f64>(),
            )? {
                KeyChoice::Keyless => None,
                KeyChoice::Key(k) => {
                    tried.push(k.id.clone());
                    Some(keys::resolve(&self.config.name, k)?)
                }
            };
            let call = Call {
                key,
                headers: headers.clone(),
            };
            match op(call).await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_retryable() && attempt < net.retries() => {
                    let (initial_ms, max_ms) = net.backoffs_ms();
                    let wait = backoff(
                        attempt,
                        initial_ms,
                        max_ms,
                        e.retry_after(),
                        rand::random::<f64>(),
                    );
                    tracing::debug!(provider = %self.config.name, attempt, error = %e, wait_ms = wait.as_millis() as u64, "retrying upstream");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Which client headers may go upstream: vendor headers (`anthropic-*`,
/// `openai-*`) and custom `x-*` ones, minus every credential and Heimdall's own.
/// Hop-by-hop, `host`, `content-*` and `accept-encoding` are set by the client library.
pub fn forwardable_headers(incoming: &HeaderMap) -> HeaderMap {
    const BLOCKED: [&str; 3] = ["x-api-key", "x-goog-api-key", "x-amz-security-token"];
    let mut out = HeaderMap::new();
    for (name, value) in incoming {
        let n = name.as_str();
        let vendor = n.starts_with("anthropic-") || n.starts_with("openai-");
        let custom = n.starts_with("x-")
            && !BLOCKED.contains(&n)
            && !n.starts_with("x-bf-")
            && !n.starts_with("x-heimdall-")
            && !n.starts_with("x-forwarded-");
        if vendor || custom {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_go_upstream() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("authorization", "Bearer sk-bf-1"),
            ("x-bf-vk", "sk-bf-2"),
            ("x-api-key", "k"),
            ("x-goog-api-key", "k"),
            ("api-key", "k"),
            ("cookie", "c"),
            ("x-heimdall-debug", "1"),
            ("anthropic-version", "2023-06-01"),
            ("x-mock-status", "500"),
            ("host", "h"),
        ] {
            h.insert(http::HeaderName::from_static(k), v.parse().unwrap());
        }
        let out = forwardable_headers(&h);
        let names: Vec<&str> = out.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, vec!["anthropic-version", "x-mock-status"]);
    }
}
