//! Roles and users: the people side of access profiles. Pure validation.

use chrono::{DateTime, Utc};

use crate::profile::ValidationError;

/// The three roles that exist from the first start and cannot be deleted.
pub const SYSTEM_ROLES: [(i64, &str); 3] = [(1, "Admin"), (2, "Developer"), (3, "Viewer")];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    pub is_system_role: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub name: String,
    pub email: String,
    pub role_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub const MAX_EMAIL_CHARS: usize = 254;
pub const MAX_PERSON_NAME_CHARS: usize = 255;

fn invalid(m: impl Into<String>) -> ValidationError {
    ValidationError(m.into())
}

/// Trims and checks a role's or user's name.
pub fn validate_name(what: &str, raw: Option<&str>) -> Result<String, ValidationError> {
    let name = raw
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| invalid(format!("{what} name is required and must not be empty")))?;
    if name.chars().any(char::is_control) {
        return Err(invalid(format!(
            "{what} name must not contain control characters"
        )));
    }
    if name.chars().count() > MAX_PERSON_NAME_CHARS {
        return Err(invalid(format!(
            "{what} name is longer than {MAX_PERSON_NAME_CHARS} characters"
        )));
    }
    Ok(name.to_string())
}

/// Checks an email: at most 254 characters, exactly one `@`, a non-empty
/// local part, a dot in the domain. Returns it trimmed.
pub fn validate_email(raw: Option<&str>) -> Result<String, ValidationError> {
    let email = raw
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .ok_or_else(|| invalid("email is required"))?;
    if email.chars().count() > MAX_EMAIL_CHARS {
        return Err(invalid(format!(
            "email is longer than {MAX_EMAIL_CHARS} characters"
        )));
    }
    let bad = || {
        invalid(format!(
            "\"{}\" is not an email address",
            email.chars().take(80).collect::<String>()
        ))
    };
    let mut parts = email.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    if local.is_empty()
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
        || email.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(bad());
    }
    Ok(email.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(validate_email(Some(" a@b.co ")).unwrap(), "a@b.co");
        for bad in [
            "", "a", "a@b", "@b.co", "a@@b.co", "a@b@c.co", "a b@c.co", "a@.co", "a@co.",
        ] {
            assert!(validate_email(Some(bad)).is_err(), "{bad}");
        }
        let long = format!("{}@b.co", "a".repeat(250));
        assert!(validate_email(Some(&long)).is_err());
    }

    #[test]
    fn names() {
        assert_eq!(validate_name("role", Some(" Ops ")).unwrap(), "Ops");
        assert!(validate_name("role", Some(" ")).is_err());
        assert!(validate_name("user", None).is_err());
    }
}
