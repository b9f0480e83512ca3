//! Starting what a run measures, and making it ready: the mock provider,
//! the floor proxy, and Heimdall ungoverned (no virtual key required) and
//! governed (a key of a user whose access profile has two budgets and a rate
//! limit, all created through the management API with the admin token).
//!
//! Every server gets a free loopback port, its own store in the run's work
//! directory, and its log beside it.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

use crate::load::HttpClient;
use crate::procs::{self, ChildProc, Spec};

/// The admin token every gateway of a run is started with.
pub const ADMIN_TOKEN: &str = "bench-admin-token-0123456789abcdef";
/// The provider key Heimdall sends to the mock (the mock ignores it).
const PROVIDER_KEY: &str = "sk-mock-bench-0123456789abcd";
/// How long a server may take to answer its first request (a million keys
/// take a while to load).
const START_LIMIT: Duration = Duration::from_secs(900);

/// A started server and where it listens.
#[derive(Debug)]
pub struct Server {
    pub proc: ChildProc,
    pub base_url: String,
    /// From spawn until the first successful request.
    pub ready_after: Duration,
}

/// How to start servers.
#[derive(Debug, Clone)]
pub struct Launcher {
    pub heimdall: PathBuf,
    pub bench: PathBuf,
    pub work: PathBuf,
    /// CPU list of the mock (shared with the load generator).
    pub mock_cpus: Option<String>,
    /// CPU list of the proxies under test.
    pub gateway_cpus: Option<String>,
    /// `RUST_LOG` of the gateways.
    pub log_level: String,
}

/// Mock flags of every run: no added latency, 16 completion tokens in 4
/// stream chunks.
pub const MOCK_ARGS: [&str; 6] = ["--latency-ms", "0", "--tokens", "16", "--chunks", "4"];

impl Launcher {
    /// Starts `heimdall mock-provider`.
    pub async fn mock(&self, client: &HttpClient) -> anyhow::Result<Server> {
        let port = procs::free_port()?;
        let mut args = vec![
            "mock-provider".to_string(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
        ];
        args.extend(MOCK_ARGS.iter().map(|s| s.to_string()));
        let spec = Spec {
            name: "mock",
            program: &self.heimdall,
            args,
            env: vec![("RUST_LOG".into(), "warn".into())],
            cpus: self.mock_cpus.as_deref(),
        };
        let base = format!("http://127.0.0.1:{port}");
        self.start(spec, client, &format!("{base}/v1/models"), base)
            .await
    }

    /// Starts the floor proxy in front of `upstream` (`http://host:port`).
    pub async fn floor(&self, client: &HttpClient, upstream: &str) -> anyhow::Result<Server> {
        let port = procs::free_port()?;
        let upstream = upstream.trim_start_matches("http://").to_string();
        let spec = Spec {
            name: "floor",
            program: &self.bench,
            args: vec![
                "floor".into(),
                "--listen".into(),
                format!("127.0.0.1:{port}"),
                "--upstream".into(),
                upstream,
            ],
            env: vec![],
            cpus: self.gateway_cpus.as_deref(),
        };
        let base = format!("http://127.0.0.1:{port}");
        // through the floor to the mock: ready when both are
        self.start(spec, client, &format!("{base}/v1/models"), base)
            .await
    }

    /// Starts `heimdall serve` on a store at `store_url` (a fresh SQLite file
    /// of the work directory when `None`), with `openai` pointing at the mock.
    pub async fn heimdall(
        &self,
        client: &HttpClient,
        name: &str,
        mock_url: &str,
        governed: bool,
        store_url: Option<&str>,
    ) -> anyhow::Result<Server> {
        let port = procs::free_port()?;
        let config = self.work.join(format!("{name}.yaml"));
        std::fs::write(&config, heimdall_config(mock_url))?;
        let store = match store_url {
            Some(u) => u.to_string(),
            None => format!(
                "sqlite://{}",
                self.work.join(format!("{name}.db")).display()
            ),
        };
        let env = vec![
            ("HEIMDALL_LISTEN".into(), format!("127.0.0.1:{port}")),
            ("HEIMDALL_STORE_URL".into(), store),
            ("HEIMDALL_ADMIN_TOKEN".into(), ADMIN_TOKEN.into()),
            ("HEIMDALL_REQUIRE_VIRTUAL_KEY".into(), governed.to_string()),
            ("HEIMDALL_LOG_FORMAT".into(), "text".into()),
            ("NO_COLOR".into(), "1".into()),
            ("RUST_LOG".into(), self.log_level.clone()),
        ];
        let spec = Spec {
            name,
            program: &self.heimdall,
            args: vec![
                "serve".into(),
                "--config".into(),
                config.display().to_string(),
            ],
            env,
            cpus: self.gateway_cpus.as_deref(),
        };
        let base = format!("http://127.0.0.1:{port}");
        self.start(spec, client, &format!("{base}/health"), base)
            .await
    }

    async fn start(
        &self,
        spec: Spec<'_>,
        client: &HttpClient,
        ready_url: &str,
        base_url: String,
    ) -> anyhow::Result<Server> {
        let since = Instant::now();
        let mut proc = procs::spawn(spec, &self.work)?;
        let ready_after =
            procs::wait_ready(client, &mut proc, ready_url, since, START_LIMIT).await?;
        Ok(Server {
            proc,
            base_url,
            ready_after,
        })
    }
}

fn heimdall_config(mock_url: &str) -> String {
    format!(
        "providers:\n  openai:\n    network_config: {{base_url: \"{mock_url}\"}}\n    keys: [{{name: main, value: \"{PROVIDER_KEY}\"}}]\n"
    )
}

/// One management or inference call with a JSON body; returns the status
/// and the JSON answer (`Null` when the answer is not JSON).
pub async fn call(
    client: &HttpClient,
    method: Method,
    url: &str,
    bearer: &str,
    body: Option<Value>,
) -> anyhow::Result<(StatusCode, Value)> {
    let bytes = match body {
        Some(v) => Bytes::from(serde_json::to_vec(&v)?),
        None => Bytes::new(),
    };
    let req = Request::builder()
        .method(method)
        .uri(url)
        .header(http::header::AUTHORIZATION, format!("Bearer {bearer}"))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(bytes))?;
    let resp = client
        .request(req)
        .await
        .with_context(|| format!("calling {url}"))?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
}

