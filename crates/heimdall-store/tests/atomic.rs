//! A multi-row write that fails part-way leaves nothing behind: every such
//! write is one transaction. A trigger makes one chosen statement fail after
//! others of the same write have run; afterwards every table is exactly as
//! before — on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use heimdall_core::copy::PropagateField;
use heimdall_core::money::Money;
use heimdall_testkit::{TestDb, store_test};

store_test!(
    user_creation_that_fails_at_the_key_leaves_no_user_and_no_copy,
    |db: TestDb| async move {
        let (store, pool) = open(&db).await;
        let eng = role(&store, "Eng").await;
        default_template(&store, "Eng default", eng).await;
        let rows = every_row(&pool).await;
        // The user row and the copy are written before the key.
        fail_when(
            &store,
            &pool,
            "INSERT",
            "virtual_keys",
            "NEW.name LIKE 'Eng default%'",
        )
        .await;
        let err = store
            .create_user("Ann", "ann@example.com", Some(eng), ACTOR, now())
            .await
            .unwrap_err();
        assert_injected(err);
        assert_eq!(every_row(&pool).await, rows);
        // The same email is free afterwards: nothing was left half-made.
        let (u, keys) = store
            .create_user("Ann", "ann@example.com", None, ACTOR, now())
            .await
            .unwrap();
        assert!(keys.is_empty());
        assert_eq!(u.email, "ann@example.com");
    }
);

store_test!(
    a_role_attach_that_fails_at_the_last_user_provisions_nobody,
    |db: TestDb| async move {
        let (store, pool) = open(&db).await;
        let eng = role(&store, "Eng").await;
        let mut users = Vec::new();
        for name in ["a", "b", "c"] {
            users.push(user(&store, name, Some(eng)).await.0);
        }
        let t = template(&store, "Shared", budget_policy(5)).await;
        let rows = every_row(&pool).await;
        // Activation, the attachment, the audit entry and two copies with
        // their keys come first; the third user's key fails.
        // (Users of one role are provisioned in creation order, then by id;
        // they share a creation instant here, so the greatest id is last.)
        let mut order = users.clone();
        order.sort();
        fail_when(
            &store,
            &pool,
            "INSERT",
            "virtual_keys",
            &format!("NEW.user_id = '{}'", order[2]),
        )
        .await;
        let err = store
            .attach_roles(t.id, &[eng], true, true, ACTOR, now())
            .await
            .unwrap_err();
        assert_injected(err);
        assert_eq!(every_row(&pool).await, rows);
        assert!(!store.get_profile(t.id).await.unwrap().unwrap().is_active);
    }
);

store_test!(
    a_propagation_that_fails_at_one_copy_changes_no_copy,
    |db: TestDb| async move {
        let (store, pool) = open(&db).await;
        let eng = role(&store, "Eng").await;
        let t = default_template(&store, "Eng default", eng).await;
        for name in ["a", "b", "c"] {
            user(&store, name, Some(eng)).await;
        }
        set_template_budget(&store, t.id, 99).await;
        let copies = store.list_all_copies().await.unwrap();
        let last = copies.iter().map(|c| c.id).max().unwrap();
        let rows = every_row(&pool).await;
        fail_when(
            &store,
            &pool,
            "UPDATE",
            "user_profiles",
            &format!("OLD.id = {last}"),
        )
        .await;
        let err = store
            .propagate_profile(
                t.id,
                &[PropagateField::Budgets],
                &["budgets".to_string()],
                &[],
                false,
                true,
                ACTOR,
                now(),
            )
            .await
            .unwrap_err();
        assert_injected(err);
        assert_eq!(every_row(&pool).await, rows);
        for c in store.list_all_copies().await.unwrap() {
            assert_eq!(c.policy.budgets[0].max_limit, Money(10 * 1_000_000_000));
        }
    }
);

store_test!(
    a_user_delete_that_fails_at_the_user_row_keeps_copies_and_keys,
    |db: TestDb| async move {
        let (store, pool) = open(&db).await;
        let eng = role(&store, "Eng").await;
        default_template(&store, "Eng default", eng).await;
        let (ann, _) = user(&store, "ann", Some(eng)).await;
        store
            .mint_key(&ann, Some("extra"), None, now())
            .await
            .unwrap();
        let copies = store.list_all_copies().await.unwrap();
        store
            .save_counters(
                &[heimdall_store::CounterRow {
                    limit_id: copies[0].policy.budgets[0].id.clone(),
                    kind: heimdall_core::copy::CounterKind::Budget,
                    user_profile_id: copies[0].id,
                    used: 3,
                    window_start: 0,
                    reset_duration: "1d".into(),
                    anchor: 0,
                }],
                now(),
            )
            .await
            .unwrap();
        let rows = every_row(&pool).await;
        // The audit entries, the keys and the copies (with their counters)
        // go before the user row.
        fail_when(
            &store,
            &pool,
            "DELETE",
            "users",
            &format!("OLD.id = '{ann}'"),
        )
        .await;
        assert_injected(store.delete_user(&ann, ACTOR, now()).await.unwrap_err());
        assert_eq!(every_row(&pool).await, rows);
        assert_eq!(store.list_user_keys(&ann).await.unwrap().len(), 2);
    }
);
