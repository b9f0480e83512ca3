//! The scenarios of one `heimdall-bench run`: start the mock, the floor and
//! two Heimdall gateways; then for each mode (JSON, stream) and rate, in
//! rounds that visit every target in a rotated order (so that a burst of
//! noise from the shared machine does not land on one target only), warm up
//! and measure an open-loop run, reading the server's CPU ticks and memory
//! around it; then the saturation throughput of each target (closed loop).
//!
//! The baseline is the same load straight to the mock; its "server" figures
//! (CPU, RSS) are the mock's, shown for context. Results of the rounds of
//! one cell (target × mode × rate) are merged: histograms added, CPU and
//! request counts summed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http::{HeaderName, HeaderValue, Uri};
use serde::Serialize;
use serde_json::{Value, json};

use crate::load::{self, HttpClient, LoadResult, RequestSpec};
use crate::procfs::{self, CpuTicks, MachineTicks, Memory};
use crate::scale::{self, ScaleOutcome};
use crate::setup::{self, Launcher, Server};
use crate::stats::new_histogram;

/// Non-streaming or streaming chat completions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Json,
    Stream,
}

impl Mode {
    pub fn parse(s: &str) -> anyhow::Result<Mode> {
        match s.trim() {
            "json" | "nonstream" | "non-stream" => Ok(Mode::Json),
            "stream" | "sse" => Ok(Mode::Stream),
            other => anyhow::bail!("unknown mode {other} (json or stream)"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::Json => "json",
            Mode::Stream => "stream",
        }
    }
}

/// What is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Baseline,
    Floor,
    Ungoverned,
    Governed,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Baseline => "baseline",
            Kind::Floor => "floor",
            Kind::Ungoverned => "ungoverned",
            Kind::Governed => "governed",
        }
    }
}

/// The knobs of a run.
#[derive(Debug, Clone, Serialize)]
pub struct RunConfig {
    pub rates: Vec<u64>,
    #[serde(serialize_with = "secs")]
    pub duration: Duration,
    #[serde(serialize_with = "secs")]
    pub warmup: Duration,
    pub rounds: u32,
    pub modes: Vec<Mode>,
    #[serde(serialize_with = "secs")]
    pub saturation_duration: Duration,
    pub saturation_concurrency: usize,
    #[serde(serialize_with = "secs")]
    pub timeout: Duration,
    pub max_in_flight: usize,
    pub scale_keys: Vec<u64>,
    pub templates: u64,
    pub log_level: String,
    /// e.g. "load generator and mock on CPU 0, proxies on CPU 1", or "none".
    pub pinning: String,
    pub mock_args: Vec<String>,
    /// The `heimdall` binary measured (the commit in the file names is the
    /// harness's; a binary passed with `--heimdall` may be another build).
    pub heimdall: String,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// One target × mode × rate, merged over rounds.
#[derive(Debug)]
pub struct Cell {
    pub kind: Kind,
    pub mode: Mode,
    pub rate: u64,
    pub sent: u64,
    pub ok: u64,
    pub errors: BTreeMap<String, u64>,
    pub total: Histogram<u64>,
    pub ttfb: Histogram<u64>,
    pub send_lag: Histogram<u64>,
    pub measured: Duration,
    pub server_ticks: u64,
    pub loadgen_ticks: u64,
    /// CPU ticks of the machine while measuring: busy, all, and the part
    /// spent by the processes of this run (server, mock, load generator);
    /// the rest is other people's work on a shared machine.
    pub machine: MachineTicks,
    pub ours_ticks: u64,
    pub memory_after: Memory,
}

impl Cell {
    fn new(kind: Kind, mode: Mode, rate: u64) -> anyhow::Result<Cell> {
        Ok(Cell {
            kind,
            mode,
            rate,
            sent: 0,
            ok: 0,
            errors: BTreeMap::new(),
            total: new_histogram()?,
            ttfb: new_histogram()?,
            send_lag: new_histogram()?,
            measured: Duration::ZERO,
            server_ticks: 0,
            loadgen_ticks: 0,
            machine: MachineTicks::default(),
            ours_ticks: 0,
            memory_after: Memory::default(),
        })
    }

