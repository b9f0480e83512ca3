//! The access-profile domain: the policy a template carries and that each user
//! copy holds privately. Types here are what the store keeps (as JSON) and what
//! the policy engine reads; wire shapes live in `input` (requests) and in the
//! server's DTOs (responses). No I/O.

mod input;
mod patch;
mod rotation;
#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::money::Money;

pub use input::{
    BudgetInput, McpToolOverrideInput, ProfileCreate, ProfilePatch, ProviderConfigInput,
    RateLimitInput, ValidationError, double_option, normalize_name, validate_create,
    validate_description, validate_policy_input, validate_tags,
};
pub use input::{PolicyFields, ValidatedCreate, compile_model_regex, validate_timezone};
pub use patch::{PatchedProfile, apply_patch};
pub use rotation::{
    MAX_ROTATION, MIN_ROTATION, RotationInput, parse_duration_ns, parse_rotation_interval,
};

/// Everything a profile decides about requests. Templates and user copies
/// carry the same structure; copies add their own counters (kept elsewhere).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Policy {
    pub provider_configs: Vec<ProviderConfig>,
    pub budgets: Vec<Budget>,
    pub rate_limit: Option<RateLimit>,
    pub calendar_aligned: bool,
    pub timezone: String,
    pub mcp_tool_groups: Vec<McpToolGroup>,
    pub mcp_servers: Vec<McpServer>,
    pub mcp_tool_overrides: Vec<McpToolOverride>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderConfig {
    pub id: i64,
    pub provider_name: String,
    pub all_models_allowed: bool,
    pub allowed_models: Vec<String>,
    pub budgets: Vec<Budget>,
    pub rate_limit: Option<RateLimit>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    pub id: String,
    pub max_limit: Money,
    pub reset_duration: String,
    pub reset_config: Option<ResetConfig>,
    /// On a user copy: when this budget's counter was created (the anchor of
    /// its rolling windows). None on templates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    /// On a user copy: a temporary or permanent raise of the limit.
    #[serde(default, rename = "override", skip_serializing_if = "Option::is_none")]
    pub override_: Option<BudgetOverride>,
}

