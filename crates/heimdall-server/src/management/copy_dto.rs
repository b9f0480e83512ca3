//! Response shapes of the people side: roles, users, user copies (with live
//! usage and overrides), virtual keys (always masked here).

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use heimdall_core::copy::{CounterKind, UserCopy};
use heimdall_core::directory::{Role, User};
use heimdall_core::keys::mask;
use heimdall_core::limits::{budget_window, effective_max_limit, override_view, spec_for};
use heimdall_core::profile::{Budget, LimitOwner, Policy, RateLimit};
use heimdall_store::{CopyWithKeys, ProvisionedKey, StoredKey};

use super::dto::{opt_time, time};
use crate::usage::LiveUsage;

pub fn role(r: &Role) -> Value {
    json!({
        "id": r.id,
        "name": r.name,
        "description": r.description,
        "is_system_role": r.is_system_role,
        "created_at": time(r.created_at),
        "updated_at": time(r.updated_at),
    })
}

pub fn user(u: &User, r: Option<&Role>) -> Value {
    json!({
        "id": u.id,
        "name": u.name,
        "email": u.email,
        "role_id": u.role_id,
        "role": r.map(|r| json!({
            "id": r.id, "name": r.name, "description": r.description, "is_system_role": r.is_system_role,
        })),
        "created_at": time(u.created_at),
        "updated_at": time(u.updated_at),
    })
}

pub fn new_key(k: &ProvisionedKey) -> Value {
    json!({"id": k.id, "name": k.name, "value": k.value, "access_profile_id": k.access_profile_id})
}

pub fn key(k: &StoredKey) -> Value {
    json!({
        "id": k.id,
        "name": k.name,
        "description": k.description,
        "user_id": k.user_id,
        "value": mask(&k.last4),
        "is_active": k.is_active,
        "is_access_profile_managed": k.is_managed(),
        "access_profile_id": k.access_profile_id,
        "expires_at": opt_time(k.expires_at),
        "created_at": time(k.created_at),
        "last_used_at": opt_time(k.last_used_at),
        "rotated_at": opt_time(k.rotated_at),
    })
}

/// A budget of a user copy, with live usage, window and override.
pub fn copy_budget(
    policy: &Policy,
    b: &Budget,
    owner: &LimitOwner,
    anchor: DateTime<Utc>,
    usage: &dyn LiveUsage,
    now: DateTime<Utc>,
) -> Value {
    let window = budget_window(policy, b, anchor, now);
    let used = usage.used(&b.id, CounterKind::Budget, window.map(|w| w.start));
    let mut v = json!({
        "id": b.id,
        "max_limit": b.max_limit.as_dollars(),
        "effective_max_limit": effective_max_limit(policy, b, now).as_dollars(),
        "reset_duration": b.reset_duration,
        "scope": owner.scope(),
        "current_usage": used as f64 / 1e9,
        "last_reset": opt_time(window.map(|w| w.start)),
        "next_reset_at": opt_time(window.map(|w| w.end)),
        "override": override_view(policy, b, now).map(|o| json!({
            "amount": o.amount.as_dollars(),
            "mode": if o.cycles_total.is_some() { "cycles" } else { "forever" },
            "cycles_total": o.cycles_total,
            "cycles_remaining": o.cycles_remaining,
        })),
    });
    if let (Some(rc), Some(obj)) = (b.reset_config, v.as_object_mut()) {
        obj.insert(
            "reset_config".into(),
            json!({"quarter_start_month": rc.quarter_start_month}),
        );
    }
    v
}

/// A rate limit of a user copy with live usage.
pub fn copy_rate_limit(
    policy: &Policy,
    rl: &RateLimit,
    anchor: DateTime<Utc>,
    usage: &dyn LiveUsage,
    now: DateTime<Utc>,
) -> Value {
    let half = |dur: &Option<String>, created: Option<DateTime<Utc>>, kind: CounterKind| {
        let w = dur
            .as_deref()
            .and_then(|d| spec_for(policy, d, None))
            .map(|s| s.window_at(created.unwrap_or(anchor), now));
        (usage.used(&rl.id, kind, w.map(|w| w.start)), w)
    };
    let (tok, tw) = half(
        &rl.token_reset_duration,
        rl.token_created_at,
        CounterKind::Tokens,
    );
    let (req, rw) = half(
        &rl.request_reset_duration,
        rl.request_created_at,
        CounterKind::Requests,
    );
    json!({
        "id": rl.id,
        "token_max_limit": rl.token_max_limit,
        "token_reset_duration": rl.token_reset_duration,
        "request_max_limit": rl.request_max_limit,
        "request_reset_duration": rl.request_reset_duration,
        "token_current_usage": tok,
        "request_current_usage": req,
        "token_last_reset": opt_time(tw.map(|w| w.start)),
        "request_last_reset": opt_time(rw.map(|w| w.start)),
        "token_next_reset_at": opt_time(tw.map(|w| w.end)),
        "request_next_reset_at": opt_time(rw.map(|w| w.end)),
    })
}

