//! Clone (point by point), the version history and the audit log of
//! templates, on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use common::*;
use heimdall_core::clock::ManualClock;
use heimdall_testkit::{Reply, TestDb, TestServer, store_test};
use serde_json::{Value, json};

fn clock_at(t: &str) -> Arc<ManualClock> {
    Arc::new(ManualClock::new(
        DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc),
    ))
}

async fn clone_of(s: &TestServer, id: i64, body: Value) -> Reply {
    s.post(&profiles(&format!("/{id}/clone")), body).await
}

/// The policy of a profile with every server-assigned id removed.
fn without_ids(p: &Value) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.remove("id");
                m.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut v = p.clone();
    strip(&mut v);
    v
}

/// Every id of budgets, rate limits and provider configs in a profile.
fn limit_ids(p: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for b in p["budgets"].as_array().unwrap() {
        out.push(b["id"].to_string());
    }
    if p["rate_limit"].is_object() {
        out.push(p["rate_limit"]["id"].to_string());
    }
    for pc in p["provider_configs"].as_array().unwrap() {
        out.push(format!("pc{}", pc["id"]));
        for b in pc["budgets"].as_array().unwrap() {
            out.push(b["id"].to_string());
        }
        if pc["rate_limit"].is_object() {
            out.push(pc["rate_limit"]["id"].to_string());
        }
    }
    out
}

// ---- clone ----------------------------------------------------------------------

store_test!(
    clone_copies_the_policy_under_fresh_ids,
    |db: TestDb| async move {
        let clock = clock_at("2026-11-27T09:00:00Z");
        let s = TestServer::start_with(TestServer::config(&db), Some(clock.clone())).await;
        let src = create(&s, rich("Source")).await;
        let sid = id_of(&src);
        // Give the source some history and make it active.
        let r = s
            .put(
                &profiles(&format!("/{sid}")),
                json!({"tags": ["team", "eng", "v2"]}),
            )
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(
            s.put(&profiles(&format!("/{sid}/activate")), json!({}))
                .await
                .status,
            200
        );
        let src = get_profile(&s, sid).await;
        assert_eq!(src["version"], 2);
        let src_audit = audit_of(&s, sid).await;
        let src_versions = versions_of(&s, sid).await;

        clock.advance(Duration::hours(1));
        let r = clone_of(&s, sid, json!({"name": "Copy"})).await;
        assert_eq!(r.status, 201, "{}", r.text);
        let c = r.body["access_profile"].clone();
        let cid = id_of(&c);
        assert_ne!(cid, sid);
        assert_eq!(c["name"], "Copy");
        assert_eq!(c["version"], 1);
        assert_eq!(
            c["is_active"], false,
            "a clone starts inactive even if the source is active"
        );
        assert_eq!(
            c["description"], src["description"],
            "description defaults to the source's"
        );
        for key in [
            "tags",
            "calendar_aligned",
            "timezone",
            "auto_rotation_interval",
            "mcp_tool_groups",
            "mcp_servers",
            "mcp_tool_overrides",
        ] {
            assert_eq!(c[key], src[key], "{key} is copied");
        }
        for key in ["budgets", "provider_configs", "rate_limit"] {
            assert_eq!(
                without_ids(&c[key]),
                without_ids(&src[key]),
                "{key} is copied"
            );
        }
        // Fresh ids everywhere, none shared with the source.
        let src_ids = limit_ids(&src);
        let clone_ids = limit_ids(&c);
        assert_eq!(src_ids.len(), clone_ids.len());
        for id in &clone_ids {
            assert!(!src_ids.contains(id), "id {id} is shared with the source");
            assert!(
                id != "\"\"" && id != "pc0" && id != "null",
                "id {id} is empty"
            );
        }
        // Zero usage and no windows.
        for b in c["budgets"].as_array().unwrap().iter().chain(
            c["provider_configs"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|pc| pc["budgets"].as_array().unwrap()),
        ) {
            assert_eq!(b["current_usage"], 0.0);
            assert_eq!(b["last_reset"], Value::Null);
        }
        assert_eq!(c["rate_limit"]["token_current_usage"], 0);
        assert_eq!(c["rate_limit"]["request_current_usage"], 0);
        // Timestamps and schedule are the clone's own.
        assert_eq!(c["created_at"], "2026-11-27T10:00:00Z");
        assert_eq!(c["next_rotation_at"], "2026-12-27T10:00:00Z");
        assert_eq!(c["last_rotation_at"], Value::Null);

        // Detail: no roles, no users.
        let g = s.get(&profiles(&format!("/{cid}"))).await;
        assert_eq!(g.body["access_profile"], c);
        assert_eq!(g.body["roles"], json!([]));
        assert_eq!(g.body["user_count"], 0);

        // History of the clone: version 1 and one `clone` audit entry.
        let versions = versions_of(&s, cid).await;
        assert_eq!(versions.len(), 1);
        assert_eq!(versions[0]["version"], 1);
        assert_eq!(json_string(&versions[0]["snapshot"]), c);
        let log = audit_of(&s, cid).await;
        assert_eq!(log.len(), 1);
        assert_eq!(log[0]["action"], "clone");
        assert_eq!(log[0]["access_profile_id"], cid);
        assert_eq!(log[0]["actor"], "token");
        assert!(log[0]["metadata"].is_string(), "metadata is a JSON string");
        assert_eq!(
            json_string(&log[0]["metadata"]),
            json!({"source_profile_id": sid})
        );
        assert_eq!(json_string(&log[0]["new_values"]), c);

        // The source is untouched: same body, version, history.
        assert_eq!(get_profile(&s, sid).await, src);
        assert_eq!(audit_of(&s, sid).await, src_audit);
        assert_eq!(versions_of(&s, sid).await, src_versions);
        s.stop().await;
    }
);

