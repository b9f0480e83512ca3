//! Turning measurements into the two result files: a JSON document with
//! every figure, and a Markdown page with the tables and the targets of
//! `performance.md` beside the measured ratios. Overheads are against the
//! baseline of the same mode and rate; ratios are against the floor of the
//! same run.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::procfs::Machine;
use crate::scale::ScaleOutcome;
use crate::scenario::{Cell, Kind, Measurements, Mode, RunConfig};
use crate::stats::{self, Overhead, Percentiles};

/// One target × mode × rate in the report.
#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    pub target: Kind,
    pub mode: Mode,
    pub rate: u64,
    pub sent: u64,
    pub ok: u64,
    pub errors: BTreeMap<String, u64>,
    pub achieved_rps: f64,
    pub latency: Percentiles,
    pub overhead: Option<Overhead>,
    /// Streams only: time to first byte and what the target adds to it.
    pub ttfb: Option<Percentiles>,
    pub ttfb_overhead: Option<Overhead>,
    /// The server process's CPU (the mock's for the baseline).
    pub cpu_us_per_request: Option<f64>,
    pub loadgen_cpu_us_per_request: Option<f64>,
    pub rss_after_kb: u64,
    pub hwm_kb: u64,
    pub send_lag_p99_us: f64,
    /// Share of the machine's CPU busy while measuring, and the share of it
    /// spent by processes outside this run (noise from a shared machine).
    pub machine_busy_pct: Option<f64>,
    pub others_busy_pct: Option<f64>,
}

/// Saturation of one target.
#[derive(Debug, Clone, Serialize)]
pub struct SaturationRow {
    pub target: Kind,
    pub concurrency: usize,
    pub rps: f64,
    pub ok: u64,
    pub errors: BTreeMap<String, u64>,
    pub latency: Percentiles,
    pub cpu_us_per_request: Option<f64>,
}

/// A target of performance.md beside the measured figure.
#[derive(Debug, Clone, Serialize)]
pub struct TargetCheck {
    pub figure: String,
    pub target: String,
    pub measured: Option<f64>,
    pub unit: String,
    pub met: Option<bool>,
    pub detail: String,
}

/// The JSON result file.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub date: String,
    pub commit: String,
    pub dirty: bool,
    pub machine: Machine,
    pub config: RunConfig,
    pub idle_rss_kb: BTreeMap<Kind, u64>,
    pub ready_ms: BTreeMap<Kind, f64>,
    pub runs: Vec<RunRow>,
    pub saturation: Vec<SaturationRow>,
    pub scale: Vec<ScaleOutcome>,
    pub targets: Vec<TargetCheck>,
}

fn row(cell: &Cell, baseline: Option<&Cell>, tps: u64) -> RunRow {
    let latency = stats::summarize(&cell.total);
    let stream = cell.mode == Mode::Stream;
    let ttfb = stream.then(|| stats::summarize(&cell.ttfb));
    let base = baseline.filter(|b| b.kind != cell.kind);
    RunRow {
        target: cell.kind,
        mode: cell.mode,
        rate: cell.rate,
        sent: cell.sent,
        ok: cell.ok,
        errors: cell.errors.clone(),
        achieved_rps: if cell.measured.is_zero() {
            0.0
        } else {
            cell.ok as f64 / cell.measured.as_secs_f64()
        },
        latency,
        overhead: base.map(|b| stats::overhead(&latency, &stats::summarize(&b.total))),
        ttfb,
        ttfb_overhead: match (ttfb, base) {
            (Some(t), Some(b)) => Some(stats::overhead(&t, &stats::summarize(&b.ttfb))),
            _ => None,
        },
        cpu_us_per_request: stats::cpu_us_per_request(cell.server_ticks, tps, cell.sent),
        loadgen_cpu_us_per_request: stats::cpu_us_per_request(cell.loadgen_ticks, tps, cell.sent),
        rss_after_kb: cell.memory_after.rss_kb,
        hwm_kb: cell.memory_after.hwm_kb,
        send_lag_p99_us: stats::summarize(&cell.send_lag).p99_us,
        machine_busy_pct: stats::ratio(cell.machine.busy as f64 * 100.0, cell.machine.total as f64),
        others_busy_pct: stats::ratio(
            cell.machine.busy.saturating_sub(cell.ours_ticks) as f64 * 100.0,
            cell.machine.total as f64,
        ),
    }
}

