//! Every validation rule of a template, on create (and where it matters on
//! update): each refusal is a 400 in the error envelope naming the problem,
//! and writes nothing. On SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use common::*;
use heimdall_core::clock::ManualClock;
use heimdall_testkit::{TestDb, TestServer, store_test};
use serde_json::{Value, json};

const NS_PER_HOUR: i64 = 3_600_000_000_000;
const NS_PER_DAY: i64 = 24 * NS_PER_HOUR;

/// Posts `body`, expects a 400 mentioning `needles`, and checks that nothing
/// was written.
async fn rejects(s: &TestServer, body: Value, needles: &[&str]) {
    let profiles_before = profile_count(s).await;
    let audit_before = audit_count(s).await;
    let r = s.post(&profiles(""), body.clone()).await;
    assert_invalid(&r, needles);
    assert_eq!(profile_count(s).await, profiles_before, "written: {body}");
    assert_eq!(audit_count(s).await, audit_before, "audited: {body}");
}

/// Puts `patch` on profile `id`, expects a 400 mentioning `needles`, and
/// checks that the profile and its history did not change.
async fn rejects_update(s: &TestServer, id: i64, patch: Value, needles: &[&str]) {
    let before = get_profile(s, id).await;
    let audit_before = audit_count(s).await;
    let r = s.put(&profiles(&format!("/{id}")), patch.clone()).await;
    assert_invalid(&r, needles);
    assert_eq!(get_profile(s, id).await, before, "changed by {patch}");
    assert_eq!(audit_count(s).await, audit_before, "audited: {patch}");
}

fn with(name: &str, field: &str, value: Value) -> Value {
    let mut b = minimal(name);
    b[field] = value;
    b
}

fn budget(max: Value, dur: &str) -> Value {
    json!({"max_limit": max, "reset_duration": dur})
}

fn provider(name: &str) -> Value {
    json!({"provider_name": name, "all_models_allowed": true})
}

fn clock_at(t: &str) -> Arc<ManualClock> {
    Arc::new(ManualClock::new(
        DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc),
    ))
}

// ---- name --------------------------------------------------------------

store_test!(name_is_required_and_not_blank, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    rejects(&s, json!({}), &["name"]).await;
    rejects(&s, json!({"name": null}), &["name"]).await;
    rejects(&s, json!({"name": ""}), &["name"]).await;
    rejects(&s, json!({"name": "   \t\n "}), &["name"]).await;
    rejects(&s, json!({"description": "no name"}), &["name"]).await;
    s.stop().await;
});

store_test!(name_is_trimmed, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    let p = create(&s, minimal(" \t Padded Name \n")).await;
    assert_eq!(p["name"], "Padded Name");
    // Inner spaces are kept.
    let p = create(&s, minimal("  two  spaces ")).await;
    assert_eq!(p["name"], "two  spaces");
    s.stop().await;
});

store_test!(
    name_length_is_counted_in_characters,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let p = create(&s, minimal(&"n".repeat(255))).await;
        assert_eq!(p["name"].as_str().unwrap().len(), 255);
        // 255 two-byte characters are 255 characters.
        let p = create(&s, minimal(&"é".repeat(255))).await;
        assert_eq!(p["name"].as_str().unwrap().chars().count(), 255);
        // 255 emoji (4 bytes each).
        create(&s, minimal(&"🦀".repeat(255))).await;
        // Trimming happens before counting.
        create(&s, minimal(&format!("  {}  ", "t".repeat(255)))).await;
        rejects(&s, minimal(&"n".repeat(256)), &["name", "255"]).await;
        rejects(&s, minimal(&"é".repeat(256)), &["name", "255"]).await;
        s.stop().await;
    }
);

