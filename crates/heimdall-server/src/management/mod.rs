//! The management API under `/api/governance` and the legacy `/api`:
//! thin handlers that translate between the wire (DTOs in `dto`) and the
//! core and store. No policy decisions are made here.

mod audit;
pub mod copy_dto;
pub mod dto;
mod keys;
mod profiles;
mod propagate;
mod query;
mod roles;
mod user_copies;
mod users;

use axum::Router;
use axum::routing::{delete, get, post, put};

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
        .route(
            &p("/access-profiles/{id}/propagate"),
            post(propagate::propagate),
        )
        .route(&p("/access-profiles/{id}/roles"), post(roles::attach))
        .route(
            &p("/access-profiles/{id}/roles/{role_id}"),
            delete(roles::detach),
        )
        .route(&p("/rbac/roles"), get(roles::list).post(roles::create))
        .route(
            &p("/rbac/roles/{id}"),
            get(roles::get_one).put(roles::update).delete(roles::delete),
        )
        .route(&p("/users"), get(users::list).post(users::create))
        .route(
            &p("/users/{user_id}"),
            get(users::get_one).delete(users::delete),
        )
        .route(&p("/users/{user_id}/role"), put(users::change_role))
        .route(
            &p("/users/{user_id}/access-profiles"),
            get(user_copies::list).post(user_copies::assign),
        )
        .route(
            &p("/users/{user_id}/access-profiles/{profile_id}"),
            put(user_copies::update).delete(user_copies::detach),
        )
        .route(
            &p("/users/{user_id}/access-profiles/{profile_id}/budgets/{budget_id}/override"),
            put(user_copies::set_override).delete(user_copies::remove_override),
        )
        .route(
            &p("/users/{user_id}/access-profiles/{profile_id}/virtual-keys"),
            post(keys::mint_alias),
        )
        .route(
            &p("/users/{user_id}/virtual-keys"),
            get(keys::list).post(keys::mint),
        )
        .route(
            &p("/users/{user_id}/virtual-keys/{vk_id}"),
            delete(keys::delete),
        )
        .route(&p("/virtual-keys/{vk_id}"), put(keys::update))
        .route(&p("/virtual-keys/{vk_id}/rotate"), post(keys::rotate))
}

/// Routes that authenticate with a virtual key instead of admin credentials.
pub fn key_routes(prefix: &str) -> Router<AppState> {
    Router::new().route(&format!("{prefix}/virtual-keys/quota"), get(keys::quota))
}
