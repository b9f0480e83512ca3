//! Partial update of a template: an omitted field keeps its value, `null`
//! clears `description` and removes `rate_limit`, arrays replace the whole
//! list. The result is validated as a whole, exactly like a create.

use chrono::{DateTime, Utc};

use super::input::{
    PolicyFields, ProfilePatch, ValidationError, normalize_name, validate_description,
    validate_policy_input, validate_tags, validate_timezone,
};
use super::rotation::{next_rotation, parse_rotation_interval};
use super::{AccessProfile, Policy, RotationSchedule};

/// What a patch turns a template into (before ids are assigned).
#[derive(Debug, Clone, PartialEq)]
pub struct PatchedProfile {
    pub name: String,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub policy: Policy,
    pub rotation: RotationSchedule,
}

impl PatchedProfile {
    /// Whether the change is one that makes a new version: name, description,
    /// tags or policy (ids ignored) differ, or the rotation interval does.
    pub fn changes_version_of(&self, current: &AccessProfile) -> bool {
        self.name != current.name
            || self.description != current.description
            || self.tags != current.tags
            || self.policy.without_ids() != current.policy.without_ids()
            || self.rotation.interval_ns != current.rotation.interval_ns
    }

    /// Whether anything at all changes, including the rotation timestamps.
    pub fn changes_anything_of(&self, current: &AccessProfile) -> bool {
        self.changes_version_of(current) || self.rotation != current.rotation
    }
}

/// Applies `patch` to `current` at instant `now`.
pub fn apply_patch(
    current: &AccessProfile,
    patch: ProfilePatch,
    now: DateTime<Utc>,
) -> Result<PatchedProfile, ValidationError> {
    let name = match patch.name.as_deref() {
        Some(n) => normalize_name(Some(n))?,
        None => current.name.clone(),
    };
    let description = match patch.description {
        Some(d) => validate_description(d)?,
        None => current.description.clone(),
    };
    let tags = match patch.tags {
        Some(t) => validate_tags(t)?,
        None => current.tags.clone(),
    };

    // Validate the replaced lists through the same path as a create, then
    // merge them over the current policy and re-check the cross-field rules.
    let provided = PolicyFields {
        provider_configs: patch.provider_configs.clone(),
        budgets: patch.budgets.clone(),
        rate_limit: patch.rate_limit.clone().flatten(),
        calendar_aligned: patch.calendar_aligned,
        timezone: patch.timezone.clone(),
        mcp_tool_groups: None,
        mcp_servers: None,
        mcp_tool_overrides: None,
    };
    let fresh = validate_policy_input(provided)?;
    let cur = &current.policy;
    let mut policy = cur.clone();
    if patch.provider_configs.is_some() {
        policy.provider_configs = fresh.provider_configs;
    }
    if patch.budgets.is_some() {
        policy.budgets = fresh.budgets;
    }
    if let Some(rl) = &patch.rate_limit {
        policy.rate_limit = if rl.is_some() { fresh.rate_limit } else { None };
    }
    if let Some(ca) = patch.calendar_aligned {
        policy.calendar_aligned = ca;
    }
    if let Some(tz) = &patch.timezone {
        policy.timezone = validate_timezone(tz)?;
    }
    // MCP links are validated together, since an exclusion conflicts with a
    // whole-server grant even when only one of the two lists is sent.
    if patch.mcp_tool_groups.is_some()
        || patch.mcp_servers.is_some()
        || patch.mcp_tool_overrides.is_some()
    {
        let mcp = validate_policy_input(PolicyFields {
            mcp_tool_groups: Some(
                patch
                    .mcp_tool_groups
                    .unwrap_or_else(|| cur.mcp_tool_groups.clone()),
            ),
            mcp_servers: Some(patch.mcp_servers.unwrap_or_else(|| cur.mcp_servers.clone())),
            mcp_tool_overrides: Some(patch.mcp_tool_overrides.unwrap_or_else(|| {
                cur.mcp_tool_overrides
                    .iter()
                    .map(|o| super::McpToolOverrideInput {
                        mcp_client_id: o.mcp_client_id.clone(),
                        tool_name: o.tool_name.clone(),
                        action: Some(o.action),
                    })
                    .collect()
            })),
            ..PolicyFields::default()
        })?;
        policy.mcp_tool_groups = mcp.mcp_tool_groups;
        policy.mcp_servers = mcp.mcp_servers;
        policy.mcp_tool_overrides = mcp.mcp_tool_overrides;
    }

    let mut rotation = current.rotation.clone();
    if let Some(i) = &patch.auto_rotation_interval {
        let ns = parse_rotation_interval(i)?;
        if ns != rotation.interval_ns {
            rotation.interval_ns = ns;
            let requested = patch.next_rotation_at.flatten();
            rotation.next_rotation_at = next_rotation(ns, requested, now)?;
        } else if let Some(Some(at)) = patch.next_rotation_at {
            rotation.next_rotation_at = next_rotation(ns, Some(at), now)?;
        }
    } else if let Some(Some(at)) = patch.next_rotation_at {
        if rotation.interval_ns == 0 {
            return Err(ValidationError(
                "next_rotation_at needs auto_rotation_interval to be set".to_string(),
            ));
        }
        if Some(at) != rotation.next_rotation_at {
            rotation.next_rotation_at = next_rotation(rotation.interval_ns, Some(at), now)?;
        }
    }

    Ok(PatchedProfile {
        name,
        description,
        tags,
        policy,
        rotation,
    })
}