store_test!(rejects_name_taken_ignoring_case, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    create(&s, minimal("Engineering")).await;
    create(&s, minimal("ÉQUIPE")).await;
    create(&s, minimal("ΣΟΦΙΑ")).await;
    let audit_before = audit_count(&s).await;
    for taken in [
        "Engineering",
        "engineering",
        "ENGINEERING",
        "  eNgInEeRiNg  ",
        "équipe",
        "Équipe",
        "σοφια",
    ] {
        let r = s.post(&profiles(""), minimal(taken)).await;
        assert_error(&r, 409, "conflict");
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(taken.trim()),
            "{}",
            r.text
        );
    }
    assert_eq!(profile_count(&s).await, 3);
    assert_eq!(audit_count(&s).await, audit_before);
    // Similar but different names are free.
    create(&s, minimal("Engineering 2")).await;
    create(&s, minimal("equipe")).await;
    s.stop().await;
});

store_test!(rename_to_taken_name_is_conflict, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    create(&s, minimal("Alpha")).await;
    let b = id_of(&create(&s, minimal("Beta")).await);
    let before = get_profile(&s, b).await;
    let audit_before = audit_count(&s).await;
    for taken in ["Alpha", "ALPHA", " alpha "] {
        let r = s
            .put(&profiles(&format!("/{b}")), json!({"name": taken}))
            .await;
        assert_error(&r, 409, "conflict");
    }
    assert_eq!(get_profile(&s, b).await, before);
    assert_eq!(audit_count(&s).await, audit_before);
    assert_eq!(versions_of(&s, b).await.len(), 1);
    // Changing the case of one's own name is a rename, not a conflict.
    let r = s
        .put(&profiles(&format!("/{b}")), json!({"name": "BETA"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["access_profile"]["name"], "BETA");
    assert_eq!(r.body["access_profile"]["version"], 2);
    // The old name of a renamed profile is free again.
    let r = s
        .put(&profiles(&format!("/{b}")), json!({"name": "Gamma"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    create(&s, minimal("beta")).await;
    assert_error(
        &s.post(&profiles(""), minimal("GAMMA")).await,
        409,
        "conflict",
    );
    s.stop().await;
});

store_test!(rejects_invalid_name_on_update, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    let id = id_of(&create(&s, minimal("Keep")).await);
    rejects_update(&s, id, json!({"name": ""}), &["name"]).await;
    rejects_update(&s, id, json!({"name": "   "}), &["name"]).await;
    rejects_update(&s, id, json!({"name": "x".repeat(256)}), &["name"]).await;
    // A null name is an omitted name (as Bifrost's clients send it): kept.
    let audit_before = audit_count(&s).await;
    let r = s
        .put(&profiles(&format!("/{id}")), json!({"name": null}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["access_profile"]["name"], "Keep");
    assert_eq!(audit_count(&s).await, audit_before);
    s.stop().await;
});

// ---- description ----------------------------------------------------------

store_test!(description_has_a_size_limit, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    let p = create(&s, with("Long", "description", json!("d".repeat(10_000)))).await;
    assert_eq!(p["description"].as_str().unwrap().len(), 10_000);
    rejects(
        &s,
        with("Longer", "description", json!("d".repeat(10_001))),
        &["description"],
    )
    .await;
    rejects(&s, with("Typed", "description", json!(5)), &["description"]).await;
    rejects_update(
        &s,
        id_of(&p),
        json!({"description": "d".repeat(10_001)}),
        &["description"],
    )
    .await;
    s.stop().await;
});

// ---- tags -------------------------------------------------------------------

store_test!(tags_are_trimmed_and_deduplicated, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    let p = create(&s, with("T", "tags", json!([" b ", "a", "b", "a ", "B"]))).await;
    assert_eq!(p["tags"], json!(["b", "a", "B"]));
    s.stop().await;
});

store_test!(rejects_bad_tags, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    rejects(&s, with("T", "tags", json!(["ok", ""])), &["tags[1]"]).await;
    rejects(&s, with("T", "tags", json!(["  "])), &["tags[0]"]).await;
    rejects(
        &s,
        with("T", "tags", json!(["t".repeat(65)])),
        &["tags[0]", "64"],
    )
    .await;
    let fifty_one: Vec<String> = (0..51).map(|i| format!("t{i}")).collect();
    rejects(&s, with("T", "tags", json!(fifty_one)), &["50"]).await;
    rejects(&s, with("T", "tags", json!("eng")), &["tags"]).await;
    rejects(&s, with("T", "tags", json!([1, 2])), &["tags"]).await;
    // The limits themselves are allowed.
    let fifty: Vec<String> = (0..50).map(|i| format!("t{i}")).collect();
    let p = create(&s, with("Fifty", "tags", json!(fifty))).await;
    assert_eq!(p["tags"].as_array().unwrap().len(), 50);
    create(&s, with("Long tag", "tags", json!(["ü".repeat(64)]))).await;
    rejects_update(&s, id_of(&p), json!({"tags": [""]}), &["tags[0]"]).await;
    s.stop().await;
});

// ---- budgets -----------------------------------------------------------------

store_test!(
    accepts_every_budget_duration_form,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let durations = [
            "1h", "1d", "1w", "1M", "1Q", "1Y", "30s", "15m", "2w", "3M", "2Y", "100000s",
        ];
        let list: Vec<Value> = durations.iter().map(|d| budget(json!(1), d)).collect();
        let p = create(&s, with("Durations", "budgets", json!(list))).await;
        let got: Vec<&str> = p["budgets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["reset_duration"].as_str().unwrap())
            .collect();
        assert_eq!(got, durations);
        s.stop().await;
    }
);

store_test!(rejects_bad_budget_durations, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    for bad in [
        "", "d", "1", "0d", "-1d", "1.5h", "1 d", "1D", "1x", "01d", "1dd", "d1", "1000001s",
    ] {
        let body = with("B", "budgets", json!([budget(json!(1), bad)]));
        rejects(&s, body, &["budgets[0].reset_duration"]).await;
    }
    rejects(
        &s,
        with("B", "budgets", json!([{"max_limit": 1}])),
        &["budgets[0].reset_duration"],
    )
    .await;
    rejects(
        &s,
        with(
            "B",
            "budgets",
            json!([budget(json!(1), "1d"), {"max_limit": 1, "reset_duration": 5}]),
        ),
        &["budgets"],
    )
    .await;
    s.stop().await;
});