    fn add(&mut self, r: &LoadResult, ticks: Ticks, mem: Memory) {
        self.sent += r.sent;
        self.ok += r.ok;
        for (k, v) in &r.errors {
            *self.errors.entry(k.clone()).or_insert(0) += v;
        }
        // same bounds everywhere: adding cannot fail, and a failure would
        // only drop values from a merged view
        let _ = self.total.add(&r.total);
        let _ = self.ttfb.add(&r.ttfb);
        let _ = self.send_lag.add(&r.send_lag);
        self.measured += r.elapsed;
        self.server_ticks += ticks.server;
        self.loadgen_ticks += ticks.loadgen;
        self.ours_ticks += ticks.ours;
        self.machine.busy += ticks.machine.busy;
        self.machine.total += ticks.machine.total;
        self.memory_after = mem;
    }
}

/// CPU ticks spent during one measured run.
#[derive(Debug, Clone, Copy)]
struct Ticks {
    server: u64,
    loadgen: u64,
    ours: u64,
    machine: MachineTicks,
}

/// Readings taken before and after a measured run.
struct Probe {
    server: CpuTicks,
    mock: CpuTicks,
    me: CpuTicks,
    machine: MachineTicks,
}

impl Probe {
    fn take(server: u32, mock: u32) -> anyhow::Result<Probe> {
        Ok(Probe {
            server: procfs::cpu_ticks(server)?,
            mock: procfs::cpu_ticks(mock)?,
            me: procfs::cpu_ticks(std::process::id())?,
            machine: procfs::machine_ticks()?,
        })
    }

