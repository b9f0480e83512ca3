//! The bulk loader: writes a SQLite store with `templates` access profiles
//! and `keys` users, each holding one direct copy of a template (round robin)
//! and that copy's managed virtual key, by inserting rows directly (the
//! management API would take hours for a million users).
//!
//! Rows are shaped as `heimdall-store`'s provisioning writes them: the
//! copy's policy is the template's with fresh limit ids and window anchors
//! (`without_ids`, `assign_ids`, `anchor_unset`), provider-config ids come
//! from the `provider_config` sequence, a key is stored as the SHA-256 hex of
//! its value plus its last four characters. Key values are deterministic
//! (`key_value(i)`), so a scale run can send requests with any seeded key.
//! Template versions and audit entries are not written: the policy index does
//! not read them.

use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use heimdall_core::keys;
use heimdall_core::money::Money;
use heimdall_core::profile::{Budget, Policy, ProviderConfig, RateLimit};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Connection, QueryBuilder, Sqlite};

/// Users (with their copy and key) written per transaction and statement.
const CHUNK: usize = 1000;

/// What was written and how long it took.
#[derive(Debug, Clone, Copy)]
pub struct Seeded {
    pub keys: u64,
    pub templates: u64,
    pub elapsed: Duration,
    pub db_bytes: u64,
}

/// The value of seeded key `i`: `sk-bf-` and 39 base62 characters.
pub fn key_value(i: u64) -> String {
    format!("{}bench{i:034}", keys::KEY_PREFIX)
}

/// The model pattern only template `t` allows (so that every template
/// compiles its own regex, as distinct real templates would).
pub fn template_pattern(t: u64) -> String {
    format!("regex:^bench-{t}-[a-z0-9.-]+$")
}

/// The policy of template `t`: `openai` with one exact model and one regex,
/// a daily and a monthly budget, and a request and token rate limit.
pub fn template_policy(t: u64) -> Policy {
    let budget = |dollars: i64, duration: &str| Budget {
        id: String::new(),
        max_limit: Money(dollars * 1_000_000_000),
        reset_duration: duration.to_string(),
        reset_config: None,
        created_at: None,
        override_: None,
    };
    let t_i64 = i64::try_from(t).unwrap_or(i64::MAX);
    Policy {
        provider_configs: vec![ProviderConfig {
            id: 0,
            provider_name: "openai".into(),
            all_models_allowed: false,
            allowed_models: vec!["gpt-4o-mini".into(), template_pattern(t)],
            budgets: vec![],
            rate_limit: None,
        }],
        budgets: vec![
            budget(100 + t_i64 % 1000, "1d"),
            budget(1000 + t_i64 % 1000, "1M"),
        ],
        rate_limit: Some(RateLimit {
            id: String::new(),
            token_max_limit: Some(10_000_000),
            token_reset_duration: Some("1h".into()),
            request_max_limit: Some(100_000),
            request_reset_duration: Some("1m".into()),
            token_created_at: None,
            request_created_at: None,
        }),
        ..Policy::empty()
    }
}

struct Template {
    id: i64,
    name: String,
    policy: Policy,
}

async fn connect(path: &Path) -> anyhow::Result<SqliteConnection> {
    let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
        // WAL, as the store set it: switching modes needs the file to
        // ourselves, and the migrating pool may still be closing
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Off)
        .busy_timeout(Duration::from_secs(30))
        .pragma("cache_size", "-262144");
    Ok(SqliteConnection::connect_with(&opts).await?)
}

