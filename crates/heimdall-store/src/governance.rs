//! What the governance engine reads and writes: key records and copies for
//! the policy index, usage counters (loaded at start, flushed in batches),
//! and price overrides.

use chrono::{DateTime, Utc};
use heimdall_core::copy::CounterKind;
use heimdall_core::policy::{KeyRecord, UserRecords};
use heimdall_core::pricing::Price;
use sqlx::Row;

use crate::connect::Store;
use crate::error::StoreError;
use crate::rows::{from_opt_ts, ts};

/// A counter as persisted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterRow {
    pub limit_id: String,
    pub kind: CounterKind,
    pub user_profile_id: i64,
    pub used: i64,
    /// Unix ms.
    pub window_start: i64,
    pub reset_duration: String,
    /// Unix ms.
    pub anchor: i64,
}

fn kind_of(s: &str) -> Option<CounterKind> {
    match s {
        "budget" => Some(CounterKind::Budget),
        "tokens" => Some(CounterKind::Tokens),
        "requests" => Some(CounterKind::Requests),
        _ => None,
    }
}

const KEY_RECORD_COLUMNS: &str =
    "id, name, user_id, value_hash, previous_hash, previous_valid_until, is_active, expires_at";

fn key_records(rows: &[sqlx::any::AnyRow]) -> Result<Vec<KeyRecord>, StoreError> {
    rows.iter()
        .map(|r| {
            Ok(KeyRecord {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                user_id: r.try_get("user_id")?,
                hash: r.try_get("value_hash")?,
                previous_hash: r.try_get("previous_hash")?,
                previous_valid_until: from_opt_ts(r.try_get("previous_valid_until")?)?,
                is_active: r.try_get::<i64, _>("is_active")? != 0,
                expires_at: from_opt_ts(r.try_get("expires_at")?)?,
            })
        })
        .collect()
}

/// Counter rows per upsert statement: 8 parameters each, well inside the
/// parameter limits of SQLite (32,766) and PostgreSQL (65,535).
const COUNTERS_PER_STATEMENT: usize = 500;

/// One upsert of `n` counter rows. The rows come in as a common table
/// expression so that the copy-exists check and the conflict clause are
/// written once, in SQL both backends accept.
fn upsert_counters_sql(n: usize) -> String {
    let mut sql = String::from(
        "WITH v (limit_id, kind, user_profile_id, used, window_start, reset_duration, anchor, updated_at) AS (VALUES ",
    );
    for i in 0..n {
        let p = i * 8;
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!(
            "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
            p + 1,
            p + 2,
            p + 3,
            p + 4,
            p + 5,
            p + 6,
            p + 7,
            p + 8
        ));
    }
    sql.push_str(
        ") INSERT INTO usage_counters (limit_id, kind, user_profile_id, used, window_start, reset_duration, anchor, updated_at)
         SELECT limit_id, kind, user_profile_id, used, window_start, reset_duration, anchor, updated_at FROM v
         WHERE EXISTS (SELECT 1 FROM user_profiles WHERE user_profiles.id = v.user_profile_id)
         ON CONFLICT (limit_id, kind) DO UPDATE SET used = excluded.used, window_start = excluded.window_start,
         reset_duration = excluded.reset_duration, anchor = excluded.anchor, updated_at = excluded.updated_at",
    );
    sql
}

impl Store {
    /// Every key as the policy index needs it.
    pub async fn list_key_records(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {KEY_RECORD_COLUMNS} FROM virtual_keys"))
            .fetch_all(&self.pool)
            .await?;
        key_records(&rows)
    }