store_test!(
    clone_description_can_be_overridden,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let sid = id_of(&create(&s, rich("Src")).await);
        let r = clone_of(&s, sid, json!({"name": "With desc", "description": "Mine"})).await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.body["access_profile"]["description"], "Mine");
        let r = clone_of(&s, sid, json!({"name": "Empty desc", "description": ""})).await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.body["access_profile"]["description"], "");
        // A source without description gives a clone without one.
        let bare = id_of(&create(&s, minimal("Bare")).await);
        let r = clone_of(&s, bare, json!({"name": "Bare copy"})).await;
        assert_eq!(r.body["access_profile"]["description"], Value::Null);
        // The name is trimmed like any name.
        let r = clone_of(&s, bare, json!({"name": "  Trimmed  "})).await;
        assert_eq!(r.body["access_profile"]["name"], "Trimmed");
        s.stop().await;
    }
);

store_test!(clone_has_no_roles_and_no_users, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    let sid = id_of(&create(&s, rich("Held")).await);
    let r = s
        .post(
            &profiles(&format!("/{sid}/roles")),
            json!({"role_ids": [2], "is_default": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = s
        .post(
            &format!("{G}/users"),
            json!({"name": "Ada", "email": "ada@example.com", "role_id": 2}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let detail = s.get(&profiles(&format!("/{sid}"))).await;
    assert_eq!(detail.body["user_count"], 1);
    let roles = detail.body["roles"].as_array().unwrap();
    assert_eq!(roles.len(), 1);
    assert_eq!(roles[0]["role_id"], 2);
    assert_eq!(roles[0]["role_name"], "Developer");
    assert_eq!(roles[0]["is_default"], true);
    assert_eq!(roles[0]["access_profile_id"], sid);
    assert_eq!(detail.body["access_profile"]["is_active"], true);

    let r = clone_of(&s, sid, json!({"name": "Unheld"})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let c = r.body["access_profile"].clone();
    assert_eq!(c["is_active"], false);
    let g = s.get(&profiles(&format!("/{}", id_of(&c)))).await;
    assert_eq!(g.body["roles"], json!([]));
    assert_eq!(g.body["user_count"], 0);
    // The source keeps its role and its user.
    let detail_after = s.get(&profiles(&format!("/{sid}"))).await;
    assert_eq!(detail_after.body, detail.body);
    s.stop().await;
});

store_test!(clone_refuses_bad_requests, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    let sid = id_of(&create(&s, minimal("Taken")).await);
    create(&s, minimal("Other")).await;
    let before_audit = audit_count(&s).await;
    for body in [
        json!({}),
        json!({"name": null}),
        json!({"name": ""}),
        json!({"name": "   "}),
        json!({"name": "n".repeat(256)}),
        json!({"description": "no name"}),
    ] {
        assert_invalid(&clone_of(&s, sid, body).await, &["name"]);
    }
    assert_invalid(&clone_of(&s, sid, json!({"name": 5})).await, &["name"]);
    assert_invalid(
        &clone_of(&s, sid, json!({"name": "X", "tags": []})).await,
        &["tags"],
    );
    let r = s
        .raw("POST", &profiles(&format!("/{sid}/clone")), b"{".to_vec())
        .await;
    assert_error(&r, 400, "invalid_request");
    for taken in ["Taken", "taken", " OTHER "] {
        assert_error(
            &clone_of(&s, sid, json!({"name": taken})).await,
            409,
            "conflict",
        );
    }
    assert_error(
        &clone_of(&s, 999, json!({"name": "Fresh"})).await,
        404,
        "not_found",
    );
    assert_eq!(profile_count(&s).await, 2);
    assert_eq!(audit_count(&s).await, before_audit);
    // The name refused above is still free.
    assert_eq!(
        clone_of(&s, sid, json!({"name": "Fresh"})).await.status,
        201
    );
    s.stop().await;
});

store_test!(
    clone_of_deleted_profile_is_not_found,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let sid = id_of(&create(&s, minimal("Gone")).await);
        assert_eq!(s.delete(&profiles(&format!("/{sid}"))).await.status, 200);
        assert_error(
            &clone_of(&s, sid, json!({"name": "Ghost"})).await,
            404,
            "not_found",
        );
        assert_eq!(profile_count(&s).await, 0);
        s.stop().await;
    }
);

store_test!(
    clone_of_a_clone_records_its_own_source,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let a = id_of(&create(&s, rich("A")).await);
        let b = id_of(&clone_of(&s, a, json!({"name": "B"})).await.body["access_profile"]);
        let c = id_of(&clone_of(&s, b, json!({"name": "C"})).await.body["access_profile"]);
        let log = audit_of(&s, c).await;
        assert_eq!(
            json_string(&log[0]["metadata"]),
            json!({"source_profile_id": b})
        );
        assert_eq!(get_profile(&s, b).await["version"], 1);
        s.stop().await;
    }
);

// ---- versions ---------------------------------------------------------------------

store_test!(
    versions_grow_with_each_change_newest_first,
    |db: TestDb| async move {
        let clock = clock_at("2026-11-27T09:00:00Z");
        let s = TestServer::start_with(TestServer::config(&db), Some(clock.clone())).await;
        let p = create(&s, rich("History")).await;
        let id = id_of(&p);
        let mut states = vec![p];
        let changes = [
            json!({"description": "second"}),
            json!({"name": "History renamed", "tags": []}),
            json!({"rate_limit": null}),
            json!({"budgets": [{"max_limit": 1, "reset_duration": "1h"}]}),
        ];
        for (i, change) in changes.into_iter().enumerate() {
            clock.advance(Duration::minutes(1));
            let r = s.put(&profiles(&format!("/{id}")), change).await;
            assert_eq!(r.status, 200, "{}", r.text);
            states.push(r.body["access_profile"].clone());
            assert_eq!(versions_of(&s, id).await.len(), i + 2);
        }
        // Activation and no-op writes add no version.
        assert_eq!(
            s.put(&profiles(&format!("/{id}/activate")), json!({}))
                .await
                .status,
            200
        );
        assert_eq!(
            s.put(&profiles(&format!("/{id}")), json!({})).await.status,
            200
        );

        let versions = versions_of(&s, id).await;
        assert_eq!(versions.len(), 5);
        let numbers: Vec<i64> = versions
            .iter()
            .map(|v| v["version"].as_i64().unwrap())
            .collect();
        assert_eq!(numbers, [5, 4, 3, 2, 1], "newest first");
        for v in &versions {
            let n = v["version"].as_i64().unwrap() as usize;
            let state = &states[n - 1];
            assert_eq!(v["access_profile_id"], id);
            assert_eq!(v["name"], state["name"]);
            assert_eq!(v["description"], state["description"]);
            assert_eq!(v["changed_by"], "token");
            assert_eq!(v["created_at"], state["updated_at"]);
            assert!(v["id"].as_i64().unwrap() > 0);
            assert!(v["snapshot"].is_string(), "snapshot is a JSON string");
            assert_eq!(
                json_string(&v["snapshot"]),
                *state,
                "snapshot of version {n}"
            );
            // The single-version route gives the same entry.
            let one = s.get(&profiles(&format!("/{id}/versions/{n}"))).await;
            assert_eq!(one.status, 200, "{}", one.text);
            assert_eq!(one.body["version"], *v);
        }
        // Version ids grow with version numbers.
        let ids: Vec<i64> = versions.iter().map(|v| v["id"].as_i64().unwrap()).collect();
        assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
        s.stop().await;
    }
);

store_test!(unknown_version_is_not_found, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    let id = id_of(&create(&s, minimal("V")).await);
    for n in ["2", "99", "9223372036854775807"] {
        assert_error(
            &s.get(&profiles(&format!("/{id}/versions/{n}"))).await,
            404,
            "not_found",
        );
    }
    assert_error(&s.get(&profiles("/42/versions")).await, 404, "not_found");
    assert_error(&s.get(&profiles("/42/versions/1")).await, 404, "not_found");
    assert_error(
        &s.get(&profiles(&format!("/{id}/versions/one"))).await,
        400,
        "invalid_request",
    );
    let r = s.get(&profiles(&format!("/{id}/versions/0"))).await;
    assert!(matches!(r.status, 400 | 404), "{}", r.text);
    s.stop().await;
});

store_test!(versions_are_kept_per_profile, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    let a = id_of(&create(&s, minimal("A")).await);
    let b = id_of(&create(&s, minimal("B")).await);
    s.put(&profiles(&format!("/{a}")), json!({"description": "a2"}))
        .await;
    s.put(&profiles(&format!("/{a}")), json!({"description": "a3"}))
        .await;
    assert_eq!(versions_of(&s, a).await.len(), 3);
    let vb = versions_of(&s, b).await;
    assert_eq!(vb.len(), 1);
    assert_eq!(vb[0]["access_profile_id"], b);
    assert_error(
        &s.get(&profiles(&format!("/{b}/versions/2"))).await,
        404,
        "not_found",
    );
    s.stop().await;
});

