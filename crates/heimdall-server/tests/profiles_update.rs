//! Partial update of a template (`PUT G/access-profiles/{id}`): omitted
//! fields are kept, `null` clears `description` and removes `rate_limit`,
//! arrays replace, every real change adds one version and one audit entry,
//! and a PUT that changes nothing writes nothing. On SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use common::*;
use heimdall_core::clock::{Clock, ManualClock};
use heimdall_testkit::{TestDb, TestServer, store_test};
use serde_json::{Value, json};

fn clock_at(t: &str) -> Arc<ManualClock> {
    Arc::new(ManualClock::new(
        DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc),
    ))
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

async fn put(s: &TestServer, id: i64, patch: Value) -> Value {
    let r = s.put(&profiles(&format!("/{id}")), patch.clone()).await;
    assert_eq!(r.status, 200, "PUT {patch}: {}", r.text);
    let p = r.body["access_profile"].clone();
    assert_eq!(
        get_profile(s, id).await,
        p,
        "the response is what a GET shows"
    );
    p
}

/// Every key of `a` and `b` except `skip` is equal.
fn same_except(a: &Value, b: &Value, skip: &[&str]) {
    for (k, v) in a.as_object().unwrap() {
        if !skip.contains(&k.as_str()) {
            assert_eq!(&b[k], v, "field {k} changed");
        }
    }
}

store_test!(omitted_fields_keep_their_values, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    let before = create(&s, rich("Keep")).await;
    let id = id_of(&before);
    let after = put(&s, id, json!({"description": "only this"})).await;
    assert_eq!(after["description"], "only this");
    assert_eq!(after["version"], 2);
    same_except(&before, &after, &["description", "version", "updated_at"]);
    // Ids of untouched budgets, rate limits and configs are stable.
    assert_eq!(after["budgets"], before["budgets"]);
    assert_eq!(after["provider_configs"], before["provider_configs"]);
    assert_eq!(after["rate_limit"], before["rate_limit"]);
    s.stop().await;
});

store_test!(each_field_can_be_updated_alone, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    let mut current = create(&s, rich("Fields")).await;
    let id = id_of(&current);
    let changes = [
        ("name", json!("Fields renamed")),
        ("description", json!("new words")),
        ("tags", json!(["x", "y"])),
        ("calendar_aligned", json!(false)),
        ("timezone", json!("Asia/Tokyo")),
        (
            "mcp_tool_groups",
            json!([{"tool_group_id": 1}, {"tool_group_id": 2}]),
        ),
        ("mcp_servers", json!([{"mcp_server_id": "slack"}])),
        (
            "mcp_tool_overrides",
            json!([{"mcp_client_id": "jira", "tool_name": "read", "action": "include"}]),
        ),
    ];
    for (i, (field, value)) in changes.into_iter().enumerate() {
        let after = put(&s, id, json!({ field: value.clone() })).await;
        assert_eq!(after[field], value, "{field}");
        assert_eq!(after["version"], i as i64 + 2, "{field} adds one version");
        same_except(&current, &after, &[field, "version", "updated_at"]);
        current = after;
    }
    assert_eq!(versions_of(&s, id).await.len(), 9);
    s.stop().await;
});

store_test!(
    policy_lists_replace_the_whole_list,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let before = create(&s, rich("Lists")).await;
        let id = id_of(&before);

        let after = put(
            &s,
            id,
            json!({"budgets": [{"max_limit": 7, "reset_duration": "1w"}]}),
        )
        .await;
        let budgets = after["budgets"].as_array().unwrap();
        assert_eq!(budgets.len(), 1);
        assert_eq!(budgets[0]["max_limit"], 7.0);
        assert_eq!(budgets[0]["reset_duration"], "1w");
        assert_eq!(after["provider_configs"], before["provider_configs"]);

        let after = put(
            &s,
            id,
            json!({"provider_configs": [{"provider_name": "groq", "all_models_allowed": true}]}),
        )
        .await;
        let pcs = after["provider_configs"].as_array().unwrap();
        assert_eq!(pcs.len(), 1);
        assert_eq!(pcs[0]["provider_name"], "groq");
        assert_eq!(pcs[0]["budgets"], json!([]));
        assert_eq!(pcs[0]["rate_limit"], Value::Null);

        let after = put(&s, id, json!({"tags": ["only"]})).await;
        assert_eq!(after["tags"], json!(["only"]));

        // Empty lists clear.
        let after = put(&s, id, json!({"budgets": [], "provider_configs": [], "tags": [], "mcp_servers": [], "mcp_tool_groups": [], "mcp_tool_overrides": []})).await;
        for key in [
            "budgets",
            "provider_configs",
            "tags",
            "mcp_servers",
            "mcp_tool_groups",
            "mcp_tool_overrides",
        ] {
            assert_eq!(after[key], json!([]), "{key}");
        }
        assert_eq!(after["version"], 5);
        s.stop().await;
    }
);

