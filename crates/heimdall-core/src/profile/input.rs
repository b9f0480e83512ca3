//! Request shapes for creating and updating templates, and the validation that
//! turns them into a [`Policy`]. Every rule of the spec that can be checked
//! without the store lives here (names, tags, durations, duplicates, regexes,
//! time zones, MCP links); uniqueness of names is the store's job.
//!
//! Read-only fields of the response shape (`id`, `scope`, `current_usage`, …)
//! are accepted and ignored so that a client can send back what it read; any
//! other unknown field is rejected by serde with its name.

use std::collections::HashSet;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};

use super::rotation::RotationInput;
use super::{
    Budget, McpServer, McpToolGroup, McpToolOverride, OverrideAction, Policy, ProviderConfig,
    RateLimit, ResetConfig,
};
use crate::money::Money;
use crate::windows::{DurationUnit, ResetDuration};

pub const MAX_NAME_CHARS: usize = 255;
pub const MAX_DESCRIPTION_CHARS: usize = 10_000;
pub const MAX_TAGS: usize = 50;
pub const MAX_TAG_CHARS: usize = 64;
pub const MAX_PROVIDER_CONFIGS: usize = 100;
pub const MAX_BUDGETS: usize = 100;
pub const MAX_ALLOWED_MODELS: usize = 1_000;
pub const MAX_MODEL_CHARS: usize = 256;
pub const MAX_PROVIDER_NAME_CHARS: usize = 64;
pub const MAX_MCP_ENTRIES: usize = 1_000;
pub const MAX_MCP_ID_CHARS: usize = 255;
/// Compiled size limit for `regex:` entries, so that a hostile pattern cannot
/// make the policy index large or slow.
pub const REGEX_SIZE_LIMIT: usize = 256 * 1024;

/// A validation failure, phrased for the person who sent the request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValidationError(pub String);

fn invalid(msg: impl Into<String>) -> ValidationError {
    ValidationError(msg.into())
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
pub fn double_option<'de, T, D>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(de).map(Some)
}

/// `POST G/access-profiles`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileCreate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub tags: Option<Vec<String>>,
    pub provider_configs: Option<Vec<ProviderConfigInput>>,
    pub budgets: Option<Vec<BudgetInput>>,
    pub rate_limit: Option<RateLimitInput>,
    pub calendar_aligned: Option<bool>,
    pub timezone: Option<String>,
    pub mcp_tool_groups: Option<Vec<McpToolGroup>>,
    pub mcp_servers: Option<Vec<McpServer>>,
    pub mcp_tool_overrides: Option<Vec<McpToolOverrideInput>>,
    pub auto_rotation_interval: Option<RotationInput>,
    pub next_rotation_at: Option<DateTime<Utc>>,
    // Read-only fields of the response shape: accepted, ignored.
    pub id: Option<IgnoredAny>,
    pub is_active: Option<IgnoredAny>,
    pub version: Option<IgnoredAny>,
    pub last_rotation_at: Option<IgnoredAny>,
    pub created_at: Option<IgnoredAny>,
    pub updated_at: Option<IgnoredAny>,
}

impl ProfileCreate {
    fn take_policy_fields(&mut self) -> PolicyFields {
        PolicyFields {
            provider_configs: self.provider_configs.take(),
            budgets: self.budgets.take(),
            rate_limit: self.rate_limit.take(),
            calendar_aligned: self.calendar_aligned.take(),
            timezone: self.timezone.take(),
            mcp_tool_groups: self.mcp_tool_groups.take(),
            mcp_servers: self.mcp_servers.take(),
            mcp_tool_overrides: self.mcp_tool_overrides.take(),
        }
    }
}

