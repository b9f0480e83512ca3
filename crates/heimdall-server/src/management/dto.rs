//! Response shapes of the management API. Domain types are turned into wire
//! JSON here and nowhere else, so field names stay exactly as the spec (and
//! Bifrost's clients) expect.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use heimdall_core::profile::{
    AccessProfile, Budget, LimitOwner, Policy, ProviderConfig, RateLimit,
};
use heimdall_store::{AuditEntry, ProfileVersion, RoleAttachment};

/// RFC 3339 in UTC, whole seconds (`2026-11-27T09:00:00Z`).
pub fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub fn opt_time(t: Option<DateTime<Utc>>) -> Value {
    t.map(|t| Value::String(time(t))).unwrap_or(Value::Null)
}

/// A budget of a template (usage always zero, no window yet).
pub fn budget(b: &Budget, owner: &LimitOwner) -> Value {
    let mut v = json!({
        "id": b.id,
        "max_limit": b.max_limit.as_dollars(),
        "reset_duration": b.reset_duration,
        "scope": owner.scope(),
        "current_usage": 0.0,
        "last_reset": Value::Null,
    });
    if let (Some(rc), Some(obj)) = (b.reset_config, v.as_object_mut()) {
        obj.insert(
            "reset_config".into(),
            json!({"quarter_start_month": rc.quarter_start_month}),
        );
    }
    v
}

pub fn rate_limit(rl: &RateLimit) -> Value {
    json!({
        "id": rl.id,
        "token_max_limit": rl.token_max_limit,
        "token_reset_duration": rl.token_reset_duration,
        "request_max_limit": rl.request_max_limit,
        "request_reset_duration": rl.request_reset_duration,
        "token_current_usage": 0,
        "request_current_usage": 0,
        "token_last_reset": Value::Null,
        "request_last_reset": Value::Null,
    })
}

fn provider_config(pc: &ProviderConfig) -> Value {
    let owner = LimitOwner::Provider(pc.provider_name.clone());
    json!({
        "id": pc.id,
        "provider_name": pc.provider_name,
        "all_models_allowed": pc.all_models_allowed,
        "allowed_models": pc.allowed_models,
        "budgets": pc.budgets.iter().map(|b| budget(b, &owner)).collect::<Vec<_>>(),
        "rate_limit": pc.rate_limit.as_ref().map(rate_limit),
    })
}

/// The policy fields, flattened into an object (shared by templates and copies).
pub fn policy_fields(p: &Policy, into: &mut serde_json::Map<String, Value>) {
    into.insert(
        "provider_configs".into(),
        p.provider_configs.iter().map(provider_config).collect(),
    );
    into.insert(
        "budgets".into(),
        p.budgets
            .iter()
            .map(|b| budget(b, &LimitOwner::Profile))
            .collect(),
    );
    into.insert(
        "rate_limit".into(),
        p.rate_limit.as_ref().map(rate_limit).unwrap_or(Value::Null),
    );
    into.insert("calendar_aligned".into(), p.calendar_aligned.into());
    into.insert("timezone".into(), p.timezone.clone().into());
    into.insert("mcp_tool_groups".into(), json!(p.mcp_tool_groups));
    into.insert("mcp_servers".into(), json!(p.mcp_servers));
    into.insert("mcp_tool_overrides".into(), json!(p.mcp_tool_overrides));
}

/// A template as the API shows it.
pub fn profile(p: &AccessProfile) -> Value {
    let mut obj = serde_json::Map::new();
    obj.insert("id".into(), p.id.into());
    obj.insert("name".into(), p.name.clone().into());
    obj.insert("description".into(), json!(p.description));
    obj.insert("is_active".into(), p.is_active.into());
    obj.insert("version".into(), p.version.into());
    obj.insert("tags".into(), json!(p.tags));
    policy_fields(&p.policy, &mut obj);
    obj.insert(
        "auto_rotation_interval".into(),
        p.rotation.interval_ns.into(),
    );
    obj.insert(
        "next_rotation_at".into(),
        opt_time(p.rotation.next_rotation_at),
    );
    obj.insert(
        "last_rotation_at".into(),
        opt_time(p.rotation.last_rotation_at),
    );
    obj.insert("created_at".into(), time(p.created_at).into());
    obj.insert("updated_at".into(), time(p.updated_at).into());
    Value::Object(obj)
}

pub fn role_attachment(a: &RoleAttachment) -> Value {
    json!({
        "id": a.id,
        "access_profile_id": a.access_profile_id,
        "role_id": a.role_id,
        "role_name": a.role_name,
        "is_default": a.is_default,
    })
}

pub fn version(v: &ProfileVersion) -> Value {
    json!({
        "id": v.id,
        "access_profile_id": v.access_profile_id,
        "version": v.version,
        "name": v.name,
        "description": v.description,
        "snapshot": v.snapshot,
        "changed_by": v.changed_by,
        "created_at": time(v.created_at),
    })
}

pub fn audit_entry(e: &AuditEntry) -> Value {
    json!({
        "id": e.id,
        "access_profile_id": e.access_profile_id,
        "user_id": e.user_id,
        "actor": e.actor,
        "action": e.action,
        "previous_values": e.previous_values,
        "new_values": e.new_values,
        "metadata": e.metadata,
        "created_at": time(e.created_at),
    })
}
