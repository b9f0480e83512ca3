//! The version history of access-profile templates: one row per version,
//! written by the template writes in `profiles.rs` inside their transaction.

use chrono::{DateTime, Utc};
use heimdall_core::profile::AccessProfile;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::connect::Store;
use crate::error::StoreError;
use crate::rows::{from_ts, ts};
use crate::text::{decode_text, encode_text};

/// One entry of a template's version history.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileVersion {
    pub id: i64,
    pub access_profile_id: i64,
    pub version: i64,
    pub name: String,
    pub description: Option<String>,
    pub snapshot: String,
    pub changed_by: String,
    pub created_at: DateTime<Utc>,
}

impl Store {
    /// The version history of a template, newest first.
    pub async fn list_versions(&self, id: i64) -> Result<Vec<ProfileVersion>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, access_profile_id, version, name, description, snapshot, changed_by, created_at
             FROM profile_versions WHERE access_profile_id = $1 ORDER BY version DESC",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(version_from_row).collect()
    }

    pub async fn get_version(
        &self,
        id: i64,
        version: i64,
    ) -> Result<Option<ProfileVersion>, StoreError> {
        let row = sqlx::query(
            "SELECT id, access_profile_id, version, name, description, snapshot, changed_by, created_at
             FROM profile_versions WHERE access_profile_id = $1 AND version = $2",
        )
        .bind(id)
        .bind(version)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(version_from_row).transpose()
    }
}

fn version_from_row(r: &AnyRow) -> Result<ProfileVersion, StoreError> {
    Ok(ProfileVersion {
        id: r.try_get("id")?,
        access_profile_id: r.try_get("access_profile_id")?,
        version: r.try_get("version")?,
        name: decode_text(r.try_get("name")?),
        description: r
            .try_get::<Option<String>, _>("description")?
            .map(decode_text),
        snapshot: r.try_get("snapshot")?,
        changed_by: r.try_get("changed_by")?,
        created_at: from_ts(r.try_get("created_at")?)?,
    })
}

pub(crate) async fn insert_version(
    conn: &mut AnyConnection,
    p: &AccessProfile,
    json: &serde_json::Value,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO profile_versions (access_profile_id, version, name, description, snapshot, changed_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(p.id)
    .bind(p.version)
    .bind(encode_text(&p.name))
    .bind(p.description.as_deref().map(encode_text))
    .bind(json.to_string())
    .bind(actor)
    .bind(ts(now))
    .execute(conn)
    .await?;
    Ok(())
}
