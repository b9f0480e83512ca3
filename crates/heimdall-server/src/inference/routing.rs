//! Which provider and model a request's `model` names (inference.md §Routes).
//!
//! Pure: given the route, the model string, the configured providers and
//! `server.default_provider`, returns the target or a message for a 400.

/// The route family a request came in on; it decides how a bare model is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    /// `/v1/*`: the prefix is always the provider.
    V1,
    /// `/openai/v1/*`: default provider `openai`.
    OpenAi,
    /// `/anthropic/v1/*`: default provider `anthropic`.
    Anthropic,
}

impl RouteKind {
    /// Low-cardinality metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::V1 => "/v1",
            Self::OpenAi => "/openai/v1",
            Self::Anthropic => "/anthropic/v1",
        }
    }
}

/// One provider and bare model to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Provider name.
    pub provider: String,
    /// Bare model as sent upstream.
    pub model: String,
}

impl Target {
    /// `provider/model`, as in `x-heimdall-provider`.
    pub fn label(&self) -> String {
        format!("{}/{}", self.provider, self.model)
    }
}

/// Resolves `model` on `route`.
pub fn resolve(
    route: RouteKind,
    model: &str,
    is_provider: &dyn Fn(&str) -> bool,
    default_provider: Option<&str>,
) -> Result<Target, String> {
    let model = model.trim();
    if model.is_empty() {
        return Err(
            "\"model\" is empty; use the form \"provider/model\", e.g. \"openai/gpt-4o-mini\""
                .into(),
        );
    }
    let split = model.split_once('/');
    let route_default = match route {
        RouteKind::V1 => None,
        RouteKind::OpenAi => Some("openai"),
        RouteKind::Anthropic => Some("anthropic"),
    };
    let target = match (route_default, split) {
        (None, Some((p, m))) => Target {
            provider: p.to_owned(),
            model: m.to_owned(),
        },
        (None, None) => match default_provider {
            Some(p) => Target {
                provider: p.to_owned(),
                model: model.to_owned(),
            },
            None => {
                return Err(format!(
                    "model \"{model}\" has no provider prefix; use the form \"provider/model\", e.g. \"openai/{model}\""
                ));
            }
        },
        (Some(_), Some((p, m))) if is_provider(p) => Target {
            provider: p.to_owned(),
            model: m.to_owned(),
        },
        (Some(d), _) => Target {
            provider: d.to_owned(),
            model: model.to_owned(),
        },
    };
    if target.model.is_empty() {
        return Err(format!(
            "model \"{model}\" names no model after the provider"
        ));
    }
    if !is_provider(&target.provider) {
        return Err(format!(
            "unknown provider \"{}\" in model \"{model}\"",
            target.provider
        ));
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(p: &str) -> bool {
        matches!(p, "openai" | "anthropic" | "groq")
    }

    fn ok(route: RouteKind, m: &str, d: Option<&str>) -> (String, String) {
        let t = resolve(route, m, &known, d).unwrap();
        (t.provider, t.model)
    }

    #[test]
    fn splits_at_the_first_slash() {
        assert_eq!(
            ok(RouteKind::V1, "groq/meta-llama/llama-3.1-8b", None),
            ("groq".into(), "meta-llama/llama-3.1-8b".into())
        );
    }

    #[test]
    fn bare_model_on_v1_needs_a_default_provider() {
        let err = resolve(RouteKind::V1, "gpt-4o", &known, None).unwrap_err();
        assert!(err.contains("provider/model"), "{err}");
        assert_eq!(
            ok(RouteKind::V1, "gpt-4o", Some("openai")),
            ("openai".into(), "gpt-4o".into())
        );
    }

    #[test]
    fn unknown_provider_is_an_error_on_v1() {
        assert!(
            resolve(RouteKind::V1, "nope/x", &known, None)
                .unwrap_err()
                .contains("unknown provider")
        );
    }

    #[test]
    fn alias_routes_take_a_prefix_only_when_it_is_a_provider() {
        assert_eq!(
            ok(RouteKind::OpenAi, "gpt-4o", None),
            ("openai".into(), "gpt-4o".into())
        );
        assert_eq!(
            ok(RouteKind::OpenAi, "groq/llama", None),
            ("groq".into(), "llama".into())
        );
        assert_eq!(
            ok(RouteKind::OpenAi, "meta-llama/llama", None),
            ("openai".into(), "meta-llama/llama".into())
        );
        assert_eq!(
            ok(RouteKind::Anthropic, "claude-3", None),
            ("anthropic".into(), "claude-3".into())
        );
    }

    #[test]
    fn alias_default_must_be_configured() {
        let none = |_: &str| false;
        assert!(resolve(RouteKind::Anthropic, "claude", &none, None).is_err());
    }
}
