//! Handlers for users: list, create (provisioning the role's default), get,
//! delete, change role.

use std::collections::HashMap;

use axum::Extension;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use heimdall_core::directory::{User, validate_email, validate_name};

use super::copy_dto;
use super::query::page;
use super::write::Written;
use crate::auth::Actor;
use crate::error::ApiError;
use crate::extract::{JsonBody, QueryParams};
use crate::state::AppState;

pub(crate) async fn render_user(state: &AppState, u: &User) -> Result<Value, ApiError> {
    let role = match u.role_id {
        Some(r) => state.store.get_role(r).await?,
        None => None,
    };
    Ok(copy_dto::user(u, role.as_ref()))
}

pub async fn list(
    State(state): State<AppState>,
    QueryParams(q): QueryParams<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let pg = page(&q, 20, 1, 100)?;
    let search = q.get("search").map(|s| s.trim()).filter(|s| !s.is_empty());
    let (users, total) = state.store.list_users(search, pg.limit, pg.offset).await?;
    let roles = state.store.list_roles().await?;
    let items: Vec<Value> = users
        .iter()
        .map(|u| copy_dto::user(u, u.role_id.and_then(|r| roles.iter().find(|x| x.id == r))))
        .collect();
    Ok(axum::Json(json!({
        "count": items.len(),
        "users": items,
        "total_count": total,
        "limit": pg.limit,
        "offset": pg.offset,
    }))
    .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    name: Option<String>,
    email: Option<String>,
    role_id: Option<i64>,
}

pub async fn create(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    JsonBody(body): JsonBody<CreateUser>,
) -> Result<Written, ApiError> {
    let name = validate_name("user", body.name.as_deref())?;
    let email = validate_email(body.email.as_deref())?;
    let (user, keys) = state
        .store
        .create_user(&name, &email, body.role_id, &actor.0, state.clock.now())
        .await?;
    let resp = axum::Json(json!({
        "user": render_user(&state, &user).await?,
        "virtual_keys": keys.iter().map(copy_dto::new_key).collect::<Vec<_>>(),
    }));
    Ok(Written::user(user.id, resp))
}

pub async fn get_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let user = state.store.get_user(&id).await?;
    Ok(axum::Json(json!({ "user": render_user(&state, &user).await? })).into_response())
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Written, ApiError> {
    state
        .store
        .delete_user(&id, &actor.0, state.clock.now())
        .await?;
    let resp = axum::Json(json!({ "message": format!("user {id} deleted") }));
    Ok(Written::user(id, resp))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeRole {
    /// Required: a role id, or `null` for no role. A body without it is a
    /// mistake, not a request to strip the user's role (and keys).
    #[serde(default, deserialize_with = "heimdall_core::profile::double_option")]
    role_id: Option<Option<i64>>,
}

pub async fn change_role(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ChangeRole>,
) -> Result<Written, ApiError> {
    let role_id = body.role_id.ok_or_else(|| {
        ApiError::invalid_request("role_id is required: a role id, or null for no role")
    })?;
    let (user, keys) = state
        .store
        .change_user_role(&id, role_id, &actor.0, state.clock.now())
        .await?;
    let resp = axum::Json(json!({
        "message": match role_id {
            Some(r) => format!("user {id} now has role {r}"),
            None => format!("user {id} now has no role"),
        },
        "user": render_user(&state, &user).await?,
        "virtual_keys": keys.iter().map(copy_dto::new_key).collect::<Vec<_>>(),
    }));
    Ok(Written::user(id, resp))
}
