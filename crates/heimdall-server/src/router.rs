//! Assembles every route with its layers, in this order (outermost first):
//! body limit → (admin auth on `/api/*` | governance on inference routes) →
//! handler. Unknown routes and wrong methods answer in the error envelope.
//! `G` routes are served under `/api/governance` and the legacy `/api`, the
//! latter with `Deprecation: true`.

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::auth::require_admin;
use crate::error::ApiError;
use crate::management::Declared;
use crate::state::AppState;
use crate::{inference, management, provider_admin};

/// The whole application.
pub fn build(state: AppState) -> Router {
    let auth = middleware::from_fn_with_state(state.clone(), require_admin);
    let reload = middleware::from_fn_with_state(state.clone(), reload_after_write);
    // Inside auth: a caller without credentials learns nothing of the path.
    let nul = middleware::from_fn(crate::nul_guard::refuse_nul_in_path_and_query);
    // Deprecation wraps auth on the legacy prefix, so that its refusals are
    // marked as legacy answers too.
    let admin = Router::new()
        .merge(
            management::routes("/api/governance")
                .route_layer(nul.clone())
                .route_layer(reload.clone())
                .route_layer(auth.clone()),
        )
        .merge(
            management::routes("/api")
                .route_layer(nul.clone())
                .route_layer(reload)
                .route_layer(auth.clone())
                // Its own 405 fallback, so that the layer below marks it too.
                .method_not_allowed_fallback(method_not_allowed)
                .layer(middleware::from_fn(deprecation)),
        )
        .merge(
            crate::governance::pricing_api::routes()
                .route_layer(nul.clone())
                .route_layer(auth.clone()),
        )
        .merge(provider_admin::routes().route_layer(nul).route_layer(auth));
    Router::new()
        .route("/health", get(health))
        .merge(management::key_routes("/api/governance"))
        .merge(management::key_routes("/api").layer(middleware::from_fn(deprecation)))
        .merge(admin)
        .merge(inference::routes())
        .merge(crate::metrics::routes(&state))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.config.server.max_body_bytes))
        .with_state(state)
}

/// After a successful management write, applies the index change its
/// handler declared (`management::Written`) before the response leaves, so
/// the next request already sees it. Write routes only accept handlers that
/// declare one (`management::RouteTable`); a successful write answer
/// without one is a bug, answered with a 500 rather than guessed at.
async fn reload_after_write(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let writes = method != axum::http::Method::GET && method != axum::http::Method::HEAD;
    let path = req.uri().path().to_string();
    let mut resp = next.run(req).await;
    let declared = resp.extensions_mut().remove::<Declared>();
    if !(writes && resp.status().is_success()) {
        return resp;
    }
    let Some(declared) = declared else {
        tracing::error!(%method, %path, "a management write declared no index change");
        return ApiError::internal(format!(
            "{method} {path} did not say what it changed in the policy index; the change may only apply after the next write or restart"
        ))
        .into_response();
    };
    if let Err(e) = state
        .governance
        .apply(&state.store, declared.change())
        .await
    {
        return ApiError::internal(format!(
            "the change was saved, but the policy index could not be updated ({e}); it will apply after the next successful write or restart"
        ))
        .into_response();
    }
    resp
}

async fn deprecation(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    resp.headers_mut()
        .insert("deprecation", HeaderValue::from_static("true"));
    resp
}

async fn not_found(req: Request) -> ApiError {
    ApiError::not_found(format!(
        "no route for {} {}",
        req.method(),
        req.uri().path()
    ))
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::method_not_allowed(format!(
        "method {} is not allowed on {}",
        req.method(),
        req.uri().path()
    ))
}

/// `GET /health`: public; 503 in the error envelope when a component is down.
async fn health(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => axum::Json(json!({
            "status": "ok",
            "components": {"store": "ok", "redis": "disabled"},
        }))
        .into_response(),
        Err(e) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            format!("the store does not answer: {e}"),
        )
        .into_response(),
    }
}
