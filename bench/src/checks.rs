//! The targets of `performance.md`, checked against one run. Every latency
//! and CPU target is a ratio of the governed gateway to the floor measured in
//! the same run; the judged rate is 1,000 req/s (or the lowest rate run, said
//! so in the detail). A target that the run did not measure is reported with
//! no verdict rather than guessed.

use std::collections::BTreeMap;

use crate::procfs::Memory;
use crate::report::{RunRow, SaturationRow, TargetCheck};
use crate::scale::ScaleOutcome;
use crate::scenario::{Kind, Mode, RunConfig};
use crate::stats::{at_least, at_most, ratio};

/// The rate at which targets are judged.
pub const JUDGED_RATE: u64 = 1000;

fn find(runs: &[RunRow], kind: Kind, mode: Mode, rate: u64) -> Option<&RunRow> {
    runs.iter()
        .find(|r| r.target == kind && r.mode == mode && r.rate == rate)
}

fn check(
    figure: &str,
    target: &str,
    measured: Option<f64>,
    unit: &str,
    met: Option<bool>,
    detail: String,
) -> TargetCheck {
    TargetCheck {
        figure: figure.into(),
        target: target.into(),
        measured,
        unit: unit.into(),
        met,
        detail,
    }
}

/// Every target of performance.md with the run's figure.
pub fn checks(
    runs: &[RunRow],
    saturation: &[SaturationRow],
    idle: &BTreeMap<Kind, Memory>,
    scale: &[ScaleOutcome],
    cfg: &RunConfig,
) -> Vec<TargetCheck> {
    let rate = if cfg.rates.contains(&JUDGED_RATE) {
        JUDGED_RATE
    } else {
        cfg.rates.iter().copied().min().unwrap_or(JUDGED_RATE)
    };
    let at = format!("at {rate} req/s");
    let gov = find(runs, Kind::Governed, Mode::Json, rate);
    let floor = find(runs, Kind::Floor, Mode::Json, rate);
    let mut out = Vec::new();
    for (label, limit, pick) in [
        (
            "p50",
            1.2,
            (|o: &crate::stats::Overhead| o.p50_us) as fn(&_) -> f64,
        ),
        ("p99", 1.5, |o: &crate::stats::Overhead| o.p99_us),
    ] {
        let g = gov.and_then(|r| r.overhead).map(|o| pick(&o));
        let f = floor.and_then(|r| r.overhead).map(|o| pick(&o));
        let m = g.zip(f).and_then(|(g, f)| ratio(g, f));
        out.push(check(
            &format!("governed overhead {label} {at}"),
            &format!("≤ {limit} × floor"),
            m,
            "× floor",
            at_most(m, limit),
            format!("governed {} µs, floor {} µs", fmt(g), fmt(f)),
        ));
    }
    let g = gov.and_then(|r| r.cpu_us_per_request);
    let f = floor.and_then(|r| r.cpu_us_per_request);
    let m = g.zip(f).and_then(|(g, f)| ratio(g, f));
    out.push(check(
        "governed CPU per request",
        "≤ 1.5 × floor",
        m,
        "× floor",
        at_most(m, 1.5),
        format!(
            "governed {} µs, floor {} µs ({at}, non-streaming)",
            fmt(g),
            fmt(f)
        ),
    ));
    let sat = |k: Kind| saturation.iter().find(|s| s.target == k).map(|s| s.rps);
    let (g, f) = (sat(Kind::Governed), sat(Kind::Floor));
    let m = g.zip(f).and_then(|(g, f)| ratio(g, f));
    out.push(check(
        "governed saturation throughput",
        "≥ 0.7 × floor",
        m,
        "× floor",
        at_least(m, 0.7),
        format!("governed {} req/s, floor {} req/s", fmt(g), fmt(f)),
    ));
    let ttfb = |k: Kind| {
        find(runs, k, Mode::Stream, rate)
            .and_then(|r| r.ttfb_overhead)
            .map(|o| o.p99_us)
    };
    let (g, f) = (ttfb(Kind::Governed), ttfb(Kind::Floor));
    let m = g.zip(f).and_then(|(g, f)| ratio(g, f));
    out.push(check(
        "streaming: added time to first byte p99",
        "≤ 1.5 × floor",
        m,
        "× floor",
        at_most(m, 1.5),
        format!("governed {} µs, floor {} µs ({at})", fmt(g), fmt(f)),
    ));
    out.push(check(
        "governance decision, in-process",
        "≤ 1 µs median and p99, flat 1k→1M keys",
        None,
        "",
        None,
        "not measured by this harness: criterion benchmark in heimdall-core".into(),
    ));
    let idle_mb = |k: Kind| idle.get(&k).map(|m| m.rss_kb as f64 / 1024.0);
    let m = idle_mb(Kind::Governed);
    out.push(check(
        "idle RSS",
        "≤ 30 MB",
        m,
        "MB",
        at_most(m, 30.0),
        format!(
            "governed gateway after set-up, before load (ungoverned {} MB)",
            fmt(idle_mb(Kind::Ungoverned))
        ),
    ));
    let million = scale.iter().find(|s| s.keys >= 1_000_000);
    let m = million.map(|s| s.rss_after_requests_kb as f64 / 1024.0);
    let detail = match (million, scale.iter().map(|s| s.keys).max()) {
        (Some(s), _) => format!(
            "{} keys over {} templates; idle {} MB, ready in {:.1} s",
            s.keys,
            s.templates,
            s.rss_idle_kb / 1024,
            s.ready_s
        ),
        (None, Some(k)) => format!("not run at 1M keys (largest scale run: {k} keys)"),
        (None, None) => "no scale run (`--scale-keys 1000000`)".into(),
    };
    out.push(check(
        "RSS with 1M virtual keys",
        "≤ 600 MB",
        m,
        "MB",
        at_most(m, 600.0),
        detail,
    ));
    out
}

