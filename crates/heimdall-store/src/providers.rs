//! Stored upstream providers and provider keys.
//!
//! Plain rows: the server validates and turns them into live providers. Key
//! values are stored as given (encryption at rest is a later step); this
//! module must never log them.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::connect::Store;
use crate::error::{StoreError, is_unique_violation};
use crate::rows::{flag, from_ts, ts};

/// A provider row.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredProvider {
    pub name: String,
    pub kind: String,
    /// The `network_config` object as JSON.
    pub network_config: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A provider key row.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredProviderKey {
    pub id: String,
    pub provider: String,
    pub name: String,
    /// A JSON string, or `{"env_var": "NAME"}`.
    pub value: Value,
    pub models: Vec<String>,
    pub weight: f64,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
}

fn provider_row(r: &AnyRow) -> Result<StoredProvider, StoreError> {
    Ok(StoredProvider {
        name: r.try_get("name")?,
        kind: r.try_get("kind")?,
        network_config: serde_json::from_str(&r.try_get::<String, _>("network_config")?)?,
        created_at: from_ts(r.try_get("created_at")?)?,
        updated_at: from_ts(r.try_get("updated_at")?)?,
    })
}

fn key_row(r: &AnyRow) -> Result<StoredProviderKey, StoreError> {
    Ok(StoredProviderKey {
        id: r.try_get("id")?,
        provider: r.try_get("provider")?,
        name: r.try_get("name")?,
        value: serde_json::from_str(&r.try_get::<String, _>("value")?)?,
        models: serde_json::from_str(&r.try_get::<String, _>("models")?)?,
        weight: r.try_get("weight")?,
        enabled: r.try_get::<i64, _>("enabled")? != 0,
        created_at: from_ts(r.try_get("created_at")?)?,
    })
}

const PROVIDER_COLS: &str =
    "SELECT name, kind, network_config, created_at, updated_at FROM providers";
const KEY_COLS: &str =
    "SELECT id, provider, name, value, models, weight, enabled, created_at FROM provider_keys";

impl Store {
    /// Every provider, by name.
    pub async fn list_providers(&self) -> Result<Vec<StoredProvider>, StoreError> {
        let rows = sqlx::query(&format!("{PROVIDER_COLS} ORDER BY name"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(provider_row).collect()
    }

    /// One provider.
    pub async fn get_provider(&self, name: &str) -> Result<Option<StoredProvider>, StoreError> {
        let row = sqlx::query(&format!("{PROVIDER_COLS} WHERE name = $1"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(provider_row).transpose()
    }

    /// Creates a provider; `Conflict` when the name exists.
    pub async fn insert_provider(&self, p: &StoredProvider) -> Result<(), StoreError> {
        let _w = self.write_lock.lock().await;
        let res = sqlx::query(
            "INSERT INTO providers (name, kind, network_config, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&p.name)
        .bind(&p.kind)
        .bind(p.network_config.to_string())
        .bind(ts(p.created_at))
        .bind(ts(p.updated_at))
        .execute(&self.pool)
        .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!(
                "provider \"{}\" already exists",
                p.name
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// Replaces kind and network config; `NotFound` when absent.
    pub async fn update_provider(&self, p: &StoredProvider) -> Result<(), StoreError> {
        let _w = self.write_lock.lock().await;
        let res = sqlx::query(
            "UPDATE providers SET kind = $1, network_config = $2, updated_at = $3 WHERE name = $4",
        )
        .bind(&p.kind)
        .bind(p.network_config.to_string())
        .bind(ts(p.updated_at))
        .bind(&p.name)
        .execute(&self.pool)
        .await?;
        if res.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "provider \"{}\" not found",
                p.name
            )));
        }
        Ok(())
    }

    /// Creates or replaces a provider (config seeding), keeping `created_at`.
    pub async fn upsert_provider(&self, p: &StoredProvider) -> Result<(), StoreError> {
        match self.update_provider(p).await {
            Err(StoreError::NotFound(_)) => self.insert_provider(p).await,
            other => other,
        }
    }

    /// Deletes a provider and its keys; `NotFound` when absent.
    pub async fn delete_provider(&self, name: &str) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM provider_keys WHERE provider = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let res = sqlx::query("DELETE FROM providers WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        if res.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "provider \"{name}\" not found"
            )));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Keys of one provider, or of all providers, oldest first.
    pub async fn list_provider_keys(
        &self,
        provider: Option<&str>,
    ) -> Result<Vec<StoredProviderKey>, StoreError> {
        let rows = match provider {
            Some(p) => {
                sqlx::query(&format!(
                    "{KEY_COLS} WHERE provider = $1 ORDER BY created_at, id"
                ))
                .bind(p)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!("{KEY_COLS} ORDER BY provider, created_at, id"))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(key_row).collect()
    }

    /// One key of a provider.
    pub async fn get_provider_key(
        &self,
        provider: &str,
        id: &str,
    ) -> Result<Option<StoredProviderKey>, StoreError> {
        let row = sqlx::query(&format!("{KEY_COLS} WHERE provider = $1 AND id = $2"))
            .bind(provider)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(key_row).transpose()
    }

    /// Adds a key; `Conflict` when the provider already has a key of that name.
    pub async fn insert_provider_key(&self, k: &StoredProviderKey) -> Result<(), StoreError> {
        let _w = self.write_lock.lock().await;
        let res = sqlx::query(
            "INSERT INTO provider_keys (id, provider, name, value, models, weight, enabled, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&k.id)
        .bind(&k.provider)
        .bind(&k.name)
        .bind(k.value.to_string())
        .bind(serde_json::to_string(&k.models)?)
        .bind(k.weight)
        .bind(flag(k.enabled))
        .bind(ts(k.created_at))
        .execute(&self.pool)
        .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!(
                "provider \"{}\" already has a key named \"{}\"",
                k.provider, k.name
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// Replaces a key's fields (not its id or creation time).
    pub async fn update_provider_key(&self, k: &StoredProviderKey) -> Result<(), StoreError> {
        let _w = self.write_lock.lock().await;
        let res = sqlx::query(
            "UPDATE provider_keys SET name = $1, value = $2, models = $3, weight = $4, enabled = $5 \
             WHERE provider = $6 AND id = $7",
        )
        .bind(&k.name)
        .bind(k.value.to_string())
        .bind(serde_json::to_string(&k.models)?)
        .bind(k.weight)
        .bind(flag(k.enabled))
        .bind(&k.provider)
        .bind(&k.id)
        .execute(&self.pool)
        .await;
        match res {
            Ok(r) if r.rows_affected() == 0 => Err(StoreError::NotFound(format!(
                "provider \"{}\" has no key \"{}\"",
                k.provider, k.id
            ))),
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!(
                "provider \"{}\" already has a key named \"{}\"",
                k.provider, k.name
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes a key; `NotFound` when absent.
    pub async fn delete_provider_key(&self, provider: &str, id: &str) -> Result<(), StoreError> {
        let _w = self.write_lock.lock().await;
        let res = sqlx::query("DELETE FROM provider_keys WHERE provider = $1 AND id = $2")
            .bind(provider)
            .bind(id)
            .execute(&self.pool)
            .await?;
        if res.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "provider \"{provider}\" has no key \"{id}\""
            )));
        }
        Ok(())
    }
}