// ---- audit log -----------------------------------------------------------------------

/// Creates a profile and walks it through create, update, activate,
/// deactivate, rename; returns its id.
async fn busy_profile(s: &TestServer, name: &str) -> i64 {
    let id = id_of(&create(s, rich(name)).await);
    let put = |body: Value| async move {
        let r = s.put(&profiles(&format!("/{id}")), body).await;
        assert_eq!(r.status, 200, "{}", r.text);
    };
    put(json!({"description": "changed", "rate_limit": null})).await;
    assert_eq!(
        s.put(&profiles(&format!("/{id}/activate")), json!({}))
            .await
            .status,
        200
    );
    assert_eq!(
        s.put(&profiles(&format!("/{id}/deactivate")), json!({}))
            .await
            .status,
        200
    );
    put(json!({"name": format!("{name} v3")})).await;
    id
}

store_test!(
    audit_log_records_each_write_newest_first,
    |db: TestDb| async move {
        let clock = clock_at("2026-11-27T09:00:00Z");
        let s = TestServer::start_with(TestServer::config(&db), Some(clock.clone())).await;
        let created = create(&s, rich("Audited")).await;
        let id = id_of(&created);
        clock.advance(Duration::seconds(10));
        let r = s
            .put(
                &profiles(&format!("/{id}")),
                json!({"description": "changed", "rate_limit": null}),
            )
            .await;
        assert_eq!(r.status, 200);
        clock.advance(Duration::seconds(10));
        s.put(&profiles(&format!("/{id}/activate")), json!({}))
            .await;
        clock.advance(Duration::seconds(10));
        s.put(&profiles(&format!("/{id}/deactivate")), json!({}))
            .await;

        let r = s.get(&profiles(&format!("/{id}/audit-logs"))).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["total_count"], 4);
        let log = r.body["audit_logs"].as_array().unwrap();
        let actions: Vec<&str> = log.iter().map(|e| e["action"].as_str().unwrap()).collect();
        assert_eq!(actions, ["deactivate", "activate", "update", "create"]);
        let times: Vec<&str> = log
            .iter()
            .map(|e| e["created_at"].as_str().unwrap())
            .collect();
        assert_eq!(
            times,
            [
                "2026-11-27T09:00:30Z",
                "2026-11-27T09:00:20Z",
                "2026-11-27T09:00:10Z",
                "2026-11-27T09:00:00Z"
            ]
        );
        for e in log {
            assert_eq!(e["access_profile_id"], id);
            assert_eq!(e["user_id"], Value::Null);
            assert_eq!(e["actor"], "token");
            assert!(e["id"].as_i64().unwrap() > 0);
            assert_eq!(e["metadata"], Value::Null);
            let keys: Vec<&String> = e.as_object().unwrap().keys().collect();
            for k in [
                "id",
                "access_profile_id",
                "user_id",
                "actor",
                "action",
                "previous_values",
                "new_values",
                "metadata",
                "created_at",
            ] {
                assert!(keys.iter().any(|x| *x == k), "{k} missing");
            }
        }
        // create: the whole new profile, no previous values.
        assert_eq!(log[3]["previous_values"], Value::Null);
        assert_eq!(json_string(&log[3]["new_values"]), created);
        // update: only the changed fields, before and after.
        let prev = json_string(&log[2]["previous_values"]);
        let new = json_string(&log[2]["new_values"]);
        let mut keys: Vec<&String> = prev.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["description", "rate_limit"]);
        assert_eq!(prev["description"], "Everything set");
        assert_eq!(prev["rate_limit"], created["rate_limit"]);
        assert_eq!(new, json!({"description": "changed", "rate_limit": null}));
        // activation
        assert_eq!(
            json_string(&log[1]["previous_values"]),
            json!({"is_active": false})
        );
        assert_eq!(
            json_string(&log[1]["new_values"]),
            json!({"is_active": true})
        );
        assert_eq!(
            json_string(&log[0]["previous_values"]),
            json!({"is_active": true})
        );
        assert_eq!(
            json_string(&log[0]["new_values"]),
            json!({"is_active": false})
        );
        s.stop().await;
    }
);

