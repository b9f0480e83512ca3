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
mod write;

use axum::Router;
use axum::routing::get;

use crate::state::AppState;

pub use write::{Declared, DeclaresChange, RouteTable, WriteMethod, Written, write_routes};

/// Every governance route under `prefix` (`/api/governance` or `/api`).
pub fn routes(prefix: &str) -> Router<AppState> {
    table(prefix).into_router()
}

/// The route table: every write route goes through `post`, `put` or
/// `delete`, which accept only handlers that return `Written`.
fn table(prefix: &str) -> RouteTable {
    RouteTable::new(prefix)
        .read("/access-profiles", profiles::list)
        .post("/access-profiles", profiles::create)
        .read("/access-profiles/audit-logs", audit::list_all)
        .read("/access-profiles/{id}", profiles::get_one)
        .put("/access-profiles/{id}", profiles::update)
        .delete("/access-profiles/{id}", profiles::delete)
        .put("/access-profiles/{id}/activate", profiles::activate)
        .put("/access-profiles/{id}/deactivate", profiles::deactivate)
        .post("/access-profiles/{id}/clone", profiles::clone)
        .read("/access-profiles/{id}/versions", profiles::versions)
        .read(
            "/access-profiles/{id}/versions/{version}",
            profiles::version,
        )
        .read("/access-profiles/{id}/audit-logs", audit::list_for_profile)
        .post("/access-profiles/{id}/propagate", propagate::propagate)
        .post("/access-profiles/{id}/roles", roles::attach)
        .delete("/access-profiles/{id}/roles/{role_id}", roles::detach)
        .read("/rbac/roles", roles::list)
        .post("/rbac/roles", roles::create)
        .read("/rbac/roles/{id}", roles::get_one)
        .put("/rbac/roles/{id}", roles::update)
        .delete("/rbac/roles/{id}", roles::delete)
        .read("/users", users::list)
        .post("/users", users::create)
        .read("/users/{user_id}", users::get_one)
        .delete("/users/{user_id}", users::delete)
        .put("/users/{user_id}/role", users::change_role)
        .read("/users/{user_id}/access-profiles", user_copies::list)
        .post("/users/{user_id}/access-profiles", user_copies::assign)
        .put(
            "/users/{user_id}/access-profiles/{profile_id}",
            user_copies::update,
        )
        .delete(
            "/users/{user_id}/access-profiles/{profile_id}",
            user_copies::detach,
        )
        .put(
            "/users/{user_id}/access-profiles/{profile_id}/budgets/{budget_id}/override",
            user_copies::set_override,
        )
        .delete(
            "/users/{user_id}/access-profiles/{profile_id}/budgets/{budget_id}/override",
            user_copies::remove_override,
        )
        .post(
            "/users/{user_id}/access-profiles/{profile_id}/virtual-keys",
            keys::mint_alias,
        )
        .read("/users/{user_id}/virtual-keys", keys::list)
        .post("/users/{user_id}/virtual-keys", keys::mint)
        .delete("/users/{user_id}/virtual-keys/{vk_id}", keys::delete)
        .put("/virtual-keys/{vk_id}", keys::update)
        .post("/virtual-keys/{vk_id}/rotate", keys::rotate)
}

/// Routes that authenticate with a virtual key instead of admin credentials.
pub fn key_routes(prefix: &str) -> Router<AppState> {
    Router::new().route(&format!("{prefix}/virtual-keys/quota"), get(keys::quota))
}
