//! Request and response bodies of `/api/providers…`, and their validation.
//!
//! Converts between these wire shapes, the stored rows and the live
//! `ProviderConfig`. Key values only ever leave this module redacted.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use heimdall_providers::config::{
    MAX_BACKOFF_MS, MAX_BASE_URL_LEN, MAX_EXTRA_HEADERS, MAX_HEADER_NAME_LEN, MAX_HEADER_VALUE_LEN,
    MAX_KEY_MODELS, MAX_KEY_VALUE_LEN, MAX_MODEL_NAME_LEN, MAX_REQUEST_TIMEOUT_SECS, MAX_RETRIES,
    validate_provider_name,
};
use heimdall_providers::{KeyConfig, KeyValue, NetworkConfig, ProviderConfig, ProviderKind};
use heimdall_store::{StoredProvider, StoredProviderKey};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;

/// `POST /api/providers` and `PUT /api/providers/{p}` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderBody {
    /// Name (required on POST; on PUT, when present, must match the path).
    #[serde(default)]
    pub provider: Option<String>,
    /// `openai` or `anthropic`; default from the name.
    #[serde(default)]
    pub kind: Option<String>,
    /// Network settings; missing fields take their defaults.
    #[serde(default)]
    pub network_config: Option<NetworkConfig>,
}

/// `POST /api/providers/{p}/keys` and `PUT …/keys/{id}` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyBody {
    pub name: String,
    pub value: KeyValue,
    #[serde(default)]
    pub models: Vec<String>,
    #[serde(default = "one")]
    pub weight: f64,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn one() -> f64 {
    1.0
}

fn yes() -> bool {
    true
}

/// A provider entry of the config file: the POST fields plus `keys`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedProvider {
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub network_config: Option<NetworkConfig>,
    #[serde(default)]
    pub keys: Vec<KeyBody>,
}

/// Validates a name and a kind; returns the kind to store.
pub fn checked_kind(name: &str, kind: Option<&str>) -> Result<ProviderKind, ApiError> {
    validate_provider_name(name)
        .map_err(|m| ApiError::invalid_request(m).with_param("provider"))?;
    match kind {
        None | Some("") => Ok(ProviderKind::default_for_name(name)),
        Some(k) => k
            .parse()
            .map_err(|m: String| ApiError::invalid_request(m).with_param("kind")),
    }
}

fn invalid(param: &str, message: String) -> ApiError {
    ApiError::invalid_request(message).with_param(param)
}

/// Validates network settings (limits: docs/providers.md).
pub fn check_network(n: &NetworkConfig) -> Result<(), ApiError> {
    let url = n.base_url.trim();
    if n.base_url.chars().count() > MAX_BASE_URL_LEN {
        return Err(invalid(
            "network_config.base_url",
            format!("network_config.base_url must be at most {MAX_BASE_URL_LEN} characters"),
        ));
    }
    if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
        return Err(invalid(
            "network_config.base_url",
            format!("network_config.base_url must start with http:// or https:// (got \"{url}\")"),
        ));
    }
    let timeout = n.default_request_timeout_in_seconds;
    if !(1..=MAX_REQUEST_TIMEOUT_SECS).contains(&timeout) {
        return Err(invalid(
            "network_config.default_request_timeout_in_seconds",
            format!(
                "network_config.default_request_timeout_in_seconds must be from 1 to {MAX_REQUEST_TIMEOUT_SECS} (got {timeout})"
            ),
        ));
    }
    if n.max_retries > MAX_RETRIES {
        return Err(invalid(
            "network_config.max_retries",
            format!(
                "network_config.max_retries must be at most {MAX_RETRIES} (got {})",
                n.max_retries
            ),
        ));
    }
    for (field, v) in [
        ("retry_backoff_initial", n.retry_backoff_initial),
        ("retry_backoff_max", n.retry_backoff_max),
    ] {
        if v > MAX_BACKOFF_MS {
            return Err(invalid(
                &format!("network_config.{field}"),
                format!("network_config.{field} must be at most {MAX_BACKOFF_MS} ms (got {v})"),
            ));
        }
    }
    if n.retry_backoff_initial > n.retry_backoff_max {
        return Err(invalid(
            "network_config.retry_backoff_initial",
            "network_config.retry_backoff_initial must not exceed retry_backoff_max".into(),
        ));
    }
    let param = "network_config.extra_headers";
    if n.extra_headers.len() > MAX_EXTRA_HEADERS {
        return Err(invalid(
            param,
            format!(
                "network_config.extra_headers may hold at most {MAX_EXTRA_HEADERS} headers (got {})",
                n.extra_headers.len()
            ),
        ));
    }
    for (name, value) in &n.extra_headers {
        if name.len() > MAX_HEADER_NAME_LEN {
            return Err(invalid(
                param,
                format!(
                    "network_config.extra_headers: a header name is longer than {MAX_HEADER_NAME_LEN} characters"
                ),
            ));
        }
        if value.len() > MAX_HEADER_VALUE_LEN {
            return Err(invalid(
                param,
                format!(
                    "network_config.extra_headers: the value of {name:?} is longer than {MAX_HEADER_VALUE_LEN} characters"
                ),
            ));
        }
    }
    heimdall_providers::transport::header_map(&n.extra_headers)
        .map(|_| ())
        .map_err(|e| invalid(param, format!("network_config.extra_headers: {e}")))
}

