//! `heimdall-bench`: Heimdall's benchmark harness (docs/performance.md).
//!
//! - `run`: builds `heimdall` in release, starts the mock provider, the
//!   floor proxy and two gateways (ungoverned and governed), measures each
//!   against the baseline at fixed arrival rates, JSON and streaming, then
//!   saturation, optionally scale runs, and writes
//!   `bench/results/<date>-<commit>.{json,md}`.
//! - `load`: one open-loop (or closed-loop) run against a URL, printed as JSON.
//! - `floor`: the bare pass-through proxy (a child process of `run`).
//! - `seed`: the bulk loader alone (a SQLite store with N keys).
//! - `scale`: seed and measure start-up and memory at N keys.
//!
//! Benchmarks are not tests: nothing here runs under `cargo test` except the
//! unit tests of the pure parts.

mod checks;
mod floor;
mod load;
mod procfs;
mod procs;
mod report;
mod scale;
mod scenario;
mod seed;
mod setup;
mod stats;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use crate::scenario::{Mode, RunConfig};
use crate::setup::Launcher;

#[derive(Debug, Parser)]
#[command(name = "heimdall-bench", about = "Heimdall's benchmark harness")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Arrival rates, requests per second.
    #[arg(long, value_delimiter = ',', default_value = "1000,5000")]
    rates: Vec<u64>,
    /// Measured time per target, mode, rate and round (`10s`, `500ms`, `1m`).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    duration: Duration,
    /// Warm-up before each measured run (discarded).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    warmup: Duration,
    /// Rounds: each visits every target once, in a rotated order; a cell's
    /// figures merge its rounds (so 5 s × 2 rounds = 10 s per cell).
    #[arg(long, default_value_t = 2)]
    rounds: u32,
    /// `json`, `stream` or both.
    #[arg(long, value_delimiter = ',', default_value = "json,stream")]
    modes: Vec<String>,
    /// Closed-loop time per target for saturation (0 skips it).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    saturation_duration: Duration,
    /// Concurrent closed-loop workers for saturation.
    #[arg(long, default_value_t = 32)]
    saturation_concurrency: usize,
    /// A request must end within this.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
    /// Open loop: most requests in flight (and so connections) at once.
    #[arg(long, default_value_t = 256)]
    max_in_flight: usize,
    /// Scale runs after the load runs, e.g. `100000` or `100000,1000000`.
    #[arg(long, value_delimiter = ',')]
    scale_keys: Vec<u64>,
    /// Templates the scale runs' keys are spread over.
    #[arg(long, default_value_t = 10_000)]
    templates: u64,
    /// `RUST_LOG` of the gateways (`info` is the shipped default and writes
    /// one log line per request).
    #[arg(long, default_value = "info")]
    log_level: String,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args)]
struct Common {
    /// The `heimdall` binary (default: built with cargo, next to this one).
    #[arg(long)]
    heimdall: Option<PathBuf>,
    /// Do not run `cargo build --release -p heimdall` first.
    #[arg(long)]
    no_build: bool,
    /// Do not pin processes to CPUs with taskset.
    #[arg(long)]
    no_pin: bool,
    /// Where the result files go.
    #[arg(long)]
    out_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run every scenario and write the result files.
    Run(RunArgs),
    /// One load run against a URL; prints a JSON summary.
    Load {
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 1000)]
        rate: u64,
        #[arg(long, default_value = "5s", value_parser = parse_duration)]
        duration: Duration,
        #[arg(long)]
        stream: bool,
        /// `Authorization: Bearer` value (a virtual key).
        #[arg(long)]
        bearer: Option<String>,
        /// Closed loop with this many workers instead of a fixed rate.
        #[arg(long)]
        concurrency: Option<usize>,
    },
    /// The floor proxy: forwards everything on `listen` to `upstream`.
    Floor {
        #[arg(long)]
        listen: std::net::SocketAddr,
        #[arg(long)]
        upstream: std::net::SocketAddr,
    },
    /// Write a SQLite store with N keys (the bulk loader alone).
    Seed {
        #[arg(long)]
        db: PathBuf,
        #[arg(long, default_value_t = 100_000)]
        keys: u64,
        #[arg(long, default_value_t = 10_000)]
        templates: u64,
    },
    /// Seed N keys, start Heimdall on them, measure start-up and memory.
    Scale {
        #[arg(long, value_delimiter = ',', default_value = "100000")]
        keys: Vec<u64>,
        #[arg(long, default_value_t = 10_000)]
        templates: u64,
        #[command(flatten)]
        common: Common,
    },
}

