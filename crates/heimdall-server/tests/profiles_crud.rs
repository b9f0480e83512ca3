//! Access-profile templates over HTTP: create, read, list, update, delete,
//! activation — under both prefixes, on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use heimdall_testkit::{TestDb, TestServer, store_test};
use serde_json::{Value, json};

fn engineering() -> Value {
    json!({
        "name": "  Engineering  ",
        "description": "For engineers",
        "tags": ["team", " eng ", "team"],
        "provider_configs": [{
            "provider_name": "openai",
            "all_models_allowed": false,
            "allowed_models": ["gpt-4o-mini", "regex:gpt-4\\.1.*"],
            "budgets": [{"max_limit": 5, "reset_duration": "1d"}],
            "rate_limit": {"request_max_limit": 10, "request_reset_duration": "1m"}
        }],
        "budgets": [
            {"max_limit": 10.5, "reset_duration": "1d"},
            {"max_limit": 100, "reset_duration": "1Q", "reset_config": {"quarter_start_month": 4}}
        ],
        "rate_limit": {"token_max_limit": 1000, "token_reset_duration": "1h"},
        "calendar_aligned": true,
        "timezone": "Europe/Berlin",
        "auto_rotation_interval": "30d"
    })
}

store_test!(create_and_get_round_trip, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    let r = s.post(&format!("{G}/access-profiles"), engineering()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let p = &r.body["access_profile"];
    assert_eq!(p["id"], 1);
    assert_eq!(p["name"], "Engineering");
    assert_eq!(p["description"], "For engineers");
    assert_eq!(p["is_active"], false);
    assert_eq!(p["version"], 1);
    assert_eq!(p["tags"], json!(["team", "eng"]));
    assert_eq!(p["timezone"], "Europe/Berlin");
    assert_eq!(p["calendar_aligned"], true);
    assert_eq!(p["auto_rotation_interval"], 30_i64 * 86_400 * 1_000_000_000);
    assert!(p["next_rotation_at"].is_string());
    assert_eq!(p["last_rotation_at"], Value::Null);
    assert_eq!(p["budgets"][0]["max_limit"], 10.5);
    assert_eq!(p["budgets"][0]["reset_duration"], "1d");
    assert_eq!(p["budgets"][0]["scope"], "total");
    assert_eq!(p["budgets"][0]["current_usage"], 0.0);
    assert_eq!(p["budgets"][0]["last_reset"], Value::Null);
    assert_eq!(p["budgets"][1]["reset_config"]["quarter_start_month"], 4);
    assert_eq!(p["rate_limit"]["token_max_limit"], 1000);
    assert_eq!(p["rate_limit"]["token_reset_duration"], "1h");
    assert_eq!(p["rate_limit"]["request_max_limit"], Value::Null);
    assert_eq!(p["rate_limit"]["token_current_usage"], 0);
    assert_eq!(p["rate_limit"]["request_current_usage"], 0);
    assert!(p["rate_limit"]["id"].as_str().unwrap().len() >= 32);
    let pc = &p["provider_configs"][0];
    assert_eq!(pc["provider_name"], "openai");
    assert_eq!(pc["all_models_allowed"], false);
    assert_eq!(
        pc["allowed_models"],
        json!(["gpt-4o-mini", "regex:gpt-4\\.1.*"])
    );
    assert_eq!(pc["budgets"][0]["scope"], "provider:openai");
    assert_eq!(pc["rate_limit"]["request_max_limit"], 10);
    assert!(pc["id"].as_i64().unwrap() > 0);
    assert!(p["budgets"][0]["id"].as_str().unwrap().len() >= 32);
    assert_ne!(p["budgets"][0]["id"], p["budgets"][1]["id"]);
    for field in ["created_at", "updated_at"] {
        let t = p[field].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(t).is_ok() && t.ends_with('Z'),
            "{field} = {t}"
        );
    }

    let g = s.get(&format!("{G}/access-profiles/1")).await;
    assert_eq!(g.status, 200);
    assert_eq!(g.body["access_profile"], *p);
    assert_eq!(g.body["roles"], json!([]));
    assert_eq!(g.body["user_count"], 0);
    s.stop().await;
});

