//! Handlers for virtual keys: list a user's keys (masked), mint, delete,
//! update, rotate, and the self-service quota route authenticated by a key.

use axum::extract::{Path, Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use heimdall_core::profile::validate_description;
use serde::Deserialize;
use serde_json::json;

use super::copy_dto;
use super::write::Written;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::state::AppState;

const MAX_KEY_NAME: usize = 255;

fn check_key_name(name: Option<&str>) -> Result<Option<String>, ApiError> {
    match name.map(str::trim) {
        None => Ok(None),
        Some("") => Err(ApiError::invalid_request("name must not be empty")),
        Some(n) if n.chars().any(char::is_control) => Err(ApiError::invalid_request(
            "name must not contain control characters",
        )),
        Some(n) if n.chars().count() > MAX_KEY_NAME => Err(ApiError::invalid_request(format!(
            "name is longer than {MAX_KEY_NAME} characters"
        ))),
        Some(n) => Ok(Some(n.to_string())),
    }
}

pub async fn list(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
) -> Result<Response, ApiError> {
    let keys = state.store.list_user_keys(&user_id).await?;
    Ok(axum::Json(json!({
        "virtual_keys": keys.iter().map(copy_dto::key).collect::<Vec<_>>(),
    }))
    .into_response())
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MintBody {
    name: Option<String>,
    description: Option<String>,
}

async fn mint_for(state: AppState, user_id: String, body: MintBody) -> Result<Written, ApiError> {
    let name = check_key_name(body.name.as_deref())?;
    // Capped like profile and role descriptions, so that one user's key
    // list cannot grow to megabytes.
    let description = validate_description(body.description)?;
    let key = state
        .store
        .mint_key(
            &user_id,
            name.as_deref(),
            description.as_deref(),
            state.clock.now(),
        )
        .await?;
    let resp = axum::Json(json!({
        "virtual_key": {"id": key.id, "name": key.name, "value": key.value},
    }));
    Ok(Written::user(user_id, resp))
}

/// `POST G/users/{user_id}/virtual-keys`
pub async fn mint(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    req: Request,
) -> Result<Written, ApiError> {
    let body = mint_body(req, &state).await?;
    mint_for(state, user_id, body).await
}

/// A mint body; an empty body is a mint with defaults. Read through
/// `read_body` so that a body over the limit or too slow to arrive is
/// answered in the envelope.
async fn mint_body(req: Request, state: &AppState) -> Result<MintBody, ApiError> {
    let body = crate::extract::read_body(req, state).await?;
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(MintBody::default())
    } else {
        crate::extract::parse_stored_json(&body)
    }
}

/// Deprecated alias: `POST G/users/{user_id}/access-profiles/{profile_id}/virtual-keys`.
pub async fn mint_alias(
    State(state): State<AppState>,
    Path((user_id, _profile_id)): Path<(String, String)>,
    req: Request,
) -> Result<Written, ApiError> {
    let body = mint_body(req, &state).await?;
    mint_for(state, user_id, body).await
}

/// `DELETE G/users/{user_id}/virtual-keys/{vk_id}`
pub async fn delete(
    State(state): State<AppState>,
    Path((user_id, key_id)): Path<(String, String)>,
) -> Result<Written, ApiError> {
    let key = state.store.delete_user_key(&user_id, &key_id).await?;
    let resp = axum::Json(json!({ "message": format!("virtual key \"{}\" deleted", key.name) }));
    Ok(Written::user(key.user_id, resp))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateKeyBody {
    name: Option<String>,
    #[serde(default, deserialize_with = "heimdall_core::profile::double_option")]
    description: Option<Option<String>>,
    is_active: Option<bool>,
    #[serde(default, deserialize_with = "heimdall_core::profile::double_option")]
    expires_at: Option<Option<DateTime<Utc>>>,
}

/// `PUT G/virtual-keys/{vk_id}` (Heimdall extension).
pub async fn update(
    State(state): State<AppState>,
    Path(key_id): Path<String>,
    JsonBody(body): JsonBody<UpdateKeyBody>,
) -> Result<Written, ApiError> {
    let name = check_key_name(body.name.as_deref())?;
    let description = body.description.map(validate_description).transpose()?;
    let key = state
        .store
        .update_key(
            &key_id,
            name.as_deref(),
            description.as_ref().map(|d| d.as_deref()),
            body.is_active,
            body.expires_at,
        )
        .await?;
    let resp = axum::Json(json!({ "virtual_key": copy_dto::key(&key) }));
    Ok(Written::user(key.user_id, resp))
}

/// `POST G/virtual-keys/{vk_id}/rotate`
pub async fn rotate(
    State(state): State<AppState>,
    Path(key_id): Path<String>,
) -> Result<Written, ApiError> {
    let grace =
        Duration::from_std(state.config.governance.vk_rotation_grace()).unwrap_or(Duration::zero());
    let key = state
        .store
        .rotate_key(&key_id, grace, state.clock.now())
        .await?;
    let resp = axum::Json(json!({
        "message": format!("virtual key \"{}\" rotated", key.name),
        "virtual_key": {"id": key.id, "name": key.name, "value": key.value},
    }));
    // The rotation does not return the key's owner: read it back (a key
    // never changes owner). Should that read fail after the rotation
    // committed, the whole index is rebuilt instead.
    Ok(match state.store.get_key(&key_id).await {
        Ok(k) => Written::user(k.user_id, resp),
        Err(_) => Written::everything(resp),
    })
}

/// `GET G/virtual-keys/quota`: authenticated by the virtual key itself.
pub async fn quota(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let now = state.clock.now();
    let Some(value) = crate::inference::governance_seam::find_virtual_key(&headers) else {
        return Err(ApiError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "virtual_key_required",
            "a virtual key is required: send it as \"Authorization: Bearer sk-bf-…\" or in the x-bf-vk header",
        ));
    };
    let Some(found) = state.store.find_key_by_value(&value, now).await? else {
        return Err(ApiError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "virtual_key_not_found",
            "virtual key not found (it may have been deleted or rotated)",
        ));
    };
    let key = &found.key;
    if !key.is_active {
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "virtual_key_blocked",
            format!("virtual key \"{}\" is inactive", key.name),
        ));
    }
    if key.expires_at.is_some_and(|e| e <= now) {
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "virtual_key_blocked",
            format!("virtual key \"{}\" has expired", key.name),
        ));
    }
    let copies = state.store.list_user_copies(&key.user_id).await?;
    let profiles: Vec<_> = copies
        .iter()
        .filter(|c| c.copy.is_live(now))
        .map(|c| copy_dto::quota_entry(&c.copy, state.usage.as_ref(), now))
        .collect();
    let mut body = json!({
        "virtual_key_name": key.name,
        "is_active": key.is_active,
        "user_id": key.user_id,
        "access_profiles": profiles,
    });
    // An ordinary read writes nothing. Only the holder of the old value,
    // while the new one is pending, gets it once, and that read forgets both.
    if let Some(new_value) = &found.pending_value {
        body["rotated_value"] = json!(new_value);
        let handed_over = state
            .store
            .finish_rotation_handover(&key.id, new_value)
            .await?;
        // From now on only the new value works, on this node at once. The
        // hand-over is already committed: a failed index update must not
        // swallow the new value, so it is logged, and the old value's index
        // entry then lasts until the next update or the end of its grace.
        if handed_over
            && let Err(e) = state
                .governance
                .reload_users(&state.store, std::slice::from_ref(&key.user_id))
                .await
        {
            tracing::error!(error = %e, key_id = %key.id, "policy index not updated after a rotation hand-over");
        }
    }
    Ok(axum::Json(body).into_response())
}