/// Builds the report of a run.
pub fn build(
    m: &Measurements,
    config: RunConfig,
    machine: Machine,
    date: String,
    commit: String,
    dirty: bool,
) -> Report {
    let tps = m.ticks_per_second;
    let runs: Vec<RunRow> = m
        .cells
        .iter()
        .map(|c| {
            let base = m
                .cells
                .iter()
                .find(|b| b.kind == Kind::Baseline && b.mode == c.mode && b.rate == c.rate);
            row(c, base, tps)
        })
        .collect();
    let saturation: Vec<SaturationRow> = m
        .saturation
        .iter()
        .map(|s| SaturationRow {
            target: s.kind,
            concurrency: config.saturation_concurrency,
            rps: s.result.ok as f64 / s.result.elapsed.as_secs_f64().max(1e-9),
            ok: s.result.ok,
            errors: s.result.errors.clone(),
            latency: stats::summarize(&s.result.total),
            cpu_us_per_request: stats::cpu_us_per_request(s.server_ticks, tps, s.result.sent),
        })
        .collect();
    let idle_rss_kb = m.idle.iter().map(|(k, v)| (*k, v.rss_kb)).collect();
    let ready_ms = m
        .ready
        .iter()
        .map(|(k, v)| (*k, v.as_secs_f64() * 1e3))
        .collect();
    let targets = crate::checks::checks(&runs, &saturation, &m.idle, &m.scale, &config);
    Report {
        date,
        commit,
        dirty,
        machine,
        config,
        idle_rss_kb,
        ready_ms,
        runs,
        saturation,
        scale: m.scale.clone(),
        targets,
    }
}

fn f0(v: f64) -> String {
    format!("{v:.0}")
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".to_string(), |v| format!("{v:.digits$}"))
}

