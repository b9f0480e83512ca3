//! A real Heimdall server on 127.0.0.1:0 for integration tests, with a
//! client that speaks to it and returns status, headers and JSON.

use std::sync::Arc;

use heimdall_core::clock::{Clock, ManualClock, SystemClock};
use heimdall_server::{AppState, Config, Server};
use reqwest::header::HeaderMap;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::db::TestDb;

/// The admin token every test server is configured with.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// A running server.
pub struct TestServer {
    pub base_url: String,
    pub store_url: String,
    pub client: reqwest::Client,
    pub clock: Option<Arc<ManualClock>>,
    /// The server's shared state, for calling background jobs directly.
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

/// A response, read whole.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    /// `body[key]`, for brevity in assertions.
    pub fn get(&self, key: &str) -> &Value {
        &self.body[key]
    }
}

impl TestServer {
    /// The configuration tests start from: port 0, the given store, a fixed
    /// admin token, ungoverned inference allowed.
    pub fn config(db: &TestDb) -> Config {
        let mut c = Config::default();
        c.server.listen = "127.0.0.1:0".to_string();
        c.store.url = db.url.clone();
        c.admin.token = Some(ADMIN_TOKEN.to_string());
        c
    }

    /// Starts a server on `db` with the default test configuration.
    pub async fn start(db: &TestDb) -> TestServer {
        TestServer::start_with(TestServer::config(db), None).await
    }

    /// Starts a server with `config`, and a manual clock when given.
    pub async fn start_with(config: Config, clock: Option<Arc<ManualClock>>) -> TestServer {
        let store_url = config.store.url.clone();
        let dyn_clock: Arc<dyn Clock> = match &clock {
            Some(c) => c.clone(),
            None => Arc::new(SystemClock),
        };
        let server = Server::start_with_clock(config, dyn_clock)
            .await
            .expect("server starts");
        let addr = server.local_addr().expect("bound address");
        let state = server.state().clone();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(async move {
            let _ = rx.await;
        }));
        TestServer {
            base_url: format!("http://{addr}"),
            store_url,
            client: reqwest::Client::new(),
            clock,
            state,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("server task")
                .expect("server stopped cleanly");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// Sends a request with the admin token; `body` is sent as JSON when given.
    pub async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        let req = self
            .client
            .request(method.parse().expect("method"), self.url(path))
            .bearer_auth(ADMIN_TOKEN);
        let req = match body {
            Some(b) => req.json(&b),
            None => req,
        };
        Reply::read(req.send().await.expect("request sent")).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.admin("GET", path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.admin("POST", path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.admin("PUT", path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.admin("DELETE", path, None).await
    }

    /// Sends raw bytes with the admin token (for malformed bodies).
    pub async fn raw(&self, method: &str, path: &str, body: Vec<u8>) -> Reply {
        let req = self
            .client
            .request(method.parse().expect("method"), self.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", "application/json")
            .body(body);
        Reply::read(req.send().await.expect("request sent")).await
    }
}

impl Reply {
    pub async fn read(resp: reqwest::Response) -> Reply {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
