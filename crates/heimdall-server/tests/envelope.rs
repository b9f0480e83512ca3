//! The error envelope on errors that no handler decides: unknown routes,
//! wrong methods, bodies over `server.max_body_bytes`. On SQLite and
//! PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use heimdall_testkit::{ADMIN_TOKEN, Reply, TestDb, TestServer, store_test};
use serde_json::json;

store_test!(unknown_routes_are_not_found, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    for path in [
        "/nope",
        "/",
        "/api",
        "/api/governance",
        "/api/governance/nope",
        "/api/governance/access-profile",
        "/api/governance/access-profiles/1/nope",
        "/api/governance/access-profiles/1/versions/1/extra",
        "/api/access-profiles/1/nope",
        "/healthz",
    ] {
        for method in ["GET", "POST", "PUT", "DELETE"] {
            let body = (method != "GET" && method != "DELETE").then(|| json!({}));
            let r = s.admin(method, path, body).await;
            assert_error(&r, 404, "not_found");
            assert!(
                r.body["error"]["message"].as_str().unwrap().contains(path),
                "{}",
                r.text
            );
        }
    }
    // Without credentials too.
    let r = Reply::read(s.client.get(s.url("/nope")).send().await.unwrap()).await;
    assert_error(&r, 404, "not_found");
    s.stop().await;
});

store_test!(wrong_methods_are_not_allowed, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    create(&s, minimal("Target")).await;
    let before = get_profile(&s, 1).await;
    let audit_before = audit_count(&s).await;
    for prefix in PREFIXES {
        let p = |rest: &str| format!("{prefix}/access-profiles{rest}");
        let cases = [
            ("DELETE", p("")),
            ("PUT", p("")),
            ("PATCH", p("")),
            ("POST", p("/1")),
            ("PATCH", p("/1")),
            ("GET", p("/1/activate")),
            ("POST", p("/1/activate")),
            ("DELETE", p("/1/deactivate")),
            ("GET", p("/1/clone")),
            ("PUT", p("/1/clone")),
            ("POST", p("/1/versions")),
            ("DELETE", p("/1/versions/1")),
            ("POST", p("/1/audit-logs")),
            ("DELETE", p("/audit-logs")),
            ("POST", p("/audit-logs")),
        ];
        for (method, path) in cases {
            let r = s.admin(method, &path, Some(json!({"name": "x"}))).await;
            assert_error(&r, 405, "method_not_allowed");
            let msg = r.body["error"]["message"].as_str().unwrap();
            assert!(msg.contains(method), "{msg}");
            assert_eq!(deprecated(&r), prefix == LEGACY, "{method} {path}");
        }
    }
    let r = s.admin("POST", "/health", Some(json!({}))).await;
    assert_error(&r, 405, "method_not_allowed");
    assert_eq!(get_profile(&s, 1).await, before);
    assert_eq!(audit_count(&s).await, audit_before);
    assert_eq!(profile_count(&s).await, 1);
    s.stop().await;
});

store_test!(
    bodies_over_the_limit_are_too_large,
    |db: TestDb| async move {
        let mut config = TestServer::config(&db);
        config.server.max_body_bytes = 1024;
        let s = TestServer::start_with(config, None).await;
        create(&s, minimal("Small")).await;
        let before = get_profile(&s, 1).await;
        let big = serde_json::to_vec(&json!({"name": "x".repeat(2000)})).unwrap();
        for prefix in PREFIXES {
            for (method, path) in [
                ("POST", format!("{prefix}/access-profiles")),
                ("PUT", format!("{prefix}/access-profiles/1")),
                ("POST", format!("{prefix}/access-profiles/1/clone")),
            ] {
                let r = s.raw(method, &path, big.clone()).await;
                assert_error(&r, 413, "request_too_large");
                assert!(
                    r.body["error"]["message"]
                        .as_str()
                        .unwrap()
                        .contains("1024"),
                    "{}",
                    r.text
                );
            }
        }
        // Also when the length is not announced (chunked).
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
            big.chunks(100).map(|c| Ok(c.to_vec())).collect();
        let r = s
            .client
            .post(s.url(&profiles("")))
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
            .send()
            .await
            .unwrap();
        let r = Reply::read(r).await;
        assert_error(&r, 413, "request_too_large");
        // A body at the limit is read (and judged on its content).
        let head = r#"{"name": "Fits", "description": ""#;
        let pad = 1024 - head.len() - 2;
        let exact = format!("{head}{}\"}}", "d".repeat(pad)).into_bytes();
        assert_eq!(exact.len(), 1024);
        let r = s.raw("POST", &profiles(""), exact).await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(get_profile(&s, 1).await, before);
        assert_eq!(profile_count(&s).await, 2);
        assert_eq!(audit_count(&s).await, 2);
        s.stop().await;
    }
);

store_test!(
    a_33_mib_body_is_too_large_by_default,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        // Valid JSON, so that only its size is wrong.
        let mut body = b"{\"name\": \"Huge\", \"description\": \"".to_vec();
        body.resize(33 * 1024 * 1024, b'd');
        body.extend_from_slice(b"\"}");
        let r = s.raw("POST", &profiles(""), body).await;
        assert_error(&r, 413, "request_too_large");
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&(32 * 1024 * 1024).to_string()),
            "{}",
            r.text
        );
        assert_eq!(profile_count(&s).await, 0);
        assert_eq!(audit_count(&s).await, 0);
        s.stop().await;
    }
);

store_test!(every_error_has_its_own_event_id, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..5 {
        for r in [
            s.get("/nope").await,
            s.get(&profiles("/9")).await,
            s.post(&profiles(""), json!({})).await,
        ] {
            assert!(r.status >= 400);
            assert!(seen.insert(r.body["event_id"].as_str().unwrap().to_string()));
        }
    }
    s.stop().await;
});

store_test!(
    wrong_methods_answer_alike_under_both_prefixes,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        for rest in ["", "/1", "/1/activate", "/audit-logs"] {
            let mut statuses = Vec::new();
            for prefix in PREFIXES {
                let url = s.url(&format!("{prefix}/access-profiles{rest}"));
                let r = Reply::read(s.client.patch(url).send().await.unwrap()).await;
                assert!(matches!(r.status, 401 | 405), "{}", r.text);
                assert_error(
                    &r,
                    r.status,
                    if r.status == 401 {
                        "unauthorized"
                    } else {
                        "method_not_allowed"
                    },
                );
                assert_eq!(deprecated(&r), prefix == LEGACY);
                statuses.push(r.status);
            }
            assert_eq!(statuses[0], statuses[1], "{rest}");
        }
        s.stop().await;
    }
);