store_test!(rejects_bad_budget_amounts, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    for bad in [json!(0), json!(-1), json!(-0.01), json!(1e10)] {
        rejects(
            &s,
            with("B", "budgets", json!([budget(bad, "1d")])),
            &["budgets[0].max_limit"],
        )
        .await;
    }
    rejects(
        &s,
        with("B", "budgets", json!([{"reset_duration": "1d"}])),
        &["budgets[0].max_limit"],
    )
    .await;
    rejects(
        &s,
        with("B", "budgets", json!([budget(json!("5"), "1d")])),
        &["max_limit"],
    )
    .await;
    let p = create(
        &s,
        with("Cents", "budgets", json!([budget(json!(0.01), "1d")])),
    )
    .await;
    assert_eq!(p["budgets"][0]["max_limit"], 0.01);
    s.stop().await;
});

store_test!(reset_config_only_with_quarters, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    for dur in ["1M", "1d", "1Y", "3M"] {
        let b = json!([{"max_limit": 1, "reset_duration": dur, "reset_config": {"quarter_start_month": 1}}]);
        rejects(&s, with("R", "budgets", b), &["budgets[0].reset_config"]).await;
    }
    for month in [0, 13, -1] {
        let b = json!([{"max_limit": 1, "reset_duration": "1Q", "reset_config": {"quarter_start_month": month}}]);
        rejects(&s, with("R", "budgets", b), &["quarter_start_month"]).await;
    }
    let b = json!([{"max_limit": 1, "reset_duration": "1Q", "reset_config": {}}]);
    rejects(&s, with("R", "budgets", b), &["quarter_start_month"]).await;
    let b = json!([{"max_limit": 1, "reset_duration": "1Q", "reset_config": {"quarter_start_month": 2, "day": 1}}]);
    rejects(&s, with("R", "budgets", b), &["day"]).await;
    for (i, month) in [1, 12].into_iter().enumerate() {
        let b = json!([{"max_limit": 1, "reset_duration": "2Q", "reset_config": {"quarter_start_month": month}}]);
        let p = create(&s, with(&format!("Q{i}"), "budgets", b)).await;
        assert_eq!(
            p["budgets"][0]["reset_config"]["quarter_start_month"],
            month
        );
    }
    // Without reset_config, a quarterly budget has none.
    let p = create(
        &s,
        with("Q plain", "budgets", json!([budget(json!(1), "1Q")])),
    )
    .await;
    assert!(
        p["budgets"][0]
            .get("reset_config")
            .is_none_or(Value::is_null)
    );
    s.stop().await;
});

