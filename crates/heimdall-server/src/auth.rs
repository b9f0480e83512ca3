//! Admin authentication for `/api/*`: a Bearer token (configured, or
//! generated at first start and kept only as a hash) or Basic credentials.
//! Comparisons hash the presented value and compare digests in constant time.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use rand::Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use heimdall_store::{Store, StoreError};

use crate::config::AdminConfig;
use crate::error::ApiError;
use crate::state::AppState;

const TOKEN_SETTING: &str = "admin_token_sha256";

/// Who made a management call: the admin user name, or `token`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(pub String);

/// The admin credentials a request is checked against.
#[derive(Debug, Clone)]
pub struct AdminAuth {
    token_hash: [u8; 32],
    basic: Option<(String, [u8; 32])>,
}

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if s.len() != 64 {
        return None;
    }
    for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
        let text = std::str::from_utf8(chunk).ok()?;
        out[i] = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

/// A random token: a readable prefix and 40 base62 characters.
pub fn generate_token(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let tail: String = (0..40)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}{tail}")
}

impl AdminAuth {
    /// Builds the credentials from the configuration; when no token is
    /// configured, uses the stored hash or generates a token, stores its hash
    /// and returns the token so the caller can print it once.
    pub async fn init(
        store: &Store,
        config: &AdminConfig,
    ) -> Result<(AdminAuth, Option<String>), StoreError> {
        let basic = match (&config.username, &config.password) {
            (Some(u), Some(p)) => Some((u.clone(), sha256(p.as_bytes()))),
            _ => None,
        };
        if let Some(token) = &config.token {
            return Ok((
                AdminAuth {
                    token_hash: sha256(token.as_bytes()),
                    basic,
                },
                None,
            ));
        }
        if let Some(stored) = store.get_setting(TOKEN_SETTING).await? {
            let token_hash = unhex(&stored).ok_or_else(|| {
                StoreError::Corrupt("the stored admin token hash is malformed".to_string())
            })?;
            return Ok((AdminAuth { token_hash, basic }, None));
        }
        let token = generate_token("hd-admin-");
        let hash = sha256(token.as_bytes());
        if store
            .insert_setting_if_absent(TOKEN_SETTING, &hex(&hash))
            .await?
        {
            Ok((
                AdminAuth {
                    token_hash: hash,
                    basic,
                },
                Some(token),
            ))
        } else {
            // Another node stored one first; use it (its node printed it).
            Box::pin(AdminAuth::init(store, config)).await
        }
    }

    /// Checks an `Authorization` header value; returns the actor.
    pub fn check(&self, authorization: Option<&str>) -> Option<Actor> {
        let value = authorization?.trim();
        let (scheme, rest) = value.split_once(' ')?;
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            let ok: bool = sha256(rest.as_bytes()).ct_eq(&self.token_hash).into();
            return ok.then(|| Actor("token".to_string()));
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let (user, pass_hash) = self.basic.as_ref()?;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .ok()?;
            let text = String::from_utf8(decoded).ok()?;
            let (u, p) = text.split_once(':')?;
            let user_ok: bool = sha256(u.as_bytes()).ct_eq(&sha256(user.as_bytes())).into();
            let pass_ok: bool = sha256(p.as_bytes()).ct_eq(pass_hash).into();
            return (user_ok & pass_ok).then(|| Actor(user.clone()));
        }
        None
    }
}

/// Middleware: admits admin callers and records the actor for handlers.
pub async fn require_admin(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match state.admin.check(header) {
        Some(actor) => {
            req.extensions_mut().insert(actor);
            Ok(next.run(req).await)
        }
        None => Err(ApiError::unauthorized(
            "missing or invalid admin credentials: send \"Authorization: Bearer <admin token>\" (or Basic credentials when configured)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> AdminAuth {
        AdminAuth {
            token_hash: sha256(b"secret-token-0123456789"),
            basic: Some(("alice".to_string(), sha256(b"pw"))),
        }
    }

    #[test]
    fn accepts_the_token_in_any_case_of_bearer() {
        assert_eq!(
            auth().check(Some("Bearer secret-token-0123456789")),
            Some(Actor("token".into()))
        );
        assert!(
            auth()
                .check(Some("bearer secret-token-0123456789"))
                .is_some()
        );
        assert!(
            auth()
                .check(Some("Bearer secret-token-012345678"))
                .is_none()
        );
        assert!(auth().check(None).is_none());
        assert!(auth().check(Some("secret-token-0123456789")).is_none());
    }

    #[test]
    fn basic_credentials_name_the_actor() {
        let b64 = base64::engine::general_purpose::STANDARD.encode("alice:pw");
        assert_eq!(
            auth().check(Some(&format!("Basic {b64}"))),
            Some(Actor("alice".into()))
        );
        let bad = base64::engine::general_purpose::STANDARD.encode("alice:nope");
        assert!(auth().check(Some(&format!("Basic {bad}"))).is_none());
        assert!(auth().check(Some("Basic !!!")).is_none());
    }

    #[test]
    fn hex_round_trips() {
        let h = sha256(b"x");
        assert_eq!(unhex(&hex(&h)), Some(h));
        assert_eq!(unhex("zz"), None);
    }
}
