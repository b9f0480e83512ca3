//! Admin authentication on `/api/*`: Bearer token or Basic credentials,
//! 401 in the error envelope otherwise, `/health` public, the generated token
//! stored only as a hash. On SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::*;
use heimdall_core::clock::SystemClock;
use heimdall_testkit::{ADMIN_TOKEN, Reply, TestDb, TestServer, store_test};
use serde_json::{Value, json};

/// Every template route, with a body where it takes one.
fn routes(prefix: &str) -> Vec<(&'static str, String, Option<Value>)> {
    let p = |rest: &str| format!("{prefix}/access-profiles{rest}");
    vec![
        ("GET", p(""), None),
        ("POST", p(""), Some(minimal("Intruder"))),
        ("GET", p("/1"), None),
        ("PUT", p("/1"), Some(json!({"name": "Hijacked"}))),
        ("DELETE", p("/1"), None),
        ("PUT", p("/1/activate"), None),
        ("PUT", p("/1/deactivate"), None),
        ("POST", p("/1/clone"), Some(json!({"name": "Stolen"}))),
        ("GET", p("/1/versions"), None),
        ("GET", p("/1/versions/1"), None),
        ("GET", p("/1/audit-logs"), None),
        ("GET", p("/audit-logs"), None),
    ]
}

async fn send(
    s: &TestServer,
    method: &str,
    path: &str,
    body: &Option<Value>,
    authorization: Option<&str>,
) -> Reply {
    let mut req = s.client.request(method.parse().unwrap(), s.url(path));
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    Reply::read(req.send().await.unwrap()).await
}

fn basic(user: &str, pass: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

/// Asserts that nothing was written by the refused calls.
async fn assert_untouched(s: &TestServer, profile: &Value) {
    assert_eq!(get_profile(s, 1).await, *profile);
    assert_eq!(profile_count(s).await, 1);
    assert_eq!(audit_count(s).await, 1);
}

store_test!(every_route_needs_credentials, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    let p = create(&s, minimal("Guarded")).await;
    let wrong_token = format!("Bearer {ADMIN_TOKEN}x");
    let truncated = format!("Bearer {}", &ADMIN_TOKEN[..ADMIN_TOKEN.len() - 1]);
    let upper = format!("Bearer {}", ADMIN_TOKEN.to_uppercase());
    let bare = ADMIN_TOKEN.to_string();
    let basic_token = basic("admin", ADMIN_TOKEN);
    let bad: Vec<Option<&str>> = vec![
        None,
        Some(""),
        Some("Bearer"),
        Some("Bearer "),
        Some(&wrong_token),
        Some(&truncated),
        Some(&upper),
        Some(&bare),
        Some(&basic_token),
        Some("Basic !!!not-base64"),
        Some("Digest username=admin"),
    ];
    for prefix in PREFIXES {
        for (method, path, body) in routes(prefix) {
            for auth in &bad {
                let r = send(&s, method, &path, &body, *auth).await;
                assert_error(&r, 401, "unauthorized");
            }
        }
    }
    assert_untouched(&s, &p).await;
    s.stop().await;
});

store_test!(bearer_token_is_accepted, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    for auth in [
        format!("Bearer {ADMIN_TOKEN}"),
        format!("bearer {ADMIN_TOKEN}"),
        format!("BEARER  {ADMIN_TOKEN} "),
    ] {
        let r = send(&s, "GET", &profiles(""), &None, Some(&auth)).await;
        assert_eq!(r.status, 200, "{auth:?}: {}", r.text);
    }
    s.stop().await;
});

