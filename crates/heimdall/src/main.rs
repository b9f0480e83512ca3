//! The `heimdall` binary: command line, configuration, logging, signals.
//! Everything else lives in the library crates.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc returns freed memory to the system far more readily than the
/// platform allocator: the policy index is built from transient records
/// (a million parsed copies at scale), and without it their memory stays
/// resident after the build.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
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
    /// A stand-in upstream speaking the OpenAI and Anthropic wire formats.
    MockProvider(MockArgs),
}

/// Flags of `heimdall mock-provider` (operations.md §Command line).
#[derive(Debug, clap::Args)]
#[cfg_attr(not(feature = "mock-provider"), allow(dead_code))]
struct MockArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8081")]
    listen: std::net::SocketAddr,
    /// Wait before each answer, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Completion tokens per answer.
    #[arg(long, default_value_t = 16)]
    tokens: u64,
    /// Prompt tokens to report (default: ceil(body bytes / 4)).
    #[arg(long)]
    prompt_tokens: Option<u64>,
    /// Content chunks per stream (default: one per token).
    #[arg(long)]
    chunks: Option<u64>,
    /// Fraction of requests that fail with 500 at random (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
}

#[cfg(feature = "mock-provider")]
async fn mock_provider(args: MockArgs) -> Result<(), String> {
    let opts = heimdall_testkit::mock::MockOptions {
        latency_ms: args.latency_ms,
        tokens: args.tokens,
        prompt_tokens: args.prompt_tokens,
        chunks: args.chunks,
        error_rate: args.error_rate.clamp(0.0, 1.0),
        // a long-running mock must not accumulate requests
        record: false,
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(%addr, "mock provider listening (OpenAI and Anthropic formats)");
    heimdall_testkit::mock::serve(listener, opts, shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}

/// Built without the `mock-provider` feature: no test code is linked.
#[cfg(not(feature = "mock-provider"))]
async fn mock_provider(_args: MockArgs) -> Result<(), String> {
    Err(
        "this binary was built without the mock provider (cargo feature `mock-provider`, on by default); build it with that feature to use `heimdall mock-provider`"
            .into(),
    )
}

fn load_config(path: Option<&std::path::Path>) -> Result<Config, String> {
    Config::load(path, &|k| std::env::var(k).ok()).map_err(|e| e.to_string())
}

/// Logs go to stderr through a writer thread: a request's log line is
/// formatted on the worker but written by that thread, so no request waits
/// on the write system call (about a tenth of a governed request's CPU
/// otherwise, measured with `perf`). Lines are never dropped: when the
/// buffer is full the worker waits, as it would on a direct write. The
/// returned guard flushes what is buffered when `main` returns.
/// Colours only on a terminal.
fn init_logging(format: LogFormat) -> tracing_appender::non_blocking::WorkerGuard {
    use std::io::IsTerminal;
    use tracing_subscriber::field::MakeExt;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::stderr().is_terminal();
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        // 16k lines of burst; the default 128k preallocates ~4 MB
        .buffered_lines_limit(16_384)
        .thread_name("heimdall-log")
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer);
    match format {
        LogFormat::Json => builder.json().init(),
        // `name=value` pairs written directly: the default field formatter
        // styles every name and `=` through ANSI wrappers even when colours
        // are off, which cost about a third of a request log line.
        LogFormat::Text if !ansi => builder
            .fmt_fields(
                tracing_subscriber::fmt::format::debug_fn(|w, field, value| {
                    if field.name() == "message" {
                        write!(w, "{value:?}")
                    } else {
                        write!(w, "{field}={value:?}")
                    }
                })
                .delimited(" "),
            )
            .init(),
        LogFormat::Text => builder.init(),
    }
    guard
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

/// Raises the open-file limit to the hard limit (each connection, and each
/// upstream connection it causes, holds a descriptor) and says what it got.
fn raise_open_file_limit(max_connections: usize) {
    match heimdall_server::conn::raise_open_file_limit() {
        Ok((before, now)) => {
            tracing::info!(before, now, "open-file limit");
            if max_connections as u64 > now {
                tracing::warn!(
                    max_connections,
                    open_file_limit = now,
                    "server.max_connections is above the open-file limit; accepting will fail before the bound is reached"
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
    }
}

async fn serve(config: Config) -> Result<(), String> {
    raise_open_file_limit(config.server.max_connections);
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
    if let Command::MockProvider(args) = cli.command {
        let _log = init_logging(LogFormat::Text);
        return match mock_provider(args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("heimdall: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let (config_path, run_serve) = match &cli.command {
        Command::Serve { config } => (config.clone(), true),
        Command::Migrate { config } => (config.clone(), false),
        // handled above, before any configuration is read
        Command::MockProvider(_) => return ExitCode::SUCCESS,
    };
    let config = match load_config(config_path.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("heimdall: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let log = init_logging(config.log.format);
    let result = if run_serve {
        serve(config).await
    } else {
        migrate(config).await
    };
    // every log line out before the last word
    drop(log);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("heimdall: {e}");
            ExitCode::FAILURE
        }
    }
}
