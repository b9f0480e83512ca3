//! Concurrent writes to templates: names stay unique, versions stay
//! consecutive, nothing answers 5xx. On SQLite and PostgreSQL, and with two
//! nodes on one PostgreSQL store.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::*;
use heimdall_testkit::{TestDb, TestServer, store_test};
use serde_json::json;

/// Stops a server shared with tasks that have all finished.
async fn stop(s: Arc<TestServer>) {
    match Arc::try_unwrap(s) {
        Ok(s) => s.stop().await,
        Err(_) => panic!("a task still holds the server"),
    }
}

store_test!(
    concurrent_creates_of_one_name_admit_one,
    |db: TestDb| async move {
        let s = Arc::new(TestServer::start(&db).await);
        let mut tasks = Vec::new();
        for i in 0..16 {
            let s = s.clone();
            // The same name in different cases.
            let name = if i % 2 == 0 { "Race" } else { "RACE" };
            tasks.push(tokio::spawn(async move {
                s.post(&profiles(""), minimal(name)).await
            }));
        }
        let mut created = 0;
        for t in tasks {
            let r = t.await.unwrap();
            match r.status {
                201 => created += 1,
                _ => assert_error(&r, 409, "conflict"),
            }
        }
        assert_eq!(created, 1);
        assert_eq!(profile_count(&s).await, 1);
        assert_eq!(audit_count(&s).await, 1);
        stop(s).await;
    }
);

store_test!(
    concurrent_updates_make_consecutive_versions,
    |db: TestDb| async move {
        let s = Arc::new(TestServer::start(&db).await);
        let id = id_of(&create(&s, minimal("Busy")).await);
        let mut tasks = Vec::new();
        for i in 0..20 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                s.put(
                    &profiles(&format!("/{id}")),
                    json!({"description": format!("writer {i}")}),
                )
                .await
            }));
        }
        for t in tasks {
            let r = t.await.unwrap();
            assert_eq!(r.status, 200, "{}", r.text);
        }
        let versions = versions_of(&s, id).await;
        let numbers: Vec<i64> = versions
            .iter()
            .map(|v| v["version"].as_i64().unwrap())
            .collect();
        assert_eq!(numbers, (1..=21).rev().collect::<Vec<i64>>());
        let p = get_profile(&s, id).await;
        assert_eq!(p["version"], 21);
        // The last version is the profile as it is now.
        assert_eq!(json_string(&versions[0]["snapshot"]), p);
        assert_eq!(audit_of(&s, id).await.len(), 21);
        stop(s).await;
    }
);

store_test!(two_nodes_on_one_store_agree, |db: TestDb| async move {
    if db.kind != "postgres" {
        // Several nodes share a store only on PostgreSQL (operations.md).
        return;
    }
    let a = Arc::new(TestServer::start(&db).await);
    let b = Arc::new(TestServer::start(&db).await);
    let mut tasks = Vec::new();
    for i in 0..12 {
        let node = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            node.post(
                &profiles(""),
                rich(if i % 3 == 0 { "shared" } else { "SHARED" }),
            )
            .await
        }));
    }
    let mut created = Vec::new();
    for t in tasks {
        let r = t.await.unwrap();
        match r.status {
            201 => created.push(r.body["access_profile"].clone()),
            _ => assert_error(&r, 409, "conflict"),
        }
    }
    assert_eq!(created.len(), 1);
    let id = id_of(&created[0]);
    // Updates through both nodes serialise on the row.
    let mut tasks = Vec::new();
    for i in 0..10 {
        let node = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            node.put(
                &profiles(&format!("/{id}")),
                json!({"tags": [format!("t{i}")]}),
            )
            .await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().status, 200);
    }
    // Each node sees the other's writes at once.
    assert_eq!(get_profile(&a, id).await, get_profile(&b, id).await);
    assert_eq!(get_profile(&a, id).await["version"], 11);
    let numbers: Vec<i64> = versions_of(&b, id)
        .await
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, (1..=11).rev().collect::<Vec<i64>>());
    // Provider-config ids handed out by both nodes never collide.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let node = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            create(&node, rich(&format!("n{i}"))).await
        }));
    }
    let mut config_ids = Vec::new();
    for t in tasks {
        let p = t.await.unwrap();
        for pc in p["provider_configs"].as_array().unwrap() {
            config_ids.push(pc["id"].as_i64().unwrap());
        }
    }
    let n = config_ids.len();
    config_ids.sort_unstable();
    config_ids.dedup();
    assert_eq!(
        config_ids.len(),
        n,
        "provider-config ids are unique across nodes"
    );
    stop(a).await;
    stop(b).await;
});