store_test!(basic_credentials_when_configured, |db: TestDb| async move {
    let mut config = TestServer::config(&db);
    config.admin.username = Some("alice".to_string());
    config.admin.password = Some("wonderland-42".to_string());
    let s = TestServer::start_with(config, None).await;
    let ok = basic("alice", "wonderland-42");
    let r = send(
        &s,
        "POST",
        &profiles(""),
        &Some(minimal("Alice's")),
        Some(&ok),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let log = audit_of(&s, 1).await;
    assert_eq!(log[0]["actor"], "alice");
    // The token still works alongside, and is recorded as `token`.
    let r = s
        .put(&profiles("/1"), json!({"description": "by token"}))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(audit_of(&s, 1).await[0]["actor"], "token");
    let p = get_profile(&s, 1).await;
    for wrong in [
        basic("alice", "wonderland-43"),
        basic("alice", ""),
        basic("Alice", "wonderland-42"),
        basic("bob", "wonderland-42"),
        basic("alice", "wonderland-42 "),
        "Basic YWxpY2U=".to_string(), // "alice" without a colon
    ] {
        for prefix in PREFIXES {
            for (method, path, body) in routes(prefix) {
                let r = send(&s, method, &path, &body, Some(&wrong)).await;
                assert_error(&r, 401, "unauthorized");
            }
        }
    }
    assert_eq!(get_profile(&s, 1).await, p);
    assert_eq!(audit_count(&s).await, 2);
    s.stop().await;
});

store_test!(
    basic_credentials_are_refused_when_not_configured,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let r = send(
            &s,
            "GET",
            &profiles(""),
            &None,
            Some(&basic("admin", "admin")),
        )
        .await;
        assert_error(&r, 401, "unauthorized");
        let r = send(&s, "GET", &profiles(""), &None, Some(&basic("", ""))).await;
        assert_error(&r, 401, "unauthorized");
        s.stop().await;
    }
);

store_test!(health_is_public, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    for auth in [
        None,
        Some("Bearer wrong"),
        Some(format!("Bearer {ADMIN_TOKEN}").as_str()),
    ] {
        let r = send(&s, "GET", "/health", &None, auth).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(
            r.body,
            json!({"status": "ok", "components": {"store": "ok", "redis": "disabled"}})
        );
    }
    s.stop().await;
});

store_test!(
    legacy_refusals_are_marked_deprecated_too,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let r = send(&s, "GET", &format!("{LEGACY}/access-profiles"), &None, None).await;
        assert_error(&r, 401, "unauthorized");
        assert!(deprecated(&r), "legacy answers carry Deprecation: true");
        let r = send(&s, "GET", &profiles(""), &None, None).await;
        assert_error(&r, 401, "unauthorized");
        assert!(!deprecated(&r));
        s.stop().await;
    }
);

/// A server started by hand without a configured admin token (the harness
/// always configures one).
struct Manual {
    base: String,
    client: reqwest::Client,
    tx: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Manual {
    async fn start(db: &TestDb) -> (Manual, Option<String>) {
        let mut config = TestServer::config(db);
        config.admin.token = None;
        let server = heimdall_server::Server::start_with_clock(config, Arc::new(SystemClock))
            .await
            .unwrap();
        let generated = server.generated_admin_token.clone();
        let addr = server.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(async move {
            let _ = rx.await;
        }));
        (
            Manual {
                base: format!("http://{addr}"),
                client: reqwest::Client::new(),
                tx: Some(tx),
                task: Some(task),
            },
            generated,
        )
    }

    async fn get(&self, path: &str, token: &str) -> Reply {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        Reply::read(r).await
    }

    async fn stop(mut self) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

store_test!(
    generated_token_is_kept_hashed_across_restarts,
    |db: TestDb| async move {
        let (first, token) = Manual::start(&db).await;
        let token = token.expect("a token is generated at first start");
        assert!(token.len() >= 32, "{token}");
        assert_eq!(first.get(&profiles(""), &token).await.status, 200);
        assert_error(
            &first.get(&profiles(""), ADMIN_TOKEN).await,
            401,
            "unauthorized",
        );
        first.stop().await;

        // The store holds a hash, never the token.
        let store = heimdall_store::Store::connect(&db.url).await.unwrap();
        let stored = store
            .get_setting("admin_token_sha256")
            .await
            .unwrap()
            .expect("stored hash");
        assert_ne!(stored, token);
        assert!(!stored.contains(&token));
        assert_eq!(stored.len(), 64);
        assert!(stored.bytes().all(|b| b.is_ascii_hexdigit()));
        store.close().await;

        // A second start prints nothing new, and the first token still works.
        let (second, again) = Manual::start(&db).await;
        assert_eq!(again, None, "the token is generated only once");
        assert_eq!(second.get(&profiles(""), &token).await.status, 200);
        assert_error(
            &second.get(&profiles(""), "hd-admin-guess").await,
            401,
            "unauthorized",
        );
        second.stop().await;
    }
);