store_test!(
    rejects_duplicate_budget_durations,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let twice = json!([budget(json!(1), "1d"), budget(json!(2), "1d")]);
        rejects(
            &s,
            with("D", "budgets", twice.clone()),
            &["budgets[1]", "1d"],
        )
        .await;
        let mut pc = provider("openai");
        pc["budgets"] = twice;
        rejects(
            &s,
            with("D", "provider_configs", json!([pc])),
            &["provider_configs[0].budgets[1]"],
        )
        .await;
        // The same duration under different owners is fine.
        let mut a = provider("openai");
        a["budgets"] = json!([budget(json!(1), "1d")]);
        let mut b = provider("anthropic");
        b["budgets"] = json!([budget(json!(1), "1d")]);
        let mut body = with("Owners", "budgets", json!([budget(json!(5), "1d")]));
        body["provider_configs"] = json!([a, b]);
        let p = create(&s, body).await;
        assert_eq!(p["budgets"][0]["scope"], "total");
        assert_eq!(
            p["provider_configs"][0]["budgets"][0]["scope"],
            "provider:openai"
        );
        assert_eq!(
            p["provider_configs"][1]["budgets"][0]["scope"],
            "provider:anthropic"
        );
        // Different durations of one owner are fine.
        create(
            &s,
            with(
                "Two",
                "budgets",
                json!([budget(json!(1), "1d"), budget(json!(1), "1w")]),
            ),
        )
        .await;
        // On update too.
        rejects_update(
            &s,
            id_of(&p),
            json!({"budgets": [budget(json!(1), "1M"), budget(json!(1), "1M")]}),
            &["1M"],
        )
        .await;
        s.stop().await;
    }
);

store_test!(budget_count_is_limited, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    let many = |n: usize| -> Value {
        json!(
            (1..=n)
                .map(|i| budget(json!(1), &format!("{i}s")))
                .collect::<Vec<_>>()
        )
    };
    let p = create(&s, with("Hundred", "budgets", many(100))).await;
    assert_eq!(p["budgets"].as_array().unwrap().len(), 100);
    rejects(&s, with("More", "budgets", many(101)), &["budgets", "100"]).await;
    s.stop().await;
});

store_test!(
    budget_scope_and_usage_are_set_by_the_server,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let b = json!([{
            "max_limit": 3, "reset_duration": "1d", "scope": "provider:evil",
            "current_usage": 99, "id": "mine", "last_reset": "2020-01-01T00:00:00Z",
            "override": {"amount": 5}
        }]);
        let p = create(&s, with("Scoped", "budgets", b)).await;
        let got = &p["budgets"][0];
        assert_eq!(got["scope"], "total");
        assert_eq!(got["current_usage"], 0.0);
        assert_eq!(got["last_reset"], Value::Null);
        assert_ne!(got["id"], "mine");
        assert!(got.get("override").is_none_or(Value::is_null));
        s.stop().await;
    }
);

// ---- provider configs -------------------------------------------------------

store_test!(rejects_duplicate_provider_names, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    let body = with(
        "P",
        "provider_configs",
        json!([
            provider("openai"),
            provider("anthropic"),
            provider("openai")
        ]),
    );
    rejects(&s, body, &["provider_configs[2]", "openai"]).await;
    let body = with(
        "P",
        "provider_configs",
        json!([provider("openai"), provider(" openai ")]),
    );
    rejects(&s, body, &["openai"]).await;
    let id = id_of(
        &create(
            &s,
            with("P", "provider_configs", json!([provider("openai")])),
        )
        .await,
    );
    rejects_update(
        &s,
        id,
        json!({"provider_configs": [provider("groq"), provider("groq")]}),
        &["groq"],
    )
    .await;
    s.stop().await;
});

