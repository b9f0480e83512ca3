//! Management of upstream providers and their keys under `/api/providers`
//! (inference.md §Providers). Registered behind admin auth by `router::build`.
//!
//! Handlers validate, write the store, then rebuild the live registry before
//! answering, so the next request already sees the change. Key values are
//! never returned. The registry itself lives in `registry`.

pub mod dto;
pub mod registry;

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use chrono::Utc;
use heimdall_store::{StoredProvider, StoredProviderKey};
use serde_json::{Value, json};

use self::dto::{KeyBody, ProviderBody};
pub use self::registry::{Registry, Snapshot};
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::state::AppState;

/// Provider management routes (admin only).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/providers", get(list).post(create))
        .route(
            "/api/providers/{provider}",
            get(read).put(replace).delete(remove),
        )
        .route(
            "/api/providers/{provider}/keys",
            get(list_keys).post(add_key),
        )
        .route(
            "/api/providers/{provider}/keys/{key_id}",
            get(read_key).put(replace_key).delete(remove_key),
        )
}

type Json = Result<axum::Json<Value>, ApiError>;

async fn found(state: &AppState, name: &str) -> Result<StoredProvider, ApiError> {
    state
        .store
        .get_provider(name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("provider \"{name}\" not found")))
}

async fn provider_out(state: &AppState, p: &StoredProvider) -> Json {
    let n = state.store.list_provider_keys(Some(&p.name)).await?.len();
    Ok(axum::Json(dto::provider_json(p, n)))
}

async fn list(State(state): State<AppState>) -> Json {
    let providers = state.store.list_providers().await?;
    let keys = state.store.list_provider_keys(None).await?;
    let out: Vec<Value> = providers
        .iter()
        .map(|p| dto::provider_json(p, keys.iter().filter(|k| k.provider == p.name).count()))
        .collect();
    Ok(axum::Json(json!({"total": out.len(), "providers": out})))
}

async fn create(State(state): State<AppState>, JsonBody(body): JsonBody<ProviderBody>) -> Json {
    let name = body.provider.clone().unwrap_or_default();
    let kind = dto::checked_kind(&name, body.kind.as_deref())?;
    let network = body.network_config.unwrap_or_default();
    dto::check_network(&network)?;
    let now = Utc::now();
    let row = StoredProvider {
        name,
        kind: kind.as_str().to_owned(),
        network_config: serde_json::to_value(&network)
            .map_err(|e| ApiError::internal(e.to_string()))?,
        created_at: now,
        updated_at: now,
    };
    state.store.insert_provider(&row).await?;
    state.providers.reload(&state.store).await?;
    Ok(axum::Json(dto::provider_json(&row, 0)))
}

async fn read(State(state): State<AppState>, Path(name): Path<String>) -> Json {
    let p = found(&state, &name).await?;
    provider_out(&state, &p).await
}

async fn replace(
    State(state): State<AppState>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<ProviderBody>,
) -> Json {
    if body.provider.as_ref().is_some_and(|p| p != &name) {
        return Err(ApiError::invalid_request(
            "the provider name in the body differs from the one in the path",
        )
        .with_param("provider"));
    }
    let old = found(&state, &name).await?;
    let kind = dto::checked_kind(&name, body.kind.as_deref())?;
    let network = body.network_config.unwrap_or_default();
    dto::check_network(&network)?;
    let row = StoredProvider {
        kind: kind.as_str().to_owned(),
        network_config: serde_json::to_value(&network)
            .map_err(|e| ApiError::internal(e.to_string()))?,
        updated_at: Utc::now(),
        ..old
    };
    state.store.update_provider(&row).await?;
    state.providers.reload(&state.store).await?;
    provider_out(&state, &row).await
}

async fn remove(State(state): State<AppState>, Path(name): Path<String>) -> Json {
    let p = found(&state, &name).await?;
    let out = provider_out(&state, &p).await?;
    state.store.delete_provider(&name).await?;
    state.providers.reload(&state.store).await?;
    Ok(out)
}

async fn list_keys(State(state): State<AppState>, Path(name): Path<String>) -> Json {
    found(&state, &name).await?;
    let keys = state.store.list_provider_keys(Some(&name)).await?;
    let out: Vec<Value> = keys.iter().map(dto::key_json).collect();
    Ok(axum::Json(json!({"total": out.len(), "keys": out})))
}

async fn found_key(state: &AppState, name: &str, id: &str) -> Result<StoredProviderKey, ApiError> {
    found(state, name).await?;
    state
        .store
        .get_provider_key(name, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("provider \"{name}\" has no key \"{id}\"")))
}

async fn add_key(
    State(state): State<AppState>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<KeyBody>,
) -> Json {
    found(&state, &name).await?;
    dto::check_key(&body)?;
    let row = StoredProviderKey {
        id: uuid::Uuid::new_v4().to_string(),
        provider: name,
        name: body.name.trim().to_owned(),
        value: dto::key_value_json(&body.value),
        models: body.models,
        weight: body.weight,
        enabled: body.enabled,
        created_at: Utc::now(),
    };
    state.store.insert_provider_key(&row).await?;
    state.providers.reload(&state.store).await?;
    Ok(axum::Json(dto::key_json(&row)))
}

async fn read_key(State(state): State<AppState>, Path((name, id)): Path<(String, String)>) -> Json {
    Ok(axum::Json(dto::key_json(
        &found_key(&state, &name, &id).await?,
    )))
}

async fn replace_key(
    State(state): State<AppState>,
    Path((name, id)): Path<(String, String)>,
    JsonBody(body): JsonBody<KeyBody>,
) -> Json {
    let old = found_key(&state, &name, &id).await?;
    dto::check_key(&body)?;
    let row = StoredProviderKey {
        name: body.name.trim().to_owned(),
        value: dto::key_value_json(&body.value),
        models: body.models,
        weight: body.weight,
        enabled: body.enabled,
        ..old
    };
    state.store.update_provider_key(&row).await?;
    state.providers.reload(&state.store).await?;
    Ok(axum::Json(dto::key_json(&row)))
}

async fn remove_key(
    State(state): State<AppState>,
    Path((name, id)): Path<(String, String)>,
) -> Json {
    let old = found_key(&state, &name, &id).await?;
    state.store.delete_provider_key(&name, &id).await?;
    state.providers.reload(&state.store).await?;
    Ok(axum::Json(dto::key_json(&old)))
}
