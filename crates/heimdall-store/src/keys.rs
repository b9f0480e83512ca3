//! Virtual keys: listing (masked by the caller), minting extra keys,
//! deletion, updates, rotation with a grace for the old value, lookup by
//! hash, and the automatic rotation of templates whose schedule is due.
//!
//! During a grace the new value is kept in the row so that the holder of the
//! old value can read it once from the quota route; it is cleared at that
//! read or when the grace ends (it is never there without a grace).

use chrono::{DateTime, Duration, Utc};
use heimdall_core::keys;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::connect::Store;
use crate::error::StoreError;
use crate::provision::{ProvisionedKey, insert_key, key_name_taken};
use crate::rows::{flag, from_opt_ts, from_ts, opt_ts, ts};
use crate::users::user_in;

/// A key as stored (never its value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub user_id: String,
    pub user_profile_id: Option<i64>,
    pub access_profile_id: Option<i64>,
    pub last4: String,
    pub is_active: bool,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub rotated_at: Option<DateTime<Utc>>,
}

impl StoredKey {
    pub fn is_managed(&self) -> bool {
        self.user_profile_id.is_some()
    }
}

/// How a presented value matched a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMatch {
    pub key: StoredKey,
    /// The value is the key's old one, inside its rotation grace.
    pub old_value: bool,
    /// The new value, readable once by the holder of the old one.
    pub pending_value: Option<String>,
}

const KEY_COLUMNS: &str = "id, name, description, user_id, user_profile_id, access_profile_id, value_last4, is_active, expires_at, created_at, last_used_at, rotated_at";

fn key_from_row(r: &AnyRow) -> Result<StoredKey, StoreError> {
    Ok(StoredKey {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        user_id: r.try_get("user_id")?,
        user_profile_id: r.try_get("user_profile_id")?,
        access_profile_id: r.try_get("access_profile_id")?,
        last4: r.try_get("value_last4")?,
        is_active: r.try_get::<i64, _>("is_active")? != 0,
        expires_at: from_opt_ts(r.try_get("expires_at")?)?,
        created_at: from_ts(r.try_get("created_at")?)?,
        last_used_at: from_opt_ts(r.try_get("last_used_at")?)?,
        rotated_at: from_opt_ts(r.try_get("rotated_at")?)?,
    })
}

async fn key_in(conn: &mut AnyConnection, id: &str) -> Result<StoredKey, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {KEY_COLUMNS} FROM virtual_keys WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.as_ref()
        .map(key_from_row)
        .transpose()?
        .ok_or_else(|| StoreError::NotFound(format!("virtual key {id} not found")))
}

/// Gives a key a new value; the old one keeps working until `now + grace`.
async fn rotate_in(
    conn: &mut AnyConnection,
    key: &StoredKey,
    grace: Duration,
    now: DateTime<Utc>,
) -> Result<ProvisionedKey, StoreError> {
    let value = keys::generate_value();
    let (prev_until, pending) = if grace > Duration::zero() {
        (Some(now + grace), Some(value.clone()))
    } else {
        (None, None)
    };
    sqlx::query(
        "UPDATE virtual_keys SET previous_hash = CASE WHEN $1 IS NULL THEN NULL ELSE value_hash END,
         previous_valid_until = $1, rotated_value_pending = $2, value_hash = $3, value_last4 = $4, rotated_at = $5
         WHERE id = $6",
    )
    .bind(opt_ts(prev_until))
    .bind(pending)
    .bind(keys::hash_value(&value))
    .bind(keys::last4(&value))
    .bind(ts(now))
    .bind(key.id.clone())
    .execute(conn)
    .await?;
    Ok(ProvisionedKey {
        id: key.id.clone(),
        name: key.name.clone(),
        value,
        access_profile_id: key.access_profile_id,
    })
}

