//! Propagation of a template to its copies (`POST G/access-profiles/{id}/propagate`):
//! matched budgets and rate-limit halves keep ids, anchors, overrides and —
//! unless `reset_usage` — usage; dry runs change nothing; `user_ids` limits
//! the copies; the counts of the response — on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod people;

use chrono::Duration;
use common::{PREFIXES, assert_error};
use heimdall_testkit::{Reply, TestDb, TestServer, store_test};
use people::*;
use serde_json::{Value, json};
use sqlx::Row;

async fn propagate(s: &TestServer, profile: i64, body: Value) -> Reply {
    s.post(&g(&format!("/access-profiles/{profile}/propagate")), body)
        .await
}

async fn propagate_ok(s: &TestServer, profile: i64, body: Value) -> Value {
    let r = propagate(s, profile, body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

/// Sorted `user_ids` of a propagate response.
fn affected(body: &Value) -> Vec<String> {
    let mut v: Vec<String> = body["user_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// The new template policy the propagation tests apply: the daily budget
/// raised, a weekly one added, the OpenAI budget raised and an Anthropic
/// config added, the token half of the rate limit raised.
fn edited() -> Value {
    json!({
        "budgets": [
            {"max_limit": 20, "reset_duration": "1d"},
            {"max_limit": 100, "reset_duration": "1w"}
        ],
        "provider_configs": [
            {
                "provider_name": "openai",
                "all_models_allowed": false,
                "allowed_models": ["gpt-4o-mini"],
                "budgets": [{"max_limit": 7, "reset_duration": "1d"}],
                "rate_limit": {"request_max_limit": 10, "request_reset_duration": "1m"}
            },
            {"provider_name": "anthropic", "all_models_allowed": true}
        ],
        "rate_limit": {
            "token_max_limit": 2000, "token_reset_duration": "1h",
            "request_max_limit": 30, "request_reset_duration": "5m"
        }
    })
}

async fn edit_template(s: &TestServer, p: i64, body: Value) {
    let r = s.put(&g(&format!("/access-profiles/{p}")), body).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

/// Writes a usage counter row for one limit of a copy, as the governance
/// flush would.
async fn put_counter(s: &TestServer, copy_id: i64, limit_id: &Value, kind: &str, dur: &str) {
    let db = raw_db(s).await;
    let anchor = t0().timestamp_millis();
    sqlx::query(
        "INSERT INTO usage_counters (limit_id, kind, user_profile_id, used, window_start, reset_duration, anchor, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $5, $5)",
    )
    .bind(limit_id.as_str().unwrap().to_string())
    .bind(kind.to_string())
    .bind(copy_id)
    .bind(1_500_000_000_i64)
    .bind(anchor)
    .bind(dur.to_string())
    .execute(&db)
    .await
    .expect("insert counter");
    db.close().await;
}

/// The limit ids with a counter row, sorted.
async fn counters(s: &TestServer) -> Vec<String> {
    let db = raw_db(s).await;
    let rows = sqlx::query("SELECT limit_id, kind FROM usage_counters")
        .fetch_all(&db)
        .await
        .expect("read counters");
    db.close().await;
    let mut v: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r.try_get::<String, _>(0).unwrap(),
                r.try_get::<String, _>(1).unwrap()
            )
        })
        .collect();
    v.sort();
    v
}

/// Two users (Ann, Bob) holding copies of the standard policy through a
/// role default, Ann's daily budget with a forever override and usage rows
/// on three of Ann's limits. Returns (template, ann, bob, Ann's copy, the
/// counter keys written).
async fn setup(s: &TestServer) -> (i64, String, String, Value, Vec<String>) {
    let (p, eng) = default_of_new_role(s, "Eng", "Engineers").await;
    let (ann, _) = user(s, "Ann", Some(eng)).await;
    let (bob, _) = user(s, "Bob", Some(eng)).await;
    let c = copy_of(s, &ann, p).await;
    let r = s
        .put(
            &g(&format!(
                "/users/{ann}/access-profiles/{p}/budgets/{}/override",
                c["budgets"][0]["id"].as_str().unwrap()
            )),
            json!({"amount": 5, "mode": "forever"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let copy_id = c["id"].as_i64().unwrap();
    let total = &c["budgets"][0]["id"];
    let openai = &c["provider_configs"][0]["budgets"][0]["id"];
    let rl = &c["rate_limit"]["id"];
    put_counter(s, copy_id, total, "budget", "1d").await;
    put_counter(s, copy_id, openai, "budget", "1d").await;
    put_counter(s, copy_id, rl, "tokens", "1h").await;
    put_counter(s, copy_id, rl, "requests", "1m").await;
    let written = sorted(vec![
        format!("{}/budget", total.as_str().unwrap()),
        format!("{}/budget", openai.as_str().unwrap()),
        format!("{}/tokens", rl.as_str().unwrap()),
        format!("{}/requests", rl.as_str().unwrap()),
    ]);
    assert_eq!(counters(s).await, written);
    let c = copy_of(s, &ann, p).await;
    (p, ann, bob, c, written)
}

const LIMIT_FIELDS: [&str; 3] = ["budgets", "provider_configs", "rate_limit"];

store_test!(
    propagation_keeps_matched_limits_with_their_usage_and_overrides,
    |db: TestDb| async move {
        let (s, clock) = clocked(&db, "0s").await;
        let (p, ann, bob, before, written) = setup(&s).await;
        edit_template(&s, p, edited()).await;
        // Half an hour on: still in the first window of every old limit.
        clock.advance(Duration::minutes(30));
        let later = t0() + Duration::minutes(30);

        let body = propagate_ok(&s, p, json!({ "fields": LIMIT_FIELDS })).await;
        assert_eq!(body["affected_users"], 2);
        assert_eq!(body["failed_users"], 0);
        assert_eq!(body["skipped_users"], 0);
        assert_eq!(affected(&body), sorted(vec![ann.clone(), bob.clone()]));
        assert_eq!(body["fields"], json!(LIMIT_FIELDS));
        assert_eq!(body["applied"], true);
        assert_eq!(body["vk_sync_errors"], json!([]));

        let c = copy_of(&s, &ann, p).await;
        let t = get_template(&s, p).await.body["access_profile"].clone();
        // The daily budget matched: same id, anchor and override, new limit.
        let day = &c["budgets"][0];
        assert_eq!(day["id"], before["budgets"][0]["id"]);
        assert_eq!(day["max_limit"], 20.0);
        assert_eq!(day["effective_max_limit"], 25.0, "the override survives");
        assert_eq!(day["override"]["amount"], 5.0);
        assert_eq!(at(&day["last_reset"]), t0());
        // The weekly budget is new: its own id, anchored now.
        let week = &c["budgets"][1];
        assert_eq!(week["reset_duration"], "1w");
        assert_eq!(week["max_limit"], 100.0);
        assert_ne!(week["id"], t["budgets"][1]["id"]);
        assert_eq!(week["override"], Value::Null);
        assert_eq!(at(&week["last_reset"]), later);
        assert_eq!(week["current_usage"], 0.0);
        // Provider configs: OpenAI matched (id and budget kept), Anthropic new.
        let pcs = c["provider_configs"].as_array().unwrap();
        assert_eq!(pcs.len(), 2);
        assert_eq!(pcs[0]["id"], before["provider_configs"][0]["id"]);
        assert_eq!(pcs[0]["all_models_allowed"], false);
        assert_eq!(pcs[0]["allowed_models"], json!(["gpt-4o-mini"]));
        assert_eq!(
            pcs[0]["budgets"][0]["id"],
            before["provider_configs"][0]["budgets"][0]["id"]
        );
        assert_eq!(pcs[0]["budgets"][0]["max_limit"], 7.0);
        assert_eq!(
            pcs[0]["rate_limit"]["id"],
            before["provider_configs"][0]["rate_limit"]["id"]
        );
        assert_eq!(pcs[1]["provider_name"], "anthropic");
        assert!(pcs[1]["id"].as_i64().unwrap() > 0);
        assert_ne!(pcs[1]["id"], pcs[0]["id"]);
        assert_ne!(pcs[1]["id"], t["provider_configs"][1]["id"]);
        // Rate limit: same id; the token half matched (anchor kept), the
        // request half changed duration (fresh anchor).
        let rl = &c["rate_limit"];
        assert_eq!(rl["id"], before["rate_limit"]["id"]);
        assert_eq!(rl["token_max_limit"], 2000);
        assert_eq!(at(&rl["token_last_reset"]), t0());
        assert_eq!(rl["request_reset_duration"], "5m");
        assert_eq!(at(&rl["request_last_reset"]), later);

        // Usage of matched limits is kept; the request half changed its
        // duration (1m to 5m), so it starts at zero: its counter is gone.
        let requests = format!("{}/requests", before["rate_limit"]["id"].as_str().unwrap());
        let kept: Vec<String> = written
            .iter()
            .filter(|k| **k != requests)
            .cloned()
            .collect();
        assert_eq!(counters(&s).await, kept);
        // Bob got the same rules under his own ids.
        let b = copy_of(&s, &bob, p).await;
        assert_eq!(b["budgets"][0]["max_limit"], 20.0);
        assert_ne!(b["budgets"][0]["id"], day["id"]);
        assert_eq!(b["budgets"][0]["override"], Value::Null);
        // Ids stay distinct within and across copies.
        let mut ids = vec![];
        for copy in [&c, &b] {
            for bud in copy["budgets"].as_array().unwrap() {
                ids.push(bud["id"].as_str().unwrap().to_string());
            }
            for pc in copy["provider_configs"].as_array().unwrap() {
                for bud in pc["budgets"].as_array().unwrap() {
                    ids.push(bud["id"].as_str().unwrap().to_string());
                }
            }
        }
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n, "budget ids are unique");
        s.stop().await;
    }
);

store_test!(
    reset_usage_zeroes_matched_counters_but_keeps_ids_and_overrides,
    |db: TestDb| async move {
        let (s, clock) = clocked(&db, "0s").await;
        let (p, ann, _bob, before, written) = setup(&s).await;
        edit_template(&s, p, edited()).await;
        clock.advance(Duration::minutes(30));
        let body = propagate_ok(
            &s,
            p,
            json!({"fields": ["budgets"], "reset_usage": true, "user_ids": [ann]}),
        )
        .await;
        assert_eq!(body["affected_users"], 1);
        assert_eq!(body["applied"], true);
        let c = copy_of(&s, &ann, p).await;
        assert_eq!(c["budgets"][0]["id"], before["budgets"][0]["id"]);
        assert_eq!(
            c["budgets"][0]["effective_max_limit"], 25.0,
            "overrides always survive"
        );
        // Only the propagated field's matched counter was zeroed.
        let total = format!("{}/budget", before["budgets"][0]["id"].as_str().unwrap());
        let left: Vec<String> = written.iter().filter(|k| **k != total).cloned().collect();
        assert_eq!(counters(&s).await, left);
        // The provider budget and rate limit were not propagated: untouched.
        assert_eq!(c["provider_configs"][0]["budgets"][0]["max_limit"], 5.0);
        assert_eq!(c["provider_configs"].as_array().unwrap().len(), 1);
        assert_eq!(c["rate_limit"]["token_max_limit"], 1000);
        assert_eq!(c["rate_limit"]["request_reset_duration"], "1m");

        // Now the rest, with reset: every matched counter goes.
        let body = propagate_ok(
            &s,
            p,
            json!({"fields": ["provider_configs", "rate_limit"], "reset_usage": true}),
        )
        .await;
        assert_eq!(body["affected_users"], 2);
        // Every matched counter is gone, and so is the counter of the
        // request half, which changed its duration (1m to 5m) and starts over.
        assert_eq!(counters(&s).await, Vec::<String>::new());
        let c = copy_of(&s, &ann, p).await;
        assert_eq!(
            c["provider_configs"][0]["budgets"][0]["id"],
            before["provider_configs"][0]["budgets"][0]["id"]
        );
        assert_eq!(c["rate_limit"]["id"], before["rate_limit"]["id"]);
        assert_eq!(at(&c["rate_limit"]["token_last_reset"]), t0());
        s.stop().await;
    }
);

store_test!(
    a_dry_run_changes_nothing_and_reports,
    |db: TestDb| async move {
        let (s, clock) = clocked(&db, "0s").await;
        let (p, ann, bob, _, written) = setup(&s).await;
        edit_template(&s, p, edited()).await;
        clock.advance(Duration::hours(1));
        let ann_before = copy_of(&s, &ann, p).await;
        let bob_before = copy_of(&s, &bob, p).await;
        let audit_before = actions(&s, p).await;
        for prefix in PREFIXES {
            let r = s
                .post(
                    &format!("{prefix}/access-profiles/{p}/propagate"),
                    json!({"fields": LIMIT_FIELDS, "dry_run": true, "reset_usage": true}),
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(r.body["applied"], false);
            assert_eq!(r.body["affected_users"], 2);
            assert_eq!(r.body["skipped_users"], 0);
            assert_eq!(affected(&r.body), sorted(vec![ann.clone(), bob.clone()]));
        }
        assert_eq!(copy_of(&s, &ann, p).await, ann_before);
        assert_eq!(copy_of(&s, &bob, p).await, bob_before);
        assert_eq!(counters(&s).await, written);
        assert_eq!(
            actions(&s, p).await,
            audit_before,
            "a dry run is not audited"
        );

        // The same request for real then does what the dry run said.
        let body = propagate_ok(&s, p, json!({ "fields": LIMIT_FIELDS })).await;
        assert_eq!(body["applied"], true);
        assert_eq!(body["affected_users"], 2);
        assert_eq!(copy_of(&s, &ann, p).await["budgets"][0]["max_limit"], 20.0);
        s.stop().await;
    }
);

store_test!(
    skipped_users_counts_copies_that_already_match,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let (p, ann, bob, _, _) = setup(&s).await;
        // Nothing changed yet: every copy matches.
        let body = propagate_ok(&s, p, json!({ "fields": LIMIT_FIELDS })).await;
        assert_eq!(body["affected_users"], 0);
        assert_eq!(body["skipped_users"], 2);
        assert_eq!(body["user_ids"], json!([]));
        assert_eq!(body["applied"], true);

        edit_template(&s, p, edited()).await;
        let body = propagate_ok(&s, p, json!({"fields": LIMIT_FIELDS, "user_ids": [ann]})).await;
        assert_eq!(body["affected_users"], 1);
        assert_eq!(body["skipped_users"], 0);
        assert_eq!(body["user_ids"], json!([ann]));
        assert_eq!(copy_of(&s, &bob, p).await["budgets"][0]["max_limit"], 10.0);

        let body = propagate_ok(&s, p, json!({ "fields": LIMIT_FIELDS })).await;
        assert_eq!(body["affected_users"], 1);
        assert_eq!(body["skipped_users"], 1);
        assert_eq!(body["user_ids"], json!([bob]));
        let body = propagate_ok(&s, p, json!({ "fields": LIMIT_FIELDS })).await;
        assert_eq!(body["affected_users"], 0);
        assert_eq!(body["skipped_users"], 2);

        // A field whose value differs only in the template's budgets is
        // skipped for another field.
        edit_template(
            &s,
            p,
            json!({"budgets": [{"max_limit": 1, "reset_duration": "1d"}]}),
        )
        .await;
        let body = propagate_ok(&s, p, json!({"fields": ["mcp_servers"]})).await;
        assert_eq!(body["affected_users"], 0);
        assert_eq!(body["skipped_users"], 2);
        s.stop().await;
    }
);

store_test!(
    unknown_user_ids_are_400_and_change_nothing,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let (p, ann, _bob, before, _) = setup(&s).await;
        edit_template(&s, p, edited()).await;
        let (carl, _) = user(&s, "Carl", None).await; // holds no copy
        let ghost = uuid::Uuid::new_v4().to_string();
        for ids in [
            json!([ghost]),
            json!([carl]),
            json!([ann, ghost]),
            json!(["not-a-user"]),
        ] {
            let r = propagate(&s, p, json!({"fields": ["budgets"], "user_ids": ids})).await;
            assert_error(&r, 400, "invalid_request");
        }
        assert_eq!(copy_of(&s, &ann, p).await, before);
        assert!(audit_entries(&s, p, "propagate").await.is_empty());
        // An empty list means everyone.
        let body = propagate_ok(&s, p, json!({"fields": ["budgets"], "user_ids": []})).await;
        assert_eq!(body["affected_users"], 2);
        s.stop().await;
    }
);

store_test!(propagate_validates_its_request, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    let (p, ann, _bob, before, _) = setup(&s).await;
    for body in [
        json!({}),
        json!({"fields": []}),
        json!({"fields": ["name"]}),
        json!({"fields": ["budgets", "bogus"]}),
        json!({"fields": "budgets"}),
        json!({"fields": ["budgets"], "dry_run": "yes"}),
        json!({"fields": ["budgets"], "reset_usage": 1}),
        json!({"fields": ["budgets"], "user_ids": "all"}),
        json!({"fields": ["budgets"], "everyone": true}),
    ] {
        let r = propagate(&s, p, body.clone()).await;
        assert_error(&r, 400, "invalid_request");
    }
    let r = s
        .raw(
            "POST",
            &g(&format!("/access-profiles/{p}/propagate")),
            b"{".to_vec(),
        )
        .await;
    assert_error(&r, 400, "invalid_request");
    assert_error(
        &propagate(&s, 999, json!({"fields": ["budgets"]})).await,
        404,
        "not_found",
    );
    assert_error(
        &s.post(
            &g("/access-profiles/abc/propagate"),
            json!({"fields": ["budgets"]}),
        )
        .await,
        400,
        "invalid_request",
    );
    assert_eq!(copy_of(&s, &ann, p).await, before);
    s.stop().await;
});

store_test!(
    the_copy_name_follows_a_renamed_template,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let (p, ann, bob, _, _) = setup(&s).await;
        edit_template(&s, p, json!({"name": "Engineering"})).await;
        assert_eq!(
            copy_of(&s, &ann, p).await["name"],
            "Eng",
            "not before propagation"
        );
        let body = propagate_ok(&s, p, json!({"fields": ["mcp_tool_groups"]})).await;
        assert_eq!(body["affected_users"], 2, "the name changed: {body}");
        assert_eq!(copy_of(&s, &ann, p).await["name"], "Engineering");
        assert_eq!(copy_of(&s, &bob, p).await["name"], "Engineering");
        let key = keys(&s, &ann).await;
        assert_eq!(key.len(), 1);
        s.stop().await;
    }
);

store_test!(
    calendar_and_mcp_fields_propagate_on_their_own,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let (p, ann, _bob, before, _) = setup(&s).await;
        edit_template(
            &s,
            p,
            json!({
                "calendar_aligned": true,
                "timezone": "Asia/Tokyo",
                "mcp_tool_groups": [{"tool_group_id": 4}],
                "mcp_servers": [{"mcp_server_id": "github"}],
                "mcp_tool_overrides": [{"mcp_client_id": "jira", "tool_name": "delete", "action": "exclude"}],
                "budgets": [{"max_limit": 1, "reset_duration": "1d"}]
            }),
        )
        .await;
        let body = propagate_ok(&s, p, json!({"fields": ["calendar"]})).await;
        assert_eq!(body["affected_users"], 2);
        let c = copy_of(&s, &ann, p).await;
        assert_eq!(c["calendar_aligned"], true);
        assert_eq!(c["timezone"], "Asia/Tokyo");
        assert_eq!(c["mcp_servers"], json!([]));
        assert_eq!(c["budgets"][0]["max_limit"], 10.0);

        propagate_ok(
            &s,
            p,
            json!({"fields": ["mcp_tool_groups", "mcp_servers", "mcp_tool_overrides"]}),
        )
        .await;
        let c = copy_of(&s, &ann, p).await;
        assert_eq!(c["mcp_tool_groups"], json!([{"tool_group_id": 4}]));
        assert_eq!(c["mcp_servers"], json!([{"mcp_server_id": "github"}]));
        assert_eq!(
            c["mcp_tool_overrides"],
            json!([{"mcp_client_id": "jira", "tool_name": "delete", "action": "exclude"}])
        );
        assert_eq!(c["budgets"][0]["max_limit"], 10.0);
        assert_eq!(c["budgets"][0]["id"], before["budgets"][0]["id"]);
        s.stop().await;
    }
);

