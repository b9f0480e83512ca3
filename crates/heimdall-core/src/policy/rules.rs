//! Compiled allow-rules of a policy: for each provider, which models a copy
//! grants. Compiled once per distinct rule set and shared (an `Arc`) by every
//! copy that carries the same rules, so a million copies of one template
//! hold one set of regexes (compiled on first use).

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use regex::Regex;

use crate::profile::{Policy, compile_model_regex};

/// The models one provider config admits.
#[derive(Debug)]
pub struct ModelRule {
    pub all_models: bool,
    pub exact: HashSet<String>,
    /// `regex:` patterns as written (validated at write time).
    pub pattern_sources: Vec<String>,
    /// Compiled on first use: a compiled regex holds tens of kilobytes, and
    /// most templates of a large deployment are idle at any time.
    patterns: OnceLock<Vec<Regex>>,
    /// Exact entries in their written order (for `/v1/models`).
    pub listed: Vec<String>,
}

impl ModelRule {
    pub fn admits(&self, model: &str) -> bool {
        if self.all_models || self.exact.contains(model) {
            return true;
        }
        if self.pattern_sources.is_empty() {
            return false;
        }
        self.patterns
            .get_or_init(|| {
                // A pattern that no longer compiles grants nothing.
                self.pattern_sources
                    .iter()
                    .filter_map(|p| compile_model_regex(p).ok())
                    .collect()
            })
            .iter()
            .any(|r| r.is_match(model))
    }
}

/// A copy's allow-rules by provider name.
#[derive(Debug, Default)]
pub struct CompiledRules {
    pub providers: HashMap<String, ModelRule>,
}

/// What the rules say about a provider and model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// No config for this provider.
    NoProvider,
    /// The provider is configured but the model is not allowed.
    NoModel,
    Granted,
}

impl CompiledRules {
    /// Prepares the provider configs of a policy (patterns compile lazily).
    pub fn compile(policy: &Policy) -> CompiledRules {
        let providers = policy
            .provider_configs
            .iter()
            .map(|pc| {
                let mut exact = HashSet::new();
                let mut pattern_sources = Vec::new();
                let mut listed = Vec::new();
                for m in &pc.allowed_models {
                    match m.strip_prefix("regex:") {
                        Some(p) => pattern_sources.push(p.to_string()),
                        None => {
                            exact.insert(m.clone());
                            listed.push(m.clone());
                        }
                    }
                }
                (
                    pc.provider_name.clone(),
                    ModelRule {
                        all_models: pc.all_models_allowed,
                        exact,
                        pattern_sources,
                        patterns: OnceLock::new(),
                        listed,
                    },
                )
            })
            .collect();
        CompiledRules { providers }
    }

    /// A key that is equal for policies with equal allow-rules (for sharing).
    pub fn share_key(policy: &Policy) -> String {
        let mut s = String::new();
        for pc in &policy.provider_configs {
            s.push_str(&pc.provider_name);
            s.push('\u{1}');
            s.push(if pc.all_models_allowed { '1' } else { '0' });
            for m in &pc.allowed_models {
                s.push('\u{2}');
                s.push_str(m);
            }
            s.push('\u{3}');
        }
        s
    }

    pub fn grant(&self, provider: &str, model: &str) -> Grant {
        match self.providers.get(provider) {
            None => Grant::NoProvider,
            Some(rule) if rule.admits(model) => Grant::Granted,
            Some(_) => Grant::NoModel,
        }
    }
}
