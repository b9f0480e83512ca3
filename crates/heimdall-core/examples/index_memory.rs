//! How many heap bytes the policy index holds per user, measured with a
//! counting allocator: builds an index shaped like the scale harness's seed
//! (UUID user, key and limit ids; one copy with two budgets and a request
//! and token rate limit; key names per template) and prints the bytes live
//! after building it with the input records dropped.
//!
//! `cargo run --release -p heimdall-core --example index_memory -- 100000`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use chrono::{TimeZone, Utc};
use heimdall_core::copy::{CopySource, UserCopy};
use heimdall_core::keys::hash_value;
use heimdall_core::money::Money;
use heimdall_core::policy::{KeyRecord, Snapshot};
use heimdall_core::profile::{Budget, Policy, ProviderConfig, RateLimit};

/// Counts live bytes (requested sizes, not the allocator's rounding).
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn policy(t: usize) -> Policy {
    let anchor = Some(Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap());
    let budget = |dur: &str, dollars: i64| Budget {
        id: uuid(),
        max_limit: Money(dollars * 1_000_000_000),
        reset_duration: dur.into(),
        reset_config: None,
        created_at: anchor,
        override_: None,
    };
    Policy {
        provider_configs: vec![ProviderConfig {
            id: t as i64,
            provider_name: "openai".into(),
            all_models_allowed: false,
            allowed_models: vec!["gpt-4o-mini".into(), format!("regex:^bench-{t}-.*$")],
            budgets: vec![],
            rate_limit: None,
        }],
        budgets: vec![budget("1d", 100 + t as i64), budget("1M", 1000)],
        rate_limit: Some(RateLimit {
            id: uuid(),
            token_max_limit: Some(10_000_000),
            token_reset_duration: Some("1h".into()),
            request_max_limit: Some(100_000),
            request_reset_duration: Some("1m".into()),
            token_created_at: anchor,
            request_created_at: anchor,
        }),
        ..Policy::empty()
    }
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let templates = 10_000.min(n);
    let t0 = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
    let mut keys = Vec::with_capacity(n);
    let mut copies = Vec::with_capacity(n);
    for u in 0..n {
        let t = u % templates;
        let user_id = uuid();
        copies.push(UserCopy {
            id: u as i64 + 1,
            user_id: user_id.clone(),
            parent_profile_id: t as i64 + 1,
            name: format!("bench-template-{t}"),
            is_active: true,
            expires_at: None,
            source: CopySource::Direct,
            role_id: None,
            assigned_at: t0,
            policy: policy(t),
            created_at: t0,
            updated_at: t0,
        });
        keys.push(KeyRecord {
            id: uuid(),
            name: format!("bench-template-{t} (profile {})", t + 1),
            user_id,
            hash: hash_value(&format!("sk-bench-{u:040}")),
            previous_hash: None,
            previous_valid_until: None,
            is_active: true,
            expires_at: None,
        });
    }
    let before = live();
    let started = std::time::Instant::now();
    let snapshot = Snapshot::build(&keys, &copies);
    let built = started.elapsed();
    let with_records = live();
    drop(keys);
    drop(copies);
    let index = live();
    println!(
        "{n} users: records {:.1} MB, index {:.1} MB ({} bytes/user), build peak over records {:.1} MB, built in {built:?}",
        before as f64 / 1e6,
        index as f64 / 1e6,
        index / n as isize,
        (with_records - before) as f64 / 1e6,
    );
    use heimdall_core::policy::{CopyEntry, KeyEntry, LimitSlot, UserEntry};
    use std::mem::size_of;
    println!(
        "sizes: key entry {} + 32 (hash), user {} + 16 (Arc), copy {}, slot {}",
        size_of::<KeyEntry>(),
        size_of::<UserEntry>(),
        size_of::<CopyEntry>(),
        size_of::<LimitSlot>()
    );
    std::hint::black_box(&snapshot);
}
