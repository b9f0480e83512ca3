//! `/api/providers` against hostile input, over real HTTP on SQLite and
//! PostgreSQL: timeouts, retries and backoffs bounded (docs/providers.md),
//! unknown fields refused in every body, oversized fields refused, the
//! kind's default base URL shown, the config file held to the same rules,
//! and a deleted or replaced provider's background model fetch stopped.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use heimdall_testkit::mock::{MockOptions, MockProvider};
use heimdall_testkit::{Reply, TestDb, TestServer, store_test};
use serde_json::{Value, json};

/// A 400 `invalid_request` whose `param` is `param` and whose message
/// mentions `needle`.
fn assert_refused(r: &Reply, param: &str, needle: &str) {
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.body["type"], "invalid_request", "{}", r.text);
    assert_eq!(r.body["error"]["param"], param, "{}", r.text);
    let msg = r.body["error"]["message"].as_str().unwrap();
    assert!(msg.contains(needle), "{msg:?} should mention {needle:?}");
}

fn provider(name: &str, network: Value) -> Value {
    json!({"provider": name, "network_config": network})
}

store_test!(
    timeouts_above_an_hour_are_refused,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let field = "network_config.default_request_timeout_in_seconds";
        for t in [json!(i64::MAX), json!(1u64 << 32), json!(3601), json!(0)] {
            let r = s
                .post(
                    "/api/providers",
                    provider("p", json!({"default_request_timeout_in_seconds": t})),
                )
                .await;
            assert_refused(&r, field, "default_request_timeout_in_seconds");
        }
        assert_eq!(s.get("/api/providers").await.body["total"], 0);

        // the largest allowed timeout works end to end
        let mock = MockProvider::start(MockOptions::default()).await.unwrap();
        let mut config = TestServer::config(&db);
        config.governance.require_virtual_key = false;
        drop(s);
        let s = TestServer::start_with(config, None).await;
        let net = json!({"base_url": mock.base_url, "default_request_timeout_in_seconds": 3600});
        let r = s.post("/api/providers", provider("p", net.clone())).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let chat = json!({"model": "p/m", "messages": [{"role": "user", "content": "hi"}]});
        let r = Reply::read(
            s.client
                .post(s.url("/v1/chat/completions"))
                .json(&chat)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let mut stream = chat.clone();
        stream["stream"] = json!(true);
        let r = Reply::read(
            s.client
                .post(s.url("/v1/chat/completions"))
                .json(&stream)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(r.text.ends_with("data: [DONE]\n\n"), "{}", r.text);

        // replacing is held to the same bound
        let r = s
            .put(
                "/api/providers/p",
                provider("p", json!({"default_request_timeout_in_seconds": u64::MAX})),
            )
            .await;
        assert_refused(&r, field, "3600");
    }
);

store_test!(retries_and_backoffs_are_capped, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    for (net, param) in [
        (
            json!({"max_retries": 4294967295u64}),
            "network_config.max_retries",
        ),
        (json!({"max_retries": 11}), "network_config.max_retries"),
        (
            json!({"retry_backoff_initial": 60001, "retry_backoff_max": 60001}),
            "network_config.retry_backoff_initial",
        ),
        (
            json!({"retry_backoff_max": 1_000_000_000_000u64}),
            "network_config.retry_backoff_max",
        ),
    ] {
        let r = s.post("/api/providers", provider("p", net)).await;
        let field = param.trim_start_matches("network_config.");
        assert_refused(&r, param, field);
    }
    let ok = json!({"max_retries": 10, "retry_backoff_initial": 0, "retry_backoff_max": 60000});
    let r = s.post("/api/providers", provider("p", ok)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["network_config"]["max_retries"], 10);
});

/// Requests the mock got for its model list.
fn model_fetches(mock: &heimdall_testkit::mock::MockHandle) -> usize {
    mock.requests()
        .iter()
        .filter(|r| r.path == "/v1/models")
        .count()
}