/// Creates `path` afresh (migrated by `heimdall-store`) and fills it.
pub async fn seed(path: &Path, n_keys: u64, n_templates: u64) -> anyhow::Result<Seeded> {
    anyhow::ensure!(n_templates > 0, "at least one template");
    let started = Instant::now();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let url = format!("sqlite://{}", path.display());
    let store = heimdall_store::Store::open(&url)
        .await
        .with_context(|| format!("creating the store {url}"))?;
    store.close().await;
    let mut conn = connect(path)
        .await
        .context("opening the store for the bulk load")?;
    let now = Utc::now();
    let ms = now.timestamp_millis();
    let mut next_config_id = 0_i64;
    let mut templates = Vec::with_capacity(usize::try_from(n_templates)?);
    for t in 0..n_templates {
        let mut policy = template_policy(t);
        policy.assign_ids(None, &mut || {
            next_config_id += 1;
            next_config_id
        });
        templates.push(Template {
            id: i64::try_from(t)? + 1,
            name: format!("bench-template-{t}"),
            policy,
        });
    }
    for chunk in templates.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO access_profiles (id, name, name_norm, description, is_active, version, tags, policy, rotation_interval_ns, created_at, updated_at) ",
        );
        let mut rows = Vec::with_capacity(chunk.len());
        for t in chunk {
            rows.push((t, serde_json::to_string(&t.policy)?));
        }
        qb.push_values(rows, |mut b, (t, policy)| {
            b.push_bind(t.id)
                .push_bind(t.name.clone())
                .push_bind(t.name.to_lowercase())
                .push_bind(Option::<String>::None)
                .push_bind(1_i64)
                .push_bind(1_i64)
                .push_bind("[]")
                .push_bind(policy)
                .push_bind(0_i64)
                .push_bind(ms)
                .push_bind(ms);
        });
        qb.build()
            .execute(&mut conn)
            .await
            .context("writing templates")?;
    }
    let mut i = 0_u64;
    while i < n_keys {
        let end = (i + CHUNK as u64).min(n_keys);
        write_users(&mut conn, &templates, i..end, now, &mut next_config_id)
            .await
            .with_context(|| format!("writing users {i}..{end}"))?;
        i = end;
        if i.is_multiple_of(100_000) {
            eprintln!("[heimdall-bench] seeded {i} users");
        }
    }
    sqlx::query("UPDATE sequences SET value = $1 WHERE name = 'provider_config'")
        .bind(next_config_id)
        .execute(&mut conn)
        .await?;
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(Seeded {
        keys: n_keys,
        templates: n_templates,
        elapsed: started.elapsed(),
        db_bytes: std::fs::metadata(path).map_or(0, |m| m.len()),
    })
}

struct UserRows {
    user_id: String,
    copy_id: i64,
    template: usize,
    policy: String,
    key_id: String,
    key_value: String,
    index: u64,
}