/// `PUT G/access-profiles/{id}`: every field optional.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    pub description: Option<Option<String>>,
    pub tags: Option<Vec<String>>,
    pub provider_configs: Option<Vec<ProviderConfigInput>>,
    pub budgets: Option<Vec<BudgetInput>>,
    #[serde(default, deserialize_with = "double_option")]
    pub rate_limit: Option<Option<RateLimitInput>>,
    pub calendar_aligned: Option<bool>,
    pub timezone: Option<String>,
    pub mcp_tool_groups: Option<Vec<McpToolGroup>>,
    pub mcp_servers: Option<Vec<McpServer>>,
    pub mcp_tool_overrides: Option<Vec<McpToolOverrideInput>>,
    pub auto_rotation_interval: Option<RotationInput>,
    #[serde(default, deserialize_with = "double_option")]
    pub next_rotation_at: Option<Option<DateTime<Utc>>>,
    // Read-only fields of the response shape: accepted, ignored.
    pub id: Option<IgnoredAny>,
    pub is_active: Option<IgnoredAny>,
    pub version: Option<IgnoredAny>,
    pub last_rotation_at: Option<IgnoredAny>,
    pub created_at: Option<IgnoredAny>,
    pub updated_at: Option<IgnoredAny>,
}

/// The policy fields of a request, validated together.
#[derive(Debug, Default)]
pub struct PolicyFields {
    pub provider_configs: Option<Vec<ProviderConfigInput>>,
    pub budgets: Option<Vec<BudgetInput>>,
    pub rate_limit: Option<RateLimitInput>,
    pub calendar_aligned: Option<bool>,
    pub timezone: Option<String>,
    pub mcp_tool_groups: Option<Vec<McpToolGroup>>,
    pub mcp_servers: Option<Vec<McpServer>>,
    pub mcp_tool_overrides: Option<Vec<McpToolOverrideInput>>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfigInput {
    pub provider_name: Option<String>,
    #[serde(default)]
    pub all_models_allowed: bool,
    #[serde(default)]
    pub allowed_models: Vec<String>,
    #[serde(default)]
    pub budgets: Vec<BudgetInput>,
    pub rate_limit: Option<RateLimitInput>,
    pub id: Option<IgnoredAny>,
    pub access_profile_id: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct BudgetInput {
    pub max_limit: Option<f64>,
    pub reset_duration: Option<String>,
    pub reset_config: Option<ResetConfigInput>,
    pub id: Option<IgnoredAny>,
    pub scope: Option<IgnoredAny>,
    pub current_usage: Option<IgnoredAny>,
    pub last_reset: Option<IgnoredAny>,
    #[serde(rename = "override")]
    pub override_: Option<IgnoredAny>,
    pub effective_max_limit: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub struct ResetConfigInput {
    pub quarter_start_month: i64,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RateLimitInput {
    pub token_max_limit: Option<i64>,
    pub token_reset_duration: Option<String>,
    pub request_max_limit: Option<i64>,
    pub request_reset_duration: Option<String>,
    pub id: Option<IgnoredAny>,
    pub token_current_usage: Option<IgnoredAny>,
    pub request_current_usage: Option<IgnoredAny>,
    pub token_last_reset: Option<IgnoredAny>,
    pub request_last_reset: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct McpToolOverrideInput {
    pub mcp_client_id: String,
    pub tool_name: String,
    /// Bifrost's clients may omit it; an override without an action includes.
    pub action: Option<OverrideAction>,
}

/// Trims a profile name and checks its length; returns the trimmed name.
pub fn normalize_name(raw: Option<&str>) -> Result<String, ValidationError> {
    let name = raw.ok_or_else(|| invalid("name is required"))?.trim();
    if name.is_empty() {
        return Err(invalid("name must not be empty"));
    }
    let chars = name.chars().count();
    if chars > MAX_NAME_CHARS {
        return Err(invalid(format!(
            "name is {chars} characters long; the limit is {MAX_NAME_CHARS}"
        )));
    }
    Ok(name.to_string())
}

/// Checks a description's length.
pub fn validate_description(d: Option<String>) -> Result<Option<String>, ValidationError> {
    if let Some(text) = &d {
        let chars = text.chars().count();
        if chars > MAX_DESCRIPTION_CHARS {
            return Err(invalid(format!(
                "description is {chars} characters long; the limit is {MAX_DESCRIPTION_CHARS}"
            )));
        }
    }
    Ok(d)
}

/// Trims tags, drops duplicates (first one kept) and checks count and length.
pub fn validate_tags(tags: Vec<String>) -> Result<Vec<String>, ValidationError> {
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for (i, raw) in tags.iter().enumerate() {
        let t = raw.trim();
        if t.is_empty() {
            return Err(invalid(format!("tags[{i}] must not be empty")));
        }
        if t.chars().count() > MAX_TAG_CHARS {
            return Err(invalid(format!(
                "tags[{i}] is longer than {MAX_TAG_CHARS} characters"
            )));
        }
        if !out.iter().any(|o| o == t) {
            out.push(t.to_string());
        }
    }
    if out.len() > MAX_TAGS {
        return Err(invalid(format!(
            "a profile carries at most {MAX_TAGS} tags; got {}",
            out.len()
        )));
    }
    Ok(out)
}

/// A validated create request, ready for the store (ids not yet assigned).
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedCreate {
    pub name: String,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub policy: Policy,
    pub rotation_interval_ns: i64,
    pub next_rotation_at: Option<DateTime<Utc>>,
}

/// Validates a create request at instant `now`.
pub fn validate_create(
    mut req: ProfileCreate,
    now: DateTime<Utc>,
) -> Result<ValidatedCreate, ValidationError> {
    let policy_fields = req.take_policy_fields();
    let name = normalize_name(req.name.as_deref())?;
    let description = validate_description(req.description)?;
    let tags = validate_tags(req.tags.unwrap_or_default())?;
    let policy = validate_policy_input(policy_fields)?;
    let interval = match req.auto_rotation_interval {
        Some(i) => super::parse_rotation_interval(&i)?,
        None => 0,
    };
    let next = super::rotation::next_rotation(interval, req.next_rotation_at, now)?;
    Ok(ValidatedCreate {
        name,
        description,
        tags,
        policy,
        rotation_interval_ns: interval,
        next_rotation_at: next,
    })
}

/// Validates the policy fields of a request into a [`Policy`] with blank ids.
pub fn validate_policy_input(f: PolicyFields) -> Result<Policy, ValidationError> {
    let provider_configs = f.provider_configs.unwrap_or_default();
    if provider_configs.len() > MAX_PROVIDER_CONFIGS {
        return Err(invalid(format!(
            "provider_configs holds at most {MAX_PROVIDER_CONFIGS} entries"
        )));
    }
    let mut seen = HashSet::new();
    let mut configs = Vec::with_capacity(provider_configs.len());
    for (i, pc) in provider_configs.into_iter().enumerate() {
        let cfg = validate_provider_config(pc, &format!("provider_configs[{i}]"))?;
        if !seen.insert(cfg.provider_name.clone()) {
            return Err(invalid(format!(
                "provider_configs[{i}]: provider \"{}\" appears twice; a profile has one config per provider",
                cfg.provider_name
            )));
        }
        configs.push(cfg);
    }
    let budgets = validate_budgets(f.budgets.unwrap_or_default(), "budgets")?;
    let rate_limit = f
        .rate_limit
        .map(|rl| validate_rate_limit(rl, "rate_limit"))
        .transpose()?;
    let timezone = validate_timezone(f.timezone.as_deref().unwrap_or("UTC"))?;
    let mcp_tool_groups = f.mcp_tool_groups.unwrap_or_default();
    let mcp_servers = f.mcp_servers.unwrap_or_default();
    let overrides = f.mcp_tool_overrides.unwrap_or_default();
    for (what, n) in [
        ("mcp_tool_groups", mcp_tool_groups.len()),
        ("mcp_servers", mcp_servers.len()),
        ("mcp_tool_overrides", overrides.len()),
    ] {
        if n > MAX_MCP_ENTRIES {
            return Err(invalid(format!(
                "{what} holds at most {MAX_MCP_ENTRIES} entries"
            )));
        }
    }
    for (i, s) in mcp_servers.iter().enumerate() {
        check_id_text(&s.mcp_server_id, &format!("mcp_servers[{i}].mcp_server_id"))?;
    }
    let mut mcp_tool_overrides = Vec::with_capacity(overrides.len());
    for (i, o) in overrides.into_iter().enumerate() {
        let at = format!("mcp_tool_overrides[{i}]");
        check_id_text(&o.mcp_client_id, &format!("{at}.mcp_client_id"))?;
        check_id_text(&o.tool_name, &format!("{at}.tool_name"))?;
        let action = o.action.unwrap_or(OverrideAction::Include);
        if action == OverrideAction::Exclude
            && mcp_servers
                .iter()
                .any(|s| s.mcp_server_id == o.mcp_client_id)
        {
            return Err(invalid(format!(
                "{at}: excludes tool \"{}\" of server \"{}\", which mcp_servers grants whole; remove the server grant or the exclusion",
                o.tool_name, o.mcp_client_id
            )));
        }
        mcp_tool_overrides.push(McpToolOverride {
            mcp_client_id: o.mcp_client_id,
            tool_name: o.tool_name,
            action,
        });
    }
    Ok(Policy {
        provider_configs: configs,
        budgets,
        rate_limit,
        calendar_aligned: f.calendar_aligned.unwrap_or(false),
        timezone,
        mcp_tool_groups,
        mcp_servers,
        mcp_tool_overrides,
    })
}

fn check_id_text(v: &str, at: &str) -> Result<(), ValidationError> {
    if v.trim().is_empty() {
        return Err(invalid(format!("{at} must not be empty")));
    }
    if v.chars().count() > MAX_MCP_ID_CHARS {
        return Err(invalid(format!(
            "{at} is longer than {MAX_MCP_ID_CHARS} characters"
        )));
    }
    Ok(())
}

/// Checks an IANA time-zone name.
pub fn validate_timezone(tz: &str) -> Result<String, ValidationError> {
    chrono_tz::Tz::from_str(tz).map_err(|_| {
        invalid(format!(
            "timezone \"{}\" is not an IANA time zone (e.g. \"UTC\", \"Europe/Berlin\")",
            tz.chars().take(64).collect::<String>()
        ))
    })?;
    Ok(tz.to_string())
}

fn validate_provider_config(
    pc: ProviderConfigInput,
    at: &str,
) -> Result<ProviderConfig, ValidationError> {
    let provider_name = pc
        .provider_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| invalid(format!("{at}.provider_name is required")))?
        .to_string();
    if provider_name.chars().count() > MAX_PROVIDER_NAME_CHARS {
        return Err(invalid(format!(
            "{at}.provider_name is longer than {MAX_PROVIDER_NAME_CHARS} characters"
        )));
    }
    if pc.allowed_models.len() > MAX_ALLOWED_MODELS {
        return Err(invalid(format!(
            "{at}.allowed_models holds at most {MAX_ALLOWED_MODELS} entries"
        )));
    }
    for (i, m) in pc.allowed_models.iter().enumerate() {
        let mat = format!("{at}.allowed_models[{i}]");
        if m.is_empty() {
            return Err(invalid(format!("{mat} must not be empty")));
        }
        if m.chars().count() > MAX_MODEL_CHARS {
            return Err(invalid(format!(
                "{mat} is longer than {MAX_MODEL_CHARS} characters"
            )));
        }
        if let Some(pattern) = m.strip_prefix("regex:") {
            compile_model_regex(pattern)
                .map_err(|e| invalid(format!("{mat}: invalid regular expression: {e}")))?;
        }
    }
    Ok(ProviderConfig {
        id: 0,
        budgets: validate_budgets(pc.budgets, &format!("{at}.budgets"))?,
        rate_limit: pc
            .rate_limit
            .map(|rl| validate_rate_limit(rl, &format!("{at}.rate_limit")))
            .transpose()?,
        provider_name,
        all_models_allowed: pc.all_models_allowed,
        allowed_models: pc.allowed_models,
    })
}

/// Compiles a `regex:` entry the way the policy engine matches it: against
/// the whole model name, case-insensitively.
pub fn compile_model_regex(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
        .case_insensitive(true)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
}

fn validate_budgets(list: Vec<BudgetInput>, at: &str) -> Result<Vec<Budget>, ValidationError> {
    if list.len() > MAX_BUDGETS {
        return Err(invalid(format!("{at} holds at most {MAX_BUDGETS} entries")));
    }
    let mut seen: Vec<ResetDuration> = Vec::new();
    let mut out = Vec::with_capacity(list.len());
    for (i, b) in list.into_iter().enumerate() {
        let bat = format!("{at}[{i}]");
        let dollars = b
            .max_limit
            .ok_or_else(|| invalid(format!("{bat}.max_limit is required")))?;
        if dollars.is_nan() || dollars <= 0.0 {
            return Err(invalid(format!(
                "{bat}.max_limit must be greater than 0 (US dollars)"
            )));
        }
        let max_limit = Money::from_dollars(dollars).ok_or_else(|| {
            invalid(format!(
                "{bat}.max_limit must be at most 1000000000 US dollars"
            ))
        })?;
        let raw = b
            .reset_duration
            .ok_or_else(|| invalid(format!("{bat}.reset_duration is required")))?;
        let dur = ResetDuration::parse(&raw).map_err(|e| {
            invalid(format!(
                "{bat}.reset_duration: {e}; use N followed by s, m, h, d, w, M, Q or Y, e.g. \"1d\" or \"1M\""
            ))
        })?;
        if seen.contains(&dur) {
            return Err(invalid(format!(
                "{bat}.reset_duration \"{raw}\" is used by another budget of the same owner; each budget needs its own duration"
            )));
        }
        seen.push(dur);
        let reset_config = match b.reset_config {
            None => None,
            Some(rc) => {
                if dur.unit != DurationUnit::Quarter {
                    return Err(invalid(format!(
                        "{bat}.reset_config is only valid with a quarterly (Q) reset_duration"
                    )));
                }
                if !(1..=12).contains(&rc.quarter_start_month) {
                    return Err(invalid(format!(
                        "{bat}.reset_config.quarter_start_month must be between 1 and 12"
                    )));
                }
                Some(ResetConfig {
                    quarter_start_month: rc.quarter_start_month as u32,
                })
            }
        };
        out.push(Budget {
            id: String::new(),
            max_limit,
            reset_duration: raw,
            reset_config,
            created_at: None,
            override_: None,
        });
    }
    Ok(out)
}

fn validate_rate_limit(rl: RateLimitInput, at: &str) -> Result<RateLimit, ValidationError> {
    let half = |max: Option<i64>,
                dur: Option<String>,
                what: &str|
     -> Result<(Option<u64>, Option<String>), ValidationError> {
        match max {
            None => Ok((None, None)),
            Some(m) if m <= 0 => Err(invalid(format!(
                "{at}.{what}_max_limit must be greater than 0"
            ))),
            Some(m) => {
                let d = dur.ok_or_else(|| {
                    invalid(format!(
                        "{at}.{what}_reset_duration is required when {what}_max_limit is set"
                    ))
                })?;
                let parsed = ResetDuration::parse(&d)
                    .map_err(|e| invalid(format!("{at}.{what}_reset_duration: {e}")))?;
                if parsed.unit == DurationUnit::Quarter {
                    return Err(invalid(format!(
                        "{at}.{what}_reset_duration: quarters (Q) are for budgets only; use s, m, h, d, w, M or Y"
                    )));
                }
                Ok((Some(m as u64), Some(d)))
            }
        }
    };
    let (token_max_limit, token_reset_duration) =
        half(rl.token_max_limit, rl.token_reset_duration, "token")?;
    let (request_max_limit, request_reset_duration) =
        half(rl.request_max_limit, rl.request_reset_duration, "request")?;
    if token_max_limit.is_none() && request_max_limit.is_none() {
        return Err(invalid(format!(
            "{at} sets neither token_max_limit nor request_max_limit; set at least one, or send null to remove the rate limit"
        )));
    }
    Ok(RateLimit {
        id: String::new(),
        token_max_limit,
        token_reset_duration,
        request_max_limit,
        request_reset_duration,
        token_created_at: None,
        request_created_at: None,
    })
}
