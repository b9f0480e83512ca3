//! Users' copies: listing, direct assignment, updates, detaching (with the
//! keys they produced), and budget overrides on a copy.

use chrono::{DateTime, Utc};
use heimdall_core::copy::{CopySource, UserCopy};
use heimdall_core::money::Money;
use heimdall_core::profile::{Budget, BudgetOverride};
use sqlx::{AnyConnection, Row};

use crate::audit::{NewAuditEntry, insert_audit};
use crate::connect::Store;
use crate::error::StoreError;
use crate::provision::{
    COPY_COLUMNS, ProvisionedKey, copy_from_row, drop_orphan_extra_keys, load_profile,
    provision_copy,
};
use crate::rows::{flag, opt_ts, ts};
use crate::users::user_in;

/// A copy with the ids and last four characters of the keys it produced.
#[derive(Debug, Clone, PartialEq)]
pub struct CopyWithKeys {
    pub copy: UserCopy,
    pub keys: Vec<(String, String)>,
}

/// What detaching a copy removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detached {
    pub deleted_key_names: Vec<String>,
}

pub(crate) async fn copy_of(
    conn: &mut AnyConnection,
    user_id: &str,
    profile_id: i64,
) -> Result<UserCopy, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {COPY_COLUMNS} FROM user_profiles WHERE user_id = $1 AND parent_profile_id = $2"
    ))
    .bind(user_id)
    .bind(profile_id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(copy_from_row).transpose()?.ok_or_else(|| {
        StoreError::NotFound(format!(
            "user {user_id} holds no copy of access profile {profile_id}"
        ))
    })
}

async fn keys_of(
    conn: &mut AnyConnection,
    copy_id: i64,
) -> Result<Vec<(String, String)>, StoreError> {
    sqlx::query("SELECT id, value_last4 FROM virtual_keys WHERE user_profile_id = $1 ORDER BY created_at, id")
        .bind(copy_id)
        .fetch_all(conn)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("value_last4")?)))
        .collect()
}

pub(crate) async fn write_copy_policy(
    conn: &mut AnyConnection,
    copy: &UserCopy,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE user_profiles SET policy = $1, name = $2, updated_at = $3 WHERE id = $4")
        .bind(serde_json::to_string(&copy.policy)?)
        .bind(crate::text::encode_text(&copy.name))
        .bind(ts(now))
        .bind(copy.id)
        .execute(conn)
        .await?;
    Ok(())
}

