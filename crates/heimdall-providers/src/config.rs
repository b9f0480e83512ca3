//! What a provider is: name, kind, network settings and keys.
//!
//! These are plain data shared by the config file, the management API and the
//! live registry. Validation of names lives here so every entry point agrees.
//! This module must not do I/O (env vars are read at use, in `keys`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The upstream API a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// OpenAI and every OpenAI-compatible server.
    #[serde(rename = "openai")]
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
}

impl ProviderKind {
    /// Every kind, for validation messages.
    pub const ALL: [ProviderKind; 2] = [ProviderKind::OpenAi, ProviderKind::Anthropic];

    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Anthropic => "anthropic",
        }
    }

    /// The kind a provider gets when none is given: its name if that is a
    /// known kind, else `openai` (inference.md §Providers).
    pub fn default_for_name(name: &str) -> Self {
        name.parse().unwrap_or(Self::OpenAi)
    }

    /// Public base URL of the vendor, used when none is configured.
    pub fn default_base_url(self) -> &'static str {
        match self {
            Self::OpenAi => "https://api.openai.com",
            Self::Anthropic => "https://api.anthropic.com",
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProviderKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "openai" => Ok(Self::OpenAi),
            "anthropic" => Ok(Self::Anthropic),
            other => Err(format!(
                "unknown provider kind {other:?}; known kinds: openai, anthropic"
            )),
        }
    }
}

/// Longest whole-request timeout a provider may set, in seconds (an hour:
/// longer than any answer a chat model streams, and small enough that
/// deadline arithmetic never overflows).
pub const MAX_REQUEST_TIMEOUT_SECS: u64 = 3600;
/// Most retries a provider may set on the same upstream.
pub const MAX_RETRIES: u32 = 10;
/// Longest retry backoff (initial and ceiling), in ms.
pub const MAX_BACKOFF_MS: u64 = 60_000;
/// Longest `base_url`, in characters.
pub const MAX_BASE_URL_LEN: usize = 2048;
/// Most `extra_headers` a provider may set.
pub const MAX_EXTRA_HEADERS: usize = 64;
/// Longest extra header name, in characters.
pub const MAX_HEADER_NAME_LEN: usize = 256;
/// Longest extra header value, in characters.
pub const MAX_HEADER_VALUE_LEN: usize = 8192;
/// Most `models` entries of one provider key.
pub const MAX_KEY_MODELS: usize = 1000;
/// Longest model name in a key's `models`.
pub const MAX_MODEL_NAME_LEN: usize = 256;
/// Longest key value (secret or env var name), in characters.
pub const MAX_KEY_VALUE_LEN: usize = 8192;

/// `network_config` of a provider, with the defaults of inference.md.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConfig {
    /// Server root without `/v1`; empty means the kind's public URL.
    pub base_url: String,
    /// Headers added to every upstream request.
    pub extra_headers: std::collections::BTreeMap<String, String>,
    /// Whole-request timeout.
    pub default_request_timeout_in_seconds: u64,
    /// Retries on the same provider after a transient failure.
    pub max_retries: u32,
    /// First backoff, in ms.
    pub retry_backoff_initial: u64,
    /// Backoff ceiling, in ms.
    pub retry_backoff_max: u64,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            base_url: String::new(),
            extra_headers: Default::default(),
            default_request_timeout_in_seconds: 300,
            max_retries: 0,
            retry_backoff_initial: 500,
            retry_backoff_max: 5000,
        }
    }
}

impl NetworkConfig {
    /// Whole-request timeout as a Duration, within 1 s and
    /// [`MAX_REQUEST_TIMEOUT_SECS`] whatever was stored.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(
            self.default_request_timeout_in_seconds
                .clamp(1, MAX_REQUEST_TIMEOUT_SECS),
        )
    }

    /// Retries, at most [`MAX_RETRIES`] whatever was stored.
    pub fn retries(&self) -> u32 {
        self.max_retries.min(MAX_RETRIES)
    }

    /// (initial, ceiling) backoff in ms, each at most [`MAX_BACKOFF_MS`].
    pub fn backoffs_ms(&self) -> (u64, u64) {
        (
            self.retry_backoff_initial.min(MAX_BACKOFF_MS),
            self.retry_backoff_max.min(MAX_BACKOFF_MS),
        )
    }

    /// The base URL to call: the configured one (trailing `/` and `/v1`
    /// removed, since users often paste the SDK base URL) or the kind's default.
    pub fn effective_base_url(&self, kind: ProviderKind) -> String {
        let trimmed = self.base_url.trim().trim_end_matches('/');
        let trimmed = trimmed.strip_suffix("/v1").unwrap_or(trimmed);
        if trimmed.is_empty() {
            kind.default_base_url().to_owned()
        } else {
            trimmed.to_owned()
        }
    }
}

/// A key's value: literal, or the name of an environment variable read at use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum KeyValue {
    /// Read from the environment at each use.
    EnvVar {
        /// Variable name.
        env_var: String,
    },
    /// The secret itself.
    Plain(String),
}