async fn wait_for_fetches(mock: &heimdall_testkit::mock::MockHandle, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while model_fetches(mock) < n {
        assert!(std::time::Instant::now() < deadline, "no model fetches");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Fetches after a provider went away: none over a window of several
/// backoffs (a request already on the wire may still land first).
async fn assert_no_more_fetches(mock: &heimdall_testkit::mock::MockHandle) {
    tokio::time::sleep(Duration::from_millis(50)).await;
    let at_stop = model_fetches(mock);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(model_fetches(mock), at_stop, "the model fetch went on");
}

store_test!(
    deleting_or_replacing_a_provider_stops_its_model_fetch,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        // upstreams that answer every model-list fetch with a 500
        let net = |mock: &heimdall_testkit::mock::MockHandle| {
            json!({"base_url": mock.base_url, "extra_headers": {"x-mock-status": "500"},
                   "max_retries": 10, "retry_backoff_initial": 100, "retry_backoff_max": 100})
        };
        let gone = MockProvider::start(MockOptions::default()).await.unwrap();
        let r = s.post("/api/providers", provider("gone", net(&gone))).await;
        assert_eq!(r.status, 200, "{}", r.text);
        wait_for_fetches(&gone, 2).await;
        let r = s.delete("/api/providers/gone").await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_no_more_fetches(&gone).await;

        // replaced by a configuration on another upstream: the old fetch stops
        let old = MockProvider::start(MockOptions::default()).await.unwrap();
        let new = MockProvider::start(MockOptions::default()).await.unwrap();
        let r = s.post("/api/providers", provider("moved", net(&old))).await;
        assert_eq!(r.status, 200, "{}", r.text);
        wait_for_fetches(&old, 2).await;
        let r = s
            .put("/api/providers/moved", provider("moved", net(&new)))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        wait_for_fetches(&new, 1).await;
        assert_no_more_fetches(&old).await;
        s.delete("/api/providers/moved").await;
        assert_no_more_fetches(&new).await;
    }
);

store_test!(
    unknown_fields_are_refused_in_every_provider_body,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let r = s
            .post("/api/providers", json!({"provider": "x", "zz": 1}))
            .await;
        assert_refused(&r, "zz", "zz");
        let r = s
            .post("/api/providers", provider("x", json!({"timeout": 5})))
            .await;
        assert_refused(&r, "network_config.timeout", "timeout");
        assert_eq!(s.get("/api/providers").await.body["total"], 0);

        let r = s.post("/api/providers", json!({"provider": "x"})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let r = s
            .put("/api/providers/x", json!({"kind": "openai", "zz": true}))
            .await;
        assert_refused(&r, "zz", "zz");
        let key = json!({"name": "k", "value": "sk-abcdefghijklmnop", "zz": 1});
        let r = s.post("/api/providers/x/keys", key).await;
        assert_refused(&r, "zz", "zz");
        let key = json!({"name": "k", "value": {"env_var": "K", "zz": 1}});
        let r = s.post("/api/providers/x/keys", key).await;
        assert_eq!(r.status, 400, "{}", r.text);
        assert!(r.text.contains("zz"), "{}", r.text);
        let r = s
            .post(
                "/api/providers/x/keys",
                json!({"name": "k", "value": "sk-abcdefghijklmnop"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let id = r.body["id"].as_str().unwrap().to_owned();
        let r = s
            .put(
                &format!("/api/providers/x/keys/{id}"),
                json!({"name": "k", "value": "sk-abcdefghijklmnop", "wieght": 2}),
            )
            .await;
        assert_refused(&r, "wieght", "wieght");
    }
);

store_test!(
    answers_show_the_kinds_default_base_url,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        for (name, url) in [
            ("openai", "https://api.openai.com"),
            ("anthropic", "https://api.anthropic.com"),
            ("groq", "https://api.openai.com"),
        ] {
            let r = s.post("/api/providers", json!({"provider": name})).await;
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(r.body["network_config"]["base_url"], url, "{}", r.text);
            let r = s.get(&format!("/api/providers/{name}")).await;
            assert_eq!(r.body["network_config"]["base_url"], url, "{}", r.text);
        }
        let r = s
            .post(
                "/api/providers",
                provider("mine", json!({"base_url": "http://127.0.0.1:9"})),
            )
            .await;
        assert_eq!(r.body["network_config"]["base_url"], "http://127.0.0.1:9");
        let list = s.get("/api/providers").await;
        let anth = list.body["providers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "anthropic")
            .unwrap()
            .clone();
        assert_eq!(
            anth["network_config"]["base_url"],
            "https://api.anthropic.com"
        );
    }
);

store_test!(
    oversized_provider_fields_are_refused,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let url = |n: usize| format!("http://{}", "a".repeat(n - 7));
        let headers = |n: usize| {
            (0..n)
                .map(|i| (format!("x-h{i}"), json!("v")))
                .collect::<serde_json::Map<_, _>>()
        };
        let param = "network_config.extra_headers";
        for (net, param, needle) in [
            (
                json!({"base_url": url(2049)}),
                "network_config.base_url",
                "2048",
            ),
            (
                json!({"base_url": url(1 << 20)}),
                "network_config.base_url",
                "2048",
            ),
            (json!({"extra_headers": headers(65)}), param, "64"),
            (json!({"extra_headers": headers(10_000)}), param, "64"),
            (
                json!({"extra_headers": {"x-".to_owned() + &"n".repeat(255): "v"}}),
                param,
                "256",
            ),
            (
                json!({"extra_headers": {"x-big": "v".repeat(8193)}}),
                param,
                "8192",
            ),
            (
                json!({"extra_headers": {"x-big": "v".repeat(1 << 20)}}),
                param,
                "8192",
            ),
        ] {
            let r = s.post("/api/providers", provider("p", net)).await;
            assert_refused(&r, param, needle);
        }
        let fine = json!({"base_url": url(2048), "extra_headers": headers(64)});
        let r = s.post("/api/providers", provider("p", fine)).await;
        assert_eq!(r.status, 200, "{}", r.text);

        let key =
            |models: Value, value: Value| json!({"name": "k", "value": value, "models": models});
        let sk = json!("sk-abcdefghijklmnop");
        let many: Vec<String> = (0..1001).map(|i| format!("m{i}")).collect();
        for (body, param, needle) in [
            (key(json!(many), sk.clone()), "models", "1000"),
            (
                key(json!(["m".repeat(257)]), sk.clone()),
                "models[0]",
                "256",
            ),
            (
                key(json!(["ok", "m".repeat(1 << 20)]), sk.clone()),
                "models[1]",
                "256",
            ),
            (key(json!([]), json!("s".repeat(8193))), "value", "8192"),
            (
                key(json!([]), json!({"env_var": "E".repeat(8193)})),
                "value",
                "8192",
            ),
        ] {
            let r = s.post("/api/providers/p/keys", body).await;
            assert_refused(&r, param, needle);
        }
        let fine: Vec<String> = (0..1000).map(|i| format!("m{i}")).collect();
        let r = s.post("/api/providers/p/keys", key(json!(fine), sk)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["models"].as_array().unwrap().len(), 1000);
    }
);

store_test!(
    the_config_file_is_held_to_the_same_rules,
    |db: TestDb| async move {
        for (provider, needle) in [
            (
                json!({"network_config": {"max_retries": 4294967295u64}}),
                "max_retries",
            ),
            (
                json!({"network_config": {"default_request_timeout_in_seconds": 9223372036854775807u64}}),
                "default_request_timeout_in_seconds",
            ),
            (json!({"network_config": {"zz": 1}}), "zz"),
            (
                json!({"keys": [{"name": "k", "value": "sk-abcdefghijklmnop", "zz": 1}]}),
                "zz",
            ),
            (
                json!({"keys": [{"name": "k", "value": "sk-abcdefghijklmnop", "models": ["m".repeat(300)]}]}),
                "models[0]",
            ),
        ] {
            let mut config = TestServer::config(&db);
            config.providers = serde_json::from_value(json!({ "seeded": provider })).unwrap();
            let err = match heimdall_server::Server::start(config).await {
                Ok(_) => panic!("a server started with providers.seeded = {provider}"),
                Err(e) => e.to_string(),
            };
            assert!(
                err.contains("providers.seeded") && err.contains(needle),
                "{err:?} should name providers.seeded and {needle}"
            );
        }
    }
);

// A stored network_config that no longer parses (written by another
// version, or by hand) must not turn into the defaults: those point at the
// kind's public host, and the provider's keys would be sent there. The
// provider is skipped (a chat through it is refused by Heimdall) and its
// stored settings are shown as they are.
store_test!(
    a_stored_network_config_that_does_not_parse_is_not_served,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let r = s
            .post(
                "/api/providers",
                provider("openai", json!({"base_url": "http://127.0.0.1:9"})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let r = s
            .post(
                "/api/providers/openai/keys",
                json!({"name": "k", "value": "sk-never-sent"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let store_url = s.store_url.clone();
        s.stop().await;
        sqlx::any::install_default_drivers();
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect(&store_url)
            .await
            .unwrap();
        sqlx::query("UPDATE providers SET network_config = $1 WHERE name = 'openai'")
            .bind(r#"{"base_url": "http://127.0.0.1:9", "from_a_later_version": true}"#)
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;

        let mut config = TestServer::config(&db);
        config.governance.require_virtual_key = false;
        let s = TestServer::start_with(config, None).await;
        let shown = s.get("/api/providers/openai").await;
        assert_eq!(shown.status, 200, "{}", shown.text);
        assert_eq!(
            shown.body["network_config"]["from_a_later_version"], true,
            "{}",
            shown.text
        );
        let r = s
            .client
            .post(s.url("/v1/chat/completions"))
            .json(&json!({"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        assert!(
            (400..500).contains(&status),
            "a provider that is not served is refused by Heimdall, got {status}"
        );
    }
);