fn expect(status: StatusCode, body: &Value, want: StatusCode, what: &str) -> anyhow::Result<()> {
    if status != want {
        bail!("{what}: expected {want}, got {status}: {body}");
    }
    Ok(())
}

/// Creates the governed identity on a running gateway: a profile granting
/// every `openai` model with two budgets (daily, monthly) and a request and
/// token rate limit far above what a run sends, a user, and a direct copy
/// with its virtual key. Returns the key's value.
pub async fn governed_key(client: &HttpClient, base: &str) -> anyhow::Result<String> {
    let api = |p: &str| format!("{base}/api{p}");
    let profile = json!({
        "name": "bench",
        "description": "benchmark harness profile",
        "provider_configs": [{"provider_name": "openai", "all_models_allowed": true}],
        "budgets": [
            {"max_limit": 1_000_000.0, "reset_duration": "1d"},
            {"max_limit": 10_000_000.0, "reset_duration": "1M"}
        ],
        "rate_limit": {
            "request_max_limit": 1_000_000_000_i64, "request_reset_duration": "1h",
            "token_max_limit": 1_000_000_000_000_i64, "token_reset_duration": "1h"
        }
    });
    let (s, b) = call(
        client,
        Method::POST,
        &api("/access-profiles"),
        ADMIN_TOKEN,
        Some(profile),
    )
    .await?;
    expect(s, &b, StatusCode::CREATED, "creating the profile")?;
    let pid = b["access_profile"]["id"]
        .as_i64()
        .ok_or_else(|| anyhow!("no profile id in {b}"))?;
    let (s, b) = call(
        client,
        Method::PUT,
        &api(&format!("/access-profiles/{pid}/activate")),
        ADMIN_TOKEN,
        None,
    )
    .await?;
    expect(s, &b, StatusCode::OK, "activating the profile")?;
    let user = json!({"name": "Bench User", "email": "bench@example.com"});
    let (s, b) = call(
        client,
        Method::POST,
        &api("/users"),
        ADMIN_TOKEN,
        Some(user),
    )
    .await?;
    expect(s, &b, StatusCode::OK, "creating the user")?;
    let uid = b["user"]["id"]
        .as_str()
        .ok_or_else(|| anyhow!("no user id in {b}"))?
        .to_string();
    let (s, b) = call(
        client,
        Method::POST,
        &api(&format!("/users/{uid}/access-profiles")),
        ADMIN_TOKEN,
        Some(json!({"access_profile_id": pid})),
    )
    .await?;
    expect(s, &b, StatusCode::CREATED, "assigning the profile")?;
    b["virtual_key"]["value"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("no key value in {b}"))
}

/// Sends one chat completion and checks it is a 200 (a smoke test of a
/// target before it is measured).
pub async fn smoke(
    client: &HttpClient,
    base: &str,
    bearer: &str,
    body: &Value,
) -> anyhow::Result<()> {
    let url = format!("{base}/v1/chat/completions");
    let (s, b) = call(client, Method::POST, &url, bearer, Some(body.clone())).await?;
    expect(
        s,
        &b,
        StatusCode::OK,
        &format!("a chat completion at {url}"),
    )
}