store_test!(
    audit_log_filters_by_action_and_user,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let a = busy_profile(&s, "A").await;
        let b = busy_profile(&s, "B").await;
        // Per profile.
        let r = s
            .get(&profiles(&format!("/{a}/audit-logs?action=update")))
            .await;
        assert_eq!(r.body["total_count"], 2);
        let log = r.body["audit_logs"].as_array().unwrap();
        assert!(
            log.iter()
                .all(|e| e["action"] == "update" && e["access_profile_id"] == a)
        );
        let r = s
            .get(&profiles(&format!("/{b}/audit-logs?action=activate")))
            .await;
        assert_eq!(r.body["total_count"], 1);
        assert_eq!(r.body["audit_logs"][0]["access_profile_id"], b);
        let r = s
            .get(&profiles(&format!("/{a}/audit-logs?action=delete")))
            .await;
        assert_eq!(r.body["total_count"], 0);
        assert_eq!(r.body["audit_logs"], json!([]));
        // Globally.
        let r = s.get(&profiles("/audit-logs?action=create")).await;
        assert_eq!(r.body["total_count"], 2);
        let ids: Vec<i64> = r.body["audit_logs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["access_profile_id"].as_i64().unwrap())
            .collect();
        assert_eq!(ids, [b, a], "newest first");
        // By user: entries written for a user carry its id.
        let r = s
            .post(
                &profiles(&format!("/{a}/roles")),
                json!({"role_ids": [3], "is_default": true}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let r = s
            .post(
                &format!("{G}/users"),
                json!({"name": "Lin", "email": "lin@example.com", "role_id": 3}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let user_id = r.body["user"]["id"].as_str().unwrap().to_string();
        let r = s
            .get(&profiles(&format!("/audit-logs?user_id={user_id}")))
            .await;
        assert!(r.body["total_count"].as_i64().unwrap() >= 1, "{}", r.text);
        assert!(
            r.body["audit_logs"]
                .as_array()
                .unwrap()
                .iter()
                .all(|e| e["user_id"] == user_id.as_str())
        );
        let r = s
            .get(&profiles(&format!(
                "/{a}/audit-logs?user_id={user_id}&action=assign_user"
            )))
            .await;
        assert_eq!(r.body["total_count"], 1, "{}", r.text);
        assert_eq!(r.body["audit_logs"][0]["access_profile_id"], a);
        let r = s
            .get(&profiles(&format!("/{b}/audit-logs?user_id={user_id}")))
            .await;
        assert_eq!(r.body["total_count"], 0);
        let r = s.get(&profiles("/audit-logs?user_id=nobody")).await;
        assert_eq!(r.body["total_count"], 0);
        // Filter values are data, not SQL.
        let r = s
            .get(&profiles("/audit-logs?action=create'%20OR%20'1'='1"))
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["total_count"], 0);
        s.stop().await;
    }
);

store_test!(
    audit_log_pages_with_limit_and_offset,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let id = busy_profile(&s, "Paged").await;
        let all = audit_of(&s, id).await;
        assert_eq!(all.len(), 5);
        let r = s.get(&profiles(&format!("/{id}/audit-logs?limit=2"))).await;
        assert_eq!(r.body["total_count"], 5);
        assert_eq!(r.body["audit_logs"].as_array().unwrap(), &all[0..2]);
        let r = s
            .get(&profiles(&format!("/{id}/audit-logs?limit=2&offset=2")))
            .await;
        assert_eq!(r.body["audit_logs"].as_array().unwrap(), &all[2..4]);
        let r = s
            .get(&profiles(&format!("/{id}/audit-logs?limit=2&offset=4")))
            .await;
        assert_eq!(r.body["audit_logs"].as_array().unwrap(), &all[4..5]);
        let r = s
            .get(&profiles(&format!("/{id}/audit-logs?offset=50")))
            .await;
        assert_eq!(r.body["audit_logs"], json!([]));
        assert_eq!(r.body["total_count"], 5);
        let r = s.get(&profiles("/audit-logs?limit=1&offset=1")).await;
        assert_eq!(r.body["audit_logs"].as_array().unwrap(), &all[1..2]);
        assert_eq!(r.body["total_count"], 5);
        // Large values are clamped, malformed ones refused.
        let r = s
            .get(&profiles(
                "/audit-logs?limit=100000&offset=99999999999999999999",
            ))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["audit_logs"], json!([]));
        for q in ["limit=-1", "offset=-5", "limit=ten", "offset=1.5"] {
            let what = q.split('=').next().unwrap();
            assert_invalid(
                &s.get(&profiles(&format!("/audit-logs?{q}"))).await,
                &[what],
            );
            assert_invalid(
                &s.get(&profiles(&format!("/{id}/audit-logs?{q}"))).await,
                &[what],
            );
        }
        s.stop().await;
    }
);

store_test!(audit_log_default_limit_is_fifty, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    let id = id_of(&create(&s, minimal("Chatty")).await);
    for i in 0..55 {
        let r = s
            .put(
                &profiles(&format!("/{id}")),
                json!({"description": format!("{i}")}),
            )
            .await;
        assert_eq!(r.status, 200);
    }
    let r = s.get(&profiles(&format!("/{id}/audit-logs"))).await;
    assert_eq!(r.body["audit_logs"].as_array().unwrap().len(), 50);
    assert_eq!(r.body["total_count"], 56);
    let r = s.get(&profiles("/audit-logs?limit=1000")).await;
    assert_eq!(r.body["audit_logs"].as_array().unwrap().len(), 56);
    s.stop().await;
});

