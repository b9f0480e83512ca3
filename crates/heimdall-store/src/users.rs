//! Users: listing, creation (with the role's default profile), deletion (with
//! every copy and key), and role changes (swapping role-provided copies).

use chrono::{DateTime, Utc};
use heimdall_core::directory::User;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::audit::{NewAuditEntry, insert_audit};
use crate::connect::Store;
use crate::error::{StoreError, is_unique_violation};
use crate::provision::{ProvisionedKey, drop_orphan_extra_keys, provision_role_default};
use crate::roles::role_in;
use crate::rows::{from_ts, ts};

const USER_COLUMNS: &str = "id, name, email, role_id, created_at, updated_at";

fn user_from_row(r: &AnyRow) -> Result<User, StoreError> {
    Ok(User {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        email: r.try_get("email")?,
        role_id: r.try_get("role_id")?,
        created_at: from_ts(r.try_get("created_at")?)?,
        updated_at: from_ts(r.try_get("updated_at")?)?,
    })
}

pub(crate) async fn user_in(conn: &mut AnyConnection, id: &str) -> Result<User, StoreError> {
    let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.as_ref()
        .map(user_from_row)
        .transpose()?
        .ok_or_else(|| StoreError::NotFound(format!("user {id} not found")))
}

async fn ensure_role(conn: &mut AnyConnection, role_id: Option<i64>) -> Result<(), StoreError> {
    if let Some(rid) = role_id
        && role_in(conn, rid).await?.is_none()
    {
        return Err(StoreError::NotFound(format!("role {rid} not found")));
    }
    Ok(())
}

impl Store {
    /// Users ordered by creation, optionally filtered by a case-insensitive
    /// substring of name or email; returns the page and the total.
    pub async fn list_users(
        &self,
        search: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<User>, i64), StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users ORDER BY created_at, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        let all = rows
            .iter()
            .map(user_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let needle = search.map(str::to_lowercase);
        let matching: Vec<User> = all
            .into_iter()
            .filter(|u| {
                needle.as_ref().is_none_or(|n| {
                    u.name.to_lowercase().contains(n) || u.email.to_lowercase().contains(n)
                })
            })
            .collect();
        let total = matching.len() as i64;
        let page = matching
            .into_iter()
            .skip(usize::try_from(offset).unwrap_or(usize::MAX))
            .take(usize::try_from(limit).unwrap_or(0))
            .collect();
        Ok((page, total))
    }

    pub async fn get_user(&self, id: &str) -> Result<User, StoreError> {
        let mut conn = self.pool.acquire().await?;
        user_in(&mut conn, id).await
    }

    /// Creates a user and provisions the role's default profile.
    pub async fn create_user(
        &self,
        name: &str,
        email: &str,
        role_id: Option<i64>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<(User, Vec<ProvisionedKey>), StoreError> {
        let mut tx = self.write_tx().await?;
        ensure_role(&mut tx, role_id).await?;
        let id = uuid::Uuid::new_v4().to_string();
        let taken = || StoreError::Conflict(format!("a user with email {email} already exists"));
        let exists = sqlx::query("SELECT 1 FROM users WHERE email_norm = $1")
            .bind(email.to_lowercase())
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_some() {
            return Err(taken());
        }
        sqlx::query(
            "INSERT INTO users (id, name, email, email_norm, role_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(id.clone())
        .bind(name)
        .bind(email)
        .bind(email.to_lowercase())
        .bind(role_id)
        .bind(ts(now))
        .execute(&mut *tx)
        .await
        .map_err(|e| if is_unique_violation(&e) { taken() } else { e.into() })?;
        let mut keys = Vec::new();
        if let Some(rid) = role_id {
            keys.extend(provision_role_default(&mut tx, &id, rid, actor, now).await?);
        }
        let user = user_in(&mut tx, &id).await?;
        tx.commit().await?;
        Ok((user, keys))
    }

    /// Deletes a user with every copy, key and counter (foreign keys
    /// cascade), writing a `detach_user` entry on each template the user held.
    pub async fn delete_user(
        &self,
        id: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        user_in(&mut tx, id).await?;
        let held = sqlx::query(
            "SELECT id, parent_profile_id, source FROM user_profiles WHERE user_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        for r in &held {
            let copy_id: i64 = r.try_get("id")?;
            let parent: i64 = r.try_get("parent_profile_id")?;
            let source: String = r.try_get("source")?;
            insert_audit(
                &mut tx,
                actor,
                now,
                NewAuditEntry {
                    access_profile_id: Some(parent),
                    user_id: Some(id.to_string()),
                    action: "detach_user",
                    previous_values: Some(
                        serde_json::json!({"user_access_profile_id": copy_id, "source": source}),
                    ),
                    metadata: Some(serde_json::json!({"reason": "user_deleted"})),
                    ..NewAuditEntry::default()
                },
            )
            .await?;
        }
        for sql in [
            "DELETE FROM virtual_keys WHERE user_id = $1",
            "DELETE FROM user_profiles WHERE user_id = $1",
            "DELETE FROM users WHERE id = $1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Moves a user to another role (or none): removes the copies the old
    /// role provided, with their keys, and provisions the new role's default.
    pub async fn change_user_role(
        &self,
        id: &str,
        role_id: Option<i64>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<(User, Vec<ProvisionedKey>), StoreError> {
        let mut tx = self.write_tx().await?;
        let user = user_in(&mut tx, id).await?;
        ensure_role(&mut tx, role_id).await?;
        if user.role_id == role_id {
            return Ok((user, Vec::new()));
        }
        if let Some(old) = user.role_id {
            let removed = sqlx::query(
                "SELECT id, parent_profile_id FROM user_profiles
                 WHERE user_id = $1 AND role_id = $2 AND source IN ('role_default', 'role_apply')",
            )
            .bind(id)
            .bind(old)
            .fetch_all(&mut *tx)
            .await?;
            for r in &removed {
                let copy_id: i64 = r.try_get("id")?;
                let parent: i64 = r.try_get("parent_profile_id")?;
                sqlx::query("DELETE FROM virtual_keys WHERE user_profile_id = $1")
                    .bind(copy_id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM user_profiles WHERE id = $1")
                    .bind(copy_id)
                    .execute(&mut *tx)
                    .await?;
                insert_audit(
                    &mut tx,
                    actor,
                    now,
                    NewAuditEntry {
                        access_profile_id: Some(parent),
                        user_id: Some(id.to_string()),
                        action: "detach_user",
                        metadata: Some(serde_json::json!({"reason": "role_change", "old_role_id": old, "new_role_id": role_id})),
                        ..NewAuditEntry::default()
                    },
                )
                .await?;
            }
        }
        sqlx::query("UPDATE users SET role_id = $1, updated_at = $2 WHERE id = $3")
            .bind(role_id)
            .bind(ts(now))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let mut keys = Vec::new();
        if let Some(rid) = role_id {
            keys.extend(provision_role_default(&mut tx, id, rid, actor, now).await?);
        }
        drop_orphan_extra_keys(&mut tx, id).await?;
        let user = user_in(&mut tx, id).await?;
        tx.commit().await?;
        Ok((user, keys))
    }
}
