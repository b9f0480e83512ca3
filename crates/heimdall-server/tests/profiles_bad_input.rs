//! Hostile and broken input on the template routes: malformed JSON, wrong
//! types, huge values, strings that look like SQL or carry NUL and emoji.
//! Every refusal is a clear 4xx (never a 5xx) and writes nothing; every
//! accepted string comes back byte for byte. On SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use heimdall_testkit::{Reply, TestDb, TestServer, store_test};
use serde_json::{Value, json};

/// Snapshot of everything the API can show, to compare before and after.
async fn everything(s: &TestServer) -> Value {
    let list = s.get(&profiles("?limit=500")).await;
    let audit = s.get(&profiles("/audit-logs?limit=500")).await;
    let mut versions = Vec::new();
    for p in list.body["access_profiles"].as_array().unwrap() {
        versions.push(versions_of(s, id_of(p)).await);
    }
    json!({"list": list.body, "audit": audit.body, "versions": versions})
}

/// Sends raw bytes to every writing route and expects a 400 each time,
/// with nothing written.
async fn refused_everywhere(s: &TestServer, body: &[u8], what: &str) {
    let before = everything(s).await;
    for (method, path) in [
        ("POST", profiles("")),
        ("PUT", profiles("/1")),
        ("POST", profiles("/1/clone")),
    ] {
        let r = s.raw(method, &path, body.to_vec()).await;
        assert!(r.status < 500, "{what}: {method} {path} gave {}", r.text);
        assert_error(&r, 400, "invalid_request");
    }
    assert_eq!(everything(s).await, before, "{what} wrote something");
}

store_test!(rejects_malformed_json, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    create(&s, minimal("Existing")).await;
    let deep_array = "[".repeat(100_000);
    let deep_object = "{\"a\":".repeat(10_000) + "1" + &"}".repeat(10_000);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty body", b"".to_vec()),
        ("whitespace", b"  \n ".to_vec()),
        ("truncated", b"{\"name\": \"x\"".to_vec()),
        ("open brace", b"{".to_vec()),
        ("not json", b"name=x".to_vec()),
        ("trailing comma", b"{\"name\": \"x\",}".to_vec()),
        ("single quotes", b"{'name': 'x'}".to_vec()),
        ("trailing garbage", b"{\"name\": \"x\"} extra".to_vec()),
        (
            "two objects",
            b"{\"name\": \"x\"}{\"name\": \"y\"}".to_vec(),
        ),
        ("comment", b"{\"name\": \"x\" /* hi */}".to_vec()),
        (
            "NaN",
            b"{\"name\": \"x\", \"budgets\": [{\"max_limit\": NaN, \"reset_duration\": \"1d\"}]}"
                .to_vec(),
        ),
        ("invalid utf-8", b"{\"name\": \"\xff\xfe\"}".to_vec()),
        ("lone surrogate", b"{\"name\": \"\\ud800\"}".to_vec()),
        ("bad escape", b"{\"name\": \"\\q\"}".to_vec()),
        ("raw control char", b"{\"name\": \"a\x01b\"}".to_vec()),
        (
            "huge exponent",
            b"{\"name\": \"x\", \"budgets\": [{\"max_limit\": 1e999, \"reset_duration\": \"1d\"}]}"
                .to_vec(),
        ),
        ("deep array", deep_array.into_bytes()),
        ("deep object", deep_object.into_bytes()),
        ("null", b"null".to_vec()),
        ("array", b"[]".to_vec()),
        ("string", b"\"name\"".to_vec()),
        ("number", b"42".to_vec()),
        (
            "duplicate key",
            b"{\"name\": \"x\", \"name\": \"y\"}".to_vec(),
        ),
    ];
    for (what, body) in cases {
        refused_everywhere(&s, &body, what).await;
    }
    // Syntax errors say so.
    let r = s.raw("POST", &profiles(""), b"{\"name\": ".to_vec()).await;
    assert_invalid(&r, &["not valid JSON"]);
    let r = s.raw("POST", &profiles(""), b"".to_vec()).await;
    assert_invalid(&r, &["empty"]);
    s.stop().await;
});