/// A user copy (UserAccessProfile) with live usage and masked keys.
pub fn copy(c: &CopyWithKeys, usage: &dyn LiveUsage, now: DateTime<Utc>) -> Value {
    let u = &c.copy;
    let p = &u.policy;
    let anchor = u.assigned_at;
    let mut obj = Map::new();
    obj.insert("id".into(), u.id.into());
    obj.insert("user_id".into(), u.user_id.clone().into());
    obj.insert("parent_profile_id".into(), u.parent_profile_id.into());
    obj.insert("name".into(), u.name.clone().into());
    obj.insert("is_active".into(), u.is_active.into());
    obj.insert("expires_at".into(), opt_time(u.expires_at));
    obj.insert("source".into(), u.source.as_str().into());
    obj.insert("role_id".into(), json!(u.role_id));
    obj.insert("assigned_at".into(), time(u.assigned_at).into());
    let pcs: Vec<Value> = p
        .provider_configs
        .iter()
        .map(|pc| {
            let owner = LimitOwner::Provider(pc.provider_name.clone());
            json!({
                "id": pc.id,
                "provider_name": pc.provider_name,
                "all_models_allowed": pc.all_models_allowed,
                "allowed_models": pc.allowed_models,
                "budgets": pc.budgets.iter().map(|b| copy_budget(p, b, &owner, anchor, usage, now)).collect::<Vec<_>>(),
                "rate_limit": pc.rate_limit.as_ref().map(|rl| copy_rate_limit(p, rl, anchor, usage, now)),
            })
        })
        .collect();
    obj.insert("provider_configs".into(), pcs.into());
    obj.insert(
        "budgets".into(),
        p.budgets
            .iter()
            .map(|b| copy_budget(p, b, &LimitOwner::Profile, anchor, usage, now))
            .collect(),
    );
    obj.insert(
        "rate_limit".into(),
        p.rate_limit
            .as_ref()
            .map(|rl| copy_rate_limit(p, rl, anchor, usage, now))
            .unwrap_or(Value::Null),
    );
    obj.insert("calendar_aligned".into(), p.calendar_aligned.into());
    obj.insert("timezone".into(), p.timezone.clone().into());
    obj.insert("mcp_tool_groups".into(), json!(p.mcp_tool_groups));
    obj.insert("mcp_servers".into(), json!(p.mcp_servers));
    obj.insert("mcp_tool_overrides".into(), json!(p.mcp_tool_overrides));
    obj.insert(
        "virtual_key_ids".into(),
        c.keys.iter().map(|(id, _)| id.clone()).collect(),
    );
    let masked: Map<String, Value> = c
        .keys
        .iter()
        .map(|(id, last4)| (id.clone(), Value::String(mask(last4))))
        .collect();
    obj.insert("virtual_key_values".into(), masked.into());
    obj.insert("created_at".into(), time(u.created_at).into());
    obj.insert("updated_at".into(), time(u.updated_at).into());
    Value::Object(obj)
}

/// The copy's state for the quota route.
pub fn quota_entry(u: &UserCopy, usage: &dyn LiveUsage, now: DateTime<Utc>) -> Value {
    let p = &u.policy;
    let budgets: Vec<Value> = p
        .budgets_with_owner()
        .map(|(owner, b)| {
            let full = copy_budget(p, b, &owner, u.assigned_at, usage, now);
            json!({
                "id": full["id"], "scope": full["scope"], "reset_duration": full["reset_duration"],
                "max_limit": full["max_limit"], "effective_max_limit": full["effective_max_limit"],
                "current_usage": full["current_usage"], "last_reset": full["last_reset"],
                "next_reset_at": full["next_reset_at"],
            })
        })
        .collect();
    let rate_limit = p.rate_limit.as_ref().map(|rl| {
        let full = copy_rate_limit(p, rl, u.assigned_at, usage, now);
        json!({
            "token_max_limit": full["token_max_limit"],
            "token_current_usage": full["token_current_usage"],
            "token_next_reset_at": full["token_next_reset_at"],
            "request_max_limit": full["request_max_limit"],
            "request_current_usage": full["request_current_usage"],
            "request_next_reset_at": full["request_next_reset_at"],
        })
    });
    json!({
        "id": u.id,
        "parent_profile_id": u.parent_profile_id,
        "name": u.name,
        "budgets": budgets,
        "rate_limit": rate_limit,
    })
}