store_test!(ids_start_at_one_and_grow, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    for (i, name) in ["a", "b", "c"].iter().enumerate() {
        let p = create(&s, minimal(name)).await;
        assert_eq!(id_of(&p), i as i64 + 1);
    }
    s.stop().await;
});

store_test!(create_applies_defaults, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    let p = create(&s, minimal("Bare")).await;
    assert_eq!(p["description"], Value::Null);
    assert_eq!(p["tags"], json!([]));
    assert_eq!(p["provider_configs"], json!([]));
    assert_eq!(p["budgets"], json!([]));
    assert_eq!(p["rate_limit"], Value::Null);
    assert_eq!(p["calendar_aligned"], false);
    assert_eq!(p["timezone"], "UTC");
    assert_eq!(p["auto_rotation_interval"], 0);
    assert_eq!(p["next_rotation_at"], Value::Null);
    assert_eq!(p["mcp_tool_groups"], json!([]));
    assert_eq!(p["mcp_servers"], json!([]));
    assert_eq!(p["mcp_tool_overrides"], json!([]));
    assert_eq!(p["is_active"], false);
    assert_eq!(p["version"], 1);
    s.stop().await;
});

store_test!(create_keeps_every_policy_field, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    let p = create(&s, rich("Rich")).await;
    assert_eq!(p["mcp_tool_groups"], json!([{"tool_group_id": 7}]));
    assert_eq!(p["mcp_servers"], json!([{"mcp_server_id": "github"}]));
    assert_eq!(
        p["mcp_tool_overrides"],
        json!([{"mcp_client_id": "jira", "tool_name": "delete_issue", "action": "exclude"}])
    );
    assert_eq!(p["provider_configs"][1]["provider_name"], "anthropic");
    assert_eq!(p["provider_configs"][1]["all_models_allowed"], true);
    assert_eq!(p["provider_configs"][1]["rate_limit"], Value::Null);
    assert_ne!(
        p["provider_configs"][0]["id"],
        p["provider_configs"][1]["id"]
    );
    assert_eq!(p["rate_limit"]["request_max_limit"], 60);
    assert_eq!(p["rate_limit"]["request_reset_duration"], "1m");
    assert_eq!(get_profile(&s, id_of(&p)).await, p);
    s.stop().await;
});

store_test!(
    create_ignores_read_only_is_active_and_version,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let mut body = minimal("Sneaky");
        body["is_active"] = json!(true);
        body["version"] = json!(42);
        body["id"] = json!(99);
        body["created_at"] = json!("2000-01-01T00:00:00Z");
        let p = create(&s, body).await;
        assert_eq!(p["is_active"], false);
        assert_eq!(p["version"], 1);
        assert_eq!(p["id"], 1);
        assert_ne!(p["created_at"], "2000-01-01T00:00:00Z");
        s.stop().await;
    }
);

store_test!(get_unknown_profile_is_not_found, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    for prefix in PREFIXES {
        let r = s.get(&format!("{prefix}/access-profiles/999")).await;
        assert_error(&r, 404, "not_found");
    }
    create(&s, minimal("One")).await;
    assert_error(&s.get(&profiles("/2")).await, 404, "not_found");
    s.stop().await;
});

