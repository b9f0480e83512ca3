//! The `heimdall` binary: command line, configuration, logging, signals.
//! Everything else lives in the library crates.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use heimdall_server::config::LogFormat;
use heimdall_server::{Config, Server};

#[derive(Debug, Parser)]
#[command(
    name = "heimdall",
    version,
    about = "Heimdall: an LLM gateway with access profiles, budgets and rate limits"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway (management API and inference on one port).
    Serve {
        /// YAML configuration file (optional; environment variables win).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Apply store migrations and exit.
    Migrate {
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

fn load_config(path: Option<&std::path::Path>) -> Result<Config, String> {
    Config::load(path, &|k| std::env::var(k).ok()).map_err(|e| e.to_string())
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// Resolves when SIGINT or SIGTERM arrives.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}

async fn serve(config: Config) -> Result<(), String> {
    let server = Server::start(config).await.map_err(|e| e.to_string())?;
    if let Some(token) = &server.generated_admin_token {
        tracing::warn!(
            "generated an admin token (shown only this once; only its hash is stored): {token}"
        );
    }
    let addr = server.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(%addr, store = ?server.state().store.backend(), "heimdall listening");
    server
        .serve(shutdown_signal())
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!("heimdall stopped");
    Ok(())
}

async fn migrate(config: Config) -> Result<(), String> {
    let store = heimdall_store::Store::open(&config.store.url)
        .await
        .map_err(|e| format!("cannot migrate the store: {e}"))?;
    store.close().await;
    tracing::info!("store migrations applied");
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let (config_path, run_serve) = match &cli.command {
        Command::Serve { config } => (config.clone(), true),
        Command::Migrate { config } => (config.clone(), false),
    };
    let config = match load_config(config_path.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("heimdall: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(config.log.format);
    let result = if run_serve {
        serve(config).await
    } else {
        migrate(config).await
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("heimdall: {e}");
            ExitCode::FAILURE
        }
    }
}
