//! The one place where errors become HTTP responses: the error envelope of
//! inference.md §Errors, for every route. Handlers build an [`ApiError`];
//! this module renders it (Bifrost's shape, or Anthropic's on `/anthropic/*`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use heimdall_core::profile::ValidationError;
use heimdall_store::StoreError;

/// An error on its way to the client.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    /// The error `type` (`invalid_request`, `budget_exceeded`, …).
    pub kind: &'static str,
    pub message: String,
    /// True for errors Heimdall decides itself, false for upstream errors.
    pub is_bifrost_error: bool,
    /// The rarely-set parts, boxed so that `Result<_, ApiError>` stays small.
    pub details: Box<ErrorDetails>,
}

/// Optional parts of an [`ApiError`].
#[derive(Debug, Clone, Default)]
pub struct ErrorDetails {
    pub param: Option<String>,
    pub extra_fields: Map<String, Value>,
    /// Extra response headers (`Retry-After`, rate-limit headers).
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
    /// Set when the envelope already has an event id (e.g. logged upstream).
    pub event_id: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            kind,
            message: message.into(),
            is_bifrost_error: true,
            details: Box::default(),
        }
    }

    pub fn invalid_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn method_not_allowed(message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            message,
        )
    }

    pub fn too_large(limit: usize) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request_too_large",
            format!(
                "request body is larger than the limit of {limit} bytes (server.max_body_bytes)"
            ),
        )
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", message)
    }

    pub fn with_param(mut self, param: impl Into<String>) -> ApiError {
        self.details.param = Some(param.into());
        self
    }

    pub fn with_extra(mut self, key: &str, value: impl Into<Value>) -> ApiError {
        self.details
            .extra_fields
            .insert(key.to_string(), value.into());
        self
    }

    pub fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> ApiError {
        self.details.headers.push((name, value));
        self
    }

    /// Marks the error as coming from the upstream provider.
    pub fn from_upstream(mut self) -> ApiError {
        self.is_bifrost_error = false;
        self
    }

    fn event_id(&self) -> String {
        self.details
            .event_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
    }

    /// Bifrost's envelope.
    pub fn envelope(&self, event_id: &str) -> Value {
        json!({
            "event_id": event_id,
            "type": self.kind,
            "is_bifrost_error": self.is_bifrost_error,
            "status_code": self.status.as_u16(),
            "error": {
                "type": self.kind,
                "code": self.kind,
                "message": self.message,
                "param": self.details.param,
            },
            "extra_fields": self.details.extra_fields,
        })
    }

    /// Anthropic's error shape, with `status_code` and `event_id` beside it.
    pub fn anthropic_envelope(&self, event_id: &str) -> Value {
        json!({
            "type": "error",
            "error": {"type": self.kind, "message": self.message},
            "status_code": self.status.as_u16(),
            "event_id": event_id,
        })
    }

    fn respond(self, body: Value) -> Response {
        let mut resp = (self.status, axum::Json(body)).into_response();
        for (k, v) in &self.details.headers {
            resp.headers_mut().insert(k.clone(), v.clone());
        }
        resp.extensions_mut().insert(RenderedError(self));
        resp
    }

    /// Renders in Anthropic's shape (for `/anthropic/*` routes).
    pub fn into_anthropic_response(mut self) -> Response {
        let id = self.event_id();
        self.details.event_id = Some(id.clone());
        let body = self.anthropic_envelope(&id);
        self.respond(body)
    }
}

/// Marks a response as an [`ApiError`] so that a route-level layer can
/// re-render it (Anthropic's shape).
#[derive(Debug, Clone)]
pub struct RenderedError(pub ApiError);

impl IntoResponse for ApiError {
    fn into_response(mut self) -> Response {
        let id = self.event_id();
        if self.status.is_server_error() {
            tracing::error!(event_id = %id, status = self.status.as_u16(), kind = self.kind, message = %self.message, "request failed");
        }
        self.details.event_id = Some(id.clone());
        let body = self.envelope(&id);
        self.respond(body)
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        ApiError::invalid_request(e.0)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => ApiError::not_found(m),
            StoreError::Conflict(m) => ApiError::conflict(m),
            StoreError::Invalid(m) => ApiError::invalid_request(m),
            StoreError::Forbidden(m) => ApiError::forbidden(m),
            StoreError::Database(err) => ApiError::internal(format!("the store failed: {err}")),
            StoreError::Corrupt(m) => ApiError::internal(format!("stored data is unreadable: {m}")),
        }
    }
}

/// Middleware for `/anthropic/*`: re-renders any Heimdall error in
/// Anthropic's shape, keeping status, headers and event id.
pub async fn anthropic_errors(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let resp = next.run(req).await;
    match resp.extensions().get::<RenderedError>() {
        Some(RenderedError(e)) => e.clone().into_anthropic_response(),
        None => resp,
    }
}
