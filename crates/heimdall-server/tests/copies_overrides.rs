//! Budget overrides on a user's copy: set, replace, remove, `cycles` and
//! `forever`, validation, `effective_max_limit`, and cycles running out as
//! the (injected) clock moves — on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod people;

use chrono::Duration;
use common::{PREFIXES, assert_error};
use heimdall_testkit::{TestDb, TestServer, store_test};
use people::*;
use serde_json::{Value, json};

fn override_path(user: &str, profile: i64, budget: &Value) -> String {
    g(&format!(
        "/users/{user}/access-profiles/{profile}/budgets/{}/override",
        budget.as_str().unwrap()
    ))
}

/// A user holding a copy of the standard policy; returns (user, template,
/// the copy's profile-wide budget id, its OpenAI budget id, its key value).
async fn setup(s: &TestServer) -> (String, i64, Value, Value, String) {
    let (p, eng) = default_of_new_role(s, "Eng", "Engineers").await;
    let (ann, ks) = user(s, "Ann", Some(eng)).await;
    let c = copy_of(s, &ann, p).await;
    (
        ann,
        p,
        c["budgets"][0]["id"].clone(),
        c["provider_configs"][0]["budgets"][0]["id"].clone(),
        assert_key_value(&ks[0]["value"]),
    )
}

store_test!(
    a_forever_override_raises_the_limit_until_removed,
    |db: TestDb| async move {
        let (s, clock) = clocked(&db, "0s").await;
        let (ann, p, total, _, value) = setup(&s).await;
        let path = override_path(&ann, p, &total);
        let r = s.put(&path, json!({"amount": 5, "mode": "forever"})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["effective_max_limit"], 15.0);
        let b = &r.body["budget"];
        assert_eq!(b["id"], total);
        assert_eq!(b["max_limit"], 10.0);
        assert_eq!(b["effective_max_limit"], 15.0);
        assert_eq!(b["scope"], "total");
        assert_eq!(
            b["override"],
            json!({"amount": 5.0, "mode": "forever", "cycles_total": null, "cycles_remaining": null})
        );
        // The copy and the quota route show it.
        let c = copy_of(&s, &ann, p).await;
        assert_eq!(c["budgets"][0]["override"], b["override"]);
        assert_eq!(c["budgets"][0]["effective_max_limit"], 15.0);
        let q = quota(&s, &value).await;
        let qb = &q.body["access_profiles"][0]["budgets"][0];
        assert_eq!(qb["id"], total);
        assert_eq!(qb["effective_max_limit"], 15.0);
        assert_eq!(qb["max_limit"], 10.0);

        // A year later it still counts.
        clock.advance(Duration::days(365));
        let c = copy_of(&s, &ann, p).await;
        assert_eq!(c["budgets"][0]["effective_max_limit"], 15.0);

        // Removing it; removing again is safe.
        for _ in 0..2 {
            let r = s.delete(&path).await;
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(r.body["effective_max_limit"], 10.0);
            assert_eq!(r.body["budget"]["override"], Value::Null);
        }
        assert_eq!(
            copy_of(&s, &ann, p).await["budgets"][0]["override"],
            Value::Null
        );
        let entries = audit_entries(&s, p, "budget_override").await;
        assert_eq!(
            entries.len(),
            2,
            "set and remove; the no-op removal logs nothing"
        );
        assert_eq!(entries[0]["user_id"], ann.as_str());
        assert_eq!(
            json_field(&entries[0]["new_values"])["override"],
            Value::Null
        );
        assert_eq!(
            json_field(&entries[1]["new_values"])["override"]["amount"],
            5.0
        );
        s.stop().await;
    }
);

store_test!(a_cycles_override_ends_by_itself, |db: TestDb| async move {
    let (s, clock) = clocked(&db, "0s").await;
    let (ann, p, total, _, value) = setup(&s).await;
    // Set an hour into the copy's first daily window.
    clock.advance(Duration::hours(1));
    let path = override_path(&ann, p, &total);
    let r = s
        .put(&path, json!({"amount": 2.5, "mode": "cycles", "cycles": 2}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["effective_max_limit"], 12.5);
    assert_eq!(
        r.body["budget"]["override"],
        json!({"amount": 2.5, "mode": "cycles", "cycles_total": 2, "cycles_remaining": 2})
    );

    clock.advance(Duration::days(1));
    let b = copy_of(&s, &ann, p).await["budgets"][0].clone();
    assert_eq!(
        b["effective_max_limit"], 12.5,
        "the second window still has it"
    );
    assert_eq!(b["override"]["cycles_remaining"], 1);

    clock.advance(Duration::days(1));
    let b = copy_of(&s, &ann, p).await["budgets"][0].clone();
    assert_eq!(b["effective_max_limit"], 10.0, "two windows are over");
    assert_eq!(b["override"]["cycles_remaining"], 0);
    let q = quota(&s, &value).await;
    assert_eq!(
        q.body["access_profiles"][0]["budgets"][0]["effective_max_limit"],
        10.0
    );

    clock.advance(Duration::days(10));
    let b = copy_of(&s, &ann, p).await["budgets"][0].clone();
    assert_eq!(b["effective_max_limit"], 10.0);

    // Setting it again now counts from the current window.
    let r = s
        .put(&path, json!({"amount": 1, "mode": "cycles", "cycles": 1}))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["effective_max_limit"], 11.0);
    assert_eq!(r.body["budget"]["override"]["cycles_remaining"], 1);
    s.stop().await;
});

