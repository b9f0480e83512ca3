//! `/api/providers…` and keys: CRUD, validation, redaction, seeding from the
//! config file, and changes that take effect without a restart; `/metrics`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod inference_support;

use heimdall_testkit::mock::MockOptions;
use heimdall_testkit::{TestDb, store_test};
use inference_support::{chat, start, start_on, start_with};
use serde_json::json;

store_test!(
    providers_crud_with_defaults_and_errors,
    |db: TestDb| async move {
        let env = start_on(db, MockOptions::default(), json!({}), |_| {}).await;
        let s = &env.server;
        let r = s
            .post(
                "/api/providers",
                json!({"provider": "groq", "network_config": {"base_url": env.mock.base_url}}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["name"], "groq");
        assert_eq!(r.body["kind"], "openai");
        assert_eq!(r.body["keys_count"], 0);
        let nc = &r.body["network_config"];
        assert_eq!(
            (
                nc["default_request_timeout_in_seconds"].as_u64(),
                nc["max_retries"].as_u64()
            ),
            (Some(300), Some(0))
        );
        assert_eq!(
            (
                nc["retry_backoff_initial"].as_u64(),
                nc["retry_backoff_max"].as_u64()
            ),
            (Some(500), Some(5000))
        );
        assert_eq!(
            s.post("/api/providers", json!({"provider": "groq"}))
                .await
                .status,
            409
        );
        assert_eq!(
            s.post("/api/providers", json!({"provider": "Bad Name"}))
                .await
                .status,
            400
        );
        assert_eq!(
            s.post("/api/providers", json!({"provider": "x", "kind": "gemini"}))
                .await
                .status,
            400
        );
        assert_eq!(s.get("/api/providers/nope").await.status, 404);
        let r = s.get("/api/providers").await;
        assert_eq!(r.body["total"], 3);

        // a keyless provider created through the API serves at once
        let r = env.post("/v1/chat/completions", chat("groq/llama")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(
            env.last("/v1/chat/completions")
                .header("authorization")
                .is_none(),
            "keyless sends no credential"
        );

        let r = s.put("/api/providers/groq", json!({"kind": "anthropic", "network_config": {"base_url": env.mock.base_url, "max_retries": 2}})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["kind"], "anthropic");
        assert_eq!(r.body["network_config"]["max_retries"], 2);
        assert_eq!(
            env.post("/v1/chat/completions", chat("groq/llama"))
                .await
                .status,
            200
        );
        assert_eq!(env.last("/v1/messages").json()["model"], "llama");

        assert_eq!(s.delete("/api/providers/groq").await.status, 200);
        assert_eq!(s.delete("/api/providers/groq").await.status, 404);
        let r = env.post("/v1/chat/completions", chat("groq/llama")).await;
        assert_eq!(r.status, 400, "deleted provider is unknown at once");
    }
);

store_test!(
    keys_are_redacted_and_take_effect_at_once,
    |db: TestDb| async move {
        let env = start_on(db, MockOptions::default(), json!({}), |_| {}).await;
        let s = &env.server;
        let r = s.post("/api/providers/openai/keys", json!({"name": "second", "value": "sk-live-abcdefghijklmnop", "weight": 2.5, "models": ["gpt-x"]})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["value"], "sk-****mnop");
        assert_eq!(r.body["weight"], 2.5);
        assert_eq!(r.body["enabled"], true);
        let id = r.body["id"].as_str().unwrap().to_owned();
        assert!(!r.text.contains("abcdefghijklmnop"));
        assert_eq!(
            s.post(
                "/api/providers/openai/keys",
                json!({"name": "second", "value": "sk-other-key-123456"})
            )
            .await
            .status,
            409
        );
        assert_eq!(
            s.post(
                "/api/providers/openai/keys",
                json!({"name": "x", "value": ""})
            )
            .await
            .status,
            400
        );
        assert_eq!(
            s.post(
                "/api/providers/nope/keys",
                json!({"name": "x", "value": "v"})
            )
            .await
            .status,
            404
        );
        let r = s.get("/api/providers/openai/keys").await;
        assert_eq!(r.body["total"], 2);
        assert!(!r.text.contains("sk-openai-upstream-key-1"));

        // gpt-x may use both keys; disable the seeded one and only "second" remains
        let seeded = r.body["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == "k1")
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let r = s
            .put(
                &format!("/api/providers/openai/keys/{seeded}"),
                json!({"name": "k1", "value": "sk-openai-upstream-key-1", "enabled": false}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(
            env.post("/v1/chat/completions", chat("openai/gpt-x"))
                .await
                .status,
            200
        );
        assert_eq!(
            env.last("/v1/chat/completions")
                .header("authorization")
                .as_deref(),
            Some("Bearer sk-live-abcdefghijklmnop")
        );
        let r = env.post("/v1/chat/completions", chat("openai/other")).await;
        assert_eq!(r.status, 503, "no enabled key admits the model: {}", r.text);

        // env_var keys are read at use and shown as the variable
        let r = s.put(&format!("/api/providers/openai/keys/{id}"), json!({"name": "second", "value": {"env_var": "HEIMDALL_TEST_PROVIDER_KEY_UNSET"}, "models": []})).await;
        assert_eq!(
            r.body["value"],
            json!({"env_var": "HEIMDALL_TEST_PROVIDER_KEY_UNSET"})
        );
        let r = env.post("/v1/chat/completions", chat("openai/gpt-x")).await;
        assert_eq!(r.status, 503);
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("HEIMDALL_TEST_PROVIDER_KEY_UNSET")
        );

        assert_eq!(
            s.get(&format!("/api/providers/openai/keys/{id}"))
                .await
                .status,
            200
        );
        assert_eq!(
            s.delete(&format!("/api/providers/openai/keys/{id}"))
                .await
                .status,
            200
        );
        assert_eq!(
            s.get(&format!("/api/providers/openai/keys/{id}"))
                .await
                .status,
            404
        );
    }
);

#[tokio::test]
async fn config_seeding_wins_for_what_it_names_and_leaves_the_rest() {
    let env = start(json!({})).await;
    let s = &env.server;
    assert_eq!(
        s.post("/api/providers", json!({"provider": "extra"}))
            .await
            .status,
        200
    );
    s.put(
        "/api/providers/openai",
        json!({"network_config": {"base_url": "http://changed.invalid"}}),
    )
    .await;
    let mut config = heimdall_testkit::TestServer::config(&env.db);
    config.providers = serde_json::from_value(
        json!({"openai": {"network_config": {"base_url": env.mock.base_url}}}),
    )
    .unwrap();
    let url = env.mock.base_url.clone();
    drop(env.server);
    let again = heimdall_testkit::TestServer::start_with(config, None).await;
    let r = again.get("/api/providers/openai").await;
    assert_eq!(
        r.body["network_config"]["base_url"], url,
        "the file wins for what it names"
    );
    assert_eq!(
        r.body["keys_count"], 1,
        "keys the file does not name are kept"
    );
    assert_eq!(
        again.get("/api/providers/extra").await.status,
        200,
        "API-created provider left alone"
    );
}

#[tokio::test]
async fn metrics_need_admin_unless_public_and_count_requests() {
    let env = start(json!({})).await;
    assert_eq!(
        env.post("/v1/chat/completions", chat("openai/metered"))
            .await
            .status,
        200
    );
    let anon = env
        .server
        .client
        .get(env.server.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), 401);
    let r = env.server.get("/metrics").await;
    assert_eq!(r.status, 200);
    assert!(r.text.contains("heimdall_requests_total{route=\"/v1\",provider=\"openai\",model=\"metered\",status=\"200\"}"), "{}", r.text);
    assert!(r.text.contains("heimdall_gateway_overhead_seconds_bucket"));
    assert!(r.text.contains("heimdall_tokens_total"));
    let public = start_with(MockOptions::default(), json!({}), |c| {
        c.metrics.public = true
    })
    .await;
    let anon = public
        .server
        .client
        .get(public.server.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), 200);
}