    /// How many users and keys the store holds (to size the index before a
    /// paged build).
    pub async fn index_counts(&self) -> Result<(u64, u64), StoreError> {
        let count = |table: &'static str| async move {
            let n: i64 = sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table}"))
                .fetch_one(&self.pool)
                .await?
                .try_get("n")?;
            Ok::<u64, StoreError>(u64::try_from(n).unwrap_or(0))
        };
        Ok((count("users").await?, count("virtual_keys").await?))
    }

    /// Up to `limit` users with ids after `after` (from the start when
    /// `None`), in id order, each with its keys and copies: one page of a
    /// policy-index build. Keyset pagination, so every page costs the same
    /// however far in; the next page starts after the last id returned, and
    /// an empty page is the end. Users with neither keys nor copies come
    /// back with empty records.
    pub async fn index_page(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(String, UserRecords)>, StoreError> {
        let limit = i64::from(limit);
        let ids: Vec<String> = match after {
            None => {
                sqlx::query("SELECT id FROM users ORDER BY id LIMIT $1")
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
            Some(after) => {
                sqlx::query("SELECT id FROM users WHERE id > $1 ORDER BY id LIMIT $2")
                    .bind(after)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
        }
        .iter()
        .map(|r| r.try_get("id"))
        .collect::<Result<_, _>>()?;
        let (Some(first), Some(last)) = (ids.first(), ids.last()) else {
            return Ok(Vec::new());
        };
        // The page's users are exactly those in [first, last]: the range
        // uses the same ordering as the query above, on either backend.
        let mut by_user: std::collections::HashMap<String, UserRecords> = ids
            .iter()
            .map(|id| (id.clone(), UserRecords::default()))
            .collect();
        let key_rows = sqlx::query(&format!(
            "SELECT {KEY_RECORD_COLUMNS} FROM virtual_keys WHERE user_id >= $1 AND user_id <= $2"
        ))
        .bind(first.as_str())
        .bind(last.as_str())
        .fetch_all(&self.pool)
        .await?;
        for k in key_records(&key_rows)? {
            if let Some(rec) = by_user.get_mut(&k.user_id) {
                rec.keys.push(k);
            }
        }
        drop(key_rows);
        let copy_rows = sqlx::query(&format!(
            "SELECT {} FROM user_profiles WHERE user_id >= $1 AND user_id <= $2",
            crate::provision::COPY_COLUMNS
        ))
        .bind(first.as_str())
        .bind(last.as_str())
        .fetch_all(&self.pool)
        .await?;
        for r in &copy_rows {
            let c = crate::provision::copy_from_row(r)?;
            if let Some(rec) = by_user.get_mut(&c.user_id) {
                rec.copies.push(c);
            }
        }
        Ok(ids
            .into_iter()
            .map(|id| {
                let rec = by_user.remove(&id).unwrap_or_default();
                (id, rec)
            })
            .collect())
    }

    /// One user's keys and copies, for updating the index after a write
    /// that touched only that user (empty when the user is gone).
    pub async fn user_index_records(&self, user_id: &str) -> Result<UserRecords, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {KEY_RECORD_COLUMNS} FROM virtual_keys WHERE user_id = $1"
        ))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        let keys = key_records(&rows)?;
        let copies = sqlx::query(&format!(
            "SELECT {} FROM user_profiles WHERE user_id = $1",
            crate::provision::COPY_COLUMNS
        ))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(crate::provision::copy_from_row)
        .collect::<Result<Vec<_>, _>>()?;
        Ok(UserRecords { keys, copies })
    }

    /// Every persisted counter.
    pub async fn load_counters(&self) -> Result<Vec<CounterRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT limit_id, kind, user_profile_id, used, window_start, reset_duration, anchor FROM usage_counters",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let kind: String = r.try_get("kind")?;
            let Some(kind) = kind_of(&kind) else { continue };
            out.push(CounterRow {
                limit_id: r.try_get("limit_id")?,
                kind,
                user_profile_id: r.try_get("user_profile_id")?,
                used: r.try_get("used")?,
                window_start: r.try_get("window_start")?,
                reset_duration: r.try_get("reset_duration")?,
                anchor: r.try_get("anchor")?,
            });
        }
        Ok(out)
    }

    /// Writes a batch of counters. Counters of copies that no longer exist
    /// are skipped; when a counter appears twice, the later row wins.
    ///
    /// Rows go in multi-row upserts of [`COUNTERS_PER_STATEMENT`], each in
    /// its own short write transaction: a flush of many counters takes few
    /// round trips, and management writes wait at most one chunk for the
    /// write lock instead of the whole flush.
    pub async fn save_counters(
        &self,
        rows: &[CounterRow],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut latest: std::collections::HashMap<(&str, CounterKind), &CounterRow> =
            std::collections::HashMap::with_capacity(rows.len());
        for c in rows {
            latest.insert((c.limit_id.as_str(), c.kind), c);
        }
        let unique: Vec<&CounterRow> = latest.into_values().collect();
        for chunk in unique.chunks(COUNTERS_PER_STATEMENT) {
            let sql = upsert_counters_sql(chunk.len());
            let mut tx = self.write_tx().await?;
            let mut query = sqlx::query(&sql);
            for c in chunk {
                query = query
                    .bind(c.limit_id.clone())
                    .bind(c.kind.as_str())
                    .bind(c.user_profile_id)
                    .bind(c.used)
                    .bind(c.window_start)
                    .bind(c.reset_duration.clone())
                    .bind(c.anchor)
                    .bind(ts(now));
            }
            query.execute(&mut *tx).await?;
            tx.commit().await?;
        }
        Ok(())
    }

    /// Every price override as (provider, model, price).
    pub async fn list_price_overrides(&self) -> Result<Vec<(String, String, Price)>, StoreError> {
        let rows = sqlx::query("SELECT provider, model, input_nanos, output_nanos, cached_input_nanos FROM price_overrides")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("provider")?,
                    r.try_get("model")?,
                    Price {
                        input: r.try_get("input_nanos")?,
                        output: r.try_get("output_nanos")?,
                        cached_input: r.try_get("cached_input_nanos")?,
                    },
                ))
            })
            .collect()
    }

    pub async fn put_price_override(
        &self,
        provider: &str,
        model: &str,
        p: Price,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let _w = self.write_lock.lock().await;
        sqlx::query(
            "INSERT INTO price_overrides (provider, model, input_nanos, output_nanos, cached_input_nanos, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (provider, model) DO UPDATE SET input_nanos = excluded.input_nanos, output_nanos = excluded.output_nanos,
             cached_input_nanos = excluded.cached_input_nanos, updated_at = excluded.updated_at",
        )
        .bind(provider)
        .bind(model)
        .bind(p.input)
        .bind(p.output)
        .bind(p.cached_input)
        .bind(ts(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Removes an override; false when there was none.
    pub async fn delete_price_override(
        &self,
        provider: &str,
        model: &str,
    ) -> Result<bool, StoreError> {
        let _w = self.write_lock.lock().await;
        let done = sqlx::query("DELETE FROM price_overrides WHERE provider = $1 AND model = $2")
            .bind(provider)
            .bind(model)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