/// `10s`, `250ms`, `2m`, or plain seconds (`10`, `0.5`).
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("not a duration: {s}"))?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!("not a duration: {s}"));
    }
    Ok(Duration::from_secs_f64(v * scale))
}

/// Whether a URL host is on this machine.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The workspace this binary was built from.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(workspace())
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Builds (unless told not to) and finds `heimdall`.
fn heimdall_binary(common: &Common) -> anyhow::Result<PathBuf> {
    if let Some(p) = &common.heimdall {
        return Ok(p.clone());
    }
    if !common.no_build {
        eprintln!("[heimdall-bench] cargo build --release -p heimdall");
        let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cargo
            .args(["build", "--release", "-p", "heimdall", "--bin", "heimdall"])
            .current_dir(workspace());
        // `cargo run` gives this process its package's variables; passed on,
        // some build scripts (ring's) see them change and rebuild everything
        for (key, _) in std::env::vars_os() {
            let k = key.to_string_lossy();
            if k.starts_with("CARGO_PKG_")
                || matches!(
                    k.as_ref(),
                    "CARGO_MANIFEST_DIR"
                        | "CARGO_MANIFEST_PATH"
                        | "CARGO_CRATE_NAME"
                        | "CARGO_BIN_NAME"
                        | "CARGO_PRIMARY_PACKAGE"
                )
            {
                cargo.env_remove(&key);
            }
        }
        let status = cargo.status().context("running cargo")?;
        anyhow::ensure!(status.success(), "building heimdall failed");
    }
    let me = std::env::current_exe()?;
    let bin = me
        .parent()
        .map(|d| d.join("heimdall"))
        .context("no directory for the binary")?;
    if !bin.exists() {
        bail!(
            "{} not found: build it (cargo build --release -p heimdall) or pass --heimdall",
            bin.display()
        );
    }
    Ok(bin)
}

/// CPU lists (mock and load generator, proxies) when pinning is possible.
fn pinning(no_pin: bool) -> (Option<String>, Option<String>, String) {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    if no_pin || cores < 2 || !procs::taskset_available() {
        return (None, None, "none".into());
    }
    let last = cores - 1;
    let (low, high) = if last == 1 {
        ("0".to_string(), "1".to_string())
    } else {
        // keep the load side on half the cores, the proxy on the rest
        let half = cores / 2;
        (format!("0-{}", half - 1), format!("{half}-{last}"))
    };
    let label = format!("load generator and mock on CPU {low}, the proxy under test on CPU {high}");
    (Some(low), Some(high), label)
}

fn launcher(
    common: &Common,
    mock_cpus: Option<String>,
    gateway_cpus: Option<String>,
    log_level: &str,
    work: &Path,
) -> anyhow::Result<Launcher> {
    Ok(Launcher {
        heimdall: heimdall_binary(common)?,
        bench: std::env::current_exe()?,
        work: work.to_path_buf(),
        mock_cpus,
        gateway_cpus,
        log_level: log_level.to_string(),
    })
}

fn write_results(dir: &Path, stem: &str, json: &str, md: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let j = dir.join(format!("{stem}.json"));
    let m = dir.join(format!("{stem}.md"));
    std::fs::write(&j, json)?;
    std::fs::write(&m, md)?;
    eprintln!("[heimdall-bench] wrote {} and {}", j.display(), m.display());
    Ok(())
}

