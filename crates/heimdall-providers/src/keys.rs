//! Which upstream key an attempt uses: pure, deterministic given a random number.
//!
//! Among the enabled keys whose `models` admit the model, pick at random by
//! weight; a retry prefers a key not tried yet. No keys at all means keyless.
//! This module must not do I/O except reading an `env_var` key at use.

use crate::config::{KeyConfig, KeyValue};
use crate::error::ProviderError;

/// The outcome of key choice for one attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyChoice<'a> {
    /// The provider has no keys: send no credential.
    Keyless,
    /// Use this key.
    Key(&'a KeyConfig),
}

/// True when the key may serve `model`.
pub fn admits(key: &KeyConfig, model: &str) -> bool {
    key.enabled && (key.models.is_empty() || key.models.iter().any(|m| m == model))
}

/// Chooses a key for `model`. `tried` holds ids already used by this request;
/// `r` is uniform in [0, 1).
pub fn choose<'a>(
    provider: &str,
    keys: &'a [KeyConfig],
    model: &str,
    tried: &[String],
    r: f64,
) -> Result<KeyChoice<'a>, ProviderError> {
    if keys.is_empty() {
        return Ok(KeyChoice::Keyless);
    }
    let eligible: Vec<&KeyConfig> = keys.iter().filter(|k| admits(k, model)).collect();
    if eligible.is_empty() {
        return Err(ProviderError::NoProviderKey(format!(
            "provider {provider:?} has no enabled key for model {model:?}"
        )));
    }
    let fresh: Vec<&KeyConfig> = eligible
        .iter()
        .copied()
        .filter(|k| !tried.iter().any(|t| t == &k.id))
        .collect();
    let pool = if fresh.is_empty() { eligible } else { fresh };
    Ok(KeyChoice::Key(weighted_pick(&pool, r)))
}

/// Weighted choice; all-zero weights fall back to uniform so a pool is never empty-handed.
fn weighted_pick<'a>(pool: &[&'a KeyConfig], r: f64) -> &'a KeyConfig {
    let total: f64 = pool.iter().map(|k| k.weight.max(0.0)).sum();
    let last = pool[pool.len() - 1];
    if total <= 0.0 {
        let i = ((r * pool.len() as f64) as usize).min(pool.len() - 1);
        return pool[i];
    }
    let mut target = r.clamp(0.0, 1.0) * total;
    for key in pool {
        let w = key.weight.max(0.0);
        if target < w {
            return key;
        }
        target -= w;
    }
    last
}

/// The secret to send, reading `env_var` keys now so rotation needs no restart.
pub fn resolve(provider: &str, key: &KeyConfig) -> Result<String, ProviderError> {
    match &key.value {
        KeyValue::Plain(v) => Ok(v.clone()),
        KeyValue::EnvVar { env_var } => std::env::var(env_var).map_err(|_| {
            ProviderError::NoProviderKey(format!(
                "key {:?} of provider {provider:?} reads environment variable {env_var} which is not set",
                key.name
            ))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, weight: f64, models: &[&str], enabled: bool) -> KeyConfig {
        KeyConfig {
            id: id.into(),
            name: id.into(),
            value: KeyValue::Plain(format!("secret-{id}")),
            models: models.iter().map(|m| (*m).to_owned()).collect(),
            weight,
            enabled,
        }
    }

    fn id(c: KeyChoice<'_>) -> String {
        match c {
            KeyChoice::Key(k) => k.id.clone(),
            KeyChoice::Keyless => "keyless".into(),
        }
    }

    #[test]
    fn no_keys_means_keyless() {
        assert_eq!(choose("p", &[], "m", &[], 0.3).unwrap(), KeyChoice::Keyless);
    }

    #[test]
    fn keys_that_all_exclude_the_model_is_no_provider_key() {
        let keys = [key("a", 1.0, &["x"], true), key("b", 1.0, &[], false)];
        let err = choose("p", &keys, "m", &[], 0.1).unwrap_err();
        assert_eq!(err.error_type(), "no_provider_key");
    }

    #[test]
    fn weights_split_the_unit_interval() {
        let keys = [key("a", 1.0, &[], true), key("b", 3.0, &[], true)];
        assert_eq!(id(choose("p", &keys, "m", &[], 0.2).unwrap()), "a");
        assert_eq!(id(choose("p", &keys, "m", &[], 0.3).unwrap()), "b");
        assert_eq!(id(choose("p", &keys, "m", &[], 0.999).unwrap()), "b");
    }

    #[test]
    fn retry_prefers_an_untried_key() {
        let keys = [key("a", 100.0, &[], true), key("b", 1.0, &[], true)];
        for r in [0.0, 0.5, 0.99] {
            assert_eq!(id(choose("p", &keys, "m", &["a".into()], r).unwrap()), "b");
        }
        // once every key was tried, any may be reused
        let all = ["a".to_owned(), "b".to_owned()];
        assert_eq!(id(choose("p", &keys, "m", &all, 0.0).unwrap()), "a");
    }

    #[test]
    fn per_key_model_lists_are_respected() {
        let keys = [
            key("a", 1.0, &["gpt-4o"], true),
            key("b", 1.0, &["other"], true),
        ];
        for r in [0.0, 0.7] {
            assert_eq!(id(choose("p", &keys, "gpt-4o", &[], r).unwrap()), "a");
        }
    }

    #[test]
    fn zero_weights_fall_back_to_uniform() {
        let keys = [key("a", 0.0, &[], true), key("b", 0.0, &[], true)];
        assert_eq!(id(choose("p", &keys, "m", &[], 0.9).unwrap()), "b");
    }

    #[test]
    fn env_var_keys_are_read_at_use() {
        let k = KeyConfig {
            value: KeyValue::EnvVar {
                env_var: "HEIMDALL_TEST_UNSET_VAR_X".into(),
            },
            ..key("a", 1.0, &[], true)
        };
        assert_eq!(resolve("p", &k).unwrap_err().status(), 503);
        let k = KeyConfig {
            value: KeyValue::EnvVar {
                env_var: "PATH".into(),
            },
            ..k
        };
        assert!(!resolve("p", &k).unwrap().is_empty());
    }
}
