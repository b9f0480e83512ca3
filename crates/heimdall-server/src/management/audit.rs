//! Handlers for the audit log, per profile and over all profiles.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::response::IntoResponse;
use serde_json::json;

use heimdall_store::AuditFilter;

use super::dto;
use super::query::page;
use crate::error::ApiError;
use crate::extract::{QueryParams, parse_id};
use crate::state::AppState;

async fn respond(
    state: &AppState,
    profile: Option<i64>,
    q: &HashMap<String, String>,
) -> Result<axum::response::Response, ApiError> {
    let pg = page(q, 50, 1, 500)?;
    let filter = AuditFilter {
        access_profile_id: profile,
        action: q.get("action").filter(|s| !s.is_empty()).cloned(),
        user_id: q.get("user_id").filter(|s| !s.is_empty()).cloned(),
        limit: pg.limit,
        offset: pg.offset,
    };
    let (entries, total) = state.store.list_audit(&filter).await?;
    Ok(axum::Json(json!({
        "audit_logs": entries.iter().map(dto::audit_entry).collect::<Vec<_>>(),
        "total_count": total,
        "limit": pg.limit,
        "offset": pg.offset,
    }))
    .into_response())
}

/// `GET G/access-profiles/{id}/audit-logs`
pub async fn list_for_profile(
    State(state): State<AppState>,
    Path(id): Path<String>,
    QueryParams(q): QueryParams<HashMap<String, String>>,
) -> Result<axum::response::Response, ApiError> {
    let id = parse_id(&id, "access profile id")?;
    if state.store.get_profile(id).await?.is_none() {
        return Err(ApiError::not_found(format!(
            "access profile {id} not found"
        )));
    }
    respond(&state, Some(id), &q).await
}

/// `GET G/access-profiles/audit-logs`
pub async fn list_all(
    State(state): State<AppState>,
    QueryParams(q): QueryParams<HashMap<String, String>>,
) -> Result<axum::response::Response, ApiError> {
    respond(&state, None, &q).await
}
