//! Access-profile templates: create, read, update, activation, delete, clone.
//! Each write is one transaction that also writes its version row
//! (`versions.rs`) and its audit entry, so a profile never exists without
//! its history.

use chrono::{DateTime, Utc};
use heimdall_core::profile::{AccessProfile, PatchedProfile, Policy, RotationSchedule};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::audit::{NewAuditEntry, insert_audit};
use crate::connect::{Backend, Store};
use crate::error::{StoreError, is_unique_violation};
use crate::rows::{flag, from_opt_ts, from_ts, opt_ts, ts};
use crate::text::{decode_text, encode_text};
use crate::versions::insert_version;

/// Turns a profile into its wire JSON (for version snapshots and audit
/// values). Supplied by the server, which owns the wire shape.
pub type Render<'a> = &'a (dyn Fn(&AccessProfile) -> serde_json::Value + Sync);

/// A template to create (validated; ids are assigned here).
#[derive(Debug, Clone)]
pub struct NewProfile {
    pub name: String,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub policy: Policy,
    pub rotation: RotationSchedule,
}

/// A role attached to a template.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleAttachment {
    pub id: i64,
    pub access_profile_id: i64,
    pub role_id: i64,
    pub role_name: String,
    pub is_default: bool,
}

/// A profile with what its detail view shows beside it.
pub type ProfileListing = (AccessProfile, Vec<RoleAttachment>, i64);

pub(crate) const PROFILE_COLUMNS: &str = "id, name, description, is_active, version, tags, policy, rotation_interval_ns, next_rotation_at, last_rotation_at, created_at, updated_at";

pub(crate) fn profile_from_row(r: &AnyRow) -> Result<AccessProfile, StoreError> {
    let tags: String = r.try_get("tags")?;
    let policy: String = r.try_get("policy")?;
    Ok(AccessProfile {
        id: r.try_get("id")?,
        name: decode_text(r.try_get("name")?),
        description: r
            .try_get::<Option<String>, _>("description")?
            .map(decode_text),
        is_active: r.try_get::<i64, _>("is_active")? != 0,
        version: r.try_get("version")?,
        tags: serde_json::from_str(&tags)?,
        policy: serde_json::from_str(&policy)?,
        rotation: RotationSchedule {
            interval_ns: r.try_get("rotation_interval_ns")?,
            next_rotation_at: from_opt_ts(r.try_get("next_rotation_at")?)?,
            last_rotation_at: from_opt_ts(r.try_get("last_rotation_at")?)?,
        },
        created_at: from_ts(r.try_get("created_at")?)?,
        updated_at: from_ts(r.try_get("updated_at")?)?,
    })
}

fn name_taken(name: &str) -> StoreError {
    StoreError::Conflict(format!(
        "an access profile named \"{name}\" already exists (names are unique ignoring case)"
    ))
}

fn not_found(id: i64) -> StoreError {
    StoreError::NotFound(format!("access profile {id} not found"))
}

/// Lower-cased name for the unique index: Unicode lower-casing done here, so
/// SQLite and PostgreSQL agree. Stored encoded like every text column.
pub(crate) fn name_key(name: &str) -> String {
    encode_text(&name.to_lowercase())
}