async fn write_users(
    conn: &mut SqliteConnection,
    templates: &[Template],
    range: std::ops::Range<u64>,
    now: DateTime<Utc>,
    next_config_id: &mut i64,
) -> anyhow::Result<()> {
    let ms = now.timestamp_millis();
    let mut rows = Vec::with_capacity(CHUNK);
    for i in range {
        let t = usize::try_from(i % templates.len() as u64)?;
        let mut policy = templates[t].policy.without_ids();
        policy.assign_ids(None, &mut || {
            *next_config_id += 1;
            *next_config_id
        });
        policy.anchor_unset(now);
        rows.push(UserRows {
            user_id: uuid::Uuid::new_v4().to_string(),
            copy_id: i64::try_from(i)? + 1,
            template: t,
            policy: serde_json::to_string(&policy)?,
            key_id: uuid::Uuid::new_v4().to_string(),
            key_value: key_value(i),
            index: i,
        });
    }
    let mut tx = conn.begin().await?;
    let mut qb = QueryBuilder::<Sqlite>::new(
        "INSERT INTO users (id, name, email, email_norm, role_id, created_at, updated_at) ",
    );
    qb.push_values(&rows, |mut b, r| {
        let email = format!("user{}@bench.example", r.index);
        b.push_bind(r.user_id.clone())
            .push_bind(format!("Bench User {}", r.index))
            .push_bind(email.clone())
            .push_bind(email)
            .push_bind(Option::<i64>::None)
            .push_bind(ms)
            .push_bind(ms);
    });
    qb.build().execute(&mut *tx).await?;
    let mut qb = QueryBuilder::<Sqlite>::new(
        "INSERT INTO user_profiles (id, user_id, parent_profile_id, name, is_active, expires_at, source, role_id, assigned_at, policy, created_at, updated_at) ",
    );
    qb.push_values(&rows, |mut b, r| {
        let t = &templates[r.template];
        b.push_bind(r.copy_id)
            .push_bind(r.user_id.clone())
            .push_bind(t.id)
            .push_bind(t.name.clone())
            .push_bind(1_i64)
            .push_bind(Option::<i64>::None)
            .push_bind("direct")
            .push_bind(Option::<i64>::None)
            .push_bind(ms)
            .push_bind(r.policy.clone())
            .push_bind(ms)
            .push_bind(ms);
    });
    qb.build().execute(&mut *tx).await?;
    let mut qb = QueryBuilder::<Sqlite>::new(
        "INSERT INTO virtual_keys (id, name, user_id, user_profile_id, access_profile_id, value_hash, value_last4, is_active, created_at) ",
    );
    qb.push_values(&rows, |mut b, r| {
        let t = &templates[r.template];
        b.push_bind(r.key_id.clone())
            .push_bind(format!("{} (profile {})", t.name, t.id))
            .push_bind(r.user_id.clone())
            .push_bind(r.copy_id)
            .push_bind(t.id)
            .push_bind(keys::hash_value(&r.key_value))
            .push_bind(keys::last4(&r.key_value))
            .push_bind(1_i64)
            .push_bind(ms);
    });
    qb.build().execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_key_values_look_like_real_ones() {
        let v = key_value(999_999);
        assert!(keys::looks_like_virtual_key(&v));
        assert!(v.len() - keys::KEY_PREFIX.len() >= 32);
        assert!(
            v[keys::KEY_PREFIX.len()..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric())
        );
        assert_ne!(key_value(1), key_value(10));
    }

    #[test]
    fn template_policies_differ_and_validate_as_stored() {
        let a = template_policy(1);
        let b = template_policy(2);
        assert_ne!(a, b);
        assert_eq!(a.budgets.len(), 2);
        assert!(a.rate_limit.is_some());
        // the stored JSON round-trips through the domain type
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<Policy>(&json).unwrap(), a);
    }

    #[tokio::test]
    async fn seeds_a_small_store_that_the_store_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seed.db");
        let s = seed(&path, 25, 4).await.unwrap();
        assert_eq!((s.keys, s.templates), (25, 4));
        let store = heimdall_store::Store::open(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        let keys = store.list_key_records().await.unwrap();
        assert_eq!(keys.len(), 25);
        assert!(
            keys.iter()
                .any(|k| k.hash == keys::hash_value(&key_value(7)))
        );
        let copies = store.list_all_copies().await.unwrap();
        assert_eq!(copies.len(), 25);
        let index = heimdall_core::policy::Snapshot::build(&keys, &copies);
        assert_eq!((index.key_count(), index.user_count()), (25, 25));
        store.close().await;
    }

    #[tokio::test]
    async fn index_pages_cover_every_user_once_with_its_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seed.db");
        seed(&path, 103, 5).await.unwrap();
        let store = heimdall_store::Store::open(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        let keys = store.list_key_records().await.unwrap();
        let copies = store.list_all_copies().await.unwrap();
        let mut interner = heimdall_core::policy::Interner::default();
        let mut builder = heimdall_core::policy::SnapshotBuilder::new(103, 103);
        let (mut after, mut seen, mut pages) = (None::<String>, Vec::new(), 0);
        loop {
            let page = store.index_page(after.as_deref(), 10).await.unwrap();
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            pages += 1;
            for (uid, rec) in &page {
                assert!(rec.keys.iter().all(|k| &k.user_id == uid));
                assert!(rec.copies.iter().all(|c| &c.user_id == uid));
                assert_eq!((rec.keys.len(), rec.copies.len()), (1, 1));
                seen.push(uid.clone());
            }
            builder.add_page(&mut interner, &page);
        }
        assert_eq!(pages, 11, "ten full pages and one of three");
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, seen, "in id order, each user once");
        assert_eq!(seen.len(), 103);
        assert_eq!(store.index_counts().await.unwrap(), (103, 103));
        let paged = builder.finish();
        let one_shot = heimdall_core::policy::Snapshot::build(&keys, &copies);
        assert_eq!(paged.key_count(), one_shot.key_count());
        assert_eq!(paged.user_count(), one_shot.user_count());
        let now = chrono::Utc::now();
        for i in 0..103 {
            let h = heimdall_core::policy::key_hash(&key_value(i));
            let (a, b) = (paged.key(&h, now).unwrap(), one_shot.key(&h, now).unwrap());
            assert_eq!((&a.key_id, &a.name), (&b.key_id, &b.name));
            assert_eq!(a.user.user_id, b.user.user_id);
            let (ca, cb) = (&a.user.copies[0], &b.user.copies[0]);
            assert_eq!((ca.id, &ca.name), (cb.id, &cb.name));
            let ids = |c: &heimdall_core::policy::CopyEntry| {
                c.limits
                    .iter()
                    .map(|l| (l.limit_id.to_string(), l.anchor))
                    .collect::<Vec<_>>()
            };
            assert_eq!(ids(ca), ids(cb));
        }
        store.close().await;
    }
}
