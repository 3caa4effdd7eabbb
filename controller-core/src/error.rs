//! The error every billing-domain operation returns; the API maps each variant to one HTTP
//! status and a machine-readable code.

use crate::db::DbError;

/// Why a domain operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The record does not exist (or is not visible to the caller).
    #[error("no {entity} {key:?}")]
    NotFound {
        /// Kind of record.
        entity: &'static str,
        /// The id or key asked for.
        key: String,
    },
    /// A field's value is not acceptable.
    #[error("{field}: {message}")]
    Invalid {
        /// The field that was wrong (JSON name).
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The change contradicts the current state (duplicate, wrong status, no balance).
    #[error("{message}")]
    Conflict {
        /// Machine-readable reason, e.g. `exists`, `insufficient_balance`.
        code: &'static str,
        /// What is in the way.
        message: String,
    },
}

impl From<sqlx::Error> for DomainError {
    fn from(e: sqlx::Error) -> Self {
        DomainError::Db(DbError::Sqlx(e))
    }
}

impl DomainError {
    /// A bad field.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        DomainError::Invalid {
            field,
            message: message.into(),
        }
    }

    /// A missing record.
    pub fn not_found(entity: &'static str, key: impl Into<String>) -> Self {
        DomainError::NotFound {
            entity,
            key: key.into(),
        }
    }

    /// A state conflict.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        DomainError::Conflict {
            code,
            message: message.into(),
        }
    }
}

/// Result of a domain operation.
pub type DomainResult<T> = Result<T, DomainError>;

/// Checks an optional free-text field's length; empty strings become `None`.
pub fn text(field: &'static str, v: Option<String>, max: usize) -> DomainResult<Option<String>> {
    match v.map(|s| s.trim().to_string()) {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) if s.chars().count() > max => Err(DomainError::invalid(
            field,
            format!("must be at most {max} characters"),
        )),
        Some(s) if s.chars().any(|c| c.is_control() && c != '\n') => Err(DomainError::invalid(
            field,
            "must not contain control characters",
        )),
        Some(s) => Ok(Some(s)),
    }
}

/// Checks a required free-text field.
pub fn required_text(field: &'static str, v: &str, max: usize) -> DomainResult<String> {
    text(field, Some(v.to_string()), max)?
        .ok_or_else(|| DomainError::invalid(field, "must not be empty"))
}
