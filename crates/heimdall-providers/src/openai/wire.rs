//! OpenAI wire types that the canonical types do not cover: the model list.
//!
//! Chat and embedding bodies are the canonical types themselves (`crate::types`).

use serde::Deserialize;

/// `GET /v1/models` answer (also what many compatible servers send).
#[derive(Debug, Deserialize)]
pub struct ModelList {
    /// The models.
    #[serde(default)]
    pub data: Vec<ModelEntry>,
}

/// One model of the list.
#[derive(Debug, Deserialize)]
pub struct ModelEntry {
    /// Model id.
    pub id: String,
    /// Owner.
    #[serde(default)]
    pub owned_by: Option<String>,
}