impl Store {
    /// A user's copies, oldest first.
    pub async fn list_user_copies(&self, user_id: &str) -> Result<Vec<CopyWithKeys>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        user_in(&mut conn, user_id).await?;
        let rows = sqlx::query(&format!(
            "SELECT {COPY_COLUMNS} FROM user_profiles WHERE user_id = $1 ORDER BY assigned_at, id"
        ))
        .bind(user_id)
        .fetch_all(&mut *conn)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let copy = copy_from_row(r)?;
            let keys = keys_of(&mut conn, copy.id).await?;
            out.push(CopyWithKeys { copy, keys });
        }
        Ok(out)
    }

    /// One copy of a user (by template id), with its keys.
    pub async fn get_user_copy(
        &self,
        user_id: &str,
        profile_id: i64,
    ) -> Result<CopyWithKeys, StoreError> {
        let mut conn = self.pool.acquire().await?;
        user_in(&mut conn, user_id).await?;
        let copy = copy_of(&mut conn, user_id, profile_id).await?;
        let keys = keys_of(&mut conn, copy.id).await?;
        Ok(CopyWithKeys { copy, keys })
    }

    /// Every copy, for building the policy index.
    pub async fn list_all_copies(&self) -> Result<Vec<UserCopy>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COPY_COLUMNS} FROM user_profiles ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(copy_from_row).collect()
    }

    /// Direct assignment (Heimdall extension): a copy with `source: direct`.
    pub async fn assign_direct(
        &self,
        user_id: &str,
        profile_id: i64,
        expires_at: Option<DateTime<Utc>>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<(CopyWithKeys, ProvisionedKey), StoreError> {
        let mut tx = self.write_tx().await?;
        user_in(&mut tx, user_id).await?;
        let template = load_profile(&mut tx, profile_id).await?;
        if !template.is_active {
            return Err(StoreError::Conflict(format!(
                "access profile {profile_id} is inactive; activate it before assigning it"
            )));
        }
        if copy_of(&mut tx, user_id, profile_id).await.is_ok() {
            return Err(StoreError::Conflict(format!(
                "user {user_id} already holds a copy of access profile {profile_id}"
            )));
        }
        let (copy, key) = provision_copy(
            &mut tx,
            &template,
            user_id,
            CopySource::Direct,
            None,
            expires_at,
            actor,
            now,
        )
        .await?;
        let keys = keys_of(&mut tx, copy.id).await?;
        tx.commit().await?;
        Ok((CopyWithKeys { copy, keys }, key))
    }

    /// Sets `is_active` and/or `expires_at` (`Some(None)` clears it) on a
    /// copy; a change is audited on the template (`update`, with the user).
    #[allow(clippy::too_many_arguments)]
    pub async fn update_user_copy(
        &self,
        user_id: &str,
        profile_id: i64,
        is_active: Option<bool>,
        expires_at: Option<Option<DateTime<Utc>>>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<CopyWithKeys, StoreError> {
        let mut tx = self.write_tx().await?;
        user_in(&mut tx, user_id).await?;
        let mut copy = copy_of(&mut tx, user_id, profile_id).await?;
        let before = (copy.is_active, copy.expires_at);
        if let Some(a) = is_active {
            copy.is_active = a;
        }
        if let Some(e) = expires_at {
            copy.expires_at = e;
        }
        if (copy.is_active, copy.expires_at) != before {
            sqlx::query("UPDATE user_profiles SET is_active = $1, expires_at = $2, updated_at = $3 WHERE id = $4")
                .bind(flag(copy.is_active))
                .bind(opt_ts(copy.expires_at))
                .bind(ts(now))
                .bind(copy.id)
                .execute(&mut *tx)
                .await?;
            let view = |active: bool, expires: Option<DateTime<Utc>>| {
                serde_json::json!({
                    "user_access_profile_id": copy.id,
                    "is_active": active,
                    "expires_at": expires.map(|e| e.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                })
            };
            insert_audit(
                &mut tx,
                actor,
                now,
                NewAuditEntry {
                    access_profile_id: Some(profile_id),
                    user_id: Some(user_id.to_string()),
                    action: "update",
                    previous_values: Some(view(before.0, before.1)),
                    new_values: Some(view(copy.is_active, copy.expires_at)),
                    ..NewAuditEntry::default()
                },
            )
            .await?;
        }
        let copy = copy_of(&mut tx, user_id, profile_id).await?;
        let keys = keys_of(&mut tx, copy.id).await?;
        tx.commit().await?;
        Ok(CopyWithKeys { copy, keys })
    }

    /// Removes a copy and every key it produced; when it was the user's last
    /// copy, the user's extra keys go too. All or nothing.
    pub async fn detach_user_copy(
        &self,
        user_id: &str,
        profile_id: i64,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Detached, StoreError> {
        let mut tx = self.write_tx().await?;
        user_in(&mut tx, user_id).await?;
        let copy = copy_of(&mut tx, user_id, profile_id).await?;
        let mut names: Vec<String> = sqlx::query(
            "SELECT name FROM virtual_keys WHERE user_profile_id = $1 ORDER BY created_at, id",
        )
        .bind(copy.id)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.try_get::<String, _>("name"))
        .collect::<Result<_, _>>()?;
        sqlx::query("DELETE FROM virtual_keys WHERE user_profile_id = $1")
            .bind(copy.id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM user_profiles WHERE id = $1")
            .bind(copy.id)
            .execute(&mut *tx)
            .await?;
        names.extend(drop_orphan_extra_keys(&mut tx, user_id).await?);
        insert_audit(
            &mut tx,
            actor,
            now,
            NewAuditEntry {
                access_profile_id: Some(profile_id),
                user_id: Some(user_id.to_string()),
                action: "detach_user",
                previous_values: Some(serde_json::json!({"user_access_profile_id": copy.id, "source": copy.source.as_str()})),
                metadata: Some(serde_json::json!({"deleted_vk_names": names})),
                ..NewAuditEntry::default()
            },
        )
        .await?;
        tx.commit().await?;
        Ok(Detached {
            deleted_key_names: names,
        })
    }

    /// Sets (`Some`) or removes (`None`) the override of one budget of a
    /// user's copy. `window_index` computes the index of the budget's current
    /// window (the caller owns the clock and the window rules).
    #[allow(clippy::too_many_arguments)]
    pub async fn set_budget_override(
        &self,
        user_id: &str,
        profile_id: i64,
        budget_id: &str,
        change: Option<(Money, Option<u32>)>,
        window_index: &(dyn Fn(&UserCopy, &Budget) -> i64 + Sync),
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<(UserCopy, Budget), StoreError> {
        let mut tx = self.write_tx().await?;
        user_in(&mut tx, user_id).await?;
        let mut copy = copy_of(&mut tx, user_id, profile_id).await?;
        let snapshot = copy.clone();
        let budget = copy.policy.budget_mut(budget_id).ok_or_else(|| {
            StoreError::NotFound(format!(
                "budget {budget_id} is not on user {user_id}'s copy of access profile {profile_id}"
            ))
        })?;
        let previous = budget.override_.clone();
        budget.override_ = match change {
            Some((amount, cycles)) => {
                let index = {
                    let b = budget.clone();
                    window_index(&snapshot, &b)
                };
                Some(BudgetOverride {
                    amount,
                    cycles,
                    set_window_index: index,
                })
            }
            None => None,
        };
        let updated = budget.clone();
        if previous != updated.override_ {
            write_copy_policy(&mut tx, &copy, now).await?;
            let view = |o: &Option<BudgetOverride>| {
                o.as_ref().map(|o| {
                    serde_json::json!({
                        "amount": o.amount.as_dollars(),
                        "mode": if o.cycles.is_some() { "cycles" } else { "forever" },
                        "cycles_total": o.cycles,
                    })
                })
            };
            insert_audit(
                &mut tx,
                actor,
                now,
                NewAuditEntry {
                    access_profile_id: Some(profile_id),
                    user_id: Some(user_id.to_string()),
                    action: "budget_override",
                    previous_values: Some(serde_json::json!({"budget_id": budget_id, "override": view(&previous)})),
                    new_values: Some(serde_json::json!({"budget_id": budget_id, "override": view(&updated.override_)})),
                    ..NewAuditEntry::default()
                },
            )
            .await?;
        }
        tx.commit().await?;
        Ok((copy, updated))
    }
}
