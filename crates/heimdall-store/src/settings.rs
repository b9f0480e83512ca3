//! Small key/value settings kept in the store (the admin token's hash).

use sqlx::Row;

use crate::connect::Store;
use crate::error::StoreError;

impl Store {
    pub async fn get_setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get::<String, _>("value")).transpose()?)
    }

    /// Stores `value` under `key` unless the key exists; returns whether it
    /// was stored (so that two nodes starting at once agree on one value).
    pub async fn insert_setting_if_absent(
        &self,
        key: &str,
        value: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