fn errors(e: &BTreeMap<String, u64>) -> String {
    if e.is_empty() {
        return "0".into();
    }
    e.iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The Markdown page.
pub fn markdown(r: &Report) -> String {
    let mut s = String::new();
    let c = &r.config;
    let _ = writeln!(
        s,
        "# Benchmark run {} at {}{}\n",
        r.date,
        r.commit,
        if r.dirty { " (dirty)" } else { "" }
    );
    let _ = writeln!(
        s,
        "Machine: {} cores ({} available to the harness), {}, {} MB, kernel {}, load average at the end {}.  ",
        r.machine.cores,
        r.machine.cores_available,
        r.machine.cpu_model,
        r.machine.mem_total_mb,
        r.machine.kernel,
        r.machine.load_average
    );
    let _ = writeln!(
        s,
        "Gateway binary `{}`. Pinning: {}. Open loop, {} s per cell and round after {} s of warm-up, {} round(s) interleaved, at most {} requests in flight; mock `{}`; gateway log level `{}`.\n",
        c.heimdall,
        c.pinning,
        c.duration.as_secs_f64(),
        c.warmup.as_secs_f64(),
        c.rounds,
        c.max_in_flight,
        c.mock_args.join(" "),
        c.log_level
    );
    let _ = writeln!(
        s,
        "Latency in µs from the scheduled send time to the end of the body; overhead = target − baseline at the same percentile; CPU = the server process's user+system time per request (the mock's for the baseline); others' CPU = share of the machine's CPU used by processes outside this run while the cell was measured (noise).\n"
    );
    for mode in &c.modes {
        let _ = writeln!(
            s,
            "## {}\n",
            if *mode == Mode::Json {
                "Non-streaming"
            } else {
                "Streaming"
            }
        );
        let _ = writeln!(
            s,
            "| target | rate | p50 | p90 | p99 | p99.9 | max | overhead p50 | overhead p99 | overhead p99.9 | CPU µs/req | RSS MB | errors | others' CPU % |"
        );
        let _ = writeln!(
            s,
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |"
        );
        for row in r.runs.iter().filter(|x| x.mode == *mode) {
            let o = row.overhead;
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {} | {} |",
                row.target.name(),
                row.rate,
                f0(row.latency.p50_us),
                f0(row.latency.p90_us),
                f0(row.latency.p99_us),
                f0(row.latency.p999_us),
                f0(row.latency.max_us),
                opt(o.map(|o| o.p50_us), 0),
                opt(o.map(|o| o.p99_us), 0),
                opt(o.map(|o| o.p999_us), 0),
                opt(row.cpu_us_per_request, 1),
                row.rss_after_kb as f64 / 1024.0,
                errors(&row.errors),
                opt(row.others_busy_pct, 0)
            );
        }
        if *mode == Mode::Stream {
            let _ = writeln!(s, "\nTime to first byte (first body chunk):\n");
            let _ = writeln!(
                s,
                "| target | rate | TTFB p50 | TTFB p99 | TTFB p99.9 | added TTFB p50 | added TTFB p99 |"
            );
            let _ = writeln!(s, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
            for row in r.runs.iter().filter(|x| x.mode == *mode) {
                let Some(t) = row.ttfb else { continue };
                let o = row.ttfb_overhead;
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {} | {} |",
                    row.target.name(),
                    row.rate,
                    f0(t.p50_us),
                    f0(t.p99_us),
                    f0(t.p999_us),
                    opt(o.map(|o| o.p50_us), 0),
                    opt(o.map(|o| o.p99_us), 0)
                );
            }
        }
        let _ = writeln!(s);
    }
    if !r.saturation.is_empty() {
        let _ = writeln!(
            s,
            "## Saturation (closed loop, {} concurrent, non-streaming)\n",
            c.saturation_concurrency
        );
        let _ = writeln!(
            s,
            "| target | req/s | p50 µs | p99 µs | CPU µs/req | errors |"
        );
        let _ = writeln!(s, "| --- | ---: | ---: | ---: | ---: | --- |");
        for x in &r.saturation {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} |",
                x.target.name(),
                f0(x.rps),
                f0(x.latency.p50_us),
                f0(x.latency.p99_us),
                opt(x.cpu_us_per_request, 1),
                errors(&x.errors)
            );
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(s, "## Memory and start-up\n");
    let _ = writeln!(s, "| process | idle RSS MB | ready after ms |");
    let _ = writeln!(s, "| --- | ---: | ---: |");
    for (k, v) in &r.idle_rss_kb {
        let ready = r.ready_ms.get(k).copied();
        let name = if *k == Kind::Baseline {
            "mock"
        } else {
            k.name()
        };
        let _ = writeln!(
            s,
            "| {name} | {:.1} | {} |",
            *v as f64 / 1024.0,
            opt(ready, 0)
        );
    }
    if !r.scale.is_empty() {
        let _ = writeln!(
            s,
            "\n### Scale (one user, one copy and one key each; seeded directly)\n"
        );
        let _ = writeln!(
            s,
            "| keys | templates | DB MB | seed s | ready s | index load ms | idle RSS MB | RSS after requests MB | checks ok |"
        );
        let _ = writeln!(
            s,
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        );
        for x in &r.scale {
            let _ = writeln!(
                s,
                "| {} | {} | {:.0} | {:.1} | {:.1} | {} | {:.0} | {:.0} | {}/{} |",
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
            );
        }
    }
    let _ = writeln!(s, "\n## Targets (performance.md)\n");
    let _ = writeln!(s, "| figure | target | measured | met | how |");
    let _ = writeln!(s, "| --- | --- | ---: | --- | --- |");
    for t in &r.targets {
        let met = match t.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "–",
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} {} | {} | {} |",
            t.figure,
            t.target,
            opt(t.measured, 2),
            t.unit,
            met,
            t.detail
        );
    }
    s
}
