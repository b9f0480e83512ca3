//! The decision of governance.md §1–§4: identify the caller, choose the
//! governing copy, check and reserve every applicable limit, and settle the
//! reservation with real usage afterwards.
//!
//! The flow (as TensorZero writes its rate-limit flow): estimate → reserve
//! (all applicable counters locked in a fixed order, checked, then reserved
//! together) → call upstream → settle (remove the reservation, add real
//! usage). Because in-flight work is reserved, concurrent requests cannot all
//! pass a check that only settled usage would let through.

use std::sync::Arc;
use std::sync::mpsc::Sender;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use smallvec::SmallVec;

use super::counter::{Counter, CounterStore};
use super::denial::{Denial, LimitBreach};
use super::rules::Grant;
use super::snapshot::{CopyEntry, KeyHash, LimitSlot, Snapshot, UserEntry};
use crate::copy::CounterKind;
use crate::windows::cycles_remaining;

/// The caller a key identifies.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key_id: super::ids::CompactId,
    pub key_name: Arc<str>,
    pub user: Arc<UserEntry>,
}

/// §1–§2: from a key hash to a caller with at least one live copy.
pub fn identify(
    snapshot: &Snapshot,
    hash: Option<&KeyHash>,
    now: DateTime<Utc>,
) -> Result<Caller, Denial> {
    let hash = hash.ok_or(Denial::VirtualKeyRequired)?;
    let key = snapshot.key(hash, now).ok_or(Denial::VirtualKeyNotFound)?;
    if !key.is_active {
        return Err(Denial::KeyInactive(key.name.to_string()));
    }
    if key.expires_at.is_some_and(|e| e <= now) {
        return Err(Denial::KeyExpired(key.name.to_string()));
    }
    if !key.user.copies.iter().any(|c| c.is_live(now)) {
        return Err(Denial::NoActiveProfile);
    }
    Ok(Caller {
        key_id: key.key_id.clone(),
        key_name: key.name.clone(),
        user: key.user.clone(),
    })
}

/// What a request needs admitted.
#[derive(Debug, Clone)]
pub struct Demand<'a> {
    pub provider: &'a str,
    pub model: &'a str,
    /// Estimated tokens (prompt estimate + output cap).
    pub tokens: i64,
    /// Estimated cost in nano-dollars; `None` when the model has no price.
    pub cost: Option<i64>,
    /// `governance.unpriced_models: deny`.
    pub deny_unpriced: bool,
}

/// Where a reservation was made, to settle it in the same counter. Holds
/// copies of the window layout rather than the shared definition, so that
/// settling does not touch reference counts shared between requests.
#[derive(Debug)]
struct Held {
    counter: Arc<Counter>,
    kind: CounterKind,
    spec: crate::windows::WindowSpec,
    anchor: i64,
    amount: i64,
}

/// Per-request lists stay on the stack for the usual handful of limits.
type Small<T> = SmallVec<[T; 6]>;

/// Reserved capacity of one admitted request. Settle it with the real usage;
/// dropping it unsettled releases the reservation and charges nothing.
#[derive(Debug)]
pub struct Reservation {
    held: Small<Held>,
    dirty: Option<Sender<Arc<Counter>>>,
    settled: bool,
}

/// The tightest remaining limit of one kind, for response headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Headroom {
    pub limit: i64,
    pub remaining: i64,
    /// Seconds until the window resets.
    pub reset_secs: u64,
}

/// Remaining capacity after admission (x-ratelimit-* and budget headers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Headrooms {
    pub requests: Option<Headroom>,
    pub tokens: Option<Headroom>,
    /// Smallest remaining budget, nano-dollars.
    pub budget_remaining: Option<i64>,
}

/// An admitted request.
#[derive(Debug)]
pub struct Admission {
    pub copy_id: i64,
    pub copy_name: Arc<str>,
    pub parent_profile_id: i64,
    pub headrooms: Headrooms,
    pub reservation: Reservation,
}