/// A raise of one budget of a user copy (access-profiles.md, overrides).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetOverride {
    pub amount: Money,
    /// `None` = forever; `Some(n)` = for n windows, the current one included.
    pub cycles: Option<u32>,
    /// Index of the window the override was set in (derived, so every node
    /// computes the same remaining cycles).
    pub set_window_index: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetConfig {
    pub quarter_start_month: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    pub id: String,
    pub token_max_limit: Option<u64>,
    pub token_reset_duration: Option<String>,
    pub request_max_limit: Option<u64>,
    pub request_reset_duration: Option<String>,
    /// On a user copy: anchors of the token and request windows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_created_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_created_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpToolGroup {
    pub tool_group_id: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpServer {
    pub mcp_server_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct McpToolOverride {
    pub mcp_client_id: String,
    pub tool_name: String,
    pub action: OverrideAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OverrideAction {
    Include,
    Exclude,
}

/// The automatic key-rotation schedule of a template.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RotationSchedule {
    /// Interval in nanoseconds; 0 = off.
    pub interval_ns: i64,
    pub next_rotation_at: Option<DateTime<Utc>>,
    pub last_rotation_at: Option<DateTime<Utc>>,
}

/// An access-profile template as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessProfile {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    pub is_active: bool,
    pub version: i64,
    pub tags: Vec<String>,
    pub policy: Policy,
    pub rotation: RotationSchedule,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The owner of a budget or rate limit inside a policy: the profile itself or
/// one of its provider configs. Budgets are matched across versions by owner
/// and duration (propagation, id reuse).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LimitOwner {
    Profile,
    Provider(String),
}

impl LimitOwner {
    /// The wire `scope` of budgets with this owner.
    pub fn scope(&self) -> String {
        match self {
            LimitOwner::Profile => "total".to_string(),
            LimitOwner::Provider(name) => format!("provider:{name}"),
        }
    }
}

impl Policy {
    /// An empty policy in UTC, not calendar-aligned.
    pub fn empty() -> Policy {
        Policy {
            timezone: "UTC".to_string(),
            ..Policy::default()
        }
    }

    /// This policy with every server-assigned id and every piece of per-copy
    /// state (anchors, overrides) blanked: two policies that are equal this
    /// way express the same rules.
    pub fn without_ids(&self) -> Policy {
        let mut p = self.clone();
        let clear_budget = |b: &mut Budget| {
            b.id.clear();
            b.created_at = None;
            b.override_ = None;
        };
        let clear_rl = |rl: &mut RateLimit| {
            rl.id.clear();
            rl.token_created_at = None;
            rl.request_created_at = None;
        };
        p.budgets.iter_mut().for_each(clear_budget);
        if let Some(rl) = &mut p.rate_limit {
            clear_rl(rl);
        }
        for pc in &mut p.provider_configs {
            pc.id = 0;
            pc.budgets.iter_mut().for_each(clear_budget);
            if let Some(rl) = &mut pc.rate_limit {
                clear_rl(rl);
            }
        }
        p
    }

    /// Sets the window anchors of every budget and rate-limit half that has
    /// none yet (a copy's counters start when the copy gets them).
    pub fn anchor_unset(&mut self, now: DateTime<Utc>) {
        let anchor_rl = |rl: &mut RateLimit| {
            if rl.token_max_limit.is_some() && rl.token_created_at.is_none() {
                rl.token_created_at = Some(now);
            }
            if rl.request_max_limit.is_some() && rl.request_created_at.is_none() {
                rl.request_created_at = Some(now);
            }
        };
        for b in &mut self.budgets {
            b.created_at.get_or_insert(now);
        }
        if let Some(rl) = &mut self.rate_limit {
            anchor_rl(rl);
        }
        for pc in &mut self.provider_configs {
            for b in &mut pc.budgets {
                b.created_at.get_or_insert(now);
            }
            if let Some(rl) = &mut pc.rate_limit {
                anchor_rl(rl);
            }
        }
    }

    /// The budget with `id`, profile-wide or of a provider config.
    pub fn budget_mut(&mut self, id: &str) -> Option<&mut Budget> {
        if let Some(i) = self.budgets.iter().position(|b| b.id == id) {
            return self.budgets.get_mut(i);
        }
        self.provider_configs
            .iter_mut()
            .flat_map(|pc| pc.budgets.iter_mut())
            .find(|b| b.id == id)
    }

    /// Gives every budget, rate limit and provider config an id: the id of the
    /// matching element of `previous` when there is one (same owner and
    /// duration for budgets, same provider for configs), a fresh one otherwise.
    /// `next_config_id` hands out new provider-config ids.
    pub fn assign_ids(
        &mut self,
        previous: Option<&Policy>,
        next_config_id: &mut dyn FnMut() -> i64,
    ) {
        let prev_budget = |owner: &LimitOwner, dur: &str| -> Option<String> {
            let p = previous?;
            let list = match owner {
                LimitOwner::Profile => &p.budgets,
                LimitOwner::Provider(name) => {
                    &p.provider_configs
                        .iter()
                        .find(|c| &c.provider_name == name)?
                        .budgets
                }
            };
            list.iter()
                .find(|b| b.reset_duration == dur && !b.id.is_empty())
                .map(|b| b.id.clone())
        };
        let prev_rl = |owner: &LimitOwner| -> Option<String> {
            let p = previous?;
            let rl = match owner {
                LimitOwner::Profile => p.rate_limit.as_ref(),
                LimitOwner::Provider(name) => p
                    .provider_configs
                    .iter()
                    .find(|c| &c.provider_name == name)?
                    .rate_limit
                    .as_ref(),
            };
            rl.map(|r| r.id.clone()).filter(|id| !id.is_empty())
        };
        let fill_budgets = |owner: &LimitOwner, budgets: &mut Vec<Budget>| {
            for b in budgets {
                b.id = prev_budget(owner, &b.reset_duration).unwrap_or_else(new_limit_id);
            }
        };
        fill_budgets(&LimitOwner::Profile, &mut self.budgets);
        if let Some(rl) = &mut self.rate_limit {
            rl.id = prev_rl(&LimitOwner::Profile).unwrap_or_else(new_limit_id);
        }
        for pc in &mut self.provider_configs {
            let owner = LimitOwner::Provider(pc.provider_name.clone());
            pc.id = previous
                .and_then(|p| {
                    p.provider_configs
                        .iter()
                        .find(|c| c.provider_name == pc.provider_name && c.id > 0)
                })
                .map(|c| c.id)
                .unwrap_or_else(&mut *next_config_id);
            fill_budgets(&owner, &mut pc.budgets);
            if let Some(rl) = &mut pc.rate_limit {
                rl.id = prev_rl(&owner).unwrap_or_else(new_limit_id);
            }
        }
    }

    /// Every budget with its owner, profile-wide first.
    pub fn budgets_with_owner(&self) -> impl Iterator<Item = (LimitOwner, &Budget)> {
        self.budgets.iter().map(|b| (LimitOwner::Profile, b)).chain(
            self.provider_configs.iter().flat_map(|pc| {
                pc.budgets
                    .iter()
                    .map(move |b| (LimitOwner::Provider(pc.provider_name.clone()), b))
            }),
        )
    }

    /// How many provider configs need a fresh id under `assign_ids`.
    pub fn provider_config_count(&self) -> usize {
        self.provider_configs.len()
    }
}

/// A fresh id for a budget or rate limit (a UUID, as Bifrost's clients expect).
pub fn new_limit_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
