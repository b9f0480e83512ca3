//! Heimdall's HTTP surface: the management API, the inference edge (with the
//! governance seam), error encoding, configuration and server lifecycle.
//! The request path here never calls the store; management handlers do.

pub mod auth;
pub mod config;
pub mod conn;
pub mod error;
pub mod extract;
pub mod governance;
pub mod inference;
pub mod maintenance;
pub mod management;
pub mod metrics;
pub mod nul_guard;
pub mod provider_admin;
pub mod router;
pub mod server;
pub mod state;
pub mod usage;

pub use config::{Config, ConfigError};
pub use server::{Server, StartError};
pub use state::AppState;
