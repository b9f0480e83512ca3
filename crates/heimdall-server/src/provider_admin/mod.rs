//! Management of upstream providers and their keys under `/api/providers`
//! (issue 4 fills this in). Registered behind admin auth by `router::build`.

use axum::Router;

use crate::state::AppState;

/// Provider management routes (admin only).
pub fn routes() -> Router<AppState> {
    Router::new()
}