/// Real usage of a finished call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settlement {
    /// Whether the upstream call succeeded (only then is the request counted).
    pub success: bool,
    pub tokens: i64,
    /// Nano-dollars.
    pub cost: i64,
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(v: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(v).single().unwrap_or_default()
}

fn slot_applies(slot: &LimitSlot, provider: &str) -> bool {
    match &slot.def.owner {
        crate::profile::LimitOwner::Profile => true,
        crate::profile::LimitOwner::Provider(p) => p == provider,
    }
}

fn effective_max(slot: &LimitSlot, window_index: i64) -> i64 {
    match slot.override_.as_deref() {
        Some(o)
            if o.cycles
                .is_none_or(|n| cycles_remaining(o.set_window_index, n, window_index) > 0) =>
        {
            slot.def.max.saturating_add(o.amount)
        }
        _ => slot.def.max,
    }
}

/// §3–§4: picks the governing copy and reserves its limits.
pub fn admit(
    caller: &Caller,
    demand: &Demand<'_>,
    counters: &CounterStore,
    dirty: Option<&Sender<Arc<Counter>>>,
    now: DateTime<Utc>,
) -> Result<Admission, Denial> {
    let mut live = caller
        .user
        .copies
        .iter()
        .filter(|c| c.is_live(now))
        .peekable();
    if live.peek().is_none() {
        return Err(Denial::NoActiveProfile);
    }
    let mut saw_provider = false;
    let mut first_denial: Option<Denial> = None;
    for copy in live {
        match copy.rules.grant(demand.provider, demand.model) {
            Grant::NoProvider => continue,
            Grant::NoModel => {
                saw_provider = true;
                continue;
            }
            Grant::Granted => saw_provider = true,
        }
        let slots: Small<&LimitSlot> = copy
            .limits
            .iter()
            .filter(|s| slot_applies(s, demand.provider))
            .collect();
        let has_budget = slots.iter().any(|s| s.def.kind == CounterKind::Budget);
        if demand.cost.is_none() && demand.deny_unpriced && has_budget {
            first_denial.get_or_insert(Denial::ModelUnpriced {
                provider: demand.provider.to_string(),
                model: demand.model.to_string(),
            });
            continue;
        }
        match reserve(copy, &slots, demand, counters, now) {
            Ok((held, headrooms)) => {
                return Ok(Admission {
                    copy_id: copy.id,
                    copy_name: copy.name.clone(),
                    parent_profile_id: copy.parent_profile_id,
                    headrooms,
                    reservation: Reservation {
                        held,
                        dirty: dirty.cloned(),
                        settled: false,
                    },
                });
            }
            Err(d) => {
                first_denial.get_or_insert(d);
            }
        }
    }
    Err(match first_denial {
        Some(d) => d,
        None if saw_provider => Denial::ModelBlocked {
            provider: demand.provider.to_string(),
            model: demand.model.to_string(),
        },
        None => Denial::ProviderBlocked {
            provider: demand.provider.to_string(),
        },
    })
}

