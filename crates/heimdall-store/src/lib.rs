//! Heimdall's persistent store: SQLite (embedded default) or PostgreSQL behind
//! one type, with the same schema and the same SQL (sqlx's `Any` driver).
//!
//! Conventions: 64-bit integers, booleans as 0/1, timestamps as Unix
//! milliseconds, structured policy as JSON text. Every write that touches
//! several rows runs in one transaction. The store is never called from the
//! inference request path; the server builds in-memory indexes from it.

mod audit;
mod connect;
mod copies;
mod error;
mod governance;
mod keys;
mod profiles;
mod propagate;
mod providers;
mod provision;
mod roles;
mod rows;
mod settings;
mod text;
mod users;
mod versions;

pub use audit::{AuditEntry, AuditFilter, NewAuditEntry};
pub use connect::{Backend, Store, redact as redact_url};
pub use copies::{CopyWithKeys, Detached};
pub use error::StoreError;
pub use governance::CounterRow;
pub use keys::{KeyMatch, StoredKey};
pub use profiles::{NewProfile, ProfileListing, Render, RoleAttachment};
pub use propagate::PropagateOutcome;
pub use providers::{StoredProvider, StoredProviderKey};
pub use provision::ProvisionedKey;
pub use roles::AttachOutcome;
pub use versions::ProfileVersion;