store_test!(global_audit_log_spans_profiles, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    let a = busy_profile(&s, "A").await;
    let b = id_of(&create(&s, minimal("B")).await);
    let c = id_of(&clone_of(&s, a, json!({"name": "C"})).await.body["access_profile"]);
    assert_eq!(s.delete(&profiles(&format!("/{b}"))).await.status, 200);
    let r = s.get(&profiles("/audit-logs")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["total_count"], 5 + 1 + 1 + 1);
    let log = r.body["audit_logs"].as_array().unwrap();
    let head: Vec<(i64, &str)> = log[..3]
        .iter()
        .map(|e| {
            (
                e["access_profile_id"].as_i64().unwrap(),
                e["action"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(head, [(b, "delete"), (c, "clone"), (b, "create")]);
    let ids: Vec<i64> = log.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    // Every legacy answer is the same.
    let legacy = s.get(&format!("{LEGACY}/access-profiles/audit-logs")).await;
    assert_eq!(legacy.body, r.body);
    s.stop().await;
});

store_test!(
    audit_of_unknown_profile_is_not_found,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        assert_error(&s.get(&profiles("/77/audit-logs")).await, 404, "not_found");
        let r = s.get(&profiles("/audit-logs")).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["total_count"], 0);
        assert_eq!(r.body["audit_logs"], json!([]));
        s.stop().await;
    }
);

store_test!(versions_and_audit_name_the_actor, |db: TestDb| async move {
    let mut config = TestServer::config(&db);
    config.admin.username = Some("alice".to_string());
    config.admin.password = Some("wonderland-42".to_string());
    let s = TestServer::start_with(config, None).await;
    let basic = |method: &str, path: String, body: Value| {
        s.client
            .request(method.parse().unwrap(), s.url(&path))
            .basic_auth("alice", Some("wonderland-42"))
            .json(&body)
    };
    let r = Reply::read(
        basic("POST", profiles(""), minimal("By Alice"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = id_of(&r.body["access_profile"]);
    let r = Reply::read(
        basic(
            "PUT",
            profiles(&format!("/{id}")),
            json!({"description": "alice"}),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200);
    // And one change with the token.
    assert_eq!(
        s.put(
            &profiles(&format!("/{id}")),
            json!({"description": "token"})
        )
        .await
        .status,
        200
    );
    let r = Reply::read(
        basic(
            "POST",
            profiles(&format!("/{id}/clone")),
            json!({"name": "Alice copy"}),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(r.status, 201);
    let log = audit_of(&s, id).await;
    let actors: Vec<&str> = log.iter().map(|e| e["actor"].as_str().unwrap()).collect();
    assert_eq!(actors, ["token", "alice", "alice"]);
    let versions = versions_of(&s, id).await;
    let by: Vec<&str> = versions
        .iter()
        .map(|v| v["changed_by"].as_str().unwrap())
        .collect();
    assert_eq!(by, ["token", "alice", "alice"]);
    let clone_log = s.get(&profiles("/audit-logs?action=clone")).await;
    assert_eq!(clone_log.body["audit_logs"][0]["actor"], "alice");
    s.stop().await;
});
