//! User copies of templates: what a user holds, and propagation of a
//! template's fields onto its copies with usage kept where the owner and the
//! duration match (access-profiles.md, Propagation). Pure.

use chrono::{DateTime, Utc};

use crate::profile::{Budget, Policy, ProviderConfig, RateLimit, ValidationError, new_limit_id};

/// How a user got a copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CopySource {
    RoleDefault,
    RoleApply,
    Direct,
}

impl CopySource {
    pub fn as_str(self) -> &'static str {
        match self {
            CopySource::RoleDefault => "role_default",
            CopySource::RoleApply => "role_apply",
            CopySource::Direct => "direct",
        }
    }

    pub fn parse(s: &str) -> Option<CopySource> {
        match s {
            "role_default" => Some(CopySource::RoleDefault),
            "role_apply" => Some(CopySource::RoleApply),
            "direct" => Some(CopySource::Direct),
            _ => None,
        }
    }

    /// Copies that came through a role go away when the user leaves it.
    pub fn is_from_role(self) -> bool {
        !matches!(self, CopySource::Direct)
    }
}

/// A user's private instance of a template.
#[derive(Debug, Clone, PartialEq)]
pub struct UserCopy {
    pub id: i64,
    pub user_id: String,
    pub parent_profile_id: i64,
    pub name: String,
    pub is_active: bool,
    pub expires_at: Option<DateTime<Utc>>,
    pub source: CopySource,
    pub role_id: Option<i64>,
    pub assigned_at: DateTime<Utc>,
    pub policy: Policy,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl UserCopy {
    /// Active and not expired at `now`: it grants something.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.is_active && self.expires_at.is_none_or(|e| e > now)
    }
}

/// A template field that propagation can apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PropagateField {
    ProviderConfigs,
    Budgets,
    RateLimit,
    McpToolGroups,
    McpServers,
    McpToolOverrides,
    /// Heimdall extension: `calendar_aligned` and `timezone`.
    Calendar,
}

impl PropagateField {
    pub fn parse(s: &str) -> Option<PropagateField> {
        Some(match s {
            "provider_configs" => PropagateField::ProviderConfigs,
            "budgets" => PropagateField::Budgets,
            "rate_limit" => PropagateField::RateLimit,
            "mcp_tool_groups" => PropagateField::McpToolGroups,
            "mcp_servers" => PropagateField::McpServers,
            "mcp_tool_overrides" => PropagateField::McpToolOverrides,
            "calendar" => PropagateField::Calendar,
            _ => return None,
        })
    }
}

/// Parses the `fields` of a propagate request (at least one, all known).
pub fn parse_fields(list: &[String]) -> Result<Vec<PropagateField>, ValidationError> {
    if list.is_empty() {
        return Err(ValidationError(
            "fields must name at least one of provider_configs, budgets, rate_limit, mcp_tool_groups, mcp_servers, mcp_tool_overrides, calendar".to_string(),
        ));
    }
    let mut out = Vec::new();
    for f in list {
        let field = PropagateField::parse(f).ok_or_else(|| {
            ValidationError(format!(
                "fields: \"{}\" cannot be propagated; use provider_configs, budgets, rate_limit, mcp_tool_groups, mcp_servers, mcp_tool_overrides or calendar",
                f.chars().take(64).collect::<String>()
            ))
        })?;
        if !out.contains(&field) {
            out.push(field);
        }
    }
    Ok(out)
}

/// Which counter of a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CounterKind {
    Budget,
    Tokens,
    Requests,
}

impl CounterKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CounterKind::Budget => "budget",
            CounterKind::Tokens => "tokens",
            CounterKind::Requests => "requests",
        }
    }
}

/// What propagation does to one copy's policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Propagated {
    pub policy: Policy,
    /// Whether the rules differ from the copy's before.
    pub changed: bool,
    /// Counters that were kept (matched) and must be zeroed because the
    /// request asked for `reset_usage`.
    pub reset: Vec<(String, CounterKind)>,
    /// Rate-limit halves that did not match but live on under the rate
    /// limit's kept id: they start at zero, so whatever their id's counter
    /// of that kind holds must go (whatever `reset_usage` says).
    pub recreated: Vec<(String, CounterKind)>,
}

