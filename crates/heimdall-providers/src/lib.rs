//! Heimdall's upstream providers behind one narrow trait.
//!
//! `types` are the canonical (OpenAI-shaped) chat and embedding types;
//! `provider::Provider` is the trait a kind implements; `openai/` and
//! `anthropic/` are the kinds (wire, convert, client each); `upstream` wraps a
//! configured provider with key choice and retries. This crate must not know
//! about governance, the store or the HTTP edge.

pub mod anthropic;
pub mod config;
pub mod conformance;
pub mod error;
pub mod http_client;
pub mod keys;
pub mod openai;
pub mod provider;
pub mod retry;
pub mod sse;
pub mod transport;
pub mod types;
pub mod upstream;

#[doc(hidden)]
pub use futures as futures_reexport;

pub use config::{KeyConfig, KeyValue, NetworkConfig, ProviderConfig, ProviderKind};
pub use error::ProviderError;
pub use provider::{
    Call, ChatBytes, ChatStream, ChunkEvent, MessagesEvent, MessagesStream, Provider,
};
pub use upstream::{Upstream, forwardable_headers};