store_test!(
    a_new_override_replaces_the_old_one,
    |db: TestDb| async move {
        let (s, _clock) = clocked(&db, "0s").await;
        let (ann, p, total, _, _) = setup(&s).await;
        let path = override_path(&ann, p, &total);
        s.put(&path, json!({"amount": 5, "mode": "forever"})).await;
        let r = s
            .put(&path, json!({"amount": 3, "mode": "cycles", "cycles": 4}))
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.body["effective_max_limit"], 13.0,
            "not 18: replaced, not added"
        );
        assert_eq!(r.body["budget"]["override"]["cycles_total"], 4);
        let r = s.put(&path, json!({"amount": 7, "mode": "forever"})).await;
        assert_eq!(r.body["effective_max_limit"], 17.0);
        assert_eq!(r.body["budget"]["override"]["mode"], "forever");
        assert_eq!(audit_entries(&s, p, "budget_override").await.len(), 3);
        s.stop().await;
    }
);

store_test!(
    provider_budgets_take_overrides_too,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let (ann, p, total, openai, _) = setup(&s).await;
        for prefix in PREFIXES {
            let r = s
                .put(
                    &format!(
                        "{prefix}/users/{ann}/access-profiles/{p}/budgets/{}/override",
                        openai.as_str().unwrap()
                    ),
                    json!({"amount": 1.25, "mode": "forever"}),
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(r.body["budget"]["scope"], "provider:openai");
            assert_eq!(r.body["effective_max_limit"], 6.25);
        }
        let c = copy_of(&s, &ann, p).await;
        assert_eq!(
            c["provider_configs"][0]["budgets"][0]["effective_max_limit"],
            6.25
        );
        assert_eq!(
            c["budgets"][0]["effective_max_limit"], 10.0,
            "the total budget is untouched"
        );
        assert_eq!(c["budgets"][0]["id"], total);
        s.stop().await;
    }
);

store_test!(override_bodies_are_validated, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    let (ann, p, total, _, _) = setup(&s).await;
    let path = override_path(&ann, p, &total);
    for body in [
        json!({"mode": "forever"}),
        json!({"amount": 0, "mode": "forever"}),
        json!({"amount": -1, "mode": "forever"}),
        json!({"amount": 0.0, "mode": "cycles", "cycles": 1}),
        json!({"amount": 5}),
        json!({"amount": 5, "mode": null}),
        json!({"amount": 5, "mode": "weekly"}),
        json!({"amount": 5, "mode": "FOREVER"}),
        json!({"amount": 5, "mode": "forever", "cycles": 2}),
        json!({"amount": 5, "mode": "cycles"}),
        json!({"amount": 5, "mode": "cycles", "cycles": 0}),
        json!({"amount": 5, "mode": "cycles", "cycles": -3}),
        json!({"amount": 5, "mode": "cycles", "cycles": 1.5}),
        json!({"amount": "5", "mode": "forever"}),
        json!({"amount": 5, "mode": "forever", "reason": "launch"}),
        json!({}),
    ] {
        let r = s.put(&path, body.clone()).await;
        assert_error(&r, 400, "invalid_request");
    }
    let r = s.raw("PUT", &path, b"{".to_vec()).await;
    assert_error(&r, 400, "invalid_request");
    let c = copy_of(&s, &ann, p).await;
    assert_eq!(c["budgets"][0]["override"], Value::Null);
    assert!(audit_entries(&s, p, "budget_override").await.is_empty());
    s.stop().await;
});

store_test!(
    a_budget_not_on_that_users_copy_is_404,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let (ann, p, total, _, _) = setup(&s).await;
        let body = json!({"amount": 5, "mode": "forever"});
        // The template's own budget id.
        let t = get_template(&s, p).await.body["access_profile"].clone();
        let template_budget = t["budgets"][0]["id"].clone();
        assert_ne!(template_budget, total);
        for id in [template_budget, json!("no-such-budget")] {
            let path = override_path(&ann, p, &id);
            assert_error(&s.put(&path, body.clone()).await, 404, "not_found");
            assert_error(&s.delete(&path).await, 404, "not_found");
        }
        // Another user's budget, through Ann's copy.
        let (bob, _) = user(
            &s,
            "Bob",
            Some(copy_of(&s, &ann, p).await["role_id"].as_i64().unwrap()),
        )
        .await;
        let bobs = copy_of(&s, &bob, p).await["budgets"][0]["id"].clone();
        assert_error(
            &s.put(&override_path(&ann, p, &bobs), body.clone()).await,
            404,
            "not_found",
        );
        // A template the user holds no copy of; an unknown user.
        let other = template(&s, policy_body("Other")).await;
        assert_error(
            &s.put(&override_path(&ann, other, &total), body.clone())
                .await,
            404,
            "not_found",
        );
        let ghost = uuid::Uuid::new_v4().to_string();
        assert_error(
            &s.put(&override_path(&ghost, p, &total), body.clone()).await,
            404,
            "not_found",
        );
        assert_error(
            &s.delete(&override_path(&ghost, p, &total)).await,
            404,
            "not_found",
        );
        assert!(audit_entries(&s, p, "budget_override").await.is_empty());
        s.stop().await;
    }
);