/// Applies `fields` of `template` to a copy's `policy` at `now`. New provider
/// configs get id 0 (the store assigns one); new budgets and rate limits get
/// fresh ids and start at zero, anchored at `now`.
pub fn propagate(
    copy: &Policy,
    template: &Policy,
    fields: &[PropagateField],
    reset_usage: bool,
    now: DateTime<Utc>,
) -> Propagated {
    let mut out = copy.clone();
    let mut reset = Vec::new();
    let mut recreated = Vec::new();
    for field in fields {
        match field {
            PropagateField::Budgets => {
                out.budgets = match_budgets(
                    &copy.budgets,
                    &template.budgets,
                    reset_usage,
                    &mut reset,
                    now,
                );
            }
            PropagateField::RateLimit => {
                out.rate_limit = match_rate_limit(
                    copy.rate_limit.as_ref(),
                    template.rate_limit.as_ref(),
                    reset_usage,
                    (&mut reset, &mut recreated),
                    now,
                );
            }
            PropagateField::ProviderConfigs => {
                out.provider_configs = template
                    .provider_configs
                    .iter()
                    .map(|t| {
                        let old = copy
                            .provider_configs
                            .iter()
                            .find(|c| c.provider_name == t.provider_name);
                        ProviderConfig {
                            id: old.map_or(0, |c| c.id),
                            provider_name: t.provider_name.clone(),
                            all_models_allowed: t.all_models_allowed,
                            allowed_models: t.allowed_models.clone(),
                            budgets: match_budgets(
                                old.map_or(&[][..], |c| &c.budgets),
                                &t.budgets,
                                reset_usage,
                                &mut reset,
                                now,
                            ),
                            rate_limit: match_rate_limit(
                                old.and_then(|c| c.rate_limit.as_ref()),
                                t.rate_limit.as_ref(),
                                reset_usage,
                                (&mut reset, &mut recreated),
                                now,
                            ),
                        }
                    })
                    .collect();
            }
            PropagateField::McpToolGroups => out.mcp_tool_groups = template.mcp_tool_groups.clone(),
            PropagateField::McpServers => out.mcp_servers = template.mcp_servers.clone(),
            PropagateField::McpToolOverrides => {
                out.mcp_tool_overrides = template.mcp_tool_overrides.clone()
            }
            PropagateField::Calendar => {
                out.calendar_aligned = template.calendar_aligned;
                out.timezone = template.timezone.clone();
            }
        }
    }
    let changed = out.without_ids() != copy.without_ids();
    Propagated {
        policy: out,
        changed,
        reset,
        recreated,
    }
}

fn match_budgets(
    current: &[Budget],
    template: &[Budget],
    reset_usage: bool,
    reset: &mut Vec<(String, CounterKind)>,
    now: DateTime<Utc>,
) -> Vec<Budget> {
    template
        .iter()
        .map(|t| {
            match current
                .iter()
                .find(|c| c.reset_duration == t.reset_duration)
            {
                Some(c) => {
                    if reset_usage {
                        reset.push((c.id.clone(), CounterKind::Budget));
                    }
                    Budget {
                        id: c.id.clone(),
                        max_limit: t.max_limit,
                        reset_duration: t.reset_duration.clone(),
                        reset_config: t.reset_config,
                        created_at: c.created_at,
                        override_: c.override_.clone(),
                    }
                }
                None => Budget {
                    id: new_limit_id(),
                    created_at: Some(now),
                    override_: None,
                    ..t.clone()
                },
            }
        })
        .collect()
}

/// Counters to zero: `.0` matched ones (with `reset_usage`), `.1` halves
/// re-created under a kept id.
type Zeroed<'a> = (
    &'a mut Vec<(String, CounterKind)>,
    &'a mut Vec<(String, CounterKind)>,
);

fn match_rate_limit(
    current: Option<&RateLimit>,
    template: Option<&RateLimit>,
    reset_usage: bool,
    zeroed: Zeroed<'_>,
    now: DateTime<Utc>,
) -> Option<RateLimit> {
    let t = template?;
    let (reset, recreated) = zeroed;
    let id = current.map_or_else(new_limit_id, |c| c.id.clone());
    let kept_id = current.is_some();
    let mut half = |cur_dur: Option<&String>,
                    cur_anchor: Option<DateTime<Utc>>,
                    t_max: Option<u64>,
                    t_dur: &Option<String>,
                    kind: CounterKind| {
        t_max?;
        match (cur_dur, cur_anchor) {
            (Some(d), Some(anchor)) if Some(d) == t_dur.as_ref() => {
                if reset_usage {
                    reset.push((id.clone(), kind));
                }
                Some(anchor)
            }
            _ => {
                // A new half under the old id: its id's old counter (of a
                // half with another duration, or one removed earlier) is
                // not its usage.
                if kept_id {
                    recreated.push((id.clone(), kind));
                }
                Some(now)
            }
        }
    };
    let token_created_at = half(
        current.and_then(|c| {
            c.token_reset_duration
                .as_ref()
                .filter(|_| c.token_max_limit.is_some())
        }),
        current.and_then(|c| c.token_created_at),
        t.token_max_limit,
        &t.token_reset_duration,
        CounterKind::Tokens,
    );
    let request_created_at = half(
        current.and_then(|c| {
            c.request_reset_duration
                .as_ref()
                .filter(|_| c.request_max_limit.is_some())
        }),
        current.and_then(|c| c.request_created_at),
        t.request_max_limit,
        &t.request_reset_duration,
        CounterKind::Requests,
    );
    Some(RateLimit {
        id,
        token_max_limit: t.token_max_limit,
        token_reset_duration: t.token_reset_duration.clone(),
        request_max_limit: t.request_max_limit,
        request_reset_duration: t.request_reset_duration.clone(),
        token_created_at,
        request_created_at,
    })
}

#[cfg(test)]
mod tests;
