//! Handlers for a user's copies: list, direct assignment, update, detach,
//! and budget overrides.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use heimdall_core::limits::budget_window;
use heimdall_core::money::Money;
use heimdall_core::profile::LimitOwner;

use super::copy_dto;
use super::write::Written;
use crate::auth::Actor;
use crate::error::ApiError;
use crate::extract::{JsonBody, parse_id};
use crate::state::AppState;

pub async fn list(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
) -> Result<Response, ApiError> {
    let copies = state.store.list_user_copies(&user_id).await?;
    let now = state.clock.now();
    Ok(axum::Json(json!({
        "access_profiles": copies.iter().map(|c| copy_dto::copy(c, state.usage.as_ref(), now)).collect::<Vec<_>>(),
    }))
    .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    access_profile_id: Option<i64>,
    expires_at: Option<DateTime<Utc>>,
}

/// `POST G/users/{user_id}/access-profiles` (Heimdall extension).
pub async fn assign(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(user_id): Path<String>,
    JsonBody(body): JsonBody<AssignBody>,
) -> Result<Written, ApiError> {
    let profile_id = body
        .access_profile_id
        .ok_or_else(|| ApiError::invalid_request("access_profile_id is required"))?;
    let now = state.clock.now();
    if body.expires_at.is_some_and(|e| e <= now) {
        return Err(ApiError::invalid_request(
            "expires_at must be in the future",
        ));
    }
    let (copy, key) = state
        .store
        .assign_direct(&user_id, profile_id, body.expires_at, &actor.0, now)
        .await?;
    let resp = (
        StatusCode::CREATED,
        axum::Json(json!({
            "access_profile": copy_dto::copy(&copy, state.usage.as_ref(), now),
            "virtual_key": {"id": key.id, "name": key.name, "value": key.value},
        })),
    );
    Ok(Written::user(user_id, resp))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateCopyBody {
    is_active: Option<bool>,
    #[serde(default, deserialize_with = "heimdall_core::profile::double_option")]
    expires_at: Option<Option<DateTime<Utc>>>,
}

/// `PUT G/users/{user_id}/access-profiles/{profile_id}` (Heimdall extension).
pub async fn update(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path((user_id, profile_id)): Path<(String, String)>,
    JsonBody(body): JsonBody<UpdateCopyBody>,
) -> Result<Written, ApiError> {
    let profile_id = parse_id(&profile_id, "access profile id")?;
    let now = state.clock.now();
    let copy = state
        .store
        .update_user_copy(
            &user_id,
            profile_id,
            body.is_active,
            body.expires_at,
            &actor.0,
            now,
        )
        .await?;
    let resp =
        axum::Json(json!({ "access_profile": copy_dto::copy(&copy, state.usage.as_ref(), now) }));
    Ok(Written::user(user_id, resp))
}

/// `DELETE G/users/{user_id}/access-profiles/{profile_id}`
pub async fn detach(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path((user_id, profile_id)): Path<(String, String)>,
) -> Result<Written, ApiError> {
    let profile_id = parse_id(&profile_id, "access profile id")?;
    let d = state
        .store
        .detach_user_copy(&user_id, profile_id, &actor.0, state.clock.now())
        .await?;
    let resp = axum::Json(json!({
        "message": format!("access profile {profile_id} detached from user {user_id}"),
        "deleted_vk_names": d.deleted_key_names,
        "deleted_vk_count": d.deleted_key_names.len(),
    }));
    Ok(Written::user(user_id, resp))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideBody {
    amount: Option<f64>,
    mode: Option<String>,
    cycles: Option<i64>,
}

fn parse_override(b: OverrideBody) -> Result<(Money, Option<u32>), ApiError> {
    let amount = b
        .amount
        .ok_or_else(|| ApiError::invalid_request("amount is required (US dollars, > 0)"))?;
    if amount.is_nan() || amount <= 0.0 {
        return Err(ApiError::invalid_request(
            "amount must be greater than 0 (US dollars)",
        ));
    }
    let money = Money::from_dollars(amount)
        .ok_or_else(|| ApiError::invalid_request("amount must be at most 1000000000 US dollars"))?;
    match (b.mode.as_deref(), b.cycles) {
        (Some("forever"), None) => Ok((money, None)),
        (Some("forever"), Some(_)) => Err(ApiError::invalid_request(
            "cycles is only valid with mode \"cycles\"",
        )),
        (Some("cycles"), Some(c)) if c > 0 && c <= i64::from(u32::MAX) => {
            Ok((money, Some(c as u32)))
        }
        (Some("cycles"), Some(_)) => Err(ApiError::invalid_request(
            "cycles must be a positive integer",
        )),
        (Some("cycles"), None) => Err(ApiError::invalid_request(
            "mode \"cycles\" needs cycles (a positive integer)",
        )),
        _ => Err(ApiError::invalid_request(
            "mode must be \"cycles\" or \"forever\"",
        )),
    }
}

async fn override_change(
    state: AppState,
    actor: Actor,
    user_id: String,
    profile_id: String,
    budget_id: String,
    change: Option<(Money, Option<u32>)>,
) -> Result<Written, ApiError> {
    let profile_id = parse_id(&profile_id, "access profile id")?;
    let now = state.clock.now();
    let (copy, budget) = state
        .store
        .set_budget_override(
            &user_id,
            profile_id,
            &budget_id,
            change,
            &|c, b| budget_window(&c.policy, b, c.assigned_at, now).map_or(0, |w| w.index),
            &actor.0,
            now,
        )
        .await?;
    let owner = copy
        .policy
        .budgets_with_owner()
        .find(|(_, b)| b.id == budget.id)
        .map_or(LimitOwner::Profile, |(o, _)| o);
    let view = copy_dto::copy_budget(
        &copy.policy,
        &budget,
        &owner,
        copy.assigned_at,
        state.usage.as_ref(),
        now,
    );
    let effective = view["effective_max_limit"].clone();
    let resp = axum::Json(json!({ "budget": view, "effective_max_limit": effective }));
    Ok(Written::user(user_id, resp))
}

/// `PUT G/users/{u}/access-profiles/{p}/budgets/{b}/override`
pub async fn set_override(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path((user_id, profile_id, budget_id)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<OverrideBody>,
) -> Result<Written, ApiError> {
    let change = parse_override(body)?;
    override_change(state, actor, user_id, profile_id, budget_id, Some(change)).await
}

/// `DELETE G/users/{u}/access-profiles/{p}/budgets/{b}/override`
pub async fn remove_override(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path((user_id, profile_id, budget_id)): Path<(String, String, String)>,
) -> Result<Written, ApiError> {
    override_change(state, actor, user_id, profile_id, budget_id, None).await
}
