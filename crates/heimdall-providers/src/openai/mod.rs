//! The `openai` kind: OpenAI and every OpenAI-compatible server.
//!
//! Requests in the canonical shape are already OpenAI's, so this kind mostly
//! forwards: `wire` has the few OpenAI-only types, `convert` the small edits
//! made on the way (usage in streams), `client` the HTTP calls.

pub mod client;
pub mod convert;
pub mod wire;

pub use client::OpenAiProvider;
