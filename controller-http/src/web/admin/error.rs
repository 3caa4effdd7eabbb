//! [`WebError`]: why an admin page could not be shown, and how that becomes an HTML page.

use super::texts;
use crate::web::{Lang, html};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mikrobill_core::db::DbError;
use mikrobill_core::error::DomainError;

/// Why an admin page could not be shown.
#[derive(Debug)]
pub enum WebError {
    /// No live session: go to the login page, then back to this path and query.
    Login(String),
    /// The role requires two-factor sign-in and the account has none: enrol first.
    Enrol,
    /// The role does not allow it.
    Forbidden(Lang),
    /// A POST without a valid CSRF token or from another origin.
    Csrf(Lang),
    /// No such page or record.
    NotFound(Lang),
    /// A malformed request.
    BadRequest(Lang, String),
    /// Storage failed.
    Db(DbError),
}

impl From<DbError> for WebError {
    fn from(e: DbError) -> Self {
        WebError::Db(e)
    }
}

impl From<DomainError> for WebError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Db(e) => WebError::Db(e),
            DomainError::NotFound { .. } => WebError::NotFound(Lang::default()),
            other => WebError::BadRequest(Lang::default(), other.to_string()),
        }
    }
}

impl From<mikrobill_core::sites::SiteError> for WebError {
    fn from(e: mikrobill_core::sites::SiteError) -> Self {
        use mikrobill_core::sites::SiteError;
        match e {
            SiteError::Db(e) => WebError::Db(e),
            SiteError::NotFound(_) => WebError::NotFound(Lang::default()),
            other => WebError::BadRequest(Lang::default(), other.to_string()),
        }
    }
}

/// The minimal error page, rendered without the session's navigation.
#[derive(askama::Template)]
#[template(path = "admin/error.html")]
pub struct ErrorPage {
    /// Page language.
    pub lang: Lang,
    /// HTTP status shown.
    pub status: u16,
    /// Headline.
    pub title: &'static str,
    /// Explanation.
    pub detail: String,
    /// "Back to the dashboard" text.
    pub home: &'static str,
}

/// An HTML error page in `lang`.
pub fn error_page(lang: Lang, status: StatusCode, key: &str, detail: String) -> Response {
    html::render(
        status,
        &ErrorPage {
            lang,
            status: status.as_u16(),
            title: texts::text(lang, key),
            detail,
            home: texts::text(lang, "error.home"),
        },
    )
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match self {
            WebError::Login(path) => html::see_other(&format!(
                "/login{}",
                crate::web::pager::query(&[("next", &path)])
            )),
            WebError::Enrol => html::see_other("/account/totp"),
            WebError::Forbidden(lang) => error_page(
                lang,
                StatusCode::FORBIDDEN,
                "error.forbidden",
                texts::text(lang, "error.forbidden.detail").into(),
            ),
            WebError::Csrf(lang) => error_page(
                lang,
                StatusCode::FORBIDDEN,
                "error.csrf",
                texts::text(lang, "error.csrf.detail").into(),
            ),
            WebError::NotFound(lang) => error_page(
                lang,
                StatusCode::NOT_FOUND,
                "error.not_found",
                texts::text(lang, "error.not_found.detail").into(),
            ),
            WebError::BadRequest(lang, detail) => {
                error_page(lang, StatusCode::BAD_REQUEST, "error.bad_request", detail)
            }
            WebError::Db(e) => {
                tracing::error!("admin page failed: {e}");
                error_page(
                    Lang::default(),
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "error.internal",
                    String::new(),
                )
            }
        }
    }
}
