//! Key lookups and the rotation hand-over: finding a key by value is a pure
//! read, and the hand-over writes only while the value it hands out is
//! still pending — on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use chrono::Duration;
use common::*;
use heimdall_testkit::{TestDb, store_test};

store_test!(
    lookups_write_nothing_and_the_hand_over_happens_once,
    |db: TestDb| async move {
        let (store, pool) = open(&db).await;
        let eng = role(&store, "Eng").await;
        default_template(&store, "Eng default", eng).await;
        let (_ann, keys) = store
            .create_user("Ann", "ann@example.com", Some(eng), ACTOR, now())
            .await
            .unwrap();
        let old = keys[0].value.clone();
        let rows = every_row(&pool).await;
        for _ in 0..20 {
            let m = store.find_key_by_value(&old, now()).await.unwrap().unwrap();
            assert!(!m.old_value);
            assert_eq!(m.pending_value, None);
        }
        assert!(
            store
                .find_key_by_value("sk-bf-none", now())
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(every_row(&pool).await, rows, "lookups wrote the store");

        let first = store
            .rotate_key(&keys[0].id, Duration::hours(1), now())
            .await
            .unwrap();
        let m = store.find_key_by_value(&old, now()).await.unwrap().unwrap();
        assert!(m.old_value);
        assert_eq!(m.pending_value.as_deref(), Some(first.value.as_str()));
        // A second rotation inside the grace: the value read before it is no
        // longer the pending one, so handing it over writes nothing.
        let second = store
            .rotate_key(&keys[0].id, Duration::hours(1), now())
            .await
            .unwrap();
        let rotated = every_row(&pool).await;
        assert!(
            !store
                .finish_rotation_handover(&keys[0].id, &first.value)
                .await
                .unwrap()
        );
        assert_eq!(every_row(&pool).await, rotated);
        // The holder of the first value reads the second and hands over once.
        let m = store
            .find_key_by_value(&first.value, now())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(m.pending_value.as_deref(), Some(second.value.as_str()));
        assert!(
            store
                .finish_rotation_handover(&keys[0].id, &second.value)
                .await
                .unwrap()
        );
        assert!(
            store
                .find_key_by_value(&first.value, now())
                .await
                .unwrap()
                .is_none()
        );
        let handed = every_row(&pool).await;
        assert_ne!(handed, rotated);
        assert!(
            !store
                .finish_rotation_handover(&keys[0].id, &second.value)
                .await
                .unwrap()
        );
        assert_eq!(every_row(&pool).await, handed);
        let m = store
            .find_key_by_value(&second.value, now())
            .await
            .unwrap()
            .unwrap();
        assert!(!m.old_value);
        assert_eq!(m.pending_value, None);
    }
);
