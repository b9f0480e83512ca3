//! Propagation of a template's fields to its copies: one transaction over
//! every copy, or nothing at all on a dry run.

use chrono::{DateTime, Utc};
use heimdall_core::copy::{PropagateField, propagate};

use crate::audit::{NewAuditEntry, insert_audit};
use crate::connect::Store;
use crate::copies::write_copy_policy;
use crate::error::StoreError;
use crate::profiles::allocate_config_ids;
use crate::provision::{COPY_COLUMNS, copy_from_row, load_profile};

/// What a propagation did (or, on a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PropagateOutcome {
    pub affected_user_ids: Vec<String>,
    pub skipped_users: i64,
    pub applied: bool,
    /// Counters zeroed because of `reset_usage` (the caller resets its
    /// in-memory counters too).
    pub reset: Vec<(String, heimdall_core::copy::CounterKind)>,
}

impl Store {
    #[allow(clippy::too_many_arguments)]
    pub async fn propagate_profile(
        &self,
        profile_id: i64,
        fields: &[PropagateField],
        field_names: &[String],
        user_ids: &[String],
        dry_run: bool,
        reset_usage: bool,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<PropagateOutcome, StoreError> {
        let mut tx = self.write_tx().await?;
        let template = load_profile(&mut tx, profile_id).await?;
        let copies = sqlx::query(&format!(
            "SELECT {COPY_COLUMNS} FROM user_profiles WHERE parent_profile_id = $1 ORDER BY assigned_at, id"
        ))
        .bind(profile_id)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(copy_from_row)
        .collect::<Result<Vec<_>, _>>()?;
        for uid in user_ids {
            if !copies.iter().any(|c| &c.user_id == uid) {
                return Err(StoreError::Invalid(format!(
                    "user_ids: \"{}\" is not a user holding a copy of access profile {profile_id}",
                    uid.chars().take(64).collect::<String>()
                )));
            }
        }
        let mut outcome = PropagateOutcome {
            applied: !dry_run,
            ..PropagateOutcome::default()
        };
        for mut copy in copies {
            if !user_ids.is_empty() && !user_ids.contains(&copy.user_id) {
                continue;
            }
            let result = propagate(&copy.policy, &template.policy, fields, reset_usage, now);
            let renamed = copy.name != template.name;
            if !result.changed && !renamed && result.reset.is_empty() {
                outcome.skipped_users += 1;
                continue;
            }
            outcome.affected_user_ids.push(copy.user_id.clone());
            if dry_run {
                continue;
            }
            copy.policy = result.policy;
            copy.name = template.name.clone();
            let missing = copy
                .policy
                .provider_configs
                .iter()
                .filter(|c| c.id == 0)
                .count();
            let mut ids = allocate_config_ids(&mut tx, missing).await?.into_iter();
            for pc in copy
                .policy
                .provider_configs
                .iter_mut()
                .filter(|c| c.id == 0)
            {
                pc.id = ids.next().unwrap_or(0);
            }
            write_copy_policy(&mut tx, &copy, now).await?;
            // Matched counters zeroed by `reset_usage`, and counters of
            // halves re-created under a kept rate-limit id: both start at 0.
            let zeroed: Vec<_> = result
                .reset
                .iter()
                .chain(&result.recreated)
                .cloned()
                .collect();
            outcome.reset.extend(zeroed.iter().cloned());
            for (limit_id, kind) in &zeroed {
                sqlx::query("DELETE FROM usage_counters WHERE limit_id = $1 AND kind = $2")
                    .bind(limit_id.clone())
                    .bind(kind.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
        }
        if !dry_run {
            // A propagation that changed no copy changed nothing: no entry.
            if !outcome.affected_user_ids.is_empty() {
                insert_audit(
                    &mut tx,
                    actor,
                    now,
                    NewAuditEntry {
                        access_profile_id: Some(profile_id),
                        action: "propagate",
                        new_values: Some(serde_json::json!({
                            "fields": field_names,
                            "reset_usage": reset_usage,
                            "affected_user_ids": outcome.affected_user_ids,
                        })),
                        metadata: Some(serde_json::json!({
                            "template_version": template.version,
                            "skipped_users": outcome.skipped_users,
                        })),
                        ..NewAuditEntry::default()
                    },
                )
                .await?;
            }
            tx.commit().await?;
        }
        Ok(outcome)
    }
}
