//! The store's multi-row writes on the people side, read back row by row:
//! user creation with provisioning, role attachment (with
//! `apply_to_existing`), propagation of a template to its copies, and user
//! deletion (copies, keys and counters gone) — on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use heimdall_core::copy::{CounterKind, PropagateField};
use heimdall_core::money::Money;
use heimdall_store::CounterRow;
use heimdall_testkit::{TestDb, store_test};
use sqlx::Row;

fn counter(limit: &str, copy: i64, used: i64) -> CounterRow {
    CounterRow {
        limit_id: limit.to_string(),
        kind: CounterKind::Budget,
        user_profile_id: copy,
        used,
        window_start: 0,
        reset_duration: "1d".into(),
        anchor: 0,
    }
}

store_test!(
    creating_a_user_provisions_the_role_default,
    |db: TestDb| async move {
        let (store, pool) = open(&db).await;
        let eng = role(&store, "Eng").await;
        let t = default_template(&store, "Eng default", eng).await;
        let (ann, keys) = store
            .create_user("Ann", "Ann@Example.com", Some(eng), ACTOR, now())
            .await
            .unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(ann.role_id, Some(eng));
        // One copy of the default, from the role, with the template's policy
        // under fresh limit ids.
        let copy = sqlx::query(
            "SELECT id, parent_profile_id, source, role_id, policy FROM user_profiles WHERE user_id = $1",
        )
        .bind(ann.id.clone())
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(copy.len(), 1);
        let c = &copy[0];
        let copy_id: i64 = c.try_get("id").unwrap();
        assert_eq!(c.try_get::<i64, _>("parent_profile_id").unwrap(), t.id);
        assert_eq!(c.try_get::<String, _>("source").unwrap(), "role_default");
        assert_eq!(c.try_get::<Option<i64>, _>("role_id").unwrap(), Some(eng));
        let policy: serde_json::Value =
            serde_json::from_str(&c.try_get::<String, _>("policy").unwrap()).unwrap();
        let budget_id = policy["budgets"][0]["id"].as_str().unwrap();
        assert_ne!(budget_id, t.policy.budgets[0].id);
        // Its managed key, stored by hash only.
        let key = sqlx::query(
            "SELECT id, user_profile_id, access_profile_id, value_hash, value_last4 FROM virtual_keys WHERE user_id = $1",
        )
        .bind(ann.id.clone())
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(key.len(), 1);
        let k = &key[0];
        assert_eq!(k.try_get::<String, _>("id").unwrap(), keys[0].id);
        assert_eq!(
            k.try_get::<Option<i64>, _>("user_profile_id").unwrap(),
            Some(copy_id)
        );
        assert_eq!(
            k.try_get::<Option<i64>, _>("access_profile_id").unwrap(),
            Some(t.id)
        );
        assert_eq!(
            k.try_get::<String, _>("value_hash").unwrap(),
            heimdall_core::keys::hash_value(&keys[0].value)
        );
        assert!(
            keys[0]
                .value
                .ends_with(&k.try_get::<String, _>("value_last4").unwrap())
        );
        // And the audit entry of the assignment.
        let audits = count(
            &pool,
            "SELECT COUNT(*) FROM audit_logs WHERE user_id = $1 AND action = 'assign_user'",
            &ann.id,
        )
        .await;
        assert_eq!(audits, 1);
        // A user without a role, or of a role without a default, gets nothing.
        let (bob, n) = user(&store, "bob", None).await;
        assert_eq!(n, 0);
        let bare = role(&store, "Bare").await;
        let (cy, n) = user(&store, "cy", Some(bare)).await;
        assert_eq!(n, 0);
        for u in [&bob, &cy] {
            assert!(copy_ids(&pool, u).await.is_empty());
            assert_eq!(
                count(
                    &pool,
                    "SELECT COUNT(*) FROM virtual_keys WHERE user_id = $1",
                    u
                )
                .await,
                0
            );
        }
        // A taken email (ignoring case) writes nothing.
        let rows = every_row(&pool).await;
        assert!(
            store
                .create_user("Other", "ann@example.COM", Some(eng), ACTOR, now())
                .await
                .is_err()
        );
        assert_eq!(every_row(&pool).await, rows);
    }
);