store_test!(
    get_rejects_ids_that_are_not_numbers,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        create(&s, minimal("One")).await;
        for bad in [
            "abc",
            "1.5",
            "1e3",
            "0x1",
            "1abc",
            "%20",
            "99999999999999999999999",
        ] {
            for prefix in PREFIXES {
                let r = s.get(&format!("{prefix}/access-profiles/{bad}")).await;
                assert_invalid(&r, &["id"]);
            }
        }
        for bad in ["0", "-1"] {
            let r = s.get(&profiles(&format!("/{bad}"))).await;
            assert!(matches!(r.status, 400 | 404), "{bad}: {}", r.text);
            assert_error(
                &r,
                r.status,
                if r.status == 400 {
                    "invalid_request"
                } else {
                    "not_found"
                },
            );
        }
        // Every route with an id refuses a non-number the same way.
        let cases: [(&str, String); 9] = [
            ("PUT", profiles("/x")),
            ("DELETE", profiles("/x")),
            ("PUT", profiles("/x/activate")),
            ("PUT", profiles("/x/deactivate")),
            ("POST", profiles("/x/clone")),
            ("GET", profiles("/x/versions")),
            ("GET", profiles("/x/versions/1")),
            ("GET", profiles("/1/versions/x")),
            ("GET", profiles("/x/audit-logs")),
        ];
        let before = audit_count(&s).await;
        for (method, path) in cases {
            let body = match method {
                "PUT" | "POST" => Some(json!({"name": "Other"})),
                _ => None,
            };
            let r = s.admin(method, &path, body).await;
            assert_error(&r, 400, "invalid_request");
        }
        assert_eq!(audit_count(&s).await, before);
        assert_eq!(profile_count(&s).await, 1);
        s.stop().await;
    }
);

store_test!(get_shows_roles_and_user_count, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    let p = create(&s, minimal("Plain")).await;
    for prefix in PREFIXES {
        let r = s
            .get(&format!("{prefix}/access-profiles/{}", id_of(&p)))
            .await;
        assert_eq!(r.status, 200);
        let keys: Vec<&String> = r.body.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 3, "{}", r.text);
        assert_eq!(r.body["roles"], json!([]));
        assert_eq!(r.body["user_count"], 0);
        assert_eq!(r.body["access_profile"], p);
    }
    s.stop().await;
});

store_test!(delete_then_get_is_not_found, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    let a = create(&s, minimal("A")).await;
    let b = create(&s, minimal("B")).await;
    let r = s.delete(&profiles(&format!("/{}", id_of(&a)))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body["message"].as_str().unwrap().len() > 5);
    assert_error(
        &s.get(&profiles(&format!("/{}", id_of(&a)))).await,
        404,
        "not_found",
    );
    assert_error(
        &s.delete(&profiles(&format!("/{}", id_of(&a)))).await,
        404,
        "not_found",
    );
    assert_error(&s.delete(&profiles("/999")).await, 404, "not_found");
    // The other profile is untouched, and the list no longer shows the deleted one.
    let list = s.get(&profiles("")).await;
    assert_eq!(list.body["total_count"], 1);
    assert_eq!(list.body["access_profiles"][0], b);
    // The name is free again.
    let again = create(&s, minimal("a")).await;
    assert_eq!(id_of(&again), 3, "ids are never reused");
    s.stop().await;
});

store_test!(
    delete_keeps_audit_and_removes_versions,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let p = create(&s, rich("Doomed")).await;
        let id = id_of(&p);
        let r = s
            .put(&profiles(&format!("/{id}")), json!({"description": "v2"}))
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(versions_of(&s, id).await.len(), 2);
        let before = audit_count(&s).await;
        assert_eq!(s.delete(&profiles(&format!("/{id}"))).await.status, 200);

        // Versions: the route answers 404, and the rows are gone from the store.
        assert_error(
            &s.get(&profiles(&format!("/{id}/versions"))).await,
            404,
            "not_found",
        );
        assert_error(
            &s.get(&profiles(&format!("/{id}/versions/1"))).await,
            404,
            "not_found",
        );
        let store = heimdall_store::Store::connect(&db.url).await.unwrap();
        assert!(store.list_versions(id).await.unwrap().is_empty());
        assert!(store.get_version(id, 1).await.unwrap().is_none());
        store.close().await;

        // Audit: one more entry, and every entry of the profile is still there.
        let all = s.get(&profiles("/audit-logs")).await;
        assert_eq!(all.body["total_count"], before + 1);
        let entries: Vec<&Value> = all.body["audit_logs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["access_profile_id"] == id)
            .collect();
        let actions: Vec<&str> = entries
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert_eq!(actions, ["delete", "update", "create"]);
        let prev = json_string(&entries[0]["previous_values"]);
        assert_eq!(prev["name"], "Doomed");
        assert_eq!(prev["description"], "v2");
        // The per-profile route answers 404 once the profile is gone.
        assert_error(
            &s.get(&profiles(&format!("/{id}/audit-logs"))).await,
            404,
            "not_found",
        );
        s.stop().await;
    }
);