store_test!(provider_name_is_required, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    rejects(
        &s,
        with(
            "P",
            "provider_configs",
            json!([{"all_models_allowed": true}]),
        ),
        &["provider_configs[0].provider_name"],
    )
    .await;
    rejects(
        &s,
        with("P", "provider_configs", json!([provider("")])),
        &["provider_configs[0].provider_name"],
    )
    .await;
    rejects(
        &s,
        with("P", "provider_configs", json!([provider("  ")])),
        &["provider_configs[0].provider_name"],
    )
    .await;
    // Providers need not exist yet.
    let p = create(
        &s,
        with(
            "P",
            "provider_configs",
            json!([provider("not-configured-anywhere")]),
        ),
    )
    .await;
    assert_eq!(
        p["provider_configs"][0]["provider_name"],
        "not-configured-anywhere"
    );
    s.stop().await;
});

store_test!(provider_config_count_is_limited, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    let many = |n: usize| -> Value {
        json!(
            (0..n)
                .map(|i| provider(&format!("p{i}")))
                .collect::<Vec<_>>()
        )
    };
    let p = create(&s, with("Hundred", "provider_configs", many(100))).await;
    let pcs = p["provider_configs"].as_array().unwrap();
    assert_eq!(pcs.len(), 100);
    let mut ids: Vec<i64> = pcs.iter().map(|c| c["id"].as_i64().unwrap()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 100, "every config has its own id");
    rejects(
        &s,
        with("More", "provider_configs", many(101)),
        &["provider_configs", "100"],
    )
    .await;
    s.stop().await;
});

store_test!(
    rejects_regex_entries_that_do_not_compile,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        for bad in [
            "regex:(",
            "regex:gpt-[",
            "regex:*",
            "regex:a{2,1}",
            "regex:(?P<x",
        ] {
            let mut pc = provider("openai");
            pc["all_models_allowed"] = json!(false);
            pc["allowed_models"] = json!(["gpt-4o", bad]);
            rejects(
                &s,
                with("Re", "provider_configs", json!([pc])),
                &[
                    "provider_configs[0].allowed_models[1]",
                    "regular expression",
                ],
            )
            .await;
        }
        // A pattern that compiles is kept verbatim; bare names are not patterns.
        let mut pc = provider("openai");
        pc["all_models_allowed"] = json!(false);
        pc["allowed_models"] = json!(["regex:gpt-4(o|\\.1)(-mini)?", "gpt-[weird"]);
        let p = create(&s, with("Re ok", "provider_configs", json!([pc]))).await;
        assert_eq!(
            p["provider_configs"][0]["allowed_models"],
            json!(["regex:gpt-4(o|\\.1)(-mini)?", "gpt-[weird"])
        );
        // An empty allow-list is a valid policy (no model of that provider).
        let mut pc = provider("openai");
        pc["all_models_allowed"] = json!(false);
        pc["allowed_models"] = json!([]);
        let p = create(&s, with("None", "provider_configs", json!([pc]))).await;
        assert_eq!(p["provider_configs"][0]["allowed_models"], json!([]));
        let mut pc = provider("openai");
        pc["allowed_models"] = json!(["regex:["]);
        rejects_update(
            &s,
            id_of(&p),
            json!({"provider_configs": [pc]}),
            &["regular expression"],
        )
        .await;
        s.stop().await;
    }
);

// ---- rate limits ----------------------------------------------------------------