store_test!(
    attaching_a_role_to_existing_users_provisions_each_once,
    |db: TestDb| async move {
        let (store, pool) = open(&db).await;
        let eng = role(&store, "Eng").await;
        let ops = role(&store, "Ops").await;
        let mut engineers = Vec::new();
        for name in ["a", "b", "c"] {
            engineers.push(user(&store, name, Some(eng)).await.0);
        }
        let (op, _) = user(&store, "op", Some(ops)).await;
        let t = template(&store, "Shared", budget_policy(5)).await;
        assert!(!t.is_active);
        let out = store
            .attach_roles(t.id, &[eng], false, true, ACTOR, now())
            .await
            .unwrap();
        assert_eq!(out.users_applied, 3);
        assert_eq!(out.keys.len(), 3);
        assert!(store.get_profile(t.id).await.unwrap().unwrap().is_active);
        for u in &engineers {
            let copies = copy_ids(&pool, u).await;
            assert_eq!(copies.len(), 1, "{u}");
            let managed = sqlx::query(
                "SELECT COUNT(*) AS n FROM virtual_keys WHERE user_id = $1 AND user_profile_id = $2",
            )
            .bind(u.clone())
            .bind(copies[0])
            .fetch_one(&pool)
            .await
            .unwrap()
            .try_get::<i64, _>("n")
            .unwrap();
            assert_eq!(managed, 1);
            let source = sqlx::query("SELECT source FROM user_profiles WHERE id = $1")
                .bind(copies[0])
                .fetch_one(&pool)
                .await
                .unwrap()
                .try_get::<String, _>("source")
                .unwrap();
            assert_eq!(source, "role_apply");
        }
        assert!(copy_ids(&pool, &op).await.is_empty());
        let attachments = sqlx::query(
            "SELECT role_id, is_default FROM profile_roles WHERE access_profile_id = $1",
        )
        .bind(t.id)
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(attachments.len(), 1);
        assert_eq!(attachments[0].try_get::<i64, _>("role_id").unwrap(), eng);
        assert_eq!(attachments[0].try_get::<i64, _>("is_default").unwrap(), 0);

        // The same attach again changes nothing: no copy, no key, no audit.
        let rows = every_row(&pool).await;
        let again = store
            .attach_roles(t.id, &[eng], false, true, ACTOR, now())
            .await
            .unwrap();
        assert_eq!(again.users_applied, 0);
        assert_eq!(every_row(&pool).await, rows);

        // Made the default of both roles: only the Ops user is new.
        let out = store
            .attach_roles(t.id, &[eng, ops], true, true, ACTOR, now())
            .await
            .unwrap();
        assert_eq!(out.users_applied, 1);
        assert_eq!(copy_ids(&pool, &op).await.len(), 1);
        assert_eq!(count_all(&pool, "user_profiles").await, 4);
        let defaults: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM profile_roles WHERE is_default = 1 AND access_profile_id = $1",
        )
        .bind(t.id)
        .fetch_one(&pool)
        .await
        .unwrap()
        .try_get("n")
        .unwrap();
        assert_eq!(defaults, 2);
    }
);

store_test!(
    propagation_rewrites_every_copy_and_resets_their_counters,
    |db: TestDb| async move {
        let (store, pool) = open(&db).await;
        let eng = role(&store, "Eng").await;
        let t = default_template(&store, "Eng default", eng).await;
        let mut users = Vec::new();
        for name in ["a", "b", "c"] {
            users.push(user(&store, name, Some(eng)).await.0);
        }
        let copies = store.list_all_copies().await.unwrap();
        assert_eq!(copies.len(), 3);
        let counters: Vec<CounterRow> = copies
            .iter()
            .map(|c| counter(&c.policy.budgets[0].id, c.id, 42))
            .collect();
        store.save_counters(&counters, now()).await.unwrap();
        // The template's budget goes from $10 to $25.
        set_template_budget(&store, t.id, 25).await;
        let fields = [PropagateField::Budgets];
        let names = ["budgets".to_string()];

        // A dry run says who would change and writes nothing.
        let rows = every_row(&pool).await;
        let dry = store
            .propagate_profile(t.id, &fields, &names, &[], true, true, ACTOR, now())
            .await
            .unwrap();
        assert!(!dry.applied);
        assert_eq!(dry.affected_user_ids.len(), 3);
        assert_eq!(every_row(&pool).await, rows, "a dry run wrote the store");

        // Limited to two users: the third copy and its counter stay.
        let two = vec![users[0].clone(), users[1].clone()];
        let out = store
            .propagate_profile(t.id, &fields, &names, &two, false, true, ACTOR, now())
            .await
            .unwrap();
        assert!(out.applied);
        let mut affected = out.affected_user_ids.clone();
        affected.sort();
        let mut want = two.clone();
        want.sort();
        assert_eq!(affected, want);
        assert_eq!(out.reset.len(), 2);
        let after = store.list_all_copies().await.unwrap();
        for c in &after {
            let max = c.policy.budgets[0].max_limit;
            if two.contains(&c.user_id) {
                assert_eq!(max, Money(25 * 1_000_000_000), "{}", c.user_id);
            } else {
                assert_eq!(max, Money(10 * 1_000_000_000), "{}", c.user_id);
            }
        }
        let left = store.load_counters().await.unwrap();
        assert_eq!(left.len(), 1, "{left:?}");
        let third = copies.iter().find(|c| c.user_id == users[2]).unwrap();
        assert_eq!(left[0].user_profile_id, third.id);
        assert_eq!(left[0].used, 42);
        assert_eq!(
            count(
                &pool,
                "SELECT COUNT(*) FROM audit_logs WHERE action = $1",
                "propagate"
            )
            .await,
            1
        );
        // Propagating again changes nothing for the two already in line.
        let rows = every_row(&pool).await;
        let again = store
            .propagate_profile(t.id, &fields, &names, &two, false, false, ACTOR, now())
            .await
            .unwrap();
        assert!(again.affected_user_ids.is_empty());
        assert_eq!(again.skipped_users, 2);
        assert_eq!(every_row(&pool).await, rows);
    }
);