/// `{"env_var": "NAME"}` and nothing else.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvVarForm {
    env_var: String,
}

impl<'de> Deserialize<'de> for KeyValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Ok(Self::Plain(s)),
            v @ serde_json::Value::Object(_) => serde_json::from_value::<EnvVarForm>(v)
                .map(|f| Self::EnvVar { env_var: f.env_var })
                .map_err(|e| D::Error::custom(format!("{e}; use {{\"env_var\": \"NAME\"}}"))),
            _ => Err(D::Error::custom(
                "a key value is a string or {\"env_var\": \"NAME\"}",
            )),
        }
    }
}

impl KeyValue {
    /// What responses show instead of the secret: `sk-****abcd`, or the env var.
    pub fn redacted(&self) -> serde_json::Value {
        match self {
            Self::EnvVar { env_var } => serde_json::json!({ "env_var": env_var }),
            Self::Plain(v) => serde_json::Value::String(redact(v)),
        }
    }
}

/// First 3 and last 4 characters with `****` between; short secrets show only `****`
/// so that redaction never reveals most of a key.
pub fn redact(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() < 12 {
        return "****".to_owned();
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}****{tail}")
}

/// One upstream key of a provider.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyConfig {
    /// Stable id (UUID string).
    pub id: String,
    /// Human name.
    pub name: String,
    /// Secret or env var.
    pub value: KeyValue,
    /// Bare model names this key may serve; empty means all.
    pub models: Vec<String>,
    /// Relative weight for random choice.
    pub weight: f64,
    /// Disabled keys are never chosen.
    pub enabled: bool,
}

/// A provider as the registry needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderConfig {
    /// Unique name, the prefix of `provider/model`.
    pub name: String,
    /// Wire format.
    pub kind: ProviderKind,
    /// Network settings.
    pub network: NetworkConfig,
    /// Keys; none means keyless.
    pub keys: Vec<KeyConfig>,
}

/// Checks a provider name: 1–64 of `a-z 0-9 - _`.
pub fn validate_provider_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid provider name {name:?}: use 1 to 64 characters from a-z, 0-9, '-' and '_'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_defaults_to_name_when_known() {
        assert_eq!(
            ProviderKind::default_for_name("anthropic"),
            ProviderKind::Anthropic
        );
        assert_eq!(ProviderKind::default_for_name("groq"), ProviderKind::OpenAi);
    }

    #[test]
    fn redaction_shows_only_ends() {
        assert_eq!(redact("sk-abcdefghijklmnop"), "sk-****mnop");
        assert_eq!(redact("short"), "****");
        let env = KeyValue::EnvVar {
            env_var: "K".into(),
        };
        assert_eq!(env.redacted(), serde_json::json!({"env_var": "K"}));
    }

    #[test]
    fn key_value_parses_both_forms() {
        let v: KeyValue = serde_json::from_str(r#"{"env_var":"X"}"#).unwrap();
        assert_eq!(
            v,
            KeyValue::EnvVar {
                env_var: "X".into()
            }
        );
        let v: KeyValue = serde_json::from_str(r#""sk-1""#).unwrap();
        assert_eq!(v, KeyValue::Plain("sk-1".into()));
    }

    #[test]
    fn base_url_tolerates_v1_suffix() {
        let mut n = NetworkConfig {
            base_url: "http://h:1/v1/".into(),
            ..Default::default()
        };
        assert_eq!(n.effective_base_url(ProviderKind::OpenAi), "http://h:1");
        n.base_url.clear();
        assert_eq!(
            n.effective_base_url(ProviderKind::Anthropic),
            "https://api.anthropic.com"
        );
    }

    #[test]
    fn stored_extremes_are_clamped() {
        let n = NetworkConfig {
            default_request_timeout_in_seconds: u64::MAX,
            max_retries: u32::MAX,
            retry_backoff_initial: u64::MAX,
            retry_backoff_max: u64::MAX,
            ..Default::default()
        };
        assert_eq!(
            n.request_timeout(),
            Duration::from_secs(MAX_REQUEST_TIMEOUT_SECS)
        );
        assert_eq!(n.retries(), MAX_RETRIES);
        assert_eq!(n.backoffs_ms(), (MAX_BACKOFF_MS, MAX_BACKOFF_MS));
        let n = NetworkConfig {
            default_request_timeout_in_seconds: 0,
            ..Default::default()
        };
        assert_eq!(n.request_timeout(), Duration::from_secs(1));
    }

    #[test]
    fn unknown_network_fields_are_refused() {
        assert!(serde_json::from_str::<NetworkConfig>(r#"{"zz": 1}"#).is_err());
        assert!(serde_json::from_str::<KeyValue>(r#"{"env_var": "X", "zz": 1}"#).is_err());
    }

    #[test]
    fn names_are_validated() {
        assert!(validate_provider_name("open-ai_2").is_ok());
        assert!(validate_provider_name("").is_err());
        assert!(validate_provider_name("Upper").is_err());
        assert!(validate_provider_name(&"a".repeat(65)).is_err());
    }
}