store_test!(
    rejects_incomplete_rate_limit_pairs,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let cases = [
            (json!({"token_max_limit": 10}), "token_reset_duration"),
            (json!({"request_max_limit": 10}), "request_reset_duration"),
            (
                json!({"token_max_limit": 10, "token_reset_duration": "1h", "request_max_limit": 5}),
                "request_reset_duration",
            ),
            (json!({}), "rate_limit"),
            (json!({"token_reset_duration": "1h"}), "rate_limit"),
            (
                json!({"token_max_limit": null, "request_max_limit": null}),
                "rate_limit",
            ),
            (
                json!({"token_max_limit": 0, "token_reset_duration": "1h"}),
                "token_max_limit",
            ),
            (
                json!({"request_max_limit": -3, "request_reset_duration": "1h"}),
                "request_max_limit",
            ),
            (
                json!({"token_max_limit": 10, "token_reset_duration": "1Q"}),
                "token_reset_duration",
            ),
            (
                json!({"request_max_limit": 10, "request_reset_duration": "soon"}),
                "request_reset_duration",
            ),
            (
                json!({"request_max_limit": 1.5, "request_reset_duration": "1m"}),
                "request_max_limit",
            ),
        ];
        for (rl, needle) in cases {
            rejects(&s, with("RL", "rate_limit", rl.clone()), &[needle]).await;
            let mut pc = provider("openai");
            pc["rate_limit"] = rl;
            rejects(&s, with("RL", "provider_configs", json!([pc])), &[needle]).await;
        }
        // Either half alone is enough.
        let p = create(
            &s,
            with(
                "Tokens",
                "rate_limit",
                json!({"token_max_limit": 5, "token_reset_duration": "1M"}),
            ),
        )
        .await;
        assert_eq!(p["rate_limit"]["token_max_limit"], 5);
        assert_eq!(p["rate_limit"]["request_max_limit"], Value::Null);
        assert_eq!(p["rate_limit"]["request_reset_duration"], Value::Null);
        let p = create(
            &s,
            with(
                "Requests",
                "rate_limit",
                json!({"request_max_limit": 5, "request_reset_duration": "30s"}),
            ),
        )
        .await;
        assert_eq!(p["rate_limit"]["request_max_limit"], 5);
        assert_eq!(p["rate_limit"]["token_max_limit"], Value::Null);
        rejects_update(&s, id_of(&p), json!({"rate_limit": {}}), &["rate_limit"]).await;
        s.stop().await;
    }
);

// ---- timezone -------------------------------------------------------------------

store_test!(timezone_must_be_an_iana_zone, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    for bad in ["Mars/Olympus", "", "utc+2", "Europe/Berln", "GMT+25"] {
        rejects(&s, with("TZ", "timezone", json!(bad)), &["timezone"]).await;
    }
    rejects(&s, with("TZ", "timezone", json!(3)), &["timezone"]).await;
    for (i, ok) in [
        "UTC",
        "Europe/Berlin",
        "America/Argentina/Buenos_Aires",
        "Asia/Kathmandu",
    ]
    .iter()
    .enumerate()
    {
        let p = create(&s, with(&format!("TZ{i}"), "timezone", json!(ok))).await;
        assert_eq!(p["timezone"], *ok);
    }
    rejects_update(&s, 1, json!({"timezone": "Nowhere/Land"}), &["timezone"]).await;
    s.stop().await;
});

// ---- auto_rotation_interval ---------------------------------------------------------

store_test!(
    auto_rotation_interval_accepts_text_and_nanoseconds,
    |db: TestDb| async move {
        let clock = clock_at("2026-11-27T09:00:00Z");
        let s = TestServer::start_with(TestServer::config(&db), Some(clock.clone())).await;
        let cases = [
            (json!("30d"), 30 * NS_PER_DAY),
            (json!("12h"), 12 * NS_PER_HOUR),
            (json!("90m"), 90 * 60 * 1_000_000_000),
            (json!("1h"), NS_PER_HOUR),
            (json!("365d"), 365 * NS_PER_DAY),
            (json!("1h30m"), 90 * 60 * 1_000_000_000),
            (json!(NS_PER_HOUR), NS_PER_HOUR),
            (json!(7 * NS_PER_DAY), 7 * NS_PER_DAY),
            (json!(format!("{}", 2 * NS_PER_HOUR)), 2 * NS_PER_HOUR),
            (json!(" 12h "), 12 * NS_PER_HOUR),
        ];
        for (i, (input, ns)) in cases.into_iter().enumerate() {
            let p = create(
                &s,
                with(&format!("R{i}"), "auto_rotation_interval", input.clone()),
            )
            .await;
            assert_eq!(p["auto_rotation_interval"], ns, "{input}");
            let next = clock.now_plus(ns);
            assert_eq!(
                p["next_rotation_at"], next,
                "{input}: default is now + interval"
            );
        }
        for (i, off) in [json!(""), json!(0), json!("0")].into_iter().enumerate() {
            let p = create(
                &s,
                with(&format!("Off{i}"), "auto_rotation_interval", off.clone()),
            )
            .await;
            assert_eq!(p["auto_rotation_interval"], 0, "{off}");
            assert_eq!(p["next_rotation_at"], Value::Null, "{off}");
        }
        s.stop().await;
    }
);