fn stem() -> (String, String, bool, String) {
    let date = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let commit = git(&["rev-parse", "--short=10", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    let stem = format!("{date}-{commit}");
    (date, commit, dirty, stem)
}

async fn run(args: RunArgs, pins: (Option<String>, Option<String>, String)) -> anyhow::Result<()> {
    let modes = args
        .modes
        .iter()
        .map(|m| Mode::parse(m))
        .collect::<anyhow::Result<Vec<_>>>()?;
    anyhow::ensure!(
        !args.rates.is_empty() && args.rates.iter().all(|r| *r > 0),
        "rates must be positive"
    );
    let work = tempfile::Builder::new()
        .prefix("heimdall-bench-")
        .tempdir()?;
    let (mock_cpus, gateway_cpus, label) = pins;
    let launcher = launcher(
        &args.common,
        mock_cpus,
        gateway_cpus,
        &args.log_level,
        work.path(),
    )?;
    let cfg = RunConfig {
        rates: args.rates,
        duration: args.duration,
        warmup: args.warmup,
        rounds: args.rounds.max(1),
        modes,
        saturation_duration: args.saturation_duration,
        saturation_concurrency: args.saturation_concurrency,
        timeout: args.timeout,
        max_in_flight: args.max_in_flight,
        scale_keys: args.scale_keys,
        templates: args.templates,
        log_level: args.log_level,
        pinning: label,
        mock_args: setup::MOCK_ARGS.iter().map(|s| s.to_string()).collect(),
        heimdall: launcher.heimdall.display().to_string(),
    };
    let measured = scenario::run(&cfg, &launcher).await?;
    let (date, commit, dirty, stem) = stem();
    let report = report::build(&measured, cfg, procfs::machine(), date, commit, dirty);
    let dir = args
        .common
        .out_dir
        .unwrap_or_else(|| workspace().join("bench/results"));
    write_results(
        &dir,
        &stem,
        &serde_json::to_string_pretty(&report)?,
        &report::markdown(&report),
    )?;
    std::io::stderr().write_all(report::markdown(&report).as_bytes())?;
    Ok(())
}

async fn scale_only(
    keys: Vec<u64>,
    templates: u64,
    common: Common,
    pins: (Option<String>, Option<String>, String),
) -> anyhow::Result<()> {
    let work = tempfile::Builder::new()
        .prefix("heimdall-bench-")
        .tempdir()?;
    let (mock_cpus, gateway_cpus, _) = pins;
    let launcher = launcher(&common, mock_cpus, gateway_cpus, "info", work.path())?;
    let client = load::http_client();
    let mock = launcher.mock(&client).await?;
    let mut out = Vec::new();
    for k in keys {
        out.push(scale::measure(&launcher, &client, &mock.base_url, k, templates).await?);
    }
    mock.proc.stop();
    let (date, commit, dirty, stem) = stem();
    let doc = serde_json::json!({"date": date, "commit": commit, "dirty": dirty, "heimdall": launcher.heimdall.display().to_string(), "machine": procfs::machine(), "scale": out});
    let dir = common
        .out_dir
        .unwrap_or_else(|| workspace().join("bench/results"));
    let mut md = format!(
        "# Scale run {date} at {commit}\n\nGateway binary `{}`.\n\n| keys | templates | DB MB | seed s | ready s | index load ms | idle RSS MB | RSS after requests MB | checks ok |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
        launcher.heimdall.display()
    );
    for x in &out {
        md.push_str(&format!(
            "| {} | {} | {:.0} | {:.1} | {:.1} | {} | {:.0} | {:.0} | {}/{} |\n",
            x.keys,
            x.templates,
            x.db_mb,
            x.seed_s,
            x.ready_s,
            x.index
                .map_or_else(|| "–".to_string(), |i| i.elapsed_ms.to_string()),
            x.rss_idle_kb as f64 / 1024.0,
            x.rss_after_requests_kb as f64 / 1024.0,
            x.check_ok,
            x.check_sent
        ));
    }
    write_results(
        &dir,
        &format!("{stem}-scale"),
        &serde_json::to_string_pretty(&doc)?,
        &md,
    )
}

async fn load_once(
    url: String,
    rate: u64,
    duration: Duration,
    stream: bool,
    bearer: Option<String>,
    concurrency: Option<usize>,
) -> anyhow::Result<()> {
    let mode = if stream { Mode::Stream } else { Mode::Json };
    let mut headers = Vec::new();
    if let Some(b) = bearer {
        headers.push((
            http::header::AUTHORIZATION,
            http::HeaderValue::from_str(&format!("Bearer {b}"))?,
        ));
    }
    let uri: http::Uri = url.parse()?;
    anyhow::ensure!(
        uri.host().is_some_and(is_loopback),
        "the load generator only targets this machine (127.0.0.0/8, localhost, [::1]): {url}"
    );
    let spec = load::RequestSpec {
        uri,
        headers,
        body: bytes::Bytes::from(serde_json::to_vec(&scenario::chat_body(mode))?),
        timeout: Duration::from_secs(10),
        max_in_flight: 256,
    };
    let client = load::http_client();
    let r = match concurrency {
        Some(c) => load::closed_loop(&client, &spec, c, duration).await?,
        None => load::open_loop(&client, &spec, rate, duration).await?,
    };
    let doc = serde_json::json!({
        "sent": r.sent, "ok": r.ok, "errors": r.errors,
        "rps": r.ok as f64 / r.elapsed.as_secs_f64().max(1e-9),
        "latency": stats::summarize(&r.total),
        "ttfb": stats::summarize(&r.ttfb),
        "send_lag": stats::summarize(&r.send_lag),
    });
    writeln!(
        std::io::stdout().lock(),
        "{}",
        serde_json::to_string_pretty(&doc)?
    )?;
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let no_pin = match &cli.command {
        Cmd::Run(a) => a.common.no_pin,
        Cmd::Scale { common, .. } => common.no_pin,
        _ => true,
    };
    let pins = pinning(no_pin);
    if let Some(cpus) = &pins.0 {
        // before the runtime starts, so every thread of the harness follows
        if let Err(e) = procs::pin_self(cpus) {
            eprintln!("heimdall-bench: cannot pin the load generator: {e}");
        }
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("heimdall-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        let work = async move {
            match cli.command {
                Cmd::Run(args) => run(args, pins).await,
                Cmd::Load {
                    url,
                    rate,
                    duration,
                    stream,
                    bearer,
                    concurrency,
                } => load_once(url, rate, duration, stream, bearer, concurrency).await,
                Cmd::Floor { listen, upstream } => floor::serve(listen, upstream).await,
                Cmd::Seed {
                    db,
                    keys,
                    templates,
                } => {
                    let s = seed::seed(&db, keys, templates).await?;
                    eprintln!(
                        "[heimdall-bench] seeded {} keys over {} templates in {:.1} s ({:.0} MB)",
                        s.keys,
                        s.templates,
                        s.elapsed.as_secs_f64(),
                        s.db_bytes as f64 / 1e6
                    );
                    Ok(())
                }
                Cmd::Scale {
                    keys,
                    templates,
                    common,
                } => scale_only(keys, templates, common, pins).await,
            }
        };
        // Ctrl-C or SIGTERM: return, which drops (and so kills) every child
        tokio::select! {
            r = work => r,
            () = interrupted() => bail!("interrupted"),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("heimdall-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn interrupted() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn load_targets_only_loopback() {
        assert!(is_loopback("127.0.0.1"));
        assert!(is_loopback("127.3.2.1"));
        assert!(is_loopback("localhost"));
        assert!(is_loopback("[::1]"));
        assert!(!is_loopback("10.0.0.1"));
        assert!(!is_loopback("example.com"));
    }

    #[test]
    fn the_cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
