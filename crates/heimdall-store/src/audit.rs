//! The audit log: one entry per management write that changes something.
//! Entries outlive the profiles they describe.

use chrono::{DateTime, Utc};
use sqlx::{AnyConnection, Row};

use crate::connect::Store;
use crate::error::StoreError;
use crate::rows::{from_ts, ts};

/// An entry to write.
#[derive(Debug, Clone, Default)]
pub struct NewAuditEntry {
    pub access_profile_id: Option<i64>,
    pub user_id: Option<String>,
    pub action: &'static str,
    pub previous_values: Option<serde_json::Value>,
    pub new_values: Option<serde_json::Value>,
    pub metadata: Option<serde_json::Value>,
}

/// An entry as stored; JSON columns stay JSON strings, as the wire wants.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub id: i64,
    pub access_profile_id: Option<i64>,
    pub user_id: Option<String>,
    pub actor: String,
    pub action: String,
    pub previous_values: Option<String>,
    pub new_values: Option<String>,
    pub metadata: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Which entries to list.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub access_profile_id: Option<i64>,
    pub action: Option<String>,
    pub user_id: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

pub(crate) async fn insert_audit(
    conn: &mut AnyConnection,
    actor: &str,
    now: DateTime<Utc>,
    e: NewAuditEntry,
) -> Result<(), StoreError> {
    let json = |v: Option<serde_json::Value>| v.map(|v| v.to_string());
    sqlx::query(
        "INSERT INTO audit_logs (access_profile_id, user_id, actor, action, previous_values, new_values, metadata, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(e.access_profile_id)
    .bind(e.user_id)
    .bind(actor)
    .bind(e.action)
    .bind(json(e.previous_values))
    .bind(json(e.new_values))
    .bind(json(e.metadata))
    .bind(ts(now))
    .execute(conn)
    .await?;
    Ok(())
}

impl Store {
    /// Lists entries newest first, with the total count matching the filter.
    pub async fn list_audit(&self, f: &AuditFilter) -> Result<(Vec<AuditEntry>, i64), StoreError> {
        // No stored action or user id holds U+0000 (PostgreSQL text cannot),
        // so such a filter matches nothing; answer without asking.
        if [&f.action, &f.user_id]
            .into_iter()
            .flatten()
            .any(|v| v.contains('\u{0}'))
        {
            return Ok((Vec::new(), 0));
        }
        // The filter is built from fixed fragments; every value is bound.
        let mut conds: Vec<String> = Vec::new();
        let mut n = 0;
        let mut next = || {
            n += 1;
            format!("${n}")
        };
        if f.access_profile_id.is_some() {
            conds.push(format!("access_profile_id = {}", next()));
        }
        if f.action.is_some() {
            conds.push(format!("action = {}", next()));
        }
        if f.user_id.is_some() {
            conds.push(format!("user_id = {}", next()));
        }
        let where_sql = if conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conds.join(" AND "))
        };
        let limit_p = next();
        let offset_p = next();
        let list_sql = format!(
            "SELECT id, access_profile_id, user_id, actor, action, previous_values, new_values, metadata, created_at
             FROM audit_logs {where_sql} ORDER BY id DESC LIMIT {limit_p} OFFSET {offset_p}"
        );
        let count_sql = format!("SELECT COUNT(*) AS n FROM audit_logs {where_sql}");

        let mut list = sqlx::query(&list_sql);
        let mut count = sqlx::query(&count_sql);
        if let Some(id) = f.access_profile_id {
            list = list.bind(id);
            count = count.bind(id);
        }
        if let Some(a) = &f.action {
            list = list.bind(a.clone());
            count = count.bind(a.clone());
        }
        if let Some(u) = &f.user_id {
            list = list.bind(u.clone());
            count = count.bind(u.clone());
        }
        let rows = list
            .bind(f.limit)
            .bind(f.offset)
            .fetch_all(&self.pool)
            .await?;
        let total: i64 = count.fetch_one(&self.pool).await?.try_get("n")?;
        let entries = rows
            .iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.try_get("id")?,
                    access_profile_id: r.try_get("access_profile_id")?,
                    user_id: r.try_get("user_id")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    previous_values: r.try_get("previous_values")?,
                    new_values: r.try_get("new_values")?,
                    metadata: r.try_get("metadata")?,
                    created_at: from_ts(r.try_get("created_at")?)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok((entries, total))
    }
}