trait NowPlus {
    fn now_plus(&self, ns: i64) -> String;
}

impl NowPlus for ManualClock {
    fn now_plus(&self, ns: i64) -> String {
        use heimdall_core::clock::Clock;
        (self.now() + Duration::nanoseconds(ns)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }
}

store_test!(
    auto_rotation_interval_must_be_within_range,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        for bad in [
            json!("59m"),
            json!("366d"),
            json!("1s"),
            json!(NS_PER_HOUR - 1),
            json!(365 * NS_PER_DAY + 1),
            json!(-NS_PER_HOUR),
            json!("-1h"),
            json!("abc"),
            json!("30x"),
            json!("1.5h"),
            json!(1.5),
            json!(true),
            json!(i64::MAX),
            json!("9999999999999d"),
        ] {
            rejects(
                &s,
                with("Rot", "auto_rotation_interval", bad.clone()),
                &["auto_rotation_interval"],
            )
            .await;
        }
        let id = id_of(&create(&s, minimal("Rot")).await);
        rejects_update(
            &s,
            id,
            json!({"auto_rotation_interval": "10m"}),
            &["auto_rotation_interval"],
        )
        .await;
        s.stop().await;
    }
);

store_test!(
    next_rotation_at_may_be_given_in_the_future,
    |db: TestDb| async move {
        let clock = clock_at("2026-11-27T09:00:00Z");
        let s = TestServer::start_with(TestServer::config(&db), Some(clock.clone())).await;
        let mut body = with("Given", "auto_rotation_interval", json!("7d"));
        body["next_rotation_at"] = json!("2026-12-01T00:00:00Z");
        let p = create(&s, body).await;
        assert_eq!(p["next_rotation_at"], "2026-12-01T00:00:00Z");
        for past in ["2026-11-27T09:00:00Z", "2020-01-01T00:00:00Z"] {
            let mut body = with("Past", "auto_rotation_interval", json!("7d"));
            body["next_rotation_at"] = json!(past);
            rejects(&s, body, &["next_rotation_at"]).await;
        }
        let mut body = with("Garbage", "auto_rotation_interval", json!("7d"));
        body["next_rotation_at"] = json!("next tuesday");
        rejects(&s, body, &["next_rotation_at"]).await;
        s.stop().await;
    }
);

// ---- MCP links ------------------------------------------------------------------------

