//! The cost of one governance decision, in process: hash the presented key,
//! look it up, pick the governing copy, reserve its limits, settle. Run with
//! 1k, 100k and 1M keys over 10k templates; the figure must not grow with the
//! number of keys (performance.md). Criterion gives the median; an HDR loop
//! afterwards gives p50/p99/p99.9 per size.
//!
//! `cargo bench -p heimdall-core --bench decision` (set HEIMDALL_BENCH_SIZES
//! to e.g. "1000,100000" to skip the 1M build).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use criterion::{BenchmarkId, Criterion};
use heimdall_core::copy::{CopySource, UserCopy};
use heimdall_core::keys::hash_value;
use heimdall_core::money::Money;
use heimdall_core::policy::{
    CounterStore, Demand, KeyRecord, Settlement, Snapshot, admit, identify, key_hash,
};
use heimdall_core::profile::{Budget, Policy, ProviderConfig, RateLimit};

const TEMPLATES: usize = 10_000;

fn template_policy(i: usize) -> Policy {
    let anchor = Some(Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap());
    let budget = |id: String, dur: &str| Budget {
        id,
        max_limit: Money(1_000_000_000_000),
        reset_duration: dur.into(),
        reset_config: None,
        created_at: anchor,
        override_: None,
    };
    let allowed = if i.is_multiple_of(2) {
        vec!["gpt-4o-mini".to_string(), format!("model-{i}")]
    } else {
        vec!["regex:gpt-4o.*".to_string()]
    };
    Policy {
        provider_configs: vec![ProviderConfig {
            id: i as i64,
            provider_name: "openai".into(),
            all_models_allowed: false,
            allowed_models: allowed,
            budgets: vec![],
            rate_limit: None,
        }],
        budgets: vec![
            budget(format!("t{i}-d"), "1d"),
            budget(format!("t{i}-M"), "1M"),
        ],
        rate_limit: Some(RateLimit {
            id: format!("t{i}-rl"),
            token_max_limit: Some(u64::MAX / 4),
            token_reset_duration: Some("1h".into()),
            request_max_limit: Some(u64::MAX / 4),
            request_reset_duration: Some("1m".into()),
            token_created_at: anchor,
            request_created_at: anchor,
        }),
        ..Policy::empty()
    }
}

/// A world of `n` users, one copy and one key each, over 10k templates.
fn world(n: usize) -> (Snapshot, Vec<String>) {
    let t0 = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
    let templates: Vec<Policy> = (0..TEMPLATES.min(n)).map(template_policy).collect();
    let mut copies = Vec::with_capacity(n);
    let mut keys = Vec::with_capacity(n);
    let mut values = Vec::with_capacity(n);
    for u in 0..n {
        let mut p = templates[u % templates.len()].clone();
        // Each copy has its own limit ids (its own counters).
        for b in &mut p.budgets {
            b.id = format!("{}-{u}", b.id);
        }
        if let Some(rl) = &mut p.rate_limit {
            rl.id = format!("{}-{u}", rl.id);
        }
        copies.push(UserCopy {
            id: u as i64,
            user_id: format!("user-{u}"),
            parent_profile_id: (u % TEMPLATES) as i64,
            name: format!("profile {}", u % TEMPLATES),
            is_active: true,
            expires_at: None,
            source: CopySource::Direct,
            role_id: None,
            assigned_at: t0,
            policy: p,
            created_at: t0,
            updated_at: t0,
        });
        let value = format!("sk-bf-bench{u:035}");
        keys.push(KeyRecord {
            id: format!("k{u}"),
            name: format!("key {u}"),
            user_id: format!("user-{u}"),
            hash: hash_value(&value),
            previous_hash: None,
            previous_valid_until: None,
            is_active: true,
            expires_at: None,
        });
        values.push(value);
    }
    (Snapshot::build(&keys, &copies), values)
}

fn decide(s: &Snapshot, counters: &CounterStore, value: &str) {
    let now = Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).unwrap();
    let caller = identify(s, Some(&key_hash(value)), now).unwrap();
    let demand = Demand {
        provider: "openai",
        model: "gpt-4o-mini",
        tokens: 1_100,
        cost: Some(700_000),
        deny_unpriced: false,
    };
    let a = admit(&caller, &demand, counters, None, now).unwrap();
    a.reservation.settle(
        Settlement {
            success: true,
            tokens: 1_000,
            cost: 600_000,
        },
        now,
    );
    black_box(a.copy_id);
}

fn sizes() -> Vec<usize> {
    std::env::var("HEIMDALL_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 100_000, 1_000_000])
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut report = Vec::new();
    for n in sizes() {
        let built = Instant::now();
        let (snapshot, values) = world(n);
        eprintln!("built {n} keys in {:?}", built.elapsed());
        let counters = CounterStore::default();
        let mut i = 0usize;
        c.bench_with_input(BenchmarkId::new("decision", n), &n, |b, _| {
            b.iter(|| {
                // Walk keys with a stride so lookups are not all cache-hot.
                i = (i + 7_919) % values.len();
                decide(&snapshot, &counters, &values[i]);
            })
        });
        let mut h = hdrhistogram::Histogram::<u64>::new(3).unwrap();
        for j in 0..200_000usize {
            let v = &values[(j * 7_919) % values.len()];
            let t = Instant::now();
            decide(&snapshot, &counters, v);
            h.record(t.elapsed().as_nanos() as u64).unwrap();
        }
        report.push((
            n,
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999),
        ));
    }
    c.final_summary();
    println!("\nHDR loop (200k decisions each), nanoseconds:");
    println!("| keys | p50 | p99 | p99.9 |");
    println!("|---:|---:|---:|---:|");
    for (n, p50, p99, p999) in report {
        println!("| {n} | {p50} | {p99} | {p999} |");
    }
}