store_test!(
    removed_limits_go_and_other_templates_are_untouched,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let (p, ann, _bob, _, _) = setup(&s).await;
        let other = template(&s, policy_body("Other")).await;
        activate(&s, other).await;
        assign(&s, &ann, other).await;
        let other_before = copy_of(&s, &ann, other).await;
        edit_template(
            &s,
            p,
            json!({"budgets": [], "rate_limit": null, "provider_configs": []}),
        )
        .await;
        let body = propagate_ok(&s, p, json!({ "fields": LIMIT_FIELDS })).await;
        assert_eq!(body["affected_users"], 2);
        let c = copy_of(&s, &ann, p).await;
        assert_eq!(c["budgets"], json!([]));
        assert_eq!(c["rate_limit"], Value::Null);
        assert_eq!(c["provider_configs"], json!([]));
        assert_eq!(copy_of(&s, &ann, other).await, other_before);

        // A template nobody holds: nothing to do.
        let lonely = template(&s, policy_body("Lonely")).await;
        let body = propagate_ok(&s, lonely, json!({"fields": ["budgets"]})).await;
        assert_eq!(body["affected_users"], 0);
        assert_eq!(body["skipped_users"], 0);
        s.stop().await;
    }
);

store_test!(propagation_is_audited, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    let (p, ann, bob, _, _) = setup(&s).await;
    edit_template(&s, p, edited()).await;
    propagate_ok(&s, p, json!({"fields": ["budgets"], "reset_usage": true})).await;
    let e = audit_entries(&s, p, "propagate").await;
    assert_eq!(e.len(), 1);
    let new = json_field(&e[0]["new_values"]);
    assert_eq!(new["fields"], json!(["budgets"]));
    assert_eq!(new["reset_usage"], true);
    let mut ids: Vec<String> = new["affected_user_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    ids.sort();
    assert_eq!(ids, sorted(vec![ann, bob]));
    assert!(!e[0]["actor"].as_str().unwrap().is_empty());
    s.stop().await;
});

store_test!(
    a_propagation_that_changes_nothing_is_not_audited,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let (p, _ann, _bob, _, _) = setup(&s).await;
        let body = propagate_ok(&s, p, json!({ "fields": LIMIT_FIELDS })).await;
        assert_eq!(body["affected_users"], 0);
        assert!(audit_entries(&s, p, "propagate").await.is_empty());
        edit_template(&s, p, edited()).await;
        propagate_ok(&s, p, json!({ "fields": LIMIT_FIELDS })).await;
        assert_eq!(audit_entries(&s, p, "propagate").await.len(), 1);
        s.stop().await;
    }
);
