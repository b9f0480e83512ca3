//! Hostile strings on the management API (hardening issue, defects 2 and
//! 7): a NUL character in a body string or a path id is a 400 naming the
//! field on both backends (PostgreSQL cannot store it, and SQLite must
//! answer the same), a path that is not UTF-8 is a 400 in the envelope, and
//! virtual-key descriptions are capped like profile descriptions. Nothing
//! refused is written.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use heimdall_testkit::{Reply, TestDb, TestServer, store_test};
use serde_json::{Value, json};

const G: &str = "/api/governance";

/// A 400 in the envelope whose `param` is `field`.
fn assert_refused(r: &Reply, field: &str, what: &str) {
    assert_eq!(r.status, 400, "{what}: {}", r.text);
    assert_eq!(
        r.body["error"]["type"], "invalid_request",
        "{what}: {}",
        r.text
    );
    assert_eq!(r.body["error"]["param"], field, "{what}: {}", r.text);
    assert!(
        r.body["error"]["message"].as_str().unwrap().contains("NUL"),
        "{what}: {}",
        r.text
    );
}

/// A user holding a copy of an active template, and the id of its key.
async fn user_with_key(s: &TestServer) -> (String, String) {
    let r = s
        .post(
            &format!("{G}/access-profiles"),
            json!({"name": "Base", "provider_configs": [{"provider_name": "openai", "all_models_allowed": true}]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let profile = r.body["access_profile"]["id"].as_i64().unwrap();
    let r = s
        .put(
            &format!("{G}/access-profiles/{profile}/activate"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = s
        .post(
            &format!("{G}/users"),
            json!({"name": "Nul", "email": "nul@example.com"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let user = r.body["user"]["id"].as_str().unwrap().to_string();
    let r = s
        .post(
            &format!("{G}/users/{user}/access-profiles"),
            json!({"access_profile_id": profile}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    (
        user,
        r.body["virtual_key"]["id"].as_str().unwrap().to_string(),
    )
}

store_test!(
    nul_in_a_body_string_is_a_400_naming_the_field,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let (user, key) = user_with_key(&s).await;
        let roles_before = s.get(&format!("{G}/rbac/roles")).await.body;

        let r = s
            .post(
                &format!("{G}/rbac/roles"),
                json!({"name": "Ops", "description": "a\u{0}b"}),
            )
            .await;
        assert_refused(&r, "description", "role description");
        let r = s
            .post(&format!("{G}/rbac/roles"), json!({"name": "Op\u{0}s"}))
            .await;
        assert_refused(&r, "name", "role name");
        assert_eq!(s.get(&format!("{G}/rbac/roles")).await.body, roles_before);

        let r = s
            .post(
                &format!("{G}/users/{user}/virtual-keys"),
                json!({"description": "\u{0}"}),
            )
            .await;
        assert_refused(&r, "description", "new key description");
        let r = s
            .put(
                &format!("{G}/virtual-keys/{key}"),
                json!({"description": "x\u{0}"}),
            )
            .await;
        assert_refused(&r, "description", "key description");
        let keys = s.get(&format!("{G}/users/{user}/virtual-keys")).await;
        assert_eq!(keys.body["virtual_keys"].as_array().unwrap().len(), 1);
        assert!(
            keys.body["virtual_keys"][0]["description"].is_null()
                || keys.body["virtual_keys"][0]["description"] == ""
        );

        // Access profiles keep NUL (their text is stored encoded): see
        // profiles_bad_input.rs.
        let r = s
            .post(
                "/api/providers",
                json!({"provider": "openai", "network_config": {"base_url": "http://127.0.0.1:9"}}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let r = s
            .post(
                "/api/providers/openai/keys",
                json!({"name": "k\u{0}", "value": "sk-x"}),
            )
            .await;
        assert_refused(&r, "name", "provider key name");
        let keys = s.get("/api/providers/openai/keys").await;
        assert_eq!(
            keys.body["keys"].as_array().map(Vec::len).unwrap_or(0),
            0,
            "{}",
            keys.text
        );

        // An escaped backslash before "u0000" is text, not NUL.
        let r = s
            .post(
                &format!("{G}/rbac/roles"),
                json!({"name": "Slash", "description": "C:\\u0000"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["role"]["description"], "C:\\u0000");
    }
);

store_test!(
    nul_in_a_path_id_or_query_is_a_400_naming_it,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let (user, _key) = user_with_key(&s).await;
        let cases: Vec<(&str, String, Option<Value>, &str)> = vec![
            ("GET", format!("{G}/users/%00"), None, "user_id"),
            ("DELETE", format!("{G}/users/a%00b"), None, "user_id"),
            (
                "GET",
                "/api/users/%00/virtual-keys".to_string(),
                None,
                "user_id",
            ),
            (
                "DELETE",
                format!("{G}/users/{user}/virtual-keys/%00"),
                None,
                "vk_id",
            ),
            (
                "PUT",
                format!("{G}/virtual-keys/%00"),
                Some(json!({"name": "n"})),
                "vk_id",
            ),
            (
                "POST",
                format!("{G}/virtual-keys/%00/rotate"),
                Some(json!({})),
                "vk_id",
            ),
            ("GET", "/api/providers/%00".to_string(), None, "provider"),
            (
                "DELETE",
                "/api/providers/open%00ai".to_string(),
                None,
                "provider",
            ),
            (
                "GET",
                "/api/providers/openai/keys/%00".to_string(),
                None,
                "key_id",
            ),
            (
                "PUT",
                "/api/pricing/%00/gpt-4o".to_string(),
                Some(
                    json!({"input_cost_per_million_tokens": 1, "output_cost_per_million_tokens": 1}),
                ),
                "provider",
            ),
            (
                "PUT",
                "/api/pricing/openai/gpt%00".to_string(),
                Some(
                    json!({"input_cost_per_million_tokens": 1, "output_cost_per_million_tokens": 1}),
                ),
                "model",
            ),
            (
                "DELETE",
                "/api/pricing/openai/%00".to_string(),
                None,
                "model",
            ),
            ("GET", format!("{G}/users?search=%00"), None, "search"),
            (
                "GET",
                format!("{G}/access-profiles?limit=1&search=a%00"),
                None,
                "search",
            ),
        ];
        for (method, path, body, field) in cases {
            let r = s.admin(method, &path, body).await;
            assert_refused(&r, field, &format!("{method} {path}"));
        }
        let prices = s.get("/api/pricing").await;
        assert!(
            !prices.text.contains("\\u0000"),
            "no price stored for a NUL name"
        );
        // The user is still there.
        assert_eq!(s.get(&format!("{G}/users/{user}")).await.status, 200);
    }
);

store_test!(
    a_path_that_is_not_utf8_is_a_400_in_the_envelope,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        for path in [
            format!("{G}/users/%ff"),
            "/api/providers/%c3%28".to_string(),
        ] {
            let r = s.get(&path).await;
            assert_eq!(r.status, 400, "{path}: {}", r.text);
            assert_eq!(
                r.body["error"]["type"], "invalid_request",
                "{path}: {}",
                r.text
            );
        }
    }
);

store_test!(key_descriptions_are_capped, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    let (user, key) = user_with_key(&s).await;
    let long = "d".repeat(10_001);
    let r = s
        .post(
            &format!("{G}/users/{user}/virtual-keys"),
            json!({"description": long}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = s
        .put(
            &format!("{G}/virtual-keys/{key}"),
            json!({"description": long}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    let keys = s.get(&format!("{G}/users/{user}/virtual-keys")).await;
    assert_eq!(
        keys.body["virtual_keys"].as_array().unwrap().len(),
        1,
        "{}",
        keys.text
    );
    let at_cap = "é".repeat(10_000);
    let r = s
        .put(
            &format!("{G}/virtual-keys/{key}"),
            json!({"description": at_cap}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
});

store_test!(
    an_oversized_mint_body_is_a_413_in_the_envelope,
    |db: TestDb| async move {
        let mut config = TestServer::config(&db);
        config.server.max_body_bytes = 4096;
        let s = TestServer::start_with(config, None).await;
        let (user, _key) = user_with_key(&s).await;
        for path in [
            format!("{G}/users/{user}/virtual-keys"),
            format!("{G}/users/{user}/access-profiles/1/virtual-keys"),
        ] {
            let body = serde_json::to_vec(&json!({"description": "d".repeat(8_000)})).unwrap();
            let r = s.raw("POST", &path, body).await;
            assert_eq!(r.status, 413, "{path}: {}", r.text);
            assert_eq!(
                r.body["error"]["type"], "request_too_large",
                "{path}: {}",
                r.text
            );
        }
        let keys = s.get(&format!("{G}/users/{user}/virtual-keys")).await;
        assert_eq!(keys.body["virtual_keys"].as_array().unwrap().len(), 1);
    }
);
