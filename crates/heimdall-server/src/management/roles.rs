//! Handlers for roles (`G/rbac/roles`) and for attaching roles to templates.

use axum::Extension;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use heimdall_core::directory::validate_name;
use heimdall_core::profile::validate_description;

use super::copy_dto;
use super::write::Written;
use crate::auth::Actor;
use crate::error::ApiError;
use crate::extract::{JsonBody, parse_id};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code, reason = "read-only fields are parsed only to be accepted")]
pub struct RoleBody {
    name: Option<String>,
    #[serde(default, deserialize_with = "heimdall_core::profile::double_option")]
    description: Option<Option<String>>,
    // Read-only fields of the response shape: accepted, ignored.
    pub id: Option<serde::de::IgnoredAny>,
    pub is_system_role: Option<serde::de::IgnoredAny>,
    pub created_at: Option<serde::de::IgnoredAny>,
    pub updated_at: Option<serde::de::IgnoredAny>,
}

pub async fn list(State(state): State<AppState>) -> Result<Response, ApiError> {
    let roles = state.store.list_roles().await?;
    Ok(axum::Json(json!({
        "roles": roles.iter().map(copy_dto::role).collect::<Vec<_>>(),
        "count": roles.len(),
    }))
    .into_response())
}

pub async fn create(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<RoleBody>,
) -> Result<Written, ApiError> {
    let name = validate_name("role", body.name.as_deref())?;
    let description = validate_description(body.description.flatten())?;
    let role = state
        .store
        .create_role(&name, description.as_deref(), state.clock.now())
        .await?;
    Ok(Written::nothing(axum::Json(
        json!({ "role": copy_dto::role(&role) }),
    )))
}

pub async fn get_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id, "role id")?;
    let role = state
        .store
        .get_role(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("role {id} not found")))?;
    Ok(axum::Json(json!({ "role": copy_dto::role(&role) })).into_response())
}

pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<RoleBody>,
) -> Result<Written, ApiError> {
    let id = parse_id(&id, "role id")?;
    let name = body
        .name
        .as_deref()
        .map(|n| validate_name("role", Some(n)))
        .transpose()?;
    let description = match body.description {
        Some(d) => Some(validate_description(d)?),
        None => None,
    };
    let role = state
        .store
        .update_role(
            id,
            name.as_deref(),
            description.as_ref().map(|d| d.as_deref()),
            state.clock.now(),
        )
        .await?;
    Ok(Written::nothing(axum::Json(
        json!({ "role": copy_dto::role(&role) }),
    )))
}

pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Written, ApiError> {
    let id = parse_id(&id, "role id")?;
    // Refused while users hold the role, so no copy changes.
    state.store.delete_role(id).await?;
    Ok(Written::nothing(axum::Json(
        json!({ "message": format!("role {id} deleted") }),
    )))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachBody {
    role_ids: Option<Vec<i64>>,
    #[serde(default)]
    is_default: bool,
    #[serde(default)]
    apply_to_existing: bool,
}

/// `POST G/access-profiles/{id}/roles`
pub async fn attach(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<AttachBody>,
) -> Result<Written, ApiError> {
    let id = parse_id(&id, "access profile id")?;
    let mut role_ids = body.role_ids.unwrap_or_default();
    if role_ids.is_empty() {
        return Err(ApiError::invalid_request(
            "role_ids must list at least one role id",
        ));
    }
    let mut seen = std::collections::HashSet::new();
    role_ids.retain(|r| seen.insert(*r));
    if state.store.get_profile(id).await?.is_none() {
        return Err(ApiError::not_found(format!(
            "access profile {id} not found"
        )));
    }
    let outcome = state
        .store
        .attach_roles(
            id,
            &role_ids,
            body.is_default,
            body.apply_to_existing,
            &actor.0,
            state.clock.now(),
        )
        .await?;
    // With `apply_to_existing`, every holder of the roles may have got a
    // copy and a key.
    Ok(Written::everything(axum::Json(json!({
        "message": format!("attached {} role(s) to access profile {id}", role_ids.len()),
        "users_applied": outcome.users_applied,
    }))))
}

/// `DELETE G/access-profiles/{id}/roles/{role_id}`
pub async fn detach(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path((id, role_id)): Path<(String, String)>,
) -> Result<Written, ApiError> {
    let id = parse_id(&id, "access profile id")?;
    let role_id = parse_id(&role_id, "role id")?;
    state
        .store
        .detach_role(id, role_id, &actor.0, state.clock.now())
        .await?;
    // Copies already made from the attachment stay.
    Ok(Written::nothing(axum::Json(json!({
        "message": format!("role {role_id} detached from access profile {id}"),
    }))))
}
