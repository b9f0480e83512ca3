//! Heimdall's configuration: an optional YAML file, then environment
//! variables (the environment wins). Every setting has a default that works
//! on one machine. A bad setting stops the start with one line naming it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

/// A configuration problem, phrased as one line naming the setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub store: StoreConfig,
    pub redis: RedisConfig,
    pub admin: AdminConfig,
    pub governance: GovernanceConfig,
    pub metrics: MetricsConfig,
    pub log: LogConfig,
    /// Providers to seed at every start (owned by the provider module).
    pub providers: BTreeMap<String, serde_json::Value>,
    /// Price overrides (owned by the pricing module).
    pub pricing: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address the one HTTP port listens on (`HEIMDALL_LISTEN`).
    pub listen: String,
    /// Largest request body accepted; larger → 413.
    pub max_body_bytes: usize,
    /// Provider for a bare model name on `/v1` (none: such a request is a 400).
    pub default_provider: Option<String>,
    /// Longest time from a connection's first byte of a request head (or
    /// from accept) to the end of that head; past it the connection closes.
    pub header_read_timeout: String,
    /// A connection with no request in flight and no bytes for this long is
    /// closed (a response still streaming is a request in flight).
    pub idle_timeout: String,
    /// Longest time a request body may take to arrive; past it → 408.
    pub body_read_timeout: String,
    /// Most connections open at once; further ones wait in the listen backlog.
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".to_string(),
            max_body_bytes: 32 * 1024 * 1024,
            default_provider: None,
            header_read_timeout: "10s".to_string(),
            idle_timeout: "60s".to_string(),
            body_read_timeout: "60s".to_string(),
            max_connections: 10_000,
        }
    }
}

impl ServerConfig {
    /// `header_read_timeout`, parsed (validated at load).
    pub fn header_read_timeout(&self) -> Duration {
        parse_duration("", &self.header_read_timeout).unwrap_or(Duration::from_secs(10))
    }

    /// `idle_timeout`, parsed (validated at load).
    pub fn idle_timeout(&self) -> Duration {
        parse_duration("", &self.idle_timeout).unwrap_or(Duration::from_secs(60))
    }

