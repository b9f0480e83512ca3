//! The inference edge: OpenAI- and Anthropic-dialect routes (issue 4 fills
//! this in). Registered by `router::build` with one merge.

use axum::Router;

use crate::state::AppState;

/// Inference routes (`/v1/*`, `/openai/v1/*`, `/anthropic/v1/*`).
pub fn routes() -> Router<AppState> {
    Router::new()
}