    fn since(&self, before: &Probe, server_is_mock: bool) -> Ticks {
        let server = self.server.since(before.server);
        let loadgen = self.me.since(before.me);
        let mock = if server_is_mock {
            0
        } else {
            self.mock.since(before.mock)
        };
        Ticks {
            server,
            loadgen,
            ours: server + loadgen + mock,
            machine: MachineTicks {
                busy: self.machine.busy.saturating_sub(before.machine.busy),
                total: self.machine.total.saturating_sub(before.machine.total),
            },
        }
    }
}

/// Saturation of one target.
#[derive(Debug)]
pub struct Saturation {
    pub kind: Kind,
    pub result: LoadResult,
    pub server_ticks: u64,
}

/// Everything a run measured, before it is rendered.
#[derive(Debug)]
pub struct Measurements {
    pub cells: Vec<Cell>,
    pub saturation: Vec<Saturation>,
    /// Resident set of each server after start-up and set-up, before load.
    pub idle: BTreeMap<Kind, Memory>,
    pub ready: BTreeMap<Kind, Duration>,
    pub scale: Vec<ScaleOutcome>,
    pub ticks_per_second: u64,
}

struct Target {
    kind: Kind,
    base: String,
    pid: u32,
    bearer: Option<String>,
}

/// The request body: a short chat with a small completion.
pub fn chat_body(mode: Mode) -> Value {
    let mut body = json!({
        "model": "openai/gpt-4o-mini",
        "messages": [{"role": "user", "content": "Say hello to the benchmark."}],
        "max_tokens": 16
    });
    if mode == Mode::Stream {
        body["stream"] = Value::Bool(true);
    }
    body
}

fn request_spec(t: &Target, mode: Mode, cfg: &RunConfig) -> anyhow::Result<RequestSpec> {
    let uri: Uri = format!("{}/v1/chat/completions", t.base).parse()?;
    let mut headers = Vec::new();
    if let Some(key) = &t.bearer {
        headers.push((
            HeaderName::from_static("authorization"),
            HeaderValue::from_str(&format!("Bearer {key}"))?,
        ));
    }
    Ok(RequestSpec {
        uri,
        headers,
        body: Bytes::from(serde_json::to_vec(&chat_body(mode))?),
        timeout: cfg.timeout,
        max_in_flight: cfg.max_in_flight,
    })
}

fn progress(msg: &str) {
    eprintln!("[heimdall-bench] {msg}");
}

/// Starts everything, measures, stops everything.
pub async fn run(cfg: &RunConfig, launcher: &Launcher) -> anyhow::Result<Measurements> {
    let client = load::http_client();
    progress("starting the mock, the floor and two gateways");
    let mock = launcher.mock(&client).await?;
    let floor = launcher.floor(&client, &mock.base_url).await?;
    let ungoverned = launcher
        .heimdall(&client, "ungoverned", &mock.base_url, false, None)
        .await?;
    let governed = launcher
        .heimdall(&client, "governed", &mock.base_url, true, None)
        .await?;
    let key = setup::governed_key(&client, &governed.base_url).await?;
    let servers: [(Kind, &Server); 4] = [
        (Kind::Baseline, &mock),
        (Kind::Floor, &floor),
        (Kind::Ungoverned, &ungoverned),
        (Kind::Governed, &governed),
    ];
    let targets: Vec<Target> = servers
        .iter()
        .map(|(kind, s)| Target {
            kind: *kind,
            base: s.base_url.clone(),
            pid: s.proc.pid,
            bearer: (*kind == Kind::Governed).then(|| key.clone()),
        })
        .collect();
    for t in &targets {
        let bearer = t.bearer.as_deref().unwrap_or("none");
        setup::smoke(&client, &t.base, bearer, &chat_body(Mode::Json))
            .await
            .map_err(|e| anyhow::anyhow!("{} failed its smoke test: {e}", t.kind.name()))?;
    }
    let mut idle = BTreeMap::new();
    let mut ready = BTreeMap::new();
    for (kind, s) in servers {
        idle.insert(kind, procfs::memory(s.proc.pid)?);
        ready.insert(kind, s.ready_after);
    }
    let cells = open_loop_cells(cfg, &client, &targets).await?;
    let saturation = saturation(cfg, &client, &targets).await?;
    let mut scale = Vec::new();
    for &keys in &cfg.scale_keys {
        progress(&format!(
            "scale: seeding {keys} keys over {} templates",
            cfg.templates
        ));
        scale.push(scale::measure(launcher, &client, &mock.base_url, keys, cfg.templates).await?);
    }
    for s in [governed, ungoverned, floor, mock] {
        s.proc.stop();
    }
    Ok(Measurements {
        cells,
        saturation,
        idle,
        ready,
        scale,
        ticks_per_second: procfs::ticks_per_second(),
    })
}

async fn open_loop_cells(
    cfg: &RunConfig,
    client: &HttpClient,
    targets: &[Target],
) -> anyhow::Result<Vec<Cell>> {
    let mock_pid = targets
        .iter()
        .find(|t| t.kind == Kind::Baseline)
        .map_or(0, |t| t.pid);
    let mut cells = Vec::new();
    for &mode in &cfg.modes {
        for &rate in &cfg.rates {
            let mut row: Vec<Cell> = targets
                .iter()
                .map(|t| Cell::new(t.kind, mode, rate))
                .collect::<anyhow::Result<_>>()?;
            for round in 0..cfg.rounds {
                for i in 0..targets.len() {
                    let idx = (i + round as usize) % targets.len();
                    let t = &targets[idx];
                    let spec = request_spec(t, mode, cfg)?;
                    if !cfg.warmup.is_zero() {
                        load::open_loop(client, &spec, rate, cfg.warmup).await?;
                    }
                    let before = Probe::take(t.pid, mock_pid)?;
                    let r = load::open_loop(client, &spec, rate, cfg.duration).await?;
                    let ticks = Probe::take(t.pid, mock_pid)?.since(&before, t.pid == mock_pid);
                    let mem = procfs::memory(t.pid)?;
                    progress(&format!(
                        "{} {} {rate}/s round {}: {} ok of {}, p50 {:.0} µs, p99 {:.0} µs",
                        mode.name(),
                        t.kind.name(),
                        round + 1,
                        r.ok,
                        r.sent,
                        r.total.value_at_quantile(0.5) as f64 / 1e3,
                        r.total.value_at_quantile(0.99) as f64 / 1e3,
                    ));
                    row[idx].add(&r, ticks, mem);
                }
            }
            cells.extend(row);
        }
    }
    Ok(cells)
}

async fn saturation(
    cfg: &RunConfig,
    client: &HttpClient,
    targets: &[Target],
) -> anyhow::Result<Vec<Saturation>> {
    let mut out = Vec::new();
    if cfg.saturation_duration.is_zero() {
        return Ok(out);
    }
    for t in targets {
        let spec = request_spec(t, Mode::Json, cfg)?;
        let warm = cfg.warmup.min(Duration::from_secs(1));
        load::closed_loop(client, &spec, cfg.saturation_concurrency, warm).await?;
        let s0 = procfs::cpu_ticks(t.pid)?;
        let started = Instant::now();
        let r = load::closed_loop(
            client,
            &spec,
            cfg.saturation_concurrency,
            cfg.saturation_duration,
        )
        .await?;
        let s1 = procfs::cpu_ticks(t.pid)?;
        progress(&format!(
            "saturation {}: {:.0} req/s ({} ok, {} errors) in {:.1} s",
            t.kind.name(),
            r.ok as f64 / r.elapsed.as_secs_f64(),
            r.ok,
            r.errors.values().sum::<u64>(),
            started.elapsed().as_secs_f64()
        ));
        out.push(Saturation {
            kind: t.kind,
            result: r,
            server_ticks: s1.since(s0),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse() {
        assert_eq!(Mode::parse("json").unwrap(), Mode::Json);
        assert_eq!(Mode::parse(" stream ").unwrap(), Mode::Stream);
        assert!(Mode::parse("grpc").is_err());
    }

    #[test]
    fn the_stream_body_asks_for_a_stream() {
        assert_eq!(chat_body(Mode::Stream)["stream"], true);
        assert!(chat_body(Mode::Json).get("stream").is_none());
    }
}