fn reserve(
    copy: &CopyEntry,
    slots: &[&LimitSlot],
    demand: &Demand<'_>,
    counters: &CounterStore,
    now: DateTime<Utc>,
) -> Result<(Small<Held>, Headrooms), Denial> {
    // Resolve counters and windows, then lock in a fixed order (by address)
    // so that two requests of the same copy can never deadlock.
    let mut work: Small<(&Arc<Counter>, &LimitSlot, crate::windows::Window)> = slots
        .iter()
        .map(|s| {
            let w = s.def.spec.window_at(from_ms(s.anchor), now);
            let c = s.counter.get_or_init(|| {
                s.limit_id.with_str(|limit_id| {
                    counters.get_or_create(
                        limit_id,
                        s.def.kind,
                        copy.id,
                        &s.def.duration,
                        s.anchor,
                        ms(w.start),
                    )
                })
            });
            (c, *s, w)
        })
        .collect();
    work.sort_by_key(|(c, _, _)| Arc::as_ptr(c) as usize);
    let mut guards: Small<_> = work.iter().map(|(c, _, _)| c.lock()).collect();

    let mut breaches = Vec::new();
    for ((_, slot, w), g) in work.iter().zip(guards.iter_mut()) {
        g.roll_to(ms(w.start));
        let max = effective_max(slot, w.index);
        let taken = g.used.saturating_add(g.reserved);
        let over = match slot.def.kind {
            CounterKind::Requests => taken.saturating_add(1) > max,
            CounterKind::Tokens | CounterKind::Budget => taken >= max,
        };
        if over {
            breaches.push(LimitBreach {
                kind: slot.def.kind,
                owner: slot.def.owner.clone(),
                duration: slot.def.duration.to_string(),
                used: taken,
                max,
                reset_at: w.end,
                retry_after: w.retry_after_secs(now),
            });
        }
    }
    if !breaches.is_empty() {
        return Err(Denial::from_breaches(&copy.name, breaches));
    }

    let mut held: Small<Held> = SmallVec::new();
    let mut headrooms = Headrooms::default();
    for ((c, slot, w), g) in work.iter().zip(guards.iter_mut()) {
        let amount = match slot.def.kind {
            CounterKind::Requests => 1,
            CounterKind::Tokens => demand.tokens.max(0),
            CounterKind::Budget => demand.cost.unwrap_or(0).max(0),
        };
        g.reserved = g.reserved.saturating_add(amount);
        let max = effective_max(slot, w.index);
        let remaining = max.saturating_sub(g.used.saturating_add(g.reserved)).max(0);
        let room = Headroom {
            limit: max,
            remaining,
            reset_secs: w.retry_after_secs(now),
        };
        let tighter = |cur: Option<Headroom>| {
            Some(cur.map_or(room, |c| {
                if room.remaining < c.remaining {
                    room
                } else {
                    c
                }
            }))
        };
        match slot.def.kind {
            CounterKind::Requests => headrooms.requests = tighter(headrooms.requests),
            CounterKind::Tokens => headrooms.tokens = tighter(headrooms.tokens),
            CounterKind::Budget => {
                headrooms.budget_remaining = Some(
                    headrooms
                        .budget_remaining
                        .map_or(remaining, |r| r.min(remaining)),
                );
            }
        }
        held.push(Held {
            counter: Arc::clone(c),
            kind: slot.def.kind,
            spec: slot.def.spec,
            anchor: slot.anchor,
            amount,
        });
    }
    drop(guards);
    Ok((held, headrooms))
}

impl Reservation {
    /// Removes the reservation and adds the real usage to the window current
    /// at `now` (a reservation made in an ended window simply disappears).
    pub fn settle(mut self, s: Settlement, now: DateTime<Utc>) {
        self.apply(Some(s), now);
    }

    fn apply(&mut self, s: Option<Settlement>, now: DateTime<Utc>) {
        if self.settled {
            return;
        }
        self.settled = true;
        for h in &self.held {
            let mut g = h.counter.lock();
            g.reserved = g.reserved.saturating_sub(h.amount).max(0);
            if let Some(s) = s {
                let w = h.spec.window_at(from_ms(h.anchor), now);
                g.roll_to(ms(w.start));
                let add = match h.kind {
                    CounterKind::Requests => i64::from(s.success),
                    CounterKind::Tokens => s.tokens.max(0),
                    CounterKind::Budget => s.cost.max(0),
                };
                g.used = g.used.saturating_add(add);
                drop(g);
                if add > 0
                    && h.counter.mark_dirty()
                    && let Some(tx) = &self.dirty
                {
                    let _ = tx.send(h.counter.clone());
                }
            }
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.apply(None, Utc::now());
    }
}

/// RFC 3339 with whole seconds, for messages.
pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}