store_test!(null_rate_limit_removes_it, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    let before = create(&s, rich("RL")).await;
    let id = id_of(&before);
    assert!(before["rate_limit"].is_object());
    let after = put(&s, id, json!({"rate_limit": null})).await;
    assert_eq!(after["rate_limit"], Value::Null);
    assert_eq!(after["version"], 2);
    same_except(&before, &after, &["rate_limit", "version", "updated_at"]);
    // Removing it again changes nothing.
    let again = put(&s, id, json!({"rate_limit": null})).await;
    assert_eq!(again, after);
    // A new one can be set.
    let after = put(
        &s,
        id,
        json!({"rate_limit": {"request_max_limit": 3, "request_reset_duration": "1s"}}),
    )
    .await;
    assert_eq!(after["rate_limit"]["request_max_limit"], 3);
    assert_eq!(after["rate_limit"]["token_max_limit"], Value::Null);
    assert_eq!(after["version"], 3);
    s.stop().await;
});

store_test!(null_description_clears_it, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    let before = create(&s, rich("Desc")).await;
    let id = id_of(&before);
    // Omitted: kept.
    let after = put(&s, id, json!({"tags": ["a"]})).await;
    assert_eq!(after["description"], "Everything set");
    let after = put(&s, id, json!({"description": null})).await;
    assert_eq!(after["description"], Value::Null);
    assert_eq!(after["version"], 3);
    // Empty string is a value, distinct from null.
    let after = put(&s, id, json!({"description": ""})).await;
    assert_eq!(after["description"], "");
    assert_eq!(after["version"], 4);
    s.stop().await;
});

store_test!(empty_put_changes_nothing, |db: TestDb| async move {
    let clock = clock_at("2026-11-27T09:00:00Z");
    let s = TestServer::start_with(TestServer::config(&db), Some(clock.clone())).await;
    let before = create(&s, rich("Still")).await;
    let id = id_of(&before);
    let audit_before = audit_count(&s).await;
    clock.advance(Duration::hours(1));
    let after = put(&s, id, json!({})).await;
    assert_eq!(after, before, "nothing changes, not even updated_at");
    assert_eq!(audit_count(&s).await, audit_before);
    assert_eq!(versions_of(&s, id).await.len(), 1);
    s.stop().await;
});

store_test!(
    put_with_current_values_changes_nothing,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let before = create(&s, rich("Same")).await;
        let id = id_of(&before);
        let audit_before = audit_count(&s).await;
        // The request that created it, sent again (name padded, tags repeated).
        let mut body = rich("  Same ");
        body["auto_rotation_interval"] = json!(30_i64 * 86_400 * 1_000_000_000);
        let after = put(&s, id, body).await;
        assert_eq!(after, before);
        let after = put(&s, id, json!({"name": "Same", "calendar_aligned": true, "timezone": "Europe/Berlin", "auto_rotation_interval": "720h"})).await;
        assert_eq!(after, before);
        assert_eq!(audit_count(&s).await, audit_before);
        assert_eq!(versions_of(&s, id).await.len(), 1);
        s.stop().await;
    }
);

store_test!(
    read_back_sent_as_put_changes_nothing,
    |db: TestDb| async move {
        // A clock with milliseconds, as the real one has.
        let clock = clock_at("2026-11-27T09:00:00.123Z");
        let s = TestServer::start_with(TestServer::config(&db), Some(clock.clone())).await;
        let p = create(&s, rich("Round trip")).await;
        let id = id_of(&p);
        assert_eq!(
            s.put(&profiles(&format!("/{id}/activate")), json!({}))
                .await
                .status,
            200
        );
        clock.advance(Duration::milliseconds(1_500));
        let read = get_profile(&s, id).await;
        let audit_before = audit_count(&s).await;
        let after = put(&s, id, read.clone()).await;
        assert_eq!(after, read);
        assert_eq!(
            audit_count(&s).await,
            audit_before,
            "a read-back is not a change"
        );
        assert_eq!(versions_of(&s, id).await.len(), 1);
        // Also on a profile without rotation and with nulls.
        let bare = create(&s, minimal("Bare")).await;
        let read = get_profile(&s, id_of(&bare)).await;
        let after = put(&s, id_of(&bare), read.clone()).await;
        assert_eq!(after, read);
        assert_eq!(
            audit_count(&s).await,
            audit_before + 1,
            "only the create of Bare"
        );
        s.stop().await;
    }
);

