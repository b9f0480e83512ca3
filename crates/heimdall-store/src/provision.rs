//! Turning a template into a user's copy, and minting keys. These run inside
//! the caller's transaction: provisioning is always part of a larger write
//! (creating a user, changing a role, attaching a role, direct assignment).

use chrono::{DateTime, Utc};
use heimdall_core::copy::{CopySource, UserCopy};
use heimdall_core::keys;
use heimdall_core::profile::AccessProfile;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::audit::{NewAuditEntry, insert_audit};
use crate::error::StoreError;
use crate::profiles::{PROFILE_COLUMNS, allocate_config_ids, profile_from_row};
use crate::rows::{flag, from_opt_ts, from_ts, opt_ts, ts};
use crate::text::{decode_text, encode_text};

/// A key value shown once, in the response of the call that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionedKey {
    pub id: String,
    pub name: String,
    pub value: String,
    pub access_profile_id: Option<i64>,
}

pub(crate) const COPY_COLUMNS: &str = "id, user_id, parent_profile_id, name, is_active, expires_at, source, role_id, assigned_at, policy, created_at, updated_at";

pub(crate) fn copy_from_row(r: &AnyRow) -> Result<UserCopy, StoreError> {
    let source: String = r.try_get("source")?;
    let policy: String = r.try_get("policy")?;
    Ok(UserCopy {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        parent_profile_id: r.try_get("parent_profile_id")?,
        name: decode_text(r.try_get("name")?),
        is_active: r.try_get::<i64, _>("is_active")? != 0,
        expires_at: from_opt_ts(r.try_get("expires_at")?)?,
        source: CopySource::parse(&source)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown copy source {source}")))?,
        role_id: r.try_get("role_id")?,
        assigned_at: from_ts(r.try_get("assigned_at")?)?,
        policy: serde_json::from_str(&policy)?,
        created_at: from_ts(r.try_get("created_at")?)?,
        updated_at: from_ts(r.try_get("updated_at")?)?,
    })
}

pub(crate) async fn load_profile(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<AccessProfile, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {PROFILE_COLUMNS} FROM access_profiles WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.as_ref()
        .map(profile_from_row)
        .transpose()?
        .ok_or_else(|| StoreError::NotFound(format!("access profile {id} not found")))
}

/// Provisions a copy of `template` to `user_id` with its managed key, and
/// writes the `assign_user` audit entry.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn provision_copy(
    conn: &mut AnyConnection,
    template: &AccessProfile,
    user_id: &str,
    source: CopySource,
    role_id: Option<i64>,
    expires_at: Option<DateTime<Utc>>,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<(UserCopy, ProvisionedKey), StoreError> {
    let mut policy = template.policy.without_ids();
    let ids = allocate_config_ids(conn, policy.provider_config_count()).await?;
    let mut ids = ids.into_iter();
    policy.assign_ids(None, &mut || ids.next().unwrap_or(0));
    policy.anchor_unset(now);
    let row = sqlx::query(&format!(
        "INSERT INTO user_profiles (user_id, parent_profile_id, name, is_active, expires_at, source, role_id, assigned_at, policy, created_at, updated_at)
         VALUES ($1, $2, $3, 1, $4, $5, $6, $7, $8, $7, $7) RETURNING {COPY_COLUMNS}"
    ))
    .bind(user_id)
    .bind(template.id)
    .bind(encode_text(&template.name))
    .bind(opt_ts(expires_at))
    .bind(source.as_str())
    .bind(role_id)
    .bind(ts(now))
    .bind(serde_json::to_string(&policy)?)
    .fetch_one(&mut *conn)
    .await?;
    let copy = copy_from_row(&row)?;
    // Key names hold no control characters (PostgreSQL text cannot hold NUL).
    let printable: String = template.name.chars().filter(|c| !c.is_control()).collect();
    let base = format!("{printable} (profile {})", template.id);
    let key = insert_key(
        conn,
        user_id,
        &base,
        None,
        Some(copy.id),
        Some(template.id),
        now,
    )
    .await?;
    insert_audit(
        conn,
        actor,
        now,
        NewAuditEntry {
            access_profile_id: Some(template.id),
            user_id: Some(user_id.to_string()),
            action: "assign_user",
            new_values: Some(serde_json::json!({
                "user_access_profile_id": copy.id,
                "source": source.as_str(),
                "role_id": role_id,
                "virtual_key_id": key.id,
            })),
            ..NewAuditEntry::default()
        },
    )
    .await?;
    Ok((copy, key))
}