store_test!(
    rejects_excluding_a_tool_of_a_granted_server,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let mut body = with("MCP", "mcp_servers", json!([{"mcp_server_id": "github"}]));
        body["mcp_tool_overrides"] =
            json!([{"mcp_client_id": "github", "tool_name": "delete_repo", "action": "exclude"}]);
        rejects(&s, body, &["mcp_tool_overrides[0]", "github"]).await;
        let mut body = with(
            "MCP",
            "mcp_tool_overrides",
            json!([{"mcp_client_id": "x", "tool_name": "y", "action": "maybe"}]),
        );
        rejects(&s, body.clone(), &["mcp_tool_overrides"]).await;
        body["mcp_tool_overrides"] =
            json!([{"mcp_client_id": "", "tool_name": "y", "action": "include"}]);
        rejects(&s, body, &["mcp_client_id"]).await;
        // Including a tool of a granted server is fine.
        let mut body = with(
            "MCP ok",
            "mcp_servers",
            json!([{"mcp_server_id": "github"}]),
        );
        body["mcp_tool_overrides"] =
            json!([{"mcp_client_id": "github", "tool_name": "read", "action": "include"}]);
        let p = create(&s, body).await;
        // Granting the server later, while an exclusion exists, is refused too.
        let id = id_of(&p);
        let r = s.put(&profiles(&format!("/{id}")), json!({"mcp_servers": [], "mcp_tool_overrides": [{"mcp_client_id": "jira", "tool_name": "drop", "action": "exclude"}]})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        rejects_update(
            &s,
            id,
            json!({"mcp_servers": [{"mcp_server_id": "jira"}]}),
            &["jira"],
        )
        .await;
        s.stop().await;
    }
);

// ---- unknown and read-only fields ------------------------------------------------------

store_test!(
    rejects_unknown_fields_naming_them,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        rejects(&s, with("U", "colour", json!("blue")), &["colour"]).await;
        rejects(
            &s,
            with(
                "U",
                "budgets",
                json!([{"max_limit": 1, "reset_duration": "1d", "currency": "EUR"}]),
            ),
            &["currency"],
        )
        .await;
        rejects(
            &s,
            with(
                "U",
                "provider_configs",
                json!([{"provider_name": "openai", "weight": 2}]),
            ),
            &["weight"],
        )
        .await;
        rejects(
            &s,
            with(
                "U",
                "rate_limit",
                json!({"request_max_limit": 1, "request_reset_duration": "1m", "burst": 3}),
            ),
            &["burst"],
        )
        .await;
        rejects(
            &s,
            with(
                "U",
                "mcp_servers",
                json!([{"mcp_server_id": "x", "url": "http://x"}]),
            ),
            &["url"],
        )
        .await;
        // Fields of the detail view are not fields of the profile.
        rejects(&s, with("U", "roles", json!([])), &["roles"]).await;
        rejects(&s, with("U", "user_count", json!(0)), &["user_count"]).await;
        // Field names are case-sensitive.
        rejects(&s, json!({"Name": "U"}), &["Name"]).await;
        let id = id_of(&create(&s, minimal("Known")).await);
        rejects_update(&s, id, json!({"colour": "blue"}), &["colour"]).await;
        rejects_update(
            &s,
            id,
            json!({"budgets": [{"max_limit": 1, "reset_duration": "1d", "currency": "EUR"}]}),
            &["currency"],
        )
        .await;
        s.stop().await;
    }
);

store_test!(
    accepts_and_ignores_read_only_fields,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let original = create(&s, rich("Original")).await;
        // Everything a GET returned, sent back as a create under another name.
        let mut body = original.clone();
        body["name"] = json!("Resent");
        let r = s.post(&profiles(""), body).await;
        assert_eq!(r.status, 201, "{}", r.text);
        let p = &r.body["access_profile"];
        assert_ne!(p["id"], original["id"]);
        assert_eq!(p["version"], 1);
        assert_eq!(p["is_active"], false);
        for key in [
            "tags",
            "calendar_aligned",
            "timezone",
            "auto_rotation_interval",
            "mcp_servers",
            "mcp_tool_groups",
            "mcp_tool_overrides",
            "description",
        ] {
            assert_eq!(p[key], original[key], "{key}");
        }
        // Ids of budgets, rate limits and configs are the server's own.
        assert_ne!(p["budgets"][0]["id"], original["budgets"][0]["id"]);
        assert_ne!(p["rate_limit"]["id"], original["rate_limit"]["id"]);
        assert_ne!(
            p["provider_configs"][0]["id"],
            original["provider_configs"][0]["id"]
        );
        assert_eq!(
            p["budgets"][0]["max_limit"],
            original["budgets"][0]["max_limit"]
        );
        assert_eq!(
            p["provider_configs"][0]["allowed_models"],
            original["provider_configs"][0]["allowed_models"]
        );
        s.stop().await;
    }
);