store_test!(
    activate_and_deactivate_are_idempotent,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let p = create(&s, rich("Switch")).await;
        let id = id_of(&p);
        let path = |what: &str| profiles(&format!("/{id}/{what}"));

        let r = s.put(&path("activate"), json!({})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["access_profile"]["is_active"], true);
        assert_eq!(r.body["access_profile"]["version"], 1);
        let after_first = audit_count(&s).await;
        let r = s.put(&path("activate"), json!({})).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["access_profile"]["is_active"], true);
        assert_eq!(
            audit_count(&s).await,
            after_first,
            "second activate logs nothing"
        );
        assert_eq!(get_profile(&s, id).await["is_active"], true);

        let r = s.put(&path("deactivate"), json!({})).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["access_profile"]["is_active"], false);
        let after_deactivate = audit_count(&s).await;
        assert_eq!(after_deactivate, after_first + 1);
        let r = s.put(&path("deactivate"), json!({})).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["access_profile"]["is_active"], false);
        assert_eq!(audit_count(&s).await, after_deactivate);

        let log = audit_of(&s, id).await;
        let actions: Vec<&str> = log.iter().map(|e| e["action"].as_str().unwrap()).collect();
        assert_eq!(actions, ["deactivate", "activate", "create"]);
        assert_eq!(
            json_string(&log[1]["previous_values"]),
            json!({"is_active": false})
        );
        assert_eq!(
            json_string(&log[1]["new_values"]),
            json!({"is_active": true})
        );

        // Activation is not a change of the template: no new version.
        let now = get_profile(&s, id).await;
        assert_eq!(now["version"], 1);
        assert_eq!(versions_of(&s, id).await.len(), 1);
        // Everything else is as created.
        for key in ["name", "tags", "budgets", "provider_configs", "rate_limit"] {
            assert_eq!(now[key], p[key], "{key}");
        }
        s.stop().await;
    }
);

store_test!(
    activation_of_unknown_profile_is_not_found,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        for what in ["activate", "deactivate"] {
            assert_error(
                &s.put(&profiles(&format!("/5/{what}")), json!({})).await,
                404,
                "not_found",
            );
        }
        assert_eq!(audit_count(&s).await, 0);
        s.stop().await;
    }
);

store_test!(activation_works_without_a_body, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    let id = id_of(&create(&s, minimal("NoBody")).await);
    let r = s
        .admin("PUT", &profiles(&format!("/{id}/activate")), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["access_profile"]["is_active"], true);
    s.stop().await;
});