    /// `body_read_timeout`, parsed (validated at load).
    pub fn body_read_timeout(&self) -> Duration {
        parse_duration("", &self.body_read_timeout).unwrap_or(Duration::from_secs(60))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        for (setting, text) in [
            ("server.header_read_timeout", &self.header_read_timeout),
            ("server.idle_timeout", &self.idle_timeout),
            ("server.body_read_timeout", &self.body_read_timeout),
        ] {
            if parse_duration(setting, text)?.is_zero() {
                return Err(ConfigError(format!("{setting} must be greater than 0")));
            }
        }
        if self.max_connections == 0 {
            return Err(ConfigError(
                "server.max_connections must be greater than 0".to_string(),
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://FILE` (created if missing) or `postgres://…` (`HEIMDALL_STORE_URL`).
    pub url: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: "sqlite://heimdall.db".to_string(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// Setting it turns on cluster mode (`HEIMDALL_REDIS_URL`).
    pub url: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Bearer token for `/api/*` (`HEIMDALL_ADMIN_TOKEN`); generated at first start when absent.
    pub token: Option<String>,
    /// Basic-auth user (`HEIMDALL_ADMIN_USERNAME`); Basic auth is off unless both are set.
    pub username: Option<String>,
    /// Basic-auth password (`HEIMDALL_ADMIN_PASSWORD`).
    pub password: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnpricedModels {
    Allow,
    Deny,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnRedisError {
    Local,
    Deny,
    Allow,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GovernanceConfig {
    /// Requests without a virtual key are refused (`HEIMDALL_REQUIRE_VIRTUAL_KEY`).
    pub require_virtual_key: bool,
    /// Output tokens assumed when a request sets no `max_tokens`.
    pub default_output_tokens: u64,
    /// Longest time settled usage waits before it is written to the store.
    pub flush_interval: String,
    /// What a governed request with a budget may do with an unpriced model.
    pub unpriced_models: UnpricedModels,
    /// How long a rotated key's old value keeps working.
    pub vk_rotation_grace: String,
    /// What admission does while Redis does not answer.
    pub on_redis_error: OnRedisError,
}

impl Default for GovernanceConfig {
    fn default() -> Self {
        GovernanceConfig {
            require_virtual_key: true,
            default_output_tokens: 1024,
            flush_interval: "1s".to_string(),
            unpriced_models: UnpricedModels::Allow,
            vk_rotation_grace: "0s".to_string(),
            on_redis_error: OnRedisError::Local,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// When false (default) `/metrics` needs admin credentials.
    pub public: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json` (`HEIMDALL_LOG_FORMAT`).
    pub format: LogFormat,
}

/// Parses a duration written as text (`"1s"`, `"500ms"`, `"1h30m"`, `"0"`).
fn parse_duration(setting: &str, text: &str) -> Result<Duration, ConfigError> {
    let t = text.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    heimdall_core::profile::parse_duration_ns(t)
        .and_then(|ns| u64::try_from(ns).ok())
        .map(Duration::from_nanos)
        .ok_or_else(|| {
            ConfigError(format!(
                "{setting}: \"{t}\" is not a duration (e.g. \"1s\", \"500ms\", \"2m\")"
            ))
        })
}

impl GovernanceConfig {
    /// `flush_interval`, parsed (validated at load).
    pub fn flush_interval(&self) -> Duration {
        parse_duration("", &self.flush_interval).unwrap_or(Duration::from_secs(1))
    }

    /// `vk_rotation_grace`, parsed (validated at load).
    pub fn vk_rotation_grace(&self) -> Duration {
        parse_duration("", &self.vk_rotation_grace).unwrap_or(Duration::ZERO)
    }
}

impl Config {
    /// Reads the YAML file (when given), overlays the environment as read by
    /// `env`, and validates the result.
    pub fn load(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut config = match file {
            None => Config::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError(format!("config file {}: {e}", path.display())))?;
                Config::from_yaml(&text)
                    .map_err(|e| ConfigError(format!("config file {}: {}", path.display(), e.0)))?
            }
        };
        config.apply_env(env)?;
        config.validate()?;
        Ok(config)
    }

    /// Parses YAML text (an empty file is the defaults).
    pub fn from_yaml(text: &str) -> Result<Config, ConfigError> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        serde_yaml::from_str(text).map_err(|e| ConfigError(e.to_string()))
    }

    fn apply_env(&mut self, env: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let get = |k: &str| env(k).filter(|v| !v.is_empty());
        if let Some(v) = get("HEIMDALL_LISTEN") {
            self.server.listen = v;
        }
        if let Some(v) = get("HEIMDALL_STORE_URL") {
            self.store.url = v;
        }
        if let Some(v) = get("HEIMDALL_REDIS_URL") {
            self.redis.url = Some(v);
        }
        if let Some(v) = get("HEIMDALL_ADMIN_TOKEN") {
            self.admin.token = Some(v);
        }
        if let Some(v) = get("HEIMDALL_ADMIN_USERNAME") {
            self.admin.username = Some(v);
        }
        if let Some(v) = get("HEIMDALL_ADMIN_PASSWORD") {
            self.admin.password = Some(v);
        }
        if let Some(v) = get("HEIMDALL_REQUIRE_VIRTUAL_KEY") {
            self.governance.require_virtual_key = match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => true,
                "false" | "0" | "no" | "off" => false,
                _ => {
                    return Err(ConfigError(format!(
                        "HEIMDALL_REQUIRE_VIRTUAL_KEY: \"{v}\" is not a boolean (use true or false)"
                    )));
                }
            };
        }
        if let Some(v) = get("HEIMDALL_LOG_FORMAT") {
            self.log.format = match v.as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => {
                    return Err(ConfigError(format!(
                        "HEIMDALL_LOG_FORMAT: \"{v}\" is not a log format (use text or json)"
                    )));
                }
            };
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.listen_addr()?;
        let url = &self.store.url;
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(ConfigError(format!(
                "store.url (HEIMDALL_STORE_URL): \"{}\" must start with sqlite:// or postgres://",
                heimdall_store::redact_url(url)
            )));
        }
        if self.server.max_body_bytes == 0 {
            return Err(ConfigError(
                "server.max_body_bytes must be greater than 0".to_string(),
            ));
        }
        self.server.validate()?;
        parse_duration(
            "governance.vk_rotation_grace",
            &self.governance.vk_rotation_grace,
        )?;
        if parse_duration("governance.flush_interval", &self.governance.flush_interval)?.is_zero() {
            return Err(ConfigError(
                "governance.flush_interval must be greater than 0".to_string(),
            ));
        }
        if self.admin.username.is_some() != self.admin.password.is_some() {
            return Err(ConfigError(
                "admin.username and admin.password (HEIMDALL_ADMIN_USERNAME / HEIMDALL_ADMIN_PASSWORD) must be set together".to_string(),
            ));
        }
        if self.admin.token.as_ref().is_some_and(|t| t.len() < 16) {
            return Err(ConfigError(
                "admin.token (HEIMDALL_ADMIN_TOKEN) must be at least 16 characters".to_string(),
            ));
        }
        Ok(())
    }

    /// The listen address, parsed.
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.server.listen.parse().map_err(|_| {
            ConfigError(format!(
                "server.listen (HEIMDALL_LISTEN): \"{}\" is not a host:port address such as 127.0.0.1:8080",
                self.server.listen
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults_work_without_file_or_env() {
        let c = Config::load(None, &no_env).unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:8080");
        assert_eq!(c.store.url, "sqlite://heimdall.db");
        assert!(c.governance.require_virtual_key);
        assert_eq!(c.governance.flush_interval(), Duration::from_secs(1));
        assert_eq!(c.server.max_body_bytes, 32 * 1024 * 1024);
        assert_eq!(c.server.header_read_timeout(), Duration::from_secs(10));
        assert_eq!(c.server.idle_timeout(), Duration::from_secs(60));
        assert_eq!(c.server.body_read_timeout(), Duration::from_secs(60));
        assert_eq!(c.server.max_connections, 10_000);
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("heimdall-cfg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn environment_wins_over_file() {
        let dir = tempfile_dir();
        let path = dir.join("c.yaml");
        std::fs::write(
            &path,
            "server:\n  listen: 127.0.0.1:9000\ngovernance:\n  flush_interval: 250ms\n",
        )
        .unwrap();
        let env = |k: &str| (k == "HEIMDALL_LISTEN").then(|| "127.0.0.1:9100".to_string());
        let c = Config::load(Some(&path), &env).unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:9100");
        assert_eq!(c.governance.flush_interval(), Duration::from_millis(250));
    }

    #[test]
    fn bad_settings_name_the_setting() {
        let env = |k: &str| (k == "HEIMDALL_LISTEN").then(|| "nowhere".to_string());
        let e = Config::load(None, &env).unwrap_err();
        assert!(e.0.contains("HEIMDALL_LISTEN"), "{e}");
        let env = |k: &str| (k == "HEIMDALL_STORE_URL").then(|| "mysql://x".to_string());
        assert!(
            Config::load(None, &env)
                .unwrap_err()
                .0
                .contains("store.url")
        );
        let env = |k: &str| (k == "HEIMDALL_REQUIRE_VIRTUAL_KEY").then(|| "maybe".to_string());
        assert!(
            Config::load(None, &env)
                .unwrap_err()
                .0
                .contains("HEIMDALL_REQUIRE_VIRTUAL_KEY")
        );
        let dir = tempfile_dir();
        let path = dir.join("bad.yaml");
        std::fs::write(&path, "governance:\n  flush_interval: soon\n").unwrap();
        let e = Config::load(Some(&path), &no_env).unwrap_err();
        assert!(e.0.contains("governance.flush_interval"), "{e}");
        std::fs::write(&path, "server:\n  idle_timeout: forever\n").unwrap();
        let e = Config::load(Some(&path), &no_env).unwrap_err();
        assert!(e.0.contains("server.idle_timeout"), "{e}");
        std::fs::write(&path, "server:\n  header_read_timeout: 0s\n").unwrap();
        let e = Config::load(Some(&path), &no_env).unwrap_err();
        assert!(e.0.contains("server.header_read_timeout"), "{e}");
        std::fs::write(&path, "server:\n  max_connections: 0\n").unwrap();
        let e = Config::load(Some(&path), &no_env).unwrap_err();
        assert!(e.0.contains("server.max_connections"), "{e}");
        let e = Config::from_yaml("server:\n  lisen: x\n").unwrap_err();
        assert!(e.0.contains("lisen"), "{e}");
    }
}
