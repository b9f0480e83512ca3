//! The quota route is a read: many reads with a key's value leave every
//! table of the store as it was. The one exception is the rotation
//! hand-over: the holder of the old value reads the new one once, and that
//! read (only that one) forgets the old value — on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod people;

use chrono::Duration;
use common::{PREFIXES, assert_error};
use heimdall_testkit::db::every_row;
use heimdall_testkit::{TestDb, store_test};
use people::*;
use serde_json::json;

store_test!(
    many_quota_reads_leave_every_table_unchanged,
    |db: TestDb| async move {
        let (s, clock) = clocked(&db, "1h").await;
        let (_p, eng) = default_of_new_role(&s, "Eng", "Engineers").await;
        let (ann, ks) = user(&s, "Ann", Some(eng)).await;
        let value = assert_key_value(&ks[0]["value"]);
        let (_bob, bks) = user(&s, "Bob", Some(eng)).await;
        let other = assert_key_value(&bks[0]["value"]);
        let pool = raw_db(&s).await;
        let before = every_row(&pool).await;
        assert!(
            before.iter().any(|l| l.starts_with("virtual_keys:")),
            "the dump sees the keys: {before:?}"
        );
        for i in 0..40 {
            clock.advance(Duration::seconds(1));
            let v = if i % 4 == 0 { &other } else { &value };
            let r = if i % 2 == 0 {
                quota_at(&s, PREFIXES[i % PREFIXES.len()], v).await
            } else {
                quota_vk(&s, v).await
            };
            assert_eq!(r.status, 200, "read {i}: {}", r.text);
            assert!(r.body.get("rotated_value").is_none());
        }
        // A refused read writes nothing either.
        assert_error(
            &quota(&s, "sk-bf-nosuchkey").await,
            401,
            "virtual_key_not_found",
        );
        assert_eq!(
            every_row(&pool).await,
            before,
            "quota reads wrote the store"
        );

        // During a rotation grace the new value reads without writing.
        let key_id = ks[0]["id"].as_str().unwrap().to_string();
        let r = s
            .post(&g(&format!("/virtual-keys/{key_id}/rotate")), json!({}))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let new = assert_key_value(&r.body["virtual_key"]["value"]);
        let rotated = every_row(&pool).await;
        assert_ne!(rotated, before);
        for _ in 0..10 {
            let r = quota(&s, &new).await;
            assert_eq!(r.status, 200, "{}", r.text);
            assert!(r.body.get("rotated_value").is_none());
        }
        assert_eq!(
            every_row(&pool).await,
            rotated,
            "reads with the new value wrote the store"
        );

        // The old value hands over once: that read changes only Ann's key row.
        let r = quota(&s, &value).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["rotated_value"], new.as_str());
        assert_eq!(r.body["user_id"], ann.as_str());
        let handed = every_row(&pool).await;
        let changed: Vec<_> = handed.iter().filter(|l| !rotated.contains(l)).collect();
        assert_eq!(changed.len(), 1, "one row changes: {changed:?}");
        assert!(changed[0].starts_with("virtual_keys:") && changed[0].contains(&key_id));
        assert_error(&quota(&s, &value).await, 401, "virtual_key_not_found");

        // And from then on reads are plain reads again.
        for _ in 0..10 {
            assert_eq!(quota(&s, &new).await.status, 200);
            assert_eq!(quota_vk(&s, &other).await.status, 200);
        }
        assert_eq!(
            every_row(&pool).await,
            handed,
            "reads after the hand-over wrote the store"
        );
        pool.close().await;
        s.stop().await;
    }
);
