//! Server lifecycle: open the store, prepare admin credentials, bind, serve
//! until told to stop, then drain. Used by the binary and by test harnesses.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use heimdall_core::clock::{Clock, SystemClock};
use heimdall_store::{Store, StoreError};
use tokio::net::TcpListener;

use crate::auth::AdminAuth;
use crate::config::Config;
use crate::router;
use crate::state::AppState;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the store: {0}")]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
}

/// How long in-flight requests may run after a shutdown signal.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// A server ready to serve: store open, listener bound.
pub struct Server {
    state: AppState,
    listener: TcpListener,
    /// The admin token generated at this start, if any (print it once).
    pub generated_admin_token: Option<String>,
}

impl Server {
    /// Opens the store (applying migrations), prepares admin credentials and
    /// binds the listen address of `config`.
    pub async fn start(config: Config) -> Result<Server, StartError> {
        Server::start_with_clock(config, Arc::new(SystemClock)).await
    }

    /// As [`Server::start`], with an injected clock (tests).
    pub async fn start_with_clock(
        config: Config,
        clock: Arc<dyn Clock>,
    ) -> Result<Server, StartError> {
        let addr = config.listen_addr()?;
        let store = Store::open(&config.store.url).await?;
        let (admin, generated) = AdminAuth::init(&store, &config.admin).await?;
        let providers = crate::provider_admin::Registry::start(&store, &config).await?;
        let governance = Arc::new(crate::governance::Governance::start(&store).await?);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind {
                addr: addr.to_string(),
                source,
            })?;
        let state = AppState {
            store,
            config: Arc::new(config),
            clock,
            admin: Arc::new(admin),
            providers,
            usage: governance.clone(),
            governance,
        };
        Ok(Server {
            state,
            listener,
            generated_admin_token: generated,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests
    /// and closes the store.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let app = router::build(self.state.clone());
        let background = tokio::spawn(crate::maintenance::run(self.state.clone()));
        let flusher = tokio::spawn(crate::governance::flush_loop(self.state.clone()));
        let limits = crate::conn::Limits::from_config(&self.state.config.server);
        crate::conn::serve(self.listener, app, limits, shutdown, SHUTDOWN_GRACE).await;
        background.abort();
        flusher.abort();
        // Every counter to the store before exit, so a restart continues
        // exactly where this run stopped.
        match crate::governance::flush_now(&self.state, true).await {
            Ok(n) => tracing::info!(counters = n, "usage flushed"),
            Err(e) => tracing::error!(error = %e, "final usage flush failed"),
        }
        self.state.store.close().await;
        Ok(())
    }
}
