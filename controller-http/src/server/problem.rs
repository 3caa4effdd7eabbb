//! Errors as RFC 9457 problem details (`application/problem+json`) with a machine-readable
//! `code` and, for validation errors, the `field` that was wrong.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mikrobill_core::error::DomainError;
use serde::Serialize;

/// An API error; rendered as a [`ProblemBody`].
#[derive(Debug, Clone)]
pub struct Problem {
    /// HTTP status.
    pub status: StatusCode,
    /// Machine-readable code, e.g. `invalid`, `not_found`, `insufficient_balance`.
    pub code: &'static str,
    /// What went wrong in this case.
    pub detail: String,
    /// The request field that was wrong, when one was.
    pub field: Option<String>,
    /// Seconds to wait before retrying (rate limits).
    pub retry_after: Option<u64>,
}

/// The problem document clients receive.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProblemBody {
    /// A URI naming the problem type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the problem type.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// What went wrong in this case.
    pub detail: String,
    /// Machine-readable code, e.g. `invalid`, `not_found`, `insufficient_balance`.
    pub code: String,
    /// The request field that was wrong, when one was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl utoipa::PartialSchema for Problem {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        ProblemBody::schema()
    }
}

impl utoipa::ToSchema for Problem {
    fn name() -> std::borrow::Cow<'static, str> {
        "Problem".into()
    }
}

/// Result type of API handlers.
pub type ApiResult<T> = Result<T, Problem>;

impl Problem {
    /// A problem with the given status and code.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Problem {
        Problem {
            status,
            code,
            detail: detail.into(),
            field: None,
            retry_after: None,
        }
    }

    /// 422 for a bad field.
    pub fn invalid(field: &str, detail: impl Into<String>) -> Problem {
        let mut p = Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", detail);
        p.field = Some(field.to_string());
        p
    }

    /// 400 for a request that cannot be parsed.
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// 401: no valid credentials.
    pub fn unauthenticated(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::UNAUTHORIZED, "unauthenticated", detail)
    }

    /// 403: authenticated but not allowed.
    pub fn forbidden() -> Problem {
        Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "your role does not allow this",
        )
    }

    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    /// 500 without leaking internals; the cause goes to the log.
    pub fn internal(cause: &dyn std::fmt::Display) -> Problem {
        tracing::error!("request failed: {cause}");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the controller log",
        )
    }

    /// The document sent to the client.
    pub fn body(&self) -> ProblemBody {
        ProblemBody {
            kind: format!("urn:mikrobill:problem:{}", self.code),
            title: self
                .status
                .canonical_reason()
                .unwrap_or("Error")
                .to_string(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.to_string(),
            field: self.field.clone(),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status;
        let mut res = (status, axum::Json(self.body())).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        res
    }
}

impl From<DomainError> for Problem {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Db(db) => Problem::internal(&db),
            DomainError::NotFound { .. } => Problem::not_found(e.to_string()),
            DomainError::Invalid { field, message } => Problem::invalid(field, message),
            DomainError::Conflict { code, message } => {
                Problem::new(StatusCode::CONFLICT, code, message)
            }
        }
    }
}

impl From<mikrobill_core::db::DbError> for Problem {
    fn from(e: mikrobill_core::db::DbError) -> Self {
        Problem::internal(&e)
    }
}

impl From<mikrobill_core::auth::tokens::TokenError> for Problem {
    fn from(e: mikrobill_core::auth::tokens::TokenError) -> Self {
        match e {
            mikrobill_core::auth::tokens::TokenError::Db(db) => Problem::internal(&db),
            mikrobill_core::auth::tokens::TokenError::Invalid => {
                Problem::unauthenticated("the token is not valid or has expired")
            }
        }
    }
}

/// The problem of a request body over [`super::body::MAX_BODY_BYTES`].
pub fn payload_too_large() -> Problem {
    Problem::new(
        axum::http::StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!(
            "the request body is larger than {} MiB",
            super::body::MAX_BODY_BYTES / 1024 / 1024
        ),
    )
}

/// A body that could not be read: too large (413), too slow (408), or broken (400).
pub fn body_problem(
    error: &(dyn std::error::Error + 'static),
    status: axum::http::StatusCode,
    text: String,
) -> Problem {
    use axum::http::StatusCode;
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        payload_too_large()
    } else if super::body::is_body_timeout(error) {
        Problem::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            "the request body did not arrive in time",
        )
    } else {
        Problem::bad_request("invalid_body", text)
    }
}