/// Runs every template route under `prefix` and checks the `Deprecation`
/// header on each answer.
async fn route_tour(s: &TestServer, prefix: &str) {
    let legacy = prefix == LEGACY;
    let check = |r: &heimdall_testkit::Reply, status: u16, what: &str| {
        assert_eq!(r.status, status, "{prefix} {what}: {}", r.text);
        assert_eq!(deprecated(r), legacy, "{prefix} {what}: Deprecation header");
    };
    let base = format!("{prefix}/access-profiles");
    let name = format!("Tour {}", if legacy { "legacy" } else { "governance" });

    let r = s.post(&base, rich(&name)).await;
    check(&r, 201, "create");
    let id = id_of(&r.body["access_profile"]);

    let r = s.get(&base).await;
    check(&r, 200, "list");
    assert!(
        r.body["access_profiles"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == id)
    );

    let r = s.get(&format!("{base}/{id}")).await;
    check(&r, 200, "get");
    assert_eq!(r.body["access_profile"]["name"], name);

    let r = s
        .put(&format!("{base}/{id}"), json!({"description": "toured"}))
        .await;
    check(&r, 200, "update");
    assert_eq!(r.body["access_profile"]["description"], "toured");
    assert_eq!(r.body["access_profile"]["version"], 2);

    let r = s.put(&format!("{base}/{id}/activate"), json!({})).await;
    check(&r, 200, "activate");
    assert_eq!(r.body["access_profile"]["is_active"], true);

    let r = s.put(&format!("{base}/{id}/deactivate"), json!({})).await;
    check(&r, 200, "deactivate");
    assert_eq!(r.body["access_profile"]["is_active"], false);

    let r = s
        .post(
            &format!("{base}/{id}/clone"),
            json!({"name": format!("{name} copy")}),
        )
        .await;
    check(&r, 201, "clone");
    let clone_id = id_of(&r.body["access_profile"]);

    let r = s.get(&format!("{base}/{id}/versions")).await;
    check(&r, 200, "versions");
    assert_eq!(r.body["versions"].as_array().unwrap().len(), 2);

    let r = s.get(&format!("{base}/{id}/versions/2")).await;
    check(&r, 200, "version");
    assert_eq!(r.body["version"]["version"], 2);

    let r = s.get(&format!("{base}/{id}/audit-logs")).await;
    check(&r, 200, "profile audit");
    assert_eq!(r.body["total_count"], 4);

    let r = s.get(&format!("{base}/audit-logs")).await;
    check(&r, 200, "global audit");
    assert!(r.body["total_count"].as_i64().unwrap() >= 5);

    // Errors too.
    let r = s.get(&format!("{base}/424242")).await;
    check(&r, 404, "unknown id");
    assert_error(&r, 404, "not_found");
    let r = s.post(&base, json!({"name": name})).await;
    check(&r, 409, "duplicate");
    assert_error(&r, 409, "conflict");

    let r = s.delete(&format!("{base}/{clone_id}")).await;
    check(&r, 200, "delete");
    let r = s.delete(&format!("{base}/{id}")).await;
    check(&r, 200, "delete");
}

store_test!(
    every_route_answers_under_both_prefixes,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        route_tour(&s, G).await;
        route_tour(&s, LEGACY).await;
        s.stop().await;
    }
);

store_test!(
    both_prefixes_share_the_same_profiles,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let r = s
            .post(&format!("{LEGACY}/access-profiles"), minimal("Old client"))
            .await;
        assert_eq!(r.status, 201);
        assert!(deprecated(&r));
        let id = id_of(&r.body["access_profile"]);
        let g = s.get(&profiles(&format!("/{id}"))).await;
        assert_eq!(g.status, 200);
        assert!(!deprecated(&g));
        assert_eq!(g.body["access_profile"], r.body["access_profile"]);
        let l = s.get(&format!("{LEGACY}/access-profiles/{id}")).await;
        assert_eq!(l.body, g.body);
        s.stop().await;
    }
);

store_test!(
    delete_is_refused_while_a_user_holds_a_copy,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let id = id_of(&create(&s, rich("Held")).await);
        let r = s
            .post(
                &profiles(&format!("/{id}/roles")),
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
        let user_id = r.body["user"]["id"].as_str().unwrap().to_string();
        let before = s.get(&profiles(&format!("/{id}"))).await;
        assert_eq!(before.body["user_count"], 1);
        let audit_before = audit_count(&s).await;

        for prefix in PREFIXES {
            let r = s.delete(&format!("{prefix}/access-profiles/{id}")).await;
            assert_error(&r, 409, "conflict");
        }
        assert_eq!(s.get(&profiles(&format!("/{id}"))).await.body, before.body);
        assert_eq!(versions_of(&s, id).await.len(), 1);
        assert_eq!(audit_count(&s).await, audit_before);

        // Once the user is gone, the template can go.
        let r = s.delete(&format!("{G}/users/{user_id}")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(
            s.get(&profiles(&format!("/{id}"))).await.body["user_count"],
            0
        );
        let r = s.delete(&profiles(&format!("/{id}"))).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_error(&s.get(&profiles(&format!("/{id}"))).await, 404, "not_found");
        s.stop().await;
    }
);
