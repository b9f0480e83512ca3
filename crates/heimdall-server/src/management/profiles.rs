//! Handlers for access-profile templates: list, create, get, partial update,
//! delete, activation, clone, versions.

use std::collections::HashMap;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use heimdall_core::profile::{
    AccessProfile, ProfileCreate, ProfilePatch, RotationSchedule, apply_patch, normalize_name,
    validate_create, validate_description,
};
use heimdall_store::{NewProfile, StoreError};

use super::dto;
use super::query::{flag, page};
use super::write::Written;
use crate::auth::Actor;
use crate::error::ApiError;
use crate::extract::{JsonBody, JsonBodyKeepingNul, QueryParams, parse_id};
use crate::state::AppState;

type ApiResult = Result<axum::response::Response, ApiError>;
/// Template writes: copies change only by propagation, so none of them
/// changes the policy index.
type WriteResult = Result<Written, ApiError>;

fn render(p: &AccessProfile) -> Value {
    dto::profile(p)
}

fn profile_id(raw: &str) -> Result<i64, ApiError> {
    parse_id(raw, "access profile id")
}

async fn load(state: &AppState, id: i64) -> Result<AccessProfile, ApiError> {
    state
        .store
        .get_profile(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("access profile {id} not found")))
}

/// `GET G/access-profiles`
pub async fn list(
    State(state): State<AppState>,
    QueryParams(q): QueryParams<HashMap<String, String>>,
) -> ApiResult {
    let pg = page(&q, 50, 1, 500)?;
    let is_active = flag(&q, "is_active")?;
    let search = q
        .get("search")
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty());
    let tags: Vec<String> = q
        .get("tags")
        .map(|t| {
            t.split(',')
                .map(|s| s.trim().to_lowercase())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let all = state.store.list_profiles().await?;
    let matching: Vec<&AccessProfile> = all
        .iter()
        .filter(|p| is_active.is_none_or(|a| p.is_active == a))
        .filter(|p| {
            search.as_ref().is_none_or(|s| {
                p.name.to_lowercase().contains(s)
                    || p.description
                        .as_ref()
                        .is_some_and(|d| d.to_lowercase().contains(s))
            })
        })
        .filter(|p| {
            tags.iter()
                .all(|t| p.tags.iter().any(|pt| pt.to_lowercase() == *t))
        })
        .collect();
    let total = matching.len();
    let items: Vec<Value> = matching
        .into_iter()
        .skip(usize::try_from(pg.offset).unwrap_or(usize::MAX))
        .take(usize::try_from(pg.limit).unwrap_or(0))
        .map(render)
        .collect();
    Ok(axum::Json(json!({
        "count": items.len(),
        "access_profiles": items,
        "total_count": total,
        "limit": pg.limit,
        "offset": pg.offset,
    }))
    .into_response())
}

/// `POST G/access-profiles`
pub async fn create(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    JsonBody(req): JsonBodyKeepingNul<ProfileCreate>,
) -> WriteResult {
    let now = state.clock.now();
    let v = validate_create(req, now)?;
    let new = NewProfile {
        name: v.name,
        description: v.description,
        tags: v.tags,
        policy: v.policy,
        rotation: RotationSchedule {
            interval_ns: v.rotation_interval_ns,
            next_rotation_at: v.next_rotation_at,
            last_rotation_at: None,
        },
    };
    let p = state
        .store
        .create_profile(new, &actor.0, now, &render, "create", None)
        .await?;
    Ok(Written::nothing((
        StatusCode::CREATED,
        axum::Json(json!({ "access_profile": render(&p) })),
    )))
}

/// `GET G/access-profiles/{id}`
pub async fn get_one(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let id = profile_id(&id)?;
    let (p, roles, users) = state
        .store
        .get_profile_detail(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("access profile {id} not found")))?;
    Ok(axum::Json(json!({
        "access_profile": render(&p),
        "roles": roles.iter().map(dto::role_attachment).collect::<Vec<_>>(),
        "user_count": users,
    }))
    .into_response())
}