store_test!(
    rejects_wrong_types_naming_the_field,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        create(&s, minimal("Existing")).await;
        let cases = [
            (json!({"name": 5}), "name"),
            (json!({"name": ["x"]}), "name"),
            (json!({"name": {"first": "x"}}), "name"),
            (json!({"name": true}), "name"),
            (json!({"name": "x", "description": 1}), "description"),
            (json!({"name": "x", "tags": "eng"}), "tags"),
            (json!({"name": "x", "tags": [1]}), "tags[0]"),
            (json!({"name": "x", "tags": [null]}), "tags[0]"),
            (json!({"name": "x", "budgets": {}}), "budgets"),
            (
                json!({"name": "x", "budgets": [{"max_limit": "5", "reset_duration": "1d"}]}),
                "budgets[0].max_limit",
            ),
            (
                json!({"name": "x", "budgets": [{"max_limit": 5, "reset_duration": 1}]}),
                "budgets[0].reset_duration",
            ),
            (
                json!({"name": "x", "budgets": [{"max_limit": 5, "reset_duration": "1Q", "reset_config": 4}]}),
                "budgets[0].reset_config",
            ),
            (json!({"name": "x", "budgets": [5]}), "budgets[0]"),
            (
                json!({"name": "x", "calendar_aligned": "yes"}),
                "calendar_aligned",
            ),
            (
                json!({"name": "x", "calendar_aligned": 1}),
                "calendar_aligned",
            ),
            (json!({"name": "x", "timezone": ["UTC"]}), "timezone"),
            (json!({"name": "x", "rate_limit": "fast"}), "rate_limit"),
            (
                json!({"name": "x", "rate_limit": {"token_max_limit": "10", "token_reset_duration": "1h"}}),
                "rate_limit.token_max_limit",
            ),
            (
                json!({"name": "x", "provider_configs": [{"provider_name": "openai", "all_models_allowed": "true"}]}),
                "provider_configs[0].all_models_allowed",
            ),
            (
                json!({"name": "x", "provider_configs": [{"provider_name": 7}]}),
                "provider_configs[0].provider_name",
            ),
            (
                json!({"name": "x", "provider_configs": [{"provider_name": "o", "allowed_models": "gpt-4o"}]}),
                "provider_configs[0].allowed_models",
            ),
            (
                json!({"name": "x", "mcp_tool_groups": [{"tool_group_id": "seven"}]}),
                "mcp_tool_groups[0].tool_group_id",
            ),
            (
                json!({"name": "x", "mcp_servers": ["github"]}),
                "mcp_servers[0]",
            ),
            (
                json!({"name": "x", "auto_rotation_interval": [1]}),
                "auto_rotation_interval",
            ),
            (
                json!({"name": "x", "auto_rotation_interval": 1.5}),
                "auto_rotation_interval",
            ),
            (
                json!({"name": "x", "next_rotation_at": 12}),
                "next_rotation_at",
            ),
        ];
        for (body, field) in cases {
            let before = everything(&s).await;
            let r = s.post(&profiles(""), body.clone()).await;
            assert_invalid(&r, &[field]);
            let param = r.body["error"]["param"].as_str().unwrap_or("");
            assert!(param.starts_with(field), "param {param:?} for {body}");
            // The same through a PUT, when the field is not the name.
            let mut patch = body.clone();
            patch.as_object_mut().unwrap().remove("name");
            if !patch.as_object().unwrap().is_empty() {
                let r = s.put(&profiles("/1"), patch).await;
                assert_invalid(&r, &[field]);
            }
            assert_eq!(everything(&s).await, before, "{body} wrote something");
        }
        s.stop().await;
    }
);

