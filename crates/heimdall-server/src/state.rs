//! Shared state of the HTTP layer: cheap to clone, owned by the router.

use std::sync::Arc;

use heimdall_core::clock::Clock;
use heimdall_store::Store;

use crate::auth::AdminAuth;
use crate::config::Config;
use crate::usage::LiveUsage;

/// Everything handlers share.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    pub clock: Arc<dyn Clock>,
    pub admin: Arc<AdminAuth>,
    /// Live upstream providers (swapped after each provider write).
    pub providers: crate::provider_admin::Registry,
    /// The policy index, counters and prices of this node.
    pub governance: Arc<crate::governance::Governance>,
    /// Live usage for management reads (the governance counters).
    pub usage: Arc<dyn LiveUsage>,
}
