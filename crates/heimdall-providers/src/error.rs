//! The one error type of the providers crate.
//!
//! Each variant knows its HTTP status, its envelope `type` string, whether the
//! same provider may be retried and whether a fallback may be tried. It must
//! not render the envelope itself: the server encodes errors in one place.

use std::time::Duration;

/// Why an upstream call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    /// The upstream answered with an error status; it keeps that status.
    #[error("{message}")]
    Upstream {
        /// HTTP status the upstream returned.
        status: u16,
        /// The upstream's own message (or a summary of its body).
        message: String,
        /// `Retry-After` the upstream sent, if any.
        retry_after: Option<Duration>,
    },
    /// Could not reach the upstream (refused, reset, DNS, TLS).
    #[error("provider unreachable: {0}")]
    Unavailable(String),
    /// The upstream did not answer within the configured time.
    #[error("provider timed out: {0}")]
    Timeout(String),
    /// No enabled key of the provider admits the model, or a key's env var is unset.
    #[error("{0}")]
    NoProviderKey(String),
    /// The request cannot be expressed for this provider (e.g. embeddings on Anthropic).
    #[error("{0}")]
    InvalidRequest(String),
    /// The upstream answered 2xx but with a body we could not read.
    #[error("provider sent an unreadable response: {0}")]
    BadResponse(String),
    /// The upstream stream broke after it started.
    #[error("provider stream interrupted: {0}")]
    StreamInterrupted(String),
}

impl ProviderError {
    /// The HTTP status the client sees.
    pub fn status(&self) -> u16 {
        match self {
            Self::Upstream { status, .. } => *status,
            Self::Unavailable(_) | Self::BadResponse(_) | Self::StreamInterrupted(_) => 502,
            Self::Timeout(_) => 504,
            Self::NoProviderKey(_) => 503,
            Self::InvalidRequest(_) => 400,
        }
    }

    /// The envelope `type` (inference.md §Errors).
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Upstream { .. } | Self::BadResponse(_) | Self::StreamInterrupted(_) => {
                "provider_error"
            }
            Self::Unavailable(_) => "provider_unavailable",
            Self::Timeout(_) => "provider_timeout",
            Self::NoProviderKey(_) => "no_provider_key",
            Self::InvalidRequest(_) => "invalid_request",
        }
    }

    /// True when the error came from the upstream rather than from Heimdall's
    /// own decision (drives `is_bifrost_error`).
    pub fn is_from_upstream(&self) -> bool {
        !matches!(self, Self::NoProviderKey(_) | Self::InvalidRequest(_))
    }

    /// May the same provider be tried again (its own `max_retries`)?
    /// Connection errors, timeouts, 429 and 5xx are transient; a 4xx is not.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Upstream { status, .. } => *status == 429 || *status >= 500,
            Self::Unavailable(_) | Self::Timeout(_) => true,
            Self::NoProviderKey(_)
            | Self::InvalidRequest(_)
            | Self::BadResponse(_)
            | Self::StreamInterrupted(_) => false,
        }
    }

    /// May the next `fallbacks` entry be tried after this error?
    /// Same as retryable, plus "this provider has no key for the model",
    /// which another provider may well have.
    pub fn allows_fallback(&self) -> bool {
        self.is_retryable() || matches!(self, Self::NoProviderKey(_) | Self::BadResponse(_))
    }

    /// Retry-After the upstream asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Upstream { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_keeps_status_and_retries_only_transient() {
        let e = ProviderError::Upstream {
            status: 429,
            message: "slow".into(),
            retry_after: None,
        };
        assert_eq!(e.status(), 429);
        assert_eq!(e.error_type(), "provider_error");
        assert!(e.is_retryable());
        let e = ProviderError::Upstream {
            status: 400,
            message: "bad".into(),
            retry_after: None,
        };
        assert!(!e.is_retryable());
        assert!(!e.allows_fallback());
    }

    #[test]
    fn gateway_side_errors_have_fixed_statuses() {
        assert_eq!(ProviderError::Timeout("x".into()).status(), 504);
        assert_eq!(ProviderError::Unavailable("x".into()).status(), 502);
        assert_eq!(ProviderError::NoProviderKey("x".into()).status(), 503);
        assert_eq!(
            ProviderError::NoProviderKey("x".into()).error_type(),
            "no_provider_key"
        );
        assert!(!ProviderError::NoProviderKey("x".into()).is_retryable());
        assert!(ProviderError::NoProviderKey("x".into()).allows_fallback());
    }
}