store_test!(rejects_a_ten_megabyte_name, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    create(&s, minimal("Existing")).await;
    let before = everything(&s).await;
    let huge = "n".repeat(10 * 1024 * 1024);
    let r = s.post(&profiles(""), json!({"name": huge})).await;
    assert_invalid(&r, &["name", "255"]);
    assert!(r.text.len() < 4096, "the error does not echo the value");
    let r = s.put(&profiles("/1"), json!({"name": huge})).await;
    assert_invalid(&r, &["name"]);
    let r = s.post(&profiles("/1/clone"), json!({"name": huge})).await;
    assert_invalid(&r, &["name"]);
    // Other huge strings.
    for (field, value) in [
        ("description", json!(huge)),
        ("tags", json!([huge])),
        ("timezone", json!(huge)),
        ("auto_rotation_interval", json!(huge)),
    ] {
        let mut body = minimal("Big");
        body[field] = value;
        let r = s.post(&profiles(""), body).await;
        assert_invalid(&r, &[field]);
        assert!(
            r.text.len() < 4096,
            "{field}: the error does not echo the value"
        );
    }
    let r = s
        .post(
            &profiles(""),
            json!({"name": "Big", "provider_configs": [{"provider_name": huge}]}),
        )
        .await;
    assert_invalid(&r, &["provider_name"]);
    let r = s.post(&profiles(""), json!({"name": "Big", "provider_configs": [{"provider_name": "o", "allowed_models": [format!("regex:{}", "a".repeat(1 << 20))]}]})).await;
    assert_invalid(&r, &["allowed_models[0]"]);
    let mut unknown = serde_json::Map::new();
    unknown.insert("name".into(), json!("Big"));
    unknown.insert("k".repeat(1 << 20), json!(1));
    let r = s.post(&profiles(""), Value::Object(unknown)).await;
    assert_error(&r, 400, "invalid_request");
    assert!(r.text.len() < 4096, "the error does not echo the key");
    // A regex that compiles into something enormous is refused, not built.
    let r = s.post(&profiles(""), json!({"name": "Big", "provider_configs": [{"provider_name": "o", "allowed_models": ["regex:(a{1000}){1000}"]}]})).await;
    assert_invalid(&r, &["allowed_models[0]"]);
    assert_eq!(everything(&s).await, before);
    s.stop().await;
});

/// Strings that must survive the trip through both stores unchanged.
fn hostile() -> Vec<&'static str> {
    vec![
        "Robert'); DROP TABLE access_profiles;--",
        "' OR '1'='1",
        "\"; DELETE FROM audit_logs; --",
        "quote \" double and ' single and ` back",
        "back\\slash \\\\ and \\u0041 literally",
        "nul \u{0} inside",
        "\u{0}",
        "emoji 🚀 👩🏽‍💻 🏳️‍🌈",
        "RTL שלום עולם and مرحبا",
        "zero\u{200b}width and combining e\u{301}",
        "percent %s %n %% and $1 and ?",
        "<script>alert(1)</script>",
        "line\nbreak\ttab\rreturn",
        "\u{1}\u{7f}\u{1b}[31m control",
        "𝕳𝖊𝖎𝖒𝖉𝖆𝖑𝖑",
        "--",
        "/* comment */",
        "LIKE %_ wildcards",
    ]
}