store_test!(
    deleting_a_user_removes_copies_keys_and_counters,
    |db: TestDb| async move {
        let (store, pool) = open(&db).await;
        let eng = role(&store, "Eng").await;
        let t = default_template(&store, "Eng default", eng).await;
        let other = template(&store, "Other", budget_policy(3)).await;
        store
            .set_profile_active(other.id, true, ACTOR, now())
            .await
            .unwrap();
        let (ann, _) = user(&store, "ann", Some(eng)).await;
        let (bob, _) = user(&store, "bob", Some(eng)).await;
        // Ann: a second copy (direct), an extra key, counters on both copies.
        store
            .assign_direct(&ann, other.id, None, ACTOR, now())
            .await
            .unwrap();
        store
            .mint_key(&ann, Some("extra"), None, now())
            .await
            .unwrap();
        let copies = store.list_all_copies().await.unwrap();
        let counters: Vec<CounterRow> = copies
            .iter()
            .map(|c| counter(&c.policy.budgets[0].id, c.id, 7))
            .collect();
        store.save_counters(&counters, now()).await.unwrap();
        assert_eq!(copy_ids(&pool, &ann).await.len(), 2);
        let bob_rows: Vec<String> = every_row(&pool)
            .await
            .into_iter()
            .filter(|l| l.contains(&bob))
            .collect();
        assert!(bob_rows.len() >= 3, "{bob_rows:?}");

        store.delete_user(&ann, ACTOR, now()).await.unwrap();
        for (sql, what) in [
            ("SELECT COUNT(*) FROM users WHERE id = $1", "user"),
            (
                "SELECT COUNT(*) FROM user_profiles WHERE user_id = $1",
                "copies",
            ),
            (
                "SELECT COUNT(*) FROM virtual_keys WHERE user_id = $1",
                "keys",
            ),
        ] {
            assert_eq!(count(&pool, sql, &ann).await, 0, "{what} left");
        }
        // Counters went with the copies; Bob's stays.
        let left = store.load_counters().await.unwrap();
        let bob_copy = copy_ids(&pool, &bob).await;
        assert_eq!(left.len(), 1, "{left:?}");
        assert_eq!(vec![left[0].user_profile_id], bob_copy);
        // Bob's rows are untouched.
        let bob_after: Vec<String> = every_row(&pool)
            .await
            .into_iter()
            .filter(|l| l.contains(&bob))
            .collect();
        assert_eq!(bob_after, bob_rows);
        // One detach entry per template Ann held; both templates remain.
        assert_eq!(
            count(
                &pool,
                "SELECT COUNT(*) FROM audit_logs WHERE user_id = $1 AND action = 'detach_user'",
                &ann
            )
            .await,
            2
        );
        assert!(store.get_profile(t.id).await.unwrap().is_some());
        assert!(store.get_profile(other.id).await.unwrap().is_some());
        // Deleting again is not found and writes nothing.
        let rows = every_row(&pool).await;
        assert!(store.delete_user(&ann, ACTOR, now()).await.is_err());
        assert_eq!(every_row(&pool).await, rows);
    }
);
