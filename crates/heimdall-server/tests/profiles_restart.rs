//! Everything written survives a restart on the same store, and ids keep
//! growing across restarts (never reused, also after a delete). On SQLite
//! and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use heimdall_testkit::{TestDb, TestServer, store_test};
use serde_json::{Value, json};

/// Everything the template API shows: the list, each profile's detail,
/// versions (and each single version) and audit log, and the global log.
async fn everything(s: &TestServer) -> Value {
    let list = s.get(&profiles("?limit=500")).await;
    assert_eq!(list.status, 200);
    let mut details = Vec::new();
    for p in list.body["access_profiles"].as_array().unwrap() {
        let id = id_of(p);
        let detail = s.get(&profiles(&format!("/{id}"))).await.body;
        let versions = versions_of(s, id).await;
        let mut singles = Vec::new();
        for v in &versions {
            let n = v["version"].as_i64().unwrap();
            singles.push(s.get(&profiles(&format!("/{id}/versions/{n}"))).await.body);
        }
        let audit = s
            .get(&profiles(&format!("/{id}/audit-logs?limit=500")))
            .await
            .body;
        details.push(
            json!({"detail": detail, "versions": versions, "singles": singles, "audit": audit}),
        );
    }
    let global = s.get(&profiles("/audit-logs?limit=500")).await.body;
    json!({"list": list.body, "details": details, "global": global})
}

store_test!(everything_survives_a_restart, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    let a = id_of(&create(&s, rich("Alpha")).await);
    let b = id_of(
        &create(
            &s,
            json!({"name": "Beta ÉQUIPE \u{0} 🚀", "description": "it's \"quoted\""}),
        )
        .await,
    );
    let c = id_of(&create(&s, minimal("Gamma")).await);
    assert_eq!(
        s.put(
            &profiles(&format!("/{a}")),
            json!({"description": "v2", "rate_limit": null})
        )
        .await
        .status,
        200
    );
    assert_eq!(
        s.put(
            &profiles(&format!("/{a}")),
            json!({"tags": ["x"], "auto_rotation_interval": "12h"})
        )
        .await
        .status,
        200
    );
    assert_eq!(
        s.put(&profiles(&format!("/{a}/activate")), json!({}))
            .await
            .status,
        200
    );
    let d = id_of(
        &s.post(&profiles(&format!("/{a}/clone")), json!({"name": "Delta"}))
            .await
            .body["access_profile"],
    );
    assert_eq!(s.delete(&profiles(&format!("/{c}"))).await.status, 200);
    let r = s
        .post(
            &profiles(&format!("/{b}/roles")),
            json!({"role_ids": [3], "is_default": false}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let before = everything(&s).await;
    assert_eq!(before["list"]["total_count"], 3);
    s.stop().await;

    let s = TestServer::start(&db).await;
    let after = everything(&s).await;
    assert_eq!(after, before, "everything is still there, unchanged");
    // The restored profiles still enforce their rules: names stay taken.
    for taken in ["alpha", "DELTA", "beta équipe \u{0} 🚀"] {
        assert_error(
            &s.post(&profiles(""), minimal(taken)).await,
            409,
            "conflict",
        );
    }
    // The deleted one's name is free, and history continues where it was.
    let e = create(&s, minimal("Gamma")).await;
    assert!(id_of(&e) > d, "new ids continue after the old ones");
    let r = s
        .put(&profiles(&format!("/{a}")), json!({"description": "v4"}))
        .await;
    assert_eq!(r.body["access_profile"]["version"], 4);
    assert_eq!(versions_of(&s, a).await.len(), 4);
    assert_eq!(audit_of(&s, a).await.len(), 5);
    assert_eq!(get_profile(&s, b).await["is_active"], true);
    s.stop().await;
});

store_test!(ids_are_never_reused, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    for name in ["one", "two", "three"] {
        create(&s, minimal(name)).await;
    }
    let with_config = create(&s, rich("four")).await;
    let old_config_ids: Vec<i64> = with_config["provider_configs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pc| pc["id"].as_i64().unwrap())
        .collect();
    // Delete the newest ones: a store that reuses ids would hand them out again.
    assert_eq!(s.delete(&profiles("/4")).await.status, 200);
    assert_eq!(s.delete(&profiles("/3")).await.status, 200);
    let audit_ids: Vec<i64> = s.get(&profiles("/audit-logs")).await.body["audit_logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(id_of(&create(&s, minimal("five")).await), 5);
    assert_eq!(s.delete(&profiles("/5")).await.status, 200);
    s.stop().await;

    for round in 0..2 {
        let s = TestServer::start(&db).await;
        let p = create(&s, rich(&format!("after restart {round}"))).await;
        assert_eq!(id_of(&p), 6 + round, "round {round}");
        for pc in p["provider_configs"].as_array().unwrap() {
            let id = pc["id"].as_i64().unwrap();
            assert!(
                old_config_ids.iter().all(|old| id > *old),
                "config id {id} reused"
            );
        }
        let newest = s.get(&profiles("/audit-logs?limit=1")).await.body["audit_logs"][0]["id"]
            .as_i64()
            .unwrap();
        assert!(newest > audit_ids[0], "audit ids continue");
        // Versions of a new profile start at 1 again; their ids do not collide.
        let v = versions_of(&s, id_of(&p)).await;
        assert_eq!(v.len(), 1);
        assert_eq!(v[0]["version"], 1);
        s.stop().await;
    }
});

store_test!(an_empty_store_restarts_empty, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    s.stop().await;
    let s = TestServer::start(&db).await;
    assert_eq!(profile_count(&s).await, 0);
    assert_eq!(audit_count(&s).await, 0);
    assert_eq!(id_of(&create(&s, minimal("First")).await), 1);
    s.stop().await;
    // Migrations are not applied twice: a third start works as well.
    let s = TestServer::start(&db).await;
    assert_eq!(profile_count(&s).await, 1);
    s.stop().await;
});