store_test!(
    hostile_strings_are_stored_and_returned_intact,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        for (i, text) in hostile().into_iter().enumerate() {
            let body = json!({
                "name": format!("{i} {text}"),
                "description": text,
                "tags": [text, format!("t{i}")],
                "provider_configs": [{
                    "provider_name": format!("p{i}"),
                    "allowed_models": [text],
                }],
                "mcp_servers": [{"mcp_server_id": text}],
            });
            let r = s.post(&profiles(""), body).await;
            assert_eq!(r.status, 201, "{text:?}: {}", r.text);
            let p = r.body["access_profile"].clone();
            let id = id_of(&p);
            assert_eq!(p["name"], format!("{i} {text}").trim(), "{text:?}");
            assert_eq!(p["description"], text, "{text:?}");
            assert_eq!(p["tags"][0], text.trim(), "{text:?}");
            assert_eq!(
                p["provider_configs"][0]["allowed_models"][0], text,
                "{text:?}"
            );
            assert_eq!(p["mcp_servers"][0]["mcp_server_id"], text, "{text:?}");
            // Read back through every view.
            assert_eq!(get_profile(&s, id).await, p, "{text:?}");
            let versions = versions_of(&s, id).await;
            assert_eq!(versions[0]["description"], text);
            assert_eq!(json_string(&versions[0]["snapshot"]), p);
            let log = audit_of(&s, id).await;
            assert_eq!(json_string(&log[0]["new_values"]), p);
            // And through an update.
            let r = s
                .put(
                    &profiles(&format!("/{id}")),
                    json!({"description": format!("{text}{text}")}),
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(
                r.body["access_profile"]["description"],
                format!("{text}{text}")
            );
            let log = audit_of(&s, id).await;
            assert_eq!(json_string(&log[0]["previous_values"])["description"], text);
        }
        // Nothing was dropped or merged, and the tables are still there.
        let n = hostile().len() as i64;
        assert_eq!(profile_count(&s).await, n);
        assert_eq!(audit_count(&s).await, 2 * n);
        // Searching for them finds them.
        let r = s.get(&profiles("?search=DROP%20TABLE")).await;
        assert_eq!(r.body["total_count"], 1);
        let r = s.get(&profiles("?search=%F0%9F%9A%80")).await; // 🚀
        assert_eq!(r.body["total_count"], 1);
        let r = s.get(&profiles("?search=%27%20OR%20%271%27%3D%271")).await; // ' OR '1'='1
        assert_eq!(r.body["total_count"], 1);
        s.stop().await;
    }
);

store_test!(
    names_differing_only_in_hostile_bytes_are_distinct,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        for name in [
            "a\u{0}b",
            "ab",
            "a\u{0}\u{0}b",
            "a\\0b",
            "a\u{1}b",
            "a\u{1}0b",
        ] {
            let r = s.post(&profiles(""), minimal(name)).await;
            assert_eq!(r.status, 201, "{name:?}: {}", r.text);
            assert_eq!(r.body["access_profile"]["name"], name);
        }
        let r = s.post(&profiles(""), minimal("A\u{0}B")).await;
        assert_error(&r, 409, "conflict");
        let names: Vec<String> = s.get(&profiles("")).await.body["access_profiles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "a\u{0}b",
                "ab",
                "a\u{0}\u{0}b",
                "a\\0b",
                "a\u{1}b",
                "a\u{1}0b"
            ]
        );
        s.stop().await;
    }
);

store_test!(
    hostile_query_strings_are_harmless,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        create(&s, json!({"name": "Safe", "tags": ["x"]})).await;
        for q in [
            "search=%27%3B%20DROP%20TABLE%20access_profiles%3B--",
            "search=%00",
            "tags=%00,%27",
            "search=%ZZ",
            "search=",
            "is_active=%00",
            "limit=%00",
            "unknown=1",
        ] {
            let r = s.get(&profiles(&format!("?{q}"))).await;
            assert!(r.status < 500, "{q}: {}", r.text);
            if r.status != 200 {
                assert_error(&r, r.status, "invalid_request");
            }
        }
        for q in ["action=%27%3B--", "user_id=%00", "action=%ZZ"] {
            let r: Reply = s.get(&profiles(&format!("/audit-logs?{q}"))).await;
            assert!(r.status < 500, "{q}: {}", r.text);
        }
        assert_eq!(profile_count(&s).await, 1);
        assert_eq!(audit_count(&s).await, 1);
        s.stop().await;
    }
);
