//! Governance denials (governance.md §8): each knows its HTTP status, its
//! error type and a message that names the limit, its usage and its reset.

use chrono::{DateTime, Utc};

use super::admit::format_time;
use crate::copy::CounterKind;
use crate::profile::LimitOwner;

/// One limit that refused a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitBreach {
    pub kind: CounterKind,
    pub owner: LimitOwner,
    pub duration: String,
    /// Used plus reserved when checked.
    pub used: i64,
    pub max: i64,
    pub reset_at: DateTime<Utc>,
    pub retry_after: u64,
}

/// Why governance refused a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    VirtualKeyRequired,
    VirtualKeyNotFound,
    KeyInactive(String),
    KeyExpired(String),
    NoActiveProfile,
    ProviderBlocked {
        provider: String,
    },
    ModelBlocked {
        provider: String,
        model: String,
    },
    ModelUnpriced {
        provider: String,
        model: String,
    },
    /// A budget refused (402), whatever else did too.
    Budget {
        message: String,
        retry_after: u64,
    },
    /// Rate limits refused (429): `requests`, `tokens` or both.
    Rate {
        requests: bool,
        tokens: bool,
        message: String,
        retry_after: u64,
    },
}

fn dollars(nanos: i64) -> String {
    format!("{:.4}", nanos as f64 / 1e9)
}

fn scope(owner: &LimitOwner) -> String {
    match owner {
        LimitOwner::Profile => "total".to_string(),
        LimitOwner::Provider(p) => format!("provider {p}"),
    }
}

fn describe(profile: &str, b: &LimitBreach) -> String {
    match b.kind {
        CounterKind::Budget => format!(
            "profile \"{profile}\" {} {} budget {} of {} USD used, resets {}",
            scope(&b.owner),
            b.duration,
            dollars(b.used.min(b.max)),
            dollars(b.max),
            format_time(b.reset_at)
        ),
        CounterKind::Requests => format!(
            "profile \"{profile}\" {} request limit {} of {} requests per {} used, resets {}",
            scope(&b.owner),
            b.used.min(b.max),
            b.max,
            b.duration,
            format_time(b.reset_at)
        ),
        CounterKind::Tokens => format!(
            "profile \"{profile}\" {} token limit {} of {} tokens per {} used, resets {}",
            scope(&b.owner),
            b.used.min(b.max),
            b.max,
            b.duration,
            format_time(b.reset_at)
        ),
    }
}

impl Denial {
    /// Builds the denial for the limits of one copy that refused: a budget
    /// wins (402); otherwise request and/or token limits (429).
    pub fn from_breaches(profile: &str, breaches: Vec<LimitBreach>) -> Denial {
        let budgets: Vec<&LimitBreach> = breaches
            .iter()
            .filter(|b| b.kind == CounterKind::Budget)
            .collect();
        if !budgets.is_empty() {
            let parts: Vec<String> = budgets.iter().map(|b| describe(profile, b)).collect();
            return Denial::Budget {
                message: format!("budget exceeded: {}", parts.join("; ")),
                retry_after: budgets.iter().map(|b| b.retry_after).max().unwrap_or(0),
            };
        }
        let requests = breaches.iter().any(|b| b.kind == CounterKind::Requests);
        let tokens = breaches.iter().any(|b| b.kind == CounterKind::Tokens);
        let head = match (requests, tokens) {
            (true, true) => "rate limit exceeded",
            (true, false) => "request limit exceeded",
            _ => "token limit exceeded",
        };
        let parts: Vec<String> = breaches.iter().map(|b| describe(profile, b)).collect();
        Denial::Rate {
            requests,
            tokens,
            message: format!("{head}: {}", parts.join("; ")),
            retry_after: breaches.iter().map(|b| b.retry_after).max().unwrap_or(0),
        }
    }

    /// HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            Denial::VirtualKeyRequired | Denial::VirtualKeyNotFound => 401,
            Denial::Budget { .. } => 402,
            Denial::Rate { .. } => 429,
            _ => 403,
        }
    }

    /// The error `type` of the envelope.
    pub fn kind(&self) -> &'static str {
        match self {
            Denial::VirtualKeyRequired => "virtual_key_required",
            Denial::VirtualKeyNotFound => "virtual_key_not_found",
            Denial::KeyInactive(_) | Denial::KeyExpired(_) | Denial::NoActiveProfile => {
                "virtual_key_blocked"
            }
            Denial::ProviderBlocked { .. } => "provider_blocked",
            Denial::ModelBlocked { .. } => "model_blocked",
            Denial::ModelUnpriced { .. } => "model_unpriced",
            Denial::Budget { .. } => "budget_exceeded",
            Denial::Rate {
                requests: true,
                tokens: true,
                ..
            } => "rate_limited",
            Denial::Rate { requests: true, .. } => "request_limited",
            Denial::Rate { .. } => "token_limited",
        }
    }

    /// A sentence a person can act on.
    pub fn message(&self) -> String {
        match self {
            Denial::VirtualKeyRequired => "a virtual key is required: send it as \"Authorization: Bearer sk-bf-…\" or in the x-bf-vk header".to_string(),
            Denial::VirtualKeyNotFound => "virtual key not found (it may have been deleted, or rotated and its grace has ended)".to_string(),
            Denial::KeyInactive(n) => format!("virtual key \"{n}\" is inactive"),
            Denial::KeyExpired(n) => format!("virtual key \"{n}\" has expired"),
            Denial::NoActiveProfile => "virtual key has no active access profile: every profile of its user is inactive or expired".to_string(),
            Denial::ProviderBlocked { provider } => format!("provider \"{provider}\" is not allowed by any active access profile of this key"),
            Denial::ModelBlocked { provider, model } => format!("model \"{model}\" of provider \"{provider}\" is not allowed by any active access profile of this key"),
            Denial::ModelUnpriced { provider, model } => format!("model \"{provider}/{model}\" has no price, and governance.unpriced_models is deny for budgeted profiles"),
            Denial::Budget { message, .. } | Denial::Rate { message, .. } => message.clone(),
        }
    }

    /// Seconds for `Retry-After` (429 only).
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Denial::Rate { retry_after, .. } => Some((*retry_after).max(1)),
            _ => None,
        }
    }
}