store_test!(
    read_back_with_one_change_changes_only_that,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let p = create(&s, rich("Edit me")).await;
        let id = id_of(&p);
        let mut body = get_profile(&s, id).await;
        body["budgets"][0]["max_limit"] = json!(99);
        let after = put(&s, id, body).await;
        assert_eq!(after["budgets"][0]["max_limit"], 99.0);
        assert_eq!(
            after["budgets"][0]["id"], p["budgets"][0]["id"],
            "same owner and duration keep the id"
        );
        assert_eq!(after["version"], 2);
        same_except(&p, &after, &["budgets", "version", "updated_at"]);
        let log = audit_of(&s, id).await;
        assert_eq!(log.len(), 2);
        let prev = json_string(&log[0]["previous_values"]);
        let new = json_string(&log[0]["new_values"]);
        assert_eq!(
            prev.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["budgets"]
        );
        assert_eq!(
            new.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["budgets"]
        );
        assert_eq!(prev["budgets"][0]["max_limit"], 10.5);
        assert_eq!(new["budgets"][0]["max_limit"], 99.0);
        s.stop().await;
    }
);

store_test!(version_grows_once_per_change, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    let id = id_of(&create(&s, minimal("Counter")).await);
    for i in 0..5 {
        let after = put(&s, id, json!({"description": format!("rev {i}")})).await;
        assert_eq!(after["version"], i + 2);
    }
    // A PUT that changes several fields at once is one change.
    let after = put(&s, id, json!({"description": "multi", "tags": ["a"], "budgets": [{"max_limit": 1, "reset_duration": "1d"}]})).await;
    assert_eq!(after["version"], 7);
    assert_eq!(versions_of(&s, id).await.len(), 7);
    assert_eq!(audit_of(&s, id).await.len(), 7);
    s.stop().await;
});

store_test!(updated_at_moves_only_on_change, |db: TestDb| async move {
    let clock = clock_at("2026-11-27T09:00:00Z");
    let s = TestServer::start_with(TestServer::config(&db), Some(clock.clone())).await;
    let p = create(&s, minimal("Times")).await;
    let id = id_of(&p);
    assert_eq!(p["created_at"], "2026-11-27T09:00:00Z");
    assert_eq!(p["updated_at"], "2026-11-27T09:00:00Z");
    clock.advance(Duration::minutes(5));
    let after = put(&s, id, json!({"name": "Times"})).await;
    assert_eq!(after["updated_at"], "2026-11-27T09:00:00Z");
    let after = put(&s, id, json!({"name": "Times 2"})).await;
    assert_eq!(after["updated_at"], "2026-11-27T09:05:00Z");
    assert_eq!(after["created_at"], "2026-11-27T09:00:00Z");
    s.stop().await;
});

store_test!(
    rotation_interval_change_reschedules,
    |db: TestDb| async move {
        let clock = clock_at("2026-11-27T09:00:00Z");
        let s = TestServer::start_with(TestServer::config(&db), Some(clock.clone())).await;
        let id = id_of(&create(&s, minimal("Rotating")).await);
        clock.advance(Duration::hours(2));
        let after = put(&s, id, json!({"auto_rotation_interval": "12h"})).await;
        assert_eq!(after["auto_rotation_interval"], 12_i64 * 3_600_000_000_000);
        assert_eq!(
            after["next_rotation_at"],
            rfc3339(clock.now() + Duration::hours(12))
        );
        assert_eq!(after["version"], 2, "the interval is policy");
        // Moving only the next rotation is not a new version, but is audited.
        let audit_before = audit_count(&s).await;
        let after = put(&s, id, json!({"next_rotation_at": "2026-12-24T18:00:00Z"})).await;
        assert_eq!(after["next_rotation_at"], "2026-12-24T18:00:00Z");
        assert_eq!(after["version"], 2);
        assert_eq!(audit_count(&s).await, audit_before + 1);
        // A time in the past is refused.
        let r = s
            .put(
                &profiles(&format!("/{id}")),
                json!({"next_rotation_at": "2026-11-27T08:00:00Z"}),
            )
            .await;
        assert_invalid(&r, &["next_rotation_at"]);
        // Turning it off clears the schedule.
        for off in [json!(""), json!(0)] {
            put(&s, id, json!({"auto_rotation_interval": "1d"})).await;
            let after = put(&s, id, json!({"auto_rotation_interval": off})).await;
            assert_eq!(after["auto_rotation_interval"], 0);
            assert_eq!(after["next_rotation_at"], Value::Null);
        }
        s.stop().await;
    }
);

store_test!(
    update_of_unknown_profile_is_not_found,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let r = s.put(&profiles("/3"), json!({"description": "x"})).await;
        assert_error(&r, 404, "not_found");
        // Validation of the body does not reveal anything either way.
        let r = s.put(&profiles("/3"), json!({})).await;
        assert_error(&r, 404, "not_found");
        assert_eq!(audit_count(&s).await, 0);
        assert_eq!(profile_count(&s).await, 0);
        s.stop().await;
    }
);
