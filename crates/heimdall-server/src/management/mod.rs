//! The management API under `/api/governance` and the legacy `/api`:
//! thin handlers that translate between the wire (DTOs in `dto`) and the
//! core and store. No policy decisions are made here.

mod audit;
pub mod dto;
mod profiles;
mod query;

use axum::Router;
use axum::routing::{get, post, put};

use crate::state::AppState;

/// Every governance route under `prefix` (`/api/governance` or `/api`).
pub fn routes(prefix: &str) -> Router<AppState> {
    let p = |path: &str| format!("{prefix}{path}");
    Router::new()
        .route(
            &p("/access-profiles"),
            get(profiles::list).post(profiles::create),
        )
        .route(&p("/access-profiles/audit-logs"), get(audit::list_all))
        .route(
            &p("/access-profiles/{id}"),
            get(profiles::get_one)
                .put(profiles::update)
                .delete(profiles::delete),
        )
        .route(
            &p("/access-profiles/{id}/activate"),
            put(profiles::activate),
        )
        .route(
            &p("/access-profiles/{id}/deactivate"),
            put(profiles::deactivate),
        )
        .route(&p("/access-profiles/{id}/clone"), post(profiles::clone))
        .route(
            &p("/access-profiles/{id}/versions"),
            get(profiles::versions),
        )
        .route(
            &p("/access-profiles/{id}/versions/{version}"),
            get(profiles::version),
        )
        .route(
            &p("/access-profiles/{id}/audit-logs"),
            get(audit::list_for_profile),
        )
}
