//! The `anthropic` kind: Anthropic Messages.
//!
//! `wire` has the Anthropic types, `convert` and `stream` translate to and from
//! the canonical (OpenAI) shape, `client` makes the HTTP calls. Anthropic
//! requests from Anthropic clients pass through without translation.

pub mod client;
pub mod convert;
pub mod stream;
pub mod wire;

pub use client::AnthropicProvider;