impl Store {
    /// Every key of a user, oldest first.
    pub async fn list_user_keys(&self, user_id: &str) -> Result<Vec<StoredKey>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        user_in(&mut conn, user_id).await?;
        let rows = sqlx::query(&format!(
            "SELECT {KEY_COLUMNS} FROM virtual_keys WHERE user_id = $1 ORDER BY created_at, id"
        ))
        .bind(user_id)
        .fetch_all(&mut *conn)
        .await?;
        rows.iter().map(key_from_row).collect()
    }

    pub async fn get_key(&self, id: &str) -> Result<StoredKey, StoreError> {
        let mut conn = self.pool.acquire().await?;
        key_in(&mut conn, id).await
    }

    /// Mints an extra key for a user who holds at least one copy.
    pub async fn mint_key(
        &self,
        user_id: &str,
        name: Option<&str>,
        description: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<ProvisionedKey, StoreError> {
        let mut tx = self.write_tx().await?;
        user_in(&mut tx, user_id).await?;
        let copies: i64 = sqlx::query("SELECT COUNT(*) AS n FROM user_profiles WHERE user_id = $1")
            .bind(user_id)
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
        if copies == 0 {
            return Err(StoreError::NotFound(format!(
                "user {user_id} holds no access profile; a key needs one to grant anything"
            )));
        }
        let name = match name {
            Some(n) => n.to_string(),
            None => {
                let count: i64 =
                    sqlx::query("SELECT COUNT(*) AS n FROM virtual_keys WHERE user_id = $1")
                        .bind(user_id)
                        .fetch_one(&mut *tx)
                        .await?
                        .try_get("n")?;
                let mut n = count + 1;
                while key_name_taken(&mut tx, user_id, &format!("key-{n}"), None).await? {
                    n += 1;
                }
                format!("key-{n}")
            }
        };
        if key_name_taken(&mut tx, user_id, &name, None).await? {
            return Err(StoreError::Conflict(format!(
                "user {user_id} already has a key named \"{name}\""
            )));
        }
        let key = insert_key(&mut tx, user_id, &name, description, None, None, now).await?;
        tx.commit().await?;
        Ok(key)
    }

    /// Deletes one of a user's keys.
    pub async fn delete_user_key(
        &self,
        user_id: &str,
        key_id: &str,
    ) -> Result<StoredKey, StoreError> {
        let mut tx = self.write_tx().await?;
        user_in(&mut tx, user_id).await?;
        let key = key_in(&mut tx, key_id).await?;
        if key.user_id != user_id {
            return Err(StoreError::NotFound(format!(
                "user {user_id} has no virtual key {key_id}"
            )));
        }
        sqlx::query("DELETE FROM virtual_keys WHERE id = $1")
            .bind(key_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(key)
    }

    /// Updates name, description, activity or expiry of a key.
    pub async fn update_key(
        &self,
        key_id: &str,
        name: Option<&str>,
        description: Option<Option<&str>>,
        is_active: Option<bool>,
        expires_at: Option<Option<DateTime<Utc>>>,
    ) -> Result<StoredKey, StoreError> {
        let mut tx = self.write_tx().await?;
        let key = key_in(&mut tx, key_id).await?;
        let new_name = name.map_or(key.name.clone(), str::to_string);
        if new_name != key.name
            && key_name_taken(&mut tx, &key.user_id, &new_name, Some(key_id)).await?
        {
            return Err(StoreError::Conflict(format!(
                "user {} already has a key named \"{new_name}\"",
                key.user_id
            )));
        }
        let desc = match description {
            Some(d) => d.map(str::to_string),
            None => key.description.clone(),
        };
        let active = is_active.unwrap_or(key.is_active);
        let expires = expires_at.unwrap_or(key.expires_at);
        sqlx::query("UPDATE virtual_keys SET name = $1, description = $2, is_active = $3, expires_at = $4 WHERE id = $5")
            .bind(new_name)
            .bind(desc)
            .bind(flag(active))
            .bind(opt_ts(expires))
            .bind(key_id)
            .execute(&mut *tx)
            .await?;
        let updated = key_in(&mut tx, key_id).await?;
        tx.commit().await?;
        Ok(updated)
    }

    /// Rotates a key by hand; the old value works for `grace`.
    pub async fn rotate_key(
        &self,
        key_id: &str,
        grace: Duration,
        now: DateTime<Utc>,
    ) -> Result<ProvisionedKey, StoreError> {
        let mut tx = self.write_tx().await?;
        let key = key_in(&mut tx, key_id).await?;
        let out = rotate_in(&mut tx, &key, grace, now).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// Finds the key a presented value belongs to: its current value, or its
    /// old value while the rotation grace lasts.
    pub async fn find_key_by_value(
        &self,
        value: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<KeyMatch>, StoreError> {
        let hash = keys::hash_value(value);
        let row = sqlx::query(&format!(
            "SELECT {KEY_COLUMNS}, CASE WHEN value_hash = $1 THEN 0 ELSE 1 END AS is_old, rotated_value_pending FROM virtual_keys
             WHERE value_hash = $1 OR (previous_hash = $1 AND previous_valid_until > $2)"
        ))
        .bind(hash)
        .bind(ts(now))
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let old_value = row.try_get::<i64, _>("is_old")? == 1;
        Ok(Some(KeyMatch {
            key: key_from_row(&row)?,
            old_value,
            pending_value: if old_value {
                row.try_get("rotated_value_pending")?
            } else {
                None
            },
        }))
    }

    /// After the holder of the old value has read the new one (`handed`):
    /// forget both the pending value and the old value. Writes only while
    /// `handed` is still the key's pending value, so a second reader of the
    /// same hand-over, or a rotation that came in between, leaves the row
    /// alone. Returns whether the row changed.
    pub async fn finish_rotation_handover(
        &self,
        key_id: &str,
        handed: &str,
    ) -> Result<bool, StoreError> {
        let _guard = self.write_lock.lock().await;
        let done = sqlx::query(
            "UPDATE virtual_keys SET previous_hash = NULL, previous_valid_until = NULL, rotated_value_pending = NULL
             WHERE id = $1 AND rotated_value_pending = $2",
        )
        .bind(key_id)
        .bind(handed)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Rotates the managed keys of every template whose `next_rotation_at`
    /// has passed, and moves the schedule on by whole intervals. Returns the
    /// number of keys rotated.
    pub async fn rotate_due_keys(
        &self,
        grace: Duration,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut tx = self.write_tx().await?;
        let due = sqlx::query(
            "SELECT id, rotation_interval_ns, next_rotation_at FROM access_profiles
             WHERE rotation_interval_ns > 0 AND next_rotation_at IS NOT NULL AND next_rotation_at <= $1",
        )
        .bind(ts(now))
        .fetch_all(&mut *tx)
        .await?;
        let mut rotated = 0;
        for row in &due {
            let profile_id: i64 = row.try_get("id")?;
            let interval = Duration::nanoseconds(row.try_get("rotation_interval_ns")?);
            let mut next = from_ts(row.try_get("next_rotation_at")?)?;
            let keys = sqlx::query(&format!(
                "SELECT {KEY_COLUMNS} FROM virtual_keys WHERE access_profile_id = $1 AND user_profile_id IS NOT NULL"
            ))
            .bind(profile_id)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(key_from_row)
            .collect::<Result<Vec<_>, _>>()?;
            for key in &keys {
                rotate_in(&mut tx, key, grace, now).await?;
                rotated += 1;
            }
            if interval > Duration::zero() {
                while next <= now {
                    next += interval;
                }
            }
            sqlx::query("UPDATE access_profiles SET last_rotation_at = $1, next_rotation_at = $2 WHERE id = $3")
                .bind(ts(now))
                .bind(ts(next))
                .bind(profile_id)
                .execute(&mut *tx)
                .await?;
        }
        // Old values whose grace has ended: forget them and any pending value.
        sqlx::query(
            "UPDATE virtual_keys SET previous_hash = NULL, previous_valid_until = NULL, rotated_value_pending = NULL
             WHERE previous_valid_until IS NOT NULL AND previous_valid_until <= $1",
        )
        .bind(ts(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rotated)
    }
}