/// Inserts a key with a fresh value. A managed key's name gets a numeric
/// suffix if the user already has a key of that name.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn insert_key(
    conn: &mut AnyConnection,
    user_id: &str,
    name: &str,
    description: Option<&str>,
    user_profile_id: Option<i64>,
    access_profile_id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<ProvisionedKey, StoreError> {
    let mut final_name = name.to_string();
    if user_profile_id.is_some() {
        let mut n = 2;
        while key_name_taken(conn, user_id, &final_name, None).await? {
            final_name = format!("{name} #{n}");
            n += 1;
        }
    }
    let id = uuid::Uuid::new_v4().to_string();
    let value = keys::generate_value();
    sqlx::query(
        "INSERT INTO virtual_keys (id, name, description, user_id, user_profile_id, access_profile_id, value_hash, value_last4, is_active, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(id.clone())
    .bind(final_name.clone())
    .bind(description)
    .bind(user_id)
    .bind(user_profile_id)
    .bind(access_profile_id)
    .bind(keys::hash_value(&value))
    .bind(keys::last4(&value))
    .bind(flag(true))
    .bind(ts(now))
    .execute(conn)
    .await?;
    Ok(ProvisionedKey {
        id,
        name: final_name,
        value,
        access_profile_id,
    })
}

pub(crate) async fn key_name_taken(
    conn: &mut AnyConnection,
    user_id: &str,
    name: &str,
    except: Option<&str>,
) -> Result<bool, StoreError> {
    let row = sqlx::query("SELECT id FROM virtual_keys WHERE user_id = $1 AND name = $2")
        .bind(user_id)
        .bind(name)
        .fetch_optional(conn)
        .await?;
    Ok(match row {
        Some(r) => Some(r.try_get::<String, _>("id")?.as_str()) != except,
        None => false,
    })
}

/// Provisions the default profile of `role_id` to a user, when the role has
/// an active default the user does not hold yet.
pub(crate) async fn provision_role_default(
    conn: &mut AnyConnection,
    user_id: &str,
    role_id: i64,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Option<ProvisionedKey>, StoreError> {
    let row = sqlx::query(
        "SELECT pr.access_profile_id FROM profile_roles pr JOIN access_profiles p ON p.id = pr.access_profile_id
         WHERE pr.role_id = $1 AND pr.is_default = 1 AND p.is_active = 1
         AND NOT EXISTS (SELECT 1 FROM user_profiles c WHERE c.user_id = $2 AND c.parent_profile_id = pr.access_profile_id)",
    )
    .bind(role_id)
    .bind(user_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let template = load_profile(conn, row.try_get("access_profile_id")?).await?;
    let (_, key) = provision_copy(
        conn,
        &template,
        user_id,
        CopySource::RoleDefault,
        Some(role_id),
        None,
        actor,
        now,
    )
    .await?;
    Ok(Some(key))
}

/// Deletes a user's extra keys when the user holds no copy any more.
pub(crate) async fn drop_orphan_extra_keys(
    conn: &mut AnyConnection,
    user_id: &str,
) -> Result<Vec<String>, StoreError> {
    let copies: i64 = sqlx::query("SELECT COUNT(*) AS n FROM user_profiles WHERE user_id = $1")
        .bind(user_id)
        .fetch_one(&mut *conn)
        .await?
        .try_get("n")?;
    if copies > 0 {
        return Ok(Vec::new());
    }
    let names: Vec<String> =
        sqlx::query("SELECT name FROM virtual_keys WHERE user_id = $1 ORDER BY created_at, id")
            .bind(user_id)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>("name"))
            .collect::<Result<_, _>>()?;
    sqlx::query("DELETE FROM virtual_keys WHERE user_id = $1")
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(names)
}
