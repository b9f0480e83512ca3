//! Helpers for the store's own tests: a fresh store per test (through
//! `heimdall_testkit::TestDb`: a SQLite file, or a PostgreSQL database that
//! is skipped loudly when the server is absent), a second pool that reads
//! rows directly, a few fixtures (role, template, user) and a trigger that
//! makes one chosen statement fail, to show that a write is one transaction.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{DateTime, TimeZone, Utc};
use heimdall_core::money::Money;
use heimdall_core::profile::{AccessProfile, Budget, PatchedProfile, Policy, RotationSchedule};
use heimdall_store::{Backend, NewProfile, Store};
use heimdall_testkit::TestDb;
use sqlx::{AnyPool, Row};

pub const ACTOR: &str = "store-test";

pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
}

/// The store (migrated) and a raw pool on the same database.
pub async fn open(db: &TestDb) -> (Store, AnyPool) {
    let store = Store::open(&db.url).await.expect("open the store");
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(2)
        .connect(&db.url)
        .await
        .expect("connect to the test database");
    (store, pool)
}

fn render(p: &AccessProfile) -> serde_json::Value {
    serde_json::json!({"id": p.id, "name": p.name, "version": p.version})
}

/// A policy with one profile-wide daily budget of `dollars`.
pub fn budget_policy(dollars: i64) -> Policy {
    Policy {
        budgets: vec![Budget {
            id: String::new(),
            max_limit: Money(dollars * 1_000_000_000),
            reset_duration: "1d".into(),
            reset_config: None,
            created_at: None,
            override_: None,
        }],
        ..Policy::default()
    }
}

/// An inactive template named `name`.
pub async fn template(store: &Store, name: &str, policy: Policy) -> AccessProfile {
    store
        .create_profile(
            NewProfile {
                name: name.into(),
                description: None,
                tags: Vec::new(),
                policy,
                rotation: RotationSchedule::default(),
            },
            ACTOR,
            now(),
            &render,
            "create",
            None,
        )
        .await
        .expect("create template")
}

/// Sets the first profile-wide budget of template `id` to `dollars`
/// (a template edit, as before a propagation).
pub async fn set_template_budget(store: &Store, id: i64, dollars: i64) {
    let render = |p: &AccessProfile| serde_json::json!({"id": p.id});
    store
        .update_profile(id, ACTOR, now(), &render, |cur| {
            let mut policy = cur.policy.clone();
            policy.budgets[0].max_limit = Money(dollars * 1_000_000_000);
            Ok(PatchedProfile {
                name: cur.name.clone(),
                description: cur.description.clone(),
                tags: cur.tags.clone(),
                policy,
                rotation: cur.rotation.clone(),
            })
        })
        .await
        .unwrap();
}

pub async fn role(store: &Store, name: &str) -> i64 {
    store
        .create_role(name, None, now())
        .await
        .expect("create role")
        .id
}

/// A template that is `role`'s default (activated by the attach).
pub async fn default_template(store: &Store, name: &str, role: i64) -> AccessProfile {
    let t = template(store, name, budget_policy(10)).await;
    store
        .attach_roles(t.id, &[role], true, false, ACTOR, now())
        .await
        .expect("attach role");
    store.get_profile(t.id).await.unwrap().unwrap()
}

/// A user; returns the id and how many keys the creation provisioned.
pub async fn user(store: &Store, name: &str, role: Option<i64>) -> (String, usize) {
    let (u, keys) = store
        .create_user(name, &format!("{name}@example.com"), role, ACTOR, now())
        .await
        .expect("create user");
    (u.id, keys.len())
}

pub async fn count(pool: &AnyPool, sql: &str, bind: &str) -> i64 {
    sqlx::query(sql)
        .bind(bind.to_string())
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .try_get(0)
        .unwrap()
}

pub async fn count_all(pool: &AnyPool, table: &str) -> i64 {
    sqlx::query(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("count {table}: {e}"))
        .try_get(0)
        .unwrap()
}

/// The ids of a user's copies, oldest first.
pub async fn copy_ids(pool: &AnyPool, user: &str) -> Vec<i64> {
    sqlx::query("SELECT id FROM user_profiles WHERE user_id = $1 ORDER BY id")
        .bind(user.to_string())
        .fetch_all(pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get("id").unwrap())
        .collect()
}

pub use heimdall_testkit::db::every_row;

/// Makes `event` (`INSERT`, `UPDATE` or `DELETE`) on `table` fail for rows
/// matching `when` (an SQL condition on `NEW` or `OLD`), on either backend.
pub async fn fail_when(store: &Store, pool: &AnyPool, event: &str, table: &str, when: &str) {
    let name = format!("fail_{}_{}", event.to_lowercase(), table);
    let stmts = match store.backend() {
        Backend::Sqlite => vec![format!(
            "CREATE TRIGGER {name} BEFORE {event} ON {table} FOR EACH ROW WHEN {when}
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
        )],
        Backend::Postgres => vec![
            "CREATE OR REPLACE FUNCTION heimdall_injected_failure() RETURNS trigger LANGUAGE plpgsql AS
             $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$"
                .to_string(),
            format!(
                "CREATE TRIGGER {name} BEFORE {event} ON {table} FOR EACH ROW WHEN ({when})
                 EXECUTE FUNCTION heimdall_injected_failure()"
            ),
        ],
    };
    for sql in stmts {
        sqlx::raw_sql(&sql)
            .execute(pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

/// Asserts that `err` is the injected failure, not some other error.
pub fn assert_injected(err: impl std::fmt::Display) {
    let msg = err.to_string();
    assert!(
        msg.contains("injected failure"),
        "expected the injected failure, got: {msg}"
    );
}
