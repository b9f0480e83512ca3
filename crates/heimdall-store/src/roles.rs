//! Roles, and the attachment of roles to templates (with `is_default` and
//! `apply_to_existing`).

use chrono::{DateTime, Utc};
use heimdall_core::copy::CopySource;
use heimdall_core::directory::Role;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::audit::{NewAuditEntry, insert_audit};
use crate::connect::Store;
use crate::error::{StoreError, is_unique_violation};
use crate::provision::{ProvisionedKey, load_profile, provision_copy};
use crate::rows::{flag, from_ts, ts};

fn role_from_row(r: &AnyRow) -> Result<Role, StoreError> {
    Ok(Role {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        is_system_role: r.try_get::<i64, _>("is_system_role")? != 0,
        created_at: from_ts(r.try_get("created_at")?)?,
        updated_at: from_ts(r.try_get("updated_at")?)?,
    })
}

const ROLE_COLUMNS: &str = "id, name, description, is_system_role, created_at, updated_at";

fn role_taken(name: &str) -> StoreError {
    StoreError::Conflict(format!(
        "a role named \"{name}\" already exists (names are unique ignoring case)"
    ))
}

pub(crate) async fn role_in(conn: &mut AnyConnection, id: i64) -> Result<Option<Role>, StoreError> {
    let row = sqlx::query(&format!("SELECT {ROLE_COLUMNS} FROM roles WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(role_from_row).transpose()
}

/// What attaching roles did.
#[derive(Debug, Clone, Default)]
pub struct AttachOutcome {
    pub users_applied: i64,
    pub keys: Vec<ProvisionedKey>,
}

impl Store {
    pub async fn list_roles(&self) -> Result<Vec<Role>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {ROLE_COLUMNS} FROM roles ORDER BY id"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(role_from_row).collect()
    }

    pub async fn get_role(&self, id: i64) -> Result<Option<Role>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        role_in(&mut conn, id).await
    }

    pub async fn create_role(
        &self,
        name: &str,
        description: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Role, StoreError> {
        let _guard = self.write_lock.lock().await;
        let row = sqlx::query(&format!(
            "INSERT INTO roles (name, name_norm, description, is_system_role, created_at, updated_at)
             VALUES ($1, $2, $3, 0, $4, $4) RETURNING {ROLE_COLUMNS}"
        ))
        .bind(name)
        .bind(name.to_lowercase())
        .bind(description)
        .bind(ts(now))
        .fetch_one(&self.pool)
        .await
        .map_err(|e| if is_unique_violation(&e) { role_taken(name) } else { e.into() })?;
        role_from_row(&row)
    }

    /// Partial update; `description: Some(None)` clears it.
    pub async fn update_role(
        &self,
        id: i64,
        name: Option<&str>,
        description: Option<Option<&str>>,
        now: DateTime<Utc>,
    ) -> Result<Role, StoreError> {
        let mut tx = self.write_tx().await?;
        let current = role_in(&mut tx, id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("role {id} not found")))?;
        let new_name = name.unwrap_or(&current.name).to_string();
        let new_desc = match description {
            Some(d) => d.map(str::to_string),
            None => current.description.clone(),
        };
        if new_name == current.name && new_desc == current.description {
            return Ok(current);
        }
        sqlx::query("UPDATE roles SET name = $1, name_norm = $2, description = $3, updated_at = $4 WHERE id = $5")
            .bind(new_name.clone())
            .bind(new_name.to_lowercase())
            .bind(new_desc.clone())
            .bind(ts(now))
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(|e| if is_unique_violation(&e) { role_taken(&new_name) } else { e.into() })?;
        tx.commit().await?;
        Ok(Role {
            name: new_name,
            description: new_desc,
            updated_at: from_ts(ts(now))?,
            ..current
        })
    }

    /// Deletes a custom role and its attachments; refused for system roles
    /// and while users have the role.
    pub async fn delete_role(&self, id: i64) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let role = role_in(&mut tx, id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("role {id} not found")))?;
        if role.is_system_role {
            return Err(StoreError::Forbidden(format!(
                "role \"{}\" is a system role and cannot be deleted",
                role.name
            )));
        }
        let users: i64 = sqlx::query("SELECT COUNT(*) AS n FROM users WHERE role_id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
        if users > 0 {
            return Err(StoreError::Conflict(format!(
                "role \"{}\" is held by {users} user(s); move them to another role first",
                role.name
            )));
        }
        sqlx::query("DELETE FROM profile_roles WHERE role_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM roles WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Attaches roles to a template: activates it, records the attachments
    /// (`is_default` makes it each role's only default), and with
    /// `apply_to_existing` provisions a copy to every user of those roles who
    /// holds none yet. One transaction.
    #[allow(clippy::too_many_arguments)]
    pub async fn attach_roles(
        &self,
        profile_id: i64,
        role_ids: &[i64],
        is_default: bool,
        apply_to_existing: bool,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<AttachOutcome, StoreError> {
        let mut tx = self.write_tx().await?;
        let mut template = load_profile(&mut tx, profile_id).await?;
        let mut names = Vec::new();
        for rid in role_ids {
            let role = role_in(&mut tx, *rid)
                .await?
                .ok_or_else(|| StoreError::Invalid(format!("role {rid} does not exist")))?;
            names.push(role.name);
        }
        // Whether this call changes anything (activation, an attachment
        // made or its default flag changed, another default replaced, a copy
        // provisioned): a call that changes nothing is not audited.
        let mut changed = false;
        if !template.is_active {
            sqlx::query("UPDATE access_profiles SET is_active = 1, updated_at = $1 WHERE id = $2")
                .bind(ts(now))
                .bind(profile_id)
                .execute(&mut *tx)
                .await?;
            template.is_active = true;
            changed = true;
        }
        for rid in role_ids {
            if is_default {
                let replaced = sqlx::query("UPDATE profile_roles SET is_default = 0 WHERE role_id = $1 AND access_profile_id <> $2 AND is_default <> 0")
                    .bind(*rid)
                    .bind(profile_id)
                    .execute(&mut *tx)
                    .await?;
                changed |= replaced.rows_affected() > 0;
            }
            let existing = sqlx::query(
                "SELECT is_default FROM profile_roles WHERE access_profile_id = $1 AND role_id = $2",
            )
            .bind(profile_id)
            .bind(*rid)
            .fetch_optional(&mut *tx)
            .await?;
            match existing {
                Some(row) if (row.try_get::<i64, _>("is_default")? != 0) == is_default => {}
                _ => {
                    changed = true;
                    sqlx::query(
                        "INSERT INTO profile_roles (access_profile_id, role_id, is_default, created_at) VALUES ($1, $2, $3, $4)
                         ON CONFLICT (access_profile_id, role_id) DO UPDATE SET is_default = excluded.is_default",
                    )
                    .bind(profile_id)
                    .bind(*rid)
                    .bind(flag(is_default))
                    .bind(ts(now))
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        // Who `apply_to_existing` provisions: users of these roles without a
        // copy of this template (a user has one role, so nobody twice).
        let mut to_provision: Vec<(i64, String)> = Vec::new();
        if apply_to_existing {
            for rid in role_ids {
                let users = sqlx::query(
                    "SELECT u.id FROM users u WHERE u.role_id = $1 AND NOT EXISTS
                     (SELECT 1 FROM user_profiles c WHERE c.user_id = u.id AND c.parent_profile_id = $2)
                     ORDER BY u.created_at, u.id",
                )
                .bind(*rid)
                .bind(profile_id)
                .fetch_all(&mut *tx)
                .await?;
                for r in &users {
                    to_provision.push((*rid, r.try_get::<String, _>("id")?));
                }
            }
        }
        let mut outcome = AttachOutcome::default();
        if !changed && to_provision.is_empty() {
            return Ok(outcome);
        }
        insert_audit(
            &mut tx,
            actor,
            now,
            NewAuditEntry {
                access_profile_id: Some(profile_id),
                action: "attach_role",
                new_values: Some(serde_json::json!({
                    "role_ids": role_ids,
                    "role_names": names,
                    "is_default": is_default,
                    "apply_to_existing": apply_to_existing,
                    "users_applied": to_provision.len(),
                })),
                ..NewAuditEntry::default()
            },
        )
        .await?;
        for (rid, uid) in to_provision {
            let (_, key) = provision_copy(
                &mut tx,
                &template,
                &uid,
                CopySource::RoleApply,
                Some(rid),
                None,
                actor,
                now,
            )
            .await?;
            outcome.users_applied += 1;
            outcome.keys.push(key);
        }
        tx.commit().await?;
        Ok(outcome)
    }

    /// Detaches a role; copies already provisioned stay.
    pub async fn detach_role(
        &self,
        profile_id: i64,
        role_id: i64,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let done =
            sqlx::query("DELETE FROM profile_roles WHERE access_profile_id = $1 AND role_id = $2")
                .bind(profile_id)
                .bind(role_id)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "role {role_id} is not attached to access profile {profile_id}"
            )));
        }
        insert_audit(
            &mut tx,
            actor,
            now,
            NewAuditEntry {
                access_profile_id: Some(profile_id),
                action: "detach_role",
                previous_values: Some(serde_json::json!({ "role_id": role_id })),
                ..NewAuditEntry::default()
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