fn fmt(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:.0}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{Overhead, Percentiles};

    fn run(target: Kind, mode: Mode, p50: f64, p99: f64, cpu: f64) -> RunRow {
        let o = Overhead {
            p50_us: p50,
            p90_us: p50,
            p99_us: p99,
            p999_us: p99,
        };
        RunRow {
            target,
            mode,
            rate: 1000,
            sent: 1,
            ok: 1,
            errors: BTreeMap::new(),
            achieved_rps: 1000.0,
            latency: Percentiles::default(),
            overhead: Some(o),
            ttfb: None,
            ttfb_overhead: (mode == Mode::Stream).then_some(o),
            cpu_us_per_request: Some(cpu),
            loadgen_cpu_us_per_request: None,
            rss_after_kb: 0,
            hwm_kb: 0,
            send_lag_p99_us: 0.0,
            machine_busy_pct: None,
            others_busy_pct: None,
        }
    }

    fn config() -> RunConfig {
        RunConfig {
            rates: vec![1000, 5000],
            duration: std::time::Duration::from_secs(1),
            warmup: std::time::Duration::ZERO,
            rounds: 1,
            modes: vec![Mode::Json, Mode::Stream],
            saturation_duration: std::time::Duration::ZERO,
            saturation_concurrency: 1,
            timeout: std::time::Duration::from_secs(1),
            max_in_flight: 1,
            scale_keys: vec![],
            templates: 1,
            log_level: "info".into(),
            pinning: "none".into(),
            mock_args: vec![],
            heimdall: "heimdall".into(),
        }
    }

    #[test]
    fn ratios_to_the_floor_decide_the_verdicts() {
        let runs = vec![
            run(Kind::Floor, Mode::Json, 100.0, 200.0, 40.0),
            run(Kind::Governed, Mode::Json, 110.0, 400.0, 80.0),
            run(Kind::Floor, Mode::Stream, 100.0, 200.0, 40.0),
            run(Kind::Governed, Mode::Stream, 100.0, 250.0, 40.0),
        ];
        let mut idle = BTreeMap::new();
        idle.insert(
            Kind::Governed,
            Memory {
                rss_kb: 20 * 1024,
                hwm_kb: 0,
            },
        );
        let c = checks(&runs, &[], &idle, &[], &config());
        let by = |f: &str| c.iter().find(|x| x.figure.starts_with(f)).unwrap();
        assert_eq!(by("governed overhead p50").measured, Some(1.1));
        assert_eq!(by("governed overhead p50").met, Some(true));
        assert_eq!(by("governed overhead p99").measured, Some(2.0));
        assert_eq!(by("governed overhead p99").met, Some(false));
        assert_eq!(by("governed CPU").met, Some(false));
        assert_eq!(by("streaming").measured, Some(1.25));
        assert_eq!(by("governed saturation").met, None);
        assert_eq!(by("idle RSS").met, Some(true));
        assert_eq!(by("RSS with 1M").met, None);
    }
}