/// `PUT G/access-profiles/{id}`
pub async fn update(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    JsonBody(patch): JsonBodyKeepingNul<ProfilePatch>,
) -> WriteResult {
    let id = profile_id(&id)?;
    let now = state.clock.now();
    let p = state
        .store
        .update_profile(id, &actor.0, now, &render, |current| {
            apply_patch(current, patch, now).map_err(|e| StoreError::Invalid(e.0))
        })
        .await?;
    Ok(Written::nothing(axum::Json(
        json!({ "access_profile": render(&p) }),
    )))
}

/// `DELETE G/access-profiles/{id}` (refused while the template has copies).
pub async fn delete(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> WriteResult {
    let id = profile_id(&id)?;
    state
        .store
        .delete_profile(id, &actor.0, state.clock.now(), &render)
        .await?;
    Ok(Written::nothing(axum::Json(
        json!({ "message": format!("access profile {id} deleted") }),
    )))
}

async fn set_active(state: AppState, actor: Actor, id: String, active: bool) -> WriteResult {
    let id = profile_id(&id)?;
    let p = state
        .store
        .set_profile_active(id, active, &actor.0, state.clock.now())
        .await?;
    Ok(Written::nothing(axum::Json(
        json!({ "access_profile": render(&p) }),
    )))
}

/// `PUT G/access-profiles/{id}/activate`
pub async fn activate(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> WriteResult {
    set_active(state, actor, id, true).await
}

/// `PUT G/access-profiles/{id}/deactivate`
pub async fn deactivate(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> WriteResult {
    set_active(state, actor, id, false).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloneRequest {
    name: Option<String>,
    description: Option<String>,
}

/// `POST G/access-profiles/{id}/clone`: a fresh template with the source's
/// policy under new ids, no roles, no copies, version 1, inactive.
pub async fn clone(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    JsonBody(req): JsonBodyKeepingNul<CloneRequest>,
) -> WriteResult {
    let id = profile_id(&id)?;
    let name = normalize_name(req.name.as_deref())?;
    let description = validate_description(req.description)?;
    let source = load(&state, id).await?;
    let now = state.clock.now();
    let interval = source.rotation.interval_ns;
    let new = NewProfile {
        name,
        description: description.or(source.description.clone()),
        tags: source.tags.clone(),
        policy: source.policy.without_ids(),
        rotation: RotationSchedule {
            interval_ns: interval,
            next_rotation_at: (interval > 0).then(|| now + chrono::Duration::nanoseconds(interval)),
            last_rotation_at: None,
        },
    };
    let p = state
        .store
        .create_profile(
            new,
            &actor.0,
            now,
            &render,
            "clone",
            Some(json!({ "source_profile_id": id })),
        )
        .await?;
    Ok(Written::nothing((
        StatusCode::CREATED,
        axum::Json(json!({ "access_profile": render(&p) })),
    )))
}

/// `GET G/access-profiles/{id}/versions`
pub async fn versions(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let id = profile_id(&id)?;
    load(&state, id).await?;
    let list = state.store.list_versions(id).await?;
    Ok(axum::Json(json!({
        "versions": list.iter().map(dto::version).collect::<Vec<_>>(),
    }))
    .into_response())
}

/// `GET G/access-profiles/{id}/versions/{version}`
pub async fn version(
    State(state): State<AppState>,
    Path((id, version)): Path<(String, String)>,
) -> ApiResult {
    let id = profile_id(&id)?;
    let number = parse_id(&version, "version")?;
    load(&state, id).await?;
    let v = state.store.get_version(id, number).await?.ok_or_else(|| {
        ApiError::not_found(format!("access profile {id} has no version {number}"))
    })?;
    Ok(axum::Json(json!({ "version": dto::version(&v) })).into_response())
}