impl Store {
    fn lock_suffix(&self) -> &'static str {
        match self.backend {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        }
    }

    /// Every template, ordered by id.
    pub async fn list_profiles(&self) -> Result<Vec<AccessProfile>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {PROFILE_COLUMNS} FROM access_profiles ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(profile_from_row).collect()
    }

    pub async fn get_profile(&self, id: i64) -> Result<Option<AccessProfile>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {PROFILE_COLUMNS} FROM access_profiles WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(profile_from_row).transpose()
    }

    /// A template with its role attachments and the number of users holding a copy.
    pub async fn get_profile_detail(&self, id: i64) -> Result<Option<ProfileListing>, StoreError> {
        let Some(profile) = self.get_profile(id).await? else {
            return Ok(None);
        };
        let roles = sqlx::query(
            "SELECT pr.id, pr.access_profile_id, pr.role_id, r.name, pr.is_default
             FROM profile_roles pr JOIN roles r ON r.id = pr.role_id
             WHERE pr.access_profile_id = $1 ORDER BY pr.id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(RoleAttachment {
                id: r.try_get("id")?,
                access_profile_id: r.try_get("access_profile_id")?,
                role_id: r.try_get("role_id")?,
                role_name: r.try_get("name")?,
                is_default: r.try_get::<i64, _>("is_default")? != 0,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        let users: i64 = sqlx::query(
            "SELECT COUNT(DISTINCT user_id) AS n FROM user_profiles WHERE parent_profile_id = $1",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?;
        Ok(Some((profile, roles, users)))
    }

    /// Creates a template (version 1, inactive) with its version row and one
    /// audit entry (`action`: `create`, or `clone` with its metadata).
    pub async fn create_profile(
        &self,
        new: NewProfile,
        actor: &str,
        now: DateTime<Utc>,
        render: Render<'_>,
        action: &'static str,
        metadata: Option<serde_json::Value>,
    ) -> Result<AccessProfile, StoreError> {
        let mut tx = self.write_tx().await?;
        ensure_name_free(&mut tx, &new.name, None).await?;
        let mut policy = new.policy;
        let ids = allocate_config_ids(&mut tx, policy.provider_config_count()).await?;
        let mut ids = ids.into_iter();
        policy.assign_ids(None, &mut || ids.next().unwrap_or(0));
        let inserted = sqlx::query(
            "INSERT INTO access_profiles (name, name_norm, description, is_active, version, tags, policy, rotation_interval_ns, next_rotation_at, last_rotation_at, created_at, updated_at)
             VALUES ($1, $2, $3, 0, 1, $4, $5, $6, $7, $8, $9, $9) RETURNING id",
        )
        .bind(encode_text(&new.name))
        .bind(name_key(&new.name))
        .bind(new.description.as_deref().map(encode_text))
        .bind(serde_json::to_string(&new.tags)?)
        .bind(serde_json::to_string(&policy)?)
        .bind(new.rotation.interval_ns)
        .bind(opt_ts(new.rotation.next_rotation_at))
        .bind(opt_ts(new.rotation.last_rotation_at))
        .bind(ts(now))
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| if is_unique_violation(&e) { name_taken(&new.name) } else { e.into() })?;
        let id: i64 = inserted.try_get("id")?;
        let profile = AccessProfile {
            id,
            name: new.name,
            description: new.description,
            is_active: false,
            version: 1,
            tags: new.tags,
            policy,
            rotation: new.rotation,
            created_at: trunc_ms(now),
            updated_at: trunc_ms(now),
        };
        let json = render(&profile);
        insert_version(&mut tx, &profile, &json, actor, now).await?;
        insert_audit(
            &mut tx,
            actor,
            now,
            NewAuditEntry {
                access_profile_id: Some(id),
                action,
                new_values: Some(json),
                metadata,
                ..NewAuditEntry::default()
            },
        )
        .await?;
        tx.commit().await?;
        Ok(profile)
    }

    /// Applies `change` to the current template inside one transaction.
    /// Writes nothing (no version, no audit) when the result equals the
    /// current state. Returns the profile after the call.
    pub async fn update_profile(
        &self,
        id: i64,
        actor: &str,
        now: DateTime<Utc>,
        render: Render<'_>,
        change: impl FnOnce(&AccessProfile) -> Result<PatchedProfile, StoreError>,
    ) -> Result<AccessProfile, StoreError> {
        let mut tx = self.write_tx().await?;
        let current = load_for_update(&mut tx, id, self.lock_suffix()).await?;
        let patched = change(&current)?;
        if !patched.changes_anything_of(&current) {
            return Ok(current);
        }
        let bump = patched.changes_version_of(&current);
        if patched.name != current.name {
            ensure_name_free(&mut tx, &patched.name, Some(id)).await?;
        }
        let mut policy = patched.policy.clone();
        let ids = allocate_config_ids(&mut tx, policy.provider_config_count()).await?;
        let mut ids = ids.into_iter();
        policy.assign_ids(Some(&current.policy), &mut || ids.next().unwrap_or(0));
        let updated = AccessProfile {
            name: patched.name,
            description: patched.description,
            tags: patched.tags,
            policy,
            rotation: patched.rotation,
            version: current.version + i64::from(bump),
            updated_at: trunc_ms(now),
            ..current.clone()
        };
        write_profile(&mut tx, &updated)
            .await
            .map_err(|e| match e {
                StoreError::Database(ref d) if is_unique_violation(d) => name_taken(&updated.name),
                e => e,
            })?;
        let before = render(&current);
        let after = render(&updated);
        if bump {
            insert_version(&mut tx, &updated, &after, actor, now).await?;
        }
        let (prev, new) = changed_fields(&before, &after);
        insert_audit(
            &mut tx,
            actor,
            now,
            NewAuditEntry {
                access_profile_id: Some(id),
                action: "update",
                previous_values: Some(prev),
                new_values: Some(new),
                ..NewAuditEntry::default()
            },
        )
        .await?;
        tx.commit().await?;
        Ok(updated)
    }

    /// Sets `is_active`; idempotent (no audit entry when nothing changes).
    pub async fn set_profile_active(
        &self,
        id: i64,
        active: bool,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<AccessProfile, StoreError> {
        let mut tx = self.write_tx().await?;
        let current = load_for_update(&mut tx, id, self.lock_suffix()).await?;
        if current.is_active == active {
            return Ok(current);
        }
        sqlx::query("UPDATE access_profiles SET is_active = $1, updated_at = $2 WHERE id = $3")
            .bind(flag(active))
            .bind(ts(now))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        insert_audit(
            &mut tx,
            actor,
            now,
            NewAuditEntry {
                access_profile_id: Some(id),
                action: if active { "activate" } else { "deactivate" },
                previous_values: Some(serde_json::json!({ "is_active": current.is_active })),
                new_values: Some(serde_json::json!({ "is_active": active })),
                ..NewAuditEntry::default()
            },
        )
        .await?;
        tx.commit().await?;
        Ok(AccessProfile {
            is_active: active,
            updated_at: trunc_ms(now),
            ..current
        })
    }

    /// Deletes a template with its role attachments and versions; refused
    /// while any user holds a copy. Audit entries stay.
    pub async fn delete_profile(
        &self,
        id: i64,
        actor: &str,
        now: DateTime<Utc>,
        render: Render<'_>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let current = load_for_update(&mut tx, id, self.lock_suffix()).await?;
        let copies: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM user_profiles WHERE parent_profile_id = $1")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?
                .try_get("n")?;
        if copies > 0 {
            return Err(StoreError::Conflict(format!(
                "access profile {id} is held by {copies} user cop{}; detach them from the users first",
                if copies == 1 { "y" } else { "ies" }
            )));
        }
        for sql in [
            "DELETE FROM profile_roles WHERE access_profile_id = $1",
            "DELETE FROM profile_versions WHERE access_profile_id = $1",
            "DELETE FROM access_profiles WHERE id = $1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        insert_audit(
            &mut tx,
            actor,
            now,
            NewAuditEntry {
                access_profile_id: Some(id),
                action: "delete",
                previous_values: Some(render(&current)),
                ..NewAuditEntry::default()
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Timestamps are stored in milliseconds; values handed back match what a
/// later read returns.
fn trunc_ms(t: DateTime<Utc>) -> DateTime<Utc> {
    from_ts(ts(t)).unwrap_or(t)
}

async fn load_for_update(
    conn: &mut AnyConnection,
    id: i64,
    lock: &str,
) -> Result<AccessProfile, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {PROFILE_COLUMNS} FROM access_profiles WHERE id = $1{lock}"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.as_ref()
        .map(profile_from_row)
        .transpose()?
        .ok_or_else(|| not_found(id))
}

async fn ensure_name_free(
    conn: &mut AnyConnection,
    name: &str,
    except: Option<i64>,
) -> Result<(), StoreError> {
    let row = sqlx::query("SELECT id FROM access_profiles WHERE name_norm = $1")
        .bind(name_key(name))
        .fetch_optional(conn)
        .await?;
    match row {
        Some(r) if Some(r.try_get::<i64, _>("id")?) != except => Err(name_taken(name)),
        _ => Ok(()),
    }
}

/// Reserves `n` provider-config ids from the store's sequence.
pub(crate) async fn allocate_config_ids(
    conn: &mut AnyConnection,
    n: usize,
) -> Result<Vec<i64>, StoreError> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let n = n as i64;
    let end: i64 = sqlx::query(
        "UPDATE sequences SET value = value + $1 WHERE name = 'provider_config' RETURNING value",
    )
    .bind(n)
    .fetch_one(conn)
    .await?
    .try_get("value")?;
    Ok((end - n + 1..=end).collect())
}

async fn write_profile(conn: &mut AnyConnection, p: &AccessProfile) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE access_profiles SET name = $1, name_norm = $2, description = $3, version = $4, tags = $5,
         policy = $6, rotation_interval_ns = $7, next_rotation_at = $8, last_rotation_at = $9, updated_at = $10
         WHERE id = $11",
    )
    .bind(encode_text(&p.name))
    .bind(name_key(&p.name))
    .bind(p.description.as_deref().map(encode_text))
    .bind(p.version)
    .bind(serde_json::to_string(&p.tags)?)
    .bind(serde_json::to_string(&p.policy)?)
    .bind(p.rotation.interval_ns)
    .bind(opt_ts(p.rotation.next_rotation_at))
    .bind(opt_ts(p.rotation.last_rotation_at))
    .bind(ts(p.updated_at))
    .bind(p.id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The top-level fields that differ between two renderings, as
/// (previous values, new values). Bookkeeping fields are left out.
fn changed_fields(
    before: &serde_json::Value,
    after: &serde_json::Value,
) -> (serde_json::Value, serde_json::Value) {
    let mut prev = serde_json::Map::new();
    let mut new = serde_json::Map::new();
    if let (Some(b), Some(a)) = (before.as_object(), after.as_object()) {
        for (k, av) in a {
            if matches!(k.as_str(), "updated_at" | "version") {
                continue;
            }
            let bv = b.get(k).cloned().unwrap_or(serde_json::Value::Null);
            if &bv != av {
                prev.insert(k.clone(), bv);
                new.insert(k.clone(), av.clone());
            }
        }
    }
    (prev.into(), new.into())
}
