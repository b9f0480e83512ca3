//! Handler for `POST G/access-profiles/{id}/propagate`.

use axum::Extension;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::json;

use heimdall_core::copy::parse_fields;

use super::write::Written;
use crate::auth::Actor;
use crate::error::ApiError;
use crate::extract::{JsonBody, parse_id};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PropagateBody {
    #[serde(default)]
    fields: Vec<String>,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    user_ids: Vec<String>,
    #[serde(default)]
    reset_usage: bool,
}

pub async fn propagate(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<PropagateBody>,
) -> Result<Written, ApiError> {
    let id = parse_id(&id, "access profile id")?;
    let fields = parse_fields(&body.fields)?;
    let out = state
        .store
        .propagate_profile(
            id,
            &fields,
            &body.fields,
            &body.user_ids,
            body.dry_run,
            body.reset_usage,
            &actor.0,
            state.clock.now(),
        )
        .await?;
    state.governance.reset_counters(&out.reset);
    // Every copy of the template may have changed.
    Ok(Written::everything(axum::Json(json!({
        "affected_users": out.affected_user_ids.len(),
        "failed_users": 0,
        "skipped_users": out.skipped_users,
        "user_ids": out.affected_user_ids,
        "fields": body.fields,
        "applied": out.applied,
        "vk_sync_errors": Vec::<String>::new(),
    }))))
}
