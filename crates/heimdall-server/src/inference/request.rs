//! Decoding an inference request at the edge, in the order governance.md
//! fixes: body size (413), then the key (401), then the body (400), then the
//! provider (400). Also maps provider errors into the envelope.
//!
//! Nothing here calls an upstream or the store.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use heimdall_providers::ProviderError;
use heimdall_providers::anthropic::wire::MessagesRequest;
use heimdall_providers::types::{ChatRequest, EmbeddingRequest};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::governance_seam::{self, Caller};
use super::routing::{self, RouteKind, Target};
use crate::error::ApiError;
use crate::extract::read_body;
use crate::state::AppState;

/// A decoded request: who, what, and where to try.
#[derive(Debug)]
pub struct Decoded<T> {
    pub caller: Caller,
    pub headers: HeaderMap,
    /// The typed body (its `model` is still the client's string).
    pub body: T,
    pub body_bytes: usize,
    /// The client's `model` string.
    pub model_requested: String,
    /// The primary target, then the fallbacks, in order.
    pub targets: Vec<Target>,
}

/// A request body type of the inference edge: `fallbacks` is Heimdall's
/// own field and is taken out of the body's unknown fields, never sent on.
pub trait InferenceBody: DeserializeOwned {
    /// The fields the type does not name (forwarded upstream as they are).
    fn extra_mut(&mut self) -> &mut Map<String, Value>;
}

impl InferenceBody for ChatRequest {
    fn extra_mut(&mut self) -> &mut Map<String, Value> {
        &mut self.extra
    }
}

impl InferenceBody for EmbeddingRequest {
    fn extra_mut(&mut self) -> &mut Map<String, Value> {
        &mut self.extra
    }
}

impl InferenceBody for MessagesRequest {
    fn extra_mut(&mut self) -> &mut Map<String, Value> {
        &mut self.extra
    }
}

/// The two fields checked before the body's shape: read in a first pass
/// that skips everything else without building it (one JSON tree of the
/// whole body, then a conversion of it, cost twice this).
#[derive(Deserialize)]
struct Head {
    #[serde(default)]
    model: Option<Value>,
    #[serde(default)]
    fallbacks: Option<Value>,
}

/// Reads and checks a request whose JSON body decodes into `T`.
pub async fn decode<T: InferenceBody>(
    state: &AppState,
    route: RouteKind,
    req: Request,
) -> Result<Decoded<T>, ApiError> {
    let headers = req.headers().clone();
    let bytes = read_body(req, state).await?;
    let caller = governance_seam::identify(state, &headers)?;
    let head: Head = crate::extract::parse_json(&bytes)?;
    if !heimdall_providers::types::starts_as_json_object(&bytes) {
        return Err(ApiError::invalid_request(
            "the request body must be a JSON object",
        ));
    }
    let model = match head.model {
        Some(Value::String(s)) => s,
        None | Some(Value::Null) => {
            return Err(ApiError::invalid_request(
                "the request body has no \"model\"; set it to \"provider/model\", e.g. \"openai/gpt-4o-mini\"",
            )
            .with_param("model"));
        }
        Some(_) => {
            return Err(ApiError::invalid_request("\"model\" must be a string").with_param("model"));
        }
    };
    let fallbacks = fallbacks_of(head.fallbacks)?;
    let snapshot = state.providers.snapshot();
    let default = state.config.server.default_provider.as_deref();
    let is_provider = |p: &str| snapshot.contains(p);
    let mut targets = Vec::with_capacity(1 + fallbacks.len());
    for m in std::iter::once(&model).chain(fallbacks.iter()) {
        let t = routing::resolve(route, m, &is_provider, default)
            .map_err(|msg| ApiError::invalid_request(msg).with_param("model"))?;
        targets.push(t);
    }
    let mut body: T = crate::extract::parse_json(&bytes)?;
    body.extra_mut().remove("fallbacks");
    Ok(Decoded {
        caller,
        headers,
        body,
        body_bytes: bytes.len(),
        model_requested: model,
        targets,
    })
}

/// `fallbacks` (never forwarded) as a list of strings.
fn fallbacks_of(value: Option<Value>) -> Result<Vec<String>, ApiError> {
    let invalid = || {
        ApiError::invalid_request("\"fallbacks\" must be a list of \"provider/model\" strings")
            .with_param("fallbacks")
    };
    match value {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                _ => Err(invalid()),
            })
            .collect(),
        Some(_) => Err(invalid()),
    }
}

/// A provider error in the envelope: the upstream's status and message,
/// `extra_fields.provider`, and `Retry-After` when the upstream sent one.
pub fn provider_error(
    e: &ProviderError,
    target: &Target,
    requested: &str,
    request_type: &str,
) -> ApiError {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut err = ApiError::new(status, e.error_type(), describe(e, target))
        .with_extra("provider", target.provider.clone())
        .with_extra("model_requested", requested.to_owned())
        .with_extra("request_type", request_type.to_owned());
    if e.is_from_upstream() {
        err = err.from_upstream();
    }
    if let Some(ra) = e
        .retry_after()
        .and_then(|d| HeaderValue::from_str(&d.as_secs().to_string()).ok())
    {
        err = err.with_header(header::RETRY_AFTER, ra);
    }
    err
}

fn describe(e: &ProviderError, target: &Target) -> String {
    match e {
        ProviderError::Upstream { .. } => e.to_string(),
        _ => format!("{e} (provider \"{}\")", target.provider),
    }
}