/// Validates a key body (limits: docs/providers.md).
pub fn check_key(k: &KeyBody) -> Result<(), ApiError> {
    if k.name.trim().is_empty() || k.name.chars().count() > 128 {
        return Err(
            ApiError::invalid_request("key name must be 1 to 128 characters").with_param("name"),
        );
    }
    let text = match &k.value {
        KeyValue::Plain(v) => v,
        KeyValue::EnvVar { env_var } => env_var,
    };
    if text.trim().is_empty() {
        return Err(ApiError::invalid_request(
            "key value must be a non-empty string or {\"env_var\": \"NAME\"}",
        )
        .with_param("value"));
    }
    if text.len() > MAX_KEY_VALUE_LEN {
        return Err(invalid(
            "value",
            format!("key value must be at most {MAX_KEY_VALUE_LEN} characters"),
        ));
    }
    if k.models.len() > MAX_KEY_MODELS {
        return Err(invalid(
            "models",
            format!(
                "models may hold at most {MAX_KEY_MODELS} entries (got {})",
                k.models.len()
            ),
        ));
    }
    if let Some(i) = k
        .models
        .iter()
        .position(|m| m.trim().is_empty() || m.chars().count() > MAX_MODEL_NAME_LEN)
    {
        return Err(invalid(
            &format!("models[{i}]"),
            format!("models[{i}] must be 1 to {MAX_MODEL_NAME_LEN} characters"),
        ));
    }
    if !k.weight.is_finite() || k.weight < 0.0 {
        return Err(
            ApiError::invalid_request("key weight must be a number ≥ 0").with_param("weight")
        );
    }
    Ok(())
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// ProviderResponse.
/// A `base_url` left empty shows the kind's default, the URL the provider
/// calls.
/// A stored `network_config` that does not parse is shown as stored (the
/// provider is then not served, see [`live_config`]).
pub fn provider_json(p: &StoredProvider, keys_count: usize) -> Value {
    let network = match serde_json::from_value::<NetworkConfig>(p.network_config.clone()) {
        Ok(mut network) => {
            if network.base_url.trim().is_empty()
                && let Ok(kind) = p.kind.parse::<ProviderKind>()
            {
                network.base_url = kind.default_base_url().to_owned();
            }
            serde_json::to_value(network).unwrap_or(Value::Null)
        }
        Err(_) => p.network_config.clone(),
    };
    json!({
        "name": p.name,
        "kind": p.kind,
        "network_config": network,
        "keys_count": keys_count,
        "created_at": time(p.created_at),
        "updated_at": time(p.updated_at),
    })
}

/// Key, with its value redacted.
pub fn key_json(k: &StoredProviderKey) -> Value {
    let value: KeyValue =
        serde_json::from_value(k.value.clone()).unwrap_or_else(|_| KeyValue::Plain(String::new()));
    json!({
        "id": k.id,
        "name": k.name,
        "value": value.redacted(),
        "models": k.models,
        "weight": k.weight,
        "enabled": k.enabled,
        "created_at": time(k.created_at),
    })
}

/// The stored value of a key body.
pub fn key_value_json(v: &KeyValue) -> Value {
    match v {
        KeyValue::Plain(s) => Value::String(s.clone()),
        KeyValue::EnvVar { env_var } => json!({ "env_var": env_var }),
    }
}

/// Builds the live configuration of one provider from its rows. Rows that do
/// not parse are skipped with a warning rather than taking the gateway down.
pub fn live_config(p: &StoredProvider, keys: &[&StoredProviderKey]) -> Option<ProviderConfig> {
    let kind: ProviderKind = match p.kind.parse() {
        Ok(k) => k,
        Err(e) => {
            tracing::warn!(provider = %p.name, error = %e, "skipping stored provider");
            return None;
        }
    };
    // A row that does not parse skips the provider: its defaults would send
    // the provider's keys to the kind's public host instead.
    let network: NetworkConfig = match serde_json::from_value(p.network_config.clone()) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(provider = %p.name, error = %e, "skipping stored provider: its network_config does not parse");
            return None;
        }
    };
    let keys = keys
        .iter()
        .filter_map(|k| {
            let value = serde_json::from_value(k.value.clone()).ok()?;
            Some(KeyConfig {
                id: k.id.clone(),
                name: k.name.clone(),
                value,
                models: k.models.clone(),
                weight: k.weight,
                enabled: k.enabled,
            })
        })
        .collect();
    Some(ProviderConfig {
        name: p.name.clone(),
        kind,
        network,
        keys,
    })
}

/// The config file's `providers` map, parsed.
pub fn parse_seed(raw: &BTreeMap<String, Value>) -> Result<Vec<(String, SeedProvider)>, String> {
    raw.iter()
        .map(|(name, v)| {
            let v = if v.is_null() { json!({}) } else { v.clone() };
            serde_json::from_value::<SeedProvider>(v)
                .map(|s| (name.clone(), s))
                .map_err(|e| format!("providers.{name}: {e}"))
        })
        .collect()
}
